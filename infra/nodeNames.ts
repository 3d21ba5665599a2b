import { ClusterConfig } from "./config";

/** Node names by role, in creation order; cp-0 is the first control plane. */
export function nodeNames(config: Pick<ClusterConfig, "controlPlane" | "workers" | "etcd" | "etcdTopology">) {
  return {
    controlPlanes: Array.from({ length: config.controlPlane.count }, (_, i) => `cp-${i}`),
    workers: Array.from({ length: config.workers.count }, (_, i) => `worker-${i}`),
    etcd: config.etcdTopology === "external" ? Array.from({ length: config.etcd.count }, (_, i) => `etcd-${i}`) : [],
  };
}
