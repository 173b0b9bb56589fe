import { execFile } from 'node:child_process';
import { existsSync, linkSync, copyFileSync, readdirSync, statfsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { VolumeDriverError, type ConnectionInfo, type VolumeDriver } from './driver.js';

const GIB = 1024 ** 3;

/** Runs a program, resolving with stdout; rejects with its stderr. */
function run(cmd: string, args: string[], timeoutMs = 30 * 60_000): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) rej(new VolumeDriverError('Failed', `${cmd} ${args[0]} failed: ${(stderr || err.message).trim().split('\n').slice(-2).join(' ')}`));
      else res(stdout);
    });
  });
}

/**
 * Volumes as qcow2 files under one directory (`<data>/volumes`):
 *
 *   volume-<id>.qcow2     a volume (possibly an overlay)
 *   snapshot-<id>.qcow2   a snapshot: frozen data that volumes may sit on
 *   _base/<image key>     private hard link (or copy) of an image file, so
 *                         deleting the image never breaks a volume's chain
 *
 * Snapshots are backing chains: snapshotting an idle volume renames its file
 * to the snapshot and gives the volume a fresh overlay on it (instant, no
 * copy); an attached volume is copied instead (QEMU keeps the file open).
 * A volume from a snapshot or an image is an overlay: instant and small.
 * Deleting a snapshot first rebases every file that sits on it onto the
 * snapshot's own backing (qemu-img rebase copies the differing clusters),
 * so data never disappears from under a volume.
 */
export class Qcow2VolumeDriver implements VolumeDriver {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  volumePath(id: string): string {
    return join(this.dir, `volume-${id}.qcow2`);
  }
  snapshotPath(id: string): string {
    return join(this.dir, `snapshot-${id}.qcow2`);
  }
  private tmpPath(what: string): string {
    return join(this.dir, `.tmp-${what}-${randomBytes(4).toString('hex')}`);
  }

  async init(): Promise<void> {
    await mkdir(join(this.dir, '_base'), { recursive: true });
    // leftovers of interrupted operations
    for (const f of readdirSync(this.dir)) if (f.startsWith('.tmp-')) await rm(join(this.dir, f), { force: true });
  }

  exists(id: string): boolean {
    return existsSync(this.volumePath(id));
  }

  private async info(path: string): Promise<{ virtualSize: number; backing: string | null }> {
    const j = JSON.parse(await run('qemu-img', ['info', '-U', '--output=json', path])) as { 'virtual-size': number; 'full-backing-filename'?: string; 'backing-filename'?: string };
    return { virtualSize: j['virtual-size'], backing: j['full-backing-filename'] ?? j['backing-filename'] ?? null };
  }

  /** Writes to a temp name then renames: a crash never leaves a half-made volume under its real name. */
  private async place(id: string, make: (tmp: string) => Promise<void>): Promise<void> {
    const dst = this.volumePath(id);
    if (existsSync(dst)) throw new VolumeDriverError('Exists', `volume ${id} already exists on the backend`);
    const tmp = this.tmpPath(id);
    try {
      await make(tmp);
      await rename(tmp, dst);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async createVolume(id: string, sizeGb: number): Promise<void> {
    await this.place(id, (tmp) => run('qemu-img', ['create', '-q', '-f', 'qcow2', tmp, String(sizeGb * GIB)]).then(() => undefined));
  }

  async createVolumeFromImage(id: string, imageKey: string, imagePath: string, imageFormat: string, sizeGb: number): Promise<void> {
    if (!/^[A-Za-z0-9._-]+$/.test(imageKey)) throw new VolumeDriverError('InvalidSpec', 'bad image key');
    if (imageFormat !== 'qcow2' && imageFormat !== 'raw') throw new VolumeDriverError('InvalidSpec', `cannot make a volume from a ${imageFormat} image`);
    const base = join(this.dir, '_base', `${imageKey}.${imageFormat}`);
    if (!existsSync(base)) {
      const t = this.tmpPath('base');
      try {
        linkSync(imagePath, t);
      } catch {
        copyFileSync(imagePath, t);
      }
      await rename(t, base);
    }
    const { virtualSize } = await this.info(base);
    if (virtualSize > sizeGb * GIB) throw new VolumeDriverError('InvalidSpec', `image virtual size ${Math.ceil(virtualSize / GIB)} GiB is larger than the volume size ${sizeGb} GiB`);
    await this.place(id, (tmp) => run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', imageFormat, '-b', base, tmp, String(sizeGb * GIB)]).then(() => undefined));
  }

  async createVolumeFromSnapshot(id: string, snapshotId: string, sizeGb: number): Promise<void> {
    const snap = this.snapshotPath(snapshotId);
    if (!existsSync(snap)) throw new VolumeDriverError('NotFound', `snapshot ${snapshotId} not found on the backend`);
    const { virtualSize } = await this.info(snap);
    const size = Math.max(virtualSize, sizeGb * GIB);
    await this.place(id, (tmp) => run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', snap, tmp, String(size)]).then(() => undefined));
  }

  async cloneVolume(id: string, sourceId: string, sizeGb: number): Promise<void> {
    const src = this.volumePath(sourceId);
    if (!existsSync(src)) throw new VolumeDriverError('NotFound', `volume ${sourceId} not found on the backend`);
    await this.place(id, async (tmp) => {
      await run('qemu-img', ['convert', '-U', '-O', 'qcow2', src, tmp]);
      const { virtualSize } = await this.info(tmp);
      if (sizeGb * GIB > virtualSize) await run('qemu-img', ['resize', '-q', tmp, String(sizeGb * GIB)]);
    });
  }

  /** Files (volumes and snapshots) whose backing file is `path`. */
  private async dependentsOf(path: string): Promise<string[]> {
    const out: string[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!/^(volume|snapshot)-.*\.qcow2$/.test(f)) continue;
      const p = join(this.dir, f);
      const { backing } = await this.info(p).catch(() => ({ backing: null }));
      if (backing && resolve(this.dir, backing) === path) out.push(p);
    }
    return out;
  }

  async deleteVolume(id: string): Promise<void> {
    const p = this.volumePath(id);
    if (!existsSync(p)) return;
    // Nothing ever sits on a volume file (snapshots take the old file away), so it can go.
    await rm(p, { force: true });
  }

  async extendVolume(id: string, newSizeGb: number): Promise<void> {
    const p = this.volumePath(id);
    if (!existsSync(p)) throw new VolumeDriverError('NotFound', `volume ${id} not found on the backend`);
    const { virtualSize } = await this.info(p);
    if (newSizeGb * GIB < virtualSize) throw new VolumeDriverError('InvalidSpec', 'a volume cannot shrink');
    if (newSizeGb * GIB > virtualSize) await run('qemu-img', ['resize', '-q', p, String(newSizeGb * GIB)]);
  }

  async createSnapshot(snapshotId: string, volumeId: string, attached: boolean): Promise<void> {
    const vol = this.volumePath(volumeId);
    const snap = this.snapshotPath(snapshotId);
    if (!existsSync(vol)) throw new VolumeDriverError('NotFound', `volume ${volumeId} not found on the backend`);
    if (existsSync(snap)) throw new VolumeDriverError('Exists', `snapshot ${snapshotId} already exists`);
    if (attached) {
      // QEMU holds the file: copy what is on disk now (crash-consistent, like pulling the plug).
      const tmp = this.tmpPath(snapshotId);
      try {
        await run('qemu-img', ['convert', '-U', '-O', 'qcow2', vol, tmp]);
        await rename(tmp, snap);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
      return;
    }
    // Freeze the current file as the snapshot; the volume continues on an overlay.
    const { virtualSize } = await this.info(vol);
    const overlay = this.tmpPath(volumeId);
    await rename(vol, snap);
    try {
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', snap, overlay, String(virtualSize)]);
      await rename(overlay, vol);
    } catch (e) {
      await rm(overlay, { force: true });
      await rename(snap, vol);
      throw e;
    }
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    const snap = this.snapshotPath(snapshotId);
    if (!existsSync(snap)) return;
    const { backing } = await this.info(snap);
    for (const dep of await this.dependentsOf(snap)) {
      // Safe rebase: copies every cluster that differs between the old and the new backing into `dep`.
      const args = backing ? ['rebase', '-q', '-F', backing.includes('/_base/') && backing.endsWith('.raw') ? 'raw' : 'qcow2', '-b', backing, dep] : ['rebase', '-q', '-b', '', dep];
      await run('qemu-img', args);
    }
    await rm(snap, { force: true });
  }

  async exportVolume(id: string, outPath: string, format: 'qcow2' | 'raw'): Promise<void> {
    const p = this.volumePath(id);
    if (!existsSync(p)) throw new VolumeDriverError('NotFound', `volume ${id} not found on the backend`);
    await run('qemu-img', ['convert', '-U', '-O', format, p, outPath]);
  }

  async importVolume(id: string, rawPath: string, sizeGb: number): Promise<void> {
    const p = this.volumePath(id);
    const tmp = this.tmpPath(id);
    try {
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', rawPath, tmp]);
      const { virtualSize } = await this.info(tmp);
      if (sizeGb * GIB > virtualSize) await run('qemu-img', ['resize', '-q', tmp, String(sizeGb * GIB)]);
      await rename(tmp, p);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async dataExtents(id: string): Promise<{ start: number; length: number }[]> {
    const p = this.volumePath(id);
    if (!existsSync(p)) throw new VolumeDriverError('NotFound', `volume ${id} not found on the backend`);
    const map = JSON.parse(await run('qemu-img', ['map', '-U', '--output=json', p])) as { start: number; length: number; data: boolean; zero: boolean }[];
    return map.filter((e) => e.data && !e.zero).map((e) => ({ start: e.start, length: e.length }));
  }

  connectionInfo(id: string): ConnectionInfo {
    const p = this.volumePath(id);
    return { driver_volume_type: 'file', data: { name: `volume-${id}`, device_path: p, format: 'qcow2', access_mode: 'rw' } };
  }

  async capacity(): Promise<{ totalGb: number; freeGb: number }> {
    const s = statfsSync(this.dir);
    return { totalGb: Math.floor((s.blocks * s.bsize) / GIB), freeGb: Math.floor((s.bavail * s.bsize) / GIB) };
  }
}
