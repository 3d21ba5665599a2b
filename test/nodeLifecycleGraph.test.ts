// Scaling and maintenance through the capturing engine and Pulumi-style diffs between two configs.
import test from "ava";
import { Evaluation } from "../infra/offline/engine";
import { diffEvaluations } from "../infra/offline/plan";
import { byName, evaluateDev, evaluateStack, waitsFor } from "./support/program";

const deployedOf = (e: Evaluation) => e.stackOutputs as Record<string, unknown>;
const short = (urn: string) => urn.split("::").pop()!;

async function change(from: string[], to: string[]) {
  const before = await evaluateDev(from);
  const after = await evaluateDev(to, deployedOf(before));
  const diff = diffEvaluations(before, after);
  return { before, after, diff, names: (op: string) => diff.filter((d) => d.op === op).map((d) => short(d.urn)).sort() };
}

test("workers 2 → 5: three workers join with freshly minted credentials; nothing is replaced or deleted", async (t) => {
  const { after, diff, names } = await change(["workers.count=2"], ["workers.count=5"]);
  const perWorker = (w: string) => [w, `${w}-drain`, `${w}-join`, `${w}-prepare`, `${w}-uncordon`, `${w}-upgrade`];
  t.deepEqual(names("create"), [...perWorker("worker-2"), ...perWorker("worker-3"), ...perWorker("worker-4")].sort());
  t.deepEqual(names("delete"), []);
  t.false(diff.some((d) => d.replace));
  t.true(names("change").includes("cp-0-join-credentials"), "fresh token and certificate upload for the new nodes");
  const join = byName(after, "worker-4-join");
  t.true(waitsFor(after, join, byName(after, "cp-0-join-credentials")));
  const minted = String(byName(after, "cp-0-join-credentials").outputs.stdout).match(/KUBEADM_HA_JOIN_TOKEN=(\S+)/)![1];
  t.true(String(join.inputs.stdin).includes(`token: ${minted}`), "joins use the minted token, not the day-one one");
  t.true(byName(after, "cp-0-join-credentials").options.additionalSecretOutputs.includes("stdout"));
  t.is(byName(after, "cp-0-join-credentials").inputs.logging, "stderr");
  for (const d of diff.filter((x) => x.op === "change")) t.regex(short(d.urn), /^(cp-0-join-credentials|cluster-wait-nodes-ready|cluster-upgrade-preflight)$/, "only steps that list the nodes change");
});

test("workers 5 → 3: the removed workers are drained and their Node deleted before their machines go", async (t) => {
  const { before, names } = await change(["workers.count=5"], ["workers.count=3"]);
  t.deepEqual(names("delete").filter((n) => /^worker-\d+$/.test(n)), ["worker-3", "worker-4"]);
  for (const w of ["worker-3", "worker-4"]) {
    const drain = byName(before, `${w}-drain`);
    t.regex(String(drain.inputs.delete), /STEP='retire'/);
    t.regex(String(drain.inputs.delete), /delete node/);
    t.is(drain.displayInputs.connection.host, byName(before, "cp-0", "aws:ec2/instance:Instance").outputs.privateIp, "retired from cp-0");
    // Pulumi deletes dependents first: drain (retire) → join → prepare → instance.
    t.true(drain.dependencies.includes(byName(before, `${w}-join`).urn));
    t.true(byName(before, `${w}-join`).dependencies.includes(byName(before, `${w}-prepare`).urn));
    t.true(waitsFor(before, byName(before, `${w}-prepare`), byName(before, w, "aws:ec2/instance:Instance")));
  }
});

test("control planes 3 → 5: each new member joins after the previous, then registers with the load balancer", async (t) => {
  const { after, names } = await change(["controlPlane.count=3"], ["controlPlane.count=5"]);
  t.true(names("create").includes("cp-3-join") && names("create").includes("cp-4-api"));
  t.true(byName(after, "cp-4-join").dependencies.includes(byName(after, "cp-3-join").urn));
  t.true(byName(after, "cp-4-api").dependencies.includes(byName(after, "cp-4-join").urn));
  t.deepEqual(names("delete"), []);
});

test("control planes 5 → 3: the LB target goes first, then the member retires (drain, etcd member removal), then the machine", async (t) => {
  const { before, names } = await change(["controlPlane.count=5"], ["controlPlane.count=3"]);
  t.true(["cp-3", "cp-3-api", "cp-3-join", "cp-4", "cp-4-api", "cp-4-join"].every((n) => names("delete").includes(n)));
  for (const cp of ["cp-3", "cp-4"]) {
    const join = byName(before, `${cp}-join`);
    t.true(byName(before, `${cp}-api`).dependencies.includes(join.urn), "the LB attachment is deleted before the retire runs");
    const retire = String(join.inputs.delete);
    t.regex(retire, /STEP='retire'/);
    t.regex(retire, /member remove/);
    t.regex(retire, /https:\/\/10\.0\.1\.10:2379/, "the members that stay are named");
    t.true(waitsFor(before, join, byName(before, cp, "aws:ec2/instance:Instance")));
  }
  t.true(byName(before, "cp-4-join").dependencies.includes(byName(before, "cp-3-join").urn), "cp-4 retires before cp-3: one member at a time");
});

test("unsafe control-plane shapes are refused, naming the key", async (t) => {
  const before = await evaluateDev(["controlPlane.count=5"]);
  const err = await t.throwsAsync(evaluateDev(["controlPlane.count=1"], deployedOf(before)));
  t.is(
    err!.message,
    "Invalid configuration:\n  controlPlane.count: 5 → 1 removes 4 of 5 stacked etcd members in one run; at most 2 may go in one run, so that the members that stay keep quorum even if the run stops halfway",
  );
  const even = await t.throwsAsync(evaluateDev(["controlPlane.count=4"], deployedOf(before)));
  t.regex(even!.message, /controlPlane\.count: must be odd with stacked etcd/);
});

test("maintenance on: the node is cordoned and drained from cp-0; off: the same step's delete uncordons it", async (t) => {
  const on = await change([], ["maintenance=[worker-1]"]);
  t.deepEqual(on.names("create"), ["worker-1-maintenance"]);
  const step = byName(on.after, "worker-1-maintenance");
  t.regex(String(step.inputs.create), /STEP='maintenance'/);
  t.regex(String(step.inputs.create), /drain/);
  t.regex(String(step.inputs.delete), /uncordon/);
  t.true(waitsFor(on.after, step, byName(on.after, "worker-1-uncordon")), "never during an upgrade of the same run");
  const off = diffEvaluations(on.after, await evaluateDev([], deployedOf(on.after)));
  t.deepEqual(off.map((d) => [short(d.urn), d.op]), [["worker-1-maintenance", "delete"]]);
});

test("replacing a machine (pulumi up --replace) is a removal and a join: the old member retires before its successor joins", async (t) => {
  const before = await evaluateDev();
  for (const node of ["worker-1", "cp-2"]) {
    const after = await evaluateStack("dev", [], deployedOf(before), [node]);
    const diff = diffEvaluations(before, after, [node]);
    const replaced = diff.filter((d) => d.replace).map((d) => short(d.urn)).sort();
    const membership = node.startsWith("worker") ? [node, `${node}-drain`, `${node}-join`, `${node}-prepare`] : [node, `${node}-join`, `${node}-prepare`];
    t.deepEqual(replaced, membership.sort(), `${node}: exactly its machine and membership steps`);
    t.false(diff.some((d) => d.op === "delete" || d.op === "create"));
    for (const name of membership) t.true(byName(after, name).options.deleteBeforeReplace, `${name} is deleted (retired) before its successor exists`);
    const retire = node.startsWith("worker") ? byName(after, `${node}-drain`) : byName(after, `${node}-join`);
    t.regex(String(retire.inputs.delete), /STEP='retire'/);
  }
  t.false(byName(before, "cp-0", "aws:ec2/instance:Instance").options.deleteBeforeReplace, "cp-0 holds kubeadm init: not replaceable in place");
  t.is(byName(before, "cp-0-init").inputs.triggers, undefined);
});
