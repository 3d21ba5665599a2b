import * as pulumi from "@pulumi/pulumi";
import * as semver from "semver";
import { Problem } from "./validate";

/** What the deployed stack reports about itself (its previous outputs); empty for a stack never deployed. */
export interface DeployedState {
  kubernetesVersion?: string;
  etcdTopology?: string;
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
  return { kubernetesVersion: await read("kubernetesVersion"), etcdTopology: await read("etcdTopology") };
}

/**
 * The skew policy between the deployed version and the configured one: no downgrade, no skipped minor (kubeadm
 * upgrades one minor at a time); any patch within the same or the next minor is fine.
 */
export function checkVersionChange(deployed: string | undefined, target: string): Problem[] {
  if (deployed === undefined || !semver.valid(deployed) || !semver.valid(target)) return [];
  if (semver.lt(target, deployed)) {
    return [{ path: "kubernetesVersion", message: `${target} is older than the deployed ${deployed}; kubeadm cannot downgrade a cluster (restore an etcd snapshot into a fresh stack instead)` }];
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
      message: `the stack runs with ${deployed} etcd and all cluster data lives there; switching to ${target} in place would start an empty etcd. Keep etcdTopology: ${deployed}, or take a snapshot, create a new stack with etcdTopology: ${target} and restore the snapshot there (see README "Backing up and restoring etcd")`,
    },
  ];
}

/** Every problem of the configured change against what is deployed. */
export function checkAgainstDeployed(deployed: DeployedState, config: { kubernetesVersion: string; etcdTopology: string }): Problem[] {
  return [...checkVersionChange(deployed.kubernetesVersion, config.kubernetesVersion), ...checkTopologyChange(deployed.etcdTopology, config.etcdTopology)];
}
