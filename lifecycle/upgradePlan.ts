// The order of a rolling upgrade, as data: pure, no resources. upgrade.ts maps each step to one chained command.
//
// Invariants the plan keeps (test/upgradePlan.test.ts checks them over many shapes):
// - Nothing mutates the cluster before the pre-flight checks and the etcd snapshot are done.
// - Never more than one control plane down at a time: etcd quorum and apiserver availability depend on it. A control
//   plane's upgrade starts only after the previous one is uncordoned, Ready and its control-plane pods healthy.
// - Every control plane runs the target version before any worker is touched: a kubelet must never be newer than
//   the apiserver it talks to.
// - At most maxUnavailable workers are drained at once; batch k+1 starts only when batch k is Ready again.
// - A lone control plane with no workers is drained after `kubeadm upgrade apply`, as kubeadm's procedure orders it:
//   apply's health check runs a Job that tolerates only the control-plane taint, which a cordoned only node cannot
//   run.

export type NodeRole = "control-plane" | "worker";

/** The cluster the upgrade runs over: node names in order (controlPlanes[0] is the first control plane, cp-0). */
export interface UpgradeShape {
  controlPlanes: string[];
  workers: string[];
  /** Workers drained and upgraded at once. */
  maxUnavailable: number;
  /** Where the pre-upgrade etcd snapshot is taken: cp-0, or etcd-0 with external etcd. */
  snapshotOn: string;
}

/** What one step does. Switched exhaustively by the mapper (upgrade.ts). */
export type UpgradeAction =
  /** Read-only health and version checks before anything changes (runs on the first control plane). */
  | { kind: "preflight" }
  /** The pre-upgrade etcd snapshot: the first mutating step depends on it. */
  | { kind: "snapshot" }
  /** A control plane's kubeadm package (and apt source on a minor change); further ones check etcd health first. */
  | { kind: "upgrade-kubeadm"; etcdHealthFirst: boolean }
  /** Cordon and drain. */
  | { kind: "drain"; role: NodeRole }
  /** `kubeadm upgrade apply` on the first control plane, `kubeadm upgrade node` on the others. */
  | { kind: "upgrade-control-plane"; mode: "apply" | "node" }
  /** A control plane's kubelet and kubectl packages, daemon-reload, kubelet restart. */
  | { kind: "upgrade-kubelet" }
  /** Uncordon, then wait until the node is Ready (and a control plane's static pods healthy). */
  | { kind: "uncordon"; role: NodeRole }
  /** All of a worker's phases on the worker: kubeadm, `kubeadm upgrade node`, kubelet and kubectl, restart. */
  | { kind: "upgrade-worker" };

export interface UpgradeStep {
  /** `<node>-<action>`: the resource name; the offline plan groups steps per node by the prefix. */
  id: string;
  /** The node the step is about ("cluster" for the cluster-wide steps). */
  node: string;
  /** The node whose SSH connection runs the step. */
  runsOn: string;
  action: UpgradeAction;
  /** Ids of the steps this one waits for (directly). */
  after: string[];
}

/** Steps that change the cluster; everything else only reads (or, for the snapshot, copies) state. */
export function isMutating(action: UpgradeAction): boolean {
  switch (action.kind) {
    case "preflight":
    case "snapshot":
      return false;
    case "upgrade-kubeadm":
    case "drain":
    case "upgrade-control-plane":
    case "upgrade-kubelet":
    case "uncordon":
    case "upgrade-worker":
      return true;
    default: {
      const never: never = action;
      throw new Error(`unknown upgrade action ${JSON.stringify(never)}`);
    }
  }
}

/** The suffix of a step id for an action (`cp-0-<suffix>`). */
export function actionSuffix(action: UpgradeAction): string {
  switch (action.kind) {
    case "preflight":
      return "upgrade-preflight";
    case "snapshot":
      return "upgrade-snapshot";
    case "upgrade-kubeadm":
    case "drain":
    case "upgrade-control-plane":
    case "upgrade-kubelet":
    case "uncordon":
      return action.kind;
    case "upgrade-worker":
      return "upgrade";
    default: {
      const never: never = action;
      throw new Error(`unknown upgrade action ${JSON.stringify(never)}`);
    }
  }
}

/** Workers in drain batches of at most maxUnavailable, in order. */
export function workerBatches(workers: string[], maxUnavailable: number): string[][] {
  if (!Number.isInteger(maxUnavailable) || maxUnavailable < 1) {
    throw new Error(`workerBatches: maxUnavailable must be a whole number >= 1, got ${maxUnavailable}`);
  }
  const batches: string[][] = [];
  for (let i = 0; i < workers.length; i += maxUnavailable) batches.push(workers.slice(i, i + maxUnavailable));
  return batches;
}

/** The node of the cluster-wide steps. */
export const clusterNode = "cluster";

/**
 * The whole rolling upgrade in order. The first step has no `after`: the mapper makes it wait for the end of
 * bootstrap. Steps of one worker batch run in parallel; everything else is one chain.
 */
export function planUpgrade(shape: UpgradeShape): UpgradeStep[] {
  const { controlPlanes, workers } = shape;
  if (controlPlanes.length === 0) throw new Error("planUpgrade: at least one control plane is required");
  const names = [...controlPlanes, ...workers];
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate !== undefined) throw new Error(`planUpgrade: node ${duplicate} is listed twice`);
  if (names.includes(clusterNode)) throw new Error(`planUpgrade: "${clusterNode}" is reserved for cluster-wide steps`);
  const batches = workerBatches(workers, shape.maxUnavailable);

  const first = controlPlanes[0];
  const steps: UpgradeStep[] = [];
  const add = (node: string, runsOn: string, action: UpgradeAction, after: string[]): string => {
    const id = `${node}-${actionSuffix(action)}`;
    steps.push({ id, node, runsOn, action, after });
    return id;
  };

  const preflight = add(clusterNode, first, { kind: "preflight" }, []);
  let previous = add(clusterNode, shape.snapshotOn, { kind: "snapshot" }, [preflight]);

  // Control planes strictly one at a time: each starts after the previous one's uncordon (Ready, pods healthy).
  const applyBeforeDrain = controlPlanes.length === 1 && workers.length === 0;
  controlPlanes.forEach((cp, i) => {
    const role: NodeRole = "control-plane";
    const kubeadm = add(cp, cp, { kind: "upgrade-kubeadm", etcdHealthFirst: i > 0 }, [previous]);
    const mode = i === 0 ? "apply" : "node";
    let kubeletAfter: string;
    if (applyBeforeDrain) {
      const controlPlane = add(cp, cp, { kind: "upgrade-control-plane", mode }, [kubeadm]);
      kubeletAfter = add(cp, cp, { kind: "drain", role }, [controlPlane]);
    } else {
      const drain = add(cp, cp, { kind: "drain", role }, [kubeadm]);
      kubeletAfter = add(cp, cp, { kind: "upgrade-control-plane", mode }, [drain]);
    }
    const kubelet = add(cp, cp, { kind: "upgrade-kubelet" }, [kubeletAfter]);
    previous = add(cp, cp, { kind: "uncordon", role }, [kubelet]);
  });

  // Workers in batches, driven from the first control plane (drain, uncordon) and on the worker (packages).
  let gate = [previous];
  for (const batch of batches) {
    const role: NodeRole = "worker";
    gate = batch.map((w) => {
      const drain = add(w, first, { kind: "drain", role }, gate);
      const upgrade = add(w, w, { kind: "upgrade-worker" }, [drain]);
      return add(w, first, { kind: "uncordon", role }, [upgrade]);
    });
  }
  return steps;
}
