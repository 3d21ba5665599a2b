// images.repository: kubeadm's imageRepository and the prepare step's containerd sandbox image from one mirror; plain
// HTTP only when declared. The node side runs in test/bootstrapScripts.test.ts and, with the real containerd and
// kubeadm, in test/real/containerdConfig.test.ts.
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
