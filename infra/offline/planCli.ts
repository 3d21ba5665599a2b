// `npm run plan -- [--stack NAME] [--set KEY=VALUE]... [--replace NAME]... [--json] [--show-secrets]`: the program
// evaluated offline, no cloud, no CLI.
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { format } from "node:util";
import { projectName } from "../config";
import { runProgram } from "../program";
import { machineChangeKeys } from "../deployedState";
import { ConfigError } from "../validate";
import { Evaluation, evaluate } from "./engine";
import { applyOverrides, diffEvaluations, loadStackConfig, mapStrings, maskSecretValues, renderHuman, renderJson, secretConfigValues } from "./plan";

export const usage = [
  "usage: npm run plan -- [--stack NAME] [--set KEY=VALUE]... [--replace NAME]... [--json] [--show-secrets]",
  "  --stack NAME      the stack file Pulumi.NAME.yaml (default dev)",
  "  --set KEY=VALUE   override a config value (dotted paths reach inside objects; VALUE is YAML); shows the diff;",
  "                    a secret key (sshPrivateKey) set so counts as pulumi config set --secret",
  "  --replace NAME    replace a resource, as pulumi up --replace would; shows the diff",
  "  --json            one JSON document on stdout: config, resources (inputs, outputs, options, dependencies), diff;",
  "                    the program's log lines go to stderr",
  "  --show-secrets    print secret values (kubeadm init/join configuration, tokens, keys) in plain text,",
  "                    as pulumi preview --show-secrets; without it every secret prints as [secret]",
  "  --help            this text",
].join("\n");

interface Args {
  stack: string;
  sets: string[];
  /** Resource names to replace, as `pulumi up --replace` would (worker-3: a new machine for that node). */
  replace: string[];
  json: boolean;
  /** Secrets in plain text, as `pulumi preview --show-secrets`. Default false: every secret prints as "[secret]". */
  showSecrets: boolean;
  help: boolean;
}

export function parseArgs(argv: string[]): Args {
  const args: Args = { stack: "dev", sets: [], replace: [], json: false, showSecrets: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") args.json = true;
    else if (a === "--show-secrets") args.showSecrets = true;
    else if (a === "--help" || a === "-h") args.help = true;
    else if (a === "--stack") args.stack = argv[++i] ?? "";
    else if (a.startsWith("--stack=")) args.stack = a.slice("--stack=".length);
    else if (a === "--set") args.sets.push(argv[++i] ?? "");
    else if (a.startsWith("--set=")) args.sets.push(a.slice("--set=".length));
    else if (a === "--replace") args.replace.push(argv[++i] ?? "");
    else if (a.startsWith("--replace=")) args.replace.push(a.slice("--replace=".length));
    else throw new Error(`unknown argument "${a}"; ${usage}`);
  }
  return args;
}

/** Evaluates the program for a stack config; `deployed` stands in for the stack's previous outputs. */
export function evaluateStack(stack: string, config: Record<string, string>, secretKeys: string[], deployed?: Record<string, unknown>, replace?: string[]): Promise<Evaluation> {
  return evaluate({ project: projectName, stack, config, secretKeys, deployedOutputs: deployed, program: runProgram, replace });
}

/**
 * Important: without --show-secrets nothing written to stdout or stderr holds the value of a secret config key.
 * Besides the engine's masking of secret inputs and outputs, every string printed (the plan, errors, and the
 * program's log messages, which Pulumi's runtime writes to the console when offline) passes `maskSecretValues`.
 */
async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const projectDir = join(__dirname, "..", "..");
  const base = loadStackConfig(projectDir, args.stack);
  const config = applyOverrides(base.config, args.sets);
  const secrets = secretConfigValues([base.config, config], base.secretKeys);
  const mask = (s: string) => (args.showSecrets ? s : maskSecretValues(s, secrets));
  // With --json, stdout holds the one document: the program's log lines (Pulumi's runtime prints info with
  // console.log when offline) go to stderr.
  for (const level of ["log", "info", "warn", "error"] as const) {
    const write = args.json && (level === "log" || level === "info") ? console.error.bind(console) : console[level].bind(console);
    console[level] = (...parts: unknown[]) => write(mask(format(...parts)));
  }
  try {
    return await planStack(args, base, config, mask, projectDir);
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : `plan failed: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`${mask(message)}\n`);
    return 1;
  }
}

async function planStack(args: Args, base: ReturnType<typeof loadStackConfig>, config: Record<string, string>, mask: (s: string) => string, projectDir: string): Promise<number> {
  const started = performance.now();
  let evaluation: Evaluation;
  let diff;
  const notes: string[] = [];
  if (args.sets.length > 0 || args.replace.length > 0) {
    // The stack's own config stands for what is deployed: its evaluation gives the "previous outputs".
    const before = await evaluateStack(args.stack, base.config, base.secureKeys);
    const deployed = { ...before.stackOutputs };
    const topology = config[`${projectName}:etcdTopology`];
    if (topology !== undefined && topology !== deployed.etcdTopology) {
      // A deployed stack refuses a topology switch (pulumi preview fails naming etcdTopology); the plan shows what
      // a new stack with the other topology would build.
      notes.push(`etcdTopology ${deployed.etcdTopology} → ${topology}: shown as a new stack would be built; a deployed stack refuses this switch at preview.`);
      delete deployed.etcdTopology;
    }
    evaluation = await evaluateStack(args.stack, config, base.secureKeys, deployed, args.replace).catch((err: unknown) => {
      // A deployed stack refuses a change the AWS provider would make to every machine at once (pulumi preview fails
      // naming the key); the plan shows what the provider would do, and says so.
      const refused = err instanceof ConfigError ? err.problems.filter((p) => machineChangeKeys.includes(p.path)) : [];
      if (refused.length === 0 || refused.length !== (err as ConfigError).problems.length) throw err;
      for (const p of refused) notes.push(`${p.path}: shown as the provider would do it; a deployed stack refuses this change at preview: ${p.message}`);
      delete deployed.machines;
      return evaluateStack(args.stack, config, base.secureKeys, deployed, args.replace);
    });
    diff = diffEvaluations(before, evaluation, args.replace);
  } else {
    evaluation = await evaluateStack(args.stack, base.config, base.secureKeys);
  }
  const seconds = (performance.now() - started) / 1000;
  if (args.json) {
    const doc = mapStrings(renderJson(evaluation, config, base.secretKeys, diff, args.showSecrets), mask);
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    const text = [renderHuman(evaluation, { stack: args.stack, seconds, diff, showSecrets: args.showSecrets, projectDir }), ...notes.map((note) => `Note: ${note}`)].join("\n");
    process.stdout.write(`${mask(text)}\n`);
  }
  return 0;
}

// exitCode, not exit(): a large --json document must finish flushing to a pipe.
main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`plan failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
