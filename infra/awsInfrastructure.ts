import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ClusterConfig } from "./config";
import { sshUser } from "./defaults";
import { ClusterInfrastructure } from "./infrastructure";
import { createBastion } from "./bastion";
import { ApiLoadBalancer } from "./loadBalancer";
import { createMachine, createMachineBase } from "./machines";
import { Network } from "./network";
import { SecurityGroups } from "./securityGroups";
import { NodeHost, sshConnection } from "./steps";
import { nodeNames } from "./nodeNames";

export interface AwsInfrastructureArgs {
  clusterName: string;
  config: ClusterConfig;
  /** Secret; present when the operator supplies ssh.publicKey. */
  sshPrivateKey?: pulumi.Output<string>;
}

/** The machines on AWS: network, security groups, the API load balancer, a bastion, and one instance per node. */
export function createAwsInfrastructure(args: AwsInfrastructureArgs, parent?: pulumi.Resource): ClusterInfrastructure {
  const { config, clusterName } = args;
  const inputs = args;
  const names = nodeNames(config);
  const network = new Network("network", { clusterName, network: config.network }, { parent });
  const groups = new SecurityGroups(
    "sg",
    {
      clusterName,
      vpcId: network.vpcId,
      vpcCidr: network.vpcCidr,
      sshAllowedCidrs: config.ssh.allowedCidrs,
      apiAllowedCidrs: config.apiAccess.allowedCidrs,
      cni: config.cni.name,
      etcdTopology: config.etcdTopology,
    },
    { parent },
  );
  const api = new ApiLoadBalancer(
    "api",
    {
      clusterName,
      internal: config.apiAccess.internal,
      subnetIds: config.apiAccess.internal ? network.privateSubnetIds : network.publicSubnetIds,
      securityGroupId: groups.ids.apiLoadBalancer,
      vpcId: network.vpcId,
    },
    { parent },
  );

  const machineParent = new pulumi.ComponentResource("kubeadm-ha:cluster:Machines", "machines", {}, { parent });
  const base = createMachineBase(
    "nodes",
    { clusterName, ssh: config.ssh.publicKey && inputs.sshPrivateKey ? { publicKey: config.ssh.publicKey, privateKey: inputs.sshPrivateKey } : undefined },
    machineParent,
  );
  const bastion = createBastion({ clusterName, base, subnetId: network.publicSubnetIds[0], securityGroupId: groups.ids.bastion }, machineParent);
  // Pinned: the bastion's host key (the program's own). Not checked: the nodes' host keys, on the hop from the bastion
  // inside the VPC (each node generates its own at first boot; @pulumi/command keeps no known_hosts).
  const access = { user: sshUser, privateKey: base.sshPrivateKey, bastionHost: bastion.publicIp, bastionHostKey: bastion.hostKey };
  const zoneSubnet = (i: number) => network.privateSubnetIds[i % network.privateSubnetIds.length];
  // Only the etcd members take and restore snapshots: only they get the profile that may reach the bucket.
  const stacked = config.etcdTopology === "stacked";

  const cpHosts: NodeHost[] = names.controlPlanes.map((name, i) => {
    const machine = createMachine(
      base,
      {
        hostname: name,
        role: "control-plane",
        instanceType: config.controlPlane.instanceType,
        volumeGiB: config.controlPlane.volumeGiB,
        subnetId: zoneSubnet(i),
        securityGroupIds: [groups.ids.controlPlane],
        replaceable: i > 0,
        ...(stacked ? { instanceProfileName: base.etcdMemberProfileName } : {}),
      },
      machineParent,
    );
    return { name, privateIp: machine.privateIp, connection: sshConnection(machine.privateIp, access), machine, ...(i > 0 ? { replaceableId: machine.id } : {}) };
  });
  const workerHosts: NodeHost[] = names.workers.map((name, i) => {
    const machine = createMachine(
      base,
      { hostname: name, role: "worker", instanceType: config.workers.instanceType, volumeGiB: config.workers.volumeGiB, subnetId: zoneSubnet(i), securityGroupIds: [groups.ids.worker], replaceable: true },
      machineParent,
    );
    return { name, privateIp: machine.privateIp, connection: sshConnection(machine.privateIp, access), machine, replaceableId: machine.id };
  });

  const etcdHosts: NodeHost[] = names.etcd.map((name, i) => {
    const machine = createMachine(
      base,
      {
        hostname: name,
        role: "etcd",
        instanceType: config.etcd.instanceType,
        volumeGiB: config.etcd.volumeGiB,
        subnetId: zoneSubnet(i),
        securityGroupIds: [groups.ids.etcd],
        instanceProfileName: base.etcdMemberProfileName,
      },
      machineParent,
    );
    return { name, privateIp: machine.privateIp, connection: sshConnection(machine.privateIp, access), machine };
  });
  const instanceIds = new Map(cpHosts.map((h) => [h.name, (h.machine as aws.ec2.Instance).id]));
  return {
    controlPlanes: cpHosts,
    workers: workerHosts,
    etcd: etcdHosts,
    apiEndpoint: api.endpoint,
    apiCertSANs: api.dnsName.apply((dnsName) => [dnsName]),
    bastionAddress: bastion.publicIp,
    registerControlPlane: (host, after) => [api.attach(`${host.name}-api`, instanceIds.get(host.name)!, { parent: machineParent, dependsOn: after })],
    // The etcd members' role: the snapshot bucket's policy goes on it, and only on it.
    nodeRoleName: base.role.name,
    beforeInit: [],
  };
}
