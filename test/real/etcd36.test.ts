// The generated etcd snapshot step and restore phases against REAL etcd 3.6 members: etcd, etcdctl and etcdutl
// v3.6.8 built from their Go modules by `npm run tools` (test/support/realTools.ts), the version kubeadm 1.36 runs.
// The rig is test/support/etcdNodes.ts at version 3.6 (its tools resolved through etcdBinary): each member on its own
// scratch root (KUBEADM_HA_ROOT) as a stacked control plane would run it, a kubelet stand-in starting and stopping
// the member from the root's static etcd manifest, stand-in HTTPS /readyz endpoints for the apiservers and the load
// balancer (no kube-apiserver runs here), and recording `systemctl`/`aws` shims on the scripts' PATH.
//
// The scenarios shared with the fast tier's 3.4/3.5 tests are test/support/etcdScenarios.ts; what only 3.6 shows
// (etcdctl without `snapshot status`/`restore`) is here.
import test, { type ExecutionContext } from "ava";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseSnapshotSummary, saveSnapshotScript } from "../../lifecycle/scripts/saveSnapshot";
import { etcdBinary, run } from "../support/etcdCluster";
import { snapshotArgsFor, type EtcdNodes } from "../support/etcdNodes";
import { corruptSnapshotScenario, KEYS, rigWithKeys, snapshotStepScenario, stackedRestoreScenario } from "../support/etcdScenarios";
import { realToolVersion } from "../support/realTools";

/** A stacked 3.6 rig holding `keys` keys whose members really are the 3.6 build `npm run tools` pinned. */
async function startRig(t: ExecutionContext, names: string[], keys = KEYS): Promise<EtcdNodes<"3.6">> {
  const rig = await rigWithKeys(t, "3.6", "stacked", names, keys);
  // Every endpoint reports the version `npm run tools` pinned.
  const status = await rig.cluster().etcdctl(["endpoint", "status", "-w", "json"], { check: true });
  const versions = (JSON.parse(status.stdout) as { Status: { version: string } }[]).map((s) => s.Status.version);
  t.deepEqual(versions, names.map(() => realToolVersion("etcd", "3.6").replace(/^v/, "")));
  t.regex(versions[0], /^3\.6\.\d+$/);
  return rig;
}

// ---- the tools ------------------------------------------------------------------------------------------------------

test("real etcd 3.6: etcdctl 3.6 has no `snapshot status` or `snapshot restore` (only save); etcdutl 3.6 has both", async (t) => {
  const rig = await startRig(t, ["cp-0"], 100);
  const file = join(rig.dir, "plain.db");
  await rig.cluster().etcdctl(["snapshot", "save", file], { check: true });
  const etcdctl = etcdBinary("3.6", "etcdctl");
  const etcdutl = etcdBinary("3.6", "etcdutl");
  t.regex((await run(etcdctl, ["version"])).stdout, /^etcdctl version: 3\.6\.\d+$/m);
  t.regex((await run(etcdutl, ["version"])).stdout, /^etcdutl version: 3\.6\.\d+$/m);

  // etcdctl: `snapshot` offers save alone. `snapshot status` prints the usage of `snapshot` (and exits 0: only
  // its output tells), `snapshot restore` refuses its flags and restores nothing.
  const help = await run(etcdctl, ["snapshot", "--help"]);
  t.regex(help.stdout, /^COMMANDS:\n\s+save\t[^\n]*\n\n/m, "save is the only snapshot subcommand");
  const status = await run(etcdctl, ["snapshot", "status", file, "-w", "json"]);
  t.notRegex(status.stdout, /"totalKey"/, `etcdctl 3.6 snapshot status printed a status (exit ${status.code})`);
  t.regex(status.stdout, /etcdctl snapshot <subcommand>/);
  const restoreDir = join(rig.dir, "by-etcdctl.etcd");
  const restore = await run(etcdctl, ["snapshot", "restore", file, "--data-dir", restoreDir]);
  t.not(restore.code, 0);
  t.false(existsSync(join(restoreDir, "member/snap/db")), "etcdctl 3.6 restored a snapshot");

  // etcdutl: both.
  const good = await run(etcdutl, ["snapshot", "status", file, "-w", "json"]);
  t.is(good.code, 0, good.stderr);
  t.true((JSON.parse(good.stdout) as { totalKey: number }).totalKey >= 100);
  const restored = await run(etcdutl, ["snapshot", "restore", file, "--data-dir", join(rig.dir, "by-etcdutl.etcd")]);
  t.is(restored.code, 0, restored.stderr);
  t.true(existsSync(join(rig.dir, "by-etcdutl.etcd/member/snap/db")));

  // So the snapshot step given etcdctl alone (the etcd 3.4 way) cannot verify against 3.6, and keeps no file.
  const node = rig.nodes[0];
  const noEtcdutl = snapshotArgsFor(rig, node);
  delete noEtcdutl.etcdutl;
  const r = await rig.runScript(node, saveSnapshotScript(noEtcdutl));
  t.not(r.code, 0);
  t.regex(r.stderr, /unexpected snapshot status output: NAME:\s+snapshot - Manages etcd node snapshots/);
  const dir = join(node.root, "/var/lib/etcd-snapshots");
  t.deepEqual(readdirSync(dir).filter((f) => f !== ".lock"), [], "no snapshot, no temporary file");
  // With etcdutl the same step verifies; its etcdctl calls go through a wrapper that keeps etcdctl's whole stderr
  // (the step shows only its last lines). etcdctl 3.6 warns "unrecognized environment variable" about every
  // ETCDCTL_* variable it does not know, ETCDCTL_API among them: the scripts set none.
  const stderrLog = join(rig.dir, "etcdctl-stderr.log");
  const wrapper = "/usr/local/bin/etcdctl-logged";
  mkdirSync(join(node.root, "/usr/local/bin"), { recursive: true });
  writeFileSync(join(node.root, wrapper), `#!/usr/bin/env bash\nexec "${etcdctl}" "$@" 2> >(tee -a "${stderrLog}" >&2)\n`, { mode: 0o755 });
  const ok = await rig.runScript(node, saveSnapshotScript(snapshotArgsFor(rig, node, { etcdctl: wrapper })));
  t.is(ok.code, 0, ok.stderr);
  t.true(parseSnapshotSummary(ok.stdout).totalKey >= 100);
  t.true(existsSync(stderrLog), "the step ran etcdctl through the wrapper");
  t.notRegex(readFileSync(stderrLog, "utf8"), /unrecognized environment variable/);
});

// ---- the snapshot step --------------------------------------------------------------------------------------------

test("real etcd 3.6: the snapshot step saves, verifies (etcdutl), records, prunes and uploads a snapshot of 10,000 keys from 3 members", async (t) => {
  await snapshotStepScenario(t, await startRig(t, ["cp-0", "cp-1", "cp-2"]));
});

// ---- the restore ----------------------------------------------------------------------------------------------------

test("real etcd 3.6, stacked: 3 members restored through the static manifests with etcdutl, resuming after an interruption", async (t) => {
  await stackedRestoreScenario(t, await startRig(t, ["cp-0", "cp-1", "cp-2"]));
});

test("real etcd 3.6: a corrupt or truncated snapshot is refused before anything is touched; the old data still serves", async (t) => {
  await corruptSnapshotScenario(t, await startRig(t, ["cp-0"]));
});
