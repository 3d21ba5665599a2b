import * as pulumi from "@pulumi/pulumi";

/** The Pulumi project name: config keys live in this namespace (`kubeadm-ha:kubernetesVersion`). */
export const projectName = "kubeadm-ha";

export type EtcdTopology = "stacked" | "external";
export type CniName = "cilium" | "calico";

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
  apiAccess: { allowedCidrs: string[]; internal: boolean };
  ssh: { allowedCidrs: string[]; allowOpenToWorld: boolean; publicKey?: string };
  cni: { name: CniName; version: string };
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
  "sshPrivateKey",
] as const;

/** Stands in the raw config for a secret that is set, so validation never holds the secret itself. */
export const secretPresent = "[secret]";

/** Raw, unvalidated values by top-level key, as the stack config holds them (objects already parsed). */
export type RawConfig = Record<string, unknown>;

/**
 * Reads the project's config namespace. Values that are JSON (objects, arrays, numbers, booleans) are parsed;
 * plain strings stay strings. The SSH private key is read separately as a secret.
 */
export function readRawConfig(): { raw: RawConfig; sshPrivateKey?: pulumi.Output<string> } {
  const cfg = new pulumi.Config(projectName);
  const raw: RawConfig = {};
  const all = pulumi.runtime.allConfig();
  for (const [fullKey, value] of Object.entries(all)) {
    const [ns, key] = splitKey(fullKey);
    if (ns !== projectName) continue;
    // Validation needs only to know the key is there; the value stays a secret Output.
    raw[key] = key === "sshPrivateKey" ? secretPresent : parseConfigValue(value);
  }
  const sshPrivateKey = cfg.getSecret("sshPrivateKey");
  return { raw, sshPrivateKey };
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
