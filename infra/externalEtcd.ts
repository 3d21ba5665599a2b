import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { bootstrapIgnoreChanges } from "./steps";
import { CertAndKey, EtcdPki, memberPki } from "./etcdPki";
import {
  apiserverEtcdClientBundle,
  apiserverEtcdClientPaths,
  configureEtcdMemberScript,
  etcdClientUrl,
  etcdEnvironmentFile,
  etcdMemberBundle,
  etcdPeerUrl,
  installApiserverEtcdClientScript,
  installEtcdMemberScript,
  waitEtcdClusterHealthyScript,
} from "./scripts/etcdMember";
import { EtcdEndpoints } from "./scripts/kubeadmConfig";
import { NodeHost, nodeStep } from "./steps";

export interface ExternalEtcdArgs {
  /** The etcd hosts in order, named as the members (etcd-0 …); hosts[0] runs the cluster health gate. */
  hosts: NodeHost[];
  /** The etcd release (x.y.z) every member installs from the official tarball. */
  version: string;
  /** createEtcdPki() made for exactly these hosts. */
  pki: EtcdPki;
  /** The static bootstrap's cluster token. Default: etcdClusterToken(name, stack). */
  clusterToken?: string;
}

/** The default cluster token: unique per stack and component, so two clusters' members never bootstrap together. */
export function etcdClusterToken(name: string, stack: string): string {
  return `kubeadm-ha-${stack}-${name}`.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 128);
}

/** What the control planes need from the external etcd cluster. */
export interface ExternalEtcdClientAccess {
  caCertPem: pulumi.Output<string>;
  /** The apiserver-etcd-client certificate; its key is a secret. */
  apiserverEtcdClient: CertAndKey;
}

/**
 * An external etcd cluster: per host the etcd-install and etcd-configure steps, then ONE etcd-healthy step on the
 * first host that waits for every member. `healthy` is what cp-0's `kubeadm init` must wait for.
 */
export class ExternalEtcd extends pulumi.ComponentResource implements ExternalEtcdClientAccess {
  readonly installed: command.remote.Command[];
  readonly configured: command.remote.Command[];
  /** Succeeds once `etcdctl endpoint health` passes on every member. */
  readonly healthy: command.remote.Command;
  /** Every member's client URL (https://<private IP>:2379), in host order. */
  readonly endpoints: pulumi.Output<string[]>;
  readonly caCertPem: pulumi.Output<string>;
  readonly apiserverEtcdClient: CertAndKey;
  /** ClusterShape.etcd for kubeadm: the endpoints and the files the etcd-client-certs step writes. */
  readonly kubeadmEtcd: pulumi.Output<EtcdEndpoints>;

  constructor(name: string, args: ExternalEtcdArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kubeadm-ha:cluster:ExternalEtcd", name, {}, opts);
    const out = createExternalEtcd(name, args, this);
    this.installed = out.installed;
    this.configured = out.configured;
    this.healthy = out.healthy;
    this.endpoints = out.endpoints;
    this.caCertPem = out.caCertPem;
    this.apiserverEtcdClient = out.apiserverEtcdClient;
    this.kubeadmEtcd = out.kubeadmEtcd;
    this.registerOutputs({ endpoints: this.endpoints });
  }
}

export function createExternalEtcd(name: string, args: ExternalEtcdArgs, parent: pulumi.Resource) {
  if (args.hosts.length === 0) throw new Error("createExternalEtcd: no etcd hosts");
  const clusterToken = args.clusterToken ?? etcdClusterToken(name, pulumi.getStack());
  const ips = pulumi.all(args.hosts.map((h) => h.privateIp));
  const endpoints = ips.apply((all) => all.map((ip) => etcdClientUrl(ip)));
  const initialCluster = ips.apply((all) => args.hosts.map((h, i) => ({ name: h.name, peerUrl: etcdPeerUrl(all[i]) })));

  // Bootstrap steps, like a control plane's prepare and init (bootstrapIgnoreChanges): the install script carries
  // the etcd version, the configure bundle carries the member list and certificates. Invariant: once a member runs,
  // neither step runs again on it. A version bump re-running install everywhere would be an unordered upgrade; a
  // changed member list or re-issued certificates re-running configure would restart every member at once (quorum
  // lost on all of them together), and still change nothing about membership: etcd ignores ETCD_INITIAL_CLUSTER*
  // once its data directory exists. Upgrades, member replacement and certificate rotation are separate, ordered
  // operations; only a new machine (a replaced step) runs these again.
  const installed = args.hosts.map((host) =>
    nodeStep(
      `${host.name}-etcd-install`,
      { host, script: installEtcdMemberScript({ node: host.name, etcdVersion: args.version }) },
      { parent, dependsOn: host.machine ? [host.machine] : [], ignoreChanges: bootstrapIgnoreChanges },
    ),
  );
  // No ordering between members: a static initial cluster becomes ready only once a quorum of its members runs,
  // so all members start together (the configure step does not wait for readiness; etcd-healthy does).
  const configured = args.hosts.map((host, i) => {
    const certs = memberPki(args.pki, host.name);
    return nodeStep(
      `${host.name}-etcd-configure`,
      {
        host,
        script: configureEtcdMemberScript({ node: host.name }),
        stdin: pulumi
          .all([initialCluster, host.privateIp, args.pki.caCertPem, certs.server.certPem, certs.server.keyPem, certs.peer.certPem, certs.peer.keyPem])
          .apply(([members, privateIp, caCert, serverCert, serverKey, peerCert, peerKey]) =>
            etcdMemberBundle({
              envFile: etcdEnvironmentFile({ name: host.name, privateIp, initialCluster: members, clusterToken }),
              caCert,
              serverCert,
              serverKey,
              peerCert,
              peerKey,
            }),
          ),
      },
      { parent, dependsOn: [installed[i]], ignoreChanges: bootstrapIgnoreChanges },
    );
  });
  const first = args.hosts[0];
  const healthy = nodeStep(
    `${first.name}-etcd-healthy`,
    { host: first, script: endpoints.apply((all) => waitEtcdClusterHealthyScript({ node: first.name, endpoints: all })) },
    { parent, dependsOn: configured },
  );
  return {
    installed,
    configured,
    healthy,
    endpoints,
    caCertPem: args.pki.caCertPem,
    apiserverEtcdClient: args.pki.apiserverEtcdClient,
    kubeadmEtcd: endpoints.apply((all): EtcdEndpoints => ({ kind: "external", endpoints: all, ...apiserverEtcdClientPaths })),
  };
}

/**
 * Step "<host>-etcd-client-certs" on a control plane: the etcd CA and the apiserver-etcd-client certificate and key
 * (stdin, secret) where kubeadm's etcd.external expects them. Must run before that node's `kubeadm init`/join
 * (kubeadm's preflight dials etcd with them). A bootstrap step like init and join (bootstrapIgnoreChanges): the
 * members keep the certificates they started with, so a control plane must too. `opts` gives the parent and what the
 * step waits for (the node's prepare step).
 */
export function controlPlaneEtcdClientStep(
  host: NodeHost,
  etcd: ExternalEtcdClientAccess,
  opts: pulumi.CustomResourceOptions,
): command.remote.Command {
  return nodeStep(
    `${host.name}-etcd-client-certs`,
    {
      host,
      script: installApiserverEtcdClientScript({ node: host.name }),
      stdin: pulumi
        .all([etcd.caCertPem, etcd.apiserverEtcdClient.certPem, etcd.apiserverEtcdClient.keyPem])
        .apply(([caCert, clientCert, clientKey]) => apiserverEtcdClientBundle({ caCert, clientCert, clientKey })),
    },
    { ...opts, ignoreChanges: bootstrapIgnoreChanges },
  );
}
