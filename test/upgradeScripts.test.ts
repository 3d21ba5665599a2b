// The upgrade step scripts run for real (bash, coreutils, sed, awk) against a scratch root, with recording stubs for
// the binaries this machine does not and cannot have: kubeadm, kubectl, kubelet, apt-get, apt-mark, systemctl (see
// test/support/upgradeStubs.ts: a fake cluster whose state the stubs read and change). Resuming after a failure at
// each phase: test/upgradeResume.test.ts.
import test from "ava";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drainNodeScript, drainsNotReadyNodes } from "../lifecycle/scripts/drain";
import { drainDefaults } from "../lifecycle/defaults";
import { uncordonNodeScript } from "../lifecycle/scripts/uncordon";
import { controlPlaneUpgradeRecord, upgradeControlPlaneScript } from "../lifecycle/scripts/upgradeControlPlane";
import { upgradeKubeadmScript } from "../lifecycle/scripts/upgradeKubeadm";
import { upgradeKubeletScript } from "../lifecycle/scripts/upgradeKubelet";
import { upgradeWorkerScript } from "../lifecycle/scripts/upgradeWorker";
import { callsOf, nodePath, StubRun, stubState, writeNodeFile } from "./support/stubs";
import { ClusterSeed } from "./support/upgradeStubs";
import {
  assertConverged,
  cluster,
  controlPlanes,
  cp0Steps,
  everyStep,
  fast,
  FROM,
  injected,
  line,
  mutations,
  oneAttempt,
  preflightStep,
  read,
  run,
  runChain,
  state,
  stateHas,
  STUBS,
  TO,
  workerSteps,
} from "./support/upgradeRuns";

// ---------------------------------------------------------------------------------------------------------------

test(`already at the target, every step does nothing: no drain, no install, no kubeadm upgrade ${STUBS}`, async (t) => {
  let root: string | undefined;
  for (const step of everyStep(TO)) {
    const r = await run(t, step.script, { root, seed: cluster(TO) });
    root = r.root;
    t.is(r.code, 0, `${step.name}: ${r.stderr}`);
    t.deepEqual(mutations(r), [], `${step.name} changed something`);
    if (step.name !== "uncordon") t.regex(r.stderr, /: nothing to do\n/, step.name);
  }
  t.false(readFileSync(join(stubState(root!), "..", "calls.jsonl"), "utf8").includes('"exec"'), "no etcd check on a cluster at the target");
  t.is(read(root!, "/etc/apt/sources.list.d/kubernetes.list"), `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n`);
});

test(`cp-0 and a worker upgrade 1.35.9 -> 1.36.0 in plan order and converge ${STUBS}`, async (t) => {
  const cp = await runChain(t, cp0Steps(TO), { seed: cluster(FROM), node: "cp-0" });
  t.is(cp.failed, -1, cp.runs.map((r) => r.stderr).join("\n"));
  assertConverged(t, cp.root, "cp-0", TO, true);
  t.deepEqual(callsOf(cp.runs[2], "kubeadm").filter((a) => a[0] === "upgrade"), [["upgrade", "plan", "v1.36.0"], ["upgrade", "apply", "-y", "v1.36.0"]]);

  const worker = await runChain(t, workerSteps(TO), { seed: cluster(FROM, { serverVersion: TO, nodes: { "cp-0": { kubelet: TO }, "worker-0": {} } }), node: "worker-0" });
  t.is(worker.failed, -1, worker.runs.map((r) => r.stderr).join("\n"));
  assertConverged(t, worker.root, "worker-0", TO, false);
  // Converged: running either chain again changes nothing.
  for (const [steps, root, node] of [[cp0Steps(TO), cp.root, "cp-0"], [workerSteps(TO), worker.root, "worker-0"]] as const) {
    const again = await runChain(t, steps, { root, node });
    t.is(again.failed, -1);
    t.deepEqual(again.runs.flatMap(mutations), []);
  }
  const upgrade = worker.runs[1].calls.map(line);
  const order = ["apt-get .* install kubeadm=1\\.36\\.0-\\*", "^kubeadm upgrade node$", "apt-get .* install kubelet=1\\.36\\.0-\\* kubectl=1\\.36\\.0-\\*", "^systemctl daemon-reload$", "^systemctl restart kubelet$"]
    .map((re) => upgrade.findIndex((l) => new RegExp(re).test(l)));
  t.true(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `worker phases in order: ${order.join(",")}`);
});

test(`drain blocked by a PodDisruptionBudget: every attempt fails, the node is uncordoned, the step fails showing the drain output ${STUBS}`, async (t) => {
  const script = drainNodeScript({ runsOn: "cp-0", node: "worker-0", role: "worker", kubernetesVersion: TO, drain: { attempts: 2, retryDelaySeconds: 0 }, timeouts: fast });
  const root = await injected(t, cluster(FROM, { serverVersion: TO }), "never-matches", "cp-0");
  writeFileSync(join(stubState(root), "drain-mode"), "pdb");
  const failed = await run(t, script, { root });
  t.not(failed.code, 0);
  const kubectl = callsOf(failed, "kubectl").map((a) => a.filter((x) => !x.startsWith("--kubeconfig") && !x.includes("/etc/kubernetes/") && !x.startsWith("--request-timeout")));
  const verbs = kubectl.map((a) => a.find((x) => ["cordon", "drain", "uncordon"].includes(x))).filter(Boolean);
  t.deepEqual(verbs, ["cordon", "drain", "drain", "uncordon"], "cordon, two attempts, then uncordon");
  t.false(stateHas(root, "k8s/worker-0.cordoned"), "worker-0 is schedulable again");
  t.regex(failed.stderr, /\[worker-0\] drain: error when evicting pods\/"web-0" -n "default" \(will retry after 5s\): Cannot evict pod as it would violate the pod's disruption budget\./);
  t.regex(failed.stderr, /ERROR: drain of worker-0 failed \(kubectl exit 1, 2 attempts\); worker-0 is uncordoned/);
  t.false(failed.calls.some((c) => c.args.includes("--disable-eviction")), "no --disable-eviction unless enabled");
});

test(`drain that hangs: bounded by timeout, then uncordon and a non-zero exit naming the timeout ${STUBS}`, async (t) => {
  const root = await injected(t, cluster(FROM, { serverVersion: TO }), "never-matches", "cp-0");
  writeFileSync(join(stubState(root), "drain-mode"), "hang");
  const script = drainNodeScript({ runsOn: "cp-0", node: "worker-0", role: "worker", kubernetesVersion: TO, drain: { ...oneAttempt, timeoutSeconds: 1, killAfterSeconds: 1 }, timeouts: fast });
  const started = Date.now();
  const r = await run(t, script, { root });
  t.true(Date.now() - started < 10_000, "bounded");
  t.not(r.code, 0);
  t.regex(r.stderr, /ERROR: drain of worker-0 timed out after 2s; worker-0 is uncordoned/);
  t.is(line(r.calls[r.calls.length - 1]).replace(/--kubeconfig \S+ /, ""), "kubectl --request-timeout=30s uncordon worker-0");
  t.false(stateHas(root, "k8s/worker-0.cordoned"));
});

test(`drain arguments: workers --delete-emptydir-data --force, control planes neither; grace 300 s, timeout 360 s; --disable-eviction only when enabled ${STUBS}`, async (t) => {
  const worker = await run(t, drainNodeScript({ runsOn: "cp-0", node: "worker-0", role: "worker", kubernetesVersion: TO, timeouts: fast }), { seed: cluster(FROM, { serverVersion: TO }) });
  const cp = await run(t, drainNodeScript({ runsOn: "cp-1", node: "cp-1", role: "control-plane", kubernetesVersion: TO, timeouts: fast }), { seed: cluster(FROM) });
  const drainCall = (r: StubRun) => callsOf(r, "kubectl").find((a) => a.includes("drain"))!.slice(2);
  t.deepEqual(drainCall(worker), ["drain", "worker-0", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--grace-period=300", "--timeout=360s", "--skip-wait-for-delete-timeout=60"]);
  t.deepEqual(drainCall(cp), ["drain", "cp-1", "--ignore-daemonsets", "--grace-period=300", "--timeout=360s", "--skip-wait-for-delete-timeout=60"]);

  const root = await injected(t, cluster(FROM, { serverVersion: TO }), "never-matches", "cp-0");
  writeFileSync(join(stubState(root), "drain-mode"), "pdb-unless-disabled");
  const fallback = await run(t, drainNodeScript({ runsOn: "cp-0", node: "worker-0", role: "worker", kubernetesVersion: TO, drain: { ...oneAttempt, disableEviction: true }, timeouts: fast }), { root });
  t.is(fallback.code, 0, fallback.stderr);
  t.deepEqual(callsOf(fallback, "kubectl").filter((a) => a.includes("drain")).map((a) => a.includes("--disable-eviction")), [false, true]);
  t.regex(fallback.stderr, /one more attempt with --disable-eviction/);
});

test(`a minor change rewrites the apt source and key; a patch bump leaves both alone ${STUBS}`, async (t) => {
  const minor = await run(t, upgradeKubeadmScript({ node: "cp-0", kubernetesVersion: TO, timeouts: fast }), { seed: cluster(FROM) });
  t.is(minor.code, 0, minor.stderr);
  t.is(read(minor.root, "/etc/apt/sources.list.d/kubernetes.list"), "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n");
  t.regex(read(minor.root, "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"), /^DEARMORED\(.*stub key of https:\/\/pkgs\.k8s\.io\/core:\/stable:\/v1\.36\/deb\/Release\.key/s);
  t.deepEqual(callsOf(minor, "curl").map((a) => a[a.length - 1]), ["https://pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key"]);
  t.is(state(minor.root, "pkg/kubeadm"), "1.36.0-1.1");
  t.deepEqual(readdirSync(nodePath(minor.root, "/etc/apt/sources.list.d")), ["kubernetes.list"], "no temporary file left behind");

  const patch = await run(t, upgradeKubeadmScript({ node: "cp-0", kubernetesVersion: "1.35.10", timeouts: fast }), { seed: cluster(FROM) });
  t.is(patch.code, 0, patch.stderr);
  t.is(read(patch.root, "/etc/apt/sources.list.d/kubernetes.list"), "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.35/deb/ /\n");
  t.is(read(patch.root, "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"), "DEARMORED(key of v1.35)\n");
  t.deepEqual([...callsOf(patch, "curl"), ...callsOf(patch, "gpg")], []);
  t.true(callsOf(patch, "apt-get").some((a) => a.includes("kubeadm=1.35.10-*")));
  t.is(state(patch.root, "pkg/kubeadm"), "1.35.10-1.1");
});

for (const [target, message] of [
  ["1.37.0", /refusing to skip a minor: the cluster is at v1\.35\.9 and the target is v1\.37\.0; upgrade one minor at a time \(to v1\.36\.x first\)/],
  // A snapshot restore brings back data, not older binaries: the advice is to keep the deployed version.
  ["1.34.0", /refusing to downgrade: the cluster is at v1\.35\.9 and the target v1\.34\.0 is older \(kubeadm cannot downgrade, and restoring an etcd snapshot brings back data, not older binaries\): set kubernetesVersion back to v1\.35\.9/],
  ["1.35.8", /refusing to downgrade: the cluster is at v1\.35\.9 and the target v1\.35\.8 is older \(kubeadm cannot downgrade, and restoring an etcd snapshot brings back data, not older binaries\): set kubernetesVersion back to v1\.35\.9/],
] as const) {
  test(`every step refuses ${target} on a cluster at 1.35.9, on the node, before changing anything ${STUBS}`, async (t) => {
    for (const step of everyStep(target)) {
      const r = await run(t, step.script, { seed: cluster(FROM) });
      t.not(r.code, 0, step.name);
      t.regex(r.stderr, message, step.name);
      t.deepEqual(mutations(r), [], `${step.name} changed something before refusing`);
    }
  });
}

test(`node-local skew: a kubeadm two minors behind, a worker kubelet before the apiserver, a lagging node in pre-flight ${STUBS}`, async (t) => {
  const kubeadm = await run(t, upgradeKubeadmScript({ node: "cp-1", kubernetesVersion: TO, timeouts: fast }), {
    seed: cluster(FROM, { packages: { kubeadm: "1.34.2-1.1", kubelet: "1.34.2-1.1", kubectl: "1.34.2-1.1" } }),
  });
  t.not(kubeadm.code, 0);
  t.regex(kubeadm.stderr, /refusing to skip a minor: kubeadm on this node is at v1\.34\.2 and the target is v1\.36\.0/);
  t.deepEqual(mutations(kubeadm), []);

  const worker = await run(t, upgradeWorkerScript({ node: "worker-0", kubernetesVersion: TO, timeouts: fast }), { seed: cluster(FROM), node: "worker-0" });
  t.not(worker.code, 0);
  t.regex(worker.stderr, /the apiserver is still at v1\.35\.9: a kubelet must never be newer than its apiserver/);
  t.deepEqual(mutations(worker), []);

  const kubelet = await run(t, upgradeKubeletScript({ node: "cp-0", kubernetesVersion: TO, timeouts: fast }), { seed: cluster(FROM) });
  t.not(kubelet.code, 0);
  t.regex(kubelet.stderr, /the control plane on cp-0 runs 'v1\.35\.9', not v1\.36\.0: its kubelet must never be newer than its apiserver/);
  t.deepEqual(mutations(kubelet), []);

  const lagging = cluster(FROM);
  lagging.nodes["worker-1"] = { kubelet: "1.34.2" };
  const preflight = await run(t, preflightStep(TO).script, { seed: lagging });
  t.not(preflight.code, 0);
  t.regex(preflight.stderr, /refusing to skip a minor: node worker-1's kubelet is at v1\.34\.2 and the target is v1\.36\.0/);
});

test(`pre-flight checks health and asks the TARGET kubeadm's upgrade plan, fetched read-only: nothing on the node changes ${STUBS}`, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), "preflight-tmp-"));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const r = await run(t, preflightStep(TO).script, { env: { TMPDIR: tmp } });
  t.is(r.code, 0, r.stderr);
  const calls = r.calls.map(line);
  t.true(calls.some((l) => /^kubectl .*--server https:\/\/api\.example:6443 .*get --raw=\/readyz$/.test(l)), "readyz through the LB");
  t.deepEqual(calls.filter((l) => / exec etcd-/.test(l)).map((l) => /exec (etcd-cp-\d)/.exec(l)![1]), ["etcd-cp-0", "etcd-cp-1", "etcd-cp-2"]);
  const apt = callsOf(r, "apt-get");
  t.deepEqual(apt.map((a) => a.find((x) => ["update", "download", "install"].includes(x))), ["update", "download"]);
  for (const a of apt) {
    t.true(a.some((x) => x.startsWith(`Dir::Etc::SourceList=${tmp}/`)), "a temporary source list");
    t.true(a.includes("Dir::Etc::SourceParts=/dev/null"), "no other source list");
    t.true(a.some((x) => x.startsWith(`Dir::State::Lists=${tmp}/`)) && a.some((x) => x.startsWith(`Dir::Cache=${tmp}/`)), "temporary lists and cache");
  }
  t.true(apt[1].includes("kubeadm=1.36.0-*"));
  t.deepEqual(callsOf(r, "kubeadm-fetched"), [["version", "-o", "short"], ["upgrade", "plan", "v1.36.0", "--kubeconfig", nodePath(r.root, "/etc/kubernetes/admin.conf")]]);
  t.deepEqual(callsOf(r, "kubeadm"), [], "the node's own kubeadm is not used");
  t.deepEqual(callsOf(r, "apt-mark"), []);
  t.is(read(r.root, "/etc/apt/sources.list.d/kubernetes.list"), "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.35/deb/ /\n");
  t.is(state(r.root, "pkg/kubeadm"), "1.35.9-1.1");
  t.deepEqual(readdirSync(tmp), [], "the temporary directory is removed");
  t.regex(r.stderr, /\[cp-0\] upgrade-preflight: kubeadm accepts the upgrade to v1\.36\.0/);
});

test(`pre-flight fails on a NotReady node, unhealthy etcd, a failing /readyz, or a target kubeadm rejects — naming the problem ${STUBS}`, async (t) => {
  const notReady = cluster(FROM);
  notReady.nodes["worker-1"] = { ready: "False" };
  const cases: [string, ClusterSeed, string | undefined, RegExp][] = [
    ["NotReady", notReady, undefined, /not every node is Ready after 0s: worker-1 \(Ready=False\)/],
    ["etcd", cluster(FROM), "etcd-unhealthy", /etcd \(members cp-0, cp-1, cp-2\) is not healthy after 0s[^\n]*quorum/],
    ["readyz", cluster(FROM), "readyz-fail", /timed out after 0s waiting for \/readyz through the load balancer https:\/\/api\.example:6443/],
    ["plan", cluster(FROM), "plan-reject", /kubeadm upgrade plan rejects v1\.36\.0/],
  ];
  for (const [name, seed, flag, message] of cases) {
    const root = await injected(t, seed, "never-matches", "cp-0");
    if (flag) writeFileSync(join(stubState(root), flag), "");
    const r = await run(t, preflightStep(TO).script, { root });
    t.not(r.code, 0, name);
    t.regex(r.stderr, message, name);
    t.deepEqual(mutations(r).filter((l) => !/^(curl|gpg|dpkg-deb|apt-get .*Dir::Etc::SourceList=)/.test(l)), [], name);
  }
});

test(`pre-flight on a partly upgraded cluster (cp-0 already at the target) checks health but skips kubeadm upgrade plan ${STUBS}`, async (t) => {
  const r = await run(t, preflightStep(TO).script, { seed: cluster(FROM, { controlPlaneVersion: TO, serverVersion: TO, nodes: { "cp-0": { kubelet: TO }, "cp-1": {}, "cp-2": {}, "worker-0": {}, "worker-1": {} } }) });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /this control plane already runs v1\.36\.0: kubeadm upgrade plan was checked before it was upgraded/);
  t.deepEqual([...callsOf(r, "apt-get"), ...callsOf(r, "dpkg-deb"), ...callsOf(r, "kubeadm-fetched")], []);
  t.true(r.calls.some((c) => c.args.includes("exec")), "etcd still checked");
});

test(`further control planes: upgrade-kubeadm checks every etcd member first and stops on an unhealthy one; upgrade-control-plane runs kubeadm upgrade node ${STUBS}`, async (t) => {
  const script = upgradeKubeadmScript({ node: "cp-1", kubernetesVersion: TO, etcdHealthFirst: { kind: "stacked", members: controlPlanes }, timeouts: fast });
  const root = await injected(t, cluster(FROM), "never-matches", "cp-1");
  writeFileSync(join(stubState(root), "etcd-unhealthy"), "");
  const unhealthy = await run(t, script, { root, node: "cp-1" });
  t.not(unhealthy.code, 0);
  t.regex(unhealthy.stderr, /\[cp-1\] upgrade-kubeadm: https:\/\/127\.0\.0\.1:2379 is unhealthy/);
  t.regex(unhealthy.stderr, /ERROR: etcd \(members cp-0, cp-1, cp-2\) is not healthy/);
  t.deepEqual(mutations(unhealthy), []);

  rmSync(join(stubState(root), "etcd-unhealthy"));
  const healthy = await run(t, script, { root, node: "cp-1" });
  t.is(healthy.code, 0, healthy.stderr);
  const calls = healthy.calls.map(line);
  const lastExec = calls.map((l) => / exec etcd-cp-2 /.test(l)).lastIndexOf(true);
  const firstApt = calls.findIndex((l) => /^apt-(get|mark) /.test(l));
  t.true(lastExec >= 0 && firstApt > lastExec, "etcd checked on all three members before any package change");

  const noKubeadm = await run(t, upgradeControlPlaneScript({ node: "cp-1", kubernetesVersion: TO, mode: "node", builtAt: FROM, timeouts: fast }), { seed: cluster(FROM, { serverVersion: TO }) });
  t.not(noKubeadm.code, 0);
  t.regex(noKubeadm.stderr, /kubeadm on cp-1 is 'v1\.35\.9', not v1\.36\.0: the upgrade-kubeadm step installs it first/);
  const node = await run(t, upgradeControlPlaneScript({ node: "cp-1", kubernetesVersion: TO, mode: "node", builtAt: FROM, timeouts: fast }), { root, node: "cp-1" });
  t.is(node.code, 0, node.stderr);
  t.deepEqual(callsOf(node, "kubeadm").filter((a) => a[0] === "upgrade"), [["upgrade", "node"]]);
  t.regex(read(root, "/etc/kubernetes/manifests/kube-apiserver.yaml"), /kube-apiserver:v1\.36\.0/);
});

test(`uncordon waits for the control plane's pods at the target and fails naming the one that is not ${STUBS}`, async (t) => {
  const root = await injected(t, cluster(TO), "never-matches", "cp-0");
  writeFileSync(join(stubState(root), "k8s/cp-0.cordoned"), "");
  writeFileSync(nodePath(root, "/etc/kubernetes/manifests/kube-scheduler.yaml"), "spec:\n  containers:\n  - image: registry.k8s.io/kube-scheduler:v1.35.9\n");
  const r = await run(t, uncordonNodeScript({ runsOn: "cp-0", node: "cp-0", role: "control-plane", kubernetesVersion: TO, timeouts: fast }), { root });
  t.not(r.code, 0);
  t.false(stateHas(root, "k8s/cp-0.cordoned"), "uncordoned first");
  t.regex(r.stderr, /timed out after 0s waiting for pod kube-scheduler-cp-0 to run v1\.36\.0, Running and Ready/);

  const old = await injected(t, cluster(FROM, { serverVersion: TO }), "never-matches", "cp-0");
  writeFileSync(join(stubState(old), "k8s/worker-0.ready"), "False");
  const worker = await run(t, uncordonNodeScript({ runsOn: "cp-0", node: "worker-0", role: "worker", kubernetesVersion: TO, timeouts: fast }), { root: old });
  t.not(worker.code, 0);
  t.regex(worker.stderr, /ERROR: worker-0 is not Ready at kubelet v1\.36\.0 after 0s: Ready=False, kubelet v1\.35\.9/);
});

test("the drain defaults finish on a NotReady node: the attempt after the evicting one starts past --skip-wait-for-delete-timeout", (t) => {
  t.true(drainsNotReadyNodes(drainDefaults.worker));
  t.true(drainsNotReadyNodes(drainDefaults.controlPlane));
  t.false(drainsNotReadyNodes({ ...drainDefaults.worker, retryDelaySeconds: 0 }), "60 s skip + 300 s grace is not below a 360 s timeout alone");
  t.false(drainsNotReadyNodes({ ...drainDefaults.worker, attempts: 1 }), "one attempt never gets to skip");
});

test(`cp-0 after a partial kubeadm upgrade apply (manifests at the target, kubeadm-config behind): apply runs again; once kubeadm-config names the target too, nothing runs ${STUBS}`, async (t) => {
  const script = upgradeControlPlaneScript({ node: "cp-0", kubernetesVersion: TO, mode: "apply", builtAt: FROM, timeouts: fast });
  // kubeadm died after the control-plane phase: the manifests and the apiserver are at the target, kubeadm-config not.
  const seed = cluster(FROM, { controlPlaneVersion: TO, serverVersion: TO, clusterConfigVersion: FROM, packages: { kubeadm: `${TO}-1.1`, kubelet: `${FROM}-1.1`, kubectl: `${FROM}-1.1` } });
  const partial = await run(t, script, { seed });
  const r = await run(t, script, { root: partial.root });
  t.is(partial.code, 0, partial.stderr);
  t.true(mutations(partial).includes(`kubeadm upgrade apply -y v${TO}`), "kubeadm-config at the old version: apply ran although the manifests name the target");
  t.regex(partial.stderr, /kubeadm-config names 'v1\.35\.9'/);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(mutations(r), [], "kubeadm-config now names the target (apply wrote it): the rerun skips");
  t.regex(r.stderr, /kubeadm upgrade apply v1\.36\.0 finished on cp-0 \(its record, every component manifest and kubeadm-config name v1\.36\.0\)/);
});

test(`cp-1 whose kubeadm upgrade node failed after the kube-apiserver manifest (controller-manager and scheduler behind) runs kubeadm upgrade node again; once it finished and recorded it, nothing runs ${STUBS}`, async (t) => {
  const script = upgradeControlPlaneScript({ node: "cp-1", kubernetesVersion: TO, mode: "node", builtAt: FROM, timeouts: fast });
  const seed = cluster(FROM, { serverVersion: TO, packages: { kubeadm: `${TO}-1.1`, kubelet: `${FROM}-1.1`, kubectl: `${FROM}-1.1` } });
  const base = await run(t, "#!/usr/bin/env bash\ntrue\n", { seed, node: "cp-1" });
  writeFileSync(join(stubState(base.root), "kubeadm-dies-after-apiserver"), "");
  const failed = await run(t, script, { root: base.root, node: "cp-1" });
  t.not(failed.code, 0, "kubeadm upgrade node failed midway");
  t.regex(read(base.root, "/etc/kubernetes/manifests/kube-apiserver.yaml"), /kube-apiserver:v1\.36\.0/);
  t.regex(read(base.root, "/etc/kubernetes/manifests/kube-controller-manager.yaml"), /kube-controller-manager:v1\.35\.9/);
  t.false(existsSync(nodePath(base.root, controlPlaneUpgradeRecord)), "no record of a failed kubeadm");

  const rerun = await run(t, script, { root: base.root, node: "cp-1" });
  t.is(rerun.code, 0, rerun.stderr);
  t.deepEqual(callsOf(rerun, "kubeadm").filter((a) => a[0] === "upgrade"), [["upgrade", "node"]], "the rerun runs kubeadm upgrade node although the apiserver manifest names the target");
  t.regex(rerun.stderr, /no record that kubeadm upgrade node v1\.36\.0 finished here .*; not at v1\.36\.0: kube-controller-manager kube-scheduler: kubeadm upgrade node runs again/);
  for (const c of ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]) t.regex(read(base.root, `/etc/kubernetes/manifests/${c}.yaml`), new RegExp(`${c}:v1\\.36\\.0`));
  t.regex(read(base.root, controlPlaneUpgradeRecord), /^v1\.36\.0\n[0-9a-f]{64} {2}\S+\/kube-apiserver\.yaml\n(.*\n)*[0-9a-f]{64} {2}\S+\/var\/lib\/kubelet\/config\.yaml\n$/);

  const done = await run(t, script, { root: base.root, node: "cp-1" });
  t.is(done.code, 0, done.stderr);
  t.deepEqual(callsOf(done, "kubeadm").filter((a) => a[0] === "upgrade"), [], "finished: the record, every manifest and the kubelet configuration at the target");
  t.regex(done.stderr, /kubeadm upgrade node v1\.36\.0 finished on cp-1/);

  // A file kubeadm wrote that changed since (here the kubelet configuration) is not what kubeadm finished: it runs again.
  writeNodeFile(base.root, "/var/lib/kubelet/config.yaml", "# changed by hand\n");
  const changed = await run(t, script, { root: base.root, node: "cp-1" });
  t.is(changed.code, 0, changed.stderr);
  t.regex(changed.stderr, /the upgrade record: a file kubeadm wrote has changed since/);
  t.deepEqual(callsOf(changed, "kubeadm").filter((a) => a[0] === "upgrade"), [["upgrade", "node"]]);
});

test(`cp-0 with every manifest and kubeadm-config at the target but no record (apply failed after upload-config, or ran before the record existed) runs kubeadm upgrade apply again; a node built at the target needs no record ${STUBS}`, async (t) => {
  const seed = cluster(FROM, { controlPlaneVersion: TO, serverVersion: TO, clusterConfigVersion: TO, packages: { kubeadm: `${TO}-1.1`, kubelet: `${FROM}-1.1`, kubectl: `${FROM}-1.1` } });
  const script = upgradeControlPlaneScript({ node: "cp-0", kubernetesVersion: TO, mode: "apply", builtAt: FROM, timeouts: fast });
  const r = await run(t, script, { seed });
  t.is(r.code, 0, r.stderr);
  t.true(mutations(r).includes(`kubeadm upgrade apply -y v${TO}`), "kubeadm-config at the target is no proof that apply finished");
  t.regex(r.stderr, /no record that kubeadm upgrade apply v1\.36\.0 finished here/);
  t.regex(read(r.root, controlPlaneUpgradeRecord), /^v1\.36\.0\n/);
  const again = await run(t, script, { root: r.root });
  t.deepEqual(mutations(again), []);

  // Built at the target by kubeadm init (its bootstrap record): nothing to finish, no record needed.
  const built = await run(t, upgradeControlPlaneScript({ node: "cp-0", kubernetesVersion: TO, mode: "apply", builtAt: TO, timeouts: fast }), { seed: cluster(TO) });
  t.is(built.code, 0, built.stderr);
  t.deepEqual(mutations(built), []);
  t.regex(built.stderr, /the control plane on cp-0 was built at v1\.36\.0 by kubeadm and never upgraded: nothing to do/);
});

test(`an earlier bootstrap's kubeadm configurations (bootstrap token, certificate key) are removed by the node's next upgrade step, even one with nothing to upgrade ${STUBS}`, async (t) => {
  const leftovers = ["/etc/kubeadm-ha/kubeadm-init.yaml", "/etc/kubeadm-ha/kubeadm-join.yaml"];
  for (const [node, script] of [
    ["cp-0", upgradeKubeadmScript({ node: "cp-0", kubernetesVersion: TO, timeouts: fast })],
    ["worker-0", upgradeWorkerScript({ node: "worker-0", kubernetesVersion: TO, timeouts: fast })],
  ] as const) {
    const seed = cluster(TO);
    const r = await run(t, script, {
      seed: { ...seed, extraFiles: Object.fromEntries(leftovers.map((f) => [f, "kind: InitConfiguration\ntoken: abcdef.0123456789abcdef\n"])) },
      node,
    });
    t.is(r.code, 0, r.stderr);
    for (const f of leftovers) {
      t.false(existsSync(nodePath(r.root, f)), `${node}: ${f} removed`);
      t.true(r.stderr.includes(`removed ${f}: a kubeadm configuration with a bootstrap token, left by an earlier bootstrap`));
    }
    t.regex(r.stderr, /nothing to do/);
  }
});

test(`every upgrade step that changes a node refuses on a machine whose kubelet is another node, before changing anything ${STUBS}`, async (t) => {
  const steps = [
    upgradeKubeadmScript({ node: "cp-1", kubernetesVersion: TO, timeouts: fast }),
    upgradeControlPlaneScript({ node: "cp-1", kubernetesVersion: TO, mode: "node", builtAt: FROM, timeouts: fast }),
    upgradeKubeletScript({ node: "cp-1", kubernetesVersion: TO, timeouts: fast }),
    upgradeWorkerScript({ node: "cp-1", kubernetesVersion: TO, timeouts: fast }),
  ];
  for (const script of steps) {
    // cp-1's address reaches cp-0 (say, two config entries with one address).
    const r = await run(t, script, { seed: cluster(FROM, { identity: "cp-0" }) });
    t.not(r.code, 0);
    t.deepEqual(mutations(r), []);
    t.regex(r.stderr, /\[cp-1\] upgrade(-kubeadm|-control-plane|-kubelet)?: ERROR: refusing to upgrade .*: this machine's kubelet is node cp-0, not cp-1/);
  }
});

test(`a worker's upgrade to a new minor moves containerd's sandbox image to the target kubeadm's pause tag (its repository kept), restarting containerd before the kubelet; a rerun changes nothing ${STUBS}`, async (t) => {
  const seed = cluster(FROM, { serverVersion: TO, nodes: { "cp-0": { kubelet: TO }, "worker-0": {} } });
  const base = await run(t, "#!/usr/bin/env bash\ntrue\n", { seed, node: "worker-0" });
  const conf = "/etc/containerd/config.toml";
  writeNodeFile(base.root, conf, '[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.lab:5000/k8s/pause:3.10.1"\n');
  const chain = await runChain(t, workerSteps(TO), { root: base.root, node: "worker-0" });
  t.is(chain.failed, -1, chain.runs.map((r) => r.stderr).join("\n"));
  t.is(read(base.root, conf), '[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.lab:5000/k8s/pause:3.10.2"\n');
  const calls = chain.runs[1].calls.map(line);
  const containerd = calls.findIndex((l) => l === "systemctl restart containerd");
  const kubelet = calls.findIndex((l) => l === "systemctl restart kubelet");
  t.true(containerd >= 0 && containerd < kubelet, calls.join("\n"));
  t.regex(chain.runs[1].stderr, /\[worker-0\] upgrade: containerd's sandbox image: registry\.lab:5000\/k8s\/pause:3\.10\.1 -> registry\.lab:5000\/k8s\/pause:3\.10\.2/);
  const again = await runChain(t, workerSteps(TO), { root: base.root, node: "worker-0" });
  t.is(again.failed, -1);
  t.false(again.runs.some((r) => r.calls.map(line).includes("systemctl restart containerd")));
});
