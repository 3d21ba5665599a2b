import test from "ava";
import { join } from "node:path";
import { installOrder, isChartVersion, projectFiles, readAddons } from "../infra/addonsConfig";
import { validateConfig } from "../infra/validate";
import { evaluateDev, projectDir } from "./support/program";

const files = projectFiles(projectDir);
const chart = "test/fixtures/addons/chart";
const repoChart = { repo: "https://kubernetes-sigs.github.io/metrics-server/", chart: "metrics-server", version: "3.13.0" };

/** The problem paths and messages of an `addons` value. */
function problemsOf(value: unknown, taken: string[] = []) {
  return readAddons(value, files, taken).problems;
}

const refused: [string, unknown, string, RegExp][] = [
  ["not a list", { name: "x" }, "addons", /must be a list/],
  ["too many", Array.from({ length: 51 }, (_, i) => ({ name: `a${i}`, manifests: ["test/fixtures/addons/manifests/quota.yaml"] })), "addons", /at most 50/],
  ["no source", [{ name: "x" }], "addons[0]", /needs one source/],
  ["two sources", [{ name: "x", helm: { path: chart }, kustomize: { directory: "addons/demo" } }], "addons[0]", /exactly one source/],
  ["unknown key", [{ name: "x", helm: { path: chart }, depends: ["y"] }], "addons[0].depends", /unknown key/],
  ["name not a DNS label", [{ name: "Metrics_Server", helm: { path: chart } }], "addons[0].name", /DNS label/],
  ["duplicate name", [{ name: "x", helm: { path: chart } }, { name: "x", kustomize: { directory: "addons/demo" } }], "addons[1].name", /already the name of addons\[0\]/],
  ["helm unknown key", [{ name: "x", helm: { ...repoChart, valuesFile: "a.yaml" } }], "addons[0].helm.valuesFile", /unknown key; known keys of helm/],
  ["repository chart without version", [{ name: "x", helm: { repo: repoChart.repo, chart: "metrics-server" } }], "addons[0].helm.version", /pin the chart version/],
  ["version range", [{ name: "x", helm: { ...repoChart, version: "^3.12.0" } }], "addons[0].helm.version", /not a range/],
  ["version latest", [{ name: "x", helm: { ...repoChart, version: "latest" } }], "addons[0].helm.version", /SemVer/],
  ["plain http repository", [{ name: "x", helm: { ...repoChart, repo: "http://charts.example.com/" } }], "addons[0].helm.repo", /https:\/\/ chart repository or an oci:\/\//],
  ["no repository and no path", [{ name: "x", helm: { chart: "metrics-server", version: "3.13.0" } }], "addons[0].helm.repo", /is required/],
  ["chart name with a repo prefix", [{ name: "x", helm: { ...repoChart, chart: "metrics/metrics-server" } }], "addons[0].helm.chart", /chart's name/],
  ["path that does not exist", [{ name: "x", helm: { path: "charts/missing" } }], "addons[0].helm.path", /does not exist/],
  ["path without Chart.yaml", [{ name: "x", helm: { path: "test/fixtures/addons/manifests" } }], "addons[0].helm.path", /without a Chart.yaml/],
  ["path to a file that is no chart archive", [{ name: "x", helm: { path: "test/fixtures/addons/values-override.yaml" } }], "addons[0].helm.path", /\.tgz/],
  ["version with a path", [{ name: "x", helm: { path: chart, version: "0.1.0" } }], "addons[0].helm.version", /does not go with helm.path/],
  ["values not an object", [{ name: "x", helm: { path: chart, values: ["a"] } }], "addons[0].helm.values", /must be an object/],
  ["values file missing", [{ name: "x", helm: { path: chart, valuesFiles: ["nope.yaml"] } }], "addons[0].helm.valuesFiles[0]", /not a file/],
  ["namespace not a DNS label", [{ name: "x", helm: { path: chart, namespace: "Kube_System" } }], "addons[0].helm.namespace", /namespace name/],
  ["kustomize directory missing", [{ name: "x", kustomize: { directory: "addons/missing" } }], "addons[0].kustomize.directory", /not a directory/],
  ["kustomize directory without kustomization", [{ name: "x", kustomize: { directory: "test/fixtures/addons/chart" } }], "addons[0].kustomize.directory", /no kustomization.yaml/],
  ["kustomize remote directory", [{ name: "x", kustomize: { directory: "https://github.com/example/app//deploy?ref=v1" } }], "addons[0].kustomize.directory", /not a remote URL/],
  ["manifests file missing", [{ name: "x", manifests: ["manifests/missing.yaml"] }], "addons[0].manifests[0]", /not a file/],
  ["manifests glob matching nothing", [{ name: "x", manifests: ["test/fixtures/addons/manifests/*.yml"] }], "addons[0].manifests[0]", /matches no file/],
  ["manifests recursive glob", [{ name: "x", manifests: ["test/fixtures/**/*.yaml"] }], "addons[0].manifests[0]", /filepath.Glob/],
  ["manifests not YAML", [{ name: "x", manifests: ["README.md"] }], "addons[0].manifests[0]", /YAML files/],
  ["depends on an unknown add-on", [{ name: "x", helm: { path: chart }, dependsOn: ["cert-manager"] }], "addons[0].dependsOn[0]", /names no add-on: "cert-manager"/],
  ["depends on itself", [{ name: "x", helm: { path: chart }, dependsOn: ["x"] }], "addons[0].dependsOn[0]", /itself/],
  ["dependsOn not a list", [{ name: "x", helm: { path: chart }, dependsOn: "y" }], "addons[0].dependsOn", /list of add-on names/],
  [
    "a dependency cycle",
    [
      { name: "a", helm: { path: chart }, dependsOn: ["c"] },
      { name: "b", kustomize: { directory: "addons/demo" }, dependsOn: ["a"] },
      { name: "c", manifests: ["test/fixtures/addons/manifests/*.yaml"], dependsOn: ["b"] },
    ],
    "addons",
    /cycle: a → c → b → a/,
  ],
];

for (const [title, value, path, message] of refused) {
  test(`addons: refuses ${title}, naming ${path}`, (t) => {
    const problems = problemsOf(value);
    const found = problems.find((p) => p.path === path);
    t.truthy(found, JSON.stringify(problems));
    t.regex(found!.message, message);
  });
}

test("addons: the CNI's own namespace is refused (its Helm release owns it)", (t) => {
  const problems = problemsOf([{ name: "x", helm: { path: chart, namespace: "tigera-operator" } }], ["tigera-operator"]);
  t.deepEqual(problems.map((p) => p.path), ["addons[0].helm.namespace"]);
  t.deepEqual(problemsOf([{ name: "x", helm: { path: chart, namespace: "tigera-operator" } }], []), []);
});

test("addons: a valid list comes back in install order, each after what it depends on, the config's order otherwise", (t) => {
  const { addons, problems } = readAddons(
    [
      { name: "issuers", manifests: "test/fixtures/addons/manifests/*.yaml", dependsOn: ["cert-manager"] },
      { name: "demo", kustomize: { directory: "addons/demo" } },
      { name: "cert-manager", helm: { repo: "oci://quay.io/jetstack/charts", chart: "cert-manager", version: "v1.19.1", values: { crds: { enabled: true } } } },
      { name: "probe", helm: { path: chart, valuesFiles: ["test/fixtures/addons/values-override.yaml"] } },
    ],
    files,
  );
  t.deepEqual(problems, []);
  t.deepEqual(addons.map((a) => a.name), ["demo", "cert-manager", "issuers", "probe"]);
  const probe = addons.find((a) => a.name === "probe")!;
  // A chart's namespace defaults to the add-on's own name.
  t.deepEqual(probe.source, { kind: "helm-path", path: chart, namespace: "probe", values: {}, valuesFiles: ["test/fixtures/addons/values-override.yaml"] });
  t.deepEqual(addons.find((a) => a.name === "issuers")!.source, { kind: "manifests", files: ["test/fixtures/addons/manifests/*.yaml"] });
  t.like(addons.find((a) => a.name === "cert-manager")!.source, { kind: "helm-repository", repo: "oci://quay.io/jetstack/charts", version: "v1.19.1", namespace: "cert-manager" });
});

test("addons: chart versions are one SemVer version, with or without the v charts publish", (t) => {
  for (const v of ["3.13.0", "v3.30.3", "1.18.0-rc.1", "2.0.0+build.5"]) t.true(isChartVersion(v), v);
  for (const v of ["3.13", "~3.13.0", ">=1.0.0", "3.13.0 || 3.14.0", "latest", "v", "01.2.3"]) t.false(isChartVersion(v), v);
});

test("addons: install order is stable and reports a two-add-on cycle by name", (t) => {
  const order = installOrder([
    { name: "a", source: { kind: "manifests", files: [] }, dependsOn: ["b"] },
    { name: "b", source: { kind: "manifests", files: [] }, dependsOn: ["a"] },
  ]);
  t.is(order, "the dependsOn of a, b form a cycle: a → b → a");
});

test("addons: validation names the key among the whole config's problems, with paths relative to the project", (t) => {
  const result = validateConfig({ addons: [{ name: "demo", kustomize: { directory: "addons/demo" } }, { name: "x", helm: { path: "nope" } }], workers: { count: -1 }, ssh: { allowedCidrs: ["198.51.100.0/24"] } }, { clusterName: "kubeadm-ha-dev", files });
  t.deepEqual(result.problems.map((p) => p.path).sort(), ["addons[1].helm.path", "workers.count"]);
  // The same directory named from elsewhere is not found: paths are the project's.
  const elsewhere = validateConfig({ addons: [{ name: "demo", kustomize: { directory: "addons/demo" } }], ssh: { allowedCidrs: ["198.51.100.0/24"] } }, { clusterName: "kubeadm-ha-dev", files: projectFiles(join(projectDir, "test")) });
  t.deepEqual(elsewhere.problems.map((p) => p.path), ["addons[0].kustomize.directory"]);
});

test("addons: bad add-on config fails the program before any resource is registered", async (t) => {
  const err = await t.throwsAsync(evaluateDev(['addons=[{"name": "x", "helm": {"repo": "https://charts.example.com", "chart": "x"}}]']));
  t.regex(err!.message, /addons\[0\]\.helm\.version: is required/);
  t.deepEqual((err as any).registeredTypes, ["pulumi:pulumi:Stack"]);
});
