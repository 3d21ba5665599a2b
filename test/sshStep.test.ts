// A REAL SSH run of steps the program registers: two Debian sshd (openssh-server, unpacked into .tools/ by
// test/tools/ensure-tools.sh) on loopback ports — one the bastion, one the node — and OpenSSH's client running a step's
// exact `create` command through the bastion (ProxyJump), with the step's `stdin` fed the way the command provider feeds
// it. The connection values are the ones the program registered, evaluated offline: the dev stack (AWS: ubuntu@node:22
// through ubuntu@bastion:22) and a static stack (the lab stack with three control planes, HAProxy + keepalived, nodes
// on port 2222 and a bastion jump@:2200). The test rewrites ONLY the hosts/ports (to the loopback sshd) and the private
// keys (to a key made here); users are the registered ones.
//
// What is not the production path, and why:
// - Both sshd run in a private MOUNT NAMESPACE (unshare; needs root) where /etc/passwd and /etc/group are copies that
//   add the logins (`ubuntu` as uid 0: see the sudo stand-in; `jump` with no shell), sshd's privilege-separation user
//   and Debian's `haproxy` user, and /run is a tmpfs holding /run/sshd. Nothing of the machine's /etc, /run, /etc/ssh
//   or ~/.ssh is written.
// - This machine has no sudo: a stand-in on the node's PATH takes `sudo -n CMD...` and runs CMD with sudo's
//   env_reset semantics plus `env_keep += KUBEADM_HA_ROOT` (the node's sshd sets KUBEADM_HA_ROOT with SetEnv), so the
//   unchanged production scripts act on a scratch root. It records its argv and keeps a copy of the script it ran.
// - On the node, curl and kubeadm (init: there is no apiserver here) and apt-get and systemctl (api-endpoint) are
//   recording stubs; haproxy and keepalived are the real ones from .tools/ once the apt-get stub "installed" them.
import test, { ExecutionContext } from "ava";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { AddressInfo, createServer } from "node:net";
import { homedir, networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { Registration } from "../infra/offline/engine";
import { remoteInvocation } from "../infra/scripts/common";
import { initConfigPath, initControlPlaneScript } from "../infra/scripts/initControlPlane";
import { readKubeconfigScript } from "../infra/scripts/readKubeconfig";
import { projectName } from "../infra/config";
import { evaluate } from "../infra/offline/engine";
import { applyOverrides, loadStackConfig } from "../infra/offline/plan";
import { runProgram } from "../infra/program";
import { apiEndpointPaths } from "../infra/scripts/apiEndpoint";
import { byName, evaluateDev, projectDir } from "./support/program";
import { makeCaCert, nodePath, writeNodeFile } from "./support/stubs";
import { startSshd, writeOverlays, type Sshd } from "./support/sshd";
import { toolPath } from "./support/tools";

interface ConnectionValues {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  dialErrorLimit?: number;
  perDialTimeout?: number;
  proxy?: Omit<ConnectionValues, "proxy">;
}

interface Harness {
  dir: string;
  /** The node's KUBEADM_HA_ROOT. */
  root: string;
  bastion: Sshd;
  node: Sshd;
  /** The test key (private, OpenSSH format). */
  key: string;
  steps: Map<string, Registration>;
  sshDirBefore: boolean;
  /** This machine's network interface, which the static stack's keepalived config names (keepalived checks it). */
  iface: string;
}

let harness: Harness | undefined;
/** Undone in reverse order after the tests, also when test.before fails halfway. */
const undo: (() => void | Promise<void>)[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A non-loopback interface of this machine with an IPv4 address: `keepalived --config-test` checks it exists. */
function hostInterface(): string {
  const found = Object.entries(networkInterfaces()).find(
    ([name, addrs]) => name !== "lo" && (addrs ?? []).some((a) => a.family === "IPv4" && !a.internal),
  );
  if (!found) throw new Error("no non-loopback IPv4 interface on this machine for the keepalived config");
  return found[0];
}

/** The static stack (hosts.provider static) the SSH test takes its api-endpoint step from: the lab stack, made HA. */
const staticStack = {
  nodePort: 2222,
  bastion: { address: "203.0.113.7", user: "jump", port: 2200 },
  virtualIp: "10.10.0.100",
  apiPort: 8443,
  controlPlanes: ["cp-0", "cp-1", "cp-2"].map((name, i) => ({ name, address: `192.168.56.${10 + i}`, privateAddress: `10.10.0.${10 + i}` })),
};

/** Evaluates the program offline on the lab stack's config with three control planes, a bastion and HAProxy + keepalived. */
async function evaluateStatic(iface: string) {
  const base = loadStackConfig(projectDir, "lab");
  const host = (h: { name: string; address: string; privateAddress: string }) => ({ ...h, user: "ubuntu", port: staticStack.nodePort });
  const config = applyOverrides(base.config, [
    `hosts=${JSON.stringify({
      provider: "static",
      controlPlanes: staticStack.controlPlanes.map(host),
      workers: [host({ name: "worker-0", address: "192.168.56.20", privateAddress: "10.10.0.20" })],
      etcd: [],
      bastion: staticStack.bastion,
    })}`,
    `apiEndpoint=${JSON.stringify({ haproxy: true, virtualIp: staticStack.virtualIp, interface: iface, port: staticStack.apiPort })}`,
  ]);
  return evaluate({ project: projectName, stack: "lab", config, secretKeys: base.secretKeys, program: runProgram });
}

/**
 * Node-side recording stubs for the api-endpoint step: apt-get and systemctl (they must not touch this machine) with a
 * little state (installed packages, active units) under DIR/node-state; haproxy and keepalived answer once "installed"
 * and then are the real binaries from .tools/ (so `haproxy -c` and `keepalived --config-test` are real checks).
 */
function writeNodeStubs(dir: string, stubDir: string): void {
  const state = join(dir, "node-state");
  mkdirSync(join(state, "pkg"), { recursive: true });
  mkdirSync(join(state, "active"), { recursive: true });
  const record = (name: string) => `printf '${name} %s\n' "$*" >>'${dir}/node-calls.log'`;
  const stubs: Record<string, string[]> = {
    "apt-get": [
      record("apt-get"),
      '[ "${DEBIAN_FRONTEND:-}" = noninteractive ] || { echo "apt-get stub: not DEBIAN_FRONTEND=noninteractive" >&2; exit 100; }',
      'sub=""',
      'while [ $# -gt 0 ]; do',
      '  case $1 in',
      '    -o) shift ;;',
      '    -*) ;;',
      `    *) if [ -z "$sub" ]; then sub=$1; elif [ "$sub" = install ]; then : >'${state}/pkg/'"$1"; echo "Setting up $1 ..."; fi ;;`,
      '  esac',
      '  shift',
      'done',
    ],
    systemctl: [
      record("systemctl"),
      'unit=${!#}',
      'case "${1:-}" in',
      `  is-active) [ -e '${state}/active/'"$unit" ] ;;`,
      `  start | restart) : >'${state}/active/'"$unit" ;;`,
      `  reload) [ -e '${state}/active/'"$unit" ] || { echo "$unit is not active, cannot reload" >&2; exit 1; } ;;`,
      "esac",
    ],
    haproxy: [record("haproxy"), `[ -e '${state}/pkg/haproxy' ] || exit 127`, `exec '${toolPath.haproxy()}' "$@"`],
    keepalived: [record("keepalived"), `[ -e '${state}/pkg/keepalived' ] || exit 127`, `exec '${toolPath.keepalived()}' "$@"`],
  };
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(stubDir, name), ["#!/bin/bash", `# recording stub (test/sshStep.test.ts) for ${name}`, ...body, ""].join("\n"), { mode: 0o755 });
  }
}

test.before(async () => {
  if (process.getuid?.() !== 0) throw new Error("the SSH test needs root (mount namespaces, a uid-0 login for the sudo stand-in)");
  const sshDirBefore = existsSync(join(homedir(), ".ssh"));
  const iface = hostInterface();
  const [dev, lab] = [await evaluateDev(), await evaluateStatic(iface)];
  const steps = new Map([
    ...["cp-0-read-kubeconfig", "cp-0-init"].map((n) => [n, byName(dev, n, "command:remote:Command")] as const),
    ["static:cp-0-api-endpoint", byName(lab, "cp-0-api-endpoint", "command:remote:Command")] as const,
  ]);

  const dir = mkdtempSync(join(tmpdir(), "kubeadm-ha-ssh-"));
  undo.push(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const root = join(dir, "node-root");
  mkdirSync(root);
  mkdirSync(join(dir, "home"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "kubeadm-ha-test", "-f", join(dir, "test_key")]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "test_key.pub")));
  const overlays = writeOverlays(dir, join(dir, "home"));

  // The node's sudo stand-in (see the file comment) and its recording stubs.
  const nodeBin = join(dir, "node-bin");
  const nodeStubs = join(dir, "node-stubs");
  mkdirSync(nodeBin);
  mkdirSync(nodeStubs);
  const securePath = `${nodeStubs}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
  writeFileSync(join(nodeBin, "sudo"), [
    "#!/bin/bash",
    "# TEST STAND-IN for sudo (test/sshStep.test.ts): sudo -n with env_reset, secure_path and env_keep += KUBEADM_HA_ROOT.",
    `printf '%s\\n' "$*" >>'${dir}/sudo.log'`,
    `[ "\${1:-}" = -n ] || { echo "sudo: a terminal is required to read the password; use -n" >&2; exit 1; }`,
    "shift",
    `if [ "\${1:-}" = bash ] && [ -f "\${2:-}" ]; then cp "$2" '${dir}/last-step.sh'; fi`,
    `exec env -i PATH='${securePath}' HOME=/root LOGNAME=root USER=root SHELL=/bin/bash \${KUBEADM_HA_ROOT+"KUBEADM_HA_ROOT=$KUBEADM_HA_ROOT"} "$@"`,
    "",
  ].join("\n"), { mode: 0o755 });
  writeFileSync(join(nodeStubs, "curl"), [
    "#!/bin/bash",
    "# recording stub (test/sshStep.test.ts): the local apiserver's /readyz answers ok; nothing else is reachable",
    `printf 'curl %s\\n' "$*" >>'${dir}/node-calls.log'`,
    'case "$*" in *https://127.0.0.1:6443/readyz*) printf ok ;; *) echo "curl stub: no route to $*" >&2; exit 7 ;; esac',
    "",
  ].join("\n"), { mode: 0o755 });
  writeFileSync(join(nodeStubs, "kubeadm"), [
    "#!/bin/bash",
    "# recording stub (test/sshStep.test.ts): an initialised node must not run kubeadm init again; kubeconfig user",
    "# prints the fixture kubeconfig (the read-kubeconfig step's credential)",
    `printf 'kubeadm %s\\n' "$*" >>'${dir}/node-calls.log'`,
    `if [ "$1 $2" = "kubeconfig user" ] && [ -f '${dir}/kubeconfig-fixture' ]; then cat '${dir}/kubeconfig-fixture'; exit 0; fi`,
    "exit 1",
    "",
  ].join("\n"), { mode: 0o755 });
  writeFileSync(join(nodeStubs, "kubectl"), [
    "#!/bin/bash",
    "# recording stub (test/sshStep.test.ts): kubeadm-config's ClusterConfiguration",
    `printf 'kubectl %s\\n' "$*" >>'${dir}/node-calls.log'`,
    `case "$*" in *"get configmap kubeadm-config"*) printf 'apiVersion: kubeadm.k8s.io/v1beta4\\nkind: ClusterConfiguration\\ncontrolPlaneEndpoint: api.example:6443\\n' ;; *) exit 1 ;; esac`,
    "",
  ].join("\n"), { mode: 0o755 });
  writeNodeStubs(dir, nodeStubs);

  const [bastionPort, nodePort] = [await freePort(), await freePort()];
  const authorizedKeys = join(dir, "authorized_keys");
  const bastion = await startSshd({ dir, name: "bastion", address: "127.0.0.1", port: bastionPort, overlays, authorizedKeys, extra: [
    "AllowUsers ubuntu jump",
    // DEBUG1 logs each forwarded connection (server_request_direct_tcpip): the proof that the run went through here.
    "LogLevel DEBUG1",
    // A jump host only: forwards to the node's sshd and nowhere else.
    "AllowTcpForwarding local",
    `PermitOpen 127.0.0.1:${nodePort}`,
  ] });
  undo.push(() => bastion.stop());
  const node = await startSshd({ dir, name: "node", address: "127.0.0.1", port: nodePort, overlays, authorizedKeys, extra: [
    "AllowUsers ubuntu",
    // Not DEBUG: with -e, a session's debug lines would reach the client's stderr and be mistaken for the step's.
    "LogLevel VERBOSE",
    "AllowTcpForwarding no",
    `SetEnv PATH=${nodeBin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin KUBEADM_HA_ROOT=${root}`,
  ] });
  undo.push(() => node.stop());
  harness = { dir, root, bastion, node, key: readFileSync(join(dir, "test_key"), "utf8"), steps, sshDirBefore, iface };
});

test.after.always(async () => {
  while (undo.length) await undo.pop()!();
});

/**
 * The registered connection pointed at the loopback sshd. Rewritten: ONLY host and port (node and bastion) and the
 * private keys (to the test key). User, proxy user, dial limits stay as the program registered them.
 */
function toLoopback(registered: ConnectionValues, h: Harness): ConnectionValues {
  if (!registered.proxy) throw new Error("the step has no bastion (connection.proxy): this test requires one");
  return {
    ...registered,
    host: "127.0.0.1",
    port: h.node.port,
    privateKey: h.key,
    proxy: { ...registered.proxy, host: "127.0.0.1", port: h.bastion.port, privateKey: h.key },
  };
}

interface SshRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` on the connection's node with OpenSSH, the bastion as ProxyJump, `stdin` on the session's stdin (the
 * command provider writes the step's stdin to the session and closes it; no stdin means an empty, closed stdin).
 * The jump host's settings live in a config file (-F): ssh passes -F, not -i or -o, to the process it starts for
 * ProxyJump. Host keys are neither checked nor stored (UserKnownHostsFile /dev/null).
 */
async function runOverSsh(h: Harness, conn: ConnectionValues, command: string, stdin?: string): Promise<SshRun> {
  const proxy = conn.proxy!;
  const work = mkdtempSync(join(h.dir, "client-"));
  const nodeKey = join(work, "node_key");
  const bastionKey = join(work, "bastion_key");
  writeFileSync(nodeKey, conn.privateKey, { mode: 0o600 });
  writeFileSync(bastionKey, proxy.privateKey, { mode: 0o600 });
  const config = join(work, "ssh_config");
  writeFileSync(config, [
    "Host *",
    "  BatchMode yes",
    "  StrictHostKeyChecking no",
    "  UserKnownHostsFile /dev/null",
    "  GlobalKnownHostsFile /dev/null",
    "  IdentitiesOnly yes",
    "  IdentityAgent none",
    "  LogLevel ERROR",
    // The provider retries dialling dialErrorLimit times; against a local sshd one attempt is the honest test.
    "  ConnectionAttempts 1",
    "Host kubeadm-ha-bastion",
    `  HostName ${proxy.host}`,
    `  Port ${proxy.port}`,
    `  User ${proxy.user}`,
    `  IdentityFile ${bastionKey}`,
    `  ConnectTimeout ${proxy.perDialTimeout ?? 15}`,
    "",
  ].join("\n"));
  const args = [
    "-F", config,
    "-o", "ProxyJump=kubeadm-ha-bastion",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", `ConnectTimeout=${conn.perDialTimeout ?? 15}`,
    "-i", nodeKey,
    "-p", String(conn.port),
    "-l", conn.user,
    conn.host,
    command,
  ];
  const child = spawn("ssh", args, {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, LC_ALL: "C.UTF-8" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdin.on("error", () => undefined);
  child.stdin.end(stdin ?? "");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function step(name: string): Registration {
  if (!harness) throw new Error("harness not started");
  const r = harness.steps.get(name);
  if (!r) throw new Error(`no step ${name}`);
  return r;
}

/** The run went node <- bastion: the bastion forwarded a connection to the node's sshd, which logged the key login. */
function assertThroughBastion(t: ExecutionContext, h: Harness, bastionLogBefore: number, nodeLogBefore: number, bastionUser = "ubuntu") {
  const bastionLog = h.bastion.log().slice(bastionLogBefore);
  const nodeLog = h.node.log().slice(nodeLogBefore);
  t.regex(bastionLog, new RegExp(`Accepted publickey for ${bastionUser} from 127\\.0\\.0\\.1`));
  t.regex(bastionLog, new RegExp(`server_request_direct_tcpip: originator 127\\.0\\.0\\.1 port \\d+, target 127\\.0\\.0\\.1 port ${h.node.port}`));
  t.regex(nodeLog, /Accepted publickey for ubuntu from 127\.0\.0\.1/);
  t.notRegex(nodeLog, /direct_tcpip/);
}

/** The sudo stand-in ran `bash <the step file>` with -n, the file held exactly the step script, and it is gone now. */
function assertSudoRan(t: ExecutionContext, h: Harness, script: string, sudoLogBefore: number) {
  const calls = readFileSync(join(h.dir, "sudo.log"), "utf8").slice(sudoLogBefore).split("\n").filter((l) => l);
  t.is(calls.length, 1, calls.join("\n"));
  const m = /^-n bash (\/tmp\/kubeadm-ha-step\.[A-Za-z0-9]{6})$/.exec(calls[0]);
  t.truthy(m, calls[0]);
  t.is(readFileSync(join(h.dir, "last-step.sh"), "utf8"), `${script.trimEnd()}\n`, "the heredoc carried the script byte for byte");
  t.false(existsSync(m![1]), "the step file is removed on exit");
}

const logSizes = (h: Harness) => ({
  bastion: h.bastion.log().length,
  node: h.node.log().length,
  sudo: existsSync(join(h.dir, "sudo.log")) ? readFileSync(join(h.dir, "sudo.log"), "utf8").length : 0,
});

test.serial("the registered connection of cp-0's steps: node by private address on port 22, bastion mandatory", (t) => {
  for (const name of ["cp-0-read-kubeconfig", "cp-0-init"]) {
    const conn = step(name).inputs.connection as ConnectionValues;
    t.is(conn.port, 22);
    t.is(conn.user, "ubuntu");
    t.regex(conn.host, /^10\.0\.\d+\.\d+$/);
    t.truthy(conn.proxy, "a bastion");
    t.is(conn.proxy!.user, "ubuntu");
    t.is(conn.proxy!.port, 22);
    t.notRegex(conn.proxy!.host, /^10\./, "the bastion is reached on its public address");
    t.regex(conn.privateKey, /BEGIN OPENSSH PRIVATE KEY/);
    t.true(step(name).secretInputs.includes("connection"), "the connection is a secret in state");
  }
});

test.serial("the registered connection of a static host's step: the configured address, user and port, through the configured bastion", (t) => {
  const reg = step("static:cp-0-api-endpoint");
  const conn = reg.inputs.connection as ConnectionValues;
  t.like(conn, { host: "192.168.56.10", port: staticStack.nodePort, user: "ubuntu" });
  t.like(conn.proxy, { host: staticStack.bastion.address, port: staticStack.bastion.port, user: staticStack.bastion.user });
  t.true(reg.secretInputs.includes("connection"));
});

test.serial("REAL SSH through a bastion (ProxyJump): cp-0-read-kubeconfig's exact create command prints the credential kubeadm minted (kubeadm, kubectl: node-side stubs)", async (t) => {
  const h = harness!;
  const reg = step("cp-0-read-kubeconfig");
  const script = readKubeconfigScript({ node: "cp-0", round: "initial", validityHours: 8760 });
  t.is(reg.inputs.create, remoteInvocation(script));
  t.is(reg.inputs.stdin, undefined);
  writeNodeFile(h.root, "/etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n", 0o600);
  const kubeconfig = `apiVersion: v1\nkind: Config\nusers:\n- name: kubeadm-ha-admin\n  user:\n    client-certificate-data: ${randomBytes(8).toString("hex")}\n`;
  writeFileSync(join(h.dir, "kubeconfig-fixture"), kubeconfig);
  const before = logSizes(h);

  const run = await runOverSsh(h, toLoopback(reg.inputs.connection as ConnectionValues, h), reg.inputs.create as string);

  t.is(run.code, 0, run.stderr);
  t.is(run.stdout, kubeconfig, "stdout is exactly the minted kubeconfig");
  t.true(run.stderr.split("\n").filter((l) => l).every((l) => l.startsWith("[cp-0] read-kubeconfig: ")));
  assertThroughBastion(t, h, before.bastion, before.node);
  assertSudoRan(t, h, script, before.sudo);
  t.is(existsSync(join(homedir(), ".ssh")), h.sshDirBefore, "the machine's ~/.ssh is untouched");
});

test.serial("REAL SSH through a bastion (ProxyJump): cp-0-init's exact create command takes its secret stdin, and leaves no copy of it on the node (curl, kubeadm: node-side stubs)", async (t) => {
  const h = harness!;
  const reg = step("cp-0-init");
  t.is(reg.inputs.create, remoteInvocation(initControlPlaneScript({ node: "cp-0" })));
  const stdin = reg.inputs.stdin as string;
  t.true(reg.secretInputs.includes("stdin"));
  t.regex(stdin, /kind: InitConfiguration/);
  const token = /token: "?([a-z0-9]{6}\.[a-z0-9]{16})"?/.exec(stdin)?.[1];
  t.truthy(token, "the init configuration carries the bootstrap token");
  // An initialised node (admin.conf present) with a real CA: init only stores its config.
  writeNodeFile(h.root, "/etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n", 0o600);
  makeCaCert(h.root);
  const before = logSizes(h);

  const run = await runOverSsh(h, toLoopback(reg.inputs.connection as ConnectionValues, h), reg.inputs.create as string, stdin);

  t.is(run.code, 0, run.stderr);
  t.is(run.stdout, "", "init returns nothing on stdout");
  t.false(existsSync(nodePath(h.root, initConfigPath)), "the configuration (token, certificate key) does not stay on the node");
  for (const line of run.stderr.split("\n").filter((l) => l)) t.true(line.startsWith("[cp-0] init: "), line);
  t.regex(run.stderr, /already initialised/);
  t.false(run.stdout.includes(token!) || run.stderr.includes(token!), "the token never reaches the output");
  const nodeCalls = readFileSync(join(h.dir, "node-calls.log"), "utf8");
  t.regex(nodeCalls, /^curl .*https:\/\/127\.0\.0\.1:6443\/readyz/m);
  t.notRegex(nodeCalls, /^kubeadm (init|reset)/m);
  assertThroughBastion(t, h, before.bastion, before.node);
  assertSudoRan(t, h, initControlPlaneScript({ node: "cp-0" }), before.sudo);
});

test.serial("the bastion forwards only to the node: a direct-tcpip request elsewhere is refused", async (t) => {
  const h = harness!;
  const reg = step("cp-0-read-kubeconfig");
  const conn = toLoopback(reg.inputs.connection as ConnectionValues, h);
  // Same client, node port pointed at the bastion's own sshd: PermitOpen on the bastion refuses the forward.
  const run = await runOverSsh(h, { ...conn, port: h.bastion.port }, "true");
  t.not(run.code, 0);
  t.regex(run.stderr, /stdio forwarding failed/);
  t.regex(h.bastion.log(), new RegExp(`Received request from 127\\.0\\.0\\.1 port \\d+ to connect to host 127\\.0\\.0\\.1 port ${h.bastion.port}, but the request was denied`));
});

test.serial("REAL SSH through a bastion (ProxyJump) as the static stack registers it: cp-0-api-endpoint installs HAProxy + keepalived configs that pass the real haproxy -c and keepalived --config-test; a second run restarts nothing (apt-get, systemctl: node-side stubs)", async (t) => {
  const h = harness!;
  const reg = step("static:cp-0-api-endpoint");
  const conn = toLoopback(reg.inputs.connection as ConnectionValues, h);
  t.is(conn.user, "ubuntu");
  t.is(conn.proxy!.user, "jump", "the bastion login is the configured bastion user, not the node's");
  const callsBefore = () => (existsSync(join(h.dir, "node-calls.log")) ? readFileSync(join(h.dir, "node-calls.log"), "utf8").length : 0);
  const callsSince = (from: number) => readFileSync(join(h.dir, "node-calls.log"), "utf8").slice(from).split("\n").filter((l) => l);

  const before = logSizes(h);
  const calls0 = callsBefore();
  const first = await runOverSsh(h, conn, reg.inputs.create as string);
  t.is(first.code, 0, first.stderr);
  for (const line of first.stderr.split("\n").filter((l) => l)) t.true(line.startsWith("[cp-0] api-endpoint: "), line);
  assertThroughBastion(t, h, before.bastion, before.node, "jump");
  const calls1 = callsSince(calls0);
  t.true(calls1.some((c) => /^apt-get .*install .*haproxy keepalived/.test(c)), calls1.join("\n"));
  const check = calls1.findIndex((c) => /^haproxy -c -f .*haproxy\.cfg\.new\./.test(c));
  const start = calls1.findIndex((c) => c === "systemctl restart haproxy");
  t.true(check >= 0 && start > check, "haproxy -c ran on the candidate before haproxy was (re)started");
  t.true(calls1.some((c) => /^keepalived --config-test -f /.test(c)));
  t.true(calls1.includes("systemctl restart keepalived"));

  const haproxyCfg = readFileSync(nodePath(h.root, apiEndpointPaths.haproxyConfig), "utf8");
  t.regex(haproxyCfg, new RegExp(`^\\s+bind \\*:${staticStack.apiPort}$`, "m"));
  t.regex(haproxyCfg, /^\s+user haproxy$/m, "the packaged user: haproxy -c resolved it on the node");
  for (const cp of staticStack.controlPlanes) {
    t.regex(haproxyCfg, new RegExp(`^\\s+server ${cp.name} ${cp.privateAddress.replace(/\./g, "\\.")}:6443 check check-ssl verify none$`, "m"));
  }
  const keepalivedConf = readFileSync(nodePath(h.root, apiEndpointPaths.keepalivedConfig), "utf8");
  t.regex(keepalivedConf, new RegExp(`^\\s+${staticStack.virtualIp.replace(/\./g, "\\.")}/32 dev ${h.iface}$`, "m"));
  t.regex(keepalivedConf, /^\s+state MASTER$/m);
  t.regex(keepalivedConf, /unicast_peer \{\s+10\.10\.0\.11\s+10\.10\.0\.12\s+\}/);

  // The same command again: nothing installed, validated, written, started or reloaded.
  const calls2From = callsBefore();
  const second = await runOverSsh(h, conn, reg.inputs.create as string);
  t.is(second.code, 0, second.stderr);
  const calls2 = callsSince(calls2From);
  t.deepEqual(calls2.filter((c) => /^(apt-get|systemctl (start|restart|reload|stop))\b/.test(c) || /^haproxy -c/.test(c)), []);
  t.false(/wrote /.test(second.stderr));
});

