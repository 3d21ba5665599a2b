import { readFileSync } from "node:fs";
import { join } from "node:path";

// The shared frame of every node script. Invariants every step script keeps:
// - `set -euo pipefail`; every wait is bounded (`timeout` or a deadline loop); every retry is bounded.
// - Every line it prints names the node and the step: "[cp-1] join: ...".
// - Idempotent: each action is guarded by what the node shows (a file, a version, a node condition).
// - Secrets arrive on stdin and are written only to 0600 files; they never appear in argv or output.
// - Paths are prefixed with $R (KUBEADM_HA_ROOT, empty on real nodes) so tests can run a script against a
//   scratch root with recording stubs for binaries that cannot exist on a test machine.

export interface StepIdentity {
  /** The node the step runs on (cp-0, worker-3, etcd-1). */
  node: string;
  /** The step's short name (prepare, init, join, upgrade-kubeadm). */
  step: string;
}

/** Single-quotes a value for bash. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Bash helpers shared by every step (kept as a real file so shellcheck reads it as it is). */
const helpers = readFileSync(join(__dirname, "lib.sh"), "utf8").trim();

/** Wraps a step body in the common frame. */
export function nodeScript(id: StepIdentity, body: string): string {
  return [
    "#!/usr/bin/env bash",
    "set -euo pipefail",
    `NODE=${shellQuote(id.node)}`,
    `STEP=${shellQuote(id.step)}`,
    helpers,
    body.trim(),
    `log "done"`,
    "",
  ].join("\n");
}

/**
 * The command Pulumi runs over SSH: the step script travels in a quoted here-document (so nothing in it is
 * expanded by the login shell) and runs as root; the command's stdin (secrets, if any) flows through to it.
 */
export function remoteInvocation(script: string): string {
  const marker = "KUBEADM_HA_SCRIPT_EOF";
  if (script.includes(marker)) throw new Error(`a node script must not contain ${marker}`);
  return [
    'f=$(mktemp /tmp/kubeadm-ha-step.XXXXXX)',
    'trap \'rm -f "$f"\' EXIT',
    `cat >"$f" <<'${marker}'`,
    script.trimEnd(),
    marker,
    'sudo -n bash "$f"',
    "",
  ].join("\n");
}
