import { uuid } from '../../core/ids.js';
import { bool, int } from '../../core/db.js';
import type { NetworkRow, SubnetRow } from '../store/tables.js';
import type { NetworkService } from './service.js';
import type { Caller, NetDb, Tx } from './context.js';
import { parseJson } from './context.js';
import { badRequest, conflict, invalidInput, nerr, notFound } from './errors.js';
import { boolean, checkBody, integer, list, nullableInteger, projectId, str, tagList, type AttrSpec, type Body } from './validate.js';
import { cidrContains, cidrsOverlap, defaultPools, formatCidr, formatIp, lastAddress, parseCidr, parseIp, type Cidr, type IpRange } from '../ip.js';
import { networkViews, subnetViews, type View } from './views.js';
import { ROUTER_OWNERS, subnetInfos } from './ipam.js';

/** The largest MTU the host's links carry (Neutron's global_physnet_mtu) and the VXLAN overhead. */
export const PHYSNET_MTU = 1500;
const VXLAN_OVERHEAD = 50;
const NETWORK_TYPES = ['flat', 'local', 'vlan', 'vxlan'] as const;
const IPV6_MODES = ['slaac', 'dhcpv6-stateful', 'dhcpv6-stateless'];
const MAX_DNS_NAMESERVERS = 5;
const MAX_HOST_ROUTES = 20;

const NETWORK_ATTRS: Record<string, AttrSpec> = {
  name: { post: true, put: true, check: str(255) },
  description: { post: true, put: true, check: str(255) },
  admin_state_up: { post: true, put: true, check: boolean },
  shared: { post: true, put: true, check: boolean },
  'router:external': { post: true, put: true, check: boolean },
  mtu: { post: true, put: true, check: integer(68, 65535) },
  port_security_enabled: { post: true, put: true, check: boolean },
  'provider:network_type': { post: true, check: str(255) },
  'provider:physical_network': { post: true, check: (v, f) => (v === null ? null : str(64)(v, f)) },
  'provider:segmentation_id': { post: true, check: nullableInteger(0, 16777215) },
  availability_zone_hints: { post: true, check: list(str(255)) },
  dns_domain: { post: true, put: true, check: str(255) },
  project_id: { post: true, check: projectId },
  tenant_id: { post: true, check: projectId },
  tags: { post: true, check: tagList },
};

const SUBNET_ATTRS: Record<string, AttrSpec> = {
  name: { post: true, put: true, check: str(255) },
  description: { post: true, put: true, check: str(255) },
  network_id: { post: true, check: str(255) },
  ip_version: { post: true, check: (v, f) => (v === 4 || v === 6 || v === '4' || v === '6' ? Number(v) : f(`'${String(v)}' is not in [4, 6]`)) },
  cidr: { post: true, check: str(64) },
  gateway_ip: { post: true, put: true, check: (v, f) => (v === null ? null : str(64)(v, f)) },
  allocation_pools: { post: true, put: true },
  dns_nameservers: { post: true, put: true, check: list(str(64)) },
  host_routes: { post: true, put: true },
  enable_dhcp: { post: true, put: true, check: boolean },
  ipv6_ra_mode: { post: true, check: (v, f) => (v === null || IPV6_MODES.includes(v as string) ? v : f(`'${String(v)}' is not in ${JSON.stringify(IPV6_MODES)}`)) },
  ipv6_address_mode: { post: true, check: (v, f) => (v === null || IPV6_MODES.includes(v as string) ? v : f(`'${String(v)}' is not in ${JSON.stringify(IPV6_MODES)}`)) },
  subnetpool_id: { post: true, check: (v, f) => (v === null ? null : f('subnet pools are not supported')) },
  use_default_subnet_pool: { post: true, check: (v, f) => (v === false ? false : f('subnet pools are not supported')) },
  segment_id: { post: true, check: (v, f) => (v === null ? null : f('segments are not supported')) },
  service_types: { post: true, put: true, check: (v, f) => (Array.isArray(v) && v.length === 0 ? [] : f('service types are not supported')) },
  project_id: { post: true, check: projectId },
  tenant_id: { post: true, check: projectId },
  tags: { post: true, check: tagList },
};

export class Networks {
  constructor(private readonly svc: NetworkService) {}
  private get ctx() {
    return this.svc.ctx;
  }

  // ------------------------------------------------------------------ networks

  /** Project networks, shared networks and external networks are visible; everything to an admin. */
  canSee(caller: Caller, n: NetworkRow): boolean {
    return caller.admin || n.project_id === caller.projectId || bool(n.shared) || bool(n.external);
  }

  async get(caller: Caller, id: string, tx: Tx = this.ctx.db): Promise<NetworkRow> {
    const n = await (tx as NetDb).selectFrom('neutron_networks').selectAll().where('id', '=', id).executeTakeFirst();
    if (!n || !this.canSee(caller, n)) throw notFound('network', id);
    return n;
  }

  async list(caller: Caller, pre: { ids?: string[] } = {}): Promise<View[]> {
    let q = this.ctx.db.selectFrom('neutron_networks').selectAll();
    if (pre.ids) q = q.where('id', 'in', pre.ids.length ? pre.ids : ['-']);
    if (!caller.admin) q = q.where((eb) => eb.or([eb('project_id', '=', caller.projectId ?? '-'), eb('shared', '=', 1), eb('external', '=', 1)]));
    return networkViews(this.ctx.db, await q.execute(), this.ctx.availabilityZone);
  }

  async view(row: NetworkRow): Promise<View> {
    return (await networkViews(this.ctx.db, [row], this.ctx.availabilityZone))[0]!;
  }

  static checkCreate(body: unknown): Body {
    return checkBody('network', body, NETWORK_ATTRS, 'POST');
  }
  static checkUpdate(body: unknown): Body {
    return checkBody('network', body, NETWORK_ATTRS, 'PUT');
  }

  async create(caller: Caller, b: Body): Promise<View> {
    const project = (b.project_id as string | undefined) ?? caller.projectId;
    if (!project) throw badRequest('A project is required to create a network.');
    const external = (b['router:external'] as boolean | undefined) ?? false;
    const seg = this.segment(b);
    if (b.availability_zone_hints && (b.availability_zone_hints as string[]).some((z) => z !== this.ctx.availabilityZone))
      throw nerr(404, 'AvailabilityZoneNotFound', `AvailabilityZone ${(b.availability_zone_hints as string[]).find((z) => z !== this.ctx.availabilityZone)} could not be found.`);
    const maxMtu = seg.type === 'vxlan' ? PHYSNET_MTU - VXLAN_OVERHEAD : PHYSNET_MTU;
    const mtu = (b.mtu as number | undefined) ?? maxMtu;
    if (mtu > maxMtu) throw invalidInput(`Requested MTU is too big, maximum is ${maxMtu}`);
    const id = uuid();
    const now = Date.now();
    await this.ctx.tx(async (tx) => {
      await this.ctx.checkQuota(tx, project, 'network');
      const s = await this.allocateSegment(tx, seg);
      await tx
        .insertInto('neutron_networks')
        .values({
          id,
          project_id: project,
          name: (b.name as string | undefined) ?? '',
          description: (b.description as string | undefined) ?? '',
          created_at: now,
          updated_at: now,
          revision_number: 1,
          admin_state_up: int((b.admin_state_up as boolean | undefined) ?? true),
          shared: int((b.shared as boolean | undefined) ?? false),
          external: int(external),
          mtu,
          network_type: s.type,
          physical_network: s.physnet,
          segmentation_id: s.segId,
          port_security_enabled: int((b.port_security_enabled as boolean | undefined) ?? true),
          dns_domain: (b.dns_domain as string | undefined) ?? '',
          is_default: 0,
          dhcp_host: null,
        })
        .execute();
      if (b.tags) await this.svc.tags.setTx(tx, 'networks', id, b.tags as string[]);
    });
    this.ctx.onChange();
    return this.view(await this.get({ ...caller, admin: true }, id));
  }

  private segment(b: Body): { type: (typeof NETWORK_TYPES)[number]; physnet: string | null; segId: number | null } {
    const type = b['provider:network_type'] as string | undefined;
    const physnet = (b['provider:physical_network'] as string | null | undefined) ?? null;
    const segId = (b['provider:segmentation_id'] as number | null | undefined) ?? null;
    if (type === undefined) {
      if (physnet !== null || segId !== null) throw invalidInput('provider:network_type required');
      return { type: 'local', physnet: null, segId: null };
    }
    if (!(NETWORK_TYPES as readonly string[]).includes(type)) throw invalidInput(`network_type value '${type}' not supported`);
    switch (type) {
      case 'flat':
        if (!physnet) throw invalidInput('physical_network required for flat provider network');
        if (segId !== null) throw invalidInput('segmentation_id specified for flat provider network');
        return { type, physnet, segId: null };
      case 'local':
        if (physnet !== null || segId !== null) throw invalidInput(`${physnet !== null ? 'physical_network' : 'segmentation_id'} prohibited for local provider network`);
        return { type, physnet: null, segId: null };
      case 'vlan':
        if (!physnet) throw invalidInput('physical_network required for VLAN provider network');
        if (segId !== null && (segId < 1 || segId > 4094)) throw invalidInput(`segmentation_id out of range (1 through 4094)`);
        return { type, physnet, segId };
      default:
        if (physnet !== null) throw invalidInput('physical_network prohibited for vxlan provider network');
        if (segId !== null && segId < 1) throw invalidInput(`segmentation_id out of range (1 through 16777215)`);
        return { type: 'vxlan', physnet: null, segId };
    }
  }

  /** Checks the segment is free, or picks the lowest free VLAN/VNI. */
  private async allocateSegment(tx: Tx, s: { type: string; physnet: string | null; segId: number | null }) {
    const db = tx as NetDb;
    if (s.type === 'flat') {
      const used = await db.selectFrom('neutron_networks').select('id').where('network_type', '=', 'flat').where('physical_network', '=', s.physnet).executeTakeFirst();
      if (used) throw conflict('FlatNetworkInUse', `Unable to create the flat network. Physical network ${s.physnet} is in use.`);
      return s;
    }
    if (s.type !== 'vlan' && s.type !== 'vxlan') return s;
    let q = db.selectFrom('neutron_networks').select('segmentation_id').where('network_type', '=', s.type);
    if (s.type === 'vlan') q = q.where('physical_network', '=', s.physnet);
    const used = new Set((await q.execute()).map((r) => r.segmentation_id));
    if (s.segId !== null) {
      if (used.has(s.segId))
        throw s.type === 'vlan'
          ? conflict('VlanIdInUse', `Unable to create the network. The VLAN ${s.segId} on physical network ${s.physnet} is in use.`)
          : conflict('TunnelIdInUse', `Unable to create the network. The tunnel ID ${s.segId} is in use.`);
      return s;
    }
    const max = s.type === 'vlan' ? 4094 : 16777215;
    for (let i = 1; i <= max; i++) if (!used.has(i)) return { ...s, segId: i };
    throw conflict('NoNetworkAvailable', 'Unable to create the network. No tenant network is available for allocation.');
  }

  async update(caller: Caller, n: NetworkRow, b: Body): Promise<View> {
    if (b.mtu !== undefined) {
      const maxMtu = n.network_type === 'vxlan' ? PHYSNET_MTU - VXLAN_OVERHEAD : PHYSNET_MTU;
      if ((b.mtu as number) > maxMtu) throw invalidInput(`Requested MTU is too big, maximum is ${maxMtu}`);
    }
    await this.ctx.tx(async (tx) => {
      if (b['router:external'] === false && bool(n.external)) {
        const inUse = await tx.selectFrom('neutron_ports').select('id').where('network_id', '=', n.id).where('device_owner', 'in', ['network:router_gateway', 'network:floatingip']).executeTakeFirst();
        if (inUse) throw conflict('ExternalNetworkInUse', `External network ${n.id} cannot be updated to be made non-external, since it has existing gateway ports.`);
      }
      if (b.shared === false && bool(n.shared)) {
        const other = await tx.selectFrom('neutron_ports').select('id').where('network_id', '=', n.id).where('project_id', '!=', n.project_id).where('project_id', '!=', '').where('device_owner', 'not like', 'network:%').executeTakeFirst();
        if (other) throw conflict('InvalidSharedSetting', `Unable to reconfigure sharing settings for network ${n.id}. Multiple tenants are using it.`);
      }
      const set: Partial<NetworkRow> = { updated_at: Date.now(), revision_number: n.revision_number + 1 };
      if (b.name !== undefined) set.name = b.name as string;
      if (b.description !== undefined) set.description = b.description as string;
      if (b.admin_state_up !== undefined) set.admin_state_up = int(b.admin_state_up as boolean);
      if (b.shared !== undefined) set.shared = int(b.shared as boolean);
      if (b['router:external'] !== undefined) set.external = int(b['router:external'] as boolean);
      if (b.mtu !== undefined) set.mtu = b.mtu as number;
      if (b.port_security_enabled !== undefined) set.port_security_enabled = int(b.port_security_enabled as boolean);
      if (b.dns_domain !== undefined) set.dns_domain = b.dns_domain as string;
      await tx.updateTable('neutron_networks').set(set).where('id', '=', n.id).execute();
    });
    this.ctx.onChange();
    return this.view(await this.get({ ...caller, admin: true }, n.id));
  }

  async delete(n: NetworkRow): Promise<void> {
    await this.ctx.tx(async (tx) => {
      const ports = await tx.selectFrom('neutron_ports').select(['id', 'device_owner']).where('network_id', '=', n.id).execute();
      if (ports.some((p) => p.device_owner !== 'network:dhcp'))
        throw conflict('NetworkInUse', `Unable to complete operation on network ${n.id}. There are one or more ports still in use on the network.`);
      for (const p of ports) await this.svc.ports.deleteTx(tx, p.id);
      const subnets = await tx.selectFrom('neutron_subnets').select('id').where('network_id', '=', n.id).execute();
      for (const s of subnets) await this.deleteSubnetRows(tx, s.id);
      await tx.deleteFrom('neutron_tags').where('resource_type', '=', 'networks').where('resource_id', '=', n.id).execute();
      await tx.deleteFrom('neutron_networks').where('id', '=', n.id).execute();
    });
    this.ctx.onChange();
  }

  // ------------------------------------------------------------------ subnets

  /** A subnet is visible with its network (Neutron: owner, admin, or a shared network). */
  async getSubnet(caller: Caller, id: string, tx: Tx = this.ctx.db): Promise<SubnetRow> {
    const s = await (tx as NetDb).selectFrom('neutron_subnets').selectAll().where('id', '=', id).executeTakeFirst();
    if (!s) throw notFound('subnet', id);
    if (!caller.admin && s.project_id !== caller.projectId) {
      const n = await (tx as NetDb).selectFrom('neutron_networks').select(['shared', 'project_id']).where('id', '=', s.network_id).executeTakeFirst();
      if (!n || (!bool(n.shared) && n.project_id !== caller.projectId)) throw notFound('subnet', id);
    }
    return s;
  }

  async listSubnets(caller: Caller, pre: { network_id?: string[]; ids?: string[] } = {}): Promise<View[]> {
    let q = this.ctx.db.selectFrom('neutron_subnets').selectAll('neutron_subnets');
    if (pre.ids) q = q.where('neutron_subnets.id', 'in', pre.ids.length ? pre.ids : ['-']);
    if (pre.network_id) q = q.where('neutron_subnets.network_id', 'in', pre.network_id.length ? pre.network_id : ['-']);
    if (!caller.admin)
      q = q
        .innerJoin('neutron_networks', 'neutron_networks.id', 'neutron_subnets.network_id')
        .where((eb) => eb.or([eb('neutron_subnets.project_id', '=', caller.projectId ?? '-'), eb('neutron_networks.project_id', '=', caller.projectId ?? '-'), eb('neutron_networks.shared', '=', 1)]));
    return subnetViews(this.ctx.db, await q.execute());
  }

  async subnetView(row: SubnetRow): Promise<View> {
    return (await subnetViews(this.ctx.db, [row]))[0]!;
  }

  static checkSubnetCreate(body: unknown): Body {
    return checkBody('subnet', body, SUBNET_ATTRS, 'POST');
  }
  static checkSubnetUpdate(body: unknown): Body {
    return checkBody('subnet', body, SUBNET_ATTRS, 'PUT');
  }

  /** Validates and normalizes the address settings of a subnet (create and update share this). */
  private addressing(cidr: Cidr, b: Body, current?: { gateway: bigint | null; pools: IpRange[] }) {
    const version = cidr.version;
    let gateway: bigint | null;
    if (b.gateway_ip === undefined) gateway = current ? current.gateway : cidr.prefixlen >= bitsFor(version) - 1 ? null : cidr.network + 1n;
    else if (b.gateway_ip === null) gateway = null;
    else {
      const g = parseIp(b.gateway_ip);
      if (!g) throw badRequest(`Invalid input for gateway_ip. Reason: '${String(b.gateway_ip)}' is not a valid IP address.`);
      if (g.version !== version) throw invalidInput(`${String(b.gateway_ip)} is not a valid IPv${version} address`);
      const special = g.value === cidr.network || (version === 4 && g.value === lastAddress(cidr) && cidr.prefixlen < 31);
      if (!cidrContains(cidr, g) || special) throw invalidInput('Gateway is not valid on subnet');
      gateway = g.value;
    }
    let pools: IpRange[];
    if (b.allocation_pools === undefined) pools = current ? current.pools : defaultPools(cidr, gateway);
    else {
      if (!Array.isArray(b.allocation_pools)) throw badRequest(`Invalid input for allocation_pools. Reason: Invalid data format for IP pool: '${JSON.stringify(b.allocation_pools)}'.`);
      const [first, last] = (() => {
        const d = defaultPools(cidr, null);
        return [d[0]?.start ?? cidr.network, d[d.length - 1]?.end ?? cidr.network];
      })();
      pools = (b.allocation_pools as unknown[]).map((p) => {
        const o = p as { start?: unknown; end?: unknown };
        if (typeof p !== 'object' || p === null || Object.keys(p).some((k) => k !== 'start' && k !== 'end'))
          throw badRequest(`Invalid input for allocation_pools. Reason: Invalid data format for IP pool: '${JSON.stringify(p)}'.`);
        const s = parseIp(o.start);
        const e = parseIp(o.end);
        if (!s || !e) throw badRequest(`Invalid input for allocation_pools. Reason: Invalid data format for IP pool: '${JSON.stringify(p)}'.`);
        const text = `${String(o.start)}-${String(o.end)}`;
        if (s.version !== version || e.version !== version || s.value > e.value) throw nerr(400, 'InvalidAllocationPool', `The allocation pool ${text} is not valid.`);
        if (s.value < first || e.value > last) throw nerr(400, 'OutOfBoundsAllocationPool', `The allocation pool ${text} spans beyond the subnet cidr ${formatCidr(cidr)}.`);
        return { start: s.value, end: e.value };
      });
      const sorted = [...pools].sort((a, c) => (a.start < c.start ? -1 : 1));
      for (let i = 1; i < sorted.length; i++)
        if (sorted[i]!.start <= sorted[i - 1]!.end)
          throw conflict('OverlappingAllocationPools', `Found overlapping allocation pools: ${rangeText(version, sorted[i]!)} and ${rangeText(version, sorted[i - 1]!)} for subnet ${formatCidr(cidr)}.`);
    }
    if (gateway !== null) {
      const hit = pools.find((p) => gateway! >= p.start && gateway! <= p.end);
      if (hit && (b.allocation_pools !== undefined || b.gateway_ip !== undefined))
        throw conflict('GatewayConflictWithAllocationPools', `Gateway ip ${formatIp(version, gateway)} conflicts with allocation pool ${rangeText(version, hit)}`);
    }
    let dns: string[] | undefined;
    if (b.dns_nameservers !== undefined) {
      dns = (b.dns_nameservers as string[]).map((d) => {
        const ip = parseIp(d);
        if (!ip) throw badRequest(`Invalid input for dns_nameservers. Reason: '${d}' is not a valid nameserver. '${d}' is not a valid IP address.`);
        return formatIp(ip.version, ip.value);
      });
      if (new Set(dns).size !== dns.length) throw badRequest(`Invalid input for dns_nameservers. Reason: Duplicate nameserver '${dns.find((d, i) => dns!.indexOf(d) !== i)}'.`);
      if (dns.length > MAX_DNS_NAMESERVERS) throw badRequest(`Unable to complete operation for subnet. The number of DNS nameservers exceeds the limit ${MAX_DNS_NAMESERVERS}.`, 'DNSNameServersExhausted');
    }
    let routes: Array<{ destination: string; nexthop: string }> | undefined;
    if (b.host_routes !== undefined) {
      if (!Array.isArray(b.host_routes)) throw badRequest(`Invalid input for host_routes. Reason: '${JSON.stringify(b.host_routes)}' is not a list.`);
      routes = (b.host_routes as unknown[]).map((r) => {
        const o = r as { destination?: unknown; nexthop?: unknown };
        const d = parseCidr(o?.destination);
        const n = parseIp(o?.nexthop);
        if (typeof r !== 'object' || r === null || !d || !n || Object.keys(r).some((k) => k !== 'destination' && k !== 'nexthop'))
          throw badRequest(`Invalid input for host_routes. Reason: Invalid data format for hostroute: '${JSON.stringify(r)}'.`);
        if (d.version !== version || n.version !== version) throw badRequest(`Invalid input for host_routes. Reason: Invalid data format for hostroute: '${JSON.stringify(r)}'.`);
        return { destination: formatCidr(d), nexthop: formatIp(n.version, n.value) };
      });
      if (routes.length > MAX_HOST_ROUTES) throw badRequest(`Unable to complete operation for subnet. The number of host routes exceeds the limit ${MAX_HOST_ROUTES}.`, 'HostRoutesExhausted');
    }
    return { gateway, pools, dns, routes };
  }

  async createSubnet(caller: Caller, net: NetworkRow, b: Body): Promise<View> {
    if (b.ip_version === undefined) throw badRequest("Invalid input for ip_version. Reason: 'None' is not in [4, 6].");
    if (b.cidr === undefined) throw badRequest('Bad subnet request: a subnetpool must be specified in the absence of a cidr.');
    const strict = parseCidr(b.cidr, true);
    if (!strict) {
      const loose = parseCidr(b.cidr);
      throw badRequest(
        loose
          ? `Invalid input for cidr. Reason: '${String(b.cidr)}' isn't a recognized IP subnet cidr, '${formatCidr(loose)}' is recommended.`
          : `Invalid input for cidr. Reason: '${String(b.cidr)}' is not a valid IP subnet.`,
      );
    }
    if (strict.version !== b.ip_version) throw invalidInput(`Cidr ${String(b.cidr)} does not match ip_version ${String(b.ip_version)}`);
    if (strict.version === 4 && strict.prefixlen === 0) throw invalidInput('0 is not allowed as CIDR prefix length');
    if (strict.version === 4 && (b.ipv6_ra_mode != null || b.ipv6_address_mode != null)) throw invalidInput('ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or the subnet is IPv4');
    if (b.ipv6_ra_mode != null && b.ipv6_address_mode != null && b.ipv6_ra_mode !== b.ipv6_address_mode)
      throw invalidInput(`ipv6_ra_mode set to '${String(b.ipv6_ra_mode)}' with ipv6_address_mode set to '${String(b.ipv6_address_mode)}' is not valid. If both attributes are set, they must be the same value`);
    if ((b.ipv6_address_mode === 'slaac' || b.ipv6_address_mode === 'dhcpv6-stateless') && strict.prefixlen !== 64)
      throw invalidInput(`Invalid CIDR ${formatCidr(strict)} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64`);
    const addr = this.addressing(strict, b);
    const project = (b.project_id as string | undefined) ?? caller.projectId ?? net.project_id;
    const id = uuid();
    const now = Date.now();
    const enableDhcp = (b.enable_dhcp as boolean | undefined) ?? true;
    await this.ctx.tx(async (tx) => {
      await this.ctx.checkQuota(tx, project, 'subnet');
      const others = await tx.selectFrom('neutron_subnets').select(['id', 'cidr']).where('network_id', '=', net.id).execute();
      for (const o of others)
        if (cidrsOverlap(parseCidr(o.cidr)!, strict))
          throw invalidInput(`Requested subnet with cidr: ${formatCidr(strict)} for network: ${net.id} overlaps with another subnet`);
      await tx
        .insertInto('neutron_subnets')
        .values({
          id,
          project_id: project,
          name: (b.name as string | undefined) ?? '',
          description: (b.description as string | undefined) ?? '',
          created_at: now,
          updated_at: now,
          revision_number: 0,
          network_id: net.id,
          ip_version: strict.version,
          cidr: formatCidr(strict),
          gateway_ip: addr.gateway === null ? null : formatIp(strict.version, addr.gateway),
          enable_dhcp: int(enableDhcp),
          ipv6_ra_mode: (b.ipv6_ra_mode as string | null | undefined) ?? null,
          ipv6_address_mode: (b.ipv6_address_mode as string | null | undefined) ?? null,
          dns_nameservers: JSON.stringify(addr.dns ?? []),
          host_routes: JSON.stringify(addr.routes ?? []),
        })
        .execute();
      await this.writePools(tx, id, strict, addr.pools);
      if (b.tags) await this.svc.tags.setTx(tx, 'subnets', id, b.tags as string[]);
      await tx.updateTable('neutron_networks').set({ revision_number: net.revision_number + 1, updated_at: now }).where('id', '=', net.id).execute();
      if (enableDhcp) await this.ensureDhcpPort(tx, net, id);
    });
    this.ctx.onChange();
    return this.subnetView(await this.getSubnet({ ...caller, admin: true }, id));
  }

  private async writePools(tx: Tx, subnetId: string, cidr: Cidr, pools: IpRange[]) {
    await (tx as NetDb).deleteFrom('neutron_allocation_pools').where('subnet_id', '=', subnetId).execute();
    let position = 0;
    for (const p of pools)
      await (tx as NetDb)
        .insertInto('neutron_allocation_pools')
        .values({ subnet_id: subnetId, first_ip: formatIp(cidr.version, p.start), last_ip: formatIp(cidr.version, p.end), position: position++ })
        .execute();
  }

  /**
   * The network's DHCP port (device_owner network:dhcp) gets an address on
   * every DHCP-enabled subnet; it is created with the first such subnet.
   */
  async ensureDhcpPort(tx: Tx, net: NetworkRow, subnetId: string): Promise<void> {
    const db = tx as NetDb;
    const existing = await db.selectFrom('neutron_ports').select('id').where('network_id', '=', net.id).where('device_owner', '=', 'network:dhcp').executeTakeFirst();
    if (!existing) {
      await this.svc.ports.createTx(tx, {
        project_id: net.project_id,
        network: net,
        device_owner: 'network:dhcp',
        device_id: `dhcp-${net.id}`,
        fixed_ips: [{ subnet_id: subnetId }],
        skipQuota: true,
      });
      return;
    }
    const has = await db.selectFrom('neutron_ip_allocations').select('ip_address').where('port_id', '=', existing.id).where('subnet_id', '=', subnetId).executeTakeFirst();
    if (!has) await this.svc.ports.addFixedIpTx(tx, existing.id, net.id, subnetId);
  }

  async updateSubnet(caller: Caller, s: SubnetRow, b: Body): Promise<View> {
    const cidr = parseCidr(s.cidr)!;
    const pools = await subnetInfos(this.ctx.db, [s]);
    const addr = this.addressing(cidr, b, { gateway: pools[0]!.gateway, pools: pools[0]!.pools });
    await this.ctx.tx(async (tx) => {
      if (b.gateway_ip !== undefined && addr.gateway !== pools[0]!.gateway && s.gateway_ip) {
        const routerOnGw = await tx
          .selectFrom('neutron_ip_allocations')
          .innerJoin('neutron_ports', 'neutron_ports.id', 'neutron_ip_allocations.port_id')
          .select('neutron_ports.id')
          .where('neutron_ip_allocations.subnet_id', '=', s.id)
          .where('neutron_ip_allocations.ip_address', '=', s.gateway_ip)
          .where('neutron_ports.device_owner', 'in', [...ROUTER_OWNERS])
          .executeTakeFirst();
        if (routerOnGw) throw conflict('GatewayIpInUse', `Gateway ip ${s.gateway_ip} is in use by port ${routerOnGw.id}. Unable to update.`);
      }
      const set: Partial<SubnetRow> = { updated_at: Date.now(), revision_number: s.revision_number + 1 };
      if (b.name !== undefined) set.name = b.name as string;
      if (b.description !== undefined) set.description = b.description as string;
      if (b.gateway_ip !== undefined) set.gateway_ip = addr.gateway === null ? null : formatIp(cidr.version, addr.gateway);
      if (addr.dns) set.dns_nameservers = JSON.stringify(addr.dns);
      if (addr.routes) set.host_routes = JSON.stringify(addr.routes);
      if (b.enable_dhcp !== undefined) set.enable_dhcp = int(b.enable_dhcp as boolean);
      await tx.updateTable('neutron_subnets').set(set).where('id', '=', s.id).execute();
      if (b.allocation_pools !== undefined) await this.writePools(tx, s.id, cidr, addr.pools);
      if (b.enable_dhcp !== undefined && (b.enable_dhcp as boolean) !== bool(s.enable_dhcp)) {
        const net = await tx.selectFrom('neutron_networks').selectAll().where('id', '=', s.network_id).executeTakeFirstOrThrow();
        if (b.enable_dhcp) await this.ensureDhcpPort(tx, net, s.id);
        else await this.dropDhcpAddress(tx, s);
      }
    });
    this.ctx.onChange();
    return this.subnetView(await this.getSubnet({ ...caller, admin: true }, s.id));
  }

  private async dropDhcpAddress(tx: Tx, s: SubnetRow): Promise<void> {
    const db = tx as NetDb;
    const dhcp = await db.selectFrom('neutron_ports').select('id').where('network_id', '=', s.network_id).where('device_owner', '=', 'network:dhcp').executeTakeFirst();
    if (!dhcp) return;
    await db.deleteFrom('neutron_ip_allocations').where('port_id', '=', dhcp.id).where('subnet_id', '=', s.id).execute();
    const left = await db.selectFrom('neutron_ip_allocations').select('ip_address').where('port_id', '=', dhcp.id).executeTakeFirst();
    if (!left) await this.svc.ports.deleteTx(tx, dhcp.id);
  }

  async deleteSubnet(s: SubnetRow): Promise<void> {
    await this.ctx.tx(async (tx) => {
      const users = await tx
        .selectFrom('neutron_ip_allocations')
        .innerJoin('neutron_ports', 'neutron_ports.id', 'neutron_ip_allocations.port_id')
        .select(['neutron_ports.id', 'neutron_ports.device_owner'])
        .where('neutron_ip_allocations.subnet_id', '=', s.id)
        .execute();
      if (users.some((u) => u.device_owner !== 'network:dhcp'))
        throw conflict('SubnetInUse', `Unable to complete operation on subnet ${s.id}: One or more ports have an IP allocation from this subnet.`);
      await this.dropDhcpAddress(tx, s);
      await this.deleteSubnetRows(tx, s.id);
      const net = await tx.selectFrom('neutron_networks').select(['revision_number']).where('id', '=', s.network_id).executeTakeFirst();
      if (net) await tx.updateTable('neutron_networks').set({ revision_number: net.revision_number + 1, updated_at: Date.now() }).where('id', '=', s.network_id).execute();
    });
    this.ctx.onChange();
  }

  private async deleteSubnetRows(tx: Tx, id: string): Promise<void> {
    const db = tx as NetDb;
    await db.deleteFrom('neutron_ip_allocations').where('subnet_id', '=', id).execute();
    await db.deleteFrom('neutron_allocation_pools').where('subnet_id', '=', id).execute();
    await db.deleteFrom('neutron_tags').where('resource_type', '=', 'subnets').where('resource_id', '=', id).execute();
    await db.deleteFrom('neutron_subnets').where('id', '=', id).execute();
  }

  /** Subnet rows of a network, oldest first (IPAM's order of preference). */
  async subnetsOf(tx: Tx, networkId: string): Promise<SubnetRow[]> {
    return (tx as NetDb).selectFrom('neutron_subnets').selectAll().where('network_id', '=', networkId).orderBy('created_at').orderBy('id').execute();
  }

  dnsOf(s: SubnetRow): string[] {
    return parseJson<string[]>(s.dns_nameservers, []);
  }
}

const bitsFor = (v: 4 | 6) => (v === 4 ? 32 : 128);
const rangeText = (v: 4 | 6, r: IpRange) => `${formatIp(v, r.start)}-${formatIp(v, r.end)}`;
