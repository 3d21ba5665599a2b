// Step "upgrade-control-plane": `kubeadm upgrade apply` on the first control plane, `kubeadm upgrade node` on the
// others. Pure: arguments in, bash out.
import { nodePaths } from "../../infra/defaults";
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { UpgradeTimeouts } from "../defaults";
import { apiserverManifestFragment, assertNodeName, timeoutsWith, versionFragment } from "./common";

const builder = "upgradeControlPlaneScript";

export interface UpgradeControlPlaneArgs {
  /** The control plane it runs on (already drained, its kubeadm at the target). */
  node: string;
  kubernetesVersion: string;
  /** "apply": the first control plane (`kubeadm upgrade plan`, then `kubeadm upgrade apply -y vX`); "node": the others. */
  mode: "apply" | "node";
  timeouts?: Partial<UpgradeTimeouts>;
}

/**
 * Step "upgrade-control-plane". Refuses skew (the cluster's and this control plane's version against the target).
 * Skipped when the local kube-apiserver static pod already runs the target's image tag. Needs kubeadm at the target
 * (the upgrade-kubeadm step). kubeadm's upgrade commands are idempotent, so a rerun after a failure resumes here.
 */
export function upgradeControlPlaneScript(args: UpgradeControlPlaneArgs): string {
  assertNodeName(builder, "node", args.node);
  const timeouts = timeoutsWith(args.timeouts);
  let upgrade: string;
  switch (args.mode) {
    case "apply":
      upgrade = String.raw`
log "kubeadm upgrade plan v$VERSION"
if ! timeout ${timeouts.kubeadmUpgradePlan} kubeadm upgrade plan "v$VERSION" 2>&1 | log_output; then
  die "kubeadm upgrade plan v$VERSION failed (output above)"
fi
log "kubeadm upgrade apply -y v$VERSION"
if ! timeout ${timeouts.kubeadmUpgradeApply} kubeadm upgrade apply -y "v$VERSION" 2>&1 | log_output; then
  die "kubeadm upgrade apply v$VERSION failed (output above; kubeadm rolls back a failed static pod); pulumi up runs this step again"
fi`;
      break;
    case "node":
      upgrade = String.raw`
log "kubeadm upgrade node"
if ! timeout ${timeouts.kubeadmUpgradeNode} kubeadm upgrade node 2>&1 | log_output; then
  die "kubeadm upgrade node failed (output above); pulumi up runs this step again"
fi`;
      break;
    default: {
      const never: never = args.mode;
      throw new Error(`${builder}: unknown mode ${JSON.stringify(never)}`);
    }
  }
  const body = String.raw`
MODE=${shellQuote(args.mode)}
${versionFragment(builder, { kubernetesVersion: args.kubernetesVersion, kubeconfig: nodePaths.adminKubeconfig, timeouts })}
${apiserverManifestFragment()}

check_cluster_skew
current=$(apiserver_manifest_version)
[ -n "$current" ] || die "no kube-apiserver image found in $APISERVER_MANIFEST: $NODE is not a control plane"
if [ "$current" = "v$VERSION" ]; then skip "the control plane on $NODE already runs v$VERSION"; fi
check_skew "$current" "the control plane on $NODE"
kubeadm_version=$(kubeadm version -o short 2>/dev/null || true)
if [ "$kubeadm_version" != "v$VERSION" ]; then
  die "kubeadm on $NODE is '$kubeadm_version', not v$VERSION: the upgrade-kubeadm step installs it first"
fi
log "upgrading the control plane on $NODE from $current to v$VERSION (kubeadm upgrade $MODE)"
${upgrade}
current=$(apiserver_manifest_version)
[ "$current" = "v$VERSION" ] || die "after the upgrade the kube-apiserver manifest names '$current', expected v$VERSION"
log "control plane on $NODE at v$VERSION"
`;
  return nodeScript({ node: args.node, step: "upgrade-control-plane" }, body);
}
