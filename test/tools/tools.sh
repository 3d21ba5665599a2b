#!/usr/bin/env bash
# npm run tools: builds the real tools of `npm run test:real` (and later tiers) from pinned Go modules.
#
# Each tool is built from a wrapper module under test/tools/go/ (go.mod + go.sum committed: the exact module graph),
# into a cache outside the checkout, keyed by version:
#   $KUBEADM_HA_TOOLS (default ~/.cache/kubeadm-ha/tools)
#     NAME/VERSION/NAME     the binary         NAME/VERSION/.stamp   what built it (wrapper sums, Go, flags)
#     bin/NAME              the newest pinned version of NAME    bin/NAME-VERSION   every pinned version
#     go/mod, go/build      Go's module and build caches (GOMODCACHE, GOCACHE), kept for the next build
#     tools.tsv             NAME VERSION PATH of every tool, what tests read (test/support/realTools.ts)
#     pulumi-home           the PULUMI_HOME of `--env` (plugins/, credentials of a local backend login); the CLI never
#                           downloads into it: --env turns automatic plugin acquisition and update checks off
#     third-party/NAME/VERSION/   the Pulumi binaries built from ../shared/third_party (see THIRD_PARTY below): the
#                           binary, its .stamp, and src/ (the scratch copy it was built from; CI's shared/ is read-only)
# Idempotent: a tool whose stamp matches is not rebuilt; a warm run touches no network and returns in seconds.
# A tool already on PATH at exactly the pinned version is linked instead of built.
#
# Usage: npm run tools [-- --env | --list | --only NAME[,NAME...] | --help]
#   (no flag)  build what is missing; print one line per tool: NAME VERSION PATH (progress goes to stderr)
#   --env      print shell export lines that put the tools first on PATH and point the Pulumi CLI at the cache's
#              PULUMI_HOME with every download off (eval "$(npm run -s tools -- --env)")
#   --list     print the pinned tools and whether each is built; build nothing
#   --only     build only the named tools (e.g. --only kubeadm,kubectl)
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
WRAPPERS=$ROOT/test/tools/go
CACHE=${KUBEADM_HA_TOOLS:-${HOME:?}/.cache/kubeadm-ha/tools}

# The pins. NAME VERSION WRAPPER PACKAGE: PACKAGE (a main) is built in the module test/tools/go/WRAPPER.
# Kubernetes: the two newest minors the Go module proxy serves a release of whose kubeadm the lab can run on its
# containerd 1.7 and cgroup v1 (1.35 and 1.36; 1.37.2 is served too, and containerd 1.7 is unsupported there).
# Control-plane binaries of the newer minor only. etcd: kubeadm 1.36's DefaultEtcdVersion (3.6.8).
# Pulumi CLI: the project's @pulumi/pulumi is 3.270.0, but the Go module proxy serves no pkg/v3 between v3.260.0 and
# v3.274.0 (v3.270.0 and v3.271.0 are refused); v3.274.0 is the closest served release at or above it (a CLI newer than
# the SDK is supported, an older one is not). The proxy refuses pulumi-language-nodejs and the command, random and
# tls providers: they are built from ../shared/third_party (THIRD_PARTY below). It serves the kubernetes provider's
# module only as a January 2026 pseudo-version: registered as the 4.34.2 @pulumi/kubernetes requests (PLUGINS below).
PINS=(
  "kubeadm v1.35.4 kubernetes-v1.35.4 k8s.io/kubernetes/cmd/kubeadm"
  "kubeadm v1.36.3 kubernetes-v1.36.3 k8s.io/kubernetes/cmd/kubeadm"
  "kubectl v1.36.3 kubernetes-v1.36.3 k8s.io/kubernetes/cmd/kubectl"
  "kube-apiserver v1.36.3 kubernetes-v1.36.3 k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager v1.36.3 kubernetes-v1.36.3 k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler v1.36.3 kubernetes-v1.36.3 k8s.io/kubernetes/cmd/kube-scheduler"
  "etcd v3.6.8 etcd-v3.6.8 go.etcd.io/etcd/server/v3"
  "etcdctl v3.6.8 etcd-v3.6.8 go.etcd.io/etcd/etcdctl/v3"
  "etcdutl v3.6.8 etcd-v3.6.8 go.etcd.io/etcd/etcdutl/v3"
  "kwok v0.8.0 kwok-v0.8.0 sigs.k8s.io/kwok/cmd/kwok"
  "pulumi v3.274.0 pulumi-v3.274.0 github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
  "pulumi-resource-kubernetes v4.34.2 pulumi-kubernetes-v4.34.2 ."
)

# Resource plugins: NAME of the pin, the plugin's name and the version the CLI registers it under in pulumi-home (what
# the npm package requests). The Kubernetes provider is built from the one provider commit the proxy serves (see its
# wrapper's go.mod), so its version is the npm package's, not a release of its own.
PLUGINS=(
  "pulumi-resource-kubernetes kubernetes 4.34.2"
)

# Pulumi binaries whose Go modules the proxy refuses (403 at every version), built from the upstream sources in
# ../shared/third_party (its README: commits, licences, the build recipe of each): NAME PLUGIN SOURCE-FOLDERS.
# A resource plugin's VERSION is what its npm package requests (node_modules/@pulumi/PLUGIN/package.json,
# `pulumi.version`): the CLI looks a plugin up by exactly that version, so it is read there, never written here.
# The nodejs language host (PLUGIN "-") is not a plugin the CLI installs: it goes next to the built `pulumi` binary,
# where the CLI looks first (on PATH it would warn on every run); its go.mod and go.sum are ours
# (test/tools/go/pulumi-language-nodejs: upstream's replaces of pkg/v3 and sdk/v3 by paths inside the pulumi repository
# dropped, both required at v3.260.0, the served release nearest its source, pkg v3.259.0 + 14 commits; at the CLI's
# v3.274.0 it does not compile), so its build is -mod=readonly like every other. The CLI speaks to an older language
# host as to any other.
THIRD_PARTY=(
  "pulumi-resource-command command pulumi-command"
  "pulumi-resource-random random pulumi-random"
  "pulumi-resource-tls tls pulumi-tls,terraform-provider-tls"
  "pulumi-language-nodejs - pulumi-language-nodejs"
)
THIRD_PARTY_SRC=${KUBEADM_HA_THIRD_PARTY:-$ROOT/../shared/third_party}

# Helm charts the real tier installs, from the Go modules that carry them (nothing downloads at test time):
# NAME VERSION MODULE DIRECTORY-IN-MODULE, copied to $CACHE/charts/NAME/VERSION.
CHARTS=(
  "flannel v0.28.10 github.com/flannel-io/flannel chart/kube-flannel"
)

say() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: %s\n' "$*" >&2; exit 1; }

# ldflags NAME VERSION: the version stamping each upstream build does (Kubernetes: hack/lib/version.sh; the build
# date is the release's own date from the module proxy, so a rebuild is byte-identical).
ldflags() {
  local name=$1 version=$2 flags="-s -w"
  case $name in
    kube*)
      local minor date info
      minor=${version#v1.}; minor=${minor%%.*}
      info=$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$version.info
      date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null || true)
      local pkg
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}"
      done ;;
    etcd*) flags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=$version" ;;
    pulumi) flags+=" -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" ;;
    pulumi-resource-kubernetes) flags+=" -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=${version#v}" ;;
  esac
  printf '%s' "$flags"
}

# pinned_path NAME: where the newest pin of NAME is built (bin/ is linked only once every tool is built).
pinned_path() {
  local line name version path=""
  for line in "${PINS[@]}"; do
    read -r name version _ <<<"$line"
    [[ $name == "$1" ]] && path=$CACHE/$name/$version/$name
  done
  printf '%s' "$path"
}

# version_of NAME BINARY: the version the binary reports, as vX.Y.Z ("" if it reports none).
version_of() {
  local out
  case $1 in
    kubeadm) out=$("$2" version -o short 2>/dev/null) ;;
    kubectl) out=$("$2" version --client 2>/dev/null | sed -n 's/^Client Version: //p') ;;
    kube-*) out=$("$2" --version 2>/dev/null | sed -n 's/^Kubernetes //p') ;;
    etcd) out=v$("$2" --version 2>/dev/null | sed -n 's/^etcd Version: //p') ;;
    etcdctl | etcdutl) out=v$("$2" version 2>/dev/null | sed -n "s/^$1 version: //p") ;;
    kwok) out=$("$2" --version 2>/dev/null | grep -o 'v[0-9][0-9.]*' | head -n 1) ;;
    # No version flag: the version of the schema it serves, as the built CLI reads it (`pulumi package get-schema`).
    pulumi-resource-kubernetes) out=v$(PULUMI_HOME=$CACHE/pulumi-home PULUMI_SKIP_UPDATE_CHECK=true "$(pinned_path pulumi)" package get-schema "$2" 2>/dev/null |
      sed -n 's/^  "version": "\([^"]*\)",$/\1/p' | head -n 1) ;;
    pulumi) mkdir -p "$CACHE/pulumi-home"
      out=$(PULUMI_HOME=$CACHE/pulumi-home PULUMI_SKIP_UPDATE_CHECK=true "$2" version 2>/dev/null) ;;
    *) out="" ;;
  esac || out=""
  printf '%s' "$out"
}

# stamp WRAPPER NAME VERSION: what the binary depends on; a different stamp means rebuild.
stamp() {
  { cat "$WRAPPERS/$1/go.mod" "$WRAPPERS/$1/go.sum"; find "$WRAPPERS/$1" -name '*.go' -type f | sort | xargs -r cat; go env GOVERSION; ldflags "$2" "$3"; } | sha256sum | cut -d' ' -f1
}

built() { # NAME VERSION WRAPPER
  local dir=$CACHE/$1/$2
  [[ -x $dir/$1 && -f $dir/.stamp && $(cat "$dir/.stamp") == "$(stamp "$3" "$1" "$2")" ]] || return 1
  [[ $1 != kwok ]] || compgen -G "$dir/stages/*.yaml" >/dev/null
}

# kwok simulates nothing without Stage objects: keep its own stages (the module's kustomize/stage/: nodes initialise
# and heartbeat with a lease, pods turn ready and go away on deletion) next to the binary, for `kwok --config`.
kwok_stages() { # VERSION WRAPPER
  local dir=$CACHE/kwok/$1 src stage f
  src=$(cd "$WRAPPERS/$2" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok) || die "kwok $1: cannot find the module's stages"
  mkdir -p "$dir/stages"
  for stage in node/fast node/heartbeat-with-lease pod/fast; do
    for f in "$src/kustomize/stage/$stage/"*.yaml; do
      case $f in */kustomization.yaml) continue ;; esac
      cp -f "$f" "$dir/stages/$(basename "$f")"
    done
  done
}

# link_from_path NAME VERSION WRAPPER: use a tool already on PATH at exactly VERSION (never our own cache's copy).
link_from_path() {
  local found dir=$CACHE/$1/$2
  found=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$CACHE/bin" | paste -sd:) command -v "$1" 2>/dev/null) || return 1
  [[ $(version_of "$1" "$found") == "$2" ]] || return 1
  mkdir -p "$dir"
  ln -sfn "$found" "$dir/$1"
  stamp "$3" "$1" "$2" >"$dir/.stamp"
  say "$1 $2: using $found (on PATH at the pinned version)"
}

go_env() {
  command -v go >/dev/null 2>&1 || die "Go is needed to build the tools (go 1.26 or newer on PATH)"
  export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0
  mkdir -p "$GOMODCACHE" "$GOCACHE"
}

# build_group WRAPPER VERSION NAME PACKAGE [NAME PACKAGE ...]: one `go build` per binary in one wrapper, serially
# (2 cores: one build at a time, each with all of them); the shared build cache makes the second one cheap.
build_one() {
  local wrapper=$1 name=$2 version=$3 pkg=$4 dir=$CACHE/$2/$3 start=$SECONDS tmp src
  mkdir -p "$dir"
  tmp=$(mktemp -d "$dir/.build.XXXXXX")
  src=$WRAPPERS/$wrapper
  say "$name $version: building $pkg (module test/tools/go/$wrapper) ..."
  # Download the module graph first so that its cost shows apart from compiling (and the .info date is present).
  (cd "$src" && go mod download) || { rm -rf "$tmp"; die "$name $version: go mod download failed"; }
  if [[ $name == pulumi-resource-kubernetes ]]; then
    # Its main embeds generated files: build a copy of the wrapper, with them written next to main.go.
    cp -R "$src" "$tmp/src"
    src=$tmp/src
    local module
    module=$(cd "$src" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4) || { rm -rf "$tmp"; die "$name $version: cannot find the provider module"; }
    (cd "$src" && go run ./gen "$module" "${version#v}" .) || { rm -rf "$tmp"; die "$name $version: generating the embedded schema failed"; }
  fi
  if ! (cd "$src" && go build -trimpath -ldflags "$(ldflags "$name" "$version")" -o "$tmp/$name" "$pkg") >"$tmp/log" 2>&1; then
    tail -n 30 "$tmp/log" >&2
    rm -rf "$tmp"
    die "$name $version: build failed"
  fi
  local got
  got=$(version_of "$name" "$tmp/$name")
  if [[ $got != "$version" ]]; then
    rm -rf "$tmp"
    die "$name $version: the built binary reports version '${got}', not $version"
  fi
  mv -f "$tmp/$name" "$dir/$name"
  rm -rf "$tmp"
  stamp "$wrapper" "$name" "$version" >"$dir/.stamp"
  say "$name $version: built in $((SECONDS - start)) s"
}

# Writes bin/ links and tools.tsv from what is built.
publish() {
  mkdir -p "$CACHE/bin"
  local line name version wrapper pkg tsv=$CACHE/tools.tsv.tmp
  : >"$tsv"
  for line in "${PINS[@]}"; do
    read -r name version wrapper pkg <<<"$line"
    [[ -x $CACHE/$name/$version/$name ]] || continue
    ln -sfn "../$name/$version/$name" "$CACHE/bin/$name-$version"
    # Pins are listed oldest first per name, so the last one wins: bin/NAME is the newest pinned version.
    ln -sfn "../$name/$version/$name" "$CACHE/bin/$name"
    printf '%s\t%s\t%s\n' "$name" "$version" "$CACHE/$name/$version/$name" >>"$tsv"
  done
  local path
  while IFS=$'\t' read -r name version path; do
    # Not the language host: the CLI warns on every run about one it finds on PATH (its place is beside the CLI).
    [[ $name == pulumi-language-nodejs ]] || ln -sfn "../third-party/$name/$version/$name" "$CACHE/bin/$name"
    printf '%s\t%s\t%s\n' "$name" "$version" "$path" >>"$tsv"
  done < <(third_party_built)
  mv -f "$tsv" "$CACHE/tools.tsv"
}

# Copies each chart of CHARTS out of its module (downloaded into the cache's GOMODCACHE, verified by the checksum
# database) once; a warm run only checks that it is there.
fetch_charts() {
  local line name version module path dest dir
  for line in "${CHARTS[@]}"; do
    read -r name version module path <<<"$line"
    dest=$CACHE/charts/$name/$version
    [[ -f $dest/Chart.yaml ]] && continue
    say "chart $name $version: from $module@$version ($path)"
    dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || die "chart $name: go mod download $module@$version failed"
    [[ -f $dir/$path/Chart.yaml ]] || die "chart $name: $module@$version has no $path/Chart.yaml"
    rm -rf "$dest.tmp"
    mkdir -p "$(dirname "$dest")"
    cp -R "$dir/$path" "$dest.tmp"
    chmod -R u+w "$dest.tmp"
    mv "$dest.tmp" "$dest"
  done
}

# npm_plugin_version PLUGIN: the version of its resource plugin that @pulumi/PLUGIN requests (package.json `pulumi.version`).
npm_plugin_version() {
  local pkg=$ROOT/node_modules/@pulumi/$1/package.json
  [[ -f $pkg ]] || die "$pkg is missing: run npm ci first (the versions of the Pulumi plugins are the ones the npm packages request)"
  node -e 'const p = require(process.argv[1]); const v = (p.pulumi && p.pulumi.version) || ""; if (!v) process.exit(1); process.stdout.write(v.replace(/^v/, ""))' "$pkg" ||
    die "$pkg names no pulumi.version"
}

# third_party_version NAME PLUGIN: vX.Y.Z: a resource plugin's from its npm package; the language host's from its go.mod
# (the Pulumi SDK it is built against, the CLI's own version).
third_party_version() {
  if [[ $2 == - ]]; then
    sed -n 's/^[[:space:]]*github.com\/pulumi\/pulumi\/sdk\/v3 \(v[0-9.]*\)$/\1/p' "$WRAPPERS/$1/go.mod" | head -n 1
  else
    printf 'v%s' "$(npm_plugin_version "$2")"
  fi
}

# third_party_ldflags NAME VERSION: the version stamping of each upstream Makefile.
third_party_ldflags() {
  local v=${2#v}
  case $1 in
    pulumi-resource-command) printf '%s' "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$v" ;;
    pulumi-resource-random) printf '%s' "-s -w -X github.com/pulumi/pulumi-random/provider/v4/pkg/version.Version=$v" ;;
    pulumi-resource-tls) printf '%s' "-s -w -X github.com/pulumi/pulumi-tls/provider/v5/pkg/version.Version=$v" ;;
    pulumi-language-nodejs) printf '%s' "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$2" ;;
  esac
}

# third_party_stamp NAME VERSION FOLDERS: every file of the source folders (path and content), our go.mod/go.sum of the
# language host, the build recipe itself, Go's version and the flags. A different stamp means rebuild.
third_party_stamp() {
  local name=$1 version=$2 folders=$3 f
  {
    for f in ${folders//,/ }; do (cd "$THIRD_PARTY_SRC" && find "$f" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); done
    [[ ! -d $WRAPPERS/$name ]] || cat "$WRAPPERS/$name/go.mod" "$WRAPPERS/$name/go.sum"
    declare -f build_third_party
    go env GOVERSION
    third_party_ldflags "$name" "$version"
  } | sha256sum | cut -d' ' -f1
}

# build_third_party NAME VERSION FOLDERS: copies the source folders to the cache (src/, writable) and builds there, as
# ../shared/third_party/README.md describes for each. The binary is checked by the schema it serves (its version must
# be VERSION) before it replaces the previous one.
build_third_party() {
  local name=$1 version=$2 folders=$3 dir=$CACHE/third-party/$1/$2 start=$SECONDS f bin log
  local v=${version#v} ld
  ld=$(third_party_ldflags "$name" "$version")
  mkdir -p "$dir"
  rm -rf "$dir/src" "$dir/.build"
  mkdir -p "$dir/src" "$dir/.build"
  for f in ${folders//,/ }; do cp -R "$THIRD_PARTY_SRC/$f" "$dir/src/$f"; done
  chmod -R u+w "$dir/src"
  bin=$dir/.build/$name
  log=$dir/.build/log
  say "$name $version: building from $THIRD_PARTY_SRC/${folders//,/ and } ..."
  if ! (
    set -e
    case $name in
      pulumi-resource-command)
        cd "$dir/src/pulumi-command"
        go build -trimpath -ldflags "$ld" -o "$bin" ./provider/cmd/pulumi-resource-command ;;
      pulumi-resource-random)
        cd "$dir/src/pulumi-random/provider/cmd/pulumi-resource-random"
        VERSION=$v go run generate.go
        cd ../..
        go build -trimpath -ldflags "$ld" -o "$bin" ./cmd/pulumi-resource-random ;;
      pulumi-resource-tls)
        # go.mod names a pseudo-version of terraform-provider-tls that the proxy refuses: the copy beside it instead.
        cd "$dir/src/pulumi-tls/provider"
        go mod edit -replace "github.com/hashicorp/terraform-provider-tls=$dir/src/terraform-provider-tls"
        (cd shim && go mod edit -replace "github.com/hashicorp/terraform-provider-tls=$dir/src/terraform-provider-tls")
        (cd cmd/pulumi-resource-tls && VERSION=$v go run generate.go)
        go build -trimpath -ldflags "$ld" -o "$bin" ./cmd/pulumi-resource-tls ;;
      pulumi-language-nodejs)
        cd "$dir/src/pulumi-language-nodejs"
        cp -f "$WRAPPERS/$name/go.mod" "$WRAPPERS/$name/go.sum" .
        go build -trimpath -ldflags "$ld" -o "$bin" . ;;
      *) echo "no recipe for $name" >&2; exit 1 ;;
    esac
  ) >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "$name $version: build failed (log: $log)"
  fi
  if [[ $name == pulumi-resource-* ]]; then
    local got
    got=$(PULUMI_HOME=$CACHE/pulumi-home PULUMI_SKIP_UPDATE_CHECK=true "$(pinned_path pulumi)" package get-schema "$bin" 2>/dev/null |
      sed -n 's/^  "version": "\([^"]*\)",$/\1/p' | head -n 1) || got=""
    [[ $got == "$v" ]] || die "$name $version: the built plugin serves a schema of version '$got', not $v"
  fi
  mv -f "$bin" "$dir/$name"
  rm -rf "$dir/.build"
  third_party_stamp "$name" "$version" "$folders" >"$dir/.stamp"
  say "$name $version: built in $((SECONDS - start)) s"
}

# build_third_parties: builds what is missing or stale of THIRD_PARTY (after the CLI, which checks the plugins' schemas),
# or, without ../shared/third_party, says where these plugins come from instead.
build_third_parties() {
  local line name plugin folders version dir
  if [[ ! -d $THIRD_PARTY_SRC ]]; then
    say "no $THIRD_PARTY_SRC: the command, random and tls resource plugins and the nodejs language host are not built"
    say "  (the Go module proxy refuses their modules). A machine with internet access gets them from the Pulumi CLI itself:"
    say "  pulumi plugin install resource command $(npm_plugin_version command); pulumi plugin install resource random $(npm_plugin_version random);"
    say "  pulumi plugin install resource tls $(npm_plugin_version tls) (the nodejs language host ships with the CLI). The tests that"
    say "  need them are reported as skipped, by name."
    return 0
  fi
  for line in "${THIRD_PARTY[@]}"; do
    read -r name plugin folders <<<"$line"
    [[ -z $only || $only == *",$name,"* ]] || continue
    version=$(third_party_version "$name" "$plugin")
    [[ -n $version ]] || die "$name: no version (see THIRD_PARTY in ${BASH_SOURCE[0]})"
    dir=$CACHE/third-party/$name/$version
    if [[ -x $dir/$name && -f $dir/.stamp && $(cat "$dir/.stamp") == "$(third_party_stamp "$name" "$version" "$folders")" ]]; then
      continue
    fi
    build_third_party "$name" "$version" "$folders"
  done
}

# third_party_built: NAME VERSION PATH of each built THIRD_PARTY binary (for tools.tsv and --list).
third_party_built() {
  local line name plugin folders version
  [[ -d $THIRD_PARTY_SRC ]] || return 0
  for line in "${THIRD_PARTY[@]}"; do
    read -r name plugin folders <<<"$line"
    version=$(third_party_version "$name" "$plugin")
    [[ -x $CACHE/third-party/$name/$version/$name ]] && printf '%s\t%s\t%s\n' "$name" "$version" "$CACHE/third-party/$name/$version/$name"
  done
  return 0
}

# Registers each built resource plugin in the cache's PULUMI_HOME (`pulumi plugin install --file`), where the CLI of
# --env finds it by name and version; again only when the built binary differs from the registered one.
install_plugins() {
  local line name plugin version bin dest
  local cli
  cli=$(pinned_path pulumi)
  [[ -x $cli ]] || return 0
  local registrations=("${PLUGINS[@]}") folders
  if [[ -d $THIRD_PARTY_SRC ]]; then
    for line in "${THIRD_PARTY[@]}"; do
      read -r name plugin folders <<<"$line"
      [[ $plugin == - ]] || registrations+=("$name $plugin $(npm_plugin_version "$plugin")")
    done
  fi
  for line in "${registrations[@]}"; do
    read -r name plugin version <<<"$line"
    bin=$CACHE/bin/$name
    [[ -x $bin ]] || continue
    dest=$CACHE/pulumi-home/plugins/resource-$plugin-v$version/pulumi-resource-$plugin
    cmp -s "$bin" "$dest" 2>/dev/null && continue
    say "$name: registering as the $plugin $version plugin in $CACHE/pulumi-home"
    # The CLI keeps an installed plugin as it is: the previous registration goes first.
    rm -rf "$CACHE/pulumi-home/plugins/resource-$plugin-v$version" "$CACHE/pulumi-home/plugins/resource-$plugin-v$version".*
    PULUMI_HOME=$CACHE/pulumi-home PULUMI_SKIP_UPDATE_CHECK=true "$cli" plugin install resource "$plugin" "$version" --file "$bin" >&2 ||
      die "$name: pulumi plugin install failed"
  done
  # The language host beside the CLI's binary (not a link: the CLI looks in the directory of its own resolved path).
  local host version_dir
  host=$(third_party_built | awk -F'\t' '$1 == "pulumi-language-nodejs" { print $3 }')
  rm -f "$CACHE/bin/pulumi-language-nodejs"
  if [[ -n $host && -x $host ]]; then
    version_dir=$(dirname "$cli")
    if ! cmp -s "$host" "$version_dir/pulumi-language-nodejs"; then
      say "pulumi-language-nodejs: installed as the CLI's nodejs language host ($version_dir)"
      cp -f "$host" "$version_dir/pulumi-language-nodejs.tmp"
      mv -f "$version_dir/pulumi-language-nodejs.tmp" "$version_dir/pulumi-language-nodejs"
    fi
  fi
}

main() {
  local mode=build only="" line name version wrapper pkg
  while (($#)); do
    case $1 in
      --env) mode=env ;;
      --list) mode=list ;;
      --only) only=",${2:?--only needs a list of tool names},"; shift ;;
      --only=*) only=",${1#--only=},"; ;;
      -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; return 0 ;;
      *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
  done
  if [[ $mode == env ]]; then
    printf 'export KUBEADM_HA_TOOLS=%q\n' "$CACHE"
    # shellcheck disable=SC2016
    printf 'export PATH=%q:"$PATH"\n' "$CACHE/bin"
    # The Pulumi CLI: its own home in the cache, and nothing fetched behind the tests' back (a plugin that is not
    # installed is an error, not a download; no update check, no registry look-up of package names).
    printf 'export PULUMI_HOME=%q\n' "$CACHE/pulumi-home"
    # Plugins only from PULUMI_HOME, at exactly the versions the npm packages request: the bin/ on PATH holds the
    # built plugins too, which the CLI would otherwise take at any version (with a warning on every run).
    printf 'export %s=true\n' PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION PULUMI_SKIP_UPDATE_CHECK PULUMI_DISABLE_REGISTRY_RESOLVE PULUMI_IGNORE_AMBIENT_PLUGINS
    return 0
  fi
  go_env
  if [[ -n $only ]]; then
    local known=",$(for line in "${PINS[@]}" "${THIRD_PARTY[@]}"; do printf '%s,' "${line%% *}"; done)" n
    for n in ${only//,/ }; do [[ $known == *",$n,"* ]] || die "--only: no pinned tool named '$n'"; done
  fi
  for line in "${PINS[@]}"; do
    read -r name version wrapper pkg <<<"$line"
    [[ -z $only || $only == *",$name,"* ]] || continue
    if built "$name" "$version" "$wrapper"; then
      [[ $mode == list ]] && printf '%s\t%s\t%s\n' "$name" "$version" "$CACHE/$name/$version/$name"
      continue
    fi
    if [[ $mode == list ]]; then printf '%s\t%s\t%s\n' "$name" "$version" "(not built)"; continue; fi
    link_from_path "$name" "$version" "$wrapper" || build_one "$wrapper" "$name" "$version" "$pkg"
    if [[ $name == kwok ]]; then (cd "$WRAPPERS/$wrapper" && go mod download sigs.k8s.io/kwok) && kwok_stages "$version" "$wrapper"; fi
  done
  if [[ $mode == list ]]; then
    local plugin folders v
    [[ -d $THIRD_PARTY_SRC ]] || { say "no $THIRD_PARTY_SRC: the command, random and tls plugins and the nodejs language host cannot be built here"; return 0; }
    for line in "${THIRD_PARTY[@]}"; do
      read -r name plugin folders <<<"$line"
      v=$(third_party_version "$name" "$plugin")
      if [[ -x $CACHE/third-party/$name/$v/$name && $(cat "$CACHE/third-party/$name/$v/.stamp" 2>/dev/null) == "$(third_party_stamp "$name" "$v" "$folders")" ]]; then
        printf '%s\t%s\t%s\n' "$name" "$v" "$CACHE/third-party/$name/$v/$name"
      else
        printf '%s\t%s\t%s\n' "$name" "$v" "(not built)"
      fi
    done
    return 0
  fi
  mkdir -p "$CACHE/pulumi-home"
  build_third_parties
  publish
  install_plugins
  [[ -n $only ]] || fetch_charts
  for line in "${PINS[@]}"; do
    read -r name version wrapper pkg <<<"$line"
    [[ -z $only || $only == *",$name,"* ]] || continue
    printf '%s %s %s\n' "$name" "$version" "$CACHE/$name/$version/$name"
  done
  local path
  while IFS=$'\t' read -r name version path; do
    [[ -z $only || $only == *",$name,"* ]] && printf '%s %s %s\n' "$name" "$version" "$path"
  done < <(third_party_built)
  return 0
}

main "$@"
