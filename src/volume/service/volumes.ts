import type { Kysely } from 'kysely';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthContext } from '../../core/context.js';
import type { Bus, Json } from '../../core/bus.js';
import type { Logger } from '../../core/log.js';
import { ApiError, badRequest, notFound } from '../../core/errors.js';
import { uuid } from '../../core/ids.js';
import { bool, int, type Database } from '../../core/db.js';
import { OverQuotaError, type QuotaEngine } from '../../core/quota.js';
import type { AttachmentRow, BackupRow, SnapshotRow, TransferRow, VolumeRow, VolumeTables, VolumeTypeRow } from '../store/tables.js';
import type { VolumeImagePort } from './ports.js';
import { ATTACH, DELETABLE } from './states.js';
import type { ConnectionInfo } from '../drivers/driver.js';

/** Cinder's quota resources and their defaults (per-type ones are added per volume type). */
export const VOLUME_QUOTAS: Record<string, number> = {
  volumes: 10, gigabytes: 1000, snapshots: 10, backups: 10, backup_gigabytes: 1000, per_volume_gigabytes: -1, groups: 10,
};
/** Resources whose per-type variant exists (`volumes_<type>`...). */
const PER_TYPE = ['volumes', 'gigabytes', 'snapshots'];
export const DEFAULT_TYPE = '__DEFAULT__';

export interface CreateVolumeInput {
  size?: number | null;
  name?: string | null;
  description?: string | null;
  volume_type?: string | null;
  availability_zone?: string | null;
  metadata?: Record<string, string> | null;
  snapshot_id?: string | null;
  source_volid?: string | null;
  imageRef?: string | null;
  backup_id?: string | null;
  multiattach?: boolean | null;
}

export interface ListQuery {
  admin: boolean;
  allTenants?: boolean;
  projectId?: string;
  filters: Record<string, string>;
  limit?: number;
  marker?: string;
  offset?: number;
  sort?: string;
}

const json = <T>(s: string | null | undefined, d: T): T => {
  try {
    return s ? (JSON.parse(s) as T) : d;
  } catch {
    return d;
  }
};

/** Cinder says `Invalid volume: <why>` (400) when a state does not allow an operation. */
export const invalidVolume = (why: string) => badRequest(`Invalid volume: ${why}`, 'InvalidVolume');
export const invalidSnapshot = (why: string) => badRequest(`Invalid snapshot: ${why}`, 'InvalidSnapshot');
export const invalidBackup = (why: string) => badRequest(`Invalid backup: ${why}`, 'InvalidBackup');

/** Maps the quota engine's error to Cinder's messages (413). */
export function quotaError(e: OverQuotaError, size?: number): ApiError {
  const r = e.resource;
  if (r.startsWith('gigabytes') || r.startsWith('backup_gigabytes'))
    return new ApiError(413, `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed ${r} quota. Requested ${size ?? e.requested}G, quota is ${e.limit}G and ${e.inUse}G has been consumed.`, 'OverQuota');
  const kind = r.startsWith('snapshots') ? 'SnapshotLimitExceeded: Maximum number of snapshots' : r.startsWith('backups') ? 'BackupLimitExceeded: Maximum number of backups' : 'VolumeLimitExceeded: Maximum number of volumes';
  return new ApiError(413, `${kind} allowed (${e.limit}) exceeded for quota '${r}'.`, 'OverQuota');
}

/**
 * The API side of the volume service: validation, quota, state guards
 * (compare-and-set on `status`), and hand-off of the storage work to this
 * host's volume manager over the bus (`volume.<host>`). Nothing here
 * touches files; the manager does, and moves the status on.
 */
export class VolumeService {
  readonly db: Kysely<VolumeTables>;
  constructor(
    database: Database,
    private readonly bus: Bus,
    readonly quota: QuotaEngine,
    private readonly images: VolumeImagePort,
    private readonly log: Logger,
    readonly opts: { host: string; availabilityZone: string; connection: (volumeId: string) => ConnectionInfo },
  ) {
    this.db = database.db as unknown as Kysely<VolumeTables>;
  }

  private cast(method: string, args: Record<string, unknown>): Promise<void> {
    return this.bus.cast(`volume.${this.opts.host}`, method, args as Json);
  }

  /** Registers quotas and makes sure the default volume type exists. */
  async init(): Promise<void> {
    for (const [k, v] of Object.entries(VOLUME_QUOTAS)) this.quota.register(k, v);
    const t = await this.db.selectFrom('cinder_volume_types').select('id').where('name', '=', DEFAULT_TYPE).executeTakeFirst();
    if (!t)
      await this.db.insertInto('cinder_volume_types').values({ id: uuid(), name: DEFAULT_TYPE, description: 'Default Volume Type', is_public: 1, extra_specs: '{}', created_at: Date.now(), deleted: 0 }).execute();
    for (const ty of await this.listTypes(true)) for (const r of PER_TYPE) this.quota.register(`${r}_${ty.name}`, -1);
  }

  // ------------------------------------------------------------------ types

  async listTypes(admin: boolean): Promise<VolumeTypeRow[]> {
    let q = this.db.selectFrom('cinder_volume_types').selectAll().where('deleted', '=', 0);
    if (!admin) q = q.where('is_public', '=', 1);
    return q.orderBy('name').execute();
  }

  async getType(idOrName: string, admin = true): Promise<VolumeTypeRow> {
    const t = await this.db.selectFrom('cinder_volume_types').selectAll().where('deleted', '=', 0).where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)])).executeTakeFirst();
    if (!t || (!admin && !bool(t.is_public))) throw notFound(`Volume type ${idOrName} could not be found.`, 'VolumeTypeNotFound');
    return t;
  }

  async defaultType(): Promise<VolumeTypeRow> {
    return this.getType(DEFAULT_TYPE);
  }

  async createType(input: { name: string; description?: string | null; is_public?: boolean; extra_specs?: Record<string, string> }): Promise<VolumeTypeRow> {
    const exists = await this.db.selectFrom('cinder_volume_types').select('id').where('name', '=', input.name).where('deleted', '=', 0).executeTakeFirst();
    if (exists) throw new ApiError(409, `Volume Type ${input.name} already exists.`, 'VolumeTypeExists');
    const row: VolumeTypeRow = { id: uuid(), name: input.name, description: input.description ?? null, is_public: int(input.is_public ?? true), extra_specs: JSON.stringify(input.extra_specs ?? {}), created_at: Date.now(), deleted: 0 };
    await this.db.insertInto('cinder_volume_types').values(row).execute();
    for (const r of PER_TYPE) this.quota.register(`${r}_${row.name}`, -1);
    return row;
  }

  async updateType(t: VolumeTypeRow, patch: { name?: string; description?: string | null; is_public?: boolean }): Promise<VolumeTypeRow> {
    if (t.name === DEFAULT_TYPE && patch.name && patch.name !== DEFAULT_TYPE) throw badRequest('The default volume type cannot be renamed.');
    if (patch.name && patch.name !== t.name) {
      const exists = await this.db.selectFrom('cinder_volume_types').select('id').where('name', '=', patch.name).where('deleted', '=', 0).executeTakeFirst();
      if (exists) throw new ApiError(409, `Volume Type ${patch.name} already exists.`, 'VolumeTypeExists');
    }
    const set = { ...(patch.name ? { name: patch.name } : {}), ...(patch.description !== undefined ? { description: patch.description } : {}), ...(patch.is_public !== undefined ? { is_public: int(patch.is_public) } : {}) };
    if (Object.keys(set).length) await this.db.updateTable('cinder_volume_types').set(set).where('id', '=', t.id).execute();
    return this.getType(t.id);
  }

  async deleteType(t: VolumeTypeRow): Promise<void> {
    if (t.name === DEFAULT_TYPE) throw badRequest('Default volume type can not be deleted.', 'VolumeTypeDefaultDeletionError');
    const used = await this.db.selectFrom('cinder_volumes').select('id').where('volume_type_id', '=', t.id).where('deleted', '=', 0).executeTakeFirst();
    if (used) throw badRequest(`Target volume type is still in use. Volume Type ${t.id} deletion is not allowed with volumes present with the type.`, 'VolumeTypeInUse');
    await this.db.updateTable('cinder_volume_types').set({ deleted: 1 }).where('id', '=', t.id).execute();
  }

  async setExtraSpecs(t: VolumeTypeRow, specs: Record<string, string>, replaceKey?: string): Promise<Record<string, string>> {
    const cur = json<Record<string, string>>(t.extra_specs, {});
    const next = { ...cur, ...specs };
    if (replaceKey !== undefined && Object.keys(specs).length !== 1) throw badRequest('Request body and URI mismatch');
    await this.db.updateTable('cinder_volume_types').set({ extra_specs: JSON.stringify(next) }).where('id', '=', t.id).execute();
    return next;
  }

  async unsetExtraSpec(t: VolumeTypeRow, key: string): Promise<void> {
    const cur = json<Record<string, string>>(t.extra_specs, {});
    if (!(key in cur)) throw notFound(`Volume Type ${t.id} has no extra specs with key ${key}.`, 'VolumeTypeExtraSpecsNotFound');
    delete cur[key];
    await this.db.updateTable('cinder_volume_types').set({ extra_specs: JSON.stringify(cur) }).where('id', '=', t.id).execute();
  }

  // ------------------------------------------------------------------ quotas

  private volumeDeltas(type: string, size: number, count = 1): Record<string, number> {
    return { volumes: count, gigabytes: size, [`volumes_${type}`]: count, [`gigabytes_${type}`]: size };
  }

  private async reserve(projectId: string, deltas: Record<string, number>, size?: number): Promise<string> {
    try {
      return await this.quota.reserve(projectId, deltas);
    } catch (e) {
      if (e instanceof OverQuotaError) throw quotaError(e, size);
      throw e;
    }
  }

  /** Every quota resource of the volume service, per-type ones included. */
  async quotaResources(): Promise<string[]> {
    const types = await this.listTypes(true);
    return [...Object.keys(VOLUME_QUOTAS), ...types.flatMap((t) => PER_TYPE.map((r) => `${r}_${t.name}`))];
  }

  // ------------------------------------------------------------------ volumes

  /** A volume visible to the caller (own project, or any for readers of the whole cloud); else 404. */
  async get(id: string, ctx: AuthContext | null, all: boolean): Promise<VolumeRow> {
    const r = await this.db.selectFrom('cinder_volumes').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    if (!r || (!all && r.project_id !== ctx?.projectId)) throw notFound(`Volume ${id} could not be found.`, 'VolumeNotFound');
    return r;
  }

  async typeOf(v: VolumeRow): Promise<VolumeTypeRow | undefined> {
    return this.db.selectFrom('cinder_volume_types').selectAll().where('id', '=', v.volume_type_id).executeTakeFirst();
  }

  async attachmentsOf(volumeId: string): Promise<AttachmentRow[]> {
    return this.db.selectFrom('cinder_attachments').selectAll().where('volume_id', '=', volumeId).where('deleted', '=', 0).orderBy('created_at').execute();
  }

  async list(ctx: AuthContext, q: ListQuery): Promise<VolumeRow[]> {
    let s = this.db.selectFrom('cinder_volumes').selectAll().where('deleted', '=', 0);
    if (!(q.admin && q.allTenants)) s = s.where('project_id', '=', q.projectId ?? ctx.projectId ?? '');
    else if (q.filters.project_id) s = s.where('project_id', '=', q.filters.project_id);
    const f = q.filters;
    if (f.name !== undefined) s = s.where('name', '=', f.name);
    if (f.status !== undefined) s = s.where('status', '=', f.status);
    if (f.availability_zone !== undefined) s = s.where('availability_zone', '=', f.availability_zone);
    if (f.bootable !== undefined) s = s.where('bootable', '=', /^(1|true|t|yes|y|on)$/i.test(f.bootable) ? 1 : 0);
    if (f.multiattach !== undefined) s = s.where('multiattach', '=', /^(1|true|t|yes|y|on)$/i.test(f.multiattach) ? 1 : 0);
    let rows = await s.execute();
    if (f['name~'] !== undefined) rows = rows.filter((r) => (r.name ?? '').includes(f['name~']!));
    if (f.volume_type !== undefined) {
      const t = await this.getType(f.volume_type).catch(() => null);
      rows = t ? rows.filter((r) => r.volume_type_id === t.id) : [];
    }
    if (f.metadata !== undefined) {
      const want = parseMetaFilter(f.metadata);
      rows = rows.filter((r) => { const m = json<Record<string, string>>(r.metadata, {}); return Object.entries(want).every(([k, v]) => m[k] === v); });
    }
    if (f.image_metadata !== undefined || f.glance_metadata !== undefined) {
      const want = parseMetaFilter(f.image_metadata ?? f.glance_metadata!);
      rows = rows.filter((r) => { const m = json<Record<string, string>>(r.image_metadata, {}); return Object.entries(want).every(([k, v]) => m[k] === v); });
    }
    return paginate(rows, q, ['id', 'name', 'status', 'size', 'created_at', 'updated_at', 'availability_zone', 'bootable', 'project_id'], 'Volume');
  }

  async create(ctx: AuthContext, input: CreateVolumeInput): Promise<VolumeRow> {
    if (!ctx.projectId) throw badRequest('Volumes can only be created with a project-scoped token.');
    const projectId = ctx.projectId;
    const sources = [input.snapshot_id, input.source_volid, input.imageRef, input.backup_id].filter((x) => x);
    if (sources.length > 1) throw badRequest('Invalid input received: Cannot specify more than one of snapshot_id, source_volid, imageRef or backup_id.', 'InvalidInput');
    let size = input.size ?? null;
    if (size !== null && (!Number.isInteger(size) || size <= 0))
      throw badRequest(`Invalid input received: Volume size '${size}' must be an integer and greater than 0.`, 'InvalidInput');
    let snapshot: SnapshotRow | null = null;
    let source: VolumeRow | null = null;
    let image: Awaited<ReturnType<VolumeImagePort['getImageForBoot']>> | null = null;
    let typeRow: VolumeTypeRow | null = null;
    if (input.snapshot_id) {
      snapshot = await this.getSnapshot(input.snapshot_id, ctx, false).catch(() => {
        throw notFound(`Snapshot ${input.snapshot_id} could not be found.`, 'SnapshotNotFound');
      });
      if (snapshot.status !== 'available') throw invalidSnapshot(`Originating snapshot status must be 'available' (it is ${snapshot.status}).`);
      size ??= snapshot.size;
      if (size < snapshot.size) throw badRequest(`Invalid input received: Volume size '${size}'GB cannot be smaller than the snapshot size ${snapshot.size}GB. They must be >= original snapshot size.`, 'InvalidInput');
      const parent = await this.db.selectFrom('cinder_volumes').selectAll().where('id', '=', snapshot.volume_id).executeTakeFirst();
      if (parent) typeRow = (await this.typeOf(parent)) ?? null;
    }
    if (input.source_volid) {
      source = await this.get(input.source_volid, ctx, false).catch(() => {
        throw notFound(`Volume ${input.source_volid} could not be found.`, 'VolumeNotFound');
      });
      if (!['available', 'in-use'].includes(source.status)) throw invalidVolume(`Source volume status must be available or in-use (it is ${source.status}).`);
      size ??= source.size;
      if (size < source.size) throw badRequest(`Invalid input received: Volume size '${size}'GB cannot be smaller than original volume size ${source.size}GB. They must be >= original volume size.`, 'InvalidInput');
      typeRow = (await this.typeOf(source)) ?? null;
    }
    if (input.imageRef) {
      image = await this.images.getImageForBoot(ctx, input.imageRef).catch((e: unknown) => {
        if (e instanceof ApiError && e.status >= 500) throw e;
        throw badRequest(`Invalid image identifier or unable to access requested image.`, 'ImageNotFound');
      });
      if (image.status !== 'active') throw badRequest(`Image ${image.id} is not active.`, 'InvalidInput');
      if (image.diskFormat !== 'qcow2' && image.diskFormat !== 'raw') throw badRequest(`Image ${image.id} has disk format ${image.diskFormat}; volumes are made from qcow2 or raw images.`, 'InvalidInput');
      const virt = Number(image.properties.virtual_size ?? 0) || image.size || 0;
      const minGb = Math.max(image.minDisk, Math.ceil(virt / 1024 ** 3));
      size ??= Math.max(1, minGb);
      if (size < minGb) throw badRequest(`Invalid input received: Image minDisk size ${minGb} is larger than the volume size ${size}.`, 'InvalidInput');
    }
    if (input.backup_id) {
      const b = await this.getBackup(input.backup_id, ctx, false);
      if (b.status !== 'available') throw invalidBackup(`Backup status must be available (it is ${b.status}).`);
      size ??= b.size;
      if (size < b.size) throw badRequest(`Invalid input received: Volume size ${size}GB cannot be smaller than the backup size ${b.size}GB.`, 'InvalidInput');
    }
    if (size === null) throw badRequest("Invalid input received: Volume size '' must be an integer and greater than 0.", 'InvalidInput');
    if (input.volume_type) typeRow = await this.getType(input.volume_type, false).catch(() => {
      throw notFound(`Volume type with name ${input.volume_type} could not be found.`, 'VolumeTypeNotFoundByName');
    });
    typeRow ??= await this.defaultType();
    const specs = json<Record<string, string>>(typeRow.extra_specs, {});
    const multiattach = input.multiattach === true || /<is> True/i.test(specs.multiattach ?? '');
    const az = input.availability_zone ?? this.opts.availabilityZone;
    if (az !== this.opts.availabilityZone) throw badRequest(`Invalid input received: Availability zone '${az}' is invalid.`, 'InvalidInput');
    const meta = input.metadata ?? {};
    checkMetadata(meta);
    const perVol = (await this.quota.limits(projectId, ['per_volume_gigabytes'])).per_volume_gigabytes!;
    if (perVol >= 0 && size > perVol) throw new ApiError(413, `VolumeSizeExceedsLimit: Requested volume size ${size}G is larger than maximum allowed limit ${perVol}G.`, 'OverQuota');

    const reservation = await this.reserve(projectId, this.volumeDeltas(typeRow.name, size), size);
    const now = Date.now();
    const imageMeta: Record<string, string> = {};
    if (image) {
      imageMeta.image_id = image.id;
      if (image.name) imageMeta.image_name = image.name;
      imageMeta.disk_format = image.diskFormat;
      imageMeta.container_format = 'bare';
      imageMeta.min_disk = String(image.minDisk);
      imageMeta.min_ram = String(image.minRam);
      if (image.size !== undefined) imageMeta.size = String(image.size);
      for (const [k, v] of Object.entries(image.properties)) if (typeof v === 'string' && !k.startsWith('os_hash') && k !== 'stratus_seed') imageMeta[k] = v;
    } else if (snapshot || source) {
      const parent = source ?? (await this.db.selectFrom('cinder_volumes').selectAll().where('id', '=', snapshot!.volume_id).executeTakeFirst());
      if (parent) Object.assign(imageMeta, json<Record<string, string>>(parent.image_metadata, {}));
    }
    const row: VolumeRow = {
      id: uuid(), project_id: projectId, user_id: ctx.userId, name: input.name ?? null, description: input.description ?? null, size, status: 'creating',
      attach_status: ATTACH.DETACHED, migration_status: null, availability_zone: az, volume_type_id: typeRow.id,
      bootable: int(!!image || (source ? bool(source.bootable) : false)), multiattach: int(multiattach), snapshot_id: snapshot?.id ?? null,
      source_volid: source?.id ?? null, image_id: image?.id ?? null, metadata: JSON.stringify(meta), image_metadata: JSON.stringify(imageMeta), admin_metadata: '{}',
      host: `${this.opts.host}@qcow2#qcow2`, fault: null, created_at: now, updated_at: now, deleted: 0, deleted_at: null,
    };
    if (snapshot) {
      const parent = await this.db.selectFrom('cinder_volumes').select('bootable').where('id', '=', snapshot.volume_id).executeTakeFirst();
      row.bootable = int(bool(parent?.bootable));
    }
    try {
      await this.db.insertInto('cinder_volumes').values(row).execute();
      await this.quota.commit(reservation);
    } catch (e) {
      await this.quota.rollback(reservation);
      throw e;
    }
    await this.cast('create_volume', {
      volumeId: row.id, size, snapshotId: snapshot?.id ?? null, sourceId: source?.id ?? null, backupId: input.backup_id ?? null,
      image: image ? { id: image.id, path: image.localPath, format: image.diskFormat } : null,
    });
    return row;
  }

  /** Compare-and-set of a volume's status; false when someone else moved it first. */
  async casStatus(id: string, from: string[], to: string, extra: Partial<VolumeRow> = {}): Promise<boolean> {
    const r = await this.db.updateTable('cinder_volumes').set({ ...extra, status: to, updated_at: Date.now() }).where('id', '=', id).where('deleted', '=', 0).where('status', 'in', from).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async update(v: VolumeRow, patch: { name?: string | null; description?: string | null; metadata?: Record<string, string> }): Promise<VolumeRow> {
    const set: Partial<VolumeRow> = { updated_at: Date.now() };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.description !== undefined) set.description = patch.description;
    if (patch.metadata !== undefined) {
      checkMetadata(patch.metadata);
      set.metadata = JSON.stringify(patch.metadata);
    }
    await this.db.updateTable('cinder_volumes').set(set).where('id', '=', v.id).execute();
    return { ...v, ...set };
  }

  async setMetadata(v: VolumeRow, meta: Record<string, string>, replace: boolean): Promise<Record<string, string>> {
    const next = replace ? meta : { ...json<Record<string, string>>(v.metadata, {}), ...meta };
    checkMetadata(next);
    await this.db.updateTable('cinder_volumes').set({ metadata: JSON.stringify(next), updated_at: Date.now() }).where('id', '=', v.id).execute();
    return next;
  }

  async deleteMetadataKey(v: VolumeRow, key: string): Promise<void> {
    const m = json<Record<string, string>>(v.metadata, {});
    if (!(key in m)) throw notFound(`Volume ${v.id} has no metadata with key ${key}.`, 'VolumeMetadataNotFound');
    delete m[key];
    await this.db.updateTable('cinder_volumes').set({ metadata: JSON.stringify(m), updated_at: Date.now() }).where('id', '=', v.id).execute();
  }

  /** Deletes a volume (with its snapshots when `cascade`). Refused while attached or with snapshots. */
  async delete(v: VolumeRow, opts: { cascade?: boolean; force?: boolean } = {}): Promise<void> {
    const allowedFrom = opts.force ? [...DELETABLE, 'creating', 'error_deleting', 'deleting', 'attaching', 'detaching', 'reserved', 'extending', 'maintenance', 'downloading', 'uploading'] : [...DELETABLE, 'error_deleting'];
    const atts = (await this.attachmentsOf(v.id)).filter((a) => a.attach_status !== ATTACH.DETACHED);
    if (atts.length && !opts.force) throw invalidVolume('Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.');
    if (!allowedFrom.includes(v.status)) throw invalidVolume(`Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer. (status: ${v.status})`);
    const snaps = await this.db.selectFrom('cinder_snapshots').selectAll().where('volume_id', '=', v.id).where('deleted', '=', 0).execute();
    if (snaps.length && !opts.cascade) throw invalidVolume(`Volume ${v.id} still has ${snaps.length} dependent snapshots.`);
    if (opts.cascade && snaps.some((s) => !['available', 'error'].includes(s.status))) throw invalidVolume('Snapshot of volume is not in a state that allows deletion.');
    const backups = await this.db.selectFrom('cinder_backups').select('id').where('volume_id', '=', v.id).where('deleted', '=', 0).where('status', 'in', ['creating', 'restoring']).executeTakeFirst();
    if (backups) throw invalidVolume('A backup of the volume is in progress.');
    const transfer = await this.db.selectFrom('cinder_transfers').select('id').where('volume_id', '=', v.id).where('deleted', '=', 0).executeTakeFirst();
    if (transfer && !opts.force) throw invalidVolume('Volume is awaiting a transfer.');
    if (!(await this.casStatus(v.id, allowedFrom, 'deleting'))) throw invalidVolume(`Volume ${v.id} changed state meanwhile.`);
    for (const s of snaps) await this.db.updateTable('cinder_snapshots').set({ status: 'deleting', updated_at: Date.now() }).where('id', '=', s.id).execute();
    await this.cast('delete_volume', { volumeId: v.id, snapshotIds: snaps.map((s) => s.id) });
  }

  /** Marks a deleted volume gone and gives back its quota (called by the manager). */
  async finishDelete(id: string): Promise<void> {
    const v = await this.db.selectFrom('cinder_volumes').selectAll().where('id', '=', id).executeTakeFirst();
    if (!v || bool(v.deleted)) return;
    const now = Date.now();
    await this.db.updateTable('cinder_volumes').set({ deleted: 1, deleted_at: now, status: 'deleted', updated_at: now }).where('id', '=', id).execute();
    await this.db.updateTable('cinder_attachments').set({ deleted: 1, attach_status: ATTACH.DETACHED, detach_time: now }).where('volume_id', '=', id).where('deleted', '=', 0).execute();
    const t = await this.typeOf(v);
    await this.quota.release(v.project_id, this.volumeDeltas(t?.name ?? DEFAULT_TYPE, v.size));
  }

  /** os-extend: grows a volume, also an attached one (the compute agent resizes it under the running guest). */
  async extend(v: VolumeRow, newSize: number): Promise<void> {
    if (!Number.isInteger(newSize) || newSize <= 0) throw badRequest(`Invalid input received: New size for extend must be an integer greater than 0.`, 'InvalidInput');
    if (!['available', 'in-use'].includes(v.status)) throw invalidVolume(`Volume status must be 'available' or 'in-use' to extend, currently in '${v.status}'.`);
    if (newSize <= v.size) throw badRequest(`Invalid input received: New size for extend must be greater than current size. (current: ${v.size}, extended: ${newSize}).`, 'InvalidInput');
    if (await this.chainSnapshotsBusy(v)) throw invalidVolume(`Volume ${v.id} has a snapshot being created or deleted; try again when it is done.`);
    const t = await this.typeOf(v);
    const delta = newSize - v.size;
    const perVol = (await this.quota.limits(v.project_id, ['per_volume_gigabytes'])).per_volume_gigabytes!;
    if (perVol >= 0 && newSize > perVol) throw new ApiError(413, `VolumeSizeExceedsLimit: Requested volume size ${newSize}G is larger than maximum allowed limit ${perVol}G.`, 'OverQuota');
    const reservation = await this.reserve(v.project_id, { gigabytes: delta, [`gigabytes_${t?.name ?? DEFAULT_TYPE}`]: delta }, delta);
    if (!(await this.casStatus(v.id, [v.status], 'extending'))) {
      await this.quota.rollback(reservation);
      throw invalidVolume(`Volume ${v.id} changed state meanwhile.`);
    }
    const att = v.status === 'in-use' ? (await this.attachmentsOf(v.id)).find((a) => a.attach_status === ATTACH.ATTACHED) : undefined;
    await this.cast('extend_volume', { volumeId: v.id, newSize, reservation, previous: v.status, attached: att ? { host: att.attached_host, instanceId: att.instance_uuid } : null });
  }

  async setBootable(v: VolumeRow, bootable: boolean): Promise<void> {
    if (v.status === 'maintenance') throw invalidVolume('Volume is in maintenance.');
    await this.db.updateTable('cinder_volumes').set({ bootable: int(bootable), updated_at: Date.now() }).where('id', '=', v.id).execute();
  }

  async setReadonly(v: VolumeRow, readonly: boolean): Promise<void> {
    const m = json<Record<string, string>>(v.admin_metadata, {});
    m.readonly = readonly ? 'True' : 'False';
    await this.db.updateTable('cinder_volumes').set({ admin_metadata: JSON.stringify(m), updated_at: Date.now() }).where('id', '=', v.id).execute();
  }

  async setImageMetadata(v: VolumeRow, meta: Record<string, string>): Promise<Record<string, string>> {
    const next = { ...json<Record<string, string>>(v.image_metadata, {}), ...meta };
    await this.db.updateTable('cinder_volumes').set({ image_metadata: JSON.stringify(next), updated_at: Date.now() }).where('id', '=', v.id).execute();
    return next;
  }

  async unsetImageMetadata(v: VolumeRow, key: string): Promise<void> {
    const m = json<Record<string, string>>(v.image_metadata, {});
    if (!(key in m)) throw notFound(`Glance metadata for volume ${v.id} with key ${key} could not be found.`, 'GlanceMetadataNotFound');
    delete m[key];
    await this.db.updateTable('cinder_volumes').set({ image_metadata: JSON.stringify(m), updated_at: Date.now() }).where('id', '=', v.id).execute();
  }

  /** os-reset_status (admin): sets status / attach_status / migration_status as given, no checks (Cinder's semantics). */
  async resetStatus(v: VolumeRow, s: { status?: string; attach_status?: string; migration_status?: string }): Promise<void> {
    const set: Partial<VolumeRow> = { updated_at: Date.now() };
    if (s.status) set.status = s.status;
    if (s.attach_status) set.attach_status = s.attach_status;
    if (s.migration_status) set.migration_status = s.migration_status;
    if (s.attach_status === ATTACH.DETACHED) await this.db.updateTable('cinder_attachments').set({ deleted: 1, attach_status: ATTACH.DETACHED, detach_time: Date.now() }).where('volume_id', '=', v.id).where('deleted', '=', 0).execute();
    await this.db.updateTable('cinder_volumes').set(set).where('id', '=', v.id).execute();
  }

  /** os-volume_upload_image: the volume's data becomes a new image. Returns the queued image. */
  async uploadToImage(ctx: AuthContext, v: VolumeRow, input: { image_name: string; disk_format?: string; container_format?: string; force?: boolean; visibility?: string; protected?: boolean }): Promise<{ imageId: string; diskFormat: string }> {
    const fmt = input.disk_format ?? 'raw';
    if (!['raw', 'qcow2'].includes(fmt)) throw badRequest(`Invalid disk-format '${fmt}' is specified. Allowed disk-formats are raw, qcow2.`, 'InvalidInput');
    if (input.container_format && input.container_format !== 'bare') throw badRequest(`Invalid container-format '${input.container_format}' is specified. Allowed container-formats are bare.`, 'InvalidInput');
    const from = input.force ? ['available', 'in-use'] : ['available'];
    if (!from.includes(v.status)) throw invalidVolume(`Volume status must be available${input.force ? ' or in-use' : ''} (it is ${v.status}).`);
    if (!this.images.reserveImage) throw new ApiError(503, 'The image service is not available.', 'ServiceUnavailable');
    if (!(await this.casStatus(v.id, [v.status], 'uploading'))) throw invalidVolume(`Volume ${v.id} changed state meanwhile.`);
    try {
      const img = await this.images.reserveImage(ctx, { name: input.image_name, properties: {}, diskFormat: fmt });
      await this.cast('upload_image', { volumeId: v.id, imageId: img.id, name: input.image_name, diskFormat: fmt, previous: v.status, ctx: ctx as unknown as Json });
      return { imageId: img.id, diskFormat: fmt };
    } catch (e) {
      await this.casStatus(v.id, ['uploading'], v.status);
      throw e;
    }
  }

  // ------------------------------------------------------------------ snapshots

  async getSnapshot(id: string, ctx: AuthContext | null, all: boolean): Promise<SnapshotRow> {
    const s = await this.db.selectFrom('cinder_snapshots').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    if (!s || (!all && s.project_id !== ctx?.projectId)) throw notFound(`Snapshot ${id} could not be found.`, 'SnapshotNotFound');
    return s;
  }

  async listSnapshots(ctx: AuthContext, q: ListQuery): Promise<SnapshotRow[]> {
    let s = this.db.selectFrom('cinder_snapshots').selectAll().where('deleted', '=', 0);
    if (!(q.admin && q.allTenants)) s = s.where('project_id', '=', ctx.projectId ?? '');
    else if (q.filters.project_id) s = s.where('project_id', '=', q.filters.project_id);
    if (q.filters.name !== undefined) s = s.where('name', '=', q.filters.name);
    if (q.filters.status !== undefined) s = s.where('status', '=', q.filters.status);
    if (q.filters.volume_id !== undefined) s = s.where('volume_id', '=', q.filters.volume_id);
    return paginate(await s.execute(), q, ['id', 'name', 'status', 'size', 'created_at', 'updated_at', 'volume_id'], 'Snapshot');
  }

  async createSnapshot(ctx: AuthContext, v: VolumeRow, input: { name?: string | null; description?: string | null; force?: boolean; metadata?: Record<string, string> }): Promise<SnapshotRow> {
    const okFrom = input.force ? ['available', 'in-use'] : ['available'];
    if (!okFrom.includes(v.status)) {
      if (v.status === 'in-use') throw invalidVolume("Volume status must be 'available' or 'in-use' with force=True to be snapshotted; it is in-use.");
      throw invalidVolume(`Volume ${v.id} status must be available${input.force ? ' or in-use' : ''}, but current status is: ${v.status}.`);
    }
    checkMetadata(input.metadata ?? {});
    const t = await this.typeOf(v);
    const reservation = await this.reserve(v.project_id, { snapshots: 1, gigabytes: v.size, [`snapshots_${t?.name ?? DEFAULT_TYPE}`]: 1, [`gigabytes_${t?.name ?? DEFAULT_TYPE}`]: v.size }, v.size);
    const now = Date.now();
    const row: SnapshotRow = {
      id: uuid(), volume_id: v.id, project_id: v.project_id, user_id: ctx.userId, name: input.name ?? null, description: input.description ?? null, size: v.size,
      status: 'creating', progress: '0%', metadata: JSON.stringify(input.metadata ?? {}), created_at: now, updated_at: now, deleted: 0,
    };
    // The volume stays where it is (available/in-use); the CAS makes sure it still is, so no delete or attach slips in while the row is made.
    try {
      await this.db.transaction().execute(async (tx) => {
        const r = await tx.updateTable('cinder_volumes').set({ updated_at: now }).where('id', '=', v.id).where('status', 'in', okFrom).executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) throw invalidVolume(`Volume ${v.id} changed state meanwhile.`);
        await tx.insertInto('cinder_snapshots').values(row).execute();
      });
      await this.quota.commit(reservation);
    } catch (e) {
      await this.quota.rollback(reservation);
      throw e;
    }
    await this.cast('create_snapshot', { snapshotId: row.id, volumeId: v.id, attached: v.status === 'in-use' });
    return row;
  }

  async updateSnapshot(s: SnapshotRow, patch: { name?: string | null; description?: string | null }): Promise<SnapshotRow> {
    const set: Partial<SnapshotRow> = { updated_at: Date.now() };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.description !== undefined) set.description = patch.description;
    await this.db.updateTable('cinder_snapshots').set(set).where('id', '=', s.id).execute();
    return { ...s, ...set };
  }

  async setSnapshotMetadata(s: SnapshotRow, meta: Record<string, string>, replace: boolean): Promise<Record<string, string>> {
    const next = replace ? meta : { ...json<Record<string, string>>(s.metadata, {}), ...meta };
    checkMetadata(next);
    await this.db.updateTable('cinder_snapshots').set({ metadata: JSON.stringify(next), updated_at: Date.now() }).where('id', '=', s.id).execute();
    return next;
  }

  /**
   * Volumes whose data may sit on the backing chain of volume `id`'s
   * snapshots: the volume itself and, recursively, every volume made from
   * one of its snapshots. Deleting a snapshot rewrites files of this family.
   */
  private async chainFamily(id: string, seen = new Set<string>()): Promise<VolumeRow[]> {
    if (seen.has(id)) return [];
    seen.add(id);
    const v = await this.db.selectFrom('cinder_volumes').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    const snaps = await this.db.selectFrom('cinder_snapshots').select('id').where('volume_id', '=', id).where('deleted', '=', 0).execute();
    const out: VolumeRow[] = v ? [v] : [];
    if (snaps.length) {
      const kids = await this.db.selectFrom('cinder_volumes').select('id').where('snapshot_id', 'in', snaps.map((s) => s.id)).where('deleted', '=', 0).execute();
      for (const k of kids) out.push(...(await this.chainFamily(k.id, seen)));
    }
    return out;
  }

  /**
   * Snapshots whose files volume `v` may read through its backing chain
   * (its own, those of the volume its origin snapshot belongs to, and so on
   * up): while one of them is being made or removed, the volume must not be
   * handed to a hypervisor.
   */
  private async chainSnapshotsBusy(v: VolumeRow): Promise<boolean> {
    let cur: VolumeRow | undefined = v;
    for (let depth = 0; cur && depth < 64; depth++) {
      const busy = await this.db.selectFrom('cinder_snapshots').select('id').where('volume_id', '=', cur.id).where('deleted', '=', 0).where('status', 'in', ['creating', 'deleting']).executeTakeFirst();
      if (busy) return true;
      if (!cur.snapshot_id) return false;
      const origin = await this.db.selectFrom('cinder_snapshots').select('volume_id').where('id', '=', cur.snapshot_id).executeTakeFirst();
      cur = origin ? await this.db.selectFrom('cinder_volumes').selectAll().where('id', '=', origin.volume_id).executeTakeFirst() : undefined;
    }
    return false;
  }

  async deleteSnapshot(s: SnapshotRow, force = false): Promise<void> {
    const from = force ? ['available', 'error', 'error_deleting', 'creating', 'deleting'] : ['available', 'error', 'error_deleting'];
    if (!from.includes(s.status)) throw invalidSnapshot(`Snapshot status must be available or error and must not be part of a group (it is ${s.status}).`);
    // Deleting folds the snapshot's data into the files that sit on it; a hypervisor must not have any of them open.
    const busy = (await this.chainFamily(s.volume_id)).find((x) => !['available', 'error', 'error_restoring', 'error_extending', 'deleting', 'error_deleting'].includes(x.status));
    if (busy) throw invalidSnapshot(`Snapshot ${s.id} cannot be deleted while volume ${busy.id}, which reads its data, is ${busy.status}.`);
    const r = await this.db.updateTable('cinder_snapshots').set({ status: 'deleting', updated_at: Date.now() }).where('id', '=', s.id).where('status', 'in', from).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw invalidSnapshot(`Snapshot ${s.id} changed state meanwhile.`);
    await this.cast('delete_snapshot', { snapshotId: s.id });
  }

  async finishDeleteSnapshot(id: string): Promise<void> {
    const s = await this.db.selectFrom('cinder_snapshots').selectAll().where('id', '=', id).executeTakeFirst();
    if (!s || bool(s.deleted)) return;
    await this.db.updateTable('cinder_snapshots').set({ deleted: 1, status: 'deleted', updated_at: Date.now() }).where('id', '=', id).execute();
    const v = await this.db.selectFrom('cinder_volumes').selectAll().where('id', '=', s.volume_id).executeTakeFirst();
    const t = v ? await this.typeOf(v) : undefined;
    const tn = t?.name ?? DEFAULT_TYPE;
    await this.quota.release(s.project_id, { snapshots: 1, gigabytes: s.size, [`snapshots_${tn}`]: 1, [`gigabytes_${tn}`]: s.size });
  }

  // ------------------------------------------------------------------ backups

  async getBackup(id: string, ctx: AuthContext | null, all: boolean): Promise<BackupRow> {
    const b = await this.db.selectFrom('cinder_backups').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    if (!b || (!all && b.project_id !== ctx?.projectId)) throw notFound(`Backup ${id} could not be found.`, 'BackupNotFound');
    return b;
  }

  async listBackups(ctx: AuthContext, q: ListQuery): Promise<BackupRow[]> {
    let s = this.db.selectFrom('cinder_backups').selectAll().where('deleted', '=', 0);
    if (!(q.admin && q.allTenants)) s = s.where('project_id', '=', ctx.projectId ?? '');
    else if (q.filters.project_id) s = s.where('project_id', '=', q.filters.project_id);
    if (q.filters.name !== undefined) s = s.where('name', '=', q.filters.name);
    if (q.filters.status !== undefined) s = s.where('status', '=', q.filters.status);
    if (q.filters.volume_id !== undefined) s = s.where('volume_id', '=', q.filters.volume_id);
    return paginate(await s.execute(), q, ['id', 'name', 'status', 'size', 'created_at', 'updated_at', 'volume_id'], 'Backup');
  }

  async hasDependentBackups(id: string): Promise<boolean> {
    return !!(await this.db.selectFrom('cinder_backups').select('id').where('parent_id', '=', id).where('deleted', '=', 0).executeTakeFirst());
  }

  async createBackup(ctx: AuthContext, v: VolumeRow, input: { name?: string | null; description?: string | null; incremental?: boolean; force?: boolean; container?: string | null; snapshot_id?: string | null }): Promise<BackupRow> {
    const okFrom = input.force ? ['available', 'in-use'] : ['available'];
    if (!okFrom.includes(v.status)) throw invalidVolume(`Volume to be backed up must be available or in-use, but the current status is "${v.status}".${v.status === 'in-use' ? ' Use force to back up an in-use volume.' : ''}`);
    if (input.snapshot_id) throw badRequest('Backups of snapshots are not supported by this backend.', 'InvalidInput');
    let parent: BackupRow | undefined;
    if (input.incremental) {
      parent = await this.db.selectFrom('cinder_backups').selectAll().where('volume_id', '=', v.id).where('deleted', '=', 0).where('status', '=', 'available').orderBy('data_timestamp', 'desc').limit(1).executeTakeFirst();
      if (!parent) throw invalidBackup('No backups available to do an incremental backup.');
    }
    const reservation = await this.reserve(v.project_id, { backups: 1, backup_gigabytes: v.size }, v.size);
    const now = Date.now();
    const row: BackupRow = {
      id: uuid(), volume_id: v.id, snapshot_id: null, parent_id: parent?.id ?? null, project_id: v.project_id, user_id: ctx.userId, name: input.name ?? null,
      description: input.description ?? null, size: v.size, object_count: 0, status: 'creating', fail_reason: null, is_incremental: int(!!parent),
      container: input.container ?? 'volumebackups', availability_zone: v.availability_zone, restore_volume_id: null, created_at: now, updated_at: now, data_timestamp: now, deleted: 0,
    };
    try {
      if (!(await this.casStatus(v.id, okFrom, 'backing-up'))) throw invalidVolume(`Volume ${v.id} changed state meanwhile.`);
      await this.db.insertInto('cinder_backups').values(row).execute();
      await this.quota.commit(reservation);
    } catch (e) {
      await this.quota.rollback(reservation);
      await this.casStatus(v.id, ['backing-up'], v.status);
      throw e;
    }
    await this.cast('create_backup', { backupId: row.id, volumeId: v.id, previous: v.status });
    return row;
  }

  async deleteBackup(b: BackupRow, force = false): Promise<void> {
    const from = force ? ['available', 'error', 'creating', 'restoring', 'error_deleting'] : ['available', 'error', 'error_deleting'];
    if (!from.includes(b.status)) throw invalidBackup(`Backup status must be available or error (it is ${b.status}).`);
    if (await this.hasDependentBackups(b.id)) throw invalidBackup('Incremental backups exist for this backup.');
    const r = await this.db.updateTable('cinder_backups').set({ status: 'deleting', updated_at: Date.now() }).where('id', '=', b.id).where('status', 'in', from).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw invalidBackup(`Backup ${b.id} changed state meanwhile.`);
    await this.cast('delete_backup', { backupId: b.id });
  }

  async finishDeleteBackup(id: string): Promise<void> {
    const b = await this.db.selectFrom('cinder_backups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!b || bool(b.deleted)) return;
    await this.db.updateTable('cinder_backups').set({ deleted: 1, status: 'deleted', updated_at: Date.now() }).where('id', '=', id).execute();
    await this.quota.release(b.project_id, { backups: 1, backup_gigabytes: b.size });
  }

  /** Restores a backup onto `volumeId` (an available volume at least as big) or onto a new volume. */
  async restoreBackup(ctx: AuthContext, b: BackupRow, input: { volume_id?: string | null; name?: string | null }): Promise<VolumeRow> {
    if (b.status !== 'available') throw invalidBackup(`Backup status must be available (it is ${b.status}).`);
    let target: VolumeRow;
    if (input.volume_id) {
      target = await this.get(input.volume_id, ctx, false);
      if (target.status !== 'available') throw invalidVolume(`Volume to be restored to must be available (it is ${target.status}).`);
      if (target.size < b.size) throw invalidVolume(`volume size ${target.size} is too small to restore backup of size ${b.size}.`);
      if (!(await this.casStatus(target.id, ['available'], 'restoring-backup'))) throw invalidVolume(`Volume ${target.id} changed state meanwhile.`);
    } else {
      const name = input.name ?? `restore_backup_${b.id}`;
      const t = await this.defaultType();
      const reservation = await this.reserve(ctx.projectId ?? b.project_id, this.volumeDeltas(t.name, b.size), b.size);
      const now = Date.now();
      target = {
        id: uuid(), project_id: ctx.projectId ?? b.project_id, user_id: ctx.userId, name, description: null, size: b.size, status: 'restoring-backup',
        attach_status: ATTACH.DETACHED, migration_status: null, availability_zone: this.opts.availabilityZone, volume_type_id: t.id, bootable: 0, multiattach: 0,
        snapshot_id: null, source_volid: null, image_id: null, metadata: '{}', image_metadata: '{}', admin_metadata: '{}', host: `${this.opts.host}@qcow2#qcow2`,
        fault: null, created_at: now, updated_at: now, deleted: 0, deleted_at: null,
      };
      try {
        await this.db.insertInto('cinder_volumes').values(target).execute();
        await this.quota.commit(reservation);
      } catch (e) {
        await this.quota.rollback(reservation);
        throw e;
      }
    }
    const r = await this.db.updateTable('cinder_backups').set({ status: 'restoring', restore_volume_id: target.id, updated_at: Date.now() }).where('id', '=', b.id).where('status', '=', 'available').executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) {
      await this.casStatus(target.id, ['restoring-backup'], input.volume_id ? 'available' : 'error');
      throw invalidBackup(`Backup ${b.id} changed state meanwhile.`);
    }
    await this.cast('restore_backup', { backupId: b.id, volumeId: target.id, newVolume: !input.volume_id });
    return target;
  }

  // ------------------------------------------------------------------ attachments

  async getAttachment(id: string, ctx: AuthContext | null, all: boolean): Promise<AttachmentRow> {
    const a = await this.db.selectFrom('cinder_attachments').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    if (!a || (!all && a.project_id !== ctx?.projectId)) throw notFound(`Volume attachment ${id} could not be found.`, 'VolumeAttachmentNotFound');
    return a;
  }

  async listAttachments(ctx: AuthContext, q: ListQuery): Promise<AttachmentRow[]> {
    let s = this.db.selectFrom('cinder_attachments').selectAll().where('deleted', '=', 0);
    if (!(q.admin && q.allTenants)) s = s.where('project_id', '=', ctx.projectId ?? '');
    if (q.filters.volume_id) s = s.where('volume_id', '=', q.filters.volume_id);
    if (q.filters.instance_id) s = s.where('instance_uuid', '=', q.filters.instance_id);
    if (q.filters.status) s = s.where('attach_status', '=', q.filters.status);
    return paginate(await s.execute(), q, ['id', 'created_at', 'volume_id', 'attach_status'], 'Attachment');
  }

  /**
   * Reserves a volume for an instance: the one place that decides whether a
   * volume may be attached. The compare-and-set on `status` (or, for
   * multiattach volumes, on the attachment count check inside one
   * transaction) makes two concurrent reservations of a normal volume end
   * with exactly one winner.
   */
  async reserveAttachment(ctx: AuthContext, v: VolumeRow, input: { instanceUuid: string | null; connector?: Record<string, unknown> | null; mode?: string; deleteOnTermination?: boolean }): Promise<AttachmentRow> {
    const mode = input.mode ?? 'rw';
    if (mode !== 'rw' && mode !== 'ro') throw badRequest(`Invalid input received: Invalid attach mode '${mode}'.`, 'InvalidInput');
    const multi = bool(v.multiattach);
    const existing = (await this.attachmentsOf(v.id)).filter((a) => a.attach_status !== ATTACH.DETACHED);
    if (input.instanceUuid && existing.some((a) => a.instance_uuid === input.instanceUuid)) throw invalidVolume(`Volume ${v.id} is already attached to instance ${input.instanceUuid}.`);
    const from = multi ? ['available', 'in-use', 'reserved', 'attaching'] : ['available'];
    if (!from.includes(v.status) || (!multi && existing.length)) throw invalidVolume(`Volume ${v.id} status must be available to reserve${multi ? '' : ' (it is not multiattach)'}, but the current status is: ${v.status}.`);
    if (await this.chainSnapshotsBusy(v)) throw invalidVolume(`Volume ${v.id} has a snapshot being created or deleted; try again when it is done.`);
    const now = Date.now();
    const att: AttachmentRow = {
      id: uuid(), volume_id: v.id, project_id: v.project_id, instance_uuid: input.instanceUuid, attached_host: (input.connector?.host as string | undefined) ?? null,
      mountpoint: (input.connector?.mountpoint as string | undefined) ?? null, attach_status: input.connector ? ATTACH.ATTACHING : ATTACH.RESERVED, attach_mode: mode,
      connector: input.connector ? JSON.stringify(input.connector) : null, delete_on_termination: int(input.deleteOnTermination), created_at: now, updated_at: now,
      attach_time: null, detach_time: null, deleted: 0,
    };
    const next = input.connector ? 'attaching' : multi && v.status === 'in-use' ? 'in-use' : 'reserved';
    await this.db.transaction().execute(async (tx) => {
      const r = await tx.updateTable('cinder_volumes').set({ status: next, updated_at: now }).where('id', '=', v.id).where('deleted', '=', 0).where('status', 'in', from).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw invalidVolume(`Volume ${v.id} status must be available to reserve, but it changed meanwhile.`);
      if (!multi) {
        const other = await tx.selectFrom('cinder_attachments').select('id').where('volume_id', '=', v.id).where('deleted', '=', 0).where('attach_status', '!=', ATTACH.DETACHED).executeTakeFirst();
        if (other) throw invalidVolume(`Volume ${v.id} is already attached.`);
      }
      await tx.insertInto('cinder_attachments').values(att).execute();
    });
    void ctx;
    return att;
  }

  /** Gives a host the connection info for an attachment (attachment update with a connector). */
  async connectAttachment(a: AttachmentRow, connector: Record<string, unknown>): Promise<{ att: AttachmentRow; connection: ConnectionInfo }> {
    if (![ATTACH.RESERVED, ATTACH.ATTACHING, ATTACH.ATTACHED].includes(a.attach_status as never)) throw invalidVolume(`Attachment ${a.id} is ${a.attach_status}.`);
    const now = Date.now();
    const set: Partial<AttachmentRow> = { connector: JSON.stringify(connector), attached_host: (connector.host as string | undefined) ?? a.attached_host, mountpoint: (connector.mountpoint as string | undefined) ?? a.mountpoint, updated_at: now };
    if (a.attach_status === ATTACH.RESERVED) set.attach_status = ATTACH.ATTACHING;
    await this.db.updateTable('cinder_attachments').set(set).where('id', '=', a.id).execute();
    await this.casStatus(a.volume_id, ['reserved'], 'attaching');
    return { att: { ...a, ...set }, connection: this.connectionFor(a.volume_id, a.attach_mode) };
  }

  connectionFor(volumeId: string, mode = 'rw'): ConnectionInfo {
    const c = this.opts.connection(volumeId);
    return { ...c, data: { ...c.data, access_mode: mode === 'ro' ? 'ro' : 'rw' } };
  }

  /** The host finished connecting: attachment attached, volume in-use. */
  async completeAttachment(a: AttachmentRow, mountpoint?: string | null, host?: string | null): Promise<void> {
    if (a.attach_status === ATTACH.ATTACHED) return;
    if (![ATTACH.ATTACHING, ATTACH.RESERVED].includes(a.attach_status as never)) throw invalidVolume(`Attachment ${a.id} is ${a.attach_status}.`);
    const now = Date.now();
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('cinder_attachments').set({ attach_status: ATTACH.ATTACHED, attach_time: now, updated_at: now, ...(mountpoint ? { mountpoint } : {}), ...(host ? { attached_host: host } : {}) }).where('id', '=', a.id).execute();
      await tx.updateTable('cinder_volumes').set({ status: 'in-use', attach_status: ATTACH.ATTACHED, updated_at: now }).where('id', '=', a.volume_id).execute();
    });
  }

  /** Removes an attachment; the volume becomes available when it was the last one. */
  async removeAttachment(a: AttachmentRow): Promise<void> {
    const now = Date.now();
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('cinder_attachments').set({ deleted: 1, attach_status: ATTACH.DETACHED, detach_time: now, updated_at: now }).where('id', '=', a.id).execute();
      const left = await tx.selectFrom('cinder_attachments').select(['id', 'attach_status']).where('volume_id', '=', a.volume_id).where('deleted', '=', 0).execute();
      const attached = left.some((x) => x.attach_status === ATTACH.ATTACHED);
      const status = attached ? 'in-use' : left.length ? 'reserved' : 'available';
      await tx.updateTable('cinder_volumes').set({ status, attach_status: attached ? ATTACH.ATTACHED : ATTACH.DETACHED, updated_at: now }).where('id', '=', a.volume_id).where('status', 'in', ['in-use', 'reserved', 'attaching', 'detaching', 'available', 'error_attaching']).execute();
    });
  }

  /** os-begin_detaching: in-use → detaching (the only way into a detach). */
  async beginDetaching(v: VolumeRow): Promise<void> {
    if (!(await this.casStatus(v.id, ['in-use'], 'detaching'))) throw invalidVolume(`Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach. (it is ${v.status})`);
  }

  /** os-roll_detaching: detaching → in-use (a detach that did not happen). */
  async rollDetaching(v: VolumeRow): Promise<void> {
    await this.casStatus(v.id, ['detaching'], 'in-use');
  }

  /** Attachments of one instance (compute's block device mappings). */
  async attachmentsOfInstance(instanceId: string): Promise<AttachmentRow[]> {
    return this.db.selectFrom('cinder_attachments').selectAll().where('instance_uuid', '=', instanceId).where('deleted', '=', 0).orderBy('created_at').execute();
  }

  // ------------------------------------------------------------------ transfers

  async createTransfer(v: VolumeRow, name: string | null): Promise<{ row: TransferRow; authKey: string }> {
    if (v.status !== 'available') throw invalidVolume(`Status of volume must be available (it is ${v.status}).`);
    const snaps = await this.db.selectFrom('cinder_snapshots').select('id').where('volume_id', '=', v.id).where('deleted', '=', 0).executeTakeFirst();
    if (snaps) throw invalidVolume('Volume has snapshots; transfer them with the volume is not supported.');
    const authKey = randomBytes(8).toString('hex');
    const salt = randomBytes(8).toString('hex');
    const row: TransferRow = { id: uuid(), volume_id: v.id, project_id: v.project_id, name, salt, crypt_hash: hashKey(salt, authKey), created_at: Date.now(), deleted: 0 };
    if (!(await this.casStatus(v.id, ['available'], 'awaiting-transfer'))) throw invalidVolume(`Volume ${v.id} changed state meanwhile.`);
    await this.db.insertInto('cinder_transfers').values(row).execute();
    return { row, authKey };
  }

  async getTransfer(id: string, ctx: AuthContext | null, all: boolean, forAccept = false): Promise<TransferRow> {
    const t = await this.db.selectFrom('cinder_transfers').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    // Anyone holding the id and key may accept: the transfer is visible for accept only.
    if (!t || (!all && !forAccept && t.project_id !== ctx?.projectId)) throw notFound(`Transfer ${id} could not be found.`, 'TransferNotFound');
    return t;
  }

  async listTransfers(ctx: AuthContext, all: boolean): Promise<TransferRow[]> {
    let s = this.db.selectFrom('cinder_transfers').selectAll().where('deleted', '=', 0);
    if (!all) s = s.where('project_id', '=', ctx.projectId ?? '');
    return s.orderBy('created_at').execute();
  }

  async deleteTransfer(t: TransferRow): Promise<void> {
    await this.db.updateTable('cinder_transfers').set({ deleted: 1 }).where('id', '=', t.id).execute();
    await this.casStatus(t.volume_id, ['awaiting-transfer'], 'available');
  }

  /** Moves the volume (and its quota usage) to the accepting project. */
  async acceptTransfer(ctx: AuthContext, t: TransferRow, authKey: string): Promise<VolumeRow> {
    if (!ctx.projectId) throw badRequest('A project-scoped token is needed to accept a transfer.');
    const want = Buffer.from(t.crypt_hash, 'hex');
    const got = Buffer.from(hashKey(t.salt, authKey), 'hex');
    if (want.length !== got.length || !timingSafeEqual(want, got)) throw badRequest(`Invalid auth key: Attempt to transfer ${t.id} with invalid auth key.`, 'InvalidAuthKey');
    const v = await this.db.selectFrom('cinder_volumes').selectAll().where('id', '=', t.volume_id).where('deleted', '=', 0).executeTakeFirst();
    if (!v || v.status !== 'awaiting-transfer') throw invalidVolume('Volume is not awaiting a transfer.');
    const ty = await this.typeOf(v);
    const reservation = await this.reserve(ctx.projectId, this.volumeDeltas(ty?.name ?? DEFAULT_TYPE, v.size), v.size);
    try {
      await this.db.transaction().execute(async (tx) => {
        const r = await tx.updateTable('cinder_transfers').set({ deleted: 1 }).where('id', '=', t.id).where('deleted', '=', 0).executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) throw notFound(`Transfer ${t.id} could not be found.`, 'TransferNotFound');
        await tx.updateTable('cinder_volumes').set({ project_id: ctx.projectId!, user_id: ctx.userId, status: 'available', updated_at: Date.now() }).where('id', '=', v.id).execute();
      });
      await this.quota.commit(reservation);
    } catch (e) {
      await this.quota.rollback(reservation);
      throw e;
    }
    await this.quota.release(v.project_id, this.volumeDeltas(ty?.name ?? DEFAULT_TYPE, v.size));
    return this.get(v.id, ctx, true);
  }

  // ------------------------------------------------------------------ usage

  async usage(projectId: string): Promise<Record<string, { limit: number; in_use: number; reserved: number }>> {
    return this.quota.usage(projectId, await this.quotaResources());
  }

  logger(): Logger {
    return this.log;
  }
}

function hashKey(salt: string, key: string): string {
  return createHash('sha256').update(`${salt}:${key}`).digest('hex');
}

/** Cinder's metadata limits: keys 1-255 characters, values up to 255. */
export function checkMetadata(m: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(m)) {
    if (k.length === 0 || k.length > 255) throw badRequest('Invalid input received: Metadata property key blank or longer than 255 characters.', 'InvalidInput');
    if (typeof v !== 'string') throw badRequest(`Invalid input received: Metadata property value for key ${k} must be a string.`, 'InvalidInput');
    if (v.length > 255) throw badRequest(`Invalid input received: Metadata property value greater than 255 characters.`, 'InvalidInput');
  }
}

function parseMetaFilter(s: string): Record<string, string> {
  try {
    const o = JSON.parse(s.replace(/'/g, '"')) as unknown;
    if (o && typeof o === 'object' && !Array.isArray(o)) return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)]));
  } catch {
    /* fall through */
  }
  throw badRequest(`Invalid input received: Invalid filter metadata ${s}.`, 'InvalidInput');
}

const SORT_ALIASES: Record<string, string> = { display_name: 'name', display_description: 'description' };

/** Sorting, marker and limit as Cinder's API does them (sort=key:dir,...; marker = last id seen). */
export function paginate<T extends { id: string }>(rows: T[], q: ListQuery, keys: string[], kind: string): T[] {
  const spec: [string, 'asc' | 'desc'][] = [];
  const sort = q.sort ?? '';
  for (const part of sort.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [given, d] = part.split(':');
    // Cinder's database columns are display_name / display_description: clients sort by either spelling.
    const k = SORT_ALIASES[given!] ?? given;
    const dir = (d ?? 'desc').toLowerCase();
    if (!keys.includes(k!)) throw badRequest(`Invalid input received: Invalid sort key ${given}.`, 'InvalidInput');
    if (dir !== 'asc' && dir !== 'desc') throw badRequest(`Invalid input received: Invalid sort direction ${d}.`, 'InvalidInput');
    spec.push([k!, dir]);
  }
  if (!spec.length) spec.push(['created_at', 'desc']);
  if (!spec.some(([k]) => k === 'id')) spec.push(['id', spec[0]![1]]);
  const sorted = [...rows].sort((a, b) => {
    for (const [k, d] of spec) {
      const av = (a as Record<string, unknown>)[k] ?? '';
      const bv = (b as Record<string, unknown>)[k] ?? '';
      const c = typeof av === 'number' && typeof bv === 'number' ? av - bv : String(av).localeCompare(String(bv));
      if (c !== 0) return d === 'asc' ? c : -c;
    }
    return 0;
  });
  let start = 0;
  if (q.marker) {
    const i = sorted.findIndex((r) => r.id === q.marker);
    if (i < 0) throw badRequest(`Marker ${q.marker} could not be found.`, 'MarkerNotFound');
    start = i + 1;
  }
  if (q.offset !== undefined) start += q.offset;
  void kind;
  return q.limit !== undefined ? sorted.slice(start, start + q.limit) : sorted.slice(start);
}
