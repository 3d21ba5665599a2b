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
import { retireControlPlaneScript, retireStandbyScript, retireStateDir, retireWorkerScript } from "../lifecycle/scripts/retireNode";
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
  nodes: Record<string, { cordoned?: boolean; ready?: string }>;
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
// The step runs on cp-0 (the survivor: its kubelet identity, its admin.conf) about the departing cp-2, which is dead in
// most of these runs: its Node NotReady, its etcd endpoint not answering, its member still listed.

const threeMembers = { "cp-0": etcdUrls["cp-0"], "cp-1": etcdUrls["cp-1"], "cp-2": etcdUrls["cp-2"] };
const remaining = [etcdUrls["cp-0"], etcdUrls["cp-1"]];
/** cp-2's machine is dead: its kubelet stopped reporting (NotReady) and its etcd member does not answer. */
const deadCp2 = { nodes: { "cp-0": {}, "cp-1": {}, "cp-2": { ready: "False" } }, etcd: threeMembers, unhealthy: [etcdUrls["cp-2"]] };
const fromCp0 = (o: Partial<Parameters<typeof retireControlPlaneScript>[0]> = {}) =>
  retireControlPlaneScript({ node: "cp-2", runsOn: "cp-0", stackedEtcd: true, remainingEndpoints: remaining, drain: fastDrain, timeouts: { etcdHealth: 0 }, ...o });

/** Every call that could reach cp-2's machine: an etcdctl naming its endpoint, an exec into its etcd pod, any kubeadm. */
function reachesDeparted(r: StubRun): string[] {
  return lines(r).filter((l) => l.includes(etcdUrls["cp-2"]) || / exec etcd-cp-2 /.test(l) || l.startsWith("kubeadm ") || l.startsWith("ssh "));
}

test(`retire control plane from cp-0, the departing cp-2 NotReady and its etcd member still listed but dead: remaining members' health, bounded drain, member removal through the remaining members, Node deletion, in that order; nothing reaches cp-2; then nothing ${STUBS}`, async (t) => {
  const script = fromCp0();
  const r = await run(t, script, { node: "cp-0", seed: { ...deadCp2, pods: { "cp-2": ["kube-system/coredns-5d78c9869d-abcde ReplicaSet", "kube-system/kube-proxy-x1 DaemonSet"] } } });
  t.is(r.code, 0, r.stderr);
  const order = [
    new RegExp(`^etcdctl --endpoints=${etcdUrls["cp-1"]} .*endpoint health`),
    /^kubectl drain cp-2 --ignore-daemonsets --grace-period=300 --timeout=360s --skip-wait-for-delete-timeout=60$/,
    new RegExp(`^etcdctl --endpoints=${remaining.join(",")} .*member remove ${etcdIds["cp-2"]}$`),
    /^kubectl delete node cp-2 --ignore-not-found$/,
  ].map((re) => indexOf(r, re));
  t.true(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `in order: ${order.join(", ")}\n${lines(r).join("\n")}`);
  t.deepEqual(reachesDeparted(r), [], "no call names cp-2's etcd endpoint or pod, and no kubeadm runs");
  t.is(read(r.root, "etcd/members"), `${etcdIds["cp-0"]} cp-0 ${etcdUrls["cp-0"]}\n${etcdIds["cp-1"]} cp-1 ${etcdUrls["cp-1"]}\n`);
  t.false(has(r.root, "k8s/cp-2.kubelet"), "the Node is gone");
  t.true(existsSync(nodePath(r.root, "/etc/kubernetes/admin.conf")), "the survivor is not reset");
  t.false(existsSync(nodePath(r.root, retireStateDir)), "nothing is remembered on the survivor");
  t.true(callsOf(r, "etcdctl").every((a) => a.includes(`--cert=${r.root}/etc/kubernetes/pki/etcd/healthcheck-client.crt`)), "etcdctl with the survivor's healthcheck-client certificate");
  t.regex(r.stderr, /\[cp-2\] retire: retiring cp-2 from cp-0 \(nothing runs on cp-2's machine: it may be unreachable\)\n/);
  t.regex(r.stderr, /\[cp-2\] retire: etcd healthy: member cp-2 \(fd422379fda50e48\) may leave; 2 member\(s\) remain, quorum 2, all healthy\n/);
  t.regex(r.stderr, /\[cp-2\] retire: cp-2 retired from cp-0: drained, removed from etcd and the cluster/);
  everyLineNames(t, r, "cp-2", "retire");

  const again = await run(t, script, { root: r.root, node: "cp-0" });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(writes(again), []);
  t.regex(again.stderr, /etcd member cp-2 is already absent from the cluster/);
  t.regex(again.stderr, /node cp-2 is already gone from the cluster: nothing to drain/);
});

test(`retire control plane from cp-0 without etcdctl on the host: etcdctl runs in cp-0's etcd pod, never cp-2's, and removes the member itself (kubeadm's phase would remove cp-0's) ${STUBS}`, async (t) => {
  const r = await run(t, fromCp0(), { node: "cp-0", seed: { ...deadCp2, more: (root) => rmSync(join(dirname(root), "bin", "etcdctl")) } });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "etcdctl"), []);
  t.deepEqual(callsOf(r, "kubeadm"), [], "no kubeadm reset phase remove-etcd-member: on cp-0 it removes cp-0's member");
  const order = [
    new RegExp(`^kubectl -n kube-system exec etcd-cp-0 -- etcdctl --endpoints=${etcdUrls["cp-1"]} .*endpoint health$`),
    /^kubectl drain cp-2/,
    new RegExp(`^kubectl -n kube-system exec etcd-cp-0 -- etcdctl --endpoints=${remaining.join(",")} .*member remove ${etcdIds["cp-2"]}$`),
    /^kubectl delete node cp-2/,
  ].map((re) => indexOf(r, re));
  t.true(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `in order: ${order.join(", ")}\n${lines(r).join("\n")}`);
  t.deepEqual(reachesDeparted(r), []);
  t.is(read(r.root, "etcd/members"), `${etcdIds["cp-0"]} cp-0 ${etcdUrls["cp-0"]}\n${etcdIds["cp-1"]} cp-1 ${etcdUrls["cp-1"]}\n`);
});

test(`retire control plane from cp-0 without the remaining endpoints: cp-0's own member names them; the dead cp-2 is still never asked ${STUBS}`, async (t) => {
  const r = await run(t, fromCp0({ remainingEndpoints: undefined, localEtcdEndpoint: etcdUrls["cp-0"] }), { node: "cp-0", seed: deadCp2 });
  t.is(r.code, 0, r.stderr);
  t.true(lines(r).some((l) => l.startsWith(`etcdctl --endpoints=${etcdUrls["cp-0"]} `) && l.endsWith("member list -w simple")));
  t.true(lines(r).some((l) => new RegExp(`^etcdctl --endpoints=${remaining.join(",")} .*member remove ${etcdIds["cp-2"]}$`).test(l)));
  t.deepEqual(reachesDeparted(r), []);
  t.false(read(r.root, "etcd/members").includes("cp-2"));
});

test(`retire control plane: a rerun after the member removal (Node deletion failed) deletes the Node only ${STUBS}`, async (t) => {
  const r = await run(t, fromCp0(), { node: "cp-0", seed: { ...deadCp2, etcd: { "cp-0": etcdUrls["cp-0"], "cp-1": etcdUrls["cp-1"] }, nodes: { ...deadCp2.nodes, "cp-2": { ready: "False", cordoned: true } } } });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(writes(r), ["kubectl drain cp-2 --ignore-daemonsets --grace-period=300 --timeout=360s --skip-wait-for-delete-timeout=60", "kubectl delete node cp-2 --ignore-not-found"]);
  t.regex(r.stderr, /etcd member cp-2: nothing to remove/);
});

test(`retire control plane run on a machine that is not cp-0 (cp-0's address reaches cp-1, or no kubelet at all): refused before any call ${STUBS}`, async (t) => {
  const wrong = await run(t, fromCp0(), { node: "cp-0", seed: { ...deadCp2, identity: "cp-1" } });
  t.not(wrong.code, 0);
  t.deepEqual(wrong.calls, [], "nothing was asked or changed");
  t.is(read(wrong.root, "etcd/members").split("\n").filter(Boolean).length, 3);
  t.regex(wrong.stderr, /\[cp-2\] retire: ERROR: refusing to retire cp-2 from this machine: its kubelet is cp-1, not cp-0/);

  const anonymous = await run(t, fromCp0(), { node: "cp-0", seed: { ...deadCp2, identity: "" } });
  t.not(anonymous.code, 0);
  t.deepEqual(anonymous.calls, []);
  t.regex(anonymous.stderr, /refusing to retire cp-2 from this machine: its kubelet is \(no kubelet credentials\), not cp-0/);
});

test(`retire control plane: refused while a remaining member is unhealthy besides the dead cp-2 (never two control planes down): no drain, no removal, no deletion ${STUBS}`, async (t) => {
  const r = await run(t, fromCp0(), { node: "cp-0", seed: { ...deadCp2, unhealthy: [etcdUrls["cp-1"], etcdUrls["cp-2"]] } });
  t.not(r.code, 0);
  t.deepEqual(writes(r), []);
  t.regex(r.stderr, /\[cp-2\] retire: https:\/\/10\.0\.2\.10:2379 is unhealthy: failed to commit proposal: context deadline exceeded\n/);
  t.regex(
    r.stderr,
    /\[cp-2\] retire: ERROR: refusing to remove etcd member cp-2 after 0s: etcd is not healthy: 1 of the 2 remaining members answer \(unhealthy: https:\/\/10\.0\.2\.10:2379; their quorum is 2\)/,
  );
  t.is(read(r.root, "etcd/members").split("\n").filter(Boolean).length, 3);
  t.false(has(r.root, "k8s/cp-2.cordoned"));
});

test(`retire control plane: a failed drain fails the step before the member removal and leaves cp-2 cordoned; the rerun finishes ${STUBS}`, async (t) => {
  const failed = await run(t, fromCp0(), { node: "cp-0", seed: { ...deadCp2, pods: { "cp-2": ["default/web-1 StatefulSet"] }, drainMode: "pdb" } });
  t.not(failed.code, 0);
  t.false(writes(failed).some((l) => /member remove|delete node/.test(l)));
  t.true(has(failed.root, "k8s/cp-2.cordoned"));
  t.is(read(failed.root, "etcd/members").split("\n").filter(Boolean).length, 3);
  t.regex(failed.stderr, /ERROR: drain of cp-2 failed .*: it keeps its etcd member and its instance is not terminated\. cp-2 stays cordoned/);

  rmSync(join(stubState(failed.root), "drain-mode"));
  const rerun = await run(t, fromCp0(), { root: failed.root, node: "cp-0" });
  t.is(rerun.code, 0, rerun.stderr);
  t.regex(rerun.stderr, /cp-2 is cordoned already/);
  t.false(read(rerun.root, "etcd/members").includes("cp-2"));
  t.false(has(rerun.root, "k8s/cp-2.kubelet"));
  t.deepEqual(reachesDeparted(rerun), []);
});

test(`retire control plane with external etcd, from cp-0: no etcd call, no kubeadm; drain and Node deletion ${STUBS}`, async (t) => {
  const r = await run(t, retireControlPlaneScript({ node: "cp-2", runsOn: "cp-0", stackedEtcd: false, drain: fastDrain }), { node: "cp-0", seed: { nodes: deadCp2.nodes } });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "etcdctl"), []);
  t.deepEqual(callsOf(r, "kubeadm"), []);
  t.false(lines(r).some((l) => / exec /.test(l)));
  t.deepEqual(writes(r), ["kubectl cordon cp-2", "kubectl drain cp-2 --ignore-daemonsets --grace-period=300 --timeout=360s --skip-wait-for-delete-timeout=60", "kubectl delete node cp-2 --ignore-not-found"]);
  t.regex(r.stderr, /external etcd: its membership does not change/);
});

test(`retire step created on cp-0: checks the machine is cp-0 with admin credentials, changes nothing; a machine that is another node fails the creation ${STUBS}`, async (t) => {
  const ok = await run(t, retireStandbyScript({ node: "cp-2", runsOn: "cp-0" }), { node: "cp-0", seed: deadCp2 });
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(ok.calls, []);
  t.regex(ok.stderr, /\[cp-2\] retire: when cp-2 leaves \(scale-down, replacement\), cp-0 retires it: nothing to do now\n/);
  const wrong = await run(t, retireStandbyScript({ node: "cp-2", runsOn: "cp-0" }), { node: "cp-0", seed: { ...deadCp2, identity: "cp-2" } });
  t.not(wrong.code, 0);
  t.regex(wrong.stderr, /refusing to retire cp-2 from this machine: its kubelet is cp-2, not cp-0/);
});

test("retireControlPlaneScript refuses a node retiring itself, remainingEndpoints with external etcd, and malformed endpoints", (t) => {
  t.throws(() => retireControlPlaneScript({ node: "cp-2", runsOn: "cp-2", stackedEtcd: true }), {
    message: "retireControlPlaneScript: cp-2 cannot retire itself; the step runs on a surviving control plane",
  });
  t.throws(() => retireControlPlaneScript({ node: "cp-2", runsOn: "cp-0", stackedEtcd: false, remainingEndpoints: remaining }), {
    message: "retireControlPlaneScript: remainingEndpoints apply to stacked etcd only (a control plane's retirement does not change external etcd)",
  });
  t.throws(() => retireControlPlaneScript({ node: "cp-2", runsOn: "cp-0", stackedEtcd: true, remainingEndpoints: ["10.0.1.10:2379"] }), {
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
