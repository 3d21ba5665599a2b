// Step "init": `kubeadm init` on the first control plane, then the CA public-key hash every join needs.
// Pure: arguments in, bash out.
import { stepTimeouts } from "../defaults";
import { nodeScript, shellQuote } from "./common";

/** Where the init step keeps the kubeadm init configuration (it carries the bootstrap token and certificate key). */
export const initConfigPath = "/etc/kubeadm-ha/kubeadm-init.yaml";

/** The one line of the init step's stdout: `KUBEADM_HA_CA_CERT_HASH=sha256:<64 hex>`. */
export const caCertHashKey = "KUBEADM_HA_CA_CERT_HASH";

/**
 * The CA public-key hash from the init step's stdout (`sha256:<64 lowercase hex>`), as kubeadm's
 * `caCertHashes` expects it. Throws when the line is absent, malformed or repeated with different values.
 */
export function parseCaCertHash(stdout: string): string {
  const values = stdout
    .split(/\r?\n/)
    .filter((line) => line.startsWith(`${caCertHashKey}=`))
    .map((line) => line.slice(caCertHashKey.length + 1).trim());
  if (values.length === 0) {
    throw new Error(`the init step printed no ${caCertHashKey}=sha256:<hex> line (did kubeadm init succeed on the first control plane?)`);
  }
  const distinct = [...new Set(values)];
  if (distinct.length > 1) throw new Error(`the init step printed ${distinct.length} different ${caCertHashKey} values`);
  const value = distinct[0];
  if (!/^sha256:[0-9a-f]{64}$/.test(value)) {
    throw new Error(`the init step printed a malformed ${caCertHashKey} (expected sha256:<64 lowercase hex>): ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Step "init". Stdin: the kubeadm init configuration (initConfiguration()). Stdout: exactly the CA hash line.
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

write_secret_file "$CONFIG"
[ -s "$CONFIG" ] || die "no kubeadm init configuration on stdin"

run_init=1
if [ -e "$IN_PROGRESS" ]; then
  # Important: resetting here loses nothing. No node can have joined a cluster whose init never finished: every
  # join takes this step's output, which only a finished init prints.
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

[ -s "$CA_CERT" ] || die "no cluster CA at $CA_CERT"
hash=$(ca_cert_hash "$CA_CERT")
[[ $hash =~ ^[0-9a-f]{64}$ ]] || die "could not compute the public-key hash of $CA_CERT"
printf '${caCertHashKey}=sha256:%s\n' "$hash"
`;
  return nodeScript({ node: args.node, step: "init" }, body);
}
