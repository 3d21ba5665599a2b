// The add-ons in the program's graph, under the offline engine: what each install resource is, through which
// provider, in which namespace, after what; and that nothing of the cluster's lifecycle waits for an add-on.
import test from "ava";
import type { Evaluation, Registration } from "../infra/offline/engine";
import { renderHuman } from "../infra/offline/plan";
import { byName, byType, evaluateDev, projectDir, transitiveDeps } from "./support/program";

const addons = [
  { name: "cert-manager", helm: { repo: "oci://quay.io/jetstack/charts", chart: "cert-manager", version: "v1.19.1", values: { crds: { enabled: true } } } },
  { name: "probe", helm: { path: "test/fixtures/addons/chart", valuesFiles: ["test/fixtures/addons/values-override.yaml"], values: { greeting: "hi" } } },
  { name: "platform", manifests: ["test/fixtures/addons/manifests/*.yaml"], dependsOn: ["cert-manager"] },
  { name: "demo", kustomize: { directory: "addons/demo" } },
  { name: "sidecar", helm: { path: "test/fixtures/addons/chart", namespace: "probe" }, dependsOn: ["platform"] },
];
const withAddons = (list: unknown[] = addons) => evaluateDev([`addons=${JSON.stringify(list)}`]);

const CHART = "kubernetes:helm.sh/v4:Chart";
const isAddon = (r: Registration) => r.name.startsWith("addons-") || r.type.startsWith("kubeadm-ha:cluster:Addon");

function install(e: Evaluation, name: string): Registration {
  const found = e.resources.filter((r) => r.name === `addons-${name}` && r.type.startsWith("kubernetes:"));
  if (found.length !== 1) throw new Error(`expected one install of ${name}, found ${found.length}`);
  return found[0];
}

test("add-ons: each source becomes its provider-rendered resource, through the CNI's provider, with the config's chart, version and values", async (t) => {
  const e = await withAddons();
  const cniProvider = byType(e, "pulumi:providers:kubernetes");
  t.is(cniProvider.length, 1, "one Kubernetes provider: the program's, from its admin credential");
  const release = byType(e, "kubernetes:helm.sh/v3:Release")[0];
  for (const name of ["cert-manager", "probe", "platform", "demo", "sidecar"]) {
    const r = install(e, name);
    t.is(r.options.provider, release.options.provider, `${name} goes through the CNI's provider`);
    t.false(r.custom, `${name} is a component the provider renders`);
  }
  t.like(install(e, "cert-manager"), { type: CHART, inputs: { chart: "oci://quay.io/jetstack/charts/cert-manager", version: "v1.19.1", name: "cert-manager", namespace: "cert-manager", values: { crds: { enabled: true } } } });
  t.is(install(e, "cert-manager").inputs.repositoryOpts, undefined, "an OCI chart is named by its reference, with no repository");
  const probe = install(e, "probe");
  t.like(probe.inputs, { chart: "test/fixtures/addons/chart", name: "probe", namespace: "probe", values: { greeting: "hi" } });
  t.is(probe.inputs.version, undefined);
  t.is(probe.inputs.valueYamlFiles.length, 1, "the values file goes as an asset");
  t.like(install(e, "platform"), { type: "kubernetes:yaml/v2:ConfigGroup", inputs: { files: ["test/fixtures/addons/manifests/*.yaml"] } });
  t.like(install(e, "demo"), { type: "kubernetes:kustomize/v2:Directory", inputs: { directory: "addons/demo" } });
  t.is(install(e, "demo").inputs.namespace, undefined, "the demo brings its own namespace");
});

test("add-ons: a repository chart names its repository; namespaces are created once, never a built-in one", async (t) => {
  const e = await withAddons([
    { name: "metrics-server", helm: { repo: "https://kubernetes-sigs.github.io/metrics-server/", chart: "metrics-server", version: "3.13.0", namespace: "kube-system" } },
    ...addons,
  ]);
  t.like(install(e, "metrics-server").inputs, { chart: "metrics-server", version: "3.13.0", repositoryOpts: { repo: "https://kubernetes-sigs.github.io/metrics-server/" }, namespace: "kube-system" });
  const namespaces = byType(e, "kubernetes:core/v1:Namespace").map((r) => r.inputs.metadata.name).sort();
  t.deepEqual(namespaces, ["cert-manager", "probe"], "probe's namespace is shared by two add-ons; kube-system is never created");
  const probeNs = byName(e, "addons-namespace-probe");
  for (const name of ["probe", "sidecar"]) t.true(install(e, name).dependencies.includes(probeNs.urn), `${name} waits for its namespace`);
  // The shared namespace waits only for what both its add-ons wait for: probe depends on no add-on.
  t.false([...transitiveDeps(e, probeNs)].some((u) => u === install(e, "platform").urn));
});

test("add-ons: every add-on waits for the nodes Ready and the upgrade's last steps; a dependent for its dependency, an independent one for no other", async (t) => {
  const e = await withAddons();
  const nodesReady = byName(e, "cluster-wait-nodes-ready");
  const lastUpgrade = byName(e, "worker-1-uncordon");
  for (const name of ["cert-manager", "probe", "platform", "demo", "sidecar"]) {
    const deps = transitiveDeps(e, install(e, name));
    t.true(deps.has(nodesReady.urn), `${name} after every node is Ready`);
    t.true(deps.has(lastUpgrade.urn), `${name} after the rolling upgrade`);
  }
  const installs = ["cert-manager", "probe", "platform", "demo", "sidecar"].map((n) => install(e, n));
  const addonDeps = (name: string) => installs.filter((i) => install(e, name).dependencies.includes(i.urn)).map((i) => i.name.replace(/^addons-/, ""));
  t.deepEqual(addonDeps("platform"), ["cert-manager"]);
  t.deepEqual(addonDeps("sidecar"), ["platform"]);
  t.deepEqual(addonDeps("demo"), []);
  t.deepEqual(addonDeps("probe"), []);
  t.deepEqual(addonDeps("cert-manager"), []);
});

test("add-ons: nothing of the cluster's lifecycle waits for an add-on, and the stack without add-ons registers none", async (t) => {
  const e = await withAddons();
  const addonUrns = new Set(e.resources.filter(isAddon).map((r) => r.urn));
  t.true(addonUrns.size >= 7);
  for (const r of e.resources.filter((x) => !isAddon(x) && x.type !== "pulumi:pulumi:Stack")) {
    const waits = [...transitiveDeps(e, r)].filter((u) => addonUrns.has(u));
    t.deepEqual(waits, [], `${r.name} waits for no add-on`);
  }
  const without = await evaluateDev(["addons=[]"]);
  t.deepEqual(without.resources.filter(isAddon).map((r) => r.name), []);
});

test("add-ons: chart values set with pulumi config set --secret stay secret inputs", async (t) => {
  const e = await withAddons();
  t.deepEqual(install(e, "probe").secretInputs, [], "plain config: plain values");
  const { evaluate } = await import("../infra/offline/engine");
  const { devConfig } = await import("./support/program");
  const { runProgram } = await import("../infra/program");
  const { config, secretKeys } = devConfig([`addons=${JSON.stringify(addons)}`]);
  const secret = await evaluate({ project: "kubeadm-ha", stack: "dev", config, secretKeys: [...secretKeys, "kubeadm-ha:addons"], program: runProgram });
  t.true(install(secret, "probe").secretInputs.includes("values"));
  t.is(install(secret, "probe").displayInputs.values, "[secret]");
});

test("add-ons: npm run plan lists the add-ons in install order with what each waits for and the objects it applies (manifests parsed; kustomize needs kubectl, which this PATH lacks)", async (t) => {
  const e = await withAddons();
  const path = process.env.PATH;
  process.env.PATH = "/nonexistent";
  let text: string;
  try {
    text = renderHuman(e, { stack: "dev", seconds: 0, projectDir });
  } finally {
    process.env.PATH = path;
  }
  const section = text.slice(text.indexOf("Add-ons, in install order"));
  const order = [...section.matchAll(/^  ([a-z0-9-]+): /gm)].map((m) => m[1]);
  t.deepEqual(order, ["cert-manager", "probe", "platform", "demo", "sidecar"]);
  t.regex(section, /platform: manifests test\/fixtures\/addons\/manifests\/\*\.yaml \(after cert-manager\)/);
  t.regex(section, /addons-platform: 3 objects \(parsed\): 1 scheduling\.k8s\.io\/v1 PriorityClass, 2 v1 ConfigMap/);
  t.regex(section, /addons-demo: the provider renders it at preview \(kubectl on PATH renders it here: kubectl kustomize\)/);
  t.regex(section, /cert-manager: helm chart oci:\/\/quay\.io\/jetstack\/charts\/cert-manager v1\.19\.1 into cert-manager/);
  t.regex(section, /addons-probe: the provider renders it at preview \(helm on PATH renders it here: helm template\)/);
  t.regex(section, /sidecar: helm chart at test\/fixtures\/addons\/chart into probe \(after platform\)/);
});
