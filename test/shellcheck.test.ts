// Every node script the program can render passes shellcheck with no finding at all (style level included), and
// so does the SSH wrapper around one. The catalog (infra/scripts/catalog.ts) lists every builder.
import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sampleScripts } from "../infra/scripts/catalog";
import { toolPath } from "./support/tools";
import { remoteInvocation } from "../infra/scripts/common";

/** The shellcheck that test/tools/ensure-tools.sh unpacked (never one on PATH: a fresh machine has none). */
const shellcheck = Promise.resolve().then(() => toolPath.shellcheck());

function runShellcheck(files: string[]): Promise<{ code: number; output: string }> {
  return shellcheck.then(
    (bin) =>
      new Promise((resolve, reject) => {
        const child = spawn(bin, ["-s", "bash", "-S", "style", "-f", "gcc", ...files], { stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", (e) => reject(new Error(`cannot run ${bin} (${e.message}): run 'bash test/tools/ensure-tools.sh'`)));
        child.on("close", (code) => resolve({ code: code ?? 1, output }));
      }),
  );
}

const samples = sampleScripts();
const wrapper = `#!/usr/bin/env bash\n${remoteInvocation(samples[0].script)}`;

/** One shellcheck run over every sample (one process, not one per script); findings by file. */
const findings: Promise<Map<string, string[]>> = (async () => {
  const dir = mkdtempSync(join(tmpdir(), "kubeadm-ha-shellcheck-"));
  const files = [...samples.map((s, i) => ({ name: s.name, script: s.script, file: join(dir, `sample-${i}.sh`) })), { name: "remoteInvocation", script: wrapper, file: join(dir, "wrapper.sh") }];
  files.forEach((f) => writeFileSync(f.file, f.script));
  const { output } = await runShellcheck(files.map((f) => f.file));
  rmSync(dir, { recursive: true, force: true });
  const byName = new Map(files.map((f) => [f.name, [] as string[]]));
  for (const line of output.split("\n").filter(Boolean)) {
    const owner = files.find((f) => line.startsWith(`${f.file}:`));
    if (!owner) throw new Error(`shellcheck: ${line}`);
    byName.get(owner.name)!.push(line.replace(owner.file, owner.name));
  }
  return byName;
})();

/** Every exported `...Script(` builder in the script folders renders in the catalog, so none escapes shellcheck. */
function builderNames(): string[] {
  const root = join(__dirname, "..");
  const names: string[] = [];
  for (const dir of ["infra/scripts", "lifecycle/scripts"]) {
    for (const file of readdirSync(join(root, dir)).filter((f) => f.endsWith(".ts"))) {
      for (const m of readFileSync(join(root, dir, file), "utf8").matchAll(/^export function (\w+Script)\(/gm)) names.push(m[1]);
    }
  }
  return names;
}

test("the catalog renders every script builder in infra/scripts/ and lifecycle/scripts/", (t) => {
  const names = new Set(samples.map((s) => s.name.split(" ")[0]));
  const builders = builderNames();
  t.true(builders.length > 30);
  // nodeScript is the frame every builder uses; the restore dispatchers only pick one of the phase builders.
  const notBuilders = new Set(["nodeScript", "restoreEtcdPhaseScript", "restoreApiserverPhaseScript"]);
  const missing = builders.filter((b) => !notBuilders.has(b) && !names.has(b));
  t.deepEqual(missing, [], "builders missing from sampleScripts()");
  t.is(new Set(samples.map((s) => s.name)).size, samples.length, "sample names are unique");
});

for (const sample of samples) {
  test(`shellcheck -S style finds nothing in ${sample.name}`, async (t) => {
    t.true(sample.script.startsWith("#!/usr/bin/env bash\nset -euo pipefail\n"));
    t.deepEqual((await findings).get(sample.name), []);
  });
}

test("shellcheck -S style finds nothing in the SSH wrapper (remoteInvocation) of a step", async (t) => {
  t.deepEqual((await findings).get("remoteInvocation"), []);
});

test("a script with a finding is reported (the check can fail)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "kubeadm-ha-shellcheck-"));
  const file = join(dir, "bad.sh");
  writeFileSync(file, "#!/usr/bin/env bash\necho $1\n");
  const { code, output } = await runShellcheck([file]);
  rmSync(dir, { recursive: true, force: true });
  t.not(code, 0);
  t.regex(output, /SC2086/);
});
