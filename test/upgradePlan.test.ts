// The rolling upgrade's order as data (lifecycle/upgradePlan.ts): exact orders for the shapes, then a model
// check with fast-check over many shapes that derives the partial order from `after` (transitively) and checks the
// invariants for every possible interleaving, plus a random walk that simulates one interleaving step by step.
import test from "ava";
import fc from "fast-check";
import { planUpgrade, UpgradeShape, UpgradeStep, workerBatches } from "../lifecycle/upgradePlan";

const cps = (n: number) => Array.from({ length: n }, (_, i) => `cp-${i}`);
const ws = (n: number) => Array.from({ length: n }, (_, i) => `worker-${i}`);
const cpSteps = (cp: string) => ["upgrade-kubeadm", "drain", "upgrade-control-plane", "upgrade-kubelet", "uncordon"].map((s) => `${cp}-${s}`);
const applyFirstSteps = (cp: string) => ["upgrade-kubeadm", "upgrade-control-plane", "drain", "upgrade-kubelet", "uncordon"].map((s) => `${cp}-${s}`);

/** The partial order: for each step, every step it waits for, directly or not. */
function ancestors(plan: UpgradeStep[]): Map<string, Set<string>> {
  const byId = new Map(plan.map((s) => [s.id, s]));
  const memo = new Map<string, Set<string>>();
  const visit = (id: string, path: Set<string>): Set<string> => {
    const known = memo.get(id);
    if (known) return known;
    if (path.has(id)) throw new Error(`cycle through ${id}`);
    path.add(id);
    const step = byId.get(id);
    if (!step) throw new Error(`unknown step ${id}`);
    const out = new Set<string>();
    for (const dep of step.after) {
      if (!byId.has(dep)) throw new Error(`${id} waits for unknown step ${dep}`);
      out.add(dep);
      visit(dep, path).forEach((x) => out.add(x));
    }
    path.delete(id);
    memo.set(id, out);
    return out;
  };
  plan.forEach((s) => visit(s.id, new Set()));
  return memo;
}

test("workerBatches: batches of maxUnavailable in order, the last one shorter", (t) => {
  t.deepEqual(workerBatches([], 2), []);
  t.deepEqual(workerBatches(ws(3), 2), [["worker-0", "worker-1"], ["worker-2"]]);
  t.deepEqual(workerBatches(ws(5), 2), [["worker-0", "worker-1"], ["worker-2", "worker-3"], ["worker-4"]]);
  t.deepEqual(workerBatches(ws(2), 60), [["worker-0", "worker-1"]]);
  t.throws(() => workerBatches(ws(2), 0), { message: /maxUnavailable must be a whole number >= 1, got 0/ });
  t.throws(() => workerBatches(ws(2), 1.5), { message: /got 1\.5/ });
});

test("planUpgrade refuses shapes it cannot order", (t) => {
  t.throws(() => planUpgrade({ controlPlanes: [], workers: [], maxUnavailable: 1, snapshotOn: "cp-0" }), { message: /at least one control plane/ });
  t.throws(() => planUpgrade({ controlPlanes: ["cp-0", "cp-0"], workers: [], maxUnavailable: 1, snapshotOn: "cp-0" }), { message: /cp-0 is listed twice/ });
});

test("3 control planes, no workers: pre-flight, snapshot, then each control plane's five steps in one chain", (t) => {
  const plan = planUpgrade({ controlPlanes: cps(3), workers: [], maxUnavailable: 2, snapshotOn: "cp-0" });
  const ids = ["cluster-upgrade-preflight", "cluster-upgrade-snapshot", ...cpSteps("cp-0"), ...cpSteps("cp-1"), ...cpSteps("cp-2")];
  t.deepEqual(plan.map((s) => s.id), ids);
  // One chain: each step waits for exactly the one before it; the first waits for nothing (the mapper adds bootstrap).
  t.deepEqual(plan.map((s) => s.after), ids.map((_, i) => (i === 0 ? [] : [ids[i - 1]])));
  t.is(plan[0].runsOn, "cp-0");
  t.is(plan[1].runsOn, "cp-0");
  for (const s of plan.slice(2)) t.is(s.runsOn, s.node, `${s.id} runs on its own control plane`);
  t.deepEqual(
    plan.filter((s) => s.action.kind === "upgrade-control-plane").map((s) => (s.action as { mode: string }).mode),
    ["apply", "node", "node"],
  );
  t.deepEqual(
    plan.filter((s) => s.action.kind === "upgrade-kubeadm").map((s) => (s.action as { etcdHealthFirst: boolean }).etcdHealthFirst),
    [false, true, true],
    "every control plane after the first starts with an etcd health check",
  );
});

function workerOrder(plan: UpgradeStep[]) {
  return plan.filter((s) => s.node.startsWith("worker-")).map((s) => ({ id: s.id, runsOn: s.runsOn, after: s.after }));
}

test("one control plane, no workers: kubeadm upgrade apply before the drain (kubeadm's order: its health-check Job cannot run on a cordoned only node), then kubelet and uncordon; with a worker the drain comes first again", (t) => {
  const plan = planUpgrade({ controlPlanes: cps(1), workers: [], maxUnavailable: 1, snapshotOn: "cp-0" });
  const ids = ["cluster-upgrade-preflight", "cluster-upgrade-snapshot", "cp-0-upgrade-kubeadm", "cp-0-upgrade-control-plane", "cp-0-drain", "cp-0-upgrade-kubelet", "cp-0-uncordon"];
  t.deepEqual(plan.map((s) => s.id), ids);
  t.deepEqual(plan.map((s) => s.after), ids.map((_, i) => (i === 0 ? [] : [ids[i - 1]])));
  t.deepEqual(plan.find((s) => s.id === "cp-0-upgrade-control-plane")!.action, { kind: "upgrade-control-plane", mode: "apply" });
  const withWorker = planUpgrade({ controlPlanes: cps(1), workers: ws(1), maxUnavailable: 1, snapshotOn: "cp-0" });
  t.deepEqual(withWorker.filter((s) => s.node === "cp-0").map((s) => s.id), cpSteps("cp-0"), "the Job can run on a worker: drain first");
});

test("3 workers, batch 2: workers 0 and 1 after the last control plane, worker 2 after both are uncordoned", (t) => {
  const plan = planUpgrade({ controlPlanes: cps(3), workers: ws(3), maxUnavailable: 2, snapshotOn: "cp-0" });
  const batch1 = ["cp-2-uncordon"];
  const batch2 = ["worker-0-uncordon", "worker-1-uncordon"];
  t.deepEqual(workerOrder(plan), [
    { id: "worker-0-drain", runsOn: "cp-0", after: batch1 },
    { id: "worker-0-upgrade", runsOn: "worker-0", after: ["worker-0-drain"] },
    { id: "worker-0-uncordon", runsOn: "cp-0", after: ["worker-0-upgrade"] },
    { id: "worker-1-drain", runsOn: "cp-0", after: batch1 },
    { id: "worker-1-upgrade", runsOn: "worker-1", after: ["worker-1-drain"] },
    { id: "worker-1-uncordon", runsOn: "cp-0", after: ["worker-1-upgrade"] },
    { id: "worker-2-drain", runsOn: "cp-0", after: batch2 },
    { id: "worker-2-upgrade", runsOn: "worker-2", after: ["worker-2-drain"] },
    { id: "worker-2-uncordon", runsOn: "cp-0", after: ["worker-2-upgrade"] },
  ]);
});

test("5 workers, batch 2: batches {0,1} {2,3} {4}, each drain waiting for the whole previous batch", (t) => {
  const plan = planUpgrade({ controlPlanes: cps(3), workers: ws(5), maxUnavailable: 2, snapshotOn: "cp-0" });
  const drains = Object.fromEntries(plan.filter((s) => s.id.endsWith("-drain") && s.node.startsWith("worker")).map((s) => [s.node, s.after]));
  t.deepEqual(drains, {
    "worker-0": ["cp-2-uncordon"],
    "worker-1": ["cp-2-uncordon"],
    "worker-2": ["worker-0-uncordon", "worker-1-uncordon"],
    "worker-3": ["worker-0-uncordon", "worker-1-uncordon"],
    "worker-4": ["worker-2-uncordon", "worker-3-uncordon"],
  });
});

test("5 control planes, 10 workers, batch 3: one control-plane chain, then batches of 3, 3, 3, 1; 3 steps per worker", (t) => {
  const plan = planUpgrade({ controlPlanes: cps(5), workers: ws(10), maxUnavailable: 3, snapshotOn: "cp-0" });
  t.is(plan.length, 2 + 5 * 5 + 10 * 3);
  t.deepEqual(plan.slice(2, 27).map((s) => s.id), cps(5).flatMap(cpSteps));
  for (const w of ws(10)) {
    t.deepEqual(plan.filter((s) => s.node === w).map((s) => s.id), [`${w}-drain`, `${w}-upgrade`, `${w}-uncordon`], `${w}: exactly drain, upgrade, uncordon`);
  }
  const drainAfter = (w: string) => plan.find((s) => s.id === `${w}-drain`)!.after;
  t.deepEqual(drainAfter("worker-0"), ["cp-4-uncordon"]);
  t.deepEqual(drainAfter("worker-3"), ["worker-0-uncordon", "worker-1-uncordon", "worker-2-uncordon"]);
  t.deepEqual(drainAfter("worker-9"), ["worker-6-uncordon", "worker-7-uncordon", "worker-8-uncordon"]);
});

test("external etcd: the snapshot runs on etcd-0, the pre-flight still on cp-0, and cp-0's first step waits for the snapshot", (t) => {
  const plan = planUpgrade({ controlPlanes: cps(3), workers: ws(2), maxUnavailable: 1, snapshotOn: "etcd-0" });
  t.deepEqual(plan.slice(0, 3).map((s) => [s.id, s.runsOn, s.after]), [
    ["cluster-upgrade-preflight", "cp-0", []],
    ["cluster-upgrade-snapshot", "etcd-0", ["cluster-upgrade-preflight"]],
    ["cp-0-upgrade-kubeadm", "cp-0", ["cluster-upgrade-snapshot"]],
  ]);
});

// ---- model check ----------------------------------------------------------------------------------------------

const shapes = fc.record({
  controlPlanes: fc.integer({ min: 1, max: 7 }),
  workers: fc.integer({ min: 0, max: 50 }),
  maxUnavailable: fc.integer({ min: 1, max: 60 }),
  externalEtcd: fc.boolean(),
});

function shapeOf(s: { controlPlanes: number; workers: number; maxUnavailable: number; externalEtcd: boolean }): UpgradeShape {
  return { controlPlanes: cps(s.controlPlanes), workers: ws(s.workers), maxUnavailable: s.maxUnavailable, snapshotOn: s.externalEtcd ? "etcd-0" : "cp-0" };
}

test("model check over 1-7 control planes, 0-50 workers, batch 1-60: the invariants hold for every interleaving", (t) => {
  t.notThrows(() =>
    fc.assert(
    fc.property(shapes, (s) => {
      const shape = shapeOf(s);
      const plan = planUpgrade(shape);
      const before = ancestors(plan); // throws on a cycle or an unknown dependency
      const precedes = (a: string, b: string) => before.get(b)!.has(a);
      const id = (node: string, action: string) => `${node}-${action}`;
      const ids = new Set(plan.map((x) => x.id));
      if (ids.size !== plan.length) return false;
      if (plan.filter((x) => x.after.length === 0).map((x) => x.id).join() !== "cluster-upgrade-preflight") return false;

      // Every control plane has its five steps in order (a lone control plane without workers: apply before its
      // drain); every worker exactly drain, upgrade, uncordon, in order.
      const alone = shape.controlPlanes.length === 1 && shape.workers.length === 0;
      for (const cp of shape.controlPlanes) {
        const own = alone ? applyFirstSteps(cp) : cpSteps(cp);
        if (!own.every((x) => ids.has(x))) return false;
        for (let i = 1; i < own.length; i++) if (!precedes(own[i - 1], own[i])) return false;
      }
      for (const w of shape.workers) {
        if (plan.filter((x) => x.node === w).length !== 3) return false;
        if (!precedes(id(w, "drain"), id(w, "upgrade")) || !precedes(id(w, "upgrade"), id(w, "uncordon"))) return false;
      }

      // The snapshot precedes every mutating step, and the pre-flight precedes the snapshot.
      if (!precedes("cluster-upgrade-preflight", "cluster-upgrade-snapshot")) return false;
      for (const x of plan) {
        if (x.node !== "cluster" && !precedes("cluster-upgrade-snapshot", x.id)) return false;
      }

      // Every control plane fully upgraded (uncordoned) before any worker step.
      for (const cp of shape.controlPlanes) {
        for (const x of plan) if (x.node.startsWith("worker-") && !precedes(id(cp, "uncordon"), x.id)) return false;
      }

      // Never more than one control plane down: of any two, one is uncordoned before the other is drained.
      for (const a of shape.controlPlanes) {
        for (const b of shape.controlPlanes) {
          if (a < b && !precedes(id(a, "uncordon"), id(b, "drain")) && !precedes(id(b, "uncordon"), id(a, "drain"))) return false;
        }
      }

      // Workers: those that may be down together with w (neither is uncordoned before the other is drained) are
      // at most maxUnavailable, w included; so no set of workers down at once exceeds it. Workers of different
      // batches are ordered drain-after-uncordon.
      const batches = workerBatches(shape.workers, shape.maxUnavailable);
      const batchOf = new Map(batches.flatMap((b, i) => b.map((w) => [w, i] as const)));
      for (const a of shape.workers) {
        let overlapping = 0;
        for (const b of shape.workers) {
          const apart = precedes(id(a, "uncordon"), id(b, "drain")) || precedes(id(b, "uncordon"), id(a, "drain"));
          if (!apart) overlapping++;
          if (batchOf.get(a)! < batchOf.get(b)! && !precedes(id(a, "uncordon"), id(b, "drain"))) return false;
        }
        if (overlapping > shape.maxUnavailable) return false;
      }

      // Skew: a kubelet is never newer than an apiserver. A control plane's kubelet after its own control plane;
      // no worker's kubelet (its upgrade step) before every control plane's control-plane upgrade.
      for (const cp of shape.controlPlanes) {
        if (!precedes(id(cp, "upgrade-control-plane"), id(cp, "upgrade-kubelet"))) return false;
        for (const w of shape.workers) if (!precedes(id(cp, "upgrade-control-plane"), id(w, "upgrade"))) return false;
      }
      return true;
    }),
      { numRuns: 150 },
    ),
  );
});

test("model check, walked: one random interleaving at a time, the state never breaks an invariant", (t) => {
  t.notThrows(() =>
    fc.assert(
    fc.property(shapes, fc.infiniteStream(fc.nat()), (s, choices) => {
      const shape = shapeOf(s);
      const plan = planUpgrade(shape);
      const done = new Set<string>();
      const downCps = new Set<string>();
      const downWorkers = new Set<string>();
      const apiserverUpgraded = new Set<string>();
      const pick = choices[Symbol.iterator]();
      let snapshot = false;
      while (done.size < plan.length) {
        const ready = plan.filter((x) => !done.has(x.id) && x.after.every((d) => done.has(d)));
        if (ready.length === 0) return false; // deadlock
        const step = ready[pick.next().value % ready.length];
        const a = step.action;
        if (a.kind !== "preflight" && a.kind !== "snapshot" && !snapshot) return false;
        switch (a.kind) {
          case "snapshot":
            if (!done.has("cluster-upgrade-preflight")) return false;
            snapshot = true;
            break;
          case "drain":
            (a.role === "control-plane" ? downCps : downWorkers).add(step.node);
            break;
          case "uncordon":
            (a.role === "control-plane" ? downCps : downWorkers).delete(step.node);
            break;
          case "upgrade-control-plane":
            apiserverUpgraded.add(step.node);
            break;
          case "upgrade-kubelet":
            if (!apiserverUpgraded.has(step.node)) return false;
            break;
          case "upgrade-worker":
            if (apiserverUpgraded.size !== shape.controlPlanes.length) return false;
            break;
          default:
            break;
        }
        if (downCps.size > 1) return false;
        if (downCps.size > 0 && downWorkers.size > 0) return false;
        if (downWorkers.size > shape.maxUnavailable) return false;
        done.add(step.id);
      }
      return downCps.size === 0 && downWorkers.size === 0;
    }),
      { numRuns: 150 },
    ),
  );
});
