// External etcd members: the environment file and unit the program generates, run for real (a 3-member TLS cluster
// of REAL etcd 3.4 and 3.5 started from nothing but the generated env files), and the node steps run by bash against
// a scratch root with RECORDING STUBS for what must not run here (systemctl, useradd, chown, curl).
import test, { ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  apiserverEtcdClientBundle,
  apiserverEtcdClientPaths,
  configureEtcdMemberScript,
  etcdClientUrl,
  etcdEnvironmentFile,
  etcdMemberBundle,
  etcdPaths,
  etcdPeerUrl,
  etcdReleaseUrls,
  etcdSystemdUnit,
  installApiserverEtcdClientScript,
  installEtcdMemberScript,
  parseEnvironmentFile,
  waitEtcdClusterHealthyScript,
} from "../infra/scripts/etcdMember";
import { attachEtcdCluster, freePorts, makeTestPki, run, startMember, type EtcdVersion, type MemberProcess, type Pki } from "./support/etcdCluster";
import { StubRun, callsOf, cleanup, nodePath, runWithStubs, writeNodeFile } from "./support/stubs";
import { toolPath } from "./support/tools";

// ---------------------------------------------------------------------------------------------------------------
// The environment file as data
// ---------------------------------------------------------------------------------------------------------------

const three = [
  { name: "etcd-0", peerUrl: "https://10.0.1.10:2380" },
  { name: "etcd-1", peerUrl: "https://10.0.2.10:2380" },
  { name: "etcd-2", peerUrl: "https://10.0.3.10:2380" },
];

test("env file: production URLs on 2379/2380, loopback listener, static new cluster, TLS both ways, paths under /etc/etcd/pki", (t) => {
  const env = parseEnvironmentFile(etcdEnvironmentFile({ name: "etcd-1", privateIp: "10.0.2.10", initialCluster: three, clusterToken: "kubeadm-ha-dev-etcd" }));
  t.deepEqual(env, {
    ETCD_NAME: "etcd-1",
    ETCD_DATA_DIR: "/var/lib/etcd",
    ETCD_LISTEN_CLIENT_URLS: "https://10.0.2.10:2379,https://127.0.0.1:2379",
    ETCD_ADVERTISE_CLIENT_URLS: "https://10.0.2.10:2379",
    ETCD_LISTEN_PEER_URLS: "https://10.0.2.10:2380",
    ETCD_INITIAL_ADVERTISE_PEER_URLS: "https://10.0.2.10:2380",
    ETCD_INITIAL_CLUSTER: "etcd-0=https://10.0.1.10:2380,etcd-1=https://10.0.2.10:2380,etcd-2=https://10.0.3.10:2380",
    ETCD_INITIAL_CLUSTER_STATE: "new",
    ETCD_INITIAL_CLUSTER_TOKEN: "kubeadm-ha-dev-etcd",
    ETCD_CLIENT_CERT_AUTH: "true",
    ETCD_TRUSTED_CA_FILE: "/etc/etcd/pki/ca.crt",
    ETCD_CERT_FILE: "/etc/etcd/pki/server.crt",
    ETCD_KEY_FILE: "/etc/etcd/pki/server.key",
    ETCD_PEER_CLIENT_CERT_AUTH: "true",
    ETCD_PEER_TRUSTED_CA_FILE: "/etc/etcd/pki/ca.crt",
    ETCD_PEER_CERT_FILE: "/etc/etcd/pki/peer.crt",
    ETCD_PEER_KEY_FILE: "/etc/etcd/pki/peer.key",
  });
});

test("env file: refuses inputs etcd would refuse at start", (t) => {
  const base = { name: "etcd-1", privateIp: "10.0.2.10", initialCluster: three, clusterToken: "tok" };
  t.throws(() => etcdEnvironmentFile({ ...base, initialCluster: three.filter((m) => m.name !== "etcd-1") }), {
    message: "etcdEnvironmentFile: initialCluster must list the member itself (etcd-1)",
  });
  t.throws(() => etcdEnvironmentFile({ ...base, privateIp: "10.0.9.9" }), {
    message: "etcdEnvironmentFile: initialCluster lists etcd-1 at https://10.0.2.10:2380, but the member's peer URL is https://10.0.9.9:2380",
  });
  t.throws(() => etcdEnvironmentFile({ ...base, initialCluster: [...three, three[0]] }), { message: "etcdEnvironmentFile: member etcd-0 appears twice in initialCluster" });
  t.throws(() => etcdEnvironmentFile({ ...base, privateIp: "10.0.2" }), { message: /privateIp must be an IPv4 address/ });
  t.throws(() => etcdEnvironmentFile({ ...base, clusterToken: "a b" }), { message: /clusterToken must be one word/ });
  t.throws(() => etcdEnvironmentFile({ ...base, name: "Etcd_1" }), { message: /member name must be a DNS label/ });
  t.throws(() => etcdEnvironmentFile({ ...base, clientPort: 2380 }), { message: "etcdEnvironmentFile: clientPort and peerPort must differ (both 2380)" });
});

test("release URLs are the official tarball and SHA256SUMS of the same release", (t) => {
  t.deepEqual(etcdReleaseUrls("3.6.6"), {
    tarball: "etcd-v3.6.6-linux-amd64.tar.gz",
    tarballUrl: "https://github.com/etcd-io/etcd/releases/download/v3.6.6/etcd-v3.6.6-linux-amd64.tar.gz",
    sumsUrl: "https://github.com/etcd-io/etcd/releases/download/v3.6.6/SHA256SUMS",
  });
  t.throws(() => etcdReleaseUrls("v3.6.6"), { message: /an etcd version looks like 3.5.16/ });
});

// ---------------------------------------------------------------------------------------------------------------
// (a) REAL etcd started from the generated env files only
// ---------------------------------------------------------------------------------------------------------------

/** Copies the test PKI of a member to where the env file points, under the member's scratch root. */
function placeMemberPki(root: string, pki: Pki, name: string): void {
  const m = pki.members[name];
  mkdirSync(join(root, etcdPaths.pkiDir), { recursive: true });
  copyFileSync(pki.ca.cert, join(root, etcdPaths.caCert));
  copyFileSync(m.server.cert, join(root, etcdPaths.serverCert));
  copyFileSync(m.server.key, join(root, etcdPaths.serverKey));
  copyFileSync(m.peer.cert, join(root, etcdPaths.peerCert));
  copyFileSync(m.peer.key, join(root, etcdPaths.peerKey));
}

function runBash(script: string, env: Record<string, string>, timeoutMs: number) {
  return run("bash", ["-c", script], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", KUBEADM_HA_POLL_SECONDS: "0", ...env }, timeoutMs });
}

for (const version of ["3.4", "3.5"] as EtcdVersion[]) {
  test(`REAL etcd ${version}: three members started from the generated env files alone form a healthy TLS cluster; etcd-healthy passes, then fails with a member down`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), `external-etcd-${version}-`));
    const members: MemberProcess[] = [];
    t.teardown(async () => {
      await Promise.all(members.map((m) => m.stop()));
      rmSync(dir, { recursive: true, force: true });
    });
    const names = ["etcd-0", "etcd-1", "etcd-2"];
    const pki = await makeTestPki(join(dir, "pki"), names);
    const ports = await freePorts(2 * names.length);
    const clientPort = (i: number) => ports[2 * i];
    const peerPort = (i: number) => ports[2 * i + 1];
    const initialCluster = names.map((name, i) => ({ name, peerUrl: etcdPeerUrl("127.0.0.1", peerPort(i)) }));
    const clusterToken = `test-${process.pid}-${version}`;

    for (const [i, name] of names.entries()) {
      const root = join(dir, name);
      const content = etcdEnvironmentFile({ name, privateIp: "127.0.0.1", initialCluster, clusterToken, clientPort: clientPort(i), peerPort: peerPort(i) });
      mkdirSync(join(root, "etc/etcd"), { recursive: true });
      writeFileSync(join(root, etcdPaths.envFile), content);
      placeMemberPki(root, pki, name);
      // ONLY the env file's variables; every absolute path moves under the member's scratch root.
      const env = Object.fromEntries(
        Object.entries(parseEnvironmentFile(readFileSync(join(root, etcdPaths.envFile), "utf8"))).map(([k, v]) => [k, v.startsWith("/") ? join(root, v) : v]),
      );
      t.is(env.ETCD_DATA_DIR, join(root, "/var/lib/etcd"));
      mkdirSync(join(root, "var/lib"), { recursive: true });
      members.push(
        await startMember({
          name,
          version,
          args: [],
          env,
          logFile: join(dir, `${name}.log`),
          clientUrl: env.ETCD_ADVERTISE_CLIENT_URLS,
          peerUrl: env.ETCD_INITIAL_ADVERTISE_PEER_URLS,
          dataDir: env.ETCD_DATA_DIR,
        }),
      );
    }
    const cluster = await attachEtcdCluster({ version, dir, pki, members, healthTimeoutMs: 15_000 });

    const health = await cluster.etcdctl(["endpoint", "health"], { check: true });
    for (const [i] of names.entries()) t.regex(health.stdout + health.stderr, new RegExp(`${etcdClientUrl("127.0.0.1", clientPort(i))} is healthy`));
    const list = await cluster.etcdctl(["member", "list", "-w", "json"], { check: true });
    const listed = (JSON.parse(list.stdout) as { members: { name: string; clientURLs: string[]; peerURLs: string[] }[] }).members;
    t.deepEqual(listed.map((m) => m.name).sort(), names);
    for (const [i, name] of names.entries()) {
      const m = listed.find((x) => x.name === name)!;
      t.deepEqual(m.clientURLs, [etcdClientUrl("127.0.0.1", clientPort(i))]);
      t.deepEqual(m.peerURLs, [etcdPeerUrl("127.0.0.1", peerPort(i))]);
    }

    // The etcd-healthy step itself, on etcd-0's scratch root: the member's server certificate as client identity.
    const root0 = join(dir, "etcd-0");
    mkdirSync(join(root0, etcdPaths.binDir), { recursive: true });
    symlinkSync(toolPath.etcdctl(version), join(root0, etcdPaths.binDir, "etcdctl"));
    const endpoints = names.map((_, i) => etcdClientUrl("127.0.0.1", clientPort(i)));
    const ok = await runBash(waitEtcdClusterHealthyScript({ node: "etcd-0", endpoints, timeoutSeconds: 10 }), { KUBEADM_HA_ROOT: root0 }, 30_000);
    t.is(ok.code, 0, ok.stderr);
    t.is(ok.stdout, "");
    t.regex(ok.stderr, /\[etcd-0\] etcd-healthy: all 3 etcd members healthy/);
    t.is((ok.stderr.match(/, started, etcd-\d, /g) ?? []).length, 3);

    await cluster.stopMember("etcd-2");
    const down = await runBash(waitEtcdClusterHealthyScript({ node: "etcd-0", endpoints, timeoutSeconds: 1 }), { KUBEADM_HA_ROOT: root0 }, 30_000);
    t.not(down.code, 0);
    t.regex(down.stderr, /\[etcd-0\] etcd-healthy: ERROR: etcd not healthy on all 3 endpoints after 1s/);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// (b) The unit
// ---------------------------------------------------------------------------------------------------------------

function parseUnit(unit: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section = "";
  for (const line of unit.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1];
      out[section] = {};
      continue;
    }
    const eq = line.indexOf("=");
    if (!section || eq <= 0) throw new Error(`not a unit line: ${JSON.stringify(line)}`);
    out[section][line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

function systemdAnalyze(): string | undefined {
  for (const d of (process.env.PATH ?? "").split(":")) if (d && existsSync(join(d, "systemd-analyze"))) return join(d, "systemd-analyze");
  return undefined;
}

test("unit: etcd as user etcd from the env file, no flags, notify, restart on failure; systemd-analyze verify finds nothing", async (t) => {
  const unit = etcdSystemdUnit();
  const parsed = parseUnit(unit);
  t.deepEqual(Object.keys(parsed), ["Unit", "Service", "Install"]);
  t.like(parsed.Service, {
    Type: "notify",
    User: "etcd",
    Group: "etcd",
    EnvironmentFile: etcdPaths.envFile,
    ExecStart: "/usr/local/bin/etcd",
    Restart: "on-failure",
    LimitNOFILE: "65536",
  });
  t.is(parsed.Install.WantedBy, "multi-user.target");

  const analyze = systemdAnalyze();
  if (!analyze) {
    t.log("systemd-analyze not available: unit checked as data only");
    return;
  }
  // verify checks that ExecStart exists on this machine: point it at the real etcd binary of the test tools.
  const dir = mkdtempSync(join(tmpdir(), "etcd-unit-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "etcd.service");
  writeFileSync(file, unit.replace("ExecStart=/usr/local/bin/etcd", `ExecStart=${toolPath.etcd("3.5")}`));
  const r = await run(analyze, ["verify", file], { timeoutMs: 20_000 });
  t.is(r.code, 0, r.stderr);
  // verify reports unknown keys and bad values as warnings with exit 0: any line about the file is a finding.
  t.is(r.stderr.split("\n").filter((l) => l.includes("etcd.service")).join("\n"), "");
});

// ---------------------------------------------------------------------------------------------------------------
// (c) The steps with RECORDING STUBS
// ---------------------------------------------------------------------------------------------------------------

const STUBS = "(recording stubs: curl, useradd, getent, chown, systemctl)";

/** Real tools wrapped so their argv is recorded too: the secret-in-argv checks see every process a step starts. */
const passthrough = ["python3", "openssl", "install", "cmp", "cp", "mv", "chmod", "stat", "sed", "grep", "mktemp", "rm", "cat", "sha256sum", "tar", "head", "tr", "dirname", "awk", "cut"];
const recorded = Object.fromEntries(passthrough.map((name) => [name, `PATH="\${PATH#*:}" exec ${name} "$@"\n`]));

const etcdStubs: Record<string, string> = {
  ...recorded,
  // The etcd user exists unless the state says "no-user-etcd" (a fresh node for the install step).
  getent: `if [ -e "$S/no-user-etcd" ] && [ "\${2:-}" = etcd ]; then exit 2; fi\necho "etcd:x:999:999::/var/lib/etcd:/usr/sbin/nologin"\n`,
  useradd: `rm -f "$S/no-user-etcd"\n`,
  chown: "",
  journalctl: `echo "stub journal of etcd"\n`,
  systemctl: `case "$*" in
  "show -p ActiveState --value etcd") cat "$S/etcd-state" 2>/dev/null || echo active ;;
  "show -p NRestarts --value etcd") echo 0 ;;
esac
`,
};

/** The curl stub serves files from $S/release by the URL's last path segment. */
const curlFromRelease = `out="" url=""
while [ $# -gt 0 ]; do
  case $1 in
    -o) out=$2; shift ;;
    --connect-timeout | --max-time | --proto) shift ;;
    https://*) url=$1 ;;
  esac
  shift
done
f="$S/release/\${url##*/}"
[ -f "$f" ] || { echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }
cp "$f" "$out"
`;

/** A fake release tarball of `version` (bash scripts as binaries) and its SHA256SUMS, in the stubs' state. */
function seedRelease(root: string, version: string, opts: { badSum?: boolean } = {}): void {
  const state = join(root, "..", "state");
  const build = join(state, "build", `etcd-v${version}-linux-amd64`);
  mkdirSync(build, { recursive: true });
  writeFileSync(join(build, "etcd"), `#!/bin/sh\necho "etcd Version: ${version}"\necho "Git SHA: stub"\n`, { mode: 0o755 });
  writeFileSync(join(build, "etcdctl"), `#!/bin/sh\necho "etcdctl version: ${version}"\n`, { mode: 0o755 });
  writeFileSync(join(build, "etcdutl"), `#!/bin/sh\necho "etcdutl version: ${version}"\n`, { mode: 0o755 });
  mkdirSync(join(state, "release"), { recursive: true });
  const tarball = `etcd-v${version}-linux-amd64.tar.gz`;
  execFileSync("tar", ["-czf", join(state, "release", tarball), "-C", join(state, "build"), `etcd-v${version}-linux-amd64`]);
  const sum = execFileSync("sha256sum", [join(state, "release", tarball)], { encoding: "utf8" });
  const hash = opts.badSum ? "0".repeat(64) : sum.split(" ")[0];
  writeFileSync(join(state, "release", "SHA256SUMS"), `${"a".repeat(64)}  etcd-v${version}-darwin-amd64.zip\n${hash}  ${tarball}\n`);
}

/** A scratch TMPDIR for a step's downloads, to check it is cleaned up. */
function scratchTmp(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "etcd-install-tmp-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function stepLines(t: ExecutionContext, r: StubRun, node: string, step: string) {
  for (const line of r.stderr.split("\n").filter((l) => l !== "")) t.true(line.startsWith(`[${node}] ${step}: `), `unnamed line: ${line}`);
}

test(`etcd-install ${STUBS}: verified download installs etcd, etcdctl, etcdutl 0755 and creates the etcd user`, async (t) => {
  const tmp = scratchTmp(t);
  const r = await runWithStubs(installEtcdMemberScript({ node: "etcd-0", etcdVersion: "3.6.6" }), {
    stubs: { ...etcdStubs, curl: curlFromRelease },
    env: { TMPDIR: tmp },
    setup: (root) => {
      seedRelease(root, "3.6.6");
      writeFileSync(join(root, "..", "state", "no-user-etcd"), "");
    },
  });
  t.teardown(() => cleanup(r.root));
  t.is(r.code, 0, r.stderr);
  stepLines(t, r, "etcd-0", "etcd-install");
  t.regex(r.stderr, /checksum verified/);
  t.deepEqual(callsOf(r, "useradd"), [["--system", "--user-group", "--home-dir", "/var/lib/etcd", "--no-create-home", "--shell", "/usr/sbin/nologin", "etcd"]]);
  const urls = callsOf(r, "curl").map((a) => a[a.length - 1]);
  t.deepEqual(urls, [etcdReleaseUrls("3.6.6").tarballUrl, etcdReleaseUrls("3.6.6").sumsUrl]);
  for (const args of callsOf(r, "curl")) t.true(args.includes("--max-time") && args.includes("--connect-timeout"), "curl is bounded");
  for (const bin of ["etcd", "etcdctl", "etcdutl"]) t.is(statSync(nodePath(r.root, `/usr/local/bin/${bin}`)).mode & 0o777, 0o755);
  t.regex(readFileSync(nodePath(r.root, "/usr/local/bin/etcd"), "utf8"), /etcd Version: 3.6.6/);
  t.deepEqual(readdirSync(tmp), [], "the download directory is removed");
});

test(`etcd-install ${STUBS}: a checksum mismatch is refused and installs nothing`, async (t) => {
  const tmp = scratchTmp(t);
  const r = await runWithStubs(installEtcdMemberScript({ node: "etcd-0", etcdVersion: "3.5.16" }), {
    stubs: { ...etcdStubs, curl: curlFromRelease },
    env: { TMPDIR: tmp },
    setup: (root) => seedRelease(root, "3.5.16", { badSum: true }),
  });
  t.teardown(() => cleanup(r.root));
  t.not(r.code, 0);
  t.regex(r.stderr, /\[etcd-0\] etcd-install: ERROR: checksum mismatch for etcd-v3.5.16-linux-amd64.tar.gz: SHA256SUMS says 0{64}, the download is [0-9a-f]{64}; refusing to install/);
  t.false(existsSync(nodePath(r.root, "/usr/local/bin/etcd")));
  t.deepEqual(callsOf(r, "tar"), [], "the unverified tarball is never unpacked");
  t.deepEqual(readdirSync(tmp), [], "the download directory is removed");
});

test(`etcd-install ${STUBS}: skipped without a download when etcd --version already reports the version`, async (t) => {
  const r = await runWithStubs(installEtcdMemberScript({ node: "etcd-2", etcdVersion: "3.6.6" }), {
    stubs: { ...etcdStubs, curl: curlFromRelease },
    setup: (root) => {
      writeNodeFile(root, "/usr/local/bin/etcd", '#!/bin/sh\necho "etcd Version: 3.6.6"\n', 0o755);
      writeNodeFile(root, "/usr/local/bin/etcdctl", '#!/bin/sh\necho "etcdctl version: 3.6.6"\n', 0o755);
    },
  });
  t.teardown(() => cleanup(r.root));
  t.is(r.code, 0, r.stderr);
  t.deepEqual(callsOf(r, "curl"), []);
  t.deepEqual(callsOf(r, "useradd"), []);
  t.regex(r.stderr, /\[etcd-2\] etcd-install: etcd 3.6.6 already installed in /);
});

/** The PEM body lines of a key: none may appear in argv, stdout or stderr. */
function keyLines(pem: string): string[] {
  return pem.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"));
}

function assertNoLeak(t: ExecutionContext, r: StubRun, secrets: string[]) {
  t.true(secrets.length > 0);
  for (const s of secrets) {
    t.false(r.stdout.includes(s), "a key reached stdout");
    t.false(r.stderr.includes(s), "a key reached stderr");
    for (const c of r.calls) t.false(c.args.some((a) => a.includes(s)), `a key reached argv of ${c.cmd}`);
  }
}

async function memberBundle(dir: string) {
  const pki = await makeTestPki(dir, ["etcd-0", "etcd-1"]);
  const read = (p: string) => readFileSync(p, "utf8");
  const m = pki.members["etcd-0"];
  const fields = {
    envFile: etcdEnvironmentFile({ name: "etcd-0", privateIp: "10.0.1.10", initialCluster: three, clusterToken: "tok" }),
    caCert: read(pki.ca.cert),
    serverCert: read(m.server.cert),
    serverKey: read(m.server.key),
    peerCert: read(m.peer.cert),
    peerKey: read(m.peer.key),
  };
  return { pki, fields, other: pki.members["etcd-1"] };
}

test(`etcd-configure ${STUBS}: writes keys 0600 owned by etcd, certs 0644, env and unit; starts etcd; keys never in argv or output; a re-run restarts nothing`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-configure-pki-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { fields } = await memberBundle(dir);
  const stdin = etcdMemberBundle(fields);
  const r = await runWithStubs(configureEtcdMemberScript({ node: "etcd-0" }), { stdin, stubs: etcdStubs });
  t.teardown(() => cleanup(r.root));
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, "");
  stepLines(t, r, "etcd-0", "etcd-configure");

  const mode = (p: string) => statSync(nodePath(r.root, p)).mode & 0o777;
  const content = (p: string) => readFileSync(nodePath(r.root, p), "utf8");
  t.is(mode(etcdPaths.serverKey), 0o600);
  t.is(mode(etcdPaths.peerKey), 0o600);
  for (const p of [etcdPaths.caCert, etcdPaths.serverCert, etcdPaths.peerCert, etcdPaths.envFile, etcdPaths.unitFile]) t.is(mode(p), 0o644, p);
  t.is(mode(etcdPaths.dataDir), 0o700);
  t.is(content(etcdPaths.serverKey), fields.serverKey);
  t.is(content(etcdPaths.peerCert), fields.peerCert);
  t.is(content(etcdPaths.envFile), fields.envFile);
  t.is(content(etcdPaths.unitFile), etcdSystemdUnit());
  const chowns = callsOf(r, "chown");
  for (const p of [etcdPaths.serverKey, etcdPaths.peerKey]) {
    t.true(chowns.some(([owner, file]) => owner === "etcd:etcd" && file === nodePath(r.root, p) + ".new"), `${p} owned by etcd`);
  }
  t.true(chowns.some(([owner, file]) => owner === "etcd:etcd" && file === nodePath(r.root, etcdPaths.dataDir)));
  const systemctl = callsOf(r, "systemctl").map((a) => a.join(" ")).filter((c) => !c.startsWith("show"));
  t.deepEqual(systemctl, ["daemon-reload", "enable etcd", "restart --no-block etcd"]);
  t.deepEqual(readdirSync(nodePath(r.root, "/etc/etcd")).sort(), ["etcd.env", "pki"], "no staging directory, bundle or marker left behind");
  t.true(callsOf(r, "python3").length === 1 && callsOf(r, "openssl").length > 0, "the argv check saw the real tools");
  assertNoLeak(t, r, [...keyLines(fields.serverKey), ...keyLines(fields.peerKey)]);

  const again = await runWithStubs(configureEtcdMemberScript({ node: "etcd-0" }), { stdin, stubs: etcdStubs, root: r.root });
  t.is(again.code, 0, again.stderr);
  t.notRegex(again.stderr, /wrote /);
  t.deepEqual(
    callsOf(again, "systemctl").map((a) => a.join(" ")).filter((c) => !c.startsWith("show")),
    ["daemon-reload", "enable --now --no-block etcd"],
    "unchanged configuration: etcd is not restarted",
  );
  assertNoLeak(t, again, [...keyLines(fields.serverKey), ...keyLines(fields.peerKey)]);
});

test(`etcd-configure ${STUBS}: a host that already runs another member (this address reaches etcd-1) is refused before anything is written`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-configure-identity-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { fields } = await memberBundle(dir);
  const theirs = "ETCD_NAME=etcd-1\nETCD_DATA_DIR=/var/lib/etcd\n";
  const r = await runWithStubs(configureEtcdMemberScript({ node: "etcd-0" }), {
    stdin: etcdMemberBundle(fields),
    stubs: etcdStubs,
    setup: (root) => writeNodeFile(root, etcdPaths.envFile, theirs),
  });
  t.teardown(() => cleanup(r.root));
  t.not(r.code, 0);
  t.regex(r.stderr, /\[etcd-0\] etcd-configure: ERROR: refusing to configure it as etcd member etcd-0: this host's etcd is member etcd-1, not etcd-0/);
  t.is(readFileSync(nodePath(r.root, etcdPaths.envFile), "utf8"), theirs, "its configuration is untouched");
  t.deepEqual(callsOf(r, "systemctl"), []);
  t.false(existsSync(nodePath(r.root, etcdPaths.serverKey)));
});

test(`etcd-configure ${STUBS}: a bad bundle is refused before anything is written, naming the problem and not the key`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-configure-bad-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { fields, other } = await memberBundle(dir);
  const cases: [string, string, RegExp][] = [
    ["a missing key", JSON.stringify({ ...fields, peerKey: undefined }), /ERROR: bad bundle on stdin: the bundle lacks peerKey/],
    ["not JSON", "envFile: x\n", /ERROR: bad bundle on stdin: the bundle is not a JSON document \(JSONDecodeError\)/],
    ["another member's key", etcdMemberBundle({ ...fields, serverKey: readFileSync(other.server.key, "utf8") }), /ERROR: the key of the server certificate in the bundle does not belong to its certificate/],
    ["an empty stdin", "", /ERROR: no bundle on stdin/],
  ];
  for (const [what, stdin, message] of cases) {
    const r = await runWithStubs(configureEtcdMemberScript({ node: "etcd-0" }), { stdin, stubs: etcdStubs });
    t.teardown(() => cleanup(r.root));
    t.not(r.code, 0, what);
    t.regex(r.stderr, message, what);
    t.false(existsSync(nodePath(r.root, etcdPaths.serverKey)), `${what}: nothing written`);
    t.deepEqual(callsOf(r, "systemctl"), [], `${what}: etcd untouched`);
    assertNoLeak(t, r, [...keyLines(fields.serverKey), ...keyLines(fields.peerKey), ...keyLines(readFileSync(other.server.key, "utf8"))]);
  }
});

test(`etcd-configure ${STUBS}: an etcd that fails to start fails the step with its journal`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-configure-fail-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { fields } = await memberBundle(dir);
  const r = await runWithStubs(configureEtcdMemberScript({ node: "etcd-0" }), {
    stdin: etcdMemberBundle(fields),
    stubs: etcdStubs,
    setup: (root) => writeFileSync(join(root, "..", "state", "etcd-state"), "failed\n"),
  });
  t.teardown(() => cleanup(r.root));
  t.not(r.code, 0);
  t.regex(r.stderr, /\[etcd-0\] etcd-configure: stub journal of etcd/);
  t.regex(r.stderr, /ERROR: etcd is failed after 0 automatic restarts/);
});

test(`etcd-client-certs ${STUBS}: CA and client certificate 0644, key 0600 root, where kubeadm's etcd.external expects them`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-client-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await makeTestPki(dir, []);
  const bundle = { caCert: readFileSync(pki.ca.cert, "utf8"), clientCert: readFileSync(pki.client.cert, "utf8"), clientKey: readFileSync(pki.client.key, "utf8") };
  const r = await runWithStubs(installApiserverEtcdClientScript({ node: "cp-0" }), { stdin: apiserverEtcdClientBundle(bundle), stubs: etcdStubs });
  t.teardown(() => cleanup(r.root));
  t.is(r.code, 0, r.stderr);
  stepLines(t, r, "cp-0", "etcd-client-certs");
  const mode = (p: string) => statSync(nodePath(r.root, p)).mode & 0o777;
  t.is(mode(apiserverEtcdClientPaths.caFile), 0o644);
  t.is(mode(apiserverEtcdClientPaths.certFile), 0o644);
  t.is(mode(apiserverEtcdClientPaths.keyFile), 0o600);
  t.is(readFileSync(nodePath(r.root, apiserverEtcdClientPaths.keyFile), "utf8"), bundle.clientKey);
  t.true(callsOf(r, "chown").some(([owner, file]) => owner === "root:root" && file === nodePath(r.root, apiserverEtcdClientPaths.keyFile) + ".new"));
  assertNoLeak(t, r, keyLines(bundle.clientKey));
});
