// The external etcd cluster's PKI, made with @pulumi/tls: one CA, per member a server and a peer certificate, and
// the apiserver-etcd-client certificate the control planes use. Certificates are data in the stack; private keys
// are secrets (in state encrypted, on nodes 0600 files), never in user data.
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

/** ECDSA P-256: accepted by etcd, etcdctl and the apiserver; small keys, fast handshakes. */
export const etcdKeyAlgorithm = { algorithm: "ECDSA", ecdsaCurve: "P256" } as const;

/**
 * Ten years for the CA and every leaf. Important: nothing rotates these certificates yet (the configure steps ignore
 * later changes, see externalEtcd.ts), so a short leaf lifetime would only schedule an outage; leaves therefore live
 * as long as the CA and are never re-issued early.
 */
export const etcdPkiValidityHours = 10 * 365 * 24;

/** The apiserver's client identity towards etcd (kubeadm's name for it). */
export const apiserverEtcdClientCommonName = "kube-apiserver-etcd-client";

/** A certificate's subject alternative names and key usages (the names of @pulumi/tls `allowedUses`). */
export interface CertificateSpec {
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  allowedUses: string[];
}

/** What a member's two certificates carry. */
export interface MemberCertificateSpec {
  /** Presented on the client URLs (2379); also the member's own client identity (etcdctl health checks). */
  server: CertificateSpec;
  /** Presented and checked on the peer URLs (2380): etcd peers authenticate each other both ways. */
  peer: CertificateSpec;
}

// ECDSA keys sign; they never encipher keys (RFC 5480), so no key_encipherment.
const serverAndClient = ["digital_signature", "server_auth", "client_auth"];

/**
 * The SANs and usages of one member's certificates. Both certificates name the member's private IP (what peers and
 * the apiservers dial), 127.0.0.1 (the member's loopback client URL and local health checks), its name and localhost.
 * The peer certificate also has client_auth: a member dials its peers with it.
 */
export function memberCertificateSpec(member: { name: string; privateIp: string }): MemberCertificateSpec {
  const spec = (): CertificateSpec => ({
    commonName: member.name,
    dnsNames: [member.name, "localhost"],
    ipAddresses: [...new Set([member.privateIp, "127.0.0.1"])],
    allowedUses: [...serverAndClient],
  });
  return { server: spec(), peer: spec() };
}

/** The apiserver-etcd-client certificate: a client identity only, no SANs. */
export function apiserverEtcdClientSpec(): CertificateSpec {
  return { commonName: apiserverEtcdClientCommonName, dnsNames: [], ipAddresses: [], allowedUses: ["digital_signature", "client_auth"] };
}

/** The etcd CA's usages. */
export const etcdCaAllowedUses = ["cert_signing", "crl_signing", "digital_signature"];

/** A certificate and its private key, PEM. */
export interface CertAndKey {
  certPem: pulumi.Output<string>;
  /** Secret. */
  keyPem: pulumi.Output<string>;
}

export interface EtcdMemberPki {
  name: string;
  server: CertAndKey;
  peer: CertAndKey;
}

export interface EtcdPki {
  /** The CA certificate every member and client trusts (its key stays in the stack only). */
  caCertPem: pulumi.Output<string>;
  /** In the order of `args.members`. */
  members: EtcdMemberPki[];
  /** The control planes' client certificate for etcd (kubeadm's apiserver-etcd-client.crt/.key). */
  apiserverEtcdClient: CertAndKey;
}

export interface EtcdPkiArgs {
  /** One entry per etcd member, named as the member (etcd-0 …); the private IP goes into its certificates' SANs. */
  members: { name: string; privateIp: pulumi.Output<string> }[];
}

/** The PKI resources: see the file comment. Resource names start with `name`; all are children of `parent`. */
export function createEtcdPki(name: string, args: EtcdPkiArgs, parent: pulumi.Resource): EtcdPki {
  const names = args.members.map((m) => m.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate !== undefined) throw new Error(`createEtcdPki: member name ${duplicate} appears twice`);

  const caKey = new tls.PrivateKey(`${name}-ca`, { ...etcdKeyAlgorithm }, { parent });
  const ca = new tls.SelfSignedCert(
    `${name}-ca`,
    {
      privateKeyPem: caKey.privateKeyPem,
      subject: { commonName: "etcd-ca" },
      isCaCertificate: true,
      validityPeriodHours: etcdPkiValidityHours,
      allowedUses: etcdCaAllowedUses,
    },
    { parent },
  );

  const leaf = (leafName: string, spec: pulumi.Output<CertificateSpec>): CertAndKey => {
    const key = new tls.PrivateKey(leafName, { ...etcdKeyAlgorithm }, { parent });
    const csr = new tls.CertRequest(
      leafName,
      {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName: spec.commonName },
        dnsNames: spec.dnsNames,
        ipAddresses: spec.ipAddresses,
      },
      { parent },
    );
    const cert = new tls.LocallySignedCert(
      leafName,
      {
        certRequestPem: csr.certRequestPem,
        caCertPem: ca.certPem,
        caPrivateKeyPem: caKey.privateKeyPem,
        validityPeriodHours: etcdPkiValidityHours,
        earlyRenewalHours: 0,
        allowedUses: spec.allowedUses,
      },
      { parent },
    );
    return { certPem: cert.certPem, keyPem: pulumi.secret(key.privateKeyPem) };
  };

  const members = args.members.map((m): EtcdMemberPki => {
    const spec = m.privateIp.apply((privateIp) => memberCertificateSpec({ name: m.name, privateIp }));
    return {
      name: m.name,
      server: leaf(`${name}-${m.name}-server`, spec.server),
      peer: leaf(`${name}-${m.name}-peer`, spec.peer),
    };
  });
  return {
    caCertPem: ca.certPem,
    members,
    apiserverEtcdClient: leaf(`${name}-apiserver-etcd-client`, pulumi.output(apiserverEtcdClientSpec())),
  };
}

/** The PKI of one member, by name; throws when the PKI was made without it. */
export function memberPki(pki: EtcdPki, name: string): EtcdMemberPki {
  const found = pki.members.find((m) => m.name === name);
  if (!found) throw new Error(`the etcd PKI has no certificates for member ${name} (has ${pki.members.map((m) => m.name).join(", ") || "none"})`);
  return found;
}
