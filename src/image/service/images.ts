import { createReadStream, existsSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Bus, Json } from '../../core/bus.js';
import type { StratusConfig } from '../../core/config.js';
import { policyCredentials, type AuthContext } from '../../core/context.js';
import type { Database } from '../../core/db.js';
import { ApiError, badRequest, conflict, forbidden, notFound } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { PolicyEngine } from '../../core/policy.js';
import { OverQuotaError, type QuotaEngine } from '../../core/quota.js';
import { FilesystemStore, StoreLimitError, StoreNotFoundError, type ByteRange, type ImageStore, type StoredData } from '../drivers/store.js';
import { startHashWorkers } from '../drivers/ingest.js';
import { QEMU_FORMATS, QemuImgError, qemuImgConvert, qemuImgInfo, unsafeReason } from '../drivers/qemu-img.js';
import type { ImageStatus } from '../store/tables.js';
import { ImageCatalog, type ImageListQuery } from './catalog.js';
import { parseCreate, type Caller, type CreateInput, type Image, type Mutable } from './model.js';
import { TaskService, type Task } from './tasks.js';
import type { ProxyImage } from '../../compute/service/ports.js';

/** Quota resources of the image service and their default limits. */
export const IMAGE_QUOTAS: Record<string, number> = {
  image_count: 100,
  image_size_total: 1024 ** 4,
};

/** Import methods this cloud implements (and therefore advertises). */
export const IMPORT_METHODS = ['glance-direct'] as const;

/** Upload reservations outlive the slowest reasonable upload. */
const UPLOAD_RESERVATION_TTL_MS = 24 * 3600 * 1000;
/** Disk formats the import plugin converts to qcow2 (the others are kept as they are). */
const CONVERTIBLE = new Set(['raw', 'vmdk', 'vdi', 'vhd', 'vhdx']);

export interface DataResponse {
  status: 200 | 206;
  stream: Readable;
  length: number;
  size: number;
  range: ByteRange | null;
  checksum: string | null;
}

/** An image as compute's image proxy port wants it. */
function proxyView(i: Image): ProxyImage {
  return { id: i.id, name: i.name, status: i.status, minDisk: i.min_disk, minRam: i.min_ram, size: i.size, createdAt: i.created_at, updatedAt: i.updated_at, properties: { ...i.properties } };
}

/** What compute learns about an image it boots (see ImagePort in compute). */
export interface BootImage {
  id: string;
  name?: string;
  status: string;
  diskFormat: string;
  minDisk: number;
  minRam: number;
  size?: number;
  properties: Record<string, unknown>;
  /** Local path of the image data (a qcow2 backing file for qcow2 images); '' when there is no data. */
  localPath: string;
}

/**
 * The image service (Glance v2): image records, their data in an
 * `ImageStore`, sharing, the interoperable import with its tasks, and
 * quotas. The HTTP API (`api/routes.ts`) is a thin layer over it, and other
 * services use it in process through the methods documented as such
 * (`getImageForBoot`, `createImageFromFile`, `reserveImage`).
 *
 * Data consistency rests on a few rules:
 * - status changes are compare-and-set updates (`queued → saving` is taken
 *   by exactly one upload), so concurrent uploads, imports and deletes
 *   cannot interleave badly;
 * - the store writes atomically (temp file, fsync, rename), so a failed or
 *   interrupted upload leaves no data and the image goes back to `queued`;
 * - a crash mid-upload or mid-import is repaired at start-up (`init`).
 */
export class ImageService {
  readonly catalog: ImageCatalog;
  readonly tasks: TaskService;
  store: ImageStore & { init?: () => Promise<void> };
  /** Where `PUT /stage` puts data until it is imported. */
  readonly staging: FilesystemStore;
  private readonly running = new Set<Promise<unknown>>();
  private readonly aborts = new Set<AbortController>();

  constructor(
    database: Database,
    readonly config: StratusConfig,
    private readonly log: Logger,
    private readonly bus: Bus,
    private readonly quota: QuotaEngine,
    private readonly policy: PolicyEngine | null = null,
  ) {
    this.catalog = new ImageCatalog(database);
    this.tasks = new TaskService(database);
    this.store = new FilesystemStore(join(config.dataDir, 'images'));
    this.staging = new FilesystemStore(join(config.dataDir, 'images', 'staging'));
    for (const [k, v] of Object.entries(IMAGE_QUOTAS)) quota.register(k, v);
  }

  /** Keeps image data in another store (e.g. the object store); call before init(). */
  useStore(store: ImageStore & { init?: () => Promise<void> }): void {
    this.store = store;
  }

  /** The image's data as a local file (the store's own file, or a local copy). */
  private async localPathOf(id: string): Promise<string | null> {
    return this.store.path(id) ?? (this.store.localFile ? await this.store.localFile(id) : null);
  }

  /** Prepares the store and repairs what a crash interrupted. Call after migrations. */
  async init(): Promise<void> {
    await this.store.init?.();
    await this.staging.init();
    startHashWorkers();
    await this.recover();
    await this.tasks.purge();
    for (const [owner, u] of await this.catalog.usageByOwner()) {
      await this.quota.setUsage(owner, 'image_count', u.count);
      await this.quota.setUsage(owner, 'image_size_total', u.bytes);
    }
  }

  /** Stops background imports (they are recovered as failed at the next start). */
  async stop(): Promise<void> {
    for (const a of this.aborts) a.abort();
    await Promise.allSettled([...this.running]);
  }

  private async recover(): Promise<void> {
    const db = this.catalog.db;
    const stuck = await db.selectFrom('glance_images').select(['id', 'status']).where('deleted', '=', 0).where('status', 'in', ['saving', 'uploading', 'importing']).execute();
    for (const r of stuck) {
      const staged = (await this.staging.size(r.id)) !== null;
      if (r.status === 'saving' || r.status === 'importing') await this.store.delete(r.id);
      const to: ImageStatus = (r.status === 'uploading' || r.status === 'importing') && staged ? 'uploading' : 'queued';
      if (to === 'queued') await this.staging.delete(r.id);
      await this.catalog.transition(r.id, [r.status], to);
      this.log.warn({ image: r.id, from: r.status, to }, 'image: repaired an upload or import interrupted by a restart');
    }
    for (const t of await this.tasks.unfinished()) await this.tasks.update(t.id, 'failure', { message: 'The task was interrupted by a restart of the image service.' });
    // Data of deleted images whose removal was interrupted.
    const deleted = await db.selectFrom('glance_images').select('id').where('deleted', '=', 1).where('store', 'is not', null).execute();
    for (const r of deleted) {
      await this.store.delete(r.id);
      await db.updateTable('glance_images').set({ store: null }).where('id', '=', r.id).execute();
    }
  }

  /** Runs background work, tracked so that `stop()` can wait for it. */
  private track(p: Promise<unknown>): void {
    const q = p.catch((e) => this.log.error({ err: e }, 'image: background task failed')).finally(() => this.running.delete(q));
    this.running.add(q);
  }

  private event(name: string, payload: Record<string, unknown>): void {
    this.bus.publish(`image.${name}`, payload as Json).catch(() => undefined);
  }

  // -------------------------------------------------------------------------
  // Callers

  /** Who `ctx` is for the image service (admin-ness from the policy engine's base rules). */
  callerFor(ctx: AuthContext, requestId?: string): Caller {
    let admin: boolean;
    let reader: boolean;
    if (this.policy) {
      const creds = policyCredentials(ctx);
      admin = this.policy.enforce('cloud_admin', {}, creds);
      reader = admin || this.policy.enforce('cloud_reader', {}, creds);
    } else {
      admin = ctx.roles.includes('admin') && (ctx.system || ctx.isAdminProject);
      reader = admin || (ctx.roles.includes('reader') && (ctx.system || ctx.isAdminProject));
    }
    return { projectId: ctx.projectId, userId: ctx.userId, admin, seesAll: reader, ...(requestId ? { requestId } : {}) };
  }

  // -------------------------------------------------------------------------
  // Records

  /** Creates a queued image owned by `owner` (default: the caller's project), charging image_count. */
  async create(caller: Caller, input: CreateInput): Promise<Image> {
    const owner = input.base.owner !== undefined ? input.base.owner : caller.projectId;
    const work = () => this.catalog.create(input, owner);
    const img = owner ? await this.quota.withReservation(owner, { image_count: 1 }, work) : await work();
    this.event('create', { id: img.id, owner: img.owner, name: img.name });
    return img;
  }

  get(caller: Caller, id: string) {
    return this.catalog.getVisible(caller, id);
  }

  list(caller: Caller, q: ImageListQuery) {
    return this.catalog.list(caller, q);
  }

  async update(image: Image, next: Mutable, changed: Set<string>): Promise<Image> {
    if (changed.size === 0) return image;
    const newOwner = changed.has('owner') && next.owner !== image.owner ? next.owner : undefined;
    // The image's usage moves with it to its new owner (who must have room for it).
    const reservation = newOwner ? await this.quota.reserve(newOwner, { image_count: 1, image_size_total: image.size ?? 0 }) : null;
    let out: Image;
    try {
      out = await this.catalog.saveMutable(image, next, changed);
    } catch (e) {
      if (reservation) await this.quota.rollback(reservation);
      throw e;
    }
    if (reservation) {
      await this.quota.commit(reservation);
      if (image.owner) await this.quota.release(image.owner, { image_count: 1, image_size_total: image.size ?? 0 });
    }
    this.event('update', { id: out.id, changed: [...changed] });
    return out;
  }

  /** Deletes the image (403 while protected) and its data, giving back its quota. */
  async delete(image: Image): Promise<void> {
    if (image.protected) throw forbidden(`Image ${image.id} is protected and cannot be deleted.`);
    const row = await this.catalog.markDeleted(image.id);
    if (!row) throw notFound(`No image found with ID ${image.id}`, 'ImageNotFound');
    if (row.owner) await this.quota.release(row.owner, { image_count: 1, image_size_total: Number(row.size ?? 0) });
    await this.staging.delete(image.id).catch((e) => this.log.warn({ err: e, image: image.id }, 'image: could not delete staged data'));
    await this.store.delete(image.id).then(
      () => this.catalog.db.updateTable('glance_images').set({ store: null }).where('id', '=', image.id).execute(),
      (e) => this.log.warn({ err: e, image: image.id }, 'image: could not delete data (retried at next start)'),
    );
    this.event('delete', { id: image.id, owner: row.owner });
  }

  async deactivate(image: Image): Promise<void> {
    if (image.status === 'deactivated') return;
    if (image.status !== 'active' || !(await this.catalog.transition(image.id, ['active'], 'deactivated')))
      throw forbidden(`Not allowed to deactivate image in status '${image.status}'`);
    this.event('deactivate', { id: image.id });
  }

  async reactivate(image: Image): Promise<void> {
    if (image.status === 'active') return;
    if (image.status !== 'deactivated' || !(await this.catalog.transition(image.id, ['deactivated'], 'active')))
      throw forbidden(`Not allowed to reactivate image in status '${image.status}'`);
    this.event('reactivate', { id: image.id });
  }

  // -------------------------------------------------------------------------
  // Data

  private async sizeHeadroom(owner: string | null): Promise<number> {
    if (!owner) return Infinity;
    const u = (await this.quota.usage(owner, ['image_size_total'])).image_size_total!;
    return u.limit < 0 ? Infinity : Math.max(0, u.limit - u.in_use - u.reserved);
  }

  private overQuota(owner: string, requested: number, headroom: number): ApiError {
    return new ApiError(413, `Denying attempt to upload image because it exceeds the quota: the image needs ${requested} bytes but only ${headroom} remain for project ${owner}.`, 'OverQuota');
  }

  /**
   * Uploads image data (`PUT /file`): queued → saving → active. `expectedSize`
   * (Content-Length) sizes the quota reservation; `declaredSize`
   * (x-openstack-image-size) and `declaredMd5` must match the data or the
   * upload fails with 400. Any failure — including the client going away —
   * leaves the image queued with no data.
   */
  async upload(image: Image, body: AsyncIterable<Uint8Array>, opts: { declaredSize?: number; expectedSize?: number; declaredMd5?: string } = {}): Promise<Image> {
    if (image.status !== 'queued') throw conflict(`Image status transition from ${image.status} to saving is not allowed`, 'InvalidImageStatusTransition');
    if (!image.disk_format || !image.container_format) throw badRequest('Properties disk_format, container_format must be set prior to saving data.');
    return this.ingest(image, body, opts);
  }

  /** Streams data into the store for an image and activates it (the heart of upload and of createImageFromFile). */
  private async ingest(image: Image, body: AsyncIterable<Uint8Array>, opts: { declaredSize?: number; expectedSize?: number; declaredMd5?: string }): Promise<Image> {
    const owner = image.owner;
    const headroom = await this.sizeHeadroom(owner);
    const expected = opts.declaredSize ?? opts.expectedSize;
    if (owner && expected !== undefined && expected > headroom) throw this.overQuota(owner, expected, headroom);
    let reservation = owner && expected ? await this.quota.reserve(owner, { image_size_total: expected }, UPLOAD_RESERVATION_TTL_MS).catch((e) => {
      if (e instanceof OverQuotaError) throw this.overQuota(owner, expected, headroom);
      throw e;
    }) : null;
    if (!(await this.catalog.transition(image.id, ['queued'], 'saving'))) {
      if (reservation) await this.quota.rollback(reservation);
      const now = await this.catalog.load(image.id);
      throw conflict(`Image status transition from ${now?.status ?? 'deleted'} to saving is not allowed`, 'InvalidImageStatusTransition');
    }
    let stored = false;
    try {
      const maxBytes = opts.declaredSize ?? (Number.isFinite(headroom) ? headroom : undefined);
      let data: StoredData;
      try {
        data = await this.store.put(image.id, body, maxBytes !== undefined ? { maxBytes } : {});
      } catch (e) {
        if (e instanceof StoreLimitError && opts.declaredSize !== undefined)
          throw badRequest(`Uploaded data is larger than the declared size (x-openstack-image-size: ${opts.declaredSize}).`, 'SizeMismatch');
        if (e instanceof StoreLimitError) throw this.overQuota(owner!, e.limit + 1, headroom);
        throw e;
      }
      stored = true;
      if (opts.declaredSize !== undefined && data.size !== opts.declaredSize)
        throw badRequest(`Uploaded data size ${data.size} does not match the declared size ${opts.declaredSize} (x-openstack-image-size).`, 'SizeMismatch');
      if (opts.declaredMd5 && data.md5 !== opts.declaredMd5.toLowerCase())
        throw badRequest(`The MD5 of the uploaded data (${data.md5}) does not match the declared checksum (${opts.declaredMd5}).`, 'ChecksumMismatch');
      const virtualSize = await this.inspect(image.id, image.disk_format ?? 'raw');
      // Usage is the actual size, whatever was expected.
      if (reservation && data.size !== expected) {
        await this.quota.rollback(reservation);
        reservation = null;
      }
      if (!reservation && owner && data.size > 0) {
        reservation = await this.quota.reserve(owner, { image_size_total: data.size }, UPLOAD_RESERVATION_TTL_MS).catch((e) => {
          if (e instanceof OverQuotaError) throw this.overQuota(owner, data.size, headroom);
          throw e;
        });
      }
      const activated = await this.catalog.transition(image.id, ['saving'], 'active', {
        size: data.size, checksum: data.md5, os_hash_algo: 'sha512', os_hash_value: data.sha512, virtual_size: virtualSize, store: this.store.id,
      });
      if (!activated) throw new ApiError(410, `Image ${image.id} could not be found after upload. The image may have been deleted during the upload.`, 'Gone');
    } catch (e) {
      if (stored) await this.store.delete(image.id).catch((err) => this.log.error({ err, image: image.id }, 'image: could not remove data of a failed upload'));
      await this.catalog.transition(image.id, ['saving'], 'queued');
      if (reservation) await this.quota.rollback(reservation);
      throw e;
    }
    if (reservation) await this.quota.commit(reservation);
    const out = (await this.catalog.load(image.id))!;
    this.event('upload', { id: image.id, size: out.size });
    return out;
  }

  /**
   * Learns the virtual size with `qemu-img info`, opening the data with the
   * declared format as compute will, and refuses data that would make QEMU
   * read other host files (400). Data that is not in its declared format is
   * accepted with an unknown virtual size.
   */
  private async inspect(id: string, diskFormat: string): Promise<number | null> {
    // A raw disk is its own size (qemu would round it up to whole sectors).
    if (diskFormat === 'raw') return this.store.size(id);
    const path = await this.localPathOf(id);
    if (!path) return null;
    return this.inspectFile(path, diskFormat);
  }

  private async inspectFile(path: string, diskFormat: string): Promise<number | null> {
    const fmt = QEMU_FORMATS[diskFormat] ?? 'raw';
    try {
      const info = await qemuImgInfo(path, fmt);
      const why = unsafeReason(info);
      if (why) throw badRequest(`Image data is not acceptable: ${why}.`, 'InvalidImageData');
      return info.virtualSize;
    } catch (e) {
      if (e instanceof QemuImgError) {
        this.log.info({ path, diskFormat, err: e.message }, 'image: data is not readable as its declared disk format; virtual size unknown');
        return null;
      }
      throw e;
    }
  }

  /**
   * Opens the data for `GET /file`. null = no data (204). Deactivated images
   * are readable by cloud admins only (403). `range` is already parsed and
   * checked against the size by the caller (see `resolveRange`).
   */
  async openData(caller: Caller, image: Image, rangeHeader: string | undefined): Promise<DataResponse | null> {
    if (image.status === 'deactivated' && !caller.admin) throw forbidden('The requested image has been deactivated. Image data download is forbidden.');
    if ((image.status !== 'active' && image.status !== 'deactivated') || image.size === null || !image.store) return null;
    const size = image.size;
    const range = resolveRange(rangeHeader, size);
    try {
      const stream = await this.store.get(image.id, range && size > 0 ? range : undefined);
      return { status: range ? 206 : 200, stream, length: range ? range.end - range.start + 1 : size, size, range, checksum: image.checksum };
    } catch (e) {
      if (e instanceof StoreNotFoundError) {
        this.log.error({ image: image.id }, 'image: active image has no data in the store');
        return null;
      }
      throw e;
    }
  }

  // -------------------------------------------------------------------------
  // Interoperable import (glance-direct)

  /** `PUT /stage`: queued → uploading, the data kept in the staging area until imported. */
  async stage(image: Image, body: AsyncIterable<Uint8Array>, opts: { declaredSize?: number; expectedSize?: number } = {}): Promise<void> {
    if (image.status !== 'queued') throw conflict(`Image status transition from ${image.status} to uploading is not allowed`, 'InvalidImageStatusTransition');
    const headroom = await this.sizeHeadroom(image.owner);
    const expected = opts.declaredSize ?? opts.expectedSize;
    if (image.owner && expected !== undefined && expected > headroom) throw this.overQuota(image.owner, expected, headroom);
    if (!(await this.catalog.transition(image.id, ['queued'], 'uploading')))
      throw conflict(`Image status transition from ${(await this.catalog.load(image.id))?.status ?? 'deleted'} to uploading is not allowed`, 'InvalidImageStatusTransition');
    try {
      const maxBytes = opts.declaredSize ?? (Number.isFinite(headroom) ? headroom : undefined);
      let data: StoredData;
      try {
        data = await this.staging.put(image.id, body, maxBytes !== undefined ? { maxBytes } : {});
      } catch (e) {
        if (e instanceof StoreLimitError && opts.declaredSize !== undefined) throw badRequest(`Staged data is larger than the declared size (x-openstack-image-size: ${opts.declaredSize}).`, 'SizeMismatch');
        if (e instanceof StoreLimitError) throw this.overQuota(image.owner!, e.limit + 1, headroom);
        throw e;
      }
      if (opts.declaredSize !== undefined && data.size !== opts.declaredSize) {
        await this.staging.delete(image.id);
        throw badRequest(`Staged data size ${data.size} does not match the declared size ${opts.declaredSize} (x-openstack-image-size).`, 'SizeMismatch');
      }
      if (!(await this.catalog.row(image.id).then((r) => r && r.deleted === 0 && r.status === 'uploading'))) {
        await this.staging.delete(image.id);
        throw new ApiError(410, `Image ${image.id} could not be found after staging. The image may have been deleted.`, 'Gone');
      }
    } catch (e) {
      await this.catalog.transition(image.id, ['uploading'], 'queued');
      throw e;
    }
  }

  /**
   * `POST /import` with glance-direct: uploading → importing; a task
   * (`api_image_import`) then converts the staged data to qcow2 when it is in
   * another convertible format, stores it and activates the image. The task
   * is returned at once; its outcome is visible in /v2/tasks.
   */
  async importImage(caller: Caller, image: Image, body: unknown): Promise<Task> {
    const req = parseImportRequest(body);
    if (!image.disk_format) throw conflict("'disk_format' needs to be set before import", 'InvalidImageStatusTransition');
    if (!image.container_format) throw conflict("'container_format' needs to be set before import", 'InvalidImageStatusTransition');
    if (image.status !== 'uploading') throw conflict("Image needs to be staged before 'glance-direct' method can be used", 'InvalidImageStatusTransition');
    if ((await this.staging.size(image.id)) === null) throw conflict(`Image ${image.id} has no staged data`, 'InvalidImageStatusTransition');
    const task = await this.tasks.create({
      type: 'api_image_import', owner: image.owner, imageId: image.id, requestId: caller.requestId ?? null, userId: caller.userId,
      input: { image_id: image.id, import_req: req as unknown as Record<string, unknown>, backend: [this.store.id] },
    });
    if (!(await this.catalog.transition(image.id, ['uploading'], 'importing'))) {
      await this.tasks.update(task.id, 'failure', { message: 'The image is no longer staged.' });
      throw conflict('Image status transition to importing is not allowed', 'InvalidImageStatusTransition');
    }
    const abort = new AbortController();
    this.aborts.add(abort);
    this.track(this.runImport(task, image, abort.signal).finally(() => this.aborts.delete(abort)));
    return (await this.tasks.get(task.id))!;
  }

  private async runImport(task: Task, image: Image, signal: AbortSignal): Promise<void> {
    await this.tasks.update(task.id, 'processing', { message: 'Importing the staged data' });
    const staged = this.staging.path(image.id);
    const converted = join(this.staging.dir, `${image.id}.qcow2.tmp`);
    let stored = false;
    let reservation: string | null = null;
    try {
      let src = staged;
      let diskFormat = image.disk_format!;
      const inputFormat = QEMU_FORMATS[diskFormat] ?? 'raw';
      // Safety first: the staged data, as its declared format, must not refer to other files.
      const info = await qemuImgInfo(staged, inputFormat).catch((e: unknown) => {
        throw new Error(`The staged data is not a valid ${diskFormat} image: ${(e as Error).message}`);
      });
      const why = unsafeReason(info);
      if (why) throw new Error(`Image data is not acceptable: ${why}.`);
      if (CONVERTIBLE.has(diskFormat) && image.container_format === 'bare') {
        if (signal.aborted) throw new Error('aborted');
        await this.tasks.update(task.id, 'processing', { message: `Converting ${diskFormat} to qcow2` });
        await qemuImgConvert(staged, inputFormat, converted, 'qcow2');
        src = converted;
        diskFormat = 'qcow2';
      }
      if (signal.aborted) throw new Error('aborted');
      const size = (await stat(src)).size;
      if (image.owner) reservation = await this.quota.reserve(image.owner, { image_size_total: size }, UPLOAD_RESERVATION_TTL_MS);
      const data = await this.store.put(image.id, createReadStream(src, { highWaterMark: 1024 * 1024 }));
      stored = true;
      const virtualSize = await this.inspect(image.id, diskFormat);
      // The store holds the data now: the staged copy goes before the image
      // turns active, so nobody sees an active image with data still staged.
      await this.staging.delete(image.id).catch(() => undefined);
      const ok = await this.catalog.transition(image.id, ['importing'], 'active', {
        size: data.size, checksum: data.md5, os_hash_algo: 'sha512', os_hash_value: data.sha512, virtual_size: virtualSize, store: this.store.id, disk_format: diskFormat,
      });
      if (!ok) throw new Error('The image was deleted during the import.');
      stored = false; // the image owns its data now
      if (reservation) await this.quota.commit(reservation);
      reservation = null;
      await this.tasks.update(task.id, 'success', { message: '', result: { image_id: image.id } });
      this.event('upload', { id: image.id, size: data.size, import: 'glance-direct' });
    } catch (e) {
      const msg = e instanceof OverQuotaError ? e.message : (e as Error).message;
      this.log.warn({ image: image.id, task: task.id, err: msg }, 'image: import failed');
      if (stored) await this.store.delete(image.id).catch(() => undefined);
      if (reservation) await this.quota.rollback(reservation);
      await this.staging.delete(image.id).catch(() => undefined);
      await this.catalog.transition(image.id, ['importing'], 'queued');
      await this.tasks.update(task.id, 'failure', { message: msg });
    } finally {
      await rm(converted, { force: true });
    }
  }

  // -------------------------------------------------------------------------
  // In-process API for other services (compute)

  /**
   * For compute: the image a server boots from, if `ctx` may see it (else an
   * ApiError 404). `localPath` is the image file in the local store, which
   * compute uses directly as the backing file of the instance's disk — it
   * must never be written to.
   */
  async getImageForBoot(ctx: AuthContext, id: string): Promise<BootImage> {
    const { image } = await this.catalog.getVisible(this.callerFor(ctx), id);
    const path = image.store ? await this.localPathOf(image.id) : null;
    return {
      id: image.id,
      ...(image.name !== null ? { name: image.name } : {}),
      status: image.status,
      diskFormat: image.disk_format ?? 'raw',
      minDisk: image.min_disk,
      minRam: image.min_ram,
      ...(image.size !== null ? { size: image.size } : {}),
      properties: { ...image.properties },
      localPath: path ?? '',
    };
  }

  /**
   * For compute's snapshots: makes the file at `path` an active image owned
   * by `ctx`'s project — either filling `imageId` (a queued image made by
   * `reserveImage`) or creating a new private image. The file is copied into
   * the store (hashed on the way); the caller may delete it afterwards.
   */
  async createImageFromFile(ctx: AuthContext, input: { name: string; diskFormat: string; path: string; properties: Record<string, string>; imageId?: string }): Promise<{ id: string }> {
    const caller = this.callerFor(ctx);
    let image: Image;
    if (input.imageId) {
      const found = await this.catalog.load(input.imageId);
      if (!found || (!caller.admin && found.owner !== caller.projectId)) throw notFound(`No image found with ID ${input.imageId}`, 'ImageNotFound');
      image = found;
      if (!image.disk_format || !image.container_format) {
        const next: Mutable = { ...image, disk_format: image.disk_format ?? input.diskFormat, container_format: image.container_format ?? 'bare' };
        image = await this.catalog.saveMutable(image, next, new Set(['disk_format', 'container_format']));
      }
    } else {
      image = await this.create(caller, parseCreate({ name: input.name, disk_format: input.diskFormat, container_format: 'bare', visibility: 'private', ...input.properties }));
    }
    await this.ingest(image, createReadStream(input.path, { highWaterMark: 1024 * 1024 }), { expectedSize: (await stat(input.path)).size });
    return { id: image.id };
  }

  /** For Nova's image proxy: one image `ctx` may see (else 404). */
  async showImage(ctx: AuthContext, id: string): Promise<ProxyImage> {
    return proxyView((await this.catalog.getVisible(this.callerFor(ctx), id)).image);
  }

  /** For Nova's image proxy: the images `ctx` may see, newest first. */
  async listImages(ctx: AuthContext, limit: number, marker?: string): Promise<ProxyImage[]> {
    const { images } = await this.catalog.list(this.callerFor(ctx), {
      limit, ...(marker ? { marker } : {}), sort: [{ key: 'created_at', dir: 'desc' }, { key: 'id', dir: 'desc' }], memberStatus: 'accepted', filters: [], tags: [], properties: {},
    });
    return images.map(proxyView);
  }

  /**
   * For compute's snapshots (Nova's flow) and volume uploads: a queued
   * private image (qcow2 unless `diskFormat` says otherwise) to be filled by
   * `createImageFromFile`.
   */
  async reserveImage(ctx: AuthContext, input: { name: string; properties: Record<string, string>; diskFormat?: string }): Promise<{ id: string }> {
    const img = await this.create(this.callerFor(ctx), parseCreate({ name: input.name, disk_format: input.diskFormat ?? 'qcow2', container_format: 'bare', visibility: 'private', ...input.properties }));
    return { id: img.id };
  }

  /**
   * For compute: deletes an image on behalf of `ctx` (its owner or a cloud
   * admin) — what Nova does with the queued image of a failed snapshot.
   * 404 when `ctx` cannot see it, 403 when it is not theirs or protected.
   */
  async deleteImage(ctx: AuthContext, id: string): Promise<void> {
    const caller = this.callerFor(ctx);
    const { image } = await this.catalog.getVisible(caller, id);
    if (!caller.admin && image.owner !== caller.projectId) throw forbidden(`You are not authorized to delete image ${id}.`);
    await this.delete(image);
  }

  /** Registers the seeded guest image (qcow2 at `path`) as a public image, once. */
  async seedGuestImage(ctx: AuthContext, path: string): Promise<void> {
    if (!existsSync(path)) return;
    const seeded = await this.catalog.db
      .selectFrom('glance_image_properties')
      .innerJoin('glance_images', 'glance_images.id', 'glance_image_properties.image_id')
      .select(['glance_images.id', 'glance_images.status'])
      .where('glance_image_properties.name', '=', 'stratus_seed')
      .where('glance_image_properties.value', '=', 'guest')
      .where('glance_images.deleted', '=', 0)
      .executeTakeFirst();
    if (seeded?.status === 'active') return;
    const caller = this.callerFor(ctx);
    let image = seeded ? await this.catalog.load(seeded.id) : null;
    image ??= await this.create(caller, parseCreate({ name: 'stratus-guest', disk_format: 'qcow2', container_format: 'bare', visibility: 'public', os_distro: 'stratus', stratus_seed: 'guest' }));
    if (image.status !== 'queued') return;
    await this.ingest(image, createReadStream(path, { highWaterMark: 1024 * 1024 }), { expectedSize: (await stat(path)).size });
    this.log.info({ image: image.id }, 'image: seeded the guest image');
  }
}

/** Validates a `POST /import` body (400 for an unknown or unavailable method). */
export function parseImportRequest(body: unknown): { method: { name: string }; stores?: string[]; all_stores?: boolean; all_stores_must_succeed?: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('Body expected in request.');
  const b = body as Record<string, unknown>;
  if (!('method' in b)) throw badRequest("Import request requires a 'method' field.");
  const method = b.method as Record<string, unknown> | null;
  if (typeof method !== 'object' || method === null || !('name' in method)) throw badRequest("Import request requires a 'name' field.");
  if (!(IMPORT_METHODS as readonly unknown[]).includes(method.name)) throw badRequest(`Unknown import method name '${String(method.name)}'.`);
  if (b.all_stores_must_succeed !== undefined && typeof b.all_stores_must_succeed !== 'boolean') throw badRequest("'all_stores_must_succeed' must be boolean value only");
  if (b.all_stores !== undefined && typeof b.all_stores !== 'boolean') throw badRequest("'all_stores' must be boolean value only");
  if (b.stores !== undefined) {
    if (!Array.isArray(b.stores) || b.stores.some((s) => typeof s !== 'string')) throw badRequest("'stores' must be a list of store identifiers");
    const unknown = (b.stores as string[]).filter((s) => s !== 'file');
    if (unknown.length) throw conflict(`Stores ${unknown.join(', ')} are not available.`, 'UnknownStore');
  }
  return { method: { name: method.name as string }, ...(b.stores ? { stores: b.stores as string[] } : {}), ...(b.all_stores !== undefined ? { all_stores: b.all_stores as boolean } : {}), ...(b.all_stores_must_succeed !== undefined ? { all_stores_must_succeed: b.all_stores_must_succeed as boolean } : {}) };
}

/**
 * Resolves an HTTP `Range` header against the data size: null for a whole
 * download, the inclusive range for a satisfiable single range, else a 416
 * ApiError carrying `Content-Range: bytes *\/size`.
 */
export function resolveRange(header: string | undefined, size: number): ByteRange | null {
  if (header === undefined || header === '') return null;
  const unsatisfiable = () => new ApiError(416, `Requested range ${header} not satisfiable for an image of ${size} bytes.`, 'RangeNotSatisfiable', { 'content-range': `bytes */${size}` });
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) throw unsatisfiable();
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) throw unsatisfiable();
    if (start >= size) throw unsatisfiable();
  }
  return { start, end };
}
