// Runs the program's Addons component INLINE under the real Pulumi CLI and the real Kubernetes provider, against a
// real API server, in a child process of its own (see inlineRun.ts for why). Prints one JSON line:
// { ok, text, outputs } (text: the CLI's output and the error).
//
//   node --import tsx test/support/addonsRun.ts DIR STACK up|preview|destroy KUBECONFIG ADDONS_JSON [--continue-on-error]
//     [--cni=JSON]   also the program's Cni component ({name, version, chartPath, values}, podCidr 10.244.0.0/16), whose
//                    provider the add-ons then go through, as in the program
//
// DIR is the project directory (Pulumi.yaml, the add-ons' paths; its state/ is the file backend). The add-ons are
// validated with the program's own reader, against DIR's files, exactly as the program does.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import * as pulumi from "@pulumi/pulumi";
import { Addons } from "../../infra/addons";
import { Cni } from "../../infra/cni";
import type { CniName } from "../../infra/config";
import { projectFiles, readAddons } from "../../infra/addonsConfig";
import { engineEnv } from "./inlineRun";
import { realToolsDir } from "./realTools";

async function main(): Promise<void> {
  const [dir, stackName, op, kubeconfigPath, addonsJson, ...flags] = process.argv.slice(2);
  const env: Record<string, string> = {
    ...engineEnv(dir),
    // Helm's own caches and config (the provider's Helm SDK reads and writes them) stay in the test directory.
    HELM_CACHE_HOME: join(dir, "helm", "cache"),
    HELM_CONFIG_HOME: join(dir, "helm", "config"),
    HELM_DATA_HOME: join(dir, "helm", "data"),
  };
  const program = async () => {
    const { addons, problems } = readAddons(JSON.parse(addonsJson), projectFiles(dir));
    if (problems.length > 0) throw new Error(problems.map((p) => `${p.path}: ${p.message}`).join("; "));
    const kubeconfig = readFileSync(kubeconfigPath, "utf8");
    const cniFlag = flags.find((f) => f.startsWith("--cni="));
    if (cniFlag) {
      const c = JSON.parse(cniFlag.slice("--cni=".length)) as { name: CniName; version: string; chartPath?: string; values?: Record<string, unknown> };
      const cni = new Cni("cni", { ...c, podCidr: "10.244.0.0/16", kubeconfig: pulumi.secret(kubeconfig), clusterIdentifier: "addons-test", dependsOn: [] });
      const installed = new Addons("addons", { addons, provider: cni.provider, after: [cni] });
      return { installed: [...installed.installs.keys()], cniStatus: cni.release.status.status };
    }
    const provider = new k8s.Provider("k8s", { kubeconfig, enableServerSideApply: true, clusterIdentifier: "addons-test" });
    const installed = new Addons("addons", { addons, provider, after: [] });
    return { installed: [...installed.installs.keys()] };
  };
  const pulumiCommand = await PulumiCommand.get({ root: realToolsDir });
  const stack = await LocalWorkspace.createOrSelectStack({ projectName: "addons-test", stackName, program }, { workDir: dir, pulumiCommand, envVars: env, pulumiHome: env.PULUMI_HOME });
  let text = "";
  const onOutput = (s: string) => (text += s);
  try {
    if (op === "up") await stack.up({ onOutput, continueOnError: flags.includes("--continue-on-error") });
    else if (op === "destroy") await stack.destroy({ onOutput });
    else await stack.preview({ onOutput, diff: true });
    const outputs = op === "preview" ? {} : Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));
    process.stdout.write(`${JSON.stringify({ ok: true, text, outputs })}\n`);
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ ok: false, text: `${text}\n${String(e)}`, outputs: {} })}\n`);
  }
  process.exit(0);
}

if (require.main === module) void main();
