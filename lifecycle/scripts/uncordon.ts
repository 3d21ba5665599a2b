// Step "uncordon": a node back in service after its upgrade, and healthy, from a control plane. Pure.
import { nodePaths } from "../../infra/defaults";
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { controlPlaneComponents, UpgradeTimeouts } from "../defaults";
import { NodeRole } from "../upgradePlan";
import { assertNodeName, bashArray, bx, nodeFragment, timeoutsWith, versionFragment } from "./common";

const builder = "uncordonNodeScript";

export interface UncordonArgs {
  /** The control plane the step runs on (it has admin.conf). */
  runsOn: string;
  /** The node to put back in service. */
  node: string;
  role: NodeRole;
  kubernetesVersion: string;
  timeouts?: Partial<UpgradeTimeouts>;
}

/**
 * Step "uncordon". Refuses skew. Uncordons the node if it is cordoned (on a fresh cluster it is not, and nothing
 * changes), then waits — the gate the next node's upgrade waits for — until the node is Ready and reports the
 * target kubelet, and, for a control plane, its kube-apiserver, kube-controller-manager and kube-scheduler pods
 * run the target image, Running and Ready.
 */
export function uncordonNodeScript(args: UncordonArgs): string {
  assertNodeName(builder, "runsOn", args.runsOn);
  assertNodeName(builder, "node", args.node);
  const timeouts = timeoutsWith(args.timeouts);
  const components = args.role === "control-plane" ? [...controlPlaneComponents] : [];
  const body = String.raw`
RUNS_ON=${shellQuote(args.runsOn)}
${nodeFragment(args.node)}
${versionFragment(builder, { kubernetesVersion: args.kubernetesVersion, kubeconfig: nodePaths.adminKubeconfig, timeouts })}
COMPONENTS=${bashArray(components)}

check_cluster_skew
if in_maintenance; then
  log "$TARGET is held in maintenance (config maintenance): it stays cordoned"
elif node_cordoned; then
  log "uncordoning $TARGET (from $RUNS_ON)"
  timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s uncordon "$TARGET" 2>&1 | log_output || die "could not uncordon $TARGET"
else
  log "$TARGET is schedulable"
fi
# The Node reports the new kubelet once the restarted kubelet has updated its status.
kubelet_reported() { node_field '{.status.nodeInfo.kubeletVersion}' 2>/dev/null || true; }
ready_reported() { node_field '{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true; }
deadline=$((SECONDS + ${timeouts.nodeReady}))
until [ "$(ready_reported)" = True ] && [ "$(kubelet_reported)" = "v$VERSION" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    die "$TARGET is not Ready at kubelet v$VERSION after ${timeouts.nodeReady}s: Ready=$(ready_reported), kubelet $(kubelet_reported)"
  fi
  sleep "${bx("KUBEADM_HA_POLL_SECONDS:-5")}"
done
for component in "${bx("COMPONENTS[@]")}"; do
  wait_until ${timeouts.controlPlanePods} "pod $component-$TARGET to run v$VERSION, Running and Ready" pod_healthy "$component-$TARGET"
done
if [ "${bx("#COMPONENTS[@]")}" -gt 0 ]; then
  log "$TARGET Ready at v$VERSION; ${bx("COMPONENTS[*]")} Running and Ready"
else
  log "$TARGET Ready at v$VERSION"
fi
`;
  return nodeScript({ node: args.node, step: "uncordon" }, body);
}
