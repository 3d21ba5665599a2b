// Step "drain": cordon and drain one node before its upgrade, from a control plane. Pure: arguments in, bash out.
import { nodePaths } from "../../infra/defaults";
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { DrainSettings, drainDefaults, UpgradeTimeouts } from "../defaults";
import { NodeRole } from "../upgradePlan";
import { assertNodeName, bashArray, bx, nodeFragment, timeoutsWith, versionFragment } from "./common";

const builder = "drainNodeScript";

export interface DrainArgs {
  /** The control plane the step runs on (it has admin.conf). */
  runsOn: string;
  /** The node to drain. */
  node: string;
  role: NodeRole;
  kubernetesVersion: string;
  /** Overrides of drainDefaults[role] (tests shorten the waits). */
  drain?: Partial<DrainSettings>;
  timeouts?: Partial<UpgradeTimeouts>;
}

/**
 * Whether a drain with these settings finishes on a NotReady node: the attempt after the one that evicted its pods
 * must start after their skip point (lifecycle/defaults.ts skipWaitForDeleteTimeoutSeconds). The defaults satisfy it.
 */
export function drainsNotReadyNodes(s: DrainSettings): boolean {
  return s.attempts > 1 && s.skipWaitForDeleteTimeoutSeconds + s.gracePeriodSeconds < s.timeoutSeconds + s.retryDelaySeconds;
}

/** The drain settings of a role with overrides, checked. */
export function drainSettings(role: NodeRole, overrides?: Partial<DrainSettings>): DrainSettings {
  const base = role === "worker" ? drainDefaults.worker : drainDefaults.controlPlane;
  const s = { ...base, ...(overrides ?? {}) };
  for (const key of ["timeoutSeconds", "gracePeriodSeconds", "retryDelaySeconds", "killAfterSeconds"] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 0) throw new Error(`${builder}: drain.${key} must be a whole number >= 0; got ${s[key]}`);
  }
  if (!Number.isInteger(s.skipWaitForDeleteTimeoutSeconds) || s.skipWaitForDeleteTimeoutSeconds < 1) {
    throw new Error(`${builder}: drain.skipWaitForDeleteTimeoutSeconds must be a whole number >= 1; got ${s.skipWaitForDeleteTimeoutSeconds}`);
  }
  if (!Number.isInteger(s.attempts) || s.attempts < 1) throw new Error(`${builder}: drain.attempts must be a whole number >= 1; got ${s.attempts}`);
  return s;
}

/** The `kubectl drain` arguments for a node. */
export function drainArguments(node: string, s: DrainSettings): string[] {
  return [
    "drain",
    node,
    "--ignore-daemonsets",
    ...(s.deleteEmptydirData ? ["--delete-emptydir-data"] : []),
    ...(s.force ? ["--force"] : []),
    `--grace-period=${s.gracePeriodSeconds}`,
    `--timeout=${s.timeoutSeconds}s`,
    `--skip-wait-for-delete-timeout=${s.skipWaitForDeleteTimeoutSeconds}`,
  ];
}

/**
 * Bash: DRAIN_ARGS and `drain_with_retries`, the bounded drain every step that drains shares (upgrade, maintenance,
 * retirement). Up to `attempts` `kubectl drain`s, each bounded by `timeout` (--timeout plus killAfterSeconds), then,
 * if enabled, one with `--disable-eviction`. Returns 0 once drained; DRAIN_OUT holds the last attempt's output and
 * DRAIN_RC its exit status (124: timed out). What a failure means for the node (uncordon or stay cordoned) is the
 * caller's decision. Needs ADMIN_CONF.
 */
export function drainFragment(node: string, s: DrainSettings): string {
  return String.raw`DRAIN_ARGS=${bashArray(drainArguments(node, s))}
DRAIN_BOUND=${s.timeoutSeconds + s.killAfterSeconds}
ATTEMPTS=${s.attempts}
RETRY_DELAY=${s.retryDelaySeconds}
DISABLE_EVICTION=${s.disableEviction ? 1 : 0}

# run_drain [EXTRA...]: one bounded kubectl drain; its combined output in DRAIN_OUT, its exit status returned.
DRAIN_OUT=""
DRAIN_RC=0
run_drain() {
  local rc=0
  DRAIN_OUT=$(timeout "$DRAIN_BOUND" kubectl --kubeconfig "$ADMIN_CONF" "${bx("DRAIN_ARGS[@]")}" "$@" 2>&1) || rc=$?
  return "$rc"
}
# drain_with_retries: up to ATTEMPTS bounded drains, then the optional --disable-eviction one; 0 once drained.
drain_with_retries() {
  local attempt
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    log "kubectl ${bx("DRAIN_ARGS[*]")} (attempt $attempt/$ATTEMPTS, bounded by ${bx("DRAIN_BOUND")}s)"
    DRAIN_RC=0
    run_drain || DRAIN_RC=$?
    if [ "$DRAIN_RC" = 0 ]; then return 0; fi
    log "drain attempt $attempt/$ATTEMPTS failed (exit $DRAIN_RC)"
    if [ "$attempt" -lt "$ATTEMPTS" ]; then sleep "$RETRY_DELAY"; fi
  done
  if [ "$DISABLE_EVICTION" = 1 ]; then
    log "evictions did not finish: one more attempt with --disable-eviction (deletes pods, bypassing PodDisruptionBudgets)"
    DRAIN_RC=0
    run_drain --disable-eviction || DRAIN_RC=$?
    if [ "$DRAIN_RC" = 0 ]; then return 0; fi
  fi
  return 1
}`;
}

/**
 * Step "drain". Refuses skew (the cluster's and the node's kubelet version against the target). Skipped when the
 * node's kubelet already reports the target: nothing is drained on a fresh cluster, nor again once a node is done.
 * Otherwise cordon, then `kubectl drain` (bounded by `timeout`, up to `attempts` times). When every attempt fails
 * (and the optional `--disable-eviction` attempt, if enabled, too): uncordon the node, print the drain's output and
 * fail — the chain stops there and later nodes stay untouched.
 */
export function drainNodeScript(args: DrainArgs): string {
  assertNodeName(builder, "runsOn", args.runsOn);
  assertNodeName(builder, "node", args.node);
  const s = drainSettings(args.role, args.drain);
  const timeouts = timeoutsWith(args.timeouts);
  const body = String.raw`
RUNS_ON=${shellQuote(args.runsOn)}
${nodeFragment(args.node)}
${versionFragment(builder, { kubernetesVersion: args.kubernetesVersion, kubeconfig: nodePaths.adminKubeconfig, timeouts })}
${drainFragment(args.node, s)}

check_cluster_skew
kubelet=$(target_kubelet_version)
if [ "$kubelet" = "v$VERSION" ]; then skip "$TARGET's kubelet already reports v$VERSION, so it is not drained"; fi
check_skew "$kubelet" "node $TARGET's kubelet"

log "cordoning $TARGET (from $RUNS_ON)"
timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s cordon "$TARGET" 2>&1 | log_output || die "could not cordon $TARGET"
drained=0
if drain_with_retries; then drained=1; fi
rc=$DRAIN_RC
if [ "$drained" = 0 ]; then
  log "kubectl drain output:"
  printf '%s\n' "$DRAIN_OUT" | log_output
  log "uncordoning $TARGET: it keeps its remaining pods and takes new ones; later nodes stay untouched"
  if ! timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s uncordon "$TARGET" 2>&1 | log_output; then
    log "WARNING: could not uncordon $TARGET; run: kubectl uncordon $TARGET"
  fi
  if [ "$rc" = 124 ]; then
    die "drain of $TARGET timed out after ${bx("DRAIN_BOUND")}s; $TARGET is uncordoned. Fix what blocks its evictions (output above; often a PodDisruptionBudget), then run pulumi up again: the upgrade resumes at this step"
  fi
  die "drain of $TARGET failed (kubectl exit $rc, $ATTEMPTS attempts); $TARGET is uncordoned. Fix what blocks its evictions (output above; often a PodDisruptionBudget), then run pulumi up again: the upgrade resumes at this step"
fi
printf '%s\n' "$DRAIN_OUT" | log_output
log "$TARGET drained"
`;
  return nodeScript({ node: args.node, step: "drain" }, body);
}
