// The certificates step with the REAL kubeadm: a control plane's PKI and kubeconfigs made by `kubeadm init phase`
// (valid 10 days), then the program's renewal step, whose `kubeadm certs renew all` is the real kubeadm 1.36 run
// with --rootfs in the node's scratch root (so it renews that root's /etc/kubernetes, never this machine's). crictl
// (the static pods' restart), curl (/readyz) and kubectl (etcd's health through its pod) stay RECORDING STUBS: no
// kubelet runs here. What only the real kubeadm shows: which files `certs renew all` rewrites, with what validity,
// and that the step then reads every one of them as renewed (else it would renew again on every run).
import test from "ava";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kubeadmCertificateFiles, kubeadmKubeconfigFiles, parseCertificatesExpiry, renewCertificatesScript } from "../../lifecycle/scripts/renewCertificates";
import { realTool } from "../support/realTools";
import { callsOf, cleanup, nodePath, runWithStubs, seedKubeletIdentity, writeNodeFile } from "../support/stubs";

const DAY = 86_400_000;
const STUBS = "(crictl, curl and kubectl are recording stubs: no kubelet here)";

function notAfter(pem: string): number {
  return Date.parse(new X509Certificate(pem).validTo);
}

/** notAfter of every certificate the step reads on the node, by file (pki/... and the kubeconfigs' client certs). */
function expiries(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of kubeadmCertificateFiles(true)) out[`pki/${f}`] = notAfter(readFileSync(nodePath(root, `/etc/kubernetes/pki/${f}`), "utf8"));
  for (const f of kubeadmKubeconfigFiles) {
    const data = /client-certificate-data:\s*(\S+)/.exec(readFileSync(nodePath(root, `/etc/kubernetes/${f}`), "utf8"))![1];
    out[f] = notAfter(Buffer.from(data, "base64").toString("utf8"));
  }
  return out;
}

/** A control plane cp-1 as kubeadm 1.36 makes it, every certificate valid `hours`; its static pod manifests in place. */
function kubeadmControlPlane(hours: number): (root: string) => void {
  return (root) => {
    const kubeadm = realTool("kubeadm", "1.36");
    const config = join(root, "..", "kubeadm.yaml");
    writeFileSync(
      config,
      [
        "apiVersion: kubeadm.k8s.io/v1beta4",
        "kind: InitConfiguration",
        // A documentation address (kubeadm finds no usable one for loopback); nothing dials it.
        "localAPIEndpoint: {advertiseAddress: 203.0.113.10, bindPort: 6443}",
        "nodeRegistration: {name: cp-1}",
        "---",
        "apiVersion: kubeadm.k8s.io/v1beta4",
        "kind: ClusterConfiguration",
        "kubernetesVersion: v1.36.3",
        // A closed port: the renewal finds no cluster to read its configuration from, and falls back to defaults.
        "controlPlaneEndpoint: 127.0.0.1:9",
        `certificatesDir: ${nodePath(root, "/etc/kubernetes/pki")}`,
        `certificateValidityPeriod: ${hours}h`,
        "",
      ].join("\n"),
    );
    execFileSync(kubeadm, ["init", "phase", "certs", "all", "--config", config], { stdio: "pipe" });
    execFileSync(kubeadm, ["init", "phase", "kubeconfig", "all", "--config", config, "--kubeconfig-dir", nodePath(root, "/etc/kubernetes")], { stdio: "pipe" });
    seedKubeletIdentity(root, "cp-1");
    for (const c of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]) writeNodeFile(root, `/etc/kubernetes/manifests/${c}.yaml`, `# ${c}\n`);
  };
}

test(`real kubeadm certs renew: a control plane whose certificates expire in 10 days gets every certificate and kubeconfig renewed for a year, the CA kept; the step reports a year, and a rerun renews nothing ${STUBS}`, async (t) => {
  t.timeout(120_000);
  const script = renewCertificatesScript({ node: "cp-1", kubernetesVersion: "1.36.3", renewBeforeDays: 30, round: "initial", etcd: { kind: "stacked", members: ["cp-0", "cp-1", "cp-2"] }, timeouts: { etcdHealth: 0 } });
  const stubs = { kubeadm: `exec '${realTool("kubeadm", "1.36")}' "$@" --rootfs "$R"` };
  const first = await runWithStubs(script, { setup: kubeadmControlPlane(240), stubs, timeoutMs: 90_000 });
  t.teardown(() => cleanup(first.root));
  t.is(first.code, 0, first.stderr);
  t.deepEqual(callsOf(first, "kubeadm"), [["certs", "renew", "all"]], "the step calls it as on a node (the stub adds --rootfs)");
  // kubeadm renewed every file the step reads, for the default year (no cluster to read a validity from).
  const after = expiries(first.root);
  for (const [file, end] of Object.entries(after)) {
    t.true(end - Date.now() > 360 * DAY, `${file} renewed for a year (expires ${new Date(end).toISOString()})`);
  }
  const ca = readFileSync(nodePath(first.root, "/etc/kubernetes/pki/ca.crt"), "utf8");
  t.true(notAfter(ca) - Date.now() > 3000 * DAY, "the CA, valid ten years, is not what was renewed");
  const reported = parseCertificatesExpiry(first.stdout)!;
  t.true(Date.parse(reported) - Date.now() > 360 * DAY, `reported ${reported}`);
  t.is(Date.parse(reported), Math.min(...Object.values(after)) - (Math.min(...Object.values(after)) % 1000), "the earliest renewed certificate is the one reported");
  for (const c of ["kube-apiserver", "etcd"]) t.true(callsOf(first, "crictl").some((a) => a.includes(`^${c}$`)), `${c} restarted on its new certificate`);
  // kubeadm's own view agrees: nothing of its list expires within 300 days.
  const check = execFileSync(realTool("kubeadm", "1.36"), ["certs", "check-expiration", "--rootfs", first.root], { encoding: "utf8" });
  t.regex(check, /apiserver\s/);
  t.notRegex(check, /\s\d{1,2}d\s+(ca|no)\b/, check);

  const again = await runWithStubs(script, { root: first.root, stubs, timeoutMs: 60_000 });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(callsOf(again, "kubeadm"), [], "not due any more: no second renewal");
  t.deepEqual(expiries(first.root), after);
});
