// The `addons` key: Helm charts, Kustomize directories and plain manifests the cluster installs after it is up.
// Pure: reads the raw value, checks the paths it names through `ProjectFiles`, and returns the add-ons in install
// order or every problem, each named by its key path (`addons[1].helm.version`).
import { statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { globSync } from "glob";
import * as semver from "semver";
import { dns1123Label, isObject, q } from "./configValues";

export type AddonSource =
  /** A chart from a repository: `https://` (a Helm repository) or `oci://` (a registry), at a pinned version. */
  | { kind: "helm-repository"; repo: string; chart: string; version: string; namespace: string; values: Record<string, unknown>; valuesFiles: string[] }
  /** A chart directory (with Chart.yaml) or a packaged chart (.tgz) in the project. */
  | { kind: "helm-path"; path: string; namespace: string; values: Record<string, unknown>; valuesFiles: string[] }
  /** A Kustomize directory, rendered by the Kubernetes provider; `namespace` applies to objects that name none. */
  | { kind: "kustomize"; directory: string; namespace?: string }
  /** YAML files, or globs of them (Go's filepath.Glob, as the provider expands them). */
  | { kind: "manifests"; files: string[] };

export interface AddonConfig {
  name: string;
  source: AddonSource;
  /** Names of the add-ons this one is installed after. */
  dependsOn: string[];
}

/** What validation may know of the project's files: paths are relative to the project directory (Pulumi.yaml's). */
export interface ProjectFiles {
  kind(path: string): "file" | "directory" | undefined;
  /** The files a glob pattern matches, relative paths as given. */
  glob(pattern: string): string[];
}

/** The project's files on disk, below `root` (the program runs in the project directory, as does the provider). */
export function projectFiles(root: string): ProjectFiles {
  const resolve = (p: string) => (isAbsolute(p) ? p : join(root, p));
  return {
    kind(path) {
      try {
        const s = statSync(resolve(path));
        return s.isDirectory() ? "directory" : s.isFile() ? "file" : undefined;
      } catch {
        return undefined;
      }
    },
    glob(pattern) {
      return globSync(pattern, { cwd: root, nodir: true, dot: false });
    },
  };
}

export interface AddonProblem {
  path: string;
  message: string;
}

/** At most this many add-ons (checked before any entry is read). */
export const maxAddons = 50;

/** Namespaces every cluster has: the program never creates or deletes them. */
export const builtinNamespaces: readonly string[] = ["default", "kube-system", "kube-public", "kube-node-lease"];

const addonKeys = ["name", "helm", "kustomize", "manifests", "dependsOn"];
const helmKeys = ["repo", "chart", "version", "path", "namespace", "values", "valuesFiles"];
const kustomizeKeys = ["directory", "namespace"];
const sourceKeys = ["helm", "kustomize", "manifests"] as const;
/** A chart's name in its repository (Helm: lower case letters, digits and dashes). */
const chartName = /^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/;
const kustomizationFiles = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
/** Whether the provider expands `path` as a glob: it holds *, ? or [ unescaped (pulumi-kubernetes yaml/v2 isGlobPattern). */
export function isGlobPattern(path: string): boolean {
  return /(?:^|[^\\])[*?[]/.test(path);
}

/**
 * Reads `addons`. Returns the add-ons ordered so that each comes after those it depends on (a stable topological
 * order: the config's order where dependencies allow), or the problems. `namespacesTaken` are namespaces other parts
 * of the program own (the CNI's), which an add-on must not create.
 */
export function readAddons(value: unknown, files: ProjectFiles, namespacesTaken: readonly string[] = []): { addons: AddonConfig[]; problems: AddonProblem[] } {
  const problems: AddonProblem[] = [];
  const problem = (path: string, message: string) => {
    if (!problems.some((p) => p.path === path)) problems.push({ path, message });
  };
  if (value === undefined) return { addons: [], problems };
  if (!Array.isArray(value)) return { addons: [], problems: [{ path: "addons", message: "must be a list of add-ons ({name, helm | kustomize | manifests, dependsOn})" }] };
  if (value.length > maxAddons) return { addons: [], problems: [{ path: "addons", message: `lists ${value.length} add-ons, at most ${maxAddons}` }] };

  const addons: AddonConfig[] = [];
  const seen = new Map<string, number>();
  value.forEach((entry, i) => {
    const at = `addons[${i}]`;
    if (!isObject(entry)) return problem(at, "must be an object ({name, helm | kustomize | manifests, dependsOn})");
    for (const key of Object.keys(entry)) {
      if (!addonKeys.includes(key)) problem(`${at}.${key}`, `unknown key; known keys of an add-on: ${addonKeys.join(", ")}`);
    }
    const name = entry.name;
    if (typeof name !== "string" || !dns1123Label.test(name)) {
      problem(`${at}.name`, `must be a DNS label (lower case letters, digits and dashes, at most 63), got ${q(name)}`);
    } else if (seen.has(name)) {
      problem(`${at}.name`, `${q(name)} is already the name of addons[${seen.get(name)}]`);
    } else {
      seen.set(name, i);
    }
    const given = sourceKeys.filter((k) => entry[k] !== undefined);
    if (given.length !== 1) {
      problem(at, given.length === 0 ? "needs one source: helm, kustomize or manifests" : `has ${given.join(" and ")}: an add-on has exactly one source`);
    }
    const source = given.length === 1 ? readSource(given[0], entry[given[0]], `${at}.${given[0]}`, typeof name === "string" ? name : "", files, problem) : undefined;
    const dependsOn = readDependsOn(entry.dependsOn, `${at}.dependsOn`, problem);
    if (typeof name === "string" && source) addons.push({ name, source, dependsOn });
  });

  addons.forEach((addon) => {
    const at = `addons[${seen.get(addon.name)}]`;
    addon.dependsOn.forEach((dep, j) => {
      if (dep === addon.name) problem(`${at}.dependsOn[${j}]`, "an add-on cannot depend on itself");
      else if (!seen.has(dep)) problem(`${at}.dependsOn[${j}]`, `names no add-on: ${q(dep)} (add-ons: ${[...seen.keys()].join(", ") || "none"})`);
    });
    const ns = createdNamespace(addon.source);
    if (ns !== undefined && namespacesTaken.includes(ns)) {
      problem(`${at}.${addon.source.kind === "kustomize" ? "kustomize" : "helm"}.namespace`, `${q(ns)} is the CNI's namespace, which its own release owns; install into another namespace`);
    }
  });
  if (problems.length > 0) return { addons: [], problems };
  const ordered = installOrder(addons);
  if (typeof ordered === "string") return { addons: [], problems: [{ path: "addons", message: ordered }] };
  return { addons: ordered, problems };
}

function readDependsOn(value: unknown, at: string, problem: (path: string, message: string) => void): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > maxAddons || !value.every((x) => typeof x === "string")) {
    problem(at, "must be a list of add-on names");
    return [];
  }
  return [...new Set(value as string[])];
}

function readSource(kind: (typeof sourceKeys)[number], value: unknown, at: string, addonName: string, files: ProjectFiles, problem: (path: string, message: string) => void): AddonSource | undefined {
  switch (kind) {
    case "helm":
      return readHelm(value, at, addonName, files, problem);
    case "kustomize":
      return readKustomize(value, at, files, problem);
    case "manifests":
      return readManifests(value, at, files, problem);
  }
}

function readNamespace(value: unknown, at: string, problem: (path: string, message: string) => void): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !dns1123Label.test(value)) {
    problem(at, `must be a namespace name (a DNS label), got ${q(value)}`);
    return undefined;
  }
  return value;
}

function readRelativePath(value: unknown, at: string, problem: (path: string, message: string) => void): string | undefined {
  if (typeof value !== "string" || value.trim() === "") {
    problem(at, "must be a path in the project (relative to Pulumi.yaml's directory)");
    return undefined;
  }
  return value;
}

function readValuesFiles(value: unknown, at: string, files: ProjectFiles, problem: (path: string, message: string) => void): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > 20) {
    problem(at, "must be a list of at most 20 values files");
    return [];
  }
  const out: string[] = [];
  value.forEach((v, i) => {
    const path = readRelativePath(v, `${at}[${i}]`, problem);
    if (path === undefined) return;
    if (files.kind(path) !== "file") problem(`${at}[${i}]`, `${q(path)} is not a file in the project`);
    else out.push(path);
  });
  return out;
}

/**
 * A source's object: refuses a value that is none and its unknown keys. `fail` records a problem and marks the source
 * unusable (`ok()` false), so a source with any problem yields no add-on.
 */
function openSource(value: unknown, at: string, kind: string, keys: readonly string[], shape: string, problem: (path: string, message: string) => void) {
  if (!isObject(value)) {
    problem(at, `must be an object: ${shape}`);
    return undefined;
  }
  let usable = true;
  const fail = (path: string, message: string) => {
    usable = false;
    problem(path, message);
  };
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) fail(`${at}.${key}`, `unknown key; known keys of ${kind}: ${keys.join(", ")}`);
  }
  return { value, fail, ok: () => usable };
}

function readHelm(raw: unknown, at: string, addonName: string, files: ProjectFiles, problem: (path: string, message: string) => void): AddonSource | undefined {
  const source = openSource(raw, at, "helm", helmKeys, "{repo, chart, version} or {path}, with namespace, values, valuesFiles", problem);
  if (!source) return undefined;
  const { value, fail, ok } = source;
  // Default namespace: the add-on's own (created by the program), as `helm install NAME -n NAME --create-namespace`.
  const namespace = readNamespace(value.namespace, `${at}.namespace`, fail) ?? addonName;
  let values: Record<string, unknown> = {};
  if (value.values !== undefined) {
    if (!isObject(value.values)) fail(`${at}.values`, "must be an object (the chart's values)");
    else values = value.values;
  }
  const valuesFiles = readValuesFiles(value.valuesFiles, `${at}.valuesFiles`, files, fail);
  if (value.path !== undefined) {
    for (const key of ["repo", "chart", "version"]) {
      if (value[key] !== undefined) fail(`${at}.${key}`, `does not go with helm.path: a local chart is named by its path and versioned by its Chart.yaml (remove ${key}, or path)`);
    }
    const path = readRelativePath(value.path, `${at}.path`, fail);
    const pathProblem = path === undefined ? undefined : checkChartPath(path, files);
    if (pathProblem) fail(`${at}.path`, pathProblem);
    return ok() && path !== undefined ? { kind: "helm-path", path, namespace, values, valuesFiles } : undefined;
  }
  const repo = value.repo;
  if (typeof repo !== "string" || !/^(https|oci):\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~%/-]*)?$/.test(repo)) {
    fail(`${at}.repo`, repo === undefined ? "is required (a chart repository URL, https:// or oci://), or give helm.path for a chart in the project" : `must be an https:// chart repository or an oci:// registry path, got ${q(repo)}`);
  }
  const chart = value.chart;
  if (typeof chart !== "string" || !chartName.test(chart)) fail(`${at}.chart`, `must be the chart's name in the repository (like metrics-server), got ${q(chart)}`);
  const version = value.version;
  if (typeof version !== "string" && typeof version !== "number") {
    fail(`${at}.version`, "is required: pin the chart version (like 3.13.0), so every run installs the same chart");
  } else if (!isChartVersion(String(version))) {
    fail(`${at}.version`, `must be one chart version as the chart publishes it (SemVer, like 3.13.0 or v3.30.3), not a range; got ${q(version)}`);
  }
  return ok() ? { kind: "helm-repository", repo: String(repo), chart: String(chart), version: String(version), namespace, values, valuesFiles } : undefined;
}

/** Why `path` is not a chart in the project (a directory with Chart.yaml, or a packaged .tgz), or undefined. */
export function checkChartPath(path: string, files: ProjectFiles): string | undefined {
  const kind = files.kind(path);
  if (kind === "directory") return files.kind(join(path, "Chart.yaml")) === "file" ? undefined : `${q(path)} is a directory without a Chart.yaml: not a chart`;
  if (kind === "file") return /\.tgz$/.test(path) ? undefined : `${q(path)} must be a chart directory or a packaged chart (.tgz)`;
  return `${q(path)} does not exist in the project`;
}

/** A single chart version in SemVer 2 form, with or without a leading "v" (charts publish both). */
export function isChartVersion(version: string): boolean {
  return /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(version) && semver.valid(version.replace(/^v/, "")) !== null;
}

function readKustomize(raw: unknown, at: string, files: ProjectFiles, problem: (path: string, message: string) => void): AddonSource | undefined {
  const source = openSource(raw, at, "kustomize", kustomizeKeys, "{directory, namespace}", problem);
  if (!source) return undefined;
  const { value, fail, ok } = source;
  const directory = readRelativePath(value.directory, `${at}.directory`, fail);
  if (directory !== undefined) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(directory)) fail(`${at}.directory`, `must be a directory in the project, not a remote URL (nothing is fetched at install time), got ${q(directory)}`);
    else if (files.kind(directory) !== "directory") fail(`${at}.directory`, `${q(directory)} is not a directory in the project`);
    else if (!kustomizationFiles.some((f) => files.kind(join(directory, f)) === "file")) fail(`${at}.directory`, `${q(directory)} has no kustomization.yaml`);
  }
  const namespace = readNamespace(value.namespace, `${at}.namespace`, fail);
  return ok() && directory !== undefined ? { kind: "kustomize", directory, ...(namespace !== undefined ? { namespace } : {}) } : undefined;
}

function readManifests(value: unknown, at: string, files: ProjectFiles, problem: (path: string, message: string) => void): AddonSource | undefined {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || list.length > 100) {
    problem(at, "must be a YAML file or a glob, or a list of at most 100 of them");
    return undefined;
  }
  let ok = true;
  list.forEach((entry, i) => {
    const path = `${at}${typeof value === "string" ? "" : `[${i}]`}`;
    const file = readRelativePath(entry, path, problem);
    if (file === undefined) {
      ok = false;
      return;
    }
    if (!/\.ya?ml$/.test(file)) {
      ok = false;
      return problem(path, `must name YAML files (.yaml or .yml), got ${q(file)}`);
    }
    if (isGlobPattern(file)) {
      if (file.includes("**")) {
        ok = false;
        return problem(path, `"**" is not expanded: the provider globs with Go's filepath.Glob, where * matches within one directory`);
      }
      if (files.glob(file).length === 0) {
        ok = false;
        return problem(path, `${q(file)} matches no file in the project`);
      }
    } else if (files.kind(file) !== "file") {
      ok = false;
      return problem(path, `${q(file)} is not a file in the project`);
    }
  });
  return ok ? { kind: "manifests", files: list as string[] } : undefined;
}

/** The namespace the program creates for an add-on (none for a built-in one, or when the source brings its own). */
export function createdNamespace(source: AddonSource): string | undefined {
  const ns = source.kind === "helm-repository" || source.kind === "helm-path" ? source.namespace : source.kind === "kustomize" ? source.namespace : undefined;
  return ns !== undefined && !builtinNamespaces.includes(ns) ? ns : undefined;
}

/**
 * Add-ons ordered so that each follows what it depends on; among add-ons free to go, the config's order. A cycle is
 * reported with its names.
 */
export function installOrder(addons: AddonConfig[]): AddonConfig[] | string {
  const byName = new Map(addons.map((a) => [a.name, a]));
  const done = new Set<string>();
  const ordered: AddonConfig[] = [];
  while (ordered.length < addons.length) {
    const next = addons.find((a) => !done.has(a.name) && a.dependsOn.every((d) => done.has(d)));
    if (!next) {
      const left = addons.filter((a) => !done.has(a.name));
      return `the dependsOn of ${left.map((a) => a.name).join(", ")} form a cycle: ${cycleOf(left, byName)}`;
    }
    done.add(next.name);
    ordered.push(next);
  }
  return ordered;
}

function cycleOf(left: AddonConfig[], byName: Map<string, AddonConfig>): string {
  // Walk dependencies that are not installed yet until a name repeats: that stretch is a cycle.
  const path: string[] = [];
  let at: AddonConfig | undefined = left[0];
  while (at && !path.includes(at.name)) {
    path.push(at.name);
    const dep: string | undefined = at.dependsOn.find((d) => left.some((l) => l.name === d));
    at = dep === undefined ? undefined : byName.get(dep);
  }
  if (!at) return path.join(" → ");
  const cycle = path.slice(path.indexOf(at.name));
  return [...cycle, at.name].join(" → ");
}
