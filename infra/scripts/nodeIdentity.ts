// Which node a machine is, as the machine itself shows it: the name its kubelet authenticates to the cluster with,
// or for an external etcd member the name etcd runs under. Every step that can destroy a node's state checks it first:
// an address is only where SSH connects, and two config entries can point at one machine (the phantom node whose
// retirement would `kubeadm reset` the real one). Pure: bash fragments for the step builders.
import { shellQuote } from "./common";

/** Where a kubelet keeps its client certificate (kubeadm enables rotation; this is the current one). */
export const kubeletClientCert = "/var/lib/kubelet/pki/kubelet-client-current.pem";
/** The kubelet's kubeconfig: before rotation it embeds the client certificate. */
export const kubeletKubeconfigPath = "/etc/kubernetes/kubelet.conf";
/** An external etcd member's environment file (infra/scripts/etcdMember.ts writes ETCD_NAME there). */
export const etcdEnvFilePath = "/etc/etcd/etcd.env";

/**
 * Bash: `kubelet_node_name` and `require_node_identity WHAT [required]`. Needs NODE (the frame sets it).
 *
 * - kubelet_node_name: the Node name of this machine's kubelet, the CN `system:node:<name>` of its client certificate
 *   (the rotated one, else the one kubelet.conf embeds); empty when the machine has no kubelet credentials.
 * - require_node_identity: ends the step before WHAT unless this machine's kubelet is NODE. A machine without kubelet
 *   credentials passes (nothing of a node is there), except with `required`, where a step about to destroy a node's
 *   state refuses to act on a machine that cannot show it is that node.
 */
export const nodeIdentityBash = String.raw`KUBELET_CLIENT_CERT="$R"${shellQuote(kubeletClientCert)}
KUBELET_KUBECONFIG="$R"${shellQuote(kubeletKubeconfigPath)}
# kubelet_node_name: the Node name this machine's kubelet authenticates as (empty: no kubelet credentials).
kubelet_node_name() {
  local pem="" subject
  if [ -s "$KUBELET_CLIENT_CERT" ]; then
    pem=$(cat "$KUBELET_CLIENT_CERT")
  elif [ -s "$KUBELET_KUBECONFIG" ]; then
    pem=$(sed -n -E 's/^[[:space:]]*client-certificate-data:[[:space:]]*//p' "$KUBELET_KUBECONFIG" | head -n 1 | base64 -d 2>/dev/null || true)
  fi
  [ -n "$pem" ] || return 0
  subject=$(printf '%s\n' "$pem" | openssl x509 -noout -subject -nameopt RFC2253 2>/dev/null) || return 0
  printf '%s\n' "$subject" | sed -n -E 's/.*CN=system:node:([^,]+).*/\1/p' | head -n 1
}
# require_node_identity WHAT [required]: this machine's kubelet is $NODE, else the step ends before WHAT.
require_node_identity() {
  local what=$1 name
  name=$(kubelet_node_name)
  if [ -z "$name" ]; then
    if [ "${"$"}{2:-}" = required ]; then
      die "refusing to $what: this machine has no kubelet credentials (${kubeletClientCert}, ${kubeletKubeconfigPath}), so nothing shows it is node $NODE"
    fi
    return 0
  fi
  if [ "$name" != "$NODE" ]; then
    die "refusing to $what: this machine's kubelet is node $name, not $NODE (the address reaches another node: two hosts listed with one address, or a changed address)"
  fi
  log "this machine is node $NODE (its kubelet's client certificate)"
}`;

/**
 * Bash: `require_etcd_member_identity WHAT MEMBER` for an external etcd host (no kubelet there): the ETCD_NAME its
 * environment file configures is MEMBER, else the step ends before WHAT. A host with no environment file passes.
 */
export const etcdMemberIdentityBash = String.raw`ETCD_ENV_FILE="$R"${shellQuote(etcdEnvFilePath)}
# require_etcd_member_identity WHAT MEMBER: this host's etcd runs as MEMBER, else the step ends before WHAT.
require_etcd_member_identity() {
  local what=$1 want=$2 name
  [ -f "$ETCD_ENV_FILE" ] || return 0
  name=$(sed -n -E 's/^ETCD_NAME=//p' "$ETCD_ENV_FILE" | head -n 1)
  if [ -n "$name" ] && [ "$name" != "$want" ]; then
    die "refusing to $what: this host's etcd is member $name, not $want (the address reaches another member)"
  fi
  if [ -n "$name" ]; then log "this host is etcd member $want (its ETCD_NAME)"; fi
}`;
