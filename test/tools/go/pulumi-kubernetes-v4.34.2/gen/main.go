// Writes the files main.go embeds, from the provider module's cmd/pulumi-resource-kubernetes: the schema with its
// version set (as the module's own generate step does) and the Terraform mapping, both compacted.
//
//	go run ./gen MODULE_DIR VERSION OUT_DIR
package main

import (
	"encoding/json"
	"log"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: gen MODULE_DIR VERSION OUT_DIR")
	}
	src := filepath.Join(os.Args[1], "cmd", "pulumi-resource-kubernetes")
	var schema map[string]json.RawMessage
	read(filepath.Join(src, "schema.json"), &schema)
	version, err := json.Marshal(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	schema["version"] = version
	write(filepath.Join(os.Args[3], "schema-embed.json"), schema)
	var mapping json.RawMessage
	read(filepath.Join(src, "terraform-mapping.json"), &mapping)
	write(filepath.Join(os.Args[3], "terraform-mapping-embed.json"), mapping)
}

func read(path string, into any) {
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		log.Fatalf("%s: %v", path, err)
	}
}

func write(path string, value any) {
	data, err := json.Marshal(value)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		log.Fatal(err)
	}
}
