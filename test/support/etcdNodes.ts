// Test rig for the etcd snapshot and restore scripts: REAL etcd members, each on its own "node" (a scratch root that
// the scripts see as KUBEADM_HA_ROOT), managed the way the real nodes manage them:
//
// - external topology: etcd.service. A `systemctl` shim on the scripts' PATH asks this test process (over a unix
//   socket) to stop/start the member; "start" reads the member's environment file $R/etc/etcd/etcd.env (as the
//   unit's EnvironmentFile would) and runs etcd with it, ETCD_DATA_DIR resolved inside the node's root.
// - stacked topology: a kubelet stand-in polls $R/etc/kubernetes/manifests: etcd.yaml present -> the member runs
//   with the manifest's command, container paths mapped through its hostPath volumes into the node's root; absent
//   or changed -> stopped. kube-apiserver.yaml present -> a stand-in HTTPS apiserver answers /readyz on the node's
//   apiserver port ("ok" while the node's etcd runs). A stand-in load balancer answers /readyz "ok" while any
//   apiserver does.
// - `aws` shim: `s3 cp`/`s3 ls` against a directory standing in for S3 (<dir>/s3/<bucket>/<key>); `chown` shim: records
//   (the etcd user does not exist here). Every shim call is recorded in <dir>/calls.log.
//
// Members are started by this process (test/support/etcdCluster.ts startMember), so they never outlive it.
// Versions: 3.4/3.5 run Debian's builds (.tools/), 3.6 the real tier's (npm run tools); each node's etcdctl/etcdutl
// and the members come from etcdBinary, so a 3.6 path is resolved only when a 3.6 rig starts.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync, existsSync, symlinkSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  EtcdCluster,
  etcdBinary,
  flagsToEnv,
  freePorts,
  makeTestPki,
  memberFlags,
  startMember,
  type EtcdVersion,
  type HarnessEtcdVersion,
  type MemberProcess,
  type Pki,
  type RunResult,
} from "./etcdCluster";
import type { SaveSnapshotArgs } from "../../lifecycle/scripts/saveSnapshot";
import {
  restoreApiserverPhaseScript,
  restoreEtcdPhaseScript,
  restorePhases,
  type RestoreApiserverArgs,
  type RestoreApiserverPhase,
  type RestoreEtcdArgs,
  type RestoreEtcdPhase,
  type RestorePhase,
} from "../../lifecycle/scripts/restoreSnapshot";
import { realToolVersion } from "./realTools";

export type Topology = "stacked" | "external";

/** Node paths the rig sets up (what the scripts are given). */
export const rigPaths = {
  etcdctl: "/usr/local/bin/etcdctl",
  etcdutl: "/usr/local/bin/etcdutl",
  pkiDir: "/etc/kubernetes/pki/etcd",
  cacert: "/etc/kubernetes/pki/etcd/ca.crt",
  cert: "/etc/kubernetes/pki/etcd/apiserver-etcd-client.crt",
  key: "/etc/kubernetes/pki/etcd/apiserver-etcd-client.key",
  envFile: "/etc/etcd/etcd.env",
  manifests: "/etc/kubernetes/manifests",
  dataDir: "/var/lib/etcd",
} as const;

export interface RigNode {
  name: string;
  root: string;
  clientUrl: string;
  peerUrl: string;
  apiserverPort: number;
  process?: MemberProcess;
  /** stacked: the manifest text the running member was started from. */
  manifest?: string;
  apiserver?: HttpsServer;
  /** How many times this rig started the member. */
  starts: number;
}

export interface RigOptions<V extends HarnessEtcdVersion = EtcdVersion> {
  /** 3.4/3.5: Debian's tools (.tools/); 3.6: the real tier's build (npm run tools), resolved only when asked for. */
  version: V;
  topology: Topology;
  names: string[];
  dir: string;
  /** Reuse a PKI (must have certificates for names). */
  pki?: Pki;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("ETCD")) env[k] = v;
  return env;
}

/** bash FILE in its own process group; on timeout the whole group is killed (etcdctl children included). */
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
    child.on("error", (e) => {
      clearTimeout(timer);
      done({ stdout, stderr: stderr + String(e), code: -1 });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ stdout, stderr, code: code ?? -1 });
    });
  });
}

const systemctlShim = `#!/usr/bin/env bash
# systemctl shim (test/support/etcdNodes.ts): the test process plays systemd for this node.
printf '%s systemctl %s\\n' "\${KUBEADM_HA_ROOT:-}" "$*" >>"$ETCD_NODES_CALLS"
out=$(printf '%s\\n' "$@" | curl -sS --max-time 60 --unix-socket "$ETCD_NODES_SOCKET" \\
  -H "X-Root: \${KUBEADM_HA_ROOT:-}" --data-binary @- http://systemd/systemctl) || {
  echo "systemctl shim: the test process did not answer" >&2
  exit 1
}
code=\${out%%$'\\n'*}
rest=\${out#*$'\\n'}
if [ -n "$rest" ]; then printf '%s\\n' "$rest"; fi
exit "$code"
`;

const chownShim = `#!/usr/bin/env bash
# chown shim (test/support/etcdNodes.ts): records; the etcd user does not exist on a test machine.
printf '%s chown %s\\n' "\${KUBEADM_HA_ROOT:-}" "$*" >>"$ETCD_NODES_CALLS"
`;

const awsShim = `#!/usr/bin/env bash
# aws shim (test/support/etcdNodes.ts): s3 cp / s3 ls against $ETCD_NODES_S3 (<bucket>/<key>); records every call.
printf '%s aws %s\\n' "\${KUBEADM_HA_ROOT:-}" "$*" >>"$ETCD_NODES_CALLS"
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
local_of() { printf '%s/%s' "$ETCD_NODES_S3" "\${1#s3://}"; }
case $sub in
  cp)
    src=\${paths[0]} dst=\${paths[1]}
    case $src in s3://*) src=$(local_of "$src") ;; esac
    case $dst in s3://*) dst=$(local_of "$dst"); mkdir -p "$(dirname "$dst")" ;; esac
    [ -f "$src" ] || { echo "fatal error: An error occurred (404) when calling the HeadObject operation: Key does not exist" >&2; exit 1; }
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

/** The etcd image kubeadm would name for the rig's version (3.6: the version the real tier built). */
function etcdImage(version: HarnessEtcdVersion): string {
  return `registry.k8s.io/etcd:${version === "3.6" ? realToolVersion("etcd", "3.6").replace(/^v/, "") : "3.5.16"}-0`;
}

/** A kubeadm-like etcd static pod manifest for a member (flags from memberFlags, kubeadm's volume layout). */
function etcdManifest(flags: Record<string, string>, image: string): string {
  const command = ["etcd", ...Object.entries(flags).map(([k, v]) => `--${k}=${v}`)];
  return [
    "apiVersion: v1",
    "kind: Pod",
    "metadata:",
    "  annotations:",
    `    kubeadm.kubernetes.io/etcd.advertise-client-urls: ${flags["advertise-client-urls"]}`,
    "  labels:",
    "    component: etcd",
    "    tier: control-plane",
    "  name: etcd",
    "  namespace: kube-system",
    "spec:",
    "  containers:",
    "  - command:",
    ...command.map((c) => `    - ${c}`),
    `    image: ${image}`,
    "    imagePullPolicy: IfNotPresent",
    "    livenessProbe:",
    "      httpGet:",
    "        host: 127.0.0.1",
    "        path: /livez",
    "        port: 2381",
    "        scheme: HTTP",
    "    name: etcd",
    "    volumeMounts:",
    "    - mountPath: /var/lib/etcd",
    "      name: etcd-data",
    "    - mountPath: /etc/kubernetes/pki/etcd",
    "      name: etcd-certs",
    "  hostNetwork: true",
    "  priorityClassName: system-node-critical",
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

interface PodSpec {
  spec: {
    containers: { command: string[]; volumeMounts?: { mountPath: string; name: string }[] }[];
    volumes?: { name: string; hostPath?: { path: string } }[];
  };
}

/** The member's argv from a manifest: container paths in flag values mapped to <root>/<hostPath>. */
export function argsFromManifest(root: string, manifest: string): { args: string[]; dataDir: string } {
  const pod = parseYaml(manifest) as PodSpec;
  const container = pod.spec.containers[0];
  const hostPaths = new Map((pod.spec.volumes ?? []).map((v) => [v.name, v.hostPath?.path ?? ""]));
  const mounts = (container.volumeMounts ?? []).map((m) => ({ mountPath: m.mountPath, host: hostPaths.get(m.name) ?? "" }));
  const mapPath = (value: string) => {
    for (const m of mounts) {
      if (value === m.mountPath || value.startsWith(m.mountPath + "/")) return join(root, m.host + value.slice(m.mountPath.length));
    }
    return value;
  };
  let dataDir = "";
  const args = container.command.slice(1).map((a) => {
    const eq = a.indexOf("=");
    if (!a.startsWith("--") || eq < 0) return a;
    const mapped = mapPath(a.slice(eq + 1));
    if (a.startsWith("--data-dir=")) dataDir = mapped;
    return `${a.slice(0, eq)}=${mapped}`;
  });
  return { args, dataDir };
}

export class EtcdNodes<V extends HarnessEtcdVersion = EtcdVersion> {
  readonly nodes: RigNode[];
  readonly binDir: string;
  readonly callsFile: string;
  readonly s3Dir: string;
  readonly socket: string;
  private systemd?: HttpServer;
  private kubelet?: NodeJS.Timeout;
  private lb?: HttpsServer;
  lbPort = 0;
  /** What the stand-in systemd and kubelet did, in order: "<node> etcd started", "<node> apiserver stopped", … */
  readonly events: string[] = [];
  private closed = false;
  private reconciling = false;

  private constructor(
    readonly version: V,
    readonly topology: Topology,
    readonly dir: string,
    readonly pki: Pki,
    nodes: RigNode[],
  ) {
    this.nodes = nodes;
    this.binDir = join(dir, "bin");
    this.callsFile = join(dir, "calls.log");
    this.s3Dir = join(dir, "s3");
    this.socket = join(dir, "systemd.sock");
  }

  /** Sets up the nodes and starts every member; resolves once the cluster is healthy. */
  static async start<V extends HarnessEtcdVersion = EtcdVersion>(o: RigOptions<V>): Promise<EtcdNodes<V>> {
    mkdirSync(o.dir, { recursive: true });
    const pki = o.pki ?? (await makeTestPki(join(o.dir, "pki"), o.names));
    const ports = await freePorts(3 * o.names.length + 1);
    const nodes: RigNode[] = o.names.map((name, i) => ({
      name,
      root: join(o.dir, "nodes", name),
      clientUrl: `https://127.0.0.1:${ports[3 * i]}`,
      peerUrl: `https://127.0.0.1:${ports[3 * i + 1]}`,
      apiserverPort: ports[3 * i + 2],
      starts: 0,
    }));
    const rig = new EtcdNodes(o.version, o.topology, o.dir, pki, nodes);
    rig.lbPort = ports[ports.length - 1];
    try {
      rig.setUp(`test-${process.pid}-${Date.now().toString(36)}`);
      await rig.listen();
      if (o.topology === "external") {
        for (const n of nodes) await rig.startUnit(n);
      } else {
        rig.kubelet = setInterval(() => void rig.reconcile(), 50);
      }
      await rig.waitHealthy();
    } catch (e) {
      await rig.close();
      throw e;
    }
    return rig;
  }

  /** The readyz URL of the stand-in load balancer. */
  get readyzUrl(): string {
    return `https://127.0.0.1:${this.lbPort}/readyz`;
  }

  node(name: string): RigNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** A client view of the members that run now (etcdctl, putMany, countKeys). */
  cluster(): EtcdCluster<V> {
    const running = this.nodes.filter((n) => n.process?.running()).map((n) => n.process as MemberProcess);
    return new EtcdCluster(this.version, this.dir, this.pki, running);
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.nodes.some((n) => !n.process?.running())) {
      if (Date.now() > deadline) throw new Error(`members did not start: ${this.describe()}`);
      await sleep(50);
    }
    await this.cluster().waitHealthy({ timeoutMs: Math.max(1000, deadline - Date.now()) });
  }

  describe(): string {
    return this.cluster().describe(this.nodes.flatMap((n) => (n.process ? [n.process] : [])));
  }

  /** The node's member flags (cert paths absolute into the PKI, data dir as on the node). */
  flags(n: RigNode, clusterToken: string): Record<string, string> {
    return {
      ...memberFlags({
        name: n.name,
        dataDir: rigPaths.dataDir,
        clientUrl: n.clientUrl,
        peerUrl: n.peerUrl,
        initialCluster: this.nodes.map((m) => `${m.name}=${m.peerUrl}`).join(","),
        clusterToken,
        pki: this.pki,
      }),
      // Lets putMany load 10,000 keys in ten transactions.
      "max-txn-ops": "1000",
    };
  }

  private setUp(clusterToken: string): void {
    mkdirSync(this.binDir, { recursive: true });
    mkdirSync(this.s3Dir, { recursive: true });
    mkdirSync(join(this.dir, "tmp"), { recursive: true });
    writeFileSync(join(this.binDir, "systemctl"), systemctlShim, { mode: 0o755 });
    writeFileSync(join(this.binDir, "chown"), chownShim, { mode: 0o755 });
    writeFileSync(join(this.binDir, "aws"), awsShim, { mode: 0o755 });
    writeFileSync(this.callsFile, "");
    for (const n of this.nodes) {
      const at = (p: string) => join(n.root, p);
      mkdirSync(at("/usr/local/bin"), { recursive: true });
      symlinkSync(etcdBinary(this.version, "etcdctl"), at(rigPaths.etcdctl));
      if (this.version !== "3.4") symlinkSync(etcdBinary(this.version, "etcdutl"), at(rigPaths.etcdutl));
      mkdirSync(at("/etc/kubernetes/pki"), { recursive: true });
      symlinkSync(this.pki.dir, at(rigPaths.pkiDir));
      mkdirSync(at(rigPaths.dataDir), { recursive: true, mode: 0o700 });
      const flags = this.flags(n, clusterToken);
      if (this.topology === "external") {
        mkdirSync(at("/etc/etcd"), { recursive: true });
        const env = flagsToEnv(flags);
        writeFileSync(at(rigPaths.envFile), Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join(""));
      } else {
        // Cert flags name files in the pod's /etc/kubernetes/pki/etcd mount (the PKI, through the node's symlink).
        const podFlags = Object.fromEntries(
          Object.entries(flags).map(([k, v]) => [k, v.startsWith(this.pki.dir + "/") ? rigPaths.pkiDir + v.slice(this.pki.dir.length) : v]),
        );
        mkdirSync(at(rigPaths.manifests), { recursive: true });
        writeFileSync(at(`${rigPaths.manifests}/etcd.yaml`), etcdManifest(podFlags, etcdImage(this.version)));
        for (const m of ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
          writeFileSync(at(`${rigPaths.manifests}/${m}.yaml`), `# stand-in ${m} manifest of ${n.name}\n`);
        }
      }
    }
  }

  /** Environment of a script run on node n. */
  env(n: RigNode): Record<string, string> {
    return {
      ...cleanEnv(),
      PATH: `${this.binDir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      KUBEADM_HA_ROOT: n.root,
      KUBEADM_HA_POLL_SECONDS: "0.1",
      TMPDIR: join(this.dir, "tmp"),
      ETCD_NODES_SOCKET: this.socket,
      ETCD_NODES_CALLS: this.callsFile,
      ETCD_NODES_S3: this.s3Dir,
    };
  }

  /** Runs a node script on node n (as root would over SSH, but against the node's scratch root). */
  async runScript(n: RigNode | string, script: string, opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    const node = typeof n === "string" ? this.node(n) : n;
    const file = join(this.dir, "tmp", `step-${node.name}-${Date.now()}-${Math.random().toString(36).slice(2)}.sh`);
    writeFileSync(file, script);
    try {
      return await runGroup(file, this.env(node), opts.timeoutMs ?? 60_000);
    } finally {
      rmSync(file, { force: true });
    }
  }

  /** The shim calls recorded so far, as "<root> <cmd> <args>" lines. */
  calls(): string[] {
    return readFileSync(this.callsFile, "utf8").split("\n").filter((l) => l !== "");
  }

  // ---- systemd (external) ---------------------------------------------------------------------------------------

  private async startUnit(n: RigNode): Promise<void> {
    if (n.process?.running()) return;
    const envFile = join(n.root, rigPaths.envFile);
    const env: Record<string, string> = {};
    for (const line of readFileSync(envFile, "utf8").split("\n")) {
      const eq = line.indexOf("=");
      if (line.startsWith("#") || eq <= 0) continue;
      env[line.slice(0, eq)] = line.slice(eq + 1);
    }
    const dataDir = join(n.root, env.ETCD_DATA_DIR ?? rigPaths.dataDir);
    env.ETCD_DATA_DIR = dataDir;
    n.starts++;
    this.events.push(`${n.name} etcd started`);
    n.process = await startMember({
      name: n.name,
      version: this.version,
      args: [],
      env,
      logFile: join(this.dir, `${n.name}.log`),
      clientUrl: n.clientUrl,
      peerUrl: n.peerUrl,
      dataDir,
    });
  }

  private async stopUnit(n: RigNode): Promise<void> {
    // systemd: SIGTERM, then SIGKILL after the stop timeout (short here: the data is replaced anyway).
    if (n.process?.running()) {
      await n.process.stop({ graceful: true, timeoutMs: 2000 });
      this.events.push(`${n.name} etcd stopped`);
    }
  }

  private async systemctl(root: string, args: string[]): Promise<{ code: number; out: string }> {
    const n = this.nodes.find((x) => x.root === root);
    if (!n) return { code: 1, out: `systemctl shim: unknown node root ${root}` };
    const verb = args.find((a) => !a.startsWith("-")) ?? "";
    const unit = (args[args.length - 1] ?? "").replace(/\.service$/, "");
    if (unit === "kubelet") return { code: 0, out: "" }; // recorded by the shim
    if (unit !== "etcd" || this.topology !== "external") return { code: 5, out: `Failed to ${verb} ${unit}.service: Unit ${unit}.service not loaded.` };
    switch (verb) {
      case "start":
        await this.startUnit(n);
        return { code: 0, out: "" };
      case "stop":
        await this.stopUnit(n);
        return { code: 0, out: "" };
      case "restart":
        await this.stopUnit(n);
        await this.startUnit(n);
        return { code: 0, out: "" };
      case "is-active":
        return n.process?.running() ? { code: 0, out: "active" } : { code: 3, out: "inactive" };
      default:
        return { code: 1, out: `systemctl shim: ${verb} is not simulated` };
    }
  }

  private listen(): Promise<void> {
    const tls = { cert: readFileSync(this.pki.members[this.nodes[0].name].server.cert), key: readFileSync(this.pki.members[this.nodes[0].name].server.key) };
    this.lb = createHttpsServer(tls, (req, res) => {
      const up = this.nodes.some((n) => n.apiserver?.listening && n.process?.running());
      res.writeHead(up ? 200 : 503).end(up ? "ok" : "no apiserver behind the load balancer");
    });
    this.systemd = createHttpServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (d: string) => (body += d));
      req.on("end", () => {
        const root = String(req.headers["x-root"] ?? "");
        const args = body.split("\n").filter((a) => a !== "");
        this.systemctl(root, args).then(
          (r) => res.end(`${r.code}\n${r.out}`),
          (e: unknown) => res.end(`1\nsystemctl shim: ${String(e)}`),
        );
      });
    });
    return Promise.all([
      new Promise<void>((ok, fail) => this.systemd!.once("error", fail).listen(this.socket, ok)),
      new Promise<void>((ok, fail) => this.lb!.once("error", fail).listen(this.lbPort, "127.0.0.1", ok)),
    ]).then(() => undefined);
  }

  // ---- kubelet (stacked) ----------------------------------------------------------------------------------------

  private async reconcile(): Promise<void> {
    if (this.reconciling || this.closed) return;
    this.reconciling = true;
    try {
      await Promise.all(this.nodes.map((n) => this.reconcileNode(n)));
    } finally {
      this.reconciling = false;
    }
  }

  private async reconcileNode(n: RigNode): Promise<void> {
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
        version: this.version,
        args,
        logFile: join(this.dir, `${n.name}.log`),
        clientUrl: n.clientUrl,
        peerUrl: n.peerUrl,
        dataDir,
      });
    }
    const apiserverWanted = existsSync(join(n.root, rigPaths.manifests, "kube-apiserver.yaml"));
    if (apiserverWanted && !n.apiserver) {
      const member = this.pki.members[n.name].server;
      const server = createHttpsServer({ cert: readFileSync(member.cert), key: readFileSync(member.key) }, (req, res) => {
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

  /** Stops everything this rig started (members SIGKILLed). */
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
    this.systemd?.close();
  }
}

/** A rig of any harness version (what the shared helpers take). */
export type AnyEtcdNodes = EtcdNodes<HarnessEtcdVersion>;

// ---- the restore, phase by phase, as the Pulumi chain runs it ----------------------------------------------------

/** The etcd-phase arguments for node n of the rig. */
export function restoreArgsFor(
  rig: AnyEtcdNodes,
  n: RigNode,
  o: { requestId: string; snapshot: string; bumpRevision?: number; cluster?: string },
): RestoreEtcdArgs {
  return {
    node: n.name,
    cluster: o.cluster ?? rigCluster,
    requestId: o.requestId,
    topology: rig.topology,
    snapshot: o.snapshot,
    tools: rig.version === "3.4" ? { etcdctl: rigPaths.etcdctl } : { etcdctl: rigPaths.etcdctl, etcdutl: rigPaths.etcdutl },
    tls: { cacert: rigPaths.cacert, cert: rigPaths.cert, key: rigPaths.key },
    member: n.name,
    members: rig.nodes.map((m) => ({ name: m.name, peerUrl: m.peerUrl, clientUrl: m.clientUrl })),
    ...(o.bumpRevision === undefined ? {} : { bumpRevision: o.bumpRevision }),
  };
}

export function apiserverArgsFor(rig: AnyEtcdNodes, n: RigNode, requestId: string): RestoreApiserverArgs {
  return { node: n.name, requestId, readyzUrl: rig.readyzUrl, apiserverPort: n.apiserverPort };
}

export interface PhaseRun {
  phase: RestorePhase;
  node: string;
  result: RunResult;
  ms: number;
}

/**
 * Runs the restore phases in restorePhases order, each on every node before the next (the control-plane phases
 * only with the stacked topology: the rig's external nodes are etcd hosts, not control planes). Stops at the first
 * failing run, which it returns last.
 */
export async function runRestore(
  rig: AnyEtcdNodes,
  o: { requestId: string; snapshot: string; bumpRevision?: number },
  phases: readonly RestorePhase[] = restorePhases.map((p) => p.phase),
): Promise<PhaseRun[]> {
  const runs: PhaseRun[] = [];
  for (const { phase, on } of restorePhases) {
    if (!phases.includes(phase)) continue;
    if (on === "controlPlanes" && rig.topology !== "stacked") continue;
    for (const n of rig.nodes) {
      const script =
        on === "controlPlanes"
          ? restoreApiserverPhaseScript(phase as RestoreApiserverPhase, apiserverArgsFor(rig, n, o.requestId))
          : restoreEtcdPhaseScript(phase as RestoreEtcdPhase, restoreArgsFor(rig, n, o));
      const started = Date.now();
      const result = await rig.runScript(n, script);
      runs.push({ phase, node: n.name, result, ms: Date.now() - started });
      if (result.code !== 0) return runs;
    }
  }
  return runs;
}

/** The cluster the rig's snapshots are of and its restores restore (`<project>-<stack>` in the program). */
export const rigCluster = "kubeadm-ha-test";

/** The snapshot-step arguments for node n (its own member's endpoint). */
export function snapshotArgsFor(rig: AnyEtcdNodes, n: RigNode, over: Partial<SaveSnapshotArgs> = {}): SaveSnapshotArgs {
  return {
    node: n.name,
    cluster: rigCluster,
    etcdctl: rigPaths.etcdctl,
    ...(rig.version === "3.4" ? {} : { etcdutl: rigPaths.etcdutl }),
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
