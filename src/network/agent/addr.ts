import { isIPv4, isIPv6 } from 'node:net';

/** Small address helpers: CIDR parsing and normalisation (host bits cleared), for v4 and v6. */

export function ipVersion(ip: string): 4 | 6 | null {
  return isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : null;
}

function v4ToBig(ip: string): bigint {
  return ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
}
function bigToV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}
function v6ToBig(ip: string): bigint {
  let s = ip;
  // an embedded IPv4 tail (::ffff:1.2.3.4)
  const m = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m) {
    const v = v4ToBig(m[1]!);
    s = s.slice(0, -m[1]!.length) + `${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, null];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === null ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}
function bigToV6(n: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  // compress the longest run of zero groups (RFC 5952)
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export interface Cidr {
  version: 4 | 6;
  /** Network address, host bits cleared. */
  network: string;
  prefixlen: number;
}

/** Parses `a.b.c.d/n`, `x::/n` or a bare address (a host prefix). Null when invalid. */
export function parseCidr(s: string): Cidr | null {
  const [ip, len] = s.split('/');
  const version = ipVersion(ip ?? '');
  if (!ip || !version) return null;
  const bits = version === 4 ? 32 : 128;
  const prefixlen = len === undefined ? bits : Number(len);
  if (!Number.isInteger(prefixlen) || prefixlen < 0 || prefixlen > bits) return null;
  const n = version === 4 ? v4ToBig(ip) : v6ToBig(ip);
  const mask = prefixlen === 0 ? 0n : ((1n << BigInt(prefixlen)) - 1n) << BigInt(bits - prefixlen);
  const net = n & mask;
  return { version, network: version === 4 ? bigToV4(net) : bigToV6(net), prefixlen };
}

/** `net/len` with host bits cleared; a /32 or /128 is written as the bare address. */
export function cidrText(c: Cidr): string {
  return c.prefixlen === (c.version === 4 ? 32 : 128) ? c.network : `${c.network}/${c.prefixlen}`;
}

export function prefixOf(cidr: string): number {
  return parseCidr(cidr)?.prefixlen ?? 32;
}

/** Dotted netmask of an IPv4 prefix length. */
export function netmask(prefixlen: number): string {
  const mask = prefixlen === 0 ? 0n : ((1n << BigInt(prefixlen)) - 1n) << BigInt(32 - prefixlen);
  return bigToV4(mask);
}

/** Canonical text of an address (IPv6 compressed, lower case). */
export function canonicalIp(ip: string): string {
  const v = ipVersion(ip);
  if (v === 6) return bigToV6(v6ToBig(ip));
  return ip;
}

/** Whether `ip` lies inside `cidr`. */
export function contains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const a = parseCidr(ip);
  if (!c || !a || c.version !== a.version) return false;
  const p = parseCidr(`${ip}/${c.prefixlen}`);
  return !!p && p.network === c.network;
}
