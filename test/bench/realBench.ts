// `npm run bench -- --real [--up-workers 30,100]`: the program under the REAL pulumi CLI (the binaries `npm run tools`
// builds), each figure beside its baseline in the same run. A benchmark, not a test: it prints a table and asserts
// nothing.
// - `pulumi preview` of a static stack with 3 control planes and 30 / 300 workers against a bare project that
//   registers the same number of command:remote:Command resources: wall time, ratio, and the peak RSS of the CLI's
//   whole process tree (CLI, language host, program, plugins), sampled every 100 ms from /proc.
// - the first `pulumi up` of 3 control planes and N workers on stub hosts (test/support/e2eWorld.ts: network
//   namespaces behind a bastion, recording stubs for kubeadm, kubelet, apt-get, systemctl): wall time, the hosts' time
//   in the no-op upgrade steps per worker (from the hosts' journals, mapped to steps by script hash), the size of
//   `pulumi stack export`, and the bytes the CLI wrote (wchar of its /proc/PID/io, last sample) — the checkpoint I/O.
// The stub hosts live on one /24, so `pulumi up` runs at most ~240 hosts; preview needs no host.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { innerScript, startE2eWorld, type E2eWorld, type Run } from "../support/e2eWorld";
import { missingEngineTools } from "../support/realTools";
import { projectRoot } from "../support/tools";

const STACK = "bench";
const ETCD_TOOLS = "3.6.6";
const VERSION = "1.36.3"; // the real control plane's version: the upgrade steps of the first up are no-ops
const HOUR = 3_600_000;

/** Every PID in the tree under root (root included), from /proc/PID/stat's ppid. */
function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}
const rssKiB = (pid: number) => {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
};
const wchar = (pid: number) => {
  try {
    return Number(/^wchar: (\d+)/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

interface Measured {
  run: Run;
  seconds: number;
  peakMiB: number;
  /** Bytes the CLI process itself wrote (its last sample before it exited). */
  cliWrote: number;
}
async function measure(start: (onSpawn: (pid: number) => void) => Promise<Run>): Promise<Measured> {
  let peak = 0;
  let wrote = 0;
  let timer: NodeJS.Timeout | undefined;
  const began = performance.now();
  const run = await start((pid) => {
    timer = setInterval(() => {
      peak = Math.max(peak, tree(pid).reduce((sum, p) => sum + rssKiB(p), 0));
      wrote = Math.max(wrote, wchar(pid));
    }, 100);
  });
  clearInterval(timer);
  const seconds = (performance.now() - began) / 1000;
  if (run.code !== 0) throw new Error(`pulumi failed:\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-4000)}`);
  return { run, seconds, peakMiB: peak / 1024, cliWrote: wrote };
}

/** A stack config of 3 control planes and `workers` workers at made-up addresses (enough for a preview). */
function previewConfig(w: E2eWorld, workers: number): Record<string, unknown> {
  const real = w.stackConfig({ controlPlanes: ["cp-0"], workers: [], version: VERSION }) as { hosts: { controlPlanes: { hostKey: string }[] } };
  const hostKey = real.hosts.controlPlanes[0].hostKey;
  const host = (name: string, i: number) => ({ name, address: `10.77.${Math.floor(i / 250)}.${(i % 250) + 1}`, user: "ubuntu", port: 22, hostKey });
  return {
    ...real,
    hosts: {
      ...(real.hosts as object),
      controlPlanes: [0, 1, 2].map((i) => host(`cp-${i}`, i)),
      workers: Array.from({ length: workers }, (_, i) => host(`worker-${i}`, 3 + i)),
    },
  };
}

/** The bare baseline: a project of its own on the same backend that registers `count` remote Commands and nothing else. */
function baselineProject(w: E2eWorld, count: number): string {
  const dir = join(w.dir, `baseline-${count}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "Pulumi.yaml"), "name: bench-baseline\nruntime: nodejs\n");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "bench-baseline", main: "index.ts" }));
  writeFileSync(join(dir, "tsconfig.json"), readFileSync(join(projectRoot, "tsconfig.json")));
  symlinkSync(join(projectRoot, "node_modules"), join(dir, "node_modules"));
  writeFileSync(
    join(dir, "index.ts"),
    [
      'import * as command from "@pulumi/command";',
      `for (let i = 0; i < ${count}; i++) {`,
      "  new command.remote.Command(`step-${i}`, { connection: { host: `10.77.0.${(i % 250) + 1}`, user: 'ubuntu' }, create: `echo ${i}` });",
      "}",
      "",
    ].join("\n"),
  );
  return dir;
}

async function main() {
  const argv = process.argv.slice(2);
  const at = argv.indexOf("--up-workers");
  const upWorkers = at >= 0 ? argv[at + 1].split(",").map(Number) : [30];
  const previewWorkers = [30, 300];
  const missing = missingEngineTools();
  if (missing.length > 0) throw new Error(`bench --real needs the real tools: ${missing.join("; ")}`);
  const maxUp = Math.max(...upWorkers);
  if (maxUp > 240) throw new Error("--up-workers: the stub hosts share one /24; at most 240 workers");
  const hosts = ["cp-0", "cp-1", "cp-2", ...Array.from({ length: maxUp }, (_, i) => `worker-${i}`)];
  process.stderr.write(`bench --real: starting the control plane and ${hosts.length} stub hosts\n`);
  const w = await startE2eWorld({ stack: STACK, etcdTools: ETCD_TOOLS, hosts, initial: (x) => x.stackConfig({ controlPlanes: ["cp-0"], workers: [], version: VERSION }), timeoutMs: HOUR });
  const rows: string[] = [];
  try {
    rows.push("| run | workers | seconds | baseline seconds | ratio | peak MiB | baseline peak MiB | command resources |");
    rows.push("|---|---|---|---|---|---|---|---|");
    for (const n of previewWorkers) {
      w.config = previewConfig(w, n);
      w.writeStack();
      const program = await measure((onSpawn) => w.pulumi(["preview", "--json"], { onSpawn }));
      const commands = (JSON.parse(program.run.stdout).steps ?? []).filter((s: { newState?: { type?: string } }) => s.newState?.type === "command:remote:Command").length;
      const dir = baselineProject(w, commands);
      const init = await runIn(w, dir, ["stack", "init", `${STACK}-baseline-${n}`]);
      if (init.code !== 0) throw new Error(`baseline stack init: ${init.stderr}`);
      const baseline = await measure((onSpawn) => runIn(w, dir, ["preview", "--json", "--stack", `${STACK}-baseline-${n}`], onSpawn));
      rows.push(`| preview | ${n} | ${program.seconds.toFixed(1)} | ${baseline.seconds.toFixed(1)} | ${(program.seconds / baseline.seconds).toFixed(2)} | ${program.peakMiB.toFixed(0)} | ${baseline.peakMiB.toFixed(0)} | ${commands} |`);
      process.stderr.write(`measured preview at ${n} workers\n`);
    }
    const upRows: string[] = ["| first up, workers | seconds | seconds per worker | no-op upgrade steps: host seconds per worker | stack export KiB | export KiB per worker step | bytes the CLI wrote (MiB) |", "|---|---|---|---|---|---|---|"];
    for (const n of upWorkers.sort((a, b) => a - b)) {
      // A fresh stack per size: the first up of that shape.
      const stack = `${STACK}-up-${n}`;
      const init = await runIn(w, w.project, ["stack", "init", stack]);
      if (init.code !== 0) throw new Error(`stack init ${stack}: ${init.stderr}`);
      writeFileSync(join(w.project, `Pulumi.${stack}.yaml`), "");
      const key = await runIn(w, w.project, ["config", "set", "--secret", "sshPrivateKey", "--stack", stack], undefined, w.key);
      if (key.code !== 0) throw new Error(`config set: ${key.stderr}`);
      w.config = w.stackConfig({ controlPlanes: ["cp-0", "cp-1", "cp-2"], workers: Array.from({ length: n }, (_, i) => `worker-${i}`), version: VERSION });
      w.writeStack(stack);
      const since = Date.now();
      const up = await measure((onSpawn) => runIn(w, w.project, ["up", "--yes", "--skip-preview", "--stack", stack], onSpawn));
      const exported = await runIn(w, w.project, ["stack", "export", "--show-secrets", "--stack", stack]);
      const plainExport = await runIn(w, w.project, ["stack", "export", "--stack", stack]);
      const resources = (JSON.parse(exported.stdout).deployment.resources ?? []) as { urn: string; type: string; inputs?: { create?: string } }[];
      const step = new Map<string, string>();
      for (const r of resources) if (r.type === "command:remote:Command" && r.inputs?.create) step.set(sha(innerScript(r.inputs.create)), r.urn.slice(r.urn.lastIndexOf("::") + 2));
      const workerSteps = resources.filter((r) => r.type === "command:remote:Command" && /::worker-\d+-/.test(r.urn)).length;
      let upgradeMs = 0;
      for (const e of w.net.journal()) {
        if (e.start < since || e.end === undefined || !/^worker-/.test(e.host)) continue;
        if (/upgrade/.test(step.get(e.sha) ?? "")) upgradeMs += e.end - e.start;
      }
      const kib = Buffer.byteLength(plainExport.stdout) / 1024;
      upRows.push(`| ${n} | ${up.seconds.toFixed(1)} | ${(up.seconds / n).toFixed(2)} | ${(upgradeMs / 1000 / n).toFixed(2)} | ${kib.toFixed(0)} | ${(kib / workerSteps).toFixed(2)} | ${(up.cliWrote / 1048576).toFixed(1)} |`);
      process.stderr.write(`measured first up at ${n} workers\n`);
    }
    console.log(rows.join("\n"));
    console.log("");
    console.log(upRows.join("\n"));
  } finally {
    await w.stop();
  }
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** The real CLI in another directory (the baseline project) or on another stack, with the world's environment. */
function runIn(w: E2eWorld, cwd: string, args: string[], onSpawn?: (pid: number) => void, input?: string): Promise<Run> {
  return w.pulumiIn(cwd, args, { onSpawn, input });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
