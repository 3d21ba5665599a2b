// Absolute paths of the project-local test tools that test/tools/ensure-tools.sh puts into <project>/.tools/.
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export type EtcdVersion = "3.4" | "3.5";

const ENSURE = "bash test/tools/ensure-tools.sh";

function findProjectRoot(): string {
  // CommonJS (how tsx runs this project): __dirname is test/support. Otherwise walk up from the cwd.
  if (typeof __dirname === "string") return resolve(__dirname, "..", "..");
  let dir = process.cwd();
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "kubeadm-ha") return dir;
      } catch {
        // not the project's package.json
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the kubeadm-ha project root above ${process.cwd()}`);
    dir = up;
  }
}

export const projectRoot: string = findProjectRoot();
export const toolsDir: string = join(projectRoot, ".tools");

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function need(relative: string, what: string): string {
  const p = join(toolsDir, relative);
  if (!isExecutable(p)) {
    throw new Error(`${what} is missing (${p} not found or not executable): run ${ENSURE}`);
  }
  return p;
}

function checkVersion(version: string): EtcdVersion {
  if (version !== "3.4" && version !== "3.5") throw new Error(`unsupported etcd version ${JSON.stringify(version)} (3.4 or 3.5)`);
  return version;
}

export const toolPath = {
  shellcheck: (): string => need("bin/shellcheck", "shellcheck"),
  haproxy: (): string => need("bin/haproxy", "haproxy"),
  /** Debian's openssh-server sshd (run it by this absolute path: sshd re-executes itself). */
  sshd: (): string => need("bin/sshd", "sshd (openssh-server)"),
  keepalived: (): string => need("bin/keepalived", "keepalived"),
  /** Debian's containerd (only `containerd config default` runs: no daemon). */
  containerd: (): string => need("bin/containerd", "containerd"),
  /** Debian's openssl, unpacked like the others (never whatever openssl is on PATH). */
  openssl: (): string => need("bin/openssl", "openssl"),
  etcd: (version: EtcdVersion): string => need(`etcd-${checkVersion(version)}/bin/etcd`, `etcd ${version}`),
  etcdctl: (version: EtcdVersion): string => need(`etcd-${checkVersion(version)}/bin/etcdctl`, `etcdctl ${version}`),
  etcdutl: (version: "3.5" = "3.5"): string => {
    if (version !== "3.5") throw new Error(`etcdutl exists only for etcd 3.5 here (asked for ${String(version)})`);
    return need("etcd-3.5/bin/etcdutl", "etcdutl 3.5");
  },
};
