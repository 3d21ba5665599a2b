// What the offline engine answers in place of AWS and the providers: fake, distinct, deterministic values.
// Addresses derive from the resource's logical name (cp-N, worker-N, etcd-N, bastion), never from the order of
// registration, so two evaluations of different configs agree on every node they share.
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";

function hex(seed: string, length: number): string {
  return createHash("sha256").update(seed).digest("hex").slice(0, length);
}

function region(): string {
  return new pulumi.Config("aws").get("region") ?? "us-east-1";
}

/** Private IPs by role: control planes 10.0.1.x, etcd 10.0.2.x, workers from 10.0.16.x, the bastion 10.0.0.10. */
export function fakePrivateIp(name: string): string {
  const m = /^(cp|worker|etcd)-(\d+)$/.exec(name);
  if (name === "bastion") return "10.0.0.10";
  if (!m) {
    const h = parseInt(hex(name, 6), 16);
    return `10.0.${200 + (h % 50)}.${10 + ((h >> 8) % 240)}`;
  }
  const i = Number(m[2]);
  switch (m[1]) {
    case "cp":
      return `10.0.1.${10 + i}`;
    case "etcd":
      return `10.0.2.${10 + i}`;
    default:
      return `10.0.${16 + Math.floor(i / 240)}.${10 + (i % 240)}`;
  }
}

/** Outputs the engine already gave to resources of a type (the kubeconfig names the LB the program created). */
export type OutputsLookup = (type: string) => Record<string, any>[];

export function fakeOutputs(type: string, name: string, inputs: Record<string, any>, lookup: OutputsLookup = () => []): Record<string, unknown> {
  const id = hex(`${type}/${name}`, 17);
  switch (type) {
    case "aws:ec2/instance:Instance": {
      const privateIp = fakePrivateIp(name);
      return {
        id: `i-${id}`,
        arn: `arn:aws:ec2:${region()}:123456789012:instance/i-${id}`,
        privateIp,
        privateDns: `ip-${privateIp.replace(/\./g, "-")}.ec2.internal`,
        publicIp: name === "bastion" ? `203.0.113.${10 + (parseInt(id.slice(0, 2), 16) % 200)}` : "",
      };
    }
    case "aws:ec2/eip:Eip":
      return { publicIp: `198.51.100.${10 + (parseInt(id.slice(0, 2), 16) % 200)}`, allocationId: `eipalloc-${id}` };
    case "aws:lb/loadBalancer:LoadBalancer":
      return {
        arn: `arn:aws:elasticloadbalancing:${region()}:123456789012:loadbalancer/net/${name}/${id.slice(0, 16)}`,
        dnsName: `${name}-${id.slice(0, 10)}.elb.${region()}.amazonaws.com`,
        zoneId: "Z26RNL4JYFTOTI",
      };
    case "aws:lb/targetGroup:TargetGroup":
    case "aws:lb/listener:Listener":
      return { arn: `arn:aws:elasticloadbalancing:${region()}:123456789012:${name}/${id.slice(0, 16)}` };
    case "aws:iam/role:Role":
    case "aws:iam/instanceProfile:InstanceProfile":
      return { arn: `arn:aws:iam::123456789012:${type.split(":")[2].toLowerCase()}/${inputs.name ?? name}`, name: inputs.name ?? name };
    case "aws:ec2/keyPair:KeyPair":
      return { keyName: inputs.keyName ?? name, arn: `arn:aws:ec2:${region()}:123456789012:key-pair/${name}` };
    case "aws:s3/bucket:Bucket":
      return { bucket: inputs.bucket ?? `${name}-${id.slice(0, 8)}`, arn: `arn:aws:s3:::${inputs.bucket ?? `${name}-${id.slice(0, 8)}`}` };
    case "tls:index/privateKey:PrivateKey":
      return {
        privateKeyPem: `-----BEGIN PRIVATE KEY-----\nFAKE${id}\n-----END PRIVATE KEY-----\n`,
        privateKeyOpenssh: `-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE${id}\n-----END OPENSSH PRIVATE KEY-----\n`,
        publicKeyOpenssh: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA${id} ${name}\n`,
        publicKeyPem: `-----BEGIN PUBLIC KEY-----\nFAKE${id}\n-----END PUBLIC KEY-----\n`,
      };
    case "tls:index/selfSignedCert:SelfSignedCert":
    case "tls:index/locallySignedCert:LocallySignedCert":
      return { certPem: `-----BEGIN CERTIFICATE-----\nFAKE${id}\n-----END CERTIFICATE-----\n` };
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: `-----BEGIN CERTIFICATE REQUEST-----\nFAKE${id}\n-----END CERTIFICATE REQUEST-----\n` };
    case "random:index/randomString:RandomString":
    case "random:index/randomPassword:RandomPassword": {
      const length = Number(inputs.length ?? 16);
      const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
      const digest = createHash("sha512").update(`${type}/${name}`).digest();
      const result = Array.from({ length }, (_, i) => alphabet[digest[i % digest.length] % alphabet.length]).join("");
      return { result };
    }
    case "random:index/randomBytes:RandomBytes": {
      const value = createHash("sha512").update(`${type}/${name}`).digest().subarray(0, Number(inputs.length ?? 32));
      return { hex: value.toString("hex"), base64: value.toString("base64") };
    }
    case "random:index/randomId:RandomId": {
      const bytes = Number(inputs.byteLength ?? 8);
      const value = createHash("sha512").update(`${type}/${name}`).digest().subarray(0, bytes);
      return { hex: value.toString("hex"), b64Std: value.toString("base64"), b64Url: value.toString("base64url"), dec: BigInt(`0x${value.toString("hex")}`).toString() };
    }
    case "command:remote:Command":
    case "command:local:Command":
      return { stdout: fakeCommandStdout(name, inputs, lookup), stderr: "" };
    default:
      return { id: `${name}-${id.slice(0, 8)}` };
  }
}

/** Steps whose stdout the program reads answer with a plausible value. */
function fakeCommandStdout(name: string, inputs: Record<string, any>, lookup: OutputsLookup): string {
  if (name.endsWith("-join-credentials")) {
    return `KUBEADM_HA_JOIN_TOKEN=${hex(`token-id/${name}`, 6)}.${hex(`token/${name}`, 16)}\nKUBEADM_HA_CA_CERT_HASH=sha256:${hex("cluster-ca", 64)}\n`;
  }
  if (name.endsWith("read-kubeconfig")) {
    // kubeadm writes controlPlaneEndpoint (the API load balancer) into admin.conf.
    const lb = lookup("aws:lb/loadBalancer:LoadBalancer")[0];
    const server = `https://${lb?.dnsName ?? "api.offline"}:6443`;
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- cluster:",
      "    certificate-authority-data: RkFLRQ==",
      `    server: ${server}`,
      "  name: kubernetes",
      "contexts:",
      "- context: {cluster: kubernetes, user: kubernetes-admin}",
      "  name: kubernetes-admin@kubernetes",
      "current-context: kubernetes-admin@kubernetes",
      "users:",
      "- name: kubernetes-admin",
      "  user: {client-certificate-data: RkFLRQ==, client-key-data: RkFLRQ==}",
      "",
    ].join("\n");
  }
  return "";
}

export function fakeCall(token: string, inputs: Record<string, any>): Record<string, unknown> {
  switch (token) {
    case "aws:ssm/getParameter:getParameter":
      return { name: inputs.name, type: "String", value: "ami-0123456789abcdef0", insecureValue: "ami-0123456789abcdef0", version: 1 };
    case "aws:index/getAvailabilityZones:getAvailabilityZones": {
      const r = region();
      return { id: r, names: [`${r}a`, `${r}b`, `${r}c`], zoneIds: ["use1-az1", "use1-az2", "use1-az4"] };
    }
    case "aws:index/getRegion:getRegion":
      return { id: region(), name: region(), region: region() };
    case "aws:index/getCallerIdentity:getCallerIdentity":
      return { accountId: "123456789012", arn: "arn:aws:iam::123456789012:user/offline", userId: "OFFLINE" };
    case "aws:index/getPartition:getPartition":
      return { partition: "aws", dnsSuffix: "amazonaws.com" };
    default:
      return {};
  }
}
