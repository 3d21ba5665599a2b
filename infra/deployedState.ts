import * as pulumi from "@pulumi/pulumi";
import * as semver from "semver";
import type { DeployedCertificates } from "../lifecycle/certificates";
import { BootstrapRecord, parseBootstrapRecord } from "./bootstrapRecord";
import { Problem } from "./validate";

/** What the deployed stack reports about itself (its previous outputs); empty for a stack never deployed. */
export interface DeployedState {
  kubernetesVersion?: string;
  etcdTopology?: string;
  /** Control planes of the deployed cluster (from its `nodes` output). */
  controlPlaneCount?: number;
  /** External etcd members of the deployed cluster (from its `nodes` output). */
  etcdCount?: number;
  /** Each node's bootstrap as the run that finished its join recorded it (the `bootstrap` output). */
  bootstrap?: BootstrapRecord;
  /** The restore request ids that finished (the `finishedRestores` output): none of them ever runs again. */
  finishedRestores?: string[];
  /** What the deployed stack recorded about its certificates; absent before the program recorded them. */
  certificates?: DeployedCertificates;
  /** The deployed `kubeconfig` output (secret): the credential the program's Kubernetes provider holds now. */
  kubeconfig?: pulumi.Output<string>;
  /** What the deployed AWS machines were built with (the `machines` output); absent before it was recorded. */
  machines?: DeployedMachines;
}

/** A role's machines as deployed. */
export interface DeployedRole {
  instanceType?: string;
  volumeGiB?: number;
}

/**
 * The settings of the deployed AWS machines that the AWS provider cannot change without replacing or stopping them
 * (the `machines` stack output, recorded from the configuration of the run that deployed them). Every field is
 * optional: a stack deployed before a field was recorded is never refused for it.
 */
export interface DeployedMachines {
  /** The key pair's public key, or "generated" for the program's own key (no ssh.publicKey). */
  sshKey?: string;
  controlPlane?: DeployedRole;
  workers?: DeployedRole;
  /** External etcd only. */
  etcd?: DeployedRole;
  /** apiAccess.internal of the API load balancer. */
  apiInternal?: boolean;
}

/** What the deployed stack records as `machines` (program.ts): the same shape as the config keys it comes from. */
export function machinesOutput(config: {
  ssh: { publicKey?: string };
  controlPlane: DeployedRole;
  workers: DeployedRole;
  etcd: DeployedRole;
  etcdTopology: string;
  apiAccess: { internal: boolean };
}): Record<string, unknown> {
  const role = (r: DeployedRole) => ({ instanceType: r.instanceType, volumeGiB: r.volumeGiB });
  return {
    sshKey: config.ssh.publicKey?.trim() ?? generatedKey,
    controlPlane: role(config.controlPlane),
    workers: role(config.workers),
    ...(config.etcdTopology === "external" ? { etcd: role(config.etcd) } : {}),
    apiAccess: { internal: config.apiAccess.internal },
  };
}

/** The recorded sshKey of a stack whose key pair holds the program's generated key. */
const generatedKey = "generated";

/** Reads a recorded `machines` output, keeping only well-formed fields. */
export function parseDeployedMachines(value: unknown): DeployedMachines | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const v = value as Record<string, any>;
  const role = (r: any): DeployedRole | undefined =>
    r !== null && typeof r === "object"
      ? { ...(typeof r.instanceType === "string" ? { instanceType: r.instanceType } : {}), ...(typeof r.volumeGiB === "number" ? { volumeGiB: r.volumeGiB } : {}) }
      : undefined;
  const out: DeployedMachines = {};
  if (typeof v.sshKey === "string") out.sshKey = v.sshKey;
  for (const key of ["controlPlane", "workers", "etcd"] as const) {
    const r = role(v[key]);
    if (r) out[key] = r;
  }
  if (typeof v.apiAccess?.internal === "boolean") out.apiInternal = v.apiAccess.internal;
  return out;
}

/**
 * Reads this stack's own previous outputs through a StackReference to itself. Safe on a brand-new stack: it has no
 * outputs yet, and every field stays undefined.
 */
export async function readDeployedState(): Promise<DeployedState> {
  const self = new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`);
  const read = async (key: string): Promise<string | undefined> => {
    const details = await self.getOutputDetails(key);
    const value = details.value ?? details.secretValue;
    return typeof value === "string" ? value : undefined;
  };
  const nodes = await self.getOutputDetails("nodes");
  const list = (nodes.value ?? nodes.secretValue) as { role?: string }[] | undefined;
  const certs = await self.getOutputDetails("certificates");
  const recorded = (certs.value ?? certs.secretValue) as Record<string, unknown> | undefined;
  const text = (v: unknown) => (typeof v === "string" ? v : undefined);
  const kubeconfig = await read("kubeconfig");
  const bootstrap = await self.getOutputDetails("bootstrap");
  const restores = await self.getOutputDetails("finishedRestores");
  const machines = await self.getOutputDetails("machines");
  const finished = restores.value ?? restores.secretValue;
  return {
    kubernetesVersion: await read("kubernetesVersion"),
    etcdTopology: await read("etcdTopology"),
    controlPlaneCount: Array.isArray(list) ? list.filter((n) => n.role === "control-plane").length : undefined,
    etcdCount: Array.isArray(list) ? list.filter((n) => n.role === "etcd").length : undefined,
    bootstrap: parseBootstrapRecord(bootstrap.value ?? bootstrap.secretValue),
    finishedRestores: Array.isArray(finished) ? finished.filter((id): id is string => typeof id === "string") : undefined,
    ...(recorded && typeof recorded === "object"
      ? { certificates: { controlPlaneExpiry: text(recorded.controlPlaneExpiry), kubeconfigExpiry: text(recorded.kubeconfigExpiry), round: text(recorded.round) } }
      : {}),
    ...(kubeconfig !== undefined ? { kubeconfig: pulumi.secret(kubeconfig) } : {}),
    machines: parseDeployedMachines(machines.value ?? machines.secretValue),
  };
}

/**
 * The skew policy between the deployed version and the configured one: no downgrade, no skipped minor (kubeadm
 * upgrades one minor at a time); any patch within the same or the next minor is fine.
 */
export function checkVersionChange(deployed: string | undefined, target: string): Problem[] {
  if (deployed === undefined || !semver.valid(deployed) || !semver.valid(target)) return [];
  if (semver.lt(target, deployed)) {
    return [{ path: "kubernetesVersion", message: `${target} is older than the deployed ${deployed}; kubeadm cannot downgrade a cluster, and restoring an etcd snapshot brings back data, not older binaries: set kubernetesVersion back to ${deployed} (an older release needs a new stack built at it)` }];
  }
  const minorsUp = semver.minor(target) - semver.minor(deployed) + 100 * (semver.major(target) - semver.major(deployed));
  if (minorsUp > 1) {
    const next = `${semver.major(deployed)}.${semver.minor(deployed) + 1}`;
    return [{ path: "kubernetesVersion", message: `${target} skips a minor: the cluster runs ${deployed}, and kubeadm upgrades one minor at a time; upgrade to the latest ${next}.x first` }];
  }
  return [];
}

/** The etcd topology cannot change under a running cluster: the cluster's data lives in the deployed etcd. */
export function checkTopologyChange(deployed: string | undefined, target: string): Problem[] {
  if (deployed === undefined || deployed === target) return [];
  return [
    {
      path: "etcdTopology",
      message: `the stack runs with ${deployed} etcd and all cluster data lives there; switching to ${target} in place would start an empty etcd, and an etcd snapshot restores only the cluster it came from (its CA, service-account keys and API endpoint are not in it). Keep etcdTopology: ${deployed}; to run on ${target} etcd, build a new cluster with etcdTopology: ${target} (its own stack) and move the workloads to it with their manifests or Velero-style backups (see README "Restoring")`,
    },
  ];
}

/**
 * Removing control planes with stacked etcd: each removal takes a member out of etcd, one at a time (the retire steps
 * are chained, so their deletes run highest index first, each from cp-0). Invariant: a run never removes a majority of the deployed
 * members — the members that stay must hold quorum on their own even if the run stops halfway. The even-count rule is
 * validation's.
 */
export function checkControlPlaneRemoval(deployedCount: number | undefined, count: number, stacked: boolean): Problem[] {
  if (deployedCount === undefined || count >= deployedCount || !stacked) return [];
  const removed = deployedCount - count;
  const allowed = Math.floor((deployedCount - 1) / 2);
  if (removed <= allowed) return [];
  return [
    {
      path: "controlPlane.count",
      message: `${deployedCount} → ${count} removes ${removed} of ${deployedCount} stacked etcd members in one run; at most ${allowed} may go in one run, so that the members that stay keep quorum even if the run stops halfway`,
    },
  ];
}

/** Whether the deployed stack recorded this restore as finished: then it never runs again, on any node. */
export function restoreFinished(deployed: DeployedState, requestId: string): boolean {
  return deployed.finishedRestores?.includes(requestId) ?? false;
}

/**
 * A declared restore the deployed stack has not recorded as finished may have run on the members it had (a stack
 * deployed before the program recorded restores, or a run that failed after the restore): the members the run adds
 * would restore the old snapshot under a new cluster token while the others serve. Invariant: the members of a
 * restore never change while it is unrecorded. With nothing deployed there is no member to change (and validation
 * admits only this stack's own snapshots).
 */
export function checkRestoreMembers(
  deployed: DeployedState,
  config: { restore?: { requestId: string }; etcdTopology: string; controlPlane: { count: number }; etcd: { count: number } },
): Problem[] {
  if (!config.restore || deployed.kubernetesVersion === undefined || restoreFinished(deployed, config.restore.requestId)) return [];
  const changes: string[] = [];
  if (deployed.controlPlaneCount !== undefined && deployed.controlPlaneCount !== config.controlPlane.count) {
    changes.push(`controlPlane.count ${deployed.controlPlaneCount} → ${config.controlPlane.count}`);
  }
  if (config.etcdTopology === "external" && deployed.etcdCount !== undefined && deployed.etcdCount !== config.etcd.count) {
    changes.push(`etcd.count ${deployed.etcdCount} → ${config.etcd.count}`);
  }
  if (changes.length === 0) return [];
  return [
    {
      path: "restore",
      message: `restore ${config.restore.requestId} is declared and the stack has no record of it finishing, and this run changes the members (${changes.join(", ")}): a new member would restore the snapshot again while the others serve. Run pulumi up once with the members unchanged (it finishes the restore, or records it as finished), or remove restore, then change the counts`,
    },
  ];
}

/** A public key as a reader can tell it apart: its type and the end of its key material (never the comment). */
function keyLabel(key: string): string {
  const [type, material = ""] = key.trim().split(/\s+/);
  return `${type} …${material.slice(-12)}`;
}

const roleNames = { controlPlane: "control plane", workers: "worker", etcd: "etcd member" } as const;
const stopConsequence = (role: "controlPlane" | "workers" | "etcd", stacked: boolean): string =>
  role === "controlPlane" ? (stacked ? "the API and etcd go down together" : "the API goes down") : role === "workers" ? "every workload stops together" : "etcd loses its quorum";

/** The config keys checkMachineChanges may refuse: the offline plan shows such a change and notes the refusal. */
export const machineChangeKeys: readonly string[] = [
  "ssh.publicKey",
  ...["controlPlane", "workers", "etcd"].flatMap((role) => [`${role}.instanceType`, `${role}.volumeGiB`]),
  "apiAccess.internal",
];

/**
 * Changes to the deployed AWS machines that the AWS provider would make all at once (forceNew.ts has the provider's
 * facts). Invariant: a run never replaces or stops every machine of a role together, nor the API load balancer. A
 * new key pair replaces every instance (keyName is force-new), cp-0 among them, whose blank disk would run kubeadm
 * init again: a new cluster; a new instance type stops and starts every machine of the role in parallel; a flip of
 * apiAccess.internal replaces the load balancer under a new DNS name that every kubeconfig, cluster-info, the
 * kubelets and the serving certificates still name; a smaller volume is refused by EBS halfway through the run.
 * Only fields the deployed stack recorded are compared (an older stack is never refused for what it did not record).
 */
export function checkMachineChanges(
  deployed: DeployedMachines | undefined,
  config: {
    ssh: { publicKey?: string };
    controlPlane: DeployedRole;
    workers: DeployedRole;
    etcd: DeployedRole;
    etcdTopology: string;
    apiAccess: { internal: boolean };
  },
): Problem[] {
  if (deployed === undefined) return [];
  const problems: Problem[] = [];
  const configuredKey = config.ssh.publicKey?.trim() ?? generatedKey;
  if (deployed.sshKey !== undefined && deployed.sshKey !== configuredKey) {
    const was = deployed.sshKey === generatedKey ? "the program's generated key pair" : `the key pair of ${keyLabel(deployed.sshKey)}`;
    const keep = deployed.sshKey === generatedKey ? "unset (and sshPrivateKey unset)" : `${keyLabel(deployed.sshKey)} as deployed (and sshPrivateKey with it)`;
    problems.push({
      path: "ssh.publicKey",
      message: `the deployed machines were created with ${was}; a new key pair replaces every instance at once (EC2 reads an instance's key pair only at launch: the AWS provider's keyName is force-new), cp-0 among them, and a blank cp-0 would run kubeadm init again: a new, empty cluster. Keep ssh.publicKey ${keep}; to log in with another key, add it to ~/.ssh/authorized_keys on the bastion and every node (README "Node lifecycle": "Another SSH key")`,
    });
  }
  for (const role of ["controlPlane", "workers", "etcd"] as const) {
    const was = deployed[role];
    if (was === undefined || (role === "etcd" && config.etcdTopology !== "external")) continue;
    const now = config[role];
    const name = roleNames[role];
    if (was.instanceType !== undefined && now.instanceType !== undefined && was.instanceType !== now.instanceType) {
      problems.push({
        path: `${role}.instanceType`,
        message: `${was.instanceType} → ${now.instanceType} stops and starts every ${name} at once (the AWS provider changes an instance's type in place: it stops the instance, modifies it and starts it again, on every ${name} in parallel): ${stopConsequence(role, config.etcdTopology === "stacked")}. Keep ${role}.instanceType: ${was.instanceType}; to move the ${name}s to ${now.instanceType}, change one machine at a time by hand, then record it (README "Node lifecycle": "Another instance type")`,
      });
    }
    if (was.volumeGiB !== undefined && now.volumeGiB !== undefined && now.volumeGiB < was.volumeGiB) {
      problems.push({
        path: `${role}.volumeGiB`,
        message: `${was.volumeGiB} → ${now.volumeGiB} would shrink every ${name}'s root volume: an EBS volume only grows (the AWS provider modifies it in place, and EC2 refuses a smaller size, failing the run halfway). Keep ${role}.volumeGiB at ${was.volumeGiB} or more: a larger value grows each volume in place`,
      });
    }
  }
  if (deployed.apiInternal !== undefined && deployed.apiInternal !== config.apiAccess.internal) {
    const instead = deployed.apiInternal
      ? "reach the API from inside the VPC or over a VPN"
      : "limit who reaches it with apiAccess.allowedCidrs";
    problems.push({
      path: "apiAccess.internal",
      message: `${deployed.apiInternal} → ${config.apiAccess.internal} replaces the API load balancer (the AWS provider cannot change a load balancer's scheme: internal is force-new) under a new DNS name, while every kubeconfig, kube-public/cluster-info, kubeadm-config's controlPlaneEndpoint, the kubelets and the apiservers' serving certificates name the old one: the nodes lose the API and joins fail. Keep apiAccess.internal: ${deployed.apiInternal} and ${instead}; a cluster behind the other kind of load balancer is a new cluster (its own stack)`,
    });
  }
  return problems;
}

/** Every problem of the configured change against what is deployed. */
export function checkAgainstDeployed(
  deployed: DeployedState,
  config: {
    kubernetesVersion: string;
    etcdTopology: string;
    controlPlane: { count: number } & DeployedRole;
    workers: DeployedRole;
    etcd: { count: number } & DeployedRole;
    restore?: { requestId: string };
    ssh: { publicKey?: string };
    apiAccess: { internal: boolean };
  },
): Problem[] {
  return [
    ...checkMachineChanges(deployed.machines, config),
    ...checkVersionChange(deployed.kubernetesVersion, config.kubernetesVersion),
    ...checkTopologyChange(deployed.etcdTopology, config.etcdTopology),
    ...checkControlPlaneRemoval(deployed.controlPlaneCount, config.controlPlane.count, config.etcdTopology === "stacked"),
    ...checkRestoreMembers(deployed, config),
  ];
}
