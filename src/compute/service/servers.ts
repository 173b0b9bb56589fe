import type { Kysely } from 'kysely';
import type { AuthContext } from '../../core/context.js';
import type { Bus, Json } from '../../core/bus.js';
import type { Logger } from '../../core/log.js';
import { ApiError, badRequest, conflict, forbidden, notFound } from '../../core/errors.js';
import { hexId, uuid } from '../../core/ids.js';
import { bool, int, type Database } from '../../core/db.js';
import { OverQuotaError, type QuotaEngine } from '../../core/quota.js';
import type { ComputeTables, EmbeddedFlavor, InstanceRow } from '../store/tables.js';
import { FlavorService } from './flavors.js';
import type { ImagePort } from './ports.js';
import { TASK, VM } from './states.js';
import { sanitizeHostname } from './names.js';
import { NetworkClient, remoteToApi } from './network.js';
import { RemoteError } from '../../core/bus.js';
import type { InstancePort } from '../../network/protocol.js';
import type { PreparedBootVolume, ServerVolumes } from './volumes.js';

export const COMPUTE_QUOTAS: Record<string, number> = {
  instances: 10, cores: 20, ram: 51200, key_pairs: 100, server_groups: 10, server_group_members: 10, metadata_items: 128,
  injected_files: 5, injected_file_content_bytes: 10240, injected_file_path_bytes: 255,
};

export interface CreateServerInput {
  name: string;
  imageRef?: string;
  flavorRef: string;
  key_name?: string;
  user_data?: string;
  metadata?: Record<string, string>;
  availability_zone?: string;
  min_count?: number;
  max_count?: number;
  config_drive?: boolean;
  accessIPv4?: string;
  accessIPv6?: string;
  description?: string | null;
  tags?: string[];
  groupId?: string;
  adminPass?: string;
  /** Boot from volume (block_device_mapping_v2); then imageRef is not needed. */
  bootVolume?: PreparedBootVolume;
  /** Nova's `networks`: a list of { uuid, port, fixed_ip }, or 'auto' / 'none'. Absent = the only usable network, if any. */
  networks?: unknown;
  /** Security group names (`security_groups: [{ name }]`). */
  securityGroups?: string[];
}

export type RequestedNetworks = 'auto' | 'none' | Array<{ network_id?: string; port_id?: string; fixed_ip?: string }>;

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const IP_RE = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]+:[0-9a-f:.]*)$/i;

/** Validates Nova's `networks` attribute (400 on anything malformed). */
export function parseRequestedNetworks(v: unknown, maxCount: number): RequestedNetworks {
  // Not given (before microversion 2.37): the project's only usable network, or
  // no NIC at all when it has none, as Nova does; 'auto' insists on one.
  if (v === undefined || v === null) return [];
  if (v === 'auto') return 'auto';
  if (v === 'none') return 'none';
  if (!Array.isArray(v)) throw badRequest("Invalid input for field/attribute networks. Value: " + JSON.stringify(v) + ". It must be a list, 'auto' or 'none'.");
  const out: Array<{ network_id?: string; port_id?: string; fixed_ip?: string }> = [];
  for (const n of v as unknown[]) {
    if (typeof n !== 'object' || n === null || Array.isArray(n)) throw badRequest('Invalid input for field/attribute networks: each entry must be an object.');
    const e = n as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!['uuid', 'port', 'fixed_ip', 'tag'].includes(k)) throw badRequest(`Invalid input for field/attribute networks. Additional properties are not allowed ('${k}' was unexpected)`);
    const r: { network_id?: string; port_id?: string; fixed_ip?: string } = {};
    if (e.uuid !== undefined && e.uuid !== null) {
      if (typeof e.uuid !== 'string' || !UUID_RE.test(e.uuid)) throw badRequest(`Bad networks format: network uuid is not in proper format (${String(e.uuid)})`);
      r.network_id = e.uuid;
    }
    if (e.port !== undefined && e.port !== null) {
      if (typeof e.port !== 'string' || !UUID_RE.test(e.port)) throw badRequest(`Bad networks format: port uuid is not in proper format (${String(e.port)})`);
      r.port_id = e.port;
    }
    if (e.fixed_ip !== undefined && e.fixed_ip !== null) {
      if (typeof e.fixed_ip !== 'string' || !IP_RE.test(e.fixed_ip)) throw badRequest(`Invalid fixed IP address (${String(e.fixed_ip)})`);
      r.fixed_ip = e.fixed_ip;
    }
    if (!r.network_id && !r.port_id) throw badRequest('Bad networks format: a network uuid or a port is required.');
    if (r.port_id && maxCount > 1) throw badRequest('Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.');
    if (r.fixed_ip && maxCount > 1) throw badRequest('Unable to launch multiple instances with a single configured fixed IP. Please launch your instance one by one with different fixed IPs.');
    out.push(r);
  }
  return out;
}

const DEFAULT_AZ = 'nova';

/**
 * The API side of servers: validation, quota, state guards (compare-and-set
 * on task_state), instance actions; the work itself goes to the conductor
 * and the host's compute agent over the bus.
 */
export class ServerService {
  readonly db: Kysely<ComputeTables>;
  readonly flavors: FlavorService;
  /** The network service and host agents (ports, addresses), over the bus. */
  readonly network: NetworkClient;
  /** Server volumes (attach/detach, boot from volume); set when the volume service runs. */
  volumes: ServerVolumes | null = null;
  constructor(
    private readonly database: Database,
    private readonly bus: Bus,
    private readonly quota: QuotaEngine,
    /** How actions (rebuild, rescue, snapshot) reach the image service. */
    readonly images: ImagePort,
    private readonly log: Logger,
  ) {
    this.db = database.db as unknown as Kysely<ComputeTables>;
    this.flavors = new FlavorService(this.db);
    this.network = new NetworkClient(bus);
  }

  /** An instance visible to the caller (own project, or any for cloud admins); else 404. */
  async get(id: string, ctx: AuthContext | null, admin: boolean, allowDeleted = false): Promise<InstanceRow> {
    const r = await this.db.selectFrom('nova_instances').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r || (!allowDeleted && bool(r.deleted)) || (!admin && r.project_id !== ctx?.projectId)) throw notFound(`Instance ${id} could not be found.`);
    return r;
  }

  async fault(id: string): Promise<{ code: number; message: string; details: string; created: number } | null> {
    const f = await this.db.selectFrom('nova_instance_faults').selectAll().where('instance_id', '=', id).orderBy('created_at', 'desc').limit(1).executeTakeFirst();
    return f ? { code: f.code, message: f.message, details: f.details, created: Number(f.created_at) } : null;
  }

  async recordAction(inst: { id: string; project_id: string }, action: string, ctx: AuthContext, requestId: string): Promise<string> {
    const id = hexId();
    const now = Date.now();
    await this.db.insertInto('nova_instance_actions').values({ id, instance_id: inst.id, action, request_id: requestId, user_id: ctx.userId, project_id: inst.project_id, message: null, start_time: now, updated_at: now }).execute();
    return id;
  }

  async create(ctx: AuthContext, input: CreateServerInput, requestId: string, admin: boolean): Promise<{ rows: InstanceRow[]; reservationId: string }> {
    if (!ctx.projectId) throw forbidden('Servers can only be created with a project-scoped token.');
    const projectId = ctx.projectId;
    const flavor = await this.flavors.getFor(input.flavorRef, projectId, admin).catch(() => {
      throw badRequest(`Flavor ${input.flavorRef} could not be found.`);
    });
    if (!input.imageRef && !input.bootVolume) throw badRequest('Missing imageRef attribute');
    const image = input.bootVolume ? input.bootVolume.image : await this.images.getImageForBoot(ctx, input.imageRef!).catch((e: unknown) => {
      if (e instanceof ApiError && e.status >= 500) throw e;
      throw badRequest(`Image ${input.imageRef} could not be found.`);
    });
    if (image.status !== 'active') throw badRequest(`Image ${image.id} is not active.`);
    if (flavor.ram < image.minRam) throw badRequest("Flavor's memory is too small for requested image.");
    if (flavor.disk > 0 && flavor.disk < image.minDisk) throw badRequest("Flavor's disk is too small for requested image.");
    if (flavor.disk > 0 && image.size && image.size > flavor.disk * 1024 ** 3) throw badRequest("Flavor's disk is too small for requested image.");
    let keyData: string | null = null;
    if (input.key_name) {
      const k = await this.db.selectFrom('nova_keypairs').selectAll().where('user_id', '=', ctx.userId).where('name', '=', input.key_name).executeTakeFirst();
      if (!k) throw badRequest('Invalid key_name provided.');
      keyData = JSON.stringify({ name: k.name, type: k.type, data: k.public_key });
    }
    const az = input.availability_zone ?? null;
    if (az) {
      const zones = await this.db.selectFrom('nova_compute_hosts').select('availability_zone').execute();
      const [zone] = az.split(':');
      if (!zones.some((z) => z.availability_zone === zone)) throw badRequest(`The requested availability zone is not available`);
    }
    let userData: string | null = null;
    if (input.user_data !== undefined && input.user_data !== null) {
      const decoded = Buffer.from(input.user_data, 'base64');
      if (decoded.toString('base64').replace(/=+$/, '') !== input.user_data.replace(/\s/g, '').replace(/=+$/, ''))
        throw badRequest('User data needs to be valid base 64.');
      if (decoded.length > 65535) throw badRequest('User data too large. User data must be no larger than 65535 bytes once base64 encoded.');
      userData = input.user_data;
    }
    const meta = input.metadata ?? {};
    const metaLimit = (await this.quota.limits(projectId, ['metadata_items'])).metadata_items!;
    if (metaLimit >= 0 && Object.keys(meta).length > metaLimit) throw forbidden(`Quota exceeded for metadata_items: Requested ${Object.keys(meta).length}, but already used 0 of ${metaLimit} metadata_items`);
    if (input.groupId) {
      const g = await this.db.selectFrom('nova_server_groups').selectAll().where('id', '=', input.groupId).executeTakeFirst();
      if (!g || (g.project_id !== projectId && !admin)) throw badRequest(`Invalid server group ${input.groupId}.`);
    }
    const min = input.min_count ?? 1;
    const max = input.max_count ?? min;
    if (min < 1) throw badRequest("Invalid input for field/attribute min_count. Value: 0. 0 is less than the minimum of 1");
    if (input.max_count !== undefined && min > max) throw badRequest('min_count must be <= max_count');
    const requested = parseRequestedNetworks(input.networks, max);
    // A config drive when asked for, or when no metadata service can reach the
    // guest (no network service, or no NIC): Nova's force_config_drive case.
    const configDrive = input.config_drive === true || requested === 'none' || !(await this.network.available());
    const securityGroups = [...new Set(input.securityGroups ?? [])];
    if (input.groupId) {
      const limit = (await this.quota.limits(projectId, ['server_group_members'])).server_group_members!;
      const members = await this.db.selectFrom('nova_instances').select('id').where('server_group_id', '=', input.groupId).where('deleted', '=', 0).execute();
      if (limit >= 0 && members.length + min > limit) throw forbidden(`Quota exceeded for server_group_members: Requested ${min}, but already used ${members.length} of ${limit} server_group_members`);
    }

    // Quota: take as many as fit between min and max, never fewer than min.
    let count = max;
    let reservation: string | null = null;
    for (;;) {
      try {
        reservation = await this.quota.reserve(projectId, { instances: count, cores: count * flavor.vcpus, ram: count * flavor.ram });
        break;
      } catch (e) {
        if (!(e instanceof OverQuotaError)) throw e;
        if (count <= min) {
          const unit = e.resource === 'instances' ? 1 : e.resource === 'cores' ? flavor.vcpus : flavor.ram;
          throw new ApiError(403, `Quota exceeded for ${e.resource}: Requested ${count * unit}, but already used ${e.inUse} of ${e.limit} ${e.resource}`, 'OverQuota');
        }
        count--;
      }
    }
    const emb: EmbeddedFlavor = { id: flavor.id, name: flavor.name, vcpus: flavor.vcpus, ram: flavor.ram, disk: flavor.disk, ephemeral: flavor.ephemeral, swap: flavor.swap, extra_specs: flavor.extra_specs };
    const reservationId = `r-${hexId().slice(0, 8)}`;
    const now = Date.now();
    const rows: InstanceRow[] = [];
    try {
      await this.db.transaction().execute(async (tx) => {
        for (let i = 0; i < count; i++) {
          const name = count > 1 ? `${input.name}-${i + 1}` : input.name;
          const row: InstanceRow = {
            id: uuid(), name, project_id: projectId, user_id: ctx.userId, image_id: image.id, flavor: JSON.stringify(emb), old_flavor: null,
            key_name: input.key_name ?? null, key_data: keyData, user_data: userData, availability_zone: az?.split(':')[0] ?? DEFAULT_AZ, host: null,
            vm_state: VM.BUILDING, task_state: TASK.SCHEDULING, power_state: 0, locked: 0, locked_by: null,
            config_drive: int(configDrive), requested_networks: JSON.stringify(requested), security_groups: JSON.stringify(securityGroups), metadata: JSON.stringify(meta), tags: JSON.stringify(input.tags ?? []), description: input.description ?? null,
            reservation_id: reservationId, launch_index: i, access_ip_v4: input.accessIPv4 ?? '', access_ip_v6: input.accessIPv6 ?? '',
            admin_pass_set: 0, server_group_id: input.groupId ?? null, created_at: now, updated_at: now, launched_at: null, terminated_at: null, deleted: 0,
          };
          await tx.insertInto('nova_instances').values(row).execute();
          const aid = hexId();
          await tx.insertInto('nova_instance_actions').values({ id: aid, instance_id: row.id, action: 'create', request_id: requestId, user_id: ctx.userId, project_id: projectId, message: null, start_time: now, updated_at: now }).execute();
          rows.push(row);
        }
      });
      await this.quota.commit(reservation!);
    } catch (e) {
      await this.quota.rollback(reservation!);
      throw e;
    }
    if (input.bootVolume) {
      try {
        await input.bootVolume.bind(rows[0]!.id);
      } catch (e) {
        // nothing of the server may remain when its boot volume cannot be had
        await input.bootVolume.unbind(rows[0]!.id).catch(() => undefined);
        await this.db.deleteFrom('nova_instance_actions').where('instance_id', '=', rows[0]!.id).execute();
        await this.db.deleteFrom('nova_instances').where('id', '=', rows[0]!.id).execute();
        await this.quota.release(projectId, { instances: 1, cores: flavor.vcpus, ram: flavor.ram });
        throw e;
      }
    }
    for (const r of rows) await this.bus.cast('conductor', 'build', { instanceId: r.id, ctx: ctx as unknown as Json, imageId: image.id });
    return { rows, reservationId };
  }

  /**
   * Moves task_state from one of `expected` (default: idle) to `next` atomically;
   * 409 when another operation got there first or the state does not allow it.
   */
  async casTask(inst: InstanceRow, action: string, allowedVm: string[], next: string, opts: { expected?: (string | null)[]; admin: boolean; ctx: AuthContext }): Promise<InstanceRow> {
    if (bool(inst.locked) && !opts.admin) throw conflict(`Instance ${inst.id} is locked`);
    // Work for a host needs one: refuse before touching task_state.
    if (!inst.host) throw conflict(`Cannot '${action}' instance ${inst.id} while it is in vm_state ${inst.vm_state}: it has no host.`);
    if (!allowedVm.includes(inst.vm_state))
      throw conflict(`Cannot '${action}' instance ${inst.id} while it is in vm_state ${inst.vm_state}`);
    const expected = opts.expected ?? [null];
    if (!expected.includes(inst.task_state))
      throw conflict(`Cannot '${action}' instance ${inst.id} while it is in task_state ${inst.task_state}`);
    let q = this.db.updateTable('nova_instances').set({ task_state: next, updated_at: Date.now() }).where('id', '=', inst.id).where('vm_state', '=', inst.vm_state);
    q = inst.task_state === null ? q.where('task_state', 'is', null) : q.where('task_state', '=', inst.task_state);
    const res = await q.executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw conflict(`Cannot '${action}' instance ${inst.id}: its state changed meanwhile.`);
    return { ...inst, task_state: next };
  }

  /** Hands an action to the instance's host agent. */
  async toHost(inst: InstanceRow, method: string, actionId: string, args: Record<string, Json> = {}): Promise<void> {
    if (!inst.host) throw conflict(`Instance ${inst.id} has no host.`);
    await this.bus.cast(`compute.${inst.host}`, method, { instanceId: inst.id, actionId, ...args });
  }

  async delete(ctx: AuthContext, inst: InstanceRow, requestId: string, admin: boolean): Promise<void> {
    if (bool(inst.locked) && !admin) throw conflict(`Instance ${inst.id} is locked`);
    if (inst.task_state === TASK.DELETING) return;
    const actionId = await this.recordAction(inst, 'delete', ctx, requestId);
    await this.db.updateTable('nova_instances').set({ task_state: TASK.DELETING, updated_at: Date.now() }).where('id', '=', inst.id).execute();
    if (!inst.host) {
      // Never scheduled (or failed before): nothing on any host to clean.
      await this.bus.call('conductor', 'finish_delete', { instanceId: inst.id, actionId });
      return;
    }
    await this.toHost(inst, 'delete', actionId);
  }

  async setMetadata(inst: InstanceRow, meta: Record<string, string>, replace: boolean, admin = true): Promise<Record<string, string>> {
    if (bool(inst.locked) && !admin) throw conflict(`Instance ${inst.id} is locked`);
    const next = replace ? meta : { ...(JSON.parse(inst.metadata) as Record<string, string>), ...meta };
    const limit = (await this.quota.limits(inst.project_id, ['metadata_items'])).metadata_items!;
    if (limit >= 0 && Object.keys(next).length > limit) throw forbidden(`Quota exceeded for metadata_items: Requested ${Object.keys(next).length}, but already used 0 of ${limit} metadata_items`);
    await this.db.updateTable('nova_instances').set({ metadata: JSON.stringify(next), updated_at: Date.now() }).where('id', '=', inst.id).execute();
    return next;
  }

  async update(inst: InstanceRow, patch: { name?: string; description?: string | null; accessIPv4?: string; accessIPv6?: string }): Promise<void> {
    const set: Partial<InstanceRow> = { updated_at: Date.now() };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.description !== undefined) set.description = patch.description;
    if (patch.accessIPv4 !== undefined) set.access_ip_v4 = patch.accessIPv4;
    if (patch.accessIPv6 !== undefined) set.access_ip_v6 = patch.accessIPv6;
    await this.db.updateTable('nova_instances').set(set).where('id', '=', inst.id).execute();
  }

  async setLock(inst: InstanceRow, locked: boolean, ctx: AuthContext, admin: boolean): Promise<void> {
    if (!locked && bool(inst.locked) && inst.locked_by === 'admin' && !admin) throw forbidden('Only an admin can unlock an instance locked by an admin.');
    await this.db.updateTable('nova_instances').set({ locked: int(locked), locked_by: locked ? (admin && ctx.projectId !== inst.project_id ? 'admin' : 'owner') : null, updated_at: Date.now() }).where('id', '=', inst.id).execute();
  }

  /** Nova's interface attach: a port from the network service, hot-plugged by the instance's host. */
  async attachInterface(inst: InstanceRow, req: { port_id?: string; network_id?: string; fixed_ip?: string }, admin: boolean): Promise<InstancePort> {
    if (bool(inst.locked) && !admin) throw conflict(`Instance ${inst.id} is locked`);
    if (!inst.host || inst.task_state || ![VM.ACTIVE, VM.STOPPED, VM.PAUSED].includes(inst.vm_state as never))
      throw conflict(`Cannot 'attach_interface' instance ${inst.id} while it is in vm_state ${inst.vm_state}`);
    if (!(await this.network.available())) throw new ApiError(503, 'The network service is not available.', 'ServiceUnavailable');
    const port = await this.network.attach({ instance_id: inst.id, host: inst.host, project_id: inst.project_id, ...req });
    try {
      const r = (await this.bus.call(`compute.${inst.host}`, 'attach_interface', { instanceId: inst.id, port: port as unknown as Json }, { timeoutMs: 120_000 })) as { device: string };
      return { ...port, device: r.device };
    } catch (e) {
      await this.network.detach(inst.id, port.id).catch((err) => this.log.warn({ err, port: port.id }, 'could not give back the port of a failed attach'));
      throw new ApiError(500, `Failed to attach network adapter device to ${inst.id}: ${(e as Error).message}`, 'InterfaceAttachFailed');
    }
  }

  async detachInterface(inst: InstanceRow, portId: string, admin: boolean): Promise<void> {
    if (bool(inst.locked) && !admin) throw conflict(`Instance ${inst.id} is locked`);
    const port = (await this.network.instancePorts(inst.id)).find((p) => p.id === portId);
    if (!port) throw notFound(`Port ${portId} is not attached`);
    if (!inst.host || inst.task_state) throw conflict(`Cannot 'detach_interface' instance ${inst.id} while it is in task_state ${inst.task_state}`);
    await this.bus.call(`compute.${inst.host}`, 'detach_interface', { instanceId: inst.id, portId, device: port.device }, { timeoutMs: 120_000 });
    await this.network.detach(inst.id, portId);
  }

  /** addSecurityGroup / removeSecurityGroup: applied to every port of the instance by the network service. */
  async changeSecurityGroup(inst: InstanceRow, op: 'add' | 'remove', name: string): Promise<void> {
    if (!(await this.network.available())) throw new ApiError(503, 'The network service is not available.', 'ServiceUnavailable');
    let r: { security_groups: string[] };
    try {
      r = (await this.bus.call('network', 'update_instance_security_groups', { instance_id: inst.id, project_id: inst.project_id, [op]: name }, { timeoutMs: 60_000 })) as { security_groups: string[] };
    } catch (e) {
      if (e instanceof RemoteError) throw remoteToApi(e);
      throw e;
    }
    await this.db.updateTable('nova_instances').set({ security_groups: JSON.stringify(r.security_groups), updated_at: Date.now() }).where('id', '=', inst.id).execute();
  }

  hostnameOf(inst: InstanceRow): string {
    return sanitizeHostname(inst.name, `server-${inst.id.slice(0, 8)}`);
  }

}
