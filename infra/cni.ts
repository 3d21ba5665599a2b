import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CniName } from "./config";
import { isObject } from "./configValues";

export interface CniChart {
  chart: string;
  repo: string;
  namespace: string;
  values: Record<string, unknown>;
}

/** The Helm chart that installs a CNI, with its pod range matched to kubeadm's podSubnet. */
export function cniChart(name: CniName, podCidr: string): CniChart {
  switch (name) {
    case "cilium":
      // IPAM "kubernetes": Cilium uses each node's podCIDR, which the controller-manager carves from podSubnet.
      return { chart: "cilium", repo: "https://helm.cilium.io/", namespace: "kube-system", values: { ipam: { mode: "kubernetes" }, operator: { replicas: 2 } } };
    case "calico":
      // Important: every pod packet between nodes is encapsulated (VXLAN, also inside a subnet), and BGP is off.
      // "VXLANCrossSubnet" would route natively between nodes of one subnet, and EC2 drops such packets (a pod address
      // is not the instance's) unless each instance's source/destination check is off; the machines keep it on.
      return {
        chart: "tigera-operator",
        repo: "https://docs.tigera.io/calico/charts",
        namespace: "tigera-operator",
        values: {
          installation: {
            cni: { type: "Calico" },
            calicoNetwork: { bgp: "Disabled", ipPools: [{ cidr: podCidr, encapsulation: "VXLAN", natOutgoing: "Enabled", nodeSelector: "all()" }] },
          },
        },
      };
    case "flannel":
      // --kube-subnet-mgr: each node's podCIDR from the controller-manager (kubeadm's podSubnet); VXLAN backend.
      return { chart: "flannel", repo: "https://flannel-io.github.io/flannel/", namespace: "kube-flannel", values: { podCidr } };
    default: {
      const never: never = name;
      throw new Error(`unknown CNI ${never}`);
    }
  }
}

/**
 * `overrides` merged over `base`, key by key (objects recursively; any other value, lists too, replaces), as Helm
 * merges a values file over a chart's values.
 */
export function mergeValues(base: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? mergeValues(current, value) : value;
  }
  return out;
}

export interface CniArgs {
  name: CniName;
  version: string;
  /** A chart in the project instead of the repository's (cni.chartPath). */
  chartPath?: string;
  /** Merged over the program's values (cni.values). */
  values?: Record<string, unknown>;
  podCidr: string;
  /** Secret admin kubeconfig; its server is the API load balancer. */
  kubeconfig: pulumi.Output<string>;
  /**
   * The cluster's stable name. Important: with it the provider is replaced only when it changes; a new credential
   * (every certificate renewal round mints one) is then an update of the provider, never a replacement of the CNI.
   */
  clusterIdentifier: string;
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * The pod network, installed from its Helm chart through a Kubernetes provider built from the admin kubeconfig.
 * The operator's machine must reach the API endpoint (apiAccess.allowedCidrs, or run inside the VPC).
 */
export class Cni extends pulumi.ComponentResource {
  readonly provider: k8s.Provider;
  readonly release: k8s.helm.v3.Release;

  constructor(name: string, args: CniArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:cluster:Cni", name, {}, opts);
    this.provider = new k8s.Provider(
      `${name}-k8s`,
      { kubeconfig: args.kubeconfig, clusterIdentifier: args.clusterIdentifier, enableServerSideApply: true },
      { parent: this, dependsOn: args.dependsOn },
    );
    const chart = cniChart(args.name, args.podCidr);
    const source = args.chartPath !== undefined ? { chart: args.chartPath } : { chart: chart.chart, version: args.version, repositoryOpts: { repo: chart.repo } };
    this.release = new k8s.helm.v3.Release(
      `${name}-${args.name}`,
      {
        ...source,
        namespace: chart.namespace,
        createNamespace: chart.namespace !== "kube-system",
        values: mergeValues(chart.values, args.values ?? {}),
        atomic: false,
        // The first control plane turns Ready only when the CNI's agents run there.
        waitForJobs: true,
        timeout: 900,
      },
      { parent: this, provider: this.provider },
    );
    this.registerOutputs({});
  }
}
