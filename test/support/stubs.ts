// Runs a node script against a scratch root with RECORDING STUB binaries for everything that cannot (kubeadm,
// kubectl, kubelet's packages) or must not (apt-get, systemctl, swapoff, modprobe, sysctl) run on a test machine.
//
// Layout of one harness directory (under os.tmpdir(), never anywhere else):
//   <base>/root        KUBEADM_HA_ROOT: every path a script touches is "$R/..." inside it
//   <base>/state       what the stubs remember (a tiny dpkg database, holds, node conditions): STUB_STATE
//   <base>/bin         the stubs, first on PATH; each appends {"cmd","args"} as one JSON line to <base>/calls.jsonl
//   <base>/defaults    the default behaviours, which an override can call as `stub_default "$@"`
// Real tools stay real: coreutils, sed, grep, awk, cmp, openssl, bash.
import { execFileSync, spawn } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";

export interface StubCall {
  cmd: string;
  args: string[];
}

export interface StubRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Every stub invocation of this run, in order. */
  calls: StubCall[];
  /** The scratch root (KUBEADM_HA_ROOT). Pass it back as `root` to run again on the same node. */
  root: string;
}

export interface StubOptions {
  stdin?: string;
  /** name -> bash body replacing the default behaviour (the call is still recorded); `stub_default "$@"` runs it. */
  stubs?: Record<string, string>;
  env?: Record<string, string>;
  /** Prepares the node before the run (root is the scratch root; stubState(root) is the stubs' memory). */
  setup?: (root: string) => void;
  /** Reuse the node of an earlier run (its files and stub state) instead of a fresh one. */
  root?: string;
  /** Kills the script after this long (default 30 s): a hanging script fails the test instead of the suite. */
  timeoutMs?: number;
  /**
   * The system part of PATH after the stubs (default: this process's PATH). Tests of "a tool the node lacks" pass
   * "/usr/bin:/bin" so a tool this machine happens to have elsewhere (an aws shim) stays out of reach.
   */
  systemPath?: string;
}

/** The stubs' memory of a node whose scratch root is `root`. */
export function stubState(root: string): string {
  return join(dirname(root), "state");
}

/** Marks packages installed ("kubeadm" -> "1.34.2-1.1"), as the apt-get stub would. */
export function seedPackages(root: string, packages: Record<string, string>): void {
  mkdirSync(join(stubState(root), "pkg"), { recursive: true });
  for (const [name, version] of Object.entries(packages)) writeFileSync(join(stubState(root), "pkg", name), version);
}

export function seedHolds(root: string, packages: string[]): void {
  mkdirSync(join(stubState(root), "hold"), { recursive: true });
  for (const name of packages) writeFileSync(join(stubState(root), "hold", name), "");
}

/** What `kubectl get nodes` reports: name -> Ready condition status ("True", "False", "Unknown"). */
export function seedNodes(root: string, nodes: Record<string, string>): void {
  mkdirSync(stubState(root), { recursive: true });
  writeFileSync(
    join(stubState(root), "nodes"),
    Object.entries(nodes)
      .map(([name, status]) => `${name} ${status}\n`)
      .join(""),
  );
}

/** Writes a file under the scratch root (path as on the node, e.g. "/etc/kubernetes/admin.conf"). */
export function writeNodeFile(root: string, path: string, content: string, mode = 0o644): string {
  const file = nodePath(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content, { mode });
  chmodSync(file, mode);
  return file;
}

/** The scratch-root location of a node path. */
export function nodePath(root: string, path: string): string {
  return join(root, path);
}

/** A real self-signed cluster CA at $R/etc/kubernetes/pki/ca.{crt,key}, made with openssl as kubeadm would. */
export function makeCaCert(root: string): string {
  const pki = nodePath(root, "/etc/kubernetes/pki");
  mkdirSync(pki, { recursive: true });
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(pki, "ca.key"), "-out", join(pki, "ca.crt"),
      "-subj", "/CN=kubernetes", "-days", "1"],
    { stdio: "ignore" },
  );
  return join(pki, "ca.crt");
}

const kubeletCerts = new Map<string, string>();
/**
 * A real client certificate as a kubelet of node NAME holds it (CN system:node:NAME, O system:nodes), made with
 * openssl once per name and process.
 */
export function kubeletClientCertPem(name: string): string {
  let pem = kubeletCerts.get(name);
  if (pem === undefined) {
    pem = execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "/dev/null",
        "-subj", `/O=system:nodes/CN=system:node:${name}`, "-days", "1"],
      { stdio: ["ignore", "pipe", "ignore"] },
    ).toString();
    kubeletCerts.set(name, pem);
  }
  return pem;
}

/** Makes this machine's kubelet node NAME (its rotated client certificate, where kubeadm's kubelet keeps it). */
export function seedKubeletIdentity(root: string, name: string): void {
  writeNodeFile(root, "/var/lib/kubelet/pki/kubelet-client-current.pem", kubeletClientCertPem(name), 0o600);
}

/** A self-signed PEM certificate (EC) with this subject, valid `days` (whole, >= 1) from now. */
export function certificatePem(subject: string, days: number): string {
  return execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "/dev/null", "-subj", subject, "-days", String(days)],
    { stdio: ["ignore", "pipe", "ignore"] },
  ).toString();
}

/**
 * A control plane's kubeadm certificates (under /etc/kubernetes/pki) and kubeconfigs with embedded client
 * certificates, each expiring `days` from now, except `expiring` (a file -> days).
 */
export function seedControlPlaneCertificates(root: string, o: { days: number; stackedEtcd?: boolean; expiring?: Record<string, number> }): void {
  const files = ["apiserver.crt", "apiserver-kubelet-client.crt", "front-proxy-client.crt", ...(o.stackedEtcd === false ? [] : ["apiserver-etcd-client.crt", "etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt"])];
  writeNodeFile(root, "/etc/kubernetes/pki/ca.crt", certificatePem("/CN=kubernetes", 3650));
  for (const f of files) writeNodeFile(root, `/etc/kubernetes/pki/${f}`, certificatePem(`/CN=${f.replace("/", "-")}`, o.expiring?.[f] ?? o.days));
  for (const f of ["admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"]) {
    const data = Buffer.from(certificatePem(`/CN=${f.replace("/", "-")}`, o.expiring?.[f] ?? o.days)).toString("base64");
    writeNodeFile(root, `/etc/kubernetes/${f}`, `apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    client-certificate-data: ${data}\n    client-key-data: S0VZ\n`, 0o600);
  }
}

/** kubeadm's discovery hash computed independently of any script: sha256 of the DER SubjectPublicKeyInfo. */
export function caCertHashOf(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The stubs. Each default simulates a fresh Ubuntu 24.04 node; the state directory is what changes between runs.
// ---------------------------------------------------------------------------------------------------------------

/** Bash source as written, for stub bodies: `\${` in the literal is bash's `${`; nothing is interpolated. */
function sh(strings: TemplateStringsArray): string {
  return strings.raw.join("").replace(/\\\$\{/g, "${");
}

const kubeadmStub = sh`
flag() { local want=$1; shift; while [ $# -gt 0 ]; do if [ "$1" = "$want" ]; then echo "$2"; return; fi; shift; done; }
# kubelet_identity CONFIG: the kubelet's client certificate of the node CONFIG registers (nodeRegistration.name), as
# the kubelet holds it once it runs.
kubelet_identity() {
  local name
  name=$(awk '/^nodeRegistration:/ { n = 1; next } n && /^[^[:space:]]/ { n = 0 } n && /^[[:space:]]+name:/ { print $2; exit }' "$1")
  [ -n "$name" ] || return 0
  mkdir -p "$R/var/lib/kubelet/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null \
    -subj "/O=system:nodes/CN=system:node:$name" -days 1 -out "$R/var/lib/kubelet/pki/kubelet-client-current.pem" 2>/dev/null
}
case "\${1:-}" in
  version)
    v=$(cat "$S/pkg/kubeadm" 2>/dev/null) || { echo "kubeadm: command not found" >&2; exit 127; }
    echo "v\${v%%-*}"
    ;;
  init)
    config=$(flag --config "$@")
    [ -r "$config" ] || { echo "error: unable to read config from \"$config\"" >&2; exit 1; }
    # What kubeadm read, and the file's mode (the step removes the file when it ends).
    cp "$config" "$S/kubeadm-init-config"; stat -c %a "$config" >"$S/kubeadm-init-config-mode"
    if [ -e "$R/etc/kubernetes/manifests/kube-apiserver.yaml" ]; then
      echo "[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]: /etc/kubernetes/manifests/kube-apiserver.yaml already exists" >&2
      exit 1
    fi
    token=$(sed -n -E 's/^.*[[:space:]]token:[[:space:]]*"?([^"]*)"?$/\1/p' "$config" | head -n 1)
    key=$(sed -n -E 's/^certificateKey:[[:space:]]*"?([^"]*)"?$/\1/p' "$config" | head -n 1)
    mkdir -p "$R/etc/kubernetes/pki" "$R/etc/kubernetes/manifests"
    if [ ! -e "$R/etc/kubernetes/pki/ca.crt" ]; then
      openssl req -x509 -newkey rsa:2048 -nodes -keyout "$R/etc/kubernetes/pki/ca.key" \
        -out "$R/etc/kubernetes/pki/ca.crt" -subj /CN=kubernetes -days 1 2>/dev/null
    fi
    echo "[init] Using Kubernetes version: v1.35.9"
    echo "[preflight] Running pre-flight checks"
    for f in admin super-admin kubelet controller-manager scheduler; do
      printf 'apiVersion: v1\nkind: Config\n# stub %s.conf\n' "$f" >"$R/etc/kubernetes/$f.conf"
    done
    for m in etcd kube-apiserver kube-controller-manager kube-scheduler; do echo "# $m" >"$R/etc/kubernetes/manifests/$m.yaml"; done
    kubelet_identity "$config"
    # Prints the secrets whatever the flags say: what reaches the log is up to the script's filter.
    echo "[upload-certs] Using certificate key:"
    echo "$key"
    echo "[bootstrap-token] Using token: $token"
    echo "Your Kubernetes control-plane has initialized successfully!"
    echo "You can now join any number of control-plane nodes running the following command on each as root:"
    echo ""
    echo "  kubeadm join lb.example:6443 --token $token \\"
    printf '\t--discovery-token-ca-cert-hash sha256:%s \\\n' "$(printf '%064d' 0)"
    printf '\t--control-plane --certificate-key %s\n' "$key"
    echo ""
    echo "Please note that the certificate-key gives access to cluster sensitive data, keep it secret!"
    echo "Then you can join any number of worker nodes by running the following on each as root:"
    echo "kubeadm join lb.example:6443 --token $token \\"
    printf '\t--discovery-token-ca-cert-hash sha256:%s\n' "$(printf '%064d' 0)"
    ;;
  join)
    config=$(flag --config "$@")
    [ -r "$config" ] || { echo "error: unable to read config from \"$config\"" >&2; exit 1; }
    cp "$config" "$S/kubeadm-join-config"; stat -c %a "$config" >"$S/kubeadm-join-config-mode"
    if [ -e "$R/etc/kubernetes/kubelet.conf" ] || [ -n "$(ls -A "$R/etc/kubernetes/manifests" 2>/dev/null)" ]; then
      echo "[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists" >&2
      exit 1
    fi
    echo "[preflight] Running pre-flight checks"
    mkdir -p "$R/etc/kubernetes/pki" "$R/etc/kubernetes/manifests"
    [ -e "$R/etc/kubernetes/pki/ca.crt" ] || echo "# stub ca.crt" >"$R/etc/kubernetes/pki/ca.crt"
    printf 'apiVersion: v1\nkind: Config\n# stub kubelet.conf\n' >"$R/etc/kubernetes/kubelet.conf"
    kubelet_identity "$config"
    if grep -q '^controlPlane:' "$config"; then
      printf 'apiVersion: v1\nkind: Config\n# stub admin.conf\n' >"$R/etc/kubernetes/admin.conf"
      for m in etcd kube-apiserver kube-controller-manager kube-scheduler; do echo "# $m" >"$R/etc/kubernetes/manifests/$m.yaml"; done
    fi
    echo "This node has joined the cluster"
    ;;
  config)
    # config images list: the images of --kubernetes-version from --image-repository, with the pause tag the real
    # kubeadm names (1.35: 3.10.1, 1.36: 3.10.2; test/real/containerdConfig.test.ts checks them against the real one).
    [ "\${2:-} \${3:-}" = "images list" ] || exit 0
    v=$(flag --kubernetes-version "$@"); repo=$(flag --image-repository "$@"); repo=\${repo:-registry.k8s.io}
    case $v in v1.36.*) pause=3.10.2 ;; v1.35.*) pause=3.10.1 ;; *) pause=3.10 ;; esac
    for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do echo "$repo/$c:$v"; done
    echo "$repo/pause:$pause"
    ;;
  certs)
    # certs renew all: every certificate kubeadm manages (not the CAs) signed again for a year, as kubeadm does.
    [ "\${2:-} \${3:-}" = "renew all" ] || exit 0
    for f in "$R"/etc/kubernetes/pki/*.crt "$R"/etc/kubernetes/pki/etcd/*.crt; do
      [ -e "$f" ] || continue
      case $(basename "$f") in ca.crt | front-proxy-ca.crt) continue ;; esac
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null -subj "/CN=$(basename "$f" .crt)" -days 365 -out "$f" 2>/dev/null
      echo "certificate $(basename "$f" .crt) renewed"
    done
    for f in "$R"/etc/kubernetes/*.conf; do
      grep -q 'client-certificate-data:' "$f" 2>/dev/null || continue
      data=$(openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null -subj "/CN=$(basename "$f")" -days 365 2>/dev/null | base64 -w0)
      sed -i -E "s#^([[:space:]]*client-certificate-data:[[:space:]]*).*#\1$data#" "$f"
      echo "certificate embedded in the kubeconfig file for $(basename "$f") renewed"
    done
    echo "Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates."
    ;;
  kubeconfig)
    # kubeconfig user: a kubeconfig whose client certificate (O=--org, CN=--client-name) lives --validity-period.
    [ "\${2:-}" = user ] || exit 0
    config=$(flag --config "$@")
    [ -r "$config" ] || { echo "error: unable to read config from \"$config\"" >&2; exit 1; }
    cp "$config" "$S/kubeconfig-user-config"
    hours=$(flag --validity-period "$@"); hours=\${hours%h}
    endpoint=$(sed -n -E 's/^controlPlaneEndpoint:[[:space:]]*//p' "$config")
    cert=$(openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null \
      -subj "/O=$(flag --org "$@")/CN=$(flag --client-name "$@")" -days $((hours / 24)) 2>/dev/null | base64 -w0)
    printf 'apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0E=\n    server: https://%s\n  name: test\ncontexts:\n- context:\n    cluster: test\n    user: %s\n  name: %s@test\ncurrent-context: %s@test\nkind: Config\nusers:\n- name: %s\n  user:\n    client-certificate-data: %s\n    client-key-data: S0VZ\n' \
      "$endpoint" "$(flag --client-name "$@")" "$(flag --client-name "$@")" "$(flag --client-name "$@")" "$(flag --client-name "$@")" "$cert"
    ;;
  reset)
    rm -rf "$R/etc/kubernetes/manifests" "$R/etc/kubernetes/pki" "$R/var/lib/etcd" "$R/var/lib/kubelet/pki"
    rm -f "$R"/etc/kubernetes/*.conf
    echo "[reset] Deleted contents of the etcd data directory: /var/lib/etcd"
    ;;
esac
`;

const kubectlStub = sh`
sub="" kind="" name=""
while [ $# -gt 0 ]; do
  case $1 in
    get) sub="get"; kind=\${2:-}; if [ $# -ge 3 ] && [ "\${3#-}" = "$3" ]; then name=$3; fi; break ;;
    exec) sub="exec"; break ;;
  esac
  shift
done
case $sub in
  get)
    if [ "$kind" = nodes ] && [ -z "$name" ]; then
      [ -f "$S/nodes" ] && cat "$S/nodes"
      exit 0
    fi
    if [ -f "$S/nodes" ]; then
      status=$(awk -v n="$name" '$1 == n { print $2 }' "$S/nodes")
      [ -n "$status" ] || { echo "Error from server (NotFound): nodes \"$name\" not found" >&2; exit 1; }
      printf '%s' "$status"
    else
      printf True
    fi
    ;;
  exec)
    if [ -e "$S/etcd-unhealthy" ]; then echo "https://10.0.1.11:2379 is unhealthy: failed to commit proposal" >&2; exit 1; fi
    echo "https://10.0.1.10:2379 is healthy: successfully committed proposal: took = 9.1ms"
    echo "https://10.0.1.11:2379 is healthy: successfully committed proposal: took = 10.3ms"
    ;;
esac
`;

const aptGetStub = sh`
[ "\${DEBIAN_FRONTEND:-}" = noninteractive ] || { echo "stub apt-get: DEBIAN_FRONTEND is not noninteractive: would prompt" >&2; exit 100; }
sub="" pkgs=()
while [ $# -gt 0 ]; do
  case $1 in
    -o) shift ;;
    -*) ;;
    update | install | upgrade | remove | purge | download) [ -n "$sub" ] && pkgs+=("$1") || sub=$1 ;;
    *) pkgs+=("$1") ;;
  esac
  shift
done
mkdir -p "$S/pkg"
case $sub in
  update)
    cat "$R"/etc/apt/sources.list.d/*.list >"$S/apt-lists" 2>/dev/null || : >"$S/apt-lists"
    echo "Reading package lists... Done"
    ;;
  install)
    for p in "\${pkgs[@]}"; do
      name=\${p%%=*} ver=""
      case $p in *=*) ver=\${p#*=} ;; esac
      case $name in
        kubelet | kubeadm | kubectl)
          minor=$(printf '%s' "$ver" | sed -n -E 's/^([0-9]+\.[0-9]+)\..*/\1/p')
          if [ -z "$ver" ] || ! grep -q "core:/stable:/v$minor/deb/" "$S/apt-lists" 2>/dev/null; then
            echo "E: Version '$ver' for '$name' was not found" >&2
            exit 100
          fi
          resolved=\${ver//\*/1.1}
          ;;
        *) resolved=\${ver:-1.7.28-0ubuntu1~24.04.1} ;;
      esac
      if [ -e "$S/hold/$name" ] && [ "$(cat "$S/pkg/$name" 2>/dev/null)" != "$resolved" ]; then
        echo "E: Held packages were changed and -y was used without --allow-change-held-packages." >&2
        exit 100
      fi
      echo "Setting up $name ($resolved) ..."
      printf '%s' "$resolved" >"$S/pkg/$name"
    done
    ;;
esac
`;

const aptMarkStub = sh`
mkdir -p "$S/hold"
case "\${1:-}" in
  hold) shift; for p in "$@"; do : >"$S/hold/$p"; echo "$p set on hold."; done ;;
  unhold) shift; for p in "$@"; do rm -f "$S/hold/$p"; echo "Canceled hold on $p."; done ;;
  showhold) ls "$S/hold" ;;
esac
`;

const systemctlStub = sh`
case "\${1:-}" in
  is-active)
    unit=\${!#}
    if [ -e "$S/systemd/$unit.inactive" ]; then [ "\${2:-}" = --quiet ] || echo inactive; exit 3; fi
    [ "\${2:-}" = --quiet ] || echo active
    ;;
esac
`;

const containerdStub = sh`
[ -e "$S/pkg/containerd" ] || { echo "containerd: command not found" >&2; exit 127; }
case "\${1:-}" in
  --version) echo "containerd github.com/containerd/containerd 1.7.28" ;;
  config)
    cat <<'EOF'
version = 2
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.8"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            BinaryName = ""
            NoNewKeyring = false
            SystemdCgroup = false
EOF
    ;;
esac
`;

const curlStub = sh`
out="" url=""
while [ $# -gt 0 ]; do
  case $1 in
    -o) out=$2; shift ;;
    --connect-timeout | --max-time | -m | --retry) shift ;;
    http://* | https://*) url=$1 ;;
  esac
  shift
done
case $url in
  */readyz)
    if [ -e "$R/etc/kubernetes/admin.conf" ]; then printf ok; else echo "curl: (7) Failed to connect to 127.0.0.1 port 6443" >&2; exit 7; fi
    ;;
  https://pkgs.k8s.io/*/Release.key)
    body=$(printf -- '-----BEGIN PGP PUBLIC KEY BLOCK-----\nstub key of %s\n-----END PGP PUBLIC KEY BLOCK-----\n' "$url")
    if [ -n "$out" ]; then printf '%s\n' "$body" >"$out"; else printf '%s\n' "$body"; fi
    ;;
  *) echo "curl: (22) The requested URL returned error: 404" >&2; exit 22 ;;
esac
`;

const gpgStub = sh`
out="" in="" yes=0 dearmor=0
while [ $# -gt 0 ]; do
  case $1 in
    -o | --output) out=$2; shift ;;
    --yes) yes=1 ;;
    --dearmor) dearmor=1 ;;
    -*) ;;
    *) in=$1 ;;
  esac
  shift
done
[ "$dearmor" = 1 ] || exit 0
if [ -n "$out" ] && [ -e "$out" ] && [ "$yes" = 0 ]; then echo "gpg: cannot open '$out': File exists" >&2; exit 2; fi
content=$(if [ -n "$in" ]; then cat "$in"; else cat; fi)
printf 'DEARMORED(%s)\n' "$content" >"\${out:-/dev/stdout}"
`;

const sysctlStub = sh`
case "\${1:-}" in
  -n) echo 1 ;;
  --system) echo "* Applying /etc/sysctl.d/k8s.conf ..." ;;
esac
`;

/** Stubs that only record and succeed. */
const silent = ["swapoff", "modprobe", "crictl", "etcdctl", "helm"];
/** Binaries no step may call on a test machine: recorded, then fail loudly. */
const forbidden = ["sudo", "reboot", "shutdown", "mount", "umount", "swapon", "dpkg", "dpkg-query", "iptables", "ip"];

export const defaultStubs: Record<string, string> = {
  kubeadm: kubeadmStub,
  kubectl: kubectlStub,
  "apt-get": aptGetStub,
  "apt-mark": aptMarkStub,
  systemctl: systemctlStub,
  "cloud-init": `case "\${1:-}" in status) echo "status: done" ;; esac\n`,
  containerd: containerdStub,
  curl: curlStub,
  gpg: gpgStub,
  sysctl: sysctlStub,
  ...Object.fromEntries(silent.map((name) => [name, ""])),
  ...Object.fromEntries(
    forbidden.map((name) => [name, `echo "stub ${name}: not simulated; a step must not call it here" >&2\nexit 99\n`]),
  ),
};

// Records the call: {"cmd": NAME, "args": [...]} on one line. JSON escaping of \ " and control characters.
const recorder = sh`
__json() {
  local s=$1
  s=\${s//\\/\\\\}; s=\${s//\"/\\\"}; s=\${s//$'\n'/\\n}; s=\${s//$'\r'/\\r}; s=\${s//$'\t'/\\t}
  __out+="\"$s\""
}
__out='{"cmd":'; __json "$__STUB_NAME"; __out+=',"args":['
__first=1
for __a in "$@"; do
  if [ "$__first" = 1 ]; then __first=0; else __out+=','; fi
  __json "$__a"
done
__out+=']}'
printf '%s\n' "$__out" >>"$KUBEADM_HA_STUB_CALLS"
`;

function stubFile(name: string, body: string, defaultsDir: string): string {
  return [
    "#!/usr/bin/env bash",
    `# recording stub for ${name} (test/support/stubs.ts)`,
    "set -uo pipefail",
    `__STUB_NAME='${name}'`,
    recorder.trim(),
    'R="${KUBEADM_HA_ROOT:?}"',
    'S="${KUBEADM_HA_STUB_STATE:?}"',
    `stub_default() { "${defaultsDir}/${name}" "$@"; }`,
    body.trim(),
    "",
  ].join("\n");
}

function defaultFile(name: string, body: string): string {
  return ["#!/usr/bin/env bash", "set -uo pipefail", 'R="${KUBEADM_HA_ROOT:?}"', 'S="${KUBEADM_HA_STUB_STATE:?}"',
    body.trim(), ""].join("\n");
}

/** A fresh node: Ubuntu's fstab (with a swap entry, as server installs have), nothing Kubernetes. */
export function newNode(): string {
  const base = mkdtempSync(join(tmpdir(), "kubeadm-ha-stubs-"));
  const root = join(base, "root");
  mkdirSync(root);
  mkdirSync(join(base, "state"));
  writeNodeFile(root, "/etc/fstab", "LABEL=cloudimg-rootfs\t/\text4\tdiscard,errors=remount-ro\t0 1\n/swap.img\tnone\tswap\tsw\t0\t0\n");
  return root;
}

function assertScratch(root: string): void {
  const tmp = resolve(tmpdir());
  const abs = resolve(root);
  if (!abs.startsWith(tmp + sep) || abs === tmp) throw new Error(`runWithStubs: root ${abs} is not under ${tmp}`);
}

/**
 * Writes the stubs (the defaults with `stubs` over them) into base/bin, their defaults into base/defaults, and returns
 * base/bin. Each stub needs KUBEADM_HA_ROOT, KUBEADM_HA_STUB_STATE and KUBEADM_HA_STUB_CALLS in its environment.
 */
export function installStubs(base: string, stubs: Record<string, string> = {}): string {
  const bin = join(base, "bin");
  const defaults = join(base, "defaults");
  rmSync(bin, { recursive: true, force: true });
  rmSync(defaults, { recursive: true, force: true });
  mkdirSync(bin);
  mkdirSync(defaults);
  for (const [name, body] of Object.entries({ ...defaultStubs, ...stubs })) {
    writeFileSync(join(defaults, name), defaultFile(name, defaultStubs[name] ?? ""), { mode: 0o755 });
    writeFileSync(join(bin, name), stubFile(name, body, defaults), { mode: 0o755 });
  }
  return bin;
}

export async function runWithStubs(script: string, opts: StubOptions = {}): Promise<StubRun> {
  const root = opts.root ?? newNode();
  assertScratch(root);
  const base = dirname(root);
  const callsFile = join(base, "calls.jsonl");
  const state = stubState(root);
  mkdirSync(state, { recursive: true });
  const bin = installStubs(base, opts.stubs);
  writeFileSync(callsFile, "");
  opts.setup?.(root);
  const scriptFile = join(base, "step.sh");
  writeFileSync(scriptFile, script);

  const env: Record<string, string> = {
    PATH: `${bin}:${opts.systemPath ?? process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: base,
    LC_ALL: "C.UTF-8",
    KUBEADM_HA_ROOT: root,
    KUBEADM_HA_POLL_SECONDS: "0",
    KUBEADM_HA_STUB_STATE: state,
    KUBEADM_HA_STUB_CALLS: callsFile,
    ...(opts.env ?? {}),
  };
  const child = spawn("bash", [scriptFile], { env, cwd: base, detached: true, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdin.on("error", () => undefined); // a script that never reads stdin closes it early
  child.stdin.end(opts.stdin ?? "");
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      /* already gone */
    }
  }, opts.timeoutMs ?? 30_000);
  const code = await new Promise<number>((done) => child.on("close", (c, signal) => done(c ?? (signal ? 128 : 1))));
  clearTimeout(timer);
  const calls = readFileSync(callsFile, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as StubCall);
  return { code, stdout, stderr, calls, root };
}

/** The calls of one stub, as argument lists. */
export function callsOf(run: StubRun, cmd: string): string[][] {
  return run.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
}

/** Removes a harness directory (root's parent) once a test is done with it. */
export function cleanup(root: string): void {
  assertScratch(root);
  if (existsSync(dirname(root))) rmSync(dirname(root), { recursive: true, force: true });
}
