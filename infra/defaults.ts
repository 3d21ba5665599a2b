// Every default of the program lives here, each with its reason. Pulumi.yaml declares the same defaults for the
// CLI; a test keeps the two identical.

/** Kubernetes minors this program knows how to install and upgrade (kubeadm config API, package repository). */
export const supportedMinors = { min: "1.30", max: "1.37" } as const;

/** kubeadm's config API moved to v1beta4 in 1.31; earlier releases only read v1beta3. */
export const kubeadmV1beta4Since = "1.31.0";

/** The node OS: Ubuntu 24.04 LTS from Canonical's public SSM parameter (the AMI id is always current). */
export const ubuntuAmiParameter = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id";
/** The apiserver's secure port on every control plane (kubeadm's default); the AWS API load balancer listens on it too. */
export const apiserverPort = 6443;

/** Canonical's Ubuntu images log in as `ubuntu`; every step uses sudo. */
export const sshUser = "ubuntu";

export const defaults = {
  /** A release inside the supported window; the dev stack pins its own. */
  kubernetesVersion: "1.35.9",
  /** Stacked etcd is kubeadm's default and needs no extra machines. */
  etcdTopology: "stacked",
  controlPlane: {
    /** Three members: etcd keeps quorum with one control plane down (an upgrade or a failure). */
    count: 3,
    /** kubeadm requires 2 vCPUs and 2 GiB on a control plane; m6i.large leaves room for etcd. */
    instanceType: "m6i.large",
    volumeGiB: 50,
  },
  workers: {
    count: 2,
    instanceType: "m6i.large",
    volumeGiB: 80,
    /** One worker drained at a time: the safest rolling upgrade for small clusters. */
    maxUnavailable: 1,
  },
  etcd: {
    /** External etcd: three members tolerate one failure. */
    count: 3,
    instanceType: "m6i.large",
    volumeGiB: 40,
    /** The etcd release kubeadm 1.34+ pairs with; external members run the official release tarball. */
    version: "3.6.6",
  },
  network: {
    vpcCidr: "10.0.0.0/16",
    /** Up to three AZs: one control plane each keeps a zone failure from costing etcd quorum. */
    availabilityZones: 3,
    /** Disjoint from the VPC and the service range; both CNIs accept it. */
    podCidr: "10.244.0.0/16",
    serviceCidr: "10.96.0.0/12",
  },
  apiAccess: {
    /** Nobody outside the VPC reaches the API until the operator lists their ranges. */
    allowedCidrs: [] as string[],
    /** An internal NLB: the API is reachable only from the VPC (and peered networks). */
    internal: true,
    /** Ranges that together reach (nearly) the whole internet need this explicit opt-in (see configLimits). */
    allowOpenToWorld: false,
  },
  ssh: {
    /** SSH reaches only the bastion, and only from these ranges. */
    allowedCidrs: [] as string[],
    /** Opening SSH to 0.0.0.0/0 needs this explicit opt-in. */
    allowOpenToWorld: false,
  },
  cni: {
    /** Cilium: eBPF datapath, kube-proxy compatible, one Helm chart. */
    name: "cilium",
    /**
     * Helm chart version by CNI when cni.version is not set (cilium: helm.cilium.io; calico: tigera-operator;
     * flannel: flannel-io.github.io/flannel, the chart/kube-flannel directory of its Go module).
     */
    versions: { cilium: "1.18.4", calico: "v3.30.3", flannel: "v0.28.10" },
  },
  snapshots: {
    /** Every 6 hours (systemd OnCalendar): an hour-old cluster state is at most 6 hours behind. */
    schedule: "*-*-* 00/6:00:00",
    /** Five local snapshots cover a day of the schedule plus upgrade snapshots, in a few hundred MB. */
    keep: 5,
    /** S3 keeps a month of snapshots. */
    retentionDays: 30,
  },
  /** HAProxy on static control planes listens on its own port: each apiserver already binds 6443. */
  haproxyPort: 8443,
  /** SSH on existing hosts. */
  staticHost: { user: "ubuntu", port: 22 },
} as const;

/** Where the program's files live on every node. */
export const nodePaths = {
  /** Secrets and configs the steps hand to kubeadm: root-only. */
  stateDir: "/etc/kubeadm-ha",
  kubeadmConfig: "/etc/kubeadm-ha/kubeadm.yaml",
  adminKubeconfig: "/etc/kubernetes/admin.conf",
} as const;

/** Bounds for node steps: every wait in a script is bounded by one of these (seconds). */
export const stepTimeouts = {
  /** cloud-init on a fresh Ubuntu image finishes in 1-3 minutes. */
  cloudInit: 600,
  /** apt-get on a slow mirror. */
  apt: 600,
  /** kubeadm init pulls images and waits for the control plane. */
  kubeadmInit: 900,
  kubeadmJoin: 900,
  /** A node turns Ready once the CNI runs on it. */
  nodeReady: 600,
  /** etcd health across all members. */
  etcdHealth: 300,
} as const;

/**
 * Bounds of config values, each with its reason. Validation checks every bound before it builds anything from a
 * value (a node list, a rule per range), so an absurd value fails in milliseconds with a message naming its key.
 */
export const configLimits = {
  /**
   * Workers per cluster. Each worker is six resources (its machine, prepare, join and the upgrade's drain, upgrade,
   * uncordon), every one of its steps runs over SSH through the one bastion, and Pulumi holds the whole stack in
   * memory: measured offline here, 500 workers plan in 10 s within 1 GiB, 1,000 in 21 s at 1.8 GiB (close to
   * Node's default heap on small machines). A larger fleet is several clusters.
   */
  maxWorkers: 500,
  /**
   * Ranges in `apiAccess.allowedCidrs` or `ssh.allowedCidrs`: each is one ingress rule, and AWS allows 60 inbound
   * rules per security group by default (the load balancer's group also has the nodes' rules).
   */
  maxAllowedCidrs: 50,
  /**
   * Public (internet) addresses an allowed-ranges list may reach without the `allowOpenToWorld` opt-in: one /8, the
   * largest block any single organisation holds. Wider is "the internet" in all but name.
   */
  maxPublicAddresses: 2 ** 24,
  /** Local snapshots per member: each is the whole etcd database (up to its 2-8 GiB quota) on the member's disk. */
  maxSnapshotsKept: 100,
  /** S3 retention: ten years. */
  maxRetentionDays: 3650,
  /** Names in `maintenance`: at most every node of the largest cluster. */
  maxMaintenance: 7 + 500,
} as const;
