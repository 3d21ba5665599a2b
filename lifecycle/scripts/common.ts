// Shared parts of the upgrade step scripts: the target version as bash variables and the bash fragments in lib/
// (kept as real files so they read as bash). Each builder includes only the fragments it uses. Pure.
import { readFileSync } from "node:fs";
import { sandboxImageBash } from "../../infra/scripts/sandboxImage";
import { join } from "node:path";
import { nodePaths } from "../../infra/defaults";
import { shellQuote } from "../../infra/scripts/common";
import { apiserverEtcdClientPaths } from "../../infra/scripts/etcdMember";
import { initConfigPath } from "../../infra/scripts/initControlPlane";
import { joinConfigPath } from "../../infra/scripts/joinNode";
import {
  aptGetHelper,
  aptSourceLine,
  kubernetesKeyring,
  kubernetesRepoUrl,
  kubernetesSourceList,
  minorOf,
  packagePin,
} from "../../infra/scripts/prepareNode";
import { UpgradeTimeouts, upgradeTimeouts } from "../defaults";

/** The kubelet's kubeconfig: what a worker uses to ask the cluster its version. */
export const kubeletKubeconfig = "/etc/kubernetes/kubelet.conf";
/** The first control plane's static pod manifest whose image tag says which version its control plane runs. */
export const apiserverManifest = "/etc/kubernetes/manifests/kube-apiserver.yaml";

const versionPattern = /^(\d+)\.(\d+)\.(\d+)$/;
/** A Kubernetes Node name (a DNS subdomain); also keeps names safe inside scripts and log lines. */
const nodeNamePattern = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** An etcd client URL as kubeadm's external etcd config lists it. */
const etcdEndpointPattern = /^https:\/\/[A-Za-z0-9.\-]+:\d{1,5}$/;

export interface TargetVersion {
  major: number;
  minor: number;
  patch: number;
}

/** "1.36.0" -> parts; throws (naming the builder) on anything else. */
export function parseTarget(builder: string, version: string): TargetVersion {
  const m = versionPattern.exec(version);
  if (!m) throw new Error(`${builder}: kubernetesVersion must look like 1.35.9 (no "v", no suffix); got ${JSON.stringify(version)}`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

export function assertNodeName(builder: string, what: string, name: string): void {
  if (!nodeNamePattern.test(name)) throw new Error(`${builder}: ${what} must be a Kubernetes node name; got ${JSON.stringify(name)}`);
}

export function assertEtcdEndpoints(builder: string, endpoints: string[]): void {
  if (endpoints.length === 0) throw new Error(`${builder}: external etcd needs at least one endpoint`);
  const bad = endpoints.filter((e) => !etcdEndpointPattern.test(e));
  if (bad.length > 0) throw new Error(`${builder}: etcd endpoints must look like https://10.0.3.10:2379; got ${bad.join(", ")}`);
}

/** The defaults with a builder's overrides (tests shorten them). */
export function timeoutsWith(overrides?: Partial<UpgradeTimeouts>): UpgradeTimeouts {
  const t = { ...upgradeTimeouts, ...(overrides ?? {}) };
  for (const [key, value] of Object.entries(t)) {
    if (!Number.isInteger(value) || value < 0) throw new Error(`upgrade timeout ${key} must be a whole number of seconds >= 0; got ${value}`);
  }
  return t;
}

const fragments = new Map<string, string>();
/** A bash fragment of lib/, read once per process (every step script of a large cluster includes some). */
function fragment(name: string): string {
  let text = fragments.get(name);
  if (text === undefined) {
    text = readFileSync(join(__dirname, "lib", `${name}.sh`), "utf8").trim();
    fragments.set(name, text);
  }
  return text;
}

/** A bash parameter expansion `${expr}`, kept out of the template literal's own `${}` syntax. */
export function bx(expr: string): string {
  return "$" + `{${expr}}`;
}

/** A bash array literal of quoted words. */
export function bashArray(values: string[]): string {
  return `(${values.map(shellQuote).join(" ")})`;
}

/**
 * The target version, the skew guard and the cluster's version. `kubeconfig` is what the node asks the cluster
 * with: admin.conf on a control plane, kubelet.conf on a worker.
 */
export function versionFragment(builder: string, args: { kubernetesVersion: string; kubeconfig: string; timeouts: UpgradeTimeouts }): string {
  const t = parseTarget(builder, args.kubernetesVersion);
  return [
    `VERSION=${shellQuote(args.kubernetesVersion)}`,
    `TARGET_MAJOR=${t.major}`,
    `TARGET_MINOR=${t.minor}`,
    `TARGET_PATCH=${t.patch}`,
    `KUBECONFIG_FILE="$R"${shellQuote(args.kubeconfig)}`,
    `API_VERSION_TIMEOUT=${args.timeouts.apiVersion}`,
    fragment("versions"),
  ].join("\n");
}

/** The target's apt source and pins, apt_get, and the package helpers (needs versionFragment first). */
export function packagesFragment(kubernetesVersion: string, packageRepository?: string): string {
  const minor = minorOf(kubernetesVersion);
  return [
    `PIN=${shellQuote(packagePin(kubernetesVersion))}`,
    `REPO_URL=${shellQuote(kubernetesRepoUrl(minor, packageRepository))}`,
    `KEY_URL=${shellQuote(`${kubernetesRepoUrl(minor, packageRepository)}Release.key`)}`,
    `SOURCE_LINE=${shellQuote(aptSourceLine(minor, packageRepository))}`,
    `KEYRING="$R"${shellQuote(kubernetesKeyring)}`,
    `SOURCE_LIST="$R"${shellQuote(kubernetesSourceList)}`,
    aptGetHelper,
    sandboxImageBash,
    fragment("packages"),
  ].join("\n");
}

/**
 * Removes what an earlier bootstrap left on the node: the kubeadm init and join configurations carry a bootstrap token
 * (and the certificate key), and steps from before they removed their files after use kept them. Runs first in the
 * upgrade steps that run on every node, so the next run of those clears every node of an existing cluster.
 */
export function bootstrapLeftoversFragment(): string {
  return [
    `for leftover in "$R"${shellQuote(initConfigPath)} "$R"${shellQuote(joinConfigPath)}; do`,
    '  if [ -e "$leftover" ]; then',
    '    rm -f "$leftover"',
    '    log "removed ${leftover#"$R"}: a kubeadm configuration with a bootstrap token, left by an earlier bootstrap"',
    "  fi",
    "done",
  ].join("\n");
}

/** A node seen through the admin kubeconfig (TARGET: the node the step is about). */
export function nodeFragment(target: string): string {
  return [`ADMIN_CONF="$R"${shellQuote(nodePaths.adminKubeconfig)}`, `TARGET=${shellQuote(target)}`, fragment("node")].join("\n");
}

/** The version the local control plane runs: the image tag of its kube-apiserver static pod. */
export function apiserverManifestFragment(): string {
  return [
    `APISERVER_MANIFEST="$R"${shellQuote(apiserverManifest)}`,
    "# apiserver_manifest_version: the image tag of the local kube-apiserver (v1.35.9); empty without a manifest.",
    "apiserver_manifest_version() {",
    '  [ -f "$APISERVER_MANIFEST" ] || return 0',
    `  sed -n -E 's#^[[:space:]]*image:[[:space:]]*"?[^"[:space:]]*/kube-apiserver:(v[^"[:space:]@]+).*#\\1#p' "$APISERVER_MANIFEST" | head -n 1`,
    "}",
  ].join("\n");
}

/** Which etcd members a health check covers. */
export type EtcdHealthTarget =
  /** Stacked: one member per control plane, checked through its static pod (etcdctl exists only in the image). */
  | { kind: "stacked"; members: string[] }
  /** External: every endpoint with the apiserver's etcd client certificate (etcdctl, or each member's /health). */
  | { kind: "external"; endpoints: string[] };

/**
 * `check_etcd`: every member healthy, waited for within the etcd bound. Stacked needs ADMIN_CONF (from
 * nodeFragment or set by the builder).
 */
export function etcdFragment(builder: string, etcd: EtcdHealthTarget, timeouts: UpgradeTimeouts): string {
  let health: string;
  let what: string;
  switch (etcd.kind) {
    case "stacked": {
      if (etcd.members.length === 0) throw new Error(`${builder}: stacked etcd needs at least one member`);
      etcd.members.forEach((m) => assertNodeName(builder, "an etcd member", m));
      what = `members ${etcd.members.join(", ")}`;
      health = [
        `ETCD_MEMBERS=${bashArray(etcd.members)}`,
        "# etcd_health: each member's own endpoint, asked inside its static pod with the pod's healthcheck certificate.",
        "etcd_health() {",
        "  local m",
        '  for m in "${ETCD_MEMBERS[@]}"; do',
        '    timeout 60 kubectl --kubeconfig "$ADMIN_CONF" --request-timeout=50s -n kube-system exec "etcd-$m" -- etcdctl \\',
        "      --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \\",
        "      --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key \\",
        '      endpoint health || { echo "etcd member $m is not healthy"; return 1; }',
        "  done",
        "}",
      ].join("\n");
      break;
    }
    case "external": {
      assertEtcdEndpoints(builder, etcd.endpoints);
      what = `endpoints ${etcd.endpoints.join(",")}`;
      health = [
        `ETCD_ENDPOINTS=${shellQuote(etcd.endpoints.join(","))}`,
        `ETCD_ENDPOINT_LIST=${bashArray(etcd.endpoints)}`,
        `ETCD_CA="$R"${shellQuote(apiserverEtcdClientPaths.caFile)}`,
        `ETCD_CERT="$R"${shellQuote(apiserverEtcdClientPaths.certFile)}`,
        `ETCD_KEY="$R"${shellQuote(apiserverEtcdClientPaths.keyFile)}`,
        "# etcd_health: every endpoint, asked with the client certificate the apiserver itself uses for etcd: through",
        "# etcdctl when the control plane has one, else each member's /health endpoint.",
        "etcd_health() {",
        "  local e rc=0",
        "  if command -v etcdctl >/dev/null 2>&1; then",
        '    timeout 60 etcdctl --endpoints="$ETCD_ENDPOINTS" --dial-timeout=3s --command-timeout=5s \\',
        '      --cacert="$ETCD_CA" --cert="$ETCD_CERT" --key="$ETCD_KEY" endpoint health',
        "    return",
        "  fi",
        '  for e in "${ETCD_ENDPOINT_LIST[@]}"; do',
        '    if timeout 30 curl -fsS --max-time 20 --cacert "$ETCD_CA" --cert "$ETCD_CERT" --key "$ETCD_KEY" "$e/health" 2>&1 |',
        "      grep '\"health\":\"true\"' >/dev/null; then",
        '      echo "$e is healthy"',
        "    else",
        '      echo "$e is unhealthy"',
        "      rc=1",
        "    fi",
        "  done",
        '  return "$rc"',
        "}",
      ].join("\n");
      break;
    }
    default: {
      const never: never = etcd;
      throw new Error(`${builder}: unknown etcd kind ${JSON.stringify(never)}`);
    }
  }
  return [`ETCD_HEALTH_TIMEOUT=${timeouts.etcdHealth}`, `ETCD_WHAT=${shellQuote(what)}`, health, fragment("etcd")].join("\n");
}
