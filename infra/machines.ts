import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { ubuntuAmiParameter } from "./defaults";
import { userData } from "./scripts/userData";

/** What every EC2 machine of the cluster shares: the image, the instance profile and the SSH key pair. */
export interface MachineBase {
  clusterName: string;
  amiId: pulumi.Output<string>;
  instanceProfileName: pulumi.Output<string>;
  keyName: pulumi.Output<string>;
  /** Secret. */
  sshPrivateKey: pulumi.Output<string>;
}

export interface MachineBaseArgs {
  clusterName: string;
  /** An operator-supplied key pair; without it an ed25519 key is generated (its private key is a secret). */
  ssh?: { publicKey: string; privateKey: pulumi.Output<string> };
}

/**
 * Shared machine settings, created once. The node role starts with no permissions: nodes need no AWS API to run
 * Kubernetes here (no cloud controller); features that do (snapshot upload) add their own narrow policies.
 */
export function createMachineBase(name: string, args: MachineBaseArgs, parent: pulumi.Resource): MachineBase & { role: aws.iam.Role } {
  const tags = { "kubeadm-ha/cluster": args.clusterName };
  const ami = aws.ssm.getParameterOutput({ name: ubuntuAmiParameter }, { parent });
  const role = new aws.iam.Role(
    `${name}-node`,
    {
      assumeRolePolicy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
      }),
      description: `kubeadm-ha ${args.clusterName} nodes`,
      tags,
    },
    { parent },
  );
  const profile = new aws.iam.InstanceProfile(`${name}-node`, { role: role.name, tags }, { parent });
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
    instanceProfileName: profile.name,
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
      iamInstanceProfile: base.instanceProfileName,
      keyName: base.keyName,
      associatePublicIpAddress: false,
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
      rootBlockDevice: { volumeType: "gp3", volumeSize: args.volumeGiB, encrypted: true, deleteOnTermination: true },
      userData: userData({ hostname: args.hostname }),
      userDataReplaceOnChange: false,
      tags: { Name: `${base.clusterName}-${args.hostname}`, "kubeadm-ha/cluster": base.clusterName, "kubeadm-ha/role": args.role },
    },
    { parent, ignoreChanges: ["ami"], deleteBeforeReplace: args.replaceable ?? false },
  );
}
