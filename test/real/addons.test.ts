// Add-ons installed for real: the program's Addons component under the REAL Pulumi CLI and the REAL Kubernetes
// provider (built from its Go module by `npm run tools`), against a REAL control plane (etcd 3.6, kube-apiserver,
// kube-controller-manager and kube-scheduler v1.36; kwok runs the nodes and the pods). Nothing downloads: the chart is
// a local one, the Kustomize directory is the repository's demo, the manifests are files; a proxy on a closed port
// stands in front of every HTTP(S) request the CLI or the provider would make.
import test from "ava";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { objectsOfYaml, countByType } from "../../infra/offline/addonObjects";
import { renderHuman } from "../../infra/offline/plan";
import { startControlPlane, type ControlPlane } from "../support/controlPlane";
import { evaluateDev } from "../support/program";
import { realTool, realToolsDir } from "../support/realTools";
import { projectRoot } from "../support/tools";

const LONG = 600_000;
let cp: ControlPlane;
let work: string;

test.before(async () => {
  // The provider `npm run tools` builds and registers in its PULUMI_HOME (fails here, naming it, when not built).
  realTool("pulumi-resource-kubernetes");
  work = mkdtempSync(join(tmpdir(), "kubeadm-ha-addons-"));
  cp = await startControlPlane({ dir: join(work, "cluster") });
  // Two schedulable nodes, as the demo's spread and disruption budget expect; kwok runs their pods (Ready).
  await cp.addNodes([{ name: "worker-0" }, { name: "worker-1" }]);
});

test.after.always(async () => {
  await cp?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A project directory whose add-on paths are the repository's (addons/, test/fixtures/), with its own state. */
function project(name: string): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "state"), { recursive: true });
  writeFileSync(join(dir, "Pulumi.yaml"), "name: addons-test\nruntime: nodejs\n");
  symlinkSync(join(projectRoot, "addons"), join(dir, "addons"));
  mkdirSync(join(dir, "test"));
  symlinkSync(join(projectRoot, "test", "fixtures"), join(dir, "test", "fixtures"));
  return dir;
}

interface RunResult {
  ok: boolean;
  text: string;
  outputs: Record<string, unknown>;
}

/** One CLI run in a child process (asynchronous: a chart repository this process serves must keep answering). */
async function run(dir: string, op: "up" | "preview" | "destroy", addons: unknown[], flags: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  const child = spawn(process.execPath, ["--import", "tsx", join(projectRoot, "test", "support", "addonsRun.ts"), dir, "test", op, cp.adminKubeconfig, JSON.stringify(addons), ...flags], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), LONG);
  const status = await new Promise<number | null>((done) => child.on("close", (code) => done(code)));
  clearTimeout(timer);
  const last = stdout.trim().split("\n").pop() ?? "";
  if (!last.startsWith("{")) throw new Error(`addonsRun printed no result (exit ${status}):\n${stdout}\n${stderr}`);
  return JSON.parse(last) as RunResult;
}

async function exists(args: string[]): Promise<boolean> {
  return (await cp.kubectl(["get", ...args, "-o", "name"])).code === 0;
}

const chart = { name: "probe", helm: { path: "test/fixtures/addons/chart", valuesFiles: ["test/fixtures/addons/values-override.yaml"], values: { serviceAccount: true } } };
const demo = { name: "demo", kustomize: { directory: "addons/demo" } };
const manifests = { name: "platform", manifests: ["test/fixtures/addons/manifests/*.yaml"], dependsOn: ["probe"] };

test.serial("real add-ons: a local chart, the demo Kustomize directory and a manifests glob install through the real provider; a second preview changes nothing", async (t) => {
  t.timeout(LONG);
  const dir = project("install");
  const up = await run(dir, "up", [chart, demo, manifests]);
  t.true(up.ok, up.text);
  t.deepEqual(up.outputs.installed, ["probe", "demo", "platform"]);
  // The chart: its namespace created by the program, values files merged under values (values win), release name
  // the add-on's.
  t.is((await cp.kubectlOk(["get", "namespace", "probe", "-o", "jsonpath={.status.phase}"])).trim(), "Active");
  t.is((await cp.kubectlOk(["-n", "probe", "get", "configmap", "probe-settings", "-o", "jsonpath={.data.greeting}"])).trim(), "from-a-values-file");
  t.true(await exists(["-n", "probe", "serviceaccount", "probe"]));
  // The demo: its own namespace (from the directory), a Deployment whose two replicas are available on the two
  // nodes (the provider waited for them), its Service and PodDisruptionBudget.
  t.is((await cp.kubectlOk(["-n", "demo", "get", "deployment", "demo", "-o", "jsonpath={.status.availableReplicas}"])).trim(), "2");
  t.true(await exists(["-n", "demo", "service", "demo"]));
  t.is((await cp.kubectlOk(["-n", "demo", "get", "pdb", "demo", "-o", "jsonpath={.status.disruptionsAllowed}"])).trim(), "1", "one replica may be drained at a time");
  t.is((await cp.kubectlOk(["get", "namespace", "demo", "-o", "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}"])).trim(), "restricted", "the demo's pods pass the restricted Pod Security level");
  // The manifests: every file the glob matches, a List's items one by one.
  t.true(await exists(["priorityclass", "platform-critical"]));
  t.true(await exists(["-n", "default", "configmap", "platform-info"]));
  t.true(await exists(["-n", "default", "configmap", "platform-contacts"]));
  // Objects are named after the add-on: `addons-<name>:<namespace>/<object>`.
  t.regex(up.text, /addons-demo:demo\/demo/);

  const again = await run(dir, "preview", [chart, demo, manifests]);
  t.true(again.ok, again.text);
  t.notRegex(again.text, /\+ |~ |- |\+-/, `a second preview plans no change:\n${again.text}`);

  // A changed value changes that object only. The provider's default, kept: a ConfigMap whose data changes is
  // replaced (deleted, then created under its fixed name), not patched.
  const changed = { ...chart, helm: { ...chart.helm, values: { serviceAccount: true, greeting: "changed" } } };
  const update = await run(dir, "up", [changed, demo, manifests]);
  t.true(update.ok, update.text);
  t.is((await cp.kubectlOk(["-n", "probe", "get", "configmap", "probe-settings", "-o", "jsonpath={.data.greeting}"])).trim(), "changed");
  t.regex(update.text, /kubernetes:core\/v1:ConfigMap addons-probe:probe\/probe-settings replaced/);
  t.regex(update.text, /Resources:\s+\+-1 replaced\s+\d+ unchanged/, "nothing else changes");

  // An add-on left out of the config is removed, with the namespace the program made for it.
  const removed = await run(dir, "up", [demo]);
  t.true(removed.ok, removed.text);
  t.false(await exists(["priorityclass", "platform-critical"]));
  await cp.waitFor("namespace probe deleted", async () => !(await exists(["namespace", "probe"])), 120_000);
  t.true(await exists(["-n", "demo", "deployment", "demo"]), "the add-on that stays is untouched");
  const destroyed = await run(dir, "destroy", []);
  t.true(destroyed.ok, destroyed.text);
  await cp.waitFor("namespace demo deleted", async () => !(await exists(["namespace", "demo"])), 120_000);
});

test.serial("real add-ons: a failing add-on holds back only what depends on it (pulumi up --continue-on-error installs the rest)", async (t) => {
  t.timeout(LONG);
  const dir = project("failure");
  // The API server refuses the object: a ConfigMap whose name is not a DNS subdomain.
  mkdirSync(join(dir, "broken"));
  writeFileSync(join(dir, "broken", "bad.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\n  namespace: default\ndata: {}\n");
  const broken = { name: "broken", manifests: ["broken/bad.yaml"] };
  const dependent = { name: "dependent", helm: { path: "test/fixtures/addons/chart", namespace: "dependent" }, dependsOn: ["broken"] };
  const independent = { name: "independent", manifests: ["test/fixtures/addons/manifests/priority.yaml"] };
  const up = await run(dir, "up", [broken, dependent, independent], ["--continue-on-error"]);
  t.false(up.ok, "the run fails");
  t.regex(up.text, /Not_A_Valid_Name/, "naming the refused object");
  t.true(await exists(["priorityclass", "platform-critical"]), "the independent add-on is installed");
  t.false(await exists(["-n", "dependent", "configmap", "dependent-settings"]), "the dependent add-on is never applied");
  t.false(await exists(["namespace", "dependent"]), "nor its namespace");
  // Fixed, the next run converges: the broken add-on goes in, then its dependent.
  writeFileSync(join(dir, "broken", "bad.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: now-valid\n  namespace: default\ndata: {}\n");
  const fixed = await run(dir, "up", [broken, dependent, independent]);
  t.true(fixed.ok, fixed.text);
  t.true(await exists(["-n", "dependent", "configmap", "dependent-settings"]));
  t.true((await run(dir, "destroy", [])).ok);
});

interface ChartRepository {
  url: string;
  caFile: string;
  requests: string[];
  close(): Promise<void>;
}

/**
 * A Helm chart repository on loopback over HTTPS, with a CA of its own: index.yaml and the probe chart packaged at
 * 0.1.0 and 0.2.0 (relative URLs, sha256 digests), as `helm repo index` lays it out.
 */
async function chartRepository(): Promise<ChartRepository> {
  const base = join(work, "repo");
  const served = join(base, "charts");
  mkdirSync(served, { recursive: true });
  const entries: string[] = [];
  for (const version of ["0.1.0", "0.2.0"]) {
    const build = join(base, `build-${version}`);
    cpSync(join(projectRoot, "test", "fixtures", "addons", "chart"), join(build, "probe"), { recursive: true });
    const chartYaml = join(build, "probe", "Chart.yaml");
    writeFileSync(chartYaml, readFileSync(chartYaml, "utf8").replace(/^version: .*$/m, `version: ${version}`));
    const archive = join(served, `probe-${version}.tgz`);
    execFileSync("tar", ["-C", build, "-czf", archive, "probe"]);
    const digest = createHash("sha256").update(readFileSync(archive)).digest("hex");
    entries.push(`  - apiVersion: v2\n    name: probe\n    version: ${version}\n    appVersion: "1.0"\n    urls: [probe-${version}.tgz]\n    digest: ${digest}\n    created: "2026-01-01T00:00:00Z"`);
  }
  writeFileSync(join(served, "index.yaml"), `apiVersion: v1\nentries:\n  probe:\n${entries.reverse().join("\n")}\ngenerated: "2026-01-01T00:00:00Z"\n`);
  const ssl = (args: string[]) => execFileSync("openssl", args, { cwd: base, stdio: "pipe" });
  ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=addons test repository CA", "-days", "1"]);
  ssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
  writeFileSync(join(base, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
  ssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext"]);
  const requests: string[] = [];
  const server = createServer({ key: readFileSync(join(base, "server.key")), cert: readFileSync(join(base, "server.crt")) }, (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    requests.push(path);
    const file = join(served, path.replace(/^\/charts\//, ""));
    if (!path.startsWith("/charts/") || path.includes("..") || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": path.endsWith(".yaml") ? "application/x-yaml" : "application/gzip" }).end(readFileSync(file));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", () => ok()));
  const port = (server.address() as AddressInfo).port;
  return { url: `https://127.0.0.1:${port}/charts/`, caFile: join(base, "ca.crt"), requests, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

test.serial("real add-ons: a chart from an HTTPS chart repository installs at exactly the pinned version, and a version bump upgrades it", async (t) => {
  t.timeout(LONG);
  const repo = await chartRepository();
  t.teardown(() => repo.close());
  const dir = project("repository");
  const env = { SSL_CERT_FILE: repo.caFile };
  const at = (version: string) => [{ name: "probe", helm: { repo: repo.url, chart: "probe", version, namespace: "from-repo" } }];
  const settings = async () => (await cp.kubectlOk(["-n", "from-repo", "get", "configmap", "probe-settings", "-o", "jsonpath={.data.chartVersion}"])).trim();

  const first = await run(dir, "up", at("0.1.0"), [], env);
  t.true(first.ok, first.text);
  t.is(await settings(), "0.1.0", "the pinned version, not the repository's newest");
  t.true(repo.requests.includes("/charts/index.yaml") && repo.requests.includes("/charts/probe-0.1.0.tgz"), repo.requests.join(", "));
  t.false(repo.requests.includes("/charts/probe-0.2.0.tgz"));

  const bumped = await run(dir, "up", at("0.2.0"), [], env);
  t.true(bumped.ok, bumped.text);
  t.is(await settings(), "0.2.0");
  const missing = await run(dir, "preview", at("0.3.0"), [], env);
  t.false(missing.ok, "a version the repository does not have fails the preview");
  t.regex(missing.text, /0\.3\.0/);
  t.is(await settings(), "0.2.0", "and changes nothing");
  t.true((await run(dir, "destroy", [], [], env)).ok);
});

test.serial("real CNI: the program's Cni component installs flannel from its Go module's chart directory (cni.chartPath) through the real provider's Helm release, its DaemonSet on every node; add-ons go through the same provider", async (t) => {
  t.timeout(LONG);
  const dir = project("cni");
  // The chart of flannel's Go module, as npm run tools copied it into the tool cache.
  const chart = join(realToolsDir, "charts", "flannel", "v0.28.10");
  t.true(existsSync(join(chart, "Chart.yaml")), `${chart}: run npm run tools`);
  symlinkSync(chart, join(dir, "flannel-chart"));
  const cni = { name: "flannel", version: "v0.28.10", chartPath: "flannel-chart", values: { flannel: { backend: "vxlan" } } };
  const up = await run(dir, "up", [demo], [`--cni=${JSON.stringify(cni)}`]);
  t.true(up.ok, up.text);
  t.is(up.outputs.cniStatus, "deployed");
  const ds = JSON.parse(await cp.kubectlOk(["-n", "kube-flannel", "get", "daemonset", "-o", "json"])) as { items: { metadata: { name: string }; status: { desiredNumberScheduled: number; numberReady: number } }[] };
  t.is(ds.items.length, 1);
  t.is(ds.items[0].status.desiredNumberScheduled, 2, "one flannel pod per node");
  t.is(ds.items[0].status.numberReady, 2);
  const config = await cp.kubectlOk(["-n", "kube-flannel", "get", "configmap", "-o", "jsonpath={.items[*].data.net-conf\\.json}"]);
  t.regex(config, /"Network": "10\.244\.0\.0\/16"/, "the pod range is kubeadm's podSubnet");
  t.regex(config, /"Type": "vxlan"/);
  t.is((await cp.kubectlOk(["-n", "demo", "get", "deployment", "demo", "-o", "jsonpath={.status.availableReplicas}"])).trim(), "2", "an add-on through the CNI's provider");
  const again = await run(dir, "preview", [demo], [`--cni=${JSON.stringify(cni)}`]);
  t.true(again.ok, again.text);
  t.notRegex(again.text, /\+ |~ |- |\+-/, `a second preview plans no change:\n${again.text}`);
  t.true((await run(dir, "destroy", [], [`--cni=${JSON.stringify(cni)}`])).ok);
});

test("real add-ons: the demo Kustomize directory renders (the pinned kubectl's kustomize) a two-replica Deployment, its Service and a PodDisruptionBudget that select the same pods", (t) => {
  const r = spawnSync(realTool("kubectl"), ["kustomize", join(projectRoot, "addons", "demo")], { encoding: "utf8" });
  t.is(r.status, 0, r.stderr);
  t.is(countByType(objectsOfYaml(r.stdout, "addons/demo")), "1 apps/v1 Deployment, 1 policy/v1 PodDisruptionBudget, 1 v1 Namespace, 1 v1 Service");
  const docs = r.stdout.split(/^---$/m).map((d) => d.trim());
  const deployment = docs.find((d) => /kind: Deployment/.test(d))!;
  t.regex(deployment, /replicas: 2/);
  t.regex(deployment, /namespace: demo/);
  for (const kind of ["Service", "PodDisruptionBudget"]) t.regex(docs.find((d) => new RegExp(`kind: ${kind}`).test(d))!, /app\.kubernetes\.io\/name: demo/);
});

test("real add-ons: npm run plan counts the demo directory's objects with the pinned kubectl, and names a repository chart as rendered at preview", async (t) => {
  const e = await evaluateDev();
  const path = process.env.PATH;
  process.env.PATH = `${join(realTool("kubectl"), "..")}:${path}`;
  try {
    const text = renderHuman(e, { stack: "dev", seconds: 0, projectDir: projectRoot });
    t.regex(text, /kubernetes:kustomize\/v2:Directory addons-demo: 4 objects \(kubectl kustomize\): 1 apps\/v1 Deployment, 1 policy\/v1 PodDisruptionBudget, 1 v1 Namespace, 1 v1 Service/);
    t.regex(text, /addons-metrics-server: a chart from a repository: the provider fetches and renders it at preview/);
  } finally {
    process.env.PATH = path;
  }
});
