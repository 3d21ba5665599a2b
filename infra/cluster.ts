import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { Cni } from "./cni";
import { ClusterConfig } from "./config";
import { ControlPlane, ControlPlaneJoins, JoinCredentials } from "./controlPlane";
import { sshUser } from "./defaults";
import { ApiLoadBalancer } from "./loadBalancer";
import { createMachine, createMachineBase } from "./machines";
import { Network } from "./network";
import { ClusterShape, EtcdEndpoints } from "./scripts/kubeadmConfig";
import { createEtcdPki } from "./etcdPki";
import { ExternalEtcd } from "./externalEtcd";
import { waitForNodesScript } from "./scripts/waitForNodes";
import { SecurityGroups } from "./securityGroups";
import { NodeHost, nodeStep, sshConnection } from "./steps";
import { WorkerPool } from "./workerPool";
import { preUpgradeSnapshotScript } from "../lifecycle/scripts/snapshot";
import { RollingUpgrade } from "../lifecycle/upgrade";

export interface ClusterInputs {
  clusterName: string;
  config: ClusterConfig;
  /** Secret; present when the operator supplies ssh.publicKey. */
  sshPrivateKey?: pulumi.Output<string>;
}

export interface ClusterOutputs {
  kubeconfig: pulumi.Output<string>;
  apiEndpoint: pulumi.Output<string>;
  bastionAddress: pulumi.Output<string>;
  nodes: pulumi.Output<{ name: string; role: string; privateIp: string }[]>;
}

/** Node names by role, in creation order; cp-0 is the first control plane. */
export function nodeNames(config: Pick<ClusterConfig, "controlPlane" | "workers" | "etcd" | "etcdTopology">) {
  return {
    controlPlanes: Array.from({ length: config.controlPlane.count }, (_, i) => `cp-${i}`),
    workers: Array.from({ length: config.workers.count }, (_, i) => `worker-${i}`),
    etcd: config.etcdTopology === "external" ? Array.from({ length: config.etcd.count }, (_, i) => `etcd-${i}`) : [],
  };
}

/** Day-one bootstrap credentials: a kubeadm bootstrap token (abcdef.0123456789abcdef) and a certificate key. */
export function createJoinCredentials(parent: pulumi.Resource): JoinCredentials {
  const tokenId = new random.RandomString("bootstrap-token-id", { length: 6, upper: false, special: false }, { parent });
  const tokenSecret = new random.RandomPassword("bootstrap-token-secret", { length: 16, upper: false, special: false }, { parent });
  const certificateKey = new random.RandomBytes("certificate-key", { length: 32 }, { parent });
  return {
    bootstrapToken: pulumi.secret(pulumi.interpolate`${tokenId.result}.${tokenSecret.result}`),
    certificateKey: pulumi.secret(certificateKey.hex),
  };
}

/** The whole cluster on AWS: network, security groups, API load balancer, machines, bootstrap, CNI. */
export function createCluster(inputs: ClusterInputs, parent?: pulumi.Resource): ClusterOutputs {
  const { config, clusterName } = inputs;
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
  const bastion = createMachine(
    base,
    { hostname: "bastion", role: "bastion", instanceType: "t3.micro", volumeGiB: 8, subnetId: network.publicSubnetIds[0], securityGroupIds: [groups.ids.bastion] },
    machineParent,
  );
  const bastionIp = new aws.ec2.Eip("bastion", { domain: "vpc", instance: bastion.id, tags: { Name: `${clusterName}-bastion` } }, { parent: machineParent });
  const access = { user: sshUser, privateKey: base.sshPrivateKey, bastionHost: bastionIp.publicIp };
  const zoneSubnet = (i: number) => network.privateSubnetIds[i % network.privateSubnetIds.length];

  const attachments: pulumi.Resource[] = [];
  const cpHosts: NodeHost[] = names.controlPlanes.map((name, i) => {
    const machine = createMachine(
      base,
      { hostname: name, role: "control-plane", instanceType: config.controlPlane.instanceType, volumeGiB: config.controlPlane.volumeGiB, subnetId: zoneSubnet(i), securityGroupIds: [groups.ids.controlPlane] },
      machineParent,
    );
    attachments.push(api.attach(`${name}-api`, machine.id, { parent: machineParent }));
    return { name, privateIp: machine.privateIp, connection: sshConnection(machine.privateIp, access), machine };
  });
  const workerHosts: NodeHost[] = names.workers.map((name, i) => {
    const machine = createMachine(
      base,
      { hostname: name, role: "worker", instanceType: config.workers.instanceType, volumeGiB: config.workers.volumeGiB, subnetId: zoneSubnet(i), securityGroupIds: [groups.ids.worker] },
      machineParent,
    );
    return { name, privateIp: machine.privateIp, connection: sshConnection(machine.privateIp, access), machine };
  });

  const etcdHosts: NodeHost[] = names.etcd.map((name, i) => {
    const machine = createMachine(
      base,
      { hostname: name, role: "etcd", instanceType: config.etcd.instanceType, volumeGiB: config.etcd.volumeGiB, subnetId: zoneSubnet(i), securityGroupIds: [groups.ids.etcd] },
      machineParent,
    );
    return { name, privateIp: machine.privateIp, connection: sshConnection(machine.privateIp, access), machine };
  });
  const externalEtcd =
    config.etcdTopology === "external"
      ? new ExternalEtcd(
          "etcd",
          { hosts: etcdHosts, version: config.etcd.version, pki: createEtcdPki("etcd-pki", { members: etcdHosts.map((h) => ({ name: h.name, privateIp: h.privateIp })) }, machineParent) },
          { parent },
        )
      : undefined;
  const etcdShape: pulumi.Output<EtcdEndpoints> = externalEtcd ? externalEtcd.kubeadmEtcd : pulumi.output({ kind: "stacked" as const });

  const shape: pulumi.Output<ClusterShape> = pulumi.all([api.endpoint, api.dnsName, etcdShape]).apply(([endpoint, dnsName, etcd]) => ({
    clusterName,
    kubernetesVersion: config.kubernetesVersion,
    controlPlaneEndpoint: endpoint,
    certSANs: [dnsName],
    podCidr: config.network.podCidr,
    serviceCidr: config.network.serviceCidr,
    etcd,
  }));
  const credentials = createJoinCredentials(machineParent);

  const controlPlane = new ControlPlane(
    "control-plane",
    { hosts: cpHosts, shape, kubernetesVersion: config.kubernetesVersion, credentials, initAfter: [...attachments, ...(externalEtcd ? [externalEtcd.healthy] : [])], externalEtcd },
    { parent },
  );
  const cni = new Cni("cni", { name: config.cni.name, version: config.cni.version, podCidr: config.network.podCidr, kubeconfig: controlPlane.kubeconfig, dependsOn: [controlPlane] }, { parent });
  const cpJoins = new ControlPlaneJoins(
    "control-plane-joins",
    { controlPlane, hosts: cpHosts, shape, credentials, stackedEtcd: config.etcdTopology === "stacked", joinAfter: [cni] },
    { parent },
  );
  const workers = new WorkerPool("workers", { hosts: workerHosts, shape, kubernetesVersion: config.kubernetesVersion, credentials, controlPlane }, { parent });
  const allNodes = [...names.controlPlanes, ...names.workers];
  const nodesReady = nodeStep(
    "cluster-wait-nodes-ready",
    { host: cpHosts[0], script: waitForNodesScript({ node: cpHosts[0].name, expectedNodes: allNodes }) },
    { parent, dependsOn: [cni, cpJoins, workers] },
  );
  new RollingUpgrade(
    "upgrade",
    {
      controlPlanes: cpHosts,
      workers: workerHosts,
      kubernetesVersion: config.kubernetesVersion,
      maxUnavailable: config.workers.maxUnavailable,
      apiEndpoint: api.endpoint,
      etcd: externalEtcd ? { kind: "external", endpoints: externalEtcd.endpoints, hosts: etcdHosts } : { kind: "stacked" },
      snapshotScript: (node) => preUpgradeSnapshotScript({ node, etcd: externalEtcd ? { kind: "external" } : { kind: "stacked" } }),
      after: [nodesReady],
    },
    { parent },
  );

  const nodeList = pulumi.all([
    ...cpHosts.map((h) => h.privateIp.apply((ip) => ({ name: h.name, role: "control-plane", privateIp: ip }))),
    ...workerHosts.map((h) => h.privateIp.apply((ip) => ({ name: h.name, role: "worker", privateIp: ip }))),
    ...etcdHosts.map((h) => h.privateIp.apply((ip) => ({ name: h.name, role: "etcd", privateIp: ip }))),
  ]);
  return { kubeconfig: controlPlane.kubeconfig, apiEndpoint: api.endpoint, bastionAddress: bastionIp.publicIp, nodes: nodeList };
}
