// Every lifecycle step builder rendered with representative arguments, for infra/scripts/catalog.ts (the table
// shellcheck runs over). A new builder in lifecycle/scripts/ adds its samples here.
import { drainNodeScript } from "./drain";
import { preflightChecksScript } from "./preflight";
import { uncordonNodeScript } from "./uncordon";
import { upgradeControlPlaneScript } from "./upgradeControlPlane";
import { upgradeKubeadmScript } from "./upgradeKubeadm";
import { upgradeKubeletScript } from "./upgradeKubelet";
import { upgradeWorkerScript } from "./upgradeWorker";
import { renewCertificatesScript } from "./renewCertificates";

const v = "1.36.0";
const endpoints = ["https://10.0.1.20:2379", "https://10.0.2.20:2379", "https://10.0.3.20:2379"];

export function lifecycleSampleScripts(): { name: string; script: string }[] {
  const nodes = ["cp-0", "cp-1", "cp-2", "worker-0", "worker-1"];
  const controlPlanes = ["cp-0", "cp-1", "cp-2"];
  const apiEndpoint = "api-123.elb.eu-west-1.amazonaws.com:6443";
  return [
    {
      name: "preflightChecksScript (stacked etcd)",
      script: preflightChecksScript({ node: "cp-0", kubernetesVersion: v, nodes, controlPlanes, apiEndpoint, etcd: { kind: "stacked" } }),
    },
    {
      name: "preflightChecksScript (external etcd)",
      script: preflightChecksScript({ node: "cp-0", kubernetesVersion: v, nodes, controlPlanes, apiEndpoint, etcd: { kind: "external", endpoints } }),
    },
    { name: "upgradeKubeadmScript (first control plane)", script: upgradeKubeadmScript({ node: "cp-0", kubernetesVersion: v }) },
    {
      name: "upgradeKubeadmScript (further control plane, stacked etcd)",
      script: upgradeKubeadmScript({ node: "cp-1", kubernetesVersion: v, etcdHealthFirst: { kind: "stacked", members: controlPlanes } }),
    },
    {
      name: "upgradeKubeadmScript (further control plane, external etcd)",
      script: upgradeKubeadmScript({ node: "cp-1", kubernetesVersion: v, etcdHealthFirst: { kind: "external", endpoints } }),
    },
    { name: "drainNodeScript (control plane)", script: drainNodeScript({ runsOn: "cp-1", node: "cp-1", role: "control-plane", kubernetesVersion: v }) },
    { name: "drainNodeScript (worker)", script: drainNodeScript({ runsOn: "cp-0", node: "worker-0", role: "worker", kubernetesVersion: v }) },
    {
      name: "drainNodeScript (worker, --disable-eviction fallback)",
      script: drainNodeScript({ runsOn: "cp-0", node: "worker-1", role: "worker", kubernetesVersion: v, drain: { disableEviction: true } }),
    },
    { name: "upgradeControlPlaneScript (apply)", script: upgradeControlPlaneScript({ node: "cp-0", kubernetesVersion: v, mode: "apply", builtAt: "1.35.9" }) },
    { name: "upgradeControlPlaneScript (node)", script: upgradeControlPlaneScript({ node: "cp-1", kubernetesVersion: v, mode: "node", builtAt: "1.35.9" }) },
    { name: "upgradeKubeletScript", script: upgradeKubeletScript({ node: "cp-0", kubernetesVersion: v }) },
    {
      name: "uncordonNodeScript (control plane)",
      script: uncordonNodeScript({ runsOn: "cp-0", node: "cp-0", role: "control-plane", kubernetesVersion: v }),
    },
    { name: "uncordonNodeScript (worker)", script: uncordonNodeScript({ runsOn: "cp-0", node: "worker-0", role: "worker", kubernetesVersion: v }) },
    { name: "upgradeWorkerScript", script: upgradeWorkerScript({ node: "worker-0", kubernetesVersion: v }) },
    {
      name: "renewCertificatesScript (stacked etcd)",
      script: renewCertificatesScript({ node: "cp-1", kubernetesVersion: v, renewBeforeDays: 30, round: "before-20271201T220505Z", etcd: { kind: "stacked", members: controlPlanes } }),
    },
    {
      name: "renewCertificatesScript (external etcd)",
      script: renewCertificatesScript({ node: "cp-1", kubernetesVersion: v, renewBeforeDays: 30, round: "initial", etcd: { kind: "external", endpoints } }),
    },
  ];
}
