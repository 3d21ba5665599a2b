import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { remoteInvocation } from "./scripts/common";

/**
 * Bootstrap steps of machines that are never replaced in place (cp-0's init, external etcd members) are created with
 * the version the cluster had then; a later version bump must never re-run them (that would re-init every node at
 * once), so `create` and `stdin` are ignored after creation. Not for steps of a replaceable machine (prepare, join):
 * Pulumi fills ignored inputs of a replacement from the old resource, so theirs are pinned per machine instead
 * (bootstrapRecord.ts). Upgrades are separate, ordered steps.
 */
export const bootstrapIgnoreChanges = ["create", "stdin"];

/** How the program reaches a node over SSH: directly, or through a bastion as a jump host. */
export interface SshAccess {
  user: string;
  /** SSH port of the node; default 22. */
  port?: number;
  /** Secret. */
  privateKey: pulumi.Output<string>;
  /** The bastion's address; absent when nodes are reachable directly. */
  bastionHost?: pulumi.Input<string>;
  /** The bastion's SSH user and port; default the node's user, 22. */
  bastionUser?: string;
  bastionPort?: number;
  /**
   * The node's SSH public host key (`ssh-ed25519 AAAA…`): the connection fails unless the node proves it holds the
   * matching private key. Absent: @pulumi/command does not check the node's host key at all.
   */
  hostKey?: pulumi.Input<string | undefined>;
  /** The bastion's SSH public host key, checked on the jump the same way. */
  bastionHostKey?: pulumi.Input<string | undefined>;
}

/** A machine that node steps run on. Provider-neutral: an EC2 instance or an existing host. */
export interface NodeHost {
  /** Kubernetes node name and step prefix: cp-0, worker-3, etcd-1. */
  name: string;
  privateIp: pulumi.Output<string>;
  connection: pulumi.Output<command.types.input.remote.ConnectionArgs>;
  /** The cloud resource the steps must wait for (the instance), if any. */
  machine?: pulumi.Resource;
  /**
   * The machine's identity (the instance id) when it can be replaced (`pulumi up --replace`): the steps that make the
   * machine a member (prepare, join, and the one that retires it) carry it as a trigger, so a new machine is a
   * removal of the old member followed by a join — never two machines under one node name.
   */
  replaceableId?: pulumi.Output<string>;
}

/**
 * SSH connection values for a node. Connection attempts are retried for up to ~15 minutes (60 × 15 s) so a step
 * can wait for a booting instance; the whole connection is a secret in state. With a host key (node or bastion),
 * @pulumi/command 1.2 accepts only that key (golang.org/x/crypto's FixedHostKey, its key type the only host-key
 * algorithm offered); a mismatch fails the dial like an unreachable host, retried within the same bound.
 */
export function sshConnection(address: pulumi.Input<string>, access: SshAccess): pulumi.Output<command.types.input.remote.ConnectionArgs> {
  return pulumi.secret(
    pulumi.all([address, access.privateKey, access.bastionHost, access.hostKey, access.bastionHostKey]).apply(([host, privateKey, bastionHost, hostKey, bastionHostKey]) => ({
      host,
      port: access.port ?? 22,
      user: access.user,
      privateKey,
      ...(hostKey ? { hostKey } : {}),
      dialErrorLimit: 60,
      perDialTimeout: 15,
      ...(bastionHost
        ? {
            proxy: {
              host: bastionHost,
              port: access.bastionPort ?? 22,
              user: access.bastionUser ?? access.user,
              privateKey,
              ...(bastionHostKey ? { hostKey: bastionHostKey } : {}),
              dialErrorLimit: 60,
              perDialTimeout: 15,
            },
          }
        : {}),
    })),
  );
}

export interface NodeStepArgs {
  host: NodeHost;
  /** The step script from a pure builder (runs as root). */
  script: pulumi.Input<string>;
  /** Secret input for the script (a kubeadm config with a token); never in argv. */
  stdin?: pulumi.Input<string>;
  /** A script to run instead of `script` when the step is updated in place; default: `script` runs again. */
  updateScript?: pulumi.Input<string>;
  /** A script to run when the step is deleted (sees the last run's stdout). */
  deleteScript?: pulumi.Input<string>;
  /** What of the script's streams reaches `pulumi up` output; default both. */
  logging?: "stdout" | "stderr" | "stdoutAndStderr" | "none";
  /** Values whose change replaces the step (its delete runs first: see {@link membershipStepOptions}). */
  triggers?: pulumi.Input<unknown>[];
}

/**
 * Membership steps of a replaceable machine (prepare, join, retire): replaced with the machine, the old step's delete
 * running before the new one is created. Invariant: the old member leaves (drain, Node deleted, etcd member removed)
 * before its successor joins under the same name.
 */
export function membershipStep(host: NodeHost): { triggers?: pulumi.Input<unknown>[]; deleteBeforeReplace?: boolean } {
  return host.replaceableId ? { triggers: [host.replaceableId], deleteBeforeReplace: true } : {};
}

function wrapScript(script: pulumi.Input<string>): pulumi.Input<string> {
  return typeof script === "string" ? remoteInvocation(script) : pulumi.output(script).apply(remoteInvocation);
}

/** One named lifecycle step on one node. */
export function nodeStep(name: string, args: NodeStepArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
  return new command.remote.Command(
    name,
    {
      connection: args.host.connection,
      // Plain scripts stay plain: an Output per step is measurable cost at hundreds of nodes.
      create: wrapScript(args.script),
      ...(args.updateScript !== undefined ? { update: wrapScript(args.updateScript) } : {}),
      ...(args.deleteScript !== undefined ? { delete: wrapScript(args.deleteScript) } : {}),
      ...(args.stdin !== undefined ? { stdin: pulumi.secret(args.stdin) } : {}),
      logging: args.logging ?? "stdoutAndStderr",
      ...(args.triggers !== undefined ? { triggers: args.triggers } : {}),
    },
    opts,
  );
}
