// The security model as the program registers it (the capturing engine, AWS and static stacks): who may reach etcd
// snapshots, how the bucket refuses plain HTTP and foreign encryption, where the bastion's host key comes from and what
// every connection pins, and the world-open opt-in end to end.
import test from "ava";
import { bastionPolicy } from "../infra/bastion";
import { Evaluation } from "../infra/offline/engine";
import { unpinnedHostKeys } from "../infra/staticInfrastructure";
import { byName, byType, evaluateDev, evaluateStack } from "./support/program";

const INSTANCE = "aws:ec2/instance:Instance";
const COMMAND = "command:remote:Command";
const kmsKey = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const profileOf = (e: Evaluation, name: string) => byName(e, name, INSTANCE).inputs.iamInstanceProfile as string | undefined;
const memberProfile = (e: Evaluation) => byName(e, "nodes-etcd-member", "aws:iam/instanceProfile:InstanceProfile").outputs.name;
const snapshotPolicy = (e: Evaluation) => {
  const [policy] = byType(e, "aws:iam/rolePolicy:RolePolicy").filter((p) => p.name === "etcd-snapshots-node-access");
  return { role: policy.inputs.role, document: JSON.parse(policy.inputs.policy) };
};

test("stacked etcd: only the control planes (the etcd members) carry the snapshot role; workers and the bastion have no snapshot access", async (t) => {
  const e = await evaluateDev();
  const member = memberProfile(e);
  for (const cp of ["cp-0", "cp-1", "cp-2"]) t.is(profileOf(e, cp), member, cp);
  for (const w of ["worker-0", "worker-1"]) t.is(profileOf(e, w), undefined, `${w}: no instance profile, no AWS credentials at all`);
  t.not(profileOf(e, "bastion"), member, "the bastion has its own role");
  const { role, document } = snapshotPolicy(e);
  t.is(role, byName(e, "nodes-etcd-member", "aws:iam/role:Role").outputs.name, "the snapshot policy is on the members' role only");
  const allowed = document.Statement.filter((s: any) => s.Effect === "Allow").flatMap((s: any) => [s.Action].flat());
  t.deepEqual(allowed, ["s3:PutObject", "s3:GetObject", "s3:ListBucket"]);
  // The bastion's role reads its own host key and nothing else (the parameter's ARN is known only once it exists).
  const policy = byName(e, "bastion-host-key-read", "aws:iam/policy:Policy");
  t.true(policy.dependencies.includes(byName(e, "bastion-host-key", "aws:ssm/parameter:Parameter").urn));
  const arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/kubeadm-ha/kubeadm-ha-dev/bastion/ssh-host-ed25519-key";
  t.deepEqual(JSON.parse(bastionPolicy(arn)).Statement, [{ Effect: "Allow", Action: "ssm:GetParameter", Resource: arn }]);
  // No other policy exists: nothing else can reach the bucket.
  t.deepEqual(byType(e, "aws:iam/rolePolicy:RolePolicy").map((p) => p.name), ["etcd-snapshots-node-access"]);
  t.deepEqual(byType(e, "aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((p) => p.name), ["bastion-host-key-read"]);
});

test("external etcd: only the etcd hosts carry the snapshot role; control planes, workers and the bastion have none", async (t) => {
  const e = await evaluateDev(["etcdTopology=external", "etcd={count: 3}"]);
  const member = memberProfile(e);
  for (const h of ["etcd-0", "etcd-1", "etcd-2"]) t.is(profileOf(e, h), member, h);
  for (const h of ["cp-0", "cp-1", "cp-2", "worker-0", "worker-1"]) t.is(profileOf(e, h), undefined, h);
  t.not(profileOf(e, "bastion"), member);
});

test("the snapshot bucket refuses every request without TLS, from anyone; the members' policy refuses it too (it also covers an existing bucket)", async (t) => {
  const e = await evaluateDev();
  const bucket = byType(e, "aws:s3/bucket:Bucket")[0].outputs.bucket;
  const policy = byType(e, "aws:s3/bucketPolicy:BucketPolicy")[0];
  t.true(policy.dependencies.includes(byType(e, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[0].urn), "after the public access block");
  t.deepEqual(JSON.parse(policy.inputs.policy).Statement, [
    { Sid: "TlsOnly", Effect: "Deny", Principal: "*", Action: "s3:*", Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`], Condition: { Bool: { "aws:SecureTransport": "false" } } },
  ]);
  const existing = await evaluateDev(["snapshots={bucket: team-etcd-backups}"]);
  t.is(byType(existing, "aws:s3/bucketPolicy:BucketPolicy").length, 0, "an existing bucket's policy is its owner's");
  const deny = snapshotPolicy(existing).document.Statement.find((s: any) => s.Effect === "Deny");
  t.deepEqual(deny, {
    Effect: "Deny",
    Action: ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
    Resource: ["arn:aws:s3:::team-etcd-backups", "arn:aws:s3:::team-etcd-backups/*"],
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  });
});

test("snapshots.kmsKeyId: the bucket encrypts with that key by default and refuses objects encrypted otherwise; the members may use the key through S3 only", async (t) => {
  const e = await evaluateDev([`snapshots={kmsKeyId: '${kmsKey}'}`]);
  const [sse] = byType(e, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration");
  t.deepEqual(sse.inputs.rules[0].applyServerSideEncryptionByDefault, { sseAlgorithm: "aws:kms", kmsMasterKeyId: kmsKey });
  const statements = JSON.parse(byType(e, "aws:s3/bucketPolicy:BucketPolicy")[0].inputs.policy).Statement;
  t.deepEqual(statements.map((s: any) => s.Sid), ["TlsOnly", "KmsOnly", "ThisKeyOnly"]);
  t.deepEqual(statements[1].Condition, { StringNotEqualsIfExists: { "s3:x-amz-server-side-encryption": "aws:kms" } });
  t.deepEqual(statements[2].Condition, { StringNotEqualsIfExists: { "s3:x-amz-server-side-encryption-aws-kms-key-id": kmsKey } });
  const kms = snapshotPolicy(e).document.Statement.find((s: any) => String(s.Action).includes("kms:"));
  t.deepEqual(kms, { Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: kmsKey, Condition: { StringEquals: { "kms:ViaService": "s3.eu-west-1.amazonaws.com" } } });
  // Without the key: S3-managed encryption, no KMS statement anywhere.
  const plain = await evaluateDev();
  t.is(byType(plain, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[0].inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm, "AES256");
  t.false(JSON.stringify(snapshotPolicy(plain).document).includes("kms:"));
});

test("the bastion's host key is the program's: its private half only in a SecureString parameter (never user data), fetched at boot, and every step pins its public half", async (t) => {
  const e = await evaluateDev();
  const key = byName(e, "bastion-host-key", "tls:index/privateKey:PrivateKey");
  t.is(key.inputs.algorithm, "ED25519");
  t.true(key.options.additionalSecretOutputs.includes("privateKeyOpenssh"));
  const parameter = byName(e, "bastion-host-key", "aws:ssm/parameter:Parameter");
  t.is(parameter.inputs.type, "SecureString");
  t.is(parameter.inputs.name, "/kubeadm-ha/kubeadm-ha-dev/bastion/ssh-host-ed25519-key");
  t.is(parameter.inputs.value, key.outputs.privateKeyOpenssh);
  t.true(parameter.secretInputs.includes("value"));
  const bastion = byName(e, "bastion", INSTANCE);
  const userData = String(bastion.inputs.userData);
  const privateBody = String(key.outputs.privateKeyOpenssh).split("\n")[1];
  t.false(userData.includes(privateBody), "no private key material in user data");
  t.regex(userData, /--parameter\n\s+- \/kubeadm-ha\/kubeadm-ha-dev\/bastion\/ssh-host-ed25519-key/);
  t.true(bastion.inputs.userDataReplaceOnChange, "a new key (a new parameter version) is a new bastion");
  t.is(bastion.inputs.iamInstanceProfile, byName(e, "bastion", "aws:iam/instanceProfile:InstanceProfile").outputs.name);
  const pinned = String(key.outputs.publicKeyOpenssh).trim().split(/\s+/).slice(0, 2).join(" ");
  const steps = byType(e, COMMAND);
  t.true(steps.length > 20);
  for (const step of steps) {
    t.is(step.inputs.connection.proxy.hostKey, pinned, `${step.name} pins the bastion`);
    t.is(step.inputs.connection.hostKey, undefined, `${step.name}: the node's own key is not pinned on AWS`);
  }
  // Nodes keep the plain user data; only the bastion fetches a key.
  t.false(String(byName(e, "cp-0", INSTANCE).inputs.userData).includes("python3"));
});

test("the world-open opt-in works end to end: with apiAccess.allowOpenToWorld the API's 0.0.0.0/0 becomes its one ingress rule", async (t) => {
  const e = await evaluateDev(["apiAccess={allowedCidrs: [0.0.0.0/0], internal: false, allowOpenToWorld: true}"]);
  const rules = byType(e, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").filter((r) => r.inputs.cidrIpv4 === "0.0.0.0/0");
  t.deepEqual(rules.map((r) => [r.inputs.fromPort, r.inputs.toPort]), [[6443, 6443]]);
  await t.throwsAsync(evaluateDev(["apiAccess={allowedCidrs: [0.0.0.0/0], internal: false}"]), { message: /apiAccess\.allowedCidrs: 0\.0\.0\.0\/0 covers the whole IPv4 space/ });
});

test("static hosts: pinned keys reach each connection and the jump; the unpinned ones are named for the warning", async (t) => {
  const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ0YjtG0YzUKCFd0sbIH76PJ0Kc8lF2QOD7HXMvJvHc";
  const e = await evaluateStack("lab", [
    `hosts.workers=[{name: k8s-worker1, address: 192.168.56.11, hostKey: '${key} root@k8s-worker1'}, {name: k8s-worker2, address: 192.168.56.12}]`,
    `hosts.bastion={address: jump.lab.example, hostKey: '${key}'}`,
  ]);
  t.is(byName(e, "k8s-worker1-join").inputs.connection.hostKey, key, "normalised: the comment dropped");
  t.is(byName(e, "k8s-worker2-join").inputs.connection.hostKey, undefined);
  t.is(byName(e, "k8s-worker2-join").inputs.connection.proxy.hostKey, key);
  const hosts = {
    provider: "static" as const,
    controlPlanes: [{ name: "a", address: "a", privateAddress: "10.0.0.1", user: "u", port: 22, hostKey: key }],
    workers: [{ name: "b", address: "b", privateAddress: "10.0.0.2", user: "u", port: 22 }],
    etcd: [],
    bastion: { address: "j", user: "u", port: 22 },
  };
  t.deepEqual(unpinnedHostKeys(hosts), ["hosts.workers[0]", "hosts.bastion"]);
  t.deepEqual(unpinnedHostKeys({ ...hosts, workers: [], bastion: { ...hosts.bastion, hostKey: key } }), []);
});
