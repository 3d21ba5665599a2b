// Runs this program INLINE under the real Pulumi CLI (@pulumi/pulumi's automation API), in a child process of its
// own: a program that throws (a refused configuration) leaves rejections in the SDK's gRPC handlers, which would
// fail the test process that ran it. Prints one JSON line: { ok, text } (text: the CLI's output and the error).
//
//   node --import tsx test/support/inlineRun.ts DIR STACK preview|up program|outputs:JSON [KEY=VALUE...]
//
// DIR holds Pulumi.yaml and Pulumi.STACK.yaml; its state/ is the file backend. "program" runs runProgram; "outputs:JSON"
// runs a program that only exports those outputs (a stand-in for a deployed stack). KEY=VALUE pairs are set with
// `pulumi config set` (namespaced kubeadm-ha:) before the run.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { projectName } from "../../infra/config";
import { runProgram } from "../../infra/program";
import { realToolsDir } from "./realTools";
import { projectRoot } from "./tools";

/** The environment after `eval "$(npm run -s tools -- --env)"`, a file backend in dir/state, and a download guard. */
export function engineEnv(dir: string): Record<string, string> {
  const r = spawnSync("bash", ["-c", 'eval "$(bash test/tools/tools.sh --env)" && env -0'], { cwd: projectRoot, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tools.sh --env failed: ${r.stderr}`);
  const env: Record<string, string> = {};
  for (const kv of r.stdout.split("\0").filter(Boolean)) env[kv.slice(0, kv.indexOf("="))] = kv.slice(kv.indexOf("=") + 1);
  // Every run gets an HTTP(S) proxy on a closed loopback port: a download the CLI would attempt fails.
  for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]) env[k] = "http://127.0.0.1:9";
  env.NO_PROXY = env.no_proxy = "127.0.0.1,localhost,::1";
  return { ...env, PULUMI_BACKEND_URL: `file://${join(dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: "kubeadm-ha real engine test" };
}

async function main(): Promise<void> {
  const [dir, stackName, op, programArg, ...sets] = process.argv.slice(2);
  const env = engineEnv(dir);
  const program = programArg === "program" ? runProgram : async () => JSON.parse(programArg.replace(/^outputs:/, "")) as Record<string, unknown>;
  const pulumiCommand = await PulumiCommand.get({ root: realToolsDir });
  const stack = await LocalWorkspace.createOrSelectStack({ projectName, stackName, program }, { workDir: dir, pulumiCommand, envVars: env, pulumiHome: env.PULUMI_HOME });
  for (const kv of sets) {
    const i = kv.indexOf("=");
    await stack.setConfig(`${projectName}:${kv.slice(0, i)}`, { value: kv.slice(i + 1) });
  }
  let text = "";
  const onOutput = (s: string) => (text += s);
  try {
    if (op === "up") await stack.up({ onOutput });
    else await stack.preview({ onOutput });
    process.stdout.write(`${JSON.stringify({ ok: true, text })}\n`);
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ ok: false, text: `${text}\n${String(e)}` })}\n`);
  }
  process.exit(0);
}

if (require.main === module) void main();
