// Step "retire": the delete-time step that runs before a node's instance terminates (scale-down, replacement).
// Every retirement runs on a surviving control plane (cp-0), never on the departing machine, so a dead machine leaves
// too: a worker is drained and its Node deleted; a control plane gets etcd health and quorum first, drain, its
// stacked etcd member removed through the remaining members, Node deleted. Pure: arguments in, bash out.
import { nodePaths } from "../../infra/defaults";
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { nodeIdentityBash } from "../../infra/scripts/nodeIdentity";
import { DrainSettings, UpgradeTimeouts } from "../defaults";
import { assertEtcdEndpoints, assertNodeName, bashArray, bx, nodeFragment, timeoutsWith } from "./common";
import { drainFragment, drainSettings } from "./drain";
import type { EtcdClientTls } from "./etcdCommon";

/** kubeadm's certificate for health checks of a stacked member: what this node asks its etcd cluster with. */
export const stackedEtcdClientTls: EtcdClientTls = {
  cacert: "/etc/kubernetes/pki/etcd/ca.crt",
  cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
  key: "/etc/kubernetes/pki/etcd/healthcheck-client.key",
};

/** A stacked member's own client endpoint (kubeadm's etcd listens on loopback and the private IP). */
export const localEtcdEndpoint = "https://127.0.0.1:2379";

/**
 * What removeEtcdMemberScript, run on the departing node, remembers there between runs: the remaining members' endpoints (its own
 * member cannot answer once removed) and that the removal happened. kubeadm reset leaves this directory alone.
 */
export const retireStateDir = `${nodePaths.stateDir}/retire`;

/**
 * Bounds of the retirement's own commands (seconds); the drain's are drainDefaults, etcd's health wait is
 * upgradeTimeouts.etcdHealth.
 */
const retireBounds = {
  /** One etcdctl call: dial 5 s, command 20 s, killed after 60 s whatever it does. */
  etcdctl: 60,
  /** kubeadm's remove-etcd-member phase (removeEtcdMemberScript on the departing node without a host etcdctl). */
  kubeadmReset: 300,
  /**
   * `kubectl delete node`: attempts and pause. After a control plane's etcd member is gone its own apiserver fails,
   * and the load balancer may still send a request there until its health check notices (about 30 s).
   */
  deleteAttempts: 6,
  deleteDelay: 10,
} as const;

/** Deletes TARGET's Node object (bounded, retried; a Node already gone is fine). Needs ADMIN_CONF and TARGET. */
const deleteNodeBash = String.raw`# delete_target_node: TARGET's Node object deleted (a NotFound counts as deleted), bounded and retried.
delete_node_once() {
  timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s delete node "$TARGET" --ignore-not-found 2>&1 | log_output
}
delete_target_node() {
  log "deleting node $TARGET"
  retry ${retireBounds.deleteAttempts} ${retireBounds.deleteDelay} delete_node_once || die "could not delete node $TARGET through $ADMIN_CONF"
  log "node $TARGET deleted"
}`;

/**
 * retire_drain WHY CONSEQUENCE ADVICE: cordons TARGET (unless cordoned) and drains it. Important: a failed drain
 * fails the step and leaves the node cordoned — it is on its way out, and uncordoning would only let new pods land.
 */
const retireDrainBash = String.raw`
retire_drain() {
  local why=$1 consequence=$2 advice=$3
  if node_cordoned; then
    log "$TARGET is cordoned already"
  else
    log "cordoning $TARGET $why"
    timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s cordon "$TARGET" 2>&1 | log_output || die "could not cordon $TARGET"
  fi
  if ! drain_with_retries; then
    log "kubectl drain output:"
    printf '%s\n' "$DRAIN_OUT" | log_output
    die "drain of $TARGET failed (kubectl exit $DRAIN_RC after $ATTEMPTS attempt(s), each bounded by ${"$"}{DRAIN_BOUND}s): $consequence. $TARGET stays cordoned. $advice"
  fi
  printf '%s\n' "$DRAIN_OUT" | log_output
  log "$TARGET drained"
}`;

export interface RetireWorkerArgs {
  /** The departing worker. */
  node: string;
  /** The control plane the step runs on (it has admin.conf); cp-0 in the program. */
  runsOn: string;
  /** Overrides of drainDefaults.worker (tests shorten the waits). */
  drain?: Partial<DrainSettings>;
}

/**
 * Step "retire" of a worker, the delete of a step ordered before the worker instance's deletion. A Node the cluster no
 * longer has means done. Otherwise cordon (unless cordoned), drain with the worker defaults (bounded, retried), then
 * `kubectl delete node`.
 *
 * Important: a failed drain fails the step and leaves the node cordoned. Failing keeps the instance from terminating
 * with pods not yet evicted (the PodDisruptionBudgets that blocked the drain are exactly the pods that must not just
 * vanish). It stays cordoned because the node is on its way out: the next `pulumi up` drains it again, and
 * uncordoning in between would only let the scheduler place new pods on it. An operator who decides to keep the node
 * instead restores workers.count and runs `kubectl uncordon`.
 */
export function retireWorkerScript(args: RetireWorkerArgs): string {
  const builder = "retireWorkerScript";
  assertNodeName(builder, "node", args.node);
  assertNodeName(builder, "runsOn", args.runsOn);
  const s = drainSettings("worker", args.drain);
  const body = String.raw`
RUNS_ON=${shellQuote(args.runsOn)}
${nodeFragment(args.node)}
${drainFragment(args.node, s)}
${deleteNodeBash}
${retireDrainBash}

if ! node_exists; then
  log "node $TARGET is already gone from the cluster: nothing to drain or delete"
else
  retire_drain "before its instance terminates (from $RUNS_ON)" "its instance is not terminated with pods still on it" "Fix what blocks its evictions (output above; often a PodDisruptionBudget), then run pulumi up again; to keep the node instead, restore workers.count, run pulumi up and kubectl uncordon $TARGET"
  delete_target_node
fi
`;
  return nodeScript({ node: args.node, step: "retire" }, body);
}

export interface EtcdMemberRemovalArgs {
  /** The departing control plane: the step's node, and its etcd member's name (kubeadm names members after nodes). */
  node: string;
  /**
   * Client URLs of the members that stay (https://<private ip>:2379). Asked first for the membership and its health;
   * without them the step asks its own member, then remembers the others it reported for later runs.
   */
  remainingEndpoints?: string[];
  /** This node's own member (default https://127.0.0.1:2379; tests point it at a real member's port). */
  localEndpoint?: string;
  /** The client certificate etcdctl presents (default: kubeadm's healthcheck-client of the stacked member). */
  tls?: EtcdClientTls;
  /** Only `etcdHealth` is used: how long etcd may take to become healthy before the removal is refused. */
  timeouts?: Partial<UpgradeTimeouts>;
  /**
   * The surviving control plane the removal runs on, when it is not the departing node itself (the program's
   * retirement: cp-0). Then etcdctl without a host etcdctl runs inside this node's etcd pod (never the departing
   * member's), the removal is always `etcdctl member remove` asked of the remaining members (kubeadm's
   * remove-etcd-member phase removes the member of the machine it runs on: here that would be the survivor's), and
   * nothing is remembered between runs (the survivor's own member always answers). Absent: the step runs on the
   * departing node.
   */
  survivor?: string;
}

/**
 * Bash: `etcd_check_removal` and `etcd_remove_member` for the node's stacked etcd member. Needs ADMIN_CONF (used only
 * without a host etcdctl: etcdctl inside the etcd static pod, and kubeadm's remove-etcd-member phase).
 *
 * - Membership: `etcdctl member list` from the remaining members (given, else saved by an earlier run), else from the
 *   node's own member. etcdctl is the host's (the snapshot-tools step installs it); without one, the etcd pod's.
 * - Refused (the step ends) unless this member may leave: it is not the only member, no member is still joining
 *   (unstarted or a learner), and every remaining member answers `endpoint health` — then the remaining members
 *   hold quorum with room to spare. Waited for up to the etcd health bound, except the last-member refusal.
 * - Removal: `etcdctl member remove <id>` asked of the remaining members, verified by their member list; on the
 *   departing node without a host etcdctl, `kubeadm reset phase remove-etcd-member`. From a survivor (`survivor`)
 *   always etcdctl (the host's or the survivor's etcd pod's) and never a word to the departing member: it may be dead. A member already absent is left alone (and, once its
 *   own member is down, a marker written after the removal answers for it).
 */
export function etcdMemberRemovalFragment(builder: string, args: EtcdMemberRemovalArgs): string {
  assertNodeName(builder, "node", args.node);
  const remaining = args.remainingEndpoints ?? [];
  if (remaining.length > 0) assertEtcdEndpoints(builder, remaining);
  if (args.survivor !== undefined) {
    assertNodeName(builder, "survivor", args.survivor);
    if (args.survivor === args.node) throw new Error(`${builder}: the survivor the removal runs on cannot be the departing member ${args.node}`);
  }
  const local = args.localEndpoint ?? localEtcdEndpoint;
  assertEtcdEndpoints(builder, [local]);
  const tls = args.tls ?? stackedEtcdClientTls;
  const timeouts = timeoutsWith(args.timeouts);
  const t = retireBounds.etcdctl;
  // Only on the departing node itself: kubeadm's phase removes the member of the machine it runs on.
  const removeWith =
    args.survivor === undefined
      ? "# Without a host etcdctl the departing node removes itself with kubeadm's remove-etcd-member phase.\nETCD_REMOVE_WITH_ETCDCTL=$ETCD_HOST_CTL"
      : "# From a survivor always etcdctl (the host's or the survivor's etcd pod's): kubeadm's remove-etcd-member phase would\n# remove the survivor's own member.\nETCD_REMOVE_WITH_ETCDCTL=1";
  const kubeadmRemoval =
    args.survivor === undefined
      ? String.raw`  else
    log "no etcdctl on this host: kubeadm reset phase remove-etcd-member"
    timeout ${retireBounds.kubeadmReset} kubeadm reset phase remove-etcd-member --kubeconfig "$ADMIN_CONF" 2>&1 | redact_kubeadm | log_output ||
      die "kubeadm reset phase remove-etcd-member failed (output above); run pulumi up again"
`
      : "";
  return String.raw`ETCD_MEMBER=${shellQuote(args.node)}
ETCD_LOCAL_ENDPOINT=${shellQuote(local)}
ETCD_GIVEN=${bashArray(remaining)}
ETCD_CA="$R"${shellQuote(tls.cacert)}
ETCD_CERT="$R"${shellQuote(tls.cert)}
ETCD_KEY="$R"${shellQuote(tls.key)}
# Inside the etcd static pod: kubeadm mounts /etc/kubernetes/pki/etcd there at the same path.
ETCD_POD_TLS=${bashArray([`--cacert=${stackedEtcdClientTls.cacert}`, `--cert=${stackedEtcdClientTls.cert}`, `--key=${stackedEtcdClientTls.key}`])}
ETCD_HEALTH_TIMEOUT=${timeouts.etcdHealth}
# 1: the step runs on the departing member itself; 0: on a survivor (ETCD_EXEC_NODE), which never asks the departing
# member anything and keeps no state between runs.
ETCD_ON_MEMBER=${args.survivor === undefined ? 1 : 0}
ETCD_EXEC_NODE=${shellQuote(args.survivor ?? args.node)}
ETCD_RETIRE_DIR="$R"${shellQuote(retireStateDir)}
ETCD_SAVED="$ETCD_RETIRE_DIR/etcd-endpoints"
ETCD_REMOVED="$ETCD_RETIRE_DIR/etcd-member-removed"
ETCD_DETAIL=""
ETCD_HOST_CTL=0
if command -v etcdctl >/dev/null 2>&1; then ETCD_HOST_CTL=1; fi
${removeWith}

# etcd_ctl ENDPOINTS ARGS...: etcdctl (API v3, bounded) against ENDPOINTS (comma-separated) with the node's client
# certificate: the host's etcdctl, else the one inside this machine's etcd static pod (ETCD_EXEC_NODE's; kubeadm puts
# none on the host).
# A later --command-timeout in ARGS wins (health checks use 5 s: a dead member otherwise costs the full 20 s).
etcd_ctl() {
  local endpoints=$1
  shift
  if [ "$ETCD_HOST_CTL" = 1 ]; then
    timeout ${t} etcdctl --endpoints="$endpoints" --cacert="$ETCD_CA" --cert="$ETCD_CERT" \
      --key="$ETCD_KEY" --dial-timeout=5s --command-timeout=20s "$@"
  else
    timeout ${t} kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=50s -n kube-system exec "etcd-$ETCD_EXEC_NODE" -- \
      etcdctl --endpoints="$endpoints" "${bx("ETCD_POD_TLS[@]")}" --dial-timeout=5s --command-timeout=20s "$@"
  fi
}

# etcd_members_from ENDPOINTS: the membership as ENDPOINTS report it (member list -w simple: "ID, STATUS, NAME,
# PEER URLS, CLIENT URLS, IS LEARNER"; other lines, such as client warnings, are ignored). Sets ETCD_SELF_ID (empty:
# this member is not in it), ETCD_COUNT, ETCD_OTHERS (each other member's first client URL) and ETCD_JOINING
# (members not started, or learners). Fails, with etcdctl's output in ETCD_DETAIL, when nobody answers.
etcd_members_from() {
  local out line id status name clients learner
  if ! out=$(etcd_ctl "$1" member list -w simple 2>&1); then
    ETCD_DETAIL+="member list from $1: $out"$'\n'
    return 1
  fi
  ETCD_SELF_ID="" ETCD_COUNT=0 ETCD_OTHERS=() ETCD_JOINING=()
  while IFS= read -r line; do
    [[ $line =~ ^[0-9a-f]+,\  ]] || continue
    IFS='|' read -r id status name _ clients learner <<<"${bx("line//, /|")}"
    ETCD_COUNT=$((ETCD_COUNT + 1))
    if [ "$name" = "$ETCD_MEMBER" ]; then
      ETCD_SELF_ID=$id
    elif [ "$status" != started ] || [ -z "$clients" ] || [ "${bx("learner:-false")}" = true ]; then
      ETCD_JOINING+=("${bx("name:-$id")}")
    else
      ETCD_OTHERS+=("${bx("clients%%,*")}")
    fi
  done <<<"$out"
  [ "$ETCD_COUNT" -gt 0 ] || { ETCD_DETAIL+="member list from $1 listed no member: $out"$'\n'; return 1; }
}

# etcd_read_members: etcd_members_from the first source that answers, most trusted first: the remaining members
# the program gave, those an earlier run saved, this node's own member.
etcd_read_members() {
  local source
  ETCD_DETAIL=""
  if [ "${bx("#ETCD_GIVEN[@]")}" -gt 0 ]; then
    source=$(IFS=,; printf '%s' "${bx("ETCD_GIVEN[*]")}")
    if etcd_members_from "$source"; then return 0; fi
  fi
  if [ "$ETCD_ON_MEMBER" = 1 ] && [ -s "$ETCD_SAVED" ]; then
    source=$(cat "$ETCD_SAVED")
    if etcd_members_from "$source"; then return 0; fi
  fi
  etcd_members_from "$ETCD_LOCAL_ENDPOINT"
}

# etcd_removal_verdict: 0 when this member may leave now, or is already gone (ETCD_GONE=1); 1 when etcd is not
# healthy enough yet (worth waiting for); 2 when it never will be. ETCD_WHY says why not.
etcd_removal_verdict() {
  local remaining quorum healthy=0 e out unhealthy=()
  ETCD_WHY="" ETCD_GONE=0
  if ! etcd_read_members; then
    if [ "$ETCD_ON_MEMBER" = 1 ] && [ -e "$ETCD_REMOVED" ]; then
      # An earlier run removed it; its own member is down now and no other source was known to ask.
      ETCD_GONE=1
      return 0
    fi
    ETCD_WHY="no etcd member answers member list (output above)"
    return 1
  fi
  if [ -z "$ETCD_SELF_ID" ]; then
    ETCD_GONE=1
    return 0
  fi
  if [ "$ETCD_ON_MEMBER" = 1 ] && [ "${bx("#ETCD_OTHERS[@]")}" -gt 0 ]; then
    install -d -m 0700 "$ETCD_RETIRE_DIR"
    (IFS=,; printf '%s\n' "${bx("ETCD_OTHERS[*]")}") >"$ETCD_SAVED"
  fi
  remaining=$((ETCD_COUNT - 1))
  quorum=$((remaining / 2 + 1))
  if [ "$remaining" -lt 1 ]; then
    ETCD_WHY="$ETCD_MEMBER is the only etcd member: removing it would lose the cluster's data"
    return 2
  fi
  if [ "${bx("#ETCD_JOINING[@]")}" -gt 0 ]; then
    ETCD_WHY="member(s) ${bx("ETCD_JOINING[*]")} have not started or are learners (a join in progress?)"
    return 1
  fi
  for e in "${bx("ETCD_OTHERS[@]")}"; do
    if out=$(etcd_ctl "$e" --command-timeout=5s endpoint health 2>&1); then healthy=$((healthy + 1)); else unhealthy+=("$e"); fi
    ETCD_DETAIL+="$out"$'\n'
  done
  ETCD_PLAN="$remaining member(s) remain, quorum $quorum"
  if [ "$healthy" -lt "$remaining" ]; then
    ETCD_WHY="etcd is not healthy: $healthy of the $remaining remaining members answer (unhealthy: ${bx("unhealthy[*]")}; their quorum is $quorum). A member leaves only a healthy cluster: removing $ETCD_MEMBER now could cost etcd its quorum"
    return 1
  fi
  return 0
}

# etcd_check_removal: waits (bounded by ETCD_HEALTH_TIMEOUT) until this member may leave, else ends the step.
etcd_check_removal() {
  local deadline=$((SECONDS + ETCD_HEALTH_TIMEOUT)) verdict
  while :; do
    verdict=0
    etcd_removal_verdict || verdict=$?
    if [ "$verdict" = 0 ]; then break; fi
    if [ "$verdict" = 2 ]; then die "refusing to remove etcd member $ETCD_MEMBER: $ETCD_WHY"; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf '%s' "$ETCD_DETAIL" | log_output
      die "refusing to remove etcd member $ETCD_MEMBER after ${bx("ETCD_HEALTH_TIMEOUT")}s: $ETCD_WHY"
    fi
    sleep "${bx("KUBEADM_HA_POLL_SECONDS:-5")}"
  done
  if [ "$ETCD_GONE" = 1 ]; then
    log "etcd member $ETCD_MEMBER is already absent from the cluster"
  else
    printf '%s' "$ETCD_DETAIL" | log_output
    log "etcd healthy: member $ETCD_MEMBER ($ETCD_SELF_ID) may leave; $ETCD_PLAN, all healthy"
  fi
}

# etcd_remove_member: this node's member removed once etcd_check_removal allows it; a member already absent is
# left alone.
etcd_remove_member() {
  local out ask n id deadline
  etcd_check_removal
  if [ "$ETCD_GONE" = 1 ]; then
    log "etcd member $ETCD_MEMBER: nothing to remove"
    return 0
  fi
  ask=$(IFS=,; printf '%s' "${bx("ETCD_OTHERS[*]")}")
  id=$ETCD_SELF_ID
  if [ "$ETCD_REMOVE_WITH_ETCDCTL" = 1 ]; then
    log "etcdctl member remove $id ($ETCD_MEMBER), asking $ask"
    # etcd refuses a removal ("unhealthy cluster") until every member has been connected for 5 s, as after a restart
    # or a join: retried within the etcd health bound. A reply lost after the removal shows as the member's absence.
    deadline=$((SECONDS + ETCD_HEALTH_TIMEOUT))
    until out=$(etcd_ctl "$ask" member remove "$id" 2>&1); do
      ETCD_DETAIL=""
      if etcd_members_from "$ask" && [ -z "$ETCD_SELF_ID" ]; then
        out="member $id is no longer listed"
        break
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        printf '%s\n' "$out" | log_output
        die "etcdctl member remove $id ($ETCD_MEMBER) failed (output above); run pulumi up again"
      fi
      log "etcd refused the removal for now ($(printf '%s\n' "$out" | tail -n 1)); retrying"
      sleep 1
    done
    printf '%s\n' "$out" | log_output
${kubeadmRemoval}  fi
  if [ "$ETCD_ON_MEMBER" = 1 ]; then
    install -d -m 0700 "$ETCD_RETIRE_DIR"
    : >"$ETCD_REMOVED"
  fi
  if [ "$ETCD_REMOVE_WITH_ETCDCTL" = 1 ]; then
    # Asked of the remaining members only: a removed member may answer for a moment with its old view.
    for ((n = 1; n <= 5; n++)); do
      ETCD_DETAIL=""
      if etcd_members_from "$ask" && [ -z "$ETCD_SELF_ID" ]; then break; fi
      if [ "$n" = 5 ]; then
        printf '%s' "$ETCD_DETAIL" | log_output
        die "etcd still lists $ETCD_MEMBER after member remove"
      fi
      sleep 1
    done
    log "etcd member $ETCD_MEMBER removed; $ETCD_COUNT member(s) remain"
  else
    log "etcd member $ETCD_MEMBER removed"
  fi
}`;
}

/**
 * Step "retire" reduced to its etcd part, on the departing control plane: refuse unless the removal is safe, then
 * remove the node's own member (see etcdMemberRemovalFragment). The retirement runs the same functions between its
 * drain and its Node deletion; this builder exists so the removal can run alone, against a real etcd cluster.
 */
export function removeEtcdMemberScript(args: EtcdMemberRemovalArgs): string {
  const body = String.raw`
ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}
${etcdMemberRemovalFragment("removeEtcdMemberScript", args)}

etcd_remove_member
`;
  return nodeScript({ node: args.node, step: "retire" }, body);
}

/**
 * Bash: `require_survivor`: ends the step unless this machine's kubelet is RUNS_ON and it has ADMIN_CONF. Needs
 * RUNS_ON, TARGET and ADMIN_CONF.
 */
const requireSurvivorBash = String.raw`${nodeIdentityBash}
require_survivor() {
  local survivor
  survivor=$(kubelet_node_name)
  if [ "$survivor" != "$RUNS_ON" ]; then
    die "refusing to retire $TARGET from this machine: its kubelet is ${bx("survivor:-(no kubelet credentials)")}, not $RUNS_ON (the surviving control plane the retirement runs on)"
  fi
  [ -e "$ADMIN_CONF" ] || die "no $ADMIN_CONF on $RUNS_ON: the retirement needs a control plane's admin credentials"
}`;

export interface RetireControlPlaneArgs {
  /** The departing control plane. Nothing runs on its machine: it may be unreachable, or gone. */
  node: string;
  /** The surviving control plane the step runs on (admin.conf, a stacked etcd member of its own); cp-0 in the program. */
  runsOn: string;
  /** Stacked etcd: the node's member is removed. External etcd: the etcd cluster is not touched. */
  stackedEtcd: boolean;
  /**
   * Stacked etcd: client URLs of the members that stay (see EtcdMemberRemovalArgs). Without them the survivor asks its
   * own member, which stays.
   */
  remainingEndpoints?: string[];
  /** Overrides of drainDefaults.controlPlane (tests shorten the waits). */
  drain?: Partial<DrainSettings>;
  /** Only `etcdHealth` is used (the wait for a healthy etcd before the removal is refused). */
  timeouts?: Partial<UpgradeTimeouts>;
  /** Tests point the survivor's own member elsewhere (default https://127.0.0.1:2379). */
  localEtcdEndpoint?: string;
}

/**
 * Step "retire" of a control plane, run on a surviving control plane (runsOn, cp-0) before the departing node's
 * instance terminates. It never connects to the departing machine, so a dead or unreachable one leaves as a live one
 * does. In this order:
 * 0. identity: refuse unless this machine's kubelet is runsOn (an address that reaches another machine would otherwise
 *    act from there), and the departing node is never runsOn;
 * 1. etcd (stacked): refuse unless its member may leave: every remaining member healthy and quorum kept by them (the
 *    departing member's own health does not count: it may be dead). Important: never more than one control plane
 *    down — a retirement starts only when every control plane that stays is healthy;
 * 2. drain it with the control-plane defaults (bounded; --skip-wait-for-delete-timeout lets the drain of a NotReady
 *    node finish; a failed drain fails the step and leaves the node cordoned, as for a worker);
 * 3. etcd (stacked): remove its member with `etcdctl member remove`, asked of the remaining members;
 * 4. `kubectl delete node`.
 * What the departing machine did for itself (`kubeadm reset -f`) is not done: on an instance that terminates next
 * there is nothing to reset; a static host that is kept is reset by its operator before reuse (README). Its etcd,
 * removed from the cluster, stops; its apiserver is off the load balancer (the target goes before this step).
 * Idempotent: each phase is guarded by what it observes (member absent, Node absent), so a rerun after a failure
 * skips what is done and an already retired node costs a member list and a Node lookup.
 */
export function retireControlPlaneScript(args: RetireControlPlaneArgs): string {
  const builder = "retireControlPlaneScript";
  assertNodeName(builder, "node", args.node);
  assertNodeName(builder, "runsOn", args.runsOn);
  if (args.runsOn === args.node) throw new Error(`${builder}: ${args.node} cannot retire itself; the step runs on a surviving control plane`);
  if (!args.stackedEtcd && (args.remainingEndpoints?.length ?? 0) > 0) {
    throw new Error(`${builder}: remainingEndpoints apply to stacked etcd only (a control plane's retirement does not change external etcd)`);
  }
  const s = drainSettings("control-plane", args.drain);
  const etcd = args.stackedEtcd
    ? etcdMemberRemovalFragment(builder, {
        node: args.node,
        remainingEndpoints: args.remainingEndpoints,
        localEndpoint: args.localEtcdEndpoint,
        timeouts: args.timeouts,
        survivor: args.runsOn,
      })
    : "";
  const body = String.raw`
RUNS_ON=${shellQuote(args.runsOn)}
STACKED_ETCD=${args.stackedEtcd ? 1 : 0}
${nodeFragment(args.node)}
${drainFragment(args.node, s)}
${deleteNodeBash}
${retireDrainBash}
${etcd}

${requireSurvivorBash}
# 0. Important: the retirement acts from the survivor only; nothing below reaches the departing machine.
require_survivor
log "retiring $TARGET from $RUNS_ON (nothing runs on $TARGET's machine: it may be unreachable)"
# 1. etcd may lose this member (checked again right before the removal: the drain takes minutes).
if [ "$STACKED_ETCD" = 1 ]; then
  etcd_check_removal
else
  log "external etcd: its membership does not change"
fi
# 2. drain
present=0
if node_exists; then present=1; fi
if [ "$present" = 1 ]; then
  retire_drain "before it leaves the control plane (from $RUNS_ON)" "it keeps its etcd member and its instance is not terminated" "Fix what blocks its evictions (output above), then run pulumi up again; to keep the node instead, restore controlPlane.count, run pulumi up and kubectl uncordon $TARGET"
else
  log "node $TARGET is already gone from the cluster: nothing to drain"
fi
# 3. etcd member
if [ "$STACKED_ETCD" = 1 ]; then etcd_remove_member; fi
# 4. Node object
if [ "$present" = 1 ]; then delete_target_node; fi
log "$TARGET retired from $RUNS_ON: drained, removed from etcd and the cluster (a host that is kept needs kubeadm reset -f before reuse)"
`;
  return nodeScript({ node: args.node, step: "retire" }, body);
}

/**
 * The create of a control plane's retire step (on runsOn, after the node joined): checks that the machine the step
 * reaches is runsOn with admin credentials, so a wrong address shows at creation rather than when the node leaves.
 * The step exists for its delete, retireControlPlaneScript, which runs when the node leaves (scale-down, replacement).
 */
export function retireStandbyScript(args: { node: string; runsOn: string }): string {
  const builder = "retireStandbyScript";
  assertNodeName(builder, "node", args.node);
  assertNodeName(builder, "runsOn", args.runsOn);
  if (args.runsOn === args.node) throw new Error(`${builder}: ${args.node} cannot retire itself; the step runs on a surviving control plane`);
  const body = String.raw`
RUNS_ON=${shellQuote(args.runsOn)}
ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}
TARGET=${shellQuote(args.node)}
${requireSurvivorBash}

require_survivor
log "when $TARGET leaves (scale-down, replacement), $RUNS_ON retires it: nothing to do now"
`;
  return nodeScript({ node: args.node, step: "retire" }, body);
}
