import { RunError } from "@pulumi/pulumi/errors";
import * as semver from "semver";
import { Cidr, cidrsOverlap, parseCidr, reach, vpcPrefixRange } from "./cidr";
import * as net from "node:net";
import { ApiEndpointConfig, ClusterConfig, CniName, EtcdTopology, HostsConfig, RawConfig, StaticBastion, StaticHost, configKeys } from "./config";
import { apiserverPort, configLimits, defaults, supportedMinors } from "./defaults";
import { certificateDefaults } from "../lifecycle/defaults";
import { checkChartPath, ProjectFiles, projectFiles, readAddons } from "./addonsConfig";
import { dns1123Label, isObject, q } from "./configValues";
import { cniChart } from "./cni";

/** One problem with the configuration, named by its key path (`workers.maxUnavailable`). */
export interface Problem {
  path: string;
  message: string;
}

/**
 * Thrown once with every problem. A RunError: Pulumi prints its message without a stack trace, and the offline
 * plan prints the problems one per line.
 */
export class ConfigError extends RunError {
  constructor(public readonly problems: Problem[]) {
    super(formatProblems(problems));
    this.name = "ConfigError";
  }
}

export function formatProblems(problems: Problem[]): string {
  return ["Invalid configuration:", ...problems.map((p) => `  ${p.path}: ${p.message}`)].join("\n");
}

const topologies: readonly EtcdTopology[] = ["stacked", "external"];
const cniNames: readonly CniName[] = ["cilium", "calico", "flannel"];
const maxNodesPerRole = 7;

/**
 * The keys each object value may hold. Anything else is a typo and is refused: a misspelt `hostKey` or
 * `allowOpenToWorld` silently ignored would weaken what the operator asked for.
 */
const hostKeys = ["name", "address", "privateAddress", "user", "port", "hostKey"] as const;
const objectKeys: Record<string, readonly string[]> = {
  controlPlane: ["count", "instanceType", "volumeGiB"],
  workers: ["count", "instanceType", "volumeGiB", "maxUnavailable"],
  etcd: ["count", "instanceType", "volumeGiB", "version"],
  network: ["vpcCidr", "availabilityZones", "podCidr", "serviceCidr", "vpcId", "privateSubnetIds", "publicSubnetIds"],
  apiAccess: ["allowedCidrs", "internal", "allowOpenToWorld"],
  ssh: ["allowedCidrs", "allowOpenToWorld", "publicKey"],
  cni: ["name", "version", "chartPath", "values"],
  hosts: ["provider", "controlPlanes", "workers", "etcd", "bastion"],
  "hosts.bastion": ["address", "user", "port", "hostKey"],
  apiEndpoint: ["address", "haproxy", "virtualIp", "interface", "port"],
  snapshots: ["schedule", "keep", "retentionDays", "bucket", "upload", "requestId", "kmsKeyId"],
  restore: ["snapshot", "requestId"],
  certificates: ["renewBeforeDays"],
  images: ["repository", "insecure"],
  packages: ["repository"],
  kubelet: ["allowCgroupV1"],
};

/**
 * Reserved node names. `cluster` prefixes the cluster-wide steps (`cluster-upgrade-preflight`,
 * `cluster-wait-nodes-ready`): a node of that name would share their names and the upgrade plan refuses it.
 */
export const reservedNodeNames = ["cluster"] as const;

/**
 * Validates the whole raw configuration. Pure: collects every problem with its key path, and returns either the
 * complete config (defaults filled in) or the list of problems. Nothing is registered before this passes.
 * Invariant: it never throws, and it checks every size bound before it builds anything from a size (a node list, a
 * rule per range), so no value makes it slow or large.
 */
/** What validation knows beyond the raw config: the cluster's name, `<project>-<stack>` (infra/program.ts). */
export interface ValidationContext {
  clusterName: string;
  /** The project's files, for the paths add-ons name (default: the working directory, where Pulumi runs the program). */
  files?: ProjectFiles;
  /** Keys that must be secrets but that the stack holds in plain text (readRawConfig's plainSecrets): each refused. */
  plainSecrets?: string[];
}

export function validateConfig(raw: RawConfig, context?: ValidationContext): { config: ClusterConfig; problems: [] } | { problems: Problem[] } {
  const problems: Problem[] = [];
  const r = new Reader(raw, problems);
  // The paths cni.chartPath and the add-ons name are the project's (the program runs in its directory).
  const files = context?.files ?? projectFiles(process.cwd());

  for (const key of Object.keys(raw)) {
    if (!(configKeys as readonly string[]).includes(key)) {
      problems.push({ path: key, message: `unknown key; known keys: ${configKeys.join(", ")}` });
    }
  }
  for (const [path, keys] of Object.entries(objectKeys)) r.knownKeys(path, keys);
  for (const key of context?.plainSecrets ?? []) {
    const command = key === "sshPrivateKey" ? "pulumi config set --secret sshPrivateKey < KEY" : `pulumi config set --secret ${key} VALUE`;
    problems.push({ path: key, message: `is a secret, but the stack holds it in plain text: set it with \`${command}\` (the stack file then keeps it encrypted)` });
  }

  const kubernetesVersion = r.string("kubernetesVersion", defaults.kubernetesVersion);
  problems.push(...checkKubernetesVersion("kubernetesVersion", kubernetesVersion));

  const etcdTopology = r.oneOf("etcdTopology", topologies, defaults.etcdTopology);

  const hosts = readHosts(r, raw, problems);
  const staticHosts = hosts.provider === "static" ? hosts : undefined;
  if (staticHosts) {
    // The host lists decide the counts; controlPlane.count, workers.count and etcd.count (which Pulumi.yaml's
    // defaults always supply) are not read with static hosts.
    if (etcdTopology === "stacked" && staticHosts.etcd.length > 0) problems.push({ path: "hosts.etcd", message: 'lists etcd hosts, but etcdTopology is "stacked"' });
  }
  const controlPlane = {
    count: staticHosts ? staticHosts.controlPlanes.length : r.integer("controlPlane.count", defaults.controlPlane.count),
    instanceType: r.instanceType("controlPlane.instanceType", defaults.controlPlane.instanceType),
    volumeGiB: r.integer("controlPlane.volumeGiB", defaults.controlPlane.volumeGiB),
  };
  const controlPlaneCountOk = controlPlane.count >= 1 && controlPlane.count <= maxNodesPerRole;
  if (!controlPlaneCountOk) {
    if (!staticHosts || controlPlane.count > 0) problems.push({ path: "controlPlane.count", message: `must be between 1 and ${maxNodesPerRole}, got ${controlPlane.count}` });
  } else if (etcdTopology === "stacked" && controlPlane.count % 2 === 0) {
    problems.push({
      path: "controlPlane.count",
      message: `must be odd with stacked etcd (each control plane is an etcd member; ${controlPlane.count} members tolerate no more failures than ${controlPlane.count - 1}), got ${controlPlane.count}`,
    });
  }
  checkVolume(problems, "controlPlane.volumeGiB", controlPlane.volumeGiB);

  const workers = {
    count: staticHosts ? staticHosts.workers.length : r.integer("workers.count", defaults.workers.count),
    instanceType: r.instanceType("workers.instanceType", defaults.workers.instanceType),
    volumeGiB: r.integer("workers.volumeGiB", defaults.workers.volumeGiB),
    maxUnavailable: r.integer("workers.maxUnavailable", defaults.workers.maxUnavailable),
  };
  const workerCountOk = workers.count >= 0 && workers.count <= configLimits.maxWorkers;
  if (workers.count < 0) problems.push({ path: "workers.count", message: `must be 0 or more, got ${workers.count}` });
  else if (!workerCountOk) problems.push({ path: "workers.count", message: maxWorkersMessage(workers.count) });
  if (workers.maxUnavailable < 1) {
    problems.push({ path: "workers.maxUnavailable", message: `must be at least 1 (workers drained at a time during an upgrade), got ${workers.maxUnavailable}` });
  } else if (workers.maxUnavailable > configLimits.maxWorkers) {
    problems.push({ path: "workers.maxUnavailable", message: `must be at most ${configLimits.maxWorkers} (the largest worker pool), got ${workers.maxUnavailable}` });
  }
  checkVolume(problems, "workers.volumeGiB", workers.volumeGiB);

  const etcdGiven = raw.etcd !== undefined && !(staticHosts && etcdTopology === "stacked" && isObject(raw.etcd) && Object.keys(raw.etcd).length === 0);
  if (etcdGiven && etcdTopology === "stacked") {
    problems.push({ path: "etcd", message: 'etcd settings apply only to etcdTopology "external"; with "stacked", etcd runs on the control planes (remove the etcd key or set etcdTopology: external)' });
  }
  const etcd = {
    count: staticHosts && etcdTopology === "external" ? staticHosts.etcd.length : r.integer("etcd.count", defaults.etcd.count),
    instanceType: r.instanceType("etcd.instanceType", defaults.etcd.instanceType),
    volumeGiB: r.integer("etcd.volumeGiB", defaults.etcd.volumeGiB),
    version: r.string("etcd.version", defaults.etcd.version),
  };
  if (etcdTopology === "external") {
    if (etcd.count < 1 || etcd.count > maxNodesPerRole || etcd.count % 2 === 0) {
      problems.push({ path: "etcd.count", message: `must be odd and between 1 and ${maxNodesPerRole} (an even member count adds no fault tolerance), got ${etcd.count}` });
    }
    if (!/^\d+\.\d+\.\d+$/.test(etcd.version) || !semver.valid(etcd.version)) {
      problems.push({ path: "etcd.version", message: `must be an etcd release like 3.5.16 (x.y.z), got ${q(etcd.version)}` });
    } else if (semver.lt(etcd.version, "3.4.0")) {
      problems.push({ path: "etcd.version", message: `must be 3.4.0 or later, got ${etcd.version}` });
    }
    checkVolume(problems, "etcd.volumeGiB", etcd.volumeGiB);
  }

  const network = readNetwork(r, hosts.provider, problems);
  const apiAccess = {
    allowedCidrs: readAllowedCidrs(r, "apiAccess.allowedCidrs", defaults.apiAccess.allowedCidrs),
    internal: r.boolean("apiAccess.internal", defaults.apiAccess.internal),
    allowOpenToWorld: r.boolean("apiAccess.allowOpenToWorld", defaults.apiAccess.allowOpenToWorld),
  };
  const ssh = {
    allowedCidrs: readAllowedCidrs(r, "ssh.allowedCidrs", defaults.ssh.allowedCidrs),
    allowOpenToWorld: r.boolean("ssh.allowOpenToWorld", defaults.ssh.allowOpenToWorld),
    publicKey: r.optionalString("ssh.publicKey"),
  };
  problems.push(...worldOpenProblems("apiAccess.allowedCidrs", apiAccess.allowedCidrs, apiAccess.allowOpenToWorld, "the Kubernetes API"));
  problems.push(...worldOpenProblems("ssh.allowedCidrs", ssh.allowedCidrs, ssh.allowOpenToWorld, "SSH to the bastion"));
  if (hosts.provider === "static") {
    // No security group exists on static hosts: a range listed here would protect nothing.
    for (const [path, list] of [["apiAccess.allowedCidrs", apiAccess.allowedCidrs], ["ssh.allowedCidrs", ssh.allowedCidrs]] as const) {
      if (list.length > 0) problems.push({ path, message: "applies only to hosts.provider aws: on static hosts the program creates no firewall rules (restrict access on your own network)" });
    }
  }
  if (ssh.allowedCidrs.length === 0 && hosts.provider === "aws") {
    problems.push({ path: "ssh.allowedCidrs", message: "must list the ranges `pulumi up` runs from: every node step reaches its node over SSH through the bastion" });
  }
  const hasPrivateKey = raw.sshPrivateKey !== undefined;
  if (ssh.publicKey !== undefined && !hasPrivateKey) {
    problems.push({ path: "sshPrivateKey", message: "is required with ssh.publicKey: set it with `pulumi config set --secret sshPrivateKey < key`" });
  }
  if (hosts.provider === "static" && !hasPrivateKey) {
    problems.push({ path: "sshPrivateKey", message: "is required with static hosts: the key every step logs in with (`pulumi config set --secret sshPrivateKey < key`)" });
  }
  if (ssh.publicKey === undefined && hasPrivateKey && hosts.provider === "aws") {
    problems.push({ path: "ssh.publicKey", message: "is required with sshPrivateKey (the matching OpenSSH public key)" });
  }
  if (ssh.publicKey !== undefined) {
    // EC2 imports ed25519 and RSA key pairs only.
    const key = parseOpenSshPublicKey(ssh.publicKey, ["ssh-ed25519", "ssh-rsa"], false);
    // Kept verbatim: the key pair's publicKey replaces the key pair (and with it every instance) when it changes.
    if (typeof key === "string") problems.push({ path: "ssh.publicKey", message: `must be an OpenSSH public key (ssh-ed25519 AAAA…): ${key}` });
  }

  const cniName = r.oneOf("cni.name", cniNames, defaults.cni.name);
  const cniChartPath = r.optionalString("cni.chartPath");
  const cniValues = r.value("cni.values") ?? {};
  if (!isObject(cniValues)) problems.push({ path: "cni.values", message: "must be an object (chart values merged over the program's)" });
  const cni = {
    name: cniName,
    version: r.string("cni.version", defaults.cni.versions[cniName]),
    ...(cniChartPath !== undefined ? { chartPath: cniChartPath } : {}),
    values: isObject(cniValues) ? cniValues : {},
  };
  const cniVersionProblem = checkCniVersion(cniName, cni.version);
  if (cniVersionProblem) problems.push({ path: "cni.version", message: cniVersionProblem });
  const chartPathProblem = cniChartPath === undefined ? undefined : checkChartPath(cniChartPath, files);
  if (chartPathProblem) problems.push({ path: "cni.chartPath", message: chartPathProblem });

  const apiEndpoint = readApiEndpoint(r, raw, hosts.provider, problems);
  if (staticHosts && apiEndpoint?.kind === "haproxy" && net.isIPv4(apiEndpoint.virtualIp)) {
    for (const [role, list] of [["controlPlanes", staticHosts.controlPlanes], ["workers", staticHosts.workers], ["etcd", staticHosts.etcd]] as const) {
      list.forEach((h, i) => {
        if (h.privateAddress === apiEndpoint.virtualIp) {
          problems.push({ path: "apiEndpoint.virtualIp", message: `${apiEndpoint.virtualIp} is hosts.${role}[${i}].privateAddress: the virtual IP must be a free address, not a node's` });
        }
      });
    }
  }

  const maintenance = readMaintenance(r, staticHosts, controlPlaneCountOk && workerCountOk ? { controlPlanes: controlPlane.count, workers: workers.count } : undefined, problems);
  const snapshots = readSnapshots(r, hosts.provider, problems);
  const restore = readRestore(r, raw, problems, context && { clusterName: context.clusterName, provider: hosts.provider, bucket: snapshots.bucket });
  const renewBeforeDays = r.integer("certificates.renewBeforeDays", certificateDefaults.renewBeforeDays);
  if (renewBeforeDays < 1 || renewBeforeDays > 364) {
    problems.push({ path: "certificates.renewBeforeDays", message: `must be between 1 and 364 (kubeadm's certificates live 365 days), got ${renewBeforeDays}` });
  }
  const certificates = { renewBeforeDays };
  const images = readImages(r, problems);
  const packageRepository = r.optionalString("packages.repository");
  if (packageRepository !== undefined && !/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9._~%:/-]*)?$/.test(packageRepository)) {
    problems.push({ path: "packages.repository", message: `must be an http(s) URL of a repository in pkgs.k8s.io's layout (its v1.35/deb/ holds the packages and Release.key), like https://pkgs.k8s.io/core:/stable:, got ${q(packageRepository)}` });
  }
  const kubelet = { allowCgroupV1: r.boolean("kubelet.allowCgroupV1", false) };
  const packages = packageRepository !== undefined ? { repository: packageRepository.replace(/\/+$/, "") } : {};
  const cniNamespace = cniChart(cniName, network.podCidr).namespace;
  const { addons, problems: addonProblems } = readAddons(raw.addons, files, cniNamespace === "kube-system" ? [] : [cniNamespace]);
  problems.push(...addonProblems);

  if (problems.length > 0) return { problems };
  return {
    config: { kubernetesVersion, etcdTopology, controlPlane, workers, etcd, network, apiAccess, ssh, cni, maintenance, hosts, apiEndpoint, snapshots, restore, certificates, images, packages, kubelet, addons },
    problems: [],
  };
}

/** An image repository as kubeadm's imageRepository takes it: a registry host (lower case, optional port), a path. */
const imageRepositoryPattern = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:\d{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;

function readImages(r: Reader, problems: Problem[]): ClusterConfig["images"] {
  const repository = r.optionalString("images.repository");
  const insecure = r.boolean("images.insecure", false);
  if (repository !== undefined && !imageRepositoryPattern.test(repository)) {
    problems.push({ path: "images.repository", message: `must be a registry host with an optional port and path, like registry.example.com:5000/k8s (no scheme, lower case), got ${q(repository)}` });
  }
  if (insecure && repository === undefined) problems.push({ path: "images.insecure", message: "applies only with images.repository (registry.k8s.io is HTTPS)" });
  return { ...(repository !== undefined ? { repository } : {}), insecure };
}

function maxWorkersMessage(count: number): string {
  return `must be at most ${configLimits.maxWorkers}, got ${count}: each worker is six resources and its steps run over SSH through the one bastion, and Pulumi holds the whole stack in memory (1,000 workers plan at 1.8 GiB); run a larger fleet as several clusters`;
}

// ---- network ------------------------------------------------------------------------------------------------

/** AZ names: us-east-1a, eu-west-2c, local zones us-west-2-lax-1a. */
const zonePattern = /^[a-z]{2}(-[a-z0-9]+)+[a-z]$/;
const vpcIdPattern = /^vpc-([0-9a-f]{8}|[0-9a-f]{17})$/;
const subnetIdPattern = /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/;

function readNetwork(r: Reader, provider: HostsConfig["provider"], problems: Problem[]): ClusterConfig["network"] {
  const azRaw = r.value("network.availabilityZones");
  let availabilityZones: string[] = [];
  let availabilityZoneCount: number = defaults.network.availabilityZones;
  if (azRaw === undefined) {
    // default count
  } else if (typeof azRaw === "number" && Number.isInteger(azRaw)) {
    availabilityZoneCount = azRaw;
    if (azRaw < 1 || azRaw > 3) {
      problems.push({ path: "network.availabilityZones", message: `must be 1 to 3 zones, got ${azRaw}` });
      availabilityZoneCount = defaults.network.availabilityZones;
    }
  } else if (Array.isArray(azRaw) && azRaw.length <= 3 && azRaw.every((z) => typeof z === "string" && z.length > 0)) {
    availabilityZones = azRaw as string[];
    availabilityZoneCount = azRaw.length;
    if (azRaw.length < 1) problems.push({ path: "network.availabilityZones", message: `must list 1 to 3 zones, got ${azRaw.length}` });
    availabilityZones.forEach((z, i) => {
      if (!zonePattern.test(z)) problems.push({ path: `network.availabilityZones[${i}]`, message: `must be an availability zone name like eu-west-1a, got ${q(z)}` });
      else if (availabilityZones.indexOf(z) !== i) {
        problems.push({ path: `network.availabilityZones[${i}]`, message: `${z} is listed twice: one subnet per zone, and two control planes in one zone fall together` });
      }
    });
  } else if (Array.isArray(azRaw) && azRaw.length > 3) {
    problems.push({ path: "network.availabilityZones", message: `must list 1 to 3 zones, got ${azRaw.length}` });
  } else {
    problems.push({ path: "network.availabilityZones", message: "must be a zone count (1 to 3) or a list of zone names" });
  }
  const network: ClusterConfig["network"] = {
    vpcCidr: r.string("network.vpcCidr", defaults.network.vpcCidr),
    availabilityZones,
    availabilityZoneCount,
    podCidr: r.string("network.podCidr", defaults.network.podCidr),
    serviceCidr: r.string("network.serviceCidr", defaults.network.serviceCidr),
  };
  const vpcId = r.optionalString("network.vpcId");
  const privateSubnetIds = r.stringList("network.privateSubnetIds", [], 16);
  const publicSubnetIds = r.stringList("network.publicSubnetIds", [], 16);
  if (vpcId !== undefined) {
    if (!vpcIdPattern.test(vpcId)) problems.push({ path: "network.vpcId", message: `must be a VPC id like vpc-0123456789abcdef0, got ${q(vpcId)}` });
    if (privateSubnetIds.length === 0) problems.push({ path: "network.privateSubnetIds", message: "must list the private subnets of network.vpcId (nodes run there)" });
    if (publicSubnetIds.length === 0 && provider === "aws") {
      problems.push({ path: "network.publicSubnetIds", message: "must list at least one public subnet of network.vpcId: the bastion runs there (and an internet-facing API load balancer, apiAccess.internal: false)" });
    }
    const seen = new Map<string, string>();
    for (const [path, ids] of [["network.privateSubnetIds", privateSubnetIds], ["network.publicSubnetIds", publicSubnetIds]] as const) {
      ids.forEach((id, i) => {
        const at = `${path}[${i}]`;
        if (!subnetIdPattern.test(id)) problems.push({ path: at, message: `must be a subnet id like subnet-0123456789abcdef0, got ${q(id)}` });
        else if (seen.has(id)) problems.push({ path: at, message: `${id} is also ${seen.get(id)}: each subnet is listed once, private or public` });
        else seen.set(id, at);
      });
    }
    if (availabilityZones.length > 0) {
      problems.push({ path: "network.availabilityZones", message: "must not list zones with network.vpcId: the zones are those of the given subnets" });
    }
    network.existing = { vpcId, privateSubnetIds, publicSubnetIds };
  } else if (privateSubnetIds.length > 0 || publicSubnetIds.length > 0) {
    problems.push({ path: "network.vpcId", message: "is required when subnet ids are given" });
  }
  const cidrs: [string, string][] = [
    ["network.vpcCidr", network.vpcCidr],
    ["network.podCidr", network.podCidr],
    ["network.serviceCidr", network.serviceCidr],
  ];
  const parsed = cidrs.map(([path, value]) => [path, parseCidr(value)] as const);
  for (const [path, value] of cidrs) {
    if (!parseCidr(value)) problems.push({ path, message: `must be an IPv4 CIDR like 10.0.0.0/16 (network address, no host bits), got ${q(value)}` });
  }
  const vpcBlock = parseCidr(network.vpcCidr);
  if (vpcBlock && network.existing === undefined && (vpcBlock.prefix < vpcPrefixRange.min || vpcBlock.prefix > vpcPrefixRange.max)) {
    problems.push({ path: "network.vpcCidr", message: `must be a /${vpcPrefixRange.min} to /${vpcPrefixRange.max} block, got /${vpcBlock.prefix}` });
  }
  for (let i = 0; i < parsed.length; i++) {
    for (let j = i + 1; j < parsed.length; j++) {
      const [pa, a] = parsed[i];
      const [pb, b] = parsed[j];
      if (a && b && cidrsOverlap(a, b)) {
        problems.push({ path: pb, message: `${cidrs[j][1]} overlaps ${pa} (${cidrs[i][1]}); pod, service and VPC ranges must be disjoint` });
      }
    }
  }
  return network;
}

/** A list of IPv4 CIDRs, bounded (one security-group rule each) and without repeats (a rule's name is its range). */
function readAllowedCidrs(r: Reader, path: string, fallback: readonly string[]): string[] {
  const list = r.stringList(path, fallback, configLimits.maxAllowedCidrs, `one security-group ingress rule each, and AWS allows 60 inbound rules per group by default`);
  list.forEach((c, i) => {
    if (!parseCidr(c)) r.report(`${path}[${i}]`, `must be an IPv4 CIDR, got ${q(c)}`);
    else if (list.indexOf(c) !== i) r.report(`${path}[${i}]`, `${c} is listed twice`);
  });
  return list;
}

/**
 * The world-open guard: ranges that together cover the whole IPv4 space, or more public addresses than one /8, need
 * the key's `allowOpenToWorld` opt-in. Splitting 0.0.0.0/0 into halves or many wide blocks does not get around it.
 */
export function worldOpenProblems(path: string, cidrs: string[], allowOpenToWorld: boolean, what: string): Problem[] {
  if (allowOpenToWorld) return [];
  const blocks = cidrs.map(parseCidr).filter((c): c is Cidr => c !== undefined);
  if (blocks.length === 0) return [];
  const optIn = `${path.split(".")[0]}.allowOpenToWorld: true`;
  const { wholeInternet, publicAddresses } = reach(blocks);
  const named = blocks.map((b) => `${b.address}/${b.prefix}`).join(", ");
  const listed = blocks.length === 1 ? `${named} covers` : `${named} together cover`;
  if (wholeInternet) {
    return [{ path, message: `${listed} the whole IPv4 space: ${what} would be open to the entire internet; list your own ranges, or set ${optIn} to accept that` }];
  }
  if (publicAddresses > configLimits.maxPublicAddresses) {
    return [{
      path,
      message: `${blocks.length === 1 ? `${named} reaches` : `${named} together reach`} ${publicAddresses.toLocaleString("en-US")} public addresses, more than one /8 (the largest block a single organisation holds): ${what} would be open to much of the internet; list your own ranges, or set ${optIn} to accept that`,
    }];
  }
  return [];
}

// ---- SSH keys -----------------------------------------------------------------------------------------------

/** The key types @pulumi/command can pin a host to (golang.org/x/crypto/ssh ParseAuthorizedKey + FixedHostKey). */
export const hostKeyTypes = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"] as const;

/**
 * Parses one OpenSSH public key line (`TYPE BASE64 [comment]`), as ParseAuthorizedKey reads it: the base64 blob must
 * decode and begin with the same type name (with `checkKeyData`, an ed25519 key must also hold its 32 bytes). Returns
 * the normalised line (type and blob, comment dropped) or why not.
 */
export function parseOpenSshPublicKey(value: string, types: readonly string[], checkKeyData = true): { type: string; line: string } | string {
  const text = value.replace(/[\r\n]+$/, "");
  if (/[\r\n]/.test(text)) return "must be a single line (one key, no trailing lines)";
  const fields = text.trim().split(/\s+/);
  if (fields.length >= 2 && !types.includes(fields[0]) && types.includes(fields[1])) {
    return `starts with ${q(fields[0])} before the key type: drop the host name that ssh-keyscan prints first`;
  }
  const [type, blob] = fields;
  if (!types.includes(type)) return `the key type must be one of ${types.join(", ")}, got ${q(type ?? "")}`;
  if (blob === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob) || blob.length % 4 !== 0) return "the key is not base64";
  const bytes = Buffer.from(blob, "base64");
  const nameLength = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  if (nameLength < 1 || 4 + nameLength > bytes.length || bytes.subarray(4, 4 + nameLength).toString("latin1") !== type) {
    return `the key data does not hold a ${type} key`;
  }
  if (checkKeyData && type === "ssh-ed25519") {
    const keyLength = 4 + nameLength + 4 <= bytes.length ? bytes.readUInt32BE(4 + nameLength) : -1;
    if (keyLength !== 32 || bytes.length !== 4 + nameLength + 4 + 32) return "the key data is not a 32-byte ed25519 key";
  }
  return { type, line: `${type} ${blob}` };
}

function readHostKey(r: Reader, path: string): string | undefined {
  const value = r.optionalString(path);
  if (value === undefined) return undefined;
  const key = parseOpenSshPublicKey(value, hostKeyTypes);
  if (typeof key === "string") {
    r.report(path, `must be the host's OpenSSH public host key (a line of /etc/ssh/ssh_host_ed25519_key.pub, or ssh-keyscan -t ed25519 HOST without the host name): ${key}`);
    return undefined;
  }
  return key.line;
}

// ---- static hosts -------------------------------------------------------------------------------------------

const hostOrIp = /^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?$/;
/** A login name: what useradd accepts by default, plus upper case; no spaces, no option-like leading dash. */
const userPattern = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;

function checkAddress(r: Reader, path: string, address: string) {
  if (!hostOrIp.test(address) || (/^[\d.]+$/.test(address) && !net.isIPv4(address))) r.report(path, `must be a host name or IP address, got ${q(address)}`);
}

function checkUser(r: Reader, path: string, user: string) {
  if (!userPattern.test(user)) r.report(path, `must be a login name (letters, digits, "_", ".", "-"; no spaces; at most 32), got ${q(user)}`);
}

function checkPort(r: Reader, path: string, port: number, what = "a TCP port") {
  if (port < 1 || port > 65535) r.report(path, `must be ${what} (1-65535), got ${port}`);
}

function readStaticHostList(r: Reader, path: string, max: number, problems: Problem[]): StaticHost[] {
  const value = r.value(path);
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push({ path, message: "must be a list of hosts {name, address, privateAddress, user, port, hostKey}" });
    return [];
  }
  if (value.length > max) {
    problems.push({ path, message: `lists ${value.length} hosts, at most ${max}` });
    return [];
  }
  return value.map((_, i) => {
    const at = `${path}[${i}]`;
    if (!isObject(value[i])) {
      r.report(at, "must be a host {name, address, privateAddress, user, port, hostKey}");
      return { name: "", address: "", privateAddress: "", user: "", port: 22 };
    }
    r.knownKeys(at, hostKeys);
    const name = r.string(`${at}.name`, "");
    const address = r.string(`${at}.address`, "");
    const hostKey = readHostKey(r, `${at}.hostKey`);
    const host: StaticHost = {
      name,
      address,
      privateAddress: r.string(`${at}.privateAddress`, address),
      user: r.string(`${at}.user`, defaults.staticHost.user),
      port: r.integer(`${at}.port`, defaults.staticHost.port),
      ...(hostKey !== undefined ? { hostKey } : {}),
    };
    if (!dns1123Label.test(name)) problems.push({ path: `${at}.name`, message: `must be a lowercase DNS label (the Kubernetes node name), got ${q(name)}` });
    else if ((reservedNodeNames as readonly string[]).includes(name)) {
      problems.push({ path: `${at}.name`, message: `${q(name)} is reserved: the program's cluster-wide steps are named ${name}-* (${name}-upgrade-preflight, ${name}-wait-nodes-ready)` });
    }
    checkAddress(r, `${at}.address`, address);
    if (!net.isIPv4(host.privateAddress)) problems.push({ path: `${at}.privateAddress`, message: `must be the node's IPv4 address on the cluster network, got ${q(host.privateAddress)}` });
    checkUser(r, `${at}.user`, host.user);
    checkPort(r, `${at}.port`, host.port);
    return host;
  });
}

/** hosts.provider aws (default) or static with its host lists. */
function readHosts(r: Reader, raw: RawConfig, problems: Problem[]): HostsConfig {
  if (raw.hosts === undefined) return { provider: "aws" };
  const provider = r.oneOf("hosts.provider", ["aws", "static"] as const, "aws");
  if (provider === "aws") {
    for (const key of ["controlPlanes", "workers", "etcd", "bastion"]) {
      if (r.value(`hosts.${key}`) !== undefined) problems.push({ path: `hosts.${key}`, message: 'applies only to hosts.provider "static"' });
    }
    return { provider };
  }
  const controlPlanes = readStaticHostList(r, "hosts.controlPlanes", maxNodesPerRole, problems);
  const workers = readStaticHostList(r, "hosts.workers", configLimits.maxWorkers, problems);
  const etcd = readStaticHostList(r, "hosts.etcd", maxNodesPerRole, problems);
  if (controlPlanes.length === 0 && !problems.some((p) => p.path.startsWith("hosts.controlPlanes"))) {
    problems.push({ path: "hosts.controlPlanes", message: "must list at least one control plane" });
  }
  const all = [
    ...controlPlanes.map((h, i) => ({ h, at: `hosts.controlPlanes[${i}]` })),
    ...workers.map((h, i) => ({ h, at: `hosts.workers[${i}]` })),
    ...etcd.map((h, i) => ({ h, at: `hosts.etcd[${i}]` })),
  ];
  const names = all.map(({ h }) => h.name);
  const duplicate = names.find((n, i) => n !== "" && names.indexOf(n) !== i);
  if (duplicate) problems.push({ path: "hosts", message: `names the host ${q(duplicate)} twice` });
  // Two entries for one machine: the retirement of one would reset the other (`kubeadm reset` on the real node).
  const sshTargets = new Map<string, string>();
  const privateAddresses = new Map<string, string>();
  for (const { h, at } of all) {
    if (h.address === "") continue;
    const target = `${h.address.toLowerCase()}:${h.port}`;
    const first = sshTargets.get(target);
    if (first) problems.push({ path: `${at}.address`, message: `${q(h.address)} port ${h.port} is also ${first}.address: two hosts cannot be one machine` });
    else sshTargets.set(target, at);
    const firstPrivate = privateAddresses.get(h.privateAddress);
    if (firstPrivate && net.isIPv4(h.privateAddress)) {
      problems.push({ path: `${at}.privateAddress`, message: `${h.privateAddress} is also ${firstPrivate}.privateAddress: every node needs its own address on the cluster network` });
    } else privateAddresses.set(h.privateAddress, at);
  }
  let bastion: StaticBastion | undefined;
  const bastionRaw = r.value("hosts.bastion");
  if (bastionRaw !== undefined) {
    if (!isObject(bastionRaw)) {
      r.report("hosts.bastion", "must be an object {address, user, port, hostKey}");
    } else {
      const hostKey = readHostKey(r, "hosts.bastion.hostKey");
      bastion = {
        address: r.string("hosts.bastion.address", ""),
        user: r.string("hosts.bastion.user", defaults.staticHost.user),
        port: r.integer("hosts.bastion.port", defaults.staticHost.port),
        ...(hostKey !== undefined ? { hostKey } : {}),
      };
      checkAddress(r, "hosts.bastion.address", bastion.address);
      checkUser(r, "hosts.bastion.user", bastion.user);
      checkPort(r, "hosts.bastion.port", bastion.port);
    }
  }
  return { provider, controlPlanes, workers, etcd, ...(bastion ? { bastion } : {}) };
}

// ---- API endpoint -------------------------------------------------------------------------------------------

/** A Linux interface name (IFNAMSIZ: at most 15 characters), as keepalived.conf takes it. */
const interfacePattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}$/;

/**
 * Ports HAProxy must not take on a control plane (it binds every address): SSH and what kubeadm's control plane,
 * kube-proxy and the CNIs listen on there, and the NodePort range kube-proxy forwards.
 */
export const portsTakenOnControlPlanes: readonly { from: number; to: number; what: string }[] = [
  { from: 22, to: 22, what: "SSH" },
  { from: 179, to: 179, what: "Calico BGP" },
  { from: 2379, to: 2380, what: "etcd" },
  { from: 4240, to: 4240, what: "Cilium health" },
  { from: 4244, to: 4244, what: "Hubble" },
  { from: 5473, to: 5473, what: "Calico Typha" },
  { from: apiserverPort, to: apiserverPort, what: "the apiserver" },
  { from: 9099, to: 9099, what: "Calico Felix health" },
  { from: 9234, to: 9234, what: "Cilium operator" },
  { from: 9879, to: 9879, what: "Cilium agent health" },
  { from: 10248, to: 10250, what: "the kubelet and kube-proxy" },
  { from: 10256, to: 10259, what: "kube-proxy health, kube-controller-manager and kube-scheduler" },
  { from: 30000, to: 32767, what: "the NodePort range" },
];

/** apiEndpoint: static hosts need one (an existing load balancer, or HAProxy + keepalived with a VIP). */
function readApiEndpoint(r: Reader, raw: RawConfig, provider: "aws" | "static", problems: Problem[]): ApiEndpointConfig | undefined {
  if (provider === "aws") {
    if (raw.apiEndpoint !== undefined) problems.push({ path: "apiEndpoint", message: "applies only to static hosts; on AWS the program builds the API load balancer (see apiAccess)" });
    return undefined;
  }
  if (raw.apiEndpoint !== undefined && !isObject(raw.apiEndpoint)) return undefined; // knownKeys reported it
  const address = r.optionalString("apiEndpoint.address");
  const haproxy = r.boolean("apiEndpoint.haproxy", false);
  if (address !== undefined && haproxy) {
    problems.push({ path: "apiEndpoint", message: "set either address (an existing load balancer) or haproxy: true, not both" });
    return undefined;
  }
  if (address !== undefined) {
    const m = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
    if (!m || !hostOrIp.test(m[1])) problems.push({ path: "apiEndpoint.address", message: `must be host:port, got ${q(address)}` });
    else if (Number(m[2]) < 1 || Number(m[2]) > 65535) problems.push({ path: "apiEndpoint.address", message: `port ${m[2]} is not a TCP port (1-65535), in ${q(address)}` });
    return { kind: "existing", address };
  }
  if (haproxy) {
    const virtualIp = r.string("apiEndpoint.virtualIp", "");
    if (!net.isIPv4(virtualIp)) problems.push({ path: "apiEndpoint.virtualIp", message: `must be a free IPv4 address on the control planes' network, got ${q(virtualIp)}` });
    const iface = r.nonEmptyString("apiEndpoint.interface", "eth0");
    if (iface.trim() !== "" && !interfacePattern.test(iface)) {
      problems.push({ path: "apiEndpoint.interface", message: `must be a network interface name like eth0 or ens5 (at most 15 letters, digits, "_", ".", ":", "@", "-"), got ${q(iface)}` });
    }
    const port = r.integer("apiEndpoint.port", defaults.haproxyPort);
    const taken = portsTakenOnControlPlanes.find((p) => port >= p.from && port <= p.to);
    if (port === apiserverPort) problems.push({ path: "apiEndpoint.port", message: "must not be 6443: every control plane's apiserver already listens there" });
    else if (port < 1 || port > 65535) problems.push({ path: "apiEndpoint.port", message: `must be a TCP port (1-65535), got ${port}` });
    else if (taken) problems.push({ path: "apiEndpoint.port", message: `must not be ${port}: ${taken.what} uses it on the control planes, where HAProxy listens on every address` });
    return { kind: "haproxy", virtualIp, interface: iface, port };
  }
  problems.push({ path: "apiEndpoint", message: "static hosts need an API endpoint: address (an existing load balancer, host:port) or haproxy: true with virtualIp" });
  return undefined;
}

// ---- maintenance, snapshots, restore ------------------------------------------------------------------------

function readMaintenance(
  r: Reader,
  staticHosts: Extract<HostsConfig, { provider: "static" }> | undefined,
  counts: { controlPlanes: number; workers: number } | undefined,
  problems: Problem[],
): string[] {
  const maintenance = r.stringList("maintenance", [], configLimits.maxMaintenance);
  // Node names are built only from counts already within their bounds.
  if (counts === undefined || maintenance.length === 0) return maintenance;
  const controlPlanes = staticHosts ? staticHosts.controlPlanes.map((h) => h.name) : Array.from({ length: counts.controlPlanes }, (_, i) => `cp-${i}`);
  const workers = staticHosts ? staticHosts.workers.map((h) => h.name) : Array.from({ length: counts.workers }, (_, i) => `worker-${i}`);
  const kubeNodes = new Set([...controlPlanes, ...workers]);
  const listed = [...kubeNodes].join(", ");
  maintenance.forEach((name, i) => {
    if (!kubeNodes.has(name)) problems.push({ path: `maintenance[${i}]`, message: `${q(name)} is not a node of this cluster (nodes: ${listed})` });
  });
  if (new Set(maintenance).size !== maintenance.length) problems.push({ path: "maintenance", message: "lists a node twice" });
  const held = new Set(maintenance);
  const heldWorkers = workers.filter((w) => held.has(w));
  if (workers.length > 0 && heldWorkers.length === workers.length) {
    problems.push({ path: "maintenance", message: `would drain every worker at once (${heldWorkers.join(", ")}): their pods would have nowhere to go; keep at least one worker out of maintenance` });
  }
  const heldControlPlanes = controlPlanes.filter((c) => held.has(c));
  const tolerated = Math.floor((controlPlanes.length - 1) / 2);
  if (heldControlPlanes.length > tolerated) {
    problems.push({
      path: "maintenance",
      message: `holds ${heldControlPlanes.length} of ${controlPlanes.length} control planes (${heldControlPlanes.join(", ")}): with them down etcd and the API lose their majority; at most ${tolerated} at a time`,
    });
  }
  return maintenance;
}

/** S3 bucket naming rules (general purpose buckets). */
export function checkBucketName(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `must be 3 to 63 characters, got ${name.length}`;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return "must be lowercase letters, digits, '.' and '-', starting and ending with a letter or digit (S3 bucket naming rules)";
  if (name.includes("..") || name.includes(".-") || name.includes("-.")) return "must not contain '..', '.-' or '-.'";
  if (net.isIPv4(name)) return "must not be an IP address";
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name) || /(-s3alias|--ol-s3|--x-s3|--table-s3)$/.test(name)) return "uses a prefix or suffix S3 reserves";
  return undefined;
}

/** Request ids and snapshot reasons: one word, safe in file names, S3 keys and etcd's cluster token. */
const requestIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** What the restore steps accept (lifecycle/scripts/etcdCommon.ts): s3://bucket/key and absolute node paths. */
const s3SnapshotPattern = /^s3:\/\/([^/]*)\/([A-Za-z0-9._+=/-]*)$/;
const nodePathPattern = /^\/[A-Za-z0-9._+/-]*$/;
/** A KMS key ARN (the IAM policy needs the key itself; an alias ARN or a bare id would not name it). */
const kmsKeyArnPattern = /^arn:aws(-cn|-us-gov)?:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key\/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

function readSnapshots(r: Reader, provider: HostsConfig["provider"], problems: Problem[]): ClusterConfig["snapshots"] {
  const snapshots: ClusterConfig["snapshots"] = {
    schedule: r.nonEmptyString("snapshots.schedule", defaults.snapshots.schedule),
    keep: r.integer("snapshots.keep", defaults.snapshots.keep),
    retentionDays: r.integer("snapshots.retentionDays", defaults.snapshots.retentionDays),
    bucket: r.optionalString("snapshots.bucket"),
    upload: r.boolean("snapshots.upload", provider === "aws"),
    requestId: r.optionalString("snapshots.requestId"),
  };
  const kmsKeyId = r.optionalString("snapshots.kmsKeyId");
  if (snapshots.keep < 1 || snapshots.keep > configLimits.maxSnapshotsKept) {
    problems.push({
      path: "snapshots.keep",
      message: snapshots.keep < 1 ? `must be at least 1, got ${snapshots.keep}` : `must be at most ${configLimits.maxSnapshotsKept} (each local snapshot is the whole etcd database on the member's disk), got ${snapshots.keep}`,
    });
  }
  if (snapshots.retentionDays < 1 || snapshots.retentionDays > configLimits.maxRetentionDays) {
    problems.push({ path: "snapshots.retentionDays", message: snapshots.retentionDays < 1 ? `must be at least 1 day, got ${snapshots.retentionDays}` : `must be at most ${configLimits.maxRetentionDays} days (ten years), got ${snapshots.retentionDays}` });
  }
  if (snapshots.schedule.trim() !== "") {
    const why = checkOnCalendar(snapshots.schedule);
    if (why) problems.push({ path: "snapshots.schedule", message: `must be a systemd OnCalendar expression such as "daily", "*-*-* 00/6:00:00" or "Mon..Fri 02:30" (systemd.time(7)): ${why}` });
  }
  if (snapshots.bucket !== undefined) {
    const why = checkBucketName(snapshots.bucket);
    if (why) problems.push({ path: "snapshots.bucket", message: `must be an S3 bucket name: ${why}, got ${q(snapshots.bucket)}` });
  }
  if (provider === "static" && snapshots.upload && snapshots.bucket === undefined) {
    problems.push({ path: "snapshots.bucket", message: "is required to upload snapshots from static hosts (or set snapshots.upload: false)" });
  }
  if (snapshots.requestId !== undefined && !requestIdPattern.test(snapshots.requestId)) {
    problems.push({ path: "snapshots.requestId", message: "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit" });
  }
  if (kmsKeyId !== undefined) {
    if (provider !== "aws") problems.push({ path: "snapshots.kmsKeyId", message: "applies only to hosts.provider aws: on static hosts the bucket's own default encryption applies" });
    else if (!kmsKeyArnPattern.test(kmsKeyId)) {
      problems.push({ path: "snapshots.kmsKeyId", message: `must be a KMS key ARN like arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab (not an alias: the etcd members' IAM policy names the key), got ${q(kmsKeyId)}` });
    } else snapshots.kmsKeyId = kmsKeyId;
  }
  return snapshots;
}

/** Why a restore.snapshot value would be refused by the restore steps, or undefined. */
export function checkSnapshotLocation(snapshot: string): string | undefined {
  if (snapshot.startsWith("s3://")) {
    const m = s3SnapshotPattern.exec(snapshot);
    if (!m) return "an s3:// URI is s3://bucket/key, the key of letters, digits and . _ + = / -";
    const bucket = checkBucketName(m[1]);
    if (bucket) return `the bucket ${q(m[1])} ${bucket}`;
    if (m[2] === "" || m[2].endsWith("/")) return "the key must name a snapshot file, not a prefix";
    return undefined;
  }
  if (!snapshot.startsWith("/")) return "must be an s3://bucket/key URI or an absolute path";
  if (!nodePathPattern.test(snapshot)) return "an absolute path of letters, digits and . _ + / - (no spaces or quotes)";
  if (snapshot.split("/").includes("..")) return 'the path must not contain ".."';
  if (snapshot.endsWith("/")) return "the path must name a snapshot file, not a directory";
  return undefined;
}

/** Where this stack's own snapshots are: its cluster name, its hosts provider and snapshots.bucket. */
export interface SnapshotOwner {
  clusterName: string;
  provider: HostsConfig["provider"];
  /** snapshots.bucket; on AWS without it the program creates the bucket (its name is known only once created). */
  bucket?: string;
}

/** Why restoring a snapshot of another cluster is refused, and what to do instead. */
export const onlyOwnSnapshots =
  "an etcd snapshot restores only the cluster it came from: the cluster's CA, service-account keys and API endpoint are not in it, so another cluster's snapshot (another stack's, or this one's before a topology change) breaks joins, Services and the next upgrade. Restore one of this stack's own snapshots; for a new cluster or a topology change, build the new cluster and move the workloads with their manifests or Velero-style backups (README \"Restoring\")";

/**
 * Why a well-formed restore.snapshot is not this cluster's own, or undefined. An S3 snapshot must be under this
 * stack's own prefix, `s3://<bucket>/<project>-<stack>/etcd/` (where the save step uploads: infra/cluster.ts,
 * snapshotBucket.ts), in snapshots.bucket when that is set. A path on the members is this cluster's own by
 * construction (the save step writes only the member's own snapshots there, and a stack's members are its own); the
 * restore's fetch phase still refuses one whose sidecar names another cluster.
 */
export function checkSnapshotOwnership(snapshot: string, owner: SnapshotOwner): string | undefined {
  const m = s3SnapshotPattern.exec(snapshot);
  if (!m) return undefined;
  const [, bucket, key] = m;
  if (owner.provider === "static" && owner.bucket === undefined) {
    return `this stack uploads no snapshots (snapshots.bucket is not set), so ${q(snapshot)} is not one of its own: its snapshots are on its members, restore one by its path there; ${onlyOwnSnapshots}`;
  }
  const prefix = `${owner.clusterName}/etcd/`;
  if ((owner.bucket !== undefined && bucket !== owner.bucket) || !key.startsWith(prefix)) {
    return `${q(snapshot)} is not a snapshot of this cluster (${owner.clusterName}), whose snapshots are under s3://${owner.bucket ?? "<its snapshot bucket>"}/${prefix}; ${onlyOwnSnapshots}`;
  }
  return undefined;
}

function readRestore(r: Reader, raw: RawConfig, problems: Problem[], owner: SnapshotOwner | undefined): ClusterConfig["restore"] {
  if (raw.restore === undefined || !isObject(raw.restore)) return undefined;
  const snapshot = r.optionalString("restore.snapshot");
  const requestId = r.optionalString("restore.requestId");
  if (snapshot === undefined) problems.push({ path: "restore.snapshot", message: "is required: an s3://bucket/key URI or an absolute path on the members" });
  else {
    const why = checkSnapshotLocation(snapshot);
    const notOwn = why === undefined && owner !== undefined ? checkSnapshotOwnership(snapshot, owner) : undefined;
    if (why === "must be an s3://bucket/key URI or an absolute path") problems.push({ path: "restore.snapshot", message: `must be an s3://bucket/key URI or an absolute path, got ${q(snapshot)}` });
    else if (why) problems.push({ path: "restore.snapshot", message: `must be an s3://bucket/key URI or an absolute path: ${why}, got ${q(snapshot)}` });
    else if (notOwn) problems.push({ path: "restore.snapshot", message: notOwn });
  }
  if (requestId === undefined) problems.push({ path: "restore.requestId", message: "is required: a new value runs the restore once" });
  else if (!requestIdPattern.test(requestId)) problems.push({ path: "restore.requestId", message: "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit" });
  return snapshot && requestId ? { snapshot, requestId } : undefined;
}

// ---- systemd calendar expressions ---------------------------------------------------------------------------

const calendarShorthands = ["minutely", "hourly", "daily", "weekly", "monthly", "quarterly", "semiannually", "yearly", "annually"];
const weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const weekdayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

function weekdayIndex(word: string): number {
  const w = word.toLowerCase();
  const i = weekdays.indexOf(w);
  return i >= 0 ? i : weekdayNames.indexOf(w);
}

/**
 * One calendar component: `*`, or a list of N, N..M and N/STEP within [min, max]. Returns the values it matches, or
 * why it is not one.
 */
function calendarComponent(text: string, what: string, min: number, max: number): Set<number> | string {
  const values = new Set<number>();
  if (text === "*") {
    for (let v = min; v <= max; v++) values.add(v);
    return values;
  }
  for (const item of text.split(",")) {
    const m = /^(\d{1,2})(?:\.\.(\d{1,2})|\/(\d{1,2}))?$/.exec(item);
    if (!m) return `${what} ${q(item)} is not a number, a range a..b or a repetition a/n`;
    const a = Number(m[1]);
    if (a < min || a > max) return `${what} ${a} is outside ${min}-${max}`;
    let to = a;
    let step = 1;
    if (m[2] !== undefined) {
      to = Number(m[2]);
      if (to < min || to > max) return `${what} ${to} is outside ${min}-${max}`;
      if (to < a) return `${what} range ${item} runs backwards`;
      // systemd reads a seconds range a..a as a fraction and refuses it; write a.
      if (to === a) return `${what} range ${item} is just ${a}`;
    }
    if (m[3] !== undefined) {
      step = Number(m[3]);
      // systemd also refuses a repetition whose second value would already be out of range.
      if (step < 1 || a + step > max) return `${what} repetition ${item} needs a step from 1 to ${max - a}`;
      to = max;
    }
    for (let v = a; v <= to; v += step) values.add(v);
  }
  return values;
}

/** Days of each month, February with its leap day. */
const daysInMonth = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Why systemd would refuse an OnCalendar expression, or undefined. A conservative subset of systemd.time(7):
 * a shorthand (daily, hourly, ...), or `[WEEKDAYS] [[*-]MM-DD] [HH:MM[:SS]] [UTC]` whose components are `*` or
 * lists of values, ranges `a..b` and repetitions `a/n`; never a year (it would stop) or a day no month has (it would
 * never run). test/configProperty.test.ts checks every expression it accepts against the real `systemd-analyze
 * calendar`: accepted, and due again.
 */
export function checkOnCalendar(expression: string): string | undefined {
  if (!/^[A-Za-z0-9 ,.:/*_+-]+$/.test(expression)) return `only letters, digits, spaces and , . : / * _ + - are allowed, got ${q(expression)}`;
  const parts = expression.trim().split(/ +/);
  if (parts.length === 1 && calendarShorthands.includes(parts[0].toLowerCase())) return undefined;
  let i = 0;
  if (/^[A-Za-z]/.test(parts[i] ?? "") && (parts[i].includes(",") || parts[i].includes("..") || weekdayIndex(parts[i]) >= 0)) {
    for (const item of parts[i].split(",")) {
      const [from, to, ...rest] = item.split("..");
      if (rest.length > 0 || weekdayIndex(from) < 0 || (to !== undefined && weekdayIndex(to) < 0)) return `${q(item)} is not a weekday (Mon..Sun) or a range of them`;
      if (to !== undefined && weekdayIndex(to) < weekdayIndex(from)) return `weekday range ${item} runs backwards`;
    }
    i++;
  }
  let sawDateOrTime = false;
  if (parts[i] !== undefined && parts[i].includes("-") && !parts[i].includes(":")) {
    const fields = parts[i].split("-");
    if (fields.length !== 2 && fields.length !== 3) return `date ${q(parts[i])} is not *-MM-DD or MM-DD`;
    const [year, month, day] = fields.length === 3 ? fields : ["*", ...fields];
    // A schedule that names years stops after the last one.
    if (year !== "*") return `the year must be * (a schedule with a year stops after it), got ${q(year)}`;
    const months = calendarComponent(month, "month", 1, 12);
    if (typeof months === "string") return months;
    const days = calendarComponent(day, "day", 1, 31);
    if (typeof days === "string") return days;
    if (![...months].some((m) => [...days].some((d) => d <= daysInMonth[m - 1]))) return `no month has the day ${[...days].join(",")} of month ${[...months].join(",")}: it would never run`;
    i++;
    sawDateOrTime = true;
  }
  if (parts[i] !== undefined && parts[i].includes(":")) {
    const fields = parts[i].split(":");
    if (fields.length !== 2 && fields.length !== 3) return `time ${q(parts[i])} is not HH:MM or HH:MM:SS`;
    const limits: [string, number][] = [["hour", 23], ["minute", 59], ["second", 59]];
    for (const [k, field] of fields.entries()) {
      const values = calendarComponent(field, limits[k][0], 0, limits[k][1]);
      if (typeof values === "string") return values;
    }
    i++;
    sawDateOrTime = true;
  }
  if (i === 0) return `${q(parts[0])} is not a weekday (Mon..Sun), a date (*-MM-DD) or a time (HH:MM)`;
  if (parts[i] !== undefined) {
    const zone = parts[i];
    // Only UTC: systemd 252 cannot compute the next run of some expressions in other zones (test/configProperty.test.ts).
    if (zone !== "UTC") return `the only time zone accepted is UTC (without one, the node's own applies), got ${q(zone)}`;
    if (!sawDateOrTime) return "a time zone follows a date or a time";
    i++;
  }
  if (parts[i] !== undefined) return `unexpected ${q(parts.slice(i).join(" "))}`;
  return undefined;
}

// ---- small checks -------------------------------------------------------------------------------------------

/** The Helm chart's own version form: Cilium charts are 1.x.y, Calico's tigera-operator charts v3.x.y. */
export function checkCniVersion(name: CniName, version: string): string | undefined {
  switch (name) {
    case "cilium":
      return /^1\.\d+\.\d+(-(pre|rc)\.\d+)?$/.test(version) ? undefined : `must be a Cilium chart version like ${defaults.cni.versions.cilium} (1.x.y, no "v"), got ${q(version)}`;
    case "calico":
      return /^v3\.\d+\.\d+$/.test(version) ? undefined : `must be a tigera-operator chart version like ${defaults.cni.versions.calico} (v3.x.y, with the "v"), got ${q(version)}`;
    case "flannel":
      return /^v0\.\d+\.\d+$/.test(version) ? undefined : `must be a flannel chart version like ${defaults.cni.versions.flannel} (v0.x.y, with the "v"), got ${q(version)}`;
    default: {
      const never: never = name;
      return `unknown CNI ${never}`;
    }
  }
}

/** Like {@link validateConfig}, but throws one {@link ConfigError} carrying every problem. */
export function validateOrThrow(raw: RawConfig, context: ValidationContext): ClusterConfig {
  const result = validateConfig(raw, context);
  if (result.problems.length > 0 || !("config" in result)) throw new ConfigError(result.problems);
  return result.config;
}

/** A Kubernetes version must be x.y.z inside the supported minors. */
export function checkKubernetesVersion(path: string, version: string): Problem[] {
  if (!/^\d+\.\d+\.\d+$/.test(version) || !semver.valid(version)) {
    return [{ path, message: `must be a Kubernetes release like ${defaults.kubernetesVersion} (x.y.z, no "v"), got ${q(version)}` }];
  }
  const minor = `${semver.major(version)}.${semver.minor(version)}`;
  if (semver.lt(`${minor}.0`, `${supportedMinors.min}.0`) || semver.gt(`${minor}.0`, `${supportedMinors.max}.0`)) {
    return [{ path, message: `${version} is outside the supported minors ${supportedMinors.min} to ${supportedMinors.max}` }];
  }
  return [];
}

function checkVolume(problems: Problem[], path: string, value: number) {
  if (value < 8 || value > 16384) problems.push({ path, message: `must be between 8 and 16384 GiB, got ${value}` });
}

/**
 * EC2 instance types: family, generation, attributes, size (m6i.large, m7i-flex.xlarge, u-6tb1.metal). The nodes run
 * Canonical's amd64 image, so Graviton types (a "g" after the generation: m7g, c6gn, t4g; and a1) cannot boot it.
 */
const instanceTypePattern = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
const gravitonPattern = /^(a1|[a-z]+\d+[a-z]*g[a-z]*(-[a-z0-9]+)?)\./;

/** Reads dotted paths out of the raw config, recording a problem for every wrong type. */
class Reader {
  constructor(private readonly raw: RawConfig, private readonly problems: Problem[]) {}

  /** The value at a path like `hosts.controlPlanes[0].name`. */
  value(path: string): unknown {
    const [top, ...rest] = path.split(/\.|(?=\[)/).filter((p) => p !== "");
    let v: unknown = this.raw[top];
    let at = top;
    for (const part of rest) {
      if (v === undefined || v === null) return undefined;
      const index = /^\[(\d+)\]$/.exec(part);
      if (index) {
        if (!Array.isArray(v)) return this.problem(at, "must be a list"), undefined;
        v = v[Number(index[1])];
      } else {
        if (typeof v !== "object" || Array.isArray(v)) return this.problem(at, "must be an object"), undefined;
        v = (v as Record<string, unknown>)[part];
      }
      at = index ? `${at}${part}` : `${at}.${part}`;
    }
    return v === null ? undefined : v;
  }

  /** Refuses keys of the object at `path` that are not in `keys` (and a value there that is not an object). */
  knownKeys(path: string, keys: readonly string[]): void {
    const v = this.value(path);
    if (v === undefined) return;
    if (!isObject(v)) return this.problem(path, "must be an object");
    for (const key of Object.keys(v)) {
      if (!keys.includes(key)) this.problem(`${path}.${key}`, `unknown key; known keys of ${path}: ${keys.join(", ")}`);
    }
  }

  string(path: string, fallback: string): string {
    const v = this.value(path);
    if (v === undefined) return fallback;
    if (typeof v === "number" && Number.isFinite(v)) return String(v);
    if (typeof v !== "string") return this.problem(path, "must be a string"), fallback;
    return v;
  }

  nonEmptyString(path: string, fallback: string): string {
    const v = this.string(path, fallback);
    if (v.trim() === "") this.problem(path, "must not be empty");
    return v;
  }

  instanceType(path: string, fallback: string): string {
    const v = this.nonEmptyString(path, fallback);
    if (v.trim() === "") return v;
    if (!instanceTypePattern.test(v)) this.problem(path, `must be an EC2 instance type like m6i.large, got ${q(v)}`);
    else if (gravitonPattern.test(v)) this.problem(path, `${v} is an arm64 (Graviton) type; the nodes run Ubuntu 24.04 for amd64`);
    return v;
  }

  optionalString(path: string): string | undefined {
    const v = this.value(path);
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v.trim() === "") return this.problem(path, "must be a non-empty string"), undefined;
    return v;
  }

  integer(path: string, fallback: number): number {
    const v = this.value(path);
    if (v === undefined) return fallback;
    const n = typeof v === "string" && /^-?\d{1,15}$/.test(v) ? Number(v) : v;
    if (typeof n !== "number" || !Number.isSafeInteger(n)) return this.problem(path, `must be a whole number, got ${q(v)}`), fallback;
    return n;
  }

  boolean(path: string, fallback: boolean): boolean {
    const v = this.value(path);
    if (v === undefined) return fallback;
    if (v === "true" || v === "false") return v === "true";
    if (typeof v !== "boolean") return this.problem(path, "must be true or false"), fallback;
    return v;
  }

  /** A list of strings of at most `max` entries (checked before anything looks at the entries). */
  stringList(path: string, fallback: readonly string[], max = Infinity, why?: string): string[] {
    const v = this.value(path);
    if (v === undefined) return [...fallback];
    if (!Array.isArray(v)) return this.problem(path, "must be a list of strings"), [...fallback];
    if (v.length > max) return this.problem(path, `lists ${v.length} entries, at most ${max}${why ? ` (${why})` : ""}`), [...fallback];
    if (!v.every((x) => typeof x === "string")) return this.problem(path, "must be a list of strings"), [...fallback];
    return v as string[];
  }

  oneOf<T extends string>(path: string, allowed: readonly T[], fallback: T): T {
    const v = this.string(path, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      this.problem(path, `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${q(v)}`);
      return fallback;
    }
    return v as T;
  }

  /** Records a problem at `path` (the first one per path). */
  report(path: string, message: string): void {
    this.problem(path, message);
  }

  private problem(path: string, message: string) {
    if (!this.problems.some((p) => p.path === path)) this.problems.push({ path, message });
  }
}
