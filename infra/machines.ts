import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { ubuntuAmiParameter } from "./defaults";
import { userData } from "./scripts/userData";

/** What every EC2 machine of the cluster shares: the image and the SSH key pair; and the etcd members' profile. */
export interface MachineBase {
  clusterName: string;
  amiId: pulumi.Output<string>;
  /**
   * The instance profile of the etcd members only (stacked: the control planes; external: the etcd hosts): the
   * machines that take and restore snapshots. Every other machine has no instance profile at all.
   */
  etcdMemberProfileName: pulumi.Output<string>;
  keyName: pulumi.Output<string>;
  /** Secret. */
  sshPrivateKey: pulumi.Output<string>;
}

export interface MachineBaseArgs {
  clusterName: string;
  /** An operator-supplied key pair; without it an ed25519 key is generated (its private key is a secret). */
  ssh?: { publicKey: string; privateKey: pulumi.Output<string> };
}

/** The trust policy of an instance role: EC2 may assume it for the instance. */
export const ec2AssumeRolePolicy = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

/**
 * Shared machine settings, created once. Invariant: no machine holds AWS credentials it does not need. Kubernetes
 * needs no AWS API here (no cloud controller), so workers and control planes with external etcd have no instance
 * profile (the bastion has its own, infra/bastion.ts); the etcd members' role starts empty and the snapshot bucket
 * adds the one policy they need (put and get under the cluster's prefix): a snapshot holds every Secret of the cluster.
 */
export function createMachineBase(name: string, args: MachineBaseArgs, parent: pulumi.Resource): MachineBase & { role: aws.iam.Role } {
  const tags = { "kubeadm-ha/cluster": args.clusterName };
  const ami = aws.ssm.getParameterOutput({ name: ubuntuAmiParameter }, { parent });
  // Formerly "<name>-node", the one role of every machine: the alias keeps a deployed stack's role and profile.
  const role = new aws.iam.Role(
    `${name}-etcd-member`,
    { assumeRolePolicy: ec2AssumeRolePolicy, description: `kubeadm-ha ${args.clusterName} etcd members (snapshot access)`, tags },
    { parent, aliases: [{ name: `${name}-node` }] },
  );
  const profile = new aws.iam.InstanceProfile(`${name}-etcd-member`, { role: role.name, tags }, { parent, aliases: [{ name: `${name}-node` }] });
  let publicKey: pulumi.Input<string>;
  let sshPrivateKey: pulumi.Output<string>;
  if (args.ssh) {
    publicKey = args.ssh.publicKey;
    sshPrivateKey = pulumi.secret(args.ssh.privateKey);
  } else {
    const key = new tls.PrivateKey(`${name}-ssh`, { algorithm: "ED25519" }, { parent });
    publicKey = key.publicKeyOpenssh;
    sshPrivateKey = pulumi.secret(key.privateKeyOpenssh);
  }
  const keyPair = new aws.ec2.KeyPair(`${name}-ssh`, { publicKey, tags }, { parent });
  return {
    clusterName: args.clusterName,
    amiId: ami.insecureValue,
    etcdMemberProfileName: profile.name,
    keyName: keyPair.keyName,
    sshPrivateKey,
    role,
  };
}

export interface MachineArgs {
  /** Logical node name: also the hostname and the Kubernetes node name. */
  hostname: string;
  role: "control-plane" | "worker" | "etcd" | "bastion";
  instanceType: string;
  volumeGiB: number;
  subnetId: pulumi.Input<string>;
  securityGroupIds: pulumi.Input<string>[];
  /**
   * The machine may be replaced (`pulumi up --replace`): the old one is deleted first, after its membership steps
   * have retired it, so a node name never belongs to two machines. Not for cp-0 (it holds `kubeadm init`) or etcd.
   */
  replaceable?: boolean;
  /** The instance profile; absent: none, and the instance metadata service holds no AWS credentials. */
  instanceProfileName?: pulumi.Input<string>;
  /** User data instead of the nodes' (infra/scripts/userData.ts); same invariant: no secret, no version. */
  userData?: pulumi.Input<string>;
  /** A change of user data replaces the machine (default false: a node is replaced only by a removal and a join). */
  userDataReplaceOnChange?: boolean;
}

/**
 * One EC2 machine. Invariants: IMDSv2 only; encrypted gp3 root volume; user data without secrets or versions.
 * `ami` is ignored after creation: a newer Ubuntu image must not replace a running node behind the cluster's back
 * (replacing a node is a removal and a join, one node at a time).
 */
export function createMachine(base: MachineBase, args: MachineArgs, parent: pulumi.Resource): aws.ec2.Instance {
  return new aws.ec2.Instance(
    args.hostname,
    {
      ami: base.amiId,
      instanceType: args.instanceType,
      subnetId: args.subnetId,
      vpcSecurityGroupIds: args.securityGroupIds,
      ...(args.instanceProfileName !== undefined ? { iamInstanceProfile: args.instanceProfileName } : {}),
      keyName: base.keyName,
      associatePublicIpAddress: false,
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
      rootBlockDevice: { volumeType: "gp3", volumeSize: args.volumeGiB, encrypted: true, deleteOnTermination: true },
      userData: args.userData ?? userData({ hostname: args.hostname }),
      userDataReplaceOnChange: args.userDataReplaceOnChange ?? false,
      tags: { Name: `${base.clusterName}-${args.hostname}`, "kubeadm-ha/cluster": base.clusterName, "kubeadm-ha/role": args.role },
    },
    { parent, ignoreChanges: ["ami"], deleteBeforeReplace: args.replaceable ?? false },
  );
}
