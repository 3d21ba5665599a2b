import * as pulumi from "@pulumi/pulumi";
import * as semver from "semver";
import { Problem } from "./validate";

/** What the deployed stack reports about itself (its previous outputs); empty for a stack never deployed. */
export interface DeployedState {
  kubernetesVersion?: string;
  etcdTopology?: string;
  /** Control planes of the deployed cluster (from its `nodes` output). */
  controlPlaneCount?: number;
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
  return {
    kubernetesVersion: await read("kubernetesVersion"),
    etcdTopology: await read("etcdTopology"),
    controlPlaneCount: Array.isArray(list) ? list.filter((n) => n.role === "control-plane").length : undefined,
  };
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

/**
 * Removing control planes with stacked etcd: each removal takes a member out of etcd, one at a time (the joins are
 * chained, so their deletes run highest index first). Invariant: a run never removes a majority of the deployed
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

/** Every problem of the configured change against what is deployed. */
export function checkAgainstDeployed(
  deployed: DeployedState,
  config: { kubernetesVersion: string; etcdTopology: string; controlPlane: { count: number } },
): Problem[] {
  return [
    ...checkVersionChange(deployed.kubernetesVersion, config.kubernetesVersion),
    ...checkTopologyChange(deployed.etcdTopology, config.etcdTopology),
    ...checkControlPlaneRemoval(deployed.controlPlaneCount, config.controlPlane.count, config.etcdTopology === "stacked"),
  ];
}
