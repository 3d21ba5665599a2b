// The generated restore phases run against REAL etcd members (3.4 from bookworm, 3.5 from trixie: .tools/, made by
// `bash test/tools/ensure-tools.sh`), each member on its own scratch root. Service-manager calls go to the rig's
// stand-ins (test/support/etcdNodes.ts): `systemctl` stops and starts the real member processes (external topology,
// from the member's environment file), a kubelet stand-in runs the member from its static manifest (stacked), and the
// apiservers and load balancer are stand-in HTTPS /readyz endpoints (no kube-apiserver exists here).
import test from "ava";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  fetchAndVerifyScript,
  restoreApiserverPhaseScript,
  restoredDataDir,
  restoreMemberScript,
  stopEtcdScript,
} from "../lifecycle/scripts/restoreSnapshot";
import { cleanup, runWithStubs, seedKubeletIdentity, writeNodeFile } from "./support/stubs";
import type { EtcdVersion } from "./support/etcdCluster";
import { rigPaths, runRestore } from "./support/etcdNodes";
import {
  allOk,
  assertRestored,
  clusterIds,
  corruptSnapshotScenario,
  KEYS,
  phaseCount,
  PREFIX,
  rigWithKeys,
  save,
  stackedRestoreScenario,
} from "./support/etcdScenarios";

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

// The same scenario runs on etcd 3.6 in test/real/etcd36.test.ts (support/etcdScenarios.ts).
test("etcd 3.5, stacked topology: 3 members restored through the static manifests, resuming after an interruption", async (t) => {
  await stackedRestoreScenario(t, await rigWithKeys(t, "3.5", "stacked", ["cp-0", "cp-1", "cp-2"]));
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
    await corruptSnapshotScenario(t, await rigWithKeys(t, version, "external", ["etcd-1"]));
  });
}

test("the restore builders refuse bad arguments, naming each", (t) => {
  const e = t.throws(() =>
    stopEtcdScript({
      node: "cp-0",
      cluster: "kubeadm-ha-dev",
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
    cluster: "kubeadm-ha-dev",
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

// ---- only this cluster's own snapshots (issue 14 item 3; recording stubs: the fetch refuses before any etcd tool) ----

test("the fetch phase refuses a snapshot whose sidecar names another cluster, with the cluster still serving: nothing stopped, nothing kept (recording stubs: nothing is called)", async (t) => {
  const snapshot = "/var/backups/kubeadm-ha/etcd/etcd-cp-0-20250101T000000.000Z-scheduled.db";
  const args = {
    node: "cp-0",
    cluster: "kubeadm-ha-dev",
    requestId: "incident-42",
    topology: "stacked" as const,
    snapshot,
    tools: { etcdctl: "/usr/local/bin/etcdctl", etcdutl: "/usr/local/bin/etcdutl" },
    tls: { cacert: "/etc/kubernetes/pki/etcd/ca.crt", cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt", key: "/etc/kubernetes/pki/etcd/healthcheck-client.key" },
    member: "cp-0",
    members: [{ name: "cp-0", peerUrl: "https://10.0.1.10:2380", clientUrl: "https://10.0.1.10:2379" }],
  };
  const db = "not a real snapshot: the refusal comes before snapshot status\n";
  const sidecarOf = (cluster: string) =>
    JSON.stringify({ file: "etcd-cp-0-20250101T000000.000Z-scheduled.db", cluster, node: "cp-0", reason: "scheduled", revision: 7, totalKey: 9, sha256: "0".repeat(64) }) + "\n";
  // The member's etcd tools record their calls: a refusal must come before any of them runs.
  const setup = (cluster: string) => (root: string) => {
    for (const tool of ["etcdctl", "etcdutl"]) {
      writeNodeFile(root, `/usr/local/bin/${tool}`, `#!/usr/bin/env bash\nprintf '{"cmd":"${tool}","args":[]}\\n' >>"$KUBEADM_HA_STUB_CALLS"\nexit 1\n`, 0o755);
    }
    writeNodeFile(root, "/etc/kubernetes/manifests/etcd.yaml", "# etcd\n");
    writeNodeFile(root, "/etc/kubernetes/manifests/kube-apiserver.yaml", "# kube-apiserver\n");
    seedKubeletIdentity(root, "cp-0");
    writeNodeFile(root, snapshot, db);
    writeNodeFile(root, `${snapshot}.json`, sidecarOf(cluster));
  };

  const other = await runWithStubs(fetchAndVerifyScript(args), { setup: setup("kubeadm-ha-prod") });
  t.teardown(() => cleanup(other.root));
  t.not(other.code, 0);
  t.regex(other.stderr, /\[cp-0\] restore-fetch: ERROR: refusing snapshot \/var\/backups\/kubeadm-ha\/etcd\/etcd-cp-0-\S+: its sidecar says it is a snapshot of cluster kubeadm-ha-prod, and this is cluster kubeadm-ha-dev\. An etcd snapshot restores only the cluster it came from/);
  t.regex(other.stderr, /build the new cluster and move the workloads with their manifests or Velero-style backups; nothing was changed/);
  t.deepEqual(other.calls, [], "nothing was called: no etcd tool, no systemctl, no kubectl");
  t.true(existsSync(join(other.root, "/etc/kubernetes/manifests/etcd.yaml")) && existsSync(join(other.root, "/etc/kubernetes/manifests/kube-apiserver.yaml")), "etcd and the apiserver still serve");
  for (const f of ["snapshot.db", "snapshot.db.part", "sidecar.json", "sidecar.json.part", "fetchAndVerify.done"]) {
    t.false(existsSync(join(other.root, "/var/lib/kubeadm-ha/restore/incident-42", f)), `no ${f} kept`);
  }

  // The same files with this cluster's name pass the check and go on to verification (here: the stub etcdutl fails).
  const own = await runWithStubs(fetchAndVerifyScript(args), { setup: setup("kubeadm-ha-dev") });
  t.teardown(() => cleanup(own.root));
  t.not(own.code, 0);
  t.notRegex(own.stderr, /snapshot of cluster/);
  t.regex(own.stderr, /its sha256 is [0-9a-f]{64}, the sidecar records 0{64}/);
});

test("the restore builders take the cluster's name as one word (it is compared with the sidecar's)", (t) => {
  const e = t.throws(() =>
    fetchAndVerifyScript({
      node: "cp-0",
      cluster: "kubeadm ha; rm -rf /",
      requestId: "r1",
      topology: "stacked",
      snapshot: "/x.db",
      tools: { etcdctl: "/usr/local/bin/etcdctl" },
      tls: { cacert: "/ca.crt", cert: "/c.crt", key: "/c.key" },
      member: "cp-0",
      members: [{ name: "cp-0", peerUrl: "https://10.0.1.10:2380", clientUrl: "https://10.0.1.10:2379" }],
    }),
  );
  t.regex(e?.message ?? "", /- cluster: must be one word/);
});
