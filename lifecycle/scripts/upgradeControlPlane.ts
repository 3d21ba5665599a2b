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
  /** The control plane it runs on (already drained, but a lone control plane without workers is drained after: upgradePlan.ts; its kubeadm at the target). */
  node: string;
  kubernetesVersion: string;
  /** "apply": the first control plane (`kubeadm upgrade plan`, then `kubeadm upgrade apply -y vX`); "node": the others. */
  mode: "apply" | "node";
  /**
   * The release kubeadm init/join built this node at (its bootstrap record, x.y.z). A node built at the target and
   * never upgraded has no upgrade record, and needs none: init and join finished the node themselves.
   */
  builtAt: string;
  timeouts?: Partial<UpgradeTimeouts>;
}

/**
 * Written only after `kubeadm upgrade apply|node` exits 0 and every component manifest names the target: the target
 * on its first line, then the sha256 of each file kubeadm wrote for it (the kube-apiserver, kube-controller-manager
 * and kube-scheduler manifests, etcd's where it runs stacked, the kubelet configuration).
 */
export const controlPlaneUpgradeRecord = `${nodePaths.stateDir}/upgrade-control-plane`;
/** What kubeadm upgrade writes, in the order it writes them; the first three name the Kubernetes version. */
const upgradedFiles = {
  components: ["kube-apiserver", "kube-controller-manager", "kube-scheduler"],
  manifestsDir: "/etc/kubernetes/manifests",
  kubeletConfig: "/var/lib/kubelet/config.yaml",
};

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
 * Important: "done" is what kubeadm finished, never one manifest. kubeadm writes etcd, then kube-apiserver, then
 * controller-manager and scheduler, then the kubelet configuration (and, on cp-0, kubeadm-config early): a failure
 * midway leaves some at the target. So the step skips only when the upgrade record (controlPlaneUpgradeRecord,
 * written after kubeadm exits 0) names the target, every file it recorded is unchanged, every component manifest
 * names the target and, on the first control plane, kubeadm-config does too; or when the node was built at the
 * target (builtAt) and has no record, its manifests at the target. Anything else runs kubeadm again, which is safe at
 * the same version (a node upgraded before this record existed does so once). On the first control plane, feature
 * gates the target's kubeadm no longer knows are removed from kubeadm-config first (removedFeatureGates). Needs
 * kubeadm at the target (the upgrade-kubeadm step).
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
  if (!/^\d+\.\d+\.\d+$/.test(args.builtAt)) throw new Error(`${builder}: builtAt must be x.y.z; got ${JSON.stringify(args.builtAt)}`);
  const removedGates = featureGatesRemovedBy(args.kubernetesVersion);
  const body = String.raw`
MODE=${shellQuote(args.mode)}
BUILT_AT=${shellQuote(`v${args.builtAt}`)}
RECORD="$R"${shellQuote(controlPlaneUpgradeRecord)}
MANIFESTS="$R"${shellQuote(upgradedFiles.manifestsDir)}
KUBELET_CONFIG="$R"${shellQuote(upgradedFiles.kubeletConfig)}
COMPONENTS=(${upgradedFiles.components.join(" ")})
# components_behind: the component manifests that do not name v$VERSION (missing ones included), space-separated.
components_behind() {
  local c tag lagging=()
  for c in "${"$"}{COMPONENTS[@]}"; do
    tag=""
    [ -f "$MANIFESTS/$c.yaml" ] && tag=$(tr -d '"' <"$MANIFESTS/$c.yaml" | sed -n -E "s#^[[:space:]]*image:[[:space:]]*[^[:space:]]*/$c:(v[^[:space:]@]+).*#\1#p" | head -n 1)
    [ "$tag" = "v$VERSION" ] || lagging+=("$c")
  done
  printf '%s' "${"$"}{lagging[*]}"
}
# record_state: "finished" when the record names v$VERSION and every file it lists is as kubeadm left it; "none"
# without a record; otherwise what differs.
record_state() {
  if [ ! -f "$RECORD" ]; then echo none; return; fi
  local recorded
  recorded=$(head -n 1 "$RECORD")
  if [ "$recorded" != "v$VERSION" ]; then echo "it names '$recorded'"; return; fi
  if ! tail -n +2 "$RECORD" | sha256sum --check --status 2>/dev/null; then echo "a file kubeadm wrote has changed since"; return; fi
  echo finished
}
# write_record: after kubeadm exited 0, the target and the sha256 of every file it wrote for it (atomically).
write_record() {
  local files=() c
  for c in "${"$"}{COMPONENTS[@]}"; do files+=("$MANIFESTS/$c.yaml"); done
  if [ -f "$MANIFESTS/etcd.yaml" ]; then files+=("$MANIFESTS/etcd.yaml"); fi
  if [ -f "$KUBELET_CONFIG" ]; then files+=("$KUBELET_CONFIG"); fi
  mkdir -p "$(dirname "$RECORD")"
  { echo "v$VERSION"; sha256sum "${"$"}{files[@]}"; } >"$RECORD.tmp"
  mv "$RECORD.tmp" "$RECORD"
}
${versionFragment(builder, { kubernetesVersion: args.kubernetesVersion, kubeconfig: nodePaths.adminKubeconfig, timeouts })}
${apiserverManifestFragment()}
${clusterConfigurationFragment(removedGates)}
${nodeIdentityBash}

require_node_identity "upgrade its control plane (kubeadm upgrade $MODE)"
check_cluster_skew
current=$(apiserver_manifest_version)
[ -n "$current" ] || die "no kube-apiserver image found in $APISERVER_MANIFEST: $NODE is not a control plane"
stored="v$VERSION"
if [ "$MODE" = apply ]; then
  drop_removed_feature_gates
  # Important: kubeadm upgrade node on the other control planes takes its target from kubeadm-config.
  stored=$(cluster_configuration_version) || die "cannot read kubeadm-config through $KUBECONFIG_FILE"
fi
behind=$(components_behind)
state=$(record_state)
if [ -z "$behind" ] && [ "$stored" = "v$VERSION" ]; then
  if [ "$state" = finished ]; then skip "kubeadm upgrade $MODE v$VERSION finished on $NODE (its record, every component manifest and kubeadm-config name v$VERSION)"; fi
  if [ "$state" = none ] && [ "$BUILT_AT" = "v$VERSION" ]; then skip "the control plane on $NODE was built at v$VERSION by kubeadm and never upgraded"; fi
fi
if [ "$current" = "v$VERSION" ]; then
  why="the upgrade record: $state"
  [ "$state" = none ] && why="no record that kubeadm upgrade $MODE v$VERSION finished here (it failed midway, or ran before this record existed)"
  [ -n "$behind" ] && why="$why; not at v$VERSION: $behind"
  [ "$stored" = "v$VERSION" ] || why="$why; kubeadm-config names '$stored'"
  log "the kube-apiserver manifest names v$VERSION, but $why: kubeadm upgrade $MODE runs again (safe at the same version)"
fi
[ "$current" = "v$VERSION" ] || check_skew "$current" "the control plane on $NODE"
kubeadm_version=$(kubeadm version -o short 2>/dev/null || true)
if [ "$kubeadm_version" != "v$VERSION" ]; then
  die "kubeadm on $NODE is '$kubeadm_version', not v$VERSION: the upgrade-kubeadm step installs it first"
fi
log "upgrading the control plane on $NODE from $current to v$VERSION (kubeadm upgrade $MODE)"
${upgrade}
behind=$(components_behind)
[ -z "$behind" ] || die "kubeadm upgrade $MODE exited 0, but these manifests do not name v$VERSION: $behind"
write_record
log "control plane on $NODE at v$VERSION (recorded in $RECORD)"
`;
  return nodeScript({ node: args.node, step: "upgrade-control-plane" }, body);
}
