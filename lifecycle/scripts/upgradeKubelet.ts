// Step "upgrade-kubelet" of a control plane: kubelet and kubectl at the target, kubelet restarted. Pure.
import { nodePaths } from "../../infra/defaults";
import { nodeScript } from "../../infra/scripts/common";
import { nodeIdentityBash } from "../../infra/scripts/nodeIdentity";
import { UpgradeTimeouts } from "../defaults";
import { apiserverManifestFragment, assertNodeName, packagesFragment, timeoutsWith, versionFragment } from "./common";

const builder = "upgradeKubeletScript";

/**
 * Step "upgrade-kubelet" (control plane). Refuses skew (the cluster's and this kubelet's version against the
 * target). Skipped when kubelet and kubectl are the target, held, and no restart is pending. Refuses to run before
 * this node's control plane runs the target: a kubelet must never be newer than its apiserver. Then unhold, install
 * the exact pins, hold, `systemctl daemon-reload`, restart the kubelet (a pending marker makes an interrupted
 * restart happen on the next run).
 */
export function upgradeKubeletScript(args: { node: string; kubernetesVersion: string; packageRepository?: string; timeouts?: Partial<UpgradeTimeouts> }): string {
  assertNodeName(builder, "node", args.node);
  const timeouts = timeoutsWith(args.timeouts);
  const body = String.raw`
${versionFragment(builder, { kubernetesVersion: args.kubernetesVersion, kubeconfig: nodePaths.adminKubeconfig, timeouts })}
${packagesFragment(args.kubernetesVersion, args.packageRepository)}
${apiserverManifestFragment()}
${nodeIdentityBash}

require_node_identity "upgrade its kubelet"
check_cluster_skew
if kubelet_at_target; then skip "kubelet and kubectl already v$VERSION, held, kubelet restarted"; fi
control_plane=$(apiserver_manifest_version)
if [ "$control_plane" != "v$VERSION" ]; then
  die "the control plane on $NODE runs '$control_plane', not v$VERSION: its kubelet must never be newer than its apiserver (upgrade-control-plane runs first)"
fi
upgrade_kubelet_packages
`;
  return nodeScript({ node: args.node, step: "upgrade-kubelet" }, body);
}
