// Certificates over a cluster's life: the control planes' kubeadm certificates renewed when due (one control plane at
// a time), the program's own admin credential minted again in every renewal round, the expiries as stack outputs, and
// the renewal as something `pulumi preview` shows. The step scripts run for real (bash, openssl, coreutils) against
// scratch roots, with RECORDING STUBS for kubeadm, kubectl, crictl, curl and systemctl (none exists on this machine);
// the certificates they read and renew are real openssl certificates.
import test, { ExecutionContext } from "ava";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { kubeconfigClientExpiry, kubeconfigUserConfigPath, readKubeconfigScript } from "../infra/scripts/readKubeconfig";
import { Evaluation } from "../infra/offline/engine";
import { diffEvaluations } from "../infra/offline/plan";
import { certificateRenewalRound } from "../lifecycle/certificates";
import { certificatesStateDir, parseCertificatesExpiry, renewCertificatesScript } from "../lifecycle/scripts/renewCertificates";
import { byName, byType, evaluateDev, waitsFor } from "./support/program";
import { callsOf, cleanup, nodePath, runWithStubs, seedControlPlaneCertificates, seedKubeletIdentity, StubRun, writeNodeFile } from "./support/stubs";

const STUBS = "(recording stubs: kubeadm, kubectl, crictl, curl are not on this machine)";
const DAY = 86_400_000;
const isoIn = (days: number) => new Date(Date.now() + days * DAY).toISOString().replace(/\.\d{3}Z$/, "Z");
const daysUntil = (iso: string) => (Date.parse(iso) - Date.now()) / DAY;
const short = (urn: string) => urn.split("::").pop()!;

async function run(t: ExecutionContext, script: string, o: { root?: string; setup?: (root: string) => void; stubs?: Record<string, string> } = {}): Promise<StubRun> {
  const r = await runWithStubs(script, { root: o.root, setup: o.setup, stubs: o.stubs });
  if (!o.root) t.teardown(() => cleanup(r.root));
  return r;
}

/** A control plane (cp-1) whose certificates expire in `days` (apiserver.crt in `apiserverDays`), its manifests in place. */
function controlPlane(days: number, apiserverDays = days, identity = "cp-1"): (root: string) => void {
  return (root) => {
    seedControlPlaneCertificates(root, { days, expiring: { "apiserver.crt": apiserverDays } });
    seedKubeletIdentity(root, identity);
    for (const c of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]) writeNodeFile(root, `/etc/kubernetes/manifests/${c}.yaml`, `# ${c}\n`);
  };
}

const renew = (round = "initial") =>
  renewCertificatesScript({ node: "cp-1", kubernetesVersion: "1.35.9", renewBeforeDays: 30, round, etcd: { kind: "stacked", members: ["cp-0", "cp-1", "cp-2"] }, timeouts: { etcdHealth: 0 } });
const line = (c: { cmd: string; args: string[] }) => [c.cmd, ...c.args.filter((a, i, all) => a !== "--kubeconfig" && all[i - 1] !== "--kubeconfig" && !a.startsWith("--request-timeout"))].join(" ");

// ---- the renewal step on a control plane -------------------------------------------------------------------------

test(`not due: the step reports its earliest certificate's expiry and changes nothing ${STUBS}`, async (t) => {
  const r = await run(t, renew(), { setup: controlPlane(200, 120) });
  t.is(r.code, 0, r.stderr);
  const expiry = parseCertificatesExpiry(r.stdout)!;
  t.true(Math.abs(daysUntil(expiry) - 120) < 1, expiry);
  t.regex(r.stdout, /^KUBEADM_HA_CERTIFICATES_EXPIRE=\S+ pki\/apiserver\.crt\n$/);
  t.deepEqual(callsOf(r, "kubeadm"), []);
  t.deepEqual(callsOf(r, "crictl"), []);
  t.regex(r.stderr, /\[cp-1\] certificates: earliest certificate: pki\/apiserver\.crt, expires /);
});

test(`due (apiserver.crt in 10 days): health first, kubeadm certs renew all, each static pod restarted on the new certificates, health after; a year reported; a rerun does nothing ${STUBS}`, async (t) => {
  const r = await run(t, renew(), { setup: controlPlane(300, 10) });
  t.is(r.code, 0, r.stderr);
  const calls = r.calls.map(line);
  const at = (re: RegExp) => calls.findIndex((l) => re.test(l));
  const order = [
    at(/^kubectl -n kube-system exec etcd-cp-0 -- etcdctl .*endpoint health$/),
    at(/^curl .*https:\/\/127\.0\.0\.1:6443\/readyz$/),
    at(/^kubeadm certs renew all$/),
    at(/^crictl ps --name \^kube-apiserver\$ --state running -q$/),
    at(/^crictl ps --name \^etcd\$ --state running -q$/),
  ];
  t.true(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `in order: ${order.join(", ")}\n${calls.join("\n")}`);
  t.true(calls.lastIndexOf(calls.find((l) => /exec etcd-cp-2 .*endpoint health/.test(l))!) > order[4], "etcd healthy again after the restart");
  for (const c of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
    t.true(existsSync(nodePath(r.root, `/etc/kubernetes/manifests/${c}.yaml`)), `${c} back in place`);
    t.regex(r.stderr, new RegExp(`\\[cp-1\\] certificates: restarting ${c} on its new certificates`));
  }
  t.false(existsSync(nodePath(r.root, `${certificatesStateDir}/restart-pending`)));
  const expiry = parseCertificatesExpiry(r.stdout)!;
  t.true(daysUntil(expiry) > 299 && daysUntil(expiry) < 366, `the earliest certificate now expires ${expiry}`);

  const again = await runWithStubs(renew(), { root: r.root });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(callsOf(again, "kubeadm"), [], "renewed certificates are not due");
  t.deepEqual(callsOf(again, "crictl"), []);
});

test(`a renewal interrupted during the restart: the next run puts the manifest back and finishes the restart without renewing again ${STUBS}`, async (t) => {
  // crictl fails the stop wait for the scheduler: the step ends with kube-scheduler.yaml set aside.
  const first = await run(t, renew(), {
    setup: controlPlane(300, 10),
    stubs: { crictl: 'case "$*" in *kube-scheduler*) echo 0123abcd ;; esac' },
  });
  t.not(first.code, 0);
  t.true(existsSync(nodePath(first.root, `${certificatesStateDir}/manifests-aside/kube-scheduler.yaml`)));
  t.true(existsSync(nodePath(first.root, `${certificatesStateDir}/restart-pending`)));
  const second = await runWithStubs(renew(), { root: first.root });
  t.is(second.code, 0, second.stderr);
  t.true(existsSync(nodePath(second.root, "/etc/kubernetes/manifests/kube-scheduler.yaml")));
  t.deepEqual(callsOf(second, "kubeadm"), [], "the certificates were renewed already");
  t.regex(second.stderr, /an earlier run renewed the certificates but did not finish restarting the control plane: restarting/);
  t.false(existsSync(nodePath(second.root, `${certificatesStateDir}/restart-pending`)));
});

test(`a due renewal refuses on a machine whose kubelet is another node, before renewing or restarting anything ${STUBS}`, async (t) => {
  const r = await run(t, renew(), { setup: controlPlane(300, 10, "cp-0") });
  t.not(r.code, 0);
  t.deepEqual(callsOf(r, "kubeadm"), []);
  t.deepEqual(callsOf(r, "crictl"), []);
  t.regex(r.stderr, /ERROR: refusing to renew or read its certificates: this machine's kubelet is node cp-0, not cp-1/);
});

test("the certificates step refuses bad arguments", (t) => {
  const etcd = { kind: "stacked" as const, members: ["cp-0"] };
  t.throws(() => renewCertificatesScript({ node: "cp-0", kubernetesVersion: "1.35.9", renewBeforeDays: 0, round: "initial", etcd }), { message: /renewBeforeDays must be a whole number of days from 1 to 364; got 0/ });
  t.throws(() => renewCertificatesScript({ node: "cp-0", kubernetesVersion: "1.35.9", renewBeforeDays: 30, round: "a b", etcd }), { message: /round must be a short word/ });
});

// ---- the program's admin credential --------------------------------------------------------------------------------

const clusterConfiguration = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: kubeadm-ha-dev\ncontrolPlaneEndpoint: api.example:6443\n";

test(`read-kubeconfig mints a credential of its own from the cluster's ClusterConfiguration: stdout is exactly the kubeconfig, valid a year, through the LB; nothing stays on the node ${STUBS}`, async (t) => {
  const r = await run(t, readKubeconfigScript({ node: "cp-0", round: "initial", validityHours: 8760 }), {
    setup: (root) => writeNodeFile(root, "/etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n", 0o600),
    stubs: { kubectl: `case "$*" in *"get configmap kubeadm-config"*) printf '%s' '${clusterConfiguration}' ;; *) stub_default "$@" ;; esac` },
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "kubeadm"), [["kubeconfig", "user", "--config", nodePath(r.root, kubeconfigUserConfigPath), "--client-name", "kubeadm-ha-admin", "--org", "kubeadm:cluster-admins", "--validity-period", "8760h"]]);
  t.is(readFileSync(join(r.root, "..", "state", "kubeconfig-user-config"), "utf8"), clusterConfiguration, "kubeadm read the cluster's own ClusterConfiguration");
  t.false(existsSync(nodePath(r.root, kubeconfigUserConfigPath)));
  t.regex(r.stdout, /^apiVersion: v1\n[\s\S]*server: https:\/\/api\.example:6443\n[\s\S]*client-certificate-data: \S+\n/);
  const expiry = kubeconfigClientExpiry(r.stdout)!;
  t.true(Math.abs(daysUntil(expiry) - 365) < 1, expiry);
  for (const l of r.stderr.trimEnd().split("\n")) t.true(l.startsWith("[cp-0] read-kubeconfig: "), l);
});

test("kubeconfigClientExpiry reads the client certificate's notAfter, and is undefined for anything without one", (t) => {
  t.is(kubeconfigClientExpiry(undefined), undefined);
  t.is(kubeconfigClientExpiry("apiVersion: v1\nusers:\n- name: x\n  user: {client-certificate-data: RkFLRQ==}\n"), undefined);
  t.is(kubeconfigClientExpiry("users:\n- name: x\n  user: {token: abc}\n"), undefined);
});

// ---- when a renewal is due -----------------------------------------------------------------------------------------

test("certificateRenewalRound: the deployed round until the earliest expiry is within renewBeforeDays, then a round named after that expiry", (t) => {
  const now = new Date("2027-11-01T00:00:00Z");
  t.like(certificateRenewalRound(undefined, now, 30), { round: "initial", due: false });
  t.like(certificateRenewalRound({ round: "initial" }, now, 30), { round: "initial", due: false });
  t.like(certificateRenewalRound({ controlPlaneExpiry: "2028-01-01T00:00:00Z", kubeconfigExpiry: "2028-06-01T00:00:00Z", round: "r1" }, now, 30), {
    round: "r1",
    due: false,
    dueAt: "2027-12-02T00:00:00.000Z",
  });
  t.like(certificateRenewalRound({ controlPlaneExpiry: "2028-01-01T00:00:00Z", kubeconfigExpiry: "2027-11-20T12:00:00Z", round: "r1" }, now, 30), {
    round: "before-20271120T120000Z",
    due: true,
    reason: "the admin credential expires 2027-11-20T12:00:00Z, within 30 days: renewal round before-20271120T120000Z",
  });
  t.like(certificateRenewalRound({ controlPlaneExpiry: "2027-11-25T00:00:00Z", round: "r1" }, now, 7), { round: "r1", due: false });
  t.like(certificateRenewalRound({ controlPlaneExpiry: "2027-11-25T00:00:00Z", round: "r1" }, now, 30), { round: "before-20271125T000000Z", due: true });
});

// ---- the program ---------------------------------------------------------------------------------------------------

const deployedOf = (e: Evaluation) => e.stackOutputs as Record<string, unknown>;

test("the program: a certificates step per control plane, one at a time after the upgrade; the provider and the kubeconfig output use the minted credential; expiries are stack outputs", async (t) => {
  const e = await evaluateDev();
  const steps = ["cp-0", "cp-1", "cp-2"].map((cp) => byName(e, `${cp}-certificates`));
  t.true(waitsFor(e, steps[0], byName(e, "worker-1-uncordon")), "after the rolling upgrade");
  t.true(waitsFor(e, steps[1], steps[0]) && waitsFor(e, steps[2], steps[1]), "one control plane at a time");
  for (const s of steps) t.regex(String(s.inputs.create), /ROUND='initial'/);
  t.regex(String(byName(e, "cp-0-read-kubeconfig").inputs.create), /kubeadm kubeconfig user/);
  const [provider] = byType(e, "pulumi:providers:kubernetes");
  t.is(provider.inputs.clusterIdentifier, "kubeadm-ha-dev", "a new credential updates the provider, never replaces it (and the CNI with it)");
  t.is(provider.inputs.kubeconfig, byName(e, "cp-0-read-kubeconfig").outputs.stdout);
  t.is(e.stackOutputs.kubeconfig, byName(e, "cp-0-read-kubeconfig").outputs.stdout);
  t.like(e.stackOutputs.certificates, { renewBeforeDays: 30, round: "initial" });
  t.true("certificatesExpireAt" in e.stackOutputs);
  const restore = await evaluateDev(["restore={snapshot: s3://team-backups/kubeadm-ha-dev/etcd/x.db, requestId: r1}"]);
  t.true(waitsFor(restore, byName(restore, "cp-0-restore-fetch-and-verify"), byName(restore, "cp-2-certificates")), "a restore never overlaps a renewal");
});

test("a renewal due in 10 days is what preview shows: every control plane's certificates step and the credential step update, nothing else; 200 days away: nothing changes", async (t) => {
  const before = await evaluateDev();
  const deployed = (controlPlaneExpiry: string) => ({ ...deployedOf(before), certificates: { controlPlaneExpiry, kubeconfigExpiry: isoIn(300), round: "initial" } });
  const due = await evaluateDev([], deployed(isoIn(10)));
  const changed = diffEvaluations(before, due).map((d) => `${short(d.urn)} ${d.op}${d.replace ? " replace" : ""}`);
  t.deepEqual(changed.sort(), ["cp-0-certificates change", "cp-0-read-kubeconfig change", "cp-1-certificates change", "cp-2-certificates change"]);
  t.regex(String(byName(due, "cp-1-certificates").inputs.create), /ROUND='before-\d{8}T\d{6}Z'/);
  t.like(due.stackOutputs.certificates, { round: String(/ROUND='([^']+)'/.exec(String(byName(due, "cp-1-certificates").inputs.create))![1]) });
  const later = await evaluateDev([], deployed(isoIn(200)));
  t.deepEqual(diffEvaluations(before, later), []);
});

test("a stack deployed before the program minted its own credential keeps its provider's kubeconfig for one run while the provider gains its clusterIdentifier (no provider or CNI replacement)", async (t) => {
  const before = await evaluateDev();
  const legacy: Record<string, unknown> = { ...deployedOf(before), kubeconfig: "apiVersion: v1\nkind: Config\n# the admin.conf read on day one\n" };
  delete legacy.certificates;
  delete legacy.certificatesExpireAt;
  const onboarding = await evaluateDev([], legacy);
  const [provider] = byType(onboarding, "pulumi:providers:kubernetes");
  t.is(provider.inputs.kubeconfig, legacy.kubeconfig, "the kubeconfig the provider already has: only clusterIdentifier is new");
  t.is(provider.inputs.clusterIdentifier, "kubeadm-ha-dev");
  t.is(onboarding.stackOutputs.kubeconfig, byName(onboarding, "cp-0-read-kubeconfig").outputs.stdout, "the output is the new credential at once");
  // The next run, with certificates recorded, hands the provider the minted credential.
  const next = await evaluateDev([], deployedOf(onboarding));
  t.is(byType(next, "pulumi:providers:kubernetes")[0].inputs.kubeconfig, byName(next, "cp-0-read-kubeconfig").outputs.stdout);
});
