// The API endpoint of a cluster on existing hosts (hosts.provider: static, apiEndpoint.haproxy: true): HAProxy on every
// control plane balancing TCP across all apiservers, and keepalived moving one virtual IP between the control planes.
// Pure: arguments in, haproxy.cfg / keepalived.conf / bash out.
//
// Ports. Important: kubeadm's apiserver binds 0.0.0.0:6443 on every control plane, so HAProxy on the same host cannot
// take 6443 on any address. It listens on its own port (apiEndpointPort, 8443) on all addresses, and the cluster's
// controlPlaneEndpoint is VIP:8443. This is kubeadm's own HA layout (docs: "High Availability Considerations",
// keepalived + haproxy with APISERVER_DEST_PORT != 6443). Binding only VIP:6443 instead would need the apiserver moved
// off 0.0.0.0 and net.ipv4.ip_nonlocal_bind on every backup; a separate port needs neither, and every control plane
// answers on 8443 whether or not it holds the VIP (which is also what keepalived's health check probes).
//
// Keepalived needs a layer-2 network that carries VRRP (IP protocol 112) and gratuitous ARP between the control planes:
// on-premises or a lab, not an AWS VPC (which has its NLB for this).
import { defaults } from "../defaults";
import { nodeScript, shellQuote } from "./common";
import { aptGetHelper } from "./prepareNode";

/** The port HAProxy serves the Kubernetes API on, on every control plane (the apiserver itself has 6443). */
export const apiEndpointPort = defaults.haproxyPort;
/** Where the apiservers listen (kubeadm's default bind port). */
export { apiserverPort } from "../defaults";

/** Where the step writes the configs (the Debian/Ubuntu packages' own paths, read by their systemd units). */
export const apiEndpointPaths = {
  haproxyConfig: "/etc/haproxy/haproxy.cfg",
  keepalivedConfig: "/etc/keepalived/keepalived.conf",
} as const;

export interface ApiBackend {
  /** The control plane's name (cp-0): HAProxy's server name, seen in its logs. */
  name: string;
  /** The apiserver's address (the control plane's private address). */
  address: string;
  /** The apiserver's port; 6443 with kubeadm. */
  port: number;
}

/** Drop root after binding: the user, group and chroot directory Debian's and Ubuntu's haproxy package creates. */
export interface HaproxyPrivileges {
  user: string;
  group: string;
  chroot: string;
}

export const debianHaproxyPrivileges: HaproxyPrivileges = { user: "haproxy", group: "haproxy", chroot: "/var/lib/haproxy" };

export interface HaproxyConfigArgs {
  /** Where the frontend listens, `ADDRESS:PORT`: "*:8443" on control planes (see the file comment), "127.0.0.1:PORT" in tests. */
  frontendBind: string;
  /** Every apiserver; at least one. */
  backends: ApiBackend[];
  /**
   * Default debianHaproxyPrivileges. `null` keeps the user that starts HAProxy (and no chroot): only for running the
   * config where the package's user does not exist (tests). `haproxy -c` rejects a `user` that does not exist.
   */
  privileges?: HaproxyPrivileges | null;
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const hostnamePattern = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const interfacePattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}$/;
const pathPattern = /^\/[A-Za-z0-9._/-]*$/;

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

function isAddress(address: string): boolean {
  return ipv4Pattern.test(address) || hostnamePattern.test(address) || (address.includes(":") && /^[0-9A-Fa-f:.]+$/.test(address));
}

/** ADDRESS:PORT as HAProxy reads it; an IPv6 address in brackets. */
function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function parseBind(bind: string): { address: string; port: number } {
  const m = /^(\*|\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(bind);
  const address = m?.[1] ?? "";
  const port = Number(m?.[2]);
  if (!m || !isPort(port) || (address !== "*" && !address.startsWith("[") && !isAddress(address))) {
    throw new Error(`frontendBind must look like "*:8443", "10.0.0.100:8443" or "[fd00::1]:8443"; got ${JSON.stringify(bind)}`);
  }
  return { address, port };
}

/**
 * haproxy.cfg for the Kubernetes API: TCP passthrough (clients do TLS with the apiservers, whose certificates carry the
 * endpoint's names), round robin per connection, each apiserver health-checked on `/readyz` over TLS.
 */
export function haproxyConfig(args: HaproxyConfigArgs): string {
  parseBind(args.frontendBind);
  if (args.backends.length === 0) throw new Error("haproxyConfig: at least one backend");
  const problems: string[] = [];
  args.backends.forEach((b, i) => {
    if (!namePattern.test(b.name)) problems.push(`backends[${i}].name ${JSON.stringify(b.name)} is not a plain name`);
    if (!isAddress(b.address)) problems.push(`backends[${i}].address ${JSON.stringify(b.address)} is not an address`);
    if (!isPort(b.port)) problems.push(`backends[${i}].port ${b.port} is not a port`);
  });
  const names = args.backends.map((b) => b.name);
  if (new Set(names).size !== names.length) problems.push("backend names must be unique");
  const privileges = args.privileges === undefined ? debianHaproxyPrivileges : args.privileges;
  if (privileges && (!namePattern.test(privileges.user) || !namePattern.test(privileges.group) || !pathPattern.test(privileges.chroot))) {
    problems.push("privileges: user and group must be plain names, chroot an absolute path");
  }
  if (problems.length) throw new Error(`haproxyConfig: ${problems.join("; ")}`);

  return [
    "# Generated by kubeadm-ha (infra/scripts/apiEndpoint.ts): the Kubernetes API across every control plane.",
    "global",
    "    log /dev/log local0",
    ...(privileges ? [`    chroot ${privileges.chroot}`, `    user ${privileges.user}`, `    group ${privileges.group}`] : []),
    "",
    "defaults",
    "    mode tcp",
    "    log global",
    "    option tcplog",
    "    option dontlognull",
    // A connection refused by a stopped apiserver is retried on another one, before health checks catch up.
    "    option redispatch",
    "    retries 3",
    "    timeout connect 5s",
    "    timeout client 35s",
    "    timeout server 35s",
    // Important: watches (kubectl get -w, every controller's informers) are long-lived, mostly idle streams.
    "    timeout tunnel 1h",
    "    timeout client-fin 10s",
    "    timeout check 2s",
    "",
    "frontend kube-apiserver",
    `    bind ${args.frontendBind}`,
    "    default_backend kube-apiserver",
    "",
    "backend kube-apiserver",
    "    balance roundrobin",
    // /readyz answers 200 only once the apiserver serves (anonymous access: system:public-info-viewer).
    "    option httpchk GET /readyz",
    "    http-check expect status 200",
    // Two failed checks 2 s apart take an apiserver out; two good ones bring it back.
    "    default-server inter 2s fall 2 rise 2",
    ...args.backends.map((b) => `    server ${b.name} ${hostPort(b.address, b.port)} check check-ssl verify none`),
    "",
  ].join("\n");
}

export type VrrpState = "MASTER" | "BACKUP";

export interface KeepalivedConfigArgs {
  /** The network interface that carries the VIP and VRRP (ens5, eth0). */
  interface: string;
  /** The virtual IP, without a prefix length (a /32 on `interface`). */
  virtualIp: string;
  /** VRRP virtual_router_id, 1-255: unique among VRRP groups on the same network. */
  routerId: number;
  /** 1-254; the highest healthy priority holds the VIP. keepalivedPlan() derives it from the control plane's index. */
  priority: number;
  /** MASTER on the first control plane, BACKUP on the others (keepalivedPlan()). */
  state: VrrpState;
  /** This node's own address (unicast_src_ip); default: keepalived picks the interface's primary address. */
  sourceIp?: string;
  /** The other control planes' addresses (unicast VRRP: works where multicast is filtered). Never this node; empty with one control plane. */
  peers: string[];
  /**
   * VRRP PASS authentication, 1-8 characters. Not a secret in any real sense (VRRP sends it in clear): it keeps
   * another VRRP group on the same network with the same router id from interfering. Default: none.
   */
  authPass?: string;
  /** The local HAProxy frontend port that the health check probes; default apiEndpointPort. */
  checkPort?: number;
}

/**
 * What a failing health check subtracts from a node's priority. Invariant: any node whose check fails ranks below
 * every node whose check passes (priorities are 200 - index, so this holds up to 100 control planes), while the
 * relative order among failing nodes stays: when no check passes (before the first apiserver is ready, during
 * `kubeadm init`) the VIP stays on cp-0, where that apiserver is starting.
 */
export const vrrpCheckWeight = -100;

/** cp-0 highest, strictly descending by control-plane index. */
export function vrrpPriority(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= 100) throw new Error(`control-plane index ${index} is outside 0-99`);
  return 200 - index;
}

/**
 * keepalived.conf for one control plane: a vrrp_script probing the local HAProxy frontend (`/readyz` through it: the
 * node's HAProxy runs and reaches a ready apiserver) and one unicast vrrp_instance holding the VIP.
 */
export function keepalivedConfig(args: KeepalivedConfigArgs): string {
  const problems: string[] = [];
  if (!interfacePattern.test(args.interface)) problems.push(`interface ${JSON.stringify(args.interface)} is not an interface name`);
  if (!ipv4Pattern.test(args.virtualIp)) problems.push(`virtualIp ${JSON.stringify(args.virtualIp)} is not an IPv4 address (no prefix length)`);
  if (!Number.isInteger(args.routerId) || args.routerId < 1 || args.routerId > 255) problems.push(`routerId ${args.routerId} is outside 1-255`);
  if (!Number.isInteger(args.priority) || args.priority < 1 || args.priority > 254) problems.push(`priority ${args.priority} is outside 1-254`);
  if (args.state !== "MASTER" && args.state !== "BACKUP") problems.push(`state ${JSON.stringify(args.state)} is not MASTER or BACKUP`);
  if (args.sourceIp !== undefined && !ipv4Pattern.test(args.sourceIp)) problems.push(`sourceIp ${JSON.stringify(args.sourceIp)} is not an IPv4 address`);
  args.peers.forEach((p, i) => {
    if (!ipv4Pattern.test(p)) problems.push(`peers[${i}] ${JSON.stringify(p)} is not an IPv4 address`);
  });
  if (new Set(args.peers).size !== args.peers.length) problems.push("peers must be distinct");
  if (args.sourceIp !== undefined && args.peers.includes(args.sourceIp)) problems.push("peers must not include the node itself (sourceIp)");
  if (args.peers.includes(args.virtualIp) || args.sourceIp === args.virtualIp) problems.push("the virtualIp must not be a node's address");
  if (args.authPass !== undefined && !/^[A-Za-z0-9._+=-]{1,8}$/.test(args.authPass)) {
    problems.push("authPass must be 1-8 characters of A-Z a-z 0-9 . _ + = -");
  }
  const checkPort = args.checkPort ?? apiEndpointPort;
  if (!isPort(checkPort)) problems.push(`checkPort ${checkPort} is not a port`);
  if (problems.length) throw new Error(`keepalivedConfig: ${problems.join("; ")}`);

  return [
    "# Generated by kubeadm-ha (infra/scripts/apiEndpoint.ts): the API endpoint's virtual IP.",
    "global_defs {",
    "    router_id kubeadm_ha_api",
    // Health-check scripts run unprivileged; keepalived refuses scripts that a non-root user could change.
    "    enable_script_security",
    "    script_user nobody nogroup",
    "}",
    "",
    "vrrp_script check_api_endpoint {",
    `    script "/usr/bin/curl -sfk --max-time 2 -o /dev/null https://127.0.0.1:${checkPort}/readyz"`,
    "    interval 3",
    "    timeout 3",
    "    fall 2",
    "    rise 2",
    `    weight ${vrrpCheckWeight}`,
    "}",
    "",
    "vrrp_instance kube_api {",
    `    state ${args.state}`,
    `    interface ${args.interface}`,
    `    virtual_router_id ${args.routerId}`,
    `    priority ${args.priority}`,
    "    advert_int 1",
    // A single control plane has no peers: no unicast block at all (keepalived rejects an empty one), so it sends
    // multicast adverts nobody listens to, and holds the VIP itself.
    ...(args.peers.length > 0
      ? [
          ...(args.sourceIp !== undefined ? [`    unicast_src_ip ${args.sourceIp}`] : []),
          "    unicast_peer {",
          ...args.peers.map((p) => `        ${p}`),
          "    }",
        ]
      : []),
    ...(args.authPass !== undefined
      ? ["    authentication {", "        auth_type PASS", `        auth_pass ${args.authPass}`, "    }"]
      : []),
    "    virtual_ipaddress {",
    `        ${args.virtualIp}/32 dev ${args.interface}`,
    "    }",
    "    track_script {",
    "        check_api_endpoint",
    "    }",
    "}",
    "",
  ].join("\n");
}

export interface KeepalivedPlanArgs {
  /** The control planes in index order (cp-0 first) with the addresses they exchange VRRP on. */
  controlPlanes: { name: string; address: string }[];
  interface: string;
  virtualIp: string;
  routerId: number;
  authPass?: string;
  checkPort?: number;
}

/**
 * The keepalived arguments of every control plane: cp-0 MASTER with the highest priority, the others BACKUP with
 * strictly descending priorities; each node's unicast peers are all the other control planes.
 */
export function keepalivedPlan(args: KeepalivedPlanArgs): { node: string; config: KeepalivedConfigArgs }[] {
  return args.controlPlanes.map((cp, index) => ({
    node: cp.name,
    config: {
      interface: args.interface,
      virtualIp: args.virtualIp,
      routerId: args.routerId,
      priority: vrrpPriority(index),
      state: index === 0 ? "MASTER" : "BACKUP",
      sourceIp: cp.address,
      peers: args.controlPlanes.filter((_, i) => i !== index).map((p) => p.address),
      ...(args.authPass !== undefined ? { authPass: args.authPass } : {}),
      ...(args.checkPort !== undefined ? { checkPort: args.checkPort } : {}),
    },
  }));
}

/**
 * Step "api-endpoint" (every control plane, before `kubeadm init`/join, which reach the API through the VIP): installs
 * haproxy and keepalived, writes both configs when they differ from what is on the node, validates each candidate
 * before it replaces the live file (`haproxy -c -f`, `keepalived --config-test -f`), then enables both services and
 * reloads only a service whose config changed (or starts it when it is not running). A second run changes nothing and
 * restarts nothing.
 */
export function installApiEndpointScript(args: { node: string; haproxyConfig: string; keepalivedConfig: string }): string {
  const body = String.raw`
HAPROXY_CFG="$R"${shellQuote(apiEndpointPaths.haproxyConfig)}
KEEPALIVED_CONF="$R"${shellQuote(apiEndpointPaths.keepalivedConfig)}
# Present while a written config has not been applied yet: a run interrupted between the two applies it next time.
PENDING_DIR="$R/etc/kubeadm-ha/api-endpoint-pending"
${aptGetHelper}

# 1. Packages (Ubuntu's haproxy and keepalived). The binaries answering is the guard: nothing to do when they run.
if haproxy -v >/dev/null 2>&1 && keepalived --version >/dev/null 2>&1; then
  log "haproxy and keepalived already installed"
else
  log "installing haproxy and keepalived"
  retry 3 10 apt_get update || die "apt-get update failed"
  retry 3 10 apt_get install --no-install-recommends haproxy keepalived || die "apt-get install haproxy keepalived failed"
fi

# stage_config PATH VALIDATOR...: writes stdin next to PATH, validates it with VALIDATOR... CANDIDATE, and replaces
# PATH with it only when it differs. The live config is never replaced by one that fails validation.
stage_config() {
  local path=$1 new
  shift
  install -d -m 0755 "$(dirname "$path")" "$PENDING_DIR"
  new=$(mktemp "$path.new.XXXXXX")
  cat >"$new"
  if cmp -s "$new" "$path"; then
    rm -f "$new"
    return 0
  fi
  if ! "$@" "$new" 2>&1 | log_output; then
    rm -f "$new"
    die "the new $path is invalid (checked with $*): the node keeps its current config"
  fi
  : >"$PENDING_DIR/$(basename "$path")"
  chmod 0644 "$new"
  mv -f "$new" "$path"
  log "wrote $path"
}

# keepalived_config_test FILE: keepalived --config-test, which prints every problem it finds. keepalived 2.2.7
# (Debian 12) ends every test of a config with script security by killing itself with SIGTERM (exit 143; upstream
# keepalived#2587, fixed in 2.2.8, which Ubuntu 24.04 ships): there, a test that printed nothing found nothing.
keepalived_config_test() {
  local out rc=0
  out=$(keepalived --config-test -f "$1" 2>&1) || rc=$?
  if [ -n "$out" ]; then
    printf '%s\n' "$out"
    [ "$rc" != 0 ] || return 0
    return 1
  fi
  if [ "$rc" = 143 ]; then
    echo "keepalived --config-test printed nothing and stopped with SIGTERM (keepalived#2587, < 2.2.8): no problem found"
    return 0
  fi
  return "$rc"
}

# 2. Configs, each validated before it goes live.
printf '%s' ${shellQuote(args.haproxyConfig)} | stage_config "$HAPROXY_CFG" haproxy -c -f
printf '%s' ${shellQuote(args.keepalivedConfig)} | stage_config "$KEEPALIVED_CONF" keepalived_config_test

# apply_service UNIT CONFIG: enabled at boot; started when not running; reloaded (HAProxy: hitless) when its config
# was written since it last applied one; otherwise left alone.
apply_service() {
  local unit=$1 marker
  marker="$PENDING_DIR/$(basename "$2")"
  timeout 60 systemctl enable --quiet "$unit" 2>&1 | log_output || die "could not enable $unit"
  if ! timeout 30 systemctl is-active --quiet "$unit"; then
    log "starting $unit"
    timeout 120 systemctl restart "$unit" 2>&1 | log_output || die "could not start $unit"
  elif [ -e "$marker" ]; then
    log "reloading $unit for its new config"
    timeout 120 systemctl reload "$unit" 2>&1 | log_output || die "could not reload $unit"
  fi
  rm -f "$marker"
  timeout 30 systemctl is-active --quiet "$unit" || die "$unit is not running"
}

# 3. Services.
apply_service haproxy "$HAPROXY_CFG"
apply_service keepalived "$KEEPALIVED_CONF"
log "haproxy and keepalived running"
`;
  return nodeScript({ node: args.node, step: "api-endpoint" }, body);
}
