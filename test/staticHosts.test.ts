// Existing machines over SSH (hosts.provider: static) through the capturing engine.
import test from "ava";
import { stepsOf } from "../infra/offline/plan";
import { byName, byType, evaluateDev, evaluateStack, waitsFor } from "./support/program";

const COMMAND = "command:remote:Command";
const haproxyLab = [
  "hosts.controlPlanes=[{name: k8s-cp1, address: 192.168.56.20, privateAddress: 10.10.0.20}, {name: k8s-cp2, address: 192.168.56.21, privateAddress: 10.10.0.21}, {name: k8s-cp3, address: 192.168.56.22, privateAddress: 10.10.0.22}]",
  "apiEndpoint={haproxy: true, virtualIp: 10.10.0.100, interface: ens18}",
  "hosts.bastion={address: jump.lab.example, user: ops, port: 2200}",
];

test("the lab stack registers no AWS resource and runs the same lifecycle as AWS, step for step", async (t) => {
  const lab = await evaluateStack("lab");
  t.deepEqual(lab.resources.filter((r) => r.type.startsWith("aws:")).map((r) => r.type), []);
  const aws = await evaluateDev(["controlPlane.count=1", "workers.count=2"]);
  const rename = (n: string) => n.replace(/^cp-0$/, "k8s-control").replace(/^worker-0$/, "k8s-worker1").replace(/^worker-1$/, "k8s-worker2");
  const perNode = (steps: ReturnType<typeof stepsOf>) => {
    const m = new Map<string, string[]>();
    for (const s of steps) m.set(rename(s.node), [...(m.get(rename(s.node)) ?? []), s.step]);
    return m;
  };
  const onAws = perNode(stepsOf(aws));
  const onLab = perNode(stepsOf(lab));
  t.deepEqual([...onLab.keys()].sort(), [...onAws.keys()].sort());
  for (const [node, steps] of onAws) t.deepEqual(onLab.get(node), steps, node);
  const join = byName(lab, "k8s-worker1-join");
  t.is(join.displayInputs.connection.host, "192.168.56.11");
  t.is(join.displayInputs.connection.user, "ubuntu");
  t.is(join.displayInputs.connection.proxy, undefined, "no bastion in the lab");
  t.regex(String(byName(lab, "k8s-control-init").inputs.stdin), /controlPlaneEndpoint: 192\.168\.56\.10:6443/);
  t.false(String(byName(lab, "cluster-upgrade-snapshot").inputs.create).includes("S3_URI='s3:"), "no upload without a bucket");
});

test("HAProxy + keepalived: every control plane gets its API endpoint before init; the VIP is the endpoint; the bastion is the jump host", async (t) => {
  const e = await evaluateStack("lab", haproxyLab);
  const init = byName(e, "k8s-cp1-init");
  for (const cp of ["k8s-cp1", "k8s-cp2", "k8s-cp3"]) {
    const step = byName(e, `${cp}-api-endpoint`);
    t.true(waitsFor(e, init, step), `${cp}'s HAProxy/keepalived before init`);
    t.deepEqual(step.displayInputs.connection.proxy, { host: "jump.lab.example", port: 2200, user: "ops", privateKey: "[secret]" });
  }
  t.regex(String(byName(e, "k8s-cp1-api-endpoint").inputs.create), /state MASTER/);
  t.regex(String(byName(e, "k8s-cp2-api-endpoint").inputs.create), /state BACKUP/);
  const config = String(init.inputs.stdin);
  t.regex(config, /controlPlaneEndpoint: 10\.10\.0\.100:8443/);
  t.regex(config, /certSANs:\n\s+- 10\.10\.0\.100/);
  t.is(byType(e, COMMAND).filter((r) => r.name.endsWith("-api-endpoint")).length, 3);
  t.deepEqual(e.resources.filter((r) => r.type.startsWith("aws:")), []);
});
