// cloud-init user data for every machine. Invariant: user data holds no secret and no Kubernetes version — it is
// stored in plain text in state, and a change to it would stop and start the instance.
import { stringify } from "yaml";

/** The cloud-config every machine starts from: its hostname, and no package changes at boot. */
export function baseCloudConfig(hostname: string): Record<string, unknown> {
  return {
    hostname,
    preserve_hostname: false,
    manage_etc_hosts: true,
    // Node preparation is an ordered, visible step of the program, not a boot-time side effect.
    package_update: false,
    package_upgrade: false,
  };
}

export function userData(args: { hostname: string }): string {
  return `#cloud-config\n${stringify(baseCloudConfig(args.hostname))}`;
}
