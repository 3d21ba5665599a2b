// The generated restore phases run against REAL etcd members (3.4 from bookworm, 3.5 from trixie: .tools/, made by
// `bash test/tools/ensure-tools.sh`), each member on its own scratch root. Service-manager calls go to the rig's
// stand-ins (test/support/etcdNodes.ts): `systemctl` stops and starts the real member processes (external topology,
// from the member's environment file), a kubelet stand-in runs the member from its static manifest (stacked), and the
// apiservers and load balancer are stand-in HTTPS /readyz endpoints (no kube-apiserver exists here).
import test, { type ExecutionContext } from "ava";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, truncateSync, copyFileSync, mkdirSync, openSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { parseSnapshotSummary, saveSnapshotScript, type SaveSnapshotArgs } from "../lifecycle/scripts/saveSnapshot";
import {
  fetchAndVerifyScript,
  restoreApiserverPhaseScript,
  restoredDataDir,
  restoreMemberScript,
  stopEtcdScript,
  type RestorePhase,
} from "../lifecycle/scripts/restoreSnapshot";
import { cleanup, runWithStubs, seedKubeletIdentity, writeNodeFile } from "./support/stubs";
import type { EtcdCluster, EtcdVersion } from "./support/etcdCluster";
import { EtcdNodes, restoreArgsFor, rigPaths, runRestore, snapshotArgsFor, type PhaseRun, type Topology } from "./support/etcdNodes";

const KEYS = 10_000;
const PREFIX = "/registry/restore-test/";

async function rigWithKeys(t: ExecutionContext, version: EtcdVersion, topology: Topology, names: string[]): Promise<EtcdNodes> {
  const dir = mkdtempSync(join(tmpdir(), `etcd-restore-${version}-${topology}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rig = await EtcdNodes.start({ version, topology, names, dir });
  t.teardown(() => rig.close());
  await rig.cluster().putMany(KEYS, PREFIX, { batch: 1000 });
  return rig;
}

async function save(t: ExecutionContext, rig: EtcdNodes, over: Partial<SaveSnapshotArgs> = {}) {
  const n = rig.nodes[0];
  const r = await rig.runScript(n, saveSnapshotScript(snapshotArgsFor(rig, n, over)));
  t.is(r.code, 0, r.stderr);
  return parseSnapshotSummary(r.stdout);
}

function allOk(t: ExecutionContext, runs: PhaseRun[], phases: number): void {
  for (const r of runs) t.is(r.result.code, 0, `${r.phase} on ${r.node} failed:\n${r.result.stderr}`);
  t.is(runs.length, phases);
}

async function clusterIds(c: EtcdCluster): Promise<string[]> {
  const r = await c.etcdctl(["endpoint", "status", "-w", "json"], { check: true });
  return [...new Set([...r.stdout.matchAll(/"cluster_id":(\d+)/g)].map((m) => m[1]))];
}

async function memberNames(c: EtcdCluster): Promise<string[]> {
  const r = await c.etcdctl(["member", "list", "-w", "json"], { check: true });
  return (JSON.parse(r.stdout) as { members: { name: string }[] }).members.map((m) => m.name).sort();
}

/** The restored cluster: healthy, exactly its members, the snapshot's keys and nothing written after it. */
async function assertRestored(t: ExecutionContext, rig: EtcdNodes, requestId: string, before: string[]): Promise<void> {
  await rig.waitHealthy();
  const c = rig.cluster();
  t.deepEqual(await memberNames(c), rig.nodes.map((n) => n.name).sort());
  t.is(await c.countKeys(PREFIX), KEYS, "every key of the snapshot is back");
  t.is(await c.countKeys("/after-snapshot"), 0, "the key written after the snapshot is gone");
  const ids = await clusterIds(c);
  t.is(ids.length, 1, "one cluster");
  t.notDeepEqual(ids, before, "a new cluster (new --initial-cluster-token)");
  const newDir = restoredDataDir(requestId);
  for (const n of rig.nodes) {
    const link = join(n.root, rigPaths.dataDir);
    t.true(lstatSync(link).isSymbolicLink(), `${n.name}: ${rigPaths.dataDir} is a symlink`);
    t.is(readlinkSync(link), `etcd-restored-${requestId}`);
    t.is(n.process?.dataDir.startsWith(join(n.root, "/var/lib/etcd")), true);
    t.true(existsSync(join(n.root, newDir, "member/snap/db")));
    const kept = readdirSync(join(n.root, "/var/lib")).filter((f) => f.startsWith("etcd.pre-restore-"));
    t.is(kept.length, 1, `${n.name}: the old data dir is kept, renamed`);
    t.regex(kept[0], /^etcd\.pre-restore-\d{8}T\d{6}Z$/);
    t.true(existsSync(join(n.root, "/var/lib", kept[0], "member/snap/db")), "with its data");
  }
}

const phaseCount = (rig: EtcdNodes) => rig.nodes.length * (rig.topology === "stacked" ? 8 : 6);

test("etcd 3.4, external topology: 3 members restored from S3 through systemctl; a rerun changes nothing", async (t) => {
  const rig = await rigWithKeys(t, "3.4", "external", ["etcd-1", "etcd-2", "etcd-3"]);
  const snap = await save(t, rig, { upload: { s3Uri: "s3://backups-bucket/c1/etcd" } });
  t.is(snap.keys, KEYS);
  const c = rig.cluster();
  await c.etcdctl(["put", "/after-snapshot", "written after the snapshot"], { check: true });
  const before = await clusterIds(c);
  const requestId = "restore-2025-06-01";
  const snapshot = snap.s3 as string;

  const runs = await runRestore(rig, { requestId, snapshot });
  allOk(t, runs, phaseCount(rig));
  await assertRestored(t, rig, requestId, before);

  const calls = rig.calls();
  for (const n of rig.nodes) {
    t.true(calls.includes(`${n.root} chown -R etcd:etcd ${join(n.root, restoredDataDir(requestId))}`), `${n.name} chowned`);
    t.true(calls.includes(`${n.root} aws s3 cp --only-show-errors ${snapshot} ${join(n.root, `/var/lib/kubeadm-ha/restore/${requestId}/snapshot.db.part`)}`));
  }
  const systemctl = calls.filter((l) => l.includes(" systemctl "));
  const lastStop = Math.max(...systemctl.map((l, i) => (l.endsWith("systemctl stop etcd") ? i : -1)));
  const firstStart = systemctl.findIndex((l) => l.endsWith("systemctl start --no-block etcd"));
  t.is(systemctl.filter((l) => l.endsWith("systemctl stop etcd")).length, 3);
  t.true(lastStop < firstStart, "every member stopped before any starts");
  t.true(rig.nodes.every((n) => n.process?.dataDir === join(n.root, rigPaths.dataDir)), "etcd.env still reads /var/lib/etcd");

  // The whole plan again (a Pulumi rerun): every phase sees its marker; nothing stops or restarts.
  const starts = rig.nodes.map((n) => n.starts);
  const again = await runRestore(rig, { requestId, snapshot });
  allOk(t, again, phaseCount(rig));
  t.deepEqual(rig.nodes.map((n) => n.starts), starts);
  t.is(rig.calls().filter((l) => l.endsWith("systemctl stop etcd")).length, 3);
  t.regex(again.find((r) => r.phase === "restoreMember")?.result.stderr ?? "", /already restored/);
  t.is(await rig.cluster().countKeys(PREFIX), KEYS);
});

test("etcd 3.5, stacked topology: 3 members restored through the static manifests, resuming after an interruption", async (t) => {
  const rig = await rigWithKeys(t, "3.5", "stacked", ["cp-0", "cp-1", "cp-2"]);
  const snap = await save(t, rig);
  // The operator put the same snapshot (and sidecar) at the same path on every member.
  for (const n of rig.nodes.slice(1)) {
    for (const f of [snap.path, `${snap.path}.json`]) {
      mkdirSync(dirname(join(n.root, f)), { recursive: true });
      copyFileSync(join(rig.nodes[0].root, f), join(n.root, f));
    }
  }
  const c = rig.cluster();
  await c.etcdctl(["put", "/after-snapshot", "written after the snapshot"], { check: true });
  const before = await clusterIds(c);
  const requestId = "r7";
  const eventsBefore = rig.events.length;

  // Interrupted after phase 4 on every member (a failed pulumi up), then the whole plan runs again.
  const upTo: RestorePhase[] = ["fetchAndVerify", "stopApiserver", "stopEtcd", "restoreMember"];
  allOk(t, await runRestore(rig, { requestId, snapshot: snap.path }, upTo), 12);
  const runs = await runRestore(rig, { requestId, snapshot: snap.path });
  allOk(t, runs, phaseCount(rig));
  for (const r of runs.filter((x) => upTo.includes(x.phase))) t.regex(r.result.stderr, /already/, `${r.phase} on ${r.node}`);
  await assertRestored(t, rig, requestId, before);

  for (const n of rig.nodes) {
    const manifests = join(n.root, rigPaths.manifests);
    t.deepEqual(readdirSync(manifests).sort(), ["etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"]);
    const pod = parseYaml(readFileSync(join(manifests, "etcd.yaml"), "utf8")) as {
      spec: { volumes: { name: string; hostPath: { path: string } }[]; containers: { command: string[] }[] };
    };
    t.is(pod.spec.volumes.find((v) => v.name === "etcd-data")?.hostPath.path, restoredDataDir(requestId));
    t.is(pod.spec.volumes.find((v) => v.name === "etcd-certs")?.hostPath.path, "/etc/kubernetes/pki/etcd");
    t.true(pod.spec.containers[0].command.includes("--data-dir=/var/lib/etcd"), "the container path is unchanged");
    t.is(n.process?.dataDir, join(n.root, restoredDataDir(requestId)));
    t.true(rig.calls().includes(`${n.root} systemctl restart kubelet`));
  }
  // --bump-revision (etcdutl): informers see a compaction instead of silently missing writes.
  const status = await rig.cluster().etcdctl(["endpoint", "status", "-w", "json"], { check: true });
  for (const m of status.stdout.matchAll(/"revision":(\d+)/g)) t.true(Number(m[1]) > 1_000_000_000);

  // Order, as the stand-in kubelet saw it: every apiserver down before any etcd stops; every etcd member stopped
  // before any restarts; every etcd member started before any apiserver returns.
  const ev = rig.events.slice(eventsBefore);
  const idx = (what: string) => ev.map((e, i) => (e.endsWith(what) ? i : -1)).filter((i) => i >= 0);
  t.is(idx("apiserver stopped").length, 3);
  t.is(idx("etcd stopped").length, 3);
  t.is(idx("etcd started").length, 3);
  t.is(idx("apiserver started").length, 3);
  t.true(Math.max(...idx("apiserver stopped")) < Math.min(...idx("etcd stopped")), ev.join("\n"));
  t.true(Math.max(...idx("etcd stopped")) < Math.min(...idx("etcd started")), ev.join("\n"));
  t.true(Math.max(...idx("etcd started")) < Math.min(...idx("apiserver started")), ev.join("\n"));
});

test("etcd 3.4, stacked topology: a 1-member cluster is restored", async (t) => {
  const rig = await rigWithKeys(t, "3.4", "stacked", ["cp-0"]);
  const snap = await save(t, rig);
  const c = rig.cluster();
  await c.etcdctl(["put", "/after-snapshot", "x"], { check: true });
  const before = await clusterIds(c);
  const runs = await runRestore(rig, { requestId: "single", snapshot: snap.path });
  allOk(t, runs, phaseCount(rig));
  await assertRestored(t, rig, "single", before);
});

for (const version of ["3.4", "3.5"] as EtcdVersion[]) {
  test(`etcd ${version}: a corrupt or truncated snapshot is refused before anything is touched; the old data still serves`, async (t) => {
    const rig = await rigWithKeys(t, version, "external", ["etcd-1"]);
    const n = rig.nodes[0];
    const snap = await save(t, rig);
    const good = join(n.root, snap.path);
    const size = lstatSync(good).size;
    const pid = n.process?.pid;

    const variant = (name: string, sidecar: boolean, damage: (file: string) => void): string => {
      const path = `/var/lib/etcd-snapshots/${name}.db`;
      copyFileSync(good, join(n.root, path));
      if (sidecar) copyFileSync(`${good}.json`, join(n.root, `${path}.json`));
      damage(join(n.root, path));
      return path;
    };
    const flip = (file: string) => {
      const fd = openSync(file, "r+");
      writeSync(fd, Buffer.from("corrupted!"), 0, 10, Math.floor(size / 2));
      closeSync(fd);
    };
    const cases: [string, string, RegExp][] = [
      ["corrupt, with sidecar", variant("corrupt-sidecar", true, flip), /its sha256 is [0-9a-f]{64}, the sidecar records [0-9a-f]{64}/],
      ["corrupt, no sidecar", variant("corrupt-bare", false, flip), /snapshot status failed|a trial restore failed/],
      ["truncated, with sidecar", variant("truncated-sidecar", true, (f) => truncateSync(f, Math.floor(size / 3))), /its sha256 is [0-9a-f]{64}, the sidecar records/],
      ["truncated, no sidecar", variant("truncated-bare", false, (f) => truncateSync(f, size - 100)), /snapshot status failed|a trial restore failed/],
      ["missing", "/var/lib/etcd-snapshots/nope.db", /no such file on this member/],
    ];
    for (const [i, [what, snapshot, reason]] of cases.entries()) {
      const requestId = `bad-${i}`;
      const args = restoreArgsFor(rig, n, { requestId, snapshot });
      const r = await rig.runScript(n, fetchAndVerifyScript(args));
      t.not(r.code, 0, `${what}: refused`);
      t.regex(r.stderr, /refusing snapshot .*; nothing was changed/, what);
      t.regex(r.stderr, reason, what);
      const rd = join(n.root, "/var/lib/kubeadm-ha/restore", requestId);
      t.deepEqual(readdirSync(rd).filter((f) => f !== "source"), [], `${what}: nothing fetched is left`);
      // The next phase refuses to stop etcd without a verified snapshot.
      const stop = await rig.runScript(n, stopEtcdScript(args));
      t.not(stop.code, 0);
      t.regex(stop.stderr, /phase fetchAndVerify of restore bad-\d has not finished on this node: no verified snapshot/);
    }
    // The member never stopped and still serves its data from the untouched data dir.
    t.is(n.process?.pid, pid);
    t.true(n.process?.running());
    t.false(lstatSync(join(n.root, rigPaths.dataDir)).isSymbolicLink());
    t.deepEqual(readdirSync(join(n.root, "/var/lib")).filter((f) => f.startsWith("etcd-restored-") || f.includes("pre-restore")), []);
    t.is(await rig.cluster().countKeys(PREFIX), KEYS);
    t.false(rig.calls().some((l) => l.includes(" systemctl ")), "no service-manager call at all");
  });
}

test("the restore builders refuse bad arguments, naming each", (t) => {
  const e = t.throws(() =>
    stopEtcdScript({
      node: "cp-0",
      requestId: "../x",
      topology: "stacked",
      snapshot: "relative.db",
      tools: { etcdctl: "/usr/local/bin/etcdctl" },
      tls: { cacert: "/ca.crt", cert: "/c.crt", key: "/c.key" },
      member: "cp-9",
      members: [
        { name: "cp-0", peerUrl: "https://10.0.1.10:2380", clientUrl: "https://10.0.1.10:2379" },
        { name: "cp-0", peerUrl: "http://10.0.1.11:2380", clientUrl: "https://10.0.1.11:2379" },
      ],
    }),
  );
  t.is(
    e?.message,
    [
      "stopEtcdScript: invalid arguments:",
      '- requestId: must be one word of letters, digits and . _ - (at most 100), got "../x"',
      '- snapshot: must be an absolute path of letters, digits and . _ + / - (no ".."), got "relative.db"',
      '- members[1].peerUrl: must look like https://10.0.1.10:2379, got "http://10.0.1.11:2380"',
      "- members[1].name: cp-0 appears twice",
      "- member: cp-9 is not in members (cp-0, cp-0)",
    ].join("\n"),
  );
});

// ---- identity (recording stubs: no etcd needed; the phases refuse before touching one) ----------------------------

test("every restore phase refuses a machine that is another member, before touching anything: a stacked member's kubelet, an external member's ETCD_NAME (recording stubs: nothing else is called)", async (t) => {
  const members = [
    { name: "cp-0", peerUrl: "https://10.0.1.10:2380", clientUrl: "https://10.0.1.10:2379" },
    { name: "cp-1", peerUrl: "https://10.0.1.11:2380", clientUrl: "https://10.0.1.11:2379" },
  ];
  const base = {
    node: "cp-0",
    requestId: "incident-42",
    snapshot: "/var/backups/kubeadm-ha/etcd/etcd-cp-0.db",
    tools: { etcdctl: "/usr/local/bin/etcdctl", etcdutl: "/usr/local/bin/etcdutl" },
    tls: { cacert: "/etc/kubernetes/pki/etcd/ca.crt", cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt", key: "/etc/kubernetes/pki/etcd/healthcheck-client.key" },
    member: "cp-0",
    members,
  };
  const tools = (root: string) => {
    for (const tool of ["etcdctl", "etcdutl"]) writeNodeFile(root, `/usr/local/bin/${tool}`, "#!/usr/bin/env bash\nexit 1\n", 0o755);
    writeNodeFile(root, "/etc/kubernetes/manifests/etcd.yaml", "# etcd\n");
    writeNodeFile(root, "/etc/kubernetes/manifests/kube-apiserver.yaml", "# kube-apiserver\n");
  };
  const cases: { name: string; script: string; setup: (root: string) => void; message: RegExp }[] = [
    {
      name: "stop-etcd, stacked",
      script: stopEtcdScript({ ...base, topology: "stacked" }),
      setup: (root) => (tools(root), seedKubeletIdentity(root, "cp-1")),
      message: /\[cp-0\] restore-stop-etcd: ERROR: refusing to run restore incident-42 on it: this machine's kubelet is node cp-1, not cp-0/,
    },
    {
      name: "stop-apiserver",
      script: restoreApiserverPhaseScript("stopApiserver", { node: "cp-0", requestId: "incident-42", readyzUrl: "https://api.example:6443/readyz" }),
      setup: (root) => (tools(root), seedKubeletIdentity(root, "cp-1")),
      message: /\[cp-0\] restore-stop-apiserver: ERROR: refusing to stop its apiserver for restore incident-42: this machine's kubelet is node cp-1, not cp-0/,
    },
    {
      name: "restore-member, external",
      script: restoreMemberScript({ ...base, node: "etcd-0", member: "etcd-0", members: members.map((m, i) => ({ ...m, name: `etcd-${i}` })), topology: "external" }),
      setup: (root) => (tools(root), writeNodeFile(root, "/etc/etcd/etcd.env", "ETCD_NAME=etcd-1\nETCD_DATA_DIR=/var/lib/etcd\n")),
      message: /\[etcd-0\] restore-member: ERROR: refusing to run restore incident-42 on it: this host's etcd is member etcd-1, not etcd-0/,
    },
  ];
  for (const c of cases) {
    const r = await runWithStubs(c.script, { setup: c.setup });
    t.teardown(() => cleanup(r.root));
    t.not(r.code, 0, c.name);
    t.deepEqual(r.calls, [], `${c.name}: nothing was called`);
    t.regex(r.stderr, c.message, c.name);
    t.true(existsSync(join(r.root, "/etc/kubernetes/manifests/etcd.yaml")) && existsSync(join(r.root, "/etc/kubernetes/manifests/kube-apiserver.yaml")), `${c.name}: manifests in place`);
    t.false(existsSync(join(r.root, "/var/lib/kubeadm-ha/restore/incident-42")), `${c.name}: no restore state written`);
  }
});
