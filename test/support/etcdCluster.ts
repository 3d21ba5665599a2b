// Test harness: a REAL etcd cluster with TLS on loopback, members as child processes of the test process.
//
//   const cluster = await startEtcdCluster({ version: "3.5", members: 3, dir });
//   await cluster.putMany(1000, "/registry/x/");
//   await cluster.stop();
//
// Binaries come from .tools/ (bash test/tools/ensure-tools.sh); version "3.6" runs the real tier's etcd 3.6 build
// (npm run tools, test/support/realTools.ts). Members never outlive the test process: they are killed on process
// exit/signals, and a small detached watchdog kills them if the test process is SIGKILLed.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { realTool } from "./realTools";
import { toolPath, type EtcdVersion } from "./tools";

export type { EtcdVersion } from "./tools";

/** What the harness can run: 3.4 and 3.5 from .tools/ (Debian), 3.6 from the real tier's build (npm run tools). */
export type HarnessEtcdVersion = EtcdVersion | "3.6";

/** The absolute path of etcd, etcdctl or etcdutl of a harness version (never from PATH). */
export function etcdBinary(version: HarnessEtcdVersion, tool: "etcd" | "etcdctl" | "etcdutl"): string {
  if (version === "3.6") return realTool(tool, "3.6");
  if (tool === "etcd") return toolPath.etcd(version);
  if (tool === "etcdctl") return toolPath.etcdctl(version);
  if (version !== "3.5") throw new Error(`etcdutl does not exist for etcd ${version}`);
  return toolPath.etcdutl(version);
}

// ---------------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------------

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; -1 when killed (timeout) or the command could not start. */
  code: number;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs a command to completion, never rejecting on a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, opts.timeoutMs);
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      resolvePromise({ stdout, stderr: stderr + String(e), code: -1 });
    });
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      if (timedOut) stderr += `\n[${cmd} killed after ${opts.timeoutMs} ms]`;
      resolvePromise({ stdout, stderr, code: code ?? -1 });
    });
    child.stdin.on("error", () => undefined); // EPIPE when the command exits without reading its input
    child.stdin.end(opts.input ?? "");
  });
}

async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}):\n${r.stderr || r.stdout}`);
  return r;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- never leave members behind ----------------------------------------------------------------------------------
const live = new Map<number, ChildProcess>();
let watchdog: ChildProcess | undefined;
let hooksInstalled = false;

// The watchdog reads "+PID"/"-PID" lines; at EOF (the test process is gone, however it died) it SIGKILLs what is left.
const WATCHDOG = `pids=" "
while IFS= read -r l; do
  case "$l" in
    +*) pids="$pids\${l#+} " ;;
    -*) pids="\${pids/ \${l#-} / }" ;;
  esac
done
for p in $pids; do kill -9 "$p" 2>/dev/null; done
exit 0`;

function tellWatchdog(line: string): void {
  if (!watchdog) {
    try {
      watchdog = spawn("bash", ["-c", WATCHDOG], { detached: true, stdio: ["pipe", "ignore", "ignore"] });
      watchdog.on("error", () => (watchdog = undefined));
      watchdog.stdin?.on("error", () => undefined);
      watchdog.unref();
      (watchdog.stdin as unknown as Socket | null)?.unref();
    } catch {
      watchdog = undefined;
      return;
    }
  }
  watchdog.stdin?.write(line + "\n");
}

function killAllNow(): void {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllNow);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      killAllNow();
      process.removeListener(sig, onSignal);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Kills `child` when the test process exits, however it dies (hooks plus the detached watchdog). */
export function track(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  installHooks();
  live.set(pid, child);
  tellWatchdog(`+${pid}`);
  child.once("exit", () => {
    live.delete(pid);
    tellWatchdog(`-${pid}`);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// PKI (openssl)
// ---------------------------------------------------------------------------------------------------------------

export interface CertPair {
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  ca: CertPair;
  /** Per member: server cert (client-facing) and peer cert; SANs IP:127.0.0.1, DNS:localhost, DNS:<name>. */
  members: Record<string, { server: CertPair; peer: CertPair }>;
  /** Client cert for etcdctl (CN apiserver-etcd-client). */
  client: CertPair;
}

const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
`;

const serial = () =>
  "0x" + Array.from({ length: 16 }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, "0")).join("");

async function makeLeaf(
  dir: string,
  base: string,
  cn: string,
  ca: CertPair,
  usage: "serverAuth,clientAuth" | "clientAuth",
  san: string | undefined,
): Promise<CertPair> {
  const openssl = toolPath.openssl();
  const key = join(dir, `${base}.key`);
  const csr = join(dir, `${base}.csr`);
  const cert = join(dir, `${base}.crt`);
  const ext = join(dir, `${base}.ext`);
  writeFileSync(
    ext,
    [
      "[leaf]",
      "basicConstraints = critical,CA:FALSE",
      "keyUsage = critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage = ${usage}`,
      "authorityKeyIdentifier = keyid",
      ...(san ? [`subjectAltName = ${san}`] : []),
      "",
    ].join("\n"),
  );
  const cnf = join(dir, "openssl.cnf");
  await runOk(openssl, [
    "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", csr, "-subj", `/CN=${cn}`, "-config", cnf,
  ]);
  await runOk(openssl, [
    "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", serial(), "-days", "3650",
    "-sha256", "-extfile", ext, "-extensions", "leaf", "-out", cert,
  ]);
  return { cert, key };
}

/** CA, per-member server and peer certificates and a client certificate, made with openssl in `dir`. */
export async function makeTestPki(dir: string, memberNames: string[], opts: { clientCommonName?: string } = {}): Promise<Pki> {
  dir = resolve(dir);
  mkdirSync(dir, { recursive: true });
  const openssl = toolPath.openssl();
  const cnf = join(dir, "openssl.cnf");
  writeFileSync(cnf, OPENSSL_CNF);
  const ca: CertPair = { cert: join(dir, "ca.crt"), key: join(dir, "ca.key") };
  await runOk(openssl, [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", ca.key, "-out", ca.cert, "-subj", "/CN=etcd-ca", "-days", "3650", "-config", cnf, "-extensions", "ca",
  ]);
  const entries = await Promise.all(
    memberNames.map(async (name) => {
      const san = `IP:127.0.0.1,DNS:localhost,DNS:${name}`;
      const [server, peer] = await Promise.all([
        makeLeaf(dir, `${name}-server`, name, ca, "serverAuth,clientAuth", san),
        makeLeaf(dir, `${name}-peer`, name, ca, "serverAuth,clientAuth", san),
      ]);
      return [name, { server, peer }] as const;
    }),
  );
  const cn = opts.clientCommonName ?? "apiserver-etcd-client";
  const client = await makeLeaf(dir, cn, cn, ca, "clientAuth", undefined);
  return { dir, ca, members: Object.fromEntries(entries), client };
}

// ---------------------------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------------------------

const handedOut = new Set<number>();

function listenable(port: number): Promise<number | undefined> {
  return new Promise((r) => {
    const s = createServer();
    s.unref();
    s.once("error", () => r(undefined));
    s.listen(port, "127.0.0.1", () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

/**
 * n distinct free loopback TCP ports. Picked at random below the kernel's ephemeral range (so outgoing connections
 * and other listen(0) callers do not take them before etcd binds) and checked by binding them once.
 */
export async function freePorts(n: number): Promise<number[]> {
  let low = 32768;
  try {
    low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: keep the default
  }
  const lo = 10000;
  const hi = Math.max(lo + 1000, low - 1);
  const ports: number[] = [];
  for (let tries = 0; ports.length < n; tries++) {
    let candidate: number | undefined;
    if (tries < 50 * n) {
      const p = lo + Math.floor(Math.random() * (hi - lo));
      if (handedOut.has(p) || ports.includes(p)) continue;
      candidate = await listenable(p);
    } else {
      candidate = await listenable(0);
      if (candidate !== undefined && (handedOut.has(candidate) || ports.includes(candidate))) candidate = undefined;
    }
    if (candidate !== undefined) ports.push(candidate);
    if (tries > 100 * n) throw new Error(`freePorts: could not find ${n} free ports`);
  }
  for (const p of ports) handedOut.add(p);
  return ports;
}

// ---------------------------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------------------------

export interface MemberSpec {
  name: string;
  /** Selects .tools/etcd-<version>/bin/etcd (3.6: the real tier's build) unless `bin` is given. */
  version: HarnessEtcdVersion;
  bin?: string;
  /** Arguments after the binary; may be empty when the member is configured through ETCD_* variables. */
  args: string[];
  /** Added to the environment. The test process's own ETCD_* / ETCDCTL_* variables are not passed on. */
  env?: Record<string, string>;
  /** stdout+stderr go here (appended). */
  logFile: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  cwd?: string;
}

export interface StopOptions {
  /** SIGTERM and wait (leader transfer: slow with 3 members); default SIGKILL. */
  graceful?: boolean;
  /** Bound for a graceful stop before SIGKILL. Default 15 s. */
  timeoutMs?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface MemberProcess {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  running(): boolean;
  stop(opts?: StopOptions): Promise<ExitInfo>;
  logTail(lines?: number): string;
}

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("ETCD_") && !k.startsWith("ETCDCTL_")) env[k] = v;
  }
  return { ...env, ...extra };
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch (e) {
    return `(no log: ${String(e)})`;
  }
}

/** Starts one etcd process with exactly the given argv/env (lower level than startEtcdCluster). */
export async function startMember(spec: MemberSpec): Promise<MemberProcess> {
  const bin = spec.bin ?? etcdBinary(spec.version, "etcd");
  const logFile = resolve(spec.logFile);
  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(bin, spec.args, { env: cleanEnv(spec.env), cwd: spec.cwd, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  await new Promise<void>((ok, fail) => {
    child.once("spawn", ok);
    child.once("error", (e) => fail(new Error(`cannot start etcd member ${spec.name} (${bin}): ${String(e)}`)));
  });
  track(child);
  const pid = child.pid as number;
  let done = false;
  const exited = new Promise<ExitInfo>((r) =>
    child.once("exit", (code, signal) => {
      done = true;
      r({ code, signal });
    }),
  );
  const member: MemberProcess = {
    name: spec.name,
    clientUrl: spec.clientUrl,
    peerUrl: spec.peerUrl,
    dataDir: resolve(spec.dataDir),
    logFile,
    pid,
    child,
    exited,
    running: () => !done,
    logTail: (lines = 20) => tail(logFile, lines),
    async stop(opts: StopOptions = {}) {
      if (done) return exited;
      child.kill(opts.graceful ? "SIGTERM" : "SIGKILL");
      if (!opts.graceful) return exited;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), opts.timeoutMs ?? 15_000)));
      const first = await Promise.race([exited, timedOut]);
      if (timer) clearTimeout(timer);
      if (first === "timeout") child.kill("SIGKILL");
      return exited;
    },
  };
  return member;
}

/** The harness's flags for one member, as a flag-name → value map (see flagsToArgs / flagsToEnv). */
export function memberFlags(o: {
  name: string;
  dataDir: string;
  clientUrl: string;
  peerUrl: string;
  initialCluster: string;
  clusterToken: string;
  pki: Pki;
  initialClusterState?: "new" | "existing";
}): Record<string, string> {
  const m = o.pki.members[o.name];
  if (!m) throw new Error(`PKI has no certificates for member ${o.name}`);
  return {
    name: o.name,
    "data-dir": o.dataDir,
    "listen-client-urls": o.clientUrl,
    "advertise-client-urls": o.clientUrl,
    "listen-peer-urls": o.peerUrl,
    "initial-advertise-peer-urls": o.peerUrl,
    "initial-cluster": o.initialCluster,
    "initial-cluster-state": o.initialClusterState ?? "new",
    "initial-cluster-token": o.clusterToken,
    "client-cert-auth": "true",
    "trusted-ca-file": o.pki.ca.cert,
    "cert-file": m.server.cert,
    "key-file": m.server.key,
    "peer-client-cert-auth": "true",
    "peer-trusted-ca-file": o.pki.ca.cert,
    "peer-cert-file": m.peer.cert,
    "peer-key-file": m.peer.key,
    logger: "zap",
    "log-outputs": "stderr",
  };
}

export const flagsToArgs = (flags: Record<string, string>): string[] =>
  Object.entries(flags).map(([k, v]) => `--${k}=${v}`);

/** `initial-cluster-state` → `ETCD_INITIAL_CLUSTER_STATE` (etcd reads every flag from such a variable). */
export const flagsToEnv = (flags: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(flags).map(([k, v]) => [`ETCD_${k.toUpperCase().replace(/-/g, "_")}`, v]));

// ---------------------------------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------------------------------

export interface EtcdctlOptions {
  /** Default: every member's client URL. */
  endpoints?: string[];
  input?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
  /** Throw (with stderr) on a non-zero exit. */
  check?: boolean;
}

export interface PutManyOptions {
  /** Bytes per value (default: short values "v<i>"). */
  valueSize?: number;
  /** Keys per `etcdctl txn` (default 100; etcd's default --max-txn-ops is 128). */
  batch?: number;
  /** Parallel etcdctl processes (default 4). */
  concurrency?: number;
  /** First index (default 0): keys are prefix + zero-padded index. */
  start?: number;
}

export class EtcdCluster<V extends HarnessEtcdVersion = EtcdVersion> {
  readonly members: MemberProcess[];

  constructor(
    readonly version: V,
    readonly dir: string,
    readonly pki: Pki,
    members: MemberProcess[],
  ) {
    this.members = [...members];
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  liveEndpoints(): string[] {
    return this.members.filter((m) => m.running()).map((m) => m.clientUrl);
  }

  member(name: string): MemberProcess {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name} (have ${this.members.map((x) => x.name).join(", ")})`);
    return m;
  }

  /** TLS flags for etcdctl / other clients. */
  get tlsArgs(): string[] {
    return ["--cacert", this.pki.ca.cert, "--cert", this.pki.client.cert, "--key", this.pki.client.key];
  }

  /** The TLS flags (etcdctl 3.4 and later speak the v3 API by default); never rejects on a non-zero exit unless opts.check. */
  async etcdctl(args: string[], opts: EtcdctlOptions = {}): Promise<RunResult> {
    const endpoints = opts.endpoints ?? this.endpoints;
    const full = [`--endpoints=${endpoints.join(",")}`, ...this.tlsArgs, ...args];
    const r = await run(etcdBinary(this.version, "etcdctl"), full, {
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 30_000,
      env: cleanEnv(opts.env),
    });
    if (opts.check && r.code !== 0) {
      throw new Error(`etcdctl ${args.join(" ")} failed (${r.code}):\n${r.stderr || r.stdout}`);
    }
    return r;
  }

  /** Loads `count` keys prefix+NNNNNN with `etcdctl txn` batches (one put per key would be ~30 ms each). */
  async putMany(count: number, prefix: string, opts: PutManyOptions = {}): Promise<void> {
    if (/[\s"'\\]/.test(prefix)) throw new Error(`putMany: prefix must not contain whitespace, quotes or backslashes`);
    const batch = opts.batch ?? 100;
    const start = opts.start ?? 0;
    const width = Math.max(6, String(start + count).length);
    const value = (i: number) => {
      const v = `v${i}`;
      return opts.valueSize && opts.valueSize > v.length ? v + "x".repeat(opts.valueSize - v.length) : v;
    };
    const batches: string[] = [];
    for (let b = 0; b < count; b += batch) {
      const lines: string[] = [""]; // no compares
      for (let i = start + b; i < start + Math.min(count, b + batch); i++) {
        lines.push(`put ${prefix}${String(i).padStart(width, "0")} ${value(i)}`);
      }
      lines.push("", ""); // end of success ops, no failure ops
      batches.push(lines.join("\n") + "\n");
    }
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const input = batches[next++];
        const r = await this.etcdctl(["txn"], { input });
        if (r.code !== 0 || !r.stdout.startsWith("SUCCESS")) {
          throw new Error(`putMany: etcdctl txn failed (${r.code}):\n${r.stderr || r.stdout}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, batches.length) }, worker));
  }

  /** Number of keys under prefix ("" = all keys), from the range response's count. */
  async countKeys(prefix: string): Promise<number> {
    const r = await this.etcdctl(["get", prefix, "--prefix", "--keys-only", "--limit=1", "-w", "json"], { check: true });
    const parsed = JSON.parse(r.stdout) as { count?: number };
    return parsed.count ?? 0;
  }

  /** Waits until `etcdctl endpoint health` succeeds on `endpoints` (default: running members). */
  async waitHealthy(opts: { timeoutMs?: number; endpoints?: string[] } = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    const endpoints = opts.endpoints ?? this.liveEndpoints();
    let last: RunResult | undefined;
    for (;;) {
      const dead = this.members.filter((m) => !m.running() && endpoints.includes(m.clientUrl));
      if (dead.length > 0) {
        throw new Error(`etcd member(s) exited while waiting for health: ${dead.map((m) => m.name).join(", ")}\n${this.describe(dead)}`);
      }
      last = await this.etcdctl(["endpoint", "health", "--dial-timeout=1s", "--command-timeout=2s"], {
        endpoints,
        timeoutMs: 10_000,
      });
      if (last.code === 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `etcd ${this.version} cluster not healthy after ${opts.timeoutMs ?? 30_000} ms; last endpoint health:\n` +
            `${(last.stdout + last.stderr).trim()}\n${this.describe(this.members)}`,
        );
      }
      await sleep(100);
    }
  }

  /** The last log lines of the given members, for error messages. */
  describe(members: MemberProcess[] = this.members, lines = 15): string {
    return members
      .map((m) => `--- ${m.name} (pid ${m.pid}, ${m.running() ? "running" : "exited"}, log ${m.logFile}) ---\n${m.logTail(lines)}`)
      .join("\n");
  }

  async stopMember(name: string, opts: StopOptions = {}): Promise<ExitInfo> {
    return this.member(name).stop(opts);
  }

  /** SIGKILL every member (default; instant) or, with graceful, SIGTERM and wait (bounded, then SIGKILL). */
  async stop(opts: StopOptions = {}): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop(opts)));
  }
}

/** Wraps already started members (e.g. from startMember with a generated environment) and waits for health. */
export async function attachEtcdCluster<V extends HarnessEtcdVersion>(o: {
  version: V;
  dir: string;
  pki: Pki;
  members: MemberProcess[];
  healthTimeoutMs?: number;
}): Promise<EtcdCluster<V>> {
  const cluster = new EtcdCluster(o.version, resolve(o.dir), o.pki, o.members);
  try {
    await cluster.waitHealthy({ timeoutMs: o.healthTimeoutMs });
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

export interface StartClusterOptions<V extends HarnessEtcdVersion = EtcdVersion> {
  version: V;
  members: number;
  dir: string;
  /** Default: made with makeTestPki in <dir>/pki. Must have certificates for every member name. */
  pki?: Pki;
  /** Default: etcd-1 … etcd-N. */
  names?: string[];
  /** Added to every member's environment. */
  extraEnv?: Record<string, string>;
  /** Appended to every member's flags. */
  extraArgs?: string[];
  healthTimeoutMs?: number;
}

/** Starts an N-member TLS cluster on loopback and waits until every endpoint is healthy. */
export async function startEtcdCluster<V extends HarnessEtcdVersion = EtcdVersion>(o: StartClusterOptions<V>): Promise<EtcdCluster<V>> {
  const dir = resolve(o.dir);
  mkdirSync(dir, { recursive: true });
  const names = o.names ?? Array.from({ length: o.members }, (_, i) => `etcd-${i + 1}`);
  if (names.length !== o.members) throw new Error(`names has ${names.length} entries for ${o.members} members`);
  const pki = o.pki ?? (await makeTestPki(join(dir, "pki"), names));
  const ports = await freePorts(2 * names.length);
  const urls = names.map((name, i) => ({
    name,
    clientUrl: `https://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `https://127.0.0.1:${ports[2 * i + 1]}`,
  }));
  const initialCluster = urls.map((u) => `${u.name}=${u.peerUrl}`).join(",");
  const clusterToken = `test-${process.pid}-${Date.now().toString(36)}`;
  const members: MemberProcess[] = [];
  try {
    for (const u of urls) {
      const dataDir = join(dir, `${u.name}.etcd`);
      const flags = memberFlags({ ...u, dataDir, initialCluster, clusterToken, pki });
      members.push(
        await startMember({
          ...u,
          version: o.version,
          dataDir,
          args: [...flagsToArgs(flags), ...(o.extraArgs ?? [])],
          env: o.extraEnv,
          logFile: join(dir, `${u.name}.log`),
        }),
      );
    }
  } catch (e) {
    await Promise.all(members.map((m) => m.stop()));
    throw e;
  }
  return attachEtcdCluster({ version: o.version, dir, pki, members, healthTimeoutMs: o.healthTimeoutMs });
}
