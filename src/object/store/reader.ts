import { Readable, pipeline, type Writable } from 'node:stream';
import { closeQuietly, readExactly, readExactlyInto } from './fsutil.js';
import { CorruptFileError, verifyBlocks } from './format.js';
import type { OpenedFile } from './disk.js';

/** Bytes per read call when streaming (a whole number of blocks, at least 1 MiB). */
const READ_TARGET = 4 * 1024 * 1024;
/** Reads kept in flight ahead of the consumer. */
const DEPTH = 2;

interface Pending {
  pos: number;
  len: number;
  file: OpenedFile;
  p: Promise<Buffer>;
  /** The pooled buffer `p` reads into (sendTo only). */
  pooled?: Buffer;
}

/**
 * Free read buffers of READ_TARGET bytes, shared by every `sendTo`. At most
 * MAX_FREE are kept (16 MiB); a stream needs DEPTH + 1 at once, more only
 * take fresh ones.
 */
const freeBuffers: Buffer[] = [];
const MAX_FREE = 4;

function takeBuffer(): Buffer {
  return freeBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_TARGET);
}

function giveBack(b: Buffer): void {
  if (freeBuffers.length < MAX_FREE) freeBuffers.push(b);
}

/** Returns a dropped read's buffer to the pool once the read can no longer write into it. */
function giveBackWhenSettled(item: Pending): void {
  const b = item.pooled;
  if (b) void item.p.then(() => giveBack(b), () => giveBack(b));
}

/**
 * Streams bytes `start..end` (inclusive) of an object's data, verifying every
 * block against the file's CRC table before it is pushed. When a block fails
 * (or the read errors), the file is reported via `onCorrupt` and the stream
 * continues from the same offset on the next replica, so the consumer sees
 * one uninterrupted, correct byte stream.
 */
export class VerifiedReader extends Readable {
  private file: OpenedFile;
  private readPos: number;
  private readonly endExcl: number;
  private queue: Pending[] = [];
  private inflight = new Set<Promise<unknown>>();
  private running = false;
  private again = false;
  private readonly chunk: number;
  /** Reads go into pooled buffers (`sendTo` drives the stream, not `_read`). */
  private pooled = false;

  constructor(
    first: OpenedFile,
    private readonly start: number,
    end: number,
    private readonly fallbacks: Array<() => Promise<OpenedFile>>,
    private readonly onCorrupt: (file: OpenedFile, err: unknown) => void,
  ) {
    super({ highWaterMark: READ_TARGET });
    this.file = first;
    this.endExcl = end + 1;
    const bs = first.footer.blockSize;
    this.readPos = Math.floor(start / bs) * bs;
    this.chunk = Math.max(1, Math.floor(READ_TARGET / bs)) * bs;
  }

  private blockEnd(): number {
    const bs = this.file.footer.blockSize;
    return Math.min(Math.ceil(this.endExcl / bs) * bs, this.file.footer.dataLen);
  }

  private issue(): void {
    const limit = this.blockEnd();
    while (this.queue.length < DEPTH && this.readPos < limit) {
      const pos = this.readPos;
      const len = Math.min(this.chunk, limit - pos);
      const file = this.file;
      let p: Promise<Buffer>;
      let pooled: Buffer | undefined;
      if (file.data) {
        p = Promise.resolve(file.data.subarray(pos, pos + len));
      } else {
        if (this.pooled && len <= READ_TARGET) pooled = takeBuffer();
        p = pooled ? readExactlyInto(file.fd, pooled, len, pos) : readExactly(file.fd, len, pos);
        const tracked = p.catch(() => {});
        this.inflight.add(tracked);
        void tracked.then(() => this.inflight.delete(tracked));
      }
      p.catch(() => {}); // consumed (or deliberately abandoned) below
      this.queue.push({ pos, len, file, p, ...(pooled ? { pooled } : {}) });
      this.readPos += len;
    }
  }

  /** A read's bytes once they have passed the file's block checks (throws if not). */
  private async verified(item: Pending): Promise<Buffer> {
    const buf = await item.p;
    if (!item.file.data) verifyBlocks(buf, item.pos, item.file.table, item.file.footer.blockSize, item.file.footer.dataLen);
    return buf;
  }

  /** The part of a read (whole blocks) inside the range asked for. */
  private wanted(item: Pending, buf: Buffer): Buffer {
    const from = Math.max(this.start, item.pos) - item.pos;
    const to = Math.min(this.endExcl, item.pos + item.len) - item.pos;
    return from === 0 && to === buf.length ? buf : buf.subarray(from, to);
  }

  override _read(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        this.issue();
        const item = this.queue.shift();
        if (!item) {
          this.releaseFile(this.file);
          this.push(null);
          return;
        }
        let buf: Buffer;
        try {
          buf = await this.verified(item);
        } catch (e) {
          if (this.destroyed) return;
          await this.failover(e, item.pos);
          continue;
        }
        if (this.destroyed) return;
        const more = this.push(this.wanted(item, buf));
        if (!more) {
          if (this.again) {
            this.again = false;
            continue;
          }
          return;
        }
      }
    } catch (e) {
      this.destroy(e as Error);
    } finally {
      this.running = false;
    }
  }

  /**
   * Writes the bytes to `out` (an HTTP response) and ends it, in place of
   * reading this as a stream. Each chunk is read into a buffer from a small
   * shared pool and goes back to it once `out` has handed it to the kernel
   * (the write's callback), so a large GET allocates no memory per chunk:
   * piped, a 256 MiB GET allocated 64 fresh 4 MiB buffers and the garbage
   * collector's threads spent more CPU reclaiming them than the checksums
   * took. Resolves when done: with null, or with the error after which `out`
   * was destroyed (no intact replica left to read from). A client that goes
   * away just stops it.
   */
  async sendTo(out: Writable): Promise<Error | null> {
    if (this.running || this.readableDidRead) throw new Error('sendTo on a stream already being read');
    this.pooled = true;
    this.running = true;
    let wake: (() => void) | null = null;
    const onEvent = () => wake?.();
    out.on('drain', onEvent);
    out.on('close', onEvent);
    const gone = () => out.destroyed || out.writableEnded;
    try {
      for (;;) {
        if (gone()) return null;
        this.issue();
        const item = this.queue.shift();
        if (!item) {
          out.end();
          return null;
        }
        let buf: Buffer;
        try {
          buf = await this.verified(item);
        } catch (e) {
          if (item.pooled) giveBack(item.pooled);
          if (gone()) return null;
          await this.failover(e, item.pos);
          continue;
        }
        if (gone()) {
          if (item.pooled) giveBack(item.pooled);
          return null;
        }
        const pooled = item.pooled;
        const more = out.write(this.wanted(item, buf), pooled ? () => giveBack(pooled) : undefined);
        if (!more && !gone()) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } catch (e) {
      out.destroy(e as Error);
      return e as Error;
    } finally {
      out.off('drain', onEvent);
      out.off('close', onEvent);
      this.dropQueue();
      this.releaseFile(this.file);
      this.running = false;
      this.destroy();
    }
  }

  /** Abandons the reads queued ahead (their pooled buffers return once each read is over). */
  private dropQueue(): void {
    for (const item of this.queue) giveBackWhenSettled(item);
    this.queue = [];
  }

  /** Closes a file's descriptor once no read on it is outstanding. */
  private releaseFile(file: OpenedFile): void {
    if (file.fd < 0) return;
    const fd = file.fd;
    file.fd = -1;
    void Promise.allSettled([...this.inflight]).then(() => closeQuietly(fd));
  }

  private async failover(err: unknown, pos: number): Promise<void> {
    const bad = this.file;
    this.onCorrupt(bad, err);
    this.dropQueue();
    this.releaseFile(bad);
    for (;;) {
      const next = this.fallbacks.shift();
      if (!next) throw err instanceof CorruptFileError ? err : new CorruptFileError(`read failed on every replica: ${String(err)}`);
      try {
        const f = await next();
        if (f.footer.dataLen !== bad.footer.dataLen) {
          this.releaseFile(f);
          continue;
        }
        this.file = f;
        this.readPos = Math.floor(pos / f.footer.blockSize) * f.footer.blockSize;
        return;
      } catch {
        // The fallback opener reports (and quarantines) its own corrupt files.
      }
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.dropQueue();
    this.releaseFile(this.file);
    cb(err);
  }
}

/**
 * Sends an object body (a `getObject` stream) to an HTTP response and ends
 * it: through `VerifiedReader.sendTo` for an object file, piped otherwise.
 * Resolves with the error that cut the body short, if any.
 */
export function sendBody(stream: Readable, out: Writable): Promise<Error | null> {
  if (stream instanceof VerifiedReader) return stream.sendTo(out);
  return new Promise((resolve) => pipeline(stream, out, (err) => resolve(err ?? null)));
}
