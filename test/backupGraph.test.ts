// Snapshots and the declared restore through the capturing engine: where each step runs and what it waits for.
import test from "ava";
import { diffEvaluations } from "../infra/offline/plan";
import { byName, byType, evaluateDev, waitsFor } from "./support/program";

const COMMAND = "command:remote:Command";
const restoreSets = ["restore={snapshot: s3://team-backups/kubeadm-ha-dev/etcd/before-incident.db, requestId: incident-42}"];

test("the pre-upgrade snapshot precedes the upgrade's first mutating step, and uploads to the cluster's prefix", async (t) => {
  const e = await evaluateDev();
  const snapshot = byName(e, "cluster-upgrade-snapshot");
  t.true(waitsFor(e, byName(e, "cp-0-upgrade-kubeadm"), snapshot));
  t.true(waitsFor(e, snapshot, byName(e, "cluster-upgrade-preflight")));
  t.regex(snapshot.inputs.create, /REASON='pre-upgrade-v1\.35\.9'/);
  t.regex(snapshot.inputs.create, /CLUSTER='kubeadm-ha-dev'/, "the sidecar names the cluster (<project>-<stack>)");
  const bucket = byType(e, "aws:s3/bucket:Bucket")[0];
  t.true(String(snapshot.inputs.create).includes(`S3_URI='s3://${bucket.outputs.bucket}/kubeadm-ha-dev/etcd'`));
  for (const cp of ["cp-0", "cp-1", "cp-2"]) {
    t.true(waitsFor(e, snapshot, byName(e, `${cp}-etcd-snapshot-tools`)), `${cp} has etcdctl/etcdutl before any snapshot`);
    t.regex(byName(e, `${cp}-snapshot-schedule`).inputs.create, /timer enabled: \*-\*-\* 00\/6:00:00/);
  }
});

test("the snapshot bucket: versioned, encrypted, private, expiring; nodes may put and get only under the cluster's prefix", async (t) => {
  const e = await evaluateDev(["snapshots={retentionDays: 14}"]);
  t.is(byType(e, "aws:s3/bucketVersioning:BucketVersioning")[0].inputs.versioningConfiguration.status, "Enabled");
  t.is(byType(e, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[0].inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm, "AES256");
  t.like(byType(e, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[0].inputs, { blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
  const rule = byType(e, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[0].inputs.rules[0];
  t.is(rule.expiration.days, 14);
  t.is(rule.filter.prefix, "kubeadm-ha-dev/etcd/");
  t.true(byType(e, "aws:s3/bucket:Bucket")[0].options.protect, "the backups survive a destroy");
  const policy = JSON.parse(byType(e, "aws:iam/rolePolicy:RolePolicy")[0].inputs.policy);
  const bucket = byType(e, "aws:s3/bucket:Bucket")[0].outputs.bucket;
  t.deepEqual(policy.Statement[0], { Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject"], Resource: `arn:aws:s3:::${bucket}/kubeadm-ha-dev/etcd/*` });
  t.false(JSON.stringify(policy).includes("s3:*"));
});

test("an existing bucket is used as it is: no bucket resources, the policy names it", async (t) => {
  const e = await evaluateDev(["snapshots={bucket: team-etcd-backups}"]);
  t.is(byType(e, "aws:s3/bucket:Bucket").length, 0);
  t.regex(byType(e, "aws:iam/rolePolicy:RolePolicy")[0].inputs.policy, /arn:aws:s3:::team-etcd-backups\/kubeadm-ha-dev\/etcd\/\*/);
});

test("on demand: a snapshots.requestId adds one snapshot step; a new id updates only that step", async (t) => {
  const first = await evaluateDev(["snapshots={requestId: before-migration}"]);
  const step = byName(first, "cp-0-snapshot-request");
  t.regex(step.inputs.create, /REASON='request-before-migration'/);
  const second = await evaluateDev(["snapshots={requestId: after-migration}"]);
  const changes = diffEvaluations(first, second);
  t.deepEqual(changes.map((c) => [c.urn.split("::").pop(), c.op, c.replace]), [["cp-0-snapshot-request", "change", false]]);
});

test("a declared restore runs its phases in order: every apiserver stops before any etcd member, nothing before all verified", async (t) => {
  const e = await evaluateDev(restoreSets);
  const cps = ["cp-0", "cp-1", "cp-2"];
  const phase = (p: string) => cps.map((cp) => byName(e, `${cp}-restore-${p}`));
  const order = ["fetch-and-verify", "stop-apiserver", "stop-etcd", "restore-member", "point-etcd-at-restored-data", "start-etcd", "wait-etcd-healthy", "start-apiserver"];
  for (let i = 1; i < order.length; i++) {
    for (const later of phase(order[i])) for (const earlier of phase(order[i - 1])) t.true(waitsFor(e, later, earlier), `${later.name} after ${earlier.name}`);
  }
  for (const stopEtcd of phase("stop-etcd")) for (const stopApi of phase("stop-apiserver")) t.true(waitsFor(e, stopEtcd, stopApi));
  for (const s of phase("restore-member")) t.regex(s.inputs.create, /incident-42/);
  for (const s of phase("fetch-and-verify")) t.regex(s.inputs.create, /s3:\/\/team-backups\/kubeadm-ha-dev\/etcd\/before-incident\.db/);
  for (const s of phase("fetch-and-verify")) t.regex(s.inputs.create, /CLUSTER='kubeadm-ha-dev'/, "the fetch compares the sidecar with this cluster");
  const upgradeEnd = byName(e, "worker-1-uncordon");
  for (const s of phase("fetch-and-verify")) t.true(waitsFor(e, s, upgradeEnd), "never during an upgrade of the same run");
});

test("external etcd: snapshots and the restore run on the etcd hosts, the apiserver phases on the control planes", async (t) => {
  const e = await evaluateDev(["etcdTopology=external", "etcd={count: 3}", ...restoreSets]);
  const names = byType(e, COMMAND).map((r) => r.name);
  t.deepEqual(names.filter((n) => n.endsWith("-snapshot-schedule")).sort(), ["etcd-0-snapshot-schedule", "etcd-1-snapshot-schedule", "etcd-2-snapshot-schedule"]);
  t.false(names.some((n) => n.endsWith("-etcd-snapshot-tools")), "the members already have etcd's own tools");
  t.is(byName(e, "cluster-upgrade-snapshot").displayInputs.connection.host, byName(e, "etcd-0", "aws:ec2/instance:Instance").outputs.privateIp);
  t.deepEqual(names.filter((n) => n.endsWith("-restore-stop-etcd")).sort(), ["etcd-0-restore-stop-etcd", "etcd-1-restore-stop-etcd", "etcd-2-restore-stop-etcd"]);
  t.deepEqual(names.filter((n) => n.endsWith("-restore-stop-apiserver")).sort(), ["cp-0-restore-stop-apiserver", "cp-1-restore-stop-apiserver", "cp-2-restore-stop-apiserver"]);
});

test("every step that runs the AWS CLI waits for the step that installs it: the upgrade snapshot, an on-demand snapshot and the restore's fetch wait for the member's schedule step", async (t) => {
  const e = await evaluateDev(["snapshots={requestId: before-migration}", ...restoreSets]);
  const schedule = (member: string) => byName(e, `${member}-snapshot-schedule`);
  t.regex(schedule("cp-0").inputs.create, /snap install aws-cli --classic/, "the schedule step installs the AWS CLI (uploads are on)");
  for (const step of ["cluster-upgrade-snapshot", "cp-0-snapshot-request"]) {
    t.regex(byName(e, step).inputs.create, /aws s3 cp/);
    t.true(waitsFor(e, byName(e, step), schedule("cp-0")), `${step} waits for cp-0-snapshot-schedule`);
  }
  for (const cp of ["cp-0", "cp-1", "cp-2"]) {
    const fetch = byName(e, `${cp}-restore-fetch-and-verify`);
    t.true(waitsFor(e, fetch, schedule(cp)), `${fetch.name} waits for ${cp}-snapshot-schedule`);
  }
  const external = await evaluateDev(["etcdTopology=external", "etcd={count: 3}"]);
  t.true(waitsFor(external, byName(external, "cluster-upgrade-snapshot"), byName(external, "etcd-0-snapshot-schedule")));
});

const restoreSteps = (e: { resources: { name: string }[] }) => e.resources.map((r) => r.name).filter((n) => n.includes("-restore-"));

test("a finished restore never runs again: control planes 3 → 5 with restore still set declares no restore step on any node, old or new", async (t) => {
  const restored = await evaluateDev(restoreSets);
  t.true(restoreSteps(restored).length > 0);
  t.deepEqual(restored.stackOutputs.finishedRestores, ["incident-42"], "recorded once every node's last phase is done");
  const scaled = await evaluateDev([...restoreSets, "controlPlane.count=5"], restored.stackOutputs);
  t.deepEqual(restoreSteps(scaled), [], "cp-3 and cp-4 never stop their apiserver or restore the old snapshot; cp-0..2 never again");
  t.deepEqual(scaled.stackOutputs.finishedRestores, ["incident-42"], "the record is kept");
  const gone = diffEvaluations(restored, scaled).filter((d) => d.urn.includes("-restore-"));
  t.true(gone.length > 0 && gone.every((d) => d.op === "delete"));
  for (const d of gone) t.is(restored.resources.find((r) => r.urn === d.urn)!.inputs.delete, undefined, "deleting a phase runs nothing on the node");
  // A new request id is a new restore.
  const again = await evaluateDev(["restore={snapshot: s3://team-backups/kubeadm-ha-dev/etcd/before-incident.db, requestId: incident-43}", "controlPlane.count=5"], scaled.stackOutputs);
  t.is(restoreSteps(again).filter((n) => n.endsWith("-restore-stop-apiserver")).length, 5);
});

test("a restore the stack has no record of finishing is refused while the members change, naming the key; with the members unchanged it is recorded", async (t) => {
  const restored = await evaluateDev(restoreSets);
  const unrecorded = { ...restored.stackOutputs, finishedRestores: [] };
  const err = await t.throwsAsync(evaluateDev([...restoreSets, "controlPlane.count=5"], unrecorded));
  t.is(
    err!.message,
    "Invalid configuration:\n  restore: restore incident-42 is declared and the stack has no record of it finishing, and this run changes the members (controlPlane.count 3 → 5): a new member would restore the snapshot again while the others serve. Run pulumi up once with the members unchanged (it finishes the restore, or records it as finished), or remove restore, then change the counts",
  );
  const same = await evaluateDev(restoreSets, unrecorded);
  t.deepEqual(diffEvaluations(restored, same).filter((d) => d.urn.includes("-restore-")), [], "the same phases, unchanged: nothing runs");
  t.deepEqual(same.stackOutputs.finishedRestores, ["incident-42"]);
});
