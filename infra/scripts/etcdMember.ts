// An external etcd member: its environment file and systemd unit, and the node steps that install etcd from the
// official release tarball, configure the member from a secret bundle on stdin, and wait for the whole cluster's
// health. Pure: arguments in, text out.
import { isIPv4 } from "node:net";
import { stepTimeouts } from "../defaults";
import { nodeScript, shellQuote } from "./common";
import { etcdMemberIdentityBash } from "./nodeIdentity";

/** Where an etcd member keeps its files (paths on the node). */
export const etcdPaths = {
  /** The ETCD_* variables etcd.service reads; no secrets in it. */
  envFile: "/etc/etcd/etcd.env",
  pkiDir: "/etc/etcd/pki",
  caCert: "/etc/etcd/pki/ca.crt",
  serverCert: "/etc/etcd/pki/server.crt",
  serverKey: "/etc/etcd/pki/server.key",
  peerCert: "/etc/etcd/pki/peer.crt",
  peerKey: "/etc/etcd/pki/peer.key",
  /** The seed's restore step assumes this data directory. */
  dataDir: "/var/lib/etcd",
  unitFile: "/etc/systemd/system/etcd.service",
  binDir: "/usr/local/bin",
} as const;

/** etcd's IANA ports: clients (the apiservers, etcdctl) and peers. */
export const etcdPorts = { client: 2379, peer: 2380 } as const;

/** The system user etcd runs as; it owns the data directory and the member's private keys. */
export const etcdUser = "etcd";

/** A member's client URL on an address ("https://10.0.1.10:2379"). */
export function etcdClientUrl(ip: string, port: number = etcdPorts.client): string {
  return `https://${ip}:${port}`;
}

/** A member's peer URL on an address ("https://10.0.1.10:2380"). */
export function etcdPeerUrl(ip: string, port: number = etcdPorts.peer): string {
  return `https://${ip}:${port}`;
}

/** An etcd member name: a DNS label, so it is also safe in the initial-cluster list, the env file and logs. */
const memberNamePattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** The initial-cluster token: one word, safe unquoted in an environment file. */
const clusterTokenPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Release versions as the tarball names them (3.5.16, 3.6.0-rc.1). */
const etcdVersionPattern = /^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/;

function checkPort(what: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${what} must be a TCP port (1-65535), got ${port}`);
}

export interface EtcdEnvironmentArgs {
  /** The member's name (etcd --name); must appear in initialCluster with this member's peer URL. */
  name: string;
  /** The address peers and clients dial (the instance's private IP). */
  privateIp: string;
  /** Every member of the new cluster, this one included: the static bootstrap list. */
  initialCluster: { name: string; peerUrl: string }[];
  /** Keeps members of different clusters from joining each other by accident. */
  clusterToken: string;
  /** Default: /var/lib/etcd (etcdPaths.dataDir). */
  dataDir?: string;
  /** Default: 2379. Tests run several members on one loopback address with their own ports. */
  clientPort?: number;
  /** Default: 2380. */
  peerPort?: number;
}

/**
 * The content of /etc/etcd/etcd.env: etcd takes every flag from an ETCD_<FLAG> variable, so the unit's ExecStart
 * carries no flags (etcd 3.5+ refuses a flag given both ways). TLS with client-certificate auth on client and peer
 * URLs. Clients are advertised on the private IP only; the member also listens on loopback for local tools.
 */
export function etcdEnvironmentFile(args: EtcdEnvironmentArgs): string {
  const clientPort = args.clientPort ?? etcdPorts.client;
  const peerPort = args.peerPort ?? etcdPorts.peer;
  const dataDir = args.dataDir ?? etcdPaths.dataDir;
  if (!memberNamePattern.test(args.name)) throw new Error(`etcdEnvironmentFile: member name must be a DNS label, got ${JSON.stringify(args.name)}`);
  if (!isIPv4(args.privateIp)) throw new Error(`etcdEnvironmentFile: privateIp must be an IPv4 address, got ${JSON.stringify(args.privateIp)}`);
  if (!clusterTokenPattern.test(args.clusterToken)) {
    throw new Error(`etcdEnvironmentFile: clusterToken must be one word of letters, digits, ".", "_", "-", got ${JSON.stringify(args.clusterToken)}`);
  }
  if (!/^\/[A-Za-z0-9._/-]*$/.test(dataDir)) throw new Error(`etcdEnvironmentFile: dataDir must be an absolute path without spaces, got ${JSON.stringify(dataDir)}`);
  checkPort("etcdEnvironmentFile: clientPort", clientPort);
  checkPort("etcdEnvironmentFile: peerPort", peerPort);
  if (clientPort === peerPort) throw new Error(`etcdEnvironmentFile: clientPort and peerPort must differ (both ${clientPort})`);

  const names = args.initialCluster.map((m) => m.name);
  for (const m of args.initialCluster) {
    if (!memberNamePattern.test(m.name)) throw new Error(`etcdEnvironmentFile: initialCluster member name must be a DNS label, got ${JSON.stringify(m.name)}`);
    if (!/^https:\/\/[0-9.]+:\d+$/.test(m.peerUrl)) throw new Error(`etcdEnvironmentFile: peer URL of ${m.name} must look like https://10.0.1.10:2380, got ${JSON.stringify(m.peerUrl)}`);
  }
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate !== undefined) throw new Error(`etcdEnvironmentFile: member ${duplicate} appears twice in initialCluster`);
  const peerUrl = etcdPeerUrl(args.privateIp, peerPort);
  const self = args.initialCluster.find((m) => m.name === args.name);
  if (!self) throw new Error(`etcdEnvironmentFile: initialCluster must list the member itself (${args.name})`);
  if (self.peerUrl !== peerUrl) {
    throw new Error(`etcdEnvironmentFile: initialCluster lists ${args.name} at ${self.peerUrl}, but the member's peer URL is ${peerUrl}`);
  }

  const clientUrl = etcdClientUrl(args.privateIp, clientPort);
  const listenClientUrls = [...new Set([clientUrl, etcdClientUrl("127.0.0.1", clientPort)])];
  const vars: [string, string][] = [
    ["ETCD_NAME", args.name],
    ["ETCD_DATA_DIR", dataDir],
    ["ETCD_LISTEN_CLIENT_URLS", listenClientUrls.join(",")],
    ["ETCD_ADVERTISE_CLIENT_URLS", clientUrl],
    ["ETCD_LISTEN_PEER_URLS", peerUrl],
    ["ETCD_INITIAL_ADVERTISE_PEER_URLS", peerUrl],
    ["ETCD_INITIAL_CLUSTER", args.initialCluster.map((m) => `${m.name}=${m.peerUrl}`).join(",")],
    // Read only when the data directory is empty: a member that has data ignores the three INITIAL_CLUSTER* values.
    ["ETCD_INITIAL_CLUSTER_STATE", "new"],
    ["ETCD_INITIAL_CLUSTER_TOKEN", args.clusterToken],
    ["ETCD_CLIENT_CERT_AUTH", "true"],
    ["ETCD_TRUSTED_CA_FILE", etcdPaths.caCert],
    ["ETCD_CERT_FILE", etcdPaths.serverCert],
    ["ETCD_KEY_FILE", etcdPaths.serverKey],
    ["ETCD_PEER_CLIENT_CERT_AUTH", "true"],
    ["ETCD_PEER_TRUSTED_CA_FILE", etcdPaths.caCert],
    ["ETCD_PEER_CERT_FILE", etcdPaths.peerCert],
    ["ETCD_PEER_KEY_FILE", etcdPaths.peerKey],
  ];
  return [
    `# etcd member ${args.name} (kubeadm-ha external etcd), read by etcd.service. Written by the etcd-configure step.`,
    ...vars.map(([k, v]) => `${k}=${v}`),
    "",
  ].join("\n");
}

/** Parses KEY=VALUE lines of an environment file as etcdEnvironmentFile writes it (comments and blanks skipped). */
export function parseEnvironmentFile(content: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of content.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`not a KEY=VALUE line: ${JSON.stringify(line)}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/**
 * etcd.service. Type=notify: etcd reports ready once it has joined the cluster, which for a member of a new static
 * cluster means once a quorum of members runs, hence the long start timeout (a start that times out is retried by
 * Restart=on-failure; the data directory keeps it a member).
 */
export function etcdSystemdUnit(): string {
  return [
    "[Unit]",
    "Description=etcd key-value store (kubeadm-ha external etcd member)",
    "Documentation=https://etcd.io/docs/",
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=notify",
    `User=${etcdUser}`,
    `Group=${etcdUser}`,
    `EnvironmentFile=${etcdPaths.envFile}`,
    `ExecStart=${etcdPaths.binDir}/etcd`,
    "Restart=on-failure",
    "RestartSec=5s",
    "TimeoutStartSec=300",
    "LimitNOFILE=65536",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** The official release tarball of a version (linux/amd64) and the release's SHA256SUMS beside it. */
export function etcdReleaseUrls(version: string): { tarball: string; tarballUrl: string; sumsUrl: string } {
  if (!etcdVersionPattern.test(version)) throw new Error(`an etcd version looks like 3.5.16 (no "v"), got ${JSON.stringify(version)}`);
  const base = `https://github.com/etcd-io/etcd/releases/download/v${version}`;
  const tarball = `etcd-v${version}-linux-amd64.tar.gz`;
  return { tarball, tarballUrl: `${base}/${tarball}`, sumsUrl: `${base}/SHA256SUMS` };
}

/**
 * Step "etcd-install": the etcd system user and etcd/etcdctl/etcdutl of one version in /usr/local/bin, from the
 * official release tarball, its SHA-256 checked against the release's SHA256SUMS (a corrupted or truncated download
 * is refused; both files come from the same release, so this is an integrity check, not a signature). Skipped when
 * `etcd --version` already reports the version.
 */
export function installEtcdMemberScript(args: { node: string; etcdVersion: string }): string {
  const release = etcdReleaseUrls(args.etcdVersion);
  const body = String.raw`
VERSION=${shellQuote(args.etcdVersion)}
TARBALL=${shellQuote(release.tarball)}
TARBALL_URL=${shellQuote(release.tarballUrl)}
SUMS_URL=${shellQuote(release.sumsUrl)}
BIN_DIR="$R"${shellQuote(etcdPaths.binDir)}
ETCD_USER=${shellQuote(etcdUser)}

# 1. The system user etcd runs as (no login, no home of its own beyond the data directory).
if getent passwd "$ETCD_USER" >/dev/null; then
  log "user $ETCD_USER exists"
else
  log "creating system user $ETCD_USER"
  useradd --system --user-group --home-dir ${shellQuote(etcdPaths.dataDir)} --no-create-home \
    --shell /usr/sbin/nologin "$ETCD_USER" || die "could not create user $ETCD_USER"
fi

# 2. The binaries, unless this version is already installed.
installed=$("$BIN_DIR/etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p' | head -n 1 || true)
if [ "$installed" = "$VERSION" ] && [ -x "$BIN_DIR/etcdctl" ]; then
  log "etcd $VERSION already installed in $BIN_DIR"
else
  if [ -n "$installed" ]; then log "replacing etcd $installed with $VERSION (a running member keeps $installed until it restarts)"; fi
  work=$(mktemp -d "${"${TMPDIR:-/tmp}"}/etcd-install.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  fetch_release_tarball "$TARBALL_URL" "$SUMS_URL" "$TARBALL" "$work"
  tar -xzf "$work/$TARBALL" -C "$work" --no-same-owner
  src="$work/etcd-v$VERSION-linux-amd64"
  if [ ! -f "$src/etcd" ] || [ ! -f "$src/etcdctl" ]; then
    die "$TARBALL has no etcd and etcdctl under etcd-v$VERSION-linux-amd64/"
  fi
  install -d -m 0755 "$BIN_DIR"
  for bin in etcd etcdctl etcdutl; do
    if [ -f "$src/$bin" ]; then
      # Beside the target, then renamed: a running etcd keeps its binary, the next start gets the new one.
      install -m 0755 "$src/$bin" "$BIN_DIR/.$bin.new"
      mv -f "$BIN_DIR/.$bin.new" "$BIN_DIR/$bin"
    else
      log "$TARBALL has no $bin (etcdutl exists from 3.5 on): skipped"
    fi
  done
  installed=$("$BIN_DIR/etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p' | head -n 1 || true)
  [ "$installed" = "$VERSION" ] || die "the installed etcd reports '$installed', expected $VERSION"
  log "installed etcd $VERSION in $BIN_DIR"
fi
`;
  return nodeScript({ node: args.node, step: "etcd-install" }, body);
}

/** The keys of the etcd-configure step's stdin bundle: a JSON object of strings (see etcdMemberBundle). */
export interface EtcdMemberBundle {
  /** etcdEnvironmentFile() of this member. */
  envFile: string;
  caCert: string;
  serverCert: string;
  /** Secret. */
  serverKey: string;
  peerCert: string;
  /** Secret. */
  peerKey: string;
}

/** The etcd-configure step's stdin: one JSON object (parsed on the node by python3, present on Ubuntu 24.04). */
export function etcdMemberBundle(bundle: EtcdMemberBundle): string {
  const { envFile, caCert, serverCert, serverKey, peerCert, peerKey } = bundle;
  return JSON.stringify({ envFile, caCert, serverCert, serverKey, peerCert, peerKey });
}

/** The keys of the etcd-client-certs step's stdin bundle (see apiserverEtcdClientBundle). */
export interface ApiserverEtcdClientBundle {
  caCert: string;
  clientCert: string;
  /** Secret. */
  clientKey: string;
}

export function apiserverEtcdClientBundle(bundle: ApiserverEtcdClientBundle): string {
  const { caCert, clientCert, clientKey } = bundle;
  return JSON.stringify({ caCert, clientCert, clientKey });
}

// Reads the JSON object at argv[1] and writes the string of each key named after argv[2] to argv[2]/<key>, 0600.
// Messages name keys, never values: the bundle holds private keys.
const unpackBundlePy = String.raw`import json, os, sys
path, out, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
try:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
except (OSError, ValueError) as e:
    sys.exit("the bundle is not a JSON document (" + type(e).__name__ + ")")
if not isinstance(doc, dict):
    sys.exit("the bundle is not a JSON object")
missing = [k for k in keys if not isinstance(doc.get(k), str) or not doc[k].strip()]
if missing:
    sys.exit("the bundle lacks " + ", ".join(missing))
unexpected = sorted(k for k in doc if k not in keys)
if unexpected:
    sys.exit("the bundle has unexpected keys: " + ", ".join(unexpected))
os.umask(0o077)
for k in keys:
    v = doc[k] if doc[k].endswith("\n") else doc[k] + "\n"
    fd = os.open(os.path.join(out, k), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(v)
`;

/**
 * Bash helpers for the steps that take a bundle of certificates and keys on stdin. Every command gets file paths,
 * never the content; nothing prints a key.
 */
const bundleHelpers = String.raw`
UNPACK_BUNDLE_PY=${shellQuote(unpackBundlePy)}
# unpack_bundle BUNDLE DIR KEY...: DIR/KEY for each key of the JSON bundle (0600); fails naming missing keys.
unpack_bundle() {
  local msg
  msg=$(python3 -c "$UNPACK_BUNDLE_PY" "$@" 2>&1) || die "bad bundle on stdin: $msg"
}
# check_cert NAME FILE: FILE holds one PEM certificate that openssl reads.
check_cert() {
  if ! grep -q -- '-----BEGIN CERTIFICATE-----' "$2" || ! openssl x509 -noout -in "$2" 2>/dev/null; then
    die "$1 in the bundle is not a PEM certificate"
  fi
}
# check_pair NAME CERT KEY: KEY is the private key of CERT.
check_pair() {
  local cert_pub key_pub
  grep -q -- 'PRIVATE KEY-----' "$3" || die "the key of $1 in the bundle is not a PEM private key"
  cert_pub=$(openssl x509 -noout -pubkey -in "$2" 2>/dev/null | openssl pkey -pubin -outform der 2>/dev/null | sha256sum)
  key_pub=$(openssl pkey -in "$3" -pubout -outform der 2>/dev/null | sha256sum)
  [ "$cert_pub" = "$key_pub" ] || die "the key of $1 in the bundle does not belong to its certificate"
}
# check_signed NAME CA CERT: CERT is valid now and signed by CA.
check_signed() {
  openssl verify -CAfile "$2" "$3" >/dev/null 2>&1 || die "$1 in the bundle is not signed by the bundle's CA (or is expired)"
}
# place_file SRC DEST MODE OWNER: DEST gets SRC's content and MODE unless it already has both; OWNER always. When
# something changes and PENDING is set, the marker file PENDING is created first (a restart owed even if the step
# stops right after the change).
place_file() {
  local src=$1 dest=$2 mode=$3 owner=$4
  if cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "${"${mode#0}"}" ]; then
    chown "$owner" "$dest"
    return 0
  fi
  if [ -n "${"${PENDING:-}"}" ]; then : >"$PENDING"; fi
  install -m "$mode" "$src" "$dest.new"
  chown "$owner" "$dest.new"
  mv -f "$dest.new" "$dest"
  log "wrote $dest ($mode $owner)"
}
`;

/**
 * Step "etcd-configure". Stdin: etcdMemberBundle(). Checks the bundle (certificates parse, keys match them, all are
 * signed by the CA), writes the env file, CA, server and peer certificates (0644) and keys (0600, owned by etcd) and
 * the unit, then enables and starts etcd. Restarts etcd only when a file changed. Does not wait for the cluster: a
 * member of a new static cluster is ready only once a quorum runs; the etcd-healthy step waits for that.
 */
export function configureEtcdMemberScript(args: { node: string }): string {
  const body = String.raw`
ETC_DIR="$R/etc/etcd"
PKI_DIR="$R"${shellQuote(etcdPaths.pkiDir)}
ENV_FILE="$R"${shellQuote(etcdPaths.envFile)}
UNIT_FILE="$R"${shellQuote(etcdPaths.unitFile)}
ETCD_USER=${shellQuote(etcdUser)}
UNIT_CONTENT=${shellQuote(etcdSystemdUnit())}
# Present while a changed configuration has not been applied by a restart yet.
PENDING="$ETC_DIR/.restart-pending"
${bundleHelpers}
${etcdMemberIdentityBash}

getent passwd "$ETCD_USER" >/dev/null || die "no user $ETCD_USER (the etcd-install step creates it)"
install -d -m 0755 "$ETC_DIR" "$PKI_DIR" "$(dirname "$UNIT_FILE")"
stage=$(mktemp -d "$ETC_DIR/.configure.XXXXXX")
trap 'rm -rf "$stage"' EXIT
write_secret_file "$stage/bundle.json"
[ -s "$stage/bundle.json" ] || die "no bundle on stdin"
unpack_bundle "$stage/bundle.json" "$stage" envFile caCert serverCert serverKey peerCert peerKey
rm -f "$stage/bundle.json"

check_cert "the CA certificate" "$stage/caCert"
check_cert "the server certificate" "$stage/serverCert"
check_cert "the peer certificate" "$stage/peerCert"
check_pair "the server certificate" "$stage/serverCert" "$stage/serverKey"
check_pair "the peer certificate" "$stage/peerCert" "$stage/peerKey"
check_signed "the server certificate" "$stage/caCert" "$stage/serverCert"
check_signed "the peer certificate" "$stage/caCert" "$stage/peerCert"
member=$(sed -n 's/^ETCD_NAME=//p' "$stage/envFile")
data_dir=$(sed -n 's/^ETCD_DATA_DIR=//p' "$stage/envFile")
[ -n "$member" ] || die "the env file in the bundle sets no ETCD_NAME"
[[ $data_dir == /* ]] || die "the env file in the bundle sets no absolute ETCD_DATA_DIR"
# A host that already runs another member keeps its configuration (this address reaches the wrong machine).
require_etcd_member_identity "configure it as etcd member $member" "$member"

# etcd refuses a data directory others can read.
install -d -m 0700 "$R$data_dir"
chown "$ETCD_USER:$ETCD_USER" "$R$data_dir"
place_file "$stage/caCert" "$PKI_DIR/ca.crt" 0644 root:root
place_file "$stage/serverCert" "$PKI_DIR/server.crt" 0644 root:root
place_file "$stage/serverKey" "$PKI_DIR/server.key" 0600 "$ETCD_USER:$ETCD_USER"
place_file "$stage/peerCert" "$PKI_DIR/peer.crt" 0644 root:root
place_file "$stage/peerKey" "$PKI_DIR/peer.key" 0600 "$ETCD_USER:$ETCD_USER"
place_file "$stage/envFile" "$ENV_FILE" 0644 root:root
printf '%s' "$UNIT_CONTENT" >"$stage/unit"
place_file "$stage/unit" "$UNIT_FILE" 0644 root:root

# --no-block: the start of a new member returns only once a quorum runs, and the other members start in parallel.
timeout 60 systemctl daemon-reload || die "systemctl daemon-reload failed or hung (60 s)"
if [ -e "$PENDING" ]; then
  log "configuration of member $member changed: (re)starting etcd"
  timeout 60 systemctl enable etcd 2>&1 | log_output || die "could not enable etcd"
  timeout 60 systemctl restart --no-block etcd 2>&1 | log_output || die "could not restart etcd"
  rm -f "$PENDING"
else
  log "configuration of member $member unchanged"
  timeout 60 systemctl enable --now --no-block etcd 2>&1 | log_output || die "could not start etcd"
fi

# A member that cannot start (a bad path, a port in use) fails here, with its journal, rather than as a timeout of
# the cluster-wide health wait on another node. (A new member stays "activating" until a quorum runs: that is fine.)
state=""
restarts=0
for ((i = 0; i < 10; i++)); do
  sleep "${"${KUBEADM_HA_POLL_SECONDS:-2}"}"
  state=$(timeout 30 systemctl show -p ActiveState --value etcd 2>/dev/null || true)
  restarts=$(timeout 30 systemctl show -p NRestarts --value etcd 2>/dev/null || true)
  restarts=${"${restarts:-0}"}
  if [ "$state" = active ] || [ "$state" = failed ] || [ "$restarts" != 0 ]; then break; fi
done
if [ "$state" = active ]; then
  log "etcd active (member $member)"
elif [ "$state" = activating ] && [ "$restarts" = 0 ]; then
  log "etcd starting (member $member reports ready once a quorum of members runs; etcd-healthy waits for that)"
else
  timeout 30 journalctl -u etcd -n 30 --no-pager 2>&1 | log_output || true
  die "etcd is ${"${state:-unknown}"} after $restarts automatic restarts: see its journal above"
fi
`;
  return nodeScript({ node: args.node, step: "etcd-configure" }, body);
}

/**
 * Step "etcd-healthy": waits (bounded) until `etcdctl endpoint health` succeeds on every endpoint, using the
 * member's own certificate as the client identity, then logs `member list` and checks it shows every endpoint's
 * member started. Read-only: safe to re-run.
 */
export function waitEtcdClusterHealthyScript(args: {
  node: string;
  /** Every member's client URL. */
  endpoints: string[];
  /** Bound of the whole wait in seconds. Default: stepTimeouts.etcdHealth. */
  timeoutSeconds?: number;
}): string {
  if (args.endpoints.length === 0) throw new Error("waitEtcdClusterHealthyScript: endpoints is empty");
  const bad = args.endpoints.filter((e) => !/^https:\/\/[0-9A-Za-z.-]+:\d+$/.test(e));
  if (bad.length > 0) throw new Error(`waitEtcdClusterHealthyScript: not https://host:port URLs: ${bad.join(", ")}`);
  const limit = args.timeoutSeconds ?? stepTimeouts.etcdHealth;
  if (!Number.isInteger(limit) || limit < 0) throw new Error("waitEtcdClusterHealthyScript: timeoutSeconds must be a whole number >= 0");
  const body = String.raw`
ENDPOINTS=${shellQuote(args.endpoints.join(","))}
EXPECTED=${args.endpoints.length}
LIMIT=${limit}
ETCDCTL="$R"${shellQuote(`${etcdPaths.binDir}/etcdctl`)}
CA_CERT="$R"${shellQuote(etcdPaths.caCert)}
CERT="$R"${shellQuote(etcdPaths.serverCert)}
KEY="$R"${shellQuote(etcdPaths.serverKey)}

etcd_ctl() {
  timeout 30 "$ETCDCTL" --endpoints="$ENDPOINTS" --cacert="$CA_CERT" --cert="$CERT" --key="$KEY" \
    --dial-timeout=3s --command-timeout=5s "$@"
}

deadline=$((SECONDS + LIMIT))
last=""
until out=$(etcd_ctl endpoint health 2>&1); do
  if [ "$SECONDS" -ge "$deadline" ]; then
    printf '%s\n' "$out" | log_output
    die "etcd not healthy on all $EXPECTED endpoints after ${limit}s (last health check above)"
  fi
  summary=$(printf '%s\n' "$out" | grep -v ' is healthy' | head -n 3 | tr '\n' ' ')
  if [ "$summary" != "$last" ]; then
    log "waiting for etcd health: $summary"
    last=$summary
  fi
  sleep "${"${KUBEADM_HA_POLL_SECONDS:-5}"}"
done
printf '%s\n' "$out" | log_output
members=$(etcd_ctl member list -w simple 2>&1) || die "etcdctl member list failed: $members"
log "member list:"
printf '%s\n' "$members" | log_output
started=$(printf '%s\n' "$members" | grep -c ', started, ' || true)
[ "$started" -eq "$EXPECTED" ] || die "member list shows $started started members, expected $EXPECTED"
log "all $EXPECTED etcd members healthy"
`;
  return nodeScript({ node: args.node, step: "etcd-healthy" }, body);
}

/** Where kubeadm's ClusterConfiguration etcd.external expects the control planes' etcd client files. */
export const apiserverEtcdClientPaths = {
  caFile: "/etc/kubernetes/pki/etcd/ca.crt",
  certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt",
  keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key",
} as const;

/**
 * Step "etcd-client-certs" on a control plane, before `kubeadm init`/join: stdin apiserverEtcdClientBundle();
 * writes the etcd CA (0644), the apiserver-etcd-client certificate (0644) and key (0600 root) where
 * apiserverEtcdClientPaths says. Changes nothing when the files already hold the bundle.
 */
export function installApiserverEtcdClientScript(args: { node: string }): string {
  const body = String.raw`
CA_FILE="$R"${shellQuote(apiserverEtcdClientPaths.caFile)}
CERT_FILE="$R"${shellQuote(apiserverEtcdClientPaths.certFile)}
KEY_FILE="$R"${shellQuote(apiserverEtcdClientPaths.keyFile)}
PENDING=""
${bundleHelpers}

install -d -m 0755 "$R/etc/kubernetes" "$(dirname "$CA_FILE")" "$(dirname "$CERT_FILE")"
install -d -m 0700 "$R/etc/kubeadm-ha"
stage=$(mktemp -d "$R/etc/kubeadm-ha/.etcd-client.XXXXXX")
trap 'rm -rf "$stage"' EXIT
write_secret_file "$stage/bundle.json"
[ -s "$stage/bundle.json" ] || die "no bundle on stdin"
unpack_bundle "$stage/bundle.json" "$stage" caCert clientCert clientKey
rm -f "$stage/bundle.json"
check_cert "the etcd CA certificate" "$stage/caCert"
check_cert "the apiserver-etcd-client certificate" "$stage/clientCert"
check_pair "the apiserver-etcd-client certificate" "$stage/clientCert" "$stage/clientKey"
check_signed "the apiserver-etcd-client certificate" "$stage/caCert" "$stage/clientCert"
place_file "$stage/caCert" "$CA_FILE" 0644 root:root
place_file "$stage/clientCert" "$CERT_FILE" 0644 root:root
place_file "$stage/clientKey" "$KEY_FILE" 0600 root:root
`;
  return nodeScript({ node: args.node, step: "etcd-client-certs" }, body);
}
