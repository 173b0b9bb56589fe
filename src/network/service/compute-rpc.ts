import { bool } from '../../core/db.js';
import type { NetworkRow, PortRow } from '../store/tables.js';
import type { NetworkService } from './service.js';
import type { Caller, NetDb, Tx } from './context.js';
import { parseJson } from './context.js';
import { badRequest, conflict, nerr, notFound } from './errors.js';
import { devName, type AllocateRequest, type InstancePort } from '../protocol.js';
import { compareIp, formatIp, parseIp } from '../ip.js';

/**
 * What compute asks of the network service over the bus (`network` topic):
 * ports for a server being built, attached or deleted, and who is behind an
 * address (for the metadata service). Each call is one transaction, so a
 * server that cannot get all its ports gets none.
 */
export class ComputeRpc {
  constructor(private readonly svc: NetworkService) {}
  private get ctx() {
    return this.svc.ctx;
  }

  /** The network a server gets when it names none: the project's only one, else the only shared one. */
  private async defaultNetwork(tx: Tx, project: string, mode: 'auto' | 'implicit'): Promise<NetworkRow | null> {
    const db = tx as NetDb;
    const own = await db.selectFrom('neutron_networks').selectAll().where('project_id', '=', project).where('external', '=', 0).orderBy('created_at').execute();
    const candidates = own.length ? own : await db.selectFrom('neutron_networks').selectAll().where('shared', '=', 1).where('external', '=', 0).orderBy('created_at').execute();
    if (candidates.length > 1) throw conflict('NetworkAmbiguous', 'Multiple possible networks found, use a Network ID to be more specific.');
    if (candidates.length === 0) {
      if (mode === 'auto') throw badRequest(`Unable to automatically allocate a network for project ${project}`, 'UnableToAutoAllocateNetwork');
      return null;
    }
    return candidates[0]!;
  }

  async allocate(req: AllocateRequest): Promise<{ ports: InstancePort[] }> {
    if (req.requested === 'none') return { ports: [] };
    const caller: Caller = { projectId: req.project_id, userId: null, admin: false };
    const owner = `compute:${req.availability_zone ?? this.ctx.availabilityZone}`;
    const ids = await this.ctx.tx(async (tx) => {
      const out: string[] = [];
      let wanted = req.requested as Array<{ network_id?: string; port_id?: string; fixed_ip?: string }>;
      if (req.requested === 'auto' || wanted.length === 0) {
        const net = await this.defaultNetwork(tx, req.project_id, req.requested === 'auto' ? 'auto' : 'implicit');
        wanted = net ? [{ network_id: net.id }] : [];
      }
      const groups = req.security_groups.length ? req.security_groups : undefined;
      for (const w of wanted) out.push(await this.portFor(tx, caller, req.instance_id, req.host, req.hostname, owner, w, groups));
      return out;
    });
    this.ctx.onChange();
    return { ports: await this.instancePorts(ids) };
  }

  /** Creates (network_id) or binds (port_id) one port of a server, inside `tx`. */
  private async portFor(tx: Tx, caller: Caller, instanceId: string, host: string, hostname: string, owner: string, w: { network_id?: string; port_id?: string; fixed_ip?: string }, groups?: string[]): Promise<string> {
    const db = tx as NetDb;
    if (w.port_id) {
      const p = await db.selectFrom('neutron_ports').selectAll().where('id', '=', w.port_id).executeTakeFirst();
      if (!p || p.project_id !== caller.projectId) throw notFound('port', w.port_id);
      if (p.device_id && p.device_id !== instanceId) throw conflict('PortInUse', `Port ${p.id} is still in use.`);
      if (p.device_owner.startsWith('network:')) throw conflict('PortInUse', `Port ${p.id} is still in use.`);
      if (w.network_id && w.network_id !== p.network_id) throw badRequest(`Port ${p.id} is not on network ${w.network_id}.`, 'PortNotUsable');
      await this.svc.ports.bindTx(tx, p.id, { device_id: instanceId, device_owner: owner, binding_host_id: host, ...(p.dns_name ? {} : { dns_name: dnsLabel(hostname) }) });
      return p.id;
    }
    if (!w.network_id) throw badRequest('A network or a port is required for each requested network.');
    const net = await db.selectFrom('neutron_networks').selectAll().where('id', '=', w.network_id).executeTakeFirst();
    if (!net || !this.svc.networks.canSee(caller, net)) throw notFound('network', w.network_id);
    if (bool(net.external) && !bool(net.shared) && net.project_id !== caller.projectId)
      throw nerr(403, 'ExternalNetworkAttachForbidden', `It is not allowed to create an interface on external network ${net.id}`);
    if (w.fixed_ip !== undefined && !parseIp(w.fixed_ip)) throw badRequest(`Invalid fixed IP address (${w.fixed_ip})`, 'InvalidInput');
    return this.svc.ports.createTx(tx, {
      project_id: caller.projectId!,
      network: net,
      device_owner: owner,
      device_id: instanceId,
      binding_host_id: host,
      dns_name: dnsLabel(hostname),
      created_for_instance: true,
      ...(w.fixed_ip !== undefined ? { fixed_ips: [{ ip_address: w.fixed_ip }] } : {}),
      ...(groups ? { security_groups: groups } : {}),
    }, caller);
  }

  /** Ports compute created are deleted; ports the user brought are unbound and kept. */
  async deallocate(args: { instance_id: string; host?: string }): Promise<Record<string, never>> {
    await this.ctx.tx(async (tx) => {
      const ports = await tx.selectFrom('neutron_ports').selectAll().where('device_id', '=', args.instance_id).where('device_owner', 'like', 'compute:%').execute();
      for (const p of ports) await this.release(tx, p);
    });
    this.ctx.onChange();
    return {};
  }

  private async release(tx: Tx, p: PortRow): Promise<void> {
    if (bool(p.created_for_instance)) await this.svc.ports.deleteTx(tx, p.id);
    else {
      await (tx as NetDb).updateTable('neutron_floatingips').set({ fixed_port_id: null, fixed_ip_address: null, router_id: null, status: 'DOWN' }).where('fixed_port_id', '=', p.id).execute();
      await this.svc.ports.bindTx(tx, p.id, { device_id: '', device_owner: '', binding_host_id: '', dns_name: '' });
    }
  }

  async ports(args: { instance_id: string }): Promise<{ ports: InstancePort[] }> {
    const rows = await this.ctx.db.selectFrom('neutron_ports').select('id').where('device_id', '=', args.instance_id).where('device_owner', 'like', 'compute:%').orderBy('created_at').orderBy('id').execute();
    return { ports: await this.instancePorts(rows.map((r) => r.id)) };
  }

  /** The ports of many instances in one call (a server list's addresses). */
  async portsOfInstances(args: { instance_ids: string[] }): Promise<{ ports: Record<string, InstancePort[]> }> {
    const out: Record<string, InstancePort[]> = {};
    for (const id of args.instance_ids) out[id] = [];
    for (let i = 0; i < args.instance_ids.length; i += 500) {
      const chunk = args.instance_ids.slice(i, i + 500);
      const rows = await this.ctx.db.selectFrom('neutron_ports').select(['id', 'device_id']).where('device_id', 'in', chunk).where('device_owner', 'like', 'compute:%').orderBy('created_at').orderBy('id').execute();
      const byId = new Map((await this.instancePorts(rows.map((r) => r.id))).map((p) => [p.id, p]));
      for (const r of rows) {
        const p = byId.get(r.id);
        if (p) out[r.device_id]!.push(p);
      }
    }
    return { ports: out };
  }

  async attach(args: { instance_id: string; host: string; project_id: string; port_id?: string; network_id?: string; fixed_ip?: string; hostname?: string; availability_zone?: string }): Promise<{ port: InstancePort }> {
    const caller: Caller = { projectId: args.project_id, userId: null, admin: false };
    let w: { port_id?: string; network_id?: string; fixed_ip?: string } = { ...(args.port_id ? { port_id: args.port_id } : {}), ...(args.network_id ? { network_id: args.network_id } : {}), ...(args.fixed_ip ? { fixed_ip: args.fixed_ip } : {}) };
    const owner = `compute:${args.availability_zone ?? this.ctx.availabilityZone}`;
    const id = await this.ctx.tx(async (tx) => {
      if (!w.port_id && !w.network_id) {
        const net = await this.defaultNetwork(tx, args.project_id, 'auto');
        w = { ...w, network_id: net!.id };
      }
      return this.portFor(tx, caller, args.instance_id, args.host, args.hostname ?? '', owner, w);
    });
    this.ctx.onChange();
    return { port: (await this.instancePorts([id]))[0]! };
  }

  async detach(args: { instance_id: string; port_id: string }): Promise<Record<string, never>> {
    await this.ctx.tx(async (tx) => {
      const p = await tx.selectFrom('neutron_ports').selectAll().where('id', '=', args.port_id).executeTakeFirst();
      if (!p || p.device_id !== args.instance_id) throw nerr(404, 'PortNotFound', `Port ${args.port_id} is not attached to server ${args.instance_id}.`);
      await this.release(tx, p);
    });
    this.ctx.onChange();
    return {};
  }

  /**
   * Nova's addSecurityGroup / removeSecurityGroup: the group (by name or id,
   * of the instance's project) is added to or removed from every port of the
   * instance, in one transaction. Answers the instance's group names.
   */
  async updateInstanceSecurityGroups(args: { instance_id: string; project_id: string; add?: string; remove?: string }): Promise<{ security_groups: string[] }> {
    const ref = args.add ?? args.remove;
    if (!ref || (args.add && args.remove)) throw badRequest('Exactly one of add or remove names a security group.');
    await this.ctx.tx(async (tx) => {
      const groups = await tx.selectFrom('neutron_security_groups').select(['id', 'name']).where('project_id', '=', args.project_id).where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)])).execute();
      if (!groups.length) throw nerr(404, 'SecurityGroupNotFound', `Security group ${ref} not found.`);
      if (groups.length > 1) throw conflict('NoUniqueMatch', `Multiple security groups named ${ref}; use its id.`);
      const sg = groups[0]!.id;
      const ports = await tx.selectFrom('neutron_ports').select(['id', 'port_security_enabled']).where('device_id', '=', args.instance_id).where('device_owner', 'like', 'compute:%').execute();
      if (!ports.length) throw badRequest(`Server ${args.instance_id} has no port to change.`);
      const on = await tx.selectFrom('neutron_port_security_groups').select('port_id').where('security_group_id', '=', sg).where('port_id', 'in', ports.map((p) => p.id)).execute();
      if (args.add) {
        if (ports.some((p) => !bool(p.port_security_enabled))) throw badRequest('Cannot add a security group to a port with port security disabled.');
        if (on.length === ports.length) throw badRequest(`Security group ${ref} is already on server ${args.instance_id}.`);
        const have = new Set(on.map((r) => r.port_id));
        for (const p of ports) if (!have.has(p.id)) await tx.insertInto('neutron_port_security_groups').values({ port_id: p.id, security_group_id: sg }).execute();
      } else {
        if (!on.length) throw badRequest(`Security group ${ref} is not on server ${args.instance_id}.`);
        await tx.deleteFrom('neutron_port_security_groups').where('security_group_id', '=', sg).where('port_id', 'in', ports.map((p) => p.id)).execute();
      }
      const now = Date.now();
      await tx.updateTable('neutron_ports').set({ updated_at: now }).where('id', 'in', ports.map((p) => p.id)).execute();
    });
    this.ctx.onChange();
    const names = await this.ctx.db
      .selectFrom('neutron_port_security_groups')
      .innerJoin('neutron_ports', 'neutron_ports.id', 'neutron_port_security_groups.port_id')
      .innerJoin('neutron_security_groups', 'neutron_security_groups.id', 'neutron_port_security_groups.security_group_id')
      .select('neutron_security_groups.name')
      .distinct()
      .where('neutron_ports.device_id', '=', args.instance_id)
      .execute();
    return { security_groups: names.map((n) => n.name).sort() };
  }

  /** Who has `ip` on the network (or on any network the router is attached to): the metadata service's question. */
  async lookup(args: { network_id?: string; router_id?: string; ip: string }): Promise<{ instance_id: string | null; project_id: string | null }> {
    const db = this.ctx.db;
    let networks: string[] = [];
    if (args.network_id) networks.push(args.network_id);
    if (args.router_id) {
      const rows = await db
        .selectFrom('neutron_router_ports')
        .innerJoin('neutron_ports', 'neutron_ports.id', 'neutron_router_ports.port_id')
        .select('neutron_ports.network_id')
        .where('neutron_router_ports.router_id', '=', args.router_id)
        .where('neutron_router_ports.port_type', '=', 'network:router_interface')
        .execute();
      networks.push(...rows.map((r) => r.network_id));
    }
    networks = [...new Set(networks)];
    const ip = parseIp(args.ip);
    if (!networks.length || !ip) return { instance_id: null, project_id: null };
    const canonical = formatIp(ip.version, ip.value);
    const hit = await db
      .selectFrom('neutron_ip_allocations')
      .innerJoin('neutron_ports', 'neutron_ports.id', 'neutron_ip_allocations.port_id')
      .select(['neutron_ports.device_id', 'neutron_ports.project_id'])
      .where('neutron_ip_allocations.network_id', 'in', networks)
      .where('neutron_ip_allocations.ip_address', '=', canonical)
      .where('neutron_ports.device_owner', 'like', 'compute:%')
      .executeTakeFirst();
    return hit ? { instance_id: hit.device_id, project_id: hit.project_id } : { instance_id: null, project_id: null };
  }

  /** Ports in compute's shape (addresses with their subnets, floating IPs, DNS servers). */
  async instancePorts(ids: string[]): Promise<InstancePort[]> {
    if (!ids.length) return [];
    const db = this.ctx.db;
    const ports = await db.selectFrom('neutron_ports').selectAll().where('id', 'in', ids).execute();
    const nets = await db.selectFrom('neutron_networks').select(['id', 'name', 'mtu']).where('id', 'in', [...new Set(ports.map((p) => p.network_id))]).execute();
    const allocs = await db.selectFrom('neutron_ip_allocations').selectAll().where('port_id', 'in', ids).execute();
    const subnetIds = [...new Set(allocs.map((a) => a.subnet_id))];
    const subnets = subnetIds.length ? await db.selectFrom('neutron_subnets').selectAll().where('id', 'in', subnetIds).execute() : [];
    const fips = await db.selectFrom('neutron_floatingips').select(['fixed_port_id', 'fixed_ip_address', 'floating_ip_address']).where('fixed_port_id', 'in', ids).execute();
    const byId = new Map(ports.map((p) => [p.id, p]));
    return ids
      .map((id) => byId.get(id))
      .filter((p): p is PortRow => !!p)
      .map((p) => {
        const net = nets.find((n) => n.id === p.network_id);
        const mine = allocs.filter((a) => a.port_id === p.id).sort((a, b) => compareIp(a.ip_address, b.ip_address));
        const dns = new Set<string>();
        return {
          id: p.id,
          network_id: p.network_id,
          network_name: net?.name ?? '',
          mac_address: p.mac_address,
          device: devName('tap', p.id),
          mtu: net?.mtu ?? 1500,
          fixed_ips: mine.map((a) => {
            const s = subnets.find((x) => x.id === a.subnet_id)!;
            for (const d of parseJson<string[]>(s.dns_nameservers, [])) dns.add(d);
            return {
              subnet_id: a.subnet_id,
              ip_address: a.ip_address,
              version: s.ip_version as 4 | 6,
              cidr: s.cidr,
              gateway_ip: s.gateway_ip,
              floating_ips: fips.filter((f) => f.fixed_port_id === p.id && f.fixed_ip_address === a.ip_address).map((f) => f.floating_ip_address),
            };
          }),
          dns_nameservers: [...dns],
        };
      });
  }
}

/** A server's hostname as a DNS label (what dnsmasq hands out for the port). */
function dnsLabel(hostname: string): string {
  return hostname
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
}
