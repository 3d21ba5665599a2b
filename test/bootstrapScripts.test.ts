// Behaviour of the bootstrap step scripts (prepare, init, join, wait-nodes-ready), run for real by
// bash against a scratch root. kubeadm, kubectl, apt-get, systemctl and friends are RECORDING STUBS
// (test/support/stubs.ts): none of them exist, or may run, on a test machine.
import test, { ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { initControlPlaneScript, initGuardScript } from "../infra/scripts/initControlPlane";
import { joinControlPlaneScript, joinWorkerScript } from "../infra/scripts/joinNode";
import { ClusterShape, initConfiguration, joinConfiguration } from "../infra/scripts/kubeadmConfig";
import { aptSourceLine, minorOf, packagePin, prepareNodeScript } from "../infra/scripts/prepareNode";
import { waitForNodesScript } from "../infra/scripts/waitForNodes";
import {
  StubRun,
  callsOf,
  cleanup,
  makeCaCert,
  nodePath,
  runWithStubs,
  seedHolds,
  seedNodes,
  seedKubeletIdentity,
  seedPackages,
  stubState,
  writeNodeFile,
} from "./support/stubs";

const STUBS = "(recording stubs: kubeadm, kubectl, apt-get, systemctl are not on this machine)";

const shape: ClusterShape = {
  clusterName: "test",
  kubernetesVersion: "1.35.9",
  controlPlaneEndpoint: "api.internal.example:6443",
  certSANs: ["api.internal.example"],
  podCidr: "10.244.0.0/16",
  serviceCidr: "10.96.0.0/12",
  etcd: { kind: "stacked" },
};

/** Secrets unlike anything else in the output, fresh per test run. */
function secrets() {
  const r = randomBytes(32).toString("hex");
  return { token: `${r.slice(0, 6)}.${r.slice(6, 22)}`, certificateKey: randomBytes(32).toString("hex") };
}

/** Every line a step prints to stderr names the node and the step. */
function assertEveryLineNamed(t: ExecutionContext, run: StubRun, node: string, step: string) {
  const lines = run.stderr.split("\n").filter((l) => l !== "");
  t.true(lines.length > 0);
  for (const line of lines) t.true(line.startsWith(`[${node}] ${step}: `), `unnamed stderr line: ${JSON.stringify(line)}`);
}

function assertNoLeak(t: ExecutionContext, run: StubRun, values: string[]) {
  for (const value of values) {
    t.false(run.stdout.includes(value), "a secret reached stdout");
    t.false(run.stderr.includes(value), "a secret reached stderr");
    for (const call of run.calls) t.false(call.args.some((a) => a.includes(value)), `a secret reached argv of ${call.cmd}`);
  }
}

function read(root: string, path: string): string {
  return readFileSync(nodePath(root, path), "utf8");
}

function mode(root: string, path: string): number {
  return statSync(nodePath(root, path)).mode & 0o777;
}

/** The package arguments of an `apt-get ... install PKG...` call. */
function installed(args: string[]): string[] {
  const i = args.indexOf("install");
  return args.slice(i + 1).filter((a) => !a.startsWith("-"));
}

function run(t: ExecutionContext, ...args: Parameters<typeof runWithStubs>): Promise<StubRun> {
  return runWithStubs(...args).then((r) => {
    t.teardown(() => cleanup(r.root));
    return r;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Small decisions
// ---------------------------------------------------------------------------------------------------------------

test("aptSourceLine names the minor's pkgs.k8s.io repository, flat, signed by its keyring", (t) => {
  t.is(
    aptSourceLine("1.30"),
    "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.30/deb/ /",
  );
  t.is(
    aptSourceLine("1.37"),
    "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.37/deb/ /",
  );
  for (const bad of ["1.35.9", "v1.35", "1", ""]) t.throws(() => aptSourceLine(bad), { message: /minor looks like 1\.35/ });
});

test("packagePin pins the exact release in pkgs.k8s.io's version format; minorOf picks the repository", (t) => {
  t.is(packagePin("1.35.9"), "1.35.9-*");
  t.is(packagePin("1.30.0"), "1.30.0-*");
  t.is(minorOf("1.35.9"), "1.35");
  for (const bad of ["v1.35.9", "1.35", "1.35.9-1.1", "1.27.2-00"]) {
    t.throws(() => packagePin(bad), { message: /must look like 1\.35\.9/ });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// prepare
// ---------------------------------------------------------------------------------------------------------------

const prepare = prepareNodeScript({ node: "cp-0", kubernetesVersion: "1.35.9" });

test(`prepare on a fresh node installs exactly the pinned packages from the minor's repo, holds them, configures the kernel and containerd ${STUBS}`, async (t) => {
  const r = await run(t, prepare);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, "");
  assertEveryLineNamed(t, r, "cp-0", "prepare");

  // The repository of 1.35, with its key, added before the one apt-get update that precedes the install.
  t.is(read(r.root, "/etc/apt/sources.list.d/kubernetes.list"), `${aptSourceLine("1.35")}\n`);
  t.regex(read(r.root, "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"), /stub key of https:\/\/pkgs\.k8s\.io\/core:\/stable:\/v1\.35\/deb\/Release\.key/);
  t.is(mode(r.root, "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"), 0o644);
  const names = r.calls.map((c) => `${c.cmd} ${c.args.filter((a) => !a.startsWith("-") && !a.includes("::")).join(" ")}`);
  const keyAt = names.findIndex((n) => n.startsWith("curl"));
  const updateAt = names.indexOf("apt-get update");
  const installAt = names.findIndex((n) => n.startsWith("apt-get install"));
  t.true(keyAt >= 0 && keyAt < updateAt && updateAt < installAt, names.join("\n"));

  const aptCalls = callsOf(r, "apt-get");
  t.is(aptCalls.length, 2);
  for (const args of aptCalls) t.true(args.join(" ").includes("-o DPkg::Lock::Timeout=300"));
  const installs = aptCalls.filter((a) => a.includes("install"));
  t.deepEqual(installs.map(installed), [["containerd", "kubelet=1.35.9-*", "kubeadm=1.35.9-*", "kubectl=1.35.9-*"]]);
  t.deepEqual(callsOf(r, "apt-mark").filter((a) => a[0] === "hold"), [["hold", "kubelet", "kubeadm", "kubectl"]]);
  t.is(readFileSync(`${stubState(r.root)}/pkg/kubeadm`, "utf8"), "1.35.9-1.1");

  // Kernel: swap off now and in fstab; modules and sysctls persisted and applied.
  t.deepEqual(callsOf(r, "swapoff"), [["-a"]]);
  t.is(
    read(r.root, "/etc/fstab"),
    "LABEL=cloudimg-rootfs\t/\text4\tdiscard,errors=remount-ro\t0 1\n#/swap.img\tnone\tswap\tsw\t0\t0\n",
  );
  t.is(read(r.root, "/etc/modules-load.d/k8s.conf"), "overlay\nbr_netfilter\n");
  t.deepEqual(callsOf(r, "modprobe"), [["overlay"], ["br_netfilter"]]);
  t.is(
    read(r.root, "/etc/sysctl.d/k8s.conf"),
    "net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n",
  );
  t.true(callsOf(r, "sysctl").some((a) => a[0] === "--system"));

  // containerd with the systemd cgroup driver, restarted once for it; the kubelet enabled.
  const toml = read(r.root, "/etc/containerd/config.toml");
  t.regex(toml, /^\s*SystemdCgroup = true$/m);
  t.notRegex(toml, /SystemdCgroup = false/);
  const systemctl = callsOf(r, "systemctl").map((a) => a.join(" "));
  t.deepEqual(systemctl, ["enable --now containerd", "restart containerd", "enable --now kubelet"]);
});

test(`prepare run again after success performs no apt-get, no download and no containerd restart ${STUBS}`, async (t) => {
  const first = await run(t, prepare);
  t.is(first.code, 0, first.stderr);
  const files = ["/etc/containerd/config.toml", "/etc/apt/sources.list.d/kubernetes.list", "/etc/fstab", "/etc/sysctl.d/k8s.conf"];
  const before = files.map((f) => [read(first.root, f), statSync(nodePath(first.root, f)).mtimeMs]);
  const again = await runWithStubs(prepare, { root: first.root });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(callsOf(again, "apt-get"), []);
  t.deepEqual(callsOf(again, "curl"), []);
  t.deepEqual(callsOf(again, "apt-mark").filter((a) => a[0] === "hold"), []);
  t.false(callsOf(again, "systemctl").some((a) => a[0] === "restart"));
  t.deepEqual(files.map((f) => [read(first.root, f), statSync(nodePath(first.root, f)).mtimeMs]), before);
  t.regex(again.stderr, /\[cp-0\] prepare: kubelet, kubeadm, kubectl v1\.35\.9 already installed and held/);
});

test(`prepare on a node with another Kubernetes version installs nothing and leaves it to the upgrade steps ${STUBS}`, async (t) => {
  const r = await run(t, prepare, {
    setup: (root) => {
      seedPackages(root, { kubelet: "1.34.2-1.1", kubeadm: "1.34.2-1.1", kubectl: "1.34.2-1.1", containerd: "1.7.28" });
      seedHolds(root, ["kubelet", "kubeadm", "kubectl"]);
    },
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "apt-get"), []);
  t.deepEqual(callsOf(r, "curl"), []);
  t.deepEqual(callsOf(r, "apt-mark").filter((a) => a[0] !== "showhold"), []);
  t.false(existsSync(nodePath(r.root, "/etc/apt/sources.list.d/kubernetes.list")));
  t.is(readFileSync(`${stubState(r.root)}/pkg/kubeadm`, "utf8"), "1.34.2-1.1");
  t.regex(r.stderr, /\[cp-0\] prepare: kubeadm v1\.34\.2 is installed, not v1\.35\.9: leaving it/);
});

test(`prepare holds packages that are at the version but not held (a run that stopped before apt-mark) ${STUBS}`, async (t) => {
  const r = await run(t, prepare, {
    setup: (root) => seedPackages(root, { kubelet: "1.35.9-1.1", kubeadm: "1.35.9-1.1", kubectl: "1.35.9-1.1", containerd: "1.7.28" }),
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "apt-get"), []);
  t.deepEqual(callsOf(r, "apt-mark").filter((a) => a[0] === "hold"), [["hold", "kubelet", "kubeadm", "kubectl"]]);
});

test(`prepare takes the repository and pins from the version it is given (1.30 and 1.37) ${STUBS}`, async (t) => {
  for (const [version, minor] of [["1.30.0", "1.30"], ["1.37.1", "1.37"]]) {
    const r = await run(t, prepareNodeScript({ node: "worker-3", kubernetesVersion: version }));
    t.is(r.code, 0, r.stderr);
    t.is(read(r.root, "/etc/apt/sources.list.d/kubernetes.list"), `${aptSourceLine(minor)}\n`);
    const install = callsOf(r, "apt-get").filter((a) => a.includes("install")).map(installed);
    t.deepEqual(install, [["containerd", `kubelet=${version}-*`, `kubeadm=${version}-*`, `kubectl=${version}-*`]]);
    assertEveryLineNamed(t, r, "worker-3", "prepare");
  }
});

test(`prepare treats cloud-init "degraded" (exit 2) as done and stops on a cloud-init error ${STUBS}`, async (t) => {
  const degraded = await run(t, prepare, { stubs: { "cloud-init": 'echo "status: degraded done"; exit 2' } });
  t.is(degraded.code, 0, degraded.stderr);
  t.regex(degraded.stderr, /\[cp-0\] prepare: cloud-init done, degraded/);

  const failed = await run(t, prepare, { stubs: { "cloud-init": 'echo "status: error"; exit 1' } });
  t.not(failed.code, 0);
  t.regex(failed.stderr, /\[cp-0\] prepare: ERROR: cloud-init failed \(exit 1\): status: error/);
  t.deepEqual(callsOf(failed, "apt-get"), []);
  t.true(callsOf(failed, "cloud-init").every((a) => a.join(" ") === "status --wait"));
});

test(`prepare whose containerd restart failed restarts it on the next run, and only then ${STUBS}`, async (t) => {
  const failOnce = [
    'if [ "${1:-}" = restart ] && [ ! -e "$S/restart-failed" ]; then',
    '  : >"$S/restart-failed"; echo "Job for containerd.service failed." >&2; exit 1',
    "fi",
    'stub_default "$@"',
  ].join("\n");
  const first = await run(t, prepare, { stubs: { systemctl: failOnce } });
  t.not(first.code, 0);
  t.regex(first.stderr, /\[cp-0\] prepare: ERROR: could not restart containerd/);
  t.regex(read(first.root, "/etc/containerd/config.toml"), /SystemdCgroup = true/);
  const second = await runWithStubs(prepare, { root: first.root, stubs: { systemctl: failOnce } });
  t.is(second.code, 0, second.stderr);
  t.deepEqual(callsOf(second, "systemctl").filter((a) => a[0] === "restart"), [["restart", "containerd"]]);
  const third = await runWithStubs(prepare, { root: first.root });
  t.is(third.code, 0, third.stderr);
  t.deepEqual(callsOf(third, "systemctl").filter((a) => a[0] === "restart"), []);
});

test(`prepare adds SystemdCgroup = true under runc's options when containerd's default config omits it, and sets containerd 2's pinned sandbox image to kubeadm's pause ${STUBS}`, async (t) => {
  const containerd2 = [
    'if [ "${1:-}" = config ]; then',
    "  printf '%s\\n' 'version = 3' \"  [plugins.'io.containerd.cri.v1.images'.pinned_images]\" \"    sandbox = 'registry.k8s.io/pause:3.10'\" \"  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\" \"    BinaryName = ''\"",
    "  exit 0",
    "fi",
    'stub_default "$@"',
  ].join("\n");
  const r = await run(t, prepare, { stubs: { containerd: containerd2 } });
  t.is(r.code, 0, r.stderr);
  const lines = read(r.root, "/etc/containerd/config.toml").split("\n");
  const at = lines.findIndex((l) => l.endsWith("runtimes.runc.options]"));
  t.is(lines[at + 1].trim(), "SystemdCgroup = true");
  t.true(lines.includes("    sandbox = 'registry.k8s.io/pause:3.10.1'"), lines.join("\n"));
});

// ---------------------------------------------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------------------------------------------

const init = initControlPlaneScript({ node: "cp-0" });
const cp0 = { name: "cp-0", privateIp: "10.0.1.10" };
const initConfigFile = "/etc/kubeadm-ha/kubeadm-init.yaml";

test(`init hands kubeadm the config in a 0600 file and removes it after, runs kubeadm init once, leaks neither token nor certificate key ${STUBS}`, async (t) => {
  const s = secrets();
  const config = initConfiguration({ shape, node: cp0, bootstrapToken: s.token, certificateKey: s.certificateKey });
  const r = await run(t, init, { stdin: config, setup: makeCaCert });
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(`${stubState(r.root)}/kubeadm-init-config`, "utf8"), config, "kubeadm read the configuration from stdin");
  t.is(readFileSync(`${stubState(r.root)}/kubeadm-init-config-mode`, "utf8").trim(), "600");
  t.false(existsSync(nodePath(r.root, initConfigFile)), "the token and certificate key do not stay on the node");
  t.is(mode(r.root, "/etc/kubeadm-ha"), 0o700);
  t.deepEqual(
    callsOf(r, "kubeadm").map((a) => a.slice(0, 4)),
    [["init", "--config", nodePath(r.root, initConfigFile), "--upload-certs"]],
  );
  // The stub kubeadm prints both secrets (join commands, "Using certificate key:"); none may get through.
  assertNoLeak(t, r, [s.token, s.certificateKey, s.token.split(".")[1]]);
  t.notRegex(r.stderr, /kubeadm join|--discovery-token-ca-cert-hash/);
  assertEveryLineNamed(t, r, "cp-0", "init");
  // Init returns nothing: the join-credentials step reports the CA hash with each fresh token.
  t.is(r.stdout, "");
  t.true(callsOf(r, "curl").every((a) => a.includes("https://127.0.0.1:6443/readyz")));
});

test(`init on a node with admin.conf never calls kubeadm init, and keeps no copy of its configuration ${STUBS}`, async (t) => {
  const s = secrets();
  const config = initConfiguration({ shape, node: cp0, bootstrapToken: s.token, certificateKey: s.certificateKey });
  const r = await run(t, init, {
    stdin: config,
    setup: (root) => {
      makeCaCert(root);
      writeNodeFile(root, "/etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n", 0o600);
    },
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "kubeadm"), []);
  t.regex(r.stderr, /\[cp-0\] init: already initialised/);
  t.is(r.stdout, "");
  t.false(existsSync(nodePath(r.root, initConfigFile)), "nothing of the configuration stays");
});

test(`init's update on a machine without admin.conf (a replaced cp-0) refuses, never running kubeadm init or reset, and names the recorded machine ${STUBS}`, async (t) => {
  const s = secrets();
  const config = initConfiguration({ shape, node: cp0, bootstrapToken: s.token, certificateKey: s.certificateKey });
  const guard = initGuardScript({ node: "cp-0", recorded: { machine: "10.0.1.10", kubernetesVersion: "1.35.9", round: "2030-01-01T08:00:00.000Z" } });
  const r = await run(t, guard, { stdin: config, setup: makeCaCert });
  t.not(r.code, 0);
  t.deepEqual(callsOf(r, "kubeadm"), []);
  t.true(
    r.stderr.includes(
      `cp-0 has no /etc/kubernetes/admin.conf, but the stack recorded kubeadm init on machine 10.0.1.10 (Kubernetes 1.35.9, round 2030-01-01T08:00:00.000Z), and this is another machine: kubeadm init here would start a new, empty cluster. Refusing; bring back the machine that holds the cluster (or restore it from an etcd snapshot, README "Restoring"), and never replace cp-0 in place`,
    ),
    r.stderr,
  );
  assertNoLeak(t, r, [s.token, s.certificateKey, s.token.split(".")[1]]);
  const plain = await run(t, initGuardScript({ node: "cp-0" }), { stdin: config, setup: makeCaCert });
  t.not(plain.code, 0);
  t.deepEqual(callsOf(plain, "kubeadm"), []);
  t.regex(plain.stderr, /cp-0 has no \/etc\/kubernetes\/admin\.conf, but the kubeadm init of this step succeeded in an earlier run: kubeadm init here would start a new, empty cluster\./);
});

test(`init's update on the initialised machine only waits for its apiserver ${STUBS}`, async (t) => {
  const r = await run(t, initGuardScript({ node: "cp-0" }), {
    stdin: "",
    setup: (root) => {
      makeCaCert(root);
      writeNodeFile(root, "/etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n", 0o600);
    },
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "kubeadm"), []);
  t.regex(r.stderr, /\[cp-0\] init: already initialised/);
});

test(`a failed init removes its configuration too (the next run gets it on stdin again) ${STUBS}`, async (t) => {
  const s = secrets();
  const config = initConfiguration({ shape, node: cp0, bootstrapToken: s.token, certificateKey: s.certificateKey });
  const r = await run(t, init, { stdin: config, stubs: { kubeadm: 'echo "error execution phase preflight" >&2; exit 1' } });
  t.not(r.code, 0);
  t.false(existsSync(nodePath(r.root, initConfigFile)));
  t.false(existsSync(nodePath(r.root, `${initConfigFile}.tmp`)));
});

test(`init that failed midway (kubeadm wrote admin.conf, then failed) resets and converges on the next run ${STUBS}`, async (t) => {
  const s = secrets();
  const config = initConfiguration({ shape, node: cp0, bootstrapToken: s.token, certificateKey: s.certificateKey });
  const failOnce = [
    'if [ "${1:-}" = init ] && [ ! -e "$S/init-failed" ]; then',
    '  : >"$S/init-failed"; stub_default "$@" >/dev/null',
    '  echo "error execution phase wait-control-plane: could not initialize a Kubernetes cluster" >&2; exit 1',
    "fi",
    'stub_default "$@"',
  ].join("\n");
  const first = await run(t, init, { stdin: config, stubs: { kubeadm: failOnce } });
  t.not(first.code, 0);
  t.is(first.stdout, "");
  t.true(existsSync(nodePath(first.root, "/etc/kubernetes/admin.conf")), "the stub failed after writing admin.conf");
  t.regex(first.stderr, /\[cp-0\] init: ERROR: kubeadm init failed/);

  const second = await runWithStubs(init, { root: first.root, stdin: config, stubs: { kubeadm: failOnce } });
  t.is(second.code, 0, second.stderr);
  t.deepEqual(callsOf(second, "kubeadm").map((a) => a[0]), ["reset", "init"]);
  t.deepEqual(callsOf(second, "kubeadm")[0], ["reset", "-f"]);
  t.true(existsSync(nodePath(first.root, "/etc/kubernetes/admin.conf")), "initialised after the reset");

  const third = await runWithStubs(init, { root: first.root, stdin: config });
  t.is(third.code, 0, third.stderr);
  t.deepEqual(callsOf(third, "kubeadm"), []);
});

test(`init without a configuration on stdin fails before kubeadm ${STUBS}`, async (t) => {
  const r = await run(t, init, { stdin: "" });
  t.not(r.code, 0);
  t.deepEqual(callsOf(r, "kubeadm"), []);
  t.regex(r.stderr, /\[cp-0\] init: ERROR: no kubeadm init configuration on stdin/);
});

// ---------------------------------------------------------------------------------------------------------------
// join
// ---------------------------------------------------------------------------------------------------------------

const joinConfigFile = "/etc/kubeadm-ha/kubeadm-join.yaml";
const caCertHash = `sha256:${"ab".repeat(32)}`;

function cpJoinConfig(s: { token: string; certificateKey: string }, name = "cp-1") {
  return joinConfiguration({
    shape,
    node: { name, privateIp: "10.0.1.11" },
    bootstrapToken: s.token,
    caCertHash,
    certificateKey: s.certificateKey,
  });
}

test(`control-plane join stores the config 0600, joins, then waits for Ready and etcd health across the cluster ${STUBS}`, async (t) => {
  const s = secrets();
  const config = cpJoinConfig(s);
  // The Node turns Ready on the third look: the step must wait for it, and check etcd only after.
  const readyOnThirdLook = [
    'if [[ " $* " == *" get node "* ]]; then',
    '  n=$(( $(cat "$S/looks" 2>/dev/null || echo 0) + 1 )); echo "$n" >"$S/looks"',
    '  if [ "$n" -lt 3 ]; then printf False; else printf True; fi; exit 0',
    "fi",
    'stub_default "$@"',
  ].join("\n");
  const r = await run(t, joinControlPlaneScript({ node: "cp-1", stackedEtcd: true }), {
    stdin: config,
    stubs: { kubectl: readyOnThirdLook },
  });
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(`${stubState(r.root)}/kubeadm-join-config`, "utf8"), config, "kubeadm read the configuration from stdin");
  t.is(readFileSync(`${stubState(r.root)}/kubeadm-join-config-mode`, "utf8").trim(), "600");
  t.false(existsSync(nodePath(r.root, joinConfigFile)), "the token and certificate key do not stay on the node");
  t.deepEqual(callsOf(r, "kubeadm"), [["join", "--config", nodePath(r.root, joinConfigFile)]]);
  assertNoLeak(t, r, [s.token, s.certificateKey]);
  assertEveryLineNamed(t, r, "cp-1", "join");
  t.is(r.stdout, "");

  const kubectl = callsOf(r, "kubectl");
  const kubeconfig = ["--kubeconfig", nodePath(r.root, "/etc/kubernetes/admin.conf")];
  const gets = kubectl.filter((a) => a.includes("get"));
  t.is(gets.length, 3);
  for (const a of gets) {
    t.deepEqual(a.slice(0, 2), kubeconfig);
    t.deepEqual(a.slice(a.indexOf("get")), ["get", "node", "cp-1", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
  }
  const execs = kubectl.filter((a) => a.includes("exec"));
  t.deepEqual(execs, [
    [
      ...kubeconfig, "-n", "kube-system", "exec", "etcd-cp-1", "--", "etcdctl", "--endpoints=https://127.0.0.1:2379",
      "--cacert=/etc/kubernetes/pki/etcd/ca.crt", "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
      "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key", "endpoint", "health", "--cluster",
    ],
  ]);
  t.true(kubectl.indexOf(execs[0]) > kubectl.indexOf(gets[2]), "etcd is checked after the node is Ready");
});

test(`control-plane join with external etcd does not look for an etcd pod ${STUBS}`, async (t) => {
  const r = await run(t, joinControlPlaneScript({ node: "cp-2", stackedEtcd: false }), { stdin: cpJoinConfig(secrets(), "cp-2") });
  t.is(r.code, 0, r.stderr);
  t.false(callsOf(r, "kubectl").some((a) => a.includes("exec")));
  t.true(callsOf(r, "kubectl").some((a) => a.includes("cp-2")));
});

test(`a join that failed midway (kubelet.conf written, then kubeadm failed) succeeds on rerun after kubeadm reset ${STUBS}`, async (t) => {
  const config = cpJoinConfig(secrets());
  const script = joinControlPlaneScript({ node: "cp-1", stackedEtcd: true });
  const failOnce = [
    'if [ "${1:-}" = join ] && [ ! -e "$S/join-failed" ]; then',
    '  : >"$S/join-failed"; stub_default "$@"',
    '  echo "error execution phase control-plane-join/etcd: etcd cluster is not healthy" >&2; exit 1',
    "fi",
    'stub_default "$@"',
  ].join("\n");
  const first = await run(t, script, { stdin: config, stubs: { kubeadm: failOnce } });
  t.not(first.code, 0);
  t.true(existsSync(nodePath(first.root, "/etc/kubernetes/kubelet.conf")));
  t.regex(first.stderr, /\[cp-1\] join: ERROR: kubeadm join failed/);
  t.deepEqual(callsOf(first, "kubectl"), [], "no health checks after a failed join");

  const second = await runWithStubs(script, { root: first.root, stdin: config, stubs: { kubeadm: failOnce } });
  t.is(second.code, 0, second.stderr);
  t.deepEqual(callsOf(second, "kubeadm").map((a) => a[0]), ["reset", "join"]);
  t.regex(second.stderr, /\[cp-1\] join: an earlier kubeadm join stopped midway/);

  const third = await runWithStubs(script, { root: first.root, stdin: config });
  t.is(third.code, 0, third.stderr);
  t.deepEqual(callsOf(third, "kubeadm"), []);
});

test(`worker join skips kubeadm when kubelet.conf exists, and checks the kubelet runs ${STUBS}`, async (t) => {
  const config = joinConfiguration({ shape, node: { name: "worker-0", privateIp: "10.0.16.10" }, bootstrapToken: secrets().token, caCertHash });
  const r = await run(t, joinWorkerScript({ node: "worker-0" }), {
    stdin: config,
    setup: (root) => writeNodeFile(root, "/etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n", 0o600),
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "kubeadm"), []);
  t.deepEqual(callsOf(r, "systemctl"), [["is-active", "--quiet", "kubelet"]]);
  t.regex(r.stderr, /\[worker-0\] join: already joined/);
});

test(`worker join on a fresh node joins as a worker and touches no control-plane check ${STUBS}`, async (t) => {
  const s = secrets();
  const config = joinConfiguration({ shape, node: { name: "worker-0", privateIp: "10.0.16.10" }, bootstrapToken: s.token, caCertHash });
  const r = await run(t, joinWorkerScript({ node: "worker-0" }), { stdin: config });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "kubeadm"), [["join", "--config", nodePath(r.root, joinConfigFile)]]);
  t.is(readFileSync(`${stubState(r.root)}/kubeadm-join-config-mode`, "utf8").trim(), "600");
  t.false(existsSync(nodePath(r.root, joinConfigFile)));
  t.true(existsSync(nodePath(r.root, "/etc/kubernetes/kubelet.conf")));
  t.false(existsSync(nodePath(r.root, "/etc/kubernetes/admin.conf")));
  t.deepEqual(callsOf(r, "kubectl"), []);
  assertNoLeak(t, r, [s.token]);
  assertEveryLineNamed(t, r, "worker-0", "join");
});

// ---------------------------------------------------------------------------------------------------------------
// read-kubeconfig and wait-nodes-ready
// ---------------------------------------------------------------------------------------------------------------

// read-kubeconfig (the program's own admin credential): test/certificates.test.ts.

test(`waitForNodes returns once every expected node is registered and Ready ${STUBS}`, async (t) => {
  const r = await run(t, waitForNodesScript({ node: "cp-0", expectedNodes: ["cp-0", "worker-0"] }), {
    setup: (root) => seedNodes(root, { "cp-0": "True", "worker-0": "True", "worker-9": "False" }),
  });
  t.is(r.code, 0, r.stderr);
  t.is(callsOf(r, "kubectl").length, 1);
  t.regex(r.stderr, /\[cp-0\] wait-nodes-ready: all 2 nodes Ready: cp-0 worker-0/);
});

test(`waitForNodes keeps polling while a node is NotReady ${STUBS}`, async (t) => {
  const readyOnThirdLook = [
    'n=$(( $(cat "$S/looks" 2>/dev/null || echo 0) + 1 )); echo "$n" >"$S/looks"',
    'if [ "$n" -lt 3 ]; then printf "cp-0 True\\nworker-0 False\\n"; else printf "cp-0 True\\nworker-0 True\\n"; fi',
  ].join("\n");
  const r = await run(t, waitForNodesScript({ node: "cp-0", expectedNodes: ["cp-0", "worker-0"] }), {
    stubs: { kubectl: readyOnThirdLook },
  });
  t.is(r.code, 0, r.stderr);
  t.is(callsOf(r, "kubectl").length, 3);
  t.regex(r.stderr, /waiting for: worker-0 \(NotReady: Ready=False\)/);
});

test(`waitForNodes times out naming the NotReady and the missing nodes, not the Ready one ${STUBS}`, async (t) => {
  const r = await run(t, waitForNodesScript({ node: "cp-0", expectedNodes: ["cp-1", "worker-0", "worker-1"], timeoutSeconds: 1 }), {
    setup: (root) => seedNodes(root, { "cp-1": "True", "worker-0": "False" }),
    env: { KUBEADM_HA_POLL_SECONDS: "0.2" },
  });
  t.not(r.code, 0);
  const error = r.stderr.split("\n").find((l) => l.includes("ERROR"));
  t.is(error, "[cp-0] wait-nodes-ready: ERROR: timed out after 1s; not Ready: worker-0 (NotReady: Ready=False), worker-1 (not registered)");
  assertEveryLineNamed(t, r, "cp-0", "wait-nodes-ready");
});

test("waitForNodesScript rejects an empty list and names that are not Kubernetes node names", (t) => {
  t.throws(() => waitForNodesScript({ node: "cp-0", expectedNodes: [] }), { message: /expectedNodes is empty/ });
  t.throws(() => waitForNodesScript({ node: "cp-0", expectedNodes: ["cp-0", "Worker_1", "a b"] }), {
    message: "waitForNodesScript: not Kubernetes node names: Worker_1, a b",
  });
});

// ---------------------------------------------------------------------------------------------------------------
// identity: a machine that already is another node
// ---------------------------------------------------------------------------------------------------------------

test(`prepare, init and join refuse a machine whose kubelet is another node, before changing anything; the node itself passes on a rerun ${STUBS}`, async (t) => {
  const s = secrets();
  const cases = [
    { step: "prepare", node: "worker-0", script: prepareNodeScript({ node: "worker-0", kubernetesVersion: "1.35.9" }), stdin: "" },
    { step: "init", node: "cp-0", script: init, stdin: initConfiguration({ shape, node: cp0, bootstrapToken: s.token, certificateKey: s.certificateKey }) },
    { step: "join", node: "cp-1", script: joinControlPlaneScript({ node: "cp-1", stackedEtcd: true }), stdin: cpJoinConfig(s) },
    { step: "join", node: "worker-0", script: joinWorkerScript({ node: "worker-0" }), stdin: joinConfiguration({ shape, node: { name: "worker-0", privateIp: "10.0.16.10" }, bootstrapToken: s.token, caCertHash }) },
  ];
  for (const c of cases) {
    // The step's address reaches worker-7, a node of the cluster already (its kubelet, half-reset leftovers and all).
    const r = await run(t, c.script, {
      stdin: c.stdin,
      setup: (root) => {
        seedKubeletIdentity(root, "worker-7");
        writeNodeFile(root, "/etc/kubeadm-ha/init-in-progress", "");
        writeNodeFile(root, "/etc/kubeadm-ha/join-in-progress", "");
      },
    });
    t.not(r.code, 0, c.node);
    t.deepEqual(r.calls.filter((x) => x.cmd !== "cloud-init"), [], `${c.node} ${c.step}: nothing ran (no reset, no kubeadm, no swapoff, no apt)`);
    t.regex(r.stderr, new RegExp(`\\[${c.node}\\] ${c.step}: ERROR: refusing to (prepare|initialise|join) it .*: this machine's kubelet is node worker-7, not ${c.node}`));
  }
  // A join leaves the kubelet's credentials of its own node: a rerun on that machine passes the check.
  const first = await run(t, joinWorkerScript({ node: "worker-0" }), { stdin: cases[3].stdin });
  t.is(first.code, 0, first.stderr);
  const again = await runWithStubs(joinWorkerScript({ node: "worker-0" }), { root: first.root, stdin: cases[3].stdin });
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /\[worker-0\] join: this machine is node worker-0 \(its kubelet's client certificate\)/);
  t.regex(again.stderr, /already joined/);
});
