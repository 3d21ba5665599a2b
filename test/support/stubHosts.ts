// Test harness: HOSTS for the real `pulumi up` of the program, each a network namespace on a bridge of the test's own,
// with its own Debian sshd (.tools/), reached through a bastion host (another namespace whose sshd only forwards to
// the hosts' port 22). A host is not a machine: its root filesystem is a scratch root (KUBEADM_HA_ROOT, which every
// node script prefixes its paths with) and the binaries a test machine cannot run as a node would run them (kubeadm,
// kubelet, apt-get, systemctl, ...) are RECORDING STUBS (test/support/stubs.ts); what the caller passes in `stubs`
// replaces them per host (the end-to-end suite makes kubectl the real one against a real control plane).
//
//   const net = await startStubHosts({ dir, authorizedKey, stubs: (host) => ({ ... }) });
//   const cp0 = await net.addHost("cp-0");             // 198.18.N.10, sshd on :22 in its namespace
//   net.journal();                                      // every step script any host ran, with start/end and exit code
//   await net.stop();                                   // sshd stopped, namespaces, veths and the bridge deleted
//
// How a step runs on a host: the command provider's SSH session (through the bastion) runs the step's command; its
// `sudo -n bash FILE` reaches a TEST STAND-IN for sudo on the session's PATH (sshd's SetEnv), which records the script
// (by sha256, a copy kept under the host's scripts/), its start, end and exit code in the host's journal, then runs it
// as sudo would (env_reset), with the stubs first on PATH and the host's scratch root. Every sshd runs in a private
// mount namespace with overlay passwd/group files (test/support/sshd.ts): nothing of this machine's /etc is written.
//
// Addresses: 198.18.0.0/15 (RFC 2544, benchmarking), one /24 per harness, picked unused. Traffic stays on the
// bridge: the hosts reach each other and the bridge's own address (.1), nothing else.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { installStubs, writeNodeFile } from "./stubs";
import { startSshd, writeOverlays, type Overlays, type Sshd } from "./sshd";

export interface StubHost {
  name: string;
  /** The host's address on the bridge. */
  address: string;
  netns: string;
  /** The host's directory: root/ (KUBEADM_HA_ROOT), state/ (the stubs' memory), calls.jsonl, journal, scripts/. */
  base: string;
  root: string;
  state: string;
  sshd: Sshd;
}

export interface JournalEntry {
  host: string;
  /** sha256 of the script the step ran (what `sudo -n bash FILE` got). */
  sha: string;
  /** Epoch milliseconds. */
  start: number;
  end?: number;
  rc?: number;
}

export interface StubHostsOptions {
  /** An empty directory of the test's. */
  dir: string;
  /** The public key every host and the bastion accept (OpenSSH format). */
  authorizedKey: string;
  /** Stub bodies per host over the defaults of test/support/stubs.ts (name -> bash body). */
  stubs: (host: string) => Record<string, string>;
  /** More environment for every step on every host (NAME -> value; passed as sudo's env_keep would). */
  env?: Record<string, string>;
  /** Files every new host starts with (node path -> content). */
  seed?: (host: string) => Record<string, string>;
}

export interface StubHosts {
  bridge: string;
  /** The bridge's own address (this machine, seen from the hosts). */
  gateway: string;
  bastion: Sshd & { netns: string };
  hosts: Map<string, StubHost>;
  addHost(name: string): Promise<StubHost>;
  /** Stops the host's sshd and deletes its namespace (its files stay, for the test to read). */
  removeHost(name: string): Promise<void>;
  /** Every script run on every host so far, oldest first. */
  journal(): JournalEntry[];
  stop(): Promise<void>;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();

/** A 198.18.N.0/24 no interface of this machine uses. */
function freeSubnet(): string {
  const used = ip("-o", "-4", "addr", "show");
  for (let tries = 0; tries < 200; tries++) {
    const n = 1 + (randomBytes(1)[0] % 250);
    const prefix = `198.18.${n}`;
    if (!used.includes(` ${prefix}.`)) return prefix;
  }
  throw new Error("no free 198.18.N.0/24 for the test bridge");
}

/** The sudo stand-in of one host (see the file comment). */
function sudoStandIn(o: { host: string; base: string; bin: string; root: string; state: string; env: Record<string, string> }): string {
  const securePath = `${o.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
  const env = {
    PATH: securePath,
    HOME: join(o.base, "home"),
    LOGNAME: "root",
    USER: "root",
    SHELL: "/bin/bash",
    LC_ALL: "C.UTF-8",
    KUBEADM_HA_ROOT: o.root,
    KUBEADM_HA_STUB_STATE: o.state,
    KUBEADM_HA_STUB_CALLS: join(o.base, "calls.jsonl"),
    KUBEADM_HA_POLL_SECONDS: "1",
    STUB_NODE: o.host,
    ...o.env,
  };
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  return [
    "#!/bin/bash",
    `# TEST STAND-IN for sudo on host ${o.host} (test/support/stubHosts.ts): sudo -n with env_reset; records each step script.`,
    'if [ "${1:-}" != -n ]; then echo "sudo: a terminal is required to read the password; use -n" >&2; exit 1; fi',
    "shift",
    `envs=(${Object.entries(env).map(([k, v]) => q(`${k}=${v}`)).join(" ")})`,
    'if [ "${1:-}" = bash ] && [ -f "${2:-}" ]; then',
    '  sum=$(sha256sum "$2" | cut -d" " -f1)',
    `  cp "$2" ${q(join(o.base, "scripts"))}/"$sum.sh"`,
    `  printf 'start %s %s\\n' "$(date +%s%3N)" "$sum" >>${q(join(o.base, "journal"))}`,
    "  rc=0",
    '  env -i "${envs[@]}" "$@" || rc=$?',
    `  printf 'end %s %s %s\\n' "$(date +%s%3N)" "$sum" "$rc" >>${q(join(o.base, "journal"))}`,
    '  exit "$rc"',
    "fi",
    'exec env -i "${envs[@]}" "$@"',
    "",
  ].join("\n");
}

export async function startStubHosts(o: StubHostsOptions): Promise<StubHosts> {
  if (process.getuid?.() !== 0) throw new Error("stub hosts need root (network and mount namespaces)");
  const id = randomBytes(2).toString("hex");
  const bridge = `khe${id}`;
  const prefix = freeSubnet();
  const gateway = `${prefix}.1`;
  const made: { netns: string[]; bridge: boolean } = { netns: [], bridge: false };
  const sshds: Sshd[] = [];
  const hosts = new Map<string, StubHost>();
  mkdirSync(join(o.dir, "home"), { recursive: true });
  const authorizedKeys = join(o.dir, "authorized_keys");
  writeFileSync(authorizedKeys, o.authorizedKey.trim() + "\n");
  chmodSync(o.dir, 0o755);
  const overlays: Overlays = writeOverlays(o.dir, join(o.dir, "home"));
  let slot = 0;
  let nextAddress = 10;

  /** A namespace NAME with one veth on the bridge at ADDRESS. */
  const addNamespace = (netns: string, address: string) => {
    const n = slot++;
    const outside = `${bridge}h${n}`;
    const inside = `${bridge}n${n}`;
    ip("netns", "add", netns);
    made.netns.push(netns);
    ip("link", "add", outside, "type", "veth", "peer", "name", inside);
    ip("link", "set", inside, "netns", netns);
    ip("link", "set", outside, "master", bridge, "up");
    ip("-n", netns, "link", "set", "lo", "up");
    ip("-n", netns, "addr", "add", `${address}/24`, "dev", inside);
    ip("-n", netns, "link", "set", inside, "up");
  };

  const stop = async () => {
    for (const s of sshds.splice(0).reverse()) await s.stop();
    for (const ns of made.netns.splice(0).reverse()) {
      try {
        ip("netns", "del", ns);
      } catch {
        /* already gone */
      }
    }
    if (made.bridge) {
      try {
        ip("link", "del", bridge);
      } catch {
        /* already gone */
      }
      made.bridge = false;
    }
  };

  try {
    ip("link", "add", bridge, "type", "bridge");
    made.bridge = true;
    ip("addr", "add", `${gateway}/24`, "dev", bridge);
    ip("link", "set", bridge, "up");

    const bastionNs = `${bridge}-bastion`;
    const bastionAddress = `${prefix}.2`;
    addNamespace(bastionNs, bastionAddress);
    const bastion = await startSshd({
      dir: o.dir, name: "bastion", address: bastionAddress, port: 22, overlays, authorizedKeys, netns: bastionNs,
      extra: [
        "AllowUsers jump",
        // DEBUG1 logs each forwarded connection (server_request_direct_tcpip): the proof that steps went through here.
        "LogLevel DEBUG1",
        // A jump host only: forwards to the hosts' sshd and nowhere else.
        "AllowTcpForwarding local",
        "PermitOpen *:22",
      ],
    });
    sshds.push(bastion);

    const net: StubHosts = {
      bridge,
      gateway,
      bastion: Object.assign(bastion, { netns: bastionNs }),
      hosts,
      async addHost(name) {
        if (hosts.has(name)) throw new Error(`host ${name} exists`);
        const address = `${prefix}.${nextAddress++}`;
        const base = join(o.dir, "hosts", name);
        const root = join(base, "root");
        const state = join(base, "state");
        for (const d of [root, state, join(base, "scripts"), join(base, "home"), join(base, "sudo-bin")]) mkdirSync(d, { recursive: true });
        writeFileSync(join(base, "journal"), "");
        writeFileSync(join(base, "calls.jsonl"), "");
        writeNodeFile(root, "/etc/fstab", "LABEL=cloudimg-rootfs\t/\text4\tdiscard,errors=remount-ro\t0 1\n/swap.img\tnone\tswap\tsw\t0\t0\n");
        for (const [path, content] of Object.entries(o.seed?.(name) ?? {})) writeNodeFile(root, path, content);
        const bin = installStubs(base, o.stubs(name));
        writeFileSync(join(base, "sudo-bin", "sudo"), sudoStandIn({ host: name, base, bin, root, state, env: o.env ?? {} }), { mode: 0o755 });
        const netns = `${bridge}-${name}`;
        addNamespace(netns, address);
        const sshd = await startSshd({
          dir: base, name, address, port: 22, overlays, authorizedKeys, netns,
          extra: [
            "AllowUsers ubuntu",
            // Not DEBUG: with -e, a session's debug lines would reach the client's stderr and be mistaken for the step's.
            "LogLevel VERBOSE",
            "AllowTcpForwarding no",
            `SetEnv PATH=${join(base, "sudo-bin")}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
          ],
        });
        sshds.push(sshd);
        const host: StubHost = { name, address, netns, base, root, state, sshd };
        hosts.set(name, host);
        return host;
      },
      async removeHost(name) {
        const host = hosts.get(name);
        if (!host) return;
        await host.sshd.stop();
        sshds.splice(sshds.indexOf(host.sshd), 1);
        ip("netns", "del", host.netns);
        made.netns.splice(made.netns.indexOf(host.netns), 1);
        hosts.delete(name);
      },
      journal() {
        const entries: JournalEntry[] = [];
        const dirs = existsSync(join(o.dir, "hosts")) ? readdirSync(join(o.dir, "hosts")) : [];
        for (const host of dirs) {
          const open = new Map<string, JournalEntry>();
          for (const line of readFileSync(join(o.dir, "hosts", host, "journal"), "utf8").split("\n").filter(Boolean)) {
            const [kind, ms, sha, rc] = line.split(" ");
            if (kind === "start") {
              const e: JournalEntry = { host, sha, start: Number(ms) };
              entries.push(e);
              open.set(sha, e);
            } else {
              const e = open.get(sha);
              if (e) Object.assign(e, { end: Number(ms), rc: Number(rc) });
              open.delete(sha);
            }
          }
        }
        return entries.sort((a, b) => a.start - b.start);
      },
      stop,
    };
    return net;
  } catch (e) {
    await stop();
    throw e;
  }
}
