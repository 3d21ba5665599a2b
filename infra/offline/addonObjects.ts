// What an add-on's install resource will apply, for the offline plan: the Kubernetes provider renders charts and
// directories during `pulumi preview`; offline, manifests are parsed as the provider parses them, a Kustomize
// directory is rendered with `kubectl kustomize` and a chart in the project with `helm template` when those are on
// PATH, and a chart from a repository is not fetched (nothing downloads offline).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { globSync } from "glob";
import { parseAllDocuments } from "yaml";
import { isGlobPattern } from "../addonsConfig";
import type { Registration } from "./engine";

export interface RenderedObject {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

export type AddonRendering = { objects: RenderedObject[]; by: string } | { unrendered: string };

export const addonInstallTypes = ["kubernetes:helm.sh/v4:Chart", "kubernetes:kustomize/v2:Directory", "kubernetes:yaml/v2:ConfigGroup"] as const;

/** Objects of a multi-document YAML text, `List`s flattened (as the provider reads them); empty documents skipped. */
export function objectsOfYaml(text: string, source: string): RenderedObject[] {
  const out: RenderedObject[] = [];
  const add = (o: any) => {
    if (o === null || o === undefined) return;
    if (typeof o !== "object" || typeof o.kind !== "string" || typeof o.apiVersion !== "string") throw new Error(`${source}: a document without apiVersion and kind`);
    if (/List$/.test(o.kind) && Array.isArray(o.items)) return o.items.forEach(add);
    out.push({ apiVersion: o.apiVersion, kind: o.kind, name: String(o.metadata?.name ?? ""), ...(o.metadata?.namespace ? { namespace: String(o.metadata.namespace) } : {}) });
  };
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0].message}`);
    add(doc.toJS());
  }
  return out;
}

function onPath(tool: string): boolean {
  try {
    execFileSync(tool, ["version", ...(tool === "kubectl" ? ["--client"] : [])], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** What the add-on's install resource (a registration of one of addonInstallTypes) will apply. */
export function renderAddon(install: Registration, projectDir: string): AddonRendering {
  const inputs = install.inputs;
  const resolve = (p: string) => (isAbsolute(p) ? p : join(projectDir, p));
  switch (install.type) {
    case "kubernetes:yaml/v2:ConfigGroup": {
      const files: string[] = (inputs.files ?? []).flatMap((f: string) => (isGlobPattern(f) ? globSync(f, { cwd: projectDir, nodir: true }).sort() : [f]));
      return { objects: files.flatMap((f) => objectsOfYaml(readFileSync(resolve(f), "utf8"), f)), by: "parsed" };
    }
    case "kubernetes:kustomize/v2:Directory": {
      if (!onPath("kubectl")) return { unrendered: "the provider renders it at preview (kubectl on PATH renders it here: kubectl kustomize)" };
      const text = execFileSync("kubectl", ["kustomize", resolve(inputs.directory)], { encoding: "utf8", timeout: 60_000, maxBuffer: 64 << 20 });
      const objects = objectsOfYaml(text, inputs.directory).map((o) => (o.namespace === undefined && inputs.namespace ? { ...o, namespace: inputs.namespace } : o));
      return { objects, by: "kubectl kustomize" };
    }
    case "kubernetes:helm.sh/v4:Chart": {
      if (inputs.repositoryOpts?.repo || /^oci:\/\//.test(inputs.chart)) return { unrendered: "a chart from a repository: the provider fetches and renders it at preview" };
      if (!onPath("helm")) return { unrendered: "the provider renders it at preview (helm on PATH renders it here: helm template)" };
      const args = ["template", inputs.name ?? install.name, resolve(inputs.chart), "--namespace", inputs.namespace ?? "default", "--values", "-"];
      const text = execFileSync("helm", args, { encoding: "utf8", input: JSON.stringify(inputs.values ?? {}), timeout: 60_000, maxBuffer: 64 << 20 });
      return { objects: objectsOfYaml(text, inputs.chart), by: "helm template" };
    }
    default:
      return { unrendered: `not an add-on install (${install.type})` };
  }
}

/** "2 apps/v1 Deployment, 1 v1 Service": objects counted by type, in a stable order. */
export function countByType(objects: RenderedObject[]): string {
  const counts = new Map<string, number>();
  objects.forEach((o) => counts.set(`${o.apiVersion} ${o.kind}`, (counts.get(`${o.apiVersion} ${o.kind}`) ?? 0) + 1));
  return [...counts.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, n]) => `${n} ${type}`)
    .join(", ");
}
