import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { BackupObjectStore } from './ports.js';

/** Backups live in this object storage account (a service account users cannot reach). */
export const BACKUP_ACCOUNT = 'AUTH_stratus-backups';
/** Chunk size of backup objects: the unit of incremental change detection. */
export const CHUNK_BYTES = 16 * 1024 * 1024;

/** One chunk of a backup: all zeros (nothing stored), or an object holding it (possibly a parent's). */
export interface ChunkRef {
  sha256: string | null;
  object: string | null;
}

export interface BackupManifest {
  version: 1;
  backup_id: string;
  volume_id: string;
  parent_id: string | null;
  size_bytes: number;
  chunk_bytes: number;
  chunks: ChunkRef[];
}

async function collect(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

/**
 * Full and incremental volume backups in the object store (Cinder's chunked
 * backup driver, our own layout): a backup of volume data of N bytes is
 * N / 16 MiB chunks; zero chunks are not stored; an incremental backup
 * stores only the chunks whose SHA-256 differs from its parent's and points
 * at the parent's objects for the rest. `<backup id>/manifest.json` lists
 * every chunk, so a restore reads one manifest and the objects it names.
 */
export class BackupEngine {
  constructor(
    private readonly store: BackupObjectStore,
    readonly container = 'volumebackups',
    readonly account = BACKUP_ACCOUNT,
  ) {}

  private async manifest(backupId: string): Promise<BackupManifest> {
    const o = await this.store.getObject(this.account, this.container, `${backupId}/manifest.json`);
    const buf = o.body ? Buffer.from(o.body) : await collect(o.stream);
    return JSON.parse(buf.toString('utf8')) as BackupManifest;
  }

  /**
   * Backs up the raw volume data at `rawPath`. Returns the number of objects
   * written. On failure, the objects already written are removed.
   */
  async backup(rawPath: string, ids: { backupId: string; volumeId: string; parentId: string | null }, extents?: { start: number; length: number }[]): Promise<{ objectCount: number }> {
    await this.store.putContainer(this.account, this.container);
    const parent = ids.parentId ? await this.manifest(ids.parentId) : null;
    const fh = await open(rawPath, 'r');
    const written: string[] = [];
    try {
      const size = (await fh.stat()).size;
      const chunks: ChunkRef[] = [];
      const buf = Buffer.alloc(CHUNK_BYTES);
      for (let i = 0, off = 0; off < size; i++, off += CHUNK_BYTES) {
        // chunks the volume never wrote are zeros: no need to read them
        if (extents && !extents.some((e) => e.start < off + CHUNK_BYTES && e.start + e.length > off)) {
          chunks.push({ sha256: null, object: null });
          continue;
        }
        const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK_BYTES, size - off), off);
        const data = buf.subarray(0, bytesRead);
        if (isZero(data)) {
          chunks.push({ sha256: null, object: null });
          continue;
        }
        const sha256 = createHash('sha256').update(data).digest('hex');
        const prev = parent?.chunks[i];
        if (prev && prev.sha256 === sha256 && prev.object && parent!.chunk_bytes === CHUNK_BYTES) {
          chunks.push({ sha256, object: prev.object });
          continue;
        }
        const name = `${ids.backupId}/chunk-${String(i).padStart(6, '0')}`;
        await this.store.putObject(this.account, this.container, name, Buffer.from(data), { contentType: 'application/octet-stream' });
        written.push(name);
        chunks.push({ sha256, object: name });
      }
      const m: BackupManifest = { version: 1, backup_id: ids.backupId, volume_id: ids.volumeId, parent_id: ids.parentId, size_bytes: size, chunk_bytes: CHUNK_BYTES, chunks };
      await this.store.putObject(this.account, this.container, `${ids.backupId}/manifest.json`, JSON.stringify(m), { contentType: 'application/json' });
      written.push(`${ids.backupId}/manifest.json`);
      return { objectCount: written.length };
    } catch (e) {
      for (const w of written) await this.store.deleteObject(this.account, this.container, w).catch(() => undefined);
      throw e;
    } finally {
      await fh.close();
    }
  }

  /** Writes the backup's data as a sparse raw file at `rawPath`. */
  async restore(backupId: string, rawPath: string): Promise<{ sizeBytes: number }> {
    const m = await this.manifest(backupId);
    const fh = await open(rawPath, 'w');
    try {
      await fh.truncate(m.size_bytes);
      for (let i = 0; i < m.chunks.length; i++) {
        const c = m.chunks[i]!;
        if (!c.object) continue;
        const o = await this.store.getObject(this.account, this.container, c.object);
        const data = o.body ? Buffer.from(o.body) : await collect(o.stream);
        if (c.sha256 && createHash('sha256').update(data).digest('hex') !== c.sha256) throw new Error(`backup ${backupId}: chunk ${i} is corrupt`);
        await fh.write(data, 0, data.length, i * m.chunk_bytes);
      }
      return { sizeBytes: m.size_bytes };
    } catch (e) {
      await fh.close().catch(() => undefined);
      await rm(rawPath, { force: true });
      throw e;
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** Removes the objects this backup owns (never a parent's). Idempotent. */
  async delete(backupId: string): Promise<void> {
    let m: BackupManifest;
    try {
      m = await this.manifest(backupId);
    } catch {
      return;
    }
    for (const c of m.chunks) if (c.object?.startsWith(`${backupId}/`)) await this.store.deleteObject(this.account, this.container, c.object).catch(() => undefined);
    await this.store.deleteObject(this.account, this.container, `${backupId}/manifest.json`).catch(() => undefined);
  }
}

const ZEROS = Buffer.alloc(CHUNK_BYTES);
function isZero(b: Buffer): boolean {
  return b.equals(ZEROS.subarray(0, b.length));
}
