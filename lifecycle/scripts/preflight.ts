// Step "upgrade-preflight" (cluster-upgrade-preflight, on the first control plane): read-only checks before any
// upgrade step changes anything. Pure: arguments in, bash out.
import { nodePaths } from "../../infra/defaults";
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { aptGetHelper, aptSourceLine, kubernetesKeyring, kubernetesRepoUrl, minorOf, packagePin } from "../../infra/scripts/prepareNode";
import { featureGatesRemovedBy } from "../../infra/scripts/kubeadmConfig";
import { clusterConfigurationFragment } from "./upgradeControlPlane";
import { UpgradeTimeouts } from "../defaults";
import {
  apiserverManifestFragment,
  assertEtcdEndpoints,
  assertNodeName,
  bashArray,
  bx,
  etcdFragment,
  EtcdHealthTarget,
  timeoutsWith,
  versionFragment,
} from "./common";

const builder = "preflightChecksScript";

export interface PreflightArgs {
  /** The node it runs on: the first control plane (it has admin.conf and runs `kubeadm upgrade apply` later). */
  node: string;
  kubernetesVersion: string;
  /** Every node the cluster must have, each Ready. */
  nodes: string[];
  /** The control planes (stacked etcd: one member each). */
  controlPlanes: string[];
  /** host:port of the API load balancer: /readyz is asked through it. */
  apiEndpoint: string;
  etcd: { kind: "stacked" } | { kind: "external"; endpoints: string[] };
  /** config packages.repository (default pkgs.k8s.io): where the target kubeadm is fetched from. */
  packageRepository?: string;
  timeouts?: Partial<UpgradeTimeouts>;
}

/** host:port with a DNS name or IPv4 address. */
const endpointPattern = /^[A-Za-z0-9.\-]+:\d{1,5}$/;

/**
 * Step "upgrade-preflight". Refuses skew (the cluster's version and every node's kubelet against the target). When
 * every node already runs the target (a fresh cluster) it stops there. Otherwise it checks, each within a bound:
 * every expected node registered and Ready; etcd healthy on all members; `/readyz` through the LB; and, unless
 * this control plane already runs the target, that `kubeadm upgrade plan vX` of the TARGET kubeadm accepts the
 * upgrade. That kubeadm is fetched read-only: `apt-get download` through a temporary source list of the target
 * minor (own key, own lists, own cache, in a temporary directory) and `dpkg-deb -x`; nothing on the node changes.
 * The one change it makes, just before that plan: feature gates the target's kubeadm no longer knows are removed
 * from kubeadm-config (removedFeatureGates), or that kubeadm refuses the configuration and the upgrade could never
 * start. Safe before the upgrade: a gate is listed only from the minor that removed it, and in the minor before (the
 * only one a cluster upgrades from) it is GA and locked to its default, so the running cluster reads the same
 * configuration without it. Idempotent: kubeadm-config is written only when a gate is still there.
 */
export function preflightChecksScript(args: PreflightArgs): string {
  assertNodeName(builder, "node", args.node);
  if (args.nodes.length === 0) throw new Error(`${builder}: nodes is empty`);
  args.nodes.forEach((n) => assertNodeName(builder, "a node", n));
  args.controlPlanes.forEach((n) => assertNodeName(builder, "a control plane", n));
  if (!endpointPattern.test(args.apiEndpoint)) throw new Error(`${builder}: apiEndpoint must be host:port; got ${JSON.stringify(args.apiEndpoint)}`);
  const timeouts = timeoutsWith(args.timeouts);
  const etcd: EtcdHealthTarget =
    args.etcd.kind === "stacked" ? { kind: "stacked", members: args.controlPlanes } : { kind: "external", endpoints: args.etcd.endpoints };
  if (etcd.kind === "external") assertEtcdEndpoints(builder, etcd.endpoints);
  const minor = minorOf(args.kubernetesVersion);

  const body = String.raw`
ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}
API_ENDPOINT=${shellQuote(args.apiEndpoint)}
EXPECTED=${bashArray(args.nodes)}
HEALTH_TIMEOUT=${timeouts.preflightHealth}
PLAN_TIMEOUT=${timeouts.kubeadmUpgradePlan}
PIN=${shellQuote(packagePin(args.kubernetesVersion))}
KEY_URL=${shellQuote(`${kubernetesRepoUrl(minor, args.packageRepository)}Release.key`)}
SOURCE_LINE=${shellQuote(aptSourceLine(minor, args.packageRepository))}
NODE_KEYRING=${shellQuote(kubernetesKeyring)}
${versionFragment(builder, { kubernetesVersion: args.kubernetesVersion, kubeconfig: nodePaths.adminKubeconfig, timeouts })}
${apiserverManifestFragment()}
${etcdFragment(builder, etcd, timeouts)}
${clusterConfigurationFragment(featureGatesRemovedBy(args.kubernetesVersion))}
${aptGetHelper}

# list_nodes: "name kubeletVersion Ready" per registered node.
list_nodes() {
  timeout 30 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=20s get nodes \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.nodeInfo.kubeletVersion}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}'
}
# node_column NAME COLUMN: a column of NAME's line in NODES (empty when NAME is not registered).
node_column() {
  printf '%s\n' "$NODES" | awk -v n="$1" -v c="$2" '$1 == n { print $c }'
}

check_cluster_skew

NODES=$(list_nodes) || die "cannot list nodes through $ADMIN_CONF"
everything_at_target=1
for name in "${bx("EXPECTED[@]")}"; do
  kubelet=$(node_column "$name" 2)
  if [ -z "$kubelet" ]; then
    everything_at_target=0
    continue
  fi
  # A node more than one minor behind would have to skip a minor on its own upgrade: refuse before anything runs.
  check_skew "$kubelet" "node $name's kubelet"
  if [ "$kubelet" != "v$VERSION" ]; then everything_at_target=0; fi
done
if [ "$(apiserver_manifest_version)" != "v$VERSION" ]; then everything_at_target=0; fi
if [ "$everything_at_target" = 1 ]; then skip "every node already runs v$VERSION"; fi

# Every expected node registered and Ready.
deadline=$((SECONDS + HEALTH_TIMEOUT))
while :; do
  pending=()
  for name in "${bx("EXPECTED[@]")}"; do
    ready=$(node_column "$name" 3)
    case $ready in
      True) ;;
      "") pending+=("$name (not registered)") ;;
      *) pending+=("$name (Ready=$ready)") ;;
    esac
  done
  if [ "${bx("#pending[@]")}" -eq 0 ]; then break; fi
  if [ "$SECONDS" -ge "$deadline" ]; then die "not every node is Ready after ${timeouts.preflightHealth}s: ${bx("pending[*]")}"; fi
  sleep "${bx("KUBEADM_HA_POLL_SECONDS:-5")}"
  NODES=$(list_nodes) || NODES=""
done
log "all ${bx("#EXPECTED[@]")} nodes Ready"

check_etcd

readyz() {
  [ "$(timeout 30 kubectl --kubeconfig "$ADMIN_CONF" --server "https://$API_ENDPOINT" --request-timeout=20s \
    get --raw=/readyz 2>/dev/null)" = ok ]
}
wait_until "$HEALTH_TIMEOUT" "/readyz through the load balancer https://$API_ENDPOINT" readyz
log "API ready through the load balancer https://$API_ENDPOINT"

if [ "$(apiserver_manifest_version)" = "v$VERSION" ]; then
  log "this control plane already runs v$VERSION: kubeadm upgrade plan was checked before it was upgraded"
else
  # The target kubeadm, fetched without touching the node's apt sources, lists, cache or packages.
  FETCH=$(mktemp -d "${bx("TMPDIR:-/tmp")}/kubeadm-ha-preflight.XXXXXX")
  trap 'rm -rf "$FETCH"' EXIT
  mkdir -p "$FETCH/lists/partial" "$FETCH/cache/archives/partial" "$FETCH/deb" "$FETCH/root"
  retry 3 5 curl -fsSL --connect-timeout 10 --max-time 60 -o "$FETCH/Release.key" "$KEY_URL" || die "could not download $KEY_URL"
  gpg --batch --yes --dearmor -o "$FETCH/keyring.gpg" "$FETCH/Release.key"
  printf '%s\n' "${bx('SOURCE_LINE/"$NODE_KEYRING"/"$FETCH/keyring.gpg"')}" >"$FETCH/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$FETCH/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$FETCH/lists" -o "Dir::Cache=$FETCH/cache" -o APT::Sandbox::User=root)
  retry 3 10 apt_get "${bx("apt_opts[@]")}" update || die "apt-get update of the temporary v$TARGET_MAJOR.$TARGET_MINOR source failed"
  (cd "$FETCH/deb" && apt_get "${bx("apt_opts[@]")}" download "kubeadm=$PIN") || die "apt-get download kubeadm=$PIN failed"
  debs=("$FETCH"/deb/kubeadm_*.deb)
  [ -f "${bx("debs[0]")}" ] || die "apt-get download left no kubeadm package in $FETCH/deb"
  dpkg-deb -x "${bx("debs[0]")}" "$FETCH/root"
  fetched="$FETCH/root/usr/bin/kubeadm"
  [ -x "$fetched" ] || die "the kubeadm package has no usr/bin/kubeadm"
  got=$("$fetched" version -o short 2>/dev/null || true)
  [ "$got" = "v$VERSION" ] || die "the downloaded kubeadm reports '$got', expected v$VERSION"
  # Important: before the target kubeadm reads kubeadm-config (it refuses a gate it does not know). Where kubeadm-config
  # cannot be read there is nothing to remove, and the plan below fails naming why.
  if timeout 60 kubectl --kubeconfig "$KUBECONFIG_FILE" --request-timeout=30s -n kube-system get configmap kubeadm-config -o name >/dev/null 2>&1; then
    drop_removed_feature_gates
  fi
  log "kubeadm upgrade plan v$VERSION (kubeadm $got, fetched read-only)"
  if ! timeout "$PLAN_TIMEOUT" "$fetched" upgrade plan "v$VERSION" --kubeconfig "$ADMIN_CONF" 2>&1 | log_output; then
    die "kubeadm upgrade plan rejects v$VERSION (its output is above)"
  fi
  log "kubeadm accepts the upgrade to v$VERSION"
fi
`;
  return nodeScript({ node: args.node, step: "upgrade-preflight" }, body);
}
