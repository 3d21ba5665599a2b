// The generated etcd snapshot step and restore phases against REAL etcd 3.6 members: etcd, etcdctl and etcdutl
// v3.6.8 built from their Go modules by `npm run tools` (test/support/realTools.ts), the version kubeadm 1.36 runs.
// Each member runs on its own scratch root (KUBEADM_HA_ROOT) as a stacked control plane would run it: a kubelet
// stand-in in this process starts and stops the member from the root's static etcd manifest, and the apiservers and
// the load balancer are stand-in HTTPS /readyz endpoints (no kube-apiserver runs here). `systemctl` (kubelet restart)
// and `aws` (s3 cp/ls against a directory) are recording shims on the scripts' PATH.
//
// test/support/etcdNodes.ts is the same rig for 3.4/3.5 (.tools/); it resolves its tools there, hence this one.
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  parseSnapshotSummary,
  saveSnapshotScript,
  snapshotFilePattern,
  type SaveSnapshotArgs,
} from "../../lifecycle/scripts/saveSnapshot";
import {
  fetchAndVerifyScript,
  restoreApiserverPhaseScript,
  restoreEtcdPhaseScript,
  restoredDataDir,
  restorePhases,
  stopEtcdScript,
  type RestoreApiserverPhase,
  type RestoreEtcdArgs,
  type RestoreEtcdPhase,
  type RestorePhase,
} from "../../lifecycle/scripts/restoreSnapshot";
import {
  EtcdCluster,
  etcdBinary,
  freePorts,
  makeTestPki,
  memberFlags,
  run,
  startMember,
  type MemberProcess,
  type Pki,
  type RunResult,
} from "../support/etcdCluster";
import { argsFromManifest, rigPaths } from "../support/etcdNodes";
import { realToolVersion } from "../support/realTools";

const KEYS = 10_000;
const PREFIX = "/registry/restore-test/";
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

// ---- the rig ------------------------------------------------------------------------------------------------------

interface Node36 {
  name: string;
  root: string;
  clientUrl: string;
  peerUrl: string;
  apiserverPort: number;
  process?: MemberProcess;
  manifest?: string;
  apiserver?: HttpsServer;
  starts: number;
}

const systemctlShim = `#!/usr/bin/env bash
# systemctl shim: records. Stacked control planes: only the kubelet is a unit here (etcd is a static pod).
printf '%s systemctl %s\\n' "\${KUBEADM_HA_ROOT:-}" "$*" >>"$RIG_CALLS"
case "$*" in
  "restart kubelet") exit 0 ;;
  *) echo "Failed to $1 \${@: -1}.service: Unit \${@: -1}.service not loaded." >&2; exit 5 ;;
esac
`;

const awsShim = `#!/usr/bin/env bash
# aws shim: s3 cp / s3 ls against $RIG_S3 (<bucket>/<key>); records every call.
printf '%s aws %s\\n' "\${KUBEADM_HA_ROOT:-}" "$*" >>"$RIG_CALLS"
[ "\${1:-}" = s3 ] || { echo "aws shim: only s3 is simulated" >&2; exit 2; }
sub=\${2:-}
shift 2
paths=()
while [ $# -gt 0 ]; do
  case $1 in
    --sse) shift ;;
    --*) ;;
    *) paths+=("$1") ;;
  esac
  shift
done
local_of() { printf '%s/%s' "$RIG_S3" "\${1#s3://}"; }
case $sub in
  cp)
    src=\${paths[0]} dst=\${paths[1]}
    case $src in s3://*) src=$(local_of "$src") ;; esac
    case $dst in s3://*) dst=$(local_of "$dst"); mkdir -p "$(dirname "$dst")" ;; esac
    [ -f "$src" ] || { echo "fatal error: An error occurred (404) when calling the HeadObject operation" >&2; exit 1; }
    cp -f "$src" "$dst"
    ;;
  ls)
    f=$(local_of "\${paths[0]}")
    [ -f "$f" ] || exit 1
    printf '2025-01-01 00:00:00 %s %s\\n' "$(stat -c %s "$f")" "$(basename "$f")"
    ;;
  *) echo "aws shim: s3 $sub is not simulated" >&2; exit 2 ;;
esac
`;

/** kubeadm's etcd static pod manifest layout (etcd-data and etcd-certs hostPath volumes), kubeadm 1.36's image. */
function etcdManifest(flags: Record<string, string>): string {
  return [
    "apiVersion: v1",
    "kind: Pod",
    "metadata:",
    "  labels:",
    "    component: etcd",
    "    tier: control-plane",
    "  name: etcd",
    "  namespace: kube-system",
    "spec:",
    "  containers:",
    "  - command:",
    "    - etcd",
    ...Object.entries(flags).map(([k, v]) => `    - --${k}=${v}`),
    "    image: registry.k8s.io/etcd:3.6.8-0",
    "    name: etcd",
    "    volumeMounts:",
    "    - mountPath: /var/lib/etcd",
    "      name: etcd-data",
    "    - mountPath: /etc/kubernetes/pki/etcd",
    "      name: etcd-certs",
    "  hostNetwork: true",
    "  volumes:",
    "  - hostPath:",
    "      path: /etc/kubernetes/pki/etcd",
    "      type: DirectoryOrCreate",
    "    name: etcd-certs",
    "  - hostPath:",
    "      path: /var/lib/etcd",
    "      type: DirectoryOrCreate",
    "    name: etcd-data",
    "status: {}",
    "",
  ].join("\n");
}

/** bash FILE in its own process group; on timeout the whole group is killed. */
function runGroup(file: string, env: Record<string, string>, timeoutMs: number): Promise<RunResult> {
  return new Promise((done) => {
    const child = spawn("bash", [file], { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeoutMs} ms]`;
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ stdout, stderr, code: code ?? -1 });
    });
  });
}

/** Stacked control planes with real etcd 3.6 members; the node tools are the real etcdctl/etcdutl 3.6. */
class Rig36 {
  readonly binDir: string;
  readonly callsFile: string;
  readonly s3Dir: string;
  /** What the stand-in kubelet did, in order: "<node> etcd started", "<node> apiserver stopped", … */
  readonly events: string[] = [];
  lbPort = 0;
  private lb?: HttpsServer;
  private kubelet?: NodeJS.Timeout;
  private reconciling = false;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly pki: Pki,
    readonly nodes: Node36[],
  ) {
    this.binDir = join(dir, "shims");
    this.callsFile = join(dir, "calls.log");
    this.s3Dir = join(dir, "s3");
  }

  static async start(names: string[], dir: string): Promise<Rig36> {
    const pki = await makeTestPki(join(dir, "pki"), names);
    const ports = await freePorts(3 * names.length + 1);
    const nodes = names.map((name, i) => ({
      name,
      root: join(dir, "nodes", name),
      clientUrl: `https://127.0.0.1:${ports[3 * i]}`,
      peerUrl: `https://127.0.0.1:${ports[3 * i + 1]}`,
      apiserverPort: ports[3 * i + 2],
      starts: 0,
    }));
    const rig = new Rig36(dir, pki, nodes);
    rig.lbPort = ports[ports.length - 1];
    try {
      rig.setUp(`test-${process.pid}-${Date.now().toString(36)}`);
      const lbTls = { cert: readFileSync(pki.members[names[0]].server.cert), key: readFileSync(pki.members[names[0]].server.key) };
      rig.lb = createHttpsServer(lbTls, (_req, res) => {
        const up = rig.nodes.some((n) => n.apiserver?.listening && n.process?.running());
        res.writeHead(up ? 200 : 503).end(up ? "ok" : "no apiserver behind the load balancer");
      });
      await new Promise<void>((ok, fail) => rig.lb!.once("error", fail).listen(rig.lbPort, "127.0.0.1", ok));
      rig.kubelet = setInterval(() => void rig.reconcile(), 50);
      await rig.waitHealthy();
    } catch (e) {
      await rig.close();
      throw e;
    }
    return rig;
  }

  get readyzUrl(): string {
    return `https://127.0.0.1:${this.lbPort}/readyz`;
  }

  private setUp(clusterToken: string): void {
    mkdirSync(this.binDir, { recursive: true });
    mkdirSync(this.s3Dir, { recursive: true });
    mkdirSync(join(this.dir, "tmp"), { recursive: true });
    writeFileSync(join(this.binDir, "systemctl"), systemctlShim, { mode: 0o755 });
    writeFileSync(join(this.binDir, "aws"), awsShim, { mode: 0o755 });
    writeFileSync(this.callsFile, "");
    const initialCluster = this.nodes.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    for (const n of this.nodes) {
      const at = (p: string) => join(n.root, p);
      mkdirSync(at("/usr/local/bin"), { recursive: true });
      symlinkSync(etcdBinary("3.6", "etcdctl"), at(rigPaths.etcdctl));
      symlinkSync(etcdBinary("3.6", "etcdutl"), at(rigPaths.etcdutl));
      mkdirSync(at("/etc/kubernetes/pki"), { recursive: true });
      symlinkSync(this.pki.dir, at(rigPaths.pkiDir));
      mkdirSync(at(rigPaths.dataDir), { recursive: true, mode: 0o700 });
      const flags = {
        ...memberFlags({ name: n.name, dataDir: rigPaths.dataDir, clientUrl: n.clientUrl, peerUrl: n.peerUrl, initialCluster, clusterToken, pki: this.pki }),
        "max-txn-ops": "1000", // putMany loads 10,000 keys in ten transactions
      };
      // Cert flags name files in the pod's /etc/kubernetes/pki/etcd mount (the PKI, through the node's symlink).
      const podFlags = Object.fromEntries(
        Object.entries(flags).map(([k, v]) => [k, v.startsWith(this.pki.dir + "/") ? rigPaths.pkiDir + v.slice(this.pki.dir.length) : v]),
      );
      mkdirSync(at(rigPaths.manifests), { recursive: true });
      writeFileSync(at(`${rigPaths.manifests}/etcd.yaml`), etcdManifest(podFlags));
      for (const m of ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
        writeFileSync(at(`${rigPaths.manifests}/${m}.yaml`), `# stand-in ${m} manifest of ${n.name}\n`);
      }
    }
  }

  /** A client view (etcdctl 3.6) of the members that run now. */
  cluster(): EtcdCluster<"3.6"> {
    const running = this.nodes.filter((n) => n.process?.running()).map((n) => n.process as MemberProcess);
    return new EtcdCluster("3.6", this.dir, this.pki, running);
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.nodes.some((n) => !n.process?.running())) {
      if (Date.now() > deadline) {
        throw new Error(`members did not start:\n${this.cluster().describe(this.nodes.flatMap((n) => (n.process ? [n.process] : [])))}`);
      }
      await sleep(50);
    }
    await this.cluster().waitHealthy({ timeoutMs: Math.max(1000, deadline - Date.now()) });
  }

  async runScript(n: Node36, script: string, timeoutMs = 60_000): Promise<RunResult> {
    const file = join(this.dir, "tmp", `step-${n.name}-${Date.now()}-${Math.random().toString(36).slice(2)}.sh`);
    writeFileSync(file, script);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("ETCD")) env[k] = v;
    Object.assign(env, {
      PATH: `${this.binDir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      KUBEADM_HA_ROOT: n.root,
      KUBEADM_HA_POLL_SECONDS: "0.1",
      TMPDIR: join(this.dir, "tmp"),
      RIG_CALLS: this.callsFile,
      RIG_S3: this.s3Dir,
    });
    try {
      return await runGroup(file, env, timeoutMs);
    } finally {
      rmSync(file, { force: true });
    }
  }

  calls(): string[] {
    return readFileSync(this.callsFile, "utf8").split("\n").filter((l) => l !== "");
  }

  // The kubelet stand-in: etcd.yaml present -> the member runs with its command (container paths mapped through the
  // hostPath volumes); absent or changed -> stopped. kube-apiserver.yaml present -> a /readyz stand-in.
  private async reconcile(): Promise<void> {
    if (this.reconciling || this.closed) return;
    this.reconciling = true;
    try {
      await Promise.all(this.nodes.map((n) => this.reconcileNode(n)));
    } finally {
      this.reconciling = false;
    }
  }

  private async reconcileNode(n: Node36): Promise<void> {
    const manifestFile = join(n.root, rigPaths.manifests, "etcd.yaml");
    const manifest = existsSync(manifestFile) ? readFileSync(manifestFile, "utf8") : undefined;
    if (n.process?.running() && manifest !== n.manifest) {
      await n.process.stop({ graceful: true, timeoutMs: 2000 });
      this.events.push(`${n.name} etcd stopped`);
    }
    if (manifest !== undefined && !n.process?.running() && !this.closed) {
      const { args, dataDir } = argsFromManifest(n.root, manifest);
      n.manifest = manifest;
      n.starts++;
      this.events.push(`${n.name} etcd started`);
      n.process = await startMember({
        name: n.name,
        version: "3.6",
        args,
        logFile: join(this.dir, `${n.name}.log`),
        clientUrl: n.clientUrl,
        peerUrl: n.peerUrl,
        dataDir,
      });
    }
    const apiserverWanted = existsSync(join(n.root, rigPaths.manifests, "kube-apiserver.yaml"));
    if (apiserverWanted && !n.apiserver) {
      const tls = this.pki.members[n.name].server;
      const server = createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, (req, res) => {
        const ok = req.url === "/readyz" && n.process?.running();
        res.writeHead(ok ? 200 : 503).end(ok ? "ok" : "etcd not ready");
      });
      n.apiserver = server;
      await new Promise<void>((ok) => server.listen(n.apiserverPort, "127.0.0.1", ok));
      this.events.push(`${n.name} apiserver started`);
    } else if (!apiserverWanted && n.apiserver) {
      const server = n.apiserver;
      n.apiserver = undefined;
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      this.events.push(`${n.name} apiserver stopped`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.kubelet) clearInterval(this.kubelet);
    while (this.reconciling) await sleep(20);
    await Promise.all(this.nodes.map((n) => n.process?.stop()));
    for (const n of this.nodes) {
      n.apiserver?.closeAllConnections();
      n.apiserver?.close();
    }
    this.lb?.closeAllConnections();
    this.lb?.close();
  }
}

// ---- what the program's steps are given ----------------------------------------------------------------------------

/** The snapshot step's arguments on node n: the 3.6 tools, as etcdToolPaths("3.6.8") names them. */
function snapshotArgs(n: Node36, over: Partial<SaveSnapshotArgs> = {}): SaveSnapshotArgs {
  return {
    node: n.name,
    etcdctl: rigPaths.etcdctl,
    etcdutl: rigPaths.etcdutl,
    endpoint: n.clientUrl,
    cacert: rigPaths.cacert,
    cert: rigPaths.cert,
    key: rigPaths.key,
    snapshotDir: "/var/lib/etcd-snapshots",
    keep: 3,
    reason: "test",
    ...over,
  };
}

function restoreArgs(rig: Rig36, n: Node36, o: { requestId: string; snapshot: string }): RestoreEtcdArgs {
  return {
    node: n.name,
    requestId: o.requestId,
    topology: "stacked",
    snapshot: o.snapshot,
    tools: { etcdctl: rigPaths.etcdctl, etcdutl: rigPaths.etcdutl },
    tls: { cacert: rigPaths.cacert, cert: rigPaths.cert, key: rigPaths.key },
    member: n.name,
    members: rig.nodes.map((m) => ({ name: m.name, peerUrl: m.peerUrl, clientUrl: m.clientUrl })),
  };
}

interface PhaseRun {
  phase: RestorePhase;
  node: string;
  result: RunResult;
}

/** The restore phases in restorePhases order, each on every node before the next; stops at the first failure. */
async function runRestore(
  rig: Rig36,
  o: { requestId: string; snapshot: string },
  phases: readonly RestorePhase[] = restorePhases.map((p) => p.phase),
): Promise<PhaseRun[]> {
  const runs: PhaseRun[] = [];
  for (const { phase, on } of restorePhases) {
    if (!phases.includes(phase)) continue;
    for (const n of rig.nodes) {
      const script =
        on === "controlPlanes"
          ? restoreApiserverPhaseScript(phase as RestoreApiserverPhase, {
              node: n.name,
              requestId: o.requestId,
              readyzUrl: rig.readyzUrl,
              apiserverPort: n.apiserverPort,
            })
          : restoreEtcdPhaseScript(phase as RestoreEtcdPhase, restoreArgs(rig, n, o));
      const result = await rig.runScript(n, script);
      runs.push({ phase, node: n.name, result });
      if (result.code !== 0) return runs;
    }
  }
  return runs;
}

function allOk(t: ExecutionContext, runs: PhaseRun[], count: number): void {
  for (const r of runs) t.is(r.result.code, 0, `${r.phase} on ${r.node} failed:\n${r.result.stderr}`);
  t.is(runs.length, count);
}

async function startRig(t: ExecutionContext, names: string[], keys = KEYS): Promise<Rig36> {
  const dir = mkdtempSync(join(tmpdir(), "etcd36-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rig = await Rig36.start(names, dir);
  t.teardown(() => rig.close());
  // The members really are the 3.6 build: every endpoint reports the version `npm run tools` pinned.
  const status = await rig.cluster().etcdctl(["endpoint", "status", "-w", "json"], { check: true });
  const versions = (JSON.parse(status.stdout) as { Status: { version: string } }[]).map((s) => s.Status.version);
  t.deepEqual(versions, names.map(() => realToolVersion("etcd", "3.6").replace(/^v/, "")));
  t.regex(versions[0], /^3\.6\.\d+$/);
  if (keys > 0) await rig.cluster().putMany(keys, PREFIX, { batch: 1000 });
  return rig;
}

async function clusterIds(c: EtcdCluster<"3.6">): Promise<string[]> {
  const r = await c.etcdctl(["endpoint", "status", "-w", "json"], { check: true });
  return [...new Set([...r.stdout.matchAll(/"cluster_id":(\d+)/g)].map((m) => m[1]))];
}

async function memberNames(c: EtcdCluster<"3.6">): Promise<string[]> {
  const r = await c.etcdctl(["member", "list", "-w", "json"], { check: true });
  return (JSON.parse(r.stdout) as { members: { name: string }[] }).members.map((m) => m.name).sort();
}

// ---- the tools ------------------------------------------------------------------------------------------------------

test("real etcd 3.6: etcdctl 3.6 has no `snapshot status` or `snapshot restore` (only save); etcdutl 3.6 has both", async (t) => {
  const rig = await startRig(t, ["cp-0"], 100);
  const file = join(rig.dir, "plain.db");
  await rig.cluster().etcdctl(["snapshot", "save", file], { check: true });
  const etcdctl = etcdBinary("3.6", "etcdctl");
  const etcdutl = etcdBinary("3.6", "etcdutl");
  t.regex((await run(etcdctl, ["version"])).stdout, /^etcdctl version: 3\.6\.\d+$/m);
  t.regex((await run(etcdutl, ["version"])).stdout, /^etcdutl version: 3\.6\.\d+$/m);

  // etcdctl: `snapshot` offers save alone. `snapshot status` prints the usage of `snapshot` (and exits 0: only
  // its output tells), `snapshot restore` refuses its flags and restores nothing.
  const help = await run(etcdctl, ["snapshot", "--help"]);
  t.regex(help.stdout, /^COMMANDS:\n\s+save\t[^\n]*\n\n/m, "save is the only snapshot subcommand");
  const etcdctlEnv = { env: { ...process.env, ETCDCTL_API: "3" } };
  const status = await run(etcdctl, ["snapshot", "status", file, "-w", "json"], etcdctlEnv);
  t.notRegex(status.stdout, /"totalKey"/, `etcdctl 3.6 snapshot status printed a status (exit ${status.code})`);
  t.regex(status.stdout, /etcdctl snapshot <subcommand>/);
  const restoreDir = join(rig.dir, "by-etcdctl.etcd");
  const restore = await run(etcdctl, ["snapshot", "restore", file, "--data-dir", restoreDir], etcdctlEnv);
  t.not(restore.code, 0);
  t.false(existsSync(join(restoreDir, "member/snap/db")), "etcdctl 3.6 restored a snapshot");

  // etcdutl: both.
  const good = await run(etcdutl, ["snapshot", "status", file, "-w", "json"]);
  t.is(good.code, 0, good.stderr);
  t.true((JSON.parse(good.stdout) as { totalKey: number }).totalKey >= 100);
  const restored = await run(etcdutl, ["snapshot", "restore", file, "--data-dir", join(rig.dir, "by-etcdutl.etcd")]);
  t.is(restored.code, 0, restored.stderr);
  t.true(existsSync(join(rig.dir, "by-etcdutl.etcd/member/snap/db")));

  // So the snapshot step given etcdctl alone (the etcd 3.4 way) cannot verify against 3.6, and keeps no file.
  const node = rig.nodes[0];
  const noEtcdutl = snapshotArgs(node);
  delete noEtcdutl.etcdutl;
  const r = await rig.runScript(node, saveSnapshotScript(noEtcdutl));
  t.not(r.code, 0);
  t.regex(r.stderr, /unexpected snapshot status output: NAME:\s+snapshot - Manages etcd node snapshots/);
  const dir = join(node.root, "/var/lib/etcd-snapshots");
  t.deepEqual(readdirSync(dir).filter((f) => f !== ".lock"), [], "no snapshot, no temporary file");
  // With etcdutl the same step verifies.
  const ok = await rig.runScript(node, saveSnapshotScript(snapshotArgs(node)));
  t.is(ok.code, 0, ok.stderr);
  t.true(parseSnapshotSummary(ok.stdout).totalKey >= 100);
});

// ---- the snapshot step --------------------------------------------------------------------------------------------

test("real etcd 3.6: the snapshot step saves, verifies (etcdutl), records, prunes and uploads a snapshot of 10,000 keys from 3 members", async (t) => {
  const rig = await startRig(t, ["cp-0", "cp-1", "cp-2"]);
  const cluster = rig.cluster();
  const keysInEtcd = await cluster.countKeys("");
  t.is(keysInEtcd, KEYS);

  const node = rig.nodes[0];
  const snapshotDir = "/var/lib/etcd-snapshots";
  const localDir = join(node.root, snapshotDir);
  const args = (reason: string, over: Partial<SaveSnapshotArgs> = {}) =>
    snapshotArgs(node, { keep: 2, reason, upload: { s3Uri: "s3://test-bucket/clusters/c1/snapshots/" }, ...over });

  // 1. The first snapshot: verified, recorded, and its key count is what etcd reports.
  const first = await rig.runScript(node, saveSnapshotScript(args("pre-upgrade-v1.36.0")));
  t.is(first.code, 0, first.stderr);
  t.is(first.stdout.trim().split("\n").length, 1, "one summary line on stdout");
  const summary = parseSnapshotSummary(first.stdout);
  const status = await cluster.etcdctl(["endpoint", "status", "-w", "json", `--endpoints=${node.clientUrl}`], { check: true });
  const revision = (JSON.parse(status.stdout) as { Status: { header: { revision: number } } }[])[0].Status.header.revision;
  const name = summary.path.slice(snapshotDir.length + 1);
  t.regex(name, snapshotFilePattern(node.name));
  t.true(name.endsWith("-pre-upgrade-v1.36.0.db"));
  const file = join(localDir, name);
  const sidecar = JSON.parse(readFileSync(`${file}.json`, "utf8")) as {
    keys: number; totalKey: number; revision: number; sha256: string; file: string; reason: string;
  };
  t.is(sidecar.keys, keysInEtcd);
  t.is(summary.keys, keysInEtcd);
  t.is(sidecar.totalKey, summary.totalKey);
  t.is(sidecar.revision, revision);
  t.is(summary.revision, revision);
  t.is(sidecar.sha256, sha256(file));
  t.is(summary.sha256, sha256(file));
  t.is(sidecar.file, name);
  t.is(sidecar.reason, "pre-upgrade-v1.36.0");
  // Checked again with the real etcdutl 3.6, outside the script.
  const independent = await run(etcdBinary("3.6", "etcdutl"), ["snapshot", "status", file, "-w", "json"]);
  t.is(independent.code, 0, independent.stderr);
  const st = JSON.parse(independent.stdout) as { totalKey: number; revision: number };
  t.is(st.totalKey, sidecar.totalKey);
  t.true(st.totalKey >= keysInEtcd, "db entries include every key's revision");
  t.is(st.revision, revision);
  // Uploaded, snapshot and sidecar, with server-side encryption.
  t.is(summary.s3, `s3://test-bucket/clusters/c1/snapshots/${name}`);
  t.is(sha256(join(rig.s3Dir, "test-bucket/clusters/c1/snapshots", name)), sha256(file));
  t.true(existsSync(join(rig.s3Dir, "test-bucket/clusters/c1/snapshots", `${name}.json`)));
  const uploads = rig.calls().filter((l) => l.includes(" aws s3 cp "));
  t.is(uploads.length, 2);
  for (const u of uploads) t.notRegex(u, /--sse/, "no encryption header: the bucket's default (S3-managed or the KMS key) applies");

  // 2. Two more (one key more each time): keep=2 leaves the newest two and their sidecars; other files stay.
  writeFileSync(join(localDir, "operator-notes.txt"), "not a snapshot\n");
  const names = [name];
  let lastLog = "";
  for (const [i, reason] of ["scheduled", "request-42"].entries()) {
    await cluster.etcdctl(["put", `/registry/after-${i}`, "x"], { check: true });
    const r = await rig.runScript(node, saveSnapshotScript(args(reason)));
    t.is(r.code, 0, r.stderr);
    const s = parseSnapshotSummary(r.stdout);
    t.is(s.keys, keysInEtcd + i + 1);
    names.push(s.path.slice(snapshotDir.length + 1));
    lastLog = r.stderr;
  }
  t.deepEqual(
    readdirSync(localDir).filter((f) => !f.startsWith(".lock")).sort(),
    [names[1], `${names[1]}.json`, names[2], `${names[2]}.json`, "operator-notes.txt"].sort(),
  );
  t.true(lastLog.includes(`pruned ${name} (keeping the newest 2)`), lastLog);

  // 3. A member that does not answer: the step fails, leaves no file, and the kept snapshots stay.
  const before = readdirSync(localDir).sort();
  const dead = await rig.runScript(node, saveSnapshotScript(args("scheduled", { endpoint: "https://127.0.0.1:1", upload: undefined })));
  t.not(dead.code, 0);
  t.regex(dead.stderr, /nothing answers on https:\/\/127\.0\.0\.1:1, no snapshot taken/);
  t.deepEqual(readdirSync(localDir).sort(), before);
});

// ---- the restore ----------------------------------------------------------------------------------------------------

test("real etcd 3.6, stacked: 3 members restored through the static manifests with etcdutl, resuming after an interruption", async (t) => {
  const rig = await startRig(t, ["cp-0", "cp-1", "cp-2"]);
  const first = rig.nodes[0];
  const saved = await rig.runScript(first, saveSnapshotScript(snapshotArgs(first)));
  t.is(saved.code, 0, saved.stderr);
  const snap = parseSnapshotSummary(saved.stdout);
  t.is(snap.keys, KEYS);
  // The operator put the same snapshot (and sidecar) at the same path on every member.
  for (const n of rig.nodes.slice(1)) {
    for (const f of [snap.path, `${snap.path}.json`]) {
      mkdirSync(dirname(join(n.root, f)), { recursive: true });
      copyFileSync(join(first.root, f), join(n.root, f));
    }
  }
  const c = rig.cluster();
  await c.etcdctl(["put", "/after-snapshot", "written after the snapshot"], { check: true });
  const before = await clusterIds(c);
  const requestId = "r7";
  const eventsBefore = rig.events.length;

  // Interrupted after phase 4 on every member (a failed pulumi up), then the whole plan runs again.
  const upTo: RestorePhase[] = ["fetchAndVerify", "stopApiserver", "stopEtcd", "restoreMember"];
  allOk(t, await runRestore(rig, { requestId, snapshot: snap.path }, upTo), 12);
  const runs = await runRestore(rig, { requestId, snapshot: snap.path });
  allOk(t, runs, rig.nodes.length * 8);
  for (const r of runs.filter((x) => upTo.includes(x.phase))) t.regex(r.result.stderr, /already/, `${r.phase} on ${r.node}`);

  // Restored: healthy, exactly its members, the snapshot's keys and nothing written after it, a new cluster.
  await rig.waitHealthy();
  const after = rig.cluster();
  t.deepEqual(await memberNames(after), ["cp-0", "cp-1", "cp-2"]);
  t.is(await after.countKeys(PREFIX), KEYS, "every key of the snapshot is back");
  t.is(await after.countKeys("/after-snapshot"), 0, "the key written after the snapshot is gone");
  const ids = await clusterIds(after);
  t.is(ids.length, 1, "one cluster");
  t.notDeepEqual(ids, before, "a new cluster (new --initial-cluster-token)");
  const newDir = restoredDataDir(requestId);
  for (const n of rig.nodes) {
    const link = join(n.root, rigPaths.dataDir);
    t.true(lstatSync(link).isSymbolicLink(), `${n.name}: ${rigPaths.dataDir} is a symlink`);
    t.is(readlinkSync(link), `etcd-restored-${requestId}`);
    t.true(existsSync(join(n.root, newDir, "member/snap/db")));
    const kept = readdirSync(join(n.root, "/var/lib")).filter((f) => f.startsWith("etcd.pre-restore-"));
    t.is(kept.length, 1, `${n.name}: the old data dir is kept, renamed`);
    t.regex(kept[0], /^etcd\.pre-restore-\d{8}T\d{6}Z$/);
    t.true(existsSync(join(n.root, "/var/lib", kept[0], "member/snap/db")), "with its data");

    const manifests = join(n.root, rigPaths.manifests);
    t.deepEqual(readdirSync(manifests).sort(), ["etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"]);
    const pod = parseYaml(readFileSync(join(manifests, "etcd.yaml"), "utf8")) as {
      spec: { volumes: { name: string; hostPath: { path: string } }[]; containers: { command: string[] }[] };
    };
    t.is(pod.spec.volumes.find((v) => v.name === "etcd-data")?.hostPath.path, newDir);
    t.is(pod.spec.volumes.find((v) => v.name === "etcd-certs")?.hostPath.path, "/etc/kubernetes/pki/etcd");
    t.true(pod.spec.containers[0].command.includes("--data-dir=/var/lib/etcd"), "the container path is unchanged");
    t.is(n.process?.dataDir, join(n.root, newDir));
    t.true(rig.calls().includes(`${n.root} systemctl restart kubelet`));
  }
  // --bump-revision (etcdutl 3.6): informers see a compaction instead of silently missing writes.
  const status = await after.etcdctl(["endpoint", "status", "-w", "json"], { check: true });
  const revisions = [...status.stdout.matchAll(/"revision":(\d+)/g)].map((m) => Number(m[1]));
  t.is(revisions.length, 3);
  for (const r of revisions) t.true(r > 1_000_000_000, `revision ${r}`);
  // …and the old revisions are compacted away: a read at the snapshot's revision is refused.
  const old = await after.etcdctl(["get", PREFIX, "--prefix", "--keys-only", "--limit=1", `--rev=${snap.revision}`]);
  t.not(old.code, 0);
  t.regex(old.stderr, /compacted/);

  // Order, as the stand-in kubelet saw it: every apiserver down before any etcd stops; every etcd member stopped
  // before any restarts; every etcd member started before any apiserver returns.
  const ev = rig.events.slice(eventsBefore);
  const idx = (what: string) => ev.map((e, i) => (e.endsWith(what) ? i : -1)).filter((i) => i >= 0);
  t.is(idx("apiserver stopped").length, 3);
  t.is(idx("etcd stopped").length, 3);
  t.is(idx("etcd started").length, 3);
  t.is(idx("apiserver started").length, 3);
  t.true(Math.max(...idx("apiserver stopped")) < Math.min(...idx("etcd stopped")), ev.join("\n"));
  t.true(Math.max(...idx("etcd stopped")) < Math.min(...idx("etcd started")), ev.join("\n"));
  t.true(Math.max(...idx("etcd started")) < Math.min(...idx("apiserver started")), ev.join("\n"));
});

test("real etcd 3.6: a corrupt or truncated snapshot is refused before anything is touched; the old data still serves", async (t) => {
  const rig = await startRig(t, ["cp-0"]);
  const n = rig.nodes[0];
  const saved = await rig.runScript(n, saveSnapshotScript(snapshotArgs(n)));
  t.is(saved.code, 0, saved.stderr);
  const snap = parseSnapshotSummary(saved.stdout);
  const good = join(n.root, snap.path);
  const size = lstatSync(good).size;
  const pid = n.process?.pid;
  const manifest = readFileSync(join(n.root, rigPaths.manifests, "etcd.yaml"), "utf8");

  const variant = (name: string, sidecar: boolean, damage: (file: string) => void): string => {
    const path = `/var/lib/etcd-snapshots/${name}.db`;
    copyFileSync(good, join(n.root, path));
    if (sidecar) copyFileSync(`${good}.json`, join(n.root, `${path}.json`));
    damage(join(n.root, path));
    return path;
  };
  const flip = (file: string) => {
    const fd = openSync(file, "r+");
    writeSync(fd, Buffer.from("corrupted!"), 0, 10, Math.floor(size / 2));
    closeSync(fd);
  };
  const cases: [string, string, RegExp][] = [
    ["corrupt, with sidecar", variant("corrupt-sidecar", true, flip), /its sha256 is [0-9a-f]{64}, the sidecar records [0-9a-f]{64}/],
    ["corrupt, no sidecar", variant("corrupt-bare", false, flip), /snapshot status failed|a trial restore failed/],
    ["truncated, with sidecar", variant("truncated-sidecar", true, (f) => truncateSync(f, Math.floor(size / 3))), /its sha256 is [0-9a-f]{64}, the sidecar records/],
    ["truncated, no sidecar", variant("truncated-bare", false, (f) => truncateSync(f, size - 100)), /snapshot status failed|a trial restore failed/],
    ["missing", "/var/lib/etcd-snapshots/nope.db", /no such file on this member/],
  ];
  for (const [i, [what, snapshot, reason]] of cases.entries()) {
    const requestId = `bad-${i}`;
    const args = restoreArgs(rig, n, { requestId, snapshot });
    const r = await rig.runScript(n, fetchAndVerifyScript(args));
    t.not(r.code, 0, `${what}: refused`);
    t.regex(r.stderr, /refusing snapshot .*; nothing was changed/, what);
    t.regex(r.stderr, reason, what);
    const rd = join(n.root, "/var/lib/kubeadm-ha/restore", requestId);
    t.deepEqual(readdirSync(rd).filter((f) => f !== "source"), [], `${what}: nothing fetched is left`);
    // The next phase refuses to stop etcd without a verified snapshot.
    const stop = await rig.runScript(n, stopEtcdScript(args));
    t.not(stop.code, 0);
    t.regex(stop.stderr, /phase fetchAndVerify of restore bad-\d has not finished on this node: no verified snapshot/);
  }
  // The undamaged snapshot passes the same phase (so the refusals above are about the damage).
  const ok = await rig.runScript(n, fetchAndVerifyScript(restoreArgs(rig, n, { requestId: "good", snapshot: snap.path })));
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, new RegExp(`KUBEADM_HA_RESTORE_SNAPSHOT sha256=${snap.sha256} revision=${snap.revision} `));

  // The member never stopped and still serves its data from the untouched data dir and manifest.
  t.is(n.process?.pid, pid);
  t.true(n.process?.running());
  t.is(n.starts, 1);
  t.is(readFileSync(join(n.root, rigPaths.manifests, "etcd.yaml"), "utf8"), manifest);
  t.false(lstatSync(join(n.root, rigPaths.dataDir)).isSymbolicLink());
  t.deepEqual(readdirSync(join(n.root, "/var/lib")).filter((f) => f.startsWith("etcd-restored-") || f.includes("pre-restore")), []);
  t.is(await rig.cluster().countKeys(PREFIX), KEYS);
  t.false(rig.calls().some((l) => l.includes(" systemctl ")), "no service-manager call at all");
});
