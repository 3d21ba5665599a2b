// Step "read-kubeconfig": hands the program the admin kubeconfig it and the `kubeconfig` stack output use: a client
// certificate of its own, minted on the first control plane. Pure: arguments in, bash out; and what the program reads
// from the result.
import { X509Certificate } from "node:crypto";
import { parse } from "yaml";
import { nodePaths, stepTimeouts } from "../defaults";
import { nodeScript, shellQuote } from "./common";

/** The credential's user (certificate CN); its group kubeadm:cluster-admins is bound to cluster-admin by kubeadm (1.29+). */
export const adminCredentialUser = "kubeadm-ha-admin";
export const adminCredentialGroup = "kubeadm:cluster-admins";

/** Where the step puts the cluster's ClusterConfiguration while kubeadm reads it (removed when the step ends). */
export const kubeconfigUserConfigPath = `${nodePaths.stateDir}/kubeconfig-user.yaml`;

const bounds = { kubectl: 60, kubeconfigUser: 60 } as const;

export interface ReadKubeconfigArgs {
  /** The first control plane (it has the cluster CA's key and admin.conf). */
  node: string;
  /** The renewal round (lifecycle/certificates.ts): a new round mints a new credential. */
  round: string;
  /** Validity of the client certificate, in hours (certificateDefaults.adminCredentialValidityHours). */
  validityHours: number;
}

/**
 * Step "read-kubeconfig" (first control plane). Waits for admin.conf, then mints a kubeconfig with a new client
 * certificate signed by the cluster CA: `kubeadm kubeconfig user --client-name kubeadm-ha-admin --org
 * kubeadm:cluster-admins --validity-period <h>h --config <the cluster's ClusterConfiguration>` (so its server is the
 * controlPlaneEndpoint, the API load balancer). Stdout is exactly that kubeconfig (the program stores it as a secret
 * output); progress goes to stderr.
 *
 * Why not admin.conf: its certificate lives one year and only the node's copy is renewed (by upgrades and
 * `kubeadm certs renew`); a copy read once would expire in state. This credential does not depend on admin.conf's
 * renewals (the CA signs it and lives ten years), and each renewal round mints the next one before it expires.
 */
export function readKubeconfigScript(args: ReadKubeconfigArgs): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/.test(args.round)) throw new Error(`readKubeconfigScript: round must be a short word; got ${JSON.stringify(args.round)}`);
  if (!Number.isInteger(args.validityHours) || args.validityHours < 24) {
    throw new Error(`readKubeconfigScript: validityHours must be a whole number of hours >= 24; got ${args.validityHours}`);
  }
  const body = String.raw`
# The renewal round: a new round mints a new credential.
ROUND=${shellQuote(args.round)}
ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}
CONFIG="$R"${shellQuote(kubeconfigUserConfigPath)}
ERR=$(mktemp)
trap 'rm -f "$CONFIG" "$CONFIG.tmp" "$ERR"' EXIT
wait_until ${stepTimeouts.kubeadmInit} "$ADMIN_CONF" test -s "$ADMIN_CONF"
read_cluster_configuration() {
  CLUSTER_CONFIGURATION=$(timeout ${bounds.kubectl} kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=30s -n kube-system \
    get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}')
}
retry 3 10 read_cluster_configuration || die "cannot read the kubeadm-config ConfigMap through $ADMIN_CONF"
[ -n "$CLUSTER_CONFIGURATION" ] || die "the kubeadm-config ConfigMap holds no ClusterConfiguration"
printf '%s\n' "$CLUSTER_CONFIGURATION" | write_secret_file "$CONFIG"
log "minting the program's admin credential (${adminCredentialUser}, group ${adminCredentialGroup}, valid ${args.validityHours} h; renewal round $ROUND)"
if ! kubeconfig=$(timeout ${bounds.kubeconfigUser} kubeadm kubeconfig user --config "$CONFIG" --client-name ${adminCredentialUser} \
  --org ${adminCredentialGroup} --validity-period ${args.validityHours}h 2>"$ERR"); then
  log_output <"$ERR"
  die "kubeadm kubeconfig user failed (output above)"
fi
log_output <"$ERR"
case $kubeconfig in
  *client-certificate-data:*) ;;
  *) die "kubeadm kubeconfig user printed no kubeconfig with a client certificate" ;;
esac
printf '%s\n' "$kubeconfig"
`;
  return nodeScript({ node: args.node, step: "read-kubeconfig" }, body);
}

/**
 * When the client certificate of a kubeconfig expires (ISO 8601), or undefined when it carries none that parses (the
 * offline engine's stand-in, a token kubeconfig).
 */
export function kubeconfigClientExpiry(kubeconfig: string | undefined): string | undefined {
  try {
    const doc = parse(kubeconfig ?? "") as { users?: { user?: Record<string, unknown> }[] } | null;
    const data = doc?.users?.[0]?.user?.["client-certificate-data"];
    if (typeof data !== "string") return undefined;
    const cert = new X509Certificate(Buffer.from(data, "base64"));
    return new Date(cert.validTo).toISOString().replace(/\.\d{3}Z$/, "Z");
  } catch {
    return undefined;
  }
}
