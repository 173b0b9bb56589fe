import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Bus, Json } from '../../core/bus.js';
import type { AuthContext } from '../../core/context.js';
import type { Logger } from '../../core/log.js';
import type { VolumeDriver } from '../drivers/driver.js';
import type { BackupEngine } from './backups.js';
import type { VolumeComputePort, VolumeImagePort } from './ports.js';
import type { VolumeService } from './volumes.js';

const GIB = 1024 ** 3;
/** Queue key of the work that rewrites backing chains. */
const CHAIN = '__backing_chains__';
type A = Record<string, unknown>;

/**
 * The volume manager of one host (cinder-volume): performs the storage work
 * the service handed over on `volume.<host>`, through the driver, and moves
 * each resource out of its transitional status — to the final one on
 * success, to an error status with a fault message on failure. Nothing is
 * ever left in creating/deleting/extending/backing-up.
 */
export class VolumeManager {
  private unserve: (() => void) | null = null;
  /** Work in flight, so tests and shutdown can wait for it. */
  private readonly inflight = new Set<Promise<unknown>>();
  /** Per-volume queue: work that renames or rewrites a volume's files runs one at a time. */
  private readonly queues = new Map<string, Promise<unknown>>();

  private serial<T>(volumeId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(volumeId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.queues.set(volumeId, tail);
    void tail.then(() => {
      if (this.queues.get(volumeId) === tail) this.queues.delete(volumeId);
    });
    return next;
  }
  constructor(
    private readonly bus: Bus,
    private readonly svc: VolumeService,
    private readonly driver: VolumeDriver,
    private readonly backups: BackupEngine | null,
    private readonly images: VolumeImagePort,
    private readonly compute: VolumeComputePort | null,
    private readonly log: Logger,
    private readonly opts: { host: string; workDir: string },
  ) {}

  async start(): Promise<void> {
    await this.driver.init();
    mkdirSync(this.opts.workDir, { recursive: true });
    const h = (fn: (a: A) => Promise<void>) => (a: Json) => this.track(fn(a as A));
    // keyed by the volume whose files the work renames, rewrites or reads
    const q = (key: (a: A) => string | null, fn: (a: A) => Promise<void>) => h((a) => (key(a) ? this.serial(key(a)!, () => fn(a)) : fn(a)));
    const byVolume = (a: A) => a.volumeId as string;
    this.unserve = this.bus.serve(`volume.${this.opts.host}`, {
      create_volume: q((a) => (a.sourceId as string | null) ?? null, (a) => this.createVolume(a)),
      delete_volume: q(() => CHAIN, (a) => this.deleteVolume(a)),
      extend_volume: q(byVolume, (a) => this.extendVolume(a)),
      // making and removing snapshots rewrite backing chains that several volumes share: one at a time
      create_snapshot: q(() => CHAIN, (a) => this.createSnapshot(a)),
      delete_snapshot: q(() => CHAIN, (a) => this.deleteSnapshot(a)),
      create_backup: q(byVolume, (a) => this.createBackup(a)),
      delete_backup: h((a) => this.deleteBackup(a)),
      restore_backup: q(byVolume, (a) => this.restoreBackup(a)),
      upload_image: q(byVolume, (a) => this.uploadImage(a)),
    });
    await this.recover();
  }

  private async track(p: Promise<void>): Promise<null> {
    this.inflight.add(p);
    try {
      await p;
    } finally {
      this.inflight.delete(p);
    }
    return null;
  }

  /** Resolves when no storage work is running (tests; shutdown). */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  async stop(): Promise<void> {
    this.unserve?.();
    await this.idle();
  }

  private get db() {
    return this.svc.db;
  }

  private async setVolume(id: string, set: Record<string, unknown>): Promise<void> {
    await this.db.updateTable('cinder_volumes').set({ ...set, updated_at: Date.now() }).where('id', '=', id).execute();
  }

  private fail(kind: string, id: string, e: unknown): string {
    const msg = (e as Error).message ?? String(e);
    this.log.error({ err: e, [kind]: id }, `volume manager: ${kind} operation failed`);
    return msg.slice(0, 1000);
  }

  /**
   * After a restart: work that was in flight when the process stopped
   * cannot be resumed, so each transitional status becomes its error status
   * (or, where nothing changed on the backend, the status it came from).
   */
  private async recover(): Promise<void> {
    const vols = await this.db.selectFrom('cinder_volumes').selectAll().where('deleted', '=', 0).where('status', 'in', ['creating', 'deleting', 'extending', 'backing-up', 'restoring-backup', 'uploading', 'downloading']).execute();
    for (const v of vols) {
      const to = v.status === 'creating' ? (this.driver.exists(v.id) ? 'available' : 'error') : v.status === 'deleting' ? 'error_deleting' : v.status === 'extending' ? 'error_extending' : v.status === 'restoring-backup' ? 'error_restoring' : v.attach_status === 'attached' ? 'in-use' : 'available';
      await this.setVolume(v.id, { status: to, ...(to.startsWith('error') ? { fault: `interrupted by a restart while ${v.status}` } : {}) });
    }
    await this.db.updateTable('cinder_snapshots').set({ status: 'error', updated_at: Date.now() }).where('deleted', '=', 0).where('status', '=', 'creating').execute();
    await this.db.updateTable('cinder_snapshots').set({ status: 'error_deleting', updated_at: Date.now() }).where('deleted', '=', 0).where('status', '=', 'deleting').execute();
    await this.db.updateTable('cinder_backups').set({ status: 'error', fail_reason: 'interrupted by a restart', updated_at: Date.now() }).where('deleted', '=', 0).where('status', 'in', ['creating', 'deleting']).execute();
    await this.db.updateTable('cinder_backups').set({ status: 'available', updated_at: Date.now() }).where('deleted', '=', 0).where('status', '=', 'restoring').execute();
  }

  private async createVolume(a: A): Promise<void> {
    const id = a.volumeId as string;
    const size = a.size as number;
    try {
      const img = a.image as { id: string; path: string; format: string } | null;
      if (a.snapshotId) await this.driver.createVolumeFromSnapshot(id, a.snapshotId as string, size);
      else if (a.sourceId) await this.driver.cloneVolume(id, a.sourceId as string, size);
      else if (img) await this.driver.createVolumeFromImage(id, img.id, img.path, img.format, size);
      else if (a.backupId) {
        if (!this.backups) throw new Error('the backup service is not available');
        const raw = join(this.opts.workDir, `restore-${id}-${randomBytes(3).toString('hex')}.raw`);
        try {
          await this.backups.restore(a.backupId as string, raw);
          await this.driver.importVolume(id, raw, size);
        } finally {
          await rm(raw, { force: true });
        }
      } else await this.driver.createVolume(id, size);
      const r = await this.db.updateTable('cinder_volumes').set({ status: 'available', updated_at: Date.now() }).where('id', '=', id).where('status', '=', 'creating').executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) this.log.info({ volume: id }, 'volume left creating before it was made (deleted meanwhile?)');
    } catch (e) {
      await this.setVolume(id, { status: 'error', fault: this.fail('volume', id, e) });
    }
  }

  private async deleteVolume(a: A): Promise<void> {
    const id = a.volumeId as string;
    try {
      for (const s of (a.snapshotIds as string[] | undefined) ?? []) {
        await this.driver.deleteSnapshot(s);
        await this.svc.finishDeleteSnapshot(s);
      }
      await this.driver.deleteVolume(id);
      await this.svc.finishDelete(id);
    } catch (e) {
      await this.setVolume(id, { status: 'error_deleting', fault: this.fail('volume', id, e) });
    }
  }

  private async extendVolume(a: A): Promise<void> {
    const id = a.volumeId as string;
    const newSize = a.newSize as number;
    const attached = a.attached as { host: string; instanceId: string } | null;
    try {
      if (attached) {
        if (!this.compute) throw new Error('compute is not reachable to extend an attached volume');
        // QEMU holds the file open: it grows it itself (block_resize) and the guest sees the new size.
        await this.compute.extendAttached(attached.host, attached.instanceId, id, newSize * GIB);
      }
      await this.driver.extendVolume(id, newSize);
      await this.setVolume(id, { status: a.previous as string, size: newSize });
      await this.svc.quota.commit(a.reservation as string);
    } catch (e) {
      await this.svc.quota.rollback(a.reservation as string);
      await this.setVolume(id, { status: 'error_extending', fault: this.fail('volume', id, e) });
    }
  }

  private async createSnapshot(a: A): Promise<void> {
    const id = a.snapshotId as string;
    try {
      await this.driver.createSnapshot(id, a.volumeId as string, a.attached === true);
      await this.db.updateTable('cinder_snapshots').set({ status: 'available', progress: '100%', updated_at: Date.now() }).where('id', '=', id).execute();
    } catch (e) {
      this.fail('snapshot', id, e);
      await this.db.updateTable('cinder_snapshots').set({ status: 'error', updated_at: Date.now() }).where('id', '=', id).execute();
    }
  }

  private async deleteSnapshot(a: A): Promise<void> {
    const id = a.snapshotId as string;
    try {
      await this.driver.deleteSnapshot(id);
      await this.svc.finishDeleteSnapshot(id);
    } catch (e) {
      this.fail('snapshot', id, e);
      await this.db.updateTable('cinder_snapshots').set({ status: 'error_deleting', updated_at: Date.now() }).where('id', '=', id).execute();
    }
  }

  private async createBackup(a: A): Promise<void> {
    const id = a.backupId as string;
    const volumeId = a.volumeId as string;
    const raw = join(this.opts.workDir, `backup-${id}.raw`);
    try {
      if (!this.backups) throw new Error('the backup service (object store) is not available');
      const b = await this.svc.getBackup(id, null, true);
      await this.driver.exportVolume(volumeId, raw, 'raw');
      const extents = await this.driver.dataExtents(volumeId).catch(() => undefined);
      const { objectCount } = await this.backups.backup(raw, { backupId: id, volumeId, parentId: b.parent_id }, extents);
      await this.db.updateTable('cinder_backups').set({ status: 'available', object_count: objectCount, updated_at: Date.now() }).where('id', '=', id).execute();
    } catch (e) {
      await this.db.updateTable('cinder_backups').set({ status: 'error', fail_reason: this.fail('backup', id, e), updated_at: Date.now() }).where('id', '=', id).execute();
    } finally {
      await rm(raw, { force: true });
      await this.db.updateTable('cinder_volumes').set({ status: a.previous as string, updated_at: Date.now() }).where('id', '=', volumeId).where('status', '=', 'backing-up').execute();
    }
  }

  private async deleteBackup(a: A): Promise<void> {
    const id = a.backupId as string;
    try {
      await this.backups?.delete(id);
      await this.svc.finishDeleteBackup(id);
    } catch (e) {
      await this.db.updateTable('cinder_backups').set({ status: 'error_deleting', fail_reason: this.fail('backup', id, e), updated_at: Date.now() }).where('id', '=', id).execute();
    }
  }

  private async restoreBackup(a: A): Promise<void> {
    const id = a.backupId as string;
    const volumeId = a.volumeId as string;
    const raw = join(this.opts.workDir, `restore-${volumeId}-${randomBytes(3).toString('hex')}.raw`);
    try {
      if (!this.backups) throw new Error('the backup service (object store) is not available');
      const v = await this.svc.get(volumeId, null, true);
      await this.backups.restore(id, raw);
      await this.driver.importVolume(volumeId, raw, v.size);
      await this.backupDone(id);
      await this.setVolume(volumeId, { status: 'available' });
    } catch (e) {
      await this.backupDone(id);
      await this.setVolume(volumeId, { status: 'error_restoring', fault: this.fail('volume', volumeId, e) });
    } finally {
      await rm(raw, { force: true });
    }
  }

  /** The backup is free again (before the restored volume shows available, so a caller seeing the volume ready can use the backup). */
  private async backupDone(id: string): Promise<void> {
    await this.db.updateTable('cinder_backups').set({ status: 'available', updated_at: Date.now() }).where('id', '=', id).where('status', '=', 'restoring').execute();
  }

  private async uploadImage(a: A): Promise<void> {
    const id = a.volumeId as string;
    const ctx = a.ctx as unknown as AuthContext;
    const fmt = a.diskFormat as 'raw' | 'qcow2';
    const out = join(this.opts.workDir, `upload-${id}-${randomBytes(3).toString('hex')}.${fmt}`);
    try {
      await this.driver.exportVolume(id, out, fmt);
      await this.images.createImageFromFile(ctx, { name: a.name as string, diskFormat: fmt, path: out, properties: {}, imageId: a.imageId as string });
    } catch (e) {
      this.fail('volume', id, e);
      await this.images.deleteImage?.(ctx, a.imageId as string).catch(() => undefined);
    } finally {
      await rm(out, { force: true });
      await this.db.updateTable('cinder_volumes').set({ status: a.previous as string, updated_at: Date.now() }).where('id', '=', id).where('status', '=', 'uploading').execute();
    }
  }
}
