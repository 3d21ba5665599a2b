// Debian's sshd (unpacked into .tools/ by test/tools/ensure-tools.sh) started for a test: in a private MOUNT
// namespace (unshare; needs root) where /etc/passwd and /etc/group are overlays that add the test logins, with a
// tmpfs /run holding sshd's privilege-separation directory; optionally inside a network namespace. Nothing of the
// machine's /etc, /run, /etc/ssh or ~/.ssh is written.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { toolPath } from "./tools";

export interface Sshd {
  name: string;
  address: string;
  port: number;
  /** The host key (public, OpenSSH format: "ssh-ed25519 AAAA... comment"). */
  hostKey: string;
  log(): string;
  stop(): Promise<void>;
}

export interface Overlays {
  passwd: string;
  group: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a TCP connection to host:port succeeds now (from the caller's network namespace). */
export function canConnect(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** The machine's passwd or group file without the entries named, plus the lines given. */
export function overlay(file: string, replace: string[]): string {
  const names = new Set(replace.map((l) => l.split(":")[0]));
  const keep = readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "" && !names.has(l.split(":")[0]));
  return [...keep, ...replace, ""].join("\n");
}

/**
 * The overlay /etc/passwd: the program's login user `ubuntu` (uid 0: a sudo stand-in cannot elevate; sshd applies
 * PermitRootLogin prohibit-password to it), a bastion user `jump` (no shell: a jump host only), sshd's
 * privilege-separation user, and Debian's `haproxy` user that the packaged haproxy.cfg names (and `haproxy -c` looks
 * up).
 */
export function passwdOverlay(home: string): string {
  return overlay("/etc/passwd", [
    `ubuntu:x:0:0:kubeadm-ha SSH test login:${home}:/bin/bash`,
    "jump:x:64999:65534:kubeadm-ha SSH test bastion login:/nonexistent:/usr/sbin/nologin",
    "sshd:x:65534:65534:sshd privsep:/run/sshd:/usr/sbin/nologin",
    "haproxy:x:64998:64998::/var/lib/haproxy:/usr/sbin/nologin",
  ]);
}

/** Writes the passwd and group overlays into dir (home: the `ubuntu` login's home). */
export function writeOverlays(dir: string, home: string): Overlays {
  const overlays: Overlays = { passwd: join(dir, "passwd"), group: join(dir, "group") };
  writeFileSync(overlays.passwd, passwdOverlay(home));
  writeFileSync(overlays.group, overlay("/etc/group", ["haproxy:x:64998:"]));
  return overlays;
}

/**
 * `unshare` arguments that run COMMAND... in a private mount namespace with the overlay passwd and group files and a
 * fresh tmpfs on /run holding sshd's privilege-separation directory. unshare execs sh, which execs COMMAND: the child's
 * pid is COMMAND's.
 */
export function inNamespace(overlays: Overlays, command: string[]): string[] {
  return ["--mount", "--propagation", "private", "--", "/bin/sh", "-c",
    'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && mount -t tmpfs -o mode=0755 tmpfs /run && ' +
      'mkdir -m 0755 /run/sshd && shift 2 && exec "$@"',
    "sh", overlays.passwd, overlays.group, ...command];
}

export interface SshdOptions {
  /** Working directory; the daemon's files go to dir/name. */
  dir: string;
  name: string;
  address: string;
  port: number;
  overlays: Overlays;
  /** sshd reads its authorized keys from this file (for every user). */
  authorizedKeys: string;
  /** Run inside this network namespace (`ip netns exec`); default: the caller's. */
  netns?: string;
  /** More sshd_config lines. */
  extra: string[];
}

/** Starts sshd -D on address:port only; resolves once it accepts connections (checked from the caller's namespace). */
export async function startSshd(o: SshdOptions): Promise<Sshd> {
  const base = join(o.dir, o.name);
  mkdirSync(base, { recursive: true });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${o.name}-host`, "-f", join(base, "host_ed25519")]);
  const config = join(base, "sshd_config");
  writeFileSync(config, [
    `Port ${o.port}`,
    `ListenAddress ${o.address}`,
    `HostKey ${join(base, "host_ed25519")}`,
    `PidFile ${join(base, "sshd.pid")}`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    "StrictModes no",
    "UsePAM no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    "PermitRootLogin prohibit-password",
    "PermitUserEnvironment no",
    "PermitTTY no",
    "X11Forwarding no",
    "PrintMotd no",
    "PrintLastLog no",
    "UseDNS no",
    // The command provider opens one session per step; a pulumi up runs many at once.
    "MaxStartups 100:30:200",
    "MaxSessions 100",
    ...o.extra,
    "",
  ].join("\n"));
  const sshd = toolPath.sshd();
  const wrap = (cmd: string[]): [string, string[]] => (o.netns ? ["ip", ["netns", "exec", o.netns, "unshare", ...inNamespace(o.overlays, cmd)]] : ["unshare", inNamespace(o.overlays, cmd)]);
  try {
    const [bin, args] = wrap([sshd, "-t", "-f", config]);
    execFileSync(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    throw new Error(`sshd -t -f ${config} failed: ${(e as { stderr?: Buffer }).stderr?.toString() ?? String(e)}`);
  }
  // -D: the listener stays in the foreground as this child; -e: its log goes to stderr.
  const [bin, args] = wrap([sshd, "-D", "-e", "-f", config]);
  const proc: ChildProcess = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (log += d));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  };
  const by = Date.now() + 10_000;
  while (!(await canConnect(o.port, o.address))) {
    if (proc.exitCode !== null || Date.now() > by) {
      await stop();
      throw new Error(`${o.name} sshd did not listen on ${o.address}:${o.port}:\n${log}`);
    }
    await sleep(50);
  }
  const hostKey = readFileSync(join(base, "host_ed25519.pub"), "utf8").trim();
  return { name: o.name, address: o.address, port: o.port, hostKey, log: () => log, stop };
}
