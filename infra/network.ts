import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { subnetLayout } from "./cidr";
import { ClusterConfig } from "./config";

export interface NetworkArgs {
  clusterName: string;
  network: ClusterConfig["network"];
}

export interface NetworkOutputs {
  vpcId: pulumi.Output<string>;
  vpcCidr: pulumi.Output<string>;
  /** Nodes run here, one subnet per zone; instance i goes to subnet i mod n. */
  privateSubnetIds: pulumi.Output<string>[];
  /** The bastion, NAT gateways and an internet-facing LB. */
  publicSubnetIds: pulumi.Output<string>[];
}

/**
 * A VPC with private subnets across up to three zones (egress through one NAT gateway per zone, so losing a zone
 * never cuts the others off) and public subnets; or an existing VPC and subnets from config.
 */
export class Network extends pulumi.ComponentResource implements NetworkOutputs {
  readonly vpcId: pulumi.Output<string>;
  readonly vpcCidr: pulumi.Output<string>;
  readonly privateSubnetIds: pulumi.Output<string>[];
  readonly publicSubnetIds: pulumi.Output<string>[];

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:network:Network", name, {}, opts);
    const out = createNetwork(name, args, this);
    this.vpcId = out.vpcId;
    this.vpcCidr = out.vpcCidr;
    this.privateSubnetIds = out.privateSubnetIds;
    this.publicSubnetIds = out.publicSubnetIds;
    this.registerOutputs({ vpcId: this.vpcId, privateSubnetIds: this.privateSubnetIds, publicSubnetIds: this.publicSubnetIds });
  }
}

export function createNetwork(name: string, args: NetworkArgs, parent: pulumi.Resource): NetworkOutputs {
  const existing = args.network.existing;
  if (existing) {
    const vpc = aws.ec2.getVpcOutput({ id: existing.vpcId }, { parent });
    return {
      vpcId: pulumi.output(existing.vpcId),
      vpcCidr: vpc.cidrBlock,
      privateSubnetIds: existing.privateSubnetIds.map((id) => pulumi.output(id)),
      publicSubnetIds: existing.publicSubnetIds.map((id) => pulumi.output(id)),
    };
  }
  const tags = (suffix: string) => ({ Name: `${args.clusterName}-${suffix}`, "kubeadm-ha/cluster": args.clusterName });
  const zones: pulumi.Output<string[]> =
    args.network.availabilityZones.length > 0
      ? pulumi.output(args.network.availabilityZones)
      : aws.getAvailabilityZonesOutput({ state: "available" }, { parent }).names.apply((names) => names.slice(0, args.network.availabilityZoneCount));
  const layout = subnetLayout(args.network.vpcCidr, args.network.availabilityZoneCount);

  const vpc = new aws.ec2.Vpc(`${name}-vpc`, { cidrBlock: args.network.vpcCidr, enableDnsHostnames: true, enableDnsSupport: true, tags: tags("vpc") }, { parent });
  const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: tags("igw") }, { parent });
  const publicRoutes = new aws.ec2.RouteTable(
    `${name}-public`,
    { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }], tags: tags("public") },
    { parent },
  );

  const publicSubnetIds: pulumi.Output<string>[] = [];
  const privateSubnetIds: pulumi.Output<string>[] = [];
  layout.public.forEach((cidrBlock, i) => {
    const az = zones.apply((z) => z[i]);
    const pub = new aws.ec2.Subnet(`${name}-public-${i}`, { vpcId: vpc.id, cidrBlock, availabilityZone: az, mapPublicIpOnLaunch: false, tags: tags(`public-${i}`) }, { parent });
    new aws.ec2.RouteTableAssociation(`${name}-public-${i}`, { subnetId: pub.id, routeTableId: publicRoutes.id }, { parent });
    const eip = new aws.ec2.Eip(`${name}-nat-${i}`, { domain: "vpc", tags: tags(`nat-${i}`) }, { parent });
    const nat = new aws.ec2.NatGateway(`${name}-nat-${i}`, { subnetId: pub.id, allocationId: eip.id, tags: tags(`nat-${i}`) }, { parent, dependsOn: [igw] });
    const priv = new aws.ec2.Subnet(`${name}-private-${i}`, { vpcId: vpc.id, cidrBlock: layout.private[i], availabilityZone: az, tags: tags(`private-${i}`) }, { parent });
    const routes = new aws.ec2.RouteTable(
      `${name}-private-${i}`,
      { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", natGatewayId: nat.id }], tags: tags(`private-${i}`) },
      { parent },
    );
    new aws.ec2.RouteTableAssociation(`${name}-private-${i}`, { subnetId: priv.id, routeTableId: routes.id }, { parent });
    publicSubnetIds.push(pub.id);
    privateSubnetIds.push(priv.id);
  });
  return { vpcId: vpc.id, vpcCidr: vpc.cidrBlock, privateSubnetIds, publicSubnetIds };
}
