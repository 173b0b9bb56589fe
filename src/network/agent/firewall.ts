import type { PortState, SecurityGroupRuleState, SecurityGroupState } from '../protocol.js';
import { cidrText, parseCidr } from './addr.js';

/**
 * Port security as nftables, in the host namespace (where the bridges are).
 *
 * This kernel has no bridge-family conntrack, so the work is split the way
 * recipes/05 verified it:
 *  - `table bridge stratus_agent` sees the bridge port of every frame:
 *     prerouting: anti-spoofing — a port may only send from its own MAC / IPs
 *       (and its allowed address pairs), may not answer DHCP or send router
 *       advertisements; stateless, so it lives here.
 *     forward: marks each bridged frame with the index of the port it came
 *       from (upper 16 bits) and the port it goes to (lower 16 bits).
 *  - `table inet stratus_agent`: br_netfilter hands bridged IPv4/IPv6 to the
 *     inet forward hook, where conntrack works: established/related pass,
 *     marked packets go through the egress chain of their source port (returns
 *     when allowed) and the ingress chain of their destination port (accepts
 *     when allowed); both chains end in drop (default deny).
 *
 * Both tables are written as one `nft -f` transaction that replaces them
 * whole, so a rule change is atomic: no packet ever sees a half-built or
 * missing rule set.
 */
export const FW_TABLE = 'stratus_agent';

const PROTOCOLS: Record<string, number> = {
  ah: 51, dccp: 33, egp: 8, esp: 50, gre: 47, hopopt: 0, icmp: 1, igmp: 2, ipip: 4, 'ipv6-encap': 41, 'ipv6-frag': 44,
  'ipv6-icmp': 58, icmpv6: 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, 'ipv6-route': 43, ospf: 89, pgm: 113, rsvp: 46,
  sctp: 132, tcp: 6, udp: 17, udplite: 136, vrrp: 112,
};
const PORTED = new Set([6, 17, 33, 132, 136]);

/** The IP protocol number of a rule's protocol, null for any, undefined when unknown. */
export function protocolNumber(p: string | null, ethertype: 'IPv4' | 'IPv6'): number | null | undefined {
  if (p === null || p === '' || p === 'any') return null;
  let n: number | undefined = /^\d+$/.test(p) ? Number(p) : PROTOCOLS[p.toLowerCase()];
  if (n === undefined || n > 255) return undefined;
  if (ethertype === 'IPv6' && n === 1) n = 58; // Neutron treats icmp on IPv6 as ipv6-icmp
  return n;
}

/** One security-group rule as an nft match (without verdict); null when it can never match. */
export function ruleMatch(r: SecurityGroupRuleState, groupSet: (groupId: string, v: 4 | 6) => string | null): string | null {
  const v = r.ethertype === 'IPv6' ? 6 : 4;
  const parts: string[] = [`meta nfproto ${v === 4 ? 'ipv4' : 'ipv6'}`];
  const ipk = v === 4 ? 'ip' : 'ip6';
  const dir = r.direction === 'ingress' ? 'saddr' : 'daddr';
  if (r.remote_ip_prefix) {
    const c = parseCidr(r.remote_ip_prefix);
    if (!c || c.version !== v) return null;
    if (c.prefixlen > 0) parts.push(`${ipk} ${dir} ${cidrText(c)}`);
  }
  if (r.remote_group_id) {
    const set = groupSet(r.remote_group_id, v);
    if (!set) return null;
    parts.push(`${ipk} ${dir} @${set}`);
  }
  const proto = protocolNumber(r.protocol, r.ethertype);
  if (proto === undefined) return null;
  if (proto !== null) {
    if (v === 4 && proto === 58) return null;
    parts.push(`meta l4proto ${proto}`);
    const lo = r.port_range_min, hi = r.port_range_max;
    if (PORTED.has(proto) && (lo !== null || hi !== null)) {
      const a = lo ?? hi!, b = hi ?? lo!;
      parts.push(`th dport ${a === b ? a : `${Math.min(a, b)}-${Math.max(a, b)}`}`);
    } else if (proto === 1 || proto === 58) {
      const k = proto === 1 ? 'icmp' : 'icmpv6';
      if (lo !== null) parts.push(`${k} type ${lo}`);
      if (lo !== null && hi !== null) parts.push(`${k} code ${hi}`);
    }
  }
  return parts.join(' ');
}

/** A port with port security: its index (1..65535) gives its mark. */
interface SecuredPort {
  port: PortState;
  index: number;
}

function macs(p: PortState): string[] {
  return [...new Set([p.mac_address, ...p.allowed_address_pairs.map((a) => a.mac_address || p.mac_address)].map((m) => m.toLowerCase()))];
}

/** Anti-spoofing chain of one port (bridge family). */
function spoofChain(p: PortState): string[] {
  const mac = p.mac_address.toLowerCase();
  const l: string[] = [];
  // a guest must never act as DHCP server or IPv6 router on the segment
  l.push('udp sport 67 drop', 'udp sport 547 drop', 'icmpv6 type nd-router-advert drop');
  l.push(`ether saddr ${mac} ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept`);
  l.push(`ether saddr ${mac} ether type arp arp saddr ether ${mac} arp saddr ip 0.0.0.0 accept`);
  l.push(`ether saddr ${mac} ip6 saddr :: accept`);
  l.push(`ether saddr ${mac} ip6 saddr fe80::/64 accept`);
  const pairs: Array<{ mac: string; cidr: string }> = [
    ...p.fixed_ips.map((f) => ({ mac, cidr: f.ip_address })),
    ...p.allowed_address_pairs.map((a) => ({ mac: (a.mac_address || p.mac_address).toLowerCase(), cidr: a.ip_address })),
  ];
  for (const { mac: m, cidr } of pairs) {
    const c = parseCidr(cidr);
    if (!c) continue;
    const t = cidrText(c);
    if (c.version === 4) {
      l.push(`ether saddr ${m} ip saddr ${t} accept`);
      l.push(`ether saddr ${m} ether type arp arp saddr ether ${m} arp saddr ip ${t} accept`);
    } else l.push(`ether saddr ${m} ip6 saddr ${t} accept`);
  }
  if (p.allowed_address_pairs.length) for (const m of macs(p)) if (m !== mac) l.push(`ether saddr ${m} ip6 saddr fe80::/64 accept`);
  l.push('counter drop');
  return l;
}

export interface FirewallInput {
  ports: PortState[];
  securityGroups: SecurityGroupState[];
}

/** The devices whose traffic this rule set filters (ports with port security). */
export function securedPorts(ports: PortState[]): PortState[] {
  return ports.filter((p) => p.port_security_enabled).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The complete nft script for the host namespace: deletes and recreates both
 * tables in one transaction. With no secured port it only deletes them.
 */
export function firewallScript(input: FirewallInput): { script: string; rules: number } {
  const secured: SecuredPort[] = securedPorts(input.ports).slice(0, 0xffff).map((port, i) => ({ port, index: i + 1 }));
  const head = [`table bridge ${FW_TABLE}`, `delete table bridge ${FW_TABLE}`, `table inet ${FW_TABLE}`, `delete table inet ${FW_TABLE}`];
  if (secured.length === 0) return { script: head.join('\n') + '\n', rules: 0 };
  const groups = new Map(input.securityGroups.map((g) => [g.id, g]));
  // named sets for remote_group_id, one per (group, family) in use
  const sets = new Map<string, { name: string; v: 4 | 6; elems: string[] }>();
  const groupSet = (gid: string, v: 4 | 6): string | null => {
    const g = groups.get(gid);
    if (!g) return null;
    const key = `${gid}/${v}`;
    let s = sets.get(key);
    if (!s) {
      const elems = [...new Set(g.member_ips.map((ip) => parseCidr(ip)).filter((c): c is NonNullable<typeof c> => !!c && c.version === v).map(cidrText))];
      s = { name: `g${sets.size + 1}v${v}`, v, elems };
      sets.set(key, s);
    }
    return s.name;
  };
  let rules = 0;
  const out: string[] = [...head];

  const bridge: string[] = [`table bridge ${FW_TABLE} {`];
  bridge.push('  chain prerouting {', '    type filter hook prerouting priority -300; policy accept;');
  bridge.push(`    iifname vmap { ${secured.map((s) => `"${s.port.device}" : jump spoof${s.index}`).join(', ')} }`);
  bridge.push('  }');
  bridge.push('  chain forward {', '    type filter hook forward priority -200; policy accept;');
  for (const s of secured) bridge.push(`    iifname "${s.port.device}" meta mark set meta mark & 0x0000ffff | 0x${(s.index << 16 >>> 0).toString(16).padStart(8, '0')}`);
  for (const s of secured) bridge.push(`    oifname "${s.port.device}" meta mark set meta mark & 0xffff0000 | 0x${s.index.toString(16).padStart(8, '0')}`);
  bridge.push('  }');
  for (const s of secured) {
    bridge.push(`  chain spoof${s.index} {`);
    for (const l of spoofChain(s.port)) bridge.push(`    ${l}`);
    bridge.push('  }');
  }
  bridge.push('}');

  // ports with the same groups share one pair of chains: 500 rules are written once, not once per port
  const inet: string[] = [];
  const chains: string[] = [];
  const combos = new Map<string, number>();
  const comboOf = new Map<number, number>();
  for (const s of secured) {
    const key = [...new Set(s.port.security_group_ids)].sort().join(',');
    let k = combos.get(key);
    if (k === undefined) {
      k = combos.size + 1;
      combos.set(key, k);
      const ing = new Set<string>(), eg = new Set<string>();
      for (const gid of key ? key.split(',') : []) {
        for (const r of groups.get(gid)?.rules ?? []) {
          const m = ruleMatch(r, groupSet);
          if (m === null) continue;
          (r.direction === 'ingress' ? ing : eg).add(m);
        }
      }
      rules += ing.size + eg.size;
      chains.push(`  chain egress${k} {`);
      chains.push('    udp sport 68 udp dport 67 return', '    udp sport 546 udp dport 547 return');
      chains.push('    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } return');
      chains.push('    ct state invalid drop');
      for (const m of eg) chains.push(`    ${m} return`);
      chains.push('    counter drop', '  }');
      chains.push(`  chain ingress${k} {`);
      chains.push('    udp sport 67 udp dport 68 accept', '    udp sport 547 udp dport 546 accept');
      chains.push('    icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query } accept');
      chains.push('    ct state invalid drop');
      for (const m of ing) chains.push(`    ${m} accept`);
      chains.push('    counter drop', '  }');
    }
    comboOf.set(s.index, k);
  }
  inet.push(`table inet ${FW_TABLE} {`);
  for (const s of sets.values()) {
    inet.push(`  set ${s.name} {`, `    type ${s.v === 4 ? 'ipv4_addr' : 'ipv6_addr'}`, '    flags interval');
    if (s.elems.length) inet.push(`    elements = { ${s.elems.join(', ')} }`);
    inet.push('  }');
  }
  inet.push('  chain forward {', '    type filter hook forward priority filter; policy accept;');
  inet.push('    meta mark & 0xffffffff == 0 accept');
  inet.push('    ct state established,related accept');
  inet.push(`    meta mark & 0xffff0000 vmap { ${secured.map((s) => `0x${(s.index << 16 >>> 0).toString(16).padStart(8, '0')} : jump egress${comboOf.get(s.index)}`).join(', ')} }`);
  inet.push(`    meta mark & 0x0000ffff vmap { ${secured.map((s) => `0x${s.index.toString(16).padStart(8, '0')} : jump ingress${comboOf.get(s.index)}`).join(', ')} }`);
  inet.push('  }');
  inet.push(...chains, '}');
  out.push(...bridge, ...inet);
  return { script: out.join('\n') + '\n', rules };
}
