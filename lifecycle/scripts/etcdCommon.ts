// What the etcd snapshot and restore steps share: argument types, their validation, the defaults (each with its
// reason) and the bash helpers the scripts inline. Pure: no resources, no I/O.
import { apiserverPort, stepTimeouts } from "../../infra/defaults";
import { shellQuote } from "../../infra/scripts/common";

export type EtcdTopology = "stacked" | "external";

/** Paths of the etcd client tools on the node ($R-prefixed by the scripts). */
export interface EtcdTools {
  /** etcdctl: `snapshot save`, health and member list. */
  etcdctl: string;
  /**
   * etcdutl (etcd 3.5 and later): `snapshot status` and `snapshot restore` moved here in 3.5 and were removed from
   * etcdctl in 3.6. Absent means etcd 3.4: etcdctl does both.
   */
  etcdutl?: string;
}

/** A client certificate etcd accepts (kubeadm: /etc/kubernetes/pki/etcd/ca.crt + healthcheck-client or apiserver-etcd-client). */
export interface EtcdClientTls {
  cacert: string;
  cert: string;
  key: string;
}

/** One member of the cluster as the restore recreates it. */
export interface EtcdMemberAddress {
  /** etcd --name (kubeadm: the node name). */
  name: string;
  /** https://<private ip>:2380 */
  peerUrl: string;
  /** https://<private ip>:2379 */
  clientUrl: string;
}

/** Where the tools go, and the defaults of the snapshot and restore steps. */
export const etcdLifecycleDefaults = {
  /** snapshotToolsInstallScript puts etcdctl/etcdutl here; kubeadm puts none on the host (they live in the pod image). */
  binDir: "/usr/local/bin",
  /** Outside etcd's data dir (a restore renames that, and a member removal resets it). */
  snapshotDir: "/var/backups/kubeadm-ha/etcd",
  /** kubeadm's (and the external etcd hosts') data directory; the restore leaves a symlink here (see restoreSnapshot.ts). */
  dataDir: "/var/lib/etcd",
  /** One directory per restore requestId: the fetched snapshot, the manifests moved aside and the phase markers. */
  restoreRoot: "/var/lib/kubeadm-ha/restore",
  manifestDir: "/etc/kubernetes/manifests",
  /** External etcd: the unit and the environment file etcd.service reads (infra/scripts/etcdMember.ts). */
  etcdUnit: "etcd",
  etcdEnvFile: "/etc/etcd/etcd.env",
  etcdOwner: "etcd:etcd",
  /** The apiserver's secure port on every control plane. */
  apiserverPort,
  /**
   * Added to the restored revision (etcdutl --bump-revision with --mark-compacted), as the Kubernetes docs advise:
   * watchers and informers holding newer resourceVersions from before the restore then see a compaction and relist
   * instead of silently missing changes. etcdctl 3.4 has no such flag: there the restore keeps the revision.
   */
  bumpRevision: 1_000_000_000,
} as const;

/** Bounds (seconds) of the waits and commands in the snapshot and restore steps. */
export const etcdLifecycleTimeouts = {
  /** `snapshot save` of a multi-GiB database over loopback. */
  snapshotSave: 600,
  /** `snapshot status`/`restore` read the whole file. */
  snapshotRead: 600,
  /** One `aws s3 cp` or release download. */
  transfer: 900,
  /** The kubelet notices a moved manifest within its 20 s file check, then the pod's grace period. */
  podStop: 300,
  /** systemd's default stop timeout is 90 s. */
  serviceStop: 300,
  etcdHealthy: stepTimeouts.etcdHealth,
  /** The apiservers rebuild their caches from etcd before /readyz turns ok. */
  apiserverReady: 600,
} as const;

// ---- validation: every problem with its field, then one error -------------------------------------------------

/** A DNS label: node and member names (safe in file names, regexes, the initial-cluster list and logs). */
export const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Request ids and snapshot reasons: one word, safe in file names, S3 keys and the cluster token. */
export const wordPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** Absolute node paths without spaces, quotes or `..` segments. */
const pathPattern = /^\/[A-Za-z0-9._+/-]*$/;
/** An etcd URL: https://host:port, no path. */
const etcdUrlPattern = /^https:\/\/[A-Za-z0-9.-]+:\d{1,5}$/;
/** s3://bucket/key: a conservative key alphabet (what the program itself writes). */
const s3Pattern = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[A-Za-z0-9._+=/-]*)?$/;

const join = (field: string, key: string) => (field ? `${field}.${key}` : key);

export class Problems {
  private readonly list: string[] = [];
  constructor(private readonly builder: string) {}
  add(field: string, message: string): void {
    this.list.push(`${field}: ${message}`);
  }
  check(ok: boolean, field: string, message: string): void {
    if (!ok) this.add(field, message);
  }
  path(field: string, value: string | undefined): void {
    if (value === undefined) return;
    this.check(pathPattern.test(value) && !value.split("/").includes(".."), field,
      `must be an absolute path of letters, digits and . _ + / - (no ".."), got ${JSON.stringify(value)}`);
  }
  label(field: string, value: string): void {
    this.check(dnsLabel.test(value), field, `must be a DNS label (a-z, 0-9, -), got ${JSON.stringify(value)}`);
  }
  word(field: string, value: string): void {
    this.check(wordPattern.test(value), field, `must be one word of letters, digits and . _ - (at most 100), got ${JSON.stringify(value)}`);
  }
  etcdUrl(field: string, value: string): void {
    this.check(etcdUrlPattern.test(value), field, `must look like https://10.0.1.10:2379, got ${JSON.stringify(value)}`);
  }
  s3(field: string, value: string): void {
    this.check(s3Pattern.test(value), field, `must look like s3://bucket/prefix (key characters A-Z a-z 0-9 . _ + = / -), got ${JSON.stringify(value)}`);
  }
  /** field "" checks the tool paths as top-level arguments. */
  tools(field: string, tools: EtcdTools): void {
    this.path(join(field, "etcdctl"), tools.etcdctl);
    this.path(join(field, "etcdutl"), tools.etcdutl);
  }
  tls(field: string, tls: EtcdClientTls): void {
    this.path(join(field, "cacert"), tls.cacert);
    this.path(join(field, "cert"), tls.cert);
    this.path(join(field, "key"), tls.key);
  }
  /** Throws once, listing every problem. */
  throwIfAny(): void {
    if (this.list.length > 0) throw new Error(`${this.builder}: invalid arguments:\n- ${this.list.join("\n- ")}`);
  }
}

/** True when etcd x.y.z ships etcdutl (3.5 and later). */
export function hasEtcdutl(etcdVersion: string): boolean {
  const m = /^(\d+)\.(\d+)\./.exec(etcdVersion);
  if (!m) throw new Error(`an etcd version looks like 3.5.16, got ${JSON.stringify(etcdVersion)}`);
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 3 || (major === 3 && minor >= 5);
}

/** The tool paths snapshotToolsInstallScript installs for an etcd version. */
export function etcdToolPaths(etcdVersion: string): EtcdTools {
  const bin = etcdLifecycleDefaults.binDir;
  return hasEtcdutl(etcdVersion) ? { etcdctl: `${bin}/etcdctl`, etcdutl: `${bin}/etcdutl` } : { etcdctl: `${bin}/etcdctl` };
}

/** host and port of https://host:port. */
export function hostPort(url: string): { host: string; port: number } {
  const m = /^https?:\/\/([^:/]+):(\d+)/.exec(url);
  if (!m) throw new Error(`not a URL with a port: ${JSON.stringify(url)}`);
  return { host: m[1], port: Number(m[2]) };
}

// ---- bash ---------------------------------------------------------------------------------------------------------

/** Shell assignments of the tool paths and client certificate, all under $R. */
export function toolVars(tools: EtcdTools, tls?: EtcdClientTls): string {
  return [
    `ETCDCTL="$R"${shellQuote(tools.etcdctl)}`,
    tools.etcdutl ? `ETCDUTL="$R"${shellQuote(tools.etcdutl)}` : `ETCDUTL=""`,
    ...(tls
      ? [`CACERT="$R"${shellQuote(tls.cacert)}`, `CERT="$R"${shellQuote(tls.cert)}`, `KEY="$R"${shellQuote(tls.key)}`]
      : []),
  ].join("\n");
}

/** A TCP probe: is anything still serving on a port? */
/**
 * `ensure_aws_cli`: the AWS CLI the snapshot upload and the restore's fetch call, installed when missing (Ubuntu 24.04
 * ships it as a snap). Every step that runs `aws` includes this or waits for the step that does.
 */
export const awsCliBash = String.raw`# ensure_aws_cli: the AWS CLI is on PATH (snap aws-cli, bounded and retried), else the step ends.
ensure_aws_cli() {
  if command -v aws >/dev/null 2>&1; then return 0; fi
  log "installing the AWS CLI (snap aws-cli)"
  retry 3 10 timeout 600 snap install aws-cli --classic 2>&1 | log_output || die "could not install the AWS CLI"
  command -v aws >/dev/null 2>&1 || die "snap installed aws-cli, but no aws is on PATH"
}`;

export const probeBashHelpers = String.raw`# answers HOST PORT: something accepts a connection on HOST:PORT (curl exit 7: refused, 28: nothing within 3 s).
probe_rc=0
answers() {
  probe_rc=0
  curl -sk --max-time 3 -o /dev/null "https://$1:$2/" 2>/dev/null || probe_rc=$?
  [ "$probe_rc" -ne 7 ] && [ "$probe_rc" -ne 28 ]
}
closed() { ! answers "$1" "$2"; }`;

/**
 * Helpers over the tool variables: snapshot status/restore with the right tool for the version, etcdctl with the
 * client certificate, JSON number extraction without jq, and a TCP probe.
 */
export const etcdBashHelpers = String.raw`
[ -x "$ETCDCTL" ] || die "etcdctl not found at $ETCDCTL (install it with the snapshot-tools step)"
if [ -n "$ETCDUTL" ] && [ ! -x "$ETCDUTL" ]; then die "etcdutl not found at $ETCDUTL (install it with the snapshot-tools step)"; fi
# etcdctl_tls SECONDS ARGS...: etcdctl (API v3) with the client certificate, killed after SECONDS.
etcdctl_tls() {
  local limit=$1
  shift
  timeout "$limit" "$ETCDCTL" --cacert="$CACERT" --cert="$CERT" --key="$KEY" "$@"
}
# ca_fingerprint: the sha256 of the etcd CA certificate (DER) this member trusts. Which etcd a snapshot is of: a
# cluster rebuilt under the same name has a new CA.
ca_fingerprint() {
  local fp
  fp=$(openssl x509 -in "$CACERT" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1) || return 1
  # sha256 of nothing: openssl wrote no certificate.
  [ "$fp" != e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ] && printf '%s' "$fp"
}
# snapshot_status FILE: one JSON object {"hash","revision","totalKey","totalSize"} (etcdutl from 3.5, else etcdctl).
snapshot_status() {
  if [ -n "$ETCDUTL" ]; then
    timeout ${etcdLifecycleTimeouts.snapshotRead} "$ETCDUTL" snapshot status "$1" -w json
  else
    timeout ${etcdLifecycleTimeouts.snapshotRead} "$ETCDCTL" snapshot status "$1" -w json
  fi
}
# snapshot_restore FILE ARGS...: snapshot restore (etcdutl from 3.5, else etcdctl); checks the file's integrity hash.
snapshot_restore() {
  local file=$1
  shift
  if [ -n "$ETCDUTL" ]; then
    timeout ${etcdLifecycleTimeouts.snapshotRead} "$ETCDUTL" snapshot restore "$file" "$@"
  else
    timeout ${etcdLifecycleTimeouts.snapshotRead} "$ETCDCTL" snapshot restore "$file" "$@"
  fi
}
# json_number KEY JSON: the first integer value of "KEY" in JSON.
json_number() { printf '%s' "$2" | sed -n -E "s/.*\"$1\":[[:space:]]*([0-9]+).*/\1/p" | head -n 1; }
${probeBashHelpers}`;
