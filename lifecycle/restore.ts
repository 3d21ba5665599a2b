import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { NodeHost, nodeStep } from "../infra/steps";
import { BackupTopology, memberAccess } from "./backups";
import { EtcdMemberAddress } from "./scripts/etcdCommon";
import { restoreApiserverPhaseScript, restoreEtcdPhaseScript, restorePhases } from "./scripts/restoreSnapshot";

export interface EtcdRestoreArgs {
  /** This cluster (`<project>-<stack>`): the fetch phase refuses a snapshot whose sidecar names another. */
  cluster: string;
  /** restore.snapshot: s3://bucket/key or an absolute path on every member. */
  snapshot: string;
  /** restore.requestId: a new value runs the whole restore once. */
  requestId: string;
  topology: BackupTopology;
  etcdVersion: string;
  /** The etcd members (the control planes when stacked). */
  members: NodeHost[];
  controlPlanes: NodeHost[];
  /** host:port of the API endpoint: the restore ends when /readyz answers through it. */
  apiEndpoint: pulumi.Input<string>;
  /** What the restore waits for (the end of bootstrap and of any upgrade in the same run). */
  after: pulumi.Input<pulumi.Resource>[];
}

/**
 * A declared restore, in the order the plan gives (restorePhases): verify the snapshot everywhere, stop every
 * apiserver, stop every etcd member, restore the same snapshot on every member into a new data dir, point etcd at
 * it, start the members, wait until all are healthy with exactly the expected members, start the apiservers.
 * Invariant: a phase runs on all of its nodes, and every one of them finishes, before the next phase starts; so
 * every apiserver is down before any etcd member stops, and nothing is touched until every member has verified the
 * snapshot. The request id is in every script: a new id runs the chain once; the same id changes nothing.
 */
export class EtcdRestore extends pulumi.ComponentResource {
  readonly phases: command.remote.Command[][];

  constructor(name: string, args: EtcdRestoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:backup:EtcdRestore", name, {}, opts);
    this.phases = createEtcdRestore(args, this);
    this.registerOutputs({});
  }
}

export function createEtcdRestore(args: EtcdRestoreArgs, parent: pulumi.Resource): command.remote.Command[][] {
  const members: pulumi.Output<EtcdMemberAddress[]> = pulumi.all(args.members.map((m) => m.privateIp)).apply((ips) =>
    args.members.map((m, i) => ({ name: m.name, peerUrl: `https://${ips[i]}:2380`, clientUrl: `https://${ips[i]}:2379` })),
  );
  const phases: command.remote.Command[][] = [];
  let previous: pulumi.Input<pulumi.Resource>[] = args.after;
  for (const { phase, on } of restorePhases) {
    const hosts = on === "etcdMembers" ? args.members : args.controlPlanes;
    const steps = hosts.map((host) => {
      const script =
        phase === "stopApiserver" || phase === "startApiserver"
          ? pulumi.output(args.apiEndpoint).apply((endpoint) =>
              restoreApiserverPhaseScript(phase, { node: host.name, requestId: args.requestId, readyzUrl: `https://${endpoint}/readyz` }),
            )
          : pulumi.all([members, host.privateIp]).apply(([all, ip]) => {
              const access = memberAccess(args.topology, args.etcdVersion, ip);
              return restoreEtcdPhaseScript(phase, {
                node: host.name,
                cluster: args.cluster,
                requestId: args.requestId,
                topology: args.topology,
                snapshot: args.snapshot,
                tools: access.tools,
                tls: access.tls,
                member: host.name,
                members: all,
              });
            });
      return nodeStep(`${host.name}-restore-${kebab(phase)}`, { host, script }, { parent, dependsOn: previous });
    });
    phases.push(steps);
    previous = steps;
  }
  return phases;
}

function kebab(phase: string): string {
  return phase.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
