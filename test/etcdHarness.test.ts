// Proves the real-etcd harness (test/support/etcdCluster.ts) for etcd 3.4 (bookworm) and 3.5 (trixie).
// Needs .tools/ (bash test/tools/ensure-tools.sh).
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEtcdCluster, type EtcdVersion } from "./support/etcdCluster";

for (const version of ["3.4", "3.5"] as EtcdVersion[]) {
  test(`etcd ${version}: 3-member TLS cluster on loopback is healthy, lists 3 members, loads and counts 1000 keys`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), `etcd-harness-${version}-`));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));

    const cluster = await startEtcdCluster({ version, members: 3, dir });
    t.teardown(() => cluster.stop());

    t.is(cluster.endpoints.length, 3);
    const health = await cluster.etcdctl(["endpoint", "health"], { check: true });
    for (const ep of cluster.endpoints) t.regex(health.stdout + health.stderr, new RegExp(`${ep} is healthy`));

    const list = await cluster.etcdctl(["member", "list", "-w", "json"], { check: true });
    const members = (JSON.parse(list.stdout) as { members: { name: string; clientURLs: string[] }[] }).members;
    t.deepEqual(members.map((m) => m.name).sort(), ["etcd-1", "etcd-2", "etcd-3"]);

    const status = await cluster.etcdctl(["endpoint", "status", "-w", "json"], { check: true });
    const versions = (JSON.parse(status.stdout) as { Status: { version: string } }[]).map((s) => s.Status.version);
    t.true(versions.every((v) => v.startsWith(`${version}.`)), versions.join(","));

    await cluster.putMany(1000, "/harness/");
    t.is(await cluster.countKeys("/harness/"), 1000);
    t.is(await cluster.countKeys("/nothing-here/"), 0);

    await cluster.stop();
    t.true(cluster.members.every((m) => !m.running()));
  });
}
