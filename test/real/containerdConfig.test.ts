// The prepare step's containerd configuration against the REAL formats: Debian's containerd writes its default config
// (`containerd config default`, the same version-2 format as Ubuntu's 1.7) and the REAL kubeadm 1.35 and 1.36 name
// the pause image (`kubeadm config images list`). apt-get, systemctl and kubeadm's other commands stay RECORDING
// STUBS (no packages are installed, no daemon runs); containerd then parses what the step wrote
// (`containerd --config FILE config dump`).
import test from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { prepareNodeScript } from "../../infra/scripts/prepareNode";
import { realTool } from "../support/realTools";
import { cleanup, nodePath, runWithStubs } from "../support/stubs";
import { toolPath } from "../support/tools";

const STUBS = "(apt-get, systemctl and kubeadm's install are recording stubs; containerd config default and kubeadm config images list are real)";

for (const [version, pause] of [["1.35.4", "3.10.1"], ["1.36.3", "3.10.2"]] as const) {
  test(`real containerd and kubeadm ${version}: prepare sets the sandbox image to kubeadm's pause:${pause} from images.repository, the systemd cgroup driver, certs.d, and an insecure registry's hosts.toml; containerd reads the result ${STUBS}`, async (t) => {
    const kubeadm = realTool("kubeadm", version.split(".").slice(0, 2).join("."));
    const containerd = toolPath.containerd();
    const script = prepareNodeScript({ node: "worker-0", kubernetesVersion: version, images: { repository: "registry.lab:5000/k8s", insecure: true } });
    const stubs = {
      kubeadm: `if [ "\${1:-}" = config ]; then exec '${kubeadm}' "$@"; fi\nstub_default "$@"`,
      containerd: `if [ "\${1:-}" = config ]; then exec '${containerd}' "$@"; fi\nstub_default "$@"`,
    };
    const r = await runWithStubs(script, { stubs, timeoutMs: 60_000 });
    t.teardown(() => cleanup(r.root));
    t.is(r.code, 0, r.stderr);
    const conf = nodePath(r.root, "/etc/containerd/config.toml");
    const text = readFileSync(conf, "utf8");
    t.regex(text, new RegExp(`^\\s*sandbox_image = "registry\\.lab:5000/k8s/pause:${pause.replace(/\./g, "\\.")}"$`, "m"));
    t.regex(text, /^\s*SystemdCgroup = true$/m);
    t.regex(text, /^\s*config_path = "\/etc\/containerd\/certs\.d"$/m);
    const hosts = nodePath(r.root, "/etc/containerd/certs.d/registry.lab:5000/hosts.toml");
    t.true(existsSync(hosts));
    t.is(readFileSync(hosts, "utf8"), 'server = "http://registry.lab:5000"\n\n[host."http://registry.lab:5000"]\n  capabilities = ["pull", "resolve"]\n');
    // containerd parses the edited file and sees the values the step set.
    const dump = execFileSync(containerd, ["--config", conf, "config", "dump"], { encoding: "utf8" });
    t.regex(dump, new RegExp(`sandbox_image = "registry\\.lab:5000/k8s/pause:${pause.replace(/\./g, "\\.")}"`));
    t.regex(dump, /SystemdCgroup = true/);
    t.regex(dump, /config_path = "\/etc\/containerd\/certs\.d"/);
    t.regex(r.stderr, new RegExp(`\\[worker-0\\] prepare: writing .*config\\.toml \\(SystemdCgroup = true, sandbox image registry\\.lab:5000/k8s/pause:${pause.replace(/\./g, "\\.")}\\)`));
  });
}
