import * as pulumi from "@pulumi/pulumi";
import { createCluster } from "./cluster";
import { readRawConfig } from "./config";
import { readDeployedState } from "./deployedState";
import { validateOrThrow } from "./validate";

/**
 * The program. Order matters: the whole configuration is validated before any resource is registered; then the
 * deployed stack's own outputs are read; then the cluster is declared.
 */
export async function runProgram(): Promise<Record<string, unknown>> {
  const { raw, sshPrivateKey } = readRawConfig();
  const config = validateOrThrow(raw);
  await readDeployedState();
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
