// The offline plan: stack config as the Pulumi CLI would hand it to the program, the diff between two
// evaluations as Pulumi would compute it, and the human rendering. Pure functions over data.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { projectName, secretKeysOf } from "../config";
import { addonInstallTypes, countByType, renderAddon } from "./addonObjects";
import { Evaluation, Registration, secretMarker } from "./engine";
import { forceNewChanges } from "./forceNew";

export interface StackConfig {
  /** `namespace:key` to the value Pulumi passes (strings; objects and arrays as JSON). */
  config: Record<string, string>;
  /** Keys whose values are secret: the stack file's secure values and every key Pulumi.yaml declares secret. */
  secretKeys: string[];
  /**
   * The keys the Pulumi CLI would hand the program as secrets: secretKeys but those the stack file holds in plain
   * text (the program refuses them, as a `pulumi config set` without --secret). A `--set` of a secret key stands for
   * `pulumi config set --secret`.
   */
  secureKeys: string[];
}

/**
 * Reads Pulumi.yaml defaults and Pulumi.<stack>.yaml. Secure values cannot be decrypted offline: "[secret]".
 * A key Pulumi.yaml declares `secret: true` is secret whatever sets it (stack file, `--set`).
 */
export function loadStackConfig(projectDir: string, stack: string): StackConfig {
  const project = parse(readFileSync(join(projectDir, "Pulumi.yaml"), "utf8")) ?? {};
  const stackFile = join(projectDir, `Pulumi.${stack}.yaml`);
  if (!existsSync(stackFile)) throw new Error(`no stack file ${stackFile}`);
  const stackDoc = parse(readFileSync(stackFile, "utf8")) ?? {};
  const values: Record<string, unknown> = {};
  const secretKeys = new Set(declaredSecretKeys(project));
  const plain = new Set<string>();
  for (const [key, decl] of Object.entries<any>(project.config ?? {})) {
    if (decl && typeof decl === "object" && "default" in decl) values[`${projectName}:${key}`] = decl.default;
  }
  for (const [key, value] of Object.entries<any>(stackDoc.config ?? {})) {
    const fullKey = key.includes(":") ? key : `${projectName}:${key}`;
    if (value && typeof value === "object" && "secure" in value) {
      values[fullKey] = secretMarker;
      secretKeys.add(fullKey);
    } else {
      values[fullKey] = value;
      if (secretKeys.has(fullKey)) plain.add(fullKey);
    }
  }
  return { config: toPulumiStrings(values), secretKeys: [...secretKeys], secureKeys: [...secretKeys].filter((k) => !plain.has(k)) };
}

/** The `namespace:key` of every secret config key: those a parsed Pulumi.yaml declares `secret: true`, and secretConfigKeys. */
export function declaredSecretKeys(project: { config?: Record<string, unknown> }): string[] {
  return secretKeysOf(project).map((k) => (k.includes(":") ? k : `${projectName}:${k}`));
}

/**
 * Replaces every occurrence of a secret value in `text` by "[secret]", as the Pulumi CLI filters secret config
 * values out of what it prints: values shorter than 3 characters and true/false are left alone (they would mask
 * unrelated text), and each value's JSON-escaped form is caught too. Longer values go first, so a value that
 * contains another is masked whole.
 */
export function maskSecretValues(text: string, secrets: string[]): string {
  const patterns = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < 3 || /^(true|false)$/i.test(secret) || secret === secretMarker) continue;
    patterns.add(secret);
    patterns.add(JSON.stringify(secret).slice(1, -1));
  }
  return [...patterns].sort((a, b) => b.length - a.length).reduce((out, p) => out.split(p).join(secretMarker), text);
}

/** Every string inside a JSON-like value passed through `f` (object keys are names, left as they are). */
export function mapStrings(value: unknown, f: (s: string) => string): unknown {
  if (typeof value === "string") return f(value);
  if (Array.isArray(value)) return value.map((x) => mapStrings(x, f));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, mapStrings(x, f)]));
  return value;
}

/** The values of the secret config keys that are set: what `maskSecretValues` hides. */
export function secretConfigValues(configs: Record<string, string>[], secretKeys: string[]): string[] {
  return [...new Set(configs.flatMap((c) => secretKeys.filter((k) => c[k] !== undefined).map((k) => c[k])))];
}

export function toPulumiStrings(values: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

/**
 * Applies `KEY=VALUE` overrides. KEY without a namespace is the project's; dotted paths reach inside objects
 * (`controlPlane.count=5`); VALUE is parsed as YAML.
 */
export function applyOverrides(config: Record<string, string>, overrides: string[]): Record<string, string> {
  const result = { ...config };
  for (const override of overrides) {
    const eq = override.indexOf("=");
    if (eq <= 0) throw new Error(`--set expects KEY=VALUE, got "${override}"`);
    const key = override.slice(0, eq);
    const value = parse(override.slice(eq + 1));
    const [nsKey, ...path] = key.includes(":") ? splitNamespaced(key) : [`${projectName}:${key.split(".")[0]}`, ...key.split(".").slice(1)];
    if (path.length === 0) {
      result[nsKey] = typeof value === "string" ? value : JSON.stringify(value);
      continue;
    }
    const current = result[nsKey] !== undefined ? JSON.parse(result[nsKey]) : {};
    let target = current;
    for (const part of path.slice(0, -1)) {
      if (typeof target[part] !== "object" || target[part] === null) target[part] = {};
      target = target[part];
    }
    target[path[path.length - 1]] = value;
    result[nsKey] = JSON.stringify(current);
  }
  return result;
}

function splitNamespaced(key: string): string[] {
  const [ns, rest] = [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)];
  const [top, ...path] = rest.split(".");
  return [`${ns}:${top}`, ...path];
}

export interface DiffEntry {
  urn: string;
  type: string;
  op: "create" | "delete" | "change";
  keys: string[];
  replace: boolean;
}

function stable(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

/** Top-level key of an ignoreChanges / replaceOnChanges path: `triggers[*]` → `triggers`, `a.b` → `a`. */
function topKey(path: string): string {
  return path.split(/[.[]/)[0];
}

/**
 * The diff Pulumi would show going from `before` to `after`: a key in ignoreChanges is never a change; a changed key
 * in replaceOnChanges (command triggers included) replaces, and so does a changed force-new property of the provider
 * (forceNew.ts); any other changed input is an in-place update; a resource on one side only is a create or a delete; a
 * resource named in `replaced` (`--replace`) is replaced. A replaced resource's outputs are unknown until it exists
 * (as in `pulumi preview`): every input of another resource that depends on it counts as changed, and replaces that
 * resource too where the input is force-new or in its replaceOnChanges. Registrations come in dependency order, so
 * one pass carries a replacement down the graph (a new key pair → every instance → their load balancer targets).
 * Components carry no inputs and are left out.
 */
export function diffEvaluations(before: Evaluation, after: Evaluation, replaced: string[] = []): DiffEntry[] {
  const custom = (e: Evaluation) => new Map(e.resources.filter((r) => r.custom).map((r) => [r.urn, r]));
  const a = custom(before);
  const b = custom(after);
  const entries: DiffEntry[] = [];
  const replacedUrns = new Set<string>();
  for (const [urn, next] of b) {
    const prev = a.get(urn);
    if (!prev) {
      entries.push({ urn, type: next.type, op: "create", keys: [], replace: false });
      continue;
    }
    if (replaced.includes(next.name)) {
      entries.push({ urn, type: next.type, op: "change", keys: [], replace: true });
      replacedUrns.add(urn);
      continue;
    }
    const ignored = new Set(next.options.ignoreChanges.map(topKey));
    const unknown = new Set(
      Object.entries(next.propertyDependencies)
        .filter(([k, deps]) => !ignored.has(k) && deps.some((d) => replacedUrns.has(d)))
        .map(([k]) => k),
    );
    const keys = [...new Set([...Object.keys(prev.inputs), ...Object.keys(next.inputs)])]
      .filter((k) => !ignored.has(k) && (unknown.has(k) || stable(prev.inputs[k]) !== stable(next.inputs[k])))
      .sort();
    if (keys.length === 0) continue;
    const replaceOn = new Set(next.options.replaceOnChanges.map(topKey));
    const replace = keys.some((k) => replaceOn.has(k)) || forceNewChanges(next.type, prev.inputs, next.inputs, unknown).some((path) => !ignored.has(topKey(path)));
    if (replace) replacedUrns.add(urn);
    entries.push({ urn, type: next.type, op: "change", keys, replace });
  }
  for (const [urn, prev] of a) {
    if (!b.has(urn)) entries.push({ urn, type: prev.type, op: "delete", keys: [], replace: false });
  }
  return entries;
}

/** A step is a command resource; its node is the prefix of its name (`cp-0-init` runs on cp-0). */
export interface Step {
  urn: string;
  name: string;
  node: string;
  step: string;
  host?: string;
  dependsOn: string[];
}

/** The node a step belongs to: the longest known node name (or "cluster") its name starts with. */
export function splitStepName(name: string, nodes: string[]): { node: string; step: string } {
  const match = [...nodes, "cluster"].filter((n) => name.startsWith(`${n}-`)).sort((a, b) => b.length - a.length)[0];
  return match ? { node: match, step: name.slice(match.length + 1) } : { node: name, step: name };
}

export function stepsOf(evaluation: Evaluation): Step[] {
  const byUrn = new Map(evaluation.resources.map((r) => [r.urn, r]));
  const isStep = (r: Registration) => r.type.startsWith("command:");
  // Dependencies through components and other resources are followed until a step is reached.
  const memo = new Map<string, Set<string>>();
  const stepDeps = (r: Registration, seen = new Set<string>()): Set<string> => {
    if (memo.has(r.urn)) return memo.get(r.urn)!;
    const out = new Set<string>();
    for (const dep of r.dependencies) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      const d = byUrn.get(dep);
      if (!d) continue;
      if (isStep(d)) out.add(d.urn);
      else stepDeps(d, seen).forEach((x) => out.add(x));
    }
    memo.set(r.urn, out);
    return out;
  };
  const nodes: string[] = Array.isArray(evaluation.stackOutputs.nodes) ? evaluation.stackOutputs.nodes.map((n: { name: string }) => n.name) : [];
  return evaluation.resources.filter(isStep).map((r) => {
    const { node, step } = splitStepName(r.name, nodes);
    return {
      urn: r.urn,
      name: r.name,
      node,
      step,
      host: r.displayInputs.connection?.host,
      dependsOn: [...stepDeps(r)],
    };
  });
}

/** Stage of each step: 1 + the longest chain of steps it waits for. Steps of one stage may run at once. */
export function stageOf(steps: Step[]): Map<string, number> {
  const byUrn = new Map(steps.map((s) => [s.urn, s]));
  const stage = new Map<string, number>();
  const visit = (s: Step, path: Set<string>): number => {
    const known = stage.get(s.urn);
    if (known !== undefined) return known;
    if (path.has(s.urn)) throw new Error(`dependency cycle through ${s.name}`);
    path.add(s.urn);
    const deps = s.dependsOn.map((u) => byUrn.get(u)).filter((d): d is Step => d !== undefined);
    const value = 1 + Math.max(0, ...deps.map((d) => visit(d, path)));
    path.delete(s.urn);
    stage.set(s.urn, value);
    return value;
  };
  steps.forEach((s) => visit(s, new Set()));
  return stage;
}

export interface RenderOptions {
  stack: string;
  seconds: number;
  diff?: DiffEntry[];
  /** Also print every secret input in plain text (`--show-secrets`). Default false. */
  showSecrets?: boolean;
  /** Where add-ons' paths are (Pulumi.yaml's directory): their objects are rendered offline where that can be done. */
  projectDir?: string;
}

export function renderHuman(evaluation: Evaluation, options: RenderOptions): string {
  const lines: string[] = [];
  const custom = evaluation.resources.filter((r) => r.custom);
  const steps = stepsOf(evaluation);
  const stages = stageOf(steps);
  lines.push(`kubeadm-ha plan for stack "${options.stack}": ${custom.length} resources, ${steps.length} node steps (evaluated offline in ${options.seconds.toFixed(2)} s)`);
  lines.push("");
  lines.push("Resources by type:");
  const counts = new Map<string, number>();
  custom.forEach((r) => counts.set(r.type, (counts.get(r.type) ?? 0) + 1));
  [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).forEach(([type, n]) => lines.push(`  ${String(n).padStart(4)}  ${type}`));
  lines.push("");
  lines.push("Steps per node, in order:");
  const nodes = [...new Set(steps.map((s) => s.node))];
  for (const node of nodes) {
    const own = steps.filter((s) => s.node === node).sort((x, y) => stages.get(x.urn)! - stages.get(y.urn)!);
    const host = own.find((s) => s.host)?.host;
    lines.push(`  ${node}${host ? ` (${host})` : ""}: ${own.map((s) => s.step).join(" → ")}`);
  }
  lines.push("");
  lines.push("Order across nodes (a stage starts when the steps it waits for are done):");
  const maxStage = Math.max(0, ...stages.values());
  for (let i = 1; i <= maxStage; i++) {
    const here = steps.filter((s) => stages.get(s.urn) === i).map((s) => s.name);
    lines.push(`  ${String(i).padStart(3)}. ${here.join(", ")}`);
  }
  lines.push(...renderAddons(evaluation, options.projectDir));
  if (options.diff) {
    lines.push("");
    const ops = { create: 0, delete: 0, change: 0, replace: 0 };
    options.diff.forEach((d) => (d.replace ? ops.replace++ : ops[d.op]++));
    lines.push(`Changes against the stack's own config: ${ops.create} to create, ${ops.change} to update, ${ops.replace} to replace, ${ops.delete} to delete`);
    for (const d of options.diff) {
      const name = d.urn.split("::").pop();
      const what = d.op === "change" ? `${d.replace ? "replace" : "update"}${d.keys.length > 0 ? ` (${d.keys.join(", ")})` : ""}` : d.op;
      lines.push(`  ${what.padEnd(12)} ${d.type} ${name}`);
    }
  }
  const secretHolders = custom.filter((r) => r.secretInputs.length > 0);
  if (options.showSecrets) {
    lines.push("");
    lines.push("Secret inputs (--show-secrets), steps in the order above:");
    lines.push(...renderSecretInputs(evaluation, steps, stages));
  } else if (secretHolders.length > 0) {
    const keys = [...new Set(secretHolders.flatMap((r) => r.secretInputs))].sort();
    lines.push("");
    lines.push(`Secret inputs print as ${secretMarker} (${keys.join(", ")} of ${secretHolders.length} resources); --show-secrets prints them.`);
  }
  return lines.join("\n");
}

/**
 * The add-ons in install order, each with its source, what it waits for, and the objects it will apply by type and
 * count, where they can be rendered offline (addonObjects.ts).
 */
function renderAddons(evaluation: Evaluation, projectDir: string | undefined): string[] {
  // In the order the program declared the add-ons (their components register in install order; the install
  // resources themselves may reach the engine in another).
  const position = new Map(evaluation.resources.map((r, i) => [r.urn, i]));
  const installs = evaluation.resources
    .filter((r) => (addonInstallTypes as readonly string[]).includes(r.type))
    .sort((a, b) => (position.get(a.parent) ?? 0) - (position.get(b.parent) ?? 0));
  if (installs.length === 0) return [];
  const addonName = (r: Registration) => r.name.replace(/^addons-/, "");
  const byUrn = new Map(installs.map((r) => [r.urn, addonName(r)]));
  const lines = ["", "Add-ons, in install order (once every node is Ready and the upgrade is done; each also after the add-ons it names):"];
  for (const install of installs) {
    const i = install.inputs;
    const source =
      install.type === "kubernetes:helm.sh/v4:Chart"
        ? i.repositoryOpts?.repo
          ? `helm chart ${i.chart} ${i.version} from ${i.repositoryOpts.repo}`
          : /^oci:/.test(i.chart)
            ? `helm chart ${i.chart} ${i.version}`
            : `helm chart at ${i.chart}`
        : install.type === "kubernetes:kustomize/v2:Directory"
          ? `kustomize ${i.directory}`
          : `manifests ${(i.files ?? []).join(", ")}`;
    const namespace = i.namespace ? ` into ${i.namespace}` : "";
    const after = install.dependencies.map((u) => byUrn.get(u)).filter((n): n is string => n !== undefined);
    lines.push(`  ${addonName(install)}: ${source}${namespace}${after.length > 0 ? ` (after ${after.join(", ")})` : ""}`);
    let rendering;
    try {
      rendering = projectDir === undefined ? { unrendered: "rendered by the provider at preview" } : renderAddon(install, projectDir);
    } catch (err) {
      rendering = { unrendered: `cannot render offline: ${(err as Error).message.split("\n")[0]}` };
    }
    const what = "objects" in rendering ? `${rendering.objects.length} objects (${rendering.by}): ${countByType(rendering.objects)}` : rendering.unrendered;
    lines.push(`      ${install.type} ${install.name}: ${what}`);
  }
  return lines;
}

/**
 * Each secret input in plain text: what `pulumi preview --show-secrets` would reveal, such as the kubeadm
 * configuration a step reads on stdin. Steps come node by node in stage order, then the other resources.
 */
function renderSecretInputs(evaluation: Evaluation, steps: Step[], stages: Map<string, number>): string[] {
  const nodes = [...new Set(steps.map((s) => s.node))];
  const stepOrder = nodes.flatMap((node) => steps.filter((s) => s.node === node).sort((x, y) => stages.get(x.urn)! - stages.get(y.urn)!)).map((s) => s.urn);
  const byUrn = new Map(evaluation.resources.map((r) => [r.urn, r]));
  const isStep = new Set(stepOrder);
  const rest = evaluation.resources.filter((r) => r.custom && !isStep.has(r.urn));
  const lines: string[] = [];
  for (const r of [...stepOrder.map((u) => byUrn.get(u)!), ...rest]) {
    for (const key of r.secretInputs) {
      const value = r.inputs[key];
      if (typeof value === "string" && value.includes("\n")) {
        lines.push(`  ${r.name} ${key}:`);
        lines.push(...value.replace(/\n$/, "").split("\n").map((l) => (l === "" ? "" : `      ${l}`)));
      } else {
        lines.push(`  ${r.name} ${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
      }
    }
  }
  return lines;
}

/**
 * The --json document: one entry per registration, secrets as "[secret]" unless `showSecrets` (then the engine's
 * values, as `pulumi preview --json --show-secrets`; stack-file secrets stay "[secret]": they cannot be decrypted).
 */
export function renderJson(evaluation: Evaluation, stackConfig: Record<string, string>, secretKeys: string[], diff?: DiffEntry[], showSecrets = false): unknown {
  return {
    stack: evaluation.stack,
    config: Object.fromEntries(Object.entries(stackConfig).map(([k, v]) => [k, !showSecrets && secretKeys.includes(k) ? secretMarker : v])),
    resources: evaluation.resources.map((r) => ({
      urn: r.urn,
      id: r.id,
      type: r.type,
      name: r.name,
      parent: r.parent,
      dependencies: r.dependencies,
      options: r.options,
      inputs: showSecrets ? r.inputs : r.displayInputs,
      outputs: showSecrets ? r.outputs : maskOutputs(r),
    })),
    ...(diff ? { diff } : {}),
  };
}

/** Outputs that are secret in Pulumi (inputs that were secret, additionalSecretOutputs) print as "[secret]". */
function maskOutputs(r: Registration): Record<string, unknown> {
  const secret = new Set([...r.secretInputs, ...r.options.additionalSecretOutputs]);
  return Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, secret.has(k) ? secretMarker : v]));
}
