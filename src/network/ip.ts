/**
 * IPv4/IPv6 address arithmetic for IPAM and validation. Addresses are
 * bigints so that both families share one code path; the textual form we
 * store and return is the canonical one (dotted quad, RFC 5952 for IPv6), so
 * that string equality in the database is address equality.
 */
export type IpVersion = 4 | 6;

export interface Ip {
  version: IpVersion;
  value: bigint;
}

export interface Cidr {
  version: IpVersion;
  /** The network address (host bits cleared). */
  network: bigint;
  prefixlen: number;
}

const BITS: Record<IpVersion, number> = { 4: 32, 6: 128 };
export const bitsOf = (v: IpVersion): number => BITS[v];

function parseV4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p.startsWith('0'))) return null;
    const x = Number(p);
    if (x > 255) return null;
    n = (n << 8n) | BigInt(x);
  }
  return n;
}

function parseV6(s: string): bigint | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  let str = s;
  // An embedded IPv4 address in the last 32 bits (::ffff:1.2.3.4) becomes two hex groups.
  if (str.includes('.')) {
    const lastColon = str.lastIndexOf(':');
    const v4 = parseV4(str.slice(lastColon + 1));
    if (v4 === null) return null;
    str = `${str.slice(0, lastColon + 1)}${((v4 >> 16n) & 0xffffn).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = str.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): bigint[] | null => {
    if (h === '') return [];
    const out: bigint[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(BigInt(parseInt(g, 16)));
    }
    return out;
  };
  const head = groups(halves[0]!);
  if (head === null) return null;
  let all: bigint[];
  if (halves.length === 2) {
    const rest = groups(halves[1]!);
    if (rest === null) return null;
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return null;
    all = [...head, ...Array<bigint>(fill).fill(0n), ...rest];
  } else {
    all = head;
  }
  if (all.length !== 8) return null;
  return all.reduce((a, g) => (a << 16n) | g, 0n);
}

/** Parses an address of either family; null when it is not one. */
export function parseIp(s: unknown): Ip | null {
  if (typeof s !== 'string' || s.length === 0 || s.length > 45) return null;
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === null ? null : { version: 6, value: v };
  }
  const v = parseV4(s);
  return v === null ? null : { version: 4, value: v };
}

/** Canonical text of an address. */
export function formatIp(version: IpVersion, value: bigint): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((sh) => String((value >> sh) & 0xffn)).join('.');
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (≥2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Normalizes an address string; null when invalid. */
export function normalizeIp(s: unknown): string | null {
  const ip = parseIp(s);
  return ip ? formatIp(ip.version, ip.value) : null;
}

const mask = (v: IpVersion, prefixlen: number): bigint => {
  const bits = BigInt(BITS[v]);
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefixlen))) - 1n);
};

/**
 * Parses `addr/len`. `strict` refuses host bits (10.0.0.1/24), as Neutron
 * does for a subnet's cidr; otherwise they are cleared.
 */
export function parseCidr(s: unknown, strict = false): Cidr | null {
  if (typeof s !== 'string') return null;
  const slash = s.indexOf('/');
  const addr = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!addr) return null;
  let prefixlen = BITS[addr.version];
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefixlen = Number(p);
    if (prefixlen > BITS[addr.version]) return null;
  }
  const network = addr.value & mask(addr.version, prefixlen);
  if (strict && network !== addr.value) return null;
  return { version: addr.version, network, prefixlen };
}

export const formatCidr = (c: Cidr): string => `${formatIp(c.version, c.network)}/${c.prefixlen}`;
export const lastAddress = (c: Cidr): bigint => c.network | ((1n << BigInt(BITS[c.version] - c.prefixlen)) - 1n);
export const cidrSize = (c: Cidr): bigint => 1n << BigInt(BITS[c.version] - c.prefixlen);

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return c.version === ip.version && ip.value >= c.network && ip.value <= lastAddress(c);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.version === b.version && a.network <= lastAddress(b) && b.network <= lastAddress(a);
}

export interface IpRange {
  start: bigint;
  end: bigint;
}

/**
 * The allocation pool Neutron gives a subnet when none is asked for: the
 * whole CIDR minus the network address, the IPv4 broadcast address and the
 * gateway (splitting the range around it).
 */
export function defaultPools(c: Cidr, gateway: bigint | null): IpRange[] {
  let start = c.network;
  let end = lastAddress(c);
  if (c.version === 4) {
    // /31 and /32 have no network/broadcast addresses (RFC 3021).
    if (c.prefixlen < 31) {
      start += 1n;
      end -= 1n;
    }
  } else if (c.prefixlen < 127) {
    // The IPv6 subnet-router anycast address is the network address.
    start += 1n;
  }
  if (start > end) return [];
  if (gateway === null || gateway < start || gateway > end) return [{ start, end }];
  const out: IpRange[] = [];
  if (gateway > start) out.push({ start, end: gateway - 1n });
  if (gateway < end) out.push({ start: gateway + 1n, end });
  return out;
}

/** EUI-64 interface identifier address for SLAAC (RFC 4291 appendix A). */
export function eui64(prefix: Cidr, mac: string): bigint {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  const iid = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!].reduce((a, x) => (a << 8n) | BigInt(x), 0n);
  return prefix.network | iid;
}

/** Compares two canonical address strings numerically (v4 before v6). */
export function compareIp(a: string, b: string): number {
  const x = parseIp(a);
  const y = parseIp(b);
  if (!x || !y) return a < b ? -1 : a > b ? 1 : 0;
  if (x.version !== y.version) return x.version - y.version;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}
