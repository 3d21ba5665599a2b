import test from "ava";
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
  t.deepEqual(problems((c) => (c.cni.name = "flannel")), ['cni.name: must be one of "cilium", "calico", got "flannel"']);
});

test("empty instance types are rejected", (t) => {
  t.deepEqual(problems((c) => (c.workers.instanceType = " ")), ["workers.instanceType: must not be empty"]);
  t.deepEqual(problems((c) => (c.controlPlane.instanceType = "")), ["controlPlane.instanceType: must not be empty"]);
});

test("SSH open to 0.0.0.0/0 needs the explicit opt-in", (t) => {
  t.deepEqual(problems((c) => (c.ssh.allowedCidrs = ["0.0.0.0/0"])), [
    "ssh.allowedCidrs[0]: 0.0.0.0/0 opens SSH to the whole internet; list your own ranges, or set ssh.allowOpenToWorld: true to accept that",
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
    "controlPlanes: unknown key; known keys: kubernetesVersion, etcdTopology, controlPlane, workers, etcd, network, apiAccess, ssh, cni, sshPrivateKey",
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
