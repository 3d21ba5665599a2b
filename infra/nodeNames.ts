import { ClusterConfig } from "./config";

/**
 * Node names by role, in creation order; the first control plane runs `kubeadm init`. On AWS the program names them
 * (cp-0, worker-3, etcd-1); static hosts keep the names their config gives.
 */
export function nodeNames(config: Pick<ClusterConfig, "controlPlane" | "workers" | "etcd" | "etcdTopology" | "hosts">) {
  if (config.hosts.provider === "static") {
    return {
      controlPlanes: config.hosts.controlPlanes.map((h) => h.name),
      workers: config.hosts.workers.map((h) => h.name),
      etcd: config.etcdTopology === "external" ? config.hosts.etcd.map((h) => h.name) : [],
    };
  }
  return {
    controlPlanes: Array.from({ length: config.controlPlane.count }, (_, i) => `cp-${i}`),
    workers: Array.from({ length: config.workers.count }, (_, i) => `worker-${i}`),
    etcd: config.etcdTopology === "external" ? Array.from({ length: config.etcd.count }, (_, i) => `etcd-${i}`) : [],
  };
}
