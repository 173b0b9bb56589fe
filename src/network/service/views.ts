import { bool } from '../../core/db.js';
import { isoSeconds } from '../../core/time.js';
import type { FloatingIpRow, NetworkRow, PortRow, RouterRow, SecurityGroupRow, SecurityGroupRuleRow, SubnetRow } from '../store/tables.js';
import { parseJson, type NetDb, type Tx } from './context.js';
import { compareIp } from '../ip.js';

/**
 * Rows → the resource bodies of the Networking API, loading related rows in
 * batches (one query per relation, never one per resource). These are the
 * complete bodies; the API layer drops what a caller may not see and applies
 * `fields=`.
 */
export type View = Record<string, unknown>;

/** Tag collections, by the URL name of the resource. */
export type TaggedResource = 'networks' | 'subnets' | 'ports' | 'routers' | 'floatingips' | 'security-groups' | 'subnetpools';

const std = (r: { id: string; project_id: string; description: string; created_at: number; updated_at: number; revision_number: number }) => ({
  id: r.id,
  tenant_id: r.project_id,
  project_id: r.project_id,
  description: r.description,
  created_at: isoSeconds(r.created_at),
  updated_at: isoSeconds(r.updated_at),
  revision_number: r.revision_number,
});

async function tagsOf(db: Tx, type: TaggedResource, ids: string[]): Promise<Map<string, string[]>> {
  const m = new Map<string, string[]>();
  if (ids.length === 0) return m;
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await (db as NetDb)
      .selectFrom('neutron_tags')
      .select(['resource_id', 'tag'])
      .where('resource_type', '=', type)
      .where('resource_id', 'in', ids.slice(i, i + 500))
      .execute();
    for (const r of rows) m.set(r.resource_id, [...(m.get(r.resource_id) ?? []), r.tag]);
  }
  for (const v of m.values()) v.sort();
  return m;
}

/** `in` lists are chunked: SQLite caps bound parameters. */
async function chunked<T>(ids: string[], q: (chunk: string[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < ids.length; i += 500) out.push(...(await q(ids.slice(i, i + 500))));
  return out;
}

export async function networkViews(db: Tx, rows: NetworkRow[], az: string): Promise<View[]> {
  const ids = rows.map((r) => r.id);
  const subnets = await chunked(ids, (c) =>
    (db as NetDb).selectFrom('neutron_subnets').select(['id', 'network_id', 'created_at']).where('network_id', 'in', c).orderBy('created_at').orderBy('id').execute(),
  );
  const tags = await tagsOf(db, 'networks', ids);
  return rows.map((r) => ({
    ...std(r),
    name: r.name,
    admin_state_up: bool(r.admin_state_up),
    mtu: r.mtu,
    status: 'ACTIVE',
    subnets: subnets.filter((s) => s.network_id === r.id).map((s) => s.id),
    shared: bool(r.shared),
    'router:external': bool(r.external),
    port_security_enabled: bool(r.port_security_enabled),
    availability_zone_hints: [],
    availability_zones: [az],
    ipv4_address_scope: null,
    ipv6_address_scope: null,
    'provider:network_type': r.network_type,
    'provider:physical_network': r.physical_network,
    'provider:segmentation_id': r.segmentation_id,
    dns_domain: r.dns_domain,
    l2_adjacency: true,
    tags: tags.get(r.id) ?? [],
  }));
}

export async function subnetViews(db: Tx, rows: SubnetRow[]): Promise<View[]> {
  const ids = rows.map((r) => r.id);
  const pools = await chunked(ids, (c) => (db as NetDb).selectFrom('neutron_allocation_pools').selectAll().where('subnet_id', 'in', c).orderBy('position').execute());
  const tags = await tagsOf(db, 'subnets', ids);
  return rows.map((r) => ({
    ...std(r),
    name: r.name,
    network_id: r.network_id,
    ip_version: r.ip_version,
    cidr: r.cidr,
    gateway_ip: r.gateway_ip,
    enable_dhcp: bool(r.enable_dhcp),
    allocation_pools: pools.filter((p) => p.subnet_id === r.id).map((p) => ({ start: p.first_ip, end: p.last_ip })),
    dns_nameservers: parseJson<string[]>(r.dns_nameservers, []),
    host_routes: parseJson<unknown[]>(r.host_routes, []),
    ipv6_ra_mode: r.ipv6_ra_mode,
    ipv6_address_mode: r.ipv6_address_mode,
    subnetpool_id: null,
    service_types: [],
    tags: tags.get(r.id) ?? [],
  }));
}

/** Neutron's DNS names for a port without one: host-10-0-0-5. */
export const defaultHostname = (ip: string): string => `host-${ip.replace(/[.:]/g, '-')}`;

export async function portViews(db: Tx, rows: PortRow[]): Promise<View[]> {
  const ids = rows.map((r) => r.id);
  const ips = await chunked(ids, (c) => (db as NetDb).selectFrom('neutron_ip_allocations').select(['port_id', 'subnet_id', 'ip_address']).where('port_id', 'in', c).execute());
  const sgs = await chunked(ids, (c) => (db as NetDb).selectFrom('neutron_port_security_groups').selectAll().where('port_id', 'in', c).execute());
  const tags = await tagsOf(db, 'ports', ids);
  return rows.map((r) =>
    portView(
      r,
      ips.filter((i) => i.port_id === r.id),
      sgs.filter((s) => s.port_id === r.id).map((s) => s.security_group_id),
      tags.get(r.id) ?? [],
    ),
  );
}

/** One port's body from its row and relations (when the caller already has them). */
export function portView(r: PortRow, ips: Array<{ subnet_id: string; ip_address: string }>, groups: string[], tags: string[]): View {
  const fixed = [...ips].sort((a, b) => compareIp(a.ip_address, b.ip_address)).map((i) => ({ subnet_id: i.subnet_id, ip_address: i.ip_address }));
  const bound = r.binding_host_id !== '';
  return {
    ...std(r),
    name: r.name,
    network_id: r.network_id,
    mac_address: r.mac_address,
    admin_state_up: bool(r.admin_state_up),
    status: portStatus(r),
    device_id: r.device_id,
    device_owner: r.device_owner,
    fixed_ips: fixed,
    allowed_address_pairs: parseJson<unknown[]>(r.allowed_address_pairs, []),
    extra_dhcp_opts: [],
    security_groups: [...groups].sort(),
    port_security_enabled: bool(r.port_security_enabled),
    'binding:host_id': r.binding_host_id,
    'binding:vif_type': bound ? 'tap' : 'unbound',
    'binding:vif_details': bound ? { port_filter: true, connectivity: 'l2' } : {},
    'binding:vnic_type': r.binding_vnic_type,
    'binding:profile': parseJson<Record<string, unknown>>(r.binding_profile, {}),
    dns_name: r.dns_name,
    dns_assignment: fixed.map((f) => {
      const hostname = r.dns_name || defaultHostname(f.ip_address);
      return { ip_address: f.ip_address, hostname, fqdn: `${hostname}.openstacklocal.` };
    }),
    tags: [...tags].sort(),
  };
}

/**
 * A port is ACTIVE when it is administratively up and has somewhere to be:
 * bound to a host (VM ports) or owned by the network itself (DHCP, router
 * and floating IP ports, which the agents of the hosting host realise).
 */
export function portStatus(r: PortRow): string {
  if (!bool(r.admin_state_up)) return 'DOWN';
  if (r.device_owner.startsWith('network:')) return 'ACTIVE';
  return r.binding_host_id !== '' ? 'ACTIVE' : 'DOWN';
}

export async function routerViews(db: Tx, rows: RouterRow[], az: string): Promise<View[]> {
  const ids = rows.map((r) => r.id);
  const gwPorts = rows.map((r) => r.gw_port_id).filter((x): x is string => !!x);
  const gw = await chunked(gwPorts, (c) =>
    (db as NetDb)
      .selectFrom('neutron_ports')
      .leftJoin('neutron_ip_allocations', 'neutron_ip_allocations.port_id', 'neutron_ports.id')
      .select(['neutron_ports.id as port_id', 'neutron_ports.network_id', 'neutron_ip_allocations.subnet_id', 'neutron_ip_allocations.ip_address'])
      .where('neutron_ports.id', 'in', c)
      .execute(),
  );
  const tags = await tagsOf(db, 'routers', ids);
  return rows.map((r) => {
    const mine = gw.filter((g) => g.port_id === r.gw_port_id);
    return {
      ...std(r),
      name: r.name,
      admin_state_up: bool(r.admin_state_up),
      status: 'ACTIVE',
      external_gateway_info: r.gw_port_id
        ? {
            network_id: mine[0]?.network_id ?? null,
            enable_snat: bool(r.enable_snat),
            external_fixed_ips: mine
              .filter((g) => g.ip_address)
              .sort((a, b) => compareIp(a.ip_address!, b.ip_address!))
              .map((g) => ({ subnet_id: g.subnet_id, ip_address: g.ip_address })),
          }
        : null,
      routes: parseJson<unknown[]>(r.routes, []),
      availability_zone_hints: [],
      availability_zones: [az],
      tags: tags.get(r.id) ?? [],
    };
  });
}

export async function floatingIpViews(db: Tx, rows: FloatingIpRow[]): Promise<View[]> {
  const tags = await tagsOf(db, 'floatingips', rows.map((r) => r.id));
  return rows.map((r) => ({
    ...std(r),
    floating_network_id: r.floating_network_id,
    floating_ip_address: r.floating_ip_address,
    fixed_ip_address: r.fixed_ip_address,
    port_id: r.fixed_port_id,
    router_id: r.router_id,
    status: r.fixed_port_id ? 'ACTIVE' : 'DOWN',
    dns_name: r.dns_name,
    dns_domain: r.dns_domain,
    tags: tags.get(r.id) ?? [],
  }));
}

export function ruleView(r: SecurityGroupRuleRow): View {
  return {
    ...std(r),
    security_group_id: r.security_group_id,
    direction: r.direction,
    ethertype: r.ethertype,
    protocol: r.protocol,
    port_range_min: r.port_range_min,
    port_range_max: r.port_range_max,
    remote_ip_prefix: r.remote_ip_prefix,
    remote_group_id: r.remote_group_id,
    normalized_cidr: r.normalized_cidr,
  };
}

export async function securityGroupViews(db: Tx, rows: SecurityGroupRow[]): Promise<View[]> {
  const ids = rows.map((r) => r.id);
  const rules = await chunked(ids, (c) =>
    (db as NetDb).selectFrom('neutron_security_group_rules').selectAll().where('security_group_id', 'in', c).orderBy('created_at').orderBy('id').execute(),
  );
  const tags = await tagsOf(db, 'security-groups', ids);
  return rows.map((r) => ({
    ...std(r),
    name: r.name,
    stateful: bool(r.stateful),
    security_group_rules: rules.filter((x) => x.security_group_id === r.id).map(ruleView),
    tags: tags.get(r.id) ?? [],
  }));
}
