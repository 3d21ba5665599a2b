// Step "upgrade-kubeadm" of a control plane: the kubeadm package at the target (and the apt source on the target's
// minor). Pure: arguments in, bash out.
import { nodePaths } from "../../infra/defaults";
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { nodeIdentityBash } from "../../infra/scripts/nodeIdentity";
import { UpgradeTimeouts } from "../defaults";
import { assertNodeName, bootstrapLeftoversFragment, etcdFragment, EtcdHealthTarget, packagesFragment, timeoutsWith, versionFragment } from "./common";

const builder = "upgradeKubeadmScript";

export interface UpgradeKubeadmArgs {
  /** The control plane it runs on. */
  node: string;
  kubernetesVersion: string;
  /** config packages.repository (default pkgs.k8s.io). */
  packageRepository?: string;
  /**
   * etcd health to require before anything changes on this node; set for every control plane after the first
   * (the previous one has just come back, and etcd must have settled before the next member goes down).
   */
  etcdHealthFirst?: EtcdHealthTarget;
  timeouts?: Partial<UpgradeTimeouts>;
}

/**
 * Step "upgrade-kubeadm". Refuses skew (the cluster's and this node's kubeadm version against the target). Skipped
 * when kubeadm already is the target and held (a fresh cluster). Otherwise: etcd health (further control planes),
 * then — when the minor changes — the apt source and key switched to the target minor's pkgs.k8s.io repository,
 * then unhold, install the exact version, hold.
 */
export function upgradeKubeadmScript(args: UpgradeKubeadmArgs): string {
  assertNodeName(builder, "node", args.node);
  const timeouts = timeoutsWith(args.timeouts);
  const body = String.raw`
${args.etcdHealthFirst?.kind === "stacked" ? `ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}` : ""}
${versionFragment(builder, { kubernetesVersion: args.kubernetesVersion, kubeconfig: nodePaths.adminKubeconfig, timeouts })}
${packagesFragment(args.kubernetesVersion, args.packageRepository)}
${args.etcdHealthFirst ? etcdFragment(builder, args.etcdHealthFirst, timeouts) : ""}

${nodeIdentityBash}
require_node_identity "upgrade its kubeadm"
${bootstrapLeftoversFragment()}
check_cluster_skew
if [ "$(installed_kubeadm)" = "v$VERSION" ] && held kubeadm; then skip "kubeadm already v$VERSION and held"; fi
${args.etcdHealthFirst ? "check_etcd" : ""}
upgrade_kubeadm_package
`;
  return nodeScript({ node: args.node, step: "upgrade-kubeadm" }, body);
}
