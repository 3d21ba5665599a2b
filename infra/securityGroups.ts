import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { CniName, EtcdTopology } from "./config";
import { apiserverPort } from "./defaults";

/** The security groups of a cluster, one per role. */
export type GroupName = "bastion" | "apiLoadBalancer" | "controlPlane" | "worker" | "etcd";

export type RuleSource = { cidr: string } | { group: GroupName } | { vpc: true };

export interface IngressRule {
  /** Stable, unique, readable: becomes part of the resource name. */
  name: string;
  group: GroupName;
  protocol: "tcp" | "udp";
  fromPort: number;
  toPort: number;
  source: RuleSource;
  description: string;
}

export interface RuleInputs {
  sshAllowedCidrs: string[];
  apiAllowedCidrs: string[];
  cni: CniName;
  etcdTopology: EtcdTopology;
}

/** Node-to-node overlay and health ports of each CNI. */
export function cniPorts(cni: CniName): { protocol: "tcp" | "udp"; port: number; what: string }[] {
  switch (cni) {
    case "cilium":
      return [
        { protocol: "udp", port: 8472, what: "Cilium VXLAN" },
        { protocol: "tcp", port: 4240, what: "Cilium health" },
      ];
    case "calico":
      return [
        { protocol: "udp", port: 4789, what: "Calico VXLAN" },
        { protocol: "tcp", port: 5473, what: "Calico Typha" },
      ];
    case "flannel":
      // The chart's default backend (vxlan) on Linux's VXLAN port; flannel has no health port between nodes.
      return [{ protocol: "udp", port: 8472, what: "flannel VXLAN" }];
    default: {
      const never: never = cni;
      throw new Error(`unknown CNI ${never}`);
    }
  }
}

/**
 * Least-privilege ingress, as data. Invariants: etcd ports (2379-2380) open only between etcd members (the control
 * planes when stacked) and from control planes to external etcd; kubelets (10250) only from the nodes (never a CIDR, the load balancer or the bastion); SSH to
 * nodes only from the bastion, and to the bastion only from the operator's ranges; the API from the LB, the nodes,
 * and the LB from the allowed ranges and the cluster.
 */
export function ingressRules(inputs: RuleInputs): IngressRule[] {
  const rules: IngressRule[] = [];
  const add = (r: Omit<IngressRule, "name"> & { name?: string }) => {
    const sourceName = "cidr" in r.source ? r.source.cidr.replace(/[./]/g, "-") : "group" in r.source ? r.source.group : "vpc";
    rules.push({ ...r, name: r.name ?? `${r.group}-${r.protocol}-${r.fromPort}-from-${sourceName}` });
  };
  inputs.sshAllowedCidrs.forEach((cidr) => add({ group: "bastion", protocol: "tcp", fromPort: 22, toPort: 22, source: { cidr }, description: "SSH to the bastion from the operator" }));
  inputs.apiAllowedCidrs.forEach((cidr) => add({ group: "apiLoadBalancer", protocol: "tcp", fromPort: apiserverPort, toPort: apiserverPort, source: { cidr }, description: "Kubernetes API from allowed ranges" }));
  const nodes: GroupName[] = ["controlPlane", "worker"];
  for (const from of nodes) {
    add({ group: "apiLoadBalancer", protocol: "tcp", fromPort: apiserverPort, toPort: apiserverPort, source: { group: from }, description: `Kubernetes API from ${from} nodes` });
  }
  add({ group: "controlPlane", protocol: "tcp", fromPort: apiserverPort, toPort: apiserverPort, source: { group: "apiLoadBalancer" }, description: "apiserver from the API load balancer (traffic and health checks)" });
  for (const from of nodes) {
    add({ group: "controlPlane", protocol: "tcp", fromPort: apiserverPort, toPort: apiserverPort, source: { group: from }, description: `apiserver from ${from} nodes (the kubernetes Service endpoints)` });
  }
  if (inputs.etcdTopology === "stacked") {
    add({ group: "controlPlane", protocol: "tcp", fromPort: 2379, toPort: 2380, source: { group: "controlPlane" }, description: "etcd client and peer between control planes" });
  } else {
    add({ group: "etcd", protocol: "tcp", fromPort: 2379, toPort: 2379, source: { group: "controlPlane" }, description: "etcd client from control planes" });
    add({ group: "etcd", protocol: "tcp", fromPort: 2379, toPort: 2379, source: { group: "etcd" }, description: "etcd client between etcd hosts (health checks, snapshots)" });
    add({ group: "etcd", protocol: "tcp", fromPort: 2380, toPort: 2380, source: { group: "etcd" }, description: "etcd peer between etcd hosts" });
    add({ group: "etcd", protocol: "tcp", fromPort: 22, toPort: 22, source: { group: "bastion" }, description: "SSH from the bastion" });
  }
  for (const group of nodes) {
    // The apiserver (logs, exec, port-forward) and metrics-server, which scrapes every kubelet from the node it runs
    // on, a worker as a rule (its traffic to a node address leaves with the node's own address).
    for (const from of nodes) {
      add({ group, protocol: "tcp", fromPort: 10250, toPort: 10250, source: { group: from }, description: `kubelet API from ${from} nodes (apiserver, metrics-server)` });
    }
    add({ group, protocol: "tcp", fromPort: 22, toPort: 22, source: { group: "bastion" }, description: "SSH from the bastion" });
    add({ group, protocol: "tcp", fromPort: 30000, toPort: 32767, source: { vpc: true }, description: "NodePort services from inside the VPC" });
    for (const from of nodes) {
      for (const p of cniPorts(inputs.cni)) {
        add({ group, protocol: p.protocol, fromPort: p.port, toPort: p.port, source: { group: from }, description: `${p.what} from ${from} nodes` });
      }
    }
  }
  return rules;
}

export interface SecurityGroupsArgs extends RuleInputs {
  clusterName: string;
  vpcId: pulumi.Input<string>;
  vpcCidr: pulumi.Input<string>;
}

/** The cluster's security groups and every ingress rule as its own resource (groups reference each other). */
export class SecurityGroups extends pulumi.ComponentResource {
  readonly ids: Record<GroupName, pulumi.Output<string>>;

  constructor(name: string, args: SecurityGroupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:network:SecurityGroups", name, {}, opts);
    this.ids = createSecurityGroups(name, args, this);
    this.registerOutputs({ ids: this.ids });
  }
}

export function createSecurityGroups(name: string, args: SecurityGroupsArgs, parent: pulumi.Resource): Record<GroupName, pulumi.Output<string>> {
  const groupNames: GroupName[] = ["bastion", "apiLoadBalancer", "controlPlane", "worker", ...(args.etcdTopology === "external" ? (["etcd"] as const) : [])];
  const ids = {} as Record<GroupName, pulumi.Output<string>>;
  for (const g of groupNames) {
    const sg = new aws.ec2.SecurityGroup(
      `${name}-${g}`,
      { vpcId: args.vpcId, description: `kubeadm-ha ${args.clusterName} ${g}`, tags: { Name: `${args.clusterName}-${g}`, "kubeadm-ha/cluster": args.clusterName } },
      { parent },
    );
    ids[g] = sg.id;
  }
  for (const rule of ingressRules(args)) {
    const source = rule.source;
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-${rule.name}`,
      {
        securityGroupId: ids[rule.group],
        ipProtocol: rule.protocol,
        fromPort: rule.fromPort,
        toPort: rule.toPort,
        description: rule.description,
        ...("cidr" in source ? { cidrIpv4: source.cidr } : "group" in source ? { referencedSecurityGroupId: ids[source.group] } : { cidrIpv4: args.vpcCidr }),
      },
      { parent },
    );
  }
  for (const g of groupNames) {
    // The API load balancer only forwards to the apiservers; nodes need the internet (packages, images) via NAT.
    new aws.vpc.SecurityGroupEgressRule(
      `${name}-${g}-egress`,
      g === "apiLoadBalancer"
        ? { securityGroupId: ids[g], ipProtocol: "tcp", fromPort: apiserverPort, toPort: apiserverPort, referencedSecurityGroupId: ids.controlPlane, description: "to the apiservers" }
        : { securityGroupId: ids[g], ipProtocol: "-1", cidrIpv4: "0.0.0.0/0", description: "all outbound" },
      { parent },
    );
  }
  return ids;
}
