// The per-node bootstrap steps shared by control planes and workers: prepare, and the join credentials minted for
// one joining node on the first control plane. Inputs are pinned per machine (bootstrapRecord.ts), never ignored.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { NodeBootstrap } from "./bootstrapRecord";
import type { ImageSource } from "./config";
import { JoinCredentials, mintJoinCredentialsScript, parseJoinCredentials } from "./scripts/mintJoinCredentials";
import { prepareNodeScript } from "./scripts/prepareNode";
import { membershipStep, NodeHost, nodeStep } from "./steps";

/** The identity the bootstrap record pins a node's inputs to: the replaceable machine's id, else its address. */
export function machineIdentity(host: NodeHost): pulumi.Output<string> {
  return host.replaceableId ?? host.privateIp;
}

/** Where a node's packages and images come from (config packages and images). */
export interface NodeSources {
  images: ImageSource;
  packageRepository?: string;
}

/**
 * Step "prepare" of a node, at the version its bootstrap pins. No ignoreChanges: a replacement must install the
 * cluster's current version, not repeat the old machine's script (Pulumi would fill ignored inputs from it).
 */
export function prepareStep(host: NodeHost, bootstrap: pulumi.Output<NodeBootstrap>, sources: NodeSources, parent: pulumi.Resource): command.remote.Command {
  const member = membershipStep(host);
  return nodeStep(
    `${host.name}-prepare`,
    { host, script: bootstrap.apply((b) => prepareNodeScript({ node: host.name, kubernetesVersion: b.kubernetesVersion, images: sources.images, packageRepository: sources.packageRepository })), triggers: member.triggers },
    { parent, dependsOn: host.machine ? [host.machine] : [], deleteBeforeReplace: member.deleteBeforeReplace },
  );
}

export interface MintedForNode {
  /** The step, on the first control plane; the node's join waits for it. */
  step: command.remote.Command;
  /** Secret: the token and CA hash this node joins with. */
  credentials: pulumi.Output<JoinCredentials>;
  /** Secret; control planes only: the key of the certificate upload made for this node. */
  certificateKey?: pulumi.Output<string>;
}

/**
 * Step "<node>-join-credentials", on `on` (cp-0): a bootstrap token for one joining node and, for a control plane, a
 * certificate upload encrypted with a key of its own. Triggered by the node's credentials round, so it runs again
 * exactly when the node is about to join with them (a new or replaced machine, or a join not yet recorded as done):
 * never a token minted 24 h earlier or an upload deleted after 2 h.
 * Important: a control plane's mint must run right before its own join (callers order it after the previous control
 * plane's join): kubeadm keeps one kubeadm-certs Secret, and each upload replaces it under a new key.
 */
export function mintJoinCredentials(
  node: string,
  on: NodeHost,
  args: { bootstrap: pulumi.Output<NodeBootstrap>; controlPlane: boolean; after: pulumi.Input<pulumi.Resource>[] },
  parent: pulumi.Resource,
): MintedForNode {
  // The machine too: a new machine re-mints even within one round.
  const machine = args.bootstrap.apply((b) => b.machine);
  const round = args.bootstrap.apply((b) => b.round);
  const script = mintJoinCredentialsScript({ node: on.name, forNodes: [node], uploadCertificates: args.controlPlane });
  let certificateKey: pulumi.Output<string> | undefined;
  if (args.controlPlane) {
    const key = new random.RandomBytes(
      `${node}-upload-certificate-key`,
      { length: 32, keepers: { machine, round } },
      // The random provider replaces on a keepers change; declared here too, so every preview says so.
      { parent, replaceOnChanges: ["keepers"] },
    );
    certificateKey = pulumi.secret(key.hex);
  }
  const step = nodeStep(
    `${node}-join-credentials`,
    { host: on, script, ...(certificateKey ? { stdin: pulumi.interpolate`${certificateKey}\n` } : {}), logging: "stderr", triggers: [machine, round] },
    { parent, dependsOn: args.after, additionalSecretOutputs: ["stdout"] },
  );
  return { step, credentials: pulumi.secret(step.stdout.apply(parseJoinCredentials)), certificateKey };
}

/** What the stack records for a node once its bootstrap step (`done`: its join, or cp-0's init) has finished. */
export function recordedBootstrap(done: pulumi.Resource & { id: pulumi.Output<string> }, bootstrap: pulumi.Output<NodeBootstrap>): pulumi.Output<NodeBootstrap> {
  return pulumi.all([done.id, bootstrap]).apply(([, b]) => b);
}
