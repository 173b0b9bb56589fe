import { uuid } from '../../core/ids.js';
import { bool } from '../../core/db.js';
import type { Bus, Json } from '../../core/bus.js';
import type { AgentRow, NetworkRow, PortRow, SubnetRow } from '../store/tables.js';
import type { NetworkService } from './service.js';
import type { NetDb, Tx } from './context.js';
import { parseJson } from './context.js';
import { devName, type HostNetworkState, type NetworkState, type PortState, type RouterState, type SecurityGroupState } from '../protocol.js';
import { compareIp, parseCidr, parseIp } from '../ip.js';
import { defaultHostname } from './views.js';

/** An agent not heard from for this long is dead (Neutron's agent_down_time). */
export const AGENT_DOWN_MS = 75_000;
/** Changes within this window are coalesced into one `sync` per host. */
export const SYNC_DEBOUNCE_MS = 25;

export const AGENT_TYPE = 'Linux bridge agent';
export const AGENT_BINARY = 'stratus-network-agent';

/**
 * The desired state of each host's data plane, computed from the database,
 * and the agents that realise it. The first registered live agent hosts the
 * DHCP servers and routers (reassigned when it dies and another is alive);
 * every host gets the networks its bound ports need.
 */
export class HostStates {
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> = Promise.resolve();
  private stopped = false;
  constructor(
    private readonly svc: NetworkService,
    private readonly bus: Bus | null,
  ) {}
  private get ctx() {
    return this.svc.ctx;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** An agent starting (or re-announcing itself): record it, then hand it its state. */
  async registerAgent(host: string): Promise<HostNetworkState> {
    const now = Date.now();
    await this.ctx.tx(async (tx) => {
      const row = await tx.selectFrom('neutron_agents').select('id').where('host', '=', host).where('agent_type', '=', AGENT_TYPE).executeTakeFirst();
      if (row) await tx.updateTable('neutron_agents').set({ heartbeat_at: now, started_at: now }).where('id', '=', row.id).execute();
      else
        await tx
          .insertInto('neutron_agents')
          .values({ id: uuid(), host, agent_type: AGENT_TYPE, binary: AGENT_BINARY, topic: `netagent.${host}`, admin_state_up: 1, created_at: now, started_at: now, heartbeat_at: now, description: '' })
          .execute();
    });
    if (await this.assign()) this.scheduleSync();
    return this.hostState(host);
  }

  async heartbeat(host: string): Promise<void> {
    await this.ctx.db.updateTable('neutron_agents').set({ heartbeat_at: Date.now() }).where('host', '=', host).where('agent_type', '=', AGENT_TYPE).execute();
  }

  async agents(): Promise<AgentRow[]> {
    return this.ctx.db.selectFrom('neutron_agents').selectAll().orderBy('created_at').orderBy('id').execute();
  }

  static alive(a: AgentRow, now = Date.now()): boolean {
    return now - Number(a.heartbeat_at) < AGENT_DOWN_MS;
  }

  /** The host that serves DHCP and routers: the first registered agent that is alive. */
  async primaryHost(): Promise<string | null> {
    const now = Date.now();
    const agents = (await this.agents()).filter((a) => bool(a.admin_state_up));
    return agents.find((a) => HostStates.alive(a, now))?.host ?? agents[0]?.host ?? null;
  }

  /**
   * Gives DHCP networks and routers without a live host to the primary
   * host. A host that is down keeps its work while no other is alive (a
   * one-host cloud whose agent restarts must not lose it). True if anything moved.
   */
  async assign(): Promise<boolean> {
    const primary = await this.primaryHost();
    if (!primary) return false;
    const now = Date.now();
    const alive = new Set((await this.agents()).filter((a) => HostStates.alive(a, now) && bool(a.admin_state_up)).map((a) => a.host));
    const needsMove = (h: string | null) => h === null || (!alive.has(h) && h !== primary);
    let moved = false;
    await this.ctx.tx(async (tx) => {
      const nets = await tx
        .selectFrom('neutron_networks')
        .select(['id', 'dhcp_host'])
        .where((eb) => eb.exists(eb.selectFrom('neutron_subnets').select('id').whereRef('neutron_subnets.network_id', '=', 'neutron_networks.id').where('enable_dhcp', '=', 1)))
        .execute();
      for (const n of nets)
        if (needsMove(n.dhcp_host)) {
          await tx.updateTable('neutron_networks').set({ dhcp_host: primary }).where('id', '=', n.id).execute();
          moved = true;
        }
      const routers = await tx.selectFrom('neutron_routers').select(['id', 'l3_host']).execute();
      for (const r of routers)
        if (needsMove(r.l3_host)) {
          await tx.updateTable('neutron_routers').set({ l3_host: primary }).where('id', '=', r.id).execute();
          moved = true;
        }
    });
    return moved;
  }

  /** Coalesces changes: one `sync` per registered host after a quiet moment. */
  scheduleSync(): void {
    if (this.stopped || !this.bus || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.syncing = this.syncing.then(() => this.syncAll()).catch((e) => this.ctx.log.error({ err: e }, 'network sync failed'));
    }, SYNC_DEBOUNCE_MS);
    this.timer.unref?.();
  }

  private async syncAll(): Promise<void> {
    if (this.stopped || !this.bus) return;
    await this.assign();
    for (const a of await this.agents()) {
      const state = await this.hostState(a.host);
      try {
        await this.bus.cast(`netagent.${a.host}`, 'sync', { state } as unknown as Json);
      } catch (e) {
        // No agent listening on that host right now: it gets the state when it registers.
        this.ctx.log.debug?.({ host: a.host, err: (e as Error).message }, 'network sync not delivered');
      }
    }
  }

  /** Resolves when every sync scheduled so far has been sent (tests). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      this.syncing = this.syncing.then(() => this.syncAll());
    }
    await this.syncing;
  }

  /** The complete desired state of `host`, read in one transaction with a fresh generation. */
  async hostState(host: string): Promise<HostNetworkState> {
    return this.ctx.tx(async (tx) => {
      const generation = await bumpGeneration(tx);
      return this.compute(tx, host, generation);
    });
  }

  private async compute(tx: Tx, host: string, generation: number): Promise<HostNetworkState> {
    const db = tx as NetDb;
    // Ports of VMs bound here (the network's own ports live in namespaces).
    const vmPorts = await db.selectFrom('neutron_ports').selectAll().where('binding_host_id', '=', host).where('device_owner', 'not like', 'network:%').execute();
    const routers = await db.selectFrom('neutron_routers').selectAll().where('l3_host', '=', host).execute();
    const dhcpNets = await db.selectFrom('neutron_networks').select('id').where('dhcp_host', '=', host).execute();
    const routerIds = routers.map((r) => r.id);
    const routerPorts = routerIds.length
      ? await db
          .selectFrom('neutron_router_ports')
          .innerJoin('neutron_ports', 'neutron_ports.id', 'neutron_router_ports.port_id')
          .selectAll('neutron_ports')
          .select(['neutron_router_ports.router_id', 'neutron_router_ports.port_type'])
          .where('neutron_router_ports.router_id', 'in', routerIds)
          .execute()
      : [];
    const netIds = new Set<string>([...vmPorts.map((p) => p.network_id), ...dhcpNets.map((n) => n.id), ...routerPorts.map((p) => p.network_id)]);
    if (routers.length) for (const n of await db.selectFrom('neutron_networks').select('id').where('external', '=', 1).execute()) netIds.add(n.id);
    const ids = [...netIds];
    const nets: NetworkRow[] = ids.length ? await db.selectFrom('neutron_networks').selectAll().where('id', 'in', ids).orderBy('created_at').execute() : [];
    const subnets: SubnetRow[] = ids.length ? await db.selectFrom('neutron_subnets').selectAll().where('network_id', 'in', ids).orderBy('created_at').orderBy('id').execute() : [];
    const netPorts: PortRow[] = ids.length ? await db.selectFrom('neutron_ports').selectAll().where('network_id', 'in', ids).execute() : [];
    const portIds = [...new Set([...netPorts.map((p) => p.id), ...vmPorts.map((p) => p.id)])];
    const allocs = portIds.length ? await inChunks(portIds, (c) => db.selectFrom('neutron_ip_allocations').selectAll().where('port_id', 'in', c).execute()) : [];
    const ipsOf = (portId: string) => allocs.filter((a) => a.port_id === portId).sort((a, b) => compareIp(a.ip_address, b.ip_address)).map((a) => ({ subnet_id: a.subnet_id, ip_address: a.ip_address }));
    const subnetById = new Map(subnets.map((s) => [s.id, s]));

    const networks: NetworkState[] = nets.map((n) => {
      const mine = subnets.filter((s) => s.network_id === n.id);
      const dhcp = netPorts.find((p) => p.network_id === n.id && p.device_owner === 'network:dhcp');
      const dhcpHere = n.dhcp_host === host;
      return {
        id: n.id,
        project_id: n.project_id,
        mtu: n.mtu,
        admin_state_up: bool(n.admin_state_up),
        external: bool(n.external),
        network_type: n.network_type as NetworkState['network_type'],
        segmentation_id: n.segmentation_id,
        subnets: mine.map((s) => ({
          id: s.id,
          cidr: s.cidr,
          ip_version: s.ip_version as 4 | 6,
          gateway_ip: s.gateway_ip,
          enable_dhcp: bool(s.enable_dhcp),
          dns_nameservers: parseJson<string[]>(s.dns_nameservers, []),
          host_routes: parseJson<Array<{ destination: string; nexthop: string }>>(s.host_routes, []),
        })),
        dhcp_port: dhcp && dhcpHere ? { id: dhcp.id, mac_address: dhcp.mac_address, fixed_ips: ipsOf(dhcp.id) } : null,
        dhcp_hosts: dhcpHere
          ? netPorts
              .filter((p) => p.network_id === n.id && p.device_owner !== 'network:dhcp')
              .flatMap((p) => ipsOf(p.id).map((ip) => ({ port_id: p.id, mac_address: p.mac_address, ip_address: ip.ip_address, hostname: p.dns_name || defaultHostname(ip.ip_address) })))
          : [],
      };
    });

    // Security groups of the ports here, and the groups their rules refer to.
    const vmIds = vmPorts.map((p) => p.id);
    const membership = vmIds.length ? await inChunks(vmIds, (c) => db.selectFrom('neutron_port_security_groups').selectAll().where('port_id', 'in', c).execute()) : [];
    const groupIds = new Set(membership.map((m) => m.security_group_id));
    const rules = groupIds.size ? await db.selectFrom('neutron_security_group_rules').selectAll().where('security_group_id', 'in', [...groupIds]).execute() : [];
    for (const r of rules) if (r.remote_group_id) groupIds.add(r.remote_group_id);
    const allGroupIds = [...groupIds];
    const members = allGroupIds.length
      ? await db
          .selectFrom('neutron_port_security_groups')
          .innerJoin('neutron_ip_allocations', 'neutron_ip_allocations.port_id', 'neutron_port_security_groups.port_id')
          .select(['neutron_port_security_groups.security_group_id', 'neutron_ip_allocations.ip_address'])
          .where('neutron_port_security_groups.security_group_id', 'in', allGroupIds)
          .execute()
      : [];
    const security_groups: SecurityGroupState[] = allGroupIds.sort().map((gid) => ({
      id: gid,
      rules: rules
        .filter((r) => r.security_group_id === gid)
        .map((r) => ({
          id: r.id,
          direction: r.direction as 'ingress' | 'egress',
          ethertype: r.ethertype as 'IPv4' | 'IPv6',
          protocol: r.protocol,
          port_range_min: r.port_range_min,
          port_range_max: r.port_range_max,
          remote_ip_prefix: r.remote_ip_prefix,
          remote_group_id: r.remote_group_id,
        })),
      member_ips: [...new Set(members.filter((m) => m.security_group_id === gid).map((m) => m.ip_address))].sort(compareIp),
    }));

    const ports: PortState[] = vmPorts.map((p) => ({
      id: p.id,
      network_id: p.network_id,
      mac_address: p.mac_address,
      fixed_ips: ipsOf(p.id),
      device: devName('tap', p.id),
      device_id: p.device_id,
      admin_state_up: bool(p.admin_state_up),
      port_security_enabled: bool(p.port_security_enabled),
      security_group_ids: membership.filter((m) => m.port_id === p.id).map((m) => m.security_group_id).sort(),
      allowed_address_pairs: parseJson<Array<{ ip_address: string; mac_address: string }>>(p.allowed_address_pairs, []),
    }));

    const fips = routerIds.length ? await db.selectFrom('neutron_floatingips').selectAll().where('router_id', 'in', routerIds).execute() : [];
    const prefixOf = (subnetId: string) => parseCidr(subnetById.get(subnetId)?.cidr ?? '')?.prefixlen ?? 0;
    const routerStates: RouterState[] = routers.map((r) => {
      const gw = routerPorts.find((p) => p.router_id === r.id && p.port_type === 'network:router_gateway');
      const gwIps = gw ? ipsOf(gw.id) : [];
      const nextHop = gwIps.map((i) => subnetById.get(i.subnet_id)?.gateway_ip).find((g) => g && parseIp(g)?.version === 4) ?? null;
      return {
        id: r.id,
        admin_state_up: bool(r.admin_state_up),
        gateway: gw ? { port_id: gw.id, network_id: gw.network_id, mac_address: gw.mac_address, fixed_ips: gwIps.map((i) => ({ ...i, prefixlen: prefixOf(i.subnet_id) })), enable_snat: bool(r.enable_snat), next_hop: nextHop } : null,
        interfaces: routerPorts
          .filter((p) => p.router_id === r.id && p.port_type === 'network:router_interface')
          .flatMap((p) =>
            ipsOf(p.id).map((i) => ({ port_id: p.id, network_id: p.network_id, subnet_id: i.subnet_id, mac_address: p.mac_address, ip_address: i.ip_address, prefixlen: prefixOf(i.subnet_id), cidr: subnetById.get(i.subnet_id)?.cidr ?? '' })),
          ),
        routes: parseJson<Array<{ destination: string; nexthop: string }>>(r.routes, []),
        floating_ips: fips
          .filter((f) => f.router_id === r.id && f.fixed_port_id && f.fixed_ip_address)
          .map((f) => ({ id: f.id, floating_ip_address: f.floating_ip_address, fixed_ip_address: f.fixed_ip_address!, port_id: f.fixed_port_id! })),
      };
    });
    return { host, generation, networks, ports, routers: routerStates, security_groups };
  }
}

async function inChunks<T>(ids: string[], q: (c: string[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < ids.length; i += 500) out.push(...(await q(ids.slice(i, i + 500))));
  return out;
}

/** The state generation: a database counter, so it keeps increasing across restarts and API processes. */
export async function bumpGeneration(tx: Tx): Promise<number> {
  const db = tx as NetDb;
  // The increment takes the row lock (PostgreSQL) before the read, so two states never share a generation.
  await db.updateTable('neutron_counters').set((eb) => ({ value: eb('value', '+', 1) })).where('name', '=', 'generation').execute();
  const row = await db.selectFrom('neutron_counters').select('value').where('name', '=', 'generation').executeTakeFirstOrThrow();
  return Number(row.value);
}
