import type { Database } from '../../core/db.js';
import type { Bus, Json } from '../../core/bus.js';
import type { QuotaEngine } from '../../core/quota.js';
import type { Logger } from '../../core/log.js';
import { NetContext, NETWORK_QUOTAS, type Caller } from './context.js';
import { Networks } from './networks.js';
import { Ports } from './ports.js';
import { Routers } from './routers.js';
import { SecurityGroups } from './security-groups.js';
import { Tags } from './tags.js';
import { HostStates } from './host-state.js';
import { ComputeRpc } from './compute-rpc.js';
import { badRequest } from './errors.js';
import type { AllocateRequest } from '../protocol.js';

export interface NetworkServiceOptions {
  availabilityZone?: string;
}

/**
 * The network service (Neutron's server side): networks, subnets and IPAM,
 * ports, routers, floating IPs, security groups, quotas and tags over one
 * database, plus the `network` bus topic that agents and compute use. Every
 * committed change schedules a `sync` of the affected hosts' desired state.
 */
export class NetworkService {
  readonly ctx: NetContext;
  readonly networks: Networks;
  readonly ports: Ports;
  readonly routers: Routers;
  readonly securityGroups: SecurityGroups;
  readonly tags: Tags;
  readonly hosts: HostStates;
  readonly compute: ComputeRpc;
  private unserve: (() => void) | null = null;

  constructor(
    database: Database,
    readonly quota: QuotaEngine,
    log: Logger,
    private readonly bus: Bus | null,
    opts: NetworkServiceOptions = {},
  ) {
    this.ctx = new NetContext(database, quota, log, opts.availabilityZone ?? 'nova');
    for (const [k, v] of Object.entries(NETWORK_QUOTAS)) quota.register(k, v);
    this.networks = new Networks(this);
    this.ports = new Ports(this);
    this.routers = new Routers(this);
    this.securityGroups = new SecurityGroups(this);
    this.tags = new Tags(this);
    this.hosts = new HostStates(this, bus);
    this.compute = new ComputeRpc(this);
    this.ctx.onChange = () => this.hosts.scheduleSync();
  }

  /** Serves the `network` topic (protocol.ts). */
  serve(): void {
    if (!this.bus) return;
    // Adapts the handlers' types to the bus; an ApiError crosses it as a RemoteError with its status and Neutron type (code).
    const wrap =
      <A, R>(fn: (a: A) => Promise<R>) =>
      async (a: Json): Promise<Json> =>
        (await fn(a as unknown as A)) as unknown as Json;
    const hostArg = (a: { host?: unknown }) => {
      if (typeof a?.host !== 'string' || !a.host) throw badRequest('host is required');
      return a.host;
    };
    this.unserve = this.bus.serve('network', {
      register_agent: wrap((a: { host: string }) => this.hosts.registerAgent(hostArg(a))),
      get_host_state: wrap(async (a: { host: string }) => {
        const host = hostArg(a);
        await this.hosts.heartbeat(host);
        if (await this.hosts.assign()) this.hosts.scheduleSync();
        return this.hosts.hostState(host);
      }),
      heartbeat: wrap(async (a: { host: string }) => {
        await this.hosts.heartbeat(hostArg(a));
        return {};
      }),
      allocate_for_instance: wrap((a: AllocateRequest) => this.compute.allocate(a)),
      deallocate_for_instance: wrap((a: { instance_id: string; host?: string }) => this.compute.deallocate(a)),
      instance_ports: wrap((a: { instance_id: string }) => this.compute.ports(a)),
      ports_of_instances: wrap((a: { instance_ids: string[] }) => this.compute.portsOfInstances(a)),
      attach_port: wrap((a: Parameters<ComputeRpc['attach']>[0]) => this.compute.attach(a)),
      detach_port: wrap((a: { instance_id: string; port_id: string }) => this.compute.detach(a)),
      lookup_instance: wrap((a: { network_id?: string; router_id?: string; ip: string }) => this.compute.lookup(a)),
      project_security_groups: wrap(async (a: { project_id: string }) => ({
        security_groups: await this.ctx.db.selectFrom('neutron_security_groups').select(['id', 'name', 'description']).where('project_id', '=', a.project_id).orderBy('name').execute(),
      })),
      update_instance_security_groups: wrap((a: { instance_id: string; project_id: string; add?: string; remove?: string }) => this.compute.updateInstanceSecurityGroups(a)),
    });
  }

  async stop(): Promise<void> {
    this.unserve?.();
    this.unserve = null;
    this.hosts.stop();
  }

  // ------------------------------------------------------------------ quotas

  async quotaLimits(projectId: string): Promise<Record<string, number>> {
    return this.quota.limits(projectId, Object.keys(NETWORK_QUOTAS));
  }

  async quotaDefaults(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const r of Object.keys(NETWORK_QUOTAS)) out[r] = await this.quota.defaultLimit(r);
    return out;
  }

  async quotaDetails(projectId: string): Promise<Record<string, { limit: number; used: number; reserved: number }>> {
    const limits = await this.quotaLimits(projectId);
    const used = await this.ctx.countUsage(projectId);
    const out: Record<string, { limit: number; used: number; reserved: number }> = {};
    for (const r of Object.keys(NETWORK_QUOTAS)) out[r] = { limit: limits[r]!, used: used[r] ?? 0, reserved: 0 };
    return out;
  }

  async setQuotas(projectId: string, body: unknown): Promise<Record<string, number>> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('Resource body required for quota.');
    const entries = Object.entries(body as Record<string, unknown>).filter(([k]) => k !== 'project_id' && k !== 'tenant_id' && k !== 'force' && k !== 'check_limit');
    for (const [k, v] of entries) {
      if (!(k in NETWORK_QUOTAS)) throw badRequest(`Unrecognized attribute(s) '${k}'`);
      const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < -1) throw badRequest(`Invalid input for ${k}. Reason: '${String(v)}' should be an integer greater than or equal to -1.`);
    }
    for (const [k, v] of entries) await this.quota.setLimit(projectId, k, Number(v));
    return this.quotaLimits(projectId);
  }

  async deleteQuotas(projectId: string): Promise<void> {
    await this.quota.deleteLimits(projectId);
  }

  /** Projects with limits of their own (GET /v2.0/quotas). */
  async quotaProjects(): Promise<string[]> {
    const rows = await (this.ctx.db as unknown as import('kysely').Kysely<{ quota_limits: { project_id: string; resource: string } }>)
      .selectFrom('quota_limits')
      .select('project_id')
      .where('resource', 'in', Object.keys(NETWORK_QUOTAS))
      .distinct()
      .execute();
    return rows.map((r) => r.project_id).sort();
  }

  // ------------------------------------------------------------------ seeding

  /**
   * What `stratus up` seeds (idempotent; each step is skipped when its
   * resource is there, so an interrupted seed resumes): an external flat
   * network `public` with 172.24.4.0/24, and for the demo project a network
   * `private` (10.0.0.0/24, DHCP) routed to `public` by `router1`.
   */
  async seedNetworks(ids: { adminProjectId: string; demoProjectId: string }): Promise<void> {
    const admin: Caller = { projectId: ids.adminProjectId, userId: null, admin: true };
    const demo: Caller = { projectId: ids.demoProjectId, userId: null, admin: false };
    const db = this.ctx.db;
    let pub = await db.selectFrom('neutron_networks').selectAll().where('name', '=', 'public').where('external', '=', 1).executeTakeFirst();
    if (!pub) {
      await this.networks.create(admin, { name: 'public', 'router:external': true, shared: false, 'provider:network_type': 'flat', 'provider:physical_network': 'public' });
      pub = (await db.selectFrom('neutron_networks').selectAll().where('name', '=', 'public').where('external', '=', 1).executeTakeFirst())!;
    }
    if (!(await db.selectFrom('neutron_subnets').select('id').where('network_id', '=', pub.id).executeTakeFirst()))
      await this.networks.createSubnet(admin, pub, { name: 'public-subnet', ip_version: 4, cidr: '172.24.4.0/24', gateway_ip: '172.24.4.1', allocation_pools: [{ start: '172.24.4.10', end: '172.24.4.250' }], enable_dhcp: false });
    let priv = await db.selectFrom('neutron_networks').selectAll().where('name', '=', 'private').where('project_id', '=', ids.demoProjectId).executeTakeFirst();
    if (!priv) {
      await this.networks.create(demo, { name: 'private' });
      priv = (await db.selectFrom('neutron_networks').selectAll().where('name', '=', 'private').where('project_id', '=', ids.demoProjectId).executeTakeFirst())!;
    }
    let subnet = await db.selectFrom('neutron_subnets').selectAll().where('network_id', '=', priv.id).where('name', '=', 'private-subnet').executeTakeFirst();
    if (!subnet) {
      await this.networks.createSubnet(demo, priv, { name: 'private-subnet', ip_version: 4, cidr: '10.0.0.0/24', enable_dhcp: true });
      subnet = (await db.selectFrom('neutron_subnets').selectAll().where('network_id', '=', priv.id).where('name', '=', 'private-subnet').executeTakeFirst())!;
    }
    let router = await db.selectFrom('neutron_routers').selectAll().where('name', '=', 'router1').where('project_id', '=', ids.demoProjectId).executeTakeFirst();
    if (!router) {
      await this.routers.create(demo, { name: 'router1', external_gateway_info: { network_id: pub.id } });
      router = (await db.selectFrom('neutron_routers').selectAll().where('name', '=', 'router1').where('project_id', '=', ids.demoProjectId).executeTakeFirst())!;
    }
    const attached = await this.routers.interfaceSubnets(db, router.id);
    if (!attached.some((s) => s.id === subnet!.id)) await this.routers.addInterface(demo, router, { subnet_id: subnet.id });
    await this.securityGroups.ensureDefault(ids.demoProjectId);
  }
}
