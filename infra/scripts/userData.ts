// cloud-init user data for every machine. Invariant: user data holds no secret and no Kubernetes version — it is
// stored in plain text in state, and a change to it would stop and start the instance.
import { stringify } from "yaml";

export function userData(args: { hostname: string }): string {
  const cloudConfig = {
    hostname: args.hostname,
    preserve_hostname: false,
    manage_etc_hosts: true,
    // Node preparation is an ordered, visible step of the program, not a boot-time side effect.
    package_update: false,
    package_upgrade: false,
  };
  return `#cloud-config\n${stringify(cloudConfig)}`;
}
