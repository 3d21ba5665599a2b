// Step "prepare": makes a fresh Ubuntu 24.04 node ready for kubeadm (kernel settings, containerd, the Kubernetes
// packages of one exact version). Pure: arguments in, bash out.
import { stepTimeouts } from "../defaults";
import type { ImageSource } from "../config";
import { nodeScript, shellQuote } from "./common";
import { nodeIdentityBash } from "./nodeIdentity";
import { containerdCertsDir, sandboxImageBash } from "./sandboxImage";

const versionPattern = /^(\d+)\.(\d+)\.(\d+)$/;
const minorPattern = /^(\d+)\.(\d+)$/;

function parseVersion(version: string): { major: number; minor: number; patch: number } {
  const m = versionPattern.exec(version);
  if (!m) throw new Error(`kubernetesVersion must look like 1.35.9 (no "v", no suffix); got ${JSON.stringify(version)}`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** "1.35.9" -> "1.35": pkgs.k8s.io has one repository per minor. */
export function minorOf(version: string): string {
  const v = parseVersion(version);
  return `${v.major}.${v.minor}`;
}

/** Where apt finds the dearmored key of pkgs.k8s.io (a path on the node, as apt reads it). */
export const kubernetesKeyring = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg";
/** The apt source file that names the one Kubernetes minor this node installs from. */
export const kubernetesSourceList = "/etc/apt/sources.list.d/kubernetes.list";

/**
 * Where the Kubernetes packages come from: pkgs.k8s.io's layout, one flat repository per minor at
 * `<base>/v<minor>/deb/` with its signing key at `Release.key` beside it (config packages.repository overrides the base).
 */
export const defaultPackageRepository = "https://pkgs.k8s.io/core:/stable:";

/** The repository of a minor ("1.35") under `base`, with a trailing slash as its Release.key URL expects. */
export function kubernetesRepoUrl(minor: string, base: string = defaultPackageRepository): string {
  if (!minorPattern.test(minor)) throw new Error(`a Kubernetes minor looks like 1.35; got ${JSON.stringify(minor)}`);
  return `${base.replace(/\/+$/, "")}/v${minor}/deb/`;
}

/** The one line of kubernetes.list for a minor ("1.35"): a flat repository ("/"), signed by its own key. */
export function aptSourceLine(minor: string, base: string = defaultPackageRepository): string {
  return `deb [signed-by=${kubernetesKeyring}] ${kubernetesRepoUrl(minor, base)} /`;
}

/** The apt version pin of an exact release: "1.35.9" -> "1.35.9-*" (pkgs.k8s.io versions look like 1.35.9-1.1). */
export function packagePin(version: string): string {
  parseVersion(version);
  return `${version}-*`;
}

/** The Kubernetes packages every node holds at one version; only the upgrade steps move them. */
export const kubernetesPackages = ["kubelet", "kubeadm", "kubectl"] as const;

/**
 * `apt_get ARGS...`: non-interactive, bounded, waits for the dpkg lock instead of failing on it (unattended-upgrades
 * runs on first boot), keeps locally changed config files, output logged with the node and step. Reusable by any step
 * that installs packages.
 */
export const aptGetHelper = [
  "apt_get() {",
  `  DEBIAN_FRONTEND=noninteractive timeout ${stepTimeouts.apt} apt-get -q -y -o DPkg::Lock::Timeout=300 \\`,
  `    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" 2>&1 | log_output`,
  "}",
].join("\n");

// kubeadm configures the kubelet with the systemd cgroup driver (see kubeadmConfig.ts); containerd's runc must use
// the same driver, or pods restart at random under memory pressure. The sandbox image is kubeadm's pause image for
// the installed version (sandboxImage.ts), from images.repository when set.
const containerdConfigBody = String.raw`
# containerd: Ubuntu's package, its default config with the systemd cgroup driver, kubeadm's pause image as sandbox
# image and registry hosts read from certs.d. Restarted only when the config changes; a pending marker makes a
# restart interrupted by a failure happen on the next run.
configure_containerd() {
  local conf="$R/etc/containerd/config.toml" pending="$R/etc/kubeadm-ha/containerd-restart-pending" new
  install -d -m 0755 "$R/etc/containerd"
  install -d -m 0700 "$R/etc/kubeadm-ha"
  new=$(mktemp "$conf.new.XXXXXX")
  containerd config default >"$new"
  if grep -Eq '^[[:space:]]*SystemdCgroup[[:space:]]*=' "$new"; then
    sed -i -E 's/^([[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*)false/\1true/' "$new"
  else
    # containerd 2.0/2.1 leave the key out of their default config (containerd#12101): add it to runc's options.
    sed -i -E '/runtimes[.]runc[.]options[]]$/a SystemdCgroup = true' "$new"
  fi
  if ! grep -Eq '^[[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*true' "$new"; then
    rm -f "$new"
    die "containerd's default config has no SystemdCgroup option to set"
  fi
  local pause
  if ! pause=$(kubeadm_pause_image "$IMAGE_REPOSITORY"); then
    rm -f "$new"
    die "kubeadm config images list names no pause image for kubeadm $(kubeadm version -o short 2>/dev/null)"
  fi
  if ! set_sandbox_image "$new" "$pause"; then
    rm -f "$new"
    die "containerd's default config has no sandbox image option to set"
  fi
  # containerd 1.7 leaves the registry config_path empty: hosts.toml files under certs.d are read only when named.
  sed -i -E 's#^([[:space:]]*config_path[[:space:]]*=[[:space:]]*)""#\1"${containerdCertsDir}"#' "$new"
  if [ -n "$INSECURE_REGISTRY" ]; then
    printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$INSECURE_REGISTRY" "$INSECURE_REGISTRY" |
      write_if_changed "$R${containerdCertsDir}/$INSECURE_REGISTRY/hosts.toml" 0644
  fi
  if cmp -s "$new" "$conf"; then
    rm -f "$new"
  else
    log "writing $conf (SystemdCgroup = true, sandbox image $pause)"
    : >"$pending"
    chmod 0644 "$new"
    mv -f "$new" "$conf"
  fi
  timeout 120 systemctl enable --now containerd 2>&1 | log_output || die "could not start containerd"
  if [ -e "$pending" ]; then
    log "restarting containerd for its new config"
    timeout 120 systemctl restart containerd 2>&1 | log_output || die "could not restart containerd"
    rm -f "$pending"
  fi
}`;

// Bash array expansions, kept out of the template literal's own ${...} syntax.
const packageArray = "${packages[@]}";
const packageList = "${packages[*]}";

/** Step "prepare": see the file comment. Installs Kubernetes packages only on a node that has none. */
export function prepareNodeScript(args: { node: string; kubernetesVersion: string; images?: ImageSource; packageRepository?: string }): string {
  const minor = minorOf(args.kubernetesVersion);
  const base = args.packageRepository ?? defaultPackageRepository;
  const repository = args.images?.repository ?? "";
  const insecureRegistry = args.images?.insecure && repository ? repository.split("/")[0] : "";
  const body = String.raw`
VERSION=${shellQuote(args.kubernetesVersion)}
IMAGE_REPOSITORY=${shellQuote(repository)}
INSECURE_REGISTRY=${shellQuote(insecureRegistry)}
PIN=${shellQuote(packagePin(args.kubernetesVersion))}
REPO_URL=${shellQuote(kubernetesRepoUrl(minor, base))}
KEY_URL=${shellQuote(`${kubernetesRepoUrl(minor, base)}Release.key`)}
SOURCE_LINE=${shellQuote(aptSourceLine(minor, base))}
KEYRING="$R"${shellQuote(kubernetesKeyring)}
SOURCE_LIST="$R"${shellQuote(kubernetesSourceList)}
${aptGetHelper}
${nodeIdentityBash}
# 0. A machine that already is another node keeps its swap, containerd and packages as they are.
require_node_identity "prepare it (swap, kernel modules, containerd, Kubernetes packages)"

# write_if_changed PATH MODE: stores stdin at PATH unless PATH already has exactly that content.
write_if_changed() {
  local path=$1 mode=$2 tmp
  install -d -m 0755 "$(dirname "$path")"
  tmp=$(mktemp "$path.new.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
  else
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
    log "wrote $path"
  fi
}

# 1. cloud-init owns apt and the network on first boot: wait for it. Exit 2 ("degraded": recoverable errors) is done.
if command -v cloud-init >/dev/null 2>&1; then
  rc=0
  out=$(timeout ${stepTimeouts.cloudInit} cloud-init status --wait 2>&1) || rc=$?
  case $rc in
    0) log "cloud-init done" ;;
    2) log "cloud-init done, degraded (recoverable errors): continuing" ;;
    124) die "cloud-init still running after ${stepTimeouts.cloudInit}s" ;;
    *) die "cloud-init failed (exit $rc): $(printf '%s' "$out" | tail -n 1)" ;;
  esac
else
  log "no cloud-init on this node: nothing to wait for"
fi

# 2. The kubelet refuses to run with swap on: off now and after a reboot.
swapoff -a || die "swapoff -a failed"
FSTAB_SWAP='^[[:space:]]*[^#[:space:]][^[:space:]]*[[:space:]]+[^[:space:]]+[[:space:]]+swap([[:space:]]|$)'
if [ -f "$R/etc/fstab" ] && grep -Eq "$FSTAB_SWAP" "$R/etc/fstab"; then
  log "commenting out swap entries in /etc/fstab"
  sed -i -E "/$FSTAB_SWAP/s/^/#/" "$R/etc/fstab"
fi

# 3. Kernel modules and sysctls for pod networking, persisted and applied now (both idempotent).
printf '%s\n' overlay br_netfilter | write_if_changed "$R/etc/modules-load.d/k8s.conf" 0644
modprobe overlay || die "modprobe overlay failed"
modprobe br_netfilter || die "modprobe br_netfilter failed"
printf '%s\n' 'net.bridge.bridge-nf-call-iptables = 1' 'net.bridge.bridge-nf-call-ip6tables = 1' \
  'net.ipv4.ip_forward = 1' | write_if_changed "$R/etc/sysctl.d/k8s.conf" 0644
{ sysctl --system >/dev/null; } 2>&1 | log_output || die "sysctl --system failed"
for key in net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.ipv4.ip_forward; do
  [ "$(sysctl -n "$key")" = 1 ] || die "sysctl $key is not 1 after applying /etc/sysctl.d/k8s.conf"
done

# 4. Packages. Kubernetes packages are installed only on a node that has no kubeadm: a node at another version keeps
#    it (moving versions is the upgrade steps' job, one minor at a time, never a side effect of prepare).
installed=$(kubeadm version -o short 2>/dev/null || true)
held=$(apt-mark showhold 2>/dev/null || true)
all_held() {
  local p
  for p in kubelet kubeadm kubectl; do
    printf '%s\n' "$held" | grep -qx "$p" || return 1
  done
}
# apt-mark does not wait for the dpkg lock: retried.
hold_kubernetes() { apt-mark hold kubelet kubeadm kubectl 2>&1 | log_output; }
install_kubernetes=0
if [ -z "$installed" ]; then
  install_kubernetes=1
elif [ "$installed" = "v$VERSION" ]; then
  if all_held; then
    log "kubelet, kubeadm, kubectl $installed already installed and held"
  else
    log "holding kubelet, kubeadm, kubectl at $installed"
    retry 5 6 hold_kubernetes || die "apt-mark hold failed"
  fi
else
  log "kubeadm $installed is installed, not v$VERSION: leaving it (prepare installs only on a fresh node; the upgrade steps change versions)"
fi
install_containerd=0
if ! containerd --version >/dev/null 2>&1; then install_containerd=1; fi

if [ "$install_kubernetes" = 1 ]; then
  log "adding the Kubernetes apt repository $REPO_URL"
  install -d -m 0755 "$(dirname "$KEYRING")"
  key_tmp=$(mktemp "$KEYRING.new.XXXXXX")
  if ! retry 3 5 curl -fsSL --connect-timeout 10 --max-time 60 -o "$key_tmp.asc" "$KEY_URL" \
    || ! gpg --batch --yes --dearmor -o "$key_tmp" "$key_tmp.asc"; then
    rm -f "$key_tmp" "$key_tmp.asc"
    die "could not install the repository key from $KEY_URL"
  fi
  rm -f "$key_tmp.asc"
  chmod 0644 "$key_tmp"
  mv -f "$key_tmp" "$KEYRING"
  printf '%s\n' "$SOURCE_LINE" | write_if_changed "$SOURCE_LIST" 0644
fi
if [ "$install_kubernetes" = 1 ] || [ "$install_containerd" = 1 ]; then
  packages=()
  if [ "$install_containerd" = 1 ]; then packages+=(containerd); fi
  if [ "$install_kubernetes" = 1 ]; then packages+=("kubelet=$PIN" "kubeadm=$PIN" "kubectl=$PIN"); fi
  retry 3 10 apt_get update || die "apt-get update failed"
  log "installing ${packageList}"
  retry 2 10 apt_get install "${packageArray}" || die "apt-get install failed"
fi
if [ "$install_kubernetes" = 1 ]; then
  retry 5 6 hold_kubernetes || die "apt-mark hold failed"
  installed=$(kubeadm version -o short 2>/dev/null || true)
  [ "$installed" = "v$VERSION" ] || die "installed kubeadm reports '$installed', expected v$VERSION"
  log "installed and held kubelet, kubeadm, kubectl $installed"
fi
${sandboxImageBash}
${containerdConfigBody}
configure_containerd

# 5. The kubelet restarts every few seconds until kubeadm init/join writes its config: expected.
timeout 120 systemctl enable --now kubelet 2>&1 | log_output || die "could not enable the kubelet"
`;
  return nodeScript({ node: args.node, step: "prepare" }, body);
}
