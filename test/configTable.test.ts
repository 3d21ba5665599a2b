// Bad configurations, as an operator would set them: `npm run plan -- --set KEY=VALUE` on the dev (AWS) or lab
// (static hosts) stack. Each one must fail validation naming its key — the validation function directly, and the
// plan command: exit code 1, the problem on its own line, no stack trace — before anything is built from it.
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { RawConfig, isUnset, parseConfigValue, projectName, secretPresent } from "../infra/config";
import { validateConfig } from "../infra/validate";
import { devConfig, projectDir } from "./support/program";

interface BadConfig {
  /** What is wrong, in words. */
  what: string;
  stack?: "dev" | "lab";
  sets: string[];
  /** The key the problem names. */
  path: string;
  /** A fragment of the message. */
  says: RegExp;
  /** Also run through `npm run plan` (one process each: a representative few, not the whole table). */
  cli?: true;
}

const external = ["etcdTopology=external", "etcd={count: 3}"];
const existingVpc = "network={vpcId: vpc-0123456789abcdef0, privateSubnetIds: [subnet-0123456789abcdef0], publicSubnetIds: [subnet-0123456789abcdef1]}";
const ownKey = (key: string) => [`ssh.publicKey=${JSON.stringify(key)}`, "sshPrivateKey=not-shown"];
const labWorkers = (...hosts: string[]) => `hosts.workers=[${hosts.join(", ")}]`;
const haproxy = (extra: string) => `apiEndpoint={haproxy: true, virtualIp: 192.168.56.100${extra}}`;
const goodHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ0YjtG0YzUKCFd0sbIH76PJ0Kc8lF2QOD7HXMvJvHc";
const rsaHostKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7";
const many = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join(", ");

const badConfigs: BadConfig[] = [
  // Bounds first: absurd sizes fail at once, naming the key.
  { cli: true, what: "a billion control planes", sets: ["controlPlane.count=1e9"], path: "controlPlane.count", says: /between 1 and 7, got 1000000000/ },
  { cli: true, what: "100,000 workers", sets: ["workers.count=100000"], path: "workers.count", says: /at most 500, got 100000: each worker is six resources/ },
  { what: "one worker over the bound", sets: ["workers.count=501"], path: "workers.count", says: /at most 500/ },
  { what: "negative workers", sets: ["workers.count=-1"], path: "workers.count", says: /0 or more/ },
  { cli: true, what: "a fractional count", sets: ["controlPlane.count=2.5"], path: "controlPlane.count", says: /whole number, got 2.5/ },
  { what: "a count in words", sets: ["controlPlane.count=three"], path: "controlPlane.count", says: /whole number, got "three"/ },
  { what: "a count beyond safe integers", sets: ["workers.count=1e300"], path: "workers.count", says: /whole number/ },
  { what: "an even stacked control plane", sets: ["controlPlane.count=4"], path: "controlPlane.count", says: /must be odd with stacked etcd/ },
  { what: "a tiny root volume", sets: ["controlPlane.volumeGiB=4"], path: "controlPlane.volumeGiB", says: /between 8 and 16384/ },
  { what: "no worker drained at a time", sets: ["workers.maxUnavailable=0"], path: "workers.maxUnavailable", says: /at least 1/ },
  { what: "an absurd maxUnavailable", sets: ["workers.maxUnavailable=1e9"], path: "workers.maxUnavailable", says: /at most 500/ },
  { what: "a spaced instance type", sets: ["controlPlane.instanceType=m6i large"], path: "controlPlane.instanceType", says: /EC2 instance type like m6i.large/ },
  { what: "a Graviton instance type", sets: ["workers.instanceType=m7g.large"], path: "workers.instanceType", says: /arm64 \(Graviton\)/ },
  { what: "an unknown topology", sets: ["etcdTopology=sidecar"], path: "etcdTopology", says: /"stacked", "external"/ },
  { what: "a v-prefixed version", sets: ["kubernetesVersion=v1.35.0"], path: "kubernetesVersion", says: /no "v"/ },
  { what: "an unsupported minor", sets: ["kubernetesVersion=1.29.4"], path: "kubernetesVersion", says: /outside the supported minors/ },
  { what: "etcd settings with stacked etcd", sets: ["etcd={count: 3}"], path: "etcd", says: /apply only to etcdTopology "external"/ },
  { what: "an even external etcd", sets: [...external, "etcd={count: 4}"], path: "etcd.count", says: /odd/ },
  { what: "a short etcd version", sets: [...external, "etcd={count: 3, version: '3.5'}"], path: "etcd.version", says: /x\.y\.z/ },
  // Network.
  { what: "a /8 VPC", sets: ["network.vpcCidr=10.0.0.0/8"], path: "network.vpcCidr", says: /\/16 to \/22/ },
  { what: "pods inside the VPC", sets: ["network.podCidr=10.0.128.0/17"], path: "network.podCidr", says: /overlaps network.vpcCidr/ },
  { what: "host bits in a CIDR", sets: ["network.serviceCidr=10.96.0.1/12"], path: "network.serviceCidr", says: /no host bits/ },
  { cli: true, what: "a zone twice", sets: ["network.availabilityZones=[eu-west-1a, eu-west-1a]"], path: "network.availabilityZones[1]", says: /listed twice/ },
  { what: "a zone name in capitals", sets: ["network.availabilityZones=[EU-WEST-1A]"], path: "network.availabilityZones[0]", says: /availability zone name/ },
  { what: "five zones", sets: ["network.availabilityZones=5"], path: "network.availabilityZones", says: /1 to 3 zones/ },
  { what: "four zone names", sets: ["network.availabilityZones=[eu-west-1a, eu-west-1b, eu-west-1c, eu-west-1d]"], path: "network.availabilityZones", says: /1 to 3 zones/ },
  { what: "a VPC without subnets", sets: ["network={vpcId: vpc-0123456789abcdef0}"], path: "network.privateSubnetIds", says: /private subnets of network.vpcId/ },
  { cli: true, what: "a VPC without a public subnet", sets: ["network={vpcId: vpc-0123456789abcdef0, privateSubnetIds: [subnet-0123456789abcdef0]}"], path: "network.publicSubnetIds", says: /the bastion runs there/ },
  { what: "a malformed VPC id", sets: [existingVpc, "network.vpcId=my-vpc"], path: "network.vpcId", says: /vpc-0123456789abcdef0/ },
  { what: "a malformed subnet id", sets: [existingVpc, "network.privateSubnetIds=[subnet-xyz]"], path: "network.privateSubnetIds[0]", says: /subnet id/ },
  { what: "a subnet both private and public", sets: [existingVpc, "network.publicSubnetIds=[subnet-0123456789abcdef0]"], path: "network.publicSubnetIds[0]", says: /also network.privateSubnetIds\[0\]/ },
  { what: "subnets without a VPC", sets: ["network.privateSubnetIds=[subnet-0123456789abcdef0]"], path: "network.vpcId", says: /required when subnet ids are given/ },
  { what: "zone names with an existing VPC", sets: [existingVpc, "network.availabilityZones=[eu-west-1a]"], path: "network.availabilityZones", says: /zones are those of the given subnets/ },
  // World-open guards.
  { what: "the API open to 0.0.0.0/0", sets: ["apiAccess.allowedCidrs=[0.0.0.0/0]"], path: "apiAccess.allowedCidrs", says: /whole IPv4 space: the Kubernetes API .* set apiAccess.allowOpenToWorld: true/ },
  { cli: true, what: "the API open to two halves of the internet", sets: ["apiAccess.allowedCidrs=[0.0.0.0/1, 128.0.0.0/1]"], path: "apiAccess.allowedCidrs", says: /together cover the whole IPv4 space/ },
  { what: "the API open to a quarter of the internet", sets: ["apiAccess.allowedCidrs=[64.0.0.0/2]"], path: "apiAccess.allowedCidrs", says: /more than one \/8 .* apiAccess.allowOpenToWorld: true/ },
  { what: "the API open to many wide blocks", sets: [`apiAccess.allowedCidrs=[${many(16, (i) => `${(i + 16) * 4}.0.0.0/7`)}]`], path: "apiAccess.allowedCidrs", says: /together reach/ },
  { cli: true, what: "SSH open to two halves of the internet", sets: ["ssh.allowedCidrs=[0.0.0.0/1, 128.0.0.0/1]"], path: "ssh.allowedCidrs", says: /SSH to the bastion .* set ssh.allowOpenToWorld: true/ },
  { what: "SSH open to 50 /8s", sets: [`ssh.allowedCidrs=[${many(50, (i) => `${i + 1}.0.0.0/8`)}]`], path: "ssh.allowedCidrs", says: /public addresses, more than one \/8/ },
  { what: "SSH open to a /3", sets: ["ssh.allowedCidrs=[64.0.0.0/3]"], path: "ssh.allowedCidrs", says: /ssh.allowOpenToWorld/ },
  { what: "no SSH ranges on AWS", sets: ["ssh.allowedCidrs=[]"], path: "ssh.allowedCidrs", says: /must list the ranges `pulumi up` runs from/ },
  { what: "a range twice", sets: ["ssh.allowedCidrs=[198.51.100.0/24, 198.51.100.0/24]"], path: "ssh.allowedCidrs[1]", says: /listed twice/ },
  { what: "more ranges than a security group holds", sets: [`apiAccess.allowedCidrs=[${many(51, (i) => `198.51.${i}.0/24`)}]`], path: "apiAccess.allowedCidrs", says: /at most 50 .*60 inbound rules/ },
  { what: "a /33", sets: ["apiAccess.allowedCidrs=[10.0.0.0/33]"], path: "apiAccess.allowedCidrs[0]", says: /IPv4 CIDR/ },
  { what: "internal as a word", sets: ["apiAccess.internal=maybe"], path: "apiAccess.internal", says: /true or false/ },
  { what: "a misspelt opt-in", sets: ["apiAccess.allowOpenToTheWorld=true"], path: "apiAccess.allowOpenToTheWorld", says: /unknown key; known keys of apiAccess/ },
  // SSH keys.
  { cli: true, what: "a public key with a trailing line", sets: ownKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOffline op@host\nrm -rf /"), path: "ssh.publicKey", says: /single line/ },
  { what: "not a public key", sets: ownKey("hunter2"), path: "ssh.publicKey", says: /key type must be one of ssh-ed25519, ssh-rsa/ },
  { what: "an ECDSA key pair EC2 cannot import", sets: ownKey("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY="), path: "ssh.publicKey", says: /ssh-ed25519, ssh-rsa/ },
  { what: "a key whose data is another type", sets: ownKey("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"), path: "ssh.publicKey", says: /does not hold a ssh-ed25519 key/ },
  { what: "a private key without its public half", sets: ["sshPrivateKey=not-shown"], path: "ssh.publicKey", says: /required with sshPrivateKey/ },
  // CNI.
  { what: "an unknown CNI", sets: ["cni.name=weave"], path: "cni.name", says: /"cilium", "calico"/ },
  { what: "a v-prefixed Cilium chart", sets: ["cni.version=v1.18.4"], path: "cni.version", says: /1\.x\.y, no "v"/ },
  { cli: true, what: "a Calico chart without its v", sets: ["cni={name: calico, version: 3.30.3}"], path: "cni.version", says: /v3\.x\.y, with the "v"/ },
  { what: "a floating chart version", sets: ["cni.version=latest"], path: "cni.version", says: /Cilium chart version/ },
  // Snapshots and restore.
  { cli: true, what: "keep 1e21 snapshots", sets: ["snapshots.keep=1e21"], path: "snapshots.keep", says: /whole number/ },
  { what: "keep a thousand snapshots", sets: ["snapshots.keep=1000"], path: "snapshots.keep", says: /at most 100/ },
  { what: "keep no snapshot", sets: ["snapshots.keep=0"], path: "snapshots.keep", says: /at least 1/ },
  { what: "a retention of centuries", sets: ["snapshots.retentionDays=100000"], path: "snapshots.retentionDays", says: /at most 3650/ },
  { what: "a schedule in words", sets: ["snapshots.schedule=every day"], path: "snapshots.schedule", says: /"every" is not a weekday/ },
  { what: "hour 25", sets: ["snapshots.schedule='*-*-* 25:00'"], path: "snapshots.schedule", says: /hour 25 is outside 0-23/ },
  { what: "a repetition of zero", sets: ["snapshots.schedule='*-*-* 00/0:00:00'"], path: "snapshots.schedule", says: /step from 1/ },
  { cli: true, what: "a day no month has", sets: ["snapshots.schedule='*-02-30 00:00'"], path: "snapshots.schedule", says: /never run/ },
  { what: "a schedule with a quote", sets: [`snapshots.schedule="daily'"`], path: "snapshots.schedule", says: /only letters, digits/ },
  { cli: true, what: "a wildcard bucket", sets: ["snapshots.bucket='*'"], path: "snapshots.bucket", says: /S3 bucket name/ },
  { what: "a bucket name in capitals", sets: ["snapshots.bucket=My_Bucket"], path: "snapshots.bucket", says: /lowercase/ },
  { what: "a two-letter bucket", sets: ["snapshots.bucket=ab"], path: "snapshots.bucket", says: /3 to 63 characters/ },
  { what: "a request id like an option", sets: ["snapshots.requestId=-rf"], path: "snapshots.requestId", says: /starting with a letter or digit/ },
  { what: "a KMS alias instead of a key ARN", sets: ["snapshots.kmsKeyId=alias/etcd"], path: "snapshots.kmsKeyId", says: /KMS key ARN/ },
  { what: "a snapshot key with a space", sets: ["restore={snapshot: 's3://my-bucket/etcd/a b.db', requestId: r1}"], path: "restore.snapshot", says: /key of letters, digits/ },
  { cli: true, what: "a snapshot path climbing out", sets: ["restore={snapshot: /var/backups/../../etc/shadow, requestId: r1}"], path: "restore.snapshot", says: /must not contain "\.\."/ },
  { what: "a wildcard snapshot bucket", sets: ["restore={snapshot: 's3://*/x.db', requestId: r1}"], path: "restore.snapshot", says: /bucket "\*"/ },
  { what: "a snapshot directory", sets: ["restore={snapshot: /var/backups/etcd/, requestId: r1}"], path: "restore.snapshot", says: /not a directory/ },
  { what: "a relative snapshot", sets: ["restore={snapshot: backup.db, requestId: r1}"], path: "restore.snapshot", says: /absolute path/ },
  { what: "a restore id like an option", sets: ["restore={snapshot: /x.db, requestId: -x}"], path: "restore.requestId", says: /starting with a letter or digit/ },
  { what: "a restore without a snapshot", sets: ["restore={requestId: r1}"], path: "restore.snapshot", says: /is required/ },
  { what: "a restore as a string", sets: ["restore=s3://b/x.db"], path: "restore", says: /must be an object/ },
  { cli: true, what: "another stack's snapshot", sets: ["restore={snapshot: 's3://team-backups/kubeadm-ha-prod/etcd/etcd-cp-0-20250101T000000.000Z-scheduled.db', requestId: r1}"], path: "restore.snapshot", says: /is not a snapshot of this cluster \(kubeadm-ha-dev\).*restores only the cluster it came from/ },
  { what: "a snapshot from another bucket", sets: ["snapshots.bucket=team-backups", "restore={snapshot: 's3://elsewhere/kubeadm-ha-dev/etcd/x.db', requestId: r1}"], path: "restore.snapshot", says: /whose snapshots are under s3:\/\/team-backups\/kubeadm-ha-dev\/etcd\// },
  { what: "an S3 snapshot on static hosts that upload none", stack: "lab", sets: ["restore={snapshot: 's3://team-backups/kubeadm-ha-lab/etcd/x.db', requestId: r1}"], path: "restore.snapshot", says: /this stack uploads no snapshots/ },
  // Maintenance.
  { cli: true, what: "two of three control planes in maintenance", sets: ["maintenance=[cp-0, cp-1]"], path: "maintenance", says: /holds 2 of 3 control planes .* at most 1/ },
  { what: "every worker in maintenance", sets: ["maintenance=[worker-0, worker-1]"], path: "maintenance", says: /drain every worker at once/ },
  { what: "an unknown node in maintenance", sets: ["maintenance=[worker-9]"], path: "maintenance[0]", says: /not a node of this cluster/ },
  { what: "a node twice in maintenance", sets: ["workers.count=3", "maintenance=[worker-0, worker-0]"], path: "maintenance", says: /twice/ },
  { what: "maintenance as a string", sets: ["maintenance=worker-0"], path: "maintenance", says: /list of strings/ },
  // Keys that do not belong.
  { what: "an API endpoint on AWS", sets: ["apiEndpoint={address: lb:6443}"], path: "apiEndpoint", says: /applies only to static hosts/ },
  { what: "host lists on AWS", sets: ["hosts={provider: aws, workers: []}"], path: "hosts.workers", says: /applies only to hosts.provider "static"/ },
  { cli: true, what: "a misspelt nested key", sets: ["controlPlane.cont=3"], path: "controlPlane.cont", says: /unknown key; known keys of controlPlane: count/ },
  { what: "a misspelt top-level key", sets: ["controlPlanes={count: 3}"], path: "controlPlanes", says: /unknown key; known keys: kubernetesVersion/ },
  { what: "an object as a string", sets: ["workers=lots"], path: "workers", says: /must be an object/ },
  // Static hosts (the lab stack).
  { cli: true, what: "two hosts at one address", stack: "lab", sets: [labWorkers("{name: w1, address: 192.168.56.11}", "{name: w2, address: 192.168.56.11, privateAddress: 192.168.56.12}")], path: "hosts.workers[1].address", says: /also hosts.workers\[0\].address: two hosts cannot be one machine/ },
  { what: "two hosts at one cluster address", stack: "lab", sets: [labWorkers("{name: w1, address: 192.0.2.1, privateAddress: 192.168.56.10}")], path: "hosts.workers[0].privateAddress", says: /also hosts.controlPlanes\[0\].privateAddress/ },
  { cli: true, what: "a host named cluster", stack: "lab", sets: [labWorkers("{name: cluster, address: 192.168.56.11}")], path: "hosts.workers[0].name", says: /reserved/ },
  { what: "a host name in capitals", stack: "lab", sets: [labWorkers("{name: Worker_1, address: 192.168.56.11}")], path: "hosts.workers[0].name", says: /DNS label/ },
  { cli: true, what: "a spaced SSH user", stack: "lab", sets: [labWorkers("{name: w1, address: 192.168.56.11, user: 'ubuntu admin'}")], path: "hosts.workers[0].user", says: /login name/ },
  { what: "an empty SSH user", stack: "lab", sets: [labWorkers("{name: w1, address: 192.168.56.11, user: ''}")], path: "hosts.workers[0].user", says: /login name/ },
  { what: "an SSH port out of range", stack: "lab", sets: [labWorkers("{name: w1, address: 192.168.56.11, port: 70000}")], path: "hosts.workers[0].port", says: /1-65535/ },
  { what: "an impossible IP address", stack: "lab", sets: [labWorkers("{name: w1, address: 192.168.56.311}")], path: "hosts.workers[0].address", says: /host name or IP address/ },
  { cli: true, what: "an RSA host key", stack: "lab", sets: [labWorkers(`{name: w1, address: 192.168.56.11, hostKey: '${rsaHostKey}'}`)], path: "hosts.workers[0].hostKey", says: /ssh-ed25519, ecdsa-sha2-nistp256/ },
  { what: "ssh-keyscan output with its host name", stack: "lab", sets: [labWorkers(`{name: w1, address: 192.168.56.11, hostKey: '192.168.56.11 ${goodHostKey}'}`)], path: "hosts.workers[0].hostKey", says: /drop the host name that ssh-keyscan prints first/ },
  { what: "a truncated ed25519 host key", stack: "lab", sets: [labWorkers("{name: w1, address: 192.168.56.11, hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOffline'}")], path: "hosts.workers[0].hostKey", says: /32-byte ed25519 key/ },
  { what: "a misspelt hostKey", stack: "lab", sets: [labWorkers(`{name: w1, address: 192.168.56.11, hostkey: '${goodHostKey}'}`)], path: "hosts.workers[0].hostkey", says: /unknown key; known keys of hosts.workers\[0\]: name, address, privateAddress, user, port, hostKey/ },
  { what: "a bastion with a spaced address", stack: "lab", sets: ["hosts.bastion={address: 'jump host'}"], path: "hosts.bastion.address", says: /host name or IP address/ },
  { what: "a bastion host key with a trailing line", stack: "lab", sets: [`hosts.bastion={address: jump.example, hostKey: "${goodHostKey}\\nssh-ed25519 AAAA"}`], path: "hosts.bastion.hostKey", says: /single line/ },
  { what: "a misspelt bastion key", stack: "lab", sets: [`hosts.bastion={address: jump.example, hostkey: '${goodHostKey}'}`], path: "hosts.bastion.hostkey", says: /unknown key; known keys of hosts.bastion/ },
  { what: "a bastion as a string", stack: "lab", sets: ["hosts.bastion=jump.example"], path: "hosts.bastion", says: /must be an object/ },
  { what: "no control plane", stack: "lab", sets: ["hosts.controlPlanes=[]"], path: "hosts.controlPlanes", says: /at least one control plane/ },
  { what: "a host as a string", stack: "lab", sets: [labWorkers("192.168.56.11")], path: "hosts.workers[0]", says: /must be a host/ },
  { cli: true, what: "more static workers than the bound", stack: "lab", sets: [labWorkers(many(501, (i) => `{name: w${i}, address: 10.1.${i >> 8}.${i & 255}}`))], path: "hosts.workers", says: /lists 501 hosts, at most 500/ },
  { cli: true, what: "a load balancer port out of range", stack: "lab", sets: ["apiEndpoint={address: '192.168.56.10:99999'}"], path: "apiEndpoint.address", says: /not a TCP port/ },
  { cli: true, what: "an interface name with a command", stack: "lab", sets: [haproxy(", interface: 'eth0; reboot'")], path: "apiEndpoint.interface", says: /network interface name/ },
  { what: "an interface name too long for Linux", stack: "lab", sets: [haproxy(", interface: enp0s31f6abcdefgh")], path: "apiEndpoint.interface", says: /at most 15/ },
  { what: "an HAProxy port out of range", stack: "lab", sets: [haproxy(", port: 70000")], path: "apiEndpoint.port", says: /1-65535/ },
  { what: "HAProxy on etcd's port", stack: "lab", sets: [haproxy(", port: 2379")], path: "apiEndpoint.port", says: /etcd uses it/ },
  { what: "HAProxy in the NodePort range", stack: "lab", sets: [haproxy(", port: 30080")], path: "apiEndpoint.port", says: /NodePort range/ },
  { what: "a virtual IP that is a node's address", stack: "lab", sets: ["apiEndpoint={haproxy: true, virtualIp: 192.168.56.11}"], path: "apiEndpoint.virtualIp", says: /is hosts.workers\[0\].privateAddress/ },
  { what: "firewall ranges on static hosts", stack: "lab", sets: ["ssh.allowedCidrs=[10.0.0.0/8]"], path: "ssh.allowedCidrs", says: /applies only to hosts.provider aws/ },
  { what: "a KMS key on static hosts", stack: "lab", sets: ["snapshots={upload: false, kmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'}"], path: "snapshots.kmsKeyId", says: /applies only to hosts.provider aws/ },
  { what: "static uploads without a bucket", stack: "lab", sets: ["snapshots={upload: true}"], path: "snapshots.bucket", says: /required to upload snapshots from static hosts/ },
];

/** The raw config the program validates for a stack with `--set` overrides (what readRawConfig builds). */
function rawConfigOf(stack: string, sets: string[]): RawConfig {
  const { config, secretKeys } = devConfig(sets, stack);
  const raw: RawConfig = {};
  for (const [fullKey, value] of Object.entries(config)) {
    if (!fullKey.startsWith(`${projectName}:`)) continue;
    const key = fullKey.slice(projectName.length + 1);
    const parsed = parseConfigValue(value);
    if (isUnset(parsed)) continue;
    raw[key] = secretKeys.includes(fullKey) || key === "sshPrivateKey" ? secretPresent : parsed;
  }
  return raw;
}

const run = promisify(execFile);

test("the table holds more than 60 bad configurations, each one named once", (t) => {
  t.true(badConfigs.length > 60, `${badConfigs.length}`);
  t.is(new Set(badConfigs.map((c) => c.what)).size, badConfigs.length);
});

test("both stacks are valid as they stand (every bad configuration below is one change away)", (t) => {
  for (const stack of ["dev", "lab"]) t.deepEqual(validateConfig(rawConfigOf(stack, []), { clusterName: `${projectName}-${stack}` }).problems, [], stack);
});

for (const c of badConfigs) {
  test(`validation: ${c.what} → ${c.path}`, (t) => {
    const started = performance.now();
    const stack = c.stack ?? "dev";
    const problems = validateConfig(rawConfigOf(stack, c.sets), { clusterName: `${projectName}-${stack}` }).problems;
    const ms = performance.now() - started;
    const named = problems.filter((p) => p.path === c.path);
    t.is(named.length, 1, `one problem names ${c.path}; got:\n${problems.map((p) => `${p.path}: ${p.message}`).join("\n")}`);
    t.regex(named[0]?.message ?? "", c.says);
    t.true(ms < 1000, `validated in ${ms.toFixed(0)} ms: nothing is built from a value before its bound is checked`);
  });
}

/** Runs `npm run plan`'s entry point with a stack and `--set`s; resolves with its exit code and output. */
async function plan(stack: string, sets: string[]): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
  const started = performance.now();
  const args = ["tsx", "infra/offline/planCli.ts", "--stack", stack, ...sets.flatMap((s) => ["--set", s])];
  try {
    const { stdout, stderr } = await run("npx", args, { cwd: projectDir, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
    return { code: 0, stdout, stderr, seconds: (performance.now() - started) / 1000 };
  } catch (err: any) {
    return { code: err.code ?? -1, stdout: err.stdout ?? "", stderr: err.stderr ?? "", seconds: (performance.now() - started) / 1000 };
  }
}

// A representative few through the plan command too, a few at a time (each is its own process, ~2 s).
const queue = badConfigs.filter((c) => c.cli);
const slots = 4;
let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(f: () => Promise<T>): Promise<T> {
  while (running >= slots) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await f();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

for (const c of queue) {
  test(`npm run plan --set: ${c.what} → exit 1, "${c.path}" on its own line, no stack trace`, async (t) => {
    const r = await slot(() => plan(c.stack ?? "dev", c.sets));
    t.is(r.code, 1, r.stdout.slice(0, 400));
    // The lab's own evaluation (the "before" of the diff) may warn first; the problems follow, one per line.
    const report = r.stderr.slice(r.stderr.indexOf("Invalid configuration:\n"));
    t.regex(report, /^Invalid configuration:\n( {2}\S+: .+\n)+$/);
    const line = report.split("\n").find((l) => l.startsWith(`  ${c.path}: `));
    t.truthy(line, `stderr names ${c.path}:\n${r.stderr}`);
    t.regex(line ?? "", c.says);
    t.notRegex(r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, "no stack trace");
    t.false(r.stderr.includes("not-shown"), "the --set sshPrivateKey never prints");
    t.is(r.stdout, "");
  });
}
