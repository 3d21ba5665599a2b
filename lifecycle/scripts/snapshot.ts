// Step "upgrade-snapshot": an etcd snapshot before the first mutating upgrade step, verified and kept on the member.
// A stand-in until the snapshot issue supplies its own builder (RollingUpgradeArgs.snapshotScript). Pure.
import { nodePaths } from "../../infra/defaults";
import { nodeScript, shellQuote } from "../../infra/scripts/common";
import { snapshotDefaults, stackedSnapshotStaging, UpgradeTimeouts } from "../defaults";
import { etcdPaths } from "../../infra/scripts/etcdMember";
import { assertNodeName, bx, timeoutsWith } from "./common";

const builder = "preUpgradeSnapshotScript";


export type SnapshotSource =
  /** Stacked: the member on this control plane, through its static pod `etcd-<node>` (etcdctl is only in its image). */
  | { kind: "stacked" }
  /**
   * External: the member's own etcdctl (and etcdutl, 3.5+) from etcdPaths.binDir, with its own certificate as the
   * client identity (as the etcd-healthy step does); endpoint default https://127.0.0.1:2379.
   */
  | { kind: "external"; endpoint?: string };

export interface SnapshotArgs {
  /** The member it runs on: cp-0 (stacked) or etcd-0 (external). */
  node: string;
  etcd: SnapshotSource;
  /** Where snapshots are kept on the node. Default snapshotDefaults.dir. */
  dir?: string;
  /** Snapshots kept; older ones are removed after a verified save. Default snapshotDefaults.keep. */
  keep?: number;
  timeouts?: Partial<UpgradeTimeouts>;
}

/**
 * Step "upgrade-snapshot": `etcdctl snapshot save` of the member, then verified — the file is non-empty and
 * `etcdutl snapshot status` (or etcdctl's, before 3.5) reads a revision and keys from it — and stored with its
 * sha256 under `dir` as etcd-<UTC timestamp, ms>.db; the newest `keep` are kept. Stacked: the pod writes into its
 * data-dir mount, and the file is moved out of etcd's data dir at once. Taking a snapshot changes nothing in the
 * cluster, so the step has no skip: it runs whenever its script changes (creation, and every version bump).
 */
export function preUpgradeSnapshotScript(args: SnapshotArgs): string {
  assertNodeName(builder, "node", args.node);
  const timeouts = timeoutsWith(args.timeouts);
  const keep = args.keep ?? snapshotDefaults.keep;
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`${builder}: keep must be a whole number >= 1; got ${keep}`);
  const dir = args.dir ?? snapshotDefaults.dir;
  if (!dir.startsWith("/")) throw new Error(`${builder}: dir must be an absolute path; got ${JSON.stringify(dir)}`);

  let save: string;
  switch (args.etcd.kind) {
    case "stacked":
      save = String.raw`
ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}
STAGING_POD=${shellQuote(stackedSnapshotStaging)}
STAGING="$R$STAGING_POD"
in_etcd_pod() {
  timeout ${timeouts.snapshotSave} kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=0 -n kube-system exec "etcd-$NODE" -- "$@"
}
install -d -m 0700 "$STAGING"
rm -f "$STAGING/$NAME" "$STAGING/$NAME.part"
log "etcdctl snapshot save (member etcd-$NODE)"
in_etcd_pod etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
  --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key \
  snapshot save "$STAGING_POD/$NAME" 2>&1 | log_output || die "etcdctl snapshot save failed (output above)"
[ -s "$STAGING/$NAME" ] || die "the snapshot $STAGING/$NAME is missing or empty on the host"
STATUS=$(in_etcd_pod etcdutl snapshot status "$STAGING_POD/$NAME" -w json 2>/dev/null ||
  in_etcd_pod etcdctl snapshot status "$STAGING_POD/$NAME" -w json 2>&1) || die "the snapshot does not read back: $STATUS"
mv -f "$STAGING/$NAME" "$DIR/$NAME"
rmdir "$STAGING" 2>/dev/null || true`;
      break;
    case "external": {
      const endpoint = args.etcd.endpoint ?? "https://127.0.0.1:2379";
      if (!/^https:\/\/[A-Za-z0-9.\-]+:\d{1,5}$/.test(endpoint)) throw new Error(`${builder}: endpoint must look like https://127.0.0.1:2379; got ${endpoint}`);
      save = String.raw`
ENDPOINT=${shellQuote(endpoint)}
ETCDCTL="$R"${shellQuote(`${etcdPaths.binDir}/etcdctl`)}
ETCDUTL="$R"${shellQuote(`${etcdPaths.binDir}/etcdutl`)}
[ -x "$ETCDCTL" ] || die "no $ETCDCTL on $NODE"
log "etcdctl snapshot save ($ENDPOINT)"
rm -f "$DIR/$NAME.part"
ETCDCTL_API=3 timeout ${timeouts.snapshotSave} "$ETCDCTL" --endpoints="$ENDPOINT" --cacert="$R"${shellQuote(etcdPaths.caCert)} \
  --cert="$R"${shellQuote(etcdPaths.serverCert)} --key="$R"${shellQuote(etcdPaths.serverKey)} \
  snapshot save "$DIR/$NAME" 2>&1 | log_output || die "etcdctl snapshot save failed (output above)"
[ -s "$DIR/$NAME" ] || die "the snapshot $DIR/$NAME is missing or empty"
# etcdctl snapshot status moved to etcdutl in 3.5 and is gone from etcdctl in 3.6.
if [ -x "$ETCDUTL" ]; then
  STATUS=$("$ETCDUTL" snapshot status "$DIR/$NAME" -w json 2>&1) || die "etcdutl cannot read the snapshot back: $STATUS"
else
  STATUS=$(ETCDCTL_API=3 "$ETCDCTL" snapshot status "$DIR/$NAME" -w json 2>&1) || die "etcdctl cannot read the snapshot back: $STATUS"
fi`;
      break;
    }
    default: {
      const never: never = args.etcd;
      throw new Error(`${builder}: unknown etcd kind ${JSON.stringify(never)}`);
    }
  }

  const body = String.raw`
DIR="$R"${shellQuote(dir)}
KEEP=${keep}
NAME="etcd-$(date -u +%Y%m%dT%H%M%S.%3NZ).db"
install -d -m 0700 "$DIR"
${save}
# The status must name a revision and at least one key: a cluster always has some.
json_number() { printf '%s' "$STATUS" | tr -d '\n' | sed -n -E "s/.*\"$1\"[[:space:]]*:[[:space:]]*([0-9]+).*/\1/p"; }
revision=$(json_number revision)
keys=$(json_number totalKey)
if [ -z "$revision" ] || [ -z "$keys" ] || [ "$keys" -lt 1 ]; then
  rm -f "$DIR/$NAME"
  die "the snapshot reads back without a revision or keys: $STATUS"
fi
chmod 0600 "$DIR/$NAME"
(cd "$DIR" && sha256sum "$NAME" >"$NAME.sha256")
log "snapshot $DIR/$NAME verified: revision $revision, $keys keys, $(wc -c <"$DIR/$NAME") bytes"
mapfile -t old < <(find "$DIR" -maxdepth 1 -name 'etcd-*.db' -printf '%f\n' | sort | head -n -"$KEEP")
for f in "${bx("old[@]")}"; do
  rm -f "$DIR/$f" "$DIR/$f.sha256"
  log "removed old snapshot $f (keeping $KEEP)"
done
`;
  return nodeScript({ node: args.node, step: "upgrade-snapshot" }, body);
}
