// The stubs of the end-to-end suite's hosts (test/support/stubHosts.ts), over the upgrade stubs of
// test/support/upgradeStubs.ts: a host's kubeadm, kubelet, apt-get and systemctl are RECORDING STUBS, but what they do
// to "the cluster" they do to a REAL control plane (test/support/controlPlane.ts: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok for the nodes), with the REAL kubectl:
// - kubectl is the real one. Only `kubectl exec` into a static pod is answered by the etcdctl stub (kwok's nodes run no
//   containers): "endpoint health" reports a healthy member.
// - kubeadm init copies the real control plane's PKI to the host (as if init had made it), writes its admin.conf, stores
//   the init config's ClusterConfiguration as kube-system/kubeadm-config and registers the Node (kwok keeps it Ready,
//   its kubelet version the installed kubelet package's); `kubeadm upgrade apply` moves kubeadm-config's
//   kubernetesVersion. `kubeadm token create` is the REAL kubeadm against the real apiserver, and a join is refused
//   unless its token is a live bootstrap token there (so a join proves its credentials were minted for it); the join
//   registers the Node. `kubeadm kubeconfig user` signs a real client certificate with the real CA.
// - systemctl restart kubelet makes the Node report the installed kubelet package's version.
// - apt-get refuses a version while the host's state/refuse-version names it (a package source without it).
// - curl serves the etcd release tarball of the snapshot-tools step from a tarball made here, whose etcdctl and etcdutl
//   are recording stubs that report the pinned version; its SHA256SUMS is real (the step's checksum check runs).
// The environment every step gets (StubHostsOptions.env) carries the real tools' paths: clusterEnv().
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { failHook, upgradeStubs } from "./upgradeStubs";

function sh(strings: TemplateStringsArray): string {
  return strings.raw.join("").replace(/\\\$\{/g, "${");
}

/** What the host stubs need to know of the real cluster (each path on this machine). */
export interface RealCluster {
  kubectl: string;
  kubeadm: string;
  /** The real control plane's admin.conf (its server: the address the hosts reach). */
  adminKubeconfig: string;
  /** The real control plane's PKI directory (ca.crt, ca.key, etcd/...). */
  pki: string;
  /** Where the fake etcd release lives (etcdReleaseTarball). */
  etcdRelease: string;
}

export function clusterEnv(c: RealCluster): Record<string, string> {
  return { E2E_KUBECTL: c.kubectl, E2E_KUBEADM: c.kubeadm, E2E_CLUSTER: c.adminKubeconfig, E2E_PKI: c.pki, E2E_ETCD_RELEASE: c.etcdRelease };
}

/** The etcdctl of static pods and of the snapshot tools: a recording stub of a healthy member at `version`. */
const etcdctlStub = (version: string) => `
case " $* " in
  *" version "*) echo "etcdctl version: ${version}"; echo "API version: 3.6" ;;
  *" endpoint health "*) echo "https://127.0.0.1:2379 is healthy: successfully committed proposal: took = 2.1ms" ;;
  *" snapshot save "*)
    out=""; prev=""
    for a in "$@"; do if [ "$prev" = save ]; then out=$a; fi; prev=$a; done
    printf 'stub etcd snapshot %s\\n' "$(date +%s%N)" >"$out"
    echo "Snapshot saved at $out" ;;
  *" get "*) echo '{"header":{"revision":4242},"count":42}' ;;
esac
`;

const etcdutlStub = (version: string) => `
case " $* " in
  *" version "*) echo "etcdutl version: ${version}"; echo "API version: 3.6" ;;
  *" snapshot status "*) echo '{"hash":305419896,"revision":4242,"totalKey":42,"totalSize":20480,"version":"3.6.0"}' ;;
esac
`;

/**
 * Writes DIR/etcd-vVERSION-linux-amd64.tar.gz (etcdctl and etcdutl: recording stubs reporting VERSION, logging their
 * calls to the host's stub calls file) and DIR/SHA256SUMS listing it, as the etcd release publishes them.
 */
export function etcdReleaseTarball(dir: string, version: string): void {
  const top = `etcd-v${version}-linux-amd64`;
  const work = join(dir, "work", top);
  mkdirSync(work, { recursive: true });
  const stub = (name: string, body: string) =>
    [
      "#!/usr/bin/env bash",
      `# recording stub for ${name} ${version} (test/support/clusterStubs.ts): the snapshot tools of the end-to-end hosts`,
      `printf '{"cmd":"${name}","args":["%s"]}\\n' "$*" >>"\${KUBEADM_HA_STUB_CALLS:-/dev/null}"`,
      body.trim(),
      "",
    ].join("\n");
  writeFileSync(join(work, "etcdctl"), stub("etcdctl", etcdctlStub(version)), { mode: 0o755 });
  writeFileSync(join(work, "etcdutl"), stub("etcdutl", etcdutlStub(version)), { mode: 0o755 });
  const tarball = join(dir, `${top}.tar.gz`);
  execFileSync("tar", ["-czf", tarball, "-C", join(dir, "work"), top]);
  const sha = createHash("sha256").update(readFileSync(tarball)).digest("hex");
  writeFileSync(join(dir, "SHA256SUMS"), `${sha}  ${top}.tar.gz\n`);
}

const clusterFunctions = sh`
cluster() { "$E2E_KUBECTL" --kubeconfig "$E2E_CLUSTER" --request-timeout=20s "$@"; }
e2e_flag() { local want=$1; shift; while [ $# -gt 0 ]; do if [ "$1" = "$want" ]; then echo "$2"; return; fi; shift; done; }
# config_doc FILE KIND: the YAML document of that kind in a multi-document kubeadm config.
config_doc() { awk -v kind="kind: $2" 'BEGIN { RS = "\n---\n" } index($0, kind) { print; exit }' "$1"; }
node_name_of() { config_doc "$1" "$2" | awk '/^nodeRegistration:/ { n = 1; next } n && /^[^[:space:]]/ { n = 0 } n && /^[[:space:]]+name:/ { print $2; exit }'; }
# register_node NAME CONTROL_PLANE(true|false): the Node as the node's kubelet would create it, kwok-managed.
register_node() {
  local v
  v=$(cat "$S/pkg/kubelet"); v="v\${v%%-*}"
  cluster apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $1
  labels:
    kubernetes.io/hostname: $1
    kubernetes.io/os: linux
    kwok.x-k8s.io/managed: "true"
$( [ "$2" = true ] && echo '    node-role.kubernetes.io/control-plane: ""' )
status:
  capacity: { cpu: "2", memory: 8Gi, pods: "110" }
  allocatable: { cpu: "2", memory: 8Gi, pods: "110" }
  nodeInfo: { kubeletVersion: $v, architecture: amd64, operatingSystem: linux }
EOF
  if [ "$2" = true ]; then
    cluster patch node "$1" --type=merge -p '{"spec":{"taints":[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]}}' >/dev/null
  fi
}
# cluster_version: the kubernetesVersion kubeadm-config records (empty before init).
cluster_version() {
  cluster -n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}' 2>/dev/null |
    sed -n -E 's/^kubernetesVersion:[[:space:]]*"?v?([0-9]+\.[0-9]+\.[0-9]+).*/v\1/p' | head -n 1
}
# write_manifests VERSION [etcd]: the static pod manifests kubeadm writes, with its images at VERSION.
write_manifests() {
  local c
  mkdir -p "$R/etc/kubernetes/manifests"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: kube-system\nspec:\n  containers:\n  - name: %s\n    image: registry.k8s.io/%s:%s\n' "$c" "$c" "$c" "$1" >"$R/etc/kubernetes/manifests/$c.yaml"
  done
  printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n  - name: etcd\n    image: registry.k8s.io/etcd:3.6.6-0\n' >"$R/etc/kubernetes/manifests/etcd.yaml"
}
# mirror_pods: what the kubelet publishes of this node's static pods: a mirror pod kube-system/COMPONENT-NODE per
# manifest, with the manifest's image, owned by the Node (kwok runs them on its node: Running and Ready).
mirror_pods() {
  local f c image uid
  uid=$(cluster get node "$STUB_NODE" -o 'jsonpath={.metadata.uid}')
  for f in "$R"/etc/kubernetes/manifests/*.yaml; do
    [ -e "$f" ] || continue
    c=$(basename "$f" .yaml)
    image=$(sed -n -E 's/^[[:space:]]*image:[[:space:]]*([^[:space:]]+).*/\1/p' "$f" | head -n 1)
    # As the kubelet does on a changed manifest: the old mirror pod goes (its annotation is immutable), a new one comes.
    [ "$(cluster -n kube-system get pod "$c-$STUB_NODE" -o 'jsonpath={.spec.containers[0].image}' 2>/dev/null || true)" != "$image" ] || continue
    cluster -n kube-system delete pod "$c-$STUB_NODE" --ignore-not-found --timeout=60s >/dev/null
    cluster create -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $c-$STUB_NODE
  namespace: kube-system
  labels: { component: $c, tier: control-plane }
  annotations: { kubernetes.io/config.mirror: "$(sha256sum "$f" | cut -c1-32)", kubernetes.io/config.source: file }
  ownerReferences: [{ apiVersion: v1, kind: Node, name: $STUB_NODE, uid: $uid, controller: true }]
spec:
  nodeName: $STUB_NODE
  tolerations: [{ operator: Exists }]
  containers: [{ name: $c, image: $image }]
EOF
  done
}
# kubelet_conf NAME: the kubelet's kubeconfig (a client certificate system:node:NAME, group system:nodes, signed by the
# cluster CA), at the apiserver the cluster's admin.conf names.
kubelet_conf() {
  local work server
  work=$(mktemp -d)
  server=$(sed -n -E 's/^[[:space:]]*server:[[:space:]]*//p' "$E2E_CLUSTER" | head -n 1)
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/key" -out "$work/csr" -subj "/O=system:nodes/CN=system:node:$1" 2>/dev/null
  openssl x509 -req -in "$work/csr" -CA "$E2E_PKI/ca.crt" -CAkey "$E2E_PKI/ca.key" -CAcreateserial -CAserial "$work/serial" -days 1 -out "$work/crt" 2>/dev/null
  mkdir -p "$R/etc/kubernetes"
  printf 'apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: %s\n  name: default-cluster\ncontexts:\n- context:\n    cluster: default-cluster\n    namespace: default\n    user: default-auth\n  name: default-context\ncurrent-context: default-context\nkind: Config\nusers:\n- name: default-auth\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n' \
    "$(base64 -w0 "$E2E_PKI/ca.crt")" "$server" "$(base64 -w0 "$work/crt")" "$(base64 -w0 "$work/key")" >"$R/etc/kubernetes/kubelet.conf"
  chmod 0600 "$R/etc/kubernetes/kubelet.conf"
  rm -rf "$work"
}
install_admin_conf() {
  mkdir -p "$R/etc/kubernetes"
  install -m 0600 "$E2E_CLUSTER" "$R/etc/kubernetes/admin.conf"
}
`;

/** kubeadm, before the upgrade stubs' kubeadm runs (see the file comment). */
const kubeadmBefore = sh`
case "\${1:-} \${2:-}" in
  "token create") exec "$E2E_KUBEADM" "$@" ;;
  "init phase")
    if [ "\${3:-}" = upload-certs ]; then echo "[upload-certs] Using certificate key:"; e2e_flag --certificate-key "$@"; fi
    exit 0 ;;
  "kubeconfig user")
    config=$(e2e_flag --config "$@")
    endpoint=$(sed -n -E 's/^controlPlaneEndpoint:[[:space:]]*"?([^"]*)"?$/\1/p' "$config" | head -n 1)
    work=$(mktemp -d)
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/key" -out "$work/csr" \
      -subj "/O=$(e2e_flag --org "$@")/CN=$(e2e_flag --client-name "$@")" 2>/dev/null
    hours=$(e2e_flag --validity-period "$@"); hours=\${hours%h}
    openssl x509 -req -in "$work/csr" -CA "$R/etc/kubernetes/pki/ca.crt" -CAkey "$R/etc/kubernetes/pki/ca.key" \
      -CAcreateserial -CAserial "$work/serial" -days $(( (\${hours:-8760} + 23) / 24 )) -out "$work/crt" 2>/dev/null
    user=$(e2e_flag --client-name "$@")
    printf 'apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: https://%s\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: %s\n  name: %s@kubernetes\ncurrent-context: %s@kubernetes\nkind: Config\nusers:\n- name: %s\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n' \
      "$(base64 -w0 "$R/etc/kubernetes/pki/ca.crt")" "$endpoint" "$user" "$user" "$user" "$user" "$(base64 -w0 "$work/crt")" "$(base64 -w0 "$work/key")"
    rm -rf "$work"
    exit 0 ;;
esac
case "\${1:-}" in
  init)
    # What init would have made: the cluster's PKI (the real control plane's).
    mkdir -p "$R/etc/kubernetes"
    [ -e "$R/etc/kubernetes/manifests/kube-apiserver.yaml" ] || cp -R "$E2E_PKI/." "$R/etc/kubernetes/pki/"
    ;;
  join)
    config=$(e2e_flag --config "$@")
    token=$(config_doc "$config" JoinConfiguration | sed -n -E 's/^[[:space:]]+token:[[:space:]]*"?([a-z0-9.]+)"?$/\1/p' | head -n 1)
    id=\${token%%.*}
    have=$(cluster -n kube-system get secret "bootstrap-token-$id" -o 'jsonpath={.data.token-secret}' 2>/dev/null | base64 -d 2>/dev/null || true)
    if [ -z "$token" ] || [ "$have" != "\${token#*.}" ]; then
      echo "error execution phase preflight: couldn't validate the identity of the API Server: token id \"$id\" is invalid for this cluster or it has expired" >&2
      exit 1
    fi
    ;;
esac
`;

/** kubeadm, after the upgrade stubs' kubeadm succeeded. */
const kubeadmAfter = sh`
case "\${1:-}" in
  init)
    config=$(e2e_flag --config "$@")
    install_admin_conf
    config_doc "$config" ClusterConfiguration >"$S/cluster-configuration.yaml"
    cluster -n kube-system create configmap kubeadm-config --from-file=ClusterConfiguration="$S/cluster-configuration.yaml" \
      --dry-run=client -o yaml | cluster apply -f - >/dev/null
    write_manifests "$(cluster_version)"
    register_node "$(node_name_of "$config" InitConfiguration)" true
    kubelet_conf "$(node_name_of "$config" InitConfiguration)"
    mirror_pods
    ;;
  join)
    config=$(e2e_flag --config "$@")
    cp=false
    if config_doc "$config" JoinConfiguration | grep -q '^controlPlane:'; then cp=true; install_admin_conf; write_manifests "$(cluster_version)"; fi
    register_node "$(node_name_of "$config" JoinConfiguration)" "$cp"
    kubelet_conf "$(node_name_of "$config" JoinConfiguration)"
    if [ "$cp" = true ]; then mirror_pods; fi
    ;;
  upgrade)
    if [ "\${2:-}" = apply ]; then
      target=\${!#}
      cluster -n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}' >"$S/cluster-configuration.yaml"
      sed -i -E "s/^kubernetesVersion:.*/kubernetesVersion: $target/" "$S/cluster-configuration.yaml"
      cluster -n kube-system create configmap kubeadm-config --from-file=ClusterConfiguration="$S/cluster-configuration.yaml" \
        --dry-run=client -o yaml | cluster apply -f - >/dev/null
    fi
    case "\${2:-}" in apply | node) mirror_pods ;; esac
    ;;
esac
`;

const kubectlStub = sh`
# kubectl version: the server version is the one of the static pods kubeadm wrote, as kubeadm-config records it (the real
# apiserver runs one version whatever the stack's); the rest is the real kubectl's answer.
words=()
skip=0
for a in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case $a in --kubeconfig | --server | -n | --namespace | --request-timeout) skip=1 ;; -*) ;; *) words+=("$a") ;; esac
done
if [ "\${words[0]:-}" = version ] && [[ " $* " != *" --client "* ]]; then
  out=$("$E2E_KUBECTL" "$@") || exit $?
  v=$(cluster_version)
  if [ -n "$v" ]; then
    out=$(printf '%s\n' "$out" | awk -v v="$v" '/"serverVersion"/ { s = 1 } s && /"gitVersion"/ { sub(/"v[0-9][^"]*"/, "\"" v "\""); s = 0 } { print }')
  fi
  printf '%s\n' "$out"
  exit 0
fi
for a in "$@"; do
  if [ "$a" = exec ]; then
    while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
    shift
    exec "$@"
  fi
done
exec "$E2E_KUBECTL" "$@"
`;

const systemctlStub = sh`
if [ "\${1:-}" = restart ] && [ "\${2:-}" = kubelet ]; then
  v=$(cat "$S/pkg/kubelet"); v="v\${v%%-*}"
  cluster patch node "$STUB_NODE" --subresource=status --type=merge -p "{\"status\":{\"nodeInfo\":{\"kubeletVersion\":\"$v\"}}}" >/dev/null 2>&1 || true
fi
stub_default "$@"
`;

const curlStub = sh`
for a in "$@"; do
  case $a in
    https://github.com/etcd-io/etcd/releases/download/*)
      out=$(e2e_flag -o "$@")
      cp "$E2E_ETCD_RELEASE/\${a##*/}" "$out"
      exit 0 ;;
    https://127.0.0.1:2379/) exit 0 ;;
  esac
done
stub_default "$@"
`;

/** apt-get: while the host's state has a file refuse-version, its package source lacks that version (a fault to inject). */
const aptGetFault = sh`
if [ -f "$S/refuse-version" ]; then
  refused=$(cat "$S/refuse-version")
  for a in "$@"; do
    case $a in *="$refused"*) echo "E: Version '\${a#*=}' for '\${a%%=*}' was not found" >&2; exit 100 ;; esac
  done
fi
`;

/** Every stub of an end-to-end host (the upgrade stubs' injected-failure hook first in each). */
export function clusterStubs(etcdVersion: string): Record<string, string> {
  const upgrade = upgradeStubs();
  // The upgrade stubs' kubeadm (failure hook included) runs in a subshell between the cluster's two halves.
  const kubeadm = [failHook, clusterFunctions, kubeadmBefore, "rc=0", "(", upgrade.kubeadm, ') || rc=$?', '[ "$rc" = 0 ] || exit "$rc"', kubeadmAfter].join("\n");
  return {
    ...upgrade,
    kubeadm,
    kubectl: failHook + clusterFunctions + kubectlStub,
    systemctl: failHook + clusterFunctions + systemctlStub,
    curl: failHook + clusterFunctions + curlStub,
    etcdctl: failHook + etcdctlStub(etcdVersion),
    "apt-get": aptGetFault + upgrade["apt-get"],
  };
}
