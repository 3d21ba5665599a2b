// The static provider's API endpoint (infra/scripts/apiEndpoint.ts): the HAProxy config validated and RUN for real on
// loopback in front of two test HTTPS "apiservers"; the keepalived configs checked as data and by the real keepalived
// (Debian's, unpacked into .tools/ by test/tools/ensure-tools.sh); the install step run by bash under recording stubs.
import test, { ExecutionContext } from "ava";
import fc from "fast-check";
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Server, createServer as createHttpsServer, request } from "node:https";
import { AddressInfo, createServer as createTcpServer } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import {
  KeepalivedConfigArgs,
  apiEndpointPaths,
  haproxyConfig,
  installApiEndpointScript,
  keepalivedConfig,
  keepalivedPlan,
  vrrpCheckWeight,
} from "../infra/scripts/apiEndpoint";
import { StubRun, callsOf, cleanup, nodePath, runWithStubs, stubState } from "./support/stubs";
import { toolPath } from "./support/tools";

function scratch(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------------------------
// HAProxy
// ---------------------------------------------------------------------------------------------------------------

const lab = [
  { name: "cp-0", address: "192.168.56.10", port: 6443 },
  { name: "cp-1", address: "192.168.56.11", port: 6443 },
  { name: "cp-2", address: "192.168.56.12", port: 6443 },
];

test("haproxy.cfg: TCP frontend on the bind given, /readyz checks over TLS on every apiserver, watch-friendly timeouts", (t) => {
  const cfg = haproxyConfig({ frontendBind: "*:8443", backends: lab });
  const lines = cfg.split("\n").map((l) => l.trim());
  t.true(lines.includes("mode tcp"));
  t.true(lines.includes("bind *:8443"));
  t.true(lines.includes("balance roundrobin"));
  t.true(lines.includes("option httpchk GET /readyz"));
  t.true(lines.includes("default-server inter 2s fall 2 rise 2"));
  t.true(lines.includes("timeout tunnel 1h"));
  for (const key of ["client", "server"]) {
    const m = new RegExp(`^timeout ${key} (\\d+)s$`).exec(lines.find((l) => l.startsWith(`timeout ${key} `)) ?? "");
    t.truthy(m, `timeout ${key}`);
    t.true(Number(m![1]) >= 20, `timeout ${key} >= 20s`);
  }
  for (const b of lab) t.true(lines.includes(`server ${b.name} ${b.address}:6443 check check-ssl verify none`), b.name);
  // Debian's packaged user and chroot by default; none when the caller runs it as itself.
  t.true(lines.includes("user haproxy") && lines.includes("chroot /var/lib/haproxy"));
  const plain = haproxyConfig({ frontendBind: "127.0.0.1:18443", backends: lab, privileges: null });
  t.false(/^\s*(user|group|chroot) /m.test(plain));
  t.true(haproxyConfig({ frontendBind: "[::]:8443", backends: [{ name: "v6", address: "fd00::10", port: 6443 }] }).includes("server v6 [fd00::10]:6443 "));
});

test("haproxyConfig rejects what HAProxy would misread, naming each problem", (t) => {
  t.throws(() => haproxyConfig({ frontendBind: "8443", backends: lab }), { message: /frontendBind must look like/ });
  t.throws(() => haproxyConfig({ frontendBind: "*:70000", backends: lab }), { message: /frontendBind/ });
  t.throws(() => haproxyConfig({ frontendBind: "*:8443", backends: [] }), { message: /at least one backend/ });
  const e = t.throws(() =>
    haproxyConfig({
      frontendBind: "*:8443",
      backends: [
        { name: "cp 0", address: "10.0.0.1", port: 6443 },
        { name: "cp-1", address: "10.0.0.2 x", port: 0 },
        { name: "cp-1", address: "10.0.0.3", port: 6443 },
      ],
    }),
  );
  t.regex(e!.message, /backends\[0\]\.name "cp 0"/);
  t.regex(e!.message, /backends\[1\]\.address/);
  t.regex(e!.message, /backends\[1\]\.port 0/);
  t.regex(e!.message, /unique/);
});

test("haproxy -c accepts the generated config, with Debian's user and without (real haproxy)", (t) => {
  const dir = scratch(t, "haproxy-check-");
  const haproxy = toolPath.haproxy();
  // Debian's `user haproxy` exists only where the package is installed: on this machine -c must reject exactly that.
  const packaged = join(dir, "packaged.cfg");
  writeFileSync(packaged, haproxyConfig({ frontendBind: "*:8443", backends: lab }));
  const r1 = spawnSync(haproxy, ["-c", "-f", packaged], { encoding: "utf8" });
  const hasUser = spawnSync("getent", ["passwd", "haproxy"]).status === 0;
  if (hasUser) t.is(r1.status, 0, r1.stderr);
  else {
    t.not(r1.status, 0);
    const alerts = r1.stderr.split("\n").filter((l) => l.includes("[ALERT]") && l.includes("parsing ["));
    t.true(alerts.length > 0 && alerts.every((l) => /cannot find (user|group) id for 'haproxy'/.test(l)), r1.stderr);
  }
  const plain = join(dir, "plain.cfg");
  writeFileSync(plain, haproxyConfig({ frontendBind: "*:8443", backends: lab, privileges: null }));
  const r2 = spawnSync(haproxy, ["-c", "-f", plain], { encoding: "utf8" });
  t.is(r2.status, 0, r2.stdout + r2.stderr);
  t.regex(r2.stdout + r2.stderr, /Configuration file is valid/);
});

/** A free TCP port on 127.0.0.1 (bound, read, released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createTcpServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface FakeApiserver {
  name: string;
  port: number;
  server: Server;
  ready: boolean;
}

/** An HTTPS server standing in for an apiserver: /readyz says "ok" (or 503 once not ready); any other path its name. */
async function fakeApiserver(name: string, key: string, cert: string): Promise<FakeApiserver> {
  const fake: FakeApiserver = { name, port: 0, ready: true, server: undefined as unknown as Server };
  fake.server = createHttpsServer({ key, cert }, (req, res) => {
    if (req.url === "/readyz") {
      res.writeHead(fake.ready ? 200 : 503).end(fake.ready ? "ok" : "not ready");
    } else {
      res.writeHead(200).end(name);
    }
  });
  await new Promise<void>((resolve) => fake.server.listen(0, "127.0.0.1", resolve));
  fake.port = (fake.server.address() as AddressInfo).port;
  return fake;
}

/** One request on a new connection through HAProxy; TLS is verified against the backends' own certificate. */
function get(port: number, ca: string, path = "/who"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, ca, agent: false, timeout: 3000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("the generated HAProxy config balances real TLS traffic on loopback; a backend whose /readyz fails is taken out and brought back; a stopped one costs no request", async (t) => {
  const dir = scratch(t, "haproxy-run-");
  execFileSync(toolPath.openssl(), ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", join(dir, "tls.key"), "-out", join(dir, "tls.crt"), "-subj", "/CN=kube-apiserver",
    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1"], { stdio: "ignore" });
  const key = readFileSync(join(dir, "tls.key"), "utf8");
  const cert = readFileSync(join(dir, "tls.crt"), "utf8");
  const backends = [await fakeApiserver("cp-0", key, cert), await fakeApiserver("cp-1", key, cert)];
  t.teardown(() => backends.forEach((b) => b.server.close()));
  const port = await freePort();
  const cfg = join(dir, "haproxy.cfg");
  // privileges: null — the test runs HAProxy as itself (no haproxy user here); everything else is the production config.
  writeFileSync(cfg, haproxyConfig({
    frontendBind: `127.0.0.1:${port}`,
    backends: backends.map((b) => ({ name: b.name, address: "127.0.0.1", port: b.port })),
    privileges: null,
  }));
  let log = "";
  const haproxy: ChildProcess = spawn(toolPath.haproxy(), ["-db", "-f", cfg], { stdio: ["ignore", "pipe", "pipe"] });
  haproxy.stdout!.on("data", (d) => (log += d));
  haproxy.stderr!.on("data", (d) => (log += d));
  const exited = new Promise<void>((r) => haproxy.once("exit", () => r()));
  t.teardown(async () => {
    if (haproxy.exitCode === null && haproxy.signalCode === null) haproxy.kill("SIGTERM");
    await exited;
  });

  // Up: the frontend answers within 5 s.
  const upBy = Date.now() + 5000;
  for (;;) {
    try {
      await get(port, cert);
      break;
    } catch (e) {
      if (Date.now() > upBy) throw new Error(`haproxy did not answer on 127.0.0.1:${port}: ${String(e)}\n${log}`);
      await sleep(100);
    }
  }

  // 1. Both backends take connections (round robin per connection); the client's TLS ends at the backend.
  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) {
    const r = await get(port, cert);
    t.is(r.status, 200);
    seen.add(r.body);
  }
  t.deepEqual([...seen].sort(), ["cp-0", "cp-1"]);
  t.is((await get(port, cert, "/readyz")).body, "ok");

  /** Requests every 100 ms until haproxy's log shows `event` (bounded); every one must succeed. Returns the bodies. */
  const requestUntil = async (event: RegExp, what: string): Promise<string[]> => {
    const from = log.length;
    const by = Date.now() + 9000;
    const bodies: string[] = [];
    const failures: string[] = [];
    while (!event.test(log.slice(from))) {
      if (Date.now() > by) throw new Error(`haproxy never logged ${event} (${what}):\n${log}`);
      const r = await get(port, cert).catch((e: Error) => ({ status: 0, body: e.message }));
      if (r.status === 200) bodies.push(r.body);
      else failures.push(`${r.status} ${r.body}`);
      await sleep(100);
    }
    t.deepEqual(failures, [], `requests failed while ${what}`);
    return bodies;
  };
  const onlyCp0 = async (n: number) => {
    for (let i = 0; i < n; i++) t.deepEqual(await get(port, cert), { status: 200, body: "cp-0" });
  };

  // 2. cp-1 stops being ready but still answers (an apiserver starting or failing): its /readyz checks take it out;
  //    requests keep succeeding meanwhile, and afterwards it gets none.
  backends[1].ready = false;
  await requestUntil(/Server kube-apiserver\/cp-1 is DOWN/, "cp-1's /readyz failed");
  await onlyCp0(6);

  // 3. cp-1 ready again: two good checks bring it back.
  backends[1].ready = true;
  await requestUntil(/Server kube-apiserver\/cp-1 is UP/, "cp-1 was coming back");
  const again = new Set<string>();
  for (let i = 0; i < 6; i++) again.add((await get(port, cert)).body);
  t.deepEqual([...again].sort(), ["cp-0", "cp-1"]);

  // 4. cp-1 stops outright while HAProxy still counts it UP: refused connections are redispatched to cp-0, so no
  //    request fails before the checks mark it DOWN, nor after.
  backends[1].ready = false;
  await new Promise<void>((r) => {
    backends[1].server.close(() => r());
    backends[1].server.closeAllConnections();
  });
  const during = await requestUntil(/Server kube-apiserver\/cp-1 is DOWN/, "cp-1 was stopped");
  t.true(during.length >= 3, `only ${during.length} requests before cp-1 was marked DOWN`);
  t.true(during.every((b) => b === "cp-0"));
  await onlyCp0(6);

  haproxy.kill("SIGTERM");
  await exited;
});

// ---------------------------------------------------------------------------------------------------------------
// keepalived
// ---------------------------------------------------------------------------------------------------------------

/** The settings of a keepalived.conf as data: top-level keyword lines per block, and each block's sub-blocks. */
function parseKeepalived(text: string): { blocks: Map<string, string[]> } {
  const blocks = new Map<string, string[]>();
  const stack: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    if (line.endsWith("{")) {
      stack.push(line.slice(0, -1).trim());
      blocks.set(stack.join(" > "), []);
    } else if (line === "}") {
      if (!stack.pop()) throw new Error("unbalanced }");
    } else {
      if (stack.length === 0) throw new Error(`a setting outside any block: ${line}`);
      blocks.get(stack.join(" > "))!.push(line);
    }
  }
  if (stack.length) throw new Error(`unclosed block ${stack.join(" > ")}`);
  return { blocks };
}

function setting(lines: string[] | undefined, key: string): string | undefined {
  const found = (lines ?? []).filter((l) => l.split(/\s+/)[0] === key);
  if (found.length > 1) throw new Error(`${key} appears ${found.length} times`);
  return found[0]?.slice(key.length).trim();
}

const labPlanArgs = {
  controlPlanes: lab.map(({ name, address }) => ({ name, address })),
  interface: "enp0s8",
  virtualIp: "192.168.56.100",
  routerId: 51,
  authPass: "k8s-api",
};

test("keepalived: one VIP on the interface, cp-0 MASTER with the highest priority, strictly descending, unicast peers are the others", (t) => {
  const plan = keepalivedPlan(labPlanArgs);
  t.deepEqual(plan.map((p) => p.node), ["cp-0", "cp-1", "cp-2"]);
  const priorities: number[] = [];
  for (const [i, p] of plan.entries()) {
    const { blocks } = parseKeepalived(keepalivedConfig(p.config));
    const vi = blocks.get("vrrp_instance kube_api");
    t.is(setting(vi, "interface"), "enp0s8");
    t.is(setting(vi, "virtual_router_id"), "51");
    t.is(setting(vi, "state"), i === 0 ? "MASTER" : "BACKUP");
    t.is(setting(vi, "unicast_src_ip"), lab[i].address);
    t.deepEqual(blocks.get("vrrp_instance kube_api > virtual_ipaddress"), ["192.168.56.100/32 dev enp0s8"]);
    t.deepEqual(
      blocks.get("vrrp_instance kube_api > unicast_peer"),
      lab.filter((_, j) => j !== i).map((b) => b.address),
    );
    t.deepEqual(blocks.get("vrrp_instance kube_api > authentication"), ["auth_type PASS", "auth_pass k8s-api"]);
    t.deepEqual(blocks.get("vrrp_instance kube_api > track_script"), ["check_api_endpoint"]);
    const check = blocks.get("vrrp_script check_api_endpoint");
    t.regex(setting(check, "script") ?? "", /^"\/usr\/bin\/curl -sfk .*https:\/\/127\.0\.0\.1:8443\/readyz"$/);
    t.is(setting(check, "weight"), String(vrrpCheckWeight));
    priorities.push(Number(setting(vi, "priority")));
  }
  for (let i = 1; i < priorities.length; i++) t.true(priorities[i] < priorities[i - 1], `priorities ${priorities.join(" > ")}`);
});

test("keepalived plan over 1-9 control planes: exactly one MASTER (cp-0), priorities strictly descending, peers never self, a failing check ranks below every passing node", (t) => {
  t.notThrows(() => fc.assert(
    fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 255 }), (n, routerId) => {
      const controlPlanes = Array.from({ length: n }, (_, i) => ({ name: `cp-${i}`, address: `10.0.${i}.10` }));
      const plan = keepalivedPlan({ controlPlanes, interface: "eth0", virtualIp: "10.0.200.1", routerId });
      const masters = plan.filter((p) => p.config.state === "MASTER").map((p) => p.node);
      if (masters.length !== 1 || masters[0] !== "cp-0") return false;
      for (let i = 0; i < n; i++) {
        const c = plan[i].config;
        if (i > 0 && !(c.priority < plan[i - 1].config.priority)) return false;
        if (c.peers.includes(controlPlanes[i].address) || c.peers.length !== n - 1) return false;
        // The lowest passing priority beats the highest failing one.
        if (plan[n - 1].config.priority <= plan[0].config.priority + vrrpCheckWeight) return false;
        const text = keepalivedConfig(c);
        if (n === 1 && text.includes("unicast_peer")) return false;
      }
      return true;
    }),
  ));
});

test("keepalivedConfig rejects bad values, naming each", (t) => {
  const good: KeepalivedConfigArgs = keepalivedPlan(labPlanArgs)[0].config;
  const e = t.throws(() =>
    keepalivedConfig({ ...good, virtualIp: "192.168.56.100/24", routerId: 256, priority: 255, peers: ["192.168.56.10", "x"], authPass: "far-too-long" }),
  );
  for (const m of [/virtualIp .*no prefix length/, /routerId 256/, /priority 255/, /peers\[1\] "x"/, /must not include the node itself/, /authPass/]) {
    t.regex(e!.message, m);
  }
});

/** A network interface of this machine that keepalived accepts (not loopback): --config-test checks it exists. */
function hostInterface(): string | undefined {
  const withIpv4 = Object.entries(networkInterfaces())
    .filter(([name, addrs]) => name !== "lo" && (addrs ?? []).some((a) => a.family === "IPv4" && !a.internal))
    .map(([name]) => name);
  return withIpv4[0];
}

function keepalivedBinary(): string | undefined {
  try {
    return toolPath.keepalived();
  } catch {
    return undefined;
  }
}

/**
 * `keepalived --config-test -f FILE` in its own session. Debian 12's keepalived 2.2.7 ends every config test of a
 * config with script security by SIGTERMing itself (upstream keepalived#2587, fixed in 2.2.8): there, success is
 * "nothing printed"; every problem is printed before that.
 */
function keepalivedConfigTest(bin: string, file: string): { ok: boolean; output: string; code: number | null; signal: string | null } {
  const r = spawnSync(bin, ["--config-test", "-f", file], { encoding: "utf8", timeout: 10_000 });
  const output = (r.stdout + r.stderr).trim();
  const sigterm = r.signal === "SIGTERM" || r.status === 143;
  return { ok: output === "" && (r.status === 0 || sigterm), output, code: r.status, signal: r.signal };
}

const keepalivedBin = keepalivedBinary();
const iface = hostInterface();
const keepalivedTitle = keepalivedBin && iface
  ? `keepalived --config-test (real keepalived from .tools, interface ${iface}) accepts every control plane's config and rejects a broken one`
  : "keepalived configs parse as balanced blocks (NO keepalived binary or usable interface here: parse-check only; run bash test/tools/ensure-tools.sh)";

test(keepalivedTitle, (t) => {
  const dir = scratch(t, "keepalived-check-");
  const plan = keepalivedPlan({ ...labPlanArgs, interface: iface ?? "eth0" });
  for (const p of plan) {
    const text = keepalivedConfig(p.config);
    parseKeepalived(text);
    if (!keepalivedBin || !iface) continue;
    const file = join(dir, `${p.node}.conf`);
    writeFileSync(file, text);
    const r = keepalivedConfigTest(keepalivedBin, file);
    t.true(r.ok, `${p.node}: exit ${r.code} ${r.signal ?? ""}\n${r.output}`);
  }
  if (!keepalivedBin || !iface) {
    t.true(plan.length > 0, "parse-checked every node's configuration");
    return;
  }
  // The check reads the file: a broken router id and an unknown keyword are reported, by line.
  const broken = join(dir, "broken.conf");
  writeFileSync(broken, keepalivedConfig(plan[1].config).replace("virtual_router_id 51", "virtual_router_id 300").replace("advert_int 1", "advert_interval 1"));
  const r = keepalivedConfigTest(keepalivedBin, broken);
  t.false(r.ok);
  t.regex(r.output, /number '300' outside range/);
  t.regex(r.output, /Unknown keyword 'advert_interval'/);
});

// ---------------------------------------------------------------------------------------------------------------
// The install step
// ---------------------------------------------------------------------------------------------------------------

function assertEveryLineNamed(t: ExecutionContext, run: StubRun, node: string, step: string) {
  const lines = run.stderr.split("\n").filter((l) => l !== "");
  t.true(lines.length > 0);
  for (const line of lines) t.true(line.startsWith(`[${node}] ${step}: `), `unnamed stderr line: ${JSON.stringify(line)}`);
}

/** Index of the first call matching, or -1. */
function indexOfCall(run: StubRun, cmd: string, match: (args: string[]) => boolean): number {
  return run.calls.findIndex((c) => c.cmd === cmd && match(c.args));
}

const serviceChanges = (run: StubRun) =>
  callsOf(run, "systemctl").filter((a) => ["start", "restart", "reload", "reload-or-restart", "stop"].includes(a[0]));

const installStubTitle = `installApiEndpointScript under RECORDING STUBS (apt-get, systemctl; haproxy -c is the real haproxy${
  keepalivedBin ? ", keepalived --config-test the real keepalived" : ", keepalived a recording stub (no keepalived binary here)"
}): installs, validates before it reloads, and a second run restarts nothing`;

test(installStubTitle, async (t) => {
  const backends = lab.map((b) => ({ ...b }));
  // privileges: null — there is no haproxy user on this machine for the real `haproxy -c` to find.
  const haproxyText = haproxyConfig({ frontendBind: "*:8443", backends, privileges: null });
  const kaArgs = keepalivedPlan({ ...labPlanArgs, interface: iface ?? "eth0" })[0].config;
  const keepalivedText = keepalivedConfig(kaArgs);
  const script = (h: string, k: string) => installApiEndpointScript({ node: "cp-0", haproxyConfig: h, keepalivedConfig: k });
  const installedOnly = (name: string, real: string | undefined) =>
    `[ -e "$S/pkg/${name}" ] || { echo "${name}: command not found" >&2; exit 127; }\n` +
    (real ? `exec ${real} "$@"\n` : `exit 0\n`);
  const stubs = {
    haproxy: installedOnly("haproxy", toolPath.haproxy()),
    keepalived: installedOnly("keepalived", keepalivedBin && iface ? keepalivedBin : undefined),
    // Starting a unit makes it active; is-active is the default stub's (active unless $S/systemd/UNIT.inactive).
    systemctl: `case "\${1:-}" in start | restart) rm -f "$S/systemd/\${!#}.inactive" ;; *) stub_default "$@" ;; esac\n`,
  };
  const haproxyCfg = (root: string) => nodePath(root, apiEndpointPaths.haproxyConfig);
  const keepalivedConf = (root: string) => nodePath(root, apiEndpointPaths.keepalivedConfig);

  // Run 1, a fresh node: Ubuntu starts haproxy on install; keepalived waits for its config (inactive).
  const first = await runWithStubs(script(haproxyText, keepalivedText), {
    stubs,
    setup: (root) => {
      mkdirSync(join(stubState(root), "systemd"), { recursive: true });
      writeFileSync(join(stubState(root), "systemd", "keepalived.inactive"), "");
    },
  });
  t.teardown(() => cleanup(first.root));
  t.is(first.code, 0, first.stderr);
  assertEveryLineNamed(t, first, "cp-0", "api-endpoint");
  const install = callsOf(first, "apt-get").find((a) => a.includes("install"));
  t.truthy(install);
  t.true(install!.includes("haproxy") && install!.includes("keepalived"));
  t.true(install!.some((a) => a.startsWith("DPkg::Lock::Timeout=")), "waits for the dpkg lock");
  t.is(readFileSync(haproxyCfg(first.root), "utf8"), haproxyText);
  t.is(readFileSync(keepalivedConf(first.root), "utf8"), keepalivedText);
  t.is(statSync(haproxyCfg(first.root)).mode & 0o777, 0o644);
  t.deepEqual(readdirSync(join(first.root, "etc/haproxy")), ["haproxy.cfg"], "no candidate file left behind");
  const check = indexOfCall(first, "haproxy", (a) => a[0] === "-c" && a[1] === "-f" && /haproxy\.cfg\.new\./.test(a[2] ?? ""));
  const reload = indexOfCall(first, "systemctl", (a) => a[0] === "reload" && a.at(-1) === "haproxy");
  t.true(check >= 0, "haproxy -c -f <candidate> ran");
  t.true(reload > check, "haproxy is reloaded only after its new config passed haproxy -c");
  const kaCheck = indexOfCall(first, "keepalived", (a) => a[0] === "--config-test");
  const kaStart = indexOfCall(first, "systemctl", (a) => a[0] === "restart" && a.at(-1) === "keepalived");
  t.true(kaCheck >= 0 && kaStart > kaCheck, "keepalived is started only after its config passed --config-test");
  t.true(callsOf(first, "systemctl").some((a) => a[0] === "enable" && a.at(-1) === "keepalived"));

  // Run 2, same node, same configs: nothing installed, validated, written, reloaded or restarted.
  const second = await runWithStubs(script(haproxyText, keepalivedText), { stubs, root: first.root });
  t.is(second.code, 0, second.stderr);
  t.deepEqual(callsOf(second, "apt-get"), []);
  t.deepEqual(serviceChanges(second), [], "a second run restarts nothing");
  t.is(indexOfCall(second, "haproxy", (a) => a[0] === "-c"), -1);
  t.false(/wrote /.test(second.stderr));

  // Run 3, a fourth control plane joins the backends: only haproxy is validated and reloaded.
  const grown = haproxyConfig({ frontendBind: "*:8443", backends: [...backends, { name: "cp-3", address: "192.168.56.13", port: 6443 }], privileges: null });
  const third = await runWithStubs(script(grown, keepalivedText), { stubs, root: first.root });
  t.is(third.code, 0, third.stderr);
  t.deepEqual(serviceChanges(third), [["reload", "haproxy"]]);
  t.is(readFileSync(haproxyCfg(first.root), "utf8"), grown);

  // Run 4, a config haproxy -c rejects: the step fails, the live config stays, nothing is reloaded.
  const fourth = await runWithStubs(script(`${grown}    bogus-directive on\n`, keepalivedText), { stubs, root: first.root });
  t.not(fourth.code, 0);
  t.regex(fourth.stderr, /\[cp-0\] api-endpoint: ERROR: the new .*haproxy\.cfg is invalid/);
  t.deepEqual(serviceChanges(fourth), []);
  t.is(readFileSync(haproxyCfg(first.root), "utf8"), grown);
  t.deepEqual(readdirSync(join(first.root, "etc/haproxy")), ["haproxy.cfg"]);
});
