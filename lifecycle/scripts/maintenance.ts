// Step "maintenance": a node the operator lists in `maintenance` is cordoned and drained (create); leaving the list
// uncordons it (the same step's delete). Both run on a control plane with admin.conf. Pure: arguments in, bash out.
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { DrainSettings } from "../defaults";
import { NodeRole } from "../upgradePlan";
import { drainFragment, drainSettings } from "./drain";
import { assertNodeName, bx, nodeFragment } from "./common";

export interface MaintenanceArgs {
  /** The node to put into (or take out of) maintenance. */
  node: string;
  /** The control plane the step runs on (it has admin.conf); cp-0 in the program. */
  runsOn: string;
  /**
   * Which drain defaults apply (lifecycle/defaults.ts drainDefaults). Default "worker": `--ignore-daemonsets
   * --delete-emptydir-data --force`; a control plane drains with `--ignore-daemonsets` only.
   */
  role?: NodeRole;
  /** Overrides of the role's drain defaults (tests shorten the waits). */
  drain?: Partial<DrainSettings>;
}

function check(builder: string, args: MaintenanceArgs): void {
  assertNodeName(builder, "node", args.node);
  assertNodeName(builder, "runsOn", args.runsOn);
}

/**
 * Create of step "maintenance". Guarded by what the cluster shows: a node already cordoned with nothing left to
 * evict is left alone (no cordon, no drain); otherwise cordon (unless cordoned) and drain with the role's defaults,
 * bounded by `timeout` and retried as the upgrade's drain is. When every attempt fails, the node is uncordoned, the
 * drain's output is logged and the step fails: a half-drained node must not stay silently unschedulable. A node the
 * cluster does not know fails the step (the operator asked for a drain that cannot happen).
 */
export function maintenanceDrainScript(args: MaintenanceArgs): string {
  const builder = "maintenanceDrainScript";
  check(builder, args);
  const s = drainSettings(args.role ?? "worker", args.drain);
  const body = String.raw`
RUNS_ON=${shellQuote(args.runsOn)}
${nodeFragment(args.node)}
${drainFragment(args.node, s)}

node_exists || die "node $TARGET is not in the cluster: nothing to drain (is the name in maintenance right? has it joined?)"
cordoned=0
if node_cordoned; then cordoned=1; fi
remaining=$(node_evictable_pods) || die "cannot list the pods on $TARGET through $ADMIN_CONF"
if [ "$cordoned" = 1 ] && [ -z "$remaining" ]; then
  log "$TARGET is already cordoned and drained: nothing to do"
else
  if [ "$cordoned" = 0 ]; then
    log "cordoning $TARGET for maintenance (from $RUNS_ON)"
    timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s cordon "$TARGET" 2>&1 | log_output || die "could not cordon $TARGET"
  else
    log "$TARGET is cordoned but still runs $(printf '%s\n' "$remaining" | wc -l) evictable pod(s): draining"
  fi
  if ! drain_with_retries; then
    log "kubectl drain output:"
    printf '%s\n' "$DRAIN_OUT" | log_output
    log "uncordoning $TARGET: it keeps its remaining pods and takes new ones"
    if ! timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s uncordon "$TARGET" 2>&1 | log_output; then
      log "WARNING: could not uncordon $TARGET; run: kubectl uncordon $TARGET"
    fi
    die "drain of $TARGET for maintenance failed (kubectl exit $DRAIN_RC after $ATTEMPTS attempt(s), each bounded by ${bx("DRAIN_BOUND")}s); $TARGET is uncordoned. Fix what blocks its evictions (output above; often a PodDisruptionBudget), then run pulumi up again"
  fi
  printf '%s\n' "$DRAIN_OUT" | log_output
  log "$TARGET cordoned and drained for maintenance"
fi
# Held: the upgrade's uncordon leaves a node with this mark cordoned.
in_maintenance || set_maintenance true || die "could not mark $TARGET as in maintenance"
`;
  return nodeScript({ node: args.node, step: "maintenance" }, body);
}

/**
 * Delete of step "maintenance" (runs when the node leaves the maintenance list; Pulumi runs a delete with the inputs
 * of the create, so the arguments are the same; role and drain do not matter here). Uncordons the node if it is cordoned; a schedulable node, or one the
 * cluster no longer knows (retired meanwhile), is left alone.
 */
export function maintenanceEndScript(args: MaintenanceArgs): string {
  const builder = "maintenanceEndScript";
  check(builder, args);
  const body = String.raw`
RUNS_ON=${shellQuote(args.runsOn)}
${nodeFragment(args.node)}

if ! node_exists; then
  log "node $TARGET is not in the cluster: nothing to uncordon"
  exit 0
fi
if in_maintenance; then set_maintenance false || die "could not clear the maintenance mark of $TARGET"; fi
if node_cordoned; then
  log "maintenance over: uncordoning $TARGET (from $RUNS_ON)"
  timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s uncordon "$TARGET" 2>&1 | log_output || die "could not uncordon $TARGET"
else
  log "$TARGET is already schedulable: nothing to do"
fi
`;
  return nodeScript({ node: args.node, step: "maintenance" }, body);
}
