// The REAL Pulumi CLI that `npm run tools` builds from its Go module (test/tools/tools.sh; test/support/realTools.ts
// resolves it from tools.tsv), run with exactly the environment `npm run tools -- --env` exports: the cache's own
// PULUMI_HOME, automatic plugin acquisition, update checks and registry look-ups off. Every run here also gets an
// HTTP(S) proxy on a closed loopback port, so a download the CLI would attempt fails the test instead of going out.
// Stacks live on a local file backend in a temporary directory (PULUMI_BACKEND_URL=file://..., passphrase secrets).
//
// The CLI itself, TypeScript programs INLINE through @pulumi/pulumi's automation API, and the plugins npm run tools
// registers: the Kubernetes provider (test/real/addons.test.ts uses it) and the command, random and tls providers and
// the nodejs language host built from ../shared/third_party (test/real/endToEnd.test.ts runs the program with them).
import test, { type ExecutionContext } from "ava";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand, type InlineProgramArgs } from "@pulumi/pulumi/automation";
import semver from "semver";
import { missingEngineTools, realTool, realToolsDir, realToolVersion } from "../support/realTools";

const ROOT = join(__dirname, "..", "..");
const LONG = 240_000; // the CLI compiles a TypeScript project on every up/destroy

const sdkVersion: string = JSON.parse(readFileSync(join(ROOT, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")).version;

/** The environment after `eval "$(npm run -s tools -- --env)"`, plus the download guard. */
function toolsEnv(): Record<string, string> {
  const r = spawnSync("bash", ["-c", 'eval "$(bash test/tools/tools.sh --env)" && env -0'], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tools.sh --env failed: ${r.stderr}`);
  const env: Record<string, string> = {};
  for (const kv of r.stdout.split("\0").filter(Boolean)) {
    const i = kv.indexOf("=");
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) env[k] = "http://127.0.0.1:9";
  env.NO_PROXY = env.no_proxy = "127.0.0.1,localhost,::1";
  return env;
}
const env = toolsEnv();

/** A fresh file backend (and a place for projects) per test. */
function scratch(t: ExecutionContext): { dir: string; env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), "kubeadm-ha-pulumi-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "state"));
  return { dir, env: { ...env, PULUMI_BACKEND_URL: `file://${join(dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: "test" } };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
function run(cmd: string, args: string[], opts: { cwd?: string; env: Record<string, string>; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? LONG);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
/** Runs `pulumi ARGS` as the shell after --env would: PATH decides which pulumi (and language host) runs. */
const pulumiCli = (args: string[], opts: { cwd?: string; env: Record<string, string> }) =>
  run("pulumi", [...args, "--non-interactive"], opts);

test("the --env shell resolves pulumi to the built CLI, which reports its pinned version, not older than the SDK", async (t) => {
  const cli = realTool("pulumi");
  const version = realToolVersion("pulumi");
  t.is(realpathSync(spawnSync("bash", ["-c", "command -v pulumi"], { env, encoding: "utf8" }).stdout.trim()), realpathSync(cli));
  t.is(env.PULUMI_HOME, join(realToolsDir, "pulumi-home"));
  t.true(existsSync(env.PULUMI_HOME), "npm run tools creates the cache's PULUMI_HOME");
  for (const k of ["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "PULUMI_SKIP_UPDATE_CHECK", "PULUMI_DISABLE_REGISTRY_RESOLVE"]) {
    t.is(env[k], "true", k);
  }
  const r = await pulumiCli(["version"], { env });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), version);
  t.true(semver.gte(version, sdkVersion), `CLI ${version} is older than @pulumi/pulumi ${sdkVersion}`);
});

test("pulumi plugin ls runs offline against the cache's PULUMI_HOME", async (t) => {
  const r = await pulumiCli(["plugin", "ls", "--json"], { env });
  t.is(r.code, 0, r.stderr);
  const listed: { name: string; kind: string; version: string }[] = JSON.parse(r.stdout || "[]") ?? [];
  t.true(Array.isArray(listed));
  t.true(listed.some((p) => p.name === "kubernetes" && p.kind === "resource" && p.version === "4.34.2"), `the Kubernetes provider is registered: ${r.stdout}`);
  // The providers built from ../shared/third_party, each at exactly the version its npm package requests.
  if (missingEngineTools().length === 0) {
    for (const name of ["command", "random", "tls"]) {
      const wanted = JSON.parse(readFileSync(join(ROOT, "node_modules", "@pulumi", name, "package.json"), "utf8")).pulumi.version as string;
      t.true(listed.some((p) => p.name === name && p.kind === "resource" && p.version === wanted), `${name} ${wanted} is registered: ${r.stdout}`);
    }
  }
  // Whatever is installed came from npm run tools: an exact-version directory, never a half-finished download.
  const dir = join(env.PULUMI_HOME, "plugins");
  if (existsSync(dir)) t.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".partial")), []);
});

/** An inline program's stack on the real CLI (the same one `pulumi` on the --env PATH is). */
async function inlineStack(s: { dir: string; env: Record<string, string> }, program: InlineProgramArgs["program"]) {
  const pulumiCommand = await PulumiCommand.get({ root: realToolsDir });
  if (realpathSync(pulumiCommand.command) !== realpathSync(realTool("pulumi"))) {
    throw new Error(`the automation API would run ${pulumiCommand.command}, not the built CLI`);
  }
  return LocalWorkspace.createOrSelectStack(
    { projectName: "toolsprobe", stackName: "test", program },
    { pulumiCommand, envVars: s.env, pulumiHome: s.env.PULUMI_HOME },
  );
}

test.serial("the real CLI runs an inline TypeScript program up and destroy on a file backend, offline", async (t) => {
  t.timeout(LONG);
  const s = scratch(t);
  const stack = await inlineStack(s, async () => {
    const parent = new pulumi.ComponentResource("toolsprobe:index:Parent", "parent", {});
    return { greeting: pulumi.output("hi"), parent: parent.urn };
  });
  let log = "";
  const up = await stack.up({ onOutput: (o) => (log += o) });
  t.is(up.summary.result, "succeeded", log);
  t.is(up.outputs.greeting.value, "hi");
  t.is(up.outputs.parent.value, "urn:pulumi:test::toolsprobe::toolsprobe:index:Parent::parent");
  t.is(up.summary.resourceChanges?.create, 2, log); // the stack and the component
  const down = await stack.destroy({ onOutput: (o) => (log += o) });
  t.is(down.summary.result, "succeeded", log);
  t.deepEqual((await stack.exportStack()).deployment.resources ?? [], []);
});

test("a resource whose plugin version is not installed fails at once, naming it; nothing is downloaded", async (t) => {
  t.timeout(LONG);
  const s = scratch(t);
  // In a child process: the failed update leaves the runtime's last RPCs rejected after the CLI has gone, which would
  // count as unhandled rejections here. A version no PULUMI_HOME has: the CLI must report it, not fetch it.
  const script = join(s.dir, "missingPlugin.js");
  const mod = (m: string) => JSON.stringify(join(ROOT, "node_modules", m));
  writeFileSync(
    script,
    `const random = require(${mod("@pulumi/random")});
const { LocalWorkspace, PulumiCommand } = require(${mod("@pulumi/pulumi/automation")});
(async () => {
  const pulumiCommand = await PulumiCommand.get({ root: ${JSON.stringify(realToolsDir)} });
  const stack = await LocalWorkspace.createOrSelectStack(
    { projectName: "toolsprobe", stackName: "test",
      program: async () => { new random.RandomPassword("pw", { length: 16 }, { version: "0.0.1-not-installed" }); } },
    { pulumiCommand, envVars: process.env, pulumiHome: process.env.PULUMI_HOME },
  );
  let log = "";
  try {
    await stack.up({ onOutput: (o) => (log += o) });
    console.log("RESULT: up succeeded\\n" + log);
  } catch (e) {
    console.log("RESULT: up failed\\n" + log + "\\n" + e.message);
  }
  process.exit(0);
})();
`,
  );
  const r = await run(process.execPath, [script], { env: s.env });
  const text = r.stdout + r.stderr;
  t.regex(text, /^RESULT: up failed$/m, text);
  t.regex(text, /no resource plugin 'pulumi-resource-random' found in the workspace at version v0\.0\.1-not-installed/);
  t.notRegex(text, /[Dd]ownloading|127\.0\.0\.1:9/);
  const dir = join(s.env.PULUMI_HOME, "plugins");
  t.deepEqual(existsSync(dir) ? readdirSync(dir).filter((f) => f.includes("0.0.1-not-installed")) : [], []);
});
