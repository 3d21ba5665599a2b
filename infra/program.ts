import * as pulumi from "@pulumi/pulumi";
import { createCluster } from "./cluster";
import { readRawConfig } from "./config";
import { checkAgainstDeployed, readDeployedState } from "./deployedState";
import { ConfigError, validateOrThrow } from "./validate";

/**
 * The program. Order matters: the whole configuration is validated before any resource is registered; then the
 * deployed stack's own outputs are read (a read, not a resource to build) and the change is checked against them
 * (skew policy, topology); only then is the cluster declared.
 */
export async function runProgram(): Promise<Record<string, unknown>> {
  const { raw, sshPrivateKey } = readRawConfig();
  const config = validateOrThrow(raw);
  const deployed = await readDeployedState();
  const changeProblems = checkAgainstDeployed(deployed, config);
  if (changeProblems.length > 0) throw new ConfigError(changeProblems);
  if (config.controlPlane.count === 1) {
    pulumi.log.warn("one control plane is not highly available: losing it loses the API and etcd (fine for a lab, not for production)");
  }
  const clusterName = `${pulumi.getProject()}-${pulumi.getStack()}`;
  const cluster = createCluster({ clusterName, config, sshPrivateKey });
  return {
    kubeconfig: pulumi.secret(cluster.kubeconfig),
    apiEndpoint: cluster.apiEndpoint,
    bastionAddress: cluster.bastionAddress,
    nodes: cluster.nodes,
    kubernetesVersion: config.kubernetesVersion,
    etcdTopology: config.etcdTopology,
  };
}
