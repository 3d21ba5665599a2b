// The external etcd PKI: SANs and usages per member as data, then the resources and the ExternalEtcd step graph
// through the offline capturing engine (infra/offline/engine.ts; no CLI, no cloud).
import test from "ava";
import * as pulumi from "@pulumi/pulumi";
import { apiserverEtcdClientSpec, createEtcdPki, etcdPkiValidityHours, memberCertificateSpec } from "../infra/etcdPki";
import { controlPlaneEtcdClientStep, createExternalEtcd, etcdClusterToken } from "../infra/externalEtcd";
import { Evaluation, Registration, evaluate } from "../infra/offline/engine";
import { parseEnvironmentFile } from "../infra/scripts/etcdMember";
import { NodeHost } from "../infra/steps";

const members = [
  { name: "etcd-0", privateIp: "10.0.1.10" },
  { name: "etcd-1", privateIp: "10.0.2.10" },
  { name: "etcd-2", privateIp: "10.0.3.10" },
];

test("memberCertificateSpec: server and peer certificates name the member's IP, loopback, its name and localhost; both serve and dial", (t) => {
  for (const m of members) {
    const spec = memberCertificateSpec(m);
    for (const cert of [spec.server, spec.peer]) {
      t.deepEqual(cert, {
        commonName: m.name,
        ipAddresses: [m.privateIp, "127.0.0.1"],
        dnsNames: [m.name, "localhost"],
        allowedUses: ["digital_signature", "server_auth", "client_auth"],
      });
    }
  }
  t.deepEqual(memberCertificateSpec({ name: "etcd-0", privateIp: "127.0.0.1" }).server.ipAddresses, ["127.0.0.1"], "no duplicate SAN");
});

test("apiserver-etcd-client: a client identity only", (t) => {
  t.deepEqual(apiserverEtcdClientSpec(), {
    commonName: "kube-apiserver-etcd-client",
    dnsNames: [],
    ipAddresses: [],
    allowedUses: ["digital_signature", "client_auth"],
  });
});

test("etcdClusterToken: one word per stack and component", (t) => {
  t.is(etcdClusterToken("etcd", "dev"), "kubeadm-ha-dev-etcd");
  t.is(etcdClusterToken("my etcd/x", "org/dev"), "kubeadm-ha-org-dev-my-etcd-x");
});

function fakeHost(name: string, ip: string): NodeHost {
  return {
    name,
    privateIp: pulumi.output(ip),
    connection: pulumi.secret(pulumi.output({ host: ip, user: "ubuntu", privateKey: "KEY" })),
  };
}

async function evaluatePki(): Promise<Evaluation> {
  return evaluate({
    project: "kubeadm-ha",
    stack: "dev",
    config: {},
    program: async () => {
      const parent = new pulumi.ComponentResource("test:index:Parent", "etcd");
      const hosts = members.map((m) => fakeHost(m.name, m.privateIp));
      const pki = createEtcdPki("etcd-pki", { members: hosts.map((h) => ({ name: h.name, privateIp: h.privateIp })) }, parent);
      const etcd = createExternalEtcd("etcd", { hosts, version: "3.6.6", pki }, parent);
      controlPlaneEtcdClientStep(fakeHost("cp-0", "10.0.1.20"), etcd, { parent });
      return { endpoints: etcd.endpoints, kubeadmEtcd: etcd.kubeadmEtcd };
    },
  });
}

const evaluation = evaluatePki();

function one(e: Evaluation, name: string, type: string): Registration {
  const found = e.resources.filter((r) => r.name === name && r.type === type);
  if (found.length !== 1) throw new Error(`expected one ${type} ${name}, found ${found.length}`);
  return found[0];
}

test("through the offline engine: a 10-year ECDSA CA, per member server and peer certificates with the member's SANs", async (t) => {
  const e = await evaluation;
  const ca = one(e, "etcd-pki-ca", "tls:index/selfSignedCert:SelfSignedCert");
  t.like(ca.inputs, { isCaCertificate: true, validityPeriodHours: etcdPkiValidityHours, subject: { commonName: "etcd-ca" } });
  t.is(etcdPkiValidityHours, 87600);
  t.like(one(e, "etcd-pki-ca", "tls:index/privateKey:PrivateKey").inputs, { algorithm: "ECDSA", ecdsaCurve: "P256" });
  for (const m of members) {
    for (const kind of ["server", "peer"]) {
      const csr = one(e, `etcd-pki-${m.name}-${kind}`, "tls:index/certRequest:CertRequest");
      t.deepEqual(csr.inputs.ipAddresses, [m.privateIp, "127.0.0.1"]);
      t.deepEqual(csr.inputs.dnsNames, [m.name, "localhost"]);
      const cert = one(e, `etcd-pki-${m.name}-${kind}`, "tls:index/locallySignedCert:LocallySignedCert");
      t.deepEqual(cert.inputs.allowedUses, ["digital_signature", "server_auth", "client_auth"]);
    }
  }
  const client = one(e, "etcd-pki-apiserver-etcd-client", "tls:index/locallySignedCert:LocallySignedCert");
  t.deepEqual(client.inputs.allowedUses, ["digital_signature", "client_auth"]);
});

test("through the offline engine: configure after install (no order between members), one health gate after every configure; bootstrap steps ignore later changes; keys only in secret stdin", async (t) => {
  const e = await evaluation;
  const cmd = (name: string) => one(e, name, "command:remote:Command");
  const healthy = cmd("etcd-0-etcd-healthy");
  for (const m of members) {
    const install = cmd(`${m.name}-etcd-install`);
    const configure = cmd(`${m.name}-etcd-configure`);
    t.deepEqual(install.options.ignoreChanges, ["create", "stdin"]);
    t.deepEqual(configure.options.ignoreChanges, ["create", "stdin"]);
    t.true(configure.dependencies.includes(install.urn));
    for (const other of members.filter((o) => o !== m)) {
      t.false(configure.dependencies.includes(cmd(`${other.name}-etcd-configure`).urn), "members start together");
    }
    t.true(healthy.dependencies.includes(configure.urn));
    t.true(configure.secretInputs.includes("stdin"));
    const bundle = JSON.parse(configure.inputs.stdin) as Record<string, string>;
    t.deepEqual(Object.keys(bundle), ["envFile", "caCert", "serverCert", "serverKey", "peerCert", "peerKey"]);
    t.regex(bundle.serverKey, /PRIVATE KEY/);
    t.false(configure.inputs.create.includes(bundle.serverKey), "no key in the script");
    const env = parseEnvironmentFile(bundle.envFile);
    t.is(env.ETCD_NAME, m.name);
    t.is(env.ETCD_ADVERTISE_CLIENT_URLS, `https://${m.privateIp}:2379`);
    t.is(env.ETCD_INITIAL_CLUSTER, members.map((x) => `${x.name}=https://${x.privateIp}:2380`).join(","));
    t.is(env.ETCD_INITIAL_CLUSTER_TOKEN, "kubeadm-ha-dev-etcd");
  }
  t.deepEqual(healthy.options.ignoreChanges, []);
  t.is(e.resources.filter((r) => r.name.endsWith("-etcd-healthy")).length, 1);
  t.regex(healthy.inputs.create, /ENDPOINTS='https:\/\/10.0.1.10:2379,https:\/\/10.0.2.10:2379,https:\/\/10.0.3.10:2379'/);

  const client = cmd("cp-0-etcd-client-certs");
  t.deepEqual(client.options.ignoreChanges, ["create", "stdin"]);
  t.true(client.secretInputs.includes("stdin"));
  t.deepEqual(Object.keys(JSON.parse(client.inputs.stdin)), ["caCert", "clientCert", "clientKey"]);

  t.deepEqual(e.stackOutputs.kubeadmEtcd, {
    kind: "external",
    endpoints: ["https://10.0.1.10:2379", "https://10.0.2.10:2379", "https://10.0.3.10:2379"],
    caFile: "/etc/kubernetes/pki/etcd/ca.crt",
    certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt",
    keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key",
  });
});
