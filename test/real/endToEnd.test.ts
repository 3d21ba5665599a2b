// The program END TO END under the real engine: the `pulumi` binary `npm run tools` builds, with the command, random,
// tls and kubernetes plugins and the nodejs language host it builds, runs the project's own Pulumi.yaml and
// infra/index.ts (not an inline program) on a local file backend, on a static-hosts stack it generates: one control
// plane and two workers, each a network namespace on a bridge of the test's with its own sshd, reached through a
// bastion (test/support/stubHosts.ts), behind an existing API endpoint: a REAL control plane (etcd 3.6, kube-apiserver,
// controller-manager, scheduler 1.36, kwok for the nodes) listening on the bridge.
//
// On the hosts kubeadm, kubelet, apt-get, systemctl (and curl, etcdctl, crictl) are RECORDING STUBS; kubectl is the
// real one against the real control plane, where the steps read and change the cluster (drain, uncordon, Node
// readiness, kubeadm-config); `kubeadm token create` is the real kubeadm, and a join is refused unless its token is live
// in the real cluster (test/support/clusterStubs.ts). The CNI (flannel, from its Go module's chart) is installed by the
// real Kubernetes provider into the real cluster. Assertions come from the hosts' journals (which script ran where,
// when, with which exit code), from `pulumi preview --json`, `pulumi stack export`, and from the real cluster.
import test, { type ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { projectName } from "../../infra/config";
import { evaluate, type Evaluation } from "../../infra/offline/engine";
import { diffEvaluations, loadStackConfig, stepsOf, type DiffEntry, type Step } from "../../infra/offline/plan";
import { runProgram } from "../../infra/program";
import { innerScript, startE2eWorld, type E2eWorld, type Run } from "../support/e2eWorld";
import { missingEngineTools, realTool } from "../support/realTools";
import { type JournalEntry } from "../support/stubHosts";

const STACK = "e2e";
const LONG = 900_000;
const FROM = "1.35.4";
const TO = "1.36.3"; // the real control plane's version: after the upgrade the cluster is what kubeadm-config says
const ETCD_TOOLS = "3.6.6"; // Pulumi.yaml's etcd.version default: what the snapshot-tools step installs

/** The tools this suite needs; without them every test below is reported skipped, by name, with the reason. */
const missing = missingEngineTools();
const e2e = (title: string, body: (t: ExecutionContext) => Promise<void>) =>
  missing.length === 0 ? test.serial(title, body) : test.serial.skip(`${title} — skipped: ${missing.join("; ")}`, body);

let world: E2eWorld | undefined;

test.before(async () => {
  if (missing.length > 0) return;
  world = await startE2eWorld({
    stack: STACK,
    etcdTools: ETCD_TOOLS,
    hosts: ["cp-0", "worker-0", "worker-1"],
    initial: (w) => stackConfig(w, ["worker-0", "worker-1"], FROM),
    timeoutMs: LONG,
  });
});

test.after.always(async () => {
  await world?.stop();
});

const stackConfig = (w: E2eWorld, workers: string[], version: string, extra: Record<string, unknown> = {}) =>
  w.stackConfig({ controlPlanes: ["cp-0"], workers, version, extra });
const writeStack = (w: E2eWorld) => w.writeStack();
const pulumi = (args: string[], o: { input?: string } = {}): Promise<Run> => world!.pulumi(args, o);
const ok = (t: ExecutionContext, r: Run, what: string) => t.is(r.code, 0, `${what} failed:\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-4000)}`);

/** The offline engine's evaluation of the stack file as it is now (the same program, config and deployed outputs). */
async function offline(deployed?: Record<string, unknown>): Promise<Evaluation> {
  // secureKeys: the keys the CLI hands the program as secrets (a key held in plain text is refused by the program).
  const { config, secureKeys } = loadStackConfig(world!.project, STACK);
  // In the project's directory, as the CLI runs the program: the config's paths (cni.chartPath) are the project's.
  const cwd = process.cwd();
  process.chdir(world!.project);
  try {
    return await evaluate({ project: projectName, stack: STACK, config, secretKeys: secureKeys, program: runProgram, deployedOutputs: deployed });
  } finally {
    process.chdir(cwd);
  }
}

interface ExportedResource {
  urn: string;
  type: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  dependencies?: string[];
}
async function exportStack(showSecrets = false): Promise<{ text: string; resources: ExportedResource[] }> {
  const r = await pulumi(["stack", "export", ...(showSecrets ? ["--show-secrets"] : [])]);
  if (r.code !== 0) throw new Error(`pulumi stack export: ${r.stderr}`);
  return { text: r.stdout, resources: (JSON.parse(r.stdout).deployment.resources ?? []) as ExportedResource[] };
}

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * sha256 of each step's create and delete script -> "NAME" / "NAME (delete)": from the exported state (what ran and
 * was recorded) and from the offline evaluation of the stack file against the deployed outputs (what a run that
 * failed, or has yet to run, executes: a failed step's new inputs are not in the state). Call it before and after a
 * run and merge, so that scripts of removed steps and of changed ones are both known.
 */
async function scriptIndex(into = new Map<string, string>()): Promise<Map<string, string>> {
  const add = (name: string, create?: string, del?: string) => {
    if (create) into.set(sha256(innerScript(create)), name);
    if (del) into.set(sha256(innerScript(del)), `${name} (delete)`);
  };
  for (const r of (await exportStack(true)).resources) {
    if (r.type === "command:remote:Command") add(nameOf(r.urn), r.inputs?.create as string | undefined, r.inputs?.delete as string | undefined);
  }
  const outputs = await pulumi(["stack", "output", "--json", "--show-secrets"]);
  const deployed = outputs.code === 0 && outputs.stdout.trim() ? (JSON.parse(outputs.stdout) as Record<string, unknown>) : undefined;
  for (const r of (await offline(deployed)).resources) {
    if (r.type === "command:remote:Command" && typeof r.inputs.create === "string") add(r.name, r.inputs.create, typeof r.inputs.delete === "string" ? r.inputs.delete : undefined);
  }
  return into;
}

interface Ran extends JournalEntry {
  step: string;
}
function named(entries: JournalEntry[], index: Map<string, string>): Ran[] {
  return entries.map((e) => ({ ...e, step: index.get(e.sha) ?? `unknown script ${e.sha.slice(0, 12)} on ${e.host}` }));
}

/** Every step ran after the steps the offline plan says it waits for had finished. */
function assertPlanOrder(t: ExecutionContext, steps: Step[], ran: Ran[]): void {
  const byUrn = new Map(steps.map((s) => [s.urn, s]));
  const last = new Map<string, Ran>();
  for (const r of ran) last.set(r.step, r);
  for (const r of ran) {
    const step = steps.find((s) => s.name === r.step);
    if (!step) continue;
    for (const dep of step.dependsOn.map((u) => byUrn.get(u)!.name)) {
      const d = last.get(dep);
      if (!d) continue; // finished in an earlier run
      t.true(d.end !== undefined && d.end <= r.start, `${r.step} started before ${dep}, which the plan says it waits for, had finished`);
    }
  }
}

/** The operation `pulumi preview` names for an offline diff entry. */
const pulumiOp = (d: DiffEntry) => (d.op === "change" ? (d.replace ? "replace" : "update") : d.op);

const previewSteps = (r: Run) =>
  (JSON.parse(r.stdout).steps ?? []) as { op: string; urn: string; type?: string; newState?: { type: string }; oldState?: { type: string }; diffReasons?: string[] }[];
const stepType = (s: ReturnType<typeof previewSteps>[number]) => s.newState?.type ?? s.oldState?.type ?? "";

let journalMark = 0;
/** The journal entries since the last call. */
function newRuns(): JournalEntry[] {
  const all = world!.net.journal();
  const fresh = all.slice(journalMark);
  journalMark = all.length;
  return fresh;
}

e2e("e2e (recording stubs for kubeadm, kubelet, apt-get, systemctl on the hosts; real kubectl and control plane): pulumi preview of a new stack lists every step of the offline plan", async (t) => {
  t.timeout(LONG);
  const r = await pulumi(["preview", "--json"]);
  ok(t, r, "pulumi preview");
  const planned = previewSteps(r).filter((s) => stepType(s) === "command:remote:Command");
  t.true(planned.every((s) => s.op === "create"));
  const expected = stepsOf(await offline()).map((s) => s.name).sort();
  t.deepEqual(planned.map((s) => nameOf(s.urn)).sort(), expected);
  t.true(expected.length >= 20, `a whole cluster's steps (${expected.length})`);
});

e2e("e2e (recording stubs on the hosts): pulumi up builds the cluster, each step once, on its own host, through the bastion, in an order the offline plan allows", async (t) => {
  t.timeout(LONG);
  const w = world!;
  const r = await pulumi(["up", "--yes", "--skip-preview"]);
  ok(t, r, "pulumi up");
  t.notRegex(r.stdout + r.stderr, /from \$PATH/, "every plugin and the language host from where npm run tools installed them");
  const steps = stepsOf(await offline());
  const ran = named(newRuns(), await scriptIndex());
  t.deepEqual(ran.filter((x) => x.step.startsWith("unknown")), [], "every script a host ran is a step's");
  t.deepEqual(ran.map((x) => x.step).sort(), steps.map((s) => s.name).sort(), "every step ran exactly once");
  t.true(ran.every((x) => x.rc === 0));
  for (const x of ran) {
    const host = steps.find((s) => s.name === x.step)!.host;
    t.is(w.net.hosts.get(x.host)?.address, host, `${x.step} ran on the host its connection names`);
  }
  assertPlanOrder(t, steps, ran);
  t.regex(w.net.bastion.log(), /server_request_direct_tcpip/, "the steps went through the bastion");
  // The real cluster: every node Ready (kwok), flannel's DaemonSet from the program's Helm release, kubeadm-config.
  const nodes = await w.cp.kubectlOk(["get", "nodes", "-o", 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}']);
  t.deepEqual(nodes.trim().split(" ").sort(), ["cp-0=True", "worker-0=True", "worker-1=True"]);
  t.regex(await w.cp.kubectlOk(["-n", "kube-flannel", "get", "daemonset", "-o", "name"]), /flannel/);
  t.regex(await w.cp.kubectlOk(["-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "jsonpath={.data.ClusterConfiguration}"]), new RegExp(`kubernetesVersion: v?${FROM.replace(/\./g, "\\.")}`));
  // The program's own credential (read-kubeconfig) reaches the real API.
  const out = await pulumi(["stack", "output", "kubeconfig", "--show-secrets"]);
  const kubeconfig = join(w.dir, "kubeconfig");
  writeFileSync(kubeconfig, out.stdout, { mode: 0o600 });
  t.is(execFileSync(realTool("kubectl"), ["--kubeconfig", kubeconfig, "get", "--raw", "/readyz"]).toString(), "ok");
});

e2e("e2e (recording stubs on the hosts): a second pulumi up with nothing changed changes nothing: no step runs, no output changes", async (t) => {
  t.timeout(LONG);
  const before = (await pulumi(["stack", "output", "--json", "--show-secrets"])).stdout;
  const preview = await pulumi(["preview", "--expect-no-changes"]);
  ok(t, preview, "pulumi preview --expect-no-changes");
  const up = await pulumi(["up", "--yes", "--expect-no-changes"]);
  ok(t, up, "pulumi up --expect-no-changes");
  t.deepEqual(newRuns(), [], "no script ran on any host");
  t.is((await pulumi(["stack", "output", "--json", "--show-secrets"])).stdout, before);
});

e2e("e2e (recording stubs on the hosts): pulumi stack export holds no secret in plain text (SSH key, bootstrap token, certificate key, join tokens, kubeconfig)", async (t) => {
  t.timeout(LONG);
  const w = world!;
  const plain = (await exportStack()).text;
  const secrets: [string, string][] = [["the SSH private key", w.key.split("\n")[1] ?? ""]];
  for (const r of (await exportStack(true)).resources) {
    const o = r.outputs ?? {};
    if (r.type.startsWith("random:")) secrets.push([nameOf(r.urn), String(o.result ?? o.hex)]);
  }
  // A bootstrap token's id is public (kubeadm lists it; the Secret is named after it): its secret half is what matters.
  const id = secrets.findIndex(([what]) => what === "bootstrap-token-id");
  t.not(id, -1);
  secrets.splice(id, 1);
  const kubeconfig = (await pulumi(["stack", "output", "kubeconfig", "--show-secrets"])).stdout;
  secrets.push(["the kubeconfig's client key", /client-key-data: (\S+)/.exec(kubeconfig)![1]]);
  // The join tokens the real kubeadm minted for the workers, as the real cluster holds them.
  const tokens = (await w.cp.kubectlOk(["-n", "kube-system", "get", "secrets", "--field-selector", "type=bootstrap.kubernetes.io/token", "-o", "jsonpath={range .items[*]}{.data.token-secret}{\"\\n\"}{end}"])).split("\n").filter(Boolean);
  t.true(tokens.length >= 2, "a token per worker join");
  for (const s of tokens) secrets.push(["a join token", Buffer.from(s, "base64").toString()]);
  for (const [what, value] of secrets) {
    t.true(value.length >= 6, `${what}: found`);
    t.false(plain.includes(value), `${what} appears in plain text in the exported state`);
  }
});

e2e("e2e (recording stubs on the hosts): a version bump updates only upgrade steps, in place, in plan order; a step made to fail stops the run with its output, and the next pulumi up resumes at that step and finishes", async (t) => {
  t.timeout(LONG);
  const w = world!;
  const deployed = JSON.parse((await pulumi(["stack", "output", "--json", "--show-secrets"])).stdout) as Record<string, unknown>;
  const before = await offline(deployed);
  w.config = stackConfig(w, ["worker-0", "worker-1"], TO);
  writeStack(w);
  const after = await offline(deployed);
  const expected = diffEvaluations(before, after).filter((d) => d.type === "command:remote:Command");
  const preview = await pulumi(["preview", "--json"]);
  ok(t, preview, "pulumi preview");
  const changed = previewSteps(preview).filter((s) => ["create", "update", "delete", "replace"].includes(s.op) && stepType(s) === "command:remote:Command");
  t.deepEqual(changed.map((s) => `${s.op} ${nameOf(s.urn)}`).sort(), expected.map((d) => `${pulumiOp(d)} ${nameOf(d.urn)}`).sort(), "the real preview is the offline diff");
  t.true(changed.every((s) => s.op === "update"), "in place");
  const bootstrap = /-(prepare|init|join|join-credentials|read-kubeconfig|api-endpoint)$/;
  t.deepEqual(changed.filter((s) => bootstrap.test(nameOf(s.urn))).map((s) => nameOf(s.urn)), [], "no bootstrap step changes");

  // worker-1's package source lacks the new version (until the fault is undone).
  const fault = join(w.net.hosts.get("worker-1")!.state, "refuse-version");
  writeFileSync(fault, TO);
  const known = await scriptIndex();
  const failed = await pulumi(["up", "--yes", "--skip-preview"]);
  t.not(failed.code, 0);
  t.regex(failed.stdout + failed.stderr, new RegExp(`\\[worker-1\\] upgrade: .*E: Version '${TO.replace(/\./g, "\\.")}[^']*' for '[a-z]+' was not found`), "the failing step's own output");
  rmSync(fault);
  const first = named(newRuns(), await scriptIndex(known));
  const failedStep = first.find((x) => x.rc !== 0);
  t.is(failedStep?.step, "worker-1-upgrade");
  t.false(first.some((x) => x.step === "worker-1-uncordon"), "nothing after the failed step ran");
  assertPlanOrder(t, stepsOf(after), first);

  const resumed = await pulumi(["up", "--yes", "--skip-preview"]);
  ok(t, resumed, "the second pulumi up");
  const second = named(newRuns(), await scriptIndex(known));
  t.is(second[0]?.step, "worker-1-upgrade", "the resume starts at the failed step");
  const finished = new Set(first.filter((x) => x.rc === 0).map((x) => x.step));
  t.deepEqual(second.filter((x) => finished.has(x.step)).map((x) => x.step), [], "steps that had finished did not run again");
  t.deepEqual([...finished, ...second.map((x) => x.step)].sort(), expected.map((d) => nameOf(d.urn)).sort(), "between the two runs, every changed step ran once");
  assertPlanOrder(t, stepsOf(after), second);
  const kubelets = await w.cp.kubectlOk(["get", "nodes", "-o", "jsonpath={range .items[*]}{.status.nodeInfo.kubeletVersion} {end}"]);
  t.deepEqual([...new Set(kubelets.trim().split(" "))], [`v${TO}`], "every kubelet at the target");
  t.regex(await w.cp.kubectlOk(["-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "jsonpath={.data.ClusterConfiguration}"]), new RegExp(`kubernetesVersion: v${TO.replace(/\./g, "\\.")}`));
});

e2e("e2e: a topology switch and a downgrade are refused at pulumi preview, naming the key, before any resource is registered", async (t) => {
  t.timeout(LONG);
  const w = world!;
  const current = w.config;
  for (const [change, message] of [
    [{ etcdTopology: "external", hosts: { ...(current.hosts as object), etcd: ["etcd-0", "etcd-1", "etcd-2"].map((name, i) => ({ name, address: `${w.net.gateway.replace(/\.1$/, "")}.${200 + i}`, user: "ubuntu" })) } }, /etcdTopology: the stack runs with stacked etcd/],
    [{ kubernetesVersion: FROM }, new RegExp(`kubernetesVersion: ${FROM.replace(/\./g, "\\.")} is older than the deployed ${TO.replace(/\./g, "\\.")}`)],
  ] as const) {
    w.config = { ...current, ...change };
    writeStack(w);
    const r = await pulumi(["preview", "--json"]);
    t.not(r.code, 0, `${JSON.stringify(change)} was not refused:\n${r.stderr}`);
    t.regex(r.stdout + r.stderr, message);
    t.deepEqual(previewSteps(r).filter((s) => ["create", "update", "replace", "delete"].includes(s.op) && stepType(s) !== "pulumi:pulumi:Stack"), [], "no resource registered, so none planned");
  }
  w.config = current;
  writeStack(w);
  ok(t, await pulumi(["preview", "--expect-no-changes"]), "back to the deployed config");
  t.deepEqual(newRuns(), []);
});

e2e("e2e (recording stubs on the hosts): removing a worker runs its retirement before its host leaves the stack; a new worker joins with credentials minted for it in that run", async (t) => {
  t.timeout(LONG);
  const w = world!;
  w.config = stackConfig(w, ["worker-0"], TO);
  writeStack(w);
  const index = await scriptIndex();
  const down = await pulumi(["up", "--yes", "--skip-preview"]);
  ok(t, down, "pulumi up (worker-1 removed)");
  const retired = named(newRuns(), await scriptIndex(index));
  const ranSteps = retired.map((x) => x.step);
  t.deepEqual(ranSteps.filter((x) => x.startsWith("unknown")), [], "every script a host ran is a step's");
  t.true(ranSteps.includes("worker-1-drain (delete)"), `the worker's retirement ran: ${ranSteps.join(", ")}`);
  t.deepEqual(ranSteps.filter((x) => !x.endsWith("(delete)") && !x.startsWith("cluster-")), [], "besides deletes, only the cluster-wide steps that list the nodes ran again");
  t.true(retired.every((x) => x.rc === 0));
  const nodes = await w.cp.kubectlOk(["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
  t.deepEqual(nodes.trim().split(" ").sort(), ["cp-0", "worker-0"], "the retired worker's Node is gone from the real cluster");
  t.false((await exportStack()).resources.some((r) => nameOf(r.urn).startsWith("worker-1-")), "and its steps from the stack");
  await w.net.removeHost("worker-1");

  await w.net.addHost("worker-2");
  w.config = stackConfig(w, ["worker-0", "worker-2"], TO);
  writeStack(w);
  const up = await pulumi(["up", "--yes", "--skip-preview"]);
  ok(t, up, "pulumi up (worker-2 added)");
  const joined = named(newRuns(), await scriptIndex());
  const otherNodes = joined.filter((x) => !x.step.startsWith("worker-2-") && !x.step.startsWith("cluster-")).map((x) => x.step);
  const order = joined.map((x) => x.step);
  t.true(order.includes("worker-2-join-credentials") && order.indexOf("worker-2-join-credentials") < order.indexOf("worker-2-join"), `credentials minted, then the join: ${order.join(", ")}`);
  t.true(joined.every((x) => x.rc === 0));
  t.deepEqual(otherNodes, [], "no other node's step ran");
  const version = await w.cp.kubectlOk(["get", "node", "worker-2", "-o", "jsonpath={.status.nodeInfo.kubeletVersion}"]);
  t.is(version, `v${TO}`, "the new worker joined at the cluster's current version");
});

e2e("e2e (recording stubs on the hosts): pulumi destroy leaves an empty stack, the delete scripts running in reverse dependency order", async (t) => {
  t.timeout(LONG);
  const w = world!;
  const state = await exportStack(true);
  const index = await scriptIndex();
  const r = await pulumi(["destroy", "--yes", "--skip-preview"]);
  ok(t, r, "pulumi destroy");
  t.deepEqual((await exportStack()).resources.filter((x) => x.type !== "pulumi:pulumi:Stack" && x.type !== "pulumi:providers:pulumi"), [], "nothing left");
  const ran = named(newRuns(), index);
  t.true(ran.length > 0 && ran.every((x) => x.step.endsWith("(delete)")), ran.map((x) => x.step).join(", "));
  // Each delete ran after the deletes of every step that depends on it.
  const deps = new Map(state.resources.map((x) => [nameOf(x.urn), new Set((x.dependencies ?? []).map(nameOf))]));
  const at = new Map(ran.map((x) => [x.step.replace(" (delete)", ""), x]));
  for (const [name, entry] of at) {
    for (const [other, otherEntry] of at) {
      if (deps.get(other)?.has(name)) t.true(otherEntry.end! <= entry.start, `${other} depends on ${name}: its delete must run first`);
    }
  }
  void w;
});
