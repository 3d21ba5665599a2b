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

/** Every problem of the configured change against what is deployed. */
export function checkAgainstDeployed(
  deployed: DeployedState,
  config: { kubernetesVersion: string; etcdTopology: string; controlPlane: { count: number }; etcd: { count: number }; restore?: { requestId: string } },
): Problem[] {
  return [
    ...checkVersionChange(deployed.kubernetesVersion, config.kubernetesVersion),
    ...checkTopologyChange(deployed.etcdTopology, config.etcdTopology),
    ...checkControlPlaneRemoval(deployed.controlPlaneCount, config.controlPlane.count, config.etcdTopology === "stacked"),
    ...checkRestoreMembers(deployed, config),
  ];
}
