// A fake cluster for the upgrade step scripts, built on the recording stubs of test/support/stubs.ts: kubectl,
// kubeadm, kubelet and systemctl answer from (and change) a small state directory, so a sequence of steps run on
// one scratch root behaves like a node and its cluster moving from one version to the next. kubeadm, kubelet and
// kubectl do not exist on this machine (or in any reachable registry): every call here is a stub, recorded.
//
// State (under stubState(root)):
//   pkg/<name>, hold/<name>     installed packages and holds (shared with the default apt-get and apt-mark stubs)
//   server-version              what `kubectl version -o json` reports as serverVersion ("v1.35.9")
//   cluster-config-version      kubeadm-config's ClusterConfiguration kubernetesVersion (default: server-version);
//                               `kubeadm upgrade apply` writes it last, as kubeadm does
//   k8s/<node>.kubelet          the kubelet version the Node reports; k8s/<node>.ready ("True"); k8s/<node>.cordoned
//   drain-mode                  "pdb": drain fails like a blocking PodDisruptionBudget; "pdb-unless-disabled": only
//                               --disable-eviction gets through; "hang": drain never returns
//   fail-at                     "cmd args…" substring: the first stub call whose "cmd args" contains it fails once
//   kubeadm-dies-after-apiserver  the next `kubeadm upgrade apply|node` writes the kube-apiserver manifest, then fails
//                               (as kubeadm failing in the controller-manager phase): the others stay behind
//   etcd-unhealthy, plan-reject, readyz-fail: injected health problems
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { seedHolds, seedKubeletIdentity, seedPackages, stubState, writeNodeFile } from "./stubs";

function sh(strings: TemplateStringsArray): string {
  return strings.raw.join("").replace(/\\\$\{/g, "${");
}

/** The first lines of every overridden stub: a one-time injected failure. */
export const failHook = sh`
if [ -f "$S/fail-at" ]; then
  __pat=$(cat "$S/fail-at")
  case "$__STUB_NAME $*" in
    *"$__pat"*)
      rm -f "$S/fail-at"
      echo "injected failure: $__STUB_NAME $*" >&2
      exit 1
      ;;
  esac
fi
`;

const kubectlStub = sh`
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --kubeconfig | --server | -n | --namespace | --request-timeout) shift 2 ;;
    --kubeconfig=* | --server=* | --request-timeout=* | --namespace=*) shift ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "\${args[@]}"
jsonpath=""
for a in "$@"; do case $a in jsonpath=*) jsonpath=\${a#jsonpath=} ;; esac; done
pkgv() { local v; v=$(cat "$S/pkg/$1" 2>/dev/null) || return 1; echo "v\${v%%-*}"; }
mkdir -p "$S/k8s"
case "\${1:-}" in
  version)
    client=$(pkgv kubectl) || { echo "kubectl: command not found" >&2; exit 127; }
    if [ "\${2:-}" = --client ]; then
      printf '{\n  "clientVersion": {\n    "major": "1",\n    "gitVersion": "%s",\n    "platform": "linux/amd64"\n  },\n  "kustomizeVersion": "v5.7.1"\n}\n' "$client"
      exit 0
    fi
    server=$(cat "$S/server-version" 2>/dev/null || true)
    if [ -z "$server" ]; then
      printf '{\n  "clientVersion": {\n    "gitVersion": "%s"\n  }\n}\n' "$client"
      echo "The connection to the server was refused" >&2
      exit 1
    fi
    printf '{\n  "clientVersion": {\n    "major": "1",\n    "gitVersion": "%s",\n    "platform": "linux/amd64"\n  },\n  "kustomizeVersion": "v5.7.1",\n  "serverVersion": {\n    "major": "1",\n    "gitVersion": "%s",\n    "gitCommit": "abc",\n    "platform": "linux/amd64"\n  }\n}\n' "$client" "$server"
    ;;
  get)
    case "\${2:-}" in
      nodes)
        for f in "$S"/k8s/*.kubelet; do
          [ -e "$f" ] || continue
          n=$(basename "$f" .kubelet)
          printf '%s %s %s\n' "$n" "$(cat "$f")" "$(cat "$S/k8s/$n.ready" 2>/dev/null || echo True)"
        done
        ;;
      node)
        n=\${3:-}
        [ -e "$S/k8s/$n.kubelet" ] || { echo "Error from server (NotFound): nodes \"$n\" not found" >&2; exit 1; }
        case $jsonpath in
          *kubeletVersion*) printf '%s' "$(cat "$S/k8s/$n.kubelet")" ;;
          *unschedulable*) if [ -e "$S/k8s/$n.cordoned" ]; then printf true; fi ;;
          *maintenance*) if [ -e "$S/k8s/$n.maintenance" ]; then printf true; fi ;;
          *Ready*) printf '%s' "$(cat "$S/k8s/$n.ready" 2>/dev/null || echo True)" ;;
        esac
        ;;
      pod)
        p=\${3:-}
        component=\${p%-*-*}
        manifest="$R/etc/kubernetes/manifests/$component.yaml"
        [ -f "$manifest" ] || { echo "Error from server (NotFound): pods \"$p\" not found" >&2; exit 1; }
        image=$(sed -n -E 's/^[[:space:]]*image:[[:space:]]*([^[:space:]]+).*/\1/p' "$manifest" | head -n 1)
        printf 'Running True %s' "$image"
        ;;
      configmap)
        printf 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: %s\n' "$(cat "$S/cluster-config-version" 2>/dev/null || cat "$S/server-version")"
        ;;
      --raw=/readyz | --raw)
        if [ -e "$S/readyz-fail" ]; then echo "[-]etcd failed: reason withheld" >&2; exit 1; fi
        printf ok
        ;;
    esac
    ;;
  cordon) : >"$S/k8s/$2.cordoned"; echo "node/$2 cordoned" ;;
  annotate)
    shift
    [ "\${1:-}" = --overwrite ] && shift
    n=\${2:-}
    case "\${3:-}" in
      *=true) : >"$S/k8s/$n.maintenance" ;;
      *-) rm -f "$S/k8s/$n.maintenance" ;;
    esac
    echo "node/$n annotated"
    ;;
  uncordon) rm -f "$S/k8s/$2.cordoned"; echo "node/$2 uncordoned" ;;
  drain)
    case $(cat "$S/drain-mode" 2>/dev/null || true) in
      hang) exec sleep 60 ;;
      pdb)
        echo "evicting pod default/web-0"
        echo "error when evicting pods/\"web-0\" -n \"default\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."
        echo "error: unable to drain node \"$2\" due to error: global timeout reached: 1s, continuing command..."
        exit 1
        ;;
      pdb-unless-disabled)
        case " $* " in
          *" --disable-eviction "*) echo "pod/web-0 deleted" ;;
          *) echo "Cannot evict pod as it would violate the pod's disruption budget." ; exit 1 ;;
        esac
        ;;
      *) echo "evicting pod default/web-0"; echo "pod/web-0 evicted"; echo "node/$2 drained" ;;
    esac
    ;;
  exec)
    if [ -e "$S/etcd-unhealthy" ]; then echo "https://127.0.0.1:2379 is unhealthy: failed to commit proposal: context deadline exceeded" >&2; exit 1; fi
    echo "https://127.0.0.1:2379 is healthy: successfully committed proposal: took = 9.1ms"
    ;;
esac
`;

const setManifests = sh`
set_manifests() {
  local f
  for f in "$R"/etc/kubernetes/manifests/kube-*.yaml; do
    [ -e "$f" ] || continue
    sed -i -E "s#^([[:space:]]*image:[[:space:]]*[^[:space:]]*/kube-[a-z-]+:)v[0-9]+\.[0-9]+\.[0-9]+#\1$1#" "$f"
  done
}
# upgrade_files VERSION: what kubeadm upgrade writes, in its order (kube-apiserver, the other components, the kubelet
# configuration); with kubeadm-dies-after-apiserver it stops (exit 1) after the kube-apiserver manifest, once.
upgrade_files() {
  if [ -f "$S/kubeadm-dies-after-apiserver" ]; then
    rm -f "$S/kubeadm-dies-after-apiserver"
    sed -i -E "s#^([[:space:]]*image:[[:space:]]*[^[:space:]]*/kube-apiserver:)v[0-9]+\.[0-9]+\.[0-9]+#\1$1#" "$R"/etc/kubernetes/manifests/kube-apiserver.yaml
    echo "[upgrade/staticpods] Component \"kube-controller-manager\" upgrade failed" >&2
    exit 1
  fi
  set_manifests "$1"
  mkdir -p "$R/var/lib/kubelet"
  printf '# kubelet configuration written by kubeadm upgrade to %s\n' "$1" >"$R/var/lib/kubelet/config.yaml"
}
`;

const kubeadmStub = sh`
kv=$(cat "$S/pkg/kubeadm" 2>/dev/null) && kv="v\${kv%%-*}"
case "\${1:-} \${2:-}" in
  "upgrade plan")
    if [ "$kv" != "\${3:-}" ]; then
      echo "[upgrade/version] FATAL: the --version argument is invalid due to these fatal errors: Specified version to upgrade to \"\${3:-}\" is not the kubeadm version $kv" >&2
      exit 1
    fi
    echo "[upgrade/versions] Target version: \${3:-}"
    ;;
  "upgrade apply")
    target=\${!#}
    [ "$kv" = "$target" ] || { echo "[upgrade/version] FATAL: kubeadm $kv cannot upgrade to $target" >&2; exit 1; }
    echo "apply $target" >>"$S/upgrade-apply-runs"
    upgrade_files "$target"
    printf '%s' "$target" >"$S/server-version"
    printf '%s' "$target" >"$S/cluster-config-version"
    echo "[upgrade/successful] SUCCESS! Your cluster was upgraded to \"$target\". Enjoy!"
    ;;
  "upgrade node")
    echo "$kv" >>"$S/upgrade-node-runs"
    upgrade_files "$kv"
    echo "[upgrade] The configuration for this node was successfully upgraded!"
    ;;
  *) stub_default "$@" ;;
esac
`;

const kubeletStub = sh`
v=$(cat "$S/pkg/kubelet" 2>/dev/null) || { echo "kubelet: command not found" >&2; exit 127; }
case "\${1:-}" in --version) echo "Kubernetes v\${v%%-*}" ;; esac
`;

/** systemctl: `restart kubelet` makes the Node (STUB_NODE) report the installed kubelet's version. */
const systemctlStub = sh`
if [ "\${1:-}" = restart ] && [ "\${2:-}" = kubelet ] && [ -n "\${STUB_NODE:-}" ]; then
  v=$(cat "$S/pkg/kubelet")
  mkdir -p "$S/k8s"
  printf 'v%s' "\${v%%-*}" >"$S/k8s/$STUB_NODE.kubelet"
fi
stub_default "$@"
`;

/** apt-get: `download` leaves a package file named as apt would; everything else is the default stub. */
const aptGetStub = sh`
sub="" pin=""
for a in "$@"; do
  case $a in
    download | update | install) [ -n "$sub" ] || sub=$a ;;
    kubeadm=*) pin=\${a#kubeadm=} ;;
  esac
done
if [ "$sub" = download ]; then
  v=\${pin//\*/1.1}
  printf 'fake deb of kubeadm %s\n' "$v" >"kubeadm_\${v}_amd64.deb"
  echo "Get:1 https://pkgs.k8s.io kubeadm $v [11.2 MB]"
  exit 0
fi
stub_default "$@"
`;

/** dpkg-deb -x DEB DIR: a kubeadm whose calls reach the recorded stub "kubeadm-fetched". */
const dpkgDebStub = sh`
[ "\${1:-}" = -x ] || { echo "stub dpkg-deb: only -x" >&2; exit 2; }
deb=$2 dir=$3
v=$(sed -n -E 's/^fake deb of kubeadm ([0-9.]+)-.*/\1/p' "$deb")
mkdir -p "$dir/usr/bin"
printf 'v%s' "$v" >"$S/fetched-kubeadm"
printf '#!/usr/bin/env bash\nexec kubeadm-fetched "$@"\n' >"$dir/usr/bin/kubeadm"
chmod +x "$dir/usr/bin/kubeadm"
`;

const kubeadmFetchedStub = sh`
v=$(cat "$S/fetched-kubeadm")
case "\${1:-} \${2:-}" in
  "version -o") echo "$v" ;;
  "upgrade plan")
    if [ -e "$S/plan-reject" ]; then
      echo "[upgrade/version] FATAL: the --version argument is invalid due to these fatal errors: - Specified version to upgrade to \"\${3:-}\" is too high; kubeadm can upgrade only 1 minor version at a time" >&2
      exit 1
    fi
    echo "Upgrade to the latest stable version: kube-apiserver \${3:-}"
    ;;
esac
`;

/** Every stub the upgrade scripts call, with the injected-failure hook first. */
export function upgradeStubs(extra: Record<string, string> = {}): Record<string, string> {
  const bodies: Record<string, string> = {
    kubectl: kubectlStub,
    kubeadm: setManifests + kubeadmStub,
    kubelet: kubeletStub,
    systemctl: systemctlStub,
    "apt-get": aptGetStub,
    "apt-mark": 'stub_default "$@"',
    curl: 'stub_default "$@"',
    gpg: 'stub_default "$@"',
    "dpkg-deb": dpkgDebStub,
    "kubeadm-fetched": kubeadmFetchedStub,
    ...extra,
  };
  return Object.fromEntries(Object.entries(bodies).map(([name, body]) => [name, failHook + body]));
}

export interface ClusterSeed {
  /** The version every node and the apiserver run ("1.35.9"). */
  version: string;
  /** Nodes of the cluster as the API lists them; kubelet version per node defaults to `version`. */
  nodes: Record<string, { kubelet?: string; ready?: string; cordoned?: boolean }>;
  /** This machine is a control plane (admin.conf, static pod manifests at `controlPlaneVersion ?? version`). */
  controlPlane?: boolean;
  controlPlaneVersion?: string;
  /** Installed Kubernetes packages on this machine (default: all three at `version`). */
  packages?: Record<string, string>;
  /** The apiserver version `kubectl version` reports (default `version`). */
  serverVersion?: string;
  /** kubeadm-config's kubernetesVersion (default: serverVersion), behind it after a partial `kubeadm upgrade apply`. */
  clusterConfigVersion?: string;
  /** More files on this machine: node path -> content (0600). */
  extraFiles?: Record<string, string>;
  /** The node this machine's kubelet is (its client certificate); none: a machine without kubelet credentials. */
  identity?: string;
}

const minor = (v: string) => v.split(".").slice(0, 2).join(".");

/** Prepares a scratch root as a node of a cluster at one version (as prepare/init/join leave it). */
export function seedCluster(seed: ClusterSeed): (root: string) => void {
  return (root) => {
    const state = stubState(root);
    const v = seed.version;
    seedPackages(root, seed.packages ?? { kubeadm: `${v}-1.1`, kubelet: `${v}-1.1`, kubectl: `${v}-1.1` });
    seedHolds(root, ["kubeadm", "kubelet", "kubectl"]);
    writeNodeFile(root, "/etc/apt/keyrings/kubernetes-apt-keyring.gpg", `DEARMORED(key of v${minor(v)})\n`);
    writeNodeFile(
      root,
      "/etc/apt/sources.list.d/kubernetes.list",
      `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v${minor(v)}/deb/ /\n`,
    );
    writeNodeFile(root, "/etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n# stub kubelet.conf\n");
    writeNodeFile(root, "/var/lib/kubelet/config.yaml", `# kubelet configuration written by kubeadm at v${v}\n`);
    if (seed.controlPlane) {
      const cpv = seed.controlPlaneVersion ?? v;
      writeNodeFile(root, "/etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n# stub admin.conf\n", 0o600);
      for (const component of ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
        writeNodeFile(
          root,
          `/etc/kubernetes/manifests/${component}.yaml`,
          `apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: ${component}\n    image: registry.k8s.io/${component}:v${cpv}\n`,
        );
      }
    }
    for (const [path, content] of Object.entries(seed.extraFiles ?? {})) writeNodeFile(root, path, content, 0o600);
    if (seed.identity !== undefined) seedKubeletIdentity(root, seed.identity);
    mkdirSync(join(state, "k8s"), { recursive: true });
    writeFileSync(join(state, "server-version"), `v${seed.serverVersion ?? v}`);
    if (seed.clusterConfigVersion) writeFileSync(join(state, "cluster-config-version"), `v${seed.clusterConfigVersion}`);
    for (const [name, n] of Object.entries(seed.nodes)) {
      writeFileSync(join(state, "k8s", `${name}.kubelet`), `v${n.kubelet ?? v}`);
      writeFileSync(join(state, "k8s", `${name}.ready`), n.ready ?? "True");
      if (n.cordoned) writeFileSync(join(state, "k8s", `${name}.cordoned`), "");
    }
  };
}
