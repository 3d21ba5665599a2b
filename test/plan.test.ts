// `npm run plan`: the offline plan command, its JSON document, and the diff it computes like Pulumi would.
import test from "ava";
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { Evaluation, Registration } from "../infra/offline/engine";
import { secretConfigKeys } from "../infra/config";
import { applyOverrides, declaredSecretKeys, diffEvaluations, loadStackConfig, maskSecretValues, renderJson } from "../infra/offline/plan";
import { byName, evaluateDev, projectDir } from "./support/program";

const run = promisify(execFile);
const plan = (args: string[]) => run("npx", ["tsx", "infra/offline/planCli.ts", ...args], { cwd: projectDir, maxBuffer: 64 * 1024 * 1024 });

test("human output: a summary, resource counts, and the ordered steps per node with their hosts", async (t) => {
  const { stdout } = await plan([]);
  t.regex(stdout, /^kubeadm-ha plan for stack "dev": \d+ resources, \d+ node steps \(evaluated offline in \d+\.\d\d s\)/);
  t.regex(stdout, /\n +6 {2}aws:ec2\/instance:Instance\n/);
  t.regex(stdout, /\n {2}cp-0 \(10\.0\.1\.10\): prepare → init → read-kubeconfig → /);
  t.regex(stdout, /\n {2}cp-1 \(10\.0\.1\.11\): prepare → join-credentials → join → /);
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
  t.deepEqual(join.options.ignoreChanges, []);
  const init = doc.resources.find((r: any) => r.name === "cp-0-init");
  t.true(join.dependencies.includes(init.urn));
  const key = doc.resources.find((r: any) => r.type === "tls:index/privateKey:PrivateKey");
  t.is(key.outputs.privateKeyOpenssh, "[secret]");
  t.false(stdout.includes("BEGIN OPENSSH PRIVATE KEY"));
  const created = doc.diff.filter((d: any) => d.op === "create").map((d: any) => d.urn.split("::").pop()).sort();
  t.deepEqual(created, ["worker-2", "worker-2-drain", "worker-2-join", "worker-2-join-credentials", "worker-2-prepare", "worker-2-uncordon", "worker-2-upgrade"]);
  t.false(doc.diff.some((d: any) => d.op === "delete"));
  t.deepEqual(doc.diff.filter((d: any) => d.replace), [], "the other nodes keep their credentials");
});

/** The secrets each node's kubeadm configuration carries in a dev evaluation, read from the steps' stdin. */
async function kubeadmSecrets() {
  const e = await evaluateDev();
  const init: string = byName(e, "cp-0-init").inputs.stdin;
  const joinStdin: string = byName(e, "worker-0-join").inputs.stdin;
  return {
    initToken: /\n {2}- token: (\S+)\n/.exec(init)![1],
    certificateKey: /\ncertificateKey: (\S+)\n/.exec(init)![1],
    joinToken: /\n {4}token: (\S+)\n/.exec(joinStdin)![1],
    cp1JoinToken: /\n {4}token: (\S+)\n/.exec(byName(e, "cp-1-join").inputs.stdin)![1],
  };
}

// Set together: with ssh.publicKey the program logs in with sshPrivateKey (Pulumi.yaml declares it secret: true).
const userKey = "kubeadm-ha-test-private-key-7c1e9b";
const ownKeySets = ["--set", "ssh.publicKey=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlanTestKey test", "--set", `sshPrivateKey=${userKey}`];

test("--show-secrets prints each node's kubeadm configuration, bootstrap token and certificate key, in text and with --json and --set", async (t) => {
  const { initToken, certificateKey, joinToken, cp1JoinToken } = await kubeadmSecrets();
  t.regex(initToken, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  t.regex(joinToken, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  t.regex(certificateKey, /^[0-9a-f]{64}$/);

  const { stdout: text } = await plan(["--show-secrets"]);
  const initBlock = /\n {2}cp-0-init stdin:\n((?: {6}.*\n|\n)+)/.exec(text)?.[1] ?? "";
  t.regex(initBlock, /^ {6}apiVersion: kubeadm\.k8s\.io\/v1beta4\n {6}kind: InitConfiguration\n/);
  t.true(initBlock.includes(`      - token: ${initToken}\n`));
  t.true(initBlock.includes(`      certificateKey: ${certificateKey}\n`));
  const joinBlock = /\n {2}cp-1-join stdin:\n((?: {6}.*\n|\n)+)/.exec(text)?.[1] ?? "";
  t.regex(joinBlock, /^ {6}apiVersion: kubeadm\.k8s\.io\/v1beta4\n {6}kind: JoinConfiguration\n/);
  t.true(joinBlock.includes(`        token: ${cp1JoinToken}\n`));
  t.regex(joinBlock, /\n {8}certificateKey: [0-9a-f]{64}\n/);
  t.false(joinBlock.includes(certificateKey), "a control plane joins with the fresh upload's key, not the day-one one");
  t.false(text.includes("print as [secret]"));

  const { stdout } = await plan(["--json", "--show-secrets", "--set", "workers.count=3", ...ownKeySets]);
  const doc = JSON.parse(stdout);
  const joinStep = doc.resources.find((r: any) => r.name === "worker-2-join");
  t.regex(joinStep.inputs.stdin, /^apiVersion: kubeadm\.k8s\.io\/v1beta4\nkind: JoinConfiguration\n/);
  const minted = /KUBEADM_HA_JOIN_TOKEN=(\S+)/.exec(doc.resources.find((r: any) => r.name === "worker-2-join-credentials").outputs.stdout)![1];
  t.not(minted, joinToken, "a token of its own");
  t.true(joinStep.inputs.stdin.includes(`    token: ${minted}\n`));
  t.true(joinStep.inputs.stdin.includes("  name: worker-2\n"));
  t.is(joinStep.inputs.connection.privateKey, userKey);
  t.is(doc.config["kubeadm-ha:sshPrivateKey"], userKey);
  t.is(doc.resources.find((r: any) => r.name === "certificate-key").outputs.hex, certificateKey);
  t.true(doc.diff.some((d: any) => d.op === "create" && d.urn.endsWith("::worker-2-join")));
});

test("without --show-secrets no token, certificate key or --set sshPrivateKey appears in text or --json; [secret] does", async (t) => {
  const { initToken, certificateKey, joinToken } = await kubeadmSecrets();
  const secrets = [initToken, initToken.split(".")[1], joinToken, joinToken.split(".")[1], certificateKey, userKey];
  const [{ stdout: text }, { stdout: json }] = await Promise.all([plan(ownKeySets), plan(["--json", ...ownKeySets])]);
  for (const secret of secrets) {
    t.false(text.includes(secret), `text shows ${secret}`);
    t.false(json.includes(secret), `--json shows ${secret}`);
  }
  t.regex(text, /\nSecret inputs print as \[secret\] \(connection, kubeconfig, stdin, value of \d+ resources\); --show-secrets prints them\.\n/);
  const doc = JSON.parse(json);
  t.is(doc.config["kubeadm-ha:sshPrivateKey"], "[secret]");
  for (const name of ["cp-0-init", "cp-1-join", "worker-0-join"]) {
    const step = doc.resources.find((r: any) => r.name === name);
    t.is(step.inputs.stdin, "[secret]");
    t.is(step.inputs.connection.privateKey, "[secret]");
  }
  t.is(doc.resources.find((r: any) => r.name === "certificate-key").outputs.hex, "[secret]");
});

test("every secret key (Pulumi.yaml's secret: true, and the program's secretConfigKeys) is masked, also when the stack file holds it in plain text", (t) => {
  const project = parse(readFileSync(join(projectDir, "Pulumi.yaml"), "utf8"));
  const declared = [
    ...new Set([...Object.entries<any>(project.config).filter(([, d]) => d.secret === true).map(([k]) => `kubeadm-ha:${k}`), ...secretConfigKeys.map((k) => `kubeadm-ha:${k}`)]),
  ];
  t.true(declared.includes("kubeadm-ha:sshPrivateKey"));
  t.deepEqual(declaredSecretKeys(project).sort(), [...declared].sort());
  const dir = mkdtempSync(join(tmpdir(), "plan-secrets-"));
  try {
    copyFileSync(join(projectDir, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    const plain = Object.fromEntries(declared.map((k, i) => [k, `plain-text-secret-${i}-5d2a`]));
    writeFileSync(join(dir, "Pulumi.s.yaml"), JSON.stringify({ config: { "aws:region": "eu-west-1", ...plain } }));
    const { config, secretKeys } = loadStackConfig(dir, "s");
    t.deepEqual(declared.filter((k) => !secretKeys.includes(k)), []);
    const doc: any = renderJson(evaluation([]), config, secretKeys);
    for (const k of declared) t.is(doc.config[k], "[secret]");
    t.is(doc.config["aws:region"], "eu-west-1");
    t.is((renderJson(evaluation([]), config, secretKeys, undefined, true) as any).config[declared[0]], plain[declared[0]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a stack file holding sshPrivateKey in plain text is refused (exit 1), naming the key and the --secret command, without printing it; a secure value plans", async (t) => {
  const value = "plain-text-private-key-in-stack-file-8e1d";
  const dev = parse(readFileSync(join(projectDir, "Pulumi.dev.yaml"), "utf8"));
  const withKey = (key: unknown) => ({ config: { ...dev.config, "kubeadm-ha:ssh": { ...dev.config["kubeadm-ha:ssh"], publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlanTestKey test" }, "kubeadm-ha:sshPrivateKey": key } });
  const plain = `plain-key-${process.pid}`;
  const secure = `secure-key-${process.pid}`;
  writeFileSync(join(projectDir, `Pulumi.${plain}.yaml`), JSON.stringify(withKey(value)));
  writeFileSync(join(projectDir, `Pulumi.${secure}.yaml`), JSON.stringify(withKey({ secure: "v1:AAAAbm90LWRlY3J5cHRlZC1vZmZsaW5l" })));
  try {
    const err: any = await t.throwsAsync(plan(["--stack", plain]));
    t.is(err.code, 1);
    t.is(err.stderr.trim(), [
      "Invalid configuration:",
      "  sshPrivateKey: is a secret, but the stack holds it in plain text: set it with `pulumi config set --secret sshPrivateKey < KEY` (the stack file then keeps it encrypted)",
    ].join("\n"));
    t.false(`${err.stdout}${err.stderr}`.includes(value));
    const { stdout } = await plan(["--stack", secure]);
    t.regex(stdout, /^kubeadm-ha plan for stack "secure-key-\d+": \d+ resources/);
  } finally {
    rmSync(join(projectDir, `Pulumi.${plain}.yaml`), { force: true });
    rmSync(join(projectDir, `Pulumi.${secure}.yaml`), { force: true });
  }
});

test("secret values are filtered from printed text as the Pulumi CLI does: JSON-escaped too, not when shorter than 3 or true/false", (t) => {
  t.is(maskSecretValues("key=abc123 again abc123", ["abc123"]), "key=[secret] again [secret]");
  t.is(maskSecretValues('{"k":"line1\\nline2"}', ["line1\nline2"]), '{"k":"[secret]"}');
  t.is(maskSecretValues("ab true false", ["ab", "true", "False"]), "ab true false");
  t.is(maskSecretValues("token abcdef.0123", ["abcdef", "abcdef.0123"]), "token [secret]");
  t.is(maskSecretValues("unchanged", []), "unchanged");
});

test("--json is one JSON document on stdout even when the program logs: its log lines go to stderr", async (t) => {
  // A stack that declares a restore: the --set run sees it finished (the stack's own evaluation ran it) and logs so.
  const stack = `json-log-${process.pid}`;
  const stackFile = join(projectDir, `Pulumi.${stack}.yaml`);
  const dev = parse(readFileSync(join(projectDir, "Pulumi.dev.yaml"), "utf8"));
  writeFileSync(stackFile, JSON.stringify({ config: { ...dev.config, "kubeadm-ha:restore": { snapshot: "/var/lib/etcd-snapshots/snap-1.db", requestId: "r1" } } }));
  try {
    const { stdout, stderr } = await plan(["--stack", stack, "--set", "workers.count=3", "--json"]);
    t.regex(stderr, /restore r1 finished in an earlier run: nothing runs again/);
    t.false(stdout.includes("finished in an earlier run"));
    t.is(JSON.parse(stdout).stack, stack);
    const { stdout: text } = await plan(["--stack", stack, "--set", "workers.count=3"]);
    t.regex(text, /restore r1 finished in an earlier run/, "without --json the log stays with the plan on stdout");
  } finally {
    rmSync(stackFile, { force: true });
  }
});

test("the usage lists every flag, --show-secrets included", async (t) => {
  const { stdout } = await plan(["--help"]);
  for (const flag of ["--stack NAME", "--set KEY=VALUE", "--replace NAME", "--json", "--show-secrets"]) t.true(stdout.includes(`  ${flag} `), flag);
  const err: any = await t.throwsAsync(plan(["--show-secret"]));
  t.is(err.code, 1);
  t.regex(err.stderr, /unknown argument "--show-secret"; usage: npm run plan -- .*\[--show-secrets\]/);
});

test("invalid config: exit code 1 and the problems one per line", async (t) => {
  const err: any = await t.throwsAsync(plan(["--set", "kubernetesVersion=1.37.2", "--set", "cni.name=weave"]));
  t.is(err.code, 1);
  t.is(err.stderr.trim(), ["Invalid configuration:", '  cni.name: must be one of "cilium", "calico", "flannel", got "weave"'].join("\n"));
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
  t.regex(err!.message, /^Invalid configuration:\n {2}etcdTopology: the stack runs with stacked etcd and all cluster data lives there; switching to external in place would start an empty etcd, /);
  // Issue 14 item 3: no topology move by snapshot; what works instead.
  t.regex(err!.message, /an etcd snapshot restores only the cluster it came from/);
  t.regex(err!.message, /build a new cluster with etcdTopology: external \(its own stack\) and move the workloads to it with their manifests or Velero-style backups/);
  t.notRegex(err!.message, /take a snapshot|restore the snapshot there/);
  const fresh = await evaluateDev(["etcdTopology=external", "etcd={count: 3}"]);
  t.is(fresh.stackOutputs.etcdTopology, "external");
});

test("the skew guard reads the deployed version: a downgrade and a skipped minor are refused, a minor up is planned", async (t) => {
  const deployed = { kubernetesVersion: "1.35.9", etcdTopology: "stacked" };
  const down = await t.throwsAsync(evaluateDev(["kubernetesVersion=1.35.2"], deployed));
  t.is(down!.message, "Invalid configuration:\n  kubernetesVersion: 1.35.2 is older than the deployed 1.35.9; kubeadm cannot downgrade a cluster, and restoring an etcd snapshot brings back data, not older binaries: set kubernetesVersion back to 1.35.9 (an older release needs a new stack built at it)");
  const skip = await t.throwsAsync(evaluateDev(["kubernetesVersion=1.37.0"], deployed));
  t.regex(skip!.message, /kubernetesVersion: 1\.37\.0 skips a minor/);
  const up = await evaluateDev(["kubernetesVersion=1.36.3"], deployed);
  t.is(up.stackOutputs.kubernetesVersion, "1.36.3");
});

test("npm run plan shows a flip of apiAccess.internal as the provider would do it (the load balancer replaced) and notes that a deployed stack refuses it", async (t) => {
  const { stdout } = await plan(["--set", "apiAccess.internal=true"]);
  t.regex(stdout, /\n {2}replace \(internal, subnets\) aws:lb\/loadBalancer:LoadBalancer api-nlb\n/);
  t.regex(stdout, /\n {2}replace \(loadBalancerArn\) aws:lb\/listener:Listener api-api\n/);
  t.regex(stdout, /\nNote: apiAccess\.internal: shown as the provider would do it; a deployed stack refuses this change at preview: false → true replaces the API load balancer /);
});
