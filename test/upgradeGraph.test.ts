// The rolling upgrade as the program registers it, through the capturing engine (the whole program evaluated
// offline): every planned step is one command, its dependencies are exactly the plan's, it runs on the planned node;
// and a version bump changes nothing but the upgrade steps, each updated in place.
import test from "ava";
import { Evaluation, Registration } from "../infra/offline/engine";
import { diffEvaluations, stepsOf } from "../infra/offline/plan";
import { planUpgrade, UpgradeShape } from "../lifecycle/upgradePlan";
import { evaluateDev } from "./support/program";

const commandType = "command:remote:Command";

interface Shape {
  title: string;
  sets: string[];
  shape: UpgradeShape;
}

const cps = (n: number) => Array.from({ length: n }, (_, i) => `cp-${i}`);
const ws = (n: number) => Array.from({ length: n }, (_, i) => `worker-${i}`);

const shapes: Shape[] = [
  { title: "3 control planes, no workers", sets: ["workers.count=0"], shape: { controlPlanes: cps(3), workers: [], maxUnavailable: 1, snapshotOn: "cp-0" } },
  { title: "3 workers, batch 2", sets: ["workers.count=3", "workers.maxUnavailable=2"], shape: { controlPlanes: cps(3), workers: ws(3), maxUnavailable: 2, snapshotOn: "cp-0" } },
  { title: "5 workers, batch 2", sets: ["workers.count=5", "workers.maxUnavailable=2"], shape: { controlPlanes: cps(3), workers: ws(5), maxUnavailable: 2, snapshotOn: "cp-0" } },
  {
    title: "5 control planes, 10 workers, batch 3",
    sets: ["controlPlane.count=5", "workers.count=10", "workers.maxUnavailable=3"],
    shape: { controlPlanes: cps(5), workers: ws(10), maxUnavailable: 3, snapshotOn: "cp-0" },
  },
  { title: "external etcd", sets: ["etcdTopology=external"], shape: { controlPlanes: cps(3), workers: ws(2), maxUnavailable: 1, snapshotOn: "etcd-0" } },
];

/** One evaluation per config, shared by the tests that read it (each takes ~1.5 s). */
const evaluations = new Map<string, Promise<Evaluation>>();
function evaluated(sets: string[], deployed?: Record<string, unknown>): Promise<Evaluation> {
  const key = JSON.stringify([sets, deployed ?? null]);
  if (!evaluations.has(key)) evaluations.set(key, evaluateDev(sets, deployed));
  return evaluations.get(key)!;
}

function commands(e: Evaluation): Map<string, Registration> {
  return new Map(e.resources.filter((r) => r.type === commandType).map((r) => [r.name, r]));
}

for (const { title, sets, shape } of shapes) {
  test(`${title}: every planned step is one command under the RollingUpgrade, waiting exactly for what the plan says`, async (t) => {
    const e = await evaluated(sets);
    const plan = planUpgrade(shape);
    const byName = commands(e);
    const byUrn = new Map([...byName.values()].map((r) => [r.urn, r.name]));
    const component = e.resources.find((r) => r.type === "kubeadm-ha:lifecycle:RollingUpgrade");
    t.truthy(component, "one RollingUpgrade component");
    const upgradeSteps = [...byName.values()].filter((r) => r.parent === component!.urn).map((r) => r.name);
    t.deepEqual(upgradeSteps.sort(), plan.map((s) => s.id).sort(), "the component's commands are exactly the plan's steps");

    const ipOf = new Map((e.stackOutputs.nodes as { name: string; privateIp: string }[]).map((n) => [n.name, n.privateIp]));
    for (const step of plan) {
      const r = byName.get(step.id)!;
      // Dependencies on other steps (commands); machines, keys and the LB are input dependencies, not order.
      const stepDeps = r.dependencies.map((u) => byUrn.get(u)).filter((n): n is string => n !== undefined).sort();
      // The first step waits for the end of bootstrap and for every member's snapshot tooling and schedule step (the
      // snapshot step runs etcdctl and the AWS CLI the schedule step installs).
      const names = [...byName.keys()];
      const backupReady = names.filter((n) => n.endsWith("-etcd-snapshot-tools") || n.endsWith("-snapshot-schedule"));
      t.true(backupReady.length > 0);
      const planned = step.after.length === 0 ? ["cluster-wait-nodes-ready", ...backupReady] : [...step.after];
      // A worker's drain also waits for the worker's own join: on removal its delete (the retire) runs before the machine goes.
      const expected = (step.action.kind === "drain" && step.node.startsWith("worker-") ? [...planned, `${step.node}-join`] : planned).sort();
      t.deepEqual(stepDeps, expected, `${step.id} waits for`);
      t.is(r.displayInputs.connection.host, ipOf.get(step.runsOn), `${step.id} runs on ${step.runsOn}`);
      t.is(r.inputs.logging, "stdoutAndStderr", `${step.id} streams both outputs`);
      // Triggers never carry the version (a bump must update in place); a worker's drain, which retires the worker,
      // is triggered only by that worker's machine (its replacement is a removal plus a join).
      const machine = e.resources.find((x) => x.type === "aws:ec2/instance:Instance" && x.name === step.node);
      t.deepEqual(r.inputs.triggers, step.action.kind === "drain" && step.node.startsWith("worker-") ? [machine!.id] : undefined, `${step.id} triggers`);
      t.deepEqual(r.options.ignoreChanges, []);
      t.regex(r.inputs.create, /1\.35\.9/, `${step.id} carries the target version`);
      t.regex(r.inputs.create, new RegExp(`^NODE='${step.action.kind === "preflight" || step.action.kind === "snapshot" ? step.runsOn : step.node}'$`, "m"), `${step.id} names its node`);
    }

    // The offline plan groups the steps per node by prefix; a worker has exactly seven resources in all (its
    // join-credentials step runs on cp-0).
    const planned = stepsOf(e);
    for (const w of shape.workers) {
      t.deepEqual(planned.filter((s) => s.node === w).map((s) => s.step), ["prepare", "join-credentials", "join", "drain", "upgrade", "uncordon"]);
      const own = e.resources.filter((r) => r.custom && (r.name === w || r.name.startsWith(`${w}-`)));
      t.deepEqual(own.map((r) => `${r.type} ${r.name}`).sort(), [
        `aws:ec2/instance:Instance ${w}`,
        `${commandType} ${w}-drain`,
        `${commandType} ${w}-join`,
        `${commandType} ${w}-join-credentials`,
        `${commandType} ${w}-prepare`,
        `${commandType} ${w}-uncordon`,
        `${commandType} ${w}-upgrade`,
      ]);
    }
  });
}

test("a version bump (1.35.9 -> 1.36.0) updates every upgrade step in place and changes nothing else", async (t) => {
  const { sets, shape } = shapes[1];
  const before = await evaluated(sets);
  const after = await evaluated([...sets, "kubernetesVersion=1.36.0"], before.stackOutputs);
  const plan = planUpgrade(shape);
  const diff = diffEvaluations(before, after);
  const name = (urn: string) => urn.split("::").pop()!;

  t.deepEqual(diff.filter((d) => d.op !== "change"), [], "nothing created or deleted");
  t.deepEqual(diff.filter((d) => d.replace), [], "nothing replaced");
  t.deepEqual(diff.filter((d) => d.type !== commandType).map((d) => `${d.type} ${name(d.urn)}`), [], "no instance, LB, security group, user data or helm change");
  // ...and each control plane's certificates step, which reports again after the upgrade renewed its certificates.
  const certificates = ["cp-0", "cp-1", "cp-2"].map((cp) => `${cp}-certificates`);
  t.deepEqual(diff.map((d) => name(d.urn)).sort(), [...plan.map((s) => s.id), ...certificates].sort(), "exactly the upgrade steps change, and the certificate reports after them");
  for (const d of diff) t.deepEqual(d.keys, ["create"], `${name(d.urn)}: only its script`);

  const afterSteps = commands(after);
  for (const s of plan) {
    t.regex(afterSteps.get(s.id)!.inputs.create, /1\.36\.0/, `${s.id} targets 1.36.0`);
    t.notRegex(afterSteps.get(s.id)!.inputs.create, /VERSION='1\.35\.9'/);
  }
  // Bootstrap steps keep the version their machine was bootstrapped at (the stack's bootstrap record), so they never
  // re-run on a bump; nor are new join credentials minted.
  for (const bootstrap of ["cp-0-prepare", "cp-0-init", "cp-1-join", "cp-1-join-credentials", "worker-0-prepare", "worker-0-join", "worker-0-join-credentials", "cluster-wait-nodes-ready"]) {
    t.false(diff.some((d) => name(d.urn) === bootstrap), `${bootstrap} unchanged`);
  }
});
