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

/** [first, last] addresses of a block, as numbers (exact: IPv4 fits in a double). */
export function cidrRange(c: Cidr): [number, number] {
  const start = ipv4ToInt(c.address);
  return [start, start + 2 ** (32 - c.prefix) - 1];
}

/** The union of blocks as sorted, disjoint, non-adjacent [first, last] ranges. */
export function mergeRanges(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1] + 1) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/**
 * Blocks that are not on the public internet (RFC 6890's special-purpose registry: "this network", private
 * (RFC 1918), shared CGNAT space, loopback, link-local, IETF protocol assignments, the three documentation ranges,
 * benchmarking, multicast and reserved). An allowed range made only of these cannot open anything to the internet.
 */
export const nonPublicBlocks = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
] as const;

/** What a set of allowed ranges reaches: the whole IPv4 space, and how many public (internet) addresses. */
export function reach(cidrs: Cidr[]): { wholeInternet: boolean; publicAddresses: number } {
  const union = mergeRanges(cidrs.map(cidrRange));
  const wholeInternet = union.length === 1 && union[0][0] === 0 && union[0][1] === 2 ** 32 - 1;
  const total = union.reduce((n, [s, e]) => n + (e - s + 1), 0);
  const hidden = mergeRanges(nonPublicBlocks.map((b) => cidrRange(parseCidr(b)!)));
  let nonPublic = 0;
  for (const [s, e] of union) {
    for (const [hs, he] of hidden) {
      const lo = Math.max(s, hs);
      const hi = Math.min(e, he);
      if (lo <= hi) nonPublic += hi - lo + 1;
    }
  }
  return { wholeInternet, publicAddresses: total - nonPublic };
}
