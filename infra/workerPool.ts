import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { NodeBootstrap } from "./bootstrapRecord";
import { ControlPlane } from "./controlPlane";
import { mintJoinCredentials, NodeSources, prepareStep } from "./nodeBootstrap";
import { ClusterShape, joinConfiguration } from "./scripts/kubeadmConfig";
import { joinWorkerScript } from "./scripts/joinNode";
import { membershipStep, NodeHost, nodeStep } from "./steps";

export interface WorkerPoolArgs {
  hosts: NodeHost[];
  shape: pulumi.Output<ClusterShape>;
  /** Each worker's bootstrap inputs, pinned to its machine (bootstrapRecord.ts). */
  bootstrap: (host: NodeHost) => pulumi.Output<NodeBootstrap>;
  controlPlane: ControlPlane;
  /** Where the nodes get their packages and images (config packages, images). */
  sources: NodeSources;
}

/**
 * Workers: each is prepared as soon as its machine boots and joins through the API load balancer once cp-0 is
 * initialised, with a token minted for it on cp-0. Invariant: workers never wait on each other — a slow or failed
 * worker holds back no other.
 */
export class WorkerPool extends pulumi.ComponentResource {
  readonly joins: command.remote.Command[];

  constructor(name: string, args: WorkerPoolArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:cluster:WorkerPool", name, {}, opts);
    this.joins = createWorkerPool(args, this);
    this.registerOutputs({});
  }
}

export function createWorkerPool(args: WorkerPoolArgs, parent: pulumi.Resource): command.remote.Command[] {
  return args.hosts.map((host) => {
    const member = membershipStep(host);
    const bootstrap = args.bootstrap(host);
    const prepare = prepareStep(host, bootstrap, args.sources, parent);
    // A token only: a worker's mint never touches the certificate upload a joining control plane downloads.
    const minted = mintJoinCredentials(host.name, args.controlPlane.first, { bootstrap, controlPlane: false, after: [args.controlPlane.init] }, parent);
    return nodeStep(
      `${host.name}-join`,
      {
        host,
        script: joinWorkerScript({ node: host.name }),
        stdin: pulumi
          .all([args.shape, bootstrap, host.privateIp, minted.credentials])
          .apply(([shape, b, privateIp, credentials]) =>
            joinConfiguration({ shape: { ...shape, kubernetesVersion: b.kubernetesVersion }, node: { name: host.name, privateIp }, bootstrapToken: credentials.token, caCertHash: credentials.caCertHash }),
          ),
        triggers: member.triggers,
      },
      // Nothing ignored: a replacement joins with the credentials minted for it (see bootstrapRecord.ts).
      { parent, dependsOn: [prepare, args.controlPlane.init, minted.step], deleteBeforeReplace: member.deleteBeforeReplace },
    );
  });
}
