// kubeadm configuration as typed objects, serialised with `yaml`. Pure: no resources, no I/O.
import * as semver from "semver";
import { stringify } from "yaml";
import { apiserverPort, kubeadmV1beta4Since } from "../defaults";

export type EtcdEndpoints =
  | { kind: "stacked" }
  | { kind: "external"; endpoints: string[]; caFile: string; certFile: string; keyFile: string };

/** What every node's kubeadm configuration agrees on. */
export interface ClusterShape {
  clusterName: string;
  kubernetesVersion: string;
  /** host:port of the API load balancer. */
  controlPlaneEndpoint: string;
  /** Extra names and addresses the apiserver certificate carries (the LB's DNS name at least). */
  certSANs: string[];
  podCidr: string;
  serviceCidr: string;
  etcd: EtcdEndpoints;
  /** kubeadm's imageRepository (images.repository); absent: kubeadm's default, registry.k8s.io. */
  imageRepository?: string;
  /** Nodes on cgroup v1 are accepted (kubelet.allowCgroupV1): production nodes run cgroup v2, and kubelets refuse v1. */
  allowCgroupV1?: boolean;
}

export interface NodeIdentity {
  name: string;
  privateIp: string;
}

export const criSocket = "unix:///run/containerd/containerd.sock";

export function kubeadmApiVersion(kubernetesVersion: string): "kubeadm.k8s.io/v1beta4" | "kubeadm.k8s.io/v1beta3" {
  return semver.gte(kubernetesVersion, kubeadmV1beta4Since) ? "kubeadm.k8s.io/v1beta4" : "kubeadm.k8s.io/v1beta3";
}

/** v1beta4 lists extra arguments as name/value pairs; v1beta3 as a map. */
function extraArgs(apiVersion: string, args: Record<string, string>): unknown {
  return apiVersion.endsWith("v1beta4") ? Object.entries(args).map(([name, value]) => ({ name, value })) : args;
}

/**
 * Control-plane kubelets talk to their own apiserver rather than the LB, so a kubelet upgraded first never talks
 * to an older apiserver. Alpha in 1.31 and 1.32 (enabled here); on by default from 1.33.
 */
function featureGates(kubernetesVersion: string): Record<string, boolean> | undefined {
  const minor = semver.minor(kubernetesVersion);
  return minor === 31 || minor === 32 ? { ControlPlaneKubeletLocalMode: true } : undefined;
}

/**
 * Feature gates the program may have set in kubeadm-config (featureGates above) and the minor whose kubeadm no longer
 * knows them. kubeadm keeps a cluster's gates in kube-system/kubeadm-config across upgrades, and a kubeadm that meets
 * an unknown gate refuses the whole configuration ("unrecognized feature-gate key"): `kubeadm upgrade apply`, and
 * `kubeadm init phase upload-certs --config` of the join-credentials step. So the first control plane's upgrade to
 * such a minor removes them from kubeadm-config first. ControlPlaneKubeletLocalMode: alpha 1.31, GA and locked on in
 * 1.35, removed in 1.36 (kubeadm's cmd/kubeadm/app/features).
 */
export const removedFeatureGates: Readonly<Record<string, string>> = { ControlPlaneKubeletLocalMode: "1.36" };

/** The gates of removedFeatureGates that kubeadm at `kubernetesVersion` no longer knows. */
export function featureGatesRemovedBy(kubernetesVersion: string): string[] {
  return Object.entries(removedFeatureGates)
    .filter(([, minor]) => semver.gte(`${semver.major(kubernetesVersion)}.${semver.minor(kubernetesVersion)}.0`, `${minor}.0`))
    .map(([gate]) => gate);
}

/** kubeadm's preflight check that refuses a cgroup v1 host (with the other kernel and cgroup checks). */
export const cgroupV1PreflightCheck = "SystemVerification";

function nodeRegistration(apiVersion: string, node: NodeIdentity, shape: ClusterShape) {
  return {
    name: node.name,
    criSocket,
    kubeletExtraArgs: extraArgs(apiVersion, { "node-ip": node.privateIp }),
    ...(shape.allowCgroupV1 ? { ignorePreflightErrors: [cgroupV1PreflightCheck] } : {}),
  };
}

export function clusterConfiguration(shape: ClusterShape): Record<string, unknown> {
  const apiVersion = kubeadmApiVersion(shape.kubernetesVersion);
  const etcd =
    shape.etcd.kind === "stacked"
      ? { local: { dataDir: "/var/lib/etcd" } }
      : {
          external: {
            endpoints: shape.etcd.endpoints,
            caFile: shape.etcd.caFile,
            certFile: shape.etcd.certFile,
            keyFile: shape.etcd.keyFile,
          },
        };
  const gates = featureGates(shape.kubernetesVersion);
  return {
    apiVersion,
    kind: "ClusterConfiguration",
    clusterName: shape.clusterName,
    kubernetesVersion: `v${shape.kubernetesVersion}`,
    controlPlaneEndpoint: shape.controlPlaneEndpoint,
    apiServer: { certSANs: shape.certSANs },
    networking: { podSubnet: shape.podCidr, serviceSubnet: shape.serviceCidr },
    etcd,
    ...(shape.imageRepository ? { imageRepository: shape.imageRepository } : {}),
    ...(gates ? { featureGates: gates } : {}),
  };
}

/**
 * The kubelets' configuration (kubeadm stores it in kubelet-config at init; every node gets it). failCgroupV1: the
 * kubelet refuses a cgroup v1 host from 1.35 (the field exists from 1.31); set false only when config says so.
 */
function kubeletConfiguration(shape: ClusterShape): Record<string, unknown> {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    cgroupDriver: "systemd",
    ...(shape.allowCgroupV1 && semver.gte(shape.kubernetesVersion, "1.31.0") ? { failCgroupV1: false } : {}),
  };
}

export interface InitArgs {
  shape: ClusterShape;
  node: NodeIdentity;
  /** `abcdef.0123456789abcdef`: secret. */
  bootstrapToken: string;
  /** 64 hex characters: encrypts the control-plane certificates uploaded with --upload-certs. Secret. */
  certificateKey: string;
}

/** The whole `kubeadm init --config` document set for the first control plane. Carries secrets. */
export function initConfiguration(args: InitArgs): string {
  const apiVersion = kubeadmApiVersion(args.shape.kubernetesVersion);
  const init = {
    apiVersion,
    kind: "InitConfiguration",
    bootstrapTokens: [
      {
        token: args.bootstrapToken,
        ttl: "24h0m0s",
        usages: ["signing", "authentication"],
        groups: ["system:bootstrappers:kubeadm:default-node-token"],
      },
    ],
    certificateKey: args.certificateKey,
    localAPIEndpoint: { advertiseAddress: args.node.privateIp, bindPort: apiserverPort },
    nodeRegistration: nodeRegistration(apiVersion, args.node, args.shape),
  };
  return [init, clusterConfiguration(args.shape), kubeletConfiguration(args.shape)].map((doc) => stringify(doc)).join("---\n");
}

export interface JoinArgs {
  shape: ClusterShape;
  node: NodeIdentity;
  bootstrapToken: string;
  /** `sha256:<hex>` of the cluster CA's public key. */
  caCertHash: string;
  /** Present for control planes: joins as a control plane and downloads the shared certificates with this key. */
  certificateKey?: string;
}

/** The `kubeadm join --config` document for a control plane or a worker. Carries secrets. */
export function joinConfiguration(args: JoinArgs): string {
  const apiVersion = kubeadmApiVersion(args.shape.kubernetesVersion);
  const join = {
    apiVersion,
    kind: "JoinConfiguration",
    discovery: {
      bootstrapToken: {
        apiServerEndpoint: args.shape.controlPlaneEndpoint,
        token: args.bootstrapToken,
        caCertHashes: [args.caCertHash],
      },
    },
    nodeRegistration: nodeRegistration(apiVersion, args.node, args.shape),
    ...(args.certificateKey !== undefined
      ? {
          controlPlane: {
            certificateKey: args.certificateKey,
            localAPIEndpoint: { advertiseAddress: args.node.privateIp, bindPort: apiserverPort },
          },
        }
      : {}),
  };
  return stringify(join);
}
