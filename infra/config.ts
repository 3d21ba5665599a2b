import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { AddonConfig } from "./addonsConfig";

/** The Pulumi project name: config keys live in this namespace (`kubeadm-ha:kubernetesVersion`). */
export const projectName = "kubeadm-ha";

export type EtcdTopology = "stacked" | "external";
export type CniName = "cilium" | "calico" | "flannel";

/** The validated configuration every builder and component reads. */
export interface ClusterConfig {
  kubernetesVersion: string;
  etcdTopology: EtcdTopology;
  controlPlane: { count: number; instanceType: string; volumeGiB: number };
  workers: { count: number; instanceType: string; volumeGiB: number; maxUnavailable: number };
  /** Used only with the external topology. */
  etcd: { count: number; instanceType: string; volumeGiB: number; version: string };
  network: {
    vpcCidr: string;
    /** AZ names; when empty, the first `availabilityZoneCount` of the region. */
    availabilityZones: string[];
    availabilityZoneCount: number;
    podCidr: string;
    serviceCidr: string;
    /** An existing VPC and its subnets instead of a new VPC. */
    existing?: { vpcId: string; privateSubnetIds: string[]; publicSubnetIds: string[] };
  };
  /** `allowOpenToWorld`: the explicit opt-in for ranges that together reach (nearly) the whole internet. */
  apiAccess: { allowedCidrs: string[]; internal: boolean; allowOpenToWorld: boolean };
  ssh: { allowedCidrs: string[]; allowOpenToWorld: boolean; publicKey?: string };
  /**
   * The pod network's Helm chart: from its repository at `version`, or `chartPath` (a chart in the project: a mirror's
   * copy, air-gapped). `values` are merged over the program's own (which match the pod range to network.podCidr).
   */
  cni: { name: CniName; version: string; chartPath?: string; values: Record<string, unknown> };
  /** Kubernetes nodes to keep cordoned and drained; leaving the list uncordons them. */
  maintenance: string[];
  /** Where the machines come from. */
  hosts: HostsConfig;
  /** The API endpoint of static hosts (AWS builds its own load balancer). */
  apiEndpoint?: ApiEndpointConfig;
  snapshots: SnapshotsConfig;
  /** A declared restore: a new requestId runs one. */
  restore?: { snapshot: string; requestId: string };
  /** kubeadm certificate renewal: due when the earliest control-plane certificate expires within renewBeforeDays. */
  certificates: { renewBeforeDays: number };
  /** Where the nodes pull Kubernetes' images (kubeadm's imageRepository, containerd's sandbox image). */
  images: ImageSource;
  /** Where the Kubernetes packages come from: a base in pkgs.k8s.io's layout (`<base>/v1.35/deb/`, with Release.key). */
  packages: { repository?: string };
  /** allowCgroupV1: accept nodes without cgroup v2 (labs, old kernels); production nodes run cgroup v2. */
  kubelet: { allowCgroupV1: boolean };
  /** Helm charts, Kustomize directories and manifests installed once the nodes are Ready, in install order. */
  addons: AddonConfig[];
}

/** An image repository in front of registry.k8s.io (an air-gapped mirror, a lab registry). */
export interface ImageSource {
  /** host[:port]/path, as kubeadm's imageRepository takes it; absent: registry.k8s.io. */
  repository?: string;
  /** The repository's registry speaks plain HTTP (containerd is told so in its hosts.toml); only with repository. */
  insecure: boolean;
}

/** An existing machine reached over SSH. */
export interface StaticHost {
  /** Node name (DNS-1123 label): the Kubernetes node name and the prefix of its steps. */
  name: string;
  /** Where SSH connects (from the operator, or from the bastion). */
  address: string;
  /** The address the cluster uses between nodes (kubelet node-ip, etcd peer URLs). */
  privateAddress: string;
  user: string;
  port: number;
  /**
   * The host's SSH public host key (`ssh-ed25519 AAAA…`, a line of /etc/ssh/ssh_host_ed25519_key.pub): every
   * connection to the host verifies it. Absent: the host key is not checked at all (@pulumi/command keeps no
   * known_hosts).
   */
  hostKey?: string;
}

/** The jump host in front of static hosts. */
export interface StaticBastion {
  address: string;
  user: string;
  port: number;
  /** The bastion's SSH public host key; see {@link StaticHost.hostKey}. */
  hostKey?: string;
}

export type HostsConfig =
  | { provider: "aws" }
  | {
      provider: "static";
      controlPlanes: StaticHost[];
      workers: StaticHost[];
      etcd: StaticHost[];
      bastion?: StaticBastion;
    };

export type ApiEndpointConfig =
  /** An existing load balancer (host:port) in front of every control plane's 6443. */
  | { kind: "existing"; address: string }
  /** HAProxy + keepalived on the control planes with a virtual IP. */
  | { kind: "haproxy"; virtualIp: string; interface: string; port: number };

export interface SnapshotsConfig {
  /** systemd OnCalendar expression of the scheduled snapshot. */
  schedule: string;
  /** Snapshots kept on each member. */
  keep: number;
  /** Days S3 keeps a snapshot (bucket lifecycle rule). */
  retentionDays: number;
  /** An existing bucket instead of one the program creates. */
  bucket?: string;
  /**
   * AWS only: the ARN of a KMS key. The program's bucket encrypts with it by default and refuses objects encrypted
   * otherwise; only the etcd members may use it (generate data keys, decrypt).
   */
  kmsKeyId?: string;
  /** Upload to S3 (AWS: always; static hosts: only with a bucket and credentials on the members). */
  upload: boolean;
  /** A new value takes one snapshot now. */
  requestId?: string;
}

/** Top-level keys the program reads; anything else in the namespace is a typo and is rejected. */
export const configKeys = [
  "kubernetesVersion",
  "etcdTopology",
  "controlPlane",
  "workers",
  "etcd",
  "network",
  "apiAccess",
  "ssh",
  "cni",
  "maintenance",
  "hosts",
  "apiEndpoint",
  "snapshots",
  "restore",
  "certificates",
  "images",
  "packages",
  "kubelet",
  "addons",
  "sshPrivateKey",
] as const;

/** Stands in the raw config for a secret that is set, so validation never holds the secret itself. */
export const secretPresent = "[secret]";

/** Raw, unvalidated values by top-level key, as the stack config holds them (objects already parsed). */
export type RawConfig = Record<string, unknown>;

/**
 * Reads the project's config namespace. Values that are JSON (objects, arrays, numbers, booleans) are parsed;
 * plain strings stay strings. The SSH private key is read separately as a secret. `plainSecrets`: the keys that must
 * be secrets (secretConfigKeys, and those the project's Pulumi.yaml declares `secret: true`) but that the stack
 * holds in plain text, which validation refuses (`projectDir`: where Pulumi.yaml is; Pulumi runs the program there).
 */
export function readRawConfig(projectDir = process.cwd()): { raw: RawConfig; sshPrivateKey?: pulumi.Output<string>; secretKeys: string[]; plainSecrets: string[] } {
  const cfg = new pulumi.Config(projectName);
  const raw: RawConfig = {};
  const all = pulumi.runtime.allConfig();
  for (const [fullKey, value] of Object.entries(all)) {
    const [ns, key] = splitKey(fullKey);
    if (ns !== projectName) continue;
    const parsed = parseConfigValue(value);
    // Pulumi.yaml's placeholder defaults of optional keys ({} and ""): the CLI requires a default for every declared
    // key, and an empty value means "not set".
    if (isUnset(parsed)) continue;
    // Validation needs only to know the key is there; the value stays a secret Output.
    raw[key] = key === "sshPrivateKey" ? secretPresent : parsed;
  }
  const sshPrivateKey = raw.sshPrivateKey === undefined ? undefined : cfg.getSecret("sshPrivateKey");
  const secretKeys = Object.keys(raw).filter((key) => isConfigSecret(`${projectName}:${key}`));
  const mustBeSecret = projectSecretKeys(projectDir);
  const plainSecrets = Object.keys(raw).filter((key) => mustBeSecret.includes(key) && !secretKeys.includes(key)).sort();
  return { raw, sshPrivateKey, secretKeys, plainSecrets };
}

/** The keys of a parsed Pulumi.yaml that are secret whatever sets them: those it declares `secret: true`, and secretConfigKeys. */
export function secretKeysOf(project: { config?: Record<string, unknown> }): string[] {
  const declared = Object.entries<any>(project.config ?? {})
    .filter(([, decl]) => decl !== null && typeof decl === "object" && decl.secret === true)
    .map(([key]) => (key.startsWith(`${projectName}:`) ? key.slice(projectName.length + 1) : key));
  return [...new Set([...declared, ...secretConfigKeys])];
}

/** secretKeysOf the Pulumi.yaml in `projectDir` (secretConfigKeys alone when there is none). */
function projectSecretKeys(projectDir: string): string[] {
  const file = join(projectDir, "Pulumi.yaml");
  return secretKeysOf(existsSync(file) ? (parse(readFileSync(file, "utf8")) ?? {}) : {});
}

/**
 * Config keys that are secret whatever sets them, beyond those Pulumi.yaml declares `secret: true`. sshPrivateKey is
 * not declared there: the Pulumi CLI requires a value for a declared key without a default and refuses a plaintext
 * default for a secret one, so declaring it would make every stack set it.
 */
export const secretConfigKeys: readonly string[] = ["sshPrivateKey"];

/**
 * Whether the stack holds a config key as a secret (`pulumi config set --secret`). The SDK's own check, which it
 * exports without typing it (it warns with it when a secret is read with get).
 */
function isConfigSecret(fullKey: string): boolean {
  const check = (runtimeConfig as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
  return typeof check === "function" ? check(fullKey) : false;
}

/** An empty object or string: a config key with that value counts as not set. */
export function isUnset(value: unknown): boolean {
  return value === "" || (typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 0);
}

function splitKey(fullKey: string): [string, string] {
  const i = fullKey.indexOf(":");
  return i < 0 ? ["", fullKey] : [fullKey.slice(0, i), fullKey.slice(i + 1)];
}

/** Config values arrive as strings; structured ones are JSON. */
export function parseConfigValue(value: string): unknown {
  const trimmed = value.trim();
  if (/^[[{]/.test(trimmed) || /^(true|false|null|-?\d+(\.\d+)?)$/.test(trimmed)) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return value;
    }
  }
  return value;
}
