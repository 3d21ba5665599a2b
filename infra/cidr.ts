// IPv4 CIDR arithmetic for validation and subnet layout.
import * as net from "node:net";

export interface Cidr {
  address: string;
  prefix: number;
}

export function ipv4ToInt(address: string): number {
  return address.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function intToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** Parses an IPv4 CIDR whose address is the network address (no host bits set). */
export function parseCidr(value: string): Cidr | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(value);
  if (!m || !net.isIPv4(m[1])) return undefined;
  const prefix = Number(m[2]);
  if (prefix > 32) return undefined;
  if (ipv4ToInt(m[1]) % 2 ** (32 - prefix) !== 0) return undefined;
  return { address: m[1], prefix };
}

/** Two CIDR blocks overlap exactly when one contains the other's network address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const inA = new net.BlockList();
  inA.addSubnet(a.address, a.prefix, "ipv4");
  const inB = new net.BlockList();
  inB.addSubnet(b.address, b.prefix, "ipv4");
  return inA.check(b.address, "ipv4") || inB.check(a.address, "ipv4");
}

/** The index-th block of the given prefix inside a parent block. */
export function subBlock(parent: Cidr, prefix: number, index: number): string {
  if (prefix < parent.prefix) throw new Error(`/${prefix} does not fit in ${parent.address}/${parent.prefix}`);
  const size = 2 ** (32 - prefix);
  if ((index + 1) * size > 2 ** (32 - parent.prefix)) throw new Error(`block ${index} of /${prefix} is outside ${parent.address}/${parent.prefix}`);
  return `${intToIpv4(ipv4ToInt(parent.address) + index * size)}/${prefix}`;
}

/** Smallest and largest VPC prefix the subnet layout supports (AWS allows /16 to /28). */
export const vpcPrefixRange = { min: 16, max: 22 } as const;

/**
 * Subnet layout inside the VPC: the VPC splits into eight equal blocks; private subnets (nodes) take blocks 0-2,
 * public subnets (NAT gateways, bastion, internet-facing LB) are carved small out of the last block.
 */
export function subnetLayout(vpcCidr: string, zones: number): { private: string[]; public: string[] } {
  const vpc = parseCidr(vpcCidr);
  if (!vpc) throw new Error(`not a CIDR: ${vpcCidr}`);
  const lastBlock = parseCidr(subBlock(vpc, vpc.prefix + 3, 7))!;
  const zoneIndexes = Array.from({ length: zones }, (_, i) => i);
  return {
    private: zoneIndexes.map((i) => subBlock(vpc, vpc.prefix + 3, i)),
    public: zoneIndexes.map((i) => subBlock(lastBlock, lastBlock.prefix + 3, i)),
  };
}
