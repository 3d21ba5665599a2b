import * as pulumi from "@pulumi/pulumi";
import { createCluster } from "./cluster";
import { readRawConfig } from "./config";
import { checkAgainstDeployed, machinesOutput, readDeployedState } from "./deployedState";
import { ConfigError, validateOrThrow } from "./validate";

/**
 * The program. Order matters: the whole configuration is validated before any resource is registered (with the
 * cluster's name `<project>-<stack>`: a declared restore must name one of this cluster's own snapshots); then the
 * deployed stack's own outputs are read (a read, not a resource to build) and the change is checked against them
 * (skew policy, topology); only then is the cluster declared.
 */
export async function runProgram(): Promise<Record<string, unknown>> {
  const { raw, sshPrivateKey, secretKeys, plainSecrets } = readRawConfig();
  const clusterName = `${pulumi.getProject()}-${pulumi.getStack()}`;
  const config = validateOrThrow(raw, { clusterName, plainSecrets });
  const deployed = await readDeployedState();
  const changeProblems = checkAgainstDeployed(deployed, config);
  if (changeProblems.length > 0) throw new ConfigError(changeProblems);
  if (config.controlPlane.count === 1) {
    pulumi.log.warn("one control plane is not highly available: losing it loses the API and etcd (fine for a lab, not for production)");
  }
  const cluster = createCluster({ clusterName, config, sshPrivateKey, deployed, addonsSecret: secretKeys.includes("addons") });
  return {
    kubeconfig: pulumi.secret(cluster.kubeconfig),
    // The earliest expiry of any kubeadm certificate on any control plane; details and the renewal round below.
    certificatesExpireAt: cluster.certificates.apply((c) => c.controlPlaneExpiry ?? null),
    certificates: cluster.certificates,
    apiEndpoint: cluster.apiEndpoint,
    ...(cluster.bastionAddress !== undefined ? { bastionAddress: cluster.bastionAddress } : {}),
    nodes: cluster.nodes,
    // Read back by the next run (deployedState.ts): which machine each node bootstrapped on, at which version and
    // credentials round; and which restores finished.
    bootstrap: cluster.bootstrap,
    finishedRestores: cluster.finishedRestores,
    kubernetesVersion: config.kubernetesVersion,
    etcdTopology: config.etcdTopology,
    // Read back by the next run: what the AWS machines were built with, so that a change the provider would make to
    // all of them at once is refused (deployedState.ts checkMachineChanges).
    ...(config.hosts.provider === "aws" ? { machines: machinesOutput(config) } : {}),
  };
}
