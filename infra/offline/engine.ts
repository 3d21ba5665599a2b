// The offline engine: runs the Pulumi program in-process under Pulumi's mock monitor and records every
// registration with its dependencies and resource options. Shared by `npm run plan` and the tests.
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import * as settings from "@pulumi/pulumi/runtime/settings";
import { runInPulumiStack } from "@pulumi/pulumi/runtime/stack";
import { fakeCall, fakeOutputs } from "./fakes";

const secretSig = "1b47061264138c4ac30d75fd1eb44270";
const specialSigKey = "4dabf18193072939515e22adb298388d";
const resourceRefSig = "5cf8f73096256a8f31e491e813e4eb8e";
/** What a secret value prints as in plan output. */
export const secretMarker = "[secret]";

export interface ResourceOptionsRecord {
  protect: boolean;
  ignoreChanges: string[];
  replaceOnChanges: string[];
  deleteBeforeReplace: boolean;
  additionalSecretOutputs: string[];
  retainOnDelete: boolean;
  deletedWith: string;
  provider: string;
}

export interface Registration {
  urn: string;
  id: string | null;
  type: string;
  name: string;
  parent: string;
  custom: boolean;
  /** Every URN the resource waits for: explicit dependsOn (components expanded) and input-derived. */
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  options: ResourceOptionsRecord;
  /** Inputs with secrets unwrapped: for tests that inspect scripts and values. */
  inputs: Record<string, any>;
  /** Inputs as a reader may see them: secrets replaced by "[secret]". */
  displayInputs: Record<string, any>;
  /** Top-level input keys whose values are secret (wholly or in part). */
  secretInputs: string[];
  /** What the offline engine answered for the resource. */
  outputs: Record<string, any>;
}

export interface Evaluation {
  project: string;
  stack: string;
  resources: Registration[];
  stackOutputs: Record<string, any>;
  /** Secret stack outputs by name (their values are in stackOutputs, unwrapped). */
  secretOutputs: string[];
}

export interface EvaluateOptions {
  project: string;
  stack: string;
  /** Stack config as Pulumi hands it to a program: `project:key` to string (objects and arrays as JSON). */
  config: Record<string, string>;
  secretKeys?: string[];
  /** Outputs of the deployed stack, as a StackReference to this stack would see them; none for a new stack. */
  deployedOutputs?: Record<string, unknown>;
  program: () => Promise<Record<string, unknown> | void>;
  /** Logical names of resources replaced in this evaluation (`pulumi up --replace`): they get a new id. */
  replace?: string[];
}

/** Records each registration's request before the mock monitor answers it. */
class CapturingMonitor extends MockMonitor {
  readonly records: Registration[] = [];

  override async registerResource(req: any, callback: (err: any, resp: any) => void): Promise<void> {
    const rawInputs: Record<string, any> = req.getObject()?.toJavaScript() ?? {};
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((deps: any, key: string) => {
      propertyDependencies[key] = deps.getUrnsList();
    });
    const type: string = req.getType();
    const name: string = req.getName();
    const record: Registration = {
      urn: "",
      id: null,
      type,
      name,
      parent: req.getParent(),
      custom: req.getCustom(),
      // A resource also waits for its provider (a reference "urn::id").
      dependencies: [
        ...new Set<string>([
          ...req.getDependenciesList(),
          ...Object.values(propertyDependencies).flat(),
          ...(req.getProvider() && !req.getProvider().includes("::default_") ? [req.getProvider().split("::").slice(0, -1).join("::")] : []),
        ]),
      ],
      propertyDependencies,
      options: {
        protect: req.hasProtect?.() ? req.getProtect() : false,
        ignoreChanges: req.getIgnorechangesList(),
        replaceOnChanges: req.getReplaceonchangesList(),
        deleteBeforeReplace: req.getDeletebeforereplace(),
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
        retainOnDelete: req.hasRetainondelete?.() ? req.getRetainondelete() : false,
        deletedWith: req.getDeletedwith(),
        provider: req.getProvider(),
      },
      inputs: unwrap(rawInputs),
      displayInputs: display(rawInputs, type),
      secretInputs: Object.keys(rawInputs).filter((k) => containsSecret(rawInputs[k])),
      outputs: {},
    };
    this.records.push(record);
    return super.registerResource(req, (err: any, resp: any) => {
      if (!err && resp) {
        record.urn = resp.getUrn();
        record.id = resp.getId() || null;
        record.outputs = unwrap(resp.getObject()?.toJavaScript() ?? {});
      }
      callback(err, resp);
    });
  }
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Evaluates the program once under the capturing monitor. Evaluations share Pulumi's process-wide runtime state,
 * so they are serialised: concurrent callers wait their turn.
 */
export function evaluate(options: EvaluateOptions): Promise<Evaluation> {
  const run = queue.then(() => evaluateNow(options));
  queue = run.catch(() => undefined);
  return run;
}

async function evaluateNow(options: EvaluateOptions): Promise<Evaluation> {
  const monitor: CapturingMonitor = new CapturingMonitor({
    newResource: (args): { id: string | undefined; state: Record<string, any> } => {
      if (args.type === "pulumi:pulumi:StackReference") {
        return { id: args.inputs.name ?? args.name, state: { name: args.inputs.name, outputs: options.deployedOutputs ?? {}, secretOutputNames: [] } };
      }
      const lookup = (type: string): Record<string, any>[] => monitor.records.filter((r) => r.type === type).map((r) => r.outputs);
      const generation = options.replace?.includes(args.name) ? "-replaced" : "";
      return { id: args.custom ? `${args.name}-id${generation}` : undefined, state: { ...args.inputs, ...fakeOutputs(args.type, args.name, args.inputs, lookup) } };
    },
    call: (args) => fakeCall(args.token, args.inputs),
  });
  settings.setMockOptions(monitor, options.project, options.stack, false, "organization");
  // setMockOptions resets the feature flags (secrets, resource references); ask the monitor again.
  await (settings as any).awaitFeatureSupport();
  pulumi.runtime.setAllConfig(options.config, options.secretKeys ?? []);
  // An error thrown inside an apply surfaces only as an unhandled rejection; under the real engine it fails the
  // update, so here it fails the evaluation (never a silently smaller graph).
  const applyErrors: unknown[] = [];
  const onRejection = (reason: unknown) => applyErrors.push(reason);
  process.on("unhandledRejection", onRejection);
  // Pulumi's runtime records a stack trace for every promise it creates, only to report leaked promises at exit;
  // under a TypeScript loader with source maps that is most of an evaluation's time. Offline evaluations skip it
  // (errors then carry their message without a stack); KUBEADM_HA_STACK_TRACES=1 keeps them for debugging.
  const stackTraceLimit = Error.stackTraceLimit;
  if (process.env.KUBEADM_HA_STACK_TRACES !== "1") Error.stackTraceLimit = 0;
  let rawOutputs: Record<string, any>;
  try {
    // The program's own error is caught inside the stack so the runtime's promises settle cleanly; it is rethrown
    // once the evaluation is over.
    rawOutputs =
      (await runInPulumiStack(async () => {
        try {
          return (await options.program()) ?? {};
        } catch (err) {
          applyErrors.unshift(err);
          return {};
        }
      })) ?? {};
    await (settings as any).waitForRPCs();
  } finally {
    // A failing program rejects several of the runtime's promises; collect them all before letting go.
    await new Promise((resolve) => setTimeout(resolve, 0));
    process.off("unhandledRejection", onRejection);
    Error.stackTraceLimit = stackTraceLimit;
  }
  if (applyErrors.length > 0) {
    const first = applyErrors[0];
    const err = first instanceof Error ? first : new Error(String(first));
    // What had been registered when the program failed: tests check that bad config registers nothing.
    Object.defineProperty(err, "registeredTypes", { value: monitor.records.map((r) => r.type), enumerable: false });
    throw err;
  }
  const stack = monitor.records.find((r) => r.type === "pulumi:pulumi:Stack");
  const outputState = stack ? monitor.resources.get(stack.urn)?.state : undefined;
  const serialized = outputState?.toJavaScript ? outputState.toJavaScript() : {};
  return {
    project: options.project,
    stack: options.stack,
    resources: monitor.records,
    stackOutputs: unwrap(rawOutputs),
    secretOutputs: Object.keys(serialized).filter((k) => containsSecret(serialized[k])),
  };
}

function isSecretValue(v: any): boolean {
  return v !== null && typeof v === "object" && v[specialSigKey] === secretSig;
}

function containsSecret(v: any): boolean {
  if (isSecretValue(v)) return true;
  if (Array.isArray(v)) return v.some(containsSecret);
  if (v !== null && typeof v === "object") return Object.values(v).some(containsSecret);
  return false;
}

/** Removes secret wrappers, resolving resource references to their URNs. */
export function unwrap(v: any): any {
  if (isSecretValue(v)) return unwrap(v.value);
  if (v !== null && typeof v === "object" && v[specialSigKey] === resourceRefSig) return v.urn;
  if (Array.isArray(v)) return v.map(unwrap);
  if (v !== null && typeof v === "object" && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  }
  return v;
}

/**
 * Secrets print as "[secret]". A command's connection is secret as a whole, but its host, port and user are what a
 * reader needs to see which machine runs each step, so only those are shown.
 */
function display(v: any, type: string, path: string[] = []): any {
  if (isSecretValue(v)) {
    const inner = v.value;
    if (type.startsWith("command:") && (path[0] === "connection") && inner && typeof inner === "object") {
      return showConnection(unwrap(inner));
    }
    return secretMarker;
  }
  if (Array.isArray(v)) return v.map((x, i) => display(x, type, [...path, String(i)]));
  if (v !== null && typeof v === "object") {
    if (v[specialSigKey] === resourceRefSig) return v.urn;
    if (type.startsWith("command:") && path.length === 0 && v.connection !== undefined) {
      const { connection, ...rest } = v;
      return { ...display(rest, type, path), connection: showConnection(unwrap(connection)) };
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, display(x, type, [...path, k])]));
  }
  return v;
}

function showConnection(c: any): any {
  if (!c || typeof c !== "object") return c;
  const shown: Record<string, unknown> = { host: c.host, port: c.port, user: c.user };
  if (c.privateKey !== undefined) shown.privateKey = secretMarker;
  if (c.password !== undefined) shown.password = secretMarker;
  if (c.proxy) shown.proxy = showConnection(c.proxy);
  return shown;
}
