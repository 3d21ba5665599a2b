// Test harness: a REAL Kubernetes control plane on loopback with TLS, as child processes of the test process:
// etcd 3.6, kube-apiserver, kube-controller-manager and kube-scheduler (v1.36, from `npm run tools`), with nodes
// simulated by kwok. The PKI and kubeconfigs are made by the real kubeadm (`kubeadm init phase certs/kubeconfig`),
// and admin.conf is bound to cluster-admin the way `kubeadm init` binds it (group kubeadm:cluster-admins).
//
//   const cp = await startControlPlane({ dir });
//   await cp.addNodes([{ name: "worker-0" }]);       // kwok keeps it Ready (heartbeats through its lease)
//   await cp.kubectl(["get", "nodes"]);
//   await cp.stop();
//
// Nodes kwok does not manage (`managed: false`) never heartbeat: they are NotReady, and their pods, once deleted,
// stay Terminating, as on a dead machine. Processes never outlive the test process (etcdCluster's track()).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { freePorts, run, track, type RunResult } from "./etcdCluster";
import { realTool, realToolsDir, realToolVersion } from "./realTools";

/** kwok manages only nodes with this label (so a test can also have nodes nobody manages). */
export const kwokManagedLabel = "kwok.x-k8s.io/managed";

export interface SimulatedNode {
  name: string;
  /** Default true: kwok runs it (Ready, pods Running, deleted pods go away). false: a dead machine (NotReady). */
  managed?: boolean;
  /** status.nodeInfo.kubeletVersion (default: the control plane's version). */
  kubeletVersion?: string;
  labels?: Record<string, string>;
  /** Marks it a control-plane node (label node-role.kubernetes.io/control-plane). */
  controlPlane?: boolean;
}

export interface ControlPlane {
  dir: string;
  /** Kubernetes version of the control plane (vX.Y.Z). */
  version: string;
  /** https://ADDRESS:PORT (StartOptions.address, default 127.0.0.1) */
  server: string;
  /** The etcd member's client URL (https://127.0.0.1:PORT; TLS with the PKI's etcd CA). */
  etcdEndpoint: string;
  /** kubeadm's admin.conf (group kubeadm:cluster-admins, bound to cluster-admin). */
  adminKubeconfig: string;
  /** The real kubectl of the tier. */
  kubectlPath: string;
  /** Runs the real kubectl with admin.conf; never rejects on a non-zero exit. */
  kubectl(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** kubectl that must succeed; returns stdout. */
  kubectlOk(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** `kubectl apply -f -` of the given objects. */
  apply(objects: object[]): Promise<void>;
  /** Creates Node objects (with their status: kwok keeps managed ones Ready). Resolves once they are as asked. */
  addNodes(nodes: SimulatedNode[]): Promise<void>;
  /** Polls until check() is true (or throws after timeoutMs, naming what). */
  waitFor(what: string, check: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  /** The last lines of each component's log (for failure messages). */
  logs(lines?: number): string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function tailFile(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

interface Component {
  name: string;
  child: ChildProcess;
  log: string;
}

function startComponent(dir: string, name: string, bin: string, args: string[]): Component {
  const log = join(dir, "logs", `${name}.log`);
  const fd = openSync(log, "a");
  const child = spawn(bin, args, { stdio: ["ignore", fd, fd], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir } });
  closeSync(fd);
  track(child);
  return { name, child, log };
}

async function stopComponent(c: Component): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.child.once("exit", () => r()));
  c.child.kill("SIGTERM");
  const killer = setTimeout(() => c.child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(killer);
}

export interface StartOptions {
  /** An empty directory for the PKI, data, logs and kubeconfigs. */
  dir: string;
  /** Run kwok (default true). */
  kwok?: boolean;
  /** Bound for the whole start-up (default 120 s). */
  timeoutMs?: number;
  /**
   * The address the apiserver listens on and its certificate names (default 127.0.0.1). A test's own bridge address
   * lets hosts in the test's network namespaces reach it; etcd and the other components stay on loopback.
   */
  address?: string;
}

export async function startControlPlane(opts: StartOptions): Promise<ControlPlane> {
  const dir = opts.dir;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  const kubeadm = realTool("kubeadm", "1.36");
  const kubectlPath = realTool("kubectl");
  const version = realToolVersion("kube-apiserver");
  const pki = join(dir, "pki");
  const kubeconfigs = join(dir, "kubeconfigs");
  for (const d of ["logs", "etcd", "kubeconfigs"]) mkdirSync(join(dir, d), { recursive: true });
  const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort] = await freePorts(6);
  const address = opts.address ?? "127.0.0.1";
  const server = `https://${address}:${apiPort}`;
  const etcdUrl = `https://127.0.0.1:${etcdClient}`;

  // kubeadm picks a global unicast address on `lo` when the advertise address is loopback (and finds none), so the
  // certificates name a documentation address (RFC 5737) and carry 127.0.0.1 as an extra SAN. Important: nothing may
  // ever dial that address: kubeadm writes the local endpoint into controller-manager.conf and scheduler.conf, so
  // every kubeconfig's server is rewritten to loopback below, and checked.
  const kubeadmConfig = join(dir, "kubeadm.yaml");
  writeFileSync(
    kubeadmConfig,
    [
      { apiVersion: "kubeadm.k8s.io/v1beta4", kind: "InitConfiguration", localAPIEndpoint: { advertiseAddress: "203.0.113.10", bindPort: apiPort }, nodeRegistration: { name: "cp-0" } },
      {
        apiVersion: "kubeadm.k8s.io/v1beta4",
        kind: "ClusterConfiguration",
        kubernetesVersion: version,
        clusterName: "kubeadm-ha-test",
        certificatesDir: pki,
        controlPlaneEndpoint: `${address}:${apiPort}`,
        apiServer: { certSANs: [...new Set(["127.0.0.1", "localhost", address])] },
        etcd: { local: { serverCertSANs: ["127.0.0.1"], peerCertSANs: ["127.0.0.1"] } },
      },
    ]
      .map((d) => stringify(d))
      .join("---\n"),
  );
  for (const phase of [["certs", "all"], ["kubeconfig", "admin"], ["kubeconfig", "super-admin"], ["kubeconfig", "controller-manager"], ["kubeconfig", "scheduler"]]) {
    const r = await run(kubeadm, ["init", "phase", ...phase, "--config", kubeadmConfig, ...(phase[0] === "kubeconfig" ? ["--kubeconfig-dir", kubeconfigs] : [])], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`kubeadm init phase ${phase.join(" ")} failed:\n${r.stderr}${r.stdout}`);
  }
  for (const f of readdirSync(kubeconfigs)) {
    const file = join(kubeconfigs, f);
    const text = readFileSync(file, "utf8").replace(/server: https:\/\/[^\s]+/g, `server: ${server}`);
    if (text.split("server: https://").length !== 2 || !text.includes(`server: ${server}\n`)) throw new Error(`${file}: its server is not ${server}`);
    writeFileSync(file, text, { mode: 0o600 });
  }
  const p = (f: string) => join(pki, f);
  const kc = (f: string) => join(kubeconfigs, f);
  const components: Component[] = [];
  const cp: ControlPlane = {
    dir,
    version,
    server,
    etcdEndpoint: etcdUrl,
    adminKubeconfig: kc("admin.conf"),
    kubectlPath,
    kubectl: (args, o = {}) => run(kubectlPath, ["--kubeconfig", kc("admin.conf"), ...args], { input: o.input, timeoutMs: o.timeoutMs ?? 60_000 }),
    async kubectlOk(args, o = {}) {
      const r = await cp.kubectl(args, o);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}):\n${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    async apply(objects) {
      await cp.kubectlOk(["apply", "-f", "-"], { input: objects.map((o) => stringify(o)).join("---\n") });
    },
    async addNodes(nodes) {
      await cp.apply(
        nodes.map((n) => ({
          apiVersion: "v1",
          kind: "Node",
          metadata: {
            name: n.name,
            labels: {
              "kubernetes.io/hostname": n.name,
              "kubernetes.io/os": "linux",
              ...(n.controlPlane ? { "node-role.kubernetes.io/control-plane": "" } : {}),
              ...(n.managed === false ? {} : { [kwokManagedLabel]: "true" }),
              ...(n.labels ?? {}),
            },
          },
          status: {
            capacity: { cpu: "8", memory: "32Gi", pods: "110" },
            allocatable: { cpu: "8", memory: "32Gi", pods: "110" },
            nodeInfo: { kubeletVersion: n.kubeletVersion ?? version, architecture: "amd64", operatingSystem: "linux" },
          },
        })),
      );
      for (const n of nodes) {
        if (n.managed === false) {
          // A dead machine: Ready=False, as the node lifecycle controller would report it (Unknown) once its lease ran out.
          const now = new Date().toISOString();
          const patch = { status: { conditions: [{ type: "Ready", status: "False", reason: "KubeletNotReady", message: "test: no kubelet", lastHeartbeatTime: now, lastTransitionTime: now }] } };
          await cp.kubectlOk(["patch", "node", n.name, "--subresource=status", "--type=merge", "-p", JSON.stringify(patch)]);
        }
        const want = n.managed === false ? "False" : "True";
        await cp.waitFor(`node ${n.name} Ready=${want}`, async () => {
          const r = await cp.kubectl(["get", "node", n.name, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
          return r.code === 0 && r.stdout.trim() === want;
        });
      }
    },
    async waitFor(what, check, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        if (await check()) return;
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${cp.logs(15)}`);
        await sleep(250);
      }
    },
    logs(lines = 20) {
      return components.map((c) => `--- ${c.name} (${c.log}):\n${tailFile(c.log, lines)}`).join("\n");
    },
    async stop() {
      // Reverse start order: nothing reconnects to a component that has gone.
      for (const c of [...components].reverse()) await stopComponent(c);
    },
  };

  const waitUntil = async (what: string, check: () => Promise<boolean>) => {
    for (;;) {
      const dead = components.find((c) => c.child.exitCode !== null);
      if (dead) throw new Error(`${dead.name} exited (${dead.child.exitCode}) while waiting for ${what}:\n${tailFile(dead.log, 30)}`);
      if (await check()) return;
      if (Date.now() > deadline) throw new Error(`control plane: timed out waiting for ${what}\n${cp.logs(20)}`);
      await sleep(300);
    }
  };

  try {
    components.push(
      startComponent(dir, "etcd", realTool("etcd"), [
        "--name=cp-0",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=https://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=https://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=cp-0=https://127.0.0.1:${etcdPeer}`,
        "--client-cert-auth=true",
        `--trusted-ca-file=${p("etcd/ca.crt")}`,
        `--cert-file=${p("etcd/server.crt")}`,
        `--key-file=${p("etcd/server.key")}`,
        "--peer-client-cert-auth=true",
        `--peer-trusted-ca-file=${p("etcd/ca.crt")}`,
        `--peer-cert-file=${p("etcd/peer.crt")}`,
        `--peer-key-file=${p("etcd/peer.key")}`,
        "--snapshot-count=10000",
      ]),
    );
    // The flags of kubeadm's kube-apiserver manifest, on loopback.
    components.push(
      startComponent(dir, "kube-apiserver", realTool("kube-apiserver"), [
        `--advertise-address=${address}`,
        `--bind-address=${address}`,
        `--secure-port=${apiPort}`,
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        `--client-ca-file=${p("ca.crt")}`,
        "--enable-admission-plugins=NodeRestriction",
        "--enable-bootstrap-token-auth=true",
        `--etcd-cafile=${p("etcd/ca.crt")}`,
        `--etcd-certfile=${p("apiserver-etcd-client.crt")}`,
        `--etcd-keyfile=${p("apiserver-etcd-client.key")}`,
        `--etcd-servers=${etcdUrl}`,
        `--kubelet-client-certificate=${p("apiserver-kubelet-client.crt")}`,
        `--kubelet-client-key=${p("apiserver-kubelet-client.key")}`,
        `--proxy-client-cert-file=${p("front-proxy-client.crt")}`,
        `--proxy-client-key-file=${p("front-proxy-client.key")}`,
        "--requestheader-allowed-names=front-proxy-client",
        `--requestheader-client-ca-file=${p("front-proxy-ca.crt")}`,
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${p("sa.pub")}`,
        `--service-account-signing-key-file=${p("sa.key")}`,
        "--service-cluster-ip-range=10.96.0.0/12",
        `--tls-cert-file=${p("apiserver.crt")}`,
        `--tls-private-key-file=${p("apiserver.key")}`,
      ]),
    );
    const superAdmin = kc("super-admin.conf");
    await waitUntil("the apiserver's /readyz", async () => (await run(kubectlPath, ["--kubeconfig", superAdmin, "get", "--raw", "/readyz"], { timeoutMs: 10_000 })).code === 0);
    // What `kubeadm init` does for admin.conf (phase bootstrap-token / kubeconfig since 1.29).
    const bind = await run(kubectlPath, ["--kubeconfig", superAdmin, "create", "clusterrolebinding", "kubeadm:cluster-admins", "--clusterrole=cluster-admin", "--group=kubeadm:cluster-admins"], { timeoutMs: 30_000 });
    if (bind.code !== 0 && !bind.stderr.includes("AlreadyExists")) throw new Error(`cannot bind kubeadm:cluster-admins: ${bind.stderr}`);
    components.push(
      startComponent(dir, "kube-controller-manager", realTool("kube-controller-manager"), [
        `--kubeconfig=${kc("controller-manager.conf")}`,
        `--authentication-kubeconfig=${kc("controller-manager.conf")}`,
        `--authorization-kubeconfig=${kc("controller-manager.conf")}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${kcmPort}`,
        `--client-ca-file=${p("ca.crt")}`,
        "--cluster-name=kubeadm-ha-test",
        `--cluster-signing-cert-file=${p("ca.crt")}`,
        `--cluster-signing-key-file=${p("ca.key")}`,
        "--controllers=*,bootstrapsigner,tokencleaner",
        "--leader-elect=false",
        `--requestheader-client-ca-file=${p("front-proxy-ca.crt")}`,
        `--root-ca-file=${p("ca.crt")}`,
        `--service-account-private-key-file=${p("sa.key")}`,
        "--use-service-account-credentials=true",
      ]),
      startComponent(dir, "kube-scheduler", realTool("kube-scheduler"), [
        `--kubeconfig=${kc("scheduler.conf")}`,
        `--authentication-kubeconfig=${kc("scheduler.conf")}`,
        `--authorization-kubeconfig=${kc("scheduler.conf")}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${schedPort}`,
        "--leader-elect=false",
      ]),
    );
    if (opts.kwok !== false) {
      const stagesDir = join(realToolsDir, "kwok", realToolVersion("kwok"), "stages");
      const stages = readdirSync(stagesDir).filter((f) => f.endsWith(".yaml"));
      components.push(
        startComponent(dir, "kwok", realTool("kwok"), [
          `--kubeconfig=${kc("admin.conf")}`,
          `--manage-nodes-with-label-selector=${kwokManagedLabel}=true`,
          "--cidr=10.244.0.0/16",
          "--node-ip=127.0.0.1",
          "--node-lease-duration-seconds=40",
          `--server-address=127.0.0.1:${kwokPort}`,
          ...stages.map((f) => `--config=${join(stagesDir, f)}`),
        ]),
      );
    }
    // The default ServiceAccount exists once the controller-manager runs: pods can be created from then on.
    await waitUntil("the default ServiceAccount", async () => (await cp.kubectl(["get", "serviceaccount", "default", "-n", "default"], { timeoutMs: 10_000 })).code === 0);
  } catch (e) {
    await cp.stop();
    throw e;
  }
  return cp;
}
