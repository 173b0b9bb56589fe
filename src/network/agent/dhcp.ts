import type { NetworkState, RouterState } from '../protocol.js';
import { METADATA_IP, devName } from '../protocol.js';
import { canonicalIp, netmask, parseCidr, prefixOf } from './addr.js';

/**
 * dnsmasq for one network, the way Neutron's DHCP agent runs it: static mode
 * (only the MACs in the hosts file get an address, the one the API
 * allocated), no upstream DNS ever (`--no-resolv`, no `--server`): it answers
 * only for the ports' own names in `openstacklocal`.
 *
 * What may change without a restart (hosts, DNS names, options) lives in
 * files dnsmasq re-reads on SIGHUP; the command line holds only what needs a
 * restart (interface, ranges).
 */
export const DNS_DOMAIN = 'openstacklocal';

export interface DhcpFiles {
  hosts: string;
  addnHosts: string;
  opts: string;
}

export interface DhcpPaths {
  dir: string;
  pid: string;
  hosts: string;
  addnHosts: string;
  opts: string;
  leases: string;
  log: string;
}

export function dhcpPaths(dir: string): DhcpPaths {
  return { dir, pid: `${dir}/pid`, hosts: `${dir}/hosts`, addnHosts: `${dir}/addn_hosts`, opts: `${dir}/opts`, leases: `${dir}/leases`, log: `${dir}/log` };
}

/** A DNS label dnsmasq accepts. */
export function hostLabel(name: string, fallbackIp: string): string {
  const l = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return l || `host-${fallbackIp.replace(/[.:]/g, '-')}`;
}

/** Subnets of `net` with no router interface on this host: they get metadata through the DHCP namespace. */
export function isolatedSubnets(net: NetworkState, routers: RouterState[]): Set<string> {
  const routed = new Set(routers.filter((r) => r.admin_state_up).flatMap((r) => r.interfaces.map((i) => i.subnet_id)));
  return new Set(net.subnets.filter((s) => !routed.has(s.id)).map((s) => s.id));
}

export function dhcpSubnets(net: NetworkState) {
  return net.subnets.filter((s) => s.enable_dhcp && parseCidr(s.cidr));
}

/** Whether this network needs a DHCP namespace at all. */
export function wantsDhcp(net: NetworkState): boolean {
  return !!net.dhcp_port && dhcpSubnets(net).length > 0;
}

/** The metadata proxy runs in the DHCP namespace when an IPv4 DHCP subnet has no router. */
export function wantsDhcpMetadata(net: NetworkState, routers: RouterState[]): boolean {
  if (!wantsDhcp(net)) return false;
  const iso = isolatedSubnets(net, routers);
  return dhcpSubnets(net).some((s) => s.ip_version === 4 && iso.has(s.id));
}

const tag = (subnetId: string) => `subnet-${subnetId}`;

export function dnsmasqArgs(net: NetworkState, paths: DhcpPaths, opts: { runAsRoot: boolean }): string[] {
  const port = net.dhcp_port!;
  const args = [
    '--conf-file=/dev/null', '--no-hosts', '--no-resolv', '--strict-order', '--bind-interfaces',
    `--interface=${devName('ns-', port.id)}`, '--except-interface=lo',
    `--pid-file=${paths.pid}`, `--dhcp-hostsfile=${paths.hosts}`, `--addn-hosts=${paths.addnHosts}`,
    `--dhcp-optsfile=${paths.opts}`, `--dhcp-leasefile=${paths.leases}`, `--log-facility=${paths.log}`,
    `--domain=${DNS_DOMAIN}`, `--local=/${DNS_DOMAIN}/`, '--dhcp-authoritative', '--dhcp-lease-max=16777216',
  ];
  for (const s of dhcpSubnets(net)) {
    const c = parseCidr(s.cidr)!;
    args.push(s.ip_version === 4 || c.version === 4
      ? `--dhcp-range=set:${tag(s.id)},${c.network},static,${netmask(c.prefixlen)},86400s`
      : `--dhcp-range=set:${tag(s.id)},${c.network},static,${c.prefixlen},86400s`);
  }
  if (opts.runAsRoot) args.push('--user=root', '--group=root');
  return args;
}

export function dhcpFiles(net: NetworkState, routers: RouterState[]): DhcpFiles {
  const port = net.dhcp_port!;
  const subnets = dhcpSubnets(net);
  // one hosts line per MAC with all of its addresses (dnsmasq picks the one of the subnet it serves)
  const byMac = new Map<string, { v4: string[]; v6: string[]; name: string }>();
  const names: string[] = [];
  for (const h of [...net.dhcp_hosts].sort((a, b) => (a.mac_address + a.ip_address < b.mac_address + b.ip_address ? -1 : 1))) {
    const mac = h.mac_address.toLowerCase();
    const v = parseCidr(h.ip_address)?.version;
    if (!v) continue;
    const label = hostLabel(h.hostname, h.ip_address);
    const e = byMac.get(mac) ?? { v4: [], v6: [], name: label };
    (v === 4 ? e.v4 : e.v6).push(canonicalIp(h.ip_address));
    byMac.set(mac, e);
    names.push(`${canonicalIp(h.ip_address)} ${label}.${DNS_DOMAIN} ${label}`);
  }
  const hosts = [...byMac.entries()].map(([mac, e]) => [mac, ...e.v4, ...e.v6.map((a) => `[${a}]`), e.name].join(',')).join('\n');
  const iso = isolatedSubnets(net, routers);
  const opts: string[] = [];
  for (const s of subnets) {
    const t = `tag:${tag(s.id)}`;
    const dhcpIp = port.fixed_ips.find((f) => f.subnet_id === s.id)?.ip_address ?? null;
    if (s.ip_version === 4) {
      opts.push(`${t},option:router${s.gateway_ip ? `,${s.gateway_ip}` : ''}`);
      const dns = s.dns_nameservers.length ? s.dns_nameservers : dhcpIp ? [dhcpIp] : [];
      opts.push(`${t},option:dns-server${dns.length ? `,${dns.join(',')}` : ''}`);
      opts.push(`${t},option:domain-name,${DNS_DOMAIN}`);
      opts.push(`${t},option:mtu,${net.mtu}`);
      // classless static routes (121); a client that gets them ignores option 3, so the default route goes in too
      const routes: string[] = [];
      if (iso.has(s.id) && dhcpIp) routes.push(`${METADATA_IP}/32,${dhcpIp}`);
      for (const r of s.host_routes) if (parseCidr(r.destination)?.version === 4) routes.push(`${r.destination},${r.nexthop}`);
      if (routes.length && s.gateway_ip) routes.push(`0.0.0.0/0,${s.gateway_ip}`);
      if (routes.length) opts.push(`${t},option:classless-static-route,${routes.join(',')}`);
    } else {
      const dns = s.dns_nameservers.length ? s.dns_nameservers : dhcpIp ? [dhcpIp] : [];
      if (dns.length) opts.push(`${t},option6:dns-server,${dns.map((d) => `[${canonicalIp(d)}]`).join(',')}`);
      opts.push(`${t},option6:domain-search,${DNS_DOMAIN}`);
    }
  }
  return { hosts: hosts ? hosts + '\n' : '', addnHosts: names.length ? names.join('\n') + '\n' : '', opts: opts.join('\n') + '\n' };
}

/** Addresses of the DHCP port as `ip/prefixlen` on its namespace leg. */
export function dhcpPortAddrs(net: NetworkState): string[] {
  const bySubnet = new Map(net.subnets.map((s) => [s.id, s]));
  return (net.dhcp_port?.fixed_ips ?? []).filter((f) => bySubnet.has(f.subnet_id)).map((f) => `${canonicalIp(f.ip_address)}/${prefixOf(bySubnet.get(f.subnet_id)!.cidr)}`);
}
