// The world the real CLI drives the project's own Pulumi.yaml in (test/real/endToEnd.test.ts, test/bench/realBench.ts):
// a scratch project dir linking the checkout's program, a local file backend, stub hosts in network namespaces behind
// a bastion (test/support/stubHosts.ts, recording stubs for kubeadm, kubelet, apt-get, systemctl), and a REAL control
// plane listening on the bridge that the hosts' real kubectl reads. Everything it starts, stop() stops.
import { spawn, execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { projectName } from "../../infra/config";
import { clusterEnv, clusterStubs, etcdReleaseTarball } from "./clusterStubs";
import { startControlPlane, type ControlPlane } from "./controlPlane";
import { engineEnv } from "./inlineRun";
import { realTool, realToolsDir } from "./realTools";
import { startStubHosts, type StubHosts } from "./stubHosts";
import { projectRoot } from "./tools";

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface E2eWorld {
  dir: string;
  project: string;
  stack: string;
  net: StubHosts;
  cp: ControlPlane;
  /** The SSH private key every host accepts (the stack's secret sshPrivateKey). */
  key: string;
  env: Record<string, string>;
  /** The stack's config, as written to Pulumi.STACK.yaml (keys without namespace; the secret key is set apart). */
  config: Record<string, unknown>;
  /** The static-hosts config of these hosts (each must have been added to net). */
  stackConfig(o: { controlPlanes: string[]; workers: string[]; version: string; extra?: Record<string, unknown> }): Record<string, unknown>;
  /** Writes Pulumi.STACK.yaml (this world's stack, or `stack`) from config, keeping the encrypted keys the CLI wrote (sshPrivateKey, encryptionsalt). */
  writeStack(stack?: string): void;
  /** The real pulumi CLI in the project, on this stack; onSpawn gets its PID (to sample it while it runs). */
  pulumi(args: string[], o?: { input?: string; onSpawn?: (pid: number) => void }): Promise<Run>;
  /** The real pulumi CLI in another directory, with no stack implied (args name it). */
  pulumiIn(cwd: string, args: string[], o?: { input?: string; onSpawn?: (pid: number) => void }): Promise<Run>;
  stop(): Promise<void>;
}

export interface E2eWorldOptions {
  stack: string;
  /** The etcd version the snapshot-tools step installs (a fake release tarball of it is served to the hosts). */
  etcdTools: string;
  /** Hosts added before the stack is made. */
  hosts: string[];
  /** The config the stack starts with. */
  initial: (w: E2eWorld) => Record<string, unknown>;
  /** The bound of one CLI run. */
  timeoutMs: number;
}

export async function startE2eWorld(o: E2eWorldOptions): Promise<E2eWorld> {
  const undo: (() => void | Promise<void>)[] = [];
  const stop = async () => {
    while (undo.length) await undo.pop()!();
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), "kubeadm-ha-e2e-"));
    undo.push(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755); // the bastion's sshd reads the authorized keys as its login, jump
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "kubeadm-ha-e2e", "-f", join(dir, "id_ed25519")]);
    const release = join(dir, "etcd-release");
    mkdirSync(release);
    etcdReleaseTarball(release, o.etcdTools);
    // The hosts' stubs reach the control plane through files the harness fills in once it runs (started after the bridge).
    const cpDir = join(dir, "control-plane");
    mkdirSync(cpDir);
    const real = { kubectl: realTool("kubectl"), kubeadm: realTool("kubeadm", "1.36"), adminKubeconfig: join(cpDir, "kubeconfigs", "admin.conf"), pki: join(cpDir, "pki"), etcdRelease: release };
    const net = await startStubHosts({ dir: join(dir, "hosts"), authorizedKey: readFileSync(join(dir, "id_ed25519.pub"), "utf8"), stubs: () => clusterStubs(o.etcdTools), env: clusterEnv(real) });
    undo.push(() => net.stop());
    const cp = await startControlPlane({ dir: cpDir, address: net.gateway });
    undo.push(() => cp.stop());
    for (const name of o.hosts) await net.addHost(name);

    // The project: the checkout's own Pulumi.yaml, package.json and program (linked), and the flannel chart of the
    // tool cache as a chart directory of the project (cni.chartPath must be inside it).
    const project = join(dir, "project");
    mkdirSync(project);
    for (const f of ["Pulumi.yaml", "package.json", "tsconfig.json"]) copyFileSync(join(projectRoot, f), join(project, f));
    for (const d of ["node_modules", "infra", "lifecycle", "addons"]) symlinkSync(join(projectRoot, d), join(project, d));
    symlinkSync(join(realToolsDir, "charts", "flannel", "v0.28.10"), join(project, "flannel-chart"));
    mkdirSync(join(dir, "state"));
    const env = engineEnv(dir); // the file backend in dir/state
    // The download guard (an HTTP(S) proxy on a closed port) stays on for everything but the test's own bridge, where
    // the Kubernetes provider reaches the real apiserver.
    env.NO_PROXY = env.no_proxy = `${env.NO_PROXY},${net.gateway}`;
    const key = readFileSync(join(dir, "id_ed25519"), "utf8");

    const w: E2eWorld = {
      dir,
      project,
      stack: o.stack,
      net,
      cp,
      key,
      env,
      config: {},
      stackConfig({ controlPlanes, workers, version, extra = {} }) {
        const host = (name: string) => {
          const h = net.hosts.get(name);
          if (!h) throw new Error(`e2e world: no host ${name}`);
          return { name, address: h.address, privateAddress: h.address, user: "ubuntu", port: 22, hostKey: h.sshd.hostKey };
        };
        return {
          kubernetesVersion: version,
          etcdTopology: "stacked",
          hosts: {
            provider: "static",
            controlPlanes: controlPlanes.map(host),
            workers: workers.map(host),
            bastion: { address: net.bastion.address, user: "jump", port: 22, hostKey: net.bastion.hostKey },
          },
          apiEndpoint: { address: cp.server.replace("https://", "") },
          cni: { name: "flannel", chartPath: "flannel-chart" },
          snapshots: { upload: false },
          ...extra,
        };
      },
      writeStack(stack = o.stack) {
        const file = join(project, `Pulumi.${stack}.yaml`);
        const kept = existsSync(file) ? readFileSync(file, "utf8") : "";
        const salt = /^encryptionsalt: .*$/m.exec(kept)?.[0];
        const secret = /^ {2}kubeadm-ha:sshPrivateKey:\n {4}secure: .*$/m.exec(kept)?.[0];
        const body = stringify({ config: Object.fromEntries(Object.entries(w.config).map(([k, v]) => [`${projectName}:${k}`, v])) });
        writeFileSync(file, [salt, body.trimEnd(), secret, ""].filter((l) => l !== undefined).join("\n"));
      },
      pulumi(args, opts = {}) {
        return w.pulumiIn(project, [...args, "--stack", o.stack], opts);
      },
      pulumiIn(cwd, args, opts = {}) {
        return new Promise((resolve, reject) => {
          const p = spawn(realTool("pulumi"), [...args, "--non-interactive"], { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
          if (p.pid !== undefined) opts.onSpawn?.(p.pid);
          let stdout = "";
          let stderr = "";
          p.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
          p.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
          p.stdin.end(opts.input ?? "");
          const timer = setTimeout(() => p.kill("SIGKILL"), o.timeoutMs);
          p.on("error", reject);
          p.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr });
          });
        });
      },
      stop,
    };
    w.config = o.initial(w);
    w.writeStack();
    const init = await w.pulumi(["stack", "init"]);
    if (init.code !== 0) throw new Error(`pulumi stack init: ${init.stderr}`);
    const set = await w.pulumi(["config", "set", "--secret", "sshPrivateKey"], { input: key });
    if (set.code !== 0) throw new Error(`pulumi config set --secret sshPrivateKey: ${set.stderr}`);
    return w;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The script a step's command runs (what a host's sudo stand-in records by sha256). */
export function innerScript(command: string): string {
  const m = /<<'KUBEADM_HA_SCRIPT_EOF'\n([\s\S]*?)\nKUBEADM_HA_SCRIPT_EOF\n/.exec(command);
  if (!m) throw new Error(`not a node step command: ${command.slice(0, 200)}`);
  return `${m[1]}\n`;
}
