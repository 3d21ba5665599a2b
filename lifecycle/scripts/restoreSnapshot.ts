// The declared etcd restore as ordered phases, one builder each. Pure: arguments in, bash out.
//
// Important: a phase completes on every node it runs on before the next phase starts anywhere (restorePhases is
// that order as data). No etcd member stops while an apiserver can still write; every member is started before any
// is waited on, because a lone restored member has no quorum; the apiservers return only to a healthy cluster.
//
// State lives on each node in <restoreRoot>/<requestId>/ (0700): the verified snapshot, the manifests moved aside,
// and one marker file per finished phase. Every phase checks its own marker (a rerun after a failure resumes where
// the node stopped) and the markers of the phases it needs on this node (a phase never runs out of order).
//
// Data directories: the restore writes a NEW directory <dirname(dataDir)>/etcd-restored-<requestId>, renames the
// directory etcd used to <it>.pre-restore-<UTC timestamp> (never deleted), and leaves a relative symlink
// dataDir -> etcd-restored-<requestId>.
// - external: the symlink is how etcd.service finds the restored data (its environment file keeps
//   ETCD_DATA_DIR=/var/lib/etcd, so a later re-run of the configure step cannot point etcd back at the old data).
// - stacked: the etcd manifest's etcd-data hostPath is rewritten to the new directory (the container still sees it
//   at /var/lib/etcd, so --data-dir is unchanged); the symlink keeps a manifest that kubeadm regenerates from
//   `etcd.local.dataDir: /var/lib/etcd` (an upgrade) on the restored data too.
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { etcdMemberIdentityBash, nodeIdentityBash } from "../../infra/scripts/nodeIdentity";
import {
  Problems,
  awsCliBash,
  etcdBashHelpers,
  etcdLifecycleDefaults,
  probeBashHelpers,
  etcdLifecycleTimeouts,
  hostPort,
  toolVars,
  type EtcdClientTls,
  type EtcdMemberAddress,
  type EtcdTools,
  type EtcdTopology,
} from "./etcdCommon";

/** What identifies one restore on a node. */
export interface RestoreRequestArgs {
  /** The node the step runs on (log prefix). */
  node: string;
  /** restore.requestId from config: names the restore's directory, the new data dir and the new cluster token. */
  requestId: string;
  /** Default etcdLifecycleDefaults.restoreRoot. */
  restoreRoot?: string;
}

/** The etcd phases' arguments: one object per member, the same for every phase. */
export interface RestoreEtcdArgs extends RestoreRequestArgs {
  /**
   * This cluster (`<project>-<stack>`). fetchAndVerify refuses a snapshot whose sidecar names another cluster: an etcd
   * snapshot restores only the cluster it came from (its CA, service-account keys and endpoint are not in it).
   */
  cluster: string;
  topology: EtcdTopology;
  /** s3://bucket/key.db (fetched with `aws s3 cp`, sidecar <key>.json if present) or an absolute path on the member. */
  snapshot: string;
  tools: EtcdTools;
  /** A client certificate for health and member list. */
  tls: EtcdClientTls;
  /** This member's name; must be one of members. */
  member: string;
  /** Every member of the restored cluster, this one included. */
  members: EtcdMemberAddress[];
  /** The data directory etcd is configured with. Default /var/lib/etcd. */
  dataDir?: string;
  /**
   * etcdutl only (ignored with etcdctl 3.4, and with an etcdutl that predates the flag). Default
   * etcdLifecycleDefaults.bumpRevision; 0 disables.
   */
  bumpRevision?: number;
  /** stacked: default /etc/kubernetes/manifests. */
  manifestDir?: string;
  /** external: the environment file etcd.service reads. Default /etc/etcd/etcd.env. */
  envFile?: string;
  /** external: default "etcd". */
  unit?: string;
  /** external: owner of the restored data dir. Default "etcd:etcd". */
  owner?: string;
}

/** The apiserver phases' arguments (every control plane). */
export interface RestoreApiserverArgs extends RestoreRequestArgs {
  /** /readyz through the API load balancer, e.g. https://<nlb dns>:6443/readyz. */
  readyzUrl: string;
  /** Default 6443. */
  apiserverPort?: number;
  /** Default /etc/kubernetes/manifests. */
  manifestDir?: string;
}

export type RestoreEtcdPhase =
  | "fetchAndVerify"
  | "stopEtcd"
  | "restoreMember"
  | "pointEtcdAtRestoredData"
  | "startEtcd"
  | "waitEtcdHealthy";
export type RestoreApiserverPhase = "stopApiserver" | "startApiserver";
export type RestorePhase = RestoreEtcdPhase | RestoreApiserverPhase;

/**
 * The restore plan as data: each phase runs on every node of its group (etcd members: the control planes when
 * stacked, the etcd hosts when external), and finishes everywhere before the next phase begins.
 */
export const restorePhases: readonly { phase: RestorePhase; on: "etcdMembers" | "controlPlanes" }[] = [
  { phase: "fetchAndVerify", on: "etcdMembers" },
  { phase: "stopApiserver", on: "controlPlanes" },
  { phase: "stopEtcd", on: "etcdMembers" },
  { phase: "restoreMember", on: "etcdMembers" },
  { phase: "pointEtcdAtRestoredData", on: "etcdMembers" },
  { phase: "startEtcd", on: "etcdMembers" },
  { phase: "waitEtcdHealthy", on: "etcdMembers" },
  { phase: "startApiserver", on: "controlPlanes" },
];

/** The stdout line of fetchAndVerify: every member must report the same sha256 (the same snapshot). */
export const restoreSnapshotSummaryKey = "KUBEADM_HA_RESTORE_SNAPSHOT";

/** The directory a restore writes: a sibling of dataDir. */
export function restoredDataDir(requestId: string, dataDir: string = etcdLifecycleDefaults.dataDir): string {
  const parent = dataDir.replace(/\/[^/]+\/?$/, "") || "/";
  return `${parent === "/" ? "" : parent}/etcd-restored-${requestId}`;
}

/** The new --initial-cluster-token: the same on every member of one restore, new for every restore. */
export function restoredClusterToken(requestId: string): string {
  return `etcd-restore-${requestId}`;
}

/** The restore's directory on a node. */
export function restoreDir(args: RestoreRequestArgs): string {
  return `${args.restoreRoot ?? etcdLifecycleDefaults.restoreRoot}/${args.requestId}`;
}

const unitPattern = /^[A-Za-z0-9@._-]+$/;
const ownerPattern = /^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$/;

function checkRequest(p: Problems, args: RestoreRequestArgs): void {
  p.label("node", args.node);
  p.word("requestId", args.requestId);
  p.path("restoreRoot", args.restoreRoot);
}

function checkEtcd(builder: string, args: RestoreEtcdArgs): void {
  const p = new Problems(builder);
  checkRequest(p, args);
  p.word("cluster", args.cluster);
  p.check(args.topology === "stacked" || args.topology === "external", "topology", `must be "stacked" or "external", got ${JSON.stringify(args.topology)}`);
  if (args.snapshot.startsWith("s3://")) p.s3("snapshot", args.snapshot);
  else p.path("snapshot", args.snapshot);
  p.tools("tools", args.tools);
  p.tls("tls", args.tls);
  p.label("member", args.member);
  p.check(args.members.length > 0, "members", "must list every member of the restored cluster");
  const names = args.members.map((m) => m.name);
  args.members.forEach((m, i) => {
    p.label(`members[${i}].name`, m.name);
    p.etcdUrl(`members[${i}].peerUrl`, m.peerUrl);
    p.etcdUrl(`members[${i}].clientUrl`, m.clientUrl);
    if (names.indexOf(m.name) !== i) p.add(`members[${i}].name`, `${m.name} appears twice`);
  });
  p.check(names.includes(args.member), "member", `${args.member} is not in members (${names.join(", ")})`);
  p.path("dataDir", args.dataDir);
  p.check(args.dataDir === undefined || args.dataDir.replace(/\/+$/, "").split("/").length > 2, "dataDir", "must not be a top-level directory");
  p.path("manifestDir", args.manifestDir);
  p.path("envFile", args.envFile);
  if (args.unit !== undefined) p.check(unitPattern.test(args.unit), "unit", `must be a systemd unit name, got ${JSON.stringify(args.unit)}`);
  if (args.owner !== undefined) p.check(ownerPattern.test(args.owner), "owner", `must be user or user:group, got ${JSON.stringify(args.owner)}`);
  if (args.bumpRevision !== undefined) {
    p.check(Number.isSafeInteger(args.bumpRevision) && args.bumpRevision >= 0, "bumpRevision", `must be a whole number >= 0, got ${args.bumpRevision}`);
  }
  p.throwIfAny();
}

function checkApiserver(builder: string, args: RestoreApiserverArgs): void {
  const p = new Problems(builder);
  checkRequest(p, args);
  p.check(/^https:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/readyz$/.test(args.readyzUrl), "readyzUrl", `must look like https://api.example:6443/readyz, got ${JSON.stringify(args.readyzUrl)}`);
  const port = args.apiserverPort ?? etcdLifecycleDefaults.apiserverPort;
  p.check(Number.isInteger(port) && port >= 1 && port <= 65535, "apiserverPort", `must be a TCP port, got ${port}`);
  p.path("manifestDir", args.manifestDir);
  p.throwIfAny();
}

/** The frame every restore phase shares: the restore directory and its markers. */
function requestVars(args: RestoreRequestArgs, manifestDir: string | undefined): string {
  return String.raw`
REQUEST=${shellQuote(args.requestId)}
RD_NODE=${shellQuote(restoreDir(args))}
RD="$R$RD_NODE"
MANIFESTS_NODE=${shellQuote(manifestDir ?? etcdLifecycleDefaults.manifestDir)}
MANIFESTS="$R$MANIFESTS_NODE"
# done PHASE: this node finished PHASE of this restore. mark PHASE [TEXT]: records it (atomically).
done_() { [ -e "$RD/$1.done" ]; }
mark() { printf '%s\n' "${"${2:-}"}" >"$RD/$1.done.tmp" && mv -f "$RD/$1.done.tmp" "$RD/$1.done"; }
need() { done_ "$1" || die "phase $1 of restore $REQUEST has not finished on this node: $2"; }
# put_manifest SRC NAME: SRC becomes MANIFESTS/NAME atomically (the kubelet ignores dot files).
put_manifest() {
  cp -f "$1" "$MANIFESTS/.$2.restore-tmp"
  mv -f "$MANIFESTS/.$2.restore-tmp" "$MANIFESTS/$2"
}
`;
}

/**
 * The etcd phases' frame: the restore's variables, the tool helpers, then the body. A variable is declared only when
 * the helpers or the body use it (shellcheck flags unused ones).
 */
function etcdFrame(args: RestoreEtcdArgs, body: string): string {
  const self = args.members.find((m) => m.name === args.member) as EtcdMemberAddress;
  const client = hostPort(self.clientUrl);
  const dataDir = (args.dataDir ?? etcdLifecycleDefaults.dataDir).replace(/\/+$/, "");
  const restored = restoredDataDir(args.requestId, dataDir);
  // Important: every phase first checks that the machine is the member it means (a stacked member's kubelet, an
  // external member's ETCD_NAME): a wrong address must not stop, overwrite or restart another member's etcd.
  const identity =
    args.topology === "stacked"
      ? `${nodeIdentityBash}\nrequire_node_identity "run restore $REQUEST on it"`
      : `${etcdMemberIdentityBash}\nrequire_etcd_member_identity "run restore $REQUEST on it" "$MEMBER"`;
  const rest = `${etcdBashHelpers}\n${identity}\n${body}`;
  const vars: [string, string][] = [
    ["MEMBER", shellQuote(args.member)],
    ["CLIENT_HOST", shellQuote(client.host)],
    ["CLIENT_PORT", String(client.port)],
    ["DATA_DIR_NODE", shellQuote(dataDir)],
    ["NEW_DIR_NODE", shellQuote(restored)],
    ["NEW_DIR", `"$R$NEW_DIR_NODE"`],
  ];
  // A variable is needed when the text uses it or a needed variable's value does (NEW_DIR uses NEW_DIR_NODE).
  const needed = new Set<string>();
  const uses = (name: string, text: string) => new RegExp(`\\$\\{?${name}\\b`).test(text);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [name] of vars) {
      if (needed.has(name)) continue;
      if (uses(name, rest) || vars.some(([other, value]) => needed.has(other) && uses(name, value))) {
        needed.add(name);
        grew = true;
      }
    }
  }
  const declared = vars.filter(([name]) => needed.has(name));
  return [
    requestVars(args, args.manifestDir),
    ...declared.map(([name, value]) => `${name}=${value}`),
    toolVars(args.tools, args.tls),
    rest,
  ].join("\n");
}

/** Indents every non-empty line by two spaces (a block nested in an if). */
function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => (l === "" ? l : `  ${l}`))
    .join("\n");
}

/** awk: the line number of the hostPath `path:` of the pod volume named etcd-data (kubeadm's etcd manifest). */
const etcdDataPathLineAwk = String.raw`
function flush() { if (name == "etcd-data" && pathline) print pathline; name = ""; pathline = 0 }
/^[[:space:]]*volumes:[[:space:]]*$/ { invol = 1; match($0, /^[[:space:]]*/); vindent = RLENGTH; next }
invol && !/^[[:space:]]*(#.*)?$/ {
  match($0, /^[[:space:]]*/); ind = RLENGTH
  if (ind < vindent || (ind == vindent && $0 !~ /^[[:space:]]*- /)) { flush(); invol = 0; next }
  if ($0 ~ /^[[:space:]]*- / && ind <= vindent + 2) flush()
  line = $0; sub(/^[[:space:]]*(- )?/, "", line)
  if (line ~ /^name:/) { sub(/^name:[[:space:]]*/, "", line); gsub(/"/, "", line); name = line }
  if (line ~ /^path:/) pathline = NR
}
END { if (invol) flush() }
`;

if (etcdDataPathLineAwk.includes("'")) throw new Error("the awk program must not contain a single quote");
const manifestHelpers = String.raw`
# data_path_line MANIFEST: line number of the etcd-data volume's hostPath path (empty when there is none).
data_path_line() {
  awk '${etcdDataPathLineAwk.trim()}' "$1" | head -n 1
}
# data_host_path MANIFEST: the host directory etcd's data lives in, per the manifest.
data_host_path() {
  local n
  n=$(data_path_line "$1")
  [ -n "$n" ] || return 1
  sed -n "${"${n}"}s/^[[:space:]]*path:[[:space:]]*//p" "$1" | tr -d "\"'" | sed 's/[[:space:]]*$//'
}
`;

/**
 * Phase 1, every etcd member: fetch the snapshot into the restore directory and verify it before anything is
 * touched: a sidecar (when there is one) that names another cluster, or whose etcd CA is not this member's (a cluster
 * rebuilt under the same name), is refused first (restore.snapshot must be this cluster's own), then `snapshot status`, the sha256/revision/key count recorded in the sidecar, and a trial
 * `snapshot restore` into a scratch directory (which checks the integrity hash etcd appends to every snapshot it
 * streams; so a corrupt or truncated file is refused even without a sidecar). A refused snapshot leaves no file
 * behind. Stdout: `KUBEADM_HA_RESTORE_SNAPSHOT sha256=… revision=… totalKey=…`.
 */
export function fetchAndVerifyScript(args: RestoreEtcdArgs): string {
  checkEtcd("fetchAndVerifyScript", args);
  const t = etcdLifecycleTimeouts;
  const body = etcdFrame(args, String.raw`
SNAPSHOT=${shellQuote(args.snapshot)}
CLUSTER=${shellQuote(args.cluster)}
${args.snapshot.startsWith("s3://") ? awsCliBash : ""}
install -d -m 0700 "$RD"
json_string() { printf '%s' "$2" | sed -n -E "s/.*\"$1\":[[:space:]]*\"([^\"]*)\".*/\1/p" | head -n 1; }
refuse() {
  rm -f "$RD/snapshot.db.part" "$RD/sidecar.json.part"
  rm -rf "$RD/verify.etcd"
  die "refusing snapshot $SNAPSHOT: $*; nothing was changed"
}

if done_ fetchAndVerify; then
  [ "$(cat "$RD/source")" = "$SNAPSHOT" ] ||
    die "restore $REQUEST already verified $(cat "$RD/source"); another snapshot needs a new requestId"
  recorded=$(cat "$RD/fetchAndVerify.done")
  sha=$(sha256sum "$RD/snapshot.db" | cut -d' ' -f1)
  [ "$sha" = "$(json_string sha256 "$recorded")" ] || die "$RD_NODE/snapshot.db changed since it was verified"
  revision=$(json_number revision "$recorded")
  total_key=$(json_number totalKey "$recorded")
  log "snapshot already fetched and verified"
else
  rm -f "$RD/snapshot.db.part" "$RD/sidecar.json.part" "$RD/sidecar.json"
  printf '%s\n' "$SNAPSHOT" >"$RD/source"
  case $SNAPSHOT in
    s3://*)
      ensure_aws_cli
      log "fetching $SNAPSHOT"
      retry 3 10 timeout ${t.transfer} aws s3 cp --only-show-errors "$SNAPSHOT" "$RD/snapshot.db.part" ||
        refuse "could not fetch it"
      if timeout 60 aws s3 ls "$SNAPSHOT.json" >/dev/null 2>&1; then
        retry 3 10 timeout ${t.transfer} aws s3 cp --only-show-errors "$SNAPSHOT.json" "$RD/sidecar.json.part" ||
          refuse "could not fetch its sidecar $SNAPSHOT.json"
      fi
      ;;
    *)
      [ -f "$R$SNAPSHOT" ] || refuse "no such file on this member"
      cp -f "$R$SNAPSHOT" "$RD/snapshot.db.part"
      if [ -f "$R$SNAPSHOT.json" ]; then cp -f "$R$SNAPSHOT.json" "$RD/sidecar.json.part"; fi
      ;;
  esac
  [ -s "$RD/snapshot.db.part" ] || refuse "the file is empty"

  # The sidecar first: another cluster's snapshot, then a sha256 mismatch, are the plainest reasons to refuse.
  sidecar=""
  if [ -s "$RD/sidecar.json.part" ]; then
    sidecar=$(cat "$RD/sidecar.json.part")
    # Sidecars written before the save step recorded the cluster have no "cluster": such a snapshot is still this
    # cluster's when it comes from this stack's own S3 prefix (validation refuses any other) or a member's own disk.
    of=$(json_string cluster "$sidecar")
    if [ -n "$of" ] && [ "$of" != "$CLUSTER" ]; then
      refuse "its sidecar says it is a snapshot of cluster $of, and this is cluster $CLUSTER. An etcd snapshot restores only the cluster it came from (its CA, service-account keys and endpoint are not in it): for a new cluster or a topology change, build the new cluster and move the workloads with their manifests or Velero-style backups"
    fi
    # The same name is not the same cluster: one destroyed and built again under it has a new etcd CA. Sidecars
    # written before the save step recorded the CA have none, and are judged by the cluster's name alone.
    ca=$(json_string caSha256 "$sidecar")
    if [ -n "$ca" ]; then
      here=$(ca_fingerprint) || refuse "cannot read this member's etcd CA certificate $CACERT to compare it with the snapshot's"
      if [ "$ca" != "$here" ]; then
        refuse "it was taken from an etcd whose CA (sha256 $ca) is not this cluster's ($here): cluster $CLUSTER was built anew since, and an etcd snapshot restores only the cluster it came from"
      fi
    fi
  fi
  sha=$(sha256sum "$RD/snapshot.db.part" | cut -d' ' -f1)
  if [ -n "$sidecar" ]; then
    want=$(json_string sha256 "$sidecar")
    [ "$sha" = "$want" ] || refuse "its sha256 is $sha, the sidecar records $want"
  fi
  # snapshot status reads the database (bbolt panics on a damaged page: keep the message, not the trace).
  if ! status=$(snapshot_status "$RD/snapshot.db.part" 2>&1); then
    refuse "snapshot status failed: $(printf '%s\n' "$status" | grep -m 1 -iE 'panic|error|invalid' || printf '%s' "$status" | tail -n 1)"
  fi
  revision=$(json_number revision "$status")
  total_key=$(json_number totalKey "$status")
  if [ -z "$revision" ] || [ -z "$total_key" ]; then refuse "unexpected snapshot status output: $status"; fi
  if [ -n "$sidecar" ]; then
    [ "$(json_number revision "$sidecar")" = "$revision" ] || refuse "status says revision $revision, the sidecar another"
    [ "$(json_number totalKey "$sidecar")" = "$total_key" ] || refuse "status says $total_key db entries, the sidecar another"
    log "sha256, revision and db entries match the sidecar"
  else
    log "no sidecar: verified by snapshot status and a trial restore only"
  fi
  rm -rf "$RD/verify.etcd"
  if ! out=$(snapshot_restore "$RD/snapshot.db.part" --data-dir "$RD/verify.etcd" 2>&1); then
    refuse "a trial restore failed: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
  fi
  rm -rf "$RD/verify.etcd"
  mv -f "$RD/snapshot.db.part" "$RD/snapshot.db"
  if [ -f "$RD/sidecar.json.part" ]; then mv -f "$RD/sidecar.json.part" "$RD/sidecar.json"; fi
  mark fetchAndVerify "$(printf '{"sha256":"%s","revision":%s,"totalKey":%s}' "$sha" "$revision" "$total_key")"
  log "verified: revision $revision, $total_key keys, sha256 $sha"
fi
printf '${restoreSnapshotSummaryKey} sha256=%s revision=%s totalKey=%s\n' "$sha" "$revision" "$total_key"
`);
  return nodeScript({ node: args.node, step: "restore-fetch" }, body);
}

const apiserverManifests = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];

/**
 * Phase 2, every control plane: move the apiserver's static manifest (and the controller-manager's and scheduler's,
 * which would otherwise keep state cached from before the restore) aside into the restore directory, then wait
 * until nothing answers on the apiserver port.
 */
export function stopApiserverScript(args: RestoreApiserverArgs): string {
  checkApiserver("stopApiserverScript", args);
  const port = args.apiserverPort ?? etcdLifecycleDefaults.apiserverPort;
  const body = String.raw`${requestVars(args, args.manifestDir)}
PORT=${port}
${probeBashHelpers}
${nodeIdentityBash}
require_node_identity "stop its apiserver for restore $REQUEST"
install -d -m 0700 "$RD/manifests"

if done_ stopApiserver; then
  log "apiserver already stopped for restore $REQUEST"
else
  for m in ${apiserverManifests.join(" ")}; do
    if [ -f "$MANIFESTS/$m.yaml" ]; then
      [ ! -e "$RD/manifests/$m.yaml" ] ||
        die "$m.yaml is both in $MANIFESTS_NODE and set aside in $RD_NODE/manifests: resolve by hand"
      mv "$MANIFESTS/$m.yaml" "$RD/manifests/$m.yaml"
      log "moved $MANIFESTS_NODE/$m.yaml aside"
    elif [ -f "$RD/manifests/$m.yaml" ]; then
      log "$m.yaml already set aside"
    elif [ "$m" = kube-apiserver ]; then
      die "no kube-apiserver.yaml in $MANIFESTS_NODE or $RD_NODE/manifests: is this a control plane?"
    else
      log "no $m.yaml on this node: nothing to stop"
    fi
  done
  wait_until ${etcdLifecycleTimeouts.podStop} "the apiserver to stop answering on port $PORT" closed 127.0.0.1 "$PORT"
  mark stopApiserver
  log "apiserver stopped"
fi
`;
  return nodeScript({ node: args.node, step: "restore-stop-apiserver" }, body);
}

/**
 * Phase 3, every etcd member: stop etcd (stacked: move the etcd manifest aside; external: `systemctl stop`) and wait
 * until its client port is closed. Needs a verified snapshot on this member, and on a stacked node the stopped
 * apiserver.
 */
export function stopEtcdScript(args: RestoreEtcdArgs): string {
  checkEtcd("stopEtcdScript", args);
  const body = etcdFrame(args, String.raw`
need fetchAndVerify "no verified snapshot on this member"
if done_ stopEtcd; then
  log "etcd already stopped for restore $REQUEST"
else
${stopEtcdBody(args)}
  wait_until ${etcdLifecycleTimeouts.serviceStop} "etcd to stop answering on $CLIENT_HOST:$CLIENT_PORT" closed "$CLIENT_HOST" "$CLIENT_PORT"
  mark stopEtcd
  log "etcd stopped"
fi
`);
  return nodeScript({ node: args.node, step: "restore-stop-etcd" }, body);
}

function stopEtcdBody(args: RestoreEtcdArgs): string {
  switch (args.topology) {
    case "stacked":
      return String.raw`  need stopApiserver "the apiserver on this node still runs"
  install -d -m 0700 "$RD/manifests"
  if [ -f "$MANIFESTS/etcd.yaml" ]; then
    [ ! -e "$RD/manifests/etcd.yaml" ] || die "etcd.yaml is both in $MANIFESTS_NODE and set aside in $RD_NODE/manifests: resolve by hand"
    mv "$MANIFESTS/etcd.yaml" "$RD/manifests/etcd.yaml"
    log "moved $MANIFESTS_NODE/etcd.yaml aside"
  elif [ -f "$RD/manifests/etcd.yaml" ]; then
    log "etcd.yaml already set aside"
  else
    die "no etcd.yaml in $MANIFESTS_NODE or $RD_NODE/manifests"
  fi`;
    case "external": {
      const unit = args.unit ?? etcdLifecycleDefaults.etcdUnit;
      return String.raw`  timeout ${etcdLifecycleTimeouts.serviceStop} systemctl stop ${shellQuote(unit)} || die "systemctl stop ${unit} failed"
  log "stopped ${unit}.service"`;
    }
    default: {
      const never: never = args.topology;
      throw new Error(`unknown topology ${String(never)}`);
    }
  }
}

/**
 * Phase 4, every etcd member: `snapshot restore` of the verified snapshot (etcdutl from 3.5, etcdctl on 3.4) with
 * this member's --name and --initial-advertise-peer-urls, the shared --initial-cluster and a new
 * --initial-cluster-token, into a NEW data dir (written under a temporary name, renamed when complete). Then the
 * directory etcd used is renamed to <it>.pre-restore-<UTC timestamp>: kept, never deleted. External: the new
 * directory is chowned to the etcd user.
 */
export function restoreMemberScript(args: RestoreEtcdArgs): string {
  checkEtcd("restoreMemberScript", args);
  const self = args.members.find((m) => m.name === args.member) as EtcdMemberAddress;
  const initialCluster = args.members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
  const bump = args.tools.etcdutl ? (args.bumpRevision ?? etcdLifecycleDefaults.bumpRevision) : 0;
  let currentDir: string;
  let chown = "";
  switch (args.topology) {
    case "stacked":
      currentDir = String.raw`cur=$(data_host_path "$RD/manifests/etcd.yaml") || die "the etcd manifest has no etcd-data hostPath volume"`;
      break;
    case "external":
      currentDir = `cur=$DATA_DIR_NODE`;
      chown = `chown -R ${shellQuote(args.owner ?? etcdLifecycleDefaults.etcdOwner)} "$NEW_DIR" || die "chown of $NEW_DIR_NODE failed"`;
      break;
    default: {
      const never: never = args.topology;
      throw new Error(`unknown topology ${String(never)}`);
    }
  }
  const body = etcdFrame(args, String.raw`
${manifestHelpers}
INITIAL_CLUSTER=${shellQuote(initialCluster)}
PEER_URL=${shellQuote(self.peerUrl)}
TOKEN=${shellQuote(restoredClusterToken(args.requestId))}
BUMP=${bump}
need stopEtcd "etcd on this member was not stopped"
if done_ restoreMember && done_ keepOldData; then
  log "snapshot already restored into $NEW_DIR_NODE; old data dir kept as $(cat "$RD/keepOldData.done")"
else
${indent(String.raw`closed "$CLIENT_HOST" "$CLIENT_PORT" ||
  die "something answers on $CLIENT_HOST:$CLIENT_PORT (curl exit $probe_rc): refusing to restore under a running etcd"

if done_ restoreMember; then
  log "snapshot already restored into $NEW_DIR_NODE"
else
  if [ -d "$NEW_DIR" ]; then
    log "$NEW_DIR_NODE is complete from an earlier attempt"
  else
    # Only this phase writes here: a leftover is an interrupted restore of this request.
    rm -rf "$NEW_DIR.partial"
    extra=()
    if [ "$BUMP" -gt 0 ]; then
      restore_help=$("$ETCDUTL" snapshot restore --help 2>&1 || true)
      if [[ $restore_help == *--bump-revision* ]]; then
        extra=(--bump-revision "$BUMP" --mark-compacted)
      else
        log "warning: this etcdutl predates --bump-revision: restoring without a revision bump"
      fi
    fi
    log "restoring the snapshot as member $MEMBER into $NEW_DIR_NODE"
    if ! out=$(snapshot_restore "$RD/snapshot.db" --name "$MEMBER" --initial-cluster "$INITIAL_CLUSTER" \
      --initial-cluster-token "$TOKEN" --initial-advertise-peer-urls "$PEER_URL" --data-dir "$NEW_DIR.partial" \
      "${"${extra[@]}"}" 2>&1); then
      printf '%s\n' "$out" | tail -n 5 | log_output
      rm -rf "$NEW_DIR.partial"
      die "snapshot restore failed; the old data dir is untouched"
    fi
    chmod 0700 "$NEW_DIR.partial"
    mv -T "$NEW_DIR.partial" "$NEW_DIR"
  fi${chown ? `\n  ${chown}` : ""}
  mark restoreMember "$NEW_DIR_NODE"
fi

if done_ keepOldData; then
  log "old data dir already kept as $(cat "$RD/keepOldData.done")"
else
  ${currentDir}
  old=$(readlink -f "$R$cur")
  if [ -e "$RD/keepOldData.pending" ]; then
    kept=$(cat "$RD/keepOldData.pending")
  else
    kept="${"${old#\"$R\"}"}.pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
    printf '%s\n' "$kept" >"$RD/keepOldData.pending"
  fi
  if [ "$old" = "$NEW_DIR" ]; then
    die "etcd already uses $NEW_DIR_NODE"
  elif [ -d "$old" ]; then
    mv -T "$old" "$R$kept"
    log "kept the old data dir ${"${old#\"$R\"}"} as $kept"
  elif [ -d "$R$kept" ]; then
    log "old data dir already kept as $kept"
  else
    log "no old data dir at $cur: nothing to keep"
    kept=""
  fi
  mark keepOldData "$kept"
  rm -f "$RD/keepOldData.pending"
fi`)}
fi
`);
  return nodeScript({ node: args.node, step: "restore-member" }, body);
}

/**
 * Phase 5a, every etcd member: make etcd's configuration name the restored directory. Both topologies: dataDir
 * becomes a relative symlink to etcd-restored-<requestId> (atomically). Stacked: also rewrites the etcd-data
 * hostPath of the set-aside manifest (kept as etcd.yaml; the rewritten copy is etcd.yaml.restored). External: checks
 * that the unit's environment file reads dataDir (else the symlink would not be used).
 */
export function pointEtcdAtRestoredDataScript(args: RestoreEtcdArgs): string {
  checkEtcd("pointEtcdAtRestoredDataScript", args);
  let configure: string;
  switch (args.topology) {
    case "stacked":
      configure = String.raw`  src="$RD/manifests/etcd.yaml"
  n=$(data_path_line "$src")
  [ -n "$n" ] || die "the etcd manifest has no etcd-data hostPath volume"
  sed "${"${n}"}s|path:.*|path: $NEW_DIR_NODE|" "$src" >"$RD/manifests/etcd.yaml.restored.tmp"
  [ "$(data_host_path "$RD/manifests/etcd.yaml.restored.tmp")" = "$NEW_DIR_NODE" ] || die "could not rewrite the etcd-data hostPath"
  mv -f "$RD/manifests/etcd.yaml.restored.tmp" "$RD/manifests/etcd.yaml.restored"
  log "etcd manifest: etcd-data hostPath -> $NEW_DIR_NODE"`;
      break;
    case "external": {
      const envFile = args.envFile ?? etcdLifecycleDefaults.etcdEnvFile;
      configure = String.raw`  ENV_FILE_NODE=${shellQuote(envFile)}
  if [ -f "$R$ENV_FILE_NODE" ]; then
    configured=$(sed -n 's/^ETCD_DATA_DIR=//p' "$R$ENV_FILE_NODE" | tail -n 1)
    if [ -n "$configured" ] && [ "$configured" != "$DATA_DIR_NODE" ]; then
      die "$ENV_FILE_NODE sets ETCD_DATA_DIR=$configured, not $DATA_DIR_NODE: etcd would not use the restored data"
    fi
  fi`;
      break;
    }
    default: {
      const never: never = args.topology;
      throw new Error(`unknown topology ${String(never)}`);
    }
  }
  const body = etcdFrame(args, String.raw`
${manifestHelpers}
need restoreMember "the snapshot was not restored"
need keepOldData "the old data dir was not kept"
if done_ pointEtcdAtRestoredData; then
  log "etcd already points at $NEW_DIR_NODE"
else
  [ -d "$NEW_DIR" ] || die "$NEW_DIR_NODE is missing"
${configure}
  link="$R$DATA_DIR_NODE"
  if [ -e "$link" ] && [ ! -L "$link" ]; then die "$DATA_DIR_NODE is still a directory: refusing to replace it"; fi
  ln -sfn "$(basename "$NEW_DIR_NODE")" "$link.restore-tmp"
  mv -fT "$link.restore-tmp" "$link"
  log "$DATA_DIR_NODE -> $(basename "$NEW_DIR_NODE")"
  mark pointEtcdAtRestoredData
fi
`);
  return nodeScript({ node: args.node, step: "restore-point-etcd" }, body);
}

/**
 * Phase 5b, every etcd member: start etcd on the restored data (stacked: the rewritten manifest goes back into the
 * manifest dir; external: `systemctl start --no-block`: etcd.service is Type=notify and reports ready only with a
 * quorum, which the members started after this one provide). Does not wait: waitEtcdHealthy does, once all started.
 */
export function startEtcdScript(args: RestoreEtcdArgs): string {
  checkEtcd("startEtcdScript", args);
  let start: string;
  switch (args.topology) {
    case "stacked":
      start = String.raw`  if [ -f "$MANIFESTS/etcd.yaml" ] && ! cmp -s "$MANIFESTS/etcd.yaml" "$RD/manifests/etcd.yaml.restored"; then
    die "$MANIFESTS_NODE/etcd.yaml is back but is not the restored manifest: resolve by hand"
  fi
  put_manifest "$RD/manifests/etcd.yaml.restored" etcd.yaml
  log "etcd manifest back in $MANIFESTS_NODE"`;
      break;
    case "external": {
      const unit = args.unit ?? etcdLifecycleDefaults.etcdUnit;
      start = String.raw`  timeout 60 systemctl start --no-block ${shellQuote(unit)} || die "systemctl start ${unit} failed"
  log "started ${unit}.service"`;
      break;
    }
    default: {
      const never: never = args.topology;
      throw new Error(`unknown topology ${String(never)}`);
    }
  }
  const body = etcdFrame(args, String.raw`
need pointEtcdAtRestoredData "etcd does not point at the restored data yet"
if done_ startEtcd; then
  log "etcd already started on the restored data"
else
${start}
  mark startEtcd
fi
`);
  return nodeScript({ node: args.node, step: "restore-start-etcd" }, body);
}

/**
 * Phase 5c, every etcd member: wait until every member's endpoint is healthy, all report one cluster id and at
 * least the snapshot's revision, and `member list` on every endpoint shows exactly the expected member names.
 */
export function waitEtcdHealthyScript(args: RestoreEtcdArgs): string {
  checkEtcd("waitEtcdHealthyScript", args);
  const names = [...args.members.map((m) => m.name)].sort();
  const body = etcdFrame(args, String.raw`
ENDPOINTS=(${args.members.map((m) => shellQuote(m.clientUrl)).join(" ")})
EXPECTED=${shellQuote(names.join(" "))}
need startEtcd "etcd was not started on the restored data"
min_revision=$(json_number revision "$(cat "$RD/fetchAndVerify.done")")
all=$(IFS=,; printf '%s' "${"${ENDPOINTS[*]}"}")

problem=""
cluster_ready() {
  local out ep names ids revs
  if ! out=$(etcdctl_tls 30 --endpoints="$all" --dial-timeout=2s --command-timeout=5s endpoint health 2>&1); then
    problem="endpoint health: $(printf '%s' "$out" | grep -v 'is healthy' | head -n 3 | tr '\n' ' ')"
    return 1
  fi
  out=$(etcdctl_tls 30 --endpoints="$all" --dial-timeout=2s --command-timeout=5s endpoint status -w json 2>&1) ||
    { problem="endpoint status: $out"; return 1; }
  ids=$(printf '%s' "$out" | grep -o '"cluster_id":[0-9]*' | sort -u | wc -l)
  [ "$ids" -eq 1 ] || { problem="the endpoints report $ids different cluster ids"; return 1; }
  revs=$(printf '%s' "$out" | grep -o '"revision":[0-9]*' | cut -d: -f2 | sort -n | head -n 1)
  if [ -z "$revs" ] || [ "$revs" -lt "$min_revision" ]; then
    problem="an endpoint is at revision $revs, below the snapshot's $min_revision"
    return 1
  fi
  # stdout only: etcdctl may log warnings to stderr, which are no member.
  for ep in "${"${ENDPOINTS[@]}"}"; do
    names=$(etcdctl_tls 30 --endpoints="$ep" --dial-timeout=2s --command-timeout=5s member list -w simple 2>/dev/null |
      awk -F', ' '{ print $3 }' | LC_ALL=C sort | paste -sd' ') || true
    [ "$names" = "$EXPECTED" ] || { problem="member list on $ep shows '$names', expected '$EXPECTED'"; return 1; }
  done
}

deadline=$((SECONDS + ${etcdLifecycleTimeouts.etcdHealthy}))
until cluster_ready; do
  if [ "$SECONDS" -ge "$deadline" ]; then die "the restored cluster is not healthy after ${etcdLifecycleTimeouts.etcdHealthy}s: $problem"; fi
  sleep "${"${KUBEADM_HA_POLL_SECONDS:-5}"}"
done
mark waitEtcdHealthy
log "restored cluster healthy: members $EXPECTED, one cluster id, revision >= $min_revision"
`);
  return nodeScript({ node: args.node, step: "restore-wait-etcd" }, body);
}

/**
 * Phase 6, every control plane: put the apiserver, controller-manager and scheduler manifests back, wait for the
 * local /readyz and /readyz through the load balancer, then restart the kubelet (it reconnects and re-registers
 * against the restored state). On a node that is also an etcd member of this restore, needs its healthy marker.
 */
export function startApiserverScript(args: RestoreApiserverArgs): string {
  checkApiserver("startApiserverScript", args);
  const port = args.apiserverPort ?? etcdLifecycleDefaults.apiserverPort;
  const body = String.raw`${requestVars(args, args.manifestDir)}
PORT=${port}
READYZ_URL=${shellQuote(args.readyzUrl)}
ready() { [ "$(curl -fsk --max-time 5 "$1" 2>/dev/null)" = ok ]; }
${nodeIdentityBash}
require_node_identity "start its apiserver after restore $REQUEST"

if done_ startApiserver; then
  log "apiserver already started after restore $REQUEST"
else
  if [ -e "$RD/startEtcd.done" ]; then need waitEtcdHealthy "the restored etcd cluster is not healthy yet"; fi
  for m in ${apiserverManifests.join(" ")}; do
    if [ -f "$RD/manifests/$m.yaml" ] && [ ! -f "$MANIFESTS/$m.yaml" ]; then
      put_manifest "$RD/manifests/$m.yaml" "$m.yaml"
      log "$m.yaml back in $MANIFESTS_NODE"
    fi
  done
  [ -f "$MANIFESTS/kube-apiserver.yaml" ] || die "no kube-apiserver.yaml to start"
  wait_until ${etcdLifecycleTimeouts.apiserverReady} "the local apiserver's /readyz" ready "https://127.0.0.1:$PORT/readyz"
  wait_until ${etcdLifecycleTimeouts.apiserverReady} "/readyz through the load balancer ($READYZ_URL)" ready "$READYZ_URL"
  timeout 120 systemctl restart kubelet || die "systemctl restart kubelet failed"
  mark startApiserver
  log "apiserver ready locally and through the load balancer; kubelet restarted"
fi
`;
  return nodeScript({ node: args.node, step: "restore-start-apiserver" }, body);
}

/** The script of an etcd-member phase (exhaustive over RestoreEtcdPhase). */
export function restoreEtcdPhaseScript(phase: RestoreEtcdPhase, args: RestoreEtcdArgs): string {
  switch (phase) {
    case "fetchAndVerify":
      return fetchAndVerifyScript(args);
    case "stopEtcd":
      return stopEtcdScript(args);
    case "restoreMember":
      return restoreMemberScript(args);
    case "pointEtcdAtRestoredData":
      return pointEtcdAtRestoredDataScript(args);
    case "startEtcd":
      return startEtcdScript(args);
    case "waitEtcdHealthy":
      return waitEtcdHealthyScript(args);
    default: {
      const never: never = phase;
      throw new Error(`unknown etcd restore phase ${String(never)}`);
    }
  }
}

/** The script of a control-plane phase (exhaustive over RestoreApiserverPhase). */
export function restoreApiserverPhaseScript(phase: RestoreApiserverPhase, args: RestoreApiserverArgs): string {
  switch (phase) {
    case "stopApiserver":
      return stopApiserverScript(args);
    case "startApiserver":
      return startApiserverScript(args);
    default: {
      const never: never = phase;
      throw new Error(`unknown apiserver restore phase ${String(never)}`);
    }
  }
}
