import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { SnapshotsConfig } from "../infra/config";
import { etcdPaths } from "../infra/scripts/etcdMember";
import { NodeHost, nodeStep } from "../infra/steps";
import { EtcdClientTls, etcdLifecycleDefaults, EtcdTools, etcdToolPaths } from "./scripts/etcdCommon";
import { saveSnapshotScript, snapshotToolsInstallScript } from "./scripts/saveSnapshot";
import { snapshotScheduleScript } from "./scripts/snapshotSchedule";

export type BackupTopology = "stacked" | "external";

/** How a member's snapshot steps reach its own etcd: the local endpoint, the tools and a client certificate. */
export function memberAccess(topology: BackupTopology, etcdVersion: string, privateIp?: string): { endpoint: string; tools: EtcdTools; tls: EtcdClientTls } {
  switch (topology) {
    case "stacked":
      return {
        endpoint: "https://127.0.0.1:2379",
        tools: etcdToolPaths(etcdVersion),
        tls: { cacert: "/etc/kubernetes/pki/etcd/ca.crt", cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt", key: "/etc/kubernetes/pki/etcd/healthcheck-client.key" },
      };
    case "external":
      // The member's server certificate also carries client auth (infra/etcdPki.ts).
      return {
        endpoint: `https://${privateIp ?? "127.0.0.1"}:2379`,
        tools: etcdToolPaths(etcdVersion),
        tls: { cacert: etcdPaths.caCert, cert: etcdPaths.serverCert, key: etcdPaths.serverKey },
      };
    default: {
      const never: never = topology;
      throw new Error(`unknown topology ${never}`);
    }
  }
}

export interface EtcdBackupsArgs {
  /** The cluster (`<project>-<stack>`), recorded in every snapshot's sidecar. */
  cluster: string;
  /** The etcd members: the control planes (stacked) or the etcd hosts (external). members[0] takes on-demand snapshots. */
  members: NodeHost[];
  /** Plain addresses are known only for static hosts; on AWS the external endpoint comes from the member's IP. */
  topology: BackupTopology;
  /** The version of etcdctl/etcdutl on the members (stacked: installed here; external: the members' own). */
  etcdVersion: string;
  snapshots: SnapshotsConfig;
  /** s3://bucket/prefix, when snapshots are uploaded. */
  s3Uri?: pulumi.Input<string>;
  /** What the steps wait for: the members' etcd running (end of bootstrap, or the external members installed). */
  after: pulumi.Input<pulumi.Resource>[];
}

/**
 * etcd snapshots: tools on every member, a leader-only systemd timer on every member, and an on-demand snapshot per
 * new `snapshots.requestId`. The pre-upgrade snapshot is the rolling upgrade's step; its script comes from here.
 */
export class EtcdBackups extends pulumi.ComponentResource {
  /**
   * What a snapshot or restore step must wait for: on every member, its tools (etcdctl/etcdutl) and its schedule step,
   * which also installs the AWS CLI the uploads and an S3 restore call. Invariant: a step waits for every tool it runs.
   */
  readonly ready: command.remote.Command[];

  constructor(name: string, private readonly args: EtcdBackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:backup:EtcdBackups", name, {}, opts);
    this.ready = createEtcdBackups(args, this);
    this.registerOutputs({});
  }

  /** The pre-upgrade snapshot on a member (its file name carries the target version). */
  preUpgradeScript(node: string, kubernetesVersion: string): pulumi.Output<string> {
    return snapshotScriptOn(this.args, node, `pre-upgrade-v${kubernetesVersion}`);
  }
}

function saveScript(args: Pick<EtcdBackupsArgs, "cluster" | "topology" | "etcdVersion" | "snapshots">, node: string, reason: string, s3Uri?: string, privateIp?: string): string {
  const access = memberAccess(args.topology, args.etcdVersion, privateIp);
  return saveSnapshotScript({
    node,
    cluster: args.cluster,
    endpoint: access.endpoint,
    ...access.tools,
    ...access.tls,
    snapshotDir: etcdLifecycleDefaults.snapshotDir,
    keep: args.snapshots.keep,
    reason,
    ...(s3Uri ? { upload: { s3Uri } } : {}),
  });
}

function uploadUri(args: EtcdBackupsArgs): pulumi.Output<string | undefined> {
  return args.snapshots.upload && args.s3Uri !== undefined ? pulumi.output(args.s3Uri) : pulumi.output(undefined as string | undefined);
}

/** The save-and-verify script for a member, with the upload target when snapshots are uploaded. */
function snapshotScriptOn(args: EtcdBackupsArgs, node: string, reason: string): pulumi.Output<string> {
  const host = args.members.find((m) => m.name === node);
  if (!host) throw new Error(`${node} is not an etcd member`);
  return pulumi.all([uploadUri(args), host.privateIp]).apply(([s3Uri, ip]) => saveScript(args, node, reason, s3Uri, ip));
}

export function createEtcdBackups(args: EtcdBackupsArgs, parent: pulumi.Resource): command.remote.Command[] {
  const s3 = uploadUri(args);
  const readyByMember = args.members.map((host) => {
    const tools =
      args.topology === "stacked"
        ? [nodeStep(`${host.name}-etcd-snapshot-tools`, { host, script: snapshotToolsInstallScript({ node: host.name, etcdVersion: args.etcdVersion }) }, { parent, dependsOn: args.after })]
        : [];
    const scheduled = nodeStep(
      `${host.name}-snapshot-schedule`,
      {
        host,
        script: pulumi.all([s3, host.privateIp]).apply(([s3Uri, ip]) => {
          const access = memberAccess(args.topology, args.etcdVersion, ip);
          return snapshotScheduleScript({
            node: host.name,
            schedule: args.snapshots.schedule,
            saveScript: saveScript(args, host.name, "scheduled", s3Uri, ip),
            ...access,
            installAwsCli: s3Uri !== undefined,
          });
        }),
      },
      { parent, dependsOn: [...tools, ...(tools.length === 0 ? args.after : [])] },
    );
    return [...tools, scheduled];
  });
  if (args.snapshots.requestId !== undefined) {
    const first = args.members[0];
    nodeStep(
      `${first.name}-snapshot-request`,
      { host: first, script: snapshotScriptOn(args, first.name, `request-${args.snapshots.requestId}`) },
      { parent, dependsOn: readyByMember[0] },
    );
  }
  return readyByMember.flat();
}
