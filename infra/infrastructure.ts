import * as pulumi from "@pulumi/pulumi";
import { NodeHost } from "./steps";

/**
 * What the Kubernetes part of the program needs from the machines' provider (EC2 instances behind an NLB, or
 * existing hosts reached over SSH). Everything after this seam — bootstrap, CNI, upgrades, snapshots, scaling — is
 * the same code for every provider.
 */
export interface ClusterInfrastructure {
  controlPlanes: NodeHost[];
  workers: NodeHost[];
  /** External etcd members; empty with stacked etcd. */
  etcd: NodeHost[];
  /** host:port of the API endpoint every node and kubeconfig uses (the load balancer or virtual IP). */
  apiEndpoint: pulumi.Output<string>;
  /** Extra names and addresses of the apiserver certificate (the endpoint's host at least). */
  apiCertSANs: pulumi.Output<string[]>;
  /** How an operator reaches the nodes (the bastion's public address), if through a jump host. */
  bastionAddress?: pulumi.Output<string>;
  /**
   * Puts a control plane behind the API endpoint once `after` has completed, returning what was registered.
   * Invariant: cp-0 is registered before `kubeadm init` (init talks to the endpoint); every other control plane
   * only after its join, so that on removal its registration goes first and no request reaches a departing
   * apiserver.
   */
  registerControlPlane(host: NodeHost, after: pulumi.Input<pulumi.Resource>[]): pulumi.Resource[];
  /** The nodes' IAM role (AWS): snapshot uploads get a policy on it. */
  nodeRoleName?: pulumi.Output<string>;
  /** Steps that must complete before cp-0's `kubeadm init` (e.g. the load balancer's own preparation). */
  beforeInit: pulumi.Resource[];
}
