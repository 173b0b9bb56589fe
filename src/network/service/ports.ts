import { randomBytes } from 'node:crypto';
import { uuid } from '../../core/ids.js';
import { bool, int } from '../../core/db.js';
import type { NetworkRow, PortRow } from '../store/tables.js';
import type { NetworkService } from './service.js';
import type { Caller, NetDb, Tx } from './context.js';
import { parseJson } from './context.js';
import { badRequest, conflict, nerr, notFound } from './errors.js';
import { boolean, checkBody, list, projectId, str, tagList, type AttrSpec, type Body } from './validate.js';
import { allocateIps, subnetInfos, type Allocation, type FixedIpRequest } from './ipam.js';
import { portView, portViews, type View } from './views.js';
import { formatCidr, formatIp, parseCidr, parseIp } from '../ip.js';

const VNIC_TYPES = ['normal', 'direct', 'macvtap', 'baremetal', 'direct-physical', 'virtio-forwarder', 'smart-nic', 'vdpa', 'remote-managed'];
const MAC_RE = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;
const DNS_NAME_RE = /^(?=.{1,255}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

const fixedIps = (v: unknown, fail: (r: string) => never): FixedIpRequest[] => {
  if (!Array.isArray(v)) return fail(`Invalid data format for fixed IP: '${JSON.stringify(v)}'`);
  return v.map((x) => {
    if (typeof x !== 'object' || x === null || Object.keys(x).some((k) => k !== 'subnet_id' && k !== 'ip_address'))
      return fail(`Invalid data format for fixed IP: '${JSON.stringify(x)}'`);
    const o = x as { subnet_id?: unknown; ip_address?: unknown };
    if (o.subnet_id !== undefined && typeof o.subnet_id !== 'string') return fail(`'${String(o.subnet_id)}' is not a valid UUID`);
    if (o.ip_address !== undefined && (typeof o.ip_address !== 'string' || !parseIp(o.ip_address))) return fail(`'${String(o.ip_address)}' is not a valid IP address`);
    if (o.subnet_id === undefined && o.ip_address === undefined) return fail(`Invalid data format for fixed IP: '${JSON.stringify(x)}'`);
    return { ...(o.subnet_id !== undefined ? { subnet_id: o.subnet_id as string } : {}), ...(o.ip_address !== undefined ? { ip_address: o.ip_address as string } : {}) };
  });
};

const addressPairs = (v: unknown, fail: (r: string) => never): Array<{ ip_address: string; mac_address?: string }> => {
  if (!Array.isArray(v)) return fail(`'${JSON.stringify(v)}' is not a list`);
  const out = v.map((x) => {
    const o = x as { ip_address?: unknown; mac_address?: unknown };
    if (typeof x !== 'object' || x === null || Object.keys(x).some((k) => k !== 'ip_address' && k !== 'mac_address')) return fail(`Unrecognized attribute(s) in '${JSON.stringify(x)}'`);
    const c = parseCidr(o.ip_address);
    if (!c) return fail(`'${String(o.ip_address)}' is not a valid IP address or CIDR`);
    if (o.mac_address !== undefined && (typeof o.mac_address !== 'string' || !MAC_RE.test(o.mac_address))) return fail(`'${String(o.mac_address)}' is not a valid MAC address`);
    const bits = c.version === 4 ? 32 : 128;
    const ip = c.prefixlen === bits ? formatIp(c.version, c.network) : formatCidr(c);
    return { ip_address: ip, ...(o.mac_address !== undefined ? { mac_address: (o.mac_address as string).toLowerCase() } : {}) };
  });
  const keys = out.map((p) => `${p.ip_address}|${p.mac_address ?? ''}`);
  if (new Set(keys).size !== keys.length) return fail('Duplicate address pair');
  return out;
};

const PORT_ATTRS: Record<string, AttrSpec> = {
  name: { post: true, put: true, check: str(255) },
  description: { post: true, put: true, check: str(255) },
  network_id: { post: true, check: str(255) },
  admin_state_up: { post: true, put: true, check: boolean },
  mac_address: { post: true, put: true, check: (v, f) => (typeof v === 'string' && MAC_RE.test(v) ? v.toLowerCase() : f(`'${String(v)}' is not a valid MAC address`)) },
  fixed_ips: { post: true, put: true, check: fixedIps },
  device_id: { post: true, put: true, check: str(255) },
  device_owner: { post: true, put: true, check: str(255) },
  security_groups: { post: true, put: true, check: list(str(255)) },
  allowed_address_pairs: { post: true, put: true, check: addressPairs },
  port_security_enabled: { post: true, put: true, check: boolean },
  'binding:host_id': { post: true, put: true, check: str(255) },
  'binding:vnic_type': { post: true, put: true, check: (v, f) => (VNIC_TYPES.includes(v as string) ? v : f(`'${String(v)}' is not in ${JSON.stringify(VNIC_TYPES)}`)) },
  'binding:profile': { post: true, put: true, check: (v, f) => (v === null ? {} : typeof v === 'object' && !Array.isArray(v) ? v : f(`'${String(v)}' is not a dictionary`)) },
  dns_name: { post: true, put: true, check: (v, f) => (v === '' ? '' : typeof v === 'string' && DNS_NAME_RE.test(v) ? v.toLowerCase() : f(`'${String(v)}' not a valid PQDN or FQDN`)) },
  extra_dhcp_opts: { post: true, put: true, check: (v, f) => (Array.isArray(v) && v.length === 0 ? [] : f('extra DHCP options are not supported')) },
  project_id: { post: true, check: projectId },
  tenant_id: { post: true, check: projectId },
  tags: { post: true, check: tagList },
  'binding:vif_type': {},
  'binding:vif_details': {},
  status: {},
  id: {},
  dns_assignment: {},
  created_at: {},
  updated_at: {},
  revision_number: {},
  qos_policy_id: { post: true, put: true, check: (v, f) => (v === null ? null : f('QoS policies are not supported')) },
};

/** What internal callers (DHCP, routers, floating IPs, compute) create ports with. */
export interface PortSpec {
  project_id: string;
  network: NetworkRow;
  name?: string;
  description?: string;
  device_owner?: string;
  device_id?: string;
  mac_address?: string;
  fixed_ips?: FixedIpRequest[];
  admin_state_up?: boolean;
  security_groups?: string[];
  port_security_enabled?: boolean;
  allowed_address_pairs?: Array<{ ip_address: string; mac_address?: string }>;
  binding_host_id?: string;
  binding_vnic_type?: string;
  binding_profile?: Record<string, unknown>;
  dns_name?: string;
  created_for_instance?: boolean;
  tags?: string[];
  skipQuota?: boolean;
  id?: string;
}

/** What createTx wrote, for building the response without reading it back. */
export interface CreatedPort {
  row?: PortRow;
  ips?: Allocation[];
  groups?: string[];
  tags?: string[];
}

/** A random MAC in OpenStack's base_mac range fa:16:3e. */
export const randomMac = (): string => `fa:16:3e:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

export class Ports {
  constructor(private readonly svc: NetworkService) {}
  private get ctx() {
    return this.svc.ctx;
  }

  /** A port is visible to its project, to the owner of its network, and to admins. */
  async get(caller: Caller, id: string, tx: Tx = this.ctx.db): Promise<PortRow> {
    const p = await (tx as NetDb).selectFrom('neutron_ports').selectAll().where('id', '=', id).executeTakeFirst();
    if (!p) throw notFound('port', id);
    if (!caller.admin && p.project_id !== caller.projectId) {
      const n = await (tx as NetDb).selectFrom('neutron_networks').select('project_id').where('id', '=', p.network_id).executeTakeFirst();
      if (n?.project_id !== caller.projectId) throw notFound('port', id);
    }
    return p;
  }

  async list(caller: Caller, pre: { ids?: string[]; network_id?: string[]; device_id?: string[] } = {}): Promise<View[]> {
    let q = this.ctx.db.selectFrom('neutron_ports').selectAll('neutron_ports');
    if (pre.ids) q = q.where('neutron_ports.id', 'in', pre.ids.length ? pre.ids : ['-']);
    if (pre.network_id) q = q.where('neutron_ports.network_id', 'in', pre.network_id.length ? pre.network_id : ['-']);
    if (pre.device_id) q = q.where('neutron_ports.device_id', 'in', pre.device_id.length ? pre.device_id : ['-']);
    if (!caller.admin)
      q = q
        .innerJoin('neutron_networks', 'neutron_networks.id', 'neutron_ports.network_id')
        .where((eb) => eb.or([eb('neutron_ports.project_id', '=', caller.projectId ?? '-'), eb('neutron_networks.project_id', '=', caller.projectId ?? '-')]));
    return portViews(this.ctx.db, await q.execute());
  }

  async view(row: PortRow): Promise<View> {
    return (await portViews(this.ctx.db, [row]))[0]!;
  }
  async viewById(id: string): Promise<View> {
    return this.view(await this.get({ projectId: null, userId: null, admin: true }, id));
  }

  static checkCreate(body: unknown): Body {
    return checkBody('port', body, PORT_ATTRS, 'POST');
  }
  static checkUpdate(body: unknown): Body {
    return checkBody('port', body, PORT_ATTRS, 'PUT');
  }

  /** POST /v2.0/ports: `net` is the (visible) network, `b` the checked body. */
  async create(caller: Caller, net: NetworkRow, b: Body): Promise<View> {
    const project = (b.project_id as string | undefined) ?? caller.projectId ?? net.project_id;
    const made: CreatedPort = {};
    await this.ctx.tx((tx) =>
      this.createTx(tx, {
        project_id: project,
        network: net,
        name: b.name as string | undefined,
        description: b.description as string | undefined,
        device_owner: b.device_owner as string | undefined,
        device_id: b.device_id as string | undefined,
        mac_address: b.mac_address as string | undefined,
        fixed_ips: b.fixed_ips as FixedIpRequest[] | undefined,
        admin_state_up: b.admin_state_up as boolean | undefined,
        security_groups: b.security_groups as string[] | undefined,
        port_security_enabled: b.port_security_enabled as boolean | undefined,
        allowed_address_pairs: b.allowed_address_pairs as PortSpec['allowed_address_pairs'],
        binding_host_id: b['binding:host_id'] as string | undefined,
        binding_vnic_type: b['binding:vnic_type'] as string | undefined,
        binding_profile: b['binding:profile'] as Record<string, unknown> | undefined,
        dns_name: b.dns_name as string | undefined,
        tags: b.tags as string[] | undefined,
      }, caller, made),
    );
    this.ctx.onChange();
    // Everything the body needs was written by this request: no second read.
    return portView(made.row!, made.ips!, made.groups!, made.tags!);
  }

  /**
   * Creates a port inside `tx`: quota, MAC, addresses (IPAM), security
   * groups. Every check happens before or inside the transaction, so a
   * failure leaves nothing behind.
   */
  async createTx(tx: Tx, s: PortSpec, caller?: Caller, made?: CreatedPort): Promise<string> {
    const db = tx as NetDb;
    const id = s.id ?? uuid();
    const owner = s.device_owner ?? '';
    const networkOwned = owner.startsWith('network:');
    if (!s.skipQuota) await this.ctx.checkQuota(tx, s.project_id, 'port');
    const portSecurity = s.port_security_enabled ?? (networkOwned ? false : bool(s.network.port_security_enabled));
    let mac = s.mac_address;
    if (mac) {
      const used = await db.selectFrom('neutron_ports').select('id').where('network_id', '=', s.network.id).where('mac_address', '=', mac).executeTakeFirst();
      if (used) throw conflict('MacAddressInUse', `Unable to complete operation for network ${s.network.id}. The mac address ${mac} is in use.`);
    } else mac = randomMac(); // a collision trips the unique index; NetContext.tx retries with a new one
    const pairs = s.allowed_address_pairs ?? [];
    if (pairs.length && !portSecurity)
      throw conflict('AddressPairAndPortSecurityRequired', 'Port Security must be enabled in order to have allowed address pairs on a port.');
    let groups: string[] = [];
    if (portSecurity && !networkOwned) {
      groups = s.security_groups
        ? await this.svc.securityGroups.resolveTx(tx, caller ?? { projectId: s.project_id, userId: null, admin: false }, s.security_groups, s.project_id)
        : [await this.svc.securityGroups.ensureDefaultTx(tx, s.project_id)];
    } else if (s.security_groups && s.security_groups.length)
      throw conflict('PortSecurityAndIPRequiredForSecurityGroups', 'Port security must be enabled and port must have an IP address in order to use security groups.');
    const now = Date.now();
    const row: PortRow = {
      id,
      project_id: s.project_id,
      name: s.name ?? '',
      description: s.description ?? '',
      created_at: now,
      updated_at: now,
      revision_number: 1,
      network_id: s.network.id,
      mac_address: mac,
      admin_state_up: int(s.admin_state_up ?? true),
      status: 'DOWN',
      device_id: s.device_id ?? '',
      device_owner: owner,
      binding_host_id: s.binding_host_id ?? '',
      binding_vnic_type: s.binding_vnic_type ?? 'normal',
      binding_profile: JSON.stringify(s.binding_profile ?? {}),
      port_security_enabled: int(portSecurity),
      allowed_address_pairs: JSON.stringify(pairs.map((p) => ({ ip_address: p.ip_address, mac_address: p.mac_address ?? mac }))),
      dns_name: s.dns_name ?? '',
      created_for_instance: int(s.created_for_instance ?? false),
    };
    await db.insertInto('neutron_ports').values(row).execute();
    const subnets = await subnetInfos(tx, await this.svc.networks.subnetsOf(tx, s.network.id));
    const ips = await allocateIps(tx, s.network.id, subnets, s.fixed_ips, id, mac, owner);
    for (const g of groups) await db.insertInto('neutron_port_security_groups').values({ port_id: id, security_group_id: g }).execute();
    if (s.tags?.length) await this.svc.tags.setTx(tx, 'ports', id, s.tags);
    if (made) Object.assign(made, { row, ips, groups, tags: [...new Set(s.tags ?? [])] });
    return id;
  }

  /** Gives a port one more address, on `subnetId`. */
  async addFixedIpTx(tx: Tx, portId: string, networkId: string, subnetId: string, ip?: string): Promise<void> {
    const port = await (tx as NetDb).selectFrom('neutron_ports').selectAll().where('id', '=', portId).executeTakeFirstOrThrow();
    const subnets = await subnetInfos(tx, await this.svc.networks.subnetsOf(tx, networkId));
    await allocateIps(tx, networkId, subnets, [{ subnet_id: subnetId, ...(ip ? { ip_address: ip } : {}) }], portId, port.mac_address, port.device_owner);
  }

  async update(caller: Caller, p: PortRow, b: Body): Promise<View> {
    await this.ctx.tx(async (tx) => {
      const db = tx;
      const set: Partial<PortRow> = { updated_at: Date.now(), revision_number: p.revision_number + 1 };
      if (b.name !== undefined) set.name = b.name as string;
      if (b.description !== undefined) set.description = b.description as string;
      if (b.admin_state_up !== undefined) set.admin_state_up = int(b.admin_state_up as boolean);
      if (b.device_id !== undefined) set.device_id = b.device_id as string;
      if (b.device_owner !== undefined) set.device_owner = b.device_owner as string;
      if (b['binding:host_id'] !== undefined) set.binding_host_id = b['binding:host_id'] as string;
      if (b['binding:vnic_type'] !== undefined) set.binding_vnic_type = b['binding:vnic_type'] as string;
      if (b['binding:profile'] !== undefined) set.binding_profile = JSON.stringify(b['binding:profile']);
      if (b.dns_name !== undefined) set.dns_name = b.dns_name as string;
      if (b.mac_address !== undefined && b.mac_address !== p.mac_address) {
        if (p.binding_host_id && (b['binding:host_id'] ?? p.binding_host_id) !== '') throw conflict('PortBound', `Unable to complete operation on port ${p.id}, port is already bound, port type: tap, old_mac ${p.mac_address}, new_mac ${String(b.mac_address)}.`);
        const used = await db.selectFrom('neutron_ports').select('id').where('network_id', '=', p.network_id).where('mac_address', '=', b.mac_address as string).executeTakeFirst();
        if (used) throw conflict('MacAddressInUse', `Unable to complete operation for network ${p.network_id}. The mac address ${String(b.mac_address)} is in use.`);
        set.mac_address = b.mac_address as string;
      }
      const portSecurity = b.port_security_enabled !== undefined ? (b.port_security_enabled as boolean) : bool(p.port_security_enabled);
      set.port_security_enabled = int(portSecurity);
      const currentGroups = (await db.selectFrom('neutron_port_security_groups').select('security_group_id').where('port_id', '=', p.id).execute()).map((r) => r.security_group_id);
      let groups = currentGroups;
      if (b.security_groups !== undefined) groups = await this.svc.securityGroups.resolveTx(tx, caller, b.security_groups as string[], p.project_id);
      else if (b.port_security_enabled === true && !bool(p.port_security_enabled) && currentGroups.length === 0 && !p.device_owner.startsWith('network:'))
        groups = [await this.svc.securityGroups.ensureDefaultTx(tx, p.project_id)];
      if (!portSecurity && groups.length)
        throw conflict('PortSecurityPortHasSecurityGroup', 'Port has security group associated. Cannot disable port security or ip address until security group is removed');
      let pairs = parseJson<Array<{ ip_address: string; mac_address: string }>>(p.allowed_address_pairs, []);
      if (b.allowed_address_pairs !== undefined)
        pairs = (b.allowed_address_pairs as Array<{ ip_address: string; mac_address?: string }>).map((x) => ({ ip_address: x.ip_address, mac_address: x.mac_address ?? set.mac_address ?? p.mac_address }));
      if (pairs.length && !portSecurity) throw conflict('AddressPairAndPortSecurityRequired', 'Port Security must be enabled in order to have allowed address pairs on a port.');
      set.allowed_address_pairs = JSON.stringify(pairs);
      await db.updateTable('neutron_ports').set(set).where('id', '=', p.id).execute();
      if (b.security_groups !== undefined || groups !== currentGroups) {
        await db.deleteFrom('neutron_port_security_groups').where('port_id', '=', p.id).execute();
        for (const g of groups) await db.insertInto('neutron_port_security_groups').values({ port_id: p.id, security_group_id: g }).execute();
      }
      if (b.fixed_ips !== undefined) await this.replaceFixedIpsTx(tx, { ...p, ...set } as PortRow, b.fixed_ips as FixedIpRequest[]);
    });
    this.ctx.onChange();
    return this.viewById(p.id);
  }

  /** Keeps the requested addresses the port already has, releases the rest, allocates the new ones. */
  async replaceFixedIpsTx(tx: Tx, p: PortRow, wanted: FixedIpRequest[]): Promise<void> {
    const db = tx as NetDb;
    const have = await db.selectFrom('neutron_ip_allocations').selectAll().where('port_id', '=', p.id).execute();
    const canon = (ip?: string) => (ip ? (parseIp(ip) ? formatIp(parseIp(ip)!.version, parseIp(ip)!.value) : ip) : undefined);
    const keep = have.filter((h) => wanted.some((w) => canon(w.ip_address) === h.ip_address && (!w.subnet_id || w.subnet_id === h.subnet_id)));
    const fresh = wanted.filter((w) => !w.ip_address || !keep.some((k) => k.ip_address === canon(w.ip_address)));
    for (const h of have.filter((x) => !keep.includes(x))) {
      await db.deleteFrom('neutron_ip_allocations').where('subnet_id', '=', h.subnet_id).where('ip_address', '=', h.ip_address).execute();
      // A floating IP bound to an address the port gives up is let go.
      await db.updateTable('neutron_floatingips').set({ fixed_port_id: null, fixed_ip_address: null, router_id: null }).where('fixed_port_id', '=', p.id).where('fixed_ip_address', '=', h.ip_address).execute();
    }
    if (fresh.length) {
      const subnets = await subnetInfos(tx, await this.svc.networks.subnetsOf(tx, p.network_id));
      await allocateIps(tx, p.network_id, subnets, fresh, p.id, p.mac_address, p.device_owner);
    }
  }

  async delete(p: PortRow): Promise<void> {
    if (p.device_owner === 'network:router_interface' || p.device_owner === 'network:router_gateway' || p.device_owner === 'network:floatingip')
      throw conflict('L3PortInUse', `Port ${p.id} cannot be deleted directly via the port API: has device owner ${p.device_owner}.`);
    await this.ctx.tx((tx) => this.deleteTx(tx, p.id));
    this.ctx.onChange();
  }

  /** Removes a port, its addresses, group memberships and floating IP associations. */
  async deleteTx(tx: Tx, id: string): Promise<void> {
    const db = tx as NetDb;
    await db.updateTable('neutron_floatingips').set({ fixed_port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN' }).where('fixed_port_id', '=', id).execute();
    await db.deleteFrom('neutron_tags').where('resource_type', '=', 'ports').where('resource_id', '=', id).execute();
    // Addresses, group memberships and router membership go with the row (ON DELETE CASCADE).
    await db.deleteFrom('neutron_ports').where('id', '=', id).execute();
  }

  /** Binds or unbinds a port to a device and host (compute's attach/detach). */
  async bindTx(tx: Tx, id: string, set: { device_id: string; device_owner: string; binding_host_id: string; dns_name?: string }): Promise<void> {
    const p = await (tx as NetDb).selectFrom('neutron_ports').select('revision_number').where('id', '=', id).executeTakeFirstOrThrow();
    await (tx as NetDb)
      .updateTable('neutron_ports')
      .set({ ...set, updated_at: Date.now(), revision_number: p.revision_number + 1 })
      .where('id', '=', id)
      .execute();
  }
}

export { nerr, badRequest };
