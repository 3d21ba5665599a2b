import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { membershipStep, NodeHost, nodeStep } from "../infra/steps";
import { EtcdHealthTarget } from "./scripts/common";
import { drainNodeScript } from "./scripts/drain";
import { preflightChecksScript } from "./scripts/preflight";
import { uncordonNodeScript } from "./scripts/uncordon";
import { upgradeControlPlaneScript } from "./scripts/upgradeControlPlane";
import { upgradeKubeadmScript } from "./scripts/upgradeKubeadm";
import { upgradeKubeletScript } from "./scripts/upgradeKubelet";
import { upgradeWorkerScript } from "./scripts/upgradeWorker";
import { planUpgrade, UpgradeStep } from "./upgradePlan";
import { retireWorkerScript } from "./scripts/retireNode";

/** Where etcd runs: on the control planes, or on its own members (client URLs; snapshotted on hosts[0]). */
export type UpgradeEtcd = { kind: "stacked" } | { kind: "external"; endpoints: pulumi.Input<string[]>; hosts: NodeHost[] };

export interface RollingUpgradeArgs {
  /** Control planes in order: controlPlanes[0] runs `kubeadm upgrade apply`, the pre-flight checks and the workers' drains. */
  controlPlanes: NodeHost[];
  /** Workers in order; drained and upgraded in batches of maxUnavailable. */
  workers: NodeHost[];
  /** The target release (x.y.z). It is in every step's script, so a bump updates every step in place. */
  kubernetesVersion: string;
  /** Workers drained at once (config workers.maxUnavailable; default 1). */
  maxUnavailable: number;
  /** host:port of the API load balancer: the pre-flight asks /readyz through it. */
  apiEndpoint: pulumi.Input<string>;
  etcd: UpgradeEtcd;
  /**
   * The script of the pre-upgrade etcd snapshot on a member (cp-0, or etcd-0 with external etcd). Its step is
   * labelled with the target version, so it runs again on every bump.
   */
  snapshotScript: (node: string) => pulumi.Input<string>;
  /** What the first step waits for: the end of bootstrap (every node Ready). */
  after: pulumi.Input<pulumi.Resource>[];
  /** Each worker's join step by node name: its drain step (which retires it on removal) depends on it directly. */
  joined?: Map<string, pulumi.Resource>;
  /** config packages.repository: the base every package step installs from (default pkgs.k8s.io). */
  packageRepository?: string;
  /** The release kubeadm init/join built a control plane at (its bootstrap record): see upgradeControlPlaneScript. */
  builtAt: (node: string) => pulumi.Input<string>;
}

/**
 * The rolling upgrade as chained commands, one per planned step (planUpgrade). Every step is present from the
 * cluster's creation — where each finds the target already in place and does nothing — and the version bump changes
 * every step's script: Pulumi then updates them in place, in dependency order, and a failed step stops its chain.
 * No `triggers`: they would replace the steps, and a replacement could run delete scripts.
 */
export class RollingUpgrade extends pulumi.ComponentResource {
  /** Every step by id (`cp-0-drain`), in plan order. */
  readonly steps: Map<string, command.remote.Command>;
  /** The steps nothing else in the upgrade waits for: the end of the upgrade. */
  readonly last: command.remote.Command[];

  constructor(name: string, args: RollingUpgradeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:lifecycle:RollingUpgrade", name, {}, opts);
    const out = createRollingUpgrade(name, args, this);
    this.steps = out.steps;
    this.last = out.last;
    this.registerOutputs({});
  }
}

/** The line that labels a supplied script with the target version (after its shebang). */
export function labelWithTarget(script: string, kubernetesVersion: string): string {
  const label = `# kubeadm-ha: before the rolling upgrade to v${kubernetesVersion}`;
  const newline = script.indexOf("\n");
  if (script.startsWith("#!") && newline >= 0) return `${script.slice(0, newline + 1)}${label}\n${script.slice(newline + 1)}`;
  return `${label}\n${script}`;
}

export function createRollingUpgrade(name: string, args: RollingUpgradeArgs, parent: pulumi.Resource) {
  const hosts = new Map<string, NodeHost>();
  const etcdHosts = args.etcd.kind === "external" ? args.etcd.hosts : [];
  for (const host of [...args.controlPlanes, ...args.workers, ...etcdHosts]) {
    if (hosts.has(host.name)) throw new Error(`${name}: node ${host.name} is listed twice`);
    hosts.set(host.name, host);
  }
  if (args.etcd.kind === "external" && etcdHosts.length === 0) throw new Error(`${name}: external etcd needs at least one host to snapshot on`);
  const controlPlanes = args.controlPlanes.map((h) => h.name);
  const workers = args.workers.map((h) => h.name);
  const plan = planUpgrade({
    controlPlanes,
    workers,
    maxUnavailable: args.maxUnavailable,
    snapshotOn: etcdHosts.length > 0 ? etcdHosts[0].name : controlPlanes[0],
  });
  const version = args.kubernetesVersion;
  const repo = args.packageRepository;
  // The etcd members as the health checks name them: external members' URLs resolve once their addresses do.
  const etcd = args.etcd;
  const etcdTarget: pulumi.Output<EtcdHealthTarget> =
    etcd.kind === "stacked"
      ? pulumi.output({ kind: "stacked" as const, members: controlPlanes })
      : pulumi.output(etcd.endpoints).apply((endpoints): EtcdHealthTarget => ({ kind: "external", endpoints }));

  const scriptFor = (step: UpgradeStep): pulumi.Input<string> => {
    const action = step.action;
    switch (action.kind) {
      case "preflight":
        return pulumi.all([args.apiEndpoint, etcdTarget]).apply(([apiEndpoint, target]) =>
          preflightChecksScript({
            node: step.runsOn,
            kubernetesVersion: version,
            nodes: [...controlPlanes, ...workers],
            controlPlanes,
            apiEndpoint,
            etcd: target.kind === "stacked" ? { kind: "stacked" } : { kind: "external", endpoints: target.endpoints },
            packageRepository: repo,
          }),
        );
      case "snapshot":
        return pulumi.output(args.snapshotScript(step.runsOn)).apply((script) => labelWithTarget(script, version));
      case "upgrade-kubeadm":
        return action.etcdHealthFirst
          ? etcdTarget.apply((target) => upgradeKubeadmScript({ node: step.node, kubernetesVersion: version, etcdHealthFirst: target, packageRepository: repo }))
          : upgradeKubeadmScript({ node: step.node, kubernetesVersion: version, packageRepository: repo });
      case "drain":
        return drainNodeScript({ runsOn: step.runsOn, node: step.node, role: action.role, kubernetesVersion: version });
      case "upgrade-control-plane":
        return pulumi.output(args.builtAt(step.node)).apply((builtAt) => upgradeControlPlaneScript({ node: step.node, kubernetesVersion: version, mode: action.mode, builtAt }));
      case "upgrade-kubelet":
        return upgradeKubeletScript({ node: step.node, kubernetesVersion: version, packageRepository: repo });
      case "uncordon":
        return uncordonNodeScript({ runsOn: step.runsOn, node: step.node, role: action.role, kubernetesVersion: version });
      case "upgrade-worker":
        return upgradeWorkerScript({ node: step.node, kubernetesVersion: version, packageRepository: repo });
      default: {
        const never: never = action;
        throw new Error(`${name}: unknown upgrade action ${JSON.stringify(never)}`);
      }
    }
  };

  const steps = new Map<string, command.remote.Command>();
  const workersByName = new Map(args.workers.map((w) => [w.name, w]));
  for (const step of plan) {
    const host = hosts.get(step.runsOn);
    if (!host) throw new Error(`${name}: step ${step.id} runs on ${step.runsOn}, which is not a known host`);
    const dependsOn: pulumi.Input<pulumi.Resource>[] = step.after.length === 0 ? [...args.after] : step.after.map((id) => steps.get(id)!);
    const workerDrain = step.action.kind === "drain" && step.action.role === "worker";
    // A worker's drain step also retires the worker when it leaves the cluster (a lower workers.count): its delete
    // drains the node and deletes its Node object. It depends directly on the worker's join (so on its machine), so
    // Pulumi runs that delete before the machine is deleted.
    const joined = workerDrain ? args.joined?.get(step.node) : undefined;
    // ...and when the worker's machine is replaced, the retire runs first (membershipStep).
    const member = workerDrain ? membershipStep(workersByName.get(step.node)!) : {};
    steps.set(
      step.id,
      nodeStep(
        step.id,
        {
          host,
          script: scriptFor(step),
          logging: "stdoutAndStderr",
          ...(workerDrain ? { deleteScript: retireWorkerScript({ node: step.node, runsOn: step.runsOn }), triggers: member.triggers } : {}),
        },
        { parent, dependsOn: joined ? [...dependsOn, joined] : dependsOn, deleteBeforeReplace: member.deleteBeforeReplace },
      ),
    );
  }
  const waitedFor = new Set(plan.flatMap((s) => s.after));
  const last = plan.filter((s) => !waitedFor.has(s.id)).map((s) => steps.get(s.id)!);
  return { plan, steps, last };
}
