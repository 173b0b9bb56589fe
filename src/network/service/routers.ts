import { uuid } from '../../core/ids.js';
import { bool, int } from '../../core/db.js';
import type { FloatingIpRow, NetworkRow, PortRow, RouterRow, SubnetRow } from '../store/tables.js';
import type { NetworkService } from './service.js';
import type { Caller, NetDb, Tx } from './context.js';
import { parseJson } from './context.js';
import { badRequest, conflict, nerr, notFound } from './errors.js';
import { boolean, checkBody, list, projectId, str, tagList, type AttrSpec, type Body } from './validate.js';
import { floatingIpViews, routerViews, type View } from './views.js';
import { cidrContains, cidrsOverlap, formatCidr, formatIp, parseCidr, parseIp } from '../ip.js';
import type { FixedIpRequest } from './ipam.js';

const MAX_ROUTES = 30;

const gatewayInfo = (v: unknown, fail: (r: string) => never): Record<string, unknown> | null => {
  if (v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) return fail(`'${JSON.stringify(v)}' is not a dictionary`);
  const o = v as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !['network_id', 'enable_snat', 'external_fixed_ips', 'qos_policy_id'].includes(k));
  if (extra.length) return fail(`Unrecognized attribute(s) '${extra.join(', ')}'`);
  if (Object.keys(o).length === 0) return null;
  if (typeof o.network_id !== 'string') return fail(`'${String(o.network_id)}' is not a valid UUID`);
  if (o.enable_snat !== undefined) o.enable_snat = boolean(o.enable_snat, fail);
  if (o.external_fixed_ips !== undefined) {
    if (!Array.isArray(o.external_fixed_ips)) return fail(`'${JSON.stringify(o.external_fixed_ips)}' is not a list`);
    for (const f of o.external_fixed_ips as unknown[]) {
      if (typeof f !== 'object' || f === null || Object.keys(f).some((k) => k !== 'subnet_id' && k !== 'ip_address')) return fail(`Invalid data format for fixed IP: '${JSON.stringify(f)}'`);
      const ip = (f as { ip_address?: unknown }).ip_address;
      if (ip !== undefined && !parseIp(ip)) return fail(`'${String(ip)}' is not a valid IP address`);
    }
  }
  if (o.qos_policy_id !== undefined && o.qos_policy_id !== null) return fail('QoS policies are not supported');
  return o;
};

const ROUTER_ATTRS: Record<string, AttrSpec> = {
  name: { post: true, put: true, check: str(255) },
  description: { post: true, put: true, check: str(255) },
  admin_state_up: { post: true, put: true, check: boolean },
  external_gateway_info: { post: true, put: true, check: gatewayInfo },
  routes: { put: true },
  availability_zone_hints: { post: true, check: list(str(255)) },
  project_id: { post: true, check: projectId },
  tenant_id: { post: true, check: projectId },
  tags: { post: true, check: tagList },
};

const FIP_ATTRS: Record<string, AttrSpec> = {
  floating_network_id: { post: true, check: str(255) },
  floating_ip_address: { post: true, check: (v, f) => (parseIp(v) ? v : f(`'${String(v)}' is not a valid IP address`)) },
  subnet_id: { post: true, check: (v, f) => (v === null ? null : str(255)(v, f)) },
  port_id: { post: true, put: true, check: (v, f) => (v === null ? null : str(255)(v, f)) },
  fixed_ip_address: { post: true, put: true, check: (v, f) => (v === null ? null : parseIp(v) ? v : f(`'${String(v)}' is not a valid IP address`)) },
  description: { post: true, put: true, check: str(255) },
  dns_name: { post: true, check: str(255) },
  dns_domain: { post: true, check: str(255) },
  qos_policy_id: { post: true, put: true, check: (v, f) => (v === null ? null : f('QoS policies are not supported')) },
  project_id: { post: true, check: projectId },
  tenant_id: { post: true, check: projectId },
  tags: { post: true, check: tagList },
};

export interface InterfaceInfo {
  id: string;
  tenant_id: string;
  project_id: string;
  port_id: string;
  network_id: string;
  subnet_id: string;
  subnet_ids: string[];
}

export class Routers {
  constructor(private readonly svc: NetworkService) {}
  private get ctx() {
    return this.svc.ctx;
  }

  static checkCreate(b: unknown): Body {
    return checkBody('router', b, ROUTER_ATTRS, 'POST');
  }
  static checkUpdate(b: unknown): Body {
    return checkBody('router', b, ROUTER_ATTRS, 'PUT');
  }
  static checkFipCreate(b: unknown): Body {
    return checkBody('floatingip', b, FIP_ATTRS, 'POST');
  }
  static checkFipUpdate(b: unknown): Body {
    return checkBody('floatingip', b, FIP_ATTRS, 'PUT');
  }

  async get(caller: Caller, id: string, tx: Tx = this.ctx.db): Promise<RouterRow> {
    const r = await (tx as NetDb).selectFrom('neutron_routers').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r || (!caller.admin && r.project_id !== caller.projectId)) throw notFound('router', id);
    return r;
  }

  async list(caller: Caller, pre: { ids?: string[] } = {}): Promise<View[]> {
    let q = this.ctx.db.selectFrom('neutron_routers').selectAll();
    if (pre.ids) q = q.where('id', 'in', pre.ids.length ? pre.ids : ['-']);
    if (!caller.admin) q = q.where('project_id', '=', caller.projectId ?? '-');
    return routerViews(this.ctx.db, await q.execute(), this.ctx.availabilityZone);
  }

  async view(r: RouterRow): Promise<View> {
    return (await routerViews(this.ctx.db, [r], this.ctx.availabilityZone))[0]!;
  }
  private async viewById(id: string): Promise<View> {
    return this.view(await this.get({ projectId: null, userId: null, admin: true }, id));
  }

  async create(caller: Caller, b: Body): Promise<View> {
    const project = (b.project_id as string | undefined) ?? caller.projectId;
    if (!project) throw badRequest('A project is required to create a router.');
    if (b.availability_zone_hints && (b.availability_zone_hints as string[]).some((z) => z !== this.ctx.availabilityZone))
      throw nerr(404, 'AvailabilityZoneNotFound', `AvailabilityZone ${(b.availability_zone_hints as string[]).find((z) => z !== this.ctx.availabilityZone)} could not be found.`);
    const id = uuid();
    await this.ctx.tx(async (tx) => {
      await this.ctx.checkQuota(tx, project, 'router');
      const now = Date.now();
      await tx
        .insertInto('neutron_routers')
        .values({ id, project_id: project, name: (b.name as string | undefined) ?? '', description: (b.description as string | undefined) ?? '', created_at: now, updated_at: now, revision_number: 1, admin_state_up: int((b.admin_state_up as boolean | undefined) ?? true), status: 'ACTIVE', gw_port_id: null, enable_snat: 1, routes: '[]', l3_host: null })
        .execute();
      const gw = b.external_gateway_info as Record<string, unknown> | null | undefined;
      if (gw) await this.setGatewayTx(tx, caller, await this.get({ ...caller, admin: true }, id, tx), gw);
      if (b.tags) await this.svc.tags.setTx(tx, 'routers', id, b.tags as string[]);
    });
    this.ctx.onChange();
    return this.viewById(id);
  }

  /** Sets, changes or clears (gw = null) the router's external gateway. */
  private async setGatewayTx(tx: Tx, caller: Caller, r: RouterRow, gw: Record<string, unknown> | null): Promise<void> {
    const db = tx as NetDb;
    const current = r.gw_port_id ? await db.selectFrom('neutron_ports').selectAll().where('id', '=', r.gw_port_id).executeTakeFirst() : undefined;
    const wantNet = gw ? (gw.network_id as string) : null;
    if (current && current.network_id !== wantNet) {
      const fips = await db.selectFrom('neutron_floatingips').select('id').where('router_id', '=', r.id).executeTakeFirst();
      if (fips) throw conflict('RouterExternalGatewayInUseByFloatingIp', `Gateway cannot be updated for router ${r.id}, since a gateway to external network ${current.network_id} is required by one or more floating IPs.`);
      await this.svc.ports.deleteTx(tx, current.id);
      await db.updateTable('neutron_routers').set({ gw_port_id: null }).where('id', '=', r.id).execute();
    }
    if (!gw) {
      await db.updateTable('neutron_routers').set({ enable_snat: 1 }).where('id', '=', r.id).execute();
      return;
    }
    const net = await db.selectFrom('neutron_networks').selectAll().where('id', '=', wantNet!).executeTakeFirst();
    if (!net || !this.svc.networks.canSee(caller, net)) throw notFound('network', wantNet!);
    if (!bool(net.external)) throw badRequest(`Bad router request: Network ${net.id} is not an external network.`);
    const fixed = gw.external_fixed_ips as FixedIpRequest[] | undefined;
    if (!current || current.network_id !== wantNet) {
      const subnets = await this.svc.networks.subnetsOf(tx, net.id);
      if (!fixed && subnets.length === 0) throw badRequest(`Bad router request: No subnets defined on the external network ${net.id}.`);
      const portId = await this.svc.ports.createTx(tx, { project_id: '', network: net, device_owner: 'network:router_gateway', device_id: r.id, fixed_ips: fixed, skipQuota: true });
      await db.insertInto('neutron_router_ports').values({ port_id: portId, router_id: r.id, port_type: 'network:router_gateway' }).execute();
      await db.updateTable('neutron_routers').set({ gw_port_id: portId }).where('id', '=', r.id).execute();
    } else if (fixed) {
      await this.svc.ports.replaceFixedIpsTx(tx, current, fixed);
    }
    await db.updateTable('neutron_routers').set({ enable_snat: int((gw.enable_snat as boolean | undefined) ?? true) }).where('id', '=', r.id).execute();
  }

  async update(caller: Caller, r: RouterRow, b: Body): Promise<View> {
    let routes: Array<{ destination: string; nexthop: string }> | undefined;
    // "routes": null clears them, as Neutron reads it (an empty list).
    if (b.routes !== undefined) {
      if (b.routes === null) b = { ...b, routes: [] };
      if (!Array.isArray(b.routes)) throw badRequest(`Invalid input for routes. Reason: '${JSON.stringify(b.routes)}' is not a list.`);
      routes = (b.routes as unknown[]).map((x) => {
        const o = x as { destination?: unknown; nexthop?: unknown };
        const d = parseCidr(o?.destination);
        const n = parseIp(o?.nexthop);
        if (typeof x !== 'object' || x === null || !d || !n || d.version !== n.version) throw badRequest(`Invalid input for routes. Reason: Invalid data format for hostroute: '${JSON.stringify(x)}'.`);
        return { destination: formatCidr(d), nexthop: formatIp(n.version, n.value) };
      });
      if (routes.length > MAX_ROUTES) throw badRequest(`Unable to complete operation for ${r.id}. The number of routes exceeds the maximum ${MAX_ROUTES}.`, 'RoutesExhausted');
    }
    await this.ctx.tx(async (tx) => {
      if (b.external_gateway_info !== undefined) await this.setGatewayTx(tx, caller, r, b.external_gateway_info as Record<string, unknown> | null);
      if (routes) {
        const cidrs = (await this.interfaceSubnets(tx, r.id)).map((s) => parseCidr(s.cidr)!);
        for (const rt of routes)
          if (!cidrs.some((c) => cidrContains(c, parseIp(rt.nexthop)!)))
            throw nerr(400, 'InvalidRoutes', `Invalid format for routes: ${JSON.stringify(b.routes)}, the nexthop is not connected with router`);
      }
      const set: Partial<RouterRow> = { updated_at: Date.now(), revision_number: r.revision_number + 1 };
      if (b.name !== undefined) set.name = b.name as string;
      if (b.description !== undefined) set.description = b.description as string;
      if (b.admin_state_up !== undefined) set.admin_state_up = int(b.admin_state_up as boolean);
      if (routes) set.routes = JSON.stringify(routes);
      await tx.updateTable('neutron_routers').set(set).where('id', '=', r.id).execute();
    });
    this.ctx.onChange();
    return this.viewById(r.id);
  }

  async delete(r: RouterRow): Promise<void> {
    await this.ctx.tx(async (tx) => {
      const ifaces = await tx.selectFrom('neutron_router_ports').select('port_id').where('router_id', '=', r.id).where('port_type', '=', 'network:router_interface').executeTakeFirst();
      if (ifaces) throw conflict('RouterInUse', `Router ${r.id} still has ports`);
      const fips = await tx.selectFrom('neutron_floatingips').select('id').where('router_id', '=', r.id).executeTakeFirst();
      if (fips) throw conflict('RouterInUse', `Router ${r.id} still has ports`);
      if (r.gw_port_id) await this.svc.ports.deleteTx(tx, r.gw_port_id);
      await tx.deleteFrom('neutron_router_ports').where('router_id', '=', r.id).execute();
      await tx.deleteFrom('neutron_tags').where('resource_type', '=', 'routers').where('resource_id', '=', r.id).execute();
      await tx.deleteFrom('neutron_routers').where('id', '=', r.id).execute();
    });
    this.ctx.onChange();
  }

  /** Subnets the router has an interface on. */
  async interfaceSubnets(tx: Tx, routerId: string): Promise<Array<SubnetRow & { port_id: string }>> {
    return (tx as NetDb)
      .selectFrom('neutron_router_ports')
      .innerJoin('neutron_ip_allocations', 'neutron_ip_allocations.port_id', 'neutron_router_ports.port_id')
      .innerJoin('neutron_subnets', 'neutron_subnets.id', 'neutron_ip_allocations.subnet_id')
      .selectAll('neutron_subnets')
      .select('neutron_router_ports.port_id')
      .where('neutron_router_ports.router_id', '=', routerId)
      .where('neutron_router_ports.port_type', '=', 'network:router_interface')
      .execute();
  }

  /** Refuses a subnet the router is already on, or one overlapping another of its subnets. */
  private async checkAttachable(tx: Tx, r: RouterRow, subnets: SubnetRow[]): Promise<void> {
    const existing = await this.interfaceSubnets(tx, r.id);
    for (const s of subnets) {
      if (existing.some((e) => e.id === s.id)) throw badRequest(`Bad router request: Router already has a port on subnet ${s.id}.`);
      const c = parseCidr(s.cidr)!;
      const clash = existing.find((e) => cidrsOverlap(parseCidr(e.cidr)!, c));
      if (clash) throw badRequest(`Bad router request: Cidr ${s.cidr} of subnet ${s.id} overlaps with cidr ${clash.cidr} of subnet ${clash.id}.`);
    }
  }

  async addInterface(caller: Caller, r: RouterRow, b: unknown): Promise<InterfaceInfo> {
    const { subnet_id, port_id } = interfaceArgs(b);
    const out = await this.ctx.tx(async (tx) => {
      let port: PortRow;
      let subnets: SubnetRow[];
      if (port_id) {
        port = await this.svc.ports.get(caller, port_id, tx);
        if (port.device_id || port.device_owner)
          throw conflict('PortInUse', `Unable to complete operation on port ${port.id} for network ${port.network_id}. Port already has an attached device ${port.device_id || port.device_owner}.`);
        const ips = await tx.selectFrom('neutron_ip_allocations').select('subnet_id').where('port_id', '=', port.id).execute();
        if (ips.length === 0) throw badRequest('Bad router request: Router port must have at least one fixed IP.');
        subnets = await tx.selectFrom('neutron_subnets').selectAll().where('id', 'in', ips.map((i) => i.subnet_id)).execute();
        await this.checkAttachable(tx, r, subnets);
        await tx.deleteFrom('neutron_port_security_groups').where('port_id', '=', port.id).execute();
        await tx.updateTable('neutron_ports').set({ device_id: r.id, device_owner: 'network:router_interface', port_security_enabled: 0, updated_at: Date.now(), revision_number: port.revision_number + 1 }).where('id', '=', port.id).execute();
      } else {
        const s = await this.svc.networks.getSubnet(caller, subnet_id!, tx);
        if (!s.gateway_ip) throw badRequest('Bad router request: Subnet for router interface must have a gateway IP.');
        await this.checkAttachable(tx, r, [s]);
        const net = await tx.selectFrom('neutron_networks').selectAll().where('id', '=', s.network_id).executeTakeFirstOrThrow();
        if (bool(net.external)) throw badRequest(`Bad router request: Router interface cannot be attached to the external network ${net.id}; use it as the gateway.`);
        const id = await this.svc.ports.createTx(tx, { project_id: s.project_id, network: net, device_owner: 'network:router_interface', device_id: r.id, fixed_ips: [{ subnet_id: s.id, ip_address: s.gateway_ip }], skipQuota: true });
        port = await tx.selectFrom('neutron_ports').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
        subnets = [s];
      }
      await tx.insertInto('neutron_router_ports').values({ port_id: port.id, router_id: r.id, port_type: 'network:router_interface' }).execute();
      await tx.updateTable('neutron_routers').set({ revision_number: r.revision_number + 1, updated_at: Date.now() }).where('id', '=', r.id).execute();
      return { id: r.id, tenant_id: r.project_id, project_id: r.project_id, port_id: port.id, network_id: port.network_id, subnet_id: subnets[0]!.id, subnet_ids: subnets.map((s) => s.id) };
    });
    this.ctx.onChange();
    return out;
  }

  async removeInterface(caller: Caller, r: RouterRow, b: unknown): Promise<InterfaceInfo> {
    const { subnet_id, port_id } = interfaceArgs(b);
    const out = await this.ctx.tx(async (tx) => {
      const ifaces = await this.interfaceSubnets(tx, r.id);
      let hit: (typeof ifaces)[number] | undefined;
      if (port_id) {
        hit = ifaces.find((i) => i.port_id === port_id);
        if (!hit) throw nerr(404, 'RouterInterfaceNotFound', `Router ${r.id} does not have an interface with id ${port_id}`);
        if (subnet_id && !ifaces.some((i) => i.port_id === port_id && i.id === subnet_id))
          throw nerr(409, 'SubnetMismatchForPort', `Subnet ${subnet_id} does not match the subnet of port ${port_id}.`);
      } else {
        hit = ifaces.find((i) => i.id === subnet_id);
        if (!hit) {
          await this.svc.networks.getSubnet(caller, subnet_id!, tx);
          throw nerr(404, 'RouterInterfaceNotFoundForSubnet', `Router ${r.id} has no interface on subnet ${subnet_id}`);
        }
      }
      const onPort = ifaces.filter((i) => i.port_id === hit!.port_id);
      for (const s of onPort) {
        const fip = await tx
          .selectFrom('neutron_floatingips')
          .innerJoin('neutron_ip_allocations', (j) => j.onRef('neutron_ip_allocations.port_id', '=', 'neutron_floatingips.fixed_port_id').onRef('neutron_ip_allocations.ip_address', '=', 'neutron_floatingips.fixed_ip_address'))
          .select('neutron_floatingips.id')
          .where('neutron_floatingips.router_id', '=', r.id)
          .where('neutron_ip_allocations.subnet_id', '=', s.id)
          .executeTakeFirst();
        if (fip) throw conflict('RouterInterfaceInUseByFloatingIP', `Router interface for subnet ${s.id} on router ${r.id} cannot be deleted, as it is required by one or more floating IPs.`);
      }
      await this.svc.ports.deleteTx(tx, hit.port_id);
      await tx.updateTable('neutron_routers').set({ revision_number: r.revision_number + 1, updated_at: Date.now() }).where('id', '=', r.id).execute();
      return { id: r.id, tenant_id: r.project_id, project_id: r.project_id, port_id: hit.port_id, network_id: hit.network_id, subnet_id: onPort[0]!.id, subnet_ids: onPort.map((s) => s.id) };
    });
    this.ctx.onChange();
    return out;
  }

  // ------------------------------------------------------------------ floating IPs

  async getFip(caller: Caller, id: string, tx: Tx = this.ctx.db): Promise<FloatingIpRow> {
    const f = await (tx as NetDb).selectFrom('neutron_floatingips').selectAll().where('id', '=', id).executeTakeFirst();
    if (!f || (!caller.admin && f.project_id !== caller.projectId)) throw notFound('floatingip', id);
    return f;
  }

  async listFips(caller: Caller, pre: { ids?: string[] } = {}): Promise<View[]> {
    let q = this.ctx.db.selectFrom('neutron_floatingips').selectAll();
    if (pre.ids) q = q.where('id', 'in', pre.ids.length ? pre.ids : ['-']);
    if (!caller.admin) q = q.where('project_id', '=', caller.projectId ?? '-');
    return floatingIpViews(this.ctx.db, await q.execute());
  }

  async fipView(f: FloatingIpRow): Promise<View> {
    return (await floatingIpViews(this.ctx.db, [f]))[0]!;
  }

  async createFip(caller: Caller, b: Body): Promise<View> {
    const project = (b.project_id as string | undefined) ?? caller.projectId;
    if (!project) throw badRequest('A project is required to create a floating IP.');
    if (b.floating_network_id === undefined) throw badRequest("Invalid input for floating_network_id. Reason: 'None' is not a valid UUID.");
    const id = uuid();
    await this.ctx.tx(async (tx) => {
      const net = await this.svc.networks.get(caller, b.floating_network_id as string, tx);
      if (!bool(net.external)) throw badRequest(`Bad floatingip request: Network ${net.id} is not a valid external network.`);
      await this.ctx.checkQuota(tx, project, 'floatingip');
      const fixed: FixedIpRequest[] | undefined =
        b.floating_ip_address !== undefined || b.subnet_id
          ? [{ ...(b.subnet_id ? { subnet_id: b.subnet_id as string } : {}), ...(b.floating_ip_address !== undefined ? { ip_address: b.floating_ip_address as string } : {}) }]
          : undefined;
      const portId = await this.svc.ports.createTx(tx, { project_id: '', network: net, device_owner: 'network:floatingip', device_id: id, fixed_ips: fixed, skipQuota: true });
      const ip = await tx.selectFrom('neutron_ip_allocations').select('ip_address').where('port_id', '=', portId).execute();
      const v4 = ip.find((x) => parseIp(x.ip_address)?.version === 4) ?? ip[0];
      if (!v4) throw nerr(409, 'IpAddressGenerationFailure', `No more IP addresses available on network ${net.id}.`);
      const now = Date.now();
      await tx
        .insertInto('neutron_floatingips')
        .values({ id, project_id: project, description: (b.description as string | undefined) ?? '', created_at: now, updated_at: now, revision_number: 0, floating_network_id: net.id, floating_ip_address: v4.ip_address, floating_port_id: portId, fixed_port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN', dns_name: (b.dns_name as string | undefined) ?? '', dns_domain: (b.dns_domain as string | undefined) ?? '' })
        .execute();
      if (b.port_id) await this.associateTx(tx, caller, (await this.getFip({ ...caller, admin: true }, id, tx)), b.port_id as string, b.fixed_ip_address as string | undefined);
      if (b.tags) await this.svc.tags.setTx(tx, 'floatingips', id, b.tags as string[]);
    });
    this.ctx.onChange();
    return this.fipView(await this.getFip({ ...caller, admin: true }, id));
  }

  /**
   * Associates a floating IP with a port's fixed address. A router must
   * connect the two: an interface on the fixed address's subnet and a
   * gateway on the floating IP's network (ExternalGatewayForFloatingIPNotFound).
   */
  private async associateTx(tx: Tx, caller: Caller, f: FloatingIpRow, portId: string, fixedIp?: string): Promise<void> {
    const db = tx as NetDb;
    const port = await this.svc.ports.get(caller, portId, tx);
    if (!caller.admin && port.project_id !== f.project_id) throw notFound('port', portId);
    if (port.device_owner.startsWith('network:')) throw badRequest(`Bad floatingip request: Port ${port.id} has owner ${port.device_owner} and therefore cannot be assigned a floating IP.`);
    const ips = (await db.selectFrom('neutron_ip_allocations').selectAll().where('port_id', '=', port.id).execute()).filter((i) => parseIp(i.ip_address)?.version === 4);
    let chosen: (typeof ips)[number] | undefined = ips[0];
    if (fixedIp !== undefined) {
      const canon = formatIp(4, parseIp(fixedIp)?.value ?? -1n);
      chosen = ips.find((i) => i.ip_address === canon);
      if (!chosen) throw badRequest(`Bad floatingip request: Port ${port.id} does not have fixed ip ${fixedIp}.`);
    } else if (ips.length > 1) {
      throw badRequest(`Bad floatingip request: Port ${port.id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP.`);
    }
    if (!chosen) throw badRequest(`Bad floatingip request: Cannot add floating IP to port ${port.id} that has no fixed IPv4 addresses.`);
    const router = await db
      .selectFrom('neutron_router_ports as iface')
      .innerJoin('neutron_ip_allocations as a', 'a.port_id', 'iface.port_id')
      .innerJoin('neutron_routers as r', 'r.id', 'iface.router_id')
      .innerJoin('neutron_ports as gw', 'gw.id', 'r.gw_port_id')
      .select('r.id')
      .where('iface.port_type', '=', 'network:router_interface')
      .where('a.subnet_id', '=', chosen.subnet_id)
      .where('gw.network_id', '=', f.floating_network_id)
      .orderBy('r.created_at')
      .executeTakeFirst();
    if (!router)
      throw nerr(404, 'ExternalGatewayForFloatingIPNotFound', `External network ${f.floating_network_id} is not reachable from subnet ${chosen.subnet_id}.  Therefore, cannot associate Port ${port.id} with a Floating IP.`);
    const other = await db.selectFrom('neutron_floatingips').select(['id', 'floating_ip_address']).where('fixed_port_id', '=', port.id).where('fixed_ip_address', '=', chosen.ip_address).where('id', '!=', f.id).executeTakeFirst();
    if (other)
      throw conflict('FloatingIPPortAlreadyAssociated', `Cannot associate floating IP ${f.floating_ip_address} (${f.id}) with port ${port.id} using fixed IP ${chosen.ip_address}, as that fixed IP already has a floating IP on external network ${f.floating_network_id}.`);
    await db.updateTable('neutron_floatingips').set({ fixed_port_id: port.id, fixed_ip_address: chosen.ip_address, router_id: router.id, status: 'ACTIVE', updated_at: Date.now(), revision_number: f.revision_number + 1 }).where('id', '=', f.id).execute();
  }

  async updateFip(caller: Caller, f: FloatingIpRow, b: Body): Promise<View> {
    await this.ctx.tx(async (tx) => {
      if (b.description !== undefined) await tx.updateTable('neutron_floatingips').set({ description: b.description as string }).where('id', '=', f.id).execute();
      if (b.port_id === null || (b.port_id === undefined && b.fixed_ip_address === null))
        await tx.updateTable('neutron_floatingips').set({ fixed_port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN', updated_at: Date.now(), revision_number: f.revision_number + 1 }).where('id', '=', f.id).execute();
      else if (b.port_id !== undefined) await this.associateTx(tx, caller, f, b.port_id as string, (b.fixed_ip_address as string | null | undefined) ?? undefined);
      else if (b.fixed_ip_address !== undefined && f.fixed_port_id) await this.associateTx(tx, caller, f, f.fixed_port_id, b.fixed_ip_address as string);
    });
    this.ctx.onChange();
    return this.fipView(await this.getFip({ ...caller, admin: true }, f.id));
  }

  async deleteFip(f: FloatingIpRow): Promise<void> {
    await this.ctx.tx(async (tx) => {
      await tx.deleteFrom('neutron_floatingips').where('id', '=', f.id).execute();
      await this.svc.ports.deleteTx(tx, f.floating_port_id);
      await tx.deleteFrom('neutron_tags').where('resource_type', '=', 'floatingips').where('resource_id', '=', f.id).execute();
    });
    this.ctx.onChange();
  }

  routesOf(r: RouterRow): Array<{ destination: string; nexthop: string }> {
    return parseJson(r.routes, []);
  }
}

function interfaceArgs(b: unknown): { subnet_id?: string; port_id?: string } {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw badRequest('Bad router request: Either subnet_id or port_id must be specified.');
  const o = b as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => k !== 'subnet_id' && k !== 'port_id');
  if (extra.length) throw badRequest(`Unrecognized attribute(s) '${extra.join(', ')}'`);
  if (o.subnet_id === undefined && o.port_id === undefined) throw badRequest('Bad router request: Either subnet_id or port_id must be specified.');
  if (o.subnet_id !== undefined && o.port_id !== undefined) throw badRequest('Bad router request: Cannot specify both subnet-id and port-id.');
  for (const k of ['subnet_id', 'port_id'] as const)
    if (o[k] !== undefined && typeof o[k] !== 'string') throw badRequest(`Invalid input for ${k}. Reason: '${String(o[k])}' is not a valid UUID.`);
  return { ...(o.subnet_id !== undefined ? { subnet_id: o.subnet_id as string } : {}), ...(o.port_id !== undefined ? { port_id: o.port_id as string } : {}) };
}

export type { NetworkRow };
