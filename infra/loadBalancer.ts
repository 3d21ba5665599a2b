import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

import { apiserverPort as apiPort } from "./defaults";

export interface ApiLoadBalancerArgs {
  clusterName: string;
  internal: boolean;
  /** Public subnets for an internet-facing LB, private ones for an internal LB. */
  subnetIds: pulumi.Input<string>[];
  securityGroupId: pulumi.Input<string>;
  vpcId: pulumi.Input<string>;
}

/**
 * The Network Load Balancer in front of every apiserver: TCP 6443, cross-zone, health-checked on HTTPS /readyz.
 * Invariant: client-IP preservation is off. With it on, a control plane connecting through the NLB can be routed
 * to itself, and since an NLB does not hairpin, that connection hangs (kubelets and kubeadm join use the LB).
 */
export class ApiLoadBalancer extends pulumi.ComponentResource {
  readonly dnsName: pulumi.Output<string>;
  readonly targetGroupArn: pulumi.Output<string>;
  /** host:port every node and kubeconfig uses. */
  readonly endpoint: pulumi.Output<string>;

  constructor(name: string, args: ApiLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:network:ApiLoadBalancer", name, {}, opts);
    const parent = this;
    const tags = { Name: `${args.clusterName}-api`, "kubeadm-ha/cluster": args.clusterName };
    const lb = new aws.lb.LoadBalancer(
      `${name}-nlb`,
      {
        loadBalancerType: "network",
        internal: args.internal,
        subnets: args.subnetIds,
        securityGroups: [args.securityGroupId],
        enableCrossZoneLoadBalancing: true,
        tags,
      },
      { parent },
    );
    const targetGroup = new aws.lb.TargetGroup(
      `${name}-apiservers`,
      {
        vpcId: args.vpcId,
        port: apiPort,
        protocol: "TCP",
        targetType: "instance",
        preserveClientIp: "false",
        // Let in-flight requests of a control plane being upgraded finish, but do not hold rolling steps for long.
        deregistrationDelay: 30,
        healthCheck: { protocol: "HTTPS", path: "/readyz", port: "traffic-port", interval: 10, healthyThreshold: 2, unhealthyThreshold: 2 },
        tags,
      },
      { parent },
    );
    new aws.lb.Listener(
      `${name}-api`,
      { loadBalancerArn: lb.arn, port: apiPort, protocol: "TCP", defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }], tags },
      { parent },
    );
    this.dnsName = lb.dnsName;
    this.targetGroupArn = targetGroup.arn;
    this.endpoint = pulumi.interpolate`${lb.dnsName}:${apiPort}`;
    this.registerOutputs({ dnsName: this.dnsName, endpoint: this.endpoint });
  }

  /** Registers a control plane with the API target group. */
  attach(name: string, instanceId: pulumi.Input<string>, opts: pulumi.CustomResourceOptions): aws.lb.TargetGroupAttachment {
    return new aws.lb.TargetGroupAttachment(name, { targetGroupArn: this.targetGroupArn, targetId: instanceId, port: apiPort }, opts);
  }
}
