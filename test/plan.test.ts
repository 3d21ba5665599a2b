// `npm run plan`: the offline plan command, its JSON document, and the diff it computes like Pulumi would.
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Evaluation, Registration } from "../infra/offline/engine";
import { applyOverrides, diffEvaluations } from "../infra/offline/plan";
import { evaluateDev, projectDir } from "./support/program";

const run = promisify(execFile);
const plan = (args: string[]) => run("npx", ["tsx", "infra/offline/planCli.ts", ...args], { cwd: projectDir, maxBuffer: 64 * 1024 * 1024 });

test("human output: a summary, resource counts, and the ordered steps per node with their hosts", async (t) => {
  const { stdout } = await plan([]);
  t.regex(stdout, /^kubeadm-ha plan for stack "dev": \d+ resources, \d+ node steps \(evaluated offline in \d+\.\d\d s\)/);
  t.regex(stdout, /\n +6 {2}aws:ec2\/instance:Instance\n/);
  t.regex(stdout, /\n {2}cp-0 \(10\.0\.1\.10\): prepare → init → read-kubeconfig → /);
  t.regex(stdout, /\n {2}cp-1 \(10\.0\.1\.11\): prepare → join → /);
  t.regex(stdout, /\n {4}1\. cp-0-prepare, cp-1-prepare, cp-2-prepare, worker-0-prepare, worker-1-prepare\n {4}2\. cp-0-init\n/);
});

test("--json with --set: resources with dependencies, options and masked secrets, and the diff", async (t) => {
  const { stdout } = await plan(["--set", "workers.count=3", "--json"]);
  const doc = JSON.parse(stdout);
  t.is(doc.stack, "dev");
  t.is(JSON.parse(doc.config["kubeadm-ha:workers"]).count, 3);
  const join = doc.resources.find((r: any) => r.name === "worker-2-join");
  t.is(join.type, "command:remote:Command");
  t.is(join.inputs.stdin, "[secret]");
  t.is(join.inputs.connection.host, "10.0.16.12");
  t.is(join.inputs.connection.user, "ubuntu");
  t.is(join.inputs.connection.privateKey, "[secret]");
  t.deepEqual(join.options.ignoreChanges, ["create", "stdin"]);
  const init = doc.resources.find((r: any) => r.name === "cp-0-init");
  t.true(join.dependencies.includes(init.urn));
  const key = doc.resources.find((r: any) => r.type === "tls:index/privateKey:PrivateKey");
  t.is(key.outputs.privateKeyOpenssh, "[secret]");
  t.false(stdout.includes("BEGIN OPENSSH PRIVATE KEY"));
  const created = doc.diff.filter((d: any) => d.op === "create").map((d: any) => d.urn.split("::").pop()).sort();
  t.deepEqual(created, ["worker-2", "worker-2-drain", "worker-2-join", "worker-2-prepare", "worker-2-uncordon", "worker-2-upgrade"]);
  t.false(doc.diff.some((d: any) => d.op === "delete" || d.replace));
});

test("invalid config: exit code 1 and the problems one per line", async (t) => {
  const err: any = await t.throwsAsync(plan(["--set", "kubernetesVersion=1.37.2", "--set", "cni.name=weave"]));
  t.is(err.code, 1);
  t.is(err.stderr.trim(), ["Invalid configuration:", '  cni.name: must be one of "cilium", "calico", got "weave"'].join("\n"));
  const skew: any = await t.throwsAsync(plan(["--set", "kubernetesVersion=1.37.2"]));
  t.is(skew.stderr.trim(), [
    "Invalid configuration:",
    "  kubernetesVersion: 1.37.2 skips a minor: the cluster runs 1.35.9, and kubeadm upgrades one minor at a time; upgrade to the latest 1.36.x first",
  ].join("\n"));
});

test("--set parses YAML values into dotted paths of the project's keys", (t) => {
  const base = { "kubeadm-ha:controlPlane": '{"count":3,"instanceType":"m6i.large"}', "aws:region": "eu-west-1" };
  const out = applyOverrides(base, ["controlPlane.count=5", "aws:region=us-east-2", "apiAccess.allowedCidrs=[10.1.0.0/16]", "etcdTopology=external"]);
  t.deepEqual(JSON.parse(out["kubeadm-ha:controlPlane"]), { count: 5, instanceType: "m6i.large" });
  t.is(out["aws:region"], "us-east-2");
  t.deepEqual(JSON.parse(out["kubeadm-ha:apiAccess"]), { allowedCidrs: ["10.1.0.0/16"] });
  t.is(out["kubeadm-ha:etcdTopology"], "external");
  t.throws(() => applyOverrides(base, ["controlPlane.count"]), { message: '--set expects KEY=VALUE, got "controlPlane.count"' });
});

function reg(urn: string, inputs: Record<string, unknown>, options: Partial<Registration["options"]> = {}): Registration {
  return {
    urn, id: null, type: "t:m:R", name: urn, parent: "", custom: true, dependencies: [], propertyDependencies: {},
    options: { protect: false, ignoreChanges: [], replaceOnChanges: [], deleteBeforeReplace: false, additionalSecretOutputs: [], retainOnDelete: false, deletedWith: "", provider: "", ...options },
    inputs, displayInputs: inputs, secretInputs: [], outputs: {},
  };
}
const evaluation = (resources: Registration[]): Evaluation => ({ project: "p", stack: "s", resources, stackOutputs: {}, secretOutputs: [] });

test("the diff mirrors Pulumi: ignoreChanges is never a change, replaceOnChanges replaces, the rest updates in place", (t) => {
  const before = evaluation([
    reg("a", { create: "v1", stdin: "x" }, { ignoreChanges: ["create", "stdin"] }),
    reg("b", { create: "v1", triggers: [1] }, { replaceOnChanges: ["triggers[*]"] }),
    reg("c", { create: "v1", triggers: [1] }, { replaceOnChanges: ["triggers[*]"] }),
    reg("d", { x: { k: 1, j: 2 } }),
    reg("gone", {}),
  ]);
  const after = evaluation([
    reg("a", { create: "v2", stdin: "y" }, { ignoreChanges: ["create", "stdin"] }),
    reg("b", { create: "v1", triggers: [2] }, { replaceOnChanges: ["triggers[*]"] }),
    reg("c", { create: "v2", triggers: [1] }, { replaceOnChanges: ["triggers[*]"] }),
    reg("d", { x: { j: 2, k: 1 } }),
    reg("new", {}),
  ]);
  t.deepEqual(diffEvaluations(before, after), [
    { urn: "b", type: "t:m:R", op: "change", keys: ["triggers"], replace: true },
    { urn: "c", type: "t:m:R", op: "change", keys: ["create"], replace: false },
    { urn: "new", type: "t:m:R", op: "create", keys: [], replace: false },
    { urn: "gone", type: "t:m:R", op: "delete", keys: [], replace: false },
  ]);
});

test("switching etcdTopology on a deployed stack is refused, naming the key; a new stack may choose either", async (t) => {
  const err = await t.throwsAsync(evaluateDev(["etcdTopology=external", "etcd={count: 3}"], { kubernetesVersion: "1.35.9", etcdTopology: "stacked" }));
  t.regex(err!.message, /^Invalid configuration:\n {2}etcdTopology: the stack runs with stacked etcd and all cluster data lives there; switching to external in place would start an empty etcd\./);
  const fresh = await evaluateDev(["etcdTopology=external", "etcd={count: 3}"]);
  t.is(fresh.stackOutputs.etcdTopology, "external");
});

test("the skew guard reads the deployed version: a downgrade and a skipped minor are refused, a minor up is planned", async (t) => {
  const deployed = { kubernetesVersion: "1.35.9", etcdTopology: "stacked" };
  const down = await t.throwsAsync(evaluateDev(["kubernetesVersion=1.35.2"], deployed));
  t.is(down!.message, "Invalid configuration:\n  kubernetesVersion: 1.35.2 is older than the deployed 1.35.9; kubeadm cannot downgrade a cluster (restore an etcd snapshot into a fresh stack instead)");
  const skip = await t.throwsAsync(evaluateDev(["kubernetesVersion=1.37.0"], deployed));
  t.regex(skip!.message, /kubernetesVersion: 1\.37\.0 skips a minor/);
  const up = await evaluateDev(["kubernetesVersion=1.36.3"], deployed);
  t.is(up.stackOutputs.kubernetesVersion, "1.36.3");
});
