// The whole program through the capturing engine (Pulumi's mock monitor, every registration recorded).
import test from "ava";
import { parse } from "yaml";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { configKeys, isUnset, projectName, readRawConfig, secretConfigKeys } from "../infra/config";
import { evaluate } from "../infra/offline/engine";
import { runProgram } from "../infra/program";
import { certificateDefaults } from "../lifecycle/defaults";
import { defaults } from "../infra/defaults";
import { Evaluation } from "../infra/offline/engine";
import { byName, byType, devConfig, evaluateDev, projectDir, waitsFor } from "./support/program";

const INSTANCE = "aws:ec2/instance:Instance";
const COMMAND = "command:remote:Command";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";

const cache = new Map<string, Promise<Evaluation>>();
function shape(cp: number, workers: number, extra: string[] = []): Promise<Evaluation> {
  const key = `${cp}/${workers}/${extra.join(",")}`;
  if (!cache.has(key)) cache.set(key, evaluateDev([`controlPlane.count=${cp}`, `workers.count=${workers}`, ...extra]));
  return cache.get(key)!;
}

for (const [cp, workers] of [
  [1, 0],
  [3, 2],
  [5, 10],
] as const) {
  test(`${cp} control planes and ${workers} workers: machines, steps and LB attachments`, async (t) => {
    const e = await shape(cp, workers);
    const instances = byType(e, INSTANCE).map((r) => r.name).sort();
    const expected = [...Array.from({ length: cp }, (_, i) => `cp-${i}`), ...Array.from({ length: workers }, (_, i) => `worker-${i}`), "bastion"].sort();
    t.deepEqual(instances, expected);
    t.is(byType(e, "aws:lb/targetGroupAttachment:TargetGroupAttachment").length, cp);
    const steps = byType(e, COMMAND).map((r) => r.name);
    t.is(steps.filter((n) => n.endsWith("-prepare")).length, cp + workers);
    t.deepEqual(steps.filter((n) => n.endsWith("-init")), ["cp-0-init"]);
    t.is(steps.filter((n) => /^cp-\d+-join$/.test(n)).length, cp - 1);
    t.is(steps.filter((n) => /^worker-\d+-join$/.test(n)).length, workers);
    // At most 7 resources per worker across bootstrap and upgrade: instance + its join credentials + 5 steps.
    if (workers > 0) t.is(steps.filter((n) => n.startsWith("worker-0-")).length + 1, 7);
  });
}

test("the API load balancer: TCP 6443 listener, cross-zone, HTTPS /readyz health check, client IP preservation off", async (t) => {
  const e = await shape(3, 2);
  const [lb] = byType(e, "aws:lb/loadBalancer:LoadBalancer");
  t.is(lb.inputs.loadBalancerType, "network");
  t.is(lb.inputs.enableCrossZoneLoadBalancing, true);
  t.is(lb.inputs.internal, false, "the dev stack's apiAccess.internal is false");
  const [listener] = byType(e, "aws:lb/listener:Listener");
  t.is(listener.inputs.port, 6443);
  t.is(listener.inputs.protocol, "TCP");
  const [tg] = byType(e, "aws:lb/targetGroup:TargetGroup");
  t.is(tg.inputs.protocol, "TCP");
  t.is(tg.inputs.port, 6443);
  t.is(tg.inputs.preserveClientIp, "false");
  t.like(tg.inputs.healthCheck, { protocol: "HTTPS", path: "/readyz", port: "traffic-port" });
  const attachments = byType(e, "aws:lb/targetGroupAttachment:TargetGroupAttachment");
  const cpIds = byType(e, INSTANCE).filter((r) => r.name.startsWith("cp-")).map((r) => r.id);
  t.deepEqual(attachments.map((a) => a.inputs.targetId).sort(), cpIds.sort());
  t.true(attachments.every((a) => a.inputs.port === 6443));
});

test("an internal API load balancer sits in the private subnets", async (t) => {
  const e = await shape(3, 2, ["apiAccess.internal=true"]);
  const [lb] = byType(e, "aws:lb/loadBalancer:LoadBalancer");
  const privateSubnets = byType(e, "aws:ec2/subnet:Subnet").filter((s) => s.name.includes("private")).map((s) => s.id);
  t.is(lb.inputs.internal, true);
  t.deepEqual([...lb.inputs.subnets].sort(), privateSubnets.sort());
});

function groupOf(e: Evaluation, id: string): string {
  return byType(e, "aws:ec2/securityGroup:SecurityGroup").find((g) => g.id === id)!.name.replace(/^sg-/, "");
}

function portsOpen(rule: { inputs: any }, port: number): boolean {
  return rule.inputs.ipProtocol === "-1" || (rule.inputs.fromPort <= port && port <= rule.inputs.toPort);
}

test("no etcd port is reachable from outside the control planes, kubelets only from the nodes (metrics-server scrapes them from a worker); SSH only via the bastion", async (t) => {
  const e = await shape(3, 2);
  const rules = byType(e, INGRESS);
  for (const port of [2379, 2380]) {
    const open = rules.filter((r) => portsOpen(r, port));
    t.true(open.length > 0);
    for (const r of open) {
      t.is(groupOf(e, r.inputs.securityGroupId), "controlPlane", `etcd port ${port} on ${r.name}`);
      t.is(r.inputs.cidrIpv4, undefined, `etcd port ${port} open to a CIDR in ${r.name}`);
      t.is(groupOf(e, r.inputs.referencedSecurityGroupId), "controlPlane");
    }
  }
  const kubelet = rules.filter((x) => portsOpen(x, 10250));
  for (const r of kubelet) {
    t.is(r.inputs.cidrIpv4, undefined, `kubelet open to a CIDR in ${r.name}`);
    t.true(["controlPlane", "worker"].includes(groupOf(e, r.inputs.referencedSecurityGroupId)), r.name);
  }
  // Every node's kubelet from every node group: metrics-server on a worker reaches the control planes' kubelets too.
  const pairs = kubelet.map((r) => `${groupOf(e, r.inputs.securityGroupId)}<-${groupOf(e, r.inputs.referencedSecurityGroupId)}`).sort();
  t.deepEqual(pairs, ["controlPlane<-controlPlane", "controlPlane<-worker", "worker<-controlPlane", "worker<-worker"]);
  for (const r of rules.filter((x) => portsOpen(x, 22))) {
    const target = groupOf(e, r.inputs.securityGroupId);
    if (target === "bastion") t.is(r.inputs.cidrIpv4, "198.51.100.0/24");
    else t.is(groupOf(e, r.inputs.referencedSecurityGroupId), "bastion", r.name);
  }
  // The API is open to the allowed ranges only at the load balancer.
  const apiFromCidr = rules.filter((r) => portsOpen(r, 6443) && r.inputs.cidrIpv4 !== undefined);
  t.deepEqual(apiFromCidr.map((r) => [groupOf(e, r.inputs.securityGroupId), r.inputs.cidrIpv4]), [["apiLoadBalancer", "198.51.100.0/24"]]);
});

test("every instance: IMDSv2 required, encrypted gp3 root volume, AMI changes ignored, no secret or version in user data", async (t) => {
  const e = await shape(3, 2);
  const secrets = [
    byName(e, "bootstrap-token-secret").outputs.result as string,
    byName(e, "certificate-key").outputs.hex as string,
    byName(e, "nodes-ssh", "tls:index/privateKey:PrivateKey").outputs.privateKeyOpenssh as string,
  ];
  t.true(secrets.every((v) => typeof v === "string" && v.length > 10), "the check can fail: the secrets are known");
  for (const i of byType(e, INSTANCE)) {
    t.is(i.inputs.metadataOptions.httpTokens, "required", i.name);
    t.is(i.inputs.rootBlockDevice.encrypted, true, i.name);
    t.is(i.inputs.rootBlockDevice.volumeType, "gp3", i.name);
    t.deepEqual(i.options.ignoreChanges, ["ami"], i.name);
    t.is(i.inputs.associatePublicIpAddress, false, i.name);
    t.false(String(i.inputs.userData).includes("1.35"), i.name);
    // No private key of any kind, and none of the cluster's secrets (IMDSv2 header names like X-aws-ec2-metadata-token
    // are fine: the bastion's host-key installer needs them).
    t.false(/PRIVATE KEY|certificateKey|bootstrapToken/.test(String(i.inputs.userData)), i.name);
    for (const secret of secrets) t.false(String(i.inputs.userData).includes(secret.split("\n").find((l) => l.length > 20 && !l.startsWith("-----")) ?? secret), i.name);
  }
});

test("secrets are secret: SSH key, join credentials, kubeconfig; never in a script", async (t) => {
  const e = await shape(3, 2);
  t.true(e.secretOutputs.includes("kubeconfig"));
  const token = byName(e, "bootstrap-token-secret").outputs.result as string;
  const certificateKey = byName(e, "certificate-key").outputs.hex as string;
  const privateKey = byName(e, "nodes-ssh", "tls:index/privateKey:PrivateKey").outputs.privateKeyOpenssh as string;
  t.true(byName(e, "bootstrap-token-secret").options.additionalSecretOutputs.includes("result"));
  t.true(byName(e, "certificate-key").options.additionalSecretOutputs.includes("hex"));
  for (const step of byType(e, COMMAND)) {
    t.true(step.secretInputs.includes("connection"), `${step.name} connection`);
    for (const field of ["create", "delete", "update"]) {
      const script = String(step.inputs[field] ?? "");
      t.false(script.includes(token) || script.includes(certificateKey) || script.includes(privateKey.trim().split("\n")[1]), `${step.name}.${field}`);
    }
    if (step.inputs.stdin !== undefined) t.true(step.secretInputs.includes("stdin"), `${step.name} stdin`);
  }
  const init = byName(e, "cp-0-init");
  t.true(String(init.inputs.stdin).includes(token), "the init config reaches cp-0 through stdin");
  t.true(String(init.inputs.stdin).includes(certificateKey));
  t.is(init.displayInputs.stdin, "[secret]");
  t.true(byName(e, "cp-0-read-kubeconfig").options.additionalSecretOutputs.includes("stdout"));
  t.is(byName(e, "cp-0-read-kubeconfig").inputs.logging, "stderr", "the kubeconfig never streams to the pulumi log");
});

test("joins depend on init; control-plane joins are chained after the CNI; workers do not wait on each other", async (t) => {
  const e = await shape(5, 3);
  const init = byName(e, "cp-0-init");
  const cni = byType(e, "kubernetes:helm.sh/v3:Release")[0];
  t.true(waitsFor(e, cni, init));
  for (let i = 1; i < 5; i++) {
    const join = byName(e, `cp-${i}-join`);
    t.true(waitsFor(e, join, init));
    t.true(waitsFor(e, join, cni), `cp-${i} joins once the CNI runs`);
    if (i > 1) t.true(join.dependencies.includes(byName(e, `cp-${i - 1}-join`).urn), `cp-${i} directly after cp-${i - 1}`);
  }
  for (let w = 0; w < 3; w++) {
    const join = byName(e, `worker-${w}-join`);
    t.true(waitsFor(e, join, init));
    t.false(waitsFor(e, join, cni), "workers need not wait for the CNI to join");
    for (let v = 0; v < 3; v++) if (v !== w) t.false(waitsFor(e, join, byName(e, `worker-${v}-join`)), `worker-${w} waits on worker-${v}`);
  }
  const ready = byName(e, "cluster-wait-nodes-ready");
  for (const name of ["cp-4-join", "worker-0-join", "worker-2-join"]) t.true(waitsFor(e, ready, byName(e, name)));
  t.true(String(ready.inputs.create).includes("worker-2"));
});

test("cp-0 is behind the LB before init; the others only once joined; the kubeadm config points at the LB", async (t) => {
  const e = await shape(3, 2);
  const init = byName(e, "cp-0-init");
  const attachment = (cp: string) => byName(e, `${cp}-api`, "aws:lb/targetGroupAttachment:TargetGroupAttachment");
  t.true(waitsFor(e, init, attachment("cp-0")));
  for (const cp of ["cp-1", "cp-2"]) {
    t.true(waitsFor(e, attachment(cp), byName(e, `${cp}-join`)), `${cp} registers after its join (and on removal, deregisters first)`);
    t.false(waitsFor(e, init, attachment(cp)));
  }
  const lb = byType(e, "aws:lb/loadBalancer:LoadBalancer")[0];
  const config = parse(String(init.inputs.stdin).split("---\n")[1]);
  t.is(config.kind, "ClusterConfiguration");
  t.is(config.controlPlaneEndpoint, `${lb.outputs.dnsName}:6443`);
  t.deepEqual(config.apiServer.certSANs, [lb.outputs.dnsName]);
  t.deepEqual(config.networking, { podSubnet: "10.244.0.0/16", serviceSubnet: "10.96.0.0/12" });
  t.is(config.apiVersion, "kubeadm.k8s.io/v1beta4");
  t.deepEqual(config.etcd, { local: { dataDir: "/var/lib/etcd" } });
});

test("init ignores later script changes; prepare and join ignore nothing (their inputs are pinned per machine); their connection goes through the bastion", async (t) => {
  const e = await shape(3, 2);
  const bastionIp = byName(e, "bastion", "aws:ec2/eip:Eip").outputs.publicIp;
  t.deepEqual(byName(e, "cp-0-init").options.ignoreChanges, ["create", "stdin"]);
  for (const step of byType(e, COMMAND).filter((s) => /-(prepare|join|join-credentials)$/.test(s.name))) {
    t.deepEqual(step.options.ignoreChanges, [], step.name);
  }
  for (const step of byType(e, COMMAND)) {
    t.is(step.inputs.connection.proxy.host, bastionIp, step.name);
    t.is(step.inputs.connection.user, "ubuntu");
  }
  const cp1 = byName(e, "cp-1-join");
  t.is(cp1.displayInputs.connection.host, byName(e, "cp-1", INSTANCE).outputs.privateIp);
  t.is(cp1.displayInputs.connection.privateKey, "[secret]");
});

test("the CNI chart's pod range matches kubeadm's podSubnet (calico)", async (t) => {
  const e = await shape(3, 0, ["cni={name: calico}", "network.podCidr=192.168.0.0/16"]);
  const [release] = byType(e, "kubernetes:helm.sh/v3:Release");
  t.is(release.inputs.chart, "tigera-operator");
  t.is(release.inputs.version, "v3.30.3");
  t.is(release.inputs.values.installation.calicoNetwork.ipPools[0].cidr, "192.168.0.0/16");
  const rules = byType(e, INGRESS).map((r) => r.name);
  t.true(rules.some((n) => n.includes("udp-4789")), "Calico VXLAN between nodes");
  t.false(rules.some((n) => n.includes("udp-8472")), "no Cilium port with Calico");
  t.false(rules.some((n) => n.includes("tcp-179")), "no BGP port: the program's Calico runs with BGP off");
  t.true(rules.some((n) => n.includes("tcp-5473")), "the rule names carry protocol-port (so the check above can fail)");
});

test("flannel: its chart from its repository into kube-flannel with kubeadm's podSubnet and the VXLAN port between nodes; cni.chartPath installs a chart of the project instead, cni.values merge over the program's", async (t) => {
  const e = await shape(3, 1, ["cni={name: flannel}", "network.podCidr=10.32.0.0/16"]);
  const [release] = byType(e, "kubernetes:helm.sh/v3:Release");
  t.like(release.inputs, { chart: "flannel", version: "v0.28.10", repositoryOpts: { repo: "https://flannel-io.github.io/flannel/" }, namespace: "kube-flannel", createNamespace: true, values: { podCidr: "10.32.0.0/16" } });
  const rules = byType(e, INGRESS).map((r) => r.name);
  t.true(rules.some((n) => n.includes("udp-8472")), "flannel VXLAN between nodes");
  t.false(rules.some((n) => n.includes("tcp-4240") || n.includes("udp-4789")), "no Cilium or Calico port");

  const local = await shape(3, 1, ['cni={name: flannel, chartPath: test/fixtures/addons/chart, values: {podCidr: "10.99.0.0/16", flannel: {backend: host-gw}}}']);
  const [fromPath] = byType(local, "kubernetes:helm.sh/v3:Release");
  t.is(fromPath.inputs.chart, "test/fixtures/addons/chart");
  t.is(fromPath.inputs.repositoryOpts, undefined, "nothing fetched from a repository");
  t.is(fromPath.inputs.version, undefined);
  t.deepEqual(fromPath.inputs.values, { podCidr: "10.99.0.0/16", flannel: { backend: "host-gw" } }, "the config's values win");
});

test("cni: a flannel version without its v, a chartPath that is no chart and values that are no object are refused, naming the key", async (t) => {
  for (const [set, path] of [
    ["cni={name: flannel, version: 0.28.10}", "cni.version"],
    ["cni={name: flannel, chartPath: addons/demo}", "cni.chartPath"],
    ["cni={name: cilium, values: [1]}", "cni.values"],
  ] as const) {
    const err = await t.throwsAsync(shape(3, 1, [set]));
    t.regex(err!.message, new RegExp(`^  ${path.replace(".", "\\.")}: `, "m"), set);
  }
});

test("Calico encapsulates every pod packet (VXLAN, BGP off): the instances keep EC2's source/destination check, which drops natively routed pod traffic", async (t) => {
  const e = await shape(3, 2, ["cni={name: calico}"]);
  const network = byType(e, "kubernetes:helm.sh/v3:Release")[0].inputs.values.installation.calicoNetwork;
  t.is(network.bgp, "Disabled");
  t.deepEqual(network.ipPools.map((p: any) => p.encapsulation), ["VXLAN"], "never VXLANCrossSubnet or None: both route natively inside a subnet");
  for (const instance of byType(e, INSTANCE)) t.not(instance.inputs.sourceDestCheck, false, `${instance.name} keeps the check`);
});

test("stack outputs: API endpoint, bastion, nodes with private IPs, version and topology", async (t) => {
  const e = await shape(3, 2);
  const lb = byType(e, "aws:lb/loadBalancer:LoadBalancer")[0];
  t.is(e.stackOutputs.apiEndpoint, `${lb.outputs.dnsName}:6443`);
  t.is(e.stackOutputs.kubernetesVersion, "1.35.9");
  t.is(e.stackOutputs.etcdTopology, "stacked");
  t.deepEqual(e.stackOutputs.nodes.map((n: any) => n.name), ["cp-0", "cp-1", "cp-2", "worker-0", "worker-1"]);
  t.is(e.stackOutputs.nodes[0].privateIp, byName(e, "cp-0", INSTANCE).outputs.privateIp);
  t.true(String(e.stackOutputs.kubeconfig).includes(`server: https://${lb.outputs.dnsName}:6443`));
});

test("invalid config fails before any resource is registered", async (t) => {
  const err = await t.throwsAsync(evaluateDev(["controlPlane.count=2", "workers.maxUnavailable=0"]));
  t.is(err?.message, [
    "Invalid configuration:",
    "  controlPlane.count: must be odd with stacked etcd (each control plane is an etcd member; 2 members tolerate no more failures than 1), got 2",
    "  workers.maxUnavailable: must be at least 1 (workers drained at a time during an upgrade), got 0",
  ].join("\n"));
  t.deepEqual((err as any).registeredTypes, ["pulumi:pulumi:Stack"], "only the stack itself, nothing to build");
});

test("sshPrivateKey set in plain text (not with pulumi config set --secret) fails before any resource is registered, naming the key and the --secret command; as a secret it runs", async (t) => {
  const value = "plain-text-private-key-3f9a";
  const { config } = devConfig(["ssh.publicKey=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlanTestKey test", `sshPrivateKey=${value}`]);
  const err = await t.throwsAsync(evaluate({ project: projectName, stack: "dev", config, secretKeys: [], program: runProgram }));
  t.is(err?.message, [
    "Invalid configuration:",
    "  sshPrivateKey: is a secret, but the stack holds it in plain text: set it with `pulumi config set --secret sshPrivateKey < KEY` (the stack file then keeps it encrypted)",
  ].join("\n"));
  t.false(err!.message.includes(value), "the value itself is never printed");
  t.deepEqual((err as any).registeredTypes, ["pulumi:pulumi:Stack"], "only the stack itself, nothing to build");
  const ok = await evaluate({ project: projectName, stack: "dev", config, secretKeys: [`${projectName}:sshPrivateKey`], program: runProgram });
  t.true(ok.resources.length > 1);
});

test("a key Pulumi.yaml declares secret: true is refused in plain text too; readRawConfig names the plain ones (the SDK's isConfigSecret), never a secret or unset one", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "secret-keys-"));
  try {
    writeFileSync(join(dir, "Pulumi.yaml"), "name: kubeadm-ha\nruntime: nodejs\nconfig:\n  addons:\n    type: array\n    secret: true\n  images:\n    type: object\n");
    const addons = JSON.stringify([{ name: "demo", kustomize: { directory: "addons/demo" } }]);
    const config = { [`${projectName}:addons`]: addons, [`${projectName}:images`]: JSON.stringify({ repository: "registry.example.com/k8s" }), [`${projectName}:sshPrivateKey`]: "k" };
    pulumi.runtime.setAllConfig(config, [`${projectName}:sshPrivateKey`]);
    t.deepEqual(readRawConfig(dir).plainSecrets, ["addons"]);
    pulumi.runtime.setAllConfig(config, []);
    t.deepEqual(readRawConfig(dir).plainSecrets, ["addons", "sshPrivateKey"]);
    pulumi.runtime.setAllConfig(config, [`${projectName}:addons`, `${projectName}:sshPrivateKey`]);
    t.deepEqual(readRawConfig(dir).plainSecrets, []);
    pulumi.runtime.setAllConfig({ [`${projectName}:images`]: "{}" }, []);
    t.deepEqual(readRawConfig(dir).plainSecrets, [], "an unset key is no plain secret");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Pulumi.yaml declares every key but the secret ones, each with a default (the real CLI requires a value for a declared key without one), and its defaults are the program's", (t) => {
  const project = parse(readFileSync(join(projectDir, "Pulumi.yaml"), "utf8"));
  t.is(project.name, "kubeadm-ha");
  t.is(project.runtime.name, "nodejs");
  const keys = Object.keys(project.config);
  t.deepEqual(keys.sort(), configKeys.filter((k) => !secretConfigKeys.includes(k)).sort(), "Pulumi.yaml declares exactly the keys the program reads, but the secret ones");
  for (const key of keys) t.truthy(project.config[key].description, key);
  for (const key of keys) t.true("default" in project.config[key], `${key} has a default`);
  for (const key of ["etcd", "apiEndpoint", "restore"]) t.true(isUnset(project.config[key].default), `${key}: its placeholder default reads as not set`);
  t.is(project.config.kubernetesVersion.default, defaults.kubernetesVersion);
  t.is(project.config.etcdTopology.default, defaults.etcdTopology);
  t.deepEqual(project.config.controlPlane.default, defaults.controlPlane);
  t.deepEqual(project.config.workers.default, defaults.workers);
  t.deepEqual(project.config.network.default, defaults.network);
  t.deepEqual(project.config.apiAccess.default, defaults.apiAccess);
  t.deepEqual(project.config.ssh.default, defaults.ssh);
  t.deepEqual(project.config.cni.default, { name: defaults.cni.name });
  t.deepEqual(project.config.snapshots.default, defaults.snapshots);
  t.deepEqual(project.config.maintenance.default, []);
  t.deepEqual(project.config.hosts.default, { provider: "aws" });
  t.deepEqual(project.config.certificates.default, { renewBeforeDays: certificateDefaults.renewBeforeDays });
  t.true(secretConfigKeys.includes("sshPrivateKey"));
  const pkg = JSON.parse(readFileSync(join(projectDir, "package.json"), "utf8"));
  t.is(pkg.main, "infra/index.ts");
  t.is(pkg.exports, undefined);
  t.regex(pkg.dependencies["@pulumi/command"], /^\^1\./);
});

test("external etcd: members on their own machines, etcd ports only where they belong, kubeadm pointed at every member, init after etcd is healthy", async (t) => {
  const e = await shape(3, 2, ["etcdTopology=external", "etcd={count: 3}"]);
  t.deepEqual(byType(e, INSTANCE).map((r) => r.name).filter((n) => n.startsWith("etcd-")).sort(), ["etcd-0", "etcd-1", "etcd-2"]);
  const rules = byType(e, INGRESS);
  for (const port of [2379, 2380]) {
    for (const r of rules.filter((x) => portsOpen(x, port))) {
      t.is(groupOf(e, r.inputs.securityGroupId), "etcd", `${port} opens only on etcd hosts (${r.name})`);
      t.is(r.inputs.cidrIpv4, undefined);
      const from = groupOf(e, r.inputs.referencedSecurityGroupId);
      t.true(port === 2380 ? from === "etcd" : from === "etcd" || from === "controlPlane", `${port} from ${from}`);
    }
  }
  const init = byName(e, "cp-0-init");
  t.true(waitsFor(e, init, byName(e, "etcd-0-etcd-healthy")), "kubeadm init waits until every member is healthy");
  t.true(waitsFor(e, init, byName(e, "cp-0-etcd-client-certs")));
  const ips = ["etcd-0", "etcd-1", "etcd-2"].map((n) => byName(e, n, INSTANCE).outputs.privateIp);
  const cluster = parse(String(init.inputs.stdin).split("---\n")[1]);
  t.deepEqual(cluster.etcd, {
    external: {
      endpoints: ips.map((ip) => `https://${ip}:2379`),
      caFile: "/etc/kubernetes/pki/etcd/ca.crt",
      certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt",
      keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key",
    },
  });
  t.is(e.stackOutputs.etcdTopology, "external");
  t.false(byType(e, COMMAND).some((r) => /cp-\d+-join/.test(r.name) && String(r.inputs.create).includes("etcdctl")), "control-plane joins do not check a stacked member");
});
