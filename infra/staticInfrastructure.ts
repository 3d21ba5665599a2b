import * as pulumi from "@pulumi/pulumi";
import { ApiEndpointConfig, ClusterConfig, StaticHost } from "./config";
import { ClusterInfrastructure } from "./infrastructure";
import { apiserverPort, haproxyConfig, installApiEndpointScript, keepalivedConfig, keepalivedPlan } from "./scripts/apiEndpoint";
import { NodeHost, nodeStep, sshConnection } from "./steps";

export interface StaticInfrastructureArgs {
  config: ClusterConfig & { hosts: Extract<ClusterConfig["hosts"], { provider: "static" }>; apiEndpoint: ApiEndpointConfig };
  /** Secret: the key every step logs in with. */
  sshPrivateKey: pulumi.Output<string>;
}

/** The config keys of the static hosts (and bastion) whose host key is not pinned. */
export function unpinnedHostKeys(hosts: StaticInfrastructureArgs["config"]["hosts"]): string[] {
  const roles = [["controlPlanes", hosts.controlPlanes], ["workers", hosts.workers], ["etcd", hosts.etcd]] as const;
  return [
    ...roles.flatMap(([role, list]) => list.flatMap((h, i) => (h.hostKey ? [] : [`hosts.${role}[${i}]`]))),
    ...(hosts.bastion && !hosts.bastion.hostKey ? ["hosts.bastion"] : []),
  ];
}

/**
 * Existing machines reached over SSH (optionally through a bastion). No cloud resource is registered: the hosts, the
 * API endpoint (an existing load balancer, or HAProxy + keepalived on the control planes with a virtual IP) and the
 * steps are all there is.
 */
export function createStaticInfrastructure(args: StaticInfrastructureArgs, parent?: pulumi.Resource): ClusterInfrastructure {
  const { hosts, apiEndpoint } = args.config;
  const toNodeHost = (h: StaticHost): NodeHost => ({
    name: h.name,
    privateIp: pulumi.output(h.privateAddress),
    connection: sshConnection(h.address, {
      user: h.user,
      port: h.port,
      privateKey: args.sshPrivateKey,
      hostKey: h.hostKey,
      ...(hosts.bastion ? { bastionHost: hosts.bastion.address, bastionUser: hosts.bastion.user, bastionPort: hosts.bastion.port, bastionHostKey: hosts.bastion.hostKey } : {}),
    }),
  });
  const unpinned = unpinnedHostKeys(hosts);
  if (unpinned.length > 0) {
    pulumi.log.warn(
      `SSH host keys are not pinned for ${unpinned.length > 10 ? `${unpinned.slice(0, 10).join(", ")} and ${unpinned.length - 10} more` : unpinned.join(", ")}: their host keys are not checked, so a machine in the middle would receive the join credentials on stdin and run root scripts; set hostKey on each (README: "SSH host keys")`,
    );
  }
  const controlPlanes = hosts.controlPlanes.map(toNodeHost);
  const beforeInit: pulumi.Resource[] = [];
  let endpoint: string;
  let endpointHost: string;
  switch (apiEndpoint.kind) {
    case "existing":
      endpoint = apiEndpoint.address;
      endpointHost = apiEndpoint.address.replace(/:\d+$/, "");
      break;
    case "haproxy": {
      endpoint = `${apiEndpoint.virtualIp}:${apiEndpoint.port}`;
      endpointHost = apiEndpoint.virtualIp;
      const backends = hosts.controlPlanes.map((h) => ({ name: h.name, address: h.privateAddress, port: apiserverPort }));
      const haproxy = haproxyConfig({ frontendBind: `*:${apiEndpoint.port}`, backends });
      const plan = keepalivedPlan({
        controlPlanes: hosts.controlPlanes.map((h) => ({ name: h.name, address: h.privateAddress })),
        interface: apiEndpoint.interface,
        virtualIp: apiEndpoint.virtualIp,
        routerId: 51,
        checkPort: apiEndpoint.port,
      });
      // Not a bootstrap step: a changed control-plane list rewrites the configs (the script reloads only on change).
      plan.forEach(({ node, config }, i) => {
        beforeInit.push(
          nodeStep(`${node}-api-endpoint`, { host: controlPlanes[i], script: installApiEndpointScript({ node, haproxyConfig: haproxy, keepalivedConfig: keepalivedConfig(config) }) }, { parent }),
        );
      });
      break;
    }
    default: {
      const never: never = apiEndpoint;
      throw new Error(`unknown API endpoint ${JSON.stringify(never)}`);
    }
  }
  return {
    controlPlanes,
    workers: hosts.workers.map(toNodeHost),
    etcd: hosts.etcd.map(toNodeHost),
    apiEndpoint: pulumi.output(endpoint),
    apiCertSANs: pulumi.output([endpointHost]),
    bastionAddress: hosts.bastion ? pulumi.output(hosts.bastion.address) : undefined,
    // The endpoint already lists every control plane (an existing LB is the operator's; HAProxy health-checks /readyz).
    registerControlPlane: () => [],
    beforeInit,
  };
}
