// The generated etcd member removal (removeEtcdMemberScript: the same bash functions the control-plane retirement
// runs between its drain and its Node deletion) against a REAL 3-member TLS etcd cluster on loopback, etcd 3.5 and
// 3.4 (.tools/, from `bash test/tools/ensure-tools.sh`). The script's etcdctl is the real binary, reached through a
// shim that records its arguments; kubectl and kubeadm are shims that fail, so a call to either fails the test.
import test, { ExecutionContext } from "ava";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { removeEtcdMemberScript, stackedEtcdClientTls, type EtcdMemberRemovalArgs } from "../lifecycle/scripts/retireNode";
import { EtcdCluster, run, startEtcdCluster, type EtcdVersion, type RunResult } from "./support/etcdCluster";
import { toolPath } from "./support/tools";

const names = ["cp-0", "cp-1", "cp-2"];

interface Node {
  /** KUBEADM_HA_ROOT: the departing control plane's files (its etcd client certificate). */
  root: string;
  /** Every etcdctl call the script made, one line each. */
  etcdctlCalls(): string[];
  /** Calls of commands the removal must not use here (kubectl, kubeadm). */
  forbiddenCalls(): string[];
  run(script: string): Promise<RunResult>;
}

/** A scratch node whose kubeadm etcd client certificate is the test cluster's client certificate. */
function departingNode(t: ExecutionContext, cluster: EtcdCluster): Node {
  const base = mkdtempSync(join(tmpdir(), "etcd-member-removal-"));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const root = join(base, "root");
  const bin = join(base, "bin");
  mkdirSync(bin, { recursive: true });
  const put = (path: string, from: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    copyFileSync(from, join(root, path));
  };
  put(stackedEtcdClientTls.cacert, cluster.pki.ca.cert);
  put(stackedEtcdClientTls.cert, cluster.pki.client.cert);
  put(stackedEtcdClientTls.key, cluster.pki.client.key);
  const etcdctlLog = join(base, "etcdctl.calls");
  const forbiddenLog = join(base, "forbidden.calls");
  writeFileSync(etcdctlLog, "");
  writeFileSync(forbiddenLog, "");
  writeFileSync(join(bin, "etcdctl"), `#!/usr/bin/env bash\nprintf '%s\\n' "$*" >>'${etcdctlLog}'\nexec '${toolPath.etcdctl(cluster.version)}' "$@"\n`);
  for (const name of ["kubectl", "kubeadm"]) {
    writeFileSync(join(bin, name), `#!/usr/bin/env bash\nprintf '%s %s\\n' '${name}' "$*" >>'${forbiddenLog}'\nexit 99\n`);
  }
  for (const name of ["etcdctl", "kubectl", "kubeadm"]) chmodSync(join(bin, name), 0o755);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ETCD")) env[k] = v;
  Object.assign(env, { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, KUBEADM_HA_ROOT: root, KUBEADM_HA_POLL_SECONDS: "0", LC_ALL: "C.UTF-8" });
  const lines = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
  return {
    root,
    etcdctlCalls: () => lines(etcdctlLog),
    forbiddenCalls: () => lines(forbiddenLog),
    run: (script) => run("bash", ["-c", script], { env, timeoutMs: 60_000 }),
  };
}

/** name -> hex member id, as etcdctl member list -w simple reports it from `endpoints`. */
async function members(cluster: EtcdCluster, endpoints: string[]): Promise<Map<string, string>> {
  const r = await cluster.etcdctl(["member", "list", "-w", "simple"], { endpoints, check: true });
  return new Map(
    r.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(", "))
      .map((f) => [f[2], f[0]] as [string, string]),
  );
}

/** The member etcd currently calls leader (endpoint status -w simple: "endpoint, id, version, db size, is leader, ..."). */
async function leaderName(cluster: EtcdCluster): Promise<string> {
  const r = await cluster.etcdctl(["endpoint", "status", "-w", "simple"], { check: true });
  const line = r.stdout.split("\n").find((l) => l.split(", ")[4] === "true");
  if (!line) throw new Error(`no leader in:\n${r.stdout}`);
  return cluster.members.find((m) => m.clientUrl === line.split(", ")[0])!.name;
}

async function startCluster(t: ExecutionContext, version: EtcdVersion): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(tmpdir(), `etcd-removal-${version}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = await startEtcdCluster({ version, members: 3, dir, names });
  t.teardown(() => cluster.stop());
  return cluster;
}

for (const version of ["3.5", "3.4"] as EtcdVersion[]) {
  for (const given of [false, true]) {
    const how = given ? "asking the remaining members it is given" : "finding the remaining members through its own member";
    test(`etcd ${version}: the removal takes the departing member (the leader) out of a 3-member cluster, ${how}; the rest stays healthy and serves keys; a second run is a no-op`, async (t) => {
      const cluster = await startCluster(t, version);
      await cluster.putMany(200, "/registry/before/");
      const departing = cluster.member(await leaderName(cluster));
      const stay = cluster.members.filter((m) => m !== departing);
      const stayUrls = stay.map((m) => m.clientUrl);
      const before = await members(cluster, stayUrls);
      const node = departingNode(t, cluster);
      const args: EtcdMemberRemovalArgs = {
        node: departing.name,
        localEndpoint: departing.clientUrl,
        ...(given ? { remainingEndpoints: stayUrls } : {}),
        timeouts: { etcdHealth: 10 },
      };
      const script = removeEtcdMemberScript(args);

      const first = await node.run(script);
      t.is(first.code, 0, first.stderr);
      t.is(first.stdout, "");
      const id = before.get(departing.name)!;
      t.regex(first.stderr, new RegExp(`\\[${departing.name}\\] retire: etcd healthy: member ${departing.name} \\(${id}\\) may leave; 2 member\\(s\\) remain, quorum 2, all healthy`));
      t.regex(first.stderr, new RegExp(`\\[${departing.name}\\] retire: etcd member ${departing.name} removed; 2 member\\(s\\) remain`));
      for (const l of first.stderr.trimEnd().split("\n")) t.true(l.startsWith(`[${departing.name}] retire: `), `every line names node and step: ${l}`);
      const removeCalls = node.etcdctlCalls().filter((c) => / member remove /.test(c));
      // etcd refuses removals ("unhealthy cluster") until every member has been connected for 5 s: on a cluster this
      // young the script retries; every attempt asks the remaining members to remove this one id.
      t.true(removeCalls.length >= 1);
      for (const c of removeCalls) {
        t.regex(c, new RegExp(` member remove ${id}$`), "by id");
        t.deepEqual(/--endpoints=(\S+)/.exec(c)![1].split(",").sort(), [...stayUrls].sort(), "asked of the remaining members");
      }
      t.true(node.etcdctlCalls().every((c) => c.includes(`--cert=${node.root}${stackedEtcdClientTls.cert}`)), "with the node's healthcheck-client certificate");
      t.deepEqual(node.forbiddenCalls(), []);

      // The cluster as etcd itself reports it, asked independently of the script.
      const after = await members(cluster, stayUrls);
      t.deepEqual([...after.keys()].sort(), stay.map((m) => m.name).sort());
      t.false(after.has(departing.name));
      for (const m of stay) t.is(after.get(m.name), before.get(m.name), `${m.name} keeps its id`);
      const health = await cluster.etcdctl(["endpoint", "health"], { endpoints: stayUrls });
      t.is(health.code, 0, health.stdout + health.stderr);
      t.is((health.stdout + health.stderr).match(/is healthy/g)?.length, 2);
      await cluster.etcdctl(["put", "/registry/after/x", "written after the removal"], { endpoints: stayUrls, check: true });
      const read = await cluster.etcdctl(["get", "/registry/after/x", "--print-value-only"], { endpoints: [stayUrls[1]], check: true });
      t.is(read.stdout.trim(), "written after the removal");
      const count = await cluster.etcdctl(["get", "/registry/before/", "--prefix", "--keys-only", "--limit=1", "-w", "json"], { endpoints: stayUrls, check: true });
      t.is((JSON.parse(count.stdout) as { count: number }).count, 200);

      // Again: the member is absent, nothing is removed, the membership is unchanged.
      const callsBefore = node.etcdctlCalls().length;
      const second = await node.run(script);
      t.is(second.code, 0, second.stderr);
      t.regex(second.stderr, new RegExp(`\\[${departing.name}\\] retire: etcd member ${departing.name} is already absent from the cluster`));
      t.regex(second.stderr, /nothing to remove/);
      t.false(node.etcdctlCalls().slice(callsBefore).some((c) => / member remove /.test(c)));
      t.deepEqual(await members(cluster, stayUrls), after);
      t.deepEqual(node.forbiddenCalls(), []);
    });
  }

  test(`etcd ${version}: the removal is refused while a remaining member is down; the membership is unchanged`, async (t) => {
    const cluster = await startCluster(t, version);
    const [departing, up, down] = cluster.members;
    await cluster.stopMember(down.name); // SIGKILL: the cluster keeps quorum (2 of 3), but losing another member would cost it
    const node = departingNode(t, cluster);
    const r = await node.run(
      removeEtcdMemberScript({
        node: departing.name,
        localEndpoint: departing.clientUrl,
        remainingEndpoints: [up.clientUrl, down.clientUrl],
        timeouts: { etcdHealth: 0 },
      }),
    );
    t.not(r.code, 0);
    t.regex(
      r.stderr,
      new RegExp(
        `\\[${departing.name}\\] retire: ERROR: refusing to remove etcd member ${departing.name} after 0s: etcd is not healthy: 1 of the 2 remaining members answer \\(unhealthy: ${down.clientUrl}; their quorum is 2\\)`,
      ),
    );
    t.false(node.etcdctlCalls().some((c) => / member remove /.test(c)));
    const list = await members(cluster, [departing.clientUrl, up.clientUrl]);
    t.deepEqual([...list.keys()].sort(), names);
  });
}

test("the removal refuses to take the last member, without waiting", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-removal-single-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = await startEtcdCluster({ version: "3.5", members: 1, dir, names: ["cp-0"] });
  t.teardown(() => cluster.stop());
  const node = departingNode(t, cluster);
  const started = Date.now();
  const r = await node.run(removeEtcdMemberScript({ node: "cp-0", localEndpoint: cluster.members[0].clientUrl, timeouts: { etcdHealth: 300 } }));
  t.true(Date.now() - started < 10_000, "no wait for a health that cannot come");
  t.not(r.code, 0);
  t.regex(r.stderr, /\[cp-0\] retire: ERROR: refusing to remove etcd member cp-0: cp-0 is the only etcd member: removing it would lose the cluster's data/);
  t.is((await members(cluster, cluster.endpoints)).size, 1);
});
