// The real tools `npm run tools` built (test/tools/tools.sh), for the `npm run test:real` tier. Paths come from the
// cache's tools.tsv only: never from PATH, never a stub. A missing tool is an error that says how to build it.
import { accessSync, constants, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** The tool cache: $KUBEADM_HA_TOOLS, else ~/.cache/kubeadm-ha/tools (as test/tools/tools.sh). */
export const realToolsDir: string = process.env.KUBEADM_HA_TOOLS || join(homedir(), ".cache", "kubeadm-ha", "tools");

export interface RealTool {
  name: string;
  /** vX.Y.Z as the binary reports it. */
  version: string;
  path: string;
}

let cached: RealTool[] | undefined;

/** Every tool of tools.tsv. */
export function realTools(): RealTool[] {
  if (cached) return cached;
  const tsv = join(realToolsDir, "tools.tsv");
  let text: string;
  try {
    text = readFileSync(tsv, "utf8");
  } catch {
    throw new Error(`no real tools in ${realToolsDir} (${tsv} is missing): run npm run tools`);
  }
  cached = text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [name, version, path] = line.split("\t");
      return { name, version, path };
    });
  return cached;
}

/** The path of NAME, at `minor` ("1.36") or exact `version` when given, else the newest pinned version. */
export function realTool(name: string, version?: string): string {
  const all = realTools().filter((t) => t.name === name);
  const want = version === undefined ? all : all.filter((t) => t.version === `v${version}` || t.version.startsWith(`v${version}.`));
  const tool = want[want.length - 1];
  if (!tool) {
    const have = all.map((t) => t.version).join(", ") || "none";
    throw new Error(`real tool ${name}${version ? ` ${version}` : ""} is not built (have: ${have}): run npm run tools`);
  }
  accessSync(tool.path, constants.X_OK);
  return tool.path;
}

/** The vX.Y.Z of the tool realTool(name, version) returns. */
export function realToolVersion(name: string, version?: string): string {
  const path = realTool(name, version);
  return realTools().find((t) => t.path === path)!.version;
}

/** The Kubernetes minors that have a real kubeadm, oldest first ("1.35", "1.36"). */
export function kubeadmMinors(): string[] {
  return realTools()
    .filter((t) => t.name === "kubeadm")
    .map((t) => t.version.replace(/^v(\d+\.\d+)\..*$/, "$1"));
}

/** The Pulumi binaries `npm run tools` builds from ../shared/third_party (the Go module proxy refuses their modules). */
export const thirdPartyTools = ["pulumi-resource-command", "pulumi-resource-random", "pulumi-resource-tls", "pulumi-language-nodejs"] as const;

/**
 * Why the program cannot run under the real CLI here: one reason per missing third-party binary (none when all are
 * built). A tests that needs them reports itself skipped with these reasons; any other missing tool is an error, as
 * everywhere in the real tier.
 */
export function missingEngineTools(): string[] {
  const have = new Set(realTools().map((t) => t.name));
  for (const name of ["pulumi", "pulumi-resource-kubernetes", "kubectl", "kube-apiserver", "kwok"]) realTool(name);
  return thirdPartyTools
    .filter((name) => !have.has(name))
    .map((name) => `${name} is not built (npm run tools builds it from ../shared/third_party, which this machine lacks; a machine with internet access gets it from \`pulumi plugin install\` or with the Pulumi CLI)`);
}
