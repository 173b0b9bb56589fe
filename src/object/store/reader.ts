import { Readable } from 'node:stream';
import { closeQuietly, readExactly } from './fsutil.js';
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
      if (file.data) {
        p = Promise.resolve(file.data.subarray(pos, pos + len));
      } else {
        p = readExactly(file.fd, len, pos);
        const tracked = p.catch(() => {});
        this.inflight.add(tracked);
        void tracked.then(() => this.inflight.delete(tracked));
      }
      p.catch(() => {}); // consumed (or deliberately abandoned) below
      this.queue.push({ pos, len, file, p });
      this.readPos += len;
    }
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
          buf = await item.p;
          if (!item.file.data) verifyBlocks(buf, item.pos, item.file.table, item.file.footer.blockSize, item.file.footer.dataLen);
        } catch (e) {
          if (this.destroyed) return;
          await this.failover(e, item.pos);
          continue;
        }
        if (this.destroyed) return;
        const from = Math.max(this.start, item.pos) - item.pos;
        const to = Math.min(this.endExcl, item.pos + item.len) - item.pos;
        const more = this.push(from === 0 && to === buf.length ? buf : buf.subarray(from, to));
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
    this.queue = [];
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
    this.queue = [];
    this.releaseFile(this.file);
    cb(err);
  }
}
