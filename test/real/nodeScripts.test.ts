// The program's generated kubectl scripts (drain, uncordon, maintenance, worker retirement, wait-for-nodes,
// pre-flight) against a REAL control plane (etcd 3.6, kube-apiserver, kube-controller-manager, kube-scheduler v1.36)
// with the REAL kubectl; nodes are simulated by kwok. kubeadm, apt-get and systemctl stay recording stubs (these
// scripts do not call them on the paths tested here), and the kubectl "stub" only records the call, then execs the
// real kubectl.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { nodePaths } from "../../infra/defaults";
import { waitForNodesScript } from "../../infra/scripts/waitForNodes";
import type { DrainSettings } from "../../lifecycle/defaults";
import { drainNodeScript } from "../../lifecycle/scripts/drain";
import { maintenanceDrainScript, maintenanceEndScript } from "../../lifecycle/scripts/maintenance";
import { retireWorkerScript } from "../../lifecycle/scripts/retireNode";
import { uncordonNodeScript } from "../../lifecycle/scripts/uncordon";
import { preflightChecksScript } from "../../lifecycle/scripts/preflight";
import { apiserverEtcdClientPaths } from "../../infra/scripts/etcdMember";
import { parse, stringify } from "yaml";
import { clusterConfiguration } from "../../infra/scripts/kubeadmConfig";
import { run } from "../support/etcdCluster";
import { realTool, realToolVersion } from "../support/realTools";
import { seedCluster, upgradeStubs } from "../support/upgradeStubs";
import { startControlPlane, type ControlPlane } from "../support/controlPlane";
import { callsOf, cleanup, runWithStubs, writeNodeFile, type StubRun } from "../support/stubs";

let cp: ControlPlane;
let dir: string;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), "kubeadm-ha-real-cp-"));
  cp = await startControlPlane({ dir });
});

test.after.always(async () => {
  await cp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a generated script as cp-0 would: admin.conf is the real control plane's, kubectl is the real one. */
async function runOnCp0(script: string, timeoutMs = 120_000): Promise<StubRun> {
  const admin = readFileSync(cp.adminKubeconfig, "utf8");
  const r = await runWithStubs(script, {
    setup: (root) => writeNodeFile(root, nodePaths.adminKubeconfig, admin, 0o600),
    stubs: { kubectl: `exec '${cp.kubectlPath}' "$@"` },
    env: { KUBEADM_HA_POLL_SECONDS: "1" },
    timeoutMs,
  });
  cleanup(r.root);
  return r;
}

const output = (r: StubRun) => r.stdout + r.stderr;

async function unschedulable(node: string): Promise<boolean> {
  return (await cp.kubectlOk(["get", "node", node, "-o", "jsonpath={.spec.unschedulable}"])).trim() === "true";
}

/** Pods on a node: "namespace/name phase terminating?" lines. */
async function podsOn(node: string): Promise<string[]> {
  const out = await cp.kubectlOk(["get", "pods", "-A", "--field-selector", `spec.nodeName=${node}`, "-o",
    'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.ownerReferences[0].kind} {.metadata.deletionTimestamp}{"\\n"}{end}']);
  return out.split("\n").filter(Boolean);
}

function deployment(name: string, node: string, extra: { emptyDir?: boolean; replicas?: number } = {}) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: "default", labels: { app: name } },
    spec: {
      replicas: extra.replicas ?? 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          nodeSelector: { "kubernetes.io/hostname": node },
          containers: [{ name: "app", image: "registry.k8s.io/pause:3.10", ...(extra.emptyDir ? { volumeMounts: [{ name: "scratch", mountPath: "/scratch" }] } : {}) }],
          ...(extra.emptyDir ? { volumes: [{ name: "scratch", emptyDir: {} }] } : {}),
        },
      },
    },
  };
}

async function waitRunning(node: string, count: number) {
  await cp.waitFor(`${count} running pod(s) on ${node}`, async () => {
    const out = await cp.kubectlOk(["get", "pods", "-A", "--field-selector", `spec.nodeName=${node},status.phase=Running`, "-o", "name"]);
    return out.split("\n").filter(Boolean).length >= count;
  });
}

/** Short drains for tests (same behaviour, smaller bounds). */
const quick: Partial<DrainSettings> = { timeoutSeconds: 8, gracePeriodSeconds: 1, attempts: 2, retryDelaySeconds: 1, skipWaitForDeleteTimeoutSeconds: 2, killAfterSeconds: 20 };

const from = "1.35.4";
const to = () => cp.version.replace(/^v/, "");

test.serial("real kubectl: a PodDisruptionBudget that blocks eviction fails the upgrade drain after its bounded attempts and uncordons the node", async (t) => {
  await cp.addNodes([{ name: "pdb-worker", kubeletVersion: `v${from}` }]);
  await cp.apply([
    deployment("guarded", "pdb-worker"),
    { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: "guarded", namespace: "default" }, spec: { minAvailable: 1, selector: { matchLabels: { app: "guarded" } } } },
  ]);
  await waitRunning("pdb-worker", 1);
  await cp.waitFor("the PDB to count its healthy pod", async () => (await cp.kubectlOk(["get", "pdb", "guarded", "-o", "jsonpath={.status.currentHealthy}"])).trim() === "1");
  const started = Date.now();
  const r = await runOnCp0(drainNodeScript({ runsOn: "cp-0", node: "pdb-worker", role: "worker", kubernetesVersion: to(), drain: quick }));
  const seconds = (Date.now() - started) / 1000;
  t.not(r.code, 0, "the step fails");
  const drains = callsOf(r, "kubectl").filter((a) => a.includes("drain"));
  t.is(drains.length, 2, "exactly the configured number of drain attempts ran");
  t.regex(output(r), /disruption budget/i, "the step's output carries the drain's own words about the PDB");
  t.regex(output(r), /pdb-worker is uncordoned/);
  t.false(await unschedulable("pdb-worker"), "the node was uncordoned after the failed drain");
  t.is((await podsOn("pdb-worker")).length, 1, "the guarded pod still runs there");
  t.true(seconds < 2 * (8 + 20) + 10, `bounded: ${seconds}s`);
});

test.serial("real kubectl: the upgrade drain of a worker ignores DaemonSet pods and evicts emptyDir pods", async (t) => {
  await cp.addNodes([{ name: "ds-worker", kubeletVersion: `v${from}` }]);
  await cp.apply([
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "agent", namespace: "default" },
      spec: {
        selector: { matchLabels: { app: "agent" } },
        template: { metadata: { labels: { app: "agent" } }, spec: { nodeSelector: { "kubernetes.io/hostname": "ds-worker" }, tolerations: [{ operator: "Exists" }], containers: [{ name: "a", image: "registry.k8s.io/pause:3.10" }] } },
      },
    },
    deployment("scratch", "ds-worker", { emptyDir: true }),
  ]);
  await waitRunning("ds-worker", 2);
  const r = await runOnCp0(drainNodeScript({ runsOn: "cp-0", node: "ds-worker", role: "worker", kubernetesVersion: to(), drain: quick }));
  t.is(r.code, 0, output(r));
  t.true(await unschedulable("ds-worker"), "drained and left cordoned for its upgrade");
  await cp.waitFor("the emptyDir pod to leave ds-worker", async () => (await podsOn("ds-worker")).every((p) => !p.includes("scratch")));
  const left = await podsOn("ds-worker");
  t.is(left.length, 1, left.join("\n"));
  t.regex(left[0], /DaemonSet/, "only the DaemonSet's pod stays");
});

test.serial("real kubectl: the upgrade drain of a control plane refuses to delete emptyDir data (its defaults keep --delete-emptydir-data off)", async (t) => {
  await cp.addNodes([{ name: "cp-scratch", controlPlane: true, kubeletVersion: `v${from}` }]);
  await cp.apply([deployment("cp-scratch-app", "cp-scratch", { emptyDir: true })]);
  await waitRunning("cp-scratch", 1);
  const r = await runOnCp0(drainNodeScript({ runsOn: "cp-0", node: "cp-scratch", role: "control-plane", kubernetesVersion: to(), drain: { ...quick, attempts: 1 } }));
  t.not(r.code, 0);
  t.regex(output(r), /emptyDir|local storage/i, "kubectl's own refusal is in the output");
  t.false(await unschedulable("cp-scratch"), "uncordoned after the failed drain");
});

test.serial("real kubectl: the drain of a NotReady node finishes, though its pods stay Terminating (no kubelet confirms)", async (t) => {
  await cp.addNodes([{ name: "dead-worker", managed: false, kubeletVersion: `v${from}` }]);
  // Bound directly (the scheduler keeps pods off a NotReady node): a pod that was running when the machine died.
  await cp.apply([{ apiVersion: "v1", kind: "Pod", metadata: { name: "stranded", namespace: "default" }, spec: { nodeName: "dead-worker", containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } }]);
  await cp.waitFor("the stranded pod bound to dead-worker", async () => (await podsOn("dead-worker")).length === 1);
  const started = Date.now();
  const r = await runOnCp0(drainNodeScript({ runsOn: "cp-0", node: "dead-worker", role: "worker", kubernetesVersion: to(), drain: quick }));
  const seconds = (Date.now() - started) / 1000;
  t.is(r.code, 0, output(r));
  t.true(await unschedulable("dead-worker"));
  const left = await podsOn("dead-worker");
  t.true(left.length >= 1 && left.every((p) => / \S+T\S+Z$/.test(p)), `its pods are Terminating, not gone: ${left.join("; ")}`);
  t.true(seconds < 2 * (8 + 20) + 10, `bounded: ${seconds}s`);
});

test.serial("real kubectl: a node held by maintenance stays cordoned through the upgrade's uncordon; ending maintenance uncordons it", async (t) => {
  await cp.addNodes([{ name: "held-worker" }]);
  await cp.apply([deployment("held-app", "held-worker")]);
  await waitRunning("held-worker", 1);
  const drain = await runOnCp0(maintenanceDrainScript({ node: "held-worker", runsOn: "cp-0", drain: quick }));
  t.is(drain.code, 0, output(drain));
  t.true(await unschedulable("held-worker"));
  t.deepEqual(await podsOn("held-worker"), [], "drained");
  // The upgrade's uncordon (the node reports the target kubelet, as after its upgrade).
  const uncordon = await runOnCp0(uncordonNodeScript({ runsOn: "cp-0", node: "held-worker", role: "worker", kubernetesVersion: to() }));
  t.is(uncordon.code, 0, output(uncordon));
  t.regex(output(uncordon), /held in maintenance/);
  t.true(await unschedulable("held-worker"), "still cordoned after the upgrade's uncordon");
  const again = await runOnCp0(maintenanceDrainScript({ node: "held-worker", runsOn: "cp-0", drain: quick }));
  t.is(again.code, 0);
  t.is(callsOf(again, "kubectl").filter((a) => a.includes("drain")).length, 0, "a rerun finds it drained and does nothing");
  const end = await runOnCp0(maintenanceEndScript({ node: "held-worker", runsOn: "cp-0" }));
  t.is(end.code, 0, output(end));
  t.false(await unschedulable("held-worker"), "uncordoned once out of maintenance");
  const upgradeUncordon = await runOnCp0(uncordonNodeScript({ runsOn: "cp-0", node: "held-worker", role: "worker", kubernetesVersion: to() }));
  t.is(upgradeUncordon.code, 0);
  t.notRegex(output(upgradeUncordon), /held in maintenance/, "the mark is gone with the maintenance");
});

test.serial("real kubectl: a retiring worker is drained and its Node deleted; a rerun finds it gone", async (t) => {
  await cp.addNodes([{ name: "leaving-worker" }]);
  await cp.apply([deployment("leaving-app", "leaving-worker")]);
  await waitRunning("leaving-worker", 1);
  const r = await runOnCp0(retireWorkerScript({ node: "leaving-worker", runsOn: "cp-0", drain: quick }));
  t.is(r.code, 0, output(r));
  t.is((await cp.kubectl(["get", "node", "leaving-worker"])).code, 1, "the Node is gone");
  const again = await runOnCp0(retireWorkerScript({ node: "leaving-worker", runsOn: "cp-0", drain: quick }));
  t.is(again.code, 0, output(again));
  t.regex(output(again), /already gone/);
});

test.serial("real kubectl: wait-for-nodes times out naming the NotReady node, and returns once every node is Ready", async (t) => {
  await cp.addNodes([{ name: "wait-a" }, { name: "wait-b", managed: false }]);
  const failed = await runOnCp0(waitForNodesScript({ node: "cp-0", expectedNodes: ["wait-a", "wait-b", "wait-missing"], timeoutSeconds: 3 }));
  t.not(failed.code, 0);
  t.regex(output(failed), /wait-b/);
  t.regex(output(failed), /wait-missing/);
  t.notRegex(output(failed).split("\n").filter((l) => /not ready|missing|NotReady|timed out/i.test(l)).join("\n"), /wait-a\b/, "the Ready node is not blamed");
  const ok = await runOnCp0(waitForNodesScript({ node: "cp-0", expectedNodes: ["wait-a"], timeoutSeconds: 30 }));
  t.is(ok.code, 0, output(ok));
});

test.serial("real kubectl and etcdctl 3.6: pre-flight names the NotReady node and fails; with every node Ready, etcd healthy and /readyz answering it passes (the target kubeadm's fetch and plan are stubs)", async (t) => {
  await cp.addNodes([{ name: "pre-cp", controlPlane: true, kubeletVersion: `v${from}` }, { name: "pre-worker", kubeletVersion: `v${from}` }, { name: "pre-down", managed: false, kubeletVersion: `v${from}` }]);
  const admin = readFileSync(cp.adminKubeconfig, "utf8");
  const pki = (f: string) => readFileSync(join(cp.dir, "pki", f), "utf8");
  const preflight = (nodes: string[]) =>
    runWithStubs(
      preflightChecksScript({
        node: "pre-cp",
        kubernetesVersion: to(),
        nodes,
        controlPlanes: ["pre-cp"],
        apiEndpoint: cp.server.replace("https://", ""),
        etcd: { kind: "external", endpoints: [cp.etcdEndpoint] },
        timeouts: { preflightHealth: 3, etcdHealth: 10 },
      }),
      {
        setup: (root) => {
          seedCluster({ version: from, controlPlane: true, nodes: {} })(root);
          writeNodeFile(root, nodePaths.adminKubeconfig, admin, 0o600);
          writeNodeFile(root, apiserverEtcdClientPaths.caFile, pki("etcd/ca.crt"));
          writeNodeFile(root, apiserverEtcdClientPaths.certFile, pki("apiserver-etcd-client.crt"));
          writeNodeFile(root, apiserverEtcdClientPaths.keyFile, pki("apiserver-etcd-client.key"), 0o600);
        },
        stubs: { ...upgradeStubs(), kubectl: `exec '${cp.kubectlPath}' "$@"`, etcdctl: `exec '${realTool("etcdctl")}' "$@"` },
        env: { KUBEADM_HA_POLL_SECONDS: "1" },
        timeoutMs: 120_000,
      },
    ).then((r) => (cleanup(r.root), r));
  const failed = await preflight(["pre-cp", "pre-worker", "pre-down"]);
  t.not(failed.code, 0);
  t.regex(output(failed), /not every node is Ready after 3s: pre-down \(Ready=False\)/);
  t.is(callsOf(failed, "etcdctl").length, 0, "nothing after the node check ran");
  const ok = await preflight(["pre-cp", "pre-worker"]);
  t.is(ok.code, 0, output(ok));
  t.regex(output(ok), /all 2 nodes Ready/);
  t.regex(output(ok), /is healthy/, "the real etcd member answered etcdctl endpoint health");
  t.regex(output(ok), /API ready through the load balancer/);
});

/** The cluster's ClusterConfiguration and (default) kubelet configuration as `kubeadm init phase upload-config all` of `kubeadm` stores them. */
async function uploadClusterConfiguration(kubeadm: string, cluster: Record<string, unknown>): Promise<void> {
  const config = [
    { apiVersion: cluster.apiVersion, kind: "InitConfiguration", nodeRegistration: { name: hostname().toLowerCase(), criSocket: "unix:///run/containerd/containerd.sock" }, localAPIEndpoint: { advertiseAddress: "10.0.1.10", bindPort: 6443 } },
    { ...cluster, certificatesDir: join(cp.dir, "pki") },
  ]
    .map((d) => stringify(d))
    .join("---\n");
  const file = join(dir, "upload-config.yaml");
  writeFileSync(file, config, { mode: 0o600 });
  const r = await run(kubeadm, ["init", "phase", "upload-config", "all", "--config", file, "--kubeconfig", cp.adminKubeconfig], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`kubeadm init phase upload-config all failed:\n${r.stderr}${r.stdout}`);
}

test.serial("real kubeadm 1.35 -> 1.36: the pre-flight removes the ControlPlaneKubeletLocalMode gate a cluster built at 1.32 keeps in kubeadm-config before the target's kubeadm upgrade plan (the REAL kubeadm 1.36) reads it, so the upgrade can start", async (t) => {
  const [old, next] = [realTool("kubeadm", "1.35"), realTool("kubeadm", "1.36")];
  // kubeadm upgrade plan reads the Node named after this machine's hostname (kubeadm's default node name).
  const gateNode = hostname().toLowerCase();
  const [oldVersion, nextVersion] = [realToolVersion("kubeadm", "1.35").slice(1), realToolVersion("kubeadm", "1.36").slice(1)];
  // What the program wrote at 1.32 (the gate was alpha then); kubeadm upgrades to 1.35 kept every gate.
  const day1 = clusterConfiguration({
    clusterName: "kubeadm-ha",
    kubernetesVersion: "1.32.9",
    controlPlaneEndpoint: cp.server.replace("https://", ""),
    certSANs: [],
    podCidr: "10.244.0.0/16",
    serviceCidr: "10.96.0.0/12",
    etcd: { kind: "external", endpoints: [cp.etcdEndpoint], caFile: join(cp.dir, "pki", "etcd/ca.crt"), certFile: join(cp.dir, "pki", "apiserver-etcd-client.crt"), keyFile: join(cp.dir, "pki", "apiserver-etcd-client.key") },
  });
  t.deepEqual(day1.featureGates, { ControlPlaneKubeletLocalMode: true }, "the program sets the gate at 1.32");
  await cp.addNodes([{ name: gateNode, controlPlane: true, kubeletVersion: `v${oldVersion}` }]);
  await uploadClusterConfiguration(old, { ...day1, kubernetesVersion: `v${oldVersion}` });
  const stored = () => cp.kubectlOk(["-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "jsonpath={.data.ClusterConfiguration}"]);
  t.regex(await stored(), /ControlPlaneKubeletLocalMode: true/, "kubeadm 1.35 stored the gate");

  // What kubeadm 1.35 deployed and kubeadm upgrade plan checks besides kubeadm-config: CoreDNS (its image names the
  // start version of the Corefile migration) and its Corefile.
  const corefile = ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30\n    loop\n    reload\n    loadbalance\n}\n";
  await cp.kubectlOk(["apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "coredns", namespace: "kube-system" }, data: { Corefile: corefile } },
        // The control plane's kube-apiserver pod (a static pod's mirror): kubeadm reads the node's API endpoint from it.
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: `kube-apiserver-${gateNode}`, namespace: "kube-system", labels: { component: "kube-apiserver", tier: "control-plane" }, annotations: { "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "10.0.1.10:6443" } },
          spec: { nodeName: gateNode, containers: [{ name: "kube-apiserver", image: `registry.k8s.io/kube-apiserver:v${oldVersion}` }], tolerations: [{ operator: "Exists" }] },
        },
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "coredns", namespace: "kube-system", labels: { "k8s-app": "kube-dns" } },
          spec: {
            replicas: 0,
            selector: { matchLabels: { "k8s-app": "kube-dns" } },
            template: { metadata: { labels: { "k8s-app": "kube-dns" } }, spec: { containers: [{ name: "coredns", image: "registry.k8s.io/coredns/coredns:v1.13.1" }] } },
          },
        },
      ],
    }),
  });
  const admin = readFileSync(cp.adminKubeconfig, "utf8");
  const pki = (f: string) => readFileSync(join(cp.dir, "pki", f), "utf8");
  const preflight = () => runWithStubs(
    preflightChecksScript({
      node: gateNode,
      kubernetesVersion: nextVersion,
      nodes: [gateNode],
      controlPlanes: [gateNode],
      apiEndpoint: cp.server.replace("https://", ""),
      etcd: { kind: "external", endpoints: [cp.etcdEndpoint] },
      timeouts: { preflightHealth: 30, etcdHealth: 10 },
    }),
    {
      setup: (root) => {
        seedCluster({ version: oldVersion, controlPlane: true, nodes: {} })(root);
        writeNodeFile(root, nodePaths.adminKubeconfig, admin, 0o600);
        writeNodeFile(root, apiserverEtcdClientPaths.caFile, pki("etcd/ca.crt"));
        writeNodeFile(root, apiserverEtcdClientPaths.certFile, pki("apiserver-etcd-client.crt"));
        writeNodeFile(root, apiserverEtcdClientPaths.keyFile, pki("apiserver-etcd-client.key"), 0o600);
      },
      // The target kubeadm's download is a stub (apt-get download, dpkg-deb); the kubeadm it yields is the real 1.36,
      // run in a mount namespace of its own whose /etc is an overlay holding the node root's /etc/kubernetes (kubeadm
      // reads the static pod manifests at that fixed path; the machine's own /etc is left as it is).
      stubs: { ...upgradeStubs({ "kubeadm-fetched": `exec unshare --mount --propagation private bash -c 'set -e; o=$(mktemp -d); mkdir "$o/u" "$o/w"; /usr/bin/mount -t overlay overlay -o "lowerdir=/etc,upperdir=$o/u,workdir=$o/w" /etc; cp -a "$KUBEADM_HA_ROOT/etc/kubernetes" /etc/; exec "$0" "$@"' '${next}' "$@"` }), kubectl: `exec '${cp.kubectlPath}' "$@"`, etcdctl: `exec '${realTool("etcdctl")}' "$@"` },
      env: { KUBEADM_HA_POLL_SECONDS: "1" },
      timeoutMs: 240_000,
    },
  ).then((r) => (cleanup(r.root), r));
  const before = await stored();
  const r = await preflight();
  t.is(r.code, 0, output(r));
  t.regex(output(r), /removing feature gates that kubeadm v\S+ no longer knows from kubeadm-config: ControlPlaneKubeletLocalMode\n(.*\n)*.*kubeadm upgrade plan v\S+ \(kubeadm v\S+, fetched read-only\)/, "removed before the target kubeadm's plan");
  t.regex(output(r), /\[upgrade\/versions\] Target version: v/, "the real kubeadm 1.36 planned the upgrade");
  t.regex(output(r), /kubeadm accepts the upgrade to v/);
  const after = await stored();
  t.notRegex(after, /ControlPlaneKubeletLocalMode/);
  t.deepEqual({ ...(parse(after) as Record<string, unknown>), featureGates: undefined }, { ...(parse(before) as Record<string, unknown>), featureGates: undefined }, "nothing else in kubeadm-config changed");
  const again = await preflight();
  t.is(again.code, 0, output(again));
  t.notRegex(output(again), /removing feature gates/, "a rerun finds nothing to remove and writes nothing");
});
