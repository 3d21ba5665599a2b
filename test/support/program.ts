// Evaluates the real program under the capturing engine, from the dev stack's config plus overrides.
import { join } from "node:path";
import { projectName } from "../../infra/config";
import { Evaluation, Registration, evaluate } from "../../infra/offline/engine";
import { applyOverrides, loadStackConfig } from "../../infra/offline/plan";
import { runStartedAt, setRunStartedAt } from "../../infra/bootstrapRecord";
import { runProgram } from "../../infra/program";

export const projectDir = join(__dirname, "..", "..");

/** A stack's config (default dev) with `--set`-style overrides (KEY=VALUE, VALUE as YAML); secretKeys as the CLI hands them over. */
export function devConfig(sets: string[] = [], stack = "dev") {
  const base = loadStackConfig(projectDir, stack);
  return { config: applyOverrides(base.config, sets), secretKeys: base.secureKeys };
}

/**
 * `at`: when the evaluated run starts (an ISO time), to model a later `pulumi up` (a resume) in this process; by
 * default every evaluation is the same run (the process's start).
 */
export async function evaluateStack(stack: string, sets: string[] = [], deployedOutputs?: Record<string, unknown>, replace?: string[], at?: string): Promise<Evaluation> {
  const { config, secretKeys } = devConfig(sets, stack);
  const program = async () => {
    const processRun = runStartedAt();
    if (at !== undefined) setRunStartedAt(at);
    try {
      return await runProgram();
    } finally {
      setRunStartedAt(processRun);
    }
  };
  return evaluate({ project: projectName, stack, config, secretKeys, deployedOutputs, program, replace });
}

export function evaluateDev(sets: string[] = [], deployedOutputs?: Record<string, unknown>): Promise<Evaluation> {
  return evaluateStack("dev", sets, deployedOutputs);
}

export function byType(e: Evaluation, type: string): Registration[] {
  return e.resources.filter((r) => r.type === type);
}

export function byName(e: Evaluation, name: string, type?: string): Registration {
  const found = e.resources.filter((r) => r.name === name && (type === undefined || r.type === type));
  if (found.length !== 1) throw new Error(`expected one resource named ${name}${type ? ` of ${type}` : ""}, found ${found.length}`);
  return found[0];
}

/** Every URN the resource waits for, directly or through other resources. */
export function transitiveDeps(e: Evaluation, r: Registration): Set<string> {
  const byUrn = new Map(e.resources.map((x) => [x.urn, x]));
  const out = new Set<string>();
  const stack = [...r.dependencies];
  while (stack.length) {
    const u = stack.pop()!;
    if (out.has(u)) continue;
    out.add(u);
    stack.push(...(byUrn.get(u)?.dependencies ?? []));
  }
  return out;
}

export function waitsFor(e: Evaluation, later: Registration, earlier: Registration): boolean {
  return transitiveDeps(e, later).has(earlier.urn);
}
