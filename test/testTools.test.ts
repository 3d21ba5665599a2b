// Every test tool resolves to what test/tools/ensure-tools.sh unpacked under .tools/, never to a copy that happens
// to be on PATH: a machine set up by hand passes with it, a fresh CI machine does not.
import test from "ava";
import { chmodSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { toolPath, toolsDir } from "./support/tools";

const resolvers: Record<string, () => string> = {
  shellcheck: toolPath.shellcheck,
  haproxy: toolPath.haproxy,
  sshd: toolPath.sshd,
  keepalived: toolPath.keepalived,
  containerd: toolPath.containerd,
  openssl: toolPath.openssl,
  "etcd 3.4": () => toolPath.etcd("3.4"),
  "etcdctl 3.4": () => toolPath.etcdctl("3.4"),
  "etcd 3.5": () => toolPath.etcd("3.5"),
  "etcdctl 3.5": () => toolPath.etcdctl("3.5"),
  "etcdutl 3.5": () => toolPath.etcdutl("3.5"),
};

test("every test tool resolves under .tools/, with decoys of the same names first on PATH", (t) => {
  const decoys = mkdtempSync(join(tmpdir(), "kubeadm-ha-decoys-"));
  const saved = process.env.PATH;
  try {
    for (const name of ["shellcheck", "haproxy", "sshd", "keepalived", "containerd", "openssl", "etcd", "etcdctl", "etcdutl"]) {
      writeFileSync(join(decoys, name), "#!/bin/sh\nexit 99\n");
      chmodSync(join(decoys, name), 0o755);
    }
    process.env.PATH = `${decoys}:${saved ?? ""}`;
    const root = realpathSync(toolsDir) + sep;
    for (const [name, resolve] of Object.entries(resolvers)) {
      const path = resolve();
      t.true(path.startsWith(toolsDir + sep), `${name}: ${path} is not under ${toolsDir}`);
      t.true(realpathSync(path).startsWith(root), `${name}: ${path} links out of .tools/ to ${realpathSync(path)}`);
    }
  } finally {
    process.env.PATH = saved;
    rmSync(decoys, { recursive: true, force: true });
  }
});
