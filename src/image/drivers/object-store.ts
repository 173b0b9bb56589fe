import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectStore } from '../../object/store/index.js';
import { StoreLimitError, StoreNotFoundError, type ByteRange, type ImageStore, type PutOptions, type StoredData } from './store.js';

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const isNotFound = (e: unknown) => (e as { status?: number })?.status === 404;

/**
 * Image data in the object store (the replicated engine under Swift and S3):
 * one object per image in a service account's container, written with the
 * engine's durability (fsync on a quorum of replicas) and read back streamed
 * or by range. QEMU and qemu-img need files, so `localFile` keeps a local
 * copy of an image on first use (under `<data>/images/object-cache`), written
 * whole then renamed into place, and dropped when the image is deleted.
 */
export class ObjectImageStore implements ImageStore {
  readonly id = 'object';
  constructor(
    private readonly engine: ObjectStore,
    private readonly cacheDir: string,
    private readonly account = 'AUTH_stratus-images',
    private readonly container = 'images',
  ) {}

  async init(): Promise<void> {
    await mkdir(this.cacheDir, { recursive: true, mode: 0o750 });
    await this.engine.putContainer(this.account, this.container);
  }

  private check(key: string): void {
    if (!KEY_RE.test(key)) throw new Error(`invalid store key ${JSON.stringify(key)}`);
  }

  async put(key: string, data: AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<StoredData> {
    this.check(key);
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    let size = 0;
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const c of data) {
        size += c.byteLength;
        if (opts.maxBytes !== undefined && size > opts.maxBytes) throw new StoreLimitError(opts.maxBytes);
        md5.update(c);
        sha512.update(c);
        yield c;
      }
    }
    // The engine makes the object visible whole or not at all.
    const r = await this.engine.putObject(this.account, this.container, key, Readable.from(counted()), { contentType: 'application/octet-stream' });
    await rm(join(this.cacheDir, key), { force: true });
    return { size: r.size, md5: md5.digest('hex'), sha512: sha512.digest('hex') };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    this.check(key);
    try {
      const r = await this.engine.getObject(this.account, this.container, key, range ? { range: { start: range.start, end: range.end } } : {});
      return r.stream ?? Readable.from(r.body ? [r.body] : []);
    } catch (e) {
      if (isNotFound(e)) throw new StoreNotFoundError(key);
      throw e;
    }
  }

  async size(key: string): Promise<number | null> {
    this.check(key);
    try {
      return (await this.engine.headObject(this.account, this.container, key)).size;
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    this.check(key);
    await rm(join(this.cacheDir, key), { force: true });
    try {
      await this.engine.deleteObject(this.account, this.container, key);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Not a local file: callers that need one use `localFile`. */
  path(): null {
    return null;
  }

  /** A local copy of the image's data (made once, then reused); never written to after. */
  async localFile(key: string): Promise<string> {
    this.check(key);
    const dst = join(this.cacheDir, key);
    const have = await stat(dst).catch(() => null);
    const want = await this.size(key);
    if (want === null) throw new StoreNotFoundError(key);
    if (have?.size === want) return dst;
    const tmp = join(this.cacheDir, `.${key}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await pipeline(await this.get(key), createWriteStream(tmp, { flags: 'wx', mode: 0o640 }));
      await rename(tmp, dst);
    } finally {
      await rm(tmp, { force: true });
    }
    return dst;
  }
}
