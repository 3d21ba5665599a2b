// SSH host-key pinning, REAL on both ends: Debian's sshd (from .tools/, via test/support/sshd.ts) and
// golang.org/x/crypto/ssh v0.48.0 — the version @pulumi/command 1.2.1 builds with — configured as its connection code
// configures it for a `hostKey` (test/hostKeyProbe/main.go: ParseAuthorizedKey, FixedHostKey, the key's type as the only
// host-key algorithm). The probe stops after the key exchange (it offers no credentials): "accepted" means the host
// proved it holds the pinned key. What is not the production path: the provider's own binary and the Pulumi engine
// (the probe is the library call the provider makes, not the provider).
import test from "ava";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { parseOpenSshPublicKey, validateConfig } from "../infra/validate";
import { byName, evaluateStack } from "./support/program";
import { Sshd, startSshd, writeOverlays } from "./support/sshd";

const probeDir = join(__dirname, "hostKeyProbe");

/** Builds the probe once per source (Go's module and build caches beside the project's other tools). */
function buildProbe(): string {
  const tools = process.env.KUBEADM_HA_TOOLS ?? join(homedir(), ".cache", "kubeadm-ha", "tools");
  const hash = createHash("sha256");
  for (const f of ["go.mod", "go.sum", "main.go"]) hash.update(readFileSync(join(probeDir, f)));
  const out = join(tools, "host-key-probe", hash.digest("hex").slice(0, 16), "hostkeyprobe");
  if (!existsSync(out)) {
    execFileSync("go", ["build", "-mod=readonly", "-o", out, "."], {
      cwd: probeDir,
      env: { ...process.env, GOMODCACHE: join(tools, "go", "mod"), GOCACHE: join(tools, "go", "build"), CGO_ENABLED: "0", GOFLAGS: "" },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 300_000,
    });
  }
  return out;
}

const probe = (bin: string, sshd: Sshd, key: string) => execFileSync(bin, [`${sshd.address}:${sshd.port}`, key], { encoding: "utf8", timeout: 30_000 }).trim();
const keyLine = (file: string) => readFileSync(file, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");

test.serial("a pinned ed25519 or ECDSA host key is accepted from the host that holds it and refused from any other; an RSA pin negotiates SHA-1 signatures, which OpenSSH refuses", async (t) => {
  if (process.getuid?.() !== 0) return t.fail("needs root: sshd runs in a private mount namespace");
  const bin = buildProbe();
  const dir = mkdtempSync(join(tmpdir(), "host-key-pinning-"));
  let sshd: Sshd | undefined;
  try {
    for (const type of ["ecdsa", "rsa"]) execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", join(dir, `host_${type}`)]);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "other_ed25519")]);
    const overlays = writeOverlays(dir, dir);
    sshd = await startSshd({
      dir, name: "pinned", address: "127.0.0.1", port: 22000 + (process.pid % 2000), overlays, authorizedKeys: join(dir, "none"),
      extra: [`HostKey ${join(dir, "host_ecdsa")}`, `HostKey ${join(dir, "host_rsa")}`],
    });
    const ed25519 = sshd.hostKey.split(/\s+/).slice(0, 2).join(" ");
    t.is(probe(bin, sshd, ed25519), "accepted");
    t.is(probe(bin, sshd, keyLine(join(dir, "host_ecdsa.pub"))), "accepted");
    t.regex(probe(bin, sshd, keyLine(join(dir, "other_ed25519.pub"))), /^refused: .*host key mismatch/, "another machine's key: a man in the middle is refused");
    t.regex(probe(bin, sshd, keyLine(join(dir, "host_rsa.pub"))), /^refused: .*no common algorithm for host key/, "why validation refuses ssh-rsa host keys");
    // And validation agrees: what it accepts is what the probe could pin; ssh-rsa is refused with the reason.
    t.false(typeof parseOpenSshPublicKey(sshd.hostKey, ["ssh-ed25519", "ecdsa-sha2-nistp256"]) === "string");
    const rsa = validateConfig({
      hosts: { provider: "static", controlPlanes: [{ name: "cp", address: "192.0.2.10", hostKey: readFileSync(join(dir, "host_rsa.pub"), "utf8") }] },
      apiEndpoint: { address: "192.0.2.10:6443" },
      sshPrivateKey: "[secret]",
    }).problems;
    t.regex(rsa.map((p) => `${p.path}: ${p.message}`).join("\n"), /hosts\.controlPlanes\[0\]\.hostKey: .*the key type must be one of ssh-ed25519, ecdsa-sha2-nistp256/);
  } finally {
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial("the connection the program registers for a pinned static host (and its bastion) carries the key: handed to x/crypto as @pulumi/command would, it accepts the host and refuses an impostor", async (t) => {
  if (process.getuid?.() !== 0) return t.fail("needs root: sshd runs in a private mount namespace");
  const bin = buildProbe();
  const dir = mkdtempSync(join(tmpdir(), "host-key-program-"));
  const sshds: Sshd[] = [];
  try {
    const overlays = writeOverlays(dir, dir);
    const base = 24000 + (process.pid % 2000);
    for (const [i, name] of ["node", "bastion", "impostor"].entries()) {
      mkdirSync(join(dir, name), { recursive: true });
      sshds.push(await startSshd({ dir, name, address: "127.0.0.1", port: base + i, overlays, authorizedKeys: join(dir, "none"), extra: [] }));
    }
    const [node, bastion, impostor] = sshds;
    const e = await evaluateStack("lab", [
      `hosts.controlPlanes=[{name: k8s-control, address: 192.168.56.10, privateAddress: 192.168.56.10, hostKey: "${node.hostKey}"}]`,
      `hosts.bastion={address: jump.lab.example, user: ops, port: 2200, hostKey: "${bastion.hostKey}"}`,
    ]);
    const connection = byName(e, "k8s-control-init").inputs.connection;
    t.is(connection.hostKey, node.hostKey.split(/\s+/).slice(0, 2).join(" "), "the node's pin, normalised (no comment)");
    t.is(connection.proxy.hostKey, bastion.hostKey.split(/\s+/).slice(0, 2).join(" "), "the bastion's pin on the jump");
    t.is(probe(bin, node, connection.hostKey), "accepted");
    t.is(probe(bin, bastion, connection.proxy.hostKey), "accepted");
    t.regex(probe(bin, impostor, connection.hostKey), /^refused: .*host key mismatch/);
    t.regex(probe(bin, impostor, connection.proxy.hostKey), /^refused: .*host key mismatch/);
    // Unpinned workers get no hostKey at all: @pulumi/command then checks nothing (and the program warns).
    t.is(byName(e, "k8s-worker1-join").inputs.connection.hostKey, undefined);
  } finally {
    for (const s of sshds) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
