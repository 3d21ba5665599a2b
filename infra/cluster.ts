import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { EtcdBackups } from "../lifecycle/backups";
import { CertificateRenewal, certificateRenewalRound, CertificatesOutput } from "../lifecycle/certificates";
import { certificateDefaults } from "../lifecycle/defaults";
import { EtcdRestore } from "../lifecycle/restore";
import { Maintenance } from "../lifecycle/maintenance";
import { RollingUpgrade } from "../lifecycle/upgrade";
import { createAwsInfrastructure } from "./awsInfrastructure";
import { ClusterInfrastructure } from "./infrastructure";
import { defaults } from "./defaults";
import { SnapshotBucket } from "./snapshotBucket";
import { createStaticInfrastructure } from "./staticInfrastructure";
import { Addons } from "./addons";
import { Cni } from "./cni";
import { ClusterConfig } from "./config";
import { BootstrapRecord, bootstrapFor, joiningVersion, NodeBootstrap, runStartedAt } from "./bootstrapRecord";
import { restoreFinished, type DeployedState } from "./deployedState";
import { machineIdentity, recordedBootstrap } from "./nodeBootstrap";
import { ControlPlane, ControlPlaneJoins, JoinCredentials } from "./controlPlane";
import { createEtcdPki } from "./etcdPki";
import { ExternalEtcd } from "./externalEtcd";
import { nodeNames } from "./nodeNames";
import { ClusterShape, EtcdEndpoints } from "./scripts/kubeadmConfig";
import { waitForNodesScript } from "./scripts/waitForNodes";
import { NodeHost, nodeStep } from "./steps";
import { WorkerPool } from "./workerPool";

export interface ClusterInputs {
  clusterName: string;
  config: ClusterConfig;
  /** Secret; present when the operator supplies ssh.publicKey. */
  sshPrivateKey?: pulumi.Output<string>;
  /** What the deployed stack reports about itself (its previous outputs); empty for a new stack. */
  deployed?: DeployedState;
  /** The `addons` config key is a Pulumi secret (its chart values stay secret). */
  addonsSecret?: boolean;
}


export interface ClusterOutputs {
  kubeconfig: pulumi.Output<string>;
  apiEndpoint: pulumi.Output<string>;
  /** Absent when nodes are reached directly. */
  bastionAddress?: pulumi.Output<string>;
  nodes: pulumi.Output<{ name: string; role: string; privateIp: string }[]>;
  /** Certificate expiries and the renewal round (see lifecycle/certificates.ts). */
  certificates: pulumi.Output<CertificatesOutput>;
  /** Each Kubernetes node's bootstrap, recorded once its join (cp-0: init) has finished (see bootstrapRecord.ts). */
  bootstrap: pulumi.Output<BootstrapRecord>;
  /** Restore request ids that finished: the deployed ones, plus this run's once its last phase is done. */
  finishedRestores: pulumi.Output<string[]>;
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

/** The machines from the configured provider. */
function createInfrastructure(inputs: ClusterInputs, parent?: pulumi.Resource): ClusterInfrastructure {
  const { config } = inputs;
  const hosts = config.hosts;
  switch (hosts.provider) {
    case "aws":
      return createAwsInfrastructure(inputs, parent);
    case "static":
      if (!inputs.sshPrivateKey || !config.apiEndpoint) throw new Error("static hosts need sshPrivateKey and apiEndpoint (validation ensures both)");
      return createStaticInfrastructure({ config: { ...config, hosts, apiEndpoint: config.apiEndpoint }, sshPrivateKey: inputs.sshPrivateKey }, parent);
    default: {
      const never: never = hosts;
      throw new Error(`unknown hosts provider ${JSON.stringify(never)}`);
    }
  }
}

/**
 * The whole cluster: the machines from their provider, then the same Kubernetes lifecycle for all of them —
 * external etcd, the first control plane, the CNI, joins, readiness, and the rolling upgrade.
 */
export function createCluster(inputs: ClusterInputs, parent?: pulumi.Resource): ClusterOutputs {
  const { config, clusterName } = inputs;
  const names = nodeNames(config);
  const infra = createInfrastructure(inputs, parent);
  const cpHosts = infra.controlPlanes;
  const workerHosts = infra.workers;
  const etcdHosts = infra.etcd;
  const secretsParent = new pulumi.ComponentResource("kubeadm-ha:cluster:Credentials", "credentials", {}, { parent });
  const externalEtcd =
    config.etcdTopology === "external"
      ? new ExternalEtcd(
          "etcd",
          { hosts: etcdHosts, version: config.etcd.version, pki: createEtcdPki("etcd-pki", { members: etcdHosts.map((h) => ({ name: h.name, privateIp: h.privateIp })) }, secretsParent) },
          { parent },
        )
      : undefined;
  const etcdShape: pulumi.Output<EtcdEndpoints> = externalEtcd ? externalEtcd.kubeadmEtcd : pulumi.output({ kind: "stacked" as const });

  const shape: pulumi.Output<ClusterShape> = pulumi.all([infra.apiEndpoint, infra.apiCertSANs, etcdShape]).apply(([endpoint, certSANs, etcd]) => ({
    clusterName,
    kubernetesVersion: config.kubernetesVersion,
    controlPlaneEndpoint: endpoint,
    certSANs,
    podCidr: config.network.podCidr,
    serviceCidr: config.network.serviceCidr,
    etcd,
    ...(config.images.repository ? { imageRepository: config.images.repository } : {}),
    ...(config.kubelet.allowCgroupV1 ? { allowCgroupV1: true } : {}),
  }));
  const credentials = createJoinCredentials(secretsParent);
  const sources = { images: config.images, packageRepository: config.packages.repository };
  // Bootstrap inputs pinned per machine: recorded ones for a recorded machine, else the cluster's current version and
  // this run's credentials round (so a new, replaced or not-yet-joined node gets credentials minted in this run).
  const current = { kubernetesVersion: joiningVersion(inputs.deployed?.kubernetesVersion, config.kubernetesVersion), round: runStartedAt() };
  const bootstraps = new Map<string, pulumi.Output<NodeBootstrap>>();
  const bootstrapOf = (host: NodeHost): pulumi.Output<NodeBootstrap> => {
    let b = bootstraps.get(host.name);
    if (!b) {
      b = machineIdentity(host).apply((machine) => bootstrapFor(inputs.deployed?.bootstrap?.[host.name], machine, current));
      bootstraps.set(host.name, b);
    }
    return b;
  };
  const cp0Registered = infra.registerControlPlane(cpHosts[0], []);
  // Certificates: a renewal round is due when the deployed stack's earliest recorded expiry is near (the round is in
  // the renewal and credential steps' scripts, so preview shows them running).
  const renewBeforeDays = config.certificates.renewBeforeDays;
  const renewal = certificateRenewalRound(inputs.deployed?.certificates, new Date(), renewBeforeDays);
  if (renewal.due) pulumi.log.info(`certificate renewal due: ${renewal.reason}`);

  const controlPlane = new ControlPlane(
    "control-plane",
    { hosts: cpHosts, shape, bootstrap: bootstrapOf, credentials, sources, credentialRound: renewal.round, credentialValidityHours: certificateDefaults.adminCredentialValidityHours, recordedInit: inputs.deployed?.bootstrap?.[cpHosts[0].name], initAfter: [...cp0Registered, ...infra.beforeInit, ...(externalEtcd ? [externalEtcd.healthy] : [])], externalEtcd },
    { parent },
  );
  // A stack deployed before the program minted its own credential keeps its provider's kubeconfig for one run, while
  // the provider gets its clusterIdentifier: afterwards a new credential is an update of the provider, never a
  // replacement (which would replace the CNI release with it).
  const onboarding = inputs.deployed?.kubernetesVersion !== undefined && inputs.deployed.certificates === undefined && inputs.deployed.kubeconfig !== undefined;
  const cni = new Cni(
    "cni",
    {
      name: config.cni.name,
      version: config.cni.version,
      chartPath: config.cni.chartPath,
      values: config.cni.values,
      podCidr: config.network.podCidr,
      kubeconfig: onboarding ? inputs.deployed!.kubeconfig! : controlPlane.kubeconfig,
      clusterIdentifier: clusterName,
      dependsOn: [controlPlane],
    },
    { parent },
  );
  const cpJoins = new ControlPlaneJoins(
    "control-plane-joins",
    { controlPlane, hosts: cpHosts, shape, stackedEtcd: config.etcdTopology === "stacked", bootstrap: bootstrapOf, joinAfter: [cni] },
    { parent },
  );
  // Every other control plane goes behind the API endpoint only once it has joined (its retire step follows its join),
  // and leaves it before its retirement runs.
  cpJoins.retires.forEach((retire, i) => infra.registerControlPlane(cpHosts[i + 1], [retire]));
  const workers = new WorkerPool("workers", { hosts: workerHosts, shape, bootstrap: bootstrapOf, controlPlane, sources }, { parent });
  const allNodes = [...names.controlPlanes, ...names.workers];
  const nodesReady = nodeStep(
    "cluster-wait-nodes-ready",
    { host: cpHosts[0], script: waitForNodesScript({ node: cpHosts[0].name, expectedNodes: allNodes }) },
    { parent, dependsOn: [cni, cpJoins, workers] },
  );
  const stacked = config.etcdTopology === "stacked";
  const snapshotUri =
    infra.nodeRoleName !== undefined
      ? new SnapshotBucket("etcd-snapshots", { clusterName, existingBucket: config.snapshots.bucket, retentionDays: config.snapshots.retentionDays, nodeRoleName: infra.nodeRoleName, kmsKeyId: config.snapshots.kmsKeyId }, { parent }).s3Uri
      : config.snapshots.bucket !== undefined
        ? pulumi.output(`s3://${config.snapshots.bucket}/${clusterName}/etcd`)
        : undefined;
  const backups = new EtcdBackups(
    "etcd-backups",
    {
      cluster: clusterName,
      members: stacked ? cpHosts : etcdHosts,
      topology: config.etcdTopology,
      etcdVersion: stacked ? defaults.etcd.version : config.etcd.version,
      snapshots: config.snapshots,
      s3Uri: snapshotUri,
      after: [nodesReady],
    },
    { parent },
  );
  const upgrade = new RollingUpgrade(
    "upgrade",
    {
      controlPlanes: cpHosts,
      workers: workerHosts,
      kubernetesVersion: config.kubernetesVersion,
      maxUnavailable: config.workers.maxUnavailable,
      apiEndpoint: infra.apiEndpoint,
      etcd: externalEtcd ? { kind: "external", endpoints: externalEtcd.endpoints, hosts: etcdHosts } : { kind: "stacked" },
      snapshotScript: (node) => backups.preUpgradeScript(node, config.kubernetesVersion),
      after: [nodesReady, ...backups.ready],
      joined: new Map(workerHosts.map((h, i) => [h.name, workers.joins[i]])),
      packageRepository: config.packages.repository,
      builtAt: (node) => bootstrapOf(cpHosts.find((h) => h.name === node)!).kubernetesVersion,
    },
    { parent },
  );
  // Add-ons go in once the cluster is whole: every node Ready and the rolling upgrade done (a version bump and an add-on
  // change in one run apply the add-on to the upgraded cluster). Nothing of the lifecycle waits for them.
  if (config.addons.length > 0) {
    new Addons("addons", { addons: config.addons, provider: cni.provider, after: [nodesReady, ...upgrade.last], secretValues: inputs.addonsSecret }, { parent });
  }
  const certificates = new CertificateRenewal(
    "certificates",
    {
      controlPlanes: cpHosts,
      kubernetesVersion: config.kubernetesVersion,
      renewBeforeDays,
      round: renewal.round,
      etcd: externalEtcd ? pulumi.output(externalEtcd.endpoints).apply((endpoints) => ({ kind: "external" as const, endpoints })) : { kind: "stacked", members: names.controlPlanes },
      after: [nodesReady, ...upgrade.last],
      kubeconfig: controlPlane.kubeconfig,
    },
    { parent },
  );
  if (config.maintenance.length > 0) {
    new Maintenance("maintenance", { nodes: config.maintenance, controlPlanes: cpHosts, after: [nodesReady, ...upgrade.last] }, { parent });
  }
  // Important: a finished restore never runs again, on any node: once the stack records its request id, no restore
  // step is declared (the phases' resources go; a Command without a delete script runs nothing when deleted).
  const deployedRestores = inputs.deployed?.finishedRestores ?? [];
  let finishedRestores: pulumi.Output<string[]> = pulumi.output(deployedRestores);
  if (config.restore && restoreFinished(inputs.deployed ?? {}, config.restore.requestId)) {
    pulumi.log.info(`restore ${config.restore.requestId} finished in an earlier run: nothing runs again; remove restore from the config (see README "Restoring")`);
  } else if (config.restore) {
    const requestId = config.restore.requestId;
    const restore = new EtcdRestore(
      "etcd-restore",
      {
        cluster: clusterName,
        snapshot: config.restore.snapshot,
        requestId: config.restore.requestId,
        topology: config.etcdTopology,
        etcdVersion: stacked ? defaults.etcd.version : config.etcd.version,
        members: stacked ? cpHosts : etcdHosts,
        controlPlanes: cpHosts,
        apiEndpoint: infra.apiEndpoint,
        after: [nodesReady, ...backups.ready, ...upgrade.last, ...certificates.steps.slice(-1)],
      },
      { parent },
    );
    // Recorded only once every node's last phase is done: a run that fails halfway leaves it unrecorded (and resumable).
    const last = restore.phases[restore.phases.length - 1];
    finishedRestores = pulumi.all(last.map((s) => s.id)).apply(() => [...deployedRestores.filter((id) => id !== requestId), requestId]);
  }
  const joinedSteps = new Map<string, command.remote.Command>([
    [cpHosts[0].name, controlPlane.init],
    ...cpJoins.joins.map((j, i): [string, command.remote.Command] => [cpHosts[i + 1].name, j]),
    ...workers.joins.map((j, i): [string, command.remote.Command] => [workerHosts[i].name, j]),
  ]);
  const bootstrap = pulumi
    .all([...cpHosts, ...workerHosts].map((h) => recordedBootstrap(joinedSteps.get(h.name)!, bootstrapOf(h)).apply((b): [string, NodeBootstrap] => [h.name, b])))
    .apply((entries) => Object.fromEntries(entries) as BootstrapRecord);

  const nodeList = pulumi.all([
    ...cpHosts.map((h) => h.privateIp.apply((ip) => ({ name: h.name, role: "control-plane", privateIp: ip }))),
    ...workerHosts.map((h) => h.privateIp.apply((ip) => ({ name: h.name, role: "worker", privateIp: ip }))),
    ...etcdHosts.map((h) => h.privateIp.apply((ip) => ({ name: h.name, role: "etcd", privateIp: ip }))),
  ]);
  return { kubeconfig: controlPlane.kubeconfig, apiEndpoint: infra.apiEndpoint, bastionAddress: infra.bastionAddress, nodes: nodeList, certificates: certificates.output, bootstrap, finishedRestores };
}
