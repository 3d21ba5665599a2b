import { RunError } from "@pulumi/pulumi/errors";
import * as semver from "semver";
import { cidrsOverlap, parseCidr, vpcPrefixRange } from "./cidr";
import * as net from "node:net";
import { ApiEndpointConfig, ClusterConfig, CniName, EtcdTopology, HostsConfig, RawConfig, StaticHost, configKeys } from "./config";
import { defaults, supportedMinors } from "./defaults";

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
const cniNames: readonly CniName[] = ["cilium", "calico"];
const maxNodesPerRole = 7;

/**
 * Validates the whole raw configuration. Pure: collects every problem with its key path, and returns either the
 * complete config (defaults filled in) or the list of problems. Nothing is registered before this passes.
 */
export function validateConfig(raw: RawConfig): { config: ClusterConfig; problems: [] } | { problems: Problem[] } {
  const problems: Problem[] = [];
  const r = new Reader(raw, problems);

  for (const key of Object.keys(raw)) {
    if (!(configKeys as readonly string[]).includes(key)) {
      problems.push({ path: key, message: `unknown key; known keys: ${configKeys.join(", ")}` });
    }
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
    instanceType: r.nonEmptyString("controlPlane.instanceType", defaults.controlPlane.instanceType),
    volumeGiB: r.integer("controlPlane.volumeGiB", defaults.controlPlane.volumeGiB),
  };
  if (controlPlane.count < 1 || controlPlane.count > maxNodesPerRole) {
    problems.push({ path: "controlPlane.count", message: `must be between 1 and ${maxNodesPerRole}, got ${controlPlane.count}` });
  } else if (etcdTopology === "stacked" && controlPlane.count % 2 === 0) {
    problems.push({
      path: "controlPlane.count",
      message: `must be odd with stacked etcd (each control plane is an etcd member; ${controlPlane.count} members tolerate no more failures than ${controlPlane.count - 1}), got ${controlPlane.count}`,
    });
  }
  checkVolume(problems, "controlPlane.volumeGiB", controlPlane.volumeGiB);

  const workers = {
    count: staticHosts ? staticHosts.workers.length : r.integer("workers.count", defaults.workers.count),
    instanceType: r.nonEmptyString("workers.instanceType", defaults.workers.instanceType),
    volumeGiB: r.integer("workers.volumeGiB", defaults.workers.volumeGiB),
    maxUnavailable: r.integer("workers.maxUnavailable", defaults.workers.maxUnavailable),
  };
  if (workers.count < 0) problems.push({ path: "workers.count", message: `must be 0 or more, got ${workers.count}` });
  if (workers.maxUnavailable < 1) {
    problems.push({ path: "workers.maxUnavailable", message: `must be at least 1 (workers drained at a time during an upgrade), got ${workers.maxUnavailable}` });
  }
  checkVolume(problems, "workers.volumeGiB", workers.volumeGiB);

  const etcdGiven = raw.etcd !== undefined && !(staticHosts && etcdTopology === "stacked" && Object.keys(raw.etcd as object).length === 0);
  if (etcdGiven && etcdTopology === "stacked") {
    problems.push({ path: "etcd", message: 'etcd settings apply only to etcdTopology "external"; with "stacked", etcd runs on the control planes (remove the etcd key or set etcdTopology: external)' });
  }
  const etcd = {
    count: staticHosts && etcdTopology === "external" ? staticHosts.etcd.length : r.integer("etcd.count", defaults.etcd.count),
    instanceType: r.nonEmptyString("etcd.instanceType", defaults.etcd.instanceType),
    volumeGiB: r.integer("etcd.volumeGiB", defaults.etcd.volumeGiB),
    version: r.string("etcd.version", defaults.etcd.version),
  };
  if (etcdTopology === "external") {
    if (etcd.count < 1 || etcd.count > maxNodesPerRole || etcd.count % 2 === 0) {
      problems.push({ path: "etcd.count", message: `must be odd and between 1 and ${maxNodesPerRole} (an even member count adds no fault tolerance), got ${etcd.count}` });
    }
    if (!/^\d+\.\d+\.\d+$/.test(etcd.version) || !semver.valid(etcd.version)) {
      problems.push({ path: "etcd.version", message: `must be an etcd release like 3.5.16 (x.y.z), got "${etcd.version}"` });
    } else if (semver.lt(etcd.version, "3.4.0")) {
      problems.push({ path: "etcd.version", message: `must be 3.4.0 or later, got ${etcd.version}` });
    }
    checkVolume(problems, "etcd.volumeGiB", etcd.volumeGiB);
  }

  const azRaw = r.value("network.availabilityZones");
  let availabilityZones: string[] = [];
  let availabilityZoneCount: number = defaults.network.availabilityZones;
  if (azRaw === undefined) {
    // default count
  } else if (typeof azRaw === "number" && Number.isInteger(azRaw)) {
    availabilityZoneCount = azRaw;
    if (azRaw < 1 || azRaw > 3) problems.push({ path: "network.availabilityZones", message: `must be 1 to 3 zones, got ${azRaw}` });
  } else if (Array.isArray(azRaw) && azRaw.every((z) => typeof z === "string" && z.length > 0)) {
    availabilityZones = azRaw as string[];
    availabilityZoneCount = azRaw.length;
    if (azRaw.length < 1 || azRaw.length > 3) problems.push({ path: "network.availabilityZones", message: `must list 1 to 3 zones, got ${azRaw.length}` });
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
  const privateSubnetIds = r.stringList("network.privateSubnetIds", []);
  const publicSubnetIds = r.stringList("network.publicSubnetIds", []);
  if (vpcId !== undefined) {
    if (privateSubnetIds.length === 0) problems.push({ path: "network.privateSubnetIds", message: "must list the private subnets of network.vpcId (nodes run there)" });
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
    if (!parseCidr(value)) problems.push({ path, message: `must be an IPv4 CIDR like 10.0.0.0/16 (network address, no host bits), got "${value}"` });
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

  const apiAccess = {
    allowedCidrs: r.stringList("apiAccess.allowedCidrs", defaults.apiAccess.allowedCidrs),
    internal: r.boolean("apiAccess.internal", defaults.apiAccess.internal),
  };
  apiAccess.allowedCidrs.forEach((c, i) => {
    if (!parseCidr(c)) problems.push({ path: `apiAccess.allowedCidrs[${i}]`, message: `must be an IPv4 CIDR, got "${c}"` });
  });

  const ssh = {
    allowedCidrs: r.stringList("ssh.allowedCidrs", defaults.ssh.allowedCidrs),
    allowOpenToWorld: r.boolean("ssh.allowOpenToWorld", defaults.ssh.allowOpenToWorld),
    publicKey: r.optionalString("ssh.publicKey"),
  };
  ssh.allowedCidrs.forEach((c, i) => {
    const p = parseCidr(c);
    if (!p) problems.push({ path: `ssh.allowedCidrs[${i}]`, message: `must be an IPv4 CIDR, got "${c}"` });
    else if (p.prefix === 0 && !ssh.allowOpenToWorld) {
      problems.push({ path: `ssh.allowedCidrs[${i}]`, message: `${c} opens SSH to the whole internet; list your own ranges, or set ssh.allowOpenToWorld: true to accept that` });
    }
  });
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
  if (ssh.publicKey !== undefined && !/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/.test(ssh.publicKey)) {
    problems.push({ path: "ssh.publicKey", message: "must be an OpenSSH public key (ssh-ed25519 AAAA…)" });
  }

  const cniName = r.oneOf("cni.name", cniNames, defaults.cni.name);
  const cni = { name: cniName, version: r.string("cni.version", defaults.cni.versions[cniName]) };
  if (!semver.valid(cni.version.replace(/^v/, ""))) {
    problems.push({ path: "cni.version", message: `must be a Helm chart version like ${defaults.cni.versions[cniName]}, got "${cni.version}"` });
  }

  const apiEndpoint = readApiEndpoint(r, raw, hosts.provider, problems);

  const kubeNodes = [
    ...(staticHosts ? staticHosts.controlPlanes.map((h) => h.name) : Array.from({ length: controlPlane.count }, (_, i) => `cp-${i}`)),
    ...(staticHosts ? staticHosts.workers.map((h) => h.name) : Array.from({ length: workers.count }, (_, i) => `worker-${i}`)),
  ];
  const maintenance = r.stringList("maintenance", []);
  maintenance.forEach((name, i) => {
    if (!kubeNodes.includes(name)) problems.push({ path: `maintenance[${i}]`, message: `"${name}" is not a node of this cluster (nodes: ${kubeNodes.join(", ")})` });
  });
  if (new Set(maintenance).size !== maintenance.length) problems.push({ path: "maintenance", message: "lists a node twice" });

  const snapshots: ClusterConfig["snapshots"] = {
    schedule: r.nonEmptyString("snapshots.schedule", defaults.snapshots.schedule),
    keep: r.integer("snapshots.keep", defaults.snapshots.keep),
    retentionDays: r.integer("snapshots.retentionDays", defaults.snapshots.retentionDays),
    bucket: r.optionalString("snapshots.bucket"),
    upload: r.boolean("snapshots.upload", hosts.provider === "aws"),
    requestId: r.optionalString("snapshots.requestId"),
  };
  if (snapshots.keep < 1) problems.push({ path: "snapshots.keep", message: `must be at least 1, got ${snapshots.keep}` });
  if (snapshots.retentionDays < 1) problems.push({ path: "snapshots.retentionDays", message: `must be at least 1 day, got ${snapshots.retentionDays}` });
  if (!/^[^'"\\\n]+$/.test(snapshots.schedule)) problems.push({ path: "snapshots.schedule", message: "must be a systemd OnCalendar expression (no quotes)" });
  if (hosts.provider === "static" && snapshots.upload && snapshots.bucket === undefined) {
    problems.push({ path: "snapshots.bucket", message: "is required to upload snapshots from static hosts (or set snapshots.upload: false)" });
  }
  if (snapshots.requestId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(snapshots.requestId)) {
    problems.push({ path: "snapshots.requestId", message: "must be 1 to 64 letters, digits, '.', '_' or '-'" });
  }
  let restore: ClusterConfig["restore"];
  if (raw.restore !== undefined) {
    const snapshot = r.optionalString("restore.snapshot");
    const requestId = r.optionalString("restore.requestId");
    if (snapshot === undefined) problems.push({ path: "restore.snapshot", message: "is required: an s3://bucket/key URI or an absolute path on the members" });
    else if (!/^(s3:\/\/[a-z0-9.-]{3,63}\/\S+|\/\S+)$/.test(snapshot)) problems.push({ path: "restore.snapshot", message: `must be an s3://bucket/key URI or an absolute path, got "${snapshot}"` });
    if (requestId === undefined) problems.push({ path: "restore.requestId", message: "is required: a new value runs the restore once" });
    else if (!/^[A-Za-z0-9._-]{1,64}$/.test(requestId)) problems.push({ path: "restore.requestId", message: "must be 1 to 64 letters, digits, '.', '_' or '-'" });
    if (snapshot && requestId) restore = { snapshot, requestId };
  }

  if (problems.length > 0) return { problems };
  return {
    config: { kubernetesVersion, etcdTopology, controlPlane, workers, etcd, network, apiAccess, ssh, cni, maintenance, hosts, apiEndpoint, snapshots, restore },
    problems: [],
  };
}

const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const hostOrIp = /^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?$/;

function readStaticHostList(r: Reader, path: string, problems: Problem[]): StaticHost[] {
  const value = r.value(path);
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push({ path, message: "must be a list of hosts {name, address, privateAddress, user, port}" });
    return [];
  }
  return value.map((_, i) => {
    const at = `${path}[${i}]`;
    const name = r.string(`${at}.name`, "");
    const address = r.string(`${at}.address`, "");
    const host: StaticHost = {
      name,
      address,
      privateAddress: r.string(`${at}.privateAddress`, address),
      user: r.string(`${at}.user`, defaults.staticHost.user),
      port: r.integer(`${at}.port`, defaults.staticHost.port),
    };
    if (!dns1123Label.test(name)) problems.push({ path: `${at}.name`, message: `must be a lowercase DNS label (the Kubernetes node name), got "${name}"` });
    if (!hostOrIp.test(address)) problems.push({ path: `${at}.address`, message: `must be a host name or IP address, got "${address}"` });
    if (!net.isIPv4(host.privateAddress)) problems.push({ path: `${at}.privateAddress`, message: `must be the node's IPv4 address on the cluster network, got "${host.privateAddress}"` });
    if (host.port < 1 || host.port > 65535) problems.push({ path: `${at}.port`, message: `must be a TCP port, got ${host.port}` });
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
  const controlPlanes = readStaticHostList(r, "hosts.controlPlanes", problems);
  const workers = readStaticHostList(r, "hosts.workers", problems);
  const etcd = readStaticHostList(r, "hosts.etcd", problems);
  if (controlPlanes.length === 0) problems.push({ path: "hosts.controlPlanes", message: "must list at least one control plane" });
  const names = [...controlPlanes, ...workers, ...etcd].map((h) => h.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) problems.push({ path: "hosts", message: `names the host "${duplicate}" twice` });
  let bastion: { address: string; user: string; port: number } | undefined;
  if (r.value("hosts.bastion") !== undefined) {
    bastion = {
      address: r.string("hosts.bastion.address", ""),
      user: r.string("hosts.bastion.user", defaults.staticHost.user),
      port: r.integer("hosts.bastion.port", defaults.staticHost.port),
    };
    if (!hostOrIp.test(bastion.address)) problems.push({ path: "hosts.bastion.address", message: `must be a host name or IP address, got "${bastion.address}"` });
  }
  return { provider, controlPlanes, workers, etcd, ...(bastion ? { bastion } : {}) };
}

/** apiEndpoint: static hosts need one (an existing load balancer, or HAProxy + keepalived with a VIP). */
function readApiEndpoint(r: Reader, raw: RawConfig, provider: "aws" | "static", problems: Problem[]): ApiEndpointConfig | undefined {
  if (provider === "aws") {
    if (raw.apiEndpoint !== undefined) problems.push({ path: "apiEndpoint", message: "applies only to static hosts; on AWS the program builds the API load balancer (see apiAccess)" });
    return undefined;
  }
  const address = r.optionalString("apiEndpoint.address");
  const haproxy = r.boolean("apiEndpoint.haproxy", false);
  if (address !== undefined && haproxy) {
    problems.push({ path: "apiEndpoint", message: "set either address (an existing load balancer) or haproxy: true, not both" });
    return undefined;
  }
  if (address !== undefined) {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(address)) problems.push({ path: "apiEndpoint.address", message: `must be host:port, got "${address}"` });
    return { kind: "existing", address };
  }
  if (haproxy) {
    const virtualIp = r.string("apiEndpoint.virtualIp", "");
    if (!net.isIPv4(virtualIp)) problems.push({ path: "apiEndpoint.virtualIp", message: `must be a free IPv4 address on the control planes' network, got "${virtualIp}"` });
    const iface = r.nonEmptyString("apiEndpoint.interface", "eth0");
    const port = r.integer("apiEndpoint.port", defaults.haproxyPort);
    if (port === 6443) problems.push({ path: "apiEndpoint.port", message: "must not be 6443: every control plane's apiserver already listens there" });
    return { kind: "haproxy", virtualIp, interface: iface, port };
  }
  problems.push({ path: "apiEndpoint", message: "static hosts need an API endpoint: address (an existing load balancer, host:port) or haproxy: true with virtualIp" });
  return undefined;
}

/** Like {@link validateConfig}, but throws one {@link ConfigError} carrying every problem. */
export function validateOrThrow(raw: RawConfig): ClusterConfig {
  const result = validateConfig(raw);
  if (result.problems.length > 0 || !("config" in result)) throw new ConfigError(result.problems);
  return result.config;
}

/** A Kubernetes version must be x.y.z inside the supported minors. */
export function checkKubernetesVersion(path: string, version: string): Problem[] {
  if (!/^\d+\.\d+\.\d+$/.test(version) || !semver.valid(version)) {
    return [{ path, message: `must be a Kubernetes release like ${defaults.kubernetesVersion} (x.y.z, no "v"), got "${version}"` }];
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

  string(path: string, fallback: string): string {
    const v = this.value(path);
    if (v === undefined) return fallback;
    if (typeof v === "number") return String(v);
    if (typeof v !== "string") return this.problem(path, "must be a string"), fallback;
    return v;
  }

  nonEmptyString(path: string, fallback: string): string {
    const v = this.string(path, fallback);
    if (v.trim() === "") this.problem(path, "must not be empty");
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
    const n = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n)) return this.problem(path, `must be a whole number, got ${JSON.stringify(v)}`), fallback;
    return n;
  }

  boolean(path: string, fallback: boolean): boolean {
    const v = this.value(path);
    if (v === undefined) return fallback;
    if (v === "true" || v === "false") return v === "true";
    if (typeof v !== "boolean") return this.problem(path, "must be true or false"), fallback;
    return v;
  }

  stringList(path: string, fallback: readonly string[]): string[] {
    const v = this.value(path);
    if (v === undefined) return [...fallback];
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) return this.problem(path, "must be a list of strings"), [...fallback];
    return v as string[];
  }

  oneOf<T extends string>(path: string, allowed: readonly T[], fallback: T): T {
    const v = this.string(path, fallback);
    if (!(allowed as readonly string[]).includes(v)) {
      this.problem(path, `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got "${v}"`);
      return fallback;
    }
    return v as T;
  }

  private problem(path: string, message: string) {
    if (!this.problems.some((p) => p.path === path)) this.problems.push({ path, message });
  }
}
