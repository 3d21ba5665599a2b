// Step "upgrade-control-plane": `kubeadm upgrade apply` on the first control plane, `kubeadm upgrade node` on the
// others. Pure: arguments in, bash out.
import { nodePaths } from "../../infra/defaults";
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { nodeIdentityBash } from "../../infra/scripts/nodeIdentity";
import { featureGatesRemovedBy } from "../../infra/scripts/kubeadmConfig";
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
 * Bash: cluster_configuration (kubeadm-config's ClusterConfiguration), cluster_configuration_version, and
 * drop_removed_feature_gates, which removes REMOVED_GATES from its featureGates (kubeadm marshals the map in block
 * style, two-space indented) and writes the ConfigMap back only when something was removed. Needs KUBECONFIG_FILE.
 */
export function clusterConfigurationFragment(removedGates: string[]): string {
  return String.raw`REMOVED_GATES=(${removedGates.map(shellQuote).join(" ")})
cluster_configuration() {
  timeout 60 kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout=30s -n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}'
}
cluster_configuration_version() {
  local config
  config=$(cluster_configuration) || return 1
  printf '%s\n' "$config" | sed -n -E 's/^kubernetesVersion:[[:space:]]*"?([^"[:space:]]+).*/\1/p' | head -n 1
}
drop_removed_feature_gates() {
  [ "${"$"}{#REMOVED_GATES[@]}" -gt 0 ] || return 0
  local config cleaned data file
  config=$(cluster_configuration) || die "cannot read kubeadm-config through $KUBECONFIG_FILE"
  cleaned=$(printf '%s\n' "$config" | awk -v gates="${"$"}{REMOVED_GATES[*]}" '
    BEGIN { n = split(gates, g, " "); for (i = 1; i <= n; i++) drop[g[i]] = 1 }
    function flush() { if (kept != "") printf "featureGates:\n%s", kept; kept = ""; in_gates = 0 }
    /^featureGates:[[:space:]]*$/ { in_gates = 1; kept = ""; next }
    in_gates && /^[[:space:]]+[^[:space:]]+:/ { key = $1; sub(/:$/, "", key); if (!(key in drop)) kept = kept $0 "\n"; next }
    in_gates { flush() }
    { print }
    END { if (in_gates) flush() }')
  if [ "$cleaned" = "$config" ]; then return 0; fi
  log "removing feature gates that kubeadm v$VERSION no longer knows from kubeadm-config: ${"$"}{REMOVED_GATES[*]}"
  file=$(mktemp)
  printf '%s\n' "$cleaned" >"$file"
  data=$(timeout 60 kubectl --kubeconfig "$KUBECONFIG_FILE" create configmap kubeadm-config --from-file=ClusterConfiguration="$file" --dry-run=client -o 'jsonpath={.data}') || { rm -f "$file"; die "cannot encode the cleaned kubeadm-config"; }
  printf '{"data":%s}\n' "$data" >"$file"
  if ! timeout 60 kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout=30s -n kube-system patch configmap kubeadm-config --type=merge --patch-file "$file" 2>&1 | log_output; then
    rm -f "$file"
    die "could not write kubeadm-config without ${"$"}{REMOVED_GATES[*]}"
  fi
  rm -f "$file"
}`;
}

/**
 * Step "upgrade-control-plane". Refuses skew (the cluster's and this control plane's version against the target).
 * Skipped when the local kube-apiserver static pod already runs the target's image tag, and, on the first control
 * plane, kubeadm-config names the target too. There, feature gates the target's kubeadm no longer knows are removed
 * from kubeadm-config first (removedFeatureGates). Needs kubeadm at the target
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
  const removedGates = featureGatesRemovedBy(args.kubernetesVersion);
  const body = String.raw`
MODE=${shellQuote(args.mode)}
${versionFragment(builder, { kubernetesVersion: args.kubernetesVersion, kubeconfig: nodePaths.adminKubeconfig, timeouts })}
${apiserverManifestFragment()}
${clusterConfigurationFragment(removedGates)}
${nodeIdentityBash}

require_node_identity "upgrade its control plane (kubeadm upgrade $MODE)"
check_cluster_skew
current=$(apiserver_manifest_version)
[ -n "$current" ] || die "no kube-apiserver image found in $APISERVER_MANIFEST: $NODE is not a control plane"
if [ "$MODE" = apply ]; then
  drop_removed_feature_gates
  # Important: kubeadm upgrade node on the other control planes takes its target from kubeadm-config, which apply
  # writes last. A manifest at the target with kubeadm-config behind means apply died half-way: run it again.
  stored=$(cluster_configuration_version) || die "cannot read kubeadm-config through $KUBECONFIG_FILE"
  if [ "$current" = "v$VERSION" ] && [ "$stored" = "v$VERSION" ]; then skip "the control plane on $NODE already runs v$VERSION and kubeadm-config names it"; fi
  if [ "$current" = "v$VERSION" ]; then log "the kube-apiserver manifest names v$VERSION but kubeadm-config names '$stored': kubeadm upgrade apply runs again (it is idempotent)"; fi
elif [ "$current" = "v$VERSION" ]; then
  skip "the control plane on $NODE already runs v$VERSION"
fi
[ "$current" = "v$VERSION" ] || check_skew "$current" "the control plane on $NODE"
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
