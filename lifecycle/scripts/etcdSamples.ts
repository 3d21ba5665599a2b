// The etcd snapshot and restore builders rendered with representative arguments, for infra/scripts/catalog.ts (the
// table shellcheck runs over): every builder, both topologies, etcd 3.4 (etcdctl only) and 3.5+ (etcdutl).
import { defaults } from "../../infra/defaults";
import { leaderGuardScript, snapshotSchedulePaths, snapshotScheduleScript } from "./snapshotSchedule";
import { etcdLifecycleDefaults, etcdToolPaths } from "./etcdCommon";
import {
  restoreApiserverPhaseScript,
  restoreEtcdPhaseScript,
  restorePhases,
  type RestoreApiserverPhase,
  type RestoreEtcdArgs,
  type RestoreEtcdPhase,
} from "./restoreSnapshot";
import { saveSnapshotScript, snapshotToolsInstallScript } from "./saveSnapshot";

export function etcdSnapshotSampleScripts(): { name: string; script: string }[] {
  const kubeadmTls = {
    cacert: "/etc/kubernetes/pki/etcd/ca.crt",
    cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
    key: "/etc/kubernetes/pki/etcd/healthcheck-client.key",
  };
  const externalTls = { cacert: "/etc/etcd/pki/ca.crt", cert: "/etc/etcd/pki/server.crt", key: "/etc/etcd/pki/server.key" };
  const members = (prefix: string) =>
    [0, 1, 2].map((i) => ({ name: `${prefix}-${i}`, peerUrl: `https://10.0.${i + 1}.10:2380`, clientUrl: `https://10.0.${i + 1}.10:2379` }));
  const restore: Record<"stacked" | "external", RestoreEtcdArgs> = {
    stacked: {
      node: "cp-0",
      cluster: "kubeadm-ha-dev",
      requestId: "restore-1",
      topology: "stacked",
      snapshot: "s3://kubeadm-ha-backups/kubeadm-ha-dev/etcd/etcd-cp-0-20250101T000000.000Z-scheduled.db",
      tools: etcdToolPaths("3.6.6"),
      tls: kubeadmTls,
      member: "cp-0",
      members: members("cp"),
    },
    external: {
      node: "etcd-0",
      cluster: "kubeadm-ha-dev",
      requestId: "restore-1",
      topology: "external",
      snapshot: "/var/backups/kubeadm-ha/etcd/etcd-etcd-0-20250101T000000.000Z-scheduled.db",
      tools: etcdToolPaths("3.4.23"),
      tls: externalTls,
      member: "etcd-0",
      members: members("etcd"),
    },
  };
  const samples = [
    {
      name: "saveSnapshotScript (3.6, upload)",
      script: saveSnapshotScript({
        node: "cp-0",
        cluster: "kubeadm-ha-dev",
        ...etcdToolPaths("3.6.6"),
        endpoint: "https://127.0.0.1:2379",
        ...kubeadmTls,
        snapshotDir: etcdLifecycleDefaults.snapshotDir,
        keep: defaults.snapshots.keep,
        reason: "pre-upgrade-v1.36.0",
        upload: { s3Uri: "s3://kubeadm-ha-backups/kubeadm-ha-dev/etcd" },
      }),
    },
    {
      name: "saveSnapshotScript (3.4, local only)",
      script: saveSnapshotScript({
        node: "etcd-0",
        cluster: "kubeadm-ha-dev",
        ...etcdToolPaths("3.4.23"),
        endpoint: "https://127.0.0.1:2379",
        ...externalTls,
        snapshotDir: etcdLifecycleDefaults.snapshotDir,
        keep: 2,
        reason: "scheduled",
      }),
    },
    { name: "snapshotToolsInstallScript (3.6.6)", script: snapshotToolsInstallScript({ node: "cp-0", etcdVersion: "3.6.6" }) },
    { name: "snapshotToolsInstallScript (3.4.23)", script: snapshotToolsInstallScript({ node: "etcd-0", etcdVersion: "3.4.23" }) },
  ];
  for (const { phase, on } of restorePhases) {
    if (on === "controlPlanes") {
      samples.push({
        name: `${phase}Script (restore)`,
        script: restoreApiserverPhaseScript(phase as RestoreApiserverPhase, {
          node: "cp-0",
          requestId: "restore-1",
          readyzUrl: "https://api-123.elb.eu-west-1.amazonaws.com:6443/readyz",
        }),
      });
      continue;
    }
    for (const topology of ["stacked", "external"] as const) {
      samples.push({ name: `${phase}Script (restore, ${topology})`, script: restoreEtcdPhaseScript(phase as RestoreEtcdPhase, restore[topology]) });
    }
  }
  const stacked = { endpoint: "https://127.0.0.1:2379", tools: { etcdctl: "/usr/local/bin/etcdctl", etcdutl: "/usr/local/bin/etcdutl" }, tls: { cacert: "/etc/kubernetes/pki/etcd/ca.crt", cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt", key: "/etc/kubernetes/pki/etcd/healthcheck-client.key" } };
  samples.push({ name: "leaderGuardScript", script: leaderGuardScript({ node: "cp-1", ...stacked, saveScriptPath: snapshotSchedulePaths.saveScript }) });
  samples.push({
    name: "snapshotScheduleScript (upload)",
    script: snapshotScheduleScript({ node: "cp-1", schedule: "*-*-* 00/6:00:00", saveScript: "#!/usr/bin/env bash\necho save\n", ...stacked, installAwsCli: true }),
  });
  return samples;
}
