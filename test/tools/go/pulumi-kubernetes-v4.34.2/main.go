// The Kubernetes resource provider (pulumi-resource-kubernetes) of `npm run test:real`, built from the provider
// module's package: upstream's own main only serves it with the schema and Terraform mapping embedded, and embeds
// them from its module directory, where a build from the module cache cannot write them. tools.sh builds this
// package in a copy of this directory under the tool cache, after `go run ./gen` wrote the two files there.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
