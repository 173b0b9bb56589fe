import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import type { RingDevice } from './ring.js';
import type { StoreLogger } from './disk.js';
import { PackIndex, type PackEntry } from './pack-index.js';
import { closeFd, closeQuietly, fdatasyncFd, fsyncDir, fstatFd, ftruncateFd, mkdirsDurable, openFd, readAt, readdirOrEmpty, unlinkQuietly, writevAll } from './fsutil.js';

/**
 * Pack logs: small object records (data, tombstones, metadata updates)
 * appended to one log per device instead of one file each.
 *
 * A file per version costs, per replica, about ten file-system calls and two
 * journal commits (the file's fdatasync, its directory's fsync) — on a
 * 2-core machine ~550 µs of kernel CPU each, so small PUTs were bound by the
 * kernel. Here a write is one record appended to the device's active
 * segment; appends queued while a flush runs go out together in one `writev`
 * and one `fdatasync` (group commit), which makes them all durable at once.
 *
 * ```
 * <device>/packs/<seq>.pack    segments, appended in seq order, rolled at segmentBytes
 * record: [header 36 B][file name][record bytes: the same bytes as a record file]
 * header: magic u32 | type u8 (1 put, 2 kill) | 0 u8 | name length u16 |
 *         partition u32 | record length u32 | hash 16 B | CRC-32 of header[0..32) + name
 * ```
 *
 * The record bytes are exactly a record file (`format.ts`: data, block CRCs,
 * JSON, footer), so reading one is a `pread` of a known range that is then
 * checked like a small file. A *kill* record (no record bytes) says that the
 * named version is gone (obsolete, quarantined or moved off a handoff); the
 * in-memory index, rebuilt by scanning the segments in order on open, ends up
 * with exactly the versions that were put and not killed. After a crash the
 * tail of the last segment may hold a torn record: the scan stops at the
 * first record whose header or length does not check out and truncates the
 * segment there (everything before it was fdatasynced before it was
 * acknowledged). Compaction (`compact`) copies the live records of a
 * mostly-dead sealed segment forward and removes it.
 */

const MAGIC = 0x53504b31; // 'SPK1'
const HEADER = 36;
const T_PUT = 1;
const T_KILL = 2;
/** Compaction reads the live records of a segment this many bytes at a time (their appends then share group commits). */
const COMPACT_READ = 4 * 1024 * 1024;

/** At most this many bytes go into one writev + fdatasync. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
const SCAN_CHUNK = 4 * 1024 * 1024;

export type { PackEntry } from './pack-index.js';

interface Segment {
  seq: number;
  fd: number;
  size: number;
  /** Record bytes of entries still live. */
  live: number;
  /** Reads in flight (the descriptor is closed only when none are). */
  readers: number;
}

interface Pending {
  bufs: Buffer[];
  len: number;
  /** For put records: where the record bytes start, relative to the pending record. */
  recOff: number;
  resolve(at: { seg: number; pos: number }): void;
  reject(e: unknown): void;
}

function header(type: number, part: number, hash: string, name: Buffer, recLen: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER + name.length);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt8(type, 4);
  h.writeUInt8(0, 5);
  h.writeUInt16LE(name.length, 6);
  h.writeUInt32LE(part, 8);
  h.writeUInt32LE(recLen, 12);
  h.write(hash, 16, 16, 'hex');
  name.copy(h, HEADER);
  h.writeUInt32LE(crc32(name, crc32(h.subarray(0, 32))), 32);
  return h;
}

const segName = (seq: number) => `${String(seq).padStart(8, '0')}.pack`;

/** The packs of one device. */
export class DevicePack {
  readonly dir: string;
  private readonly segs = new Map<number, Segment>();
  private active: Segment | null = null;
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private dirReady = false;
  private closed = false;
  /** Set once the segments have been scanned (on open, or before the first append of a device that was down then). */
  private loaded: Promise<void> | null = null;
  /** The versions held here (kind `objects` only). */
  readonly index = new PackIndex();

  constructor(
    readonly dev: RingDevice,
    private readonly segmentBytes: number,
    private readonly log: StoreLogger,
  ) {
    // Entry offsets are 32-bit (a segment is rolled once past segmentBytes by at most one record).
    if (segmentBytes > 2 ** 31) throw new RangeError('pack segments are at most 2 GiB');
    this.dir = `${dev.path}/packs`;
  }

  get entryCount(): number {
    return this.index.size;
  }

  /** Segments and their sizes / live bytes (for tests and compaction). */
  segments(): Array<{ seq: number; size: number; live: number; active: boolean }> {
    return [...this.segs.values()].map((s) => ({ seq: s.seq, size: s.size, live: s.live, active: s === this.active }));
  }

  entry(hash: string, file: string): PackEntry | undefined {
    return this.index.get(hash, file);
  }

  /** Every version of `hash` held here. */
  versions(hash: string): PackEntry[] {
    return this.index.versions(hash);
  }

  /** How many versions of `hash` are held here. */
  count(hash: string): number {
    return this.index.count(hash);
  }

  private add(hash: string, e: PackEntry): void {
    const old = this.index.set(hash, e);
    if (old) this.dropLive(old);
    const s = this.segs.get(e.seg);
    if (s) s.live += e.len;
  }

  private dropLive(e: PackEntry): void {
    const s = this.segs.get(e.seg);
    if (s) s.live -= e.len;
  }

  /** Removes a version from the in-memory index; returns it if it was there. */
  private remove(hash: string, file: string): PackEntry | undefined {
    const e = this.index.delete(hash, file);
    if (e) this.dropLive(e);
    return e;
  }

  // ------------------------------------------------------------------ open

  /** Scans every segment in order and rebuilds the index (once); truncates a torn tail. */
  load(): Promise<void> {
    this.loaded ??= this.scanAll().catch((e: unknown) => {
      this.loaded = null; // try again next time (e.g. the device was unavailable)
      throw e;
    });
    return this.loaded;
  }

  private async scanAll(): Promise<void> {
    const names = (await readdirOrEmpty(this.dir)).filter((n) => /^\d{8}\.pack$/.test(n)).sort();
    if (names.length) this.dirReady = true;
    for (let i = 0; i < names.length; i++) {
      const seq = Number(names[i]!.slice(0, 8));
      const fd = await openFd(`${this.dir}/${names[i]}`, fs.constants.O_RDWR);
      const seg: Segment = { seq, fd, size: 0, live: 0, readers: 0 };
      this.segs.set(seq, seg);
      const size = (await fstatFd(fd)).size;
      const good = await this.scan(seg, size);
      if (good < size) {
        const last = i === names.length - 1;
        this.log.warn({ device: this.dev.name, segment: names[i], at: good, size, truncated: last }, 'pack segment ends in a torn or corrupt record');
        if (last) {
          await ftruncateFd(fd, good);
          await fdatasyncFd(fd);
        }
      }
      seg.size = good;
      if (i === names.length - 1 && good < this.segmentBytes && good === size) this.active = seg;
    }
  }

  /** Parses records from offset 0; returns the offset after the last good one. */
  private async scan(seg: Segment, size: number): Promise<number> {
    let pos = 0;
    let buf = Buffer.alloc(0);
    let bufAt = 0;
    const need = async (at: number, len: number): Promise<Buffer | null> => {
      if (at + len > size) return null;
      if (at < bufAt || at + len > bufAt + buf.length) {
        const want = Math.min(size - at, Math.max(len, SCAN_CHUNK));
        buf = Buffer.allocUnsafe(want);
        let got = 0;
        while (got < want) {
          const n = await readAt(seg.fd, buf, got, want - got, at + got);
          if (n === 0) return null;
          got += n;
        }
        bufAt = at;
      }
      return buf.subarray(at - bufAt, at - bufAt + len);
    };
    while (pos < size) {
      const h = await need(pos, HEADER);
      if (!h || h.readUInt32LE(0) !== MAGIC) break;
      const type = h.readUInt8(4);
      const nameLen = h.readUInt16LE(6);
      const part = h.readUInt32LE(8);
      const recLen = h.readUInt32LE(12);
      const hash = h.toString('hex', 16, 32);
      const crc = h.readUInt32LE(32);
      const hn = await need(pos, HEADER + nameLen);
      if (!hn || crc32(hn.subarray(HEADER), crc32(hn.subarray(0, 32))) !== crc) break;
      if ((type !== T_PUT && type !== T_KILL) || pos + HEADER + nameLen + recLen > size) break;
      const file = hn.toString('utf8', HEADER);
      const off = pos + HEADER + nameLen;
      if (type === T_PUT) this.add(hash, { seg: seg.seq, off, len: recLen, file, part });
      else this.remove(hash, file);
      pos = off + recLen;
    }
    return pos;
  }

  // ---------------------------------------------------------------- writing

  /** Appends a version; resolves with its entry once it is durable (and indexed). */
  async append(part: number, hash: string, file: string, record: Buffer[]): Promise<PackEntry> {
    const e = await this.putRecord(part, hash, file, record);
    this.add(hash, e);
    return e;
  }

  /** Writes a put record durably; the caller decides whether the index takes it. */
  private async putRecord(part: number, hash: string, file: string, record: Buffer[]): Promise<PackEntry> {
    let recLen = 0;
    for (const b of record) recLen += b.length;
    const h = header(T_PUT, part, hash, Buffer.from(file), recLen);
    const at = await this.enqueue([h, ...record], h.length + recLen, h.length);
    return { seg: at.seg, off: at.pos, len: recLen, file, part };
  }

  /**
   * Forgets a version at once and appends a kill record for it (durable with
   * the next flush, which the returned promise waits for). Resolves false
   * when the version was not in this pack.
   */
  async kill(hash: string, file: string): Promise<boolean> {
    const e = this.remove(hash, file);
    if (!e) return false;
    const h = header(T_KILL, e.part, hash, Buffer.from(file), 0);
    await this.enqueue([h], h.length, h.length);
    return true;
  }

  private enqueue(bufs: Buffer[], len: number, recOff: number): Promise<{ seg: number; pos: number }> {
    if (this.closed) return Promise.reject(new Error('pack is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ bufs, len, recOff, resolve, reject });
      this.flushing ??= this.flush().finally(() => {
        this.flushing = null;
      });
    });
  }

  private async ensureDir(): Promise<void> {
    if (this.dirReady) return;
    await mkdirsDurable(this.dir, this.dev.path);
    this.dirReady = true;
  }

  /** The segment to append `len` bytes to: the active one, or a new one when it is full. */
  private async target(len: number): Promise<Segment> {
    const a = this.active;
    if (a && (a.size === 0 || a.size + len <= this.segmentBytes)) return a;
    await this.ensureDir();
    const seq = Math.max(0, ...this.segs.keys()) + 1;
    const fd = await openFd(`${this.dir}/${segName(seq)}`, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL);
    try {
      await fsyncDir(this.dir);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    const seg: Segment = { seq, fd, size: 0, live: 0, readers: 0 };
    this.segs.set(seq, seg);
    this.active = seg;
    return seg;
  }

  private async flush(): Promise<void> {
    while (this.queue.length) {
      let n = 0;
      let bytes = 0;
      while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.len <= MAX_BATCH_BYTES)) bytes += this.queue[n++]!.len;
      const batch = this.queue.splice(0, n);
      let seg: Segment;
      try {
        // A device that was unavailable when the store opened is scanned before it is appended to.
        await this.load();
        seg = await this.target(bytes);
      } catch (e) {
        for (const p of batch) p.reject(e);
        continue;
      }
      const start = seg.size;
      const bufs: Buffer[] = [];
      for (const p of batch) bufs.push(...p.bufs);
      try {
        await writevAll(seg.fd, bufs, start);
        await fdatasyncFd(seg.fd);
      } catch (e) {
        // Nothing of this batch counts. Cut the segment back to where it was;
        // if even that fails, stop appending to it.
        this.log.warn({ device: this.dev.name, segment: seg.seq, err: String(e) }, 'pack append failed');
        await ftruncateFd(seg.fd, start).catch(() => {
          if (this.active === seg) this.active = null;
        });
        for (const p of batch) p.reject(e);
        continue;
      }
      let pos = start;
      seg.size = start + bytes;
      for (const p of batch) {
        p.resolve({ seg: seg.seq, pos: pos + p.recOff });
        pos += p.len;
      }
    }
  }

  // ---------------------------------------------------------------- reading

  /** The record bytes of an entry (one pread). */
  read(e: PackEntry): Promise<Buffer> {
    return this.readSpan(e.seg, e.off, e.len);
  }

  /** `len` bytes of a segment from `off`. */
  private async readSpan(seq: number, off: number, len: number): Promise<Buffer> {
    const s = this.segs.get(seq);
    if (!s) throw Object.assign(new Error(`pack segment ${seq} is gone`), { code: 'ENOENT' });
    const buf = Buffer.allocUnsafe(len);
    s.readers++;
    try {
      let got = 0;
      while (got < len) {
        const n = await readAt(s.fd, buf, got, len - got, off + got);
        if (n === 0) throw Object.assign(new Error('pack record cut short'), { code: 'ESHORT' });
        got += n;
      }
    } finally {
      s.readers--;
    }
    return buf;
  }

  // ------------------------------------------------------------- compaction

  /**
   * Rewrites sealed segments whose live records are less than `maxLiveRatio`
   * of their size: their live records are appended again (durably), the index
   * points at the copies, then the old segment is unlinked. Segments go
   * oldest first, so kill records never need copying: every version a kill
   * record names lived in its own or an older segment, already gone.
   * The live records are read in offset order, many at a time with one
   * read of up to `COMPACT_READ` bytes (dead records between them included),
   * and each such group's appends share group commits. With `signal`
   * aborted it stops before the next group; a segment only partly copied
   * stays (the copies made supersede their originals) and is finished by a
   * later compaction. Returns the number of segments removed.
   */
  async compact(maxLiveRatio = 0.5, signal?: AbortSignal): Promise<number> {
    let removed = 0;
    for (;;) {
      if (signal?.aborted) break;
      // Oldest first, and only the oldest: a kill record in a younger segment
      // may refer to a version in an older one, and dropping the younger
      // segment first would bring that version back on the next scan.
      const s = [...this.segs.values()].sort((a, b) => a.seq - b.seq)[0];
      if (!s || s === this.active || this.closed) break;
      if (s.size > 0 && s.live / s.size >= maxLiveRatio) break;
      const live = this.index.inSegment(s.seq).sort((a, b) => a.e.off - b.e.off);
      // Whether the version is still the one read (not killed or replaced meanwhile).
      const still = (hash: string, e: PackEntry) => {
        const now = this.entry(hash, e.file);
        return now !== undefined && now.seg === e.seg && now.off === e.off;
      };
      const copyOne = async (hash: string, e: PackEntry, bytes: Buffer) => {
        if (!still(hash, e)) return;
        const copy = await this.putRecord(e.part, hash, e.file, [bytes]);
        if (still(hash, e)) this.add(hash, copy);
      };
      for (let i = 0; i < live.length && !signal?.aborted; ) {
        const from = live[i]!.e.off;
        let j = i + 1;
        while (j < live.length && live[j]!.e.off + live[j]!.e.len - from <= COMPACT_READ) j++;
        const last = live[j - 1]!.e;
        const span = await this.readSpan(s.seq, from, last.off + last.len - from);
        await Promise.all(live.slice(i, j).map(({ hash, e }) => copyOne(hash, e, span.subarray(e.off - from, e.off - from + e.len))));
        i = j;
      }
      if (signal?.aborted) break;
      this.segs.delete(s.seq);
      while (s.readers > 0) await new Promise((r) => setTimeout(r, 5));
      await closeFd(s.fd).catch(() => {});
      await unlinkQuietly(`${this.dir}/${segName(s.seq)}`);
      await fsyncDir(this.dir);
      removed++;
    }
    return removed;
  }

  /** Waits for queued appends, then closes every segment. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.closed = true;
    for (const s of this.segs.values()) closeQuietly(s.fd);
    this.segs.clear();
    this.active = null;
  }
}
