// Resuming after a failure: a failure injected once at each phase of cp-0's and a worker's upgrade stops the chain
// at the failed step; rerunning that step and the ones after it (what `pulumi up` does again) completes and converges.
// Recording stubs stand for kubeadm, kubectl, kubelet, apt-get, apt-mark and systemctl (test/support/upgradeStubs.ts).
import test from "ava";
import { assertConverged, cluster, cp0Steps, FROM, injected, runChain, stateHas, STUBS, TO, workerSteps } from "./support/upgradeRuns";

const cpFailurePoints = [
  "gpg ",
  "apt-mark unhold kubeadm",
  "apt-mark hold kubeadm",
  "cordon cp-0",
  "drain cp-0",
  "kubeadm upgrade plan",
  "kubeadm upgrade apply",
  "apt-mark unhold kubelet",
  "apt-mark hold kubelet",
  "systemctl daemon-reload",
  "systemctl restart kubelet",
  "uncordon cp-0",
];
const workerFailurePoints = [
  "cordon worker-0",
  "drain worker-0",
  "gpg ",
  "apt-mark unhold kubeadm",
  "apt-mark hold kubeadm",
  "kubeadm upgrade node",
  "apt-mark unhold kubelet",
  "apt-mark hold kubelet",
  "systemctl daemon-reload",
  "systemctl restart kubelet",
  "uncordon worker-0",
];

for (const [who, points] of [["cp-0", cpFailurePoints], ["worker-0", workerFailurePoints]] as const) {
  for (const point of points) {
    test(`${who}: a failure injected at "${point}" stops the chain; rerunning from the failed step completes and converges ${STUBS}`, async (t) => {
      const steps = who === "cp-0" ? cp0Steps(TO) : workerSteps(TO);
      const seed = who === "cp-0" ? cluster(FROM) : cluster(FROM, { serverVersion: TO, nodes: { "cp-0": { kubelet: TO }, "worker-0": {} } });
      const first = await runChain(t, steps, { root: await injected(t, seed, point, who), node: who });
      t.not(first.failed, -1, `the injected failure at "${point}" failed a step`);
      t.false(stateHas(first.root, "fail-at"), "the failure point was reached");
      t.true(first.runs[first.failed].stderr.split("\n").some((l) => l.includes("injected failure: ") && l.includes(point.trim())), "the failed step shows the failure");
      // Pulumi reruns the failed step and everything after it; the steps before it succeeded and do not run again.
      const rerun = await runChain(t, steps.slice(first.failed), { root: first.root, node: who });
      t.is(rerun.failed, -1, rerun.runs.map((r) => r.stderr).join("\n"));
      assertConverged(t, rerun.root, who, TO, who === "cp-0");
    });
  }
}

