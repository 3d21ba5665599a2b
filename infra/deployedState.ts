import * as pulumi from "@pulumi/pulumi";

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
