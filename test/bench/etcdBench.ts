// Benchmark (not a test): the generated etcd snapshot and restore scripts against the raw commands they wrap, on a
// REAL 3-member TLS cluster on loopback holding 10,000 keys (test/support/etcdNodes.ts; tools from
// `bash test/tools/ensure-tools.sh`).
//
//   npx tsx test/bench/etcdBench.ts [3.4|3.5] [saveRounds] [restoreRounds]
//
// 1. save+verify: saveSnapshotScript (health probe, save, status, key count, sha256, sidecar, prune) vs a bare
//    `etcdctl snapshot save` (and, for reference, save + status).
// 2. 3-member restore: the generated etcd phases (fetchAndVerify with its trial restore, stopEtcd, restoreMember,
//    pointEtcdAtRestoredData, startEtcd, waitEtcdHealthy), run member by member as the Pulumi chain runs them, vs the
//    raw sequence an operator would type: systemctl stop on every member, `snapshot restore` on every member into a
//    new dir pointed to by /var/lib/etcd, systemctl start on every member, `endpoint health` until healthy.
// Both sides go through the same systemctl stand-in and spawn bash per step; each timing is wall-clock.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseSnapshotSummary, saveSnapshotScript } from "../../lifecycle/scripts/saveSnapshot";
import type { EtcdVersion } from "../support/etcdCluster";
import { EtcdNodes, rigPaths, runRestore, snapshotArgsFor, type RigNode } from "../support/etcdNodes";

const version = (process.argv[2] ?? "3.5") as EtcdVersion;
const saveRounds = Number(process.argv[3] ?? 7);
const restoreRounds = Number(process.argv[4] ?? 3);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => `${ms.toFixed(0).padStart(6)} ms`;

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function ok(rig: EtcdNodes, n: RigNode, script: string, what: string): Promise<string> {
  const r = await rig.runScript(n, script, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${what} on ${n.name} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

/** The raw commands, as bash run on the node (same $R, PATH and systemctl stand-in as the generated scripts). */
function raw(body: string): string {
  return `#!/usr/bin/env bash\nset -euo pipefail\nR="$KUBEADM_HA_ROOT"\n${body}\n`;
}

function tls(): string {
  return `--cacert="$R${rigPaths.cacert}" --cert="$R${rigPaths.cert}" --key="$R${rigPaths.key}"`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `etcd-bench-${version}-`));
  const rig = await EtcdNodes.start({ version, topology: "external", names: ["etcd-1", "etcd-2", "etcd-3"], dir });
  try {
    await rig.cluster().putMany(10_000, "/registry/bench/", { batch: 1000 });
    const n0 = rig.nodes[0];
    console.log(`etcd ${version}, 3 members, ${await rig.cluster().countKeys("")} keys; ${saveRounds} save rounds, ${restoreRounds} restore rounds`);

    // ---- 1. save + verify --------------------------------------------------------------------------------------
    const generatedSave: number[] = [];
    const rawSave: number[] = [];
    const rawSaveStatus: number[] = [];
    const statusTool = version === "3.4" ? `"$R${rigPaths.etcdctl}"` : `"$R${rigPaths.etcdutl}"`;
    const script = saveSnapshotScript(snapshotArgsFor(rig, n0, { keep: 3, reason: "bench" }));
    let snapshotPath = "";
    for (let i = 0; i < saveRounds; i++) {
      generatedSave.push(await timed(async () => void (snapshotPath = parseSnapshotSummary(await ok(rig, n0, script, "save")).path)));
      const file = `/var/lib/raw-snapshots/raw-${i}.db`;
      const save = `mkdir -p "$R/var/lib/raw-snapshots"\n"$R${rigPaths.etcdctl}" --endpoints=${n0.clientUrl} ${tls()} snapshot save "$R${file}" >/dev/null 2>&1`;
      rawSave.push(await timed(async () => void (await ok(rig, n0, raw(save), "raw save"))));
      rawSaveStatus.push(
        await timed(async () => void (await ok(rig, n0, raw(`${save}\n${statusTool} snapshot status "$R${file}" -w json >/dev/null`), "raw save+status"))),
      );
    }

    // ---- 2. 3-member restore -----------------------------------------------------------------------------------
    // The same snapshot file at the same path on every member (as an operator would place it).
    for (const n of rig.nodes.slice(1)) {
      for (const f of [snapshotPath, `${snapshotPath}.json`]) {
        mkdirSync(dirname(join(n.root, f)), { recursive: true });
        copyFileSync(join(n0.root, f), join(n.root, f));
      }
    }
    const initialCluster = rig.nodes.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    const endpoints = rig.nodes.map((m) => m.clientUrl).join(",");
    const restoreTool = version === "3.4" ? `"$R${rigPaths.etcdctl}"` : `"$R${rigPaths.etcdutl}"`;
    const generatedRestore: number[] = [];
    const rawRestore: number[] = [];
    const phaseTotals = new Map<string, number>();
    const rawTotals = new Map<string, number>();
    for (let i = 0; i < restoreRounds; i++) {
      generatedRestore.push(
        await timed(async () => {
          const runs = await runRestore(rig, { requestId: `bench-${i}`, snapshot: snapshotPath });
          const failed = runs.find((r) => r.result.code !== 0);
          if (failed) throw new Error(`${failed.phase} on ${failed.node} failed:\n${failed.result.stderr}`);
          for (const r of runs) phaseTotals.set(r.phase, (phaseTotals.get(r.phase) ?? 0) + r.ms);
        }),
      );
      await rig.waitHealthy();
      rawRestore.push(
        await timed(async () => {
          let t = Date.now();
          const lap = (what: string) => {
            rawTotals.set(what, (rawTotals.get(what) ?? 0) + Date.now() - t);
            t = Date.now();
          };
          for (const n of rig.nodes) await ok(rig, n, raw("systemctl stop etcd"), "raw stop");
          lap("stop");
          for (const n of rig.nodes) {
            const restore = [
              `${restoreTool} snapshot restore "$R${snapshotPath}" --name ${n.name} --initial-cluster ${initialCluster} \\`,
              `  --initial-cluster-token raw-${i} --initial-advertise-peer-urls ${n.peerUrl} --data-dir "$R/var/lib/etcd-raw-${i}" >/dev/null 2>&1`,
              `if [ -L "$R/var/lib/etcd" ]; then rm "$R/var/lib/etcd"; else mv "$R/var/lib/etcd" "$R/var/lib/etcd.raw-old-${i}"; fi`,
              `ln -s etcd-raw-${i} "$R/var/lib/etcd"`,
            ].join("\n");
            await ok(rig, n, raw(restore), "raw restore");
          }
          lap("restore + repoint");
          for (const n of rig.nodes) await ok(rig, n, raw("systemctl start --no-block etcd"), "raw start");
          lap("start");
          const health = [
            "deadline=$((SECONDS + 120))",
            `until "$R${rigPaths.etcdctl}" --endpoints=${endpoints} ${tls()} endpoint health >/dev/null 2>&1; do`,
            '  [ "$SECONDS" -lt "$deadline" ] || exit 1',
            "  sleep 0.1",
            "done",
          ].join("\n");
          await ok(rig, n0, raw(health), "raw health");
          lap("health");
        }),
      );
      await rig.waitHealthy();
      const keys = await rig.cluster().countKeys("/registry/bench/");
      if (keys !== 10_000) throw new Error(`after round ${i}: ${keys} keys`);
    }

    const gs = median(generatedSave);
    const rs = median(rawSave);
    const rss = median(rawSaveStatus);
    const gr = median(generatedRestore);
    const rr = median(rawRestore);
    console.log("");
    console.log("save + verify (median)");
    console.log(`  raw etcdctl snapshot save          ${fmt(rs)}`);
    console.log(`  raw save + snapshot status         ${fmt(rss)}`);
    console.log(`  generated saveSnapshotScript       ${fmt(gs)}`);
    console.log(`  ratio generated / raw save         ${(gs / rs).toFixed(2)}x   (vs raw save+status ${(gs / rss).toFixed(2)}x)`);
    console.log("3-member restore, stop to healthy (median)");
    console.log(`  raw command sequence               ${fmt(rr)}`);
    console.log(`  generated phases (6 x 3 members)   ${fmt(gr)}`);
    console.log(`  ratio generated / raw              ${(gr / rr).toFixed(2)}x`);
    console.log("  generated, mean per phase (all members):");
    for (const [phase, total] of phaseTotals) console.log(`    ${phase.padEnd(26)} ${fmt(total / restoreRounds)}`);
    console.log("  raw, mean per step (all members):");
    for (const [step, total] of rawTotals) console.log(`    ${step.padEnd(26)} ${fmt(total / restoreRounds)}`);
    console.log(`(runs: save ${generatedSave.map((x) => x.toFixed(0)).join("/")} vs ${rawSave.map((x) => x.toFixed(0)).join("/")} ms;` +
      ` restore ${generatedRestore.map((x) => x.toFixed(0)).join("/")} vs ${rawRestore.map((x) => x.toFixed(0)).join("/")} ms)`);
    const cpu = execFileSync("nproc").toString().trim();
    console.log(`(${cpu} CPUs, node ${process.version})`);
  } finally {
    await rig.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
