import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ControlPlane } from "./controlPlane";
import { ClusterShape, joinConfiguration } from "./scripts/kubeadmConfig";
import { joinWorkerScript } from "./scripts/joinNode";
import { prepareNodeScript } from "./scripts/prepareNode";
import { bootstrapIgnoreChanges, membershipStep, NodeHost, nodeStep } from "./steps";

export interface WorkerPoolArgs {
  hosts: NodeHost[];
  shape: pulumi.Output<ClusterShape>;
  /** The version new nodes install (the same as shape's; plain, so scripts need no Output). */
  kubernetesVersion: string;
  controlPlane: ControlPlane;
}

/**
 * Workers: each is prepared as soon as its machine boots and joins through the API load balancer once cp-0 is
 * initialised. Invariant: workers never wait on each other — a slow or failed worker holds back no other.
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
    const prepare = nodeStep(
      `${host.name}-prepare`,
      { host, script: prepareNodeScript({ node: host.name, kubernetesVersion: args.kubernetesVersion }), triggers: member.triggers },
      { parent, dependsOn: host.machine ? [host.machine] : [], ignoreChanges: bootstrapIgnoreChanges, deleteBeforeReplace: member.deleteBeforeReplace },
    );
    return nodeStep(
      `${host.name}-join`,
      {
        host,
        script: joinWorkerScript({ node: host.name }),
        stdin: pulumi
          .all([args.shape, host.privateIp, args.controlPlane.joinCredentials!])
          .apply(([shape, privateIp, minted]) => joinConfiguration({ shape, node: { name: host.name, privateIp }, bootstrapToken: minted.token, caCertHash: minted.caCertHash })),
        triggers: member.triggers,
      },
      { parent, dependsOn: [prepare, args.controlPlane.init, args.controlPlane.mint!], ignoreChanges: bootstrapIgnoreChanges, deleteBeforeReplace: member.deleteBeforeReplace },
    );
  });
}
