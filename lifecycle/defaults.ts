// Every default of the lifecycle operations (rolling upgrade, drain, pre-upgrade snapshot) lives here, each with its
// reason. Scripts take these as their default arguments; tests pass smaller values, never other behaviour.

/** How a node is drained before its packages and control plane change. */
export interface DrainSettings {
  /**
   * `kubectl drain --timeout`: how long evictions may take before the drain gives up. 360 s is kubespray's
   * `drain_timeout`: long enough for the default 300 s grace period plus the reschedule, short enough that a
   * PodDisruptionBudget that can never be satisfied fails the step within minutes instead of hanging it.
   */
  timeoutSeconds: number;
  /**
   * `kubectl drain --grace-period`: the termination grace each evicted pod gets. 300 s is kubespray's
   * `drain_grace_period`; it stays below timeoutSeconds so a pod that uses all of it still finishes in time.
   */
  gracePeriodSeconds: number;
  /**
   * `--delete-emptydir-data`: pods with emptyDir volumes are evicted (their scratch data is lost, as it would be on
   * any reschedule). On for workers, where such pods are common; off for control planes, where kubeadm's own
   * procedure drains with `--ignore-daemonsets` only and nothing of ours uses emptyDir.
   */
  deleteEmptydirData: boolean;
  /**
   * `--force`: pods without a controller are deleted too (they would otherwise block the drain forever). On for
   * workers (kubespray and the procedure); off for control planes.
   */
  force: boolean;
  /**
   * An optional last attempt with `--disable-eviction` (deletes pods instead of evicting them, bypassing
   * PodDisruptionBudgets) once every evicting attempt has failed. Off by default: a PDB that blocks a drain is
   * usually protecting availability, and the operator should decide; a failed drain uncordons and stops instead.
   */
  disableEviction: boolean;
  /** Drain attempts in all before the step fails (kubespray's `drain_retries`: 3). */
  attempts: number;
  /** Pause between attempts (kubespray's `drain_retry_delay_seconds`: 10). */
  retryDelaySeconds: number;
  /**
   * `kubectl drain --skip-wait-for-delete-timeout`: a pod whose deletion deadline (deletionTimestamp) passed this long
   * ago is not waited for. Such a pod is on a NotReady node (a dead machine, a stopped kubelet): nothing will ever
   * confirm its deletion, so without this a drain of that node never finishes. The first attempt evicts it and times
   * out; the next attempt skips it. Invariant: skipWaitForDeleteTimeoutSeconds + gracePeriodSeconds <
   * timeoutSeconds + retryDelaySeconds, so the second attempt starts after the skip point of the pods the first one
   * evicted (drainsNotReadyNodes in lifecycle/scripts/drain.ts, tested for these defaults). 60 s fits kubespray's
   * 360 s timeout, 300 s grace and 10 s pause, and still waits for a kubelet that is slow, not gone. Cluster API skips
   * after 300 s, for nodes it has seen unreachable.
   */
  skipWaitForDeleteTimeoutSeconds: number;
  /**
   * Extra time the outer `timeout` grants kubectl beyond `--timeout`, so a kubectl that hangs (an unreachable
   * apiserver) is still bounded: every wait in a step is bounded.
   */
  killAfterSeconds: number;
}

const drainCommon = {
  timeoutSeconds: 360,
  gracePeriodSeconds: 300,
  disableEviction: false,
  attempts: 3,
  retryDelaySeconds: 10,
  skipWaitForDeleteTimeoutSeconds: 60,
  killAfterSeconds: 60,
} as const;

/** Drain settings by node role. */
export const drainDefaults: { readonly worker: DrainSettings; readonly controlPlane: DrainSettings } = {
  worker: { ...drainCommon, deleteEmptydirData: true, force: true },
  controlPlane: { ...drainCommon, deleteEmptydirData: false, force: false },
};

/** Bounds of the upgrade steps' waits (seconds). Every wait in an upgrade script is bounded by one of these. */
export interface UpgradeTimeouts {
  /** `kubeadm upgrade apply` pulls images and replaces every static pod of the first control plane, etcd included. */
  kubeadmUpgradeApply: number;
  /** `kubeadm upgrade node` replaces the static pods of a further control plane, or rewrites a worker's kubelet config. */
  kubeadmUpgradeNode: number;
  /** `kubeadm upgrade plan`: reads the cluster's config and versions. */
  kubeadmUpgradePlan: number;
  /** A node turns Ready again after its kubelet restarts (same bound as bootstrap's nodeReady). */
  nodeReady: number;
  /** A control plane's apiserver, controller-manager and scheduler pods run the new image and report Ready. */
  controlPlanePods: number;
  /** etcd reports every member healthy (same bound as bootstrap's etcdHealth). */
  etcdHealth: number;
  /** Pre-flight health (every node Ready, /readyz through the LB): short, it checks a cluster that should be settled. */
  preflightHealth: number;
  /** Reading the cluster's version (`kubectl version`), retried within this bound. */
  apiVersion: number;
}

export const upgradeTimeouts: UpgradeTimeouts = {
  kubeadmUpgradeApply: 1200,
  kubeadmUpgradeNode: 900,
  kubeadmUpgradePlan: 300,
  nodeReady: 600,
  controlPlanePods: 600,
  etcdHealth: 300,
  preflightHealth: 120,
  apiVersion: 120,
};

/** The control-plane components whose pods must be Running and Ready on a control plane after its upgrade. */
export const controlPlaneComponents = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] as const;

/** How the cluster's kubeadm-managed certificates and the program's own admin credential stay valid. */
export interface CertificateSettings {
  /**
   * `certificates.renewBeforeDays`: a renewal round runs when the earliest control-plane certificate, or the admin
   * credential the program and the `kubeconfig` output use, expires within this many days. 30: kubeadm's certificates
   * and the credential live 365 days, so a cluster that is never upgraded is renewed about every 11 months, and a
   * month leaves room for a failed run and for a stack that is only run now and then.
   */
  renewBeforeDays: number;
  /**
   * Validity of the admin credential the program mints (`kubeadm kubeconfig user --validity-period`): kubeadm's own
   * default for client certificates, 365 days.
   */
  adminCredentialValidityHours: number;
}

export const certificateDefaults: CertificateSettings = {
  renewBeforeDays: 30,
  adminCredentialValidityHours: 8760,
};

/** Bounds of the certificate steps (seconds). */
export const certificateTimeouts = {
  /** `kubeadm certs renew all`: signs a dozen certificates with local keys. */
  kubeadmCertsRenew: 300,
  /** A static pod whose manifest left the manifest directory: the kubelet looks every 20 s, then the pod's grace. */
  podStop: 120,
  /** The restarted apiserver answers /readyz (it rebuilds its caches from etcd). */
  apiserverReady: 600,
  /** `kubeadm kubeconfig user`: signs one client certificate. */
  kubeconfigUser: 60,
} as const;
