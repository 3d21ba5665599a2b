// Whole-catalog rules every generated node script keeps, read statically from its text: every call that can wait on
// something outside the script (systemd, the cluster, a download) is bounded (the reader: test/support/boundedCommands.ts);
// and what running them needs from a host is written down.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sampleScripts } from "../infra/scripts/catalog";
import { remoteInvocation } from "../infra/scripts/common";
import { etcdPaths } from "../infra/scripts/etcdMember";
import { etcdEnvFilePath, kubeletKubeconfigPath } from "../infra/scripts/nodeIdentity";
import { kubeletKubeconfig } from "../lifecycle/scripts/common";
import { unboundedCalls } from "./support/boundedCommands";

test("every blocking call in every generated script is bounded (timeout, or the command's own deadline)", (t) => {
  const found = sampleScripts().flatMap((s) => unboundedCalls(s.script).map((u) => `${s.name}:${u.line}: ${u.command}: ${u.text}`));
  t.deepEqual(found, []);
});

test("no generated script sets ETCDCTL_API: etcdctl 3.4 and later speak v3 by default, and etcdctl 3.6 warns about the variable on every call", (t) => {
  const found = sampleScripts().filter((s) => s.script.includes("ETCDCTL_API")).map((s) => s.name);
  t.deepEqual(found, []);
});

test("the bound reader: flags unbounded calls in code, not in strings, comments or array literals; accepts timeout, retry+timeout and own deadlines", (t) => {
  const script = [
    "systemctl restart kubelet",
    "if ! systemctl is-active --quiet kubelet; then :; fi",
    'x=$(kubectl get nodes)',
    'y="$(aws s3 ls)"',
    "retry 3 10 snap install aws-cli",
    "foo \\",
    "  | kubeadm reset -f",
    "A=1 kubeadm init",
    "curl -fsS https://x",
    // bounded, or not code:
    "timeout 5 kubectl get nodes",
    "timeout 60 env ETCDCTL_DIAL_TIMEOUT=3s etcdctl endpoint health",
    "retry 3 10 timeout 600 snap install aws-cli --classic",
    "curl -fsS --max-time 5 https://x",
    "flock -w 30 9",
    "v=$(kubeadm version -o short)",
    "echo 'kubectl drain x'",
    'log "kubeadm init failed"',
    "# systemctl restart kubelet",
    "TOOLS=(etcdctl etcdutl)",
    "cat <<'EOF'",
    "systemctl restart kubelet",
    "EOF",
  ].join("\n");
  t.deepEqual(
    unboundedCalls(script).map((u) => `${u.line} ${u.command}`),
    ["1 systemctl", "2 systemctl", "3 kubectl", "4 aws", "5 snap", "6 kubeadm", "8 kubeadm", "9 curl"],
  );
});

test("steps run their script with sudo -n, and the README and Pulumi.lab.yaml tell static-host users they need passwordless sudo", (t) => {
  t.regex(remoteInvocation("#!/usr/bin/env bash\ntrue\n"), /^sudo -n bash "\$f"$/m);
  const root = join(__dirname, "..");
  t.regex(readFileSync(join(root, "README.md"), "utf8"), /needs \*\*passwordless sudo\*\*: every step runs its script with `sudo -n bash`/);
  t.regex(readFileSync(join(root, "Pulumi.lab.yaml"), "utf8"), /^# Each host's user needs passwordless sudo: every step runs `sudo -n bash`/m);
});

test("the identity checks read the files the other steps write: the etcd environment file, the kubelet's certificate and kubeconfig", (t) => {
  t.is(etcdEnvFilePath, etcdPaths.envFile);
  t.is(kubeletKubeconfigPath, kubeletKubeconfig);
});
