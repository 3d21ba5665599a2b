// Step "snapshot-schedule": a systemd timer on every etcd member that snapshots only on the current leader, so one
// member down never stops the schedule and a healthy cluster takes one snapshot per tick. Pure builder.
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { awsCliBash, EtcdClientTls, EtcdTools } from "./etcdCommon";

export const snapshotSchedulePaths = {
  libDir: "/usr/local/lib/kubeadm-ha",
  saveScript: "/usr/local/lib/kubeadm-ha/etcd-snapshot.sh",
  leaderGuard: "/usr/local/lib/kubeadm-ha/etcd-snapshot-if-leader.sh",
  service: "/etc/systemd/system/kubeadm-ha-etcd-snapshot.service",
  timer: "/etc/systemd/system/kubeadm-ha-etcd-snapshot.timer",
} as const;

export interface SnapshotScheduleArgs {
  node: string;
  /** systemd OnCalendar expression. */
  schedule: string;
  /** The complete save-and-verify script (saveSnapshotScript with reason "scheduled"). */
  saveScript: string;
  /** The local member, to ask whether it leads. */
  endpoint: string;
  tools: EtcdTools;
  tls: EtcdClientTls;
  /** Install the AWS CLI (the save script uploads with `aws s3 cp`); Ubuntu 24.04 ships it as a snap. */
  installAwsCli?: boolean;
}

/**
 * The leader guard the timer runs: asks the local member for its own id and the leader's id
 * (`etcdctl endpoint status -w fields`) and runs the save script only when they match; otherwise exits 0.
 */
export function leaderGuardScript(args: Omit<SnapshotScheduleArgs, "schedule" | "saveScript" | "installAwsCli"> & { saveScriptPath: string }): string {
  const body = String.raw`
ETCDCTL="$R"${shellQuote(args.tools.etcdctl)}
CACERT="$R"${shellQuote(args.tls.cacert)}
CERT="$R"${shellQuote(args.tls.cert)}
KEY="$R"${shellQuote(args.tls.key)}
ENDPOINT=${shellQuote(args.endpoint)}
status=$(timeout 30 "$ETCDCTL" --endpoints="$ENDPOINT" --cacert="$CACERT" --cert="$CERT" --key="$KEY" endpoint status -w fields) \
  || die "the local member at $ENDPOINT does not answer"
member=$(printf '%s\n' "$status" | awk -F' : ' '/^"MemberID"/ {print $2}')
leader=$(printf '%s\n' "$status" | awk -F' : ' '/^"Leader"/ {print $2}')
if [ -z "$member" ] || [ -z "$leader" ]; then die "endpoint status did not name the member and the leader"; fi
if [ "$member" != "$leader" ]; then
  log "not the leader (member $member, leader $leader): no snapshot on this tick"
  exit 0
fi
log "leader: taking the scheduled snapshot"
bash "$R"${shellQuote(args.saveScriptPath)}
`;
  return nodeScript({ node: args.node, step: "scheduled-snapshot" }, body);
}

export function snapshotServiceUnit(): string {
  return [
    "[Unit]",
    "Description=kubeadm-ha: etcd snapshot on the current leader",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    `ExecStart=/usr/bin/bash ${snapshotSchedulePaths.leaderGuard}`,
    // Bounded: a stuck save must not hold the next tick forever.
    "TimeoutStartSec=1800",
    "",
  ].join("\n");
}

export function snapshotTimerUnit(schedule: string): string {
  if (/[\n'"\\]/.test(schedule)) throw new Error(`snapshot schedule must be a systemd OnCalendar expression, got ${JSON.stringify(schedule)}`);
  return [
    "[Unit]",
    "Description=kubeadm-ha: scheduled etcd snapshots",
    "",
    "[Timer]",
    `OnCalendar=${schedule}`,
    // A tick missed while the node was down runs at boot; members do not all fire in the same second.
    "Persistent=true",
    "RandomizedDelaySec=60",
    "",
    "[Install]",
    "WantedBy=timers.target",
    "",
  ].join("\n");
}

/** Installs the save script, the leader guard and the timer; rewrites only what changed, then enables the timer. */
export function snapshotScheduleScript(args: SnapshotScheduleArgs): string {
  const files: [string, string, string][] = [
    [snapshotSchedulePaths.saveScript, args.saveScript, "0700"],
    [snapshotSchedulePaths.leaderGuard, leaderGuardScript({ ...args, saveScriptPath: snapshotSchedulePaths.saveScript }), "0700"],
    [snapshotSchedulePaths.service, snapshotServiceUnit(), "0644"],
    [snapshotSchedulePaths.timer, snapshotTimerUnit(args.schedule), "0644"],
  ];
  const awsCli = args.installAwsCli ? `${awsCliBash}\nensure_aws_cli` : "";
  const body = String.raw`
${awsCli}
changed=0
# put_file PATH MODE BASE64: writes the decoded content when it differs from what is there.
put_file() {
  local path=$1 mode=$2 content=$3
  install -d -m 0755 "$(dirname "$path")"
  if [ -f "$path" ] && printf '%s' "$content" | base64 -d | cmp -s - "$path"; then return 0; fi
  printf '%s' "$content" | base64 -d >"$path.tmp"
  chmod "$mode" "$path.tmp"
  mv -f "$path.tmp" "$path"
  log "wrote $path"
  changed=1
}
${files.map(([path, content, mode]) => `put_file "$R"${shellQuote(path)} ${mode} ${shellQuote(Buffer.from(content).toString("base64"))}`).join("\n")}
if [ "$changed" = 1 ]; then timeout 60 systemctl daemon-reload; fi
timeout 60 systemctl enable --now kubeadm-ha-etcd-snapshot.timer
log "timer enabled: ${args.schedule.replace(/[`$\\"]/g, "")}"
`;
  return nodeScript({ node: args.node, step: "snapshot-schedule" }, body);
}
