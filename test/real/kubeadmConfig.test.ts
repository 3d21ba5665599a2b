// Every kubeadm configuration the program generates, checked by the REAL kubeadm of its minor (1.35 and 1.36, from
// `npm run tools`): `kubeadm config validate` of init and join configurations (stacked and external etcd), the
// join-credentials step run with the real kubeadm and kubectl against a real control plane, and a cluster whose
// kubeadm-config carries a feature gate the next minor's kubeadm no longer knows.
import test from "ava";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import { nodePaths } from "../../infra/defaults";
import { mintJoinCredentialsScript, parseJoinCredentials } from "../../infra/scripts/mintJoinCredentials";
import { clusterConfiguration, initConfiguration, joinConfiguration, type ClusterShape } from "../../infra/scripts/kubeadmConfig";
import { upgradeControlPlaneScript } from "../../lifecycle/scripts/upgradeControlPlane";
import { startControlPlane, type ControlPlane } from "../support/controlPlane";
import { run } from "../support/etcdCluster";
import { kubeadmMinors, realTool, realToolVersion } from "../support/realTools";
import { callsOf, cleanup, runWithStubs, writeNodeFile } from "../support/stubs";
import { seedCluster, upgradeStubs } from "../support/upgradeStubs";

const work = mkdtempSync(join(tmpdir(), "kubeadm-ha-real-kubeadm-"));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

const token = "abcdef.0123456789abcdef";
const certificateKey = "0".repeat(63) + "1";
const caCertHash = `sha256:${"a".repeat(64)}`;

function shape(version: string, etcd: ClusterShape["etcd"]): ClusterShape {
  return {
    clusterName: "kubeadm-ha",
    kubernetesVersion: version,
    controlPlaneEndpoint: "api.kubeadm-ha.internal:6443",
    certSANs: ["api.kubeadm-ha.internal", "10.0.1.100"],
    podCidr: "10.244.0.0/16",
    serviceCidr: "10.96.0.0/12",
    etcd,
  };
}

const external: ClusterShape["etcd"] = {
  kind: "external",
  endpoints: ["https://10.0.2.10:2379", "https://10.0.2.11:2379", "https://10.0.2.12:2379"],
  caFile: "/etc/kubernetes/pki/etcd/ca.crt",
  certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt",
  keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key",
};

let files = 0;
async function validate(kubeadm: string, config: string): Promise<{ code: number; output: string }> {
  const file = join(work, `config-${files++}.yaml`);
  writeFileSync(file, config, { mode: 0o600 });
  const r = await run(kubeadm, ["config", "validate", "--config", file], { timeoutMs: 60_000 });
  return { code: r.code, output: r.stdout + r.stderr };
}

for (const minor of kubeadmMinors()) {
  const version = () => realToolVersion("kubeadm", minor).replace(/^v/, "");
  const kubeadm = () => realTool("kubeadm", minor);

  for (const [topology, etcd] of [["stacked", { kind: "stacked" } as const], ["external etcd", external]] as const) {
    test(`real kubeadm ${minor}: kubeadm config validate accepts the program's init, control-plane join and worker join configurations (${topology})`, async (t) => {
      const s = shape(version(), etcd);
      const configs = {
        init: initConfiguration({ shape: s, node: { name: "cp-0", privateIp: "10.0.1.10" }, bootstrapToken: token, certificateKey }),
        "control-plane join": joinConfiguration({ shape: s, node: { name: "cp-1", privateIp: "10.0.1.11" }, bootstrapToken: token, caCertHash, certificateKey }),
        "worker join": joinConfiguration({ shape: s, node: { name: "worker-0", privateIp: "10.0.1.20" }, bootstrapToken: token, caCertHash }),
      };
      for (const [what, config] of Object.entries(configs)) {
        const r = await validate(kubeadm(), config);
        t.is(r.code, 0, `${what}: ${r.output}`);
        t.regex(r.output, /^ok\b/m, what);
      }
    });
  }

  test(`real kubeadm ${minor}: with images.repository every image of the init configuration comes from the mirror (kubeadm config images list --config), and the configuration validates`, async (t) => {
    const init = initConfiguration({ shape: { ...shape(version(), { kind: "stacked" }), imageRepository: "registry.lab:5000/k8s" }, node: { name: "cp-0", privateIp: "10.0.1.10" }, bootstrapToken: token, certificateKey });
    t.is((await validate(kubeadm(), init)).code, 0);
    const file = join(work, `images-${minor}.yaml`);
    writeFileSync(file, init, { mode: 0o600 });
    const r = await run(kubeadm(), ["config", "images", "list", "--config", file], { timeoutMs: 60_000 });
    t.is(r.code, 0, r.stderr);
    const images = r.stdout.trim().split("\n");
    t.true(images.length >= 6, r.stdout);
    for (const image of images) t.true(image.startsWith("registry.lab:5000/k8s/"), image);
    t.true(images.some((i) => /\/pause:3\.10\.\d+$/.test(i)) && images.some((i) => /\/kube-apiserver:v/.test(i)));
  });

  test(`real kubeadm ${minor}: with kubelet.allowCgroupV1 the init and join configurations (failCgroupV1: false, SystemVerification ignored) validate, and a misspelt kubelet field is refused`, async (t) => {
    const s = { ...shape(version(), { kind: "stacked" as const }), allowCgroupV1: true };
    const init = initConfiguration({ shape: s, node: { name: "cp-0", privateIp: "10.0.1.10" }, bootstrapToken: token, certificateKey });
    t.regex(init, /failCgroupV1: false/);
    for (const config of [init, joinConfiguration({ shape: s, node: { name: "worker-0", privateIp: "10.0.1.20" }, bootstrapToken: token, caCertHash })]) {
      const r = await validate(kubeadm(), config);
      t.is(r.code, 0, r.output);
    }
    const misspelt = await validate(kubeadm(), init.replace("failCgroupV1:", "failCgroupv1:"));
    t.not(misspelt.code, 0, "kubeadm checks the kubelet's fields: the one above is a real one");
  });

  test(`real kubeadm ${minor}: a broken configuration is refused (the check can fail)`, async (t) => {
    const init = initConfiguration({ shape: shape(version(), { kind: "stacked" }), node: { name: "cp-0", privateIp: "10.0.1.10" }, bootstrapToken: token, certificateKey });
    const badCidr = await validate(kubeadm(), init.replace("podSubnet: 10.244.0.0/16", "podSubnet: 10.244.0.0/33"));
    t.not(badCidr.code, 0);
    t.regex(badCidr.output, /podSubnet|10\.244\.0\.0\/33/);
    const unknownField = await validate(kubeadm(), init.replace("controlPlaneEndpoint:", "controlPlaneEndpiont:"));
    t.not(unknownField.code, 0);
    t.regex(unknownField.output, /controlPlaneEndpiont/);
    const badToken = await validate(kubeadm(), init.replace(token, "not-a-token"));
    t.not(badToken.code, 0);
  });
}

// ---- against a real control plane -------------------------------------------------------------------------------

let cp: ControlPlane;
test.before(async () => {
  const dir = join(work, "control-plane");
  mkdirSync(dir);
  cp = await startControlPlane({ dir, kwok: false });
});
test.after.always(async () => cp?.stop());

/** The cluster's ClusterConfiguration as a kubeadm `init phase upload-config kubeadm` of `kubeadm` stores it. */
async function uploadClusterConfiguration(kubeadm: string, cluster: Record<string, unknown>): Promise<void> {
  // The test cluster's PKI is not at /etc/kubernetes/pki: only certificatesDir is relocated.
  const config = [
    { apiVersion: cluster.apiVersion, kind: "InitConfiguration", nodeRegistration: { name: "cp-0", criSocket: "unix:///run/containerd/containerd.sock" }, localAPIEndpoint: { advertiseAddress: "10.0.1.10", bindPort: 6443 } },
    { ...cluster, certificatesDir: join(cp.dir, "pki") },
  ]
    .map((d) => stringify(d))
    .join("---\n");
  const file = join(work, `upload-${files++}.yaml`);
  writeFileSync(file, config, { mode: 0o600 });
  const r = await run(kubeadm, ["init", "phase", "upload-config", "kubeadm", "--config", file, "--kubeconfig", cp.adminKubeconfig], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`kubeadm init phase upload-config kubeadm failed:\n${r.stderr}${r.stdout}`);
}

async function storedClusterConfiguration(): Promise<string> {
  return cp.kubectlOk(["-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "jsonpath={.data.ClusterConfiguration}"]);
}

/** The join-credentials step as the program runs it on cp-0, with the real kubeadm (`kubeadm`) and kubectl. */
async function mintOnCp0(kubeadm: string) {
  const admin = readFileSync(cp.adminKubeconfig, "utf8");
  const ca = readFileSync(join(cp.dir, "pki", "ca.crt"), "utf8");
  const r = await runWithStubs(mintJoinCredentialsScript({ node: "cp-0", forNodes: ["worker-9"] }), {
    stdin: `${"c".repeat(64)}\n`,
    setup: (root) => {
      writeNodeFile(root, nodePaths.adminKubeconfig, admin, 0o600);
      writeNodeFile(root, "/etc/kubernetes/pki/ca.crt", ca);
    },
    stubs: { kubectl: `exec '${cp.kubectlPath}' "$@"`, kubeadm: `exec '${kubeadm}' "$@"` },
    timeoutMs: 120_000,
  });
  cleanup(r.root);
  return r;
}

test.serial("real kubeadm 1.36 + real control plane: the join-credentials step uploads the certificates and mints a working bootstrap token from the ClusterConfiguration kubeadm stored", async (t) => {
  const kubeadm = realTool("kubeadm", "1.36");
  await uploadClusterConfiguration(kubeadm, clusterConfiguration({ ...shape(realToolVersion("kubeadm", "1.36").slice(1), { kind: "stacked" }), controlPlaneEndpoint: cp.server.replace("https://", "") }));
  const r = await mintOnCp0(kubeadm);
  t.is(r.code, 0, r.stderr);
  const { token: minted, caCertHash: hash } = parseJoinCredentials(r.stdout);
  const id = minted.split(".")[0];
  const secret = await cp.kubectlOk(["-n", "kube-system", "get", "secret", `bootstrap-token-${id}`, "-o", "jsonpath={.data.description}"]);
  t.is(Buffer.from(secret, "base64").toString(), "kubeadm-ha join: worker-9");
  t.is((await cp.kubectl(["-n", "kube-system", "get", "secret", "kubeadm-certs"])).code, 0, "the control-plane certificates were uploaded");
  t.regex(hash, /^sha256:[0-9a-f]{64}$/);
  t.false(r.stderr.includes(minted), "the token is never logged");
  t.false(r.stderr.includes("c".repeat(64)), "the certificate key is never logged");
});

test.serial("real kubeadm 1.35 -> 1.36: a ControlPlaneKubeletLocalMode gate set at 1.32 survives in kubeadm-config, 1.36 refuses it, and the upgrade's first step removes it so the next minor's kubeadm works", async (t) => {
  const [old, next] = [realTool("kubeadm", "1.35"), realTool("kubeadm", "1.36")];
  const [oldVersion, nextVersion] = [realToolVersion("kubeadm", "1.35"), realToolVersion("kubeadm", "1.36")];
  // What the program wrote at 1.32 (the gate was alpha then), after kubeadm upgrades to 1.35 kept every gate.
  const day1 = clusterConfiguration({ ...shape("1.32.9", { kind: "stacked" }), controlPlaneEndpoint: cp.server.replace("https://", "") });
  t.deepEqual(day1.featureGates, { ControlPlaneKubeletLocalMode: true }, "the program sets the gate at 1.32");
  await uploadClusterConfiguration(old, { ...day1, kubernetesVersion: oldVersion });
  const stored = await storedClusterConfiguration();
  t.regex(stored, /ControlPlaneKubeletLocalMode: true/, "kubeadm 1.35 stored the gate (GA, locked on)");
  const asNext = (config: string) => `${config.replace(/^kubernetesVersion: .*$/m, `kubernetesVersion: ${nextVersion}`)}`;
  const refused = await validate(next, asNext(stored));
  t.not(refused.code, 0, "kubeadm 1.36 refuses the stored configuration");
  t.regex(refused.output, /ControlPlaneKubeletLocalMode/);
  const jammed = await mintOnCp0(next);
  t.not(jammed.code, 0, "and so would every kubeadm 1.36 command that reads it (the join-credentials step)");

  // cp-0's upgrade-control-plane step to 1.36 (kubeadm upgrade plan/apply are recording stubs here; kubectl is real).
  const admin = readFileSync(cp.adminKubeconfig, "utf8");
  const r = await runWithStubs(upgradeControlPlaneScript({ node: "cp-0", kubernetesVersion: nextVersion.slice(1), mode: "apply", builtAt: "1.32.9" }), {
    setup: (root) => {
      seedCluster({ version: oldVersion.slice(1), controlPlane: true, nodes: {}, packages: { kubeadm: `${nextVersion.slice(1)}-1.1`, kubelet: `${oldVersion.slice(1)}-1.1`, kubectl: `${oldVersion.slice(1)}-1.1` } })(root);
      writeNodeFile(root, nodePaths.adminKubeconfig, admin, 0o600);
    },
    stubs: { ...upgradeStubs(), kubectl: `exec '${cp.kubectlPath}' "$@"` },
    timeoutMs: 120_000,
  });
  cleanup(r.root);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /removing feature gates .*ControlPlaneKubeletLocalMode/);
  t.true(callsOf(r, "kubeadm").some((a) => a.join(" ") === `upgrade apply -y ${nextVersion}`), "then kubeadm upgrade apply ran");
  const cleaned = await storedClusterConfiguration();
  t.notRegex(cleaned, /ControlPlaneKubeletLocalMode/);
  t.deepEqual({ ...(parse(cleaned) as Record<string, unknown>), featureGates: undefined }, { ...(parse(stored) as Record<string, unknown>), featureGates: undefined }, "nothing else changed");
  const accepted = await validate(next, asNext(cleaned));
  t.is(accepted.code, 0, `the configuration the upgrade leaves in kubeadm-config passes kubeadm 1.36: ${accepted.output}`);
  const minted = await mintOnCp0(next);
  t.is(minted.code, 0, `joins after the upgrade get credentials: ${minted.stderr}`);
  t.is(parseAllDocuments(cleaned).length, 1);
});
