// The scheduled snapshot's leader guard against REAL etcd (3.4 and 3.5): on every tick exactly one member — the
// leader — runs the save script. The timer installation runs under recording stubs (systemctl is not here).
import test from "ava";
import { mkdtempSync, readFileSync, existsSync, writeFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { leaderGuardScript, snapshotScheduleScript, snapshotSchedulePaths, snapshotTimerUnit } from "../lifecycle/scripts/snapshotSchedule";
import { run, startEtcdCluster } from "./support/etcdCluster";
import { fetchAndVerifyScript } from "../lifecycle/scripts/restoreSnapshot";
import { cleanup, runWithStubs, writeNodeFile } from "./support/stubs";
import { toolPath } from "./support/tools";

for (const version of ["3.4", "3.5"] as const) {
  test.serial(`etcd ${version}: the leader guard snapshots on the leader only (real 3-member TLS cluster)`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), `kubeadm-ha-leader-${version}-`));
    const cluster = await startEtcdCluster({ version, members: 3, dir });
    t.teardown(() => cluster.stop());
    const marker = join(dir, "snapshots.log");
    const save = join(dir, "save.sh");
    writeFileSync(save, `echo "$NODE_SAVED" >> ${marker}\n`);
    const ran: string[] = [];
    for (const member of cluster.members) {
      const script = leaderGuardScript({
        node: member.name,
        endpoint: member.clientUrl,
        tools: { etcdctl: toolPath.etcdctl(version) },
        tls: { cacert: cluster.pki.ca.cert, cert: cluster.pki.client.cert, key: cluster.pki.client.key },
        saveScriptPath: save,
      });
      const r = await run("bash", ["-c", script], { env: { ...process.env, NODE_SAVED: member.name } });
      t.is(r.code, 0, r.stderr);
      if (/leader: taking the scheduled snapshot/.test(r.stderr)) ran.push(member.name);
      else t.regex(r.stderr, new RegExp(`^\\[${member.name}\\] scheduled-snapshot: not the leader`, "m"));
    }
    t.is(ran.length, 1, "exactly one member snapshots");
    t.deepEqual(readFileSync(marker, "utf8").trim().split("\n"), ran);
    rmSync(dir, { recursive: true, force: true });
  });
}

test("the guard fails when the local member does not answer (no silent skip)", async (t) => {
  const script = leaderGuardScript({
    node: "cp-0",
    endpoint: "https://127.0.0.1:1",
    tools: { etcdctl: toolPath.etcdctl("3.5") },
    tls: { cacert: "/dev/null", cert: "/dev/null", key: "/dev/null" },
    saveScriptPath: "/nonexistent",
  });
  const r = await run("bash", ["-c", script]);
  t.not(r.code, 0);
  t.regex(r.stderr, /\[cp-0\] scheduled-snapshot: ERROR: the local member at https:\/\/127\.0\.0\.1:1 does not answer/);
});

test("timer install writes the units once and enables the timer (recording stubs: systemctl is not on this machine)", async (t) => {
  const script = snapshotScheduleScript({
    node: "cp-1",
    schedule: "*-*-* 00/6:00:00",
    saveScript: "#!/usr/bin/env bash\necho save\n",
    endpoint: "https://127.0.0.1:2379",
    tools: { etcdctl: "/usr/local/bin/etcdctl", etcdutl: "/usr/local/bin/etcdutl" },
    tls: { cacert: "/etc/kubernetes/pki/etcd/ca.crt", cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt", key: "/etc/kubernetes/pki/etcd/healthcheck-client.key" },
  });
  const first = await runWithStubs(script);
  t.is(first.code, 0, first.stderr);
  const timer = readFileSync(join(first.root, snapshotSchedulePaths.timer), "utf8");
  t.is(timer, snapshotTimerUnit("*-*-* 00/6:00:00"));
  t.regex(timer, /^OnCalendar=\*-\*-\* 00\/6:00:00$/m);
  t.is(statSync(join(first.root, snapshotSchedulePaths.saveScript)).mode & 0o777, 0o700);
  t.true(existsSync(join(first.root, snapshotSchedulePaths.leaderGuard)));
  const systemctl = first.calls.filter((c) => c.cmd === "systemctl").map((c) => c.args.join(" "));
  t.deepEqual(systemctl, ["daemon-reload", "enable --now kubeadm-ha-etcd-snapshot.timer"]);
  const second = await runWithStubs(script, { root: first.root });
  t.is(second.code, 0, second.stderr);
  t.deepEqual(second.calls.filter((c) => c.cmd === "systemctl").map((c) => c.args.join(" ")), ["enable --now kubeadm-ha-etcd-snapshot.timer"], "no reload when nothing changed");
  t.throws(() => snapshotTimerUnit("daily'; rm -rf /"), { message: /OnCalendar/ });
});

/** A restore's fetch phase on a stacked member, fetching from S3. */
function s3FetchScript(): string {
  return fetchAndVerifyScript({
    node: "cp-0",
    cluster: "kubeadm-ha-dev",
    requestId: "incident-42",
    topology: "stacked",
    snapshot: "s3://team-backups/kubeadm-ha-dev/etcd/before-incident.db",
    tools: { etcdctl: "/usr/local/bin/etcdctl", etcdutl: "/usr/local/bin/etcdutl" },
    tls: { cacert: "/etc/kubernetes/pki/etcd/ca.crt", cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt", key: "/etc/kubernetes/pki/etcd/healthcheck-client.key" },
    member: "cp-0",
    members: [{ name: "cp-0", peerUrl: "https://10.0.1.10:2380", clientUrl: "https://10.0.1.10:2379" }],
  });
}

/** The member's etcdctl and etcdutl (never reached: the fetch fails first). */
function withEtcdTools(root: string): void {
  for (const tool of ["etcdctl", "etcdutl"]) writeNodeFile(root, `/usr/local/bin/${tool}`, "#!/usr/bin/env bash\nexit 1\n", 0o755);
}

/** An aws that records its first argument and "copies" an empty file (which the fetch then refuses). */
const emptyAws = [
  "#!/usr/bin/env bash",
  `printf '{"cmd":"aws","args":["%s"]}\\n' "$1" >>"$KUBEADM_HA_STUB_CALLS"`,
  '[ "$2" = cp ] || exit 1',
  ': >"$' + '{!#}"',
].join("\n");

/** snap: `install aws-cli` puts emptyAws next to the stubs. */
const snapInstallsAws = [
  'if [ "$1" = install ] && [ "$2" = aws-cli ]; then',
  `  cat >"$(dirname "$0")/aws" <<'AWS'`,
  emptyAws,
  "AWS",
  '  chmod +x "$(dirname "$0")/aws"',
  '  echo "aws-cli 2.27 from Amazon Web Services installed"',
  "fi",
].join("\n");

test("the restore's fetch from S3 installs the AWS CLI before calling it on a member without one (recording stubs: snap and aws are not on this machine)", async (t) => {
  const r = await runWithStubs(s3FetchScript(), { stubs: { snap: snapInstallsAws }, systemPath: "/usr/bin:/bin", setup: withEtcdTools });
  t.teardown(() => cleanup(r.root));
  t.not(r.code, 0, "the stub aws copies an empty file");
  const order = r.calls.filter((c) => c.cmd === "snap" || c.cmd === "aws").map((c) => `${c.cmd} ${c.args[0]}`);
  t.deepEqual(order.slice(0, 2), ["snap install", "aws s3"], "installed first, then used");
  t.regex(r.stderr, /\[cp-0\] restore-fetch: installing the AWS CLI \(snap aws-cli\)/);
  t.regex(r.stderr, /refusing snapshot s3:\/\/team-backups\/kubeadm-ha-dev\/etcd\/before-incident\.db: the file is empty/);

  const present = await runWithStubs(s3FetchScript(), { stubs: { snap: snapInstallsAws, aws: emptyAws.split("\n").slice(2).join("\n") }, systemPath: "/usr/bin:/bin", setup: withEtcdTools });
  t.teardown(() => cleanup(present.root));
  t.deepEqual(present.calls.filter((c) => c.cmd === "snap"), [], "an AWS CLI already there is used as it is");
});
