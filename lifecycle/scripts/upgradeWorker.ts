// Step "upgrade" of a worker (already drained): every phase of the worker's upgrade, on the worker. Pure.
import { nodeScript } from "../../infra/scripts/common";
import { nodeIdentityBash } from "../../infra/scripts/nodeIdentity";
import { UpgradeTimeouts } from "../defaults";
import { assertNodeName, bootstrapLeftoversFragment, kubeletKubeconfig, packagesFragment, timeoutsWith, versionFragment } from "./common";

const builder = "upgradeWorkerScript";

/**
 * Step "upgrade" (worker). Refuses skew (the cluster's, kubeadm's and the kubelet's version against the target) and
 * refuses while the apiserver is still on an older minor (a kubelet must never be newer than its apiserver).
 * Skipped when kubeadm, kubelet and kubectl are the target, held, and the kubelet restarted. Phases, each guarded
 * by what the node shows: 1. kubeadm (apt source on a minor change, unhold, install, hold) unless already the
 * target; 2. `kubeadm upgrade node` (the kubelet's config) unless the kubelet is already the target; 3. kubelet
 * and kubectl, daemon-reload, kubelet restart.
 */
export function upgradeWorkerScript(args: { node: string; kubernetesVersion: string; packageRepository?: string; timeouts?: Partial<UpgradeTimeouts> }): string {
  assertNodeName(builder, "node", args.node);
  const timeouts = timeoutsWith(args.timeouts);
  const body = String.raw`
${versionFragment(builder, { kubernetesVersion: args.kubernetesVersion, kubeconfig: kubeletKubeconfig, timeouts })}
${packagesFragment(args.kubernetesVersion, args.packageRepository)}

${nodeIdentityBash}
require_node_identity "upgrade it (kubeadm, kubeadm upgrade node, kubelet restart)"
${bootstrapLeftoversFragment()}
check_cluster_skew
if [ "$(installed_kubeadm)" = "v$VERSION" ] && held kubeadm && kubelet_at_target; then
  skip "kubeadm, kubelet and kubectl already v$VERSION, held, kubelet restarted"
fi
read -r _ cluster_minor _ <<<"$(semver_parts "$CLUSTER_VERSION")"
if [ "$cluster_minor" -lt "$TARGET_MINOR" ]; then
  die "the apiserver is still at $CLUSTER_VERSION: a kubelet must never be newer than its apiserver (every control plane upgrades first)"
fi

log "phase 1/3: kubeadm"
upgrade_kubeadm_package

log "phase 2/3: kubeadm upgrade node"
if [ "$(installed_kubelet)" = "v$VERSION" ] || [ -e "$KUBELET_RESTART_PENDING" ]; then
  log "the kubelet package is already being moved to v$VERSION: kubeadm upgrade node ran before it"
elif ! timeout ${timeouts.kubeadmUpgradeNode} kubeadm upgrade node 2>&1 | log_output; then
  die "kubeadm upgrade node failed (output above); pulumi up runs this step again"
fi

log "phase 3/3: kubelet and kubectl"
upgrade_kubelet_packages
`;
  return nodeScript({ node: args.node, step: "upgrade" }, body);
}
