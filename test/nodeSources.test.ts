// Where nodes get their images and packages. images.repository: kubeadm's imageRepository and containerd's sandbox
// image from one mirror, plain HTTP only when declared (the node side runs in test/bootstrapScripts.test.ts and, with
// the real containerd and kubeadm, in test/real/containerdConfig.test.ts). packages.repository: the base of an apt
// repository in pkgs.k8s.io's layout, for prepare and every package step of the upgrade.
import test from "ava";
import { validateConfig } from "../infra/validate";
import { byName, evaluateDev } from "./support/program";

const base = { ssh: { allowedCidrs: ["198.51.100.0/24"] } };
const problemsOf = (images: unknown) => {
  const r = validateConfig({ ...base, images }, { clusterName: "kubeadm-ha-dev" });
  return r.problems.map((p) => `${p.path}: ${p.message}`);
};

test("images: a registry host with port and path is taken; a scheme, upper case or insecure without a repository are refused, naming the key", (t) => {
  const ok = validateConfig({ ...base, images: { repository: "registry.lab:5000/k8s", insecure: true } }, { clusterName: "kubeadm-ha-dev" });
  t.deepEqual(ok.problems, []);
  t.deepEqual("config" in ok ? ok.config.images : undefined, { repository: "registry.lab:5000/k8s", insecure: true });
  const unset = validateConfig(base, { clusterName: "kubeadm-ha-dev" });
  t.deepEqual("config" in unset ? unset.config.images : undefined, { insecure: false }, "registry.k8s.io unless set");
  t.regex(problemsOf({ repository: "https://registry.lab/k8s" }).join("\n"), /^images\.repository: must be a registry host/);
  t.regex(problemsOf({ repository: "Registry.Lab/k8s" }).join("\n"), /^images\.repository: /);
  t.regex(problemsOf({ insecure: true }).join("\n"), /^images\.insecure: applies only with images\.repository/);
  t.regex(problemsOf({ mirror: "x" }).join("\n"), /^images\.mirror: unknown key/);
});

test("images: the repository reaches kubeadm's ClusterConfiguration and every prepare step; without it neither names one", async (t) => {
  const e = await evaluateDev(['images={"repository": "registry.lab:5000/k8s", "insecure": true}']);
  t.regex(byName(e, "cp-0-init").inputs.stdin, /^imageRepository: registry\.lab:5000\/k8s$/m);
  for (const node of ["cp-0", "cp-1", "worker-0"]) {
    const create: string = byName(e, `${node}-prepare`).inputs.create;
    t.regex(create, /^IMAGE_REPOSITORY='registry\.lab:5000\/k8s'$/m, node);
    t.regex(create, /^INSECURE_REGISTRY='registry\.lab:5000'$/m, node);
  }
  const plain = await evaluateDev();
  t.notRegex(byName(plain, "cp-0-init").inputs.stdin, /imageRepository/);
  t.regex(byName(plain, "worker-0-prepare").inputs.create, /^IMAGE_REPOSITORY=''$/m);
});

test("packages: an http(s) base in pkgs.k8s.io's layout is taken (a trailing slash dropped); anything else is refused, naming the key", (t) => {
  const ok = validateConfig({ ...base, packages: { repository: "https://apt.lab.internal/kubernetes/core:/stable:/" } }, { clusterName: "kubeadm-ha-dev" });
  t.deepEqual("config" in ok ? ok.config.packages : undefined, { repository: "https://apt.lab.internal/kubernetes/core:/stable:" });
  const unset = validateConfig(base, { clusterName: "kubeadm-ha-dev" });
  t.deepEqual("config" in unset ? unset.config.packages : undefined, {});
  for (const bad of ["ftp://mirror/k8s", "apt.lab.internal/kubernetes", "https://mirror/with space"]) {
    const r = validateConfig({ ...base, packages: { repository: bad } }, { clusterName: "kubeadm-ha-dev" });
    t.deepEqual(r.problems.map((p) => p.path), ["packages.repository"], bad);
  }
});

test("packages: the repository's minor reaches prepare and every package step of the upgrade (source line and key), pkgs.k8s.io by default", async (t) => {
  const e = await evaluateDev(['packages={"repository": "http://apt.lab.internal:8080/k8s"}', "kubernetesVersion=1.36.3"]);
  const expectIn = (name: string, minor: string) => {
    const script: string = byName(e, name).inputs.create;
    t.true(script.includes(`KEY_URL='http://apt.lab.internal:8080/k8s/v${minor}/deb/Release.key'`), name);
    t.true(script.includes(`SOURCE_LINE='deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] http://apt.lab.internal:8080/k8s/v${minor}/deb/ /'`), name);
    t.false(script.includes("https://pkgs.k8s.io"), `${name} names no pkgs.k8s.io URL`);
  };
  for (const step of ["cp-0-prepare", "worker-1-prepare", "cluster-upgrade-preflight", "cp-0-upgrade-kubeadm", "cp-1-upgrade-kubelet", "worker-0-upgrade"]) expectIn(step, "1.36");
  const plain = await evaluateDev();
  t.true(String(byName(plain, "worker-0-upgrade").inputs.create).includes("KEY_URL='https://pkgs.k8s.io/core:/stable:/v1.35/deb/Release.key'"));
});

test("kubelet.allowCgroupV1: only when set do the kubelets accept cgroup v1 (failCgroupV1: false, from 1.31) and kubeadm's init and joins skip the SystemVerification check", async (t) => {
  const on = await evaluateDev(['kubelet={"allowCgroupV1": true}']);
  const init: string = byName(on, "cp-0-init").inputs.stdin;
  t.regex(init, /^failCgroupV1: false$/m);
  t.regex(init, /ignorePreflightErrors:\n\s+- SystemVerification/);
  for (const join of ["cp-1-join", "worker-0-join"]) t.regex(byName(on, join).inputs.stdin, /ignorePreflightErrors:\n\s+- SystemVerification/, join);
  const off = await evaluateDev();
  for (const step of ["cp-0-init", "cp-1-join", "worker-0-join"]) t.notRegex(byName(off, step).inputs.stdin, /failCgroupV1|ignorePreflightErrors/, step);
  const old = await evaluateDev(['kubelet={"allowCgroupV1": true}', "kubernetesVersion=1.30.14"]);
  t.notRegex(byName(old, "cp-0-init").inputs.stdin, /failCgroupV1/, "1.30's kubelet has no such field");
  t.deepEqual(validateConfig({ ...base, kubelet: { allowCgroupV1: "yes" } }, { clusterName: "kubeadm-ha-dev" }).problems.map((p) => p.path), ["kubelet.allowCgroupV1"]);
});
