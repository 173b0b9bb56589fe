import type { AuthContext } from '../../core/context.js';
import type { Bus, Json } from '../../core/bus.js';
import type { Logger } from '../../core/log.js';
import { ApiError, badRequest, conflict, notFound } from '../../core/errors.js';
import type { InstanceRow } from '../store/tables.js';
import { VM } from './states.js';
import { DETACH_TIMEOUT_S } from '../drivers/driver.js';

/** A volume as compute sees it. */
export interface ComputeVolume {
  id: string;
  status: string;
  size: number;
  bootable: boolean;
  multiattach: boolean;
  projectId: string;
  imageMetadata: Record<string, string>;
}

/** One attachment of a volume to an instance (Nova's block device mapping, kept by the volume service). */
export interface InstanceAttachment {
  attachmentId: string;
  volumeId: string;
  /** `/dev/vdb`...; the boot volume is `/dev/vda`. */
  device: string | null;
  status: string;
  deleteOnTermination: boolean;
}

/**
 * What compute needs from the volume service (Nova's cinder API wrapper).
 * In process for the all-in-one cloud; the calls are plain data so they can
 * go over the bus. Errors are ApiErrors in Cinder's terms (404 unknown
 * volume, 400 volume not in a state that allows it).
 */
export interface ComputeVolumePort {
  getVolume(ctx: AuthContext, id: string): Promise<ComputeVolume>;
  /** Reserves the volume for the instance (exactly one concurrent winner for a normal volume). */
  reserve(ctx: AuthContext, volumeId: string, instanceId: string, opts?: { deleteOnTermination?: boolean }): Promise<{ attachmentId: string }>;
  /** Gives the host's connector; returns the local path the hypervisor opens. */
  connect(attachmentId: string, host: string): Promise<{ path: string; format: 'qcow2' | 'raw' }>;
  /** The hypervisor has the disk: attachment attached, volume in-use. */
  complete(attachmentId: string, device: string): Promise<void>;
  /** Removes an attachment (failed attach, finished detach); the volume is available again if it was the last. */
  release(attachmentId: string): Promise<void>;
  /** in-use → detaching; 400 otherwise. */
  beginDetach(volumeId: string): Promise<void>;
  /** detaching → in-use (the detach did not happen). */
  rollDetach(volumeId: string): Promise<void>;
  listForInstance(instanceId: string): Promise<InstanceAttachment[]>;
  /** A new volume for block_device_mapping_v2 source image/snapshot; resolves when it is available. */
  createVolume(ctx: AuthContext, input: { size?: number; imageRef?: string; snapshotId?: string; name: string }): Promise<{ id: string }>;
  /** Deletes a volume whatever its owner (delete_on_termination). */
  deleteVolume(id: string): Promise<void>;
}

const isUuid = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);

/** The boot disk an instance gets from block_device_mapping_v2, before the instance exists. */
export interface PreparedBootVolume {
  /** What server create treats as the image (properties from the volume's volume_image_metadata). */
  image: { id: string; status: string; diskFormat: string; minDisk: number; minRam: number; size?: number; properties: Record<string, unknown>; localPath: string };
  /** Binds the volume to the new instance (creating it first for source image/snapshot); undone by `unbind`. */
  bind(instanceId: string): Promise<void>;
  unbind(instanceId: string): Promise<void>;
}

/**
 * Volumes of servers: Nova's os-volume_attachments (attach = reserve in the
 * volume service, connect, hot-plug through the host's compute agent,
 * complete; any failure releases the reservation so the volume is available
 * again, never stuck in attaching), boot from volume, and the clean-up when
 * a server is deleted.
 */
export class ServerVolumes {
  constructor(
    readonly port: ComputeVolumePort,
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  private agent(host: string, method: string, args: Record<string, unknown>, timeoutMs = 120_000): Promise<Json> {
    return this.bus.call(`compute-volumes.${host}`, method, args as Json, { timeoutMs });
  }

  /** Attaches `volumeId` to a server now (hot-plug when it runs). Returns the attachment. */
  async attach(ctx: AuthContext, inst: InstanceRow, volumeId: string, opts: { deleteOnTermination?: boolean } = {}): Promise<InstanceAttachment> {
    if (![VM.ACTIVE, VM.STOPPED, VM.PAUSED, VM.SUSPENDED].includes(inst.vm_state as never) || inst.task_state)
      throw conflict(`Cannot 'attach_volume' instance ${inst.id} while it is in vm_state ${inst.vm_state}${inst.task_state ? ` (task_state ${inst.task_state})` : ''}`);
    if (!inst.host) throw conflict(`Cannot 'attach_volume' instance ${inst.id}: it has no host.`);
    await this.port.getVolume(ctx, volumeId).catch((e: unknown) => {
      if (e instanceof ApiError && e.status === 404) throw notFound(`Volume ${volumeId} could not be found.`, 'VolumeNotFound');
      throw e;
    });
    const { attachmentId } = await this.port.reserve(ctx, volumeId, inst.id, opts);
    try {
      const conn = await this.port.connect(attachmentId, inst.host);
      const r = (await this.agent(inst.host, 'attach_volume', { instanceId: inst.id, volumeId, path: conn.path, format: conn.format })) as { device: string };
      const device = `/dev/${r.device}`;
      await this.port.complete(attachmentId, device);
      return { attachmentId, volumeId, device, status: 'attached', deleteOnTermination: !!opts.deleteOnTermination };
    } catch (e) {
      await this.port.release(attachmentId).catch((x) => this.log.error({ err: x, volumeId }, 'could not release a failed attachment'));
      this.log.error({ err: e, volumeId, instance: inst.id }, 'volume attach failed');
      if (e instanceof ApiError) throw e;
      throw new ApiError(500, `Failed to attach volume ${volumeId} to server ${inst.id}: ${(e as Error).message}`, 'VolumeAttachFailed');
    }
  }

  /**
   * Detaches a volume from a server: refuses at once what cannot be done
   * (400/404), then unplugs in the background; the volume goes
   * detaching → available, or back to in-use if the guest does not let go.
   * Resolves once the detach has begun; `done` settles when it has finished
   * (wrapped in an object: an async function returning a bare promise would
   * make its caller wait for the guest).
   */
  async detach(inst: InstanceRow, volumeId: string): Promise<{ done: Promise<void> }> {
    const att = (await this.port.listForInstance(inst.id)).find((a) => a.volumeId === volumeId && a.status === 'attached');
    if (!att) throw notFound(`volume_id not found: ${volumeId}`, 'VolumeAttachmentNotFound');
    if (att.device === '/dev/vda') throw badRequest(`Cannot detach a root device volume`, 'InvalidVolume');
    if (inst.task_state) throw conflict(`Cannot 'detach_volume' instance ${inst.id} while it is in task_state ${inst.task_state}`);
    await this.port.beginDetach(volumeId);
    const host = inst.host;
    const done = (async () => {
      try {
        // The driver waits up to DETACH_TIMEOUT_S for the guest (asking again meanwhile); the call allows a little more.
        if (host) await this.agent(host, 'detach_volume', { instanceId: inst.id, volumeId }, (DETACH_TIMEOUT_S + 30) * 1000);
        await this.port.release(att.attachmentId);
      } catch (e) {
        this.log.error({ err: e, volumeId, instance: inst.id }, 'volume detach failed; the volume stays attached');
        await this.port.rollDetach(volumeId).catch(() => undefined);
      }
    })();
    return { done };
  }

  /** Nova's `os-extended-volumes:volumes_attached` of a server. */
  async attachedIds(instanceId: string): Promise<{ id: string }[]> {
    return (await this.port.listForInstance(instanceId)).filter((a) => a.status === 'attached').map((a) => ({ id: a.volumeId }));
  }

  /** After a server is gone: its attachments end; delete_on_termination volumes are deleted. */
  async instanceDeleted(instanceId: string): Promise<void> {
    for (const a of await this.port.listForInstance(instanceId)) {
      try {
        await this.port.release(a.attachmentId);
        if (a.deleteOnTermination) await this.port.deleteVolume(a.volumeId);
      } catch (e) {
        this.log.error({ err: e, volumeId: a.volumeId, instanceId }, 'volume clean-up after server delete failed');
      }
    }
  }

  /** For the conductor: the boot volume of an instance, as an image for scheduling, or null. */
  async bootImage(instanceId: string): Promise<PreparedBootVolume['image'] | null> {
    const boot = (await this.port.listForInstance(instanceId)).find((a) => a.device === '/dev/vda');
    if (!boot) return null;
    return { id: '', status: 'active', diskFormat: 'qcow2', minDisk: 0, minRam: 0, properties: {}, localPath: '' };
  }

  /** For the conductor, once a host is chosen: connects the boot volume and marks it in-use. */
  async connectBoot(instanceId: string, host: string): Promise<{ volumeId: string; path: string; format: 'qcow2' }> {
    const boot = (await this.port.listForInstance(instanceId)).find((a) => a.device === '/dev/vda');
    if (!boot) throw new Error(`instance ${instanceId} has no boot volume`);
    const conn = await this.port.connect(boot.attachmentId, host);
    if (conn.format !== 'qcow2') throw new Error('boot volumes must be qcow2');
    await this.port.complete(boot.attachmentId, '/dev/vda');
    return { volumeId: boot.volumeId, path: conn.path, format: 'qcow2' };
  }

  /**
   * Validates block_device_mapping_v2 for server create (Nova's rules, for
   * what Stratus supports: one boot disk with destination volume and source
   * volume, image or snapshot; extra blank/volume disks are refused), and
   * returns how to bind the boot volume to the new instance.
   */
  async prepareBoot(ctx: AuthContext, server: { imageRef?: string; block_device_mapping_v2?: unknown[]; block_device_mapping?: unknown; min_count?: unknown; max_count?: unknown }): Promise<PreparedBootVolume | null> {
    const bdms = server.block_device_mapping_v2 ?? [];
    if (server.block_device_mapping !== undefined) throw badRequest('block_device_mapping (v1) is not supported; use block_device_mapping_v2.');
    if (!bdms.length) return null;
    const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
    if (!bdms.every(isObj)) throw badRequest('Invalid input for field/attribute block_device_mapping_v2: each mapping must be an object.');
    const maps = bdms as Record<string, unknown>[];
    const bootIdx = (m: Record<string, unknown>) => (m.boot_index === undefined || m.boot_index === null ? null : Number(m.boot_index));
    const boots = maps.filter((m) => bootIdx(m) === 0);
    if (boots.length !== 1) throw badRequest('Boot sequence for the instance and image/block device mapping combination is not valid.');
    if (maps.length > 1) throw badRequest('Only one block device mapping (the boot volume) is supported; attach more volumes after boot.');
    const m = boots[0]!;
    const source = m.source_type;
    const dest = m.destination_type ?? 'volume';
    if (source === 'image' && dest === 'local') return null; // the image boot Nova also expresses as a mapping
    if (dest !== 'volume') throw badRequest(`Block device mapping with destination_type ${String(dest)} is not supported.`);
    if (!['volume', 'image', 'snapshot'].includes(String(source))) throw badRequest(`Invalid source_type ${String(source)} for a boot volume.`);
    if (!isUuid(m.uuid)) throw badRequest(`Invalid input for field/attribute uuid: '${String(m.uuid)}' is not a valid uuid.`);
    if (Number(server.max_count ?? 1) > 1 || Number(server.min_count ?? 1) > 1) throw badRequest('Boot from volume creates one server at a time.');
    const dot = m.delete_on_termination;
    const deleteOnTermination = dot === true || dot === 'true' || dot === 'True' || dot === '1' || dot === 1;
    let size: number | undefined;
    if (m.volume_size !== undefined && m.volume_size !== null) {
      size = Number(m.volume_size);
      if (!Number.isInteger(size) || size <= 0) throw badRequest(`Invalid input for field/attribute volume_size: '${String(m.volume_size)}'.`);
    }
    const uuid = m.uuid;
    const image: PreparedBootVolume['image'] = { id: '', status: 'active', diskFormat: 'qcow2', minDisk: 0, minRam: 0, properties: {}, localPath: '' };
    let created: string | null = null;
    if (source === 'volume') {
      const v = await this.port.getVolume(ctx, uuid).catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) throw badRequest(`Block Device Mapping is Invalid: failed to get volume ${uuid}.`);
        throw e;
      });
      if (v.status !== 'available' && !(v.multiattach && v.status === 'in-use')) throw badRequest(`Invalid volume: volume ${uuid} status must be available (it is ${v.status}).`);
      image.properties = { ...v.imageMetadata };
    } else {
      // checked now so a bad uuid fails the request, created at bind time
      if (source === 'image' && size === undefined) throw badRequest('Block Device Mapping is Invalid: You specified more local devices than the limit allows (volume_size is required for source_type image).');
    }
    return {
      image,
      bind: async (instanceId) => {
        let volumeId = uuid;
        if (source !== 'volume') {
          const v = await this.port.createVolume(ctx, { size, name: '', ...(source === 'image' ? { imageRef: uuid } : { snapshotId: uuid }) });
          created = v.id;
          volumeId = v.id;
        }
        try {
          const { attachmentId } = await this.port.reserve(ctx, volumeId, instanceId, { deleteOnTermination });
          await this.port.complete(attachmentId, '/dev/vda').catch(() => undefined);
        } catch (e) {
          if (created) await this.port.deleteVolume(created).catch(() => undefined);
          throw e;
        }
      },
      unbind: async (instanceId) => {
        for (const a of await this.port.listForInstance(instanceId)) {
          await this.port.release(a.attachmentId).catch(() => undefined);
          if (created && a.volumeId === created) await this.port.deleteVolume(created).catch(() => undefined);
        }
      },
    };
  }
}
