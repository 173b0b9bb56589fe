import type { Kysely } from 'kysely';
import type { AuthContext } from '../../core/context.js';
import type { Bus, Json } from '../../core/bus.js';
import type { Logger } from '../../core/log.js';
import { hexId } from '../../core/ids.js';
import { bool, type Database } from '../../core/db.js';
import type { QuotaEngine } from '../../core/quota.js';
import type { ComputeTables, EmbeddedFlavor, InstanceRow } from '../store/tables.js';
import { Scheduler, NoValidHost } from './scheduler.js';
import type { ImagePort } from './ports.js';
import { TASK, VM } from './states.js';
import { sanitizeHostname } from './names.js';
import type { RequestedNetworks } from './servers.js';
import type { ServerVolumes } from './volumes.js';

/** What the agent needs to build an instance (sent over the bus, JSON). */
export interface BuildSpec {
  instanceId: string;
  actionId: string;
  name: string;
  hostname: string;
  projectId: string;
  vcpus: number;
  memoryMb: number;
  rootGb: number;
  imageId: string;
  imagePath: string;
  imageFormat: string;
  availabilityZone: string;
  launchIndex: number;
  metadata: Record<string, string>;
  keyData: { name: string; type: string; data: string } | null;
  userData: string | null;
  /** As the user asked (see RequestedNetworks); the agent allocates the ports on its host. */
  requestedNetworks: RequestedNetworks;
  securityGroups: string[];
  /** Attach a config drive (else the guest reads the metadata service). */
  configDrive: boolean;
  /** Boot from volume: the root disk is this volume's file (see compute/service/volumes.ts). */
  bootVolume?: { volumeId: string; path: string; format: 'qcow2' };
}

/**
 * The conductor owns the database side of long operations: scheduling,
 * state transitions reported by agents, faults and action events. Agents
 * never touch the database; they call these methods over the bus, which is
 * what lets an agent run on another host.
 */
export class Conductor {
  private readonly db: Kysely<ComputeTables>;
  readonly scheduler: Scheduler;
  /** Boot volumes and volume clean-up on delete; set when the volume service runs. */
  volumes: ServerVolumes | null = null;
  constructor(
    database: Database,
    private readonly bus: Bus,
    private readonly quota: QuotaEngine,
    private readonly images: ImagePort,
    private readonly log: Logger,
  ) {
    this.db = database.db as unknown as Kysely<ComputeTables>;
    this.scheduler = new Scheduler(database);
  }

  serve(): () => void {
    const h = (fn: (a: Record<string, unknown>) => Promise<unknown>) => async (a: Json) => (await fn(a as Record<string, unknown>)) as Json;
    return this.bus.serve('conductor', {
      build: h((a) => this.build(a.instanceId as string, a.ctx as unknown as AuthContext)),
      instance_update: h((a) => this.instanceUpdate(a.instanceId as string, a.set as Partial<InstanceRow>, a.expectedTask as (string | null)[] | undefined)),
      add_fault: h((a) => this.addFault(a.instanceId as string, a.code as number, a.message as string, (a.details as string) ?? '')),
      event_start: h((a) => this.eventStart(a.actionId as string, a.event as string, a.host as string)),
      event_finish: h((a) => this.eventFinish(a.actionId as string, a.event as string, a.result as string, a.traceback as string | undefined)),
      finish_delete: h((a) => this.finishDelete(a.instanceId as string, a.actionId as string | undefined)),
      host_report: h((a) => this.hostReport(a as never)),
      host_instances: h(async (a) => (await this.db.selectFrom('nova_instances').selectAll().where('host', '=', a.host as string).where('deleted', '=', 0).execute()) as unknown as Json),
      get_instance: h(async (a) => (await this.db.selectFrom('nova_instances').selectAll().where('id', '=', a.instanceId as string).executeTakeFirst()) ?? null),
      upload_snapshot: h((a) => this.uploadSnapshot(a as never)),
      image_path: h(async (a) => {
        const img = await this.images.getImageForBoot(a.ctx as unknown as AuthContext, a.imageId as string);
        return { path: img.localPath, format: img.diskFormat };
      }),
      free_allocation: h(async (a) => {
        // A failed or interrupted build holds no host capacity (Nova deletes its allocation).
        await this.scheduler.free(a.instanceId as string);
        await this.instanceUpdate(a.instanceId as string, { host: null });
        return true;
      }),
      abort_resize: h((a) => this.abortResize(a.instanceId as string, a.host as string)),
      abort_snapshot: h(async (a) => {
        await this.images.deleteImage?.(a.ctx as unknown as AuthContext, a.imageId as string).catch((e) => this.log.warn({ err: e }, 'could not delete the image of a failed snapshot'));
        return true;
      }),
      reclaim: h(async (a) => {
        await this.scheduler.reclaim(a.instanceId as string, a.host as string, a.resources as never);
        return true;
      }),
    });
  }

  async instanceUpdate(id: string, set: Partial<InstanceRow>, expectedTask?: (string | null)[]): Promise<boolean> {
    let q = this.db.updateTable('nova_instances').set({ ...set, updated_at: Date.now() }).where('id', '=', id);
    if (expectedTask) {
      const nonNull = expectedTask.filter((t): t is string => t !== null);
      q = q.where((eb) => eb.or([...(expectedTask.includes(null) ? [eb('task_state', 'is', null)] : []), ...(nonNull.length ? [eb('task_state', 'in', nonNull)] : [])]));
    }
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async addFault(instanceId: string, code: number, message: string, details = ''): Promise<void> {
    await this.db.insertInto('nova_instance_faults').values({ id: hexId(), instance_id: instanceId, code, message: message.slice(0, 255), details: details.slice(0, 65535), created_at: Date.now() }).execute();
  }
  async eventStart(actionId: string, event: string, host: string | null): Promise<void> {
    await this.db.insertInto('nova_instance_action_events').values({ id: hexId(), action_id: actionId, event, result: null, traceback: null, host, start_time: Date.now(), finish_time: null }).execute();
  }
  async eventFinish(actionId: string, event: string, result: string, traceback?: string): Promise<void> {
    const now = Date.now();
    await this.db.updateTable('nova_instance_action_events').set({ result, traceback: traceback ?? null, finish_time: now }).where('action_id', '=', actionId).where('event', '=', event).where('finish_time', 'is', null).execute();
    await this.db.updateTable('nova_instance_actions').set({ updated_at: now, ...(result === 'Error' ? { message: 'Error' } : {}) }).where('id', '=', actionId).execute();
  }

  private async actionIdFor(instanceId: string, action: string): Promise<string> {
    const a = await this.db.selectFrom('nova_instance_actions').select('id').where('instance_id', '=', instanceId).where('action', '=', action).orderBy('start_time', 'desc').limit(1).executeTakeFirst();
    return a?.id ?? '';
  }

  /** Schedules a new instance and hands it to its host; ERROR with a fault when no host fits (G7/G8). */
  async build(instanceId: string, ctx: AuthContext): Promise<void> {
    const inst = await this.db.selectFrom('nova_instances').selectAll().where('id', '=', instanceId).executeTakeFirst();
    if (!inst || bool(inst.deleted)) return;
    const actionId = await this.actionIdFor(instanceId, 'create');
    await this.eventStart(actionId, 'conductor_schedule_and_build_instances', null);
    const flavor = JSON.parse(inst.flavor) as EmbeddedFlavor;
    try {
      if (inst.task_state === TASK.DELETING) throw new Error('deleted while scheduling');
      const bootImage = inst.image_id === '' ? await this.volumes?.bootImage(instanceId) : null;
      if (inst.image_id === '' && !bootImage) throw new Error('the server has neither an image nor a boot volume');
      const image = bootImage ?? (await this.images.getImageForBoot(ctx, inst.image_id));
      let group: { policy: string; hosts: string[] } | undefined;
      if (inst.server_group_id) {
        const g = await this.db.selectFrom('nova_server_groups').selectAll().where('id', '=', inst.server_group_id).executeTakeFirst();
        const members = await this.db.selectFrom('nova_instances').select('host').where('server_group_id', '=', inst.server_group_id).where('deleted', '=', 0).where('id', '!=', inst.id).execute();
        if (g) group = { policy: g.policy, hosts: members.map((m) => m.host).filter((h): h is string => !!h) };
      }
      const host = await this.scheduler.selectAndClaim({
        instanceId, vcpus: flavor.vcpus, memoryMb: flavor.ram, diskGb: flavor.disk, availabilityZone: inst.availability_zone === 'nova' ? null : inst.availability_zone,
        group, imageProperties: image.properties,
      });
      const claimed = await this.instanceUpdate(instanceId, { host, task_state: TASK.SPAWNING }, [TASK.SCHEDULING]);
      if (!claimed) {
        await this.scheduler.free(instanceId);
        // deleted meanwhile: finish the delete here, nothing was built
        await this.finishDelete(instanceId, undefined);
        return;
      }
      await this.eventFinish(actionId, 'conductor_schedule_and_build_instances', 'Success');
      const spec: BuildSpec = {
        instanceId, actionId, name: inst.name, hostname: sanitizeHostname(inst.name, `server-${inst.id.slice(0, 8)}`), projectId: inst.project_id,
        vcpus: flavor.vcpus, memoryMb: flavor.ram, rootGb: flavor.disk, imageId: image.id, imagePath: image.localPath, imageFormat: image.diskFormat,
        availabilityZone: inst.availability_zone, launchIndex: inst.launch_index, metadata: JSON.parse(inst.metadata) as Record<string, string>,
        keyData: inst.key_data ? (JSON.parse(inst.key_data) as BuildSpec['keyData']) : null, userData: inst.user_data,
        requestedNetworks: inst.requested_networks ? (JSON.parse(inst.requested_networks) as RequestedNetworks) : [],
        securityGroups: JSON.parse(inst.security_groups ?? '[]') as string[],
        configDrive: bool(inst.config_drive),
        ...(bootImage ? { bootVolume: await this.volumes!.connectBoot(instanceId, host) } : {}),
      };
      await this.bus.cast(`compute.${host}`, 'build', spec as unknown as Json);
    } catch (e) {
      const err = e as Error;
      const msg = err instanceof NoValidHost ? err.message : `Build of instance ${instanceId} failed: ${err.message}`;
      this.log.warn({ instanceId, err: err.message }, 'scheduling failed');
      await this.addFault(instanceId, err instanceof NoValidHost ? 500 : 500, msg, err instanceof NoValidHost ? '' : (err.stack ?? ''));
      await this.instanceUpdate(instanceId, { vm_state: VM.ERROR, task_state: null });
      await this.eventFinish(actionId, 'conductor_schedule_and_build_instances', 'Error', err.stack);
    }
  }

  /** Marks an instance deleted and gives back its quota and allocation. */
  async finishDelete(instanceId: string, actionId: string | undefined): Promise<void> {
    const inst = await this.db.selectFrom('nova_instances').selectAll().where('id', '=', instanceId).executeTakeFirst();
    if (!inst || bool(inst.deleted)) return;
    const now = Date.now();
    const flavor = JSON.parse(inst.flavor) as EmbeddedFlavor;
    await this.db.updateTable('nova_instances').set({ deleted: 1, vm_state: VM.DELETED, task_state: null, power_state: 0, terminated_at: now, updated_at: now }).where('id', '=', instanceId).execute();
    await this.scheduler.free(instanceId);
    await this.quota.release(inst.project_id, { instances: 1, cores: flavor.vcpus, ram: flavor.ram });
    await this.volumes?.instanceDeleted(instanceId);
    if (actionId) await this.db.updateTable('nova_instance_actions').set({ updated_at: now }).where('id', '=', actionId).execute();
  }

  async hostReport(h: { host: string; availabilityZone: string; vcpus: number; memoryMb: number; diskGb: number; hypervisorType: string; hypervisorVersion: string; accel: string }): Promise<void> {
    const now = Date.now();
    const existing = await this.db.selectFrom('nova_compute_hosts').select('id').where('host', '=', h.host).executeTakeFirst();
    const values = { availability_zone: h.availabilityZone, vcpus: h.vcpus, memory_mb: h.memoryMb, disk_gb: h.diskGb, hypervisor_type: h.hypervisorType, hypervisor_version: h.hypervisorVersion, accel: h.accel, heartbeat_at: now };
    if (existing) await this.db.updateTable('nova_compute_hosts').set(values).where('host', '=', h.host).execute();
    else {
      const max = await this.db.selectFrom('nova_compute_hosts').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
      await this.db.insertInto('nova_compute_hosts').values({ id: Number(max?.m ?? 0) + 1, host: h.host, cpu_ratio: 16, ram_ratio: 1.5, disk_ratio: 1, status: 'enabled', disabled_reason: null, forced_down: 0, created_at: now, ...values }).execute();
    }
  }

  /** A resize that failed on the host: the old flavor, its quota and its allocation come back. */
  async abortResize(instanceId: string, host: string): Promise<boolean> {
    const inst = await this.db.selectFrom('nova_instances').selectAll().where('id', '=', instanceId).executeTakeFirst();
    if (!inst?.old_flavor) return false;
    const old = JSON.parse(inst.old_flavor) as EmbeddedFlavor;
    const cur = JSON.parse(inst.flavor) as EmbeddedFlavor;
    await this.instanceUpdate(instanceId, { flavor: inst.old_flavor, old_flavor: null });
    const dv = cur.vcpus - old.vcpus, dr = cur.ram - old.ram;
    if (dv > 0 || dr > 0) await this.quota.release(inst.project_id, { cores: Math.max(0, dv), ram: Math.max(0, dr) });
    await this.scheduler.reclaim(instanceId, host, { vcpus: old.vcpus, memoryMb: old.ram, diskGb: old.disk }).catch(() => undefined);
    return true;
  }

  /** Agent wrote a snapshot file; it becomes the image's data. */
  async uploadSnapshot(a: { ctx: AuthContext; imageId?: string; name: string; path: string; properties: Record<string, string> }): Promise<{ id: string }> {
    return this.images.createImageFromFile(a.ctx, { name: a.name, diskFormat: 'qcow2', path: a.path, properties: a.properties, ...(a.imageId ? { imageId: a.imageId } : {}) } as never);
  }
}
