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

test("workers 2 → 5: three workers join, each with a token minted for it; nothing else is minted, replaced or deleted", async (t) => {
  const { after, diff, names } = await change(["workers.count=2"], ["workers.count=5"]);
  const perWorker = (w: string) => [w, `${w}-drain`, `${w}-join`, `${w}-join-credentials`, `${w}-prepare`, `${w}-uncordon`, `${w}-upgrade`];
  t.deepEqual(names("create"), [...perWorker("worker-2"), ...perWorker("worker-3"), ...perWorker("worker-4")].sort());
  t.deepEqual(names("delete"), []);
  t.deepEqual(diff.filter((d) => d.replace), [], "the nodes already joined keep their credentials");
  const join = byName(after, "worker-4-join");
  const mint = byName(after, "worker-4-join-credentials");
  t.true(waitsFor(after, join, mint));
  t.is(mint.displayInputs.connection.host, byName(after, "cp-0", "aws:ec2/instance:Instance").outputs.privateIp, "minted on cp-0");
  const minted = String(mint.outputs.stdout).match(/KUBEADM_HA_JOIN_TOKEN=(\S+)/)![1];
  t.true(String(join.inputs.stdin).includes(`token: ${minted}`), "the join uses the token minted for it, not the day-one one");
  t.true(mint.options.additionalSecretOutputs.includes("stdout"));
  t.is(mint.inputs.logging, "stderr");
  t.notRegex(String(mint.inputs.create), /kubeadm init phase upload-certs/, "a worker's mint never replaces the certificate upload a control plane downloads");
  t.is(mint.inputs.stdin, undefined);
  for (const d of diff.filter((x) => x.op === "change")) t.regex(short(d.urn), /^(cluster-wait-nodes-ready|cluster-upgrade-preflight)$/, "only steps that list the nodes change");
});

test("every certificate upload after day one has a key of its own: each joining control plane's, minted right after the previous control plane joined", async (t) => {
  const { before, after, diff } = await change(["controlPlane.count=3"], ["controlPlane.count=5"]);
  const initKey = /\ncertificateKey: (\S+)\n/.exec(String(byName(before, "cp-0-init").inputs.stdin))![1];
  const keyOf = (e: Evaluation, cp: string) => String(byName(e, `${cp}-upload-certificate-key`).outputs.hex);
  const cps = ["cp-1", "cp-2", "cp-3", "cp-4"];
  t.is(new Set([initKey, ...cps.map((cp) => keyOf(after, cp))]).size, 5, "never the day-one key, never another control plane's");
  cps.forEach((cp, i) => {
    t.deepEqual(byName(after, `${cp}-upload-certificate-key`).options.replaceOnChanges, ["keepers"]);
    const mint = byName(after, `${cp}-join-credentials`);
    t.is(String(mint.inputs.stdin), `${keyOf(after, cp)}\n`, "the mint uploads with it");
    t.regex(String(mint.inputs.create), /kubeadm init phase upload-certs/);
    t.true(String(byName(after, `${cp}-join`).inputs.stdin).includes(`  certificateKey: ${keyOf(after, cp)}\n`), "the control plane decrypts with it");
    const previous = i === 0 ? byName(after, "cp-0-init") : byName(after, `${cps[i - 1]}-join`);
    t.true(mint.dependencies.includes(previous.urn), `${cp}'s upload replaces the kubeadm-certs Secret only after ${previous.name} downloaded its own`);
  });
  t.deepEqual(diff.filter((d) => d.replace), [], "the joined control planes keep theirs");
});

/** What Pulumi runs for a changed or replaced resource: an ignoreChanges key keeps the OLD input, also for a replacement. */
function effective(before: Evaluation, after: Evaluation, name: string, key: string): unknown {
  const next = byName(after, name);
  return next.options.ignoreChanges.includes(key) ? byName(before, name).inputs[key] : next.inputs[key];
}
const versionOf = (script: unknown) => /^VERSION='([^']+)'$/m.exec(String(script))?.[1];

test("a machine replaced after an upgrade prepares and joins at the cluster's current version, with credentials minted for it; its drain skips it (so nothing leaves it cordoned)", async (t) => {
  const dayOne = await evaluateDev(["kubernetesVersion=1.35.9"]);
  const upgraded = await evaluateDev(["kubernetesVersion=1.36.0"], deployedOf(dayOne));
  t.false(diffEvaluations(dayOne, upgraded).some((d) => /-(prepare|join|join-credentials)$/.test(short(d.urn))), "a bump re-runs no bootstrap step");
  for (const node of ["worker-1", "cp-2"]) {
    const after = await evaluateStack("dev", ["kubernetesVersion=1.36.0"], deployedOf(upgraded), [node]);
    const replaced = diffEvaluations(upgraded, after, [node]).filter((d) => d.replace).map((d) => short(d.urn));
    t.true(replaced.includes(`${node}-join-credentials`), `${node}: credentials minted for the new machine`);
    t.is(versionOf(effective(upgraded, after, `${node}-prepare`, "create")), "1.36.0", `${node}: prepares at the cluster's version, not day one's`);
    const stdin = String(effective(upgraded, after, `${node}-join`, "stdin"));
    const minted = String(byName(after, `${node}-join-credentials`).outputs.stdout).match(/KUBEADM_HA_JOIN_TOKEN=(\S+)/)![1];
    t.true(stdin.includes(`token: ${minted}`), `${node}: joins with the token of the new mint`);
    t.true(byName(after, `${node}-join`).propertyDependencies.stdin.includes(byName(after, `${node}-join-credentials`).urn));
    if (node.startsWith("worker")) {
      // The replaced drain step runs its create on the new node: it skips a node whose kubelet reports the target.
      t.true(replaced.includes(`${node}-drain`));
      t.is(versionOf(byName(after, `${node}-drain`).inputs.create), versionOf(effective(upgraded, after, `${node}-prepare`, "create")));
    }
    const others = diffEvaluations(upgraded, after, [node]).filter((d) => /-(prepare|join|join-credentials)$/.test(short(d.urn)) && !short(d.urn).startsWith(`${node}-`));
    t.deepEqual(others, [], `${node}: no other node's bootstrap changes`);
  }
});

test("a failed first pulumi up resumed hours later mints every pending node's credentials again; once recorded, nothing is minted again", async (t) => {
  const first = await evaluateStack("dev", [], undefined, undefined, "2030-01-01T08:00:00.000Z");
  // A failed run records no outputs: the resume sees a stack that reports nothing.
  const resumed = await evaluateStack("dev", [], undefined, undefined, "2030-01-01T11:00:00.000Z");
  const diff = diffEvaluations(first, resumed);
  const mints = first.resources.filter((r) => r.name.endsWith("-join-credentials")).map((r) => r.name).sort();
  t.true(mints.length > 0);
  t.deepEqual(diff.filter((d) => d.replace && d.type === "command:remote:Command").map((d) => short(d.urn)).sort(), mints, "every mint runs again (the old upload is gone after 2 h)");
  for (const name of mints) {
    const join = byName(resumed, name.replace(/-credentials$/, ""));
    t.false(join.options.ignoreChanges.includes("stdin"), `${join.name} joins with what the new mint printed`);
  }
  const later = await evaluateStack("dev", [], deployedOf(resumed), undefined, "2030-01-03T08:00:00.000Z");
  t.deepEqual(diffEvaluations(resumed, later), [], "a node recorded as joined keeps its credentials round");
  t.deepEqual(Object.keys(deployedOf(resumed).bootstrap as object).sort(), ["cp-0", "cp-1", "cp-2", "worker-0", "worker-1"]);
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
  t.true(waitsFor(after, byName(after, "cp-4-api"), byName(after, "cp-4-join")));
  t.true(byName(after, "cp-4-api").dependencies.includes(byName(after, "cp-4-retire").urn), "registered after its retire step exists, so it goes first");
  t.deepEqual(names("delete"), []);
});

test("control planes 5 → 3: the LB target goes first, then the member retires from cp-0 (etcd health, drain, member removal through the remaining members, Node deleted), then the machine; no removal step connects to the departing machine", async (t) => {
  const { before, names } = await change(["controlPlane.count=5"], ["controlPlane.count=3"]);
  t.true(["cp-3", "cp-3-api", "cp-3-join", "cp-3-retire", "cp-4", "cp-4-api", "cp-4-join", "cp-4-retire"].every((n) => names("delete").includes(n)));
  const cp0 = byName(before, "cp-0", "aws:ec2/instance:Instance").outputs.privateIp;
  for (const cp of ["cp-3", "cp-4"]) {
    const join = byName(before, `${cp}-join`);
    const retire = byName(before, `${cp}-retire`);
    t.is(retire.displayInputs.connection.host, cp0, `${cp} retires from cp-0`);
    t.not(retire.displayInputs.connection.host, byName(before, cp, "aws:ec2/instance:Instance").outputs.privateIp);
    t.true(byName(before, `${cp}-api`).dependencies.includes(retire.urn), "the LB attachment is deleted before the retire runs");
    t.true(retire.dependencies.includes(join.urn), "the retire runs before the join, preparation and machine go");
    const script = String(retire.inputs.delete);
    t.regex(script, /STEP='retire'/);
    t.regex(script, /RUNS_ON='cp-0'/);
    t.regex(script, /member remove/);
    t.regex(script, /https:\/\/10\.0\.1\.10:2379/, "the members that stay are named");
    t.notRegex(script, /^\s*(timeout \S+ )?kubeadm /m, "no kubeadm runs (no reset): the departing machine is never reached");
    t.true(waitsFor(before, join, byName(before, cp, "aws:ec2/instance:Instance")));
    t.is(join.inputs.delete, undefined, "the join has no delete: nothing runs on the departing machine");
  }
  t.true(byName(before, "cp-4-retire").dependencies.includes(byName(before, "cp-3-retire").urn), "cp-4 retires before cp-3: one member at a time");
  // Every resource deleted with the departing nodes that has a delete command runs it on cp-0, never on those nodes.
  const deletedOnNode = before.resources.filter((r) => names("delete").includes(short(r.urn)) && r.inputs.delete !== undefined && r.displayInputs?.connection?.host !== cp0);
  t.deepEqual(deletedOnNode.map((r) => short(r.urn)), [], "no delete command connects to a departing machine");
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
    const membership = node.startsWith("worker") ? [node, `${node}-drain`, `${node}-join`, `${node}-prepare`] : [node, `${node}-join`, `${node}-prepare`, `${node}-retire`];
    // A replaced control plane also gets its own certificates step (it reports the new machine's certificates). Every
    // new machine gets credentials minted for it (a control plane: an upload under a key of its own too).
    // Its load balancer target too: the AWS provider cannot move an attachment to another instance (targetId is
    // force-new, infra/offline/forceNew.ts), so the new machine gets an attachment of its own.
    const reports = node.startsWith("worker") ? [] : [`${node}-api`, `${node}-certificates`, `${node}-upload-certificate-key`];
    t.deepEqual(replaced, [...membership, `${node}-join-credentials`, ...reports].sort(), `${node}: exactly its machine, membership and credentials steps`);
    t.false(diff.some((d) => d.op === "delete" || d.op === "create"));
    for (const name of membership) t.true(byName(after, name).options.deleteBeforeReplace, `${name} is deleted (retired) before its successor exists`);
    // The old member retires from cp-0 (its step's delete runs with the old inputs, on cp-0's connection): a dead
    // machine is replaced as a live one is.
    const retire = node.startsWith("worker") ? byName(before, `${node}-drain`) : byName(before, `${node}-retire`);
    t.regex(String(retire.inputs.delete), /STEP='retire'/);
    t.is(retire.displayInputs.connection.host, byName(before, "cp-0", "aws:ec2/instance:Instance").outputs.privateIp, `${node} retires from cp-0`);
    const replacedWithDelete = before.resources.filter((r) => diff.some((d) => d.replace && d.urn === r.urn) && r.inputs.delete !== undefined);
    t.true(replacedWithDelete.length > 0);
    t.deepEqual(
      replacedWithDelete.filter((r) => r.displayInputs.connection.host !== byName(before, "cp-0", "aws:ec2/instance:Instance").outputs.privateIp).map((r) => short(r.urn)),
      [],
      `${node}: every replaced step with a delete runs it on cp-0, none on the departing machine`,
    );
  }
  t.false(byName(before, "cp-0", "aws:ec2/instance:Instance").options.deleteBeforeReplace, "cp-0 holds kubeadm init: not replaceable in place");
  t.is(byName(before, "cp-0-init").inputs.triggers, undefined);
});
