// Every node-script builder rendered with representative arguments: the shared table that shellcheck (and any other
// whole-catalog check) runs over. A new builder in infra/scripts/ adds its samples here.
import {
  configureEtcdMemberScript,
  installApiserverEtcdClientScript,
  installEtcdMemberScript,
  waitEtcdClusterHealthyScript,
} from "./etcdMember";
import { haproxyConfig, installApiEndpointScript, keepalivedConfig, keepalivedPlan } from "./apiEndpoint";
import { initControlPlaneScript, initGuardScript } from "./initControlPlane";
import { joinControlPlaneScript, joinWorkerScript } from "./joinNode";
import { prepareNodeScript } from "./prepareNode";
import { readKubeconfigScript } from "./readKubeconfig";
import { waitForNodesScript } from "./waitForNodes";
import { lifecycleSampleScripts } from "../../lifecycle/scripts/samples";
import { etcdSnapshotSampleScripts } from "../../lifecycle/scripts/etcdSamples";
import { maintenanceDrainScript, maintenanceEndScript } from "../../lifecycle/scripts/maintenance";
import { removeEtcdMemberScript, retireControlPlaneScript, retireStandbyScript, retireWorkerScript } from "../../lifecycle/scripts/retireNode";
import { mintJoinCredentialsScript } from "./mintJoinCredentials";

export interface SampleScript {
  /** Builder and variant, e.g. "joinControlPlaneScript (stacked etcd)". */
  name: string;
  script: string;
}

export function sampleScripts(): SampleScript[] {
  return [
    { name: "prepareNodeScript (1.35.9)", script: prepareNodeScript({ node: "cp-0", kubernetesVersion: "1.35.9" }) },
    { name: "prepareNodeScript (1.30.0)", script: prepareNodeScript({ node: "worker-0", kubernetesVersion: "1.30.0" }) },
    { name: "initControlPlaneScript", script: initControlPlaneScript({ node: "cp-0" }) },
    { name: "initGuardScript", script: initGuardScript({ node: "cp-0", recorded: { machine: "10.0.1.10", kubernetesVersion: "1.35.9", round: "2030-01-01T08:00:00.000Z" } }) },
    {
      name: "joinControlPlaneScript (stacked etcd)",
      script: joinControlPlaneScript({ node: "cp-1", stackedEtcd: true }),
    },
    {
      name: "joinControlPlaneScript (external etcd)",
      script: joinControlPlaneScript({ node: "cp-2", stackedEtcd: false }),
    },
    { name: "joinWorkerScript", script: joinWorkerScript({ node: "worker-0" }) },
    { name: "readKubeconfigScript", script: readKubeconfigScript({ node: "cp-0", round: "before-20271201T220505Z", validityHours: 8760 }) },
    {
      name: "waitForNodesScript",
      script: waitForNodesScript({ node: "cp-0", expectedNodes: ["cp-0", "cp-1", "cp-2", "worker-0", "worker-1"] }),
    },
    { name: "installEtcdMemberScript (3.6.6)", script: installEtcdMemberScript({ node: "etcd-0", etcdVersion: "3.6.6" }) },
    { name: "installEtcdMemberScript (3.4.23)", script: installEtcdMemberScript({ node: "etcd-1", etcdVersion: "3.4.23" }) },
    { name: "configureEtcdMemberScript", script: configureEtcdMemberScript({ node: "etcd-0" }) },
    {
      name: "waitEtcdClusterHealthyScript",
      script: waitEtcdClusterHealthyScript({
        node: "etcd-0",
        endpoints: ["https://10.0.1.10:2379", "https://10.0.2.10:2379", "https://10.0.3.10:2379"],
      }),
    },
    { name: "installApiserverEtcdClientScript", script: installApiserverEtcdClientScript({ node: "cp-0" }) },
    ...apiEndpointSamples(),
    ...lifecycleSampleScripts(),
    ...etcdSnapshotSampleScripts(),
    ...nodeLifecycleSamples(),
  ];
}

/** Maintenance, scale-down (retire) and scale-up (join credentials) steps. */
function nodeLifecycleSamples(): SampleScript[] {
  const remainingEndpoints = ["https://10.0.1.10:2379", "https://10.0.2.10:2379"];
  return [
    { name: "maintenanceDrainScript (worker)", script: maintenanceDrainScript({ node: "worker-1", runsOn: "cp-0" }) },
    { name: "maintenanceDrainScript (control plane)", script: maintenanceDrainScript({ node: "cp-1", runsOn: "cp-0", role: "control-plane" }) },
    { name: "maintenanceEndScript", script: maintenanceEndScript({ node: "worker-1", runsOn: "cp-0" }) },
    { name: "retireWorkerScript", script: retireWorkerScript({ node: "worker-4", runsOn: "cp-0" }) },
    {
      name: "retireControlPlaneScript (stacked etcd, from cp-0)",
      script: retireControlPlaneScript({ node: "cp-2", runsOn: "cp-0", stackedEtcd: true, remainingEndpoints }),
    },
    {
      name: "retireControlPlaneScript (stacked etcd, members found through cp-0's own)",
      script: retireControlPlaneScript({ node: "cp-2", runsOn: "cp-0", stackedEtcd: true }),
    },
    { name: "retireControlPlaneScript (external etcd, from cp-0)", script: retireControlPlaneScript({ node: "cp-2", runsOn: "cp-0", stackedEtcd: false }) },
    { name: "retireStandbyScript", script: retireStandbyScript({ node: "cp-2", runsOn: "cp-0" }) },
    { name: "removeEtcdMemberScript", script: removeEtcdMemberScript({ node: "cp-2", remainingEndpoints }) },
    { name: "mintJoinCredentialsScript", script: mintJoinCredentialsScript({ node: "cp-0", forNodes: ["cp-3", "worker-3", "worker-4"] }) },
    { name: "mintJoinCredentialsScript (a worker: token only)", script: mintJoinCredentialsScript({ node: "cp-0", forNodes: ["worker-3"], uploadCertificates: false }) },
  ];
}

/** The static provider's API endpoint step on a control plane of a three-node lab (HAProxy + keepalived). */
function apiEndpointSamples(): SampleScript[] {
  const controlPlanes = [
    { name: "cp-0", address: "192.168.56.10" },
    { name: "cp-1", address: "192.168.56.11" },
    { name: "cp-2", address: "192.168.56.12" },
  ];
  const haproxy = haproxyConfig({ frontendBind: "*:8443", backends: controlPlanes.map((cp) => ({ ...cp, port: 6443 })) });
  const plan = keepalivedPlan({ controlPlanes, interface: "enp0s8", virtualIp: "192.168.56.100", routerId: 51, authPass: "k8s-api" });
  return plan.slice(0, 2).map((p) => ({
    name: `installApiEndpointScript (${p.config.state})`,
    script: installApiEndpointScript({ node: p.node, haproxyConfig: haproxy, keepalivedConfig: keepalivedConfig(p.config) }),
  }));
}
