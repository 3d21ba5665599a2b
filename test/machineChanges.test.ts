// Changes the AWS provider would make to every machine at once: the offline diff says what the provider would do
// (replace where a property is force-new), and a deployed stack refuses them before anything is registered.
import test from "ava";
import { forceNewChanges, forceNewProperties } from "../infra/offline/forceNew";
import { diffEvaluations } from "../infra/offline/plan";
import { Evaluation } from "../infra/offline/engine";
import { byName, evaluateDev } from "./support/program";

const short = (urn: string) => urn.split("::").pop()!;
const deployedOf = (e: Evaluation) => e.stackOutputs as Record<string, unknown>;
const ownKey = ["ssh.publicKey=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMachineChangeKeyOne ops@example", "sshPrivateKey=machine-change-test-private-key"];
const entry = (diff: ReturnType<typeof diffEvaluations>, name: string) => diff.find((d) => short(d.urn) === name);

let dayOne: Promise<Evaluation> | undefined;
const deployedDev = () => (dayOne ??= evaluateDev());

test("the force-new table names only types the program registers, and has a row for every AWS, tls and random type it registers", async (t) => {
  const shapes = await Promise.all([deployedDev(), evaluateDev(["etcdTopology=external", "etcd={count: 3}"])]);
  const registered = new Set(shapes.flatMap((e) => e.resources.filter((r) => r.custom).map((r) => r.type)));
  for (const type of Object.keys(forceNewProperties)) t.true(registered.has(type), `${type} is registered by the program`);
  for (const type of registered) if (/^(aws|tls|random):/.test(type)) t.true(type in forceNewProperties, `${type} has a row`);
});

test("force-new rules: an encrypted root volume, user data only with userDataReplaceOnChange, a key pair's key but not its surrounding whitespace, an NLB's removed subnet", (t) => {
  const instance = "aws:ec2/instance:Instance";
  t.deepEqual(forceNewChanges(instance, { rootBlockDevice: { encrypted: true, volumeSize: 50 } }, { rootBlockDevice: { encrypted: false, volumeSize: 50 } }), ["rootBlockDevice.encrypted"]);
  t.deepEqual(forceNewChanges(instance, { rootBlockDevice: { volumeSize: 50 } }, { rootBlockDevice: { volumeSize: 80 } }), [], "a volume grows in place");
  t.deepEqual(forceNewChanges(instance, { instanceType: "m6i.large" }, { instanceType: "m6i.xlarge" }), [], "an instance type changes in place (stop, modify, start)");
  t.deepEqual(forceNewChanges(instance, { userData: "a", userDataReplaceOnChange: false }, { userData: "b", userDataReplaceOnChange: false }), []);
  t.deepEqual(forceNewChanges(instance, { userData: "a", userDataReplaceOnChange: true }, { userData: "b", userDataReplaceOnChange: true }), ["userData"]);
  t.deepEqual(forceNewChanges(instance, { keyName: "k" }, { keyName: "k" }, new Set(["keyName"])), ["keyName"], "a key name unknown at preview replaces");
  const keyPair = "aws:ec2/keyPair:KeyPair";
  t.deepEqual(forceNewChanges(keyPair, { publicKey: "ssh-ed25519 AAAA x" }, { publicKey: "ssh-ed25519 AAAA x\n" }), []);
  t.deepEqual(forceNewChanges(keyPair, { publicKey: "ssh-ed25519 AAAA x" }, { publicKey: "ssh-ed25519 BBBB x" }), ["publicKey"]);
  const lb = "aws:lb/loadBalancer:LoadBalancer";
  t.deepEqual(forceNewChanges(lb, { loadBalancerType: "network", subnets: ["a"] }, { loadBalancerType: "network", subnets: ["a", "b"] }), [], "an NLB gains a subnet in place");
  t.deepEqual(forceNewChanges(lb, { loadBalancerType: "network", subnets: ["a", "b"] }, { loadBalancerType: "network", subnets: ["a"] }), ["subnets"]);
});

test("the diff says replace where the AWS provider would: a new ssh.publicKey replaces the key pair, every instance (keyName) and the control planes' load balancer targets, and updates cp-0's init on the new machine", async (t) => {
  const before = await deployedDev();
  const after = await evaluateDev(ownKey);
  const diff = diffEvaluations(before, after);
  t.like(entry(diff, "nodes-ssh"), { type: "aws:ec2/keyPair:KeyPair", op: "change", keys: ["publicKey"], replace: true });
  const instances = diff.filter((d) => d.type === "aws:ec2/instance:Instance");
  t.deepEqual(instances.map((d) => [short(d.urn), d.keys, d.replace]).sort(), ["bastion", "cp-0", "cp-1", "cp-2", "worker-0", "worker-1"].map((n) => [n, ["keyName"], true]));
  for (const target of ["cp-0-api", "cp-1-api", "cp-2-api"]) t.like(entry(diff, target), { keys: ["targetId"], replace: true }, target);
  // cp-0 is no replaceable machine: its init is updated in place on the new machine (its update is the guard).
  t.like(entry(diff, "cp-0-init"), { op: "change", keys: ["connection"], replace: false });
  t.like(entry(diff, "worker-0-join"), { replace: true });
});

test("the diff says replace for a flip of apiAccess.internal (the load balancer and its listener); an instance type or a larger volume is an update", async (t) => {
  const before = await deployedDev();
  const flipped = diffEvaluations(before, await evaluateDev(["apiAccess.internal=true"]));
  t.like(entry(flipped, "api-nlb"), { type: "aws:lb/loadBalancer:LoadBalancer", keys: ["internal", "subnets"], replace: true });
  t.like(entry(flipped, "api-api"), { type: "aws:lb/listener:Listener", keys: ["loadBalancerArn"], replace: true });
  const resized = diffEvaluations(before, await evaluateDev(["controlPlane.instanceType=m6i.xlarge", "workers.volumeGiB=100"]));
  t.deepEqual(
    resized.map((d) => [short(d.urn), d.keys.join(","), d.replace]),
    [["worker-0", "rootBlockDevice", false], ["worker-1", "rootBlockDevice", false], ["cp-0", "instanceType", false], ["cp-1", "instanceType", false], ["cp-2", "instanceType", false]],
  );
});

test("a deployed stack records what its machines were built with (the machines output)", async (t) => {
  t.deepEqual(deployedOf(await deployedDev()).machines, {
    sshKey: "generated",
    controlPlane: { instanceType: "m6i.large", volumeGiB: 50 },
    workers: { instanceType: "m6i.large", volumeGiB: 80 },
    apiAccess: { internal: false },
  });
});

test("on a deployed stack, a new SSH key pair is refused before anything is registered, naming ssh.publicKey and what to do instead", async (t) => {
  const deployed = deployedOf(await deployedDev());
  const err = await t.throwsAsync(evaluateDev(ownKey, deployed));
  t.is(
    err!.message,
    `Invalid configuration:\n  ssh.publicKey: the deployed machines were created with the program's generated key pair; a new key pair replaces every instance at once (EC2 reads an instance's key pair only at launch: the AWS provider's keyName is force-new), cp-0 among them, and a blank cp-0 would run kubeadm init again: a new, empty cluster. Keep ssh.publicKey unset (and sshPrivateKey unset); to log in with another key, add it to ~/.ssh/authorized_keys on the bastion and every node (README "Node lifecycle": "Another SSH key")`,
  );
  t.deepEqual((err as any).registeredTypes, ["pulumi:pulumi:Stack"], "only the stack itself (the StackReference is a read)");
  const own = deployedOf(await evaluateDev(ownKey));
  const other = await t.throwsAsync(evaluateDev(["ssh.publicKey=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMachineChangeKeyTwo ops@example", "sshPrivateKey=another-test-private-key"], own));
  t.regex(other!.message, /^Invalid configuration:\n {2}ssh\.publicKey: the deployed machines were created with the key pair of ssh-ed25519 …ChangeKeyOne; .* Keep ssh\.publicKey ssh-ed25519 …ChangeKeyOne as deployed \(and sshPrivateKey with it\); /);
  const dropped = await t.throwsAsync(evaluateDev([], own));
  t.regex(dropped!.message, /^Invalid configuration:\n {2}ssh\.publicKey: the deployed machines were created with the key pair of ssh-ed25519 …ChangeKeyOne;/);
});

test("on a deployed stack, an instance type change, a smaller volume and a flip of apiAccess.internal are refused, each naming its key and what to do instead", async (t) => {
  const deployed = deployedOf(await deployedDev());
  const err = await t.throwsAsync(evaluateDev(["controlPlane.instanceType=m6i.xlarge", "workers.instanceType=m7i.large", "workers.volumeGiB=60", "apiAccess.internal=true"], deployed));
  t.is(
    err!.message,
    [
      "Invalid configuration:",
      `  controlPlane.instanceType: m6i.large → m6i.xlarge stops and starts every control plane at once (the AWS provider changes an instance's type in place: it stops the instance, modifies it and starts it again, on every control plane in parallel): the API and etcd go down together. Keep controlPlane.instanceType: m6i.large; to move the control planes to m6i.xlarge, change one machine at a time by hand, then record it (README "Node lifecycle": "Another instance type")`,
      `  workers.instanceType: m6i.large → m7i.large stops and starts every worker at once (the AWS provider changes an instance's type in place: it stops the instance, modifies it and starts it again, on every worker in parallel): every workload stops together. Keep workers.instanceType: m6i.large; to move the workers to m7i.large, change one machine at a time by hand, then record it (README "Node lifecycle": "Another instance type")`,
      `  workers.volumeGiB: 80 → 60 would shrink every worker's root volume: an EBS volume only grows (the AWS provider modifies it in place, and EC2 refuses a smaller size, failing the run halfway). Keep workers.volumeGiB at 80 or more: a larger value grows each volume in place`,
      `  apiAccess.internal: false → true replaces the API load balancer (the AWS provider cannot change a load balancer's scheme: internal is force-new) under a new DNS name, while every kubeconfig, kube-public/cluster-info, kubeadm-config's controlPlaneEndpoint, the kubelets and the apiservers' serving certificates name the old one: the nodes lose the API and joins fail. Keep apiAccess.internal: false and limit who reaches it with apiAccess.allowedCidrs; a cluster behind the other kind of load balancer is a new cluster (its own stack)`,
    ].join("\n"),
  );
  t.deepEqual((err as any).registeredTypes, ["pulumi:pulumi:Stack"]);
  const internal = deployedOf(await evaluateDev(["apiAccess.internal=true"]));
  const opened = await t.throwsAsync(evaluateDev([], internal));
  t.regex(opened!.message, /apiAccess\.internal: true → false replaces the API load balancer .* Keep apiAccess\.internal: true and reach the API from inside the VPC or over a VPN; /);
});

test("external etcd: an etcd instance type change is refused, naming etcd.instanceType", async (t) => {
  const external = ["etcdTopology=external", "etcd={count: 3}"];
  const deployed = deployedOf(await evaluateDev(external));
  const err = await t.throwsAsync(evaluateDev([...external, "etcd={count: 3, instanceType: m6i.xlarge}"], deployed));
  t.regex(err!.message, /^Invalid configuration:\n {2}etcd\.instanceType: m6i\.large → m6i\.xlarge stops and starts every etcd member at once .*: etcd loses its quorum\. Keep etcd\.instanceType: m6i\.large; /);
});

test("not refused: a new stack sets these keys freely, unchanged values and a larger volume pass, and a stack deployed before machines was recorded is never refused for it", async (t) => {
  const changes = [...ownKey, "controlPlane.instanceType=m6i.xlarge", "workers.volumeGiB=60", "apiAccess.internal=true"];
  const fresh = await evaluateDev(changes);
  t.is(byName(fresh, "cp-0", "aws:ec2/instance:Instance").inputs.instanceType, "m6i.xlarge");
  const deployed = deployedOf(await deployedDev());
  await t.notThrowsAsync(evaluateDev([], deployed));
  await t.notThrowsAsync(evaluateDev(["workers.volumeGiB=120", "controlPlane.volumeGiB=50"], deployed));
  const { machines: _machines, ...older } = deployed;
  await t.notThrowsAsync(evaluateDev(changes, older));
  // A field the older program did not record is never compared.
  await t.notThrowsAsync(evaluateDev(["apiAccess.internal=true"], { ...deployed, machines: { sshKey: "generated" } }));
});

test("cp-0's init has a guard as its update (create and stdin stay ignored): it names the recorded machine only when cp-0 is another machine", async (t) => {
  const first = await deployedDev();
  const init = byName(first, "cp-0-init");
  t.deepEqual(init.options.ignoreChanges, ["create", "stdin"]);
  t.regex(String(init.inputs.update), /STEP='init'/);
  t.regex(String(init.inputs.update), /but the kubeadm init of this step succeeded in an earlier run: kubeadm init here would start a new, empty cluster/);
  t.notRegex(String(init.inputs.update), /kubeadm (init|reset) (--|-f)/, "the guard runs neither kubeadm init nor kubeadm reset");
  const next = await evaluateDev([], deployedOf(first));
  t.deepEqual(diffEvaluations(first, next), [], "the recorded machine: nothing changes");
  const recorded = deployedOf(first).bootstrap as Record<string, { machine: string; kubernetesVersion: string; round: string }>;
  const moved = { ...deployedOf(first), bootstrap: { ...recorded, "cp-0": { ...recorded["cp-0"], machine: "10.0.9.9" } } };
  const other = byName(await evaluateDev([], moved), "cp-0-init");
  t.true(String(other.inputs.update).includes(`the stack recorded kubeadm init on machine 10.0.9.9 (Kubernetes ${recorded["cp-0"].kubernetesVersion}, round ${recorded["cp-0"].round}), and this is another machine`));
});
