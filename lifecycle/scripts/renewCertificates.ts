// Step "certificates" of a control plane: renews kubeadm's certificates when they are due, restarts the control plane
// on the new ones, and reports when the earliest of them expires. Pure: arguments in, bash out; and the parser of
// what the step prints.
import { nodePaths } from "../../infra/defaults";
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { nodeIdentityBash } from "../../infra/scripts/nodeIdentity";
import { certificateTimeouts, controlPlaneComponents, UpgradeTimeouts } from "../defaults";
import { assertNodeName, bashArray, etcdFragment, EtcdHealthTarget, parseTarget, timeoutsWith } from "./common";

const builder = "renewCertificatesScript";

/** The step's one stdout line: `KUBEADM_HA_CERTIFICATES_EXPIRE=<ISO 8601 UTC> <file>` (the earliest certificate). */
export const certificatesExpireKey = "KUBEADM_HA_CERTIFICATES_EXPIRE";

/** Where the step keeps its state on the node: a pending restart, and the manifests set aside during one. */
export const certificatesStateDir = `${nodePaths.stateDir}/certificates`;

/** The certificates kubeadm manages on a control plane (under /etc/kubernetes/pki), by etcd topology. */
export function kubeadmCertificateFiles(stackedEtcd: boolean): string[] {
  const common = ["apiserver.crt", "apiserver-kubelet-client.crt", "front-proxy-client.crt"];
  // With external etcd the apiserver's etcd client certificate is the program's (infra/etcdPki.ts), not kubeadm's.
  return stackedEtcd ? [...common, "apiserver-etcd-client.crt", "etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt"] : common;
}

/** The kubeconfigs whose embedded client certificates kubeadm manages (super-admin.conf: the first control plane). */
export const kubeadmKubeconfigFiles = ["admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"] as const;

export interface RenewCertificatesArgs {
  /** The control plane it runs on. */
  node: string;
  /** The cluster's version: in the script so that the step reports again after an upgrade (which renews them). */
  kubernetesVersion: string;
  /** Renew when the earliest certificate expires within this many days (config certificates.renewBeforeDays). */
  renewBeforeDays: number;
  /** The renewal round (certificateRenewalRound): a new round runs the step again. */
  round: string;
  /** The etcd members to find healthy before this control plane restarts (and after). */
  etcd: EtcdHealthTarget;
  timeouts?: Partial<UpgradeTimeouts>;
}

/**
 * Step "certificates" (every control plane, one at a time). Reads the notAfter of every certificate kubeadm manages
 * on the node (kubeadmCertificateFiles, and the client certificates embedded in kubeadmKubeconfigFiles). When the
 * earliest expires within renewBeforeDays, or a restart is pending from an interrupted run:
 * 1. health first: etcd healthy, the local apiserver's /readyz;
 * 2. `kubeadm certs renew all` (a pending-restart marker is written first);
 * 3. the control plane's static pods restart on the new certificates (no component reloads all of them by itself):
 *    each manifest moves aside until its container stops (crictl), then back;
 * 4. health after: /readyz, etcd healthy; the marker is removed.
 * Stdout, one line: `KUBEADM_HA_CERTIFICATES_EXPIRE=<ISO> <file>` — the earliest expiry after the step.
 * Important: the program chains these steps, one control plane at a time: etcd and the API keep a quorum.
 */
export function renewCertificatesScript(args: RenewCertificatesArgs): string {
  assertNodeName(builder, "node", args.node);
  parseTarget(builder, args.kubernetesVersion);
  if (!Number.isInteger(args.renewBeforeDays) || args.renewBeforeDays < 1 || args.renewBeforeDays > 364) {
    throw new Error(`${builder}: renewBeforeDays must be a whole number of days from 1 to 364; got ${args.renewBeforeDays}`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/.test(args.round)) throw new Error(`${builder}: round must be a short word; got ${JSON.stringify(args.round)}`);
  const timeouts = timeoutsWith(args.timeouts);
  const stacked = args.etcd.kind === "stacked";
  const components = [...controlPlaneComponents, ...(stacked ? ["etcd"] : [])];
  const t = certificateTimeouts;
  const body = String.raw`
# The cluster's version and the renewal round: a change of either runs this step again.
VERSION=${shellQuote(args.kubernetesVersion)}
ROUND=${shellQuote(args.round)}
RENEW_BEFORE_DAYS=${args.renewBeforeDays}
${stacked ? `ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}` : ""}
PKI="$R/etc/kubernetes/pki"
KUBE_DIR="$R/etc/kubernetes"
MANIFESTS="$R/etc/kubernetes/manifests"
STATE="$R"${shellQuote(certificatesStateDir)}
PENDING="$STATE/restart-pending"
ASIDE="$STATE/manifests-aside"
CERTS=${bashArray(kubeadmCertificateFiles(stacked))}
KUBECONFIGS=${bashArray([...kubeadmKubeconfigFiles])}
COMPONENTS=${bashArray(components)}
${etcdFragment(builder, args.etcd, timeouts)}
${nodeIdentityBash}

# end_of PEM-FILE: the certificate's notAfter in seconds since the epoch.
end_of() {
  local end
  end=$(openssl x509 -noout -enddate -in "$1" 2>/dev/null | cut -d= -f2) && [ -n "$end" ] && date -u -d "$end" +%s
}
# earliest: EARLIEST (seconds) and EARLIEST_FILE over every kubeadm certificate on this node; fails when none is there.
earliest() {
  local f end tmp
  EARLIEST="" EARLIEST_FILE=""
  tmp=$(mktemp)
  for f in "${"$"}{CERTS[@]}"; do
    [ -f "$PKI/$f" ] || continue
    end=$(end_of "$PKI/$f") || die "cannot read the certificate $PKI/$f"
    if [ -z "$EARLIEST" ] || [ "$end" -lt "$EARLIEST" ]; then EARLIEST=$end EARLIEST_FILE=pki/$f; fi
  done
  for f in "${"$"}{KUBECONFIGS[@]}"; do
    [ -f "$KUBE_DIR/$f" ] || continue
    sed -n -E 's/^[[:space:]]*client-certificate-data:[[:space:]]*//p' "$KUBE_DIR/$f" | head -n 1 | base64 -d >"$tmp" 2>/dev/null || true
    [ -s "$tmp" ] || continue
    end=$(end_of "$tmp") || die "cannot read the client certificate in $KUBE_DIR/$f"
    if [ -z "$EARLIEST" ] || [ "$end" -lt "$EARLIEST" ]; then EARLIEST=$end EARLIEST_FILE=$f; fi
  done
  rm -f "$tmp"
  [ -n "$EARLIEST" ]
}
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
apiserver_ready() { [ "$(curl -fsk --max-time 5 https://127.0.0.1:6443/readyz 2>/dev/null)" = ok ]; }
# stopped COMPONENT: no running container of COMPONENT on this node.
stopped() { [ -z "$(timeout 30 crictl ps --name "^$1\$" --state running -q 2>/dev/null)" ]; }
# put_back: every manifest set aside returns (also what an interrupted run left aside).
put_back() {
  local m
  for m in "$ASIDE"/*.yaml; do
    [ -e "$m" ] || continue
    if [ -e "$MANIFESTS/$(basename "$m")" ]; then die "$(basename "$m") is both in $MANIFESTS and set aside in $ASIDE: resolve by hand"; fi
    mv "$m" "$MANIFESTS/$(basename "$m")"
    log "$(basename "$m") back in place"
  done
}
# restart_control_plane: each static pod restarts on the new certificates, one after the other.
restart_control_plane() {
  local c
  install -d -m 0700 "$ASIDE"
  for c in "${"$"}{COMPONENTS[@]}"; do
    [ -f "$MANIFESTS/$c.yaml" ] || continue
    log "restarting $c on its new certificates"
    mv "$MANIFESTS/$c.yaml" "$ASIDE/$c.yaml"
    wait_until ${t.podStop} "$c to stop" stopped "$c"
    put_back
  done
}

require_node_identity "renew or read its certificates"
put_back
earliest || die "no kubeadm certificate under $PKI: is $NODE a control plane?"
now=$(date -u +%s)
log "earliest certificate: $EARLIEST_FILE, expires $(iso "$EARLIEST") (renewal round $ROUND, at v$VERSION)"
if [ -e "$PENDING" ] || [ $((EARLIEST - now)) -lt $((RENEW_BEFORE_DAYS * 86400)) ]; then
  require_node_identity "renew its certificates and restart its control plane" required
  if [ -e "$PENDING" ]; then
    log "an earlier run renewed the certificates but did not finish restarting the control plane: restarting"
  else
    log "it expires within $RENEW_BEFORE_DAYS days: renewing every kubeadm certificate on $NODE"
    check_etcd
    wait_until ${t.apiserverReady} "the local apiserver's /readyz before the renewal" apiserver_ready
    install -d -m 0700 "$STATE"
    : >"$PENDING"
    timeout ${t.kubeadmCertsRenew} kubeadm certs renew all 2>&1 | log_output || die "kubeadm certs renew all failed (output above); pulumi up runs this step again"
  fi
  restart_control_plane
  wait_until ${t.apiserverReady} "the local apiserver's /readyz after the restart" apiserver_ready
  check_etcd
  rm -f "$PENDING"
  earliest || die "no kubeadm certificate under $PKI after the renewal"
  [ $((EARLIEST - now)) -ge $((RENEW_BEFORE_DAYS * 86400)) ] || die "after kubeadm certs renew all, $EARLIEST_FILE still expires $(iso "$EARLIEST")"
  log "renewed: the earliest certificate ($EARLIEST_FILE) now expires $(iso "$EARLIEST"); control plane restarted and healthy"
fi
printf '${certificatesExpireKey}=%s %s\n' "$(iso "$EARLIEST")" "$EARLIEST_FILE"
`;
  return nodeScript({ node: args.node, step: "certificates" }, body);
}

/** The earliest expiry a certificates step printed (ISO 8601), or undefined when its stdout has no such line. */
export function parseCertificatesExpiry(stdout: string | undefined): string | undefined {
  const line = (stdout ?? "").split(/\r?\n/).find((l) => l.startsWith(`${certificatesExpireKey}=`));
  const m = line && /^[A-Z_]+=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)(\s|$)/.exec(line);
  return m ? m[1] : undefined;
}
