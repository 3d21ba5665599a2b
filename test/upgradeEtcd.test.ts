// The upgrade steps' etcd parts against a REAL 3-member TLS etcd 3.5 cluster on loopback (test/support/etcdCluster.ts):
// the pre-flight's external-etcd health check (etcdctl with the apiserver-etcd-client certificate, and the /health
// fallback through real curl) and the pre-upgrade snapshot (a real `etcdctl snapshot save`, read back with a real
// etcdutl). kubectl, kubeadm and apt stay recording stubs (they do not exist on this machine); for the stacked
// snapshot the kubectl stub's `exec etcd-cp-0 -- …` runs the real etcdctl/etcdutl with the pod's mounts under $R.
// Needs .tools/ (bash test/tools/ensure-tools.sh).
import test from "ava";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { preUpgradeSnapshotScript } from "../lifecycle/scripts/snapshot";
import { EtcdCluster, run as runCommand, startEtcdCluster } from "./support/etcdCluster";
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

test.serial(`pre-upgrade snapshot, stacked: etcdctl snapshot save inside the member's pod, moved out of its data dir, verified ${REAL}`, async (t) => {
  const root = await injected(t, cluster(FROM), "never-matches", "cp-0");
  copy(root, etcd.pki.ca.cert, "/etc/kubernetes/pki/etcd/ca.crt");
  copy(root, etcd.pki.client.cert, "/etc/kubernetes/pki/etcd/healthcheck-client.crt");
  copy(root, etcd.pki.client.key, "/etc/kubernetes/pki/etcd/healthcheck-client.key");
  // `kubectl exec etcd-cp-0 -- CMD ARGS`: the pod's mounts are under $R, its local endpoint is the test member.
  const podKubectl = `
while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
shift
cmd=$1
shift
args=()
for a in "$@"; do
  case $a in
    --endpoints=https://127.0.0.1:2379) args+=("--endpoints=$ETCD_TEST_ENDPOINT") ;;
    --*=/*) args+=("\${a%%=*}=$R\${a#*=}") ;;
    /*) args+=("$R$a") ;;
    *) args+=("$a") ;;
  esac
done
ETCDCTL_API=3 exec "$ETCD_TEST_BIN/$cmd" "\${args[@]}"
`;
  const script = preUpgradeSnapshotScript({ node: "cp-0", etcd: { kind: "stacked" } });
  const r = await run(t, script, { root, stubs: { kubectl: podKubectl }, env: { ETCD_TEST_ENDPOINT: etcd.endpoints[0], ETCD_TEST_BIN: bin } });
  t.is(r.code, 0, r.stderr);
  const saved = readdirSync(nodePath(root, "/var/backups/kubeadm-ha/etcd")).sort();
  t.is(saved.length, 2, saved.join(","));
  const [db, sum] = saved;
  t.regex(db, /^etcd-\d{8}T\d{6}\.\d{3}Z\.db$/);
  t.is(sum, `${db}.sha256`);
  t.false(existsSync(nodePath(root, "/var/lib/etcd/kubeadm-ha-snapshot")), "nothing left in etcd's data dir");
  const status = await runCommand(join(bin, "etcdutl"), ["snapshot", "status", nodePath(root, `/var/backups/kubeadm-ha/etcd/${db}`), "-w", "json"]);
  t.is(status.code, 0, status.stderr);
  t.true(JSON.parse(status.stdout).totalKey >= 300);
  t.regex(r.stderr, new RegExp(`\\[cp-0\\] upgrade-snapshot: snapshot \\S+/${db.replace(/\./g, "\\.")} verified: revision \\d+, \\d+ keys`));
  const sha = await runCommand("sha256sum", ["-c", sum], { cwd: nodePath(root, "/var/backups/kubeadm-ha/etcd") });
  t.is(sha.code, 0, sha.stdout + sha.stderr);
});

test.serial(`pre-upgrade snapshot, external member: its own etcdctl and etcdutl, verified; only the newest 'keep' are kept ${REAL}`, async (t) => {
  const root = await injected(t, cluster(FROM), "never-matches", "etcd-0");
  copy(root, etcd.pki.ca.cert, "/etc/etcd/pki/ca.crt");
  copy(root, etcd.pki.members["etcd-1"].server.cert, "/etc/etcd/pki/server.crt");
  copy(root, etcd.pki.members["etcd-1"].server.key, "/etc/etcd/pki/server.key");
  copy(root, join(bin, "etcdctl"), "/usr/local/bin/etcdctl");
  copy(root, join(bin, "etcdutl"), "/usr/local/bin/etcdutl");
  const script = preUpgradeSnapshotScript({ node: "etcd-0", etcd: { kind: "external", endpoint: etcd.endpoints[0] }, keep: 2 });
  for (let i = 0; i < 3; i++) {
    const r = await run(t, script, { root, stubs: upgradeStubs() });
    t.is(r.code, 0, r.stderr);
    if (i === 2) t.regex(r.stderr, /removed old snapshot etcd-\S+\.db \(keeping 2\)/);
  }
  const kept = readdirSync(nodePath(root, "/var/backups/kubeadm-ha/etcd")).filter((f) => f.endsWith(".db"));
  t.is(kept.length, 2);
  t.is(readdirSync(nodePath(root, "/var/backups/kubeadm-ha/etcd")).length, 4, "each kept snapshot has its .sha256");
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
