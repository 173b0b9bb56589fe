import type { NetworkState, RouterState } from '../protocol.js';
import { devName } from '../protocol.js';
import { cidrText, parseCidr } from './addr.js';

/**
 * NAT of one router, in its namespace (`table ip stratus_router`), replaced
 * whole in one transaction:
 *  - each floating IP: DNAT to its fixed IP (from outside and from the
 *    router itself), SNAT of that fixed IP to the floating IP on the way out;
 *  - traffic that was DNATed but did not come in through the gateway (a
 *    tenant reaching a floating IP of its own network) is SNATed to the
 *    gateway address, so the reply comes back through the router;
 *  - enable_snat: the tenant subnets leave through the gateway as its address.
 */
export const ROUTER_TABLE = 'stratus_router';

export function routerGatewayV4(r: RouterState): string | null {
  return r.gateway?.fixed_ips.find((f) => parseCidr(f.ip_address)?.version === 4)?.ip_address ?? null;
}

export function routerNatScript(r: RouterState): string {
  const head = [`table ip ${ROUTER_TABLE}`, `delete table ip ${ROUTER_TABLE}`];
  const gw = r.gateway;
  if (!gw) return head.join('\n') + '\n';
  const qg = devName('qg-', gw.port_id);
  const gwIp = routerGatewayV4(r);
  const fips = r.floating_ips.filter((f) => parseCidr(f.floating_ip_address)?.version === 4 && parseCidr(f.fixed_ip_address)?.version === 4);
  const l = [...head, `table ip ${ROUTER_TABLE} {`];
  l.push('  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;');
  for (const f of fips) l.push(`    ip daddr ${f.floating_ip_address} dnat to ${f.fixed_ip_address}`);
  l.push('  }', '  chain output {', '    type nat hook output priority -100; policy accept;');
  for (const f of fips) l.push(`    ip daddr ${f.floating_ip_address} dnat to ${f.fixed_ip_address}`);
  l.push('  }', '  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  for (const f of fips) l.push(`    oifname "${qg}" ip saddr ${f.fixed_ip_address} snat to ${f.floating_ip_address}`);
  if (gwIp) {
    l.push(`    iifname != "${qg}" oifname != "${qg}" ct status dnat snat to ${gwIp}`);
    if (gw.enable_snat) {
      const cidrs = [...new Set(r.interfaces.map((i) => parseCidr(i.cidr)).filter((c) => c?.version === 4).map((c) => cidrText(c!)))];
      for (const c of cidrs) l.push(`    oifname "${qg}" ip saddr ${c} snat to ${gwIp}`);
    }
  }
  l.push('  }', '}');
  return l.join('\n') + '\n';
}

/** The default routes of a router: next_hop, else the gateway of the external subnet its address is on. */
export function routerDefaultRoutes(r: RouterState, nets: Map<string, NetworkState>): Array<{ version: 4 | 6; via: string }> {
  const gw = r.gateway;
  if (!gw) return [];
  const ext = nets.get(gw.network_id);
  const out: Array<{ version: 4 | 6; via: string }> = [];
  for (const v of [4, 6] as const) {
    const fixed = gw.fixed_ips.find((f) => parseCidr(f.ip_address)?.version === v);
    if (!fixed) continue;
    let via: string | null = gw.next_hop && parseCidr(gw.next_hop)?.version === v ? gw.next_hop : null;
    via ??= ext?.subnets.find((s) => s.id === fixed.subnet_id)?.gateway_ip ?? null;
    if (via && parseCidr(via)?.version === v) out.push({ version: v, via });
  }
  return out;
}
