// Property tests of configuration validation (fast-check): random configurations either validate or fail with
// problems that name keys — never a crash, never slow — and what validation accepts, the rest of the program builds.
import test from "ava";
import fc from "fast-check";
import { execFileSync } from "node:child_process";
import { Cidr, parseCidr } from "../infra/cidr";
import { RawConfig, configKeys, projectName } from "../infra/config";
import { evaluate } from "../infra/offline/engine";
import { runProgram } from "../infra/program";
import { checkOnCalendar, validateConfig, worldOpenProblems } from "../infra/validate";

/** A complete valid AWS config, as the dev stack is. */
const awsBase = (): RawConfig => ({
  kubernetesVersion: "1.35.9",
  etcdTopology: "stacked",
  controlPlane: { count: 3, instanceType: "m6i.large", volumeGiB: 50 },
  workers: { count: 2, instanceType: "m6i.large", volumeGiB: 80, maxUnavailable: 1 },
  network: { vpcCidr: "10.0.0.0/16", availabilityZones: 3, podCidr: "10.244.0.0/16", serviceCidr: "10.96.0.0/12" },
  apiAccess: { allowedCidrs: ["198.51.100.0/24"], internal: false },
  ssh: { allowedCidrs: ["198.51.100.0/24"] },
  cni: { name: "cilium" },
  snapshots: { schedule: "*-*-* 00/6:00:00", keep: 5, retentionDays: 30 },
});

/** A complete valid static-hosts config, as the lab stack is. */
const staticBase = (): RawConfig => ({
  kubernetesVersion: "1.35.9",
  hosts: {
    provider: "static",
    controlPlanes: [{ name: "k8s-control", address: "192.168.56.10", privateAddress: "192.168.56.10" }],
    workers: [
      { name: "k8s-worker1", address: "192.168.56.11" },
      { name: "k8s-worker2", address: "192.168.56.12" },
    ],
  },
  apiEndpoint: { address: "192.168.56.10:6443" },
  snapshots: { upload: false },
  sshPrivateKey: "[secret]",
});

/** Every leaf and object path validation reads, and a few it does not know. */
const paths = [
  "kubernetesVersion", "etcdTopology", "controlPlane", "controlPlane.count", "controlPlane.instanceType", "controlPlane.volumeGiB",
  "workers", "workers.count", "workers.instanceType", "workers.volumeGiB", "workers.maxUnavailable",
  "etcd", "etcd.count", "etcd.version", "network", "network.vpcCidr", "network.availabilityZones", "network.podCidr", "network.serviceCidr",
  "network.vpcId", "network.privateSubnetIds", "network.publicSubnetIds", "apiAccess", "apiAccess.allowedCidrs", "apiAccess.internal",
  "apiAccess.allowOpenToWorld", "ssh", "ssh.allowedCidrs", "ssh.allowOpenToWorld", "ssh.publicKey", "cni", "cni.name", "cni.version",
  "maintenance", "hosts", "hosts.provider", "hosts.controlPlanes", "hosts.workers", "hosts.etcd", "hosts.bastion", "hosts.bastion.address",
  "hosts.bastion.hostKey", "hosts.workers.0", "hosts.workers.0.name", "hosts.workers.0.address", "hosts.workers.0.port", "hosts.workers.0.user",
  "hosts.workers.0.hostKey", "hosts.controlPlanes.0.privateAddress", "apiEndpoint", "apiEndpoint.address", "apiEndpoint.haproxy",
  "apiEndpoint.virtualIp", "apiEndpoint.interface", "apiEndpoint.port", "snapshots", "snapshots.schedule", "snapshots.keep",
  "snapshots.retentionDays", "snapshots.bucket", "snapshots.upload", "snapshots.requestId", "snapshots.kmsKeyId", "restore",
  "restore.snapshot", "restore.requestId", "sshPrivateKey", "controlPlanes", "workers.cnt", "hosts.bastion.hostkey", "__proto__x",
];

/** Values an operator (or a typo, or an attacker) could put anywhere. */
const nasty = fc.oneof(
  fc.constantFrom(1e9, 1e21, 1e300, -1, 0, 2.5, 65536, 100000, Number.MAX_SAFE_INTEGER + 2, "", " ", "*", "a b", "../..", "\n", "'; rm -rf /", "0.0.0.0/0",
    "ssh-ed25519 AAAA\nx", "true", "null", null, true, false, [], {}, [null], [[]], { count: {} }, "x".repeat(10_000)),
  fc.anything({ maxDepth: 3, maxKeys: 5 }),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.ipV4().map((ip) => `${ip}/${ip.length % 33}`)), { maxLength: 8 }),
);

function setPath(raw: RawConfig, path: string, value: unknown) {
  const parts = path.split(".");
  let target: any = raw;
  for (const part of parts.slice(0, -1)) {
    if (typeof target[part] !== "object" || target[part] === null) target[part] = /^\d+$/.test(part) ? [] : {};
    target = target[part];
  }
  target[parts[parts.length - 1]] = value;
}

const mutated = fc
  .tuple(fc.boolean(), fc.array(fc.tuple(fc.constantFrom(...paths), nasty), { minLength: 1, maxLength: 5 }))
  .map(([isStatic, edits]) => {
    const raw = isStatic ? staticBase() : awsBase();
    for (const [path, value] of edits) setPath(raw, path, value);
    return raw;
  });

test("random configurations validate or fail with problems naming keys, in a pass that never throws and never takes long", (t) => {
  let failed = 0;
  fc.assert(
    fc.property(mutated, (raw) => {
      const started = performance.now();
      const result = validateConfig(raw);
      const ms = performance.now() - started;
      if (ms > 1000) throw new Error(`validation took ${ms.toFixed(0)} ms`);
      for (const p of result.problems) {
        const top = p.path.split(/[.[]/)[0];
        if (!(configKeys as readonly string[]).includes(top) && !(top in raw)) throw new Error(`problem names no key: ${p.path}: ${p.message}`);
        if (p.message.trim() === "" || p.message.includes("\n")) throw new Error(`message is not one line: ${JSON.stringify(p.message)}`);
      }
      if (result.problems.length > 0) failed++;
      else if (!("config" in result)) throw new Error("no problems and no config");
    }),
    { numRuns: 3000 },
  );
  t.true(failed > 0);
});

// ---- what validation accepts, the program builds --------------------------------------------------------------

const segment = fc.constantFrom("cluster", "upgrade", "etcd", "cp", "worker", "join", "snapshot", "node", "a", "b", "0", "1");
const nodeName = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join("-"));
/** Mostly what an operator means, sometimes an edge validation must catch. */
const mostly = <T>(good: fc.Arbitrary<T>, edge: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 3 }, { arbitrary: edge, weight: 1 });
const hostList = (prefix: string, min: number, max: number) =>
  fc.uniqueArray(nodeName, { minLength: min, maxLength: max }).chain((names) =>
    fc.tuple(...names.map(() => fc.constantFrom(22, 22, 2222))).map((ports) =>
      names.map((name, i) => ({ name, address: `10.20.${prefix}.${i + 10}`, privateAddress: `10.20.${prefix}.${i + 10}`, port: ports[i] })),
    ),
  );
const schedule = mostly(fc.constantFrom("daily", "hourly", "*-*-* 00/6:00:00", "Mon..Fri 02:30", "*-02-29 00:00", "*:0/15", "Sat,Sun 10:00 UTC", "Mon"), fc.constantFrom("*-*-* 25:00", "every day"));
const word = mostly(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,11}$/), fc.stringMatching(/^[A-Za-z0-9._ -]{1,12}$/));
const snapshotLocation = mostly(
  fc.oneof(
    fc.stringMatching(/^\/[a-z0-9][a-z0-9._+-]{0,8}(\/[a-z0-9._+-]{1,8}){0,2}\.db$/),
    // This stack's own snapshots: validation refuses another cluster's (<cluster>/etcd/ is where the save step uploads).
    fc.tuple(fc.stringMatching(/^[a-z0-9][a-z0-9-]{1,8}[a-z0-9]$/), fc.stringMatching(/^[A-Za-z0-9._+=-]{1,8}(\/[A-Za-z0-9._+=-]{1,8}){0,2}$/)).map(([b, k]) => `s3://${b}/${projectName}-property/etcd/${k}`),
  ),
  fc.oneof(fc.stringMatching(/^\/[a-z0-9 ./'-]{1,12}$/), fc.stringMatching(/^s3:\/\/[a-z0-9.*-]{1,8}\/[ -~]{0,10}$/)),
);
const iface = mostly(fc.stringMatching(/^[a-z][a-z0-9_.:@-]{0,14}$/), fc.stringMatching(/^[ -~]{1,17}$/));
const port = mostly(fc.integer({ min: 1024, max: 29999 }), fc.integer({ min: -5, max: 70000 }));

/** Plausible configurations, valid or nearly: the kind of values that reached script builders unchecked before. */
const plausible = fc.oneof(
  fc.record({
    controlPlanes: fc.constantFrom(1, 3, 5, 7, 2),
    workers: fc.integer({ min: 0, max: 3 }),
    external: fc.boolean(),
    cni: fc.constantFrom({ name: "cilium" }, { name: "calico" }, { name: "calico", version: "v3.30.3" }, { name: "cilium", version: "1.18.4" }),
    schedule,
    keep: mostly(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 101, max: 1000 })),
    requestId: fc.option(word, { nil: undefined }),
    bucket: fc.option(mostly(fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,10}[a-z0-9]$/), fc.stringMatching(/^[a-z0-9.*_-]{1,12}$/)), { nil: undefined }),
    restore: fc.option(fc.record({ snapshot: snapshotLocation, requestId: word }), { nil: undefined }),
    maintenance: mostly(fc.subarray(["cp-1", "worker-0"]), fc.subarray(["cp-0", "cp-1", "worker-0", "worker-1"])),
  }).map((c) => {
    const raw = awsBase();
    raw.controlPlane = { count: c.controlPlanes };
    raw.workers = { count: c.workers };
    if (c.external) Object.assign(raw, { etcdTopology: "external", etcd: { count: 3 } });
    raw.cni = c.cni;
    raw.snapshots = { schedule: c.schedule, keep: c.keep, ...(c.requestId ? { requestId: c.requestId } : {}), ...(c.bucket ? { bucket: c.bucket } : {}) };
    // A restore reads this stack's own snapshots: from its bucket when snapshots.bucket names one.
    if (c.restore) raw.restore = c.bucket ? { ...c.restore, snapshot: c.restore.snapshot.replace(/^s3:\/\/[^/]+/, `s3://${c.bucket}`) } : c.restore;
    raw.maintenance = c.maintenance;
    return raw;
  }),
  fc.record({
    controlPlanes: fc.constantFrom(1, 3).chain((n) => hostList("1", n, n)),
    workers: hostList("2", 0, 3),
    haproxy: fc.boolean(),
    iface,
    port,
    vip: mostly(fc.constant("10.20.9.100"), fc.constantFrom("10.20.1.10", "10.20.2.10", "not-an-ip")),
    // Static hosts without snapshots.bucket restore from a path on the members (an S3 snapshot is refused there).
    restore: fc.option(fc.record({ snapshot: mostly(snapshotLocation.filter((l) => !l.startsWith("s3://")), snapshotLocation), requestId: word }), { nil: undefined }),
  }).map((c) => {
    const raw = staticBase();
    // Names across both lists must differ; a clash is one of the edges validation catches.
    raw.hosts = { provider: "static", controlPlanes: c.controlPlanes, workers: c.workers };
    raw.apiEndpoint = c.haproxy ? { haproxy: true, virtualIp: c.vip, interface: c.iface, port: c.port } : { address: `${c.controlPlanes[0].address}:6443` };
    if (c.restore) raw.restore = c.restore;
    return raw;
  }),
);

/** Pulumi's stack config for a raw config (objects and arrays as JSON strings). */
const stackConfig = (raw: RawConfig) =>
  Object.fromEntries([["aws:region", "eu-west-1"], ...Object.entries(raw).map(([k, v]) => [`${projectName}:${k}`, typeof v === "string" ? v : JSON.stringify(v)])]);

test("every plausible configuration validation accepts evaluates through the whole program: no script builder refuses it later", async (t) => {
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(plausible, async (raw) => {
      if (validateConfig(raw, { clusterName: `${projectName}-property` }).problems.length > 0) return;
      accepted++;
      const secretKeys = raw.sshPrivateKey !== undefined ? [`${projectName}:sshPrivateKey`] : [];
      const config = stackConfig(raw);
      if (raw.sshPrivateKey !== undefined) config[`${projectName}:sshPrivateKey`] = "-----PRIVATE KEY STAND-IN-----";
      await evaluate({ project: projectName, stack: "property", config, secretKeys, program: runProgram });
    }),
    // A fixed seed: the acceptance bound below is a property of the generator, not of one random draw (CI must not flake).
    { numRuns: 200, seed: 20261201 },
  );
  t.true(accepted >= 50, `${accepted} of 200 accepted: the generator must reach the builders`);
  t.log(`${accepted} of 200 plausible configurations accepted`);
});

// ---- systemd calendar expressions against the real systemd-analyze -------------------------------------------------

const calendarToken = (values: string[]) => fc.constantFrom(...values);
/** Mostly valid components, some out of range or malformed: both sides of every check. */
const component = (max: number, min: number) =>
  fc.oneof(
    { arbitrary: fc.constantFrom("*", String(min), String(max), `0${min}`), weight: 3 },
    { arbitrary: fc.integer({ min, max }).map(String), weight: 3 },
    { arbitrary: fc.tuple(fc.integer({ min, max }), fc.integer({ min, max })).map(([a, b]) => `${Math.min(a, b)}..${Math.max(a, b)}`), weight: 2 },
    { arbitrary: fc.tuple(fc.integer({ min, max }), fc.integer({ min: 1, max })).map(([a, b]) => `${a}/${b}`), weight: 2 },
    { arbitrary: fc.tuple(fc.integer({ min, max }), fc.integer({ min, max })).map(([a, b]) => `${a},${b}`), weight: 1 },
    { arbitrary: fc.constantFrom(String(max + 1), `${max}..${min}`, `${min}/0`, "1,x", "-1", "*/2", `${min}..`), weight: 1 },
  );
const calendarExpression = fc.oneof(
  calendarToken(["daily", "hourly", "weekly", "monthly", "minutely", "quarterly", "semiannually", "yearly", "annually", "Daily", "fortnightly"]),
  fc
    .record({
      weekdays: fc.option(fc.constantFrom("Mon", "mon", "Monday", "Mon..Fri", "Sat,Sun", "Fri..Mon", "Mon,Wed..Fri", "Mo", "sun"), { nil: undefined }),
      date: fc.option(fc.tuple(fc.constantFrom("*", "*", "*", "2030"), component(12, 1), component(31, 1)).map(([y, m, d]) => `${y}-${m}-${d}`), { nil: undefined }),
      time: fc.option(fc.tuple(component(23, 0), component(59, 0), fc.option(component(59, 0), { nil: undefined })).map(([h, m, sec]) => [h, m, ...(sec ? [sec] : [])].join(":")), { nil: undefined }),
      zone: fc.option(fc.constantFrom("UTC", "Europe/Berlin", "Mars/Olympus"), { nil: undefined }),
    })
    .map((e) => [e.weekdays, e.date, e.time, e.zone].filter((x) => x !== undefined).join(" ")),
);

/** The expressions systemd-analyze parses and can tell the next run of. */
function systemdAccepts(expressions: string[]): Set<string> {
  const ok = new Set<string>();
  for (const e of expressions) {
    try {
      const out = execFileSync("systemd-analyze", ["calendar", e], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      if (/Next elapse: (?!never)/.test(out)) ok.add(e);
    } catch {
      // refused
    }
  }
  return ok;
}

test("every schedule the validator accepts, the real systemd-analyze accepts and would run again; the common forms are accepted", (t) => {
  const samples = [...new Set(fc.sample(calendarExpression, { numRuns: 4000, seed: 15 }))].filter((e) => e.trim() !== "");
  const accepted = samples.filter((e) => checkOnCalendar(e) === undefined);
  t.true(accepted.length > 200 && accepted.length < samples.length - 200, `${accepted.length} of ${samples.length} accepted: both sides sampled`);
  const bySystemd = systemdAccepts(accepted);
  t.deepEqual(accepted.filter((e) => !bySystemd.has(e)), [], "accepted here, refused (or never due) by systemd");
  const common = ["daily", "hourly", "weekly", "*-*-* 00/6:00:00", "*-*-* 02:30:00", "Mon..Fri 02:30", "Sat,Sun *-*-* 10:00 UTC", "*:0/15", "*-*-01 03:00", "03-01", "Mon", "*-*-* 0,12:00"];
  t.deepEqual(common.filter((e) => checkOnCalendar(e) !== undefined), []);
  t.deepEqual(common.filter((e) => !systemdAccepts(common).has(e)), [], "the common forms are systemd's too");
});

// ---- the world-open guard --------------------------------------------------------------------------------------

const block = fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 24 })).map(([n, prefix]) => {
  const size = 2 ** (32 - prefix);
  const start = Math.floor(n / size) * size;
  return `${[24, 16, 8, 0].map((s) => Math.floor(start / 2 ** s) % 256).join(".")}/${prefix}`;
});
const halves = (c: string): [string, string] => {
  const p = parseCidr(c) as Cidr;
  const lower = `${p.address}/${p.prefix + 1}`;
  const upperStart = p.address.split(".").reduce((a, o) => a * 256 + Number(o), 0) + 2 ** (31 - p.prefix);
  return [lower, `${[24, 16, 8, 0].map((s) => Math.floor(upperStart / 2 ** s) % 256).join(".")}/${p.prefix + 1}`];
};
const refused = (cidrs: string[]) => worldOpenProblems("ssh.allowedCidrs", cidrs, false, "SSH").length > 0;

test("the world-open guard sees through splitting: a range and its two halves get the same verdict; any /0 is refused; private ranges never are; the opt-in accepts anything", (t) => {
  fc.assert(
    fc.property(fc.array(block, { minLength: 1, maxLength: 6 }), fc.nat(), (cidrs, pick) => {
      const i = pick % cidrs.length;
      const split = [...cidrs.slice(0, i), ...halves(cidrs[i]), ...cidrs.slice(i + 1)];
      return refused(cidrs) === refused(split) && !worldOpenProblems("ssh.allowedCidrs", cidrs, true, "SSH").length;
    }),
    { numRuns: 2000 },
  );
  fc.assert(fc.property(fc.array(block, { maxLength: 4 }), (cidrs) => refused([...cidrs, "0.0.0.0/0"])), { numRuns: 200 });
  const privates = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"];
  t.false(refused(privates));
  // Everything public in halves, /1s down to /8s, is still the internet.
  t.true(refused(["0.0.0.0/1", "128.0.0.0/1"]));
  t.true(refused(Array.from({ length: 2 }, (_, i) => `${i * 64 + 64}.0.0.0/2`)));
  t.false(refused(["17.0.0.0/8"]), "one /8 is one organisation's");
  t.true(refused(["17.0.0.0/8", "18.0.0.0/8"]), "two /8s are more than any one holds");
});
