// Step "join": `kubeadm join` of a further control plane or a worker, then the health it must reach before the next
// node's step may run. Pure: arguments in, bash out.
import { stepTimeouts } from "../defaults";
import { nodeScript, shellQuote } from "./common";
import { nodeIdentityBash } from "./nodeIdentity";

/**
 * Where the join step puts the JoinConfiguration while kubeadm reads it. It carries the bootstrap token (and a control
 * plane's certificate key): root-only, and removed when the step ends, whatever the outcome.
 */
export const joinConfigPath = "/etc/kubeadm-ha/kubeadm-join.yaml";

/**
 * The part both roles share. Stdin: the JoinConfiguration (joinConfiguration()). Guarded by what the node shows:
 * kubelet.conf means joined; the in-progress marker means an earlier join stopped midway, which `kubeadm reset`
 * undoes before joining again (kubeadm join refuses a node with leftovers, and cannot resume). kubeadm's output
 * passes redact_kubeadm (lib.sh) before it is logged to stderr.
 */
function joinBody(): string {
  return String.raw`
CONFIG="$R"${shellQuote(joinConfigPath)}
# Present while a kubeadm join runs: a run that finds it knows an earlier join stopped midway.
IN_PROGRESS="$R/etc/kubeadm-ha/join-in-progress"
KUBELET_CONF="$R/etc/kubernetes/kubelet.conf"

# The configuration holds the bootstrap token (and a control plane's certificate key): gone when the step ends.
trap 'rm -f "$CONFIG" "$CONFIG.tmp"' EXIT
write_secret_file "$CONFIG"
[ -s "$CONFIG" ] || die "no kubeadm join configuration on stdin"
${nodeIdentityBash}
# A machine that already is another node is never reset, joined, or taken as joined under this name.
require_node_identity "join it (kubeadm reset, kubeadm join)"

run_join=1
if [ -e "$IN_PROGRESS" ]; then
  # A reset of a half-joined control plane also removes the etcd member its join may have added.
  log "an earlier kubeadm join stopped midway: kubeadm reset, then join again"
  timeout 300 kubeadm reset -f 2>&1 | redact_kubeadm | log_output || die "kubeadm reset failed"
elif [ -f "$KUBELET_CONF" ]; then
  log "already joined ($KUBELET_CONF exists): skipping kubeadm join"
  run_join=0
fi
if [ "$run_join" = 1 ]; then
  : >"$IN_PROGRESS"
  log "kubeadm join (output filtered: no token or certificate key)"
  if ! timeout ${stepTimeouts.kubeadmJoin} kubeadm join --config "$CONFIG" 2>&1 | redact_kubeadm | log_output; then
    die "kubeadm join failed (the next run resets this node and joins again)"
  fi
  rm -f "$IN_PROGRESS"
fi
`;
}

/**
 * Step "join" of a control plane. Done only when its Node is Ready and, with stacked etcd, every etcd member reports
 * healthy: the next control plane must not join (or be upgraded) while etcd is still settling a new member.
 * The Node name is the node argument (kubeadm registers it from the JoinConfiguration's nodeRegistration.name).
 */
export function joinControlPlaneScript(args: { node: string; stackedEtcd: boolean }): string {
  const etcdCheck = args.stackedEtcd
    ? String.raw`
# etcdctl exists only inside the etcd static pod; the certificate paths are the pod's own mounts.
etcd_healthy() {
  timeout 60 kubectl --kubeconfig "$ADMIN_CONF" -n kube-system exec "etcd-$NODE" -- etcdctl \
    --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
    --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key \
    endpoint health --cluster
}
wait_until ${stepTimeouts.etcdHealth} "every etcd member to report healthy" etcd_healthy
log "etcd healthy across the cluster"
`
    : "";
  const body = String.raw`${joinBody()}
ADMIN_CONF="$R/etc/kubernetes/admin.conf"
node_ready() {
  [ "$(timeout 30 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=20s get node "$NODE" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
wait_until ${stepTimeouts.nodeReady} "node $NODE to be Ready" node_ready
log "node $NODE is Ready"
${etcdCheck}`;
  return nodeScript({ node: args.node, step: "join" }, body);
}

/** Step "join" of a worker: done when the kubelet runs with the credentials the join gave it. */
export function joinWorkerScript(args: { node: string }): string {
  const body = String.raw`${joinBody()}
kubelet_running() {
  [ -f "$KUBELET_CONF" ] && timeout 30 systemctl is-active --quiet kubelet
}
wait_until ${stepTimeouts.nodeReady} "the kubelet to run with $KUBELET_CONF" kubelet_running
log "kubelet active"
`;
  return nodeScript({ node: args.node, step: "join" }, body);
}
