// The AWS bastion: the one machine with a public address, the jump host of every node step. Its SSH host key is the
// program's own (generated here, a secret in state) and every connection pins it, so a machine in the middle between
// `pulumi up` and the bastion cannot pose as it. The private half reaches the bastion through an SSM SecureString
// parameter that only the bastion's role may read, fetched at boot before sshd starts (bastionHostKey.py) — never
// through user data, which is plain text in state and readable on the instance.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { MachineBase, createMachine, ec2AssumeRolePolicy } from "./machines";
import { baseCloudConfig } from "./scripts/userData";

/** The installer bootcmd runs (python3, standard library only); kept as a real file so tests run it as it is. */
export const hostKeyInstaller = readFileSync(join(__dirname, "bastionHostKey.py"), "utf8");

/** Where the bastion's private host key lives: one SecureString parameter per cluster. */
export function bastionHostKeyParameterName(clusterName: string): string {
  return `/kubeadm-ha/${clusterName}/bastion/ssh-host-ed25519-key`;
}

/**
 * cloud-init user data of the bastion. Pure. bootcmd runs in cloud-init's network stage, before its ssh module and
 * before sshd: it installs the pinned host key from `parameter` (`name:version`, so a new key is a new bastion), and
 * cloud-init neither deletes it nor generates other host keys. Invariant: no secret and no version in it.
 * `cloud-init schema` (22.4) accepts it (test/bastionHostKey.test.ts).
 */
export function bastionUserData(args: { hostname: string; parameter: string }): string {
  if (!/^\/[A-Za-z0-9_.\-/]+(:\d+)?$/.test(args.parameter)) throw new Error(`bastionUserData: not an SSM parameter name: ${JSON.stringify(args.parameter)}`);
  const cloudConfig = {
    ...baseCloudConfig(args.hostname),
    // Keep the installed key; generate an ed25519 key only if the install failed (the pin then refuses it, and an
    // operator can still log in to see why), and no other types.
    ssh_deletekeys: false,
    ssh_genkeytypes: ["ed25519"],
    bootcmd: [["python3", "-c", hostKeyInstaller, "--parameter", args.parameter]],
  };
  return `#cloud-config\n${stringify(cloudConfig, { lineWidth: 0 })}`;
}

/** The IAM policy of the bastion's role: read its own host key parameter, nothing else. */
export function bastionPolicy(parameterArn: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: "ssm:GetParameter", Resource: parameterArn }],
  });
}

export interface BastionArgs {
  clusterName: string;
  base: MachineBase;
  subnetId: pulumi.Input<string>;
  securityGroupId: pulumi.Input<string>;
}

export interface Bastion {
  instance: aws.ec2.Instance;
  /** The Elastic IP every node step jumps through. */
  publicIp: pulumi.Output<string>;
  /** The bastion's public host key (`ssh-ed25519 AAAA…`): what every connection's proxy pins. */
  hostKey: pulumi.Output<string>;
}

/**
 * The bastion: a t3.micro in the first public subnet with an Elastic IP, its own role (read its host key) and the
 * program's host key. A new host key (`pulumi up --replace` of `bastion-host-key`) replaces the bastion with it.
 */
export function createBastion(args: BastionArgs, parent: pulumi.Resource): Bastion {
  const tags = { "kubeadm-ha/cluster": args.clusterName };
  const key = new tls.PrivateKey("bastion-host-key", { algorithm: "ED25519" }, { parent, additionalSecretOutputs: ["privateKeyOpenssh", "privateKeyPem"] });
  const parameter = new aws.ssm.Parameter(
    "bastion-host-key",
    {
      name: bastionHostKeyParameterName(args.clusterName),
      type: "SecureString",
      value: pulumi.secret(key.privateKeyOpenssh),
      description: `kubeadm-ha ${args.clusterName}: the bastion's SSH host key (read at boot by the bastion only)`,
      tags,
    },
    { parent },
  );
  const role = new aws.iam.Role("bastion", { assumeRolePolicy: ec2AssumeRolePolicy, description: `kubeadm-ha ${args.clusterName} bastion (reads its host key)`, tags }, { parent });
  const policy = new aws.iam.Policy("bastion-host-key-read", { description: `kubeadm-ha ${args.clusterName}: the bastion reads its SSH host key`, policy: parameter.arn.apply(bastionPolicy), tags }, { parent });
  new aws.iam.RolePolicyAttachment("bastion-host-key-read", { role: role.name, policyArn: policy.arn }, { parent });
  const profile = new aws.iam.InstanceProfile("bastion", { role: role.name, tags }, { parent });
  // `name:version`: the bastion installs exactly the key the connections pin (offline engines answer no version).
  const versioned = pulumi.all([parameter.name, parameter.version]).apply(([name, version]) => (version ? `${name}:${version}` : name ?? bastionHostKeyParameterName(args.clusterName)));
  const instance = createMachine(
    args.base,
    {
      hostname: "bastion",
      role: "bastion",
      instanceType: "t3.micro",
      volumeGiB: 8,
      subnetId: args.subnetId,
      securityGroupIds: [args.securityGroupId],
      instanceProfileName: profile.name,
      userData: versioned.apply((p) => bastionUserData({ hostname: "bastion", parameter: p })),
      userDataReplaceOnChange: true,
    },
    parent,
  );
  const eip = new aws.ec2.Eip("bastion", { domain: "vpc", instance: instance.id, tags: { Name: `${args.clusterName}-bastion` } }, { parent });
  return { instance, publicIp: eip.publicIp, hostKey: key.publicKeyOpenssh.apply((k) => k.trim().split(/\s+/).slice(0, 2).join(" ")) };
}
