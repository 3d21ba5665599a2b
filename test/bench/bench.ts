// `npm run bench`: the cost of evaluating the program offline at fleet scale, against a baseline program that
// registers exactly the same resource types and counts (same inputs, no logic) under the same engine.
// Each measurement runs in its own process so peak memory is that run's alone.
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { projectName } from "../../infra/config";
import { Evaluation, evaluate } from "../../infra/offline/engine";
import { devConfig } from "../support/program";
import { runProgram } from "../../infra/program";

interface Shape {
  label: string;
  sets: string[];
}

const shapes: Shape[] = [
  { label: "stacked, 3 cp, 30 workers", sets: ["controlPlane.count=3", "workers.count=30"] },
  { label: "stacked, 3 cp, 100 workers", sets: ["controlPlane.count=3", "workers.count=100"] },
  { label: "stacked, 3 cp, 300 workers", sets: ["controlPlane.count=3", "workers.count=300"] },
  { label: "external, 3 cp, 300 workers", sets: ["controlPlane.count=3", "workers.count=300", "etcdTopology=external", "etcd={count: 3}"] },
];

interface Measurement {
  seconds: number;
  peakMiB: number;
  resources: number;
  workerSteps: number;
}

async function evaluateShape(shape: Shape): Promise<Evaluation> {
  const { config, secretKeys } = devConfig(shape.sets);
  return evaluate({ project: projectName, stack: "dev", config, secretKeys, program: runProgram });
}

interface FlatRegistration {
  type: string;
  name: string;
  custom: boolean;
  inputs: Record<string, unknown>;
}

function flatten(e: Evaluation): FlatRegistration[] {
  return e.resources
    .filter((r) => r.type !== "pulumi:pulumi:Stack" && r.type !== "pulumi:pulumi:StackReference")
    .map((r) => ({ type: r.type, name: r.name, custom: r.custom, inputs: r.inputs }));
}

/** The SDK class of every resource type the program registers (a class's `__pulumiType` is its type token). */
function sdkClasses(): Map<string, new (name: string, args: any, opts?: any) => pulumi.Resource> {
  const modules: Record<string, any>[] = [aws.ec2, aws.vpc, aws.lb, aws.iam, aws.s3, command.remote, tls, random, k8s, k8s.helm.v3];
  const classes = new Map<string, any>();
  for (const mod of modules) {
    for (const key of Object.keys(mod)) {
      const value = mod[key];
      if (typeof value === "function" && typeof value.__pulumiType === "string") classes.set(value.__pulumiType, value);
    }
  }
  classes.set("pulumi:providers:kubernetes", k8s.Provider);
  return classes;
}

/** The same registrations as the program made, flat, with their recorded inputs and nothing computed. */
function baselineProgram(registrations: FlatRegistration[]) {
  const classes = sdkClasses();
  return async () => {
    for (const r of registrations) {
      if (!r.custom) {
        new pulumi.ComponentResource(r.type, r.name, {});
        continue;
      }
      const Class = classes.get(r.type);
      if (!Class) throw new Error(`bench: no SDK class for ${r.type}`);
      new Class(r.name, { ...r.inputs });
    }
    return {};
  };
}

/** The program child writes its registrations to `file`; the baseline child replays them from there. */
async function measureOne(kind: "program" | "baseline", index: number, file: string): Promise<Measurement> {
  const shape = shapes[index];
  // Both sides first evaluate the program once at its smallest shape: module loading and JIT warm-up are paid
  // before the clock starts, in both.
  await evaluateShape({ label: "warm-up", sets: ["controlPlane.count=1", "workers.count=0"] });
  let evaluation: Evaluation;
  let seconds: number;
  if (kind === "program") {
    const started = performance.now();
    evaluation = await evaluateShape(shape);
    seconds = (performance.now() - started) / 1000;
    writeFileSync(file, JSON.stringify(flatten(evaluation)));
  } else {
    const baseline = baselineProgram(JSON.parse(readFileSync(file, "utf8")));
    const started = performance.now();
    evaluation = await evaluate({ project: projectName, stack: "dev", config: {}, program: baseline });
    seconds = (performance.now() - started) / 1000;
  }
  return {
    seconds,
    peakMiB: process.resourceUsage().maxRSS / 1024,
    resources: evaluation.resources.filter((r) => r.custom).length,
    workerSteps: evaluation.resources.filter((r) => r.custom && /^worker-0(-|$)/.test(r.name)).length,
  };
}

function runChild(kind: string, index: number, file: string): Measurement {
  const out = execFileSync(process.execPath, ["--import=tsx", __filename, "--one", kind, String(index), file], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(out.trim().split("\n").pop()!);
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === "--real") {
    // The real CLI's figures: test/bench/realBench.ts (its own process, its own arguments).
    execFileSync(process.execPath, ["--import=tsx", join(__dirname, "realBench.ts"), ...argv.slice(1)], { stdio: "inherit" });
    return;
  }
  if (argv[0] === "--one") {
    const m = await measureOne(argv[1] as "program" | "baseline", Number(argv[2]), argv[3]);
    process.stdout.write(`${JSON.stringify(m)}\n`);
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), "kubeadm-ha-bench-"));
  const rows: string[] = [];
  rows.push("| shape | program s | baseline s | ratio | program peak MiB | baseline peak MiB | custom resources | resources per worker |");
  rows.push("|---|---|---|---|---|---|---|---|");
  const results: { program: Measurement; baseline: Measurement }[] = [];
  for (let i = 0; i < shapes.length; i++) {
    const file = join(scratch, `registrations-${i}.json`);
    const program = runChild("program", i, file);
    const baseline = runChild("baseline", i, file);
    results.push({ program, baseline });
    rows.push(
      `| ${shapes[i].label} | ${program.seconds.toFixed(2)} | ${baseline.seconds.toFixed(2)} | ${(program.seconds / baseline.seconds).toFixed(2)} | ${program.peakMiB.toFixed(0)} | ${baseline.peakMiB.toFixed(0)} | ${program.resources} | ${program.workerSteps} |`,
    );
    process.stderr.write(`measured ${shapes[i].label}\n`);
  }
  const growth = results[2].program.seconds / results[0].program.seconds;
  const perWorker = (results[2].program.resources - results[0].program.resources) / 270;
  console.log(rows.join("\n"));
  console.log("");
  console.log(`Growth 30 → 300 workers (program time ratio, linear would be ≤ 10): ${growth.toFixed(2)}`);
  console.log(`Resources added per worker (from the 30 and 300 counts): ${perWorker.toFixed(2)}`);
  console.log(`Program vs baseline at 300 workers (stacked): ${(results[2].program.seconds / results[2].baseline.seconds).toFixed(2)}×`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
