// The upgrade step scripts as the tests run them: each step of cp-0 and of a worker in plan order, one scratch root
// per node (see upgradeStubs.ts for the fake cluster behind the stubs), and the checks of a converged node.
import { ExecutionContext } from "ava";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { drainNodeScript } from "../../lifecycle/scripts/drain";
import { preflightChecksScript } from "../../lifecycle/scripts/preflight";
import { uncordonNodeScript } from "../../lifecycle/scripts/uncordon";
import { upgradeControlPlaneScript } from "../../lifecycle/scripts/upgradeControlPlane";
import { upgradeKubeadmScript } from "../../lifecycle/scripts/upgradeKubeadm";
import { upgradeKubeletScript } from "../../lifecycle/scripts/upgradeKubelet";
import { upgradeWorkerScript } from "../../lifecycle/scripts/upgradeWorker";
import { DrainSettings, UpgradeTimeouts } from "../../lifecycle/defaults";
import { cleanup, nodePath, runWithStubs, seedKubeletIdentity, StubRun, stubState } from "./stubs";
import { ClusterSeed, seedCluster, upgradeStubs } from "./upgradeStubs";

export const STUBS = "(recording stubs: kubeadm, kubectl, apt-get, systemctl are not on this machine)";
export const FROM = "1.35.9";
export const TO = "1.36.0";
/** Waits that would otherwise poll for minutes when a test makes them fail. */
export const fast: Partial<UpgradeTimeouts> = { nodeReady: 0, controlPlanePods: 0, etcdHealth: 0, preflightHealth: 0, apiVersion: 1 };
export const oneAttempt: Partial<DrainSettings> = { attempts: 1, retryDelaySeconds: 0 };
export const controlPlanes = ["cp-0", "cp-1", "cp-2"];
export const allNodes = [...controlPlanes, "worker-0", "worker-1"];

export interface Step {
  name: string;
  script: string;
}

/** cp-0's five steps (all run on cp-0), as the plan chains them; builtAt: the release init built cp-0 at. */
export function cp0Steps(v: string, drain: Partial<DrainSettings> = oneAttempt, builtAt = FROM): Step[] {
  return [
    { name: "upgrade-kubeadm", script: upgradeKubeadmScript({ node: "cp-0", kubernetesVersion: v, timeouts: fast }) },
    { name: "drain", script: drainNodeScript({ runsOn: "cp-0", node: "cp-0", role: "control-plane", kubernetesVersion: v, drain, timeouts: fast }) },
    { name: "upgrade-control-plane", script: upgradeControlPlaneScript({ node: "cp-0", kubernetesVersion: v, mode: "apply", builtAt, timeouts: fast }) },
    { name: "upgrade-kubelet", script: upgradeKubeletScript({ node: "cp-0", kubernetesVersion: v, timeouts: fast }) },
    { name: "uncordon", script: uncordonNodeScript({ runsOn: "cp-0", node: "cp-0", role: "control-plane", kubernetesVersion: v, timeouts: fast }) },
  ];
}

/** worker-0's three steps; drain and uncordon run on cp-0 (one scratch root stands for both machines here). */
export function workerSteps(v: string, drain: Partial<DrainSettings> = oneAttempt): Step[] {
  return [
    { name: "drain", script: drainNodeScript({ runsOn: "cp-0", node: "worker-0", role: "worker", kubernetesVersion: v, drain, timeouts: fast }) },
    { name: "upgrade", script: upgradeWorkerScript({ node: "worker-0", kubernetesVersion: v, timeouts: fast }) },
    { name: "uncordon", script: uncordonNodeScript({ runsOn: "cp-0", node: "worker-0", role: "worker", kubernetesVersion: v, timeouts: fast }) },
  ];
}

export function preflightStep(v: string, etcd: { kind: "stacked" } | { kind: "external"; endpoints: string[] } = { kind: "stacked" }): Step {
  return {
    name: "upgrade-preflight",
    script: preflightChecksScript({ node: "cp-0", kubernetesVersion: v, nodes: allNodes, controlPlanes, apiEndpoint: "api.example:6443", etcd, timeouts: fast }),
  };
}

/** Every upgrade script of a cluster built at `builtAt` (default: v), in plan order (cp-1 stands for the further control planes). */
export function everyStep(v: string, builtAt = v): Step[] {
  return [
    preflightStep(v),
    ...cp0Steps(v, oneAttempt, builtAt),
    { name: "cp-1 upgrade-kubeadm", script: upgradeKubeadmScript({ node: "cp-1", kubernetesVersion: v, etcdHealthFirst: { kind: "stacked", members: controlPlanes }, timeouts: fast }) },
    { name: "cp-1 upgrade-control-plane", script: upgradeControlPlaneScript({ node: "cp-1", kubernetesVersion: v, mode: "node", builtAt, timeouts: fast }) },
    ...workerSteps(v),
  ];
}

/** A cluster at one version; this machine is cp-0 (admin.conf, manifests) and also holds a worker's kubelet.conf. */
export function cluster(version: string, extra: Partial<ClusterSeed> = {}): ClusterSeed {
  return { version, controlPlane: true, nodes: Object.fromEntries(allNodes.map((n) => [n, {}])), ...extra };
}

/** The node a step script runs on (its NODE line); undefined for a script outside the node frame. */
export function scriptNode(script: string): string | undefined {
  return /^NODE='([^']*)'$/m.exec(script)?.[1];
}

/**
 * Runs a step on a scratch node. The machine's kubelet is the node the step runs on (the script's NODE), also on a
 * reused root, which stands in for each machine a chain of steps visits; a seed with `identity` set says otherwise.
 */
export async function run(t: ExecutionContext, script: string, o: { root?: string; seed?: ClusterSeed; node?: string; env?: Record<string, string>; stubs?: Record<string, string> } = {}): Promise<StubRun> {
  const explicit = o.seed !== undefined && "identity" in o.seed;
  const r = await runWithStubs(script, {
    root: o.root,
    setup: (root) => {
      if (!o.root) seedCluster(o.seed ?? cluster(FROM))(root);
      const node = scriptNode(script) ?? o.node;
      if (!explicit && node !== undefined) seedKubeletIdentity(root, node);
    },
    stubs: upgradeStubs(o.stubs),
    env: { STUB_NODE: o.node ?? "cp-0", ...(o.env ?? {}) },
  });
  if (!o.root) t.teardown(() => cleanup(r.root));
  return r;
}

export const line = (c: { cmd: string; args: string[] }) => [c.cmd, ...c.args].join(" ");
export const read = (root: string, path: string) => readFileSync(nodePath(root, path), "utf8");
export const state = (root: string, path: string) => readFileSync(join(stubState(root), path), "utf8");
export const stateHas = (root: string, path: string) => existsSync(join(stubState(root), path));

/** Calls that change a node or the cluster. */
export function mutations(r: StubRun): string[] {
  return r.calls.map(line).filter((l) =>
    /^kubectl .*\b(drain|cordon|uncordon)\b|^apt-get |^apt-mark (un)?hold|^kubeadm upgrade (apply|node)|^systemctl (restart|daemon-reload)|^curl |^gpg |^dpkg-deb /.test(l),
  );
}

/** Runs steps in order on one node until one fails (Pulumi stops the chain there). Returns the failed index or -1. */
export async function runChain(t: ExecutionContext, steps: Step[], o: { root?: string; seed?: ClusterSeed; node: string }): Promise<{ root: string; failed: number; runs: StubRun[] }> {
  let root = o.root;
  const runs: StubRun[] = [];
  for (let i = 0; i < steps.length; i++) {
    const r = await run(t, steps[i].script, { root, seed: o.seed, node: o.node });
    root = r.root;
    runs.push(r);
    if (r.code !== 0) return { root, failed: i, runs };
  }
  return { root: root!, failed: -1, runs };
}

export function assertConverged(t: ExecutionContext, root: string, node: string, v: string, controlPlane: boolean) {
  for (const p of ["kubeadm", "kubelet", "kubectl"]) {
    t.is(state(root, `pkg/${p}`), `${v}-1.1`, `${p} installed at ${v}`);
    t.true(stateHas(root, `hold/${p}`), `${p} held`);
  }
  t.is(state(root, `k8s/${node}.kubelet`), `v${v}`, `${node} reports kubelet v${v}`);
  t.false(stateHas(root, `k8s/${node}.cordoned`), `${node} is schedulable`);
  t.false(existsSync(nodePath(root, "/etc/kubeadm-ha/kubelet-restart-pending")), "no kubelet restart pending");
  t.regex(read(root, "/etc/apt/sources.list.d/kubernetes.list"), new RegExp(`/v${v.split(".").slice(0, 2).join("\\.")}/deb/`));
  if (controlPlane) t.regex(read(root, "/etc/kubernetes/manifests/kube-apiserver.yaml"), new RegExp(`kube-apiserver:v${v.replace(/\./g, "\\.")}\\n`));
}

/** A seeded node whose stubs fail once at the first call matching `point`. */
export async function injected(t: ExecutionContext, seed: ClusterSeed, point: string, node: string): Promise<string> {
  const r = await run(t, "#!/usr/bin/env bash\ntrue\n", { seed, node });
  writeFileSync(join(stubState(r.root), "fail-at"), point);
  return r.root;
}

