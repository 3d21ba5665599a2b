// The upgrade steps' etcd parts against a REAL 3-member TLS etcd 3.5 cluster on loopback (test/support/etcdCluster.ts):
// the pre-flight's external-etcd health check (etcdctl with the apiserver-etcd-client certificate, and the /health
// fallback through real curl). The pre-upgrade snapshot is saveSnapshotScript's (test/etcdSnapshot.test.ts). kubectl, kubeadm and apt stay recording stubs (they do not exist on this machine); for the stacked
// snapshot the kubectl stub's `exec etcd-cp-0 -- …` runs the real etcdctl/etcdutl with the pod's mounts under $R.
// Needs .tools/ (bash test/tools/ensure-tools.sh).
import test from "ava";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { EtcdCluster, startEtcdCluster } from "./support/etcdCluster";
import { defaultStubs, nodePath } from "./support/stubs";
import { toolPath } from "./support/tools";
import { cluster, FROM, injected, preflightStep, run, TO } from "./support/upgradeRuns";
import { upgradeStubs } from "./support/upgradeStubs";

const REAL = "(real etcd 3.5; kubectl, kubeadm, apt-get stubbed)";
const bin = dirname(toolPath.etcdctl("3.5"));
let etcd: EtcdCluster;
let dir: string;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), "upgrade-etcd-"));
  etcd = await startEtcdCluster({ version: "3.5", members: 3, dir });
  await etcd.putMany(300, "/registry/configmaps/default/cm-");
});

test.after.always(async () => {
  await etcd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function copy(root: string, from: string, to: string) {
  mkdirSync(dirname(nodePath(root, to)), { recursive: true });
  copyFileSync(from, nodePath(root, to));
}

/** A control plane of an external-etcd cluster: the apiserver's etcd client files where kubeadm expects them. */
function asExternalControlPlane(root: string) {
  copy(root, etcd.pki.ca.cert, "/etc/kubernetes/pki/etcd/ca.crt");
  copy(root, etcd.pki.client.cert, "/etc/kubernetes/pki/apiserver-etcd-client.crt");
  copy(root, etcd.pki.client.key, "/etc/kubernetes/pki/apiserver-etcd-client.key");
}

/** A cluster partly upgraded (cp-0 already at the target): the pre-flight checks health and skips the plan check. */
const partly = () => cluster(FROM, { controlPlaneVersion: TO, serverVersion: TO, nodes: { "cp-0": { kubelet: TO }, "cp-1": {}, "cp-2": {}, "worker-0": {}, "worker-1": {} } });
const realEtcdctl = { etcdctl: `exec ${JSON.stringify(join(bin, "etcdctl"))} "$@"` };

/** A PATH without the etcdctl and curl stubs (so the script finds no etcdctl, and the real curl). */
function pathWithout(root: string, names: string[]): string {
  const base = dirname(root);
  const only = join(base, "bin-without");
  mkdirSync(only, { recursive: true });
  for (const name of new Set([...Object.keys(defaultStubs), ...Object.keys(upgradeStubs())])) {
    if (!names.includes(name) && !existsSync(join(only, name))) symlinkSync(join(base, "bin", name), join(only, name));
  }
  return `${only}:/usr/bin:/bin`;
}

test.serial(`pre-flight, external etcd: etcdctl with the apiserver-etcd-client certificate finds every member healthy ${REAL}`, async (t) => {
  const root = await injected(t, partly(), "never-matches", "cp-0");
  asExternalControlPlane(root);
  const r = await run(t, preflightStep(TO, { kind: "external", endpoints: etcd.endpoints }).script, { root, stubs: realEtcdctl });
  t.is(r.code, 0, r.stderr);
  const call = r.calls.find((c) => c.cmd === "etcdctl")!;
  t.true(call.args.includes(`--cert=${nodePath(root, "/etc/kubernetes/pki/apiserver-etcd-client.crt")}`));
  t.true(call.args.includes(`--endpoints=${etcd.endpoints.join(",")}`));
  for (const e of etcd.endpoints) t.regex(r.stderr, new RegExp(`${e} is healthy`));
  t.regex(r.stderr, /etcd healthy: endpoints https:\/\/127\.0\.0\.1:\d+,/);
});

test.serial(`pre-flight, external etcd, no etcdctl on the control plane: each member's /health through curl ${REAL}`, async (t) => {
  const root = await injected(t, partly(), "never-matches", "cp-0");
  asExternalControlPlane(root);
  const script = preflightStep(TO, { kind: "external", endpoints: etcd.endpoints }).script;
  const r = await run(t, script, { root, env: { PATH: pathWithout(root, ["etcdctl", "curl"]) } });
  t.is(r.code, 0, r.stderr);
  t.false(r.calls.some((c) => c.cmd === "etcdctl"));
  for (const e of etcd.endpoints) t.regex(r.stderr, new RegExp(`${e} is healthy`));
});

test.serial(`pre-flight, external etcd, a member down: the step fails with etcd's own output, before anything changes ${REAL}`, async (t) => {
  await etcd.stopMember("etcd-3");
  const root = await injected(t, partly(), "never-matches", "cp-0");
  asExternalControlPlane(root);
  const script = preflightStep(TO, { kind: "external", endpoints: etcd.endpoints }).script;
  const viaEtcdctl = await run(t, script, { root, stubs: realEtcdctl });
  t.not(viaEtcdctl.code, 0);
  t.regex(viaEtcdctl.stderr, new RegExp(`${etcd.member("etcd-3").clientUrl} is unhealthy`));
  t.regex(viaEtcdctl.stderr, /ERROR: etcd \(endpoints [^)]*\) is not healthy after 0s \(output above\)/);
  const viaCurl = await run(t, script, { root, env: { PATH: pathWithout(root, ["etcdctl", "curl"]) } });
  t.not(viaCurl.code, 0);
  t.regex(viaCurl.stderr, new RegExp(`${etcd.member("etcd-3").clientUrl} is unhealthy`));
});
