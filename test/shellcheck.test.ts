// Every node script the program can render passes shellcheck with no finding at all (style level included), and
// so does the SSH wrapper around one. The catalog (infra/scripts/catalog.ts) lists every builder.
import test from "ava";
import { spawn } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { join } from "node:path";
import { sampleScripts } from "../infra/scripts/catalog";
import { remoteInvocation } from "../infra/scripts/common";

/** test/support/tools.ts (written by test/tools/ensure-tools.sh's owner) when present, else shellcheck on PATH. */
async function shellcheckPath(): Promise<string> {
  const tools = join(__dirname, "support", "tools.ts");
  if (existsSync(tools)) {
    const m = (await import(tools)) as { toolPath?: { shellcheck?: string } };
    const path = m.toolPath?.shellcheck;
    if (path) {
      try {
        accessSync(path, constants.X_OK);
        return path;
      } catch {
        /* not fetched yet: fall back to PATH */
      }
    }
  }
  return "shellcheck";
}

const shellcheck = shellcheckPath();

function check(script: string): Promise<{ code: number; output: string }> {
  return shellcheck.then(
    (bin) =>
      new Promise((resolve, reject) => {
        const child = spawn(bin, ["-s", "bash", "-S", "style", "-f", "gcc", "-"], { stdio: ["pipe", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", (e) =>
          reject(new Error(`cannot run ${bin} (${e.message}): run 'bash test/tools/ensure-tools.sh' or install shellcheck`)),
        );
        child.on("close", (code) => resolve({ code: code ?? 1, output }));
        child.stdin.end(script);
      }),
  );
}

const samples = sampleScripts();

test("the catalog renders every builder in infra/scripts/", (t) => {
  const names = samples.map((s) => s.name.split(" ")[0]);
  for (const builder of [
    "prepareNodeScript",
    "initControlPlaneScript",
    "joinControlPlaneScript",
    "joinWorkerScript",
    "readKubeconfigScript",
    "waitForNodesScript",
  ]) {
    t.true(names.includes(builder), `${builder} is missing from sampleScripts()`);
  }
  t.is(new Set(samples.map((s) => s.name)).size, samples.length, "sample names are unique");
});

for (const sample of samples) {
  test(`shellcheck -S style finds nothing in ${sample.name}`, async (t) => {
    t.true(sample.script.startsWith("#!/usr/bin/env bash\nset -euo pipefail\n"));
    const { code, output } = await check(sample.script);
    t.is(output, "");
    t.is(code, 0);
  });
}

test("shellcheck -S style finds nothing in the SSH wrapper (remoteInvocation) of a step", async (t) => {
  const { code, output } = await check(`#!/usr/bin/env bash\n${remoteInvocation(samples[0].script)}`);
  t.is(output, "");
  t.is(code, 0);
});
