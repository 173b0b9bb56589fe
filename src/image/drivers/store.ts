import { randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { IngestRing } from './ingest.js';

/**
 * Where image data lives. The interface is deliberately small so that a
 * second backend (the object store) can implement it: write a stream once
 * (computing the digests Glance publishes while the bytes pass), read it
 * back whole or by byte range, delete it, and — for backends on the local
 * file system — name the file, so that compute can use it directly as a
 * qcow2 backing file instead of copying it.
 */
export interface ImageStore {
  /** Store identifier (as Glance's store ids: `file`, later `swift`-like). */
  readonly id: string;
  /**
   * Writes `data` under `key`, durably and atomically: a reader never sees a
   * partial object, and when the promise rejects (source error, client
   * disconnect, `maxBytes` exceeded) nothing is left behind. Consumes the
   * source with backpressure, so memory use does not depend on the size.
   */
  put(key: string, data: AsyncIterable<Uint8Array>, opts?: PutOptions): Promise<StoredData>;
  /** Reads the object (or the inclusive byte range). Rejects with StoreNotFoundError. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** Size in bytes, or null when there is no such object. */
  size(key: string): Promise<number | null>;
  /** Deletes the object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Local file path of the object, or null for stores that are not local files. */
  path(key: string): string | null;
  /** For stores that are not local files: a local copy made on demand (qemu-img and QEMU need files). */
  localFile?(key: string): Promise<string>;
}

export interface PutOptions {
  /** Fail with StoreLimitError as soon as more than this many bytes arrive. */
  maxBytes?: number;
}

export interface StoredData {
  size: number;
  /** Hex MD5 (Glance's `checksum`). */
  md5: string;
  /** Hex SHA-512 (Glance's `os_hash_value` with `os_hash_algo` sha512). */
  sha512: string;
}

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export class StoreLimitError extends Error {
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes of data`);
    this.name = 'StoreLimitError';
  }
}

export class StoreNotFoundError extends Error {
  constructor(key: string) {
    super(`no data stored for ${key}`);
    this.name = 'StoreNotFoundError';
  }
}

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
function checkKey(key: string): void {
  if (!KEY_RE.test(key)) throw new Error(`invalid store key ${JSON.stringify(key)}`);
}

/**
 * Images as plain files under one directory (`<data-dir>/images/`), one file
 * per image named by its id. Writes go to a temporary file in the same
 * directory, are fsynced, renamed into place and the directory fsynced, so a
 * crash leaves either the whole object or none (stale temporaries are swept
 * at start-up). The bulk of the data is written with O_DIRECT from the
 * ingest ring (see ingest.ts) where the file system supports it. Files are
 * never modified once in place, so compute may hard-link or back onto them.
 */
export class FilesystemStore implements ImageStore {
  readonly id = 'file';
  /** Whether O_DIRECT writes work here (cleared after the first refusal, e.g. on tmpfs). */
  private direct = process.platform === 'linux';
  constructor(readonly dir: string) {}

  /** Creates the directory and removes temporaries a crash left behind. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    for (const f of await readdir(this.dir)) if (f.startsWith('.') && f.endsWith('.tmp')) await rm(join(this.dir, f), { force: true });
  }

  path(key: string): string {
    checkKey(key);
    return join(this.dir, key);
  }

  async put(key: string, data: AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<StoredData> {
    const final = this.path(key);
    const tmp = join(this.dir, `.${key}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx', 0o640);
    // Full slots are page-aligned and a multiple of the block size: written
    // with O_DIRECT when the file system allows it (no page-cache copy, no
    // write-back at fsync time); the last partial slot through `fh`.
    const direct = this.direct ? await open(tmp, constants.O_WRONLY | constants.O_DIRECT).catch(() => null) : null;
    if (!direct) this.direct = false;
    let useDirect = direct !== null;
    const ring = new IngestRing(async (buf, position) => {
      let done = 0;
      if (useDirect && buf.byteLength % 4096 === 0) {
        try {
          done = (await direct!.write(buf, 0, buf.byteLength, position)).bytesWritten;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
          useDirect = false; // alignment refused: buffered from now on
          this.direct = false;
        }
      }
      // The partial last slot, and any short direct write's rest, go through the page cache.
      while (done < buf.byteLength) done += (await fh.write(buf, done, buf.byteLength - done, position + done)).bytesWritten;
    });
    let closed = false;
    try {
      for await (const c of data) {
        if (opts.maxBytes !== undefined && ring.bytes + c.byteLength > opts.maxBytes) throw new StoreLimitError(opts.maxBytes);
        const wait = ring.push(c);
        if (wait) await wait;
      }
      const result = await ring.finish();
      await fh.sync();
      await direct?.close();
      await fh.close();
      closed = true;
      await rename(tmp, final);
      await this.syncDir();
      return result;
    } catch (e) {
      await ring.abort();
      if (!closed) {
        await direct?.close().catch(() => undefined);
        await fh.close().catch(() => undefined);
      }
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const p = this.path(key);
    // Open first so a missing file is an error here, not in the middle of a response.
    const fh = await open(p, 'r').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new StoreNotFoundError(key);
      throw e;
    });
    return createReadStream(p, { fd: fh, autoClose: true, highWaterMark: 256 * 1024, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await stat(this.path(key))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
    await this.syncDir().catch(() => undefined);
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
