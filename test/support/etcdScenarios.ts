// The etcd snapshot-step and restore scenarios, one body per scenario, run by the fast tier on etcd 3.4/3.5
// (test/etcdSnapshot.test.ts, test/etcdRestore.test.ts: Debian's builds in .tools/) and by the real tier on etcd 3.6
// (test/real/etcd36.test.ts: the build of `npm run tools`). Each takes a started EtcdNodes rig (real members); the
// tools of a version are resolved only when a rig of that version starts, so the fast tier never needs the 3.6 build.
import type { ExecutionContext } from "ava";
import { createHash, X509Certificate } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { parseSnapshotSummary, saveSnapshotScript, snapshotFilePattern, type SaveSnapshotArgs } from "../../lifecycle/scripts/saveSnapshot";
import { fetchAndVerifyScript, restoredDataDir, stopEtcdScript, type RestorePhase } from "../../lifecycle/scripts/restoreSnapshot";
import { etcdBinary, run, type EtcdCluster, type HarnessEtcdVersion } from "./etcdCluster";
import { EtcdNodes, restoreArgsFor, rigCluster, rigPaths, runRestore, snapshotArgsFor, type AnyEtcdNodes, type PhaseRun, type Topology } from "./etcdNodes";

export const KEYS = 10_000;
export const PREFIX = "/registry/restore-test/";

export const sha256 = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex");

/** A rig of real members of `version` on scratch roots (removed after the test) holding `keys` keys under PREFIX. */
export async function rigWithKeys<V extends HarnessEtcdVersion>(
  t: ExecutionContext,
  version: V,
  topology: Topology,
  names: string[],
  keys = KEYS,
): Promise<EtcdNodes<V>> {
  const dir = mkdtempSync(join(tmpdir(), `etcd-${version}-${topology}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rig = await EtcdNodes.start({ version, topology, names, dir });
  t.teardown(() => rig.close());
  if (keys > 0) await rig.cluster().putMany(keys, PREFIX, { batch: 1000 });
  return rig;
}

/** The snapshot step on the rig's first node; it must succeed. */
export async function save(t: ExecutionContext, rig: AnyEtcdNodes, over: Partial<SaveSnapshotArgs> = {}) {
  const n = rig.nodes[0];
  const r = await rig.runScript(n, saveSnapshotScript(snapshotArgsFor(rig, n, over)));
  t.is(r.code, 0, r.stderr);
  return parseSnapshotSummary(r.stdout);
}

export function allOk(t: ExecutionContext, runs: PhaseRun[], phases: number): void {
  for (const r of runs) t.is(r.result.code, 0, `${r.phase} on ${r.node} failed:\n${r.result.stderr}`);
  t.is(runs.length, phases);
}

export async function clusterIds(c: EtcdCluster<HarnessEtcdVersion>): Promise<string[]> {
  const r = await c.etcdctl(["endpoint", "status", "-w", "json"], { check: true });
  return [...new Set([...r.stdout.matchAll(/"cluster_id":(\d+)/g)].map((m) => m[1]))];
}

export async function memberNames(c: EtcdCluster<HarnessEtcdVersion>): Promise<string[]> {
  const r = await c.etcdctl(["member", "list", "-w", "json"], { check: true });
  return (JSON.parse(r.stdout) as { members: { name: string }[] }).members.map((m) => m.name).sort();
}

/** How many phase runs a whole restore is on the rig (the control-plane phases only when stacked). */
export const phaseCount = (rig: AnyEtcdNodes): number => rig.nodes.length * (rig.topology === "stacked" ? 8 : 6);

/** The restored cluster: healthy, exactly its members, the snapshot's keys and nothing written after it. */
export async function assertRestored(t: ExecutionContext, rig: AnyEtcdNodes, requestId: string, before: string[]): Promise<void> {
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

// ---- the snapshot step ----------------------------------------------------------------------------------------------

/**
 * The snapshot step on a rig holding KEYS keys: saves, verifies, records, prunes (keep=2) and uploads; checked again
 * with the version's own tool (etcdctl 3.4, else etcdutl); a member that does not answer leaves no file.
 */
export async function snapshotStepScenario(t: ExecutionContext, rig: AnyEtcdNodes): Promise<void> {
  const cluster = rig.cluster();
  const keysInEtcd = await cluster.countKeys("");
  t.is(keysInEtcd, KEYS);

  const node = rig.nodes[0];
  const snapshotDir = "/var/lib/etcd-snapshots";
  const localDir = join(node.root, snapshotDir);
  const args = (reason: string, over: Partial<SaveSnapshotArgs> = {}) =>
    snapshotArgsFor(rig, node, { snapshotDir, keep: 2, reason, upload: { s3Uri: "s3://test-bucket/clusters/c1/snapshots/" }, ...over });

  // 1. The first snapshot: verified, recorded, and its key count is what etcd reports.
  const first = await rig.runScript(node, saveSnapshotScript(args("pre-upgrade-v1.36.0")));
  t.is(first.code, 0, first.stderr);
  t.is(first.stdout.trim().split("\n").length, 1, "one summary line on stdout");
  const summary = parseSnapshotSummary(first.stdout);
  const status = await cluster.etcdctl(["endpoint", "status", "-w", "json", `--endpoints=${node.clientUrl}`], { check: true });
  const revision = (JSON.parse(status.stdout) as { Status: { header: { revision: number } } }[])[0].Status.header.revision;
  const name = summary.path.slice(snapshotDir.length + 1);
  t.regex(name, snapshotFilePattern(node.name));
  t.true(name.endsWith("-pre-upgrade-v1.36.0.db"));
  const file = join(localDir, name);
  const sidecar = JSON.parse(readFileSync(`${file}.json`, "utf8")) as {
    keys: number; totalKey: number; revision: number; sha256: string; file: string; reason: string; cluster: string; caSha256: string;
  };
  t.is(sidecar.keys, keysInEtcd);
  t.is(summary.keys, keysInEtcd);
  t.is(sidecar.totalKey, summary.totalKey);
  t.is(sidecar.revision, revision);
  t.is(summary.revision, revision);
  t.is(sidecar.sha256, sha256(file));
  t.is(summary.sha256, sha256(file));
  t.is(sidecar.file, name);
  t.is(sidecar.reason, "pre-upgrade-v1.36.0");
  t.is(sidecar.cluster, rigCluster, "the sidecar names the cluster the snapshot is of");
  t.is(sidecar.caSha256, caFingerprint(join(node.root, rigPaths.cacert)), "and the etcd CA it was taken under");
  // Checked again with the real tool of the version (etcdctl 3.4, else etcdutl), outside the script.
  const statusTool = rig.version === "3.4" ? etcdBinary("3.4", "etcdctl") : etcdBinary(rig.version, "etcdutl");
  const independent = await run(statusTool, ["snapshot", "status", file, "-w", "json"]);
  t.is(independent.code, 0, independent.stderr);
  const st = JSON.parse(independent.stdout) as { totalKey: number; revision: number };
  t.is(st.totalKey, sidecar.totalKey);
  t.true(st.totalKey >= keysInEtcd, "db entries include every key's revision");
  t.is(st.revision, revision);
  // Uploaded, snapshot and sidecar, with server-side encryption.
  t.is(summary.s3, `s3://test-bucket/clusters/c1/snapshots/${name}`);
  t.is(sha256(join(rig.s3Dir, "test-bucket/clusters/c1/snapshots", name)), sha256(file));
  t.true(existsSync(join(rig.s3Dir, "test-bucket/clusters/c1/snapshots", `${name}.json`)));
  const uploads = rig.calls().filter((l) => l.includes(" aws s3 cp "));
  t.is(uploads.length, 2);
  for (const u of uploads) t.notRegex(u, /--sse/, "no encryption header: the bucket's default (S3-managed or the KMS key) applies");

  // 2. Two more (one key more each time): keep=2 leaves the newest two and their sidecars; other files stay.
  writeFileSync(join(localDir, "operator-notes.txt"), "not a snapshot\n");
  const names = [name];
  let lastLog = "";
  for (const [i, reason] of ["scheduled", "request-42"].entries()) {
    await cluster.etcdctl(["put", `/registry/after-${i}`, "x"], { check: true });
    const r = await rig.runScript(node, saveSnapshotScript(args(reason)));
    t.is(r.code, 0, r.stderr);
    const s = parseSnapshotSummary(r.stdout);
    t.is(s.keys, keysInEtcd + i + 1);
    names.push(s.path.slice(snapshotDir.length + 1));
    lastLog = r.stderr;
  }
  t.deepEqual(
    readdirSync(localDir).filter((f) => !f.startsWith(".lock")).sort(),
    [names[1], `${names[1]}.json`, names[2], `${names[2]}.json`, "operator-notes.txt"].sort(),
  );
  t.true(lastLog.includes(`pruned ${name} (keeping the newest 2)`), lastLog);

  // 3. A member that does not answer: the step fails, leaves no file, and the kept snapshots stay.
  const before = readdirSync(localDir).sort();
  const dead = await rig.runScript(node, saveSnapshotScript(args("scheduled", { endpoint: "https://127.0.0.1:1", upload: undefined })));
  t.not(dead.code, 0);
  t.regex(dead.stderr, /nothing answers on https:\/\/127\.0\.0\.1:1, no snapshot taken/);
  t.deepEqual(readdirSync(localDir).sort(), before);
}

// ---- the restore ----------------------------------------------------------------------------------------------------

/**
 * A stacked rig of 3 members holding KEYS keys restored through the static manifests, interrupted after phase 4 on
 * every member and then run again whole: the restored cluster, its manifests, --bump-revision with the old revisions
 * compacted away, and the order the stand-in kubelet saw.
 */
export async function stackedRestoreScenario(t: ExecutionContext, rig: AnyEtcdNodes): Promise<void> {
  const first = rig.nodes[0];
  const snap = await save(t, rig);
  t.is(snap.keys, KEYS);
  // The operator put the same snapshot (and sidecar) at the same path on every member.
  for (const n of rig.nodes.slice(1)) {
    for (const f of [snap.path, `${snap.path}.json`]) {
      mkdirSync(dirname(join(n.root, f)), { recursive: true });
      copyFileSync(join(first.root, f), join(n.root, f));
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

  const newDir = restoredDataDir(requestId);
  for (const n of rig.nodes) {
    const manifests = join(n.root, rigPaths.manifests);
    t.deepEqual(readdirSync(manifests).sort(), ["etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"]);
    const pod = parseYaml(readFileSync(join(manifests, "etcd.yaml"), "utf8")) as {
      spec: { volumes: { name: string; hostPath: { path: string } }[]; containers: { command: string[] }[] };
    };
    t.is(pod.spec.volumes.find((v) => v.name === "etcd-data")?.hostPath.path, newDir);
    t.is(pod.spec.volumes.find((v) => v.name === "etcd-certs")?.hostPath.path, "/etc/kubernetes/pki/etcd");
    t.true(pod.spec.containers[0].command.includes("--data-dir=/var/lib/etcd"), "the container path is unchanged");
    t.is(n.process?.dataDir, join(n.root, newDir));
    t.true(rig.calls().includes(`${n.root} systemctl restart kubelet`));
  }
  // --bump-revision (etcdutl): informers see a compaction instead of silently missing writes.
  const after = rig.cluster();
  const status = await after.etcdctl(["endpoint", "status", "-w", "json"], { check: true });
  const revisions = [...status.stdout.matchAll(/"revision":(\d+)/g)].map((m) => Number(m[1]));
  t.is(revisions.length, rig.nodes.length);
  for (const r of revisions) t.true(r > 1_000_000_000, `revision ${r}`);
  // …and the old revisions are compacted away (--mark-compacted): a read at the snapshot's revision is refused.
  const old = await after.etcdctl(["get", PREFIX, "--prefix", "--keys-only", "--limit=1", `--rev=${snap.revision}`]);
  t.not(old.code, 0);
  t.regex(old.stderr, /compacted/);

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
}

/** sha256 of a PEM certificate's DER: what the save step records as the sidecar's caSha256. */
export function caFingerprint(pemFile: string): string {
  return createHash("sha256").update(new X509Certificate(readFileSync(pemFile)).raw).digest("hex");
}

/**
 * A 1-member rig holding KEYS keys: corrupt, truncated (with and without sidecar) and missing snapshots are refused
 * by fetchAndVerify, stopEtcd then refuses too, the undamaged snapshot passes; the member never stopped and serves
 * its data from the untouched data dir and manifest (stacked) or environment file (external).
 */
export async function corruptSnapshotScenario(t: ExecutionContext, rig: AnyEtcdNodes): Promise<void> {
  const n = rig.nodes[0];
  const snap = await save(t, rig);
  const good = join(n.root, snap.path);
  const size = lstatSync(good).size;
  const pid = n.process?.pid;
  const memberConfig = join(n.root, rig.topology === "stacked" ? `${rigPaths.manifests}/etcd.yaml` : rigPaths.envFile);
  const config = readFileSync(memberConfig, "utf8");

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
  // A cluster destroyed and built again under the same name: its sidecar names this cluster, its etcd CA is another.
  const rebuilt = (file: string) => {
    const sidecar = JSON.parse(readFileSync(`${file}.json`, "utf8"));
    writeFileSync(`${file}.json`, `${JSON.stringify({ ...sidecar, caSha256: createHash("sha256").update("another CA").digest("hex") })}\n`);
  };
  const cases: [string, string, RegExp][] = [
    ["of a cluster of the same name built anew (another etcd CA)", variant("rebuilt", true, rebuilt), /it was taken from an etcd whose CA \(sha256 [0-9a-f]{64}\) is not this cluster's \([0-9a-f]{64}\): cluster \S+ was built anew since/],
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
  // The undamaged snapshot passes the same phase (so the refusals above are about the damage).
  const ok = await rig.runScript(n, fetchAndVerifyScript(restoreArgsFor(rig, n, { requestId: "good", snapshot: snap.path })));
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, new RegExp(`KUBEADM_HA_RESTORE_SNAPSHOT sha256=${snap.sha256} revision=${snap.revision} `));

  // The member never stopped and still serves its data from the untouched data dir and configuration.
  t.is(n.process?.pid, pid);
  t.true(n.process?.running());
  t.is(n.starts, 1);
  t.is(readFileSync(memberConfig, "utf8"), config);
  t.false(lstatSync(join(n.root, rigPaths.dataDir)).isSymbolicLink());
  t.deepEqual(readdirSync(join(n.root, "/var/lib")).filter((f) => f.startsWith("etcd-restored-") || f.includes("pre-restore")), []);
  t.is(await rig.cluster().countKeys(PREFIX), KEYS);
  t.false(rig.calls().some((l) => l.includes(" systemctl ")), "no service-manager call at all");
}
