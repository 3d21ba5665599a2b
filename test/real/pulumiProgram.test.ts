// The program under the REAL Pulumi engine (the CLI `npm run tools` builds), as far as it can run here: the Go module
// proxy refuses the command/random/tls/aws resource plugins and pulumi-language-nodejs, so the program runs INLINE
// (@pulumi/pulumi's automation API: the program runs in this process, the CLI drives it) in a directory holding the
// project's own Pulumi.yaml and a stack file, on a local file backend. What needs no resource plugin is real:
// - how the CLI reads Pulumi.yaml's config schema (types, defaults) and hands the stack config to the program;
// - the StackReference of the stack to itself, and the refusals the program makes from the deployed outputs it reads
//   (a topology switch, a downgrade) before it registers any resource.
// Every run gets an HTTP(S) proxy on a closed loopback port: a download the CLI would attempt fails the test.
import test from "ava";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalWorkspace, PulumiCommand, type InlineProgramArgs, type Stack } from "@pulumi/pulumi/automation";
import { stringify } from "yaml";
import { isUnset, parseConfigValue, projectName, readRawConfig } from "../../infra/config";
import { loadStackConfig } from "../../infra/offline/plan";
import { engineEnv } from "../support/inlineRun";
import { realTool, realToolsDir } from "../support/realTools";
import { projectRoot } from "../support/tools";

const LONG = 300_000;
const work = mkdtempSync(join(tmpdir(), "kubeadm-ha-program-"));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

/** A directory with the project's Pulumi.yaml and Pulumi.<stack>.yaml holding `config` (keys without namespace). */
function projectDir(name: string, stack: string, config: Record<string, unknown>): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "state"), { recursive: true });
  cpSync(join(projectRoot, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  writeFileSync(join(dir, `Pulumi.${stack}.yaml`), stringify({ config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`${projectName}:${k}`, v])) }));
  return dir;
}

async function inlineStack(dir: string, stack: string, program: InlineProgramArgs["program"]): Promise<Stack> {
  const env = engineEnv(dir);
  const pulumiCommand = await PulumiCommand.get({ root: realToolsDir });
  if (realpathSync(pulumiCommand.command) !== realpathSync(realTool("pulumi"))) throw new Error(`the automation API would run ${pulumiCommand.command}, not the built CLI`);
  return LocalWorkspace.createOrSelectStack({ projectName, stackName: stack, program }, { workDir: dir, pulumiCommand, envVars: env, pulumiHome: env.PULUMI_HOME });
}

/** A run of the program (or a stand-in exporting `outputs`) in a child process (test/support/inlineRun.ts). */
function inlineRun(dir: string, stack: string, op: "preview" | "up", program: "program" | Record<string, unknown>, sets: string[] = []): { ok: boolean; text: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(projectRoot, "test", "support", "inlineRun.ts"), dir, stack, op, program === "program" ? program : `outputs:${JSON.stringify(program)}`, ...sets], { cwd: projectRoot, encoding: "utf8", timeout: LONG });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  if (!last.startsWith("{")) throw new Error(`inlineRun printed no result (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(last) as { ok: boolean; text: string };
}

test.serial("real pulumi: the CLI accepts a stack that sets only some keys (every declared key has a default) and hands the program Pulumi.yaml's defaults and the stack's values, as the offline plan does", async (t) => {
  t.timeout(LONG);
  const stackValues = {
    kubernetesVersion: "1.36.3",
    workers: { count: 4, instanceType: "m6i.xlarge", volumeGiB: 100, maxUnavailable: 2 },
    maintenance: ["worker-1"],
    apiAccess: { allowedCidrs: ["10.20.0.0/16"], internal: true },
  };
  const dir = projectDir("schema", "dev", stackValues);
  const stack = await inlineStack(dir, "dev", async () => ({ raw: JSON.stringify(readRawConfig().raw) }));
  const up = await stack.up();
  const seen = JSON.parse(up.outputs.raw.value as string) as Record<string, unknown>;
  const offline = loadStackConfig(dir, "dev").config;
  const expected = Object.fromEntries(
    Object.entries(offline)
      .filter(([k]) => k.startsWith(`${projectName}:`) && k !== `${projectName}:sshPrivateKey`)
      .map(([k, v]) => [k.slice(projectName.length + 1), parseConfigValue(v)] as const)
      .filter(([, v]) => !isUnset(v)),
  );
  t.deepEqual(seen, expected, "the program sees under the real CLI exactly what the offline plan evaluates");
  t.deepEqual(seen.workers, stackValues.workers);
  t.deepEqual(seen.snapshots, { schedule: "*-*-* 00/6:00:00", keep: 5, retentionDays: 30 }, "object defaults from Pulumi.yaml arrive whole");
  t.is(seen.etcdTopology, "stacked", "string defaults too");
  for (const key of ["apiEndpoint", "etcd", "restore", "sshPrivateKey"]) t.false(key in seen, `${key}: not set, or its placeholder default, reads as not set`);
});

test.serial("real pulumi: sshPrivateKey set with pulumi config set --secret reaches the program as a secret", async (t) => {
  t.timeout(LONG);
  const dir = projectDir("key", "dev", {});
  const stack = await inlineStack(dir, "dev", async () => {
    const { raw, sshPrivateKey } = readRawConfig();
    return { present: raw.sshPrivateKey !== undefined, key: sshPrivateKey };
  });
  await stack.setConfig(`${projectName}:sshPrivateKey`, { value: "-----BEGIN OPENSSH PRIVATE KEY-----\ntest\n", secret: true });
  const up = await stack.up();
  t.is(up.outputs.present.value, true);
  t.true(up.outputs.key.secret, "a secret output");
  const exported = spawnSync(realTool("pulumi"), ["stack", "export", "--stack", "dev", "--cwd", dir, "--non-interactive"], { env: engineEnv(dir), encoding: "utf8" });
  t.is(exported.status, 0, exported.stderr);
  t.notRegex(exported.stdout, /BEGIN OPENSSH PRIVATE KEY/, "and encrypted in state");
  t.regex(exported.stdout, /"ciphertext"/);
});

test.serial("real pulumi: sshPrivateKey set with a plain pulumi config set (no --secret) is refused by the program at preview, naming the key and the --secret command, before any resource; set with --secret it goes on", (t) => {
  t.timeout(LONG);
  const config = { ssh: { allowedCidrs: ["203.0.113.0/24"], publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlanTestKey test" } };
  const plainDir = projectDir("plain-key", "dev", config);
  const plain = inlineRun(plainDir, "dev", "preview", "program", ["sshPrivateKey=plain-text-key-e41b"]);
  t.false(plain.ok);
  t.regex(plain.text, /sshPrivateKey: is a secret, but the stack holds it in plain text: set it with `pulumi config set --secret sshPrivateKey < KEY`/);
  t.notRegex(plain.text, /no resource plugin/, "refused before any resource was registered");
  t.regex(readFileSync(join(plainDir, "Pulumi.dev.yaml"), "utf8"), /plain-text-key-e41b/, "the CLI itself kept it in plain text");

  const secretDir = projectDir("secret-key", "dev", config);
  // The stack must exist before `pulumi config set`: a stand-in program's preview creates it.
  const created = inlineRun(secretDir, "dev", "preview", {});
  t.true(created.ok, created.text);
  const set = spawnSync(realTool("pulumi"), ["config", "set", "--secret", "--stack", "dev", "--cwd", secretDir, "--non-interactive", "sshPrivateKey", "secret-key-e41b"], { env: engineEnv(secretDir), encoding: "utf8" });
  t.is(set.status, 0, set.stderr);
  const secret = inlineRun(secretDir, "dev", "preview", "program");
  t.notRegex(secret.text, /holds it in plain text/);
  t.regex(secret.text, /no resource plugin 'pulumi-resource-/, "past validation, the first resource needs a plugin");
});

test.serial("real pulumi: one add-on value set with pulumi config set --secret --path makes the addons key secret to the program, and the value is encrypted in the stack file", async (t) => {
  t.timeout(LONG);
  const dir = projectDir("addon-secret", "dev", {});
  const stack = await inlineStack(dir, "dev", async () => ({ secretKeys: readRawConfig().secretKeys }));
  const set = (args: string[]) => spawnSync(realTool("pulumi"), ["config", "set", "--stack", "dev", "--cwd", dir, "--non-interactive", "--path", ...args], { env: engineEnv(dir), encoding: "utf8" });
  for (const args of [["addons[0].name", "db"], ["addons[0].helm.path", "charts/db"], ["--secret", "addons[0].helm.values.password", "s3cr3t-value"]]) {
    const r = set(args);
    t.is(r.status, 0, r.stderr);
  }
  t.notRegex(readFileSync(join(dir, "Pulumi.dev.yaml"), "utf8"), /s3cr3t-value/);
  const up = await stack.up();
  t.deepEqual(up.outputs.secretKeys.value, ["addons"]);
});

test.serial("real pulumi: the CLI refuses a value of the wrong type for a key Pulumi.yaml declares, naming the key, before the program runs", (t) => {
  const dir = projectDir("types", "dev", { workers: "three" });
  const r = inlineRun(dir, "dev", "preview", "program");
  t.false(r.ok);
  t.regex(r.text, /workers/);
  t.notRegex(r.text, /Invalid configuration/, "the CLI refused it: the program's own validation never ran");
});

const deployedOutputs = {
  kubernetesVersion: "1.36.3",
  etcdTopology: "stacked",
  nodes: [
    { name: "cp-0", role: "control-plane" },
    { name: "cp-1", role: "control-plane" },
    { name: "cp-2", role: "control-plane" },
    { name: "worker-0", role: "worker" },
  ],
};

test.serial("real pulumi: through its StackReference to itself the program reads the deployed outputs and refuses a topology switch and a downgrade at preview, before any resource", (t) => {
  const dir = projectDir("deployed", "prod", { kubernetesVersion: "1.36.3", etcdTopology: "stacked", controlPlane: { count: 3 }, workers: { count: 1 }, ssh: { allowedCidrs: ["203.0.113.0/24"] } });
  // Stand-in for the deployed cluster: a stack whose outputs are the ones the program exports (a real deployment
  // needs the resource plugins this machine cannot build).
  const deployed = inlineRun(dir, "prod", "up", deployedOutputs);
  t.true(deployed.ok, deployed.text);

  const fresh = inlineRun(projectDir("fresh", "prod", { etcdTopology: "external", ssh: { allowedCidrs: ["203.0.113.0/24"] } }), "prod", "preview", "program");
  t.notRegex(fresh.text, /etcdTopology/, "a new stack may pick either topology: nothing is deployed");

  const topology = inlineRun(dir, "prod", "preview", "program", ["etcdTopology=external"]);
  t.false(topology.ok);
  t.regex(topology.text, /etcdTopology: the stack runs with stacked etcd/);
  t.notRegex(topology.text, /no resource plugin/, "refused before any resource was registered");

  const downgrade = inlineRun(dir, "prod", "preview", "program", ["etcdTopology=stacked", "kubernetesVersion=1.35.4"]);
  t.false(downgrade.ok);
  t.regex(downgrade.text, /kubernetesVersion: 1\.35\.4 is older than the deployed 1\.36\.3/);

  // An allowed change passes the checks and goes on to register the cluster, which needs plugins this machine lacks.
  const allowed = inlineRun(dir, "prod", "preview", "program", ["kubernetesVersion=1.37.0"]);
  t.notRegex(allowed.text, /older than the deployed|etcdTopology:/);
  t.regex(allowed.text, /no resource plugin 'pulumi-resource-/, "past the checks, the first resource needs a plugin");
});
