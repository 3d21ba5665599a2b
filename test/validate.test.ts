import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkTopologyChange } from "../infra/deployedState";
import { validateConfig } from "../infra/validate";

/** A complete, valid raw config; each test breaks one thing. */
const valid = () => ({
  kubernetesVersion: "1.35.9",
  etcdTopology: "stacked",
  controlPlane: { count: 3, instanceType: "m6i.large", volumeGiB: 50 },
  workers: { count: 2, instanceType: "m6i.large", volumeGiB: 80, maxUnavailable: 1 },
  network: { vpcCidr: "10.0.0.0/16", podCidr: "10.244.0.0/16", serviceCidr: "10.96.0.0/12" },
  apiAccess: { allowedCidrs: ["198.51.100.0/24"], internal: false },
  ssh: { allowedCidrs: ["198.51.100.0/24"] },
  cni: { name: "cilium" },
});

function problems(mutate: (c: any) => void): string[] {
  const c: any = valid();
  mutate(c);
  return validateConfig(c).problems.map((p) => `${p.path}: ${p.message}`);
}

test("a valid config passes and gets its defaults", (t) => {
  const r = validateConfig(valid());
  t.deepEqual(r.problems, []);
  if (!("config" in r)) return t.fail();
  t.is(r.config.cni.version, "1.18.4");
  t.is(r.config.network.availabilityZoneCount, 3);
});

test("even control-plane count with stacked etcd is rejected", (t) => {
  t.deepEqual(problems((c) => (c.controlPlane.count = 4)), [
    "controlPlane.count: must be odd with stacked etcd (each control plane is an etcd member; 4 members tolerate no more failures than 3), got 4",
  ]);
});

test("control-plane count 0 and above 7 are rejected", (t) => {
  t.deepEqual(problems((c) => (c.controlPlane.count = 0)), ["controlPlane.count: must be between 1 and 7, got 0"]);
  t.deepEqual(problems((c) => (c.controlPlane.count = 9)), ["controlPlane.count: must be between 1 and 7, got 9"]);
});

test("negative workers are rejected", (t) => {
  t.deepEqual(problems((c) => (c.workers.count = -1)), ["workers.count: must be 0 or more, got -1"]);
});

test("maxUnavailable below 1 is rejected", (t) => {
  t.deepEqual(problems((c) => (c.workers.maxUnavailable = 0)), ["workers.maxUnavailable: must be at least 1 (workers drained at a time during an upgrade), got 0"]);
});

test("a version that is not x.y.z is rejected", (t) => {
  t.deepEqual(problems((c) => (c.kubernetesVersion = "v1.35")), ['kubernetesVersion: must be a Kubernetes release like 1.35.9 (x.y.z, no "v"), got "v1.35"']);
});

test("a version outside the supported minors is rejected", (t) => {
  t.deepEqual(problems((c) => (c.kubernetesVersion = "1.29.4")), ["kubernetesVersion: 1.29.4 is outside the supported minors 1.30 to 1.37"]);
  t.deepEqual(problems((c) => (c.kubernetesVersion = "1.38.0")), ["kubernetesVersion: 1.38.0 is outside the supported minors 1.30 to 1.37"]);
});

test("malformed CIDRs are rejected", (t) => {
  t.deepEqual(problems((c) => (c.network.podCidr = "10.244.0.0/33")), ['network.podCidr: must be an IPv4 CIDR like 10.0.0.0/16 (network address, no host bits), got "10.244.0.0/33"']);
  t.deepEqual(problems((c) => (c.network.vpcCidr = "10.0.0.1/16")), ['network.vpcCidr: must be an IPv4 CIDR like 10.0.0.0/16 (network address, no host bits), got "10.0.0.1/16"']);
  t.deepEqual(problems((c) => (c.apiAccess.allowedCidrs = ["not-a-cidr"])), ['apiAccess.allowedCidrs[0]: must be an IPv4 CIDR, got "not-a-cidr"']);
});

test("overlapping pod, service and VPC ranges are rejected", (t) => {
  t.deepEqual(problems((c) => (c.network.podCidr = "10.0.128.0/17")), [
    "network.podCidr: 10.0.128.0/17 overlaps network.vpcCidr (10.0.0.0/16); pod, service and VPC ranges must be disjoint",
  ]);
  t.deepEqual(problems((c) => (c.network.serviceCidr = "10.244.0.0/20")), [
    "network.serviceCidr: 10.244.0.0/20 overlaps network.podCidr (10.244.0.0/16); pod, service and VPC ranges must be disjoint",
  ]);
});

test("an unknown topology is rejected", (t) => {
  t.deepEqual(problems((c) => (c.etcdTopology = "sidecar")), ['etcdTopology: must be one of "stacked", "external", got "sidecar"']);
});

test("an unknown CNI is rejected", (t) => {
  t.deepEqual(problems((c) => (c.cni.name = "weave")), ['cni.name: must be one of "cilium", "calico", "flannel", got "weave"']);
});

test("empty instance types are rejected", (t) => {
  t.deepEqual(problems((c) => (c.workers.instanceType = " ")), ["workers.instanceType: must not be empty"]);
  t.deepEqual(problems((c) => (c.controlPlane.instanceType = "")), ["controlPlane.instanceType: must not be empty"]);
});

test("SSH open to 0.0.0.0/0 needs the explicit opt-in", (t) => {
  t.deepEqual(problems((c) => (c.ssh.allowedCidrs = ["0.0.0.0/0"])), [
    "ssh.allowedCidrs: 0.0.0.0/0 covers the whole IPv4 space: SSH to the bastion would be open to the entire internet; list your own ranges, or set ssh.allowOpenToWorld: true to accept that",
  ]);
  t.deepEqual(problems((c) => (c.ssh = { allowedCidrs: ["0.0.0.0/0"], allowOpenToWorld: true })), []);
});

test("SSH ranges are required: every step goes through the bastion", (t) => {
  t.deepEqual(problems((c) => (c.ssh.allowedCidrs = [])), ["ssh.allowedCidrs: must list the ranges `pulumi up` runs from: every node step reaches its node over SSH through the bastion"]);
});

test("an operator key pair needs both halves", (t) => {
  t.deepEqual(problems((c) => (c.ssh.publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOffline op@host")), [
    "sshPrivateKey: is required with ssh.publicKey: set it with `pulumi config set --secret sshPrivateKey < key`",
  ]);
});

test("unknown keys are rejected, naming them", (t) => {
  t.deepEqual(problems((c) => (c.controlPlanes = { count: 3 })), [
    "controlPlanes: unknown key; known keys: kubernetesVersion, etcdTopology, controlPlane, workers, etcd, network, apiAccess, ssh, cni, maintenance, hosts, apiEndpoint, snapshots, restore, certificates, images, packages, kubelet, addons, sshPrivateKey",
  ]);
});

test("every problem is reported at once", (t) => {
  const all = problems((c) => {
    c.controlPlane.count = 2;
    c.workers.count = -3;
    c.cni.name = "weave";
  });
  t.deepEqual(all.map((p) => p.split(":")[0]), ["controlPlane.count", "workers.count", "cni.name"]);
});

// External etcd (issue 3).
const external = (c: any) => {
  c.etcdTopology = "external";
  c.etcd = { count: 3 };
};

test("external etcd: an even or out-of-range member count is rejected", (t) => {
  t.deepEqual(problems((c) => (external(c), (c.etcd.count = 4))), ["etcd.count: must be odd and between 1 and 7 (an even member count adds no fault tolerance), got 4"]);
  t.deepEqual(problems((c) => (external(c), (c.etcd.count = 9))), ["etcd.count: must be odd and between 1 and 7 (an even member count adds no fault tolerance), got 9"]);
});

test("external etcd: a malformed etcd version is rejected", (t) => {
  t.deepEqual(problems((c) => (external(c), (c.etcd.version = "3.5"))), ['etcd.version: must be an etcd release like 3.5.16 (x.y.z), got "3.5"']);
});

test("etcd settings with the stacked topology are rejected, naming the key", (t) => {
  t.deepEqual(problems((c) => (c.etcd = { count: 3 })), [
    'etcd: etcd settings apply only to etcdTopology "external"; with "stacked", etcd runs on the control planes (remove the etcd key or set etcdTopology: external)',
  ]);
});

test("external etcd allows an even control-plane count", (t) => {
  t.deepEqual(problems((c) => (external(c), (c.controlPlane.count = 2))), []);
});

// Node lifecycle (issue 6).
test("maintenance names must be nodes of this cluster", (t) => {
  t.deepEqual(problems((c) => (c.maintenance = ["worker-1", "worker-7"])), ['maintenance[1]: "worker-7" is not a node of this cluster (nodes: cp-0, cp-1, cp-2, worker-0, worker-1)']);
  t.deepEqual(problems((c) => (c.maintenance = ["cp-2", "worker-0"])), []);
});

// Snapshots and restore (issue 5).
test("snapshot and restore settings are checked", (t) => {
  t.deepEqual(problems((c) => (c.snapshots = { keep: 0, requestId: "now please" })), [
    "snapshots.keep: must be at least 1, got 0",
    "snapshots.requestId: must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  ]);
  t.deepEqual(problems((c) => (c.restore = { snapshot: "backup.db" })), [
    'restore.snapshot: must be an s3://bucket/key URI or an absolute path, got "backup.db"',
    "restore.requestId: is required: a new value runs the restore once",
  ]);
  t.deepEqual(problems((c) => (c.restore = { snapshot: "s3://my-bucket/etcd/cp-0.db", requestId: "r1" })), []);
});

// Issue 14 item 3: an etcd snapshot restores only the cluster it came from.
test("a declared restore of another cluster's snapshot is refused, naming restore.snapshot: S3 only under this stack's own prefix; member paths are the cluster's own", (t) => {
  const own = { clusterName: "kubeadm-ha-dev" };
  const restoring = (snapshot: string, more: (c: any) => void = () => {}) => {
    const c: any = valid();
    c.restore = { snapshot, requestId: "incident-42" };
    more(c);
    return validateConfig(c, own).problems;
  };
  // Another stack's key (same project), another project's, a key outside any etcd prefix: refused.
  for (const snapshot of [
    "s3://team-backups/kubeadm-ha-prod/etcd/etcd-cp-0-20250101T000000.000Z-scheduled.db",
    "s3://team-backups/other-dev/etcd/etcd-cp-0-20250101T000000.000Z-scheduled.db",
    "s3://team-backups/kubeadm-ha-dev2/etcd/etcd-cp-0-20250101T000000.000Z-scheduled.db",
    "s3://team-backups/etcd/cp-0.db",
  ]) {
    const p = restoring(snapshot);
    t.deepEqual(p.map((x) => x.path), ["restore.snapshot"], snapshot);
    t.regex(p[0].message, /is not a snapshot of this cluster \(kubeadm-ha-dev\), whose snapshots are under s3:\/\/<its snapshot bucket>\/kubeadm-ha-dev\/etcd\//, snapshot);
    t.regex(p[0].message, /restores only the cluster it came from/);
    t.regex(p[0].message, /build the new cluster and move the workloads with their manifests or Velero-style backups/);
    t.notRegex(p[0].message, /new stack|restore the snapshot there/);
  }
  // This stack's own prefix: allowed; with snapshots.bucket set, only in that bucket.
  t.deepEqual(restoring("s3://team-backups/kubeadm-ha-dev/etcd/etcd-cp-0-20250101T000000.000Z-scheduled.db"), []);
  t.deepEqual(restoring("s3://team-backups/kubeadm-ha-dev/etcd/x.db", (c) => (c.snapshots = { bucket: "team-backups" })), []);
  const otherBucket = restoring("s3://elsewhere/kubeadm-ha-dev/etcd/x.db", (c) => (c.snapshots = { bucket: "team-backups" }));
  t.deepEqual(otherBucket.map((x) => x.path), ["restore.snapshot"]);
  t.regex(otherBucket[0].message, /under s3:\/\/team-backups\/kubeadm-ha-dev\/etcd\//);
  // A path on the members: this cluster's own by construction (the fetch phase still checks its sidecar).
  t.deepEqual(restoring("/var/backups/kubeadm-ha/etcd/etcd-cp-0-20250101T000000.000Z-scheduled.db"), []);
  // Without the cluster's name (a pure shape check) the old answer stands.
  t.deepEqual(validateConfig({ ...valid(), restore: { snapshot: "s3://team-backups/kubeadm-ha-prod/etcd/x.db", requestId: "r1" } }).problems, []);
});

// Static hosts (issue 7).
const lab = (c: any) => {
  delete c.controlPlane;
  delete c.workers;
  c.hosts = {
    provider: "static",
    controlPlanes: [{ name: "k8s-control", address: "192.0.2.10", privateAddress: "10.0.0.10" }],
    workers: [
      { name: "k8s-worker1", address: "192.0.2.11", privateAddress: "10.0.0.11" },
      { name: "k8s-worker2", address: "192.0.2.12", privateAddress: "10.0.0.12" },
    ],
  };
  c.apiEndpoint = { address: "10.0.0.10:6443" };
  c.sshPrivateKey = "[secret]";
  c.ssh = {};
  // No firewall rules exist on static hosts: allowed ranges there are refused (see below).
  delete c.apiAccess;
};

test("static hosts: a valid lab passes, counts come from the lists", (t) => {
  const c: any = valid();
  lab(c);
  const r = validateConfig(c);
  t.deepEqual(r.problems, []);
  if (!("config" in r)) return t.fail();
  t.is(r.config.controlPlane.count, 1);
  t.is(r.config.workers.count, 2);
  t.false(r.config.snapshots.upload, "no S3 upload by default on static hosts");
});

test("static hosts: bad names, addresses, duplicate hosts and a missing key or endpoint are rejected", (t) => {
  t.deepEqual(
    problems((c) => {
      lab(c);
      c.hosts.workers[0].name = "Worker_1";
      c.hosts.workers[1].privateAddress = "not-an-ip";
      c.hosts.controlPlanes.push({ name: "k8s-worker2", address: "192.0.2.13" });
      delete c.sshPrivateKey;
      delete c.apiEndpoint;
    }),
    [
      'hosts.workers[0].name: must be a lowercase DNS label (the Kubernetes node name), got "Worker_1"',
      'hosts.workers[1].privateAddress: must be the node\'s IPv4 address on the cluster network, got "not-an-ip"',
      'hosts: names the host "k8s-worker2" twice',
      "controlPlane.count: must be odd with stacked etcd (each control plane is an etcd member; 2 members tolerate no more failures than 1), got 2",
      "sshPrivateKey: is required with static hosts: the key every step logs in with (`pulumi config set --secret sshPrivateKey < key`)",
      "apiEndpoint: static hosts need an API endpoint: address (an existing load balancer, host:port) or haproxy: true with virtualIp",
    ],
  );
});

test("static hosts: the lists decide the counts, and HAProxy on 6443 is rejected", (t) => {
  const c: any = valid();
  lab(c);
  c.workers = { count: 5, maxUnavailable: 2 };
  const r = validateConfig(c);
  t.true("config" in r && r.config.workers.count === 2 && r.config.workers.maxUnavailable === 2);
  t.deepEqual(problems((x) => (lab(x), (x.apiEndpoint = { haproxy: true, virtualIp: "10.0.0.100", port: 6443 }))), [
    "apiEndpoint.port: must not be 6443: every control plane's apiserver already listens there",
  ]);
});

test("apiEndpoint is rejected on AWS, where the program builds the load balancer", (t) => {
  t.deepEqual(problems((c) => (c.apiEndpoint = { address: "lb:6443" })), ["apiEndpoint: applies only to static hosts; on AWS the program builds the API load balancer (see apiAccess)"]);
});

test("certificates.renewBeforeDays: a whole number from 1 to 364, default 30; unknown sub-keys refused", (t) => {
  const ok = validateConfig({ ...valid(), certificates: { renewBeforeDays: 60 } });
  t.deepEqual(ok.problems, []);
  t.is("config" in ok && ok.config?.certificates.renewBeforeDays, 60);
  const d = validateConfig(valid());
  t.is("config" in d && d.config?.certificates.renewBeforeDays, 30);
  for (const bad of [0, 365, 1.5, "soon"]) {
    const r = validateConfig({ ...valid(), certificates: { renewBeforeDays: bad } });
    t.true(r.problems.some((p) => p.path === "certificates.renewBeforeDays"), JSON.stringify(bad));
  }
  t.true(validateConfig({ ...valid(), certificates: { renewBefore: 10 } }).problems.some((p) => p.path.startsWith("certificates")));
});

test("nothing offers a restore into a new stack or a topology move by snapshot; the README and the refusal say what works", (t) => {
  const root = join(__dirname, "..");
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const offers = /fresh stack|restore the snapshot there|Restoring into a (fresh|new) stack|moving between topologies/i;
  for (const file of ["README.md", "Pulumi.yaml", "infra/deployedState.ts", "infra/validate.ts", "lifecycle/scripts/restoreSnapshot.ts"]) {
    t.notRegex(readFileSync(join(root, file), "utf8"), offers, file);
  }
  t.regex(readme, /\*\*A snapshot restores the cluster it came from, and nothing else\.\*\*/);
  t.regex(readme, /There is no restore into a new stack, and no topology move by snapshot\. For a lost cluster, a new cluster or another\s+topology: build the new cluster \(its own stack\) and move the workloads to it with their manifests/);
  t.regex(readme, /An etcd snapshot does not carry a cluster to another\s+topology either/);
  const [topology] = checkTopologyChange("stacked", "external");
  t.is(topology.path, "etcdTopology");
  t.regex(topology.message, /an etcd snapshot restores only the cluster it came from/);
  t.regex(topology.message, /build a new cluster with etcdTopology: external \(its own stack\) and move the workloads to it with their manifests or Velero-style backups/);
  t.notRegex(topology.message, /take a snapshot|restore the snapshot there/);
});
