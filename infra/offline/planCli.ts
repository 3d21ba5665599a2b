// `npm run plan -- [--stack NAME] [--set KEY=VALUE]... [--json]`: the program evaluated offline, no cloud, no CLI.
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { projectName } from "../config";
import { runProgram } from "../program";
import { ConfigError } from "../validate";
import { Evaluation, evaluate } from "./engine";
import { applyOverrides, diffEvaluations, loadStackConfig, renderHuman, renderJson } from "./plan";

interface Args {
  stack: string;
  sets: string[];
  /** Resource names to replace, as `pulumi up --replace` would (worker-3: a new machine for that node). */
  replace: string[];
  json: boolean;
}

export function parseArgs(argv: string[]): Args {
  const args: Args = { stack: "dev", sets: [], replace: [], json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") args.json = true;
    else if (a === "--stack") args.stack = argv[++i] ?? "";
    else if (a.startsWith("--stack=")) args.stack = a.slice("--stack=".length);
    else if (a === "--set") args.sets.push(argv[++i] ?? "");
    else if (a.startsWith("--set=")) args.sets.push(a.slice("--set=".length));
    else if (a === "--replace") args.replace.push(argv[++i] ?? "");
    else if (a.startsWith("--replace=")) args.replace.push(a.slice("--replace=".length));
    else throw new Error(`unknown argument "${a}"; usage: npm run plan -- [--stack NAME] [--set KEY=VALUE]... [--replace NAME]... [--json]`);
  }
  return args;
}

/** Evaluates the program for a stack config; `deployed` stands in for the stack's previous outputs. */
export function evaluateStack(stack: string, config: Record<string, string>, secretKeys: string[], deployed?: Record<string, unknown>, replace?: string[]): Promise<Evaluation> {
  return evaluate({ project: projectName, stack, config, secretKeys, deployedOutputs: deployed, program: runProgram, replace });
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const projectDir = join(__dirname, "..", "..");
  const base = loadStackConfig(projectDir, args.stack);
  const started = performance.now();
  let evaluation: Evaluation;
  let diff;
  let config = base.config;
  const notes: string[] = [];
  if (args.sets.length > 0 || args.replace.length > 0) {
    // The stack's own config stands for what is deployed: its evaluation gives the "previous outputs".
    const before = await evaluateStack(args.stack, base.config, base.secretKeys);
    config = applyOverrides(base.config, args.sets);
    const deployed = { ...before.stackOutputs };
    const topology = config[`${projectName}:etcdTopology`];
    if (topology !== undefined && topology !== deployed.etcdTopology) {
      // A deployed stack refuses a topology switch (pulumi preview fails naming etcdTopology); the plan shows what
      // a new stack with the other topology would build.
      notes.push(`etcdTopology ${deployed.etcdTopology} → ${topology}: shown as a new stack would be built; a deployed stack refuses this switch at preview.`);
      delete deployed.etcdTopology;
    }
    evaluation = await evaluateStack(args.stack, config, base.secretKeys, deployed, args.replace);
    diff = diffEvaluations(before, evaluation, args.replace);
  } else {
    evaluation = await evaluateStack(args.stack, base.config, base.secretKeys);
  }
  const seconds = (performance.now() - started) / 1000;
  if (args.json) {
    process.stdout.write(`${JSON.stringify(renderJson(evaluation, config, base.secretKeys, diff), null, 2)}\n`);
  } else {
    process.stdout.write(`${renderHuman(evaluation, { stack: args.stack, seconds, diff })}\n`);
    notes.forEach((note) => process.stdout.write(`Note: ${note}\n`));
  }
  return 0;
}

// exitCode, not exit(): a large --json document must finish flushing to a pipe.
main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
    } else {
      process.stderr.write(`plan failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 1;
  },
);
