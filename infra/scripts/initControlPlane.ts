// Step "init": `kubeadm init` on the first control plane, then the CA public-key hash every join needs.
// Pure: arguments in, bash out.
import { stepTimeouts } from "../defaults";
import { nodeScript, shellQuote } from "./common";
import { nodeIdentityBash } from "./nodeIdentity";

/**
 * Where the init step puts the kubeadm init configuration while kubeadm reads it. It carries the bootstrap token and
 * the certificate key: root-only, and removed when the step ends, whatever the outcome (a rerun gets it on stdin again).
 */
export const initConfigPath = "/etc/kubeadm-ha/kubeadm-init.yaml";


/**
 * Step "init". Stdin: the kubeadm init configuration (initConfiguration()), kept in a 0600 file only while the step
 * runs. Stdout: nothing (progress goes to stderr; the join-credentials step reports the CA hash with each fresh token).
 *
 * kubeadm's own output is kept out of the pulumi log where it could leak: `--skip-token-print` and
 * `--skip-certificate-key-print`, and the whole output passes redact_kubeadm (lib.sh), which drops the join commands,
 * the uploaded certificate key and anything shaped like a token or key, before it is logged to stderr.
 */
export function initControlPlaneScript(args: { node: string }): string {
  const body = String.raw`
CONFIG="$R"${shellQuote(initConfigPath)}
# Present while a kubeadm init runs: a run that finds it knows an earlier init stopped midway.
IN_PROGRESS="$R/etc/kubeadm-ha/init-in-progress"
ADMIN_CONF="$R/etc/kubernetes/admin.conf"
CA_CERT="$R/etc/kubernetes/pki/ca.crt"

# The configuration holds the bootstrap token and the certificate key: gone when the step ends, however it ends.
trap 'rm -f "$CONFIG" "$CONFIG.tmp"' EXIT
write_secret_file "$CONFIG"
[ -s "$CONFIG" ] || die "no kubeadm init configuration on stdin"
${nodeIdentityBash}
# A machine that already is another node is never reset or initialised as this one.
require_node_identity "initialise it (kubeadm reset, kubeadm init)"

run_init=1
if [ -e "$IN_PROGRESS" ]; then
  # Important: resetting here loses nothing. No node can have joined a cluster whose init never finished: every
  # join waits for the join-credentials step, which runs only after this step has succeeded.
  log "an earlier kubeadm init stopped midway: kubeadm reset, then init again"
  timeout 300 kubeadm reset -f 2>&1 | redact_kubeadm | log_output || die "kubeadm reset failed"
elif [ -f "$ADMIN_CONF" ]; then
  log "already initialised ($ADMIN_CONF exists): skipping kubeadm init"
  run_init=0
fi
if [ "$run_init" = 1 ]; then
  : >"$IN_PROGRESS"
  log "kubeadm init (output filtered: no join commands, token or certificate key)"
  if ! timeout ${stepTimeouts.kubeadmInit} kubeadm init --config "$CONFIG" --upload-certs --skip-token-print \
    --skip-certificate-key-print 2>&1 | redact_kubeadm | log_output; then
    die "kubeadm init failed (the next run resets this node and initialises again)"
  fi
  rm -f "$IN_PROGRESS"
fi

apiserver_ready() {
  [ "$(curl -fsk --max-time 5 https://127.0.0.1:6443/readyz 2>/dev/null)" = ok ]
}
wait_until ${stepTimeouts.kubeadmInit} "the local apiserver's /readyz" apiserver_ready
log "apiserver ready"
[ -s "$CA_CERT" ] || die "no cluster CA at $CA_CERT after kubeadm init"
`;
  return nodeScript({ node: args.node, step: "init" }, body);
}

/** What the stack recorded of cp-0's day-one init (its `bootstrap` entry): on which machine, at which version and round. */
export interface RecordedInit {
  machine: string;
  kubernetesVersion: string;
  round: string;
}

/**
 * The init step's `update`: what runs when Pulumi updates cp-0's init in place (a new connection: a new address, a
 * replaced machine, pinned host keys). Invariant: it never runs kubeadm init or kubeadm reset. An update exists only
 * once a create of this step succeeded, so the cluster was initialised; a machine without /etc/kubernetes/admin.conf is
 * therefore not the machine that holds the cluster (a replaced or reinstalled cp-0), and kubeadm init on it would start
 * a new, empty cluster with a new CA beside the one every node trusts. It refuses, with the stack's record of the init
 * when the machine differs from it (`recorded`); on the initialised machine it only waits for the local apiserver.
 * Stdin (the ignored day-one configuration) is not read.
 */
export function initGuardScript(args: { node: string; recorded?: RecordedInit }): string {
  const where = args.recorded
    ? `the stack recorded kubeadm init on machine ${args.recorded.machine} (Kubernetes ${args.recorded.kubernetesVersion}, round ${args.recorded.round}), and this is another machine`
    : "the kubeadm init of this step succeeded in an earlier run";
  const refusal = `${args.node} has no /etc/kubernetes/admin.conf, but ${where}: kubeadm init here would start a new, empty cluster. Refusing; bring back the machine that holds the cluster (or restore it from an etcd snapshot, README "Restoring"), and never replace ${args.node} in place`;
  const body = String.raw`
ADMIN_CONF="$R/etc/kubernetes/admin.conf"
CA_CERT="$R/etc/kubernetes/pki/ca.crt"
${nodeIdentityBash}
require_node_identity "check its kubeadm init"
[ -f "$ADMIN_CONF" ] || die ${shellQuote(refusal)}
log "already initialised ($ADMIN_CONF exists): nothing to do"
apiserver_ready() {
  [ "$(curl -fsk --max-time 5 https://127.0.0.1:6443/readyz 2>/dev/null)" = ok ]
}
wait_until ${stepTimeouts.kubeadmInit} "the local apiserver's /readyz" apiserver_ready
[ -s "$CA_CERT" ] || die "no cluster CA at $CA_CERT"
`;
  return nodeScript({ node: args.node, step: "init" }, body);
}
