// The generated etcd snapshot step run against REAL etcd (3.4 from bookworm, 3.5 from trixie: .tools/, made by
// `bash test/tools/ensure-tools.sh`): a 3-member TLS cluster on loopback holding 10,000 keys. And the tools-install
// step against a stub curl that serves a locally built release tarball (the real etcdctl/etcdutl binaries inside).
import test from "ava";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { saveSnapshotScript, snapshotToolsInstallScript } from "../lifecycle/scripts/saveSnapshot";
import { type EtcdVersion } from "./support/etcdCluster";
import { rigWithKeys, sha256, snapshotStepScenario } from "./support/etcdScenarios";
import { callsOf, cleanup, runWithStubs } from "./support/stubs";
import { toolPath } from "./support/tools";

// The same scenario runs on etcd 3.6 in test/real/etcd36.test.ts (support/etcdScenarios.ts).
for (const version of ["3.4", "3.5"] as EtcdVersion[]) {
  test(`etcd ${version}: the snapshot step saves, verifies, records, prunes and uploads a snapshot of 10,000 keys`, async (t) => {
    await snapshotStepScenario(t, await rigWithKeys(t, version, "external", ["etcd-1", "etcd-2", "etcd-3"]));
  });
}

test("the snapshot step refuses bad arguments, naming each", (t) => {
  const e = t.throws(() =>
    saveSnapshotScript({
      node: "cp_0",
      cluster: "kubeadm-ha-dev",
      etcdctl: "usr/bin/etcdctl",
      endpoint: "127.0.0.1:2379",
      cacert: "/ca.crt",
      cert: "/c.crt",
      key: "/c.key",
      snapshotDir: "/var/lib/../snap",
      keep: 0,
      reason: "pre upgrade",
      upload: { s3Uri: "https://bucket/x" },
    }),
  );
  t.is(
    e?.message,
    [
      "saveSnapshotScript: invalid arguments:",
      '- node: must be a DNS label (a-z, 0-9, -), got "cp_0"',
      '- etcdctl: must be an absolute path of letters, digits and . _ + / - (no ".."), got "usr/bin/etcdctl"',
      '- endpoint: must look like https://10.0.1.10:2379, got "127.0.0.1:2379"',
      '- snapshotDir: must be an absolute path of letters, digits and . _ + / - (no ".."), got "/var/lib/../snap"',
      "- keep: must be a whole number >= 1, got 0",
      '- reason: must be one word of letters, digits and . _ - (at most 100), got "pre upgrade"',
      '- upload.s3Uri: must look like s3://bucket/prefix (key characters A-Z a-z 0-9 . _ + = / -), got "https://bucket/x"',
    ].join("\n"),
  );
});

// ---- snapshotToolsInstallScript against a stub curl serving a local "release" ------------------------------------

/**
 * A release directory like GitHub's: the tarball and SHA256SUMS. The tools inside are the real etcdctl/etcdutl; the
 * server binary is a placeholder (the step must not install it).
 */
function makeRelease(dir: string, version: string, tools: Record<string, string>, corruptSums = false): string {
  const top = `etcd-v${version}-linux-amd64`;
  const stage = join(dir, "stage");
  mkdirSync(join(stage, top), { recursive: true });
  for (const [name, path] of Object.entries(tools)) copyFileSync(path, join(stage, top, name));
  writeFileSync(join(stage, top, "etcd"), "#!/bin/sh\necho 'placeholder etcd server'\n", { mode: 0o755 });
  writeFileSync(join(stage, top, "README.md"), "etcd\n");
  const release = join(dir, "release");
  mkdirSync(release, { recursive: true });
  const tarball = `${top}.tar.gz`;
  execFileSync("tar", ["-I", "gzip -1", "-cf", join(release, tarball), "-C", stage, top]);
  rmSync(stage, { recursive: true, force: true });
  const sum = corruptSums ? "0".repeat(64) : sha256(join(release, tarball));
  writeFileSync(
    join(release, "SHA256SUMS"),
    `${"1".repeat(64)}  etcd-v${version}-darwin-amd64.zip\n${sum}  ${tarball}\n${"2".repeat(64)}  etcd-v${version}-linux-arm64.tar.gz\n`,
  );
  return release;
}

/** curl stub: serves https://github.com/etcd-io/etcd/releases/download/v<ver>/<file> from $RELEASE_DIR. */
const releaseCurl = String.raw`
out="" url=""
while [ $# -gt 0 ]; do
  case $1 in
    -o) out=$2; shift ;;
    --connect-timeout | --max-time | --proto) shift ;;
    https://*) url=$1 ;;
  esac
  shift
done
case $url in
  https://github.com/etcd-io/etcd/releases/download/v*/*)
    f="$RELEASE_DIR/$(basename "$url")"
    [ -f "$f" ] || { echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }
    cp "$f" "$out"
    ;;
  *) echo "curl: (6) Could not resolve host" >&2; exit 6 ;;
esac
`;

const toolVersion = (bin: string) => execFileSync(bin, ["version"]).toString().split("\n")[0];

test("tools install: etcdctl and etcdutl 3.5.16 from the checksum-verified release tarball, then skipped on a rerun", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-tools-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const release = makeRelease(dir, "3.5.16", { etcdctl: toolPath.etcdctl("3.5"), etcdutl: toolPath.etcdutl() });
  const script = snapshotToolsInstallScript({ node: "cp-0", etcdVersion: "3.5.16" });
  const env = { RELEASE_DIR: release, TMPDIR: dir };

  const first = await runWithStubs(script, { stubs: { curl: releaseCurl }, env });
  t.teardown(() => cleanup(first.root));
  t.is(first.code, 0, first.stderr);
  t.deepEqual(
    callsOf(first, "curl").map((a) => a[a.length - 1]),
    [
      "https://github.com/etcd-io/etcd/releases/download/v3.5.16/etcd-v3.5.16-linux-amd64.tar.gz",
      "https://github.com/etcd-io/etcd/releases/download/v3.5.16/SHA256SUMS",
    ],
  );
  const bin = join(first.root, "usr/local/bin");
  t.deepEqual(readdirSync(bin).sort(), ["etcdctl", "etcdutl"], "the tools only: the etcd server stays in its static pod");
  t.is(toolVersion(join(bin, "etcdctl")), "etcdctl version: 3.5.16");
  t.is(toolVersion(join(bin, "etcdutl")), "etcdutl version: 3.5.16");
  t.regex(first.stderr, /checksum verified/);
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith("etcd-tools.")), [], "the download directory is removed");

  const again = await runWithStubs(script, { stubs: { curl: releaseCurl }, env, root: first.root });
  t.is(again.code, 0, again.stderr);
  t.deepEqual(callsOf(again, "curl"), [], "nothing downloaded when etcdctl version already reports 3.5.16");
  t.regex(again.stderr, /etcdctl and etcdutl 3\.5\.16 already installed/);
});

test("tools install: etcdctl 3.4.23 alone (no etcdutl before 3.5)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-tools-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const release = makeRelease(dir, "3.4.23", { etcdctl: toolPath.etcdctl("3.4") });
  const r = await runWithStubs(snapshotToolsInstallScript({ node: "cp-0", etcdVersion: "3.4.23" }), {
    stubs: { curl: releaseCurl },
    env: { RELEASE_DIR: release, TMPDIR: dir },
  });
  t.teardown(() => cleanup(r.root));
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readdirSync(join(r.root, "usr/local/bin")), ["etcdctl"]);
  t.is(toolVersion(join(r.root, "usr/local/bin/etcdctl")), "etcdctl version: 3.4.23");
});

test("tools install: a checksum mismatch is refused and nothing is installed", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-tools-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const release = makeRelease(dir, "3.5.16", { etcdctl: toolPath.etcdctl("3.5"), etcdutl: toolPath.etcdutl() }, true);
  const r = await runWithStubs(snapshotToolsInstallScript({ node: "cp-0", etcdVersion: "3.5.16" }), {
    stubs: { curl: releaseCurl },
    env: { RELEASE_DIR: release, TMPDIR: dir },
  });
  t.teardown(() => cleanup(r.root));
  t.not(r.code, 0);
  t.regex(r.stderr, /checksum mismatch for etcd-v3\.5\.16-linux-amd64\.tar\.gz: SHA256SUMS says 0{64}, the download is [0-9a-f]{64}; refusing to install/);
  t.false(existsSync(join(r.root, "usr/local/bin/etcdctl")));
  t.false(existsSync(join(r.root, "usr/local/bin/etcdutl")));
});
