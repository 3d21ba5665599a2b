// The node lifecycle step scripts (maintenance, retirement of workers and control planes, fresh join credentials)
// run for real (bash, coreutils, sed, awk, openssl) against a scratch root, with recording stubs for what this machine
// does not and cannot have: kubeadm and kubectl (test/support/stubs.ts, upgradeStubs.ts' fake cluster, extended here
// with pods, Node deletion and a fake etcd membership). The etcd member removal against REAL etcd:
// test/etcdMemberRemoval.test.ts.
import test, { ExecutionContext } from "ava";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { mintJoinCredentialsScript, parseJoinCredentials, uploadCertsConfigPath } from "../infra/scripts/mintJoinCredentials";
import { initConfiguration } from "../infra/scripts/kubeadmConfig";
import { maintenanceDrainScript, maintenanceEndScript } from "../lifecycle/scripts/maintenance";
import { retireControlPlaneScript, retireStateDir, retireWorkerScript } from "../lifecycle/scripts/retireNode";
import { uncordonNodeScript } from "../lifecycle/scripts/uncordon";
import { caCertHashOf, callsOf, cleanup, makeCaCert, nodePath, runWithStubs, StubCall, StubRun, stubState } from "./support/stubs";
import { seedCluster, upgradeStubs } from "./support/upgradeStubs";

const STUBS = "(recording stubs: kubeadm, kubectl are not on this machine)";
const V = "1.35.9";
const fastDrain = { attempts: 2, retryDelaySeconds: 0 };

/** Bash source as written: `\${` in the literal is bash's `${`. */
function sh(strings: TemplateStringsArray): string {
  return strings.raw.join("").replace(/\\\$\{/g, "${");
}

// ---- the fake cluster, extended --------------------------------------------------------------------------------
// State (under stubState(root)), besides upgradeStubs.ts':
//   pods/<node>       "namespace/name OwnerKind" per pod on the node (what `get pods --field-selector` answers)
//   etcd/members      "id name clientURL" per etcd member
//   etcd/unhealthy    client URLs whose `endpoint health` fails

/** A fake etcd answering etcdctl's member list / endpoint health / member remove from the state. */
const fakeEtcd = sh`
__etcd() {
  local a endpoints="" sub=() e rc=0 eps=()
  for a in "$@"; do
    case $a in
      --endpoints=*) endpoints=\${a#--endpoints=} ;;
      -*) ;;
      *) sub+=("$a") ;;
    esac
  done
  local M="$S/etcd/members"
  IFS=, read -ra eps <<<"$endpoints"
  __up() { grep -q " $1\$" "$M" && ! grep -qx "$1" "$S/etcd/unhealthy" 2>/dev/null; }
  case "\${sub[0]:-} \${sub[1]:-}" in
    "member list")
      for e in "\${eps[@]}"; do
        if __up "$e"; then
          while read -r id name url; do printf '%s, started, %s, %s, %s, false\n' "$id" "$name" "\${url%:*}:2380" "$url"; done <"$M"
          return 0
        fi
      done
      echo "Error: context deadline exceeded" >&2
      return 1
      ;;
    "endpoint health")
      for e in "\${eps[@]}"; do
        if __up "$e"; then echo "$e is healthy: successfully committed proposal: took = 2.1ms"
        else echo "$e is unhealthy: failed to commit proposal: context deadline exceeded" >&2; rc=1; fi
      done
      return "$rc"
      ;;
    "member remove")
      grep -q "^\${sub[2]} " "$M" || { echo "Error: etcdserver: member not found" >&2; return 1; }
      sed -i "/^\${sub[2]} /d" "$M"
      echo "Member \${sub[2]} removed from cluster 9a2b5c7e6f1d3c4b"
      ;;
  esac
}
`;

/** kubectl: Node presence, pods, drain clearing them, Node deletion and etcdctl inside the etcd pod; else the fake cluster's. */
const kubectlPrefix = sh`
__all=("$@") __args=() __i=0
while [ "$__i" -lt "\${#__all[@]}" ]; do
  case \${__all[$__i]} in
    --kubeconfig | --server | -n | --namespace | --request-timeout) __i=$((__i + 2)); continue ;;
    --kubeconfig=* | --server=* | --request-timeout=* | --namespace=*) ;;
    *) __args+=("\${__all[$__i]}") ;;
  esac
  __i=$((__i + 1))
done
mkdir -p "$S/k8s" "$S/pods"
__present() { [ -e "$S/k8s/$1.kubelet" ]; }
__notfound() { echo "Error from server (NotFound): nodes \"$1\" not found" >&2; exit 1; }
case "\${__args[0]:-} \${__args[1]:-}" in
  "get node")
    case " \${__args[*]} " in *" --ignore-not-found "*) if __present "\${__args[2]}"; then echo "node/\${__args[2]}"; fi; exit 0 ;; esac
    ;;
  "get configmap")
    # The cluster's ClusterConfiguration as kubeadm keeps it in the kubeadm-config ConfigMap.
    printf '%s' "$(cat "$S/kubeadm-config" 2>/dev/null)"
    exit 0
    ;;
  "get pods")
    for a in "\${__args[@]}"; do case $a in spec.nodeName=*) n=\${a#spec.nodeName=}; n=\${n%%,*} ;; esac; done
    if [ -f "$S/pods/$n" ]; then cat "$S/pods/$n"; fi
    exit 0
    ;;
  "delete node")
    n=\${__args[2]}
    if __present "$n"; then rm -f "$S/k8s/$n".* "$S/pods/$n"; echo "node \"$n\" deleted"; exit 0; fi
    case " \${__args[*]} " in *" --ignore-not-found "*) exit 0 ;; esac
    __notfound "$n"
    ;;
  "cordon "* | "uncordon "*) __present "\${__args[1]}" || __notfound "\${__args[1]}" ;;
  "drain "*)
    n=\${__args[1]}
    __present "$n" || __notfound "$n"
    if [ -z "$(cat "$S/drain-mode" 2>/dev/null)" ] && [ -f "$S/pods/$n" ]; then
      awk '$2 == "DaemonSet" || $2 == "Node"' "$S/pods/$n" >"$S/pods/$n.new"
      mv "$S/pods/$n.new" "$S/pods/$n"
    fi
    ;;
  "exec "*)
    if [ -f "$S/etcd/members" ]; then
      for ((__i = 0; __i < \${#__args[@]}; __i++)); do [ "\${__args[$__i]}" = etcdctl ] && break; done
      __etcd "\${__args[@]:$((__i + 1))}"
      exit
    fi
    ;;
esac
`;

/** kubeadm: the phases and token commands of these steps; everything else is the fake cluster's kubeadm. */
const kubeadmPrefix = sh`
flag_of() { local want=$1; shift; while [ $# -gt 0 ]; do if [ "$1" = "$want" ]; then echo "$2"; return; fi; shift; done; }
case "\${1:-} \${2:-} \${3:-}" in
  "reset phase remove-etcd-member")
    sed -i "/ \${STUB_NODE:?} /d" "$S/etcd/members"
    echo "[reset] Removing the local etcd member from the etcd cluster"
    exit 0
    ;;
  "init phase upload-certs")
    config=$(flag_of --config "$@")
    [ -r "$config" ] || { echo "error: unable to read config from \"$config\"" >&2; exit 1; }
    stat -c %a "$config" >"$S/upload-certs-config-mode"
    cp "$config" "$S/upload-certs-config"
    key=$(sed -n -E 's/^certificateKey:[[:space:]]*"?([^"]*)"?$/\1/p' "$config")
    echo "[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace"
    # Prints the key whatever the flags say: what reaches the log is up to the script's filter.
    echo "[upload-certs] Using certificate key:"
    echo "$key"
    exit 0
    ;;
  "token create "*)
    token="$(tr -dc 'a-z0-9' </dev/urandom | head -c 6).$(tr -dc 'a-z0-9' </dev/urandom | head -c 16)"
    printf '%s' "$token" >"$S/minted-token"
    echo "W1125 12:00:00.000000  1234 version.go:104] could not fetch a Kubernetes version from the internet" >&2
    echo "$token"
    exit 0
    ;;
esac
`;

function lifecycleStubs(): Record<string, string> {
  const base = upgradeStubs();
  return {
    ...base,
    kubectl: fakeEtcd + kubectlPrefix + base.kubectl,
    kubeadm: kubeadmPrefix + base.kubeadm,
    etcdctl: fakeEtcd + '__etcd "$@"\n',
  };
}

interface Seed {
  /** Nodes the cluster has, and whether each is cordoned. */
  nodes: Record<string, { cordoned?: boolean }>;
  /** node -> pods on it ("ns/name Kind"). */
  pods?: Record<string, string[]>;
  /** etcd members (name -> client URL); ids are made up. */
  etcd?: Record<string, string>;
  unhealthy?: string[];
  drainMode?: "pdb" | "hang";
  /** Extra preparation (remove a stub, write a file). */
  more?: (root: string) => void;
  /** The node this machine's kubelet is (default: the node the step runs on; "": no kubelet credentials). */
  identity?: string;
}

const etcdIds: Record<string, string> = { "cp-0": "8e9e05c52164694d", "cp-1": "91bc3c398fb3c146", "cp-2": "fd422379fda50e48" };
const etcdUrls = { "cp-0": "https://10.0.1.10:2379", "cp-1": "https://10.0.2.10:2379", "cp-2": "https://10.0.3.10:2379" };

function seed(s: Seed, identity: string): (root: string) => void {
  return (root) => {
    seedCluster({ version: V, controlPlane: true, nodes: s.nodes, identity: s.identity === undefined ? identity : s.identity || undefined })(root);
    const state = stubState(root);
    for (const [node, pods] of Object.entries(s.pods ?? {})) {
      mkdirSync(join(state, "pods"), { recursive: true });
      writeFileSync(join(state, "pods", node), pods.map((p) => `${p}\n`).join(""));
    }
    if (s.etcd) {
      mkdirSync(join(state, "etcd"), { recursive: true });
      writeFileSync(join(state, "etcd", "members"), Object.entries(s.etcd).map(([n, url]) => `${etcdIds[n]} ${n} ${url}\n`).join(""));
      writeFileSync(join(state, "etcd", "unhealthy"), (s.unhealthy ?? []).map((u) => `${u}\n`).join(""));
    }
    if (s.drainMode) writeFileSync(join(state, "drain-mode"), s.drainMode);
    writeFileSync(join(state, "kubeadm-config"), clusterConfigurationYaml);
    s.more?.(root);
  };
}

async function run(t: ExecutionContext, script: string, o: { root?: string; seed?: Seed; node?: string; stdin?: string } = {}): Promise<StubRun> {
  const r = await runWithStubs(script, {
    root: o.root,
    setup: o.root ? undefined : seed(o.seed ?? { nodes: {} }, o.node ?? "cp-0"),
    stubs: lifecycleStubs(),
    env: { STUB_NODE: o.node ?? "cp-0" },
    stdin: o.stdin,
  });
  if (!o.root) t.teardown(() => cleanup(r.root));
  return r;
}

const has = (root: string, rel: string) => existsSync(join(stubState(root), rel));
const read = (root: string, rel: string) => readFileSync(join(stubState(root), rel), "utf8");
/** "cmd args…" without the kubeconfig and request timeout (the same on every call). */
const line = (c: StubCall) =>
  [c.cmd, ...c.args.filter((a, i, all) => a !== "--kubeconfig" && all[i - 1] !== "--kubeconfig" && !a.startsWith("--request-timeout"))].join(" ");
const lines = (r: StubRun) => r.calls.map(line);
/** Calls that change something (not reads). */
const writes = (r: StubRun) => lines(r).filter((l) => /^kubectl (cordon|uncordon|drain|delete)|^kubeadm (reset|init|token)|^etcdctl .*member remove/.test(l));
const indexOf = (r: StubRun, re: RegExp) => lines(r).findIndex((l) => re.test(l));

function everyLineNames(t: ExecutionContext, r: StubRun, node: string, step: string): void {
  for (const l of r.stderr.trimEnd().split("\n")) t.true(l.startsWith(`[${node}] ${step}: `), `line does not name node and step: ${l}`);
}

// ---- maintenance ---------------------------------------------------------------------------------------------------

test(`maintenance: cordon and drain with the drain defaults; again: nothing; leaving the list uncordons, once ${STUBS}`, async (t) => {
  const pods = ["default/web-0 ReplicaSet", "kube-system/cilium-x7k2p DaemonSet", "default/job-1 Job"];
  const drain = maintenanceDrainScript({ node: "worker-1", runsOn: "cp-0", drain: fastDrain });
  const first = await run(t, drain, { seed: { nodes: { "cp-0": {}, "worker-1": {} }, pods: { "worker-1": pods } } });
  t.is(first.code, 0, first.stderr);
  t.deepEqual(writes(first), [
    "kubectl cordon worker-1",
    "kubectl drain worker-1 --ignore-daemonsets --delete-emptydir-data --force --grace-period=300 --timeout=360s --skip-wait-for-delete-timeout=60",
  ]);
  t.true(has(first.root, "k8s/worker-1.cordoned"));
  t.is(read(first.root, "pods/worker-1"), "kube-system/cilium-x7k2p DaemonSet\n", "only the DaemonSet pod stays");
  t.regex(first.stderr, /\[worker-1\] maintenance: worker-1 cordoned and drained for maintenance\n/);
  everyLineNames(t, first, "worker-1", "maintenance");
  t.is(first.stdout, "");

  const again = await run(t, drain, { root: first.root });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(writes(again), [], "already cordoned and drained: no cordon, no drain");
  t.regex(again.stderr, /\[worker-1\] maintenance: worker-1 is already cordoned and drained: nothing to do\n/);

  const end = maintenanceEndScript({ node: "worker-1", runsOn: "cp-0" });
  const over = await run(t, end, { root: first.root });
  t.is(over.code, 0, over.stderr);
  t.deepEqual(writes(over), ["kubectl uncordon worker-1"]);
  t.false(has(first.root, "k8s/worker-1.cordoned"));
  everyLineNames(t, over, "worker-1", "maintenance");
  const overAgain = await run(t, end, { root: first.root });
  t.is(overAgain.code, 0, overAgain.stderr);
  t.deepEqual(writes(overAgain), []);
  t.regex(overAgain.stderr, /worker-1 is already schedulable: nothing to do/);
});

test(`maintenance: a cordoned node that still runs pods is drained (not cordoned again); a control plane drains without --force ${STUBS}`, async (t) => {
  const r = await run(t, maintenanceDrainScript({ node: "cp-1", runsOn: "cp-0", role: "control-plane", drain: fastDrain }), {
    seed: { nodes: { "cp-0": {}, "cp-1": { cordoned: true } }, pods: { "cp-1": ["kube-system/coredns-5d78c9869d-abcde ReplicaSet", "kube-system/kube-apiserver-cp-1 Node"] } },
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(writes(r), ["kubectl drain cp-1 --ignore-daemonsets --grace-period=300 --timeout=360s --skip-wait-for-delete-timeout=60"]);
  t.regex(r.stderr, /cp-1 is cordoned but still runs 1 evictable pod\(s\): draining/);
  t.is(read(r.root, "pods/cp-1"), "kube-system/kube-apiserver-cp-1 Node\n", "the static pod's mirror stays");
});

test(`maintenance: a failed drain uncordons the node and fails with the drain's output ${STUBS}`, async (t) => {
  const r = await run(t, maintenanceDrainScript({ node: "worker-1", runsOn: "cp-0", drain: fastDrain }), {
    seed: { nodes: { "cp-0": {}, "worker-1": {} }, pods: { "worker-1": ["default/web-0 StatefulSet"] }, drainMode: "pdb" },
  });
  t.not(r.code, 0);
  t.deepEqual(writes(r).map((l) => l.split(" ").slice(0, 2).join(" ")), ["kubectl cordon", "kubectl drain", "kubectl drain", "kubectl uncordon"]);
  t.false(has(r.root, "k8s/worker-1.cordoned"), "schedulable again");
  t.regex(r.stderr, /\[worker-1\] maintenance: error when evicting pods\/"web-0" -n "default" \(will retry after 5s\): Cannot evict pod as it would violate the pod's disruption budget\./);
  t.regex(r.stderr, /\[worker-1\] maintenance: ERROR: drain of worker-1 for maintenance failed \(kubectl exit 1 after 2 attempt\(s\), each bounded by 420s\); worker-1 is uncordoned/);
});

test(`maintenance: leaving the list for a node the cluster no longer has does nothing; draining one fails naming it ${STUBS}`, async (t) => {
  const end = await run(t, maintenanceEndScript({ node: "worker-9", runsOn: "cp-0" }), { seed: { nodes: { "cp-0": {} } } });
  t.is(end.code, 0, end.stderr);
  t.deepEqual(writes(end), []);
  t.regex(end.stderr, /\[worker-9\] maintenance: node worker-9 is not in the cluster: nothing to uncordon\n/);
  const drain = await run(t, maintenanceDrainScript({ node: "worker-9", runsOn: "cp-0" }), { root: end.root });
  t.not(drain.code, 0);
  t.deepEqual(writes(drain), []);
  t.regex(drain.stderr, /ERROR: node worker-9 is not in the cluster: nothing to drain/);
});

// ---- retiring a worker ---------------------------------------------------------------------------------------------

test(`retire worker: cordon, drain, then delete the Node, in that order; again: already gone ${STUBS}`, async (t) => {
  const script = retireWorkerScript({ node: "worker-2", runsOn: "cp-0", drain: fastDrain });
  const r = await run(t, script, { seed: { nodes: { "cp-0": {}, "worker-2": {} }, pods: { "worker-2": ["default/web-1 ReplicaSet"] } } });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(writes(r), [
    "kubectl cordon worker-2",
    "kubectl drain worker-2 --ignore-daemonsets --delete-emptydir-data --force --grace-period=300 --timeout=360s --skip-wait-for-delete-timeout=60",
    "kubectl delete node worker-2 --ignore-not-found",
  ]);
  t.false(has(r.root, "k8s/worker-2.kubelet"), "the Node is gone");
  everyLineNames(t, r, "worker-2", "retire");

  const again = await run(t, script, { root: r.root });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(writes(again), []);
  t.regex(again.stderr, /\[worker-2\] retire: node worker-2 is already gone from the cluster: nothing to drain or delete\n/);
});

test(`retire worker: a failed drain fails the step, deletes nothing and leaves the node cordoned ${STUBS}`, async (t) => {
  const r = await run(t, retireWorkerScript({ node: "worker-2", runsOn: "cp-0", drain: fastDrain }), {
    seed: { nodes: { "cp-0": {}, "worker-2": {} }, pods: { "worker-2": ["default/web-1 StatefulSet"] }, drainMode: "pdb" },
  });
  t.not(r.code, 0);
  t.deepEqual(writes(r).map((l) => l.split(" ").slice(0, 2).join(" ")), ["kubectl cordon", "kubectl drain", "kubectl drain"]);
  t.true(has(r.root, "k8s/worker-2.kubelet"), "the Node stays");
  t.true(has(r.root, "k8s/worker-2.cordoned"), "and stays cordoned");
  t.regex(r.stderr, /\[worker-2\] retire: error when evicting pods\/"web-0" -n "default" \(will retry after 5s\): Cannot evict pod as it would violate the pod's disruption budget\./);
  t.regex(r.stderr, /ERROR: drain of worker-2 failed \(kubectl exit 1 after 2 attempt\(s\), each bounded by 420s\): its instance is not terminated with pods still on it\. worker-2 stays cordoned/);
});

// ---- retiring a control plane --------------------------------------------------------------------------------------

const threeMembers = { "cp-0": etcdUrls["cp-0"], "cp-1": etcdUrls["cp-1"], "cp-2": etcdUrls["cp-2"] };
const cpNodes = { "cp-0": {}, "cp-1": {}, "cp-2": {} };
const remaining = [etcdUrls["cp-0"], etcdUrls["cp-1"]];

test(`retire control plane (stacked etcd): etcd health, drain, member removal, Node deletion, kubeadm reset, in that order; then nothing ${STUBS}`, async (t) => {
  const script = retireControlPlaneScript({ node: "cp-2", stackedEtcd: true, remainingEndpoints: remaining, drain: fastDrain, timeouts: { etcdHealth: 0 } });
  const r = await run(t, script, { node: "cp-2", seed: { nodes: cpNodes, etcd: threeMembers, pods: { "cp-2": ["kube-system/coredns-5d78c9869d-abcde ReplicaSet"] } } });
  t.is(r.code, 0, r.stderr);
  const order = [
    /^etcdctl .*endpoint health/,
    /^kubectl drain cp-2 --ignore-daemonsets --grace-period=300 --timeout=360s --skip-wait-for-delete-timeout=60$/,
    new RegExp(`^etcdctl .*--endpoints=${remaining.join(",")} .*member remove ${etcdIds["cp-2"]}$`),
    /^kubectl delete node cp-2 --ignore-not-found$/,
    /^kubeadm reset -f .*--skip-phases=remove-etcd-member$/,
  ].map((re) => indexOf(r, re));
  t.true(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `in order: ${order.join(", ")}\n${lines(r).join("\n")}`);
  t.is(read(r.root, "etcd/members"), `${etcdIds["cp-0"]} cp-0 ${etcdUrls["cp-0"]}\n${etcdIds["cp-1"]} cp-1 ${etcdUrls["cp-1"]}\n`);
  t.false(has(r.root, "k8s/cp-2.kubelet"), "the Node is gone");
  t.false(existsSync(nodePath(r.root, "/etc/kubernetes/admin.conf")), "reset");
  t.true(existsSync(nodePath(r.root, `${retireStateDir}/etcd-member-removed`)));
  const etcdctl = callsOf(r, "etcdctl");
  t.true(etcdctl.every((a) => a.includes(`--cert=${r.root}/etc/kubernetes/pki/etcd/healthcheck-client.crt`)), "etcdctl with the node's healthcheck-client certificate");
  t.regex(r.stderr, /\[cp-2\] retire: etcd healthy: member cp-2 \(fd422379fda50e48\) may leave; 2 member\(s\) remain, quorum 2, all healthy\n/);
  t.regex(r.stderr, /\[cp-2\] retire: cp-2 retired: drained, removed from etcd and the cluster, reset\n/);
  everyLineNames(t, r, "cp-2", "retire");

  const again = await run(t, script, { root: r.root, node: "cp-2" });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(again.calls, []);
  t.regex(again.stderr, /already reset \(no .*admin\.conf, no .*kubelet\.conf\): nothing to do/);
});

test(`retire control plane on a machine whose kubelet is another node (a phantom cp-3 listed with cp-0's address): refused before any etcd call, drain, deletion or reset ${STUBS}`, async (t) => {
  const script = retireControlPlaneScript({ node: "cp-3", stackedEtcd: true, remainingEndpoints: remaining, drain: fastDrain, timeouts: { etcdHealth: 0 } });
  const r = await run(t, script, { node: "cp-3", seed: { nodes: { ...cpNodes, "cp-3": {} }, etcd: threeMembers, identity: "cp-0" } });
  t.not(r.code, 0);
  t.deepEqual(r.calls, [], "nothing was asked or changed");
  t.true(existsSync(nodePath(r.root, "/etc/kubernetes/admin.conf")), "the real cp-0 is untouched");
  t.is(read(r.root, "etcd/members").split("\n").filter(Boolean).length, 3);
  t.regex(r.stderr, /\[cp-3\] retire: ERROR: refusing to retire it \(etcd member removal, drain, Node deletion, kubeadm reset\): this machine's kubelet is node cp-0, not cp-3/);

  const anonymous = await run(t, script, { node: "cp-3", seed: { nodes: cpNodes, etcd: threeMembers, identity: "" } });
  t.not(anonymous.code, 0);
  t.deepEqual(anonymous.calls, []);
  t.regex(anonymous.stderr, /refusing to retire it .*: this machine has no kubelet credentials .*, so nothing shows it is node cp-3/);
});

test(`retire control plane: a failure at kubeadm reset, then a rerun skips what is done (member absent, Node gone) and resets ${STUBS}`, async (t) => {
  const script = retireControlPlaneScript({ node: "cp-2", stackedEtcd: true, drain: fastDrain, timeouts: { etcdHealth: 0 } });
  const failed = await run(t, script, {
    node: "cp-2",
    seed: { nodes: cpNodes, etcd: { ...threeMembers, "cp-2": "https://127.0.0.1:2379" }, more: (root) => writeFileSync(join(stubState(root), "fail-at"), "kubeadm reset -f") },
  });
  t.not(failed.code, 0);
  t.regex(failed.stderr, /ERROR: kubeadm reset failed/);
  t.false(read(failed.root, "etcd/members").includes("cp-2"));
  // Without remainingEndpoints the first run asked its own member (127.0.0.1) and saved the others for later runs.
  t.is(readFileSync(nodePath(failed.root, `${retireStateDir}/etcd-endpoints`), "utf8"), `${remaining.join(",")}\n`);

  const rerun = await run(t, script, { root: failed.root, node: "cp-2" });
  t.is(rerun.code, 0, rerun.stderr);
  t.deepEqual(writes(rerun), ["kubeadm reset -f --skip-phases=remove-etcd-member"]);
  t.regex(rerun.stderr, /etcd member cp-2 is already absent from the cluster/);
  t.regex(rerun.stderr, /node cp-2 is already gone from the cluster: nothing to drain/);
  t.true(lines(rerun).some((l) => l.startsWith(`etcdctl --endpoints=${remaining.join(",")} `)), "asked the saved remaining members");
});

test(`retire control plane: refused while a remaining etcd member is unhealthy: no drain, no removal, no deletion, no reset ${STUBS}`, async (t) => {
  const r = await run(t, retireControlPlaneScript({ node: "cp-2", stackedEtcd: true, remainingEndpoints: remaining, timeouts: { etcdHealth: 0 } }), {
    node: "cp-2",
    seed: { nodes: cpNodes, etcd: threeMembers, unhealthy: [etcdUrls["cp-1"]] },
  });
  t.not(r.code, 0);
  t.deepEqual(writes(r), []);
  t.regex(r.stderr, /\[cp-2\] retire: https:\/\/10\.0\.2\.10:2379 is unhealthy: failed to commit proposal: context deadline exceeded\n/);
  t.regex(
    r.stderr,
    /\[cp-2\] retire: ERROR: refusing to remove etcd member cp-2 after 0s: etcd is not healthy: 1 of the 2 remaining members answer \(unhealthy: https:\/\/10\.0\.2\.10:2379; their quorum is 2\)/,
  );
  t.true(existsSync(nodePath(r.root, "/etc/kubernetes/admin.conf")));
  t.false(has(r.root, "k8s/cp-2.cordoned"));
});

test(`retire control plane without etcdctl on the host: etcd is asked inside its pod and kubeadm removes the member ${STUBS}`, async (t) => {
  const r = await run(t, retireControlPlaneScript({ node: "cp-2", stackedEtcd: true, remainingEndpoints: remaining, drain: fastDrain, timeouts: { etcdHealth: 0 } }), {
    node: "cp-2",
    seed: { nodes: cpNodes, etcd: threeMembers, more: (root) => rmSync(join(dirname(root), "bin", "etcdctl")) },
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "etcdctl"), []);
  t.true(lines(r).some((l) => /^kubectl -n kube-system exec etcd-cp-2 -- etcdctl .*endpoint health$/.test(l)), "health through the etcd pod");
  const order = [/^kubectl -n kube-system exec .*endpoint health$/, /^kubectl drain cp-2/, /^kubeadm reset phase remove-etcd-member$/, /^kubectl delete node cp-2/, /^kubeadm reset -f/].map((re) => indexOf(r, re));
  t.true(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `in order: ${order.join(", ")}\n${lines(r).join("\n")}`);
  t.false(read(r.root, "etcd/members").includes("cp-2"));
  t.regex(r.stderr, /no etcdctl on this host: kubeadm reset phase remove-etcd-member/);
});

test(`retire control plane with external etcd: no etcd call; drain, Node deletion, full kubeadm reset ${STUBS}`, async (t) => {
  const r = await run(t, retireControlPlaneScript({ node: "cp-2", stackedEtcd: false, drain: fastDrain }), { node: "cp-2", seed: { nodes: cpNodes } });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "etcdctl"), []);
  t.false(lines(r).some((l) => / exec /.test(l)));
  t.deepEqual(writes(r), ["kubectl cordon cp-2", "kubectl drain cp-2 --ignore-daemonsets --grace-period=300 --timeout=360s --skip-wait-for-delete-timeout=60", "kubectl delete node cp-2 --ignore-not-found", "kubeadm reset -f"]);
  t.regex(r.stderr, /external etcd: its membership does not change/);
});

test("retireControlPlaneScript refuses remainingEndpoints with external etcd, and malformed endpoints", (t) => {
  t.throws(() => retireControlPlaneScript({ node: "cp-2", stackedEtcd: false, remainingEndpoints: remaining }), {
    message: "retireControlPlaneScript: remainingEndpoints apply to stacked etcd only (a control plane's retirement does not change external etcd)",
  });
  t.throws(() => retireControlPlaneScript({ node: "cp-2", stackedEtcd: true, remainingEndpoints: ["10.0.1.10:2379"] }), {
    message: "retireControlPlaneScript: etcd endpoints must look like https://10.0.3.10:2379; got 10.0.1.10:2379",
  });
});

// ---- join credentials ----------------------------------------------------------------------------------------------

/** The ClusterConfiguration the fake cluster's kubeadm-config ConfigMap holds. */
const clusterConfigurationYaml = initConfiguration({
  shape: { clusterName: "kubeadm-ha", kubernetesVersion: "1.36.0", controlPlaneEndpoint: "api.example:6443", certSANs: ["api.example"], podCidr: "10.244.0.0/16", serviceCidr: "10.96.0.0/12", etcd: { kind: "stacked" } },
  node: { name: "cp-0", privateIp: "10.0.1.10" },
  bootstrapToken: "unused.0000000000000000",
  certificateKey: "0".repeat(64),
}).split("---\n")[1];
const certificateKey = "e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204";

test(`join credentials: certificates uploaded, a fresh token; stdout is exactly the two lines; no secret in argv or the log ${STUBS}`, async (t) => {
  let caCert = "";
  const r = await run(t, mintJoinCredentialsScript({ node: "cp-0", forNodes: ["worker-3", "cp-3"] }), {
    seed: { nodes: { "cp-0": {} }, more: (root) => (caCert = makeCaCert(root)) },
    stdin: `${certificateKey}\n`,
  });
  t.is(r.code, 0, r.stderr);
  const minted = read(r.root, "minted-token");
  const lines2 = r.stdout.split("\n");
  t.deepEqual(lines2, [`KUBEADM_HA_JOIN_TOKEN=${minted}`, `KUBEADM_HA_CA_CERT_HASH=${caCertHashOf(readFileSync(caCert, "utf8"))}`, ""]);
  t.deepEqual(parseJoinCredentials(r.stdout), { token: minted, caCertHash: caCertHashOf(readFileSync(caCert, "utf8")) });

  const kubeadm = callsOf(r, "kubeadm");
  t.deepEqual(kubeadm, [
    ["init", "phase", "upload-certs", "--upload-certs", "--skip-certificate-key-print", "--config", nodePath(r.root, uploadCertsConfigPath), "--kubeconfig", nodePath(r.root, "/etc/kubernetes/admin.conf")],
    ["token", "create", "--ttl", "24h0m0s", "--description", "kubeadm-ha join: worker-3, cp-3", "--kubeconfig", nodePath(r.root, "/etc/kubernetes/admin.conf")],
  ]);
  t.is(read(r.root, "upload-certs-config-mode").trim(), "600", "the configuration kubeadm reads is root-only");
  const [init, cluster] = read(r.root, "upload-certs-config").split("---\n");
  t.is(init, `apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\ncertificateKey: ${certificateKey}\n`, "the key from stdin");
  t.regex(cluster, /kubernetesVersion: v1\.36\.0/, "the rest is the cluster's own ClusterConfiguration, at its current version");
  t.false(existsSync(nodePath(r.root, uploadCertsConfigPath)), "and removed when the step ends");
  for (const secret of [minted, certificateKey]) {
    t.false(r.calls.some((c) => c.args.some((a) => a.includes(secret))), "no secret in any argv");
    t.false(r.stderr.includes(secret), "no secret in the log");
  }
  t.regex(r.stderr, /\[cp-0\] join-credentials: \[upload-certs\] Storing the certificates in Secret/);
  t.regex(r.stderr, /\[cp-0\] join-credentials: W1125 .*could not fetch a Kubernetes version/, "kubeadm's stderr is logged, filtered");
  everyLineNames(t, r, "cp-0", "join-credentials");
});

test(`join credentials for a worker: a token only; the kubeadm-certs upload a joining control plane downloads is left alone, stdin not read ${STUBS}`, async (t) => {
  let caCert = "";
  const r = await run(t, mintJoinCredentialsScript({ node: "cp-0", forNodes: ["worker-3"], uploadCertificates: false }), {
    seed: { nodes: { "cp-0": {} }, more: (root) => (caCert = makeCaCert(root)) },
    stdin: "",
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "kubeadm"), [["token", "create", "--ttl", "24h0m0s", "--description", "kubeadm-ha join: worker-3", "--kubeconfig", nodePath(r.root, "/etc/kubernetes/admin.conf")]]);
  t.deepEqual(parseJoinCredentials(r.stdout), { token: read(r.root, "minted-token"), caCertHash: caCertHashOf(readFileSync(caCert, "utf8")) });
  t.false(existsSync(nodePath(r.root, uploadCertsConfigPath)));
  everyLineNames(t, r, "cp-0", "join-credentials");
});

test(`join credentials: no certificate key on stdin is refused before kubeadm runs ${STUBS}`, async (t) => {
  const r = await run(t, mintJoinCredentialsScript({ node: "cp-0", forNodes: ["worker-3"] }), {
    seed: { nodes: { "cp-0": {} }, more: (root) => makeCaCert(root) },
    stdin: "not-a-key\n",
  });
  t.not(r.code, 0);
  t.deepEqual(callsOf(r, "kubeadm"), []);
  t.regex(r.stderr, /ERROR: no certificate key \(64 lowercase hex characters\) on stdin/);
  t.is(r.stdout, "");
});

test("parseJoinCredentials: round trip, and clear errors that never repeat the token", (t) => {
  const hash = `sha256:${"ab".repeat(32)}`;
  t.deepEqual(parseJoinCredentials(`KUBEADM_HA_JOIN_TOKEN=abc123.0123456789abcdef\nKUBEADM_HA_CA_CERT_HASH=${hash}\n`), {
    token: "abc123.0123456789abcdef",
    caCertHash: hash,
  });
  const cases: [string, string][] = [
    [`KUBEADM_HA_CA_CERT_HASH=${hash}\n`, "the join-credentials step printed no KUBEADM_HA_JOIN_TOKEN=<token> line (did kubeadm token create succeed on the control plane?)"],
    ["KUBEADM_HA_JOIN_TOKEN=abc123.0123456789abcdef\n", "the join-credentials step printed no KUBEADM_HA_CA_CERT_HASH=sha256:<hex> line"],
    [
      `KUBEADM_HA_JOIN_TOKEN=ABC123.0123456789abcdef\nKUBEADM_HA_CA_CERT_HASH=${hash}\n`,
      "the join-credentials step printed a malformed KUBEADM_HA_JOIN_TOKEN (expected [a-z0-9]{6}.[a-z0-9]{16}, 23 characters; got 23 characters, not shown)",
    ],
    [
      `KUBEADM_HA_JOIN_TOKEN=abc123.0123456789abcdef\nKUBEADM_HA_CA_CERT_HASH=${hash}\nabc123.0123456789abcdef\n`,
      "the join-credentials step must print exactly two lines (KUBEADM_HA_JOIN_TOKEN, KUBEADM_HA_CA_CERT_HASH); it printed 1 token line(s), 1 hash line(s) and 1 other line(s)",
    ],
    [
      `KUBEADM_HA_JOIN_TOKEN=abc123.0123456789abcdef\nKUBEADM_HA_JOIN_TOKEN=zzz123.0123456789abcdef\nKUBEADM_HA_CA_CERT_HASH=${hash}\n`,
      "the join-credentials step must print exactly two lines (KUBEADM_HA_JOIN_TOKEN, KUBEADM_HA_CA_CERT_HASH); it printed 2 token line(s), 1 hash line(s) and 0 other line(s)",
    ],
    [
      "KUBEADM_HA_JOIN_TOKEN=abc123.0123456789abcdef\nKUBEADM_HA_CA_CERT_HASH=sha256:xyz\n",
      'the join-credentials step printed a malformed KUBEADM_HA_CA_CERT_HASH (expected sha256:<64 lowercase hex>): "sha256:xyz"',
    ],
  ];
  for (const [stdout, message] of cases) {
    const e = t.throws(() => parseJoinCredentials(stdout));
    t.is(e?.message, message);
    t.false(e?.message.includes("0123456789abcdef"), "the token is not repeated");
  }
});

test("mintJoinCredentialsScript refuses an empty, malformed or repeated node list", (t) => {
  t.throws(() => mintJoinCredentialsScript({ node: "cp-0", forNodes: [] }), {
    message: "mintJoinCredentialsScript: forNodes is empty: credentials are minted only for nodes about to join",
  });
  t.throws(() => mintJoinCredentialsScript({ node: "cp-0", forNodes: ["worker-3", "Worker_4"] }), {
    message: 'mintJoinCredentialsScript: forNodes must be Kubernetes node names; got "Worker_4"',
  });
  t.throws(() => mintJoinCredentialsScript({ node: "cp-0", forNodes: ["worker-3", "worker-3"] }), {
    message: "mintJoinCredentialsScript: forNodes lists worker-3 more than once",
  });
  const a = mintJoinCredentialsScript({ node: "cp-0", forNodes: ["worker-3"] });
  t.not(a, mintJoinCredentialsScript({ node: "cp-0", forNodes: ["worker-3", "worker-4"] }), "the node set is in the script: a change re-runs the step");
});

test(`maintenance holds a node: the upgrade's uncordon leaves it cordoned until maintenance ends ${STUBS}`, async (t) => {
  const first = await run(t, maintenanceDrainScript({ node: "worker-1", runsOn: "cp-0", drain: fastDrain }), { seed: { nodes: { "cp-0": {}, "worker-1": {} } } });
  t.is(first.code, 0, first.stderr);
  t.true(has(first.root, "k8s/worker-1.maintenance"), "marked as held");
  const uncordon = uncordonNodeScript({ runsOn: "cp-0", node: "worker-1", role: "worker", kubernetesVersion: V });
  const upgrade = await run(t, uncordon, { root: first.root });
  t.is(upgrade.code, 0, upgrade.stderr);
  t.false(lines(upgrade).some((l) => l.startsWith("kubectl uncordon")), "no uncordon while held");
  t.regex(upgrade.stderr, /\[worker-1\] uncordon: worker-1 is held in maintenance \(config maintenance\): it stays cordoned/);
  t.true(has(first.root, "k8s/worker-1.cordoned"));
  const over = await run(t, maintenanceEndScript({ node: "worker-1", runsOn: "cp-0" }), { root: first.root });
  t.is(over.code, 0, over.stderr);
  t.false(has(first.root, "k8s/worker-1.maintenance"));
  t.false(has(first.root, "k8s/worker-1.cordoned"));
  const later = await run(t, uncordon, { root: first.root });
  t.regex(later.stderr, /worker-1 is schedulable/);
});
