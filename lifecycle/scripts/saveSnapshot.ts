// Steps "etcd-snapshot" (save, verify, record, prune, upload) and "etcd-snapshot-tools" (etcdctl/etcdutl from the
// official release). Pure: arguments in, bash out.
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import {
  Problems,
  awsCliBash,
  etcdBashHelpers,
  etcdLifecycleDefaults,
  etcdLifecycleTimeouts,
  hasEtcdutl,
  hostPort,
  toolVars,
  type EtcdClientTls,
  type EtcdTools,
} from "./etcdCommon";

export interface SaveSnapshotArgs extends EtcdClientTls, EtcdTools {
  /** The node the step runs on; also part of every snapshot's file name. */
  node: string;
  /**
   * The cluster the snapshot is of (`<project>-<stack>`), recorded in the sidecar as `cluster`: a restore refuses a
   * snapshot whose sidecar names another cluster (restoreSnapshot.ts, fetchAndVerify).
   */
  cluster: string;
  /** The local member's client URL (stacked: https://127.0.0.1:2379). `snapshot save` takes exactly one. */
  endpoint: string;
  /** Where snapshots are kept on the node (the program passes etcdLifecycleDefaults.snapshotDir). */
  snapshotDir: string;
  /** Snapshots of this node kept in snapshotDir, the new one included (older ones and their sidecars are deleted). */
  keep: number;
  /** Why: "pre-upgrade-v1.36.0", "scheduled", "request-<id>". Part of the file name. */
  reason: string;
  /** Also copy the snapshot and its sidecar to <s3Uri>/<file name>, server-side encrypted. */
  upload?: { s3Uri: string };
}

/** The marker of the one stdout line of the snapshot step (see parseSnapshotSummary). */
export const snapshotSummaryKey = "KUBEADM_HA_SNAPSHOT";

export interface SnapshotSummary {
  /** Node path of the snapshot file. */
  path: string;
  revision: number;
  /** Live keys at the snapshot's revision (what clients see), or undefined when they could not be counted. */
  keys?: number;
  /** Every entry of every bucket in the database file (all revisions of every key, membership, metadata). */
  totalKey: number;
  totalSize: number;
  sha256: string;
  /** Where it was uploaded, or undefined. */
  s3?: string;
}

/** The summary the snapshot step prints on stdout. Throws when the line is missing or malformed. */
export function parseSnapshotSummary(stdout: string): SnapshotSummary {
  const line = stdout.split(/\r?\n/).find((l) => l.startsWith(`${snapshotSummaryKey} `));
  if (!line) throw new Error(`the snapshot step printed no ${snapshotSummaryKey} line`);
  const fields = Object.fromEntries(
    line
      .slice(snapshotSummaryKey.length + 1)
      .split(" ")
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
  const num = (k: string) => {
    if (!/^\d+$/.test(fields[k] ?? "")) throw new Error(`malformed ${snapshotSummaryKey} line (${k}): ${line}`);
    return Number(fields[k]);
  };
  if (!/^[0-9a-f]{64}$/.test(fields.sha256 ?? "")) throw new Error(`malformed ${snapshotSummaryKey} line (sha256): ${line}`);
  return {
    path: fields.path,
    revision: num("revision"),
    ...(fields.keys && fields.keys !== "null" ? { keys: num("keys") } : {}),
    totalKey: num("totalKey"),
    totalSize: num("totalSize"),
    sha256: fields.sha256,
    ...(fields.s3 && fields.s3 !== "-" ? { s3: fields.s3 } : {}),
  };
}

/** The file-name pattern of one node's snapshots: etcd-<node>-<UTC timestamp with ms>-<reason>.db. */
export function snapshotFilePattern(node: string): RegExp {
  return new RegExp(`^etcd-${node}-\\d{8}T\\d{6}\\.\\d{3}Z-[A-Za-z0-9._-]+\\.db$`);
}

/**
 * Step "etcd-snapshot". Saves a snapshot of the local member, verifies it, records it, prunes old ones, uploads it.
 *
 * - `etcdctl snapshot save` (bounded) into a hidden temporary name in snapshotDir, renamed only once verified: a
 *   file named etcd-<node>-*.db is always a whole, verified snapshot.
 * - Verified by `snapshot status -w json` (etcdutl from 3.5, etcdctl on 3.4); revision, totalKey, totalSize, the
 *   status hash, the file's sha256, the cluster it is of and its etcd CA's sha256 go to the sidecar <file>.json, which fetchAndVerify
 *   checks before a restore, with `keys`: the live keys at the snapshot's revision as the member reports them (totalKey counts db entries).
 * - Keeps the newest `keep` snapshots of this node (by the timestamp in the name) and their sidecars; other files in
 *   the directory are never touched. Runs under a lock: the timer and an upgrade's snapshot may coincide.
 * - Upload (optional): the snapshot, then its sidecar, with `aws s3 cp`, encrypted by the bucket's default encryption
 *   (S3-managed, or the snapshots.kmsKeyId key, which the bucket policy then requires: an explicit `--sse AES256` would
 *   be refused). A failed upload fails the step and keeps the local snapshot.
 * - Stdout: one line `KUBEADM_HA_SNAPSHOT path=… revision=… keys=… totalKey=… totalSize=… sha256=… s3=…`.
 */
export function saveSnapshotScript(args: SaveSnapshotArgs): string {
  const p = new Problems("saveSnapshotScript");
  p.label("node", args.node);
  p.word("cluster", args.cluster);
  p.tools("", args);
  p.tls("", args);
  p.etcdUrl("endpoint", args.endpoint);
  p.path("snapshotDir", args.snapshotDir);
  p.check(Number.isInteger(args.keep) && args.keep >= 1, "keep", `must be a whole number >= 1, got ${args.keep}`);
  p.word("reason", args.reason);
  if (args.upload) p.s3("upload.s3Uri", args.upload.s3Uri);
  p.throwIfAny();

  const endpoint = hostPort(args.endpoint);
  const s3Uri = args.upload ? args.upload.s3Uri.replace(/\/+$/, "") : "";
  const t = etcdLifecycleTimeouts;
  const body = String.raw`
${toolVars(args, args)}
ENDPOINT=${shellQuote(args.endpoint)}
DIR_NODE=${shellQuote(args.snapshotDir)}
DIR="$R$DIR_NODE"
KEEP=${args.keep}
REASON=${shellQuote(args.reason)}
CLUSTER=${shellQuote(args.cluster)}
S3_URI=${shellQuote(s3Uri)}
${etcdBashHelpers}
${args.upload ? awsCliBash : ""}
for f in "$CACERT" "$CERT" "$KEY"; do [ -r "$f" ] || die "cannot read $f"; done

install -d -m 0700 "$DIR"
exec 9>"$DIR/.lock"
flock -w ${t.snapshotSave} 9 || die "another snapshot of this node still runs (lock $DIR_NODE/.lock)"
# Leftovers of an interrupted run are never complete snapshots.
find "$DIR" -maxdepth 1 -name ".etcd-$NODE-*.tmp*" -delete

name="etcd-$NODE-$(date -u +%Y%m%dT%H%M%S.%3NZ)-$REASON.db"
file="$DIR/$name"
part="$DIR/.$name.tmp"
trap 'rm -f "$part" "$part.part" "$part.json"' EXIT
[ ! -e "$file" ] || die "$DIR_NODE/$name already exists"

# etcdctl's snapshot save keeps redialling a member that does not answer: ask it first, with short timeouts.
answers ${shellQuote(endpoint.host)} ${endpoint.port} || die "nothing answers on $ENDPOINT, no snapshot taken"
if ! out=$(etcdctl_tls 30 --endpoints="$ENDPOINT" --dial-timeout=5s --command-timeout=10s endpoint health 2>&1); then
  die "the member at $ENDPOINT is not healthy, no snapshot taken: $(printf '%s' "$out" | tail -n 1)"
fi
log "saving a snapshot of $ENDPOINT"
if ! etcdctl_tls ${t.snapshotSave} --endpoints="$ENDPOINT" --dial-timeout=10s snapshot save "$part" 2>&1 |
  tail -n 5 | log_output; then
  die "etcdctl snapshot save from $ENDPOINT failed"
fi
[ -s "$part" ] || die "etcdctl snapshot save wrote nothing"

status=$(snapshot_status "$part" 2>&1) || die "snapshot status refused the new snapshot: $status"
revision=$(json_number revision "$status")
total_key=$(json_number totalKey "$status")
total_size=$(json_number totalSize "$status")
hash=$(json_number hash "$status")
if [ -z "$revision" ] || [ -z "$total_key" ] || [ -z "$total_size" ] || [ -z "$hash" ]; then
  die "unexpected snapshot status output: $status"
fi
[ "$revision" -gt 0 ] || die "the snapshot has revision 0: not a snapshot of a live member"
# totalKey counts every key of every bucket (revisions, members, meta); keys is what a client sees: the live keys
# at the snapshot's revision, read from the member itself.
keys=$(etcdctl_tls 60 --endpoints="$ENDPOINT" --dial-timeout=10s --command-timeout=30s get "" --prefix \
  --keys-only --limit=1 --rev="$revision" -w json 2>/dev/null | grep -o '"count":[0-9]*' | cut -d: -f2 || true)
if [ -z "$keys" ]; then
  log "warning: could not count the keys at revision $revision (the snapshot itself is verified)"
  keys=null
fi
sha=$(sha256sum "$part" | cut -d' ' -f1)
bytes=$(stat -c %s "$part")
ca=$(ca_fingerprint) || die "cannot read the etcd CA certificate $CACERT"
printf '{"file":"%s","cluster":"%s","caSha256":"%s","node":"%s","reason":"%s","createdAt":"%s","endpoint":"%s","revision":%s,"keys":%s,"totalKey":%s,"totalSize":%s,"hash":%s,"sha256":"%s","bytes":%s}\n' \
  "$name" "$CLUSTER" "$ca" "$NODE" "$REASON" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ENDPOINT" "$revision" "$keys" "$total_key" "$total_size" \
  "$hash" "$sha" "$bytes" >"$part.json"
chmod 0600 "$part" "$part.json"
# The snapshot first: a sidecar never names a file that is not there.
mv -f "$part" "$file"
mv -f "$part.json" "$file.json"
log "verified $DIR_NODE/$name: revision $revision, $keys keys ($total_key db entries), $total_size bytes, sha256 $sha"

mapfile -t mine < <(find "$DIR" -maxdepth 1 -type f -name "etcd-$NODE-*.db" -printf '%f\n' |
  grep -E "^etcd-$NODE-[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[A-Za-z0-9._-]+\.db$" | LC_ALL=C sort)
if [ "${"${#mine[@]}"}" -gt "$KEEP" ]; then
  for old in "${"${mine[@]:0:${#mine[@]}-KEEP}"}"; do
    rm -f "$DIR/$old" "$DIR/$old.json"
    log "pruned $old (keeping the newest $KEEP)"
  done
fi

uploaded="-"
if [ -n "$S3_URI" ]; then
  ensure_aws_cli
  for f in "$file" "$file.json"; do
    retry 3 10 timeout ${t.transfer} aws s3 cp --only-show-errors "$f" "$S3_URI/$(basename "$f")" ||
      die "upload of $(basename "$f") to $S3_URI failed (the local snapshot is kept)"
  done
  uploaded="$S3_URI/$name"
  log "uploaded to $uploaded"
fi
printf '${snapshotSummaryKey} path=%s revision=%s keys=%s totalKey=%s totalSize=%s sha256=%s s3=%s\n' "$DIR_NODE/$name" \
  "$revision" "$keys" "$total_key" "$total_size" "$sha" "$uploaded"
`;
  return nodeScript({ node: args.node, step: "etcd-snapshot" }, body);
}

/** Release versions as the tarballs name them (3.5.16, 3.6.0-rc.1). */
const etcdVersionPattern = /^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/;

/** The official release tarball (linux) of an etcd version and the release's SHA256SUMS. */
export function etcdReleaseFiles(etcdVersion: string, arch: "amd64" | "arm64" = "amd64") {
  const base = `https://github.com/etcd-io/etcd/releases/download/v${etcdVersion}`;
  const tarball = `etcd-v${etcdVersion}-linux-${arch}.tar.gz`;
  return { tarball, topDir: `etcd-v${etcdVersion}-linux-${arch}`, tarballUrl: `${base}/${tarball}`, sumsUrl: `${base}/SHA256SUMS` };
}

/**
 * Step "etcd-snapshot-tools": etcdctl (and etcdutl from 3.5) of the cluster's etcd version in /usr/local/bin, from the
 * official release tarball, its sha256 checked against the release's SHA256SUMS (a mismatch is refused and nothing
 * is installed). Skipped when `etcdctl version` (and `etcdutl version`) already report that version. The etcd
 * server binary is not installed: on a stacked control plane etcd runs from kubeadm's static pod.
 */
export function snapshotToolsInstallScript(args: { node: string; etcdVersion: string; arch?: "amd64" | "arm64" }): string {
  const p = new Problems("snapshotToolsInstallScript");
  p.label("node", args.node);
  p.check(etcdVersionPattern.test(args.etcdVersion), "etcdVersion", `must look like 3.5.16 (no "v"), got ${JSON.stringify(args.etcdVersion)}`);
  p.throwIfAny();
  const release = etcdReleaseFiles(args.etcdVersion, args.arch);
  const tools = hasEtcdutl(args.etcdVersion) ? ["etcdctl", "etcdutl"] : ["etcdctl"];
  const body = String.raw`
VERSION=${shellQuote(args.etcdVersion)}
TARBALL=${shellQuote(release.tarball)}
TOP_DIR=${shellQuote(release.topDir)}
TARBALL_URL=${shellQuote(release.tarballUrl)}
SUMS_URL=${shellQuote(release.sumsUrl)}
BIN_DIR="$R"${shellQuote(etcdLifecycleDefaults.binDir)}
TOOLS=(${tools.join(" ")})

# tool_version TOOL: the version TOOL reports ("etcdctl version: 3.5.16"), empty when absent or broken.
tool_version() { "$BIN_DIR/$1" version 2>/dev/null | sed -n -E "s/^$1 version: ([^ ]+).*/\1/p" | head -n 1 || true; }
installed() {
  local tool
  for tool in "${"${TOOLS[@]}"}"; do [ "$(tool_version "$tool")" = "$VERSION" ] || return 1; done
}

if installed; then
  log "${tools.join(" and ")} $VERSION already installed in $BIN_DIR"
else
  work=$(mktemp -d "${"${TMPDIR:-/tmp}"}/etcd-tools.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  fetch_release_tarball "$TARBALL_URL" "$SUMS_URL" "$TARBALL" "$work"
  members=()
  for tool in "${"${TOOLS[@]}"}"; do members+=("$TOP_DIR/$tool"); done
  tar -xzf "$work/$TARBALL" -C "$work" --no-same-owner "${"${members[@]}"}" || die "$TARBALL lacks ${tools.join(" or ")} under $TOP_DIR/"
  install -d -m 0755 "$BIN_DIR"
  for tool in "${"${TOOLS[@]}"}"; do
    # Beside the target, then renamed: a concurrent snapshot never runs a half-written binary.
    install -m 0755 "$work/$TOP_DIR/$tool" "$BIN_DIR/.$tool.new"
    mv -f "$BIN_DIR/.$tool.new" "$BIN_DIR/$tool"
  done
  installed || die "the installed tools do not report version $VERSION"
  log "installed ${tools.join(" and ")} $VERSION in $BIN_DIR"
fi
`;
  return nodeScript({ node: args.node, step: "etcd-snapshot-tools" }, body);
}
