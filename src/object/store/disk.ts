import { access, constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import type { Ring, RingDevice } from './ring.js';
import {
  O_NEW_FILE,
  O_RDONLY,
  closeFd,
  closeQuietly,
  fdatasyncFd,
  fstatFd,
  fsyncDir,
  mkdirOne,
  mkdirsDurable,
  openFd,
  readAt,
  readExactly,
  readdirOrEmpty,
  renamePath,
  rmdirQuietly,
  unlinkQuietly,
  writeAll,
  writeFileDurable,
  writevAll,
} from './fsutil.js';
import {
  CorruptFileError,
  FOOTER_SIZE,
  obsoleteVersions,
  parseFileName,
  parseFooter,
  parseTail,
  resolveVersions,
  verifyBlocks,
  type AnyRecord,
  type Footer,
  type Version,
} from './format.js';
import { UnavailableError } from './errors.js';
import { DevicePack, type PackEntry } from './pack.js';

/**
 * The replicated file layer under the store. Layout of one device:
 *
 * ```
 * <device>/tmp/<session>-<n>.tmp                 files being written
 * <device>/<kind>/<partition>/<hash>/<ts>.data   object data + meta / container or account record
 * <device>/<kind>/<partition>/<hash>/<ts>.ts     tombstone
 * <device>/<kind>/<partition>/<hash>/<ts>.meta   metadata update (POST)
 * <device>/quarantined/<kind>/<hash>/<file>      corrupt files moved aside
 * ```
 *
 * where `<kind>` is `objects`, `containers` or `accounts`. Writes go to a temp
 * file on every target device, are fsynced, renamed into place and the
 * directory fsynced; they count as done once a quorum of targets is durable.
 *
 * Small object records (up to `packMaxBytes`) go instead to the device's
 * pack log (`pack.ts`, `<device>/packs/`), one append each with group
 * commit. A version held in a pack is listed, opened, quarantined and
 * removed through the same methods as a file, so the replicator, the
 * auditor and the store see one set of versions per hash.
 */

export type Kind = 'objects' | 'containers' | 'accounts';
/** Replication and rebuild order: an object's container must be known before the object. */
export const KINDS: readonly Kind[] = ['accounts', 'containers', 'objects'];

/** pino-compatible subset. */
export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
export const silentLogger: StoreLogger = { info() {}, warn() {}, error() {} };

/** One device's view of one hash directory. */
export interface DeviceVersions {
  dev: RingDevice;
  /** null when the device could not be read. */
  versions: Version[] | null;
  primary: boolean;
}

/** What the replicas of one hash directory hold, merged. */
export interface Gathered {
  kind: Kind;
  partition: number;
  hash: string;
  perDevice: DeviceVersions[];
  /** Newest `.data` / `.ts` on any replica. */
  base?: Version;
  /** Newest `.meta` newer than the base (only when the base is `.data`). */
  meta?: Version;
  /** Devices holding the base file, primaries first. */
  baseHolders: RingDevice[];
  metaHolders: RingDevice[];
  /** Devices that could not be read. */
  failed: number;
}

/** A record file opened and checked (footer, tail CRC, JSON). */
export interface OpenedFile {
  dev: RingDevice;
  path: string;
  /** Open descriptor for streaming, or -1 (data held in `data`, or not kept open). */
  fd: number;
  size: number;
  footer: Footer;
  table: Buffer;
  record: AnyRecord;
  /** The whole data, verified, when the file was small enough to read in one go. */
  data?: Buffer;
  /** The whole file's bytes, in that case. */
  raw?: Buffer;
  /** Set when the version was read from the device's pack log. */
  packed?: PackEntry;
}

interface Target {
  dev: RingDevice;
  fd: number;
  tmp: string;
  handoff: boolean;
  dead: boolean;
}

/** Resolves once `q` of the promises succeed; `all` settles when every one has. */
export function quorumOf(promises: Promise<unknown>[], q: number): { acked: Promise<number>; all: Promise<number> } {
  let ok = 0;
  let failed = 0;
  let firstError: unknown;
  let resolveAcked!: (n: number) => void;
  let rejectAcked!: (e: unknown) => void;
  const acked = new Promise<number>((res, rej) => {
    resolveAcked = res;
    rejectAcked = rej;
  });
  const n = promises.length;
  if (n < q) rejectAcked(new UnavailableError(`only ${n} of ${q} replicas available`));
  const all = Promise.all(
    promises.map((p) =>
      p.then(
        () => {
          ok++;
          if (ok === q) resolveAcked(ok);
        },
        (e: unknown) => {
          failed++;
          firstError ??= e;
          if (n - failed < q && ok < q) {
            rejectAcked(new UnavailableError(`write quorum not reached (${ok} of ${q}): ${(firstError as Error)?.message ?? firstError}`));
          }
        },
      ),
    ),
  ).then(() => ok);
  acked.catch(() => {}); // callers that only await `all` must not see an unhandled rejection
  return { acked, all };
}

/** Files up to this size are read whole with one read call. */
export const PROBE_SIZE = 64 * 1024;
const DOWN_MS = 10_000;
const HD_NONE = 0;
const HD_SOME = 1;
const HD_UNKNOWN = 2;
const HD_LEARNING = 3;

export class Disk {
  readonly quorum: number;
  /** Temp files being written by this process (anything else in tmp/ is garbage). */
  readonly inflightTmp = new Set<string>();
  /** `kind:partition` known to hold data on a non-primary device. */
  readonly handoffParts = new Set<string>();
  private readonly knownPartDirs = new Set<string>();
  /**
   * Per device, per object partition: whether the partition may hold hash
   * directories (HD_NONE, HD_SOME, HD_UNKNOWN, HD_LEARNING). Small objects
   * live in the pack and have none, so the cleanup after an overwrite or a
   * delete need not list a directory that is not there (a failing readdir
   * costs a thread-pool round trip and an error object). `hdEpoch` counts
   * hash directories created in the partition: a listing only marks it
   * HD_NONE if none was created while it ran.
   */
  private readonly hashDirState = new Map<number, Uint8Array>();
  private readonly hdEpoch = new Map<number, Uint32Array>();
  private readonly downUntil = new Map<number, number>();
  private readonly cleaning = new Set<string>();
  private tmpCounter = 0;
  /** Background work (third replicas, cleanups) to wait for on close. */
  readonly background = new Set<Promise<unknown>>();
  /** Pack logs by device id (loaded on open whatever `packMaxBytes` says: existing packs stay readable). */
  readonly packs = new Map<number, DevicePack>();

  constructor(
    readonly ring: Ring,
    readonly sessionId: string,
    readonly log: StoreLogger,
    /** Object records up to this size are appended to packs (0: every version is a file). */
    readonly packMaxBytes = 0,
    packSegmentBytes = 64 * 1024 * 1024,
  ) {
    this.quorum = Math.floor(ring.replicas / 2) + 1;
    for (const dev of ring.devices) {
      this.packs.set(dev.id, new DevicePack(dev, packSegmentBytes, log));
      this.hashDirState.set(dev.id, new Uint8Array(ring.partCount).fill(HD_UNKNOWN));
      this.hdEpoch.set(dev.id, new Uint32Array(ring.partCount));
    }
  }

  /**
   * Whether an object partition on a device may hold hash directories. The
   * first ask about a partition starts a listing of it (answering "maybe"
   * until that is done).
   */
  private mayHaveHashDirs(dev: RingDevice, part: number): boolean {
    const st = this.hashDirState.get(dev.id)![part]!;
    if (st === HD_UNKNOWN) {
      this.hashDirState.get(dev.id)![part] = HD_LEARNING;
      this.track(this.listHashes(dev, 'objects', part).catch(() => this.noteHashDirs(dev, part, 0, true)));
    }
    return st !== HD_NONE;
  }

  /** A hash directory is being created in an object partition. */
  private markHashDirs(dev: RingDevice, part: number): void {
    this.hashDirState.get(dev.id)![part] = HD_SOME;
    const epoch = this.hdEpoch.get(dev.id)!;
    epoch[part] = epoch[part]! + 1;
  }

  /** Records what a listing of an object partition found (`epoch`: hdEpoch when it started). */
  private noteHashDirs(dev: RingDevice, part: number, epoch: number, some: boolean): void {
    const state = this.hashDirState.get(dev.id)!;
    state[part] = some || this.hdEpoch.get(dev.id)![part] !== epoch ? HD_SOME : HD_NONE;
  }

  /** Scans the packs of every device that is up (on open). */
  async loadPacks(): Promise<void> {
    await Promise.all(
      this.ring.devices.map(async (dev) => {
        if (!this.isUp(dev)) return;
        try {
          await this.packs.get(dev.id)!.load();
        } catch (e) {
          this.markDown(dev, e);
        }
      }),
    );
  }

  async closePacks(): Promise<void> {
    await Promise.all([...this.packs.values()].map((p) => p.close()));
  }

  /** The pack entry for a version on a device, if the version lives in the device's pack. */
  packEntry(dev: RingDevice, kind: Kind, hash: string, file: string): PackEntry | undefined {
    return kind === 'objects' ? this.packs.get(dev.id)!.entry(hash, file) : undefined;
  }

  private packable(kind: Kind, len: number): boolean {
    return kind === 'objects' && len <= this.packMaxBytes;
  }

  partDir(dev: RingDevice, kind: Kind, part: number): string {
    return `${dev.path}/${kind}/${part}`;
  }

  hashDir(dev: RingDevice, kind: Kind, part: number, hash: string): string {
    return `${dev.path}/${kind}/${part}/${hash}`;
  }

  tmpDir(dev: RingDevice): string {
    return `${dev.path}/tmp`;
  }

  /** Tracks a background promise until it settles. */
  track<T>(p: Promise<T>): Promise<T> {
    this.background.add(p);
    const done = () => this.background.delete(p);
    p.then(done, done);
    return p;
  }

  isUp(dev: RingDevice): boolean {
    const until = this.downUntil.get(dev.id);
    return until === undefined || until < Date.now();
  }

  markDown(dev: RingDevice, err: unknown): void {
    if (this.isUp(dev)) this.log.warn({ device: dev.name, err: String(err) }, 'device marked unavailable');
    this.downUntil.set(dev.id, Date.now() + DOWN_MS);
  }

  /**
   * Re-checks every device (its tmp/ directory must be there): marks it up or
   * down. A device back up has its pack scanned (if that was not done yet).
   */
  async probeDevices(): Promise<void> {
    await Promise.all(
      this.ring.devices.map(async (dev) => {
        const err = await new Promise<NodeJS.ErrnoException | null>((res) => access(this.tmpDir(dev), fsConstants.W_OK, res));
        if (err) return this.markDown(dev, err);
        try {
          await this.packs.get(dev.id)!.load();
        } catch (e) {
          return this.markDown(dev, e);
        }
        if (this.downUntil.delete(dev.id)) this.log.info({ device: dev.name }, 'device available again');
      }),
    );
  }

  // ---------------------------------------------------------------- reading

  /**
   * Parsed versions in one device's hash directory and pack; null when the
   * device failed. `dir` false: the caller knows there is no hash directory
   * (listHashes), so only the pack is looked at — for a small object that
   * saves a failing readdir, whose error costs more than the rest together.
   */
  async listVersions(dev: RingDevice, kind: Kind, part: number, hash: string, dir = true): Promise<Version[] | null> {
    try {
      const names = dir ? await readdirOrEmpty(this.hashDir(dev, kind, part, hash)) : [];
      const out: Version[] = [];
      for (const n of names) {
        const v = parseFileName(n);
        if (v) out.push(v);
      }
      if (kind === 'objects') {
        for (const e of this.packs.get(dev.id)!.versions(hash)) {
          if (out.some((v) => v.file === e.file)) continue;
          const v = parseFileName(e.file);
          if (v) out.push(v);
        }
      }
      return out;
    } catch (e) {
      this.markDown(dev, e);
      return null;
    }
  }

  /** Devices to consult for a partition: the primaries, plus handoffs when needed. */
  readDevices(kind: Kind, part: number): Array<{ dev: RingDevice; primary: boolean }> {
    const prim = this.ring.primaries(part).map((dev) => ({ dev, primary: true }));
    if (!this.handoffParts.has(`${kind}:${part}`) && prim.every((p) => this.isUp(p.dev))) return prim;
    return [...prim, ...this.ring.handoffs(part).map((dev) => ({ dev, primary: false }))];
  }

  /** Lists the hash directory on every replica and merges the result. */
  async gather(kind: Kind, part: number, hash: string): Promise<Gathered> {
    const devs = this.readDevices(kind, part);
    const lists = await Promise.all(devs.map((d) => (this.isUp(d.dev) ? this.listVersions(d.dev, kind, part, hash) : null)));
    const perDevice: DeviceVersions[] = devs.map((d, i) => ({ dev: d.dev, primary: d.primary, versions: lists[i]! }));
    return mergeVersions(kind, part, hash, perDevice);
  }

  /**
   * Opens a record file and checks its footer, tail CRC and record. A file
   * smaller than 64 KiB is read whole (one read call) and its data verified;
   * a larger one keeps its descriptor open when `keepOpen`. `knownLarge`
   * skips the first read when the data is known to be ≥ 64 KiB.
   */
  async openFile(dev: RingDevice, kind: Kind, part: number, hash: string, v: Version, keepOpen: boolean, knownLarge = false): Promise<OpenedFile> {
    const path = `${this.hashDir(dev, kind, part, hash)}/${v.file}`;
    const packed = this.packEntry(dev, kind, hash, v.file);
    if (packed) {
      try {
        const raw = await this.packs.get(dev.id)!.read(packed);
        const out = parseWhole(dev, path, raw);
        if (out.record.timestamp !== v.ts) throw new CorruptFileError('record timestamp does not match its file name');
        out.packed = packed;
        return out;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ESHORT') throw new CorruptFileError('pack record shorter than expected');
        throw e;
      }
    }
    const fd = await openFd(path, O_RDONLY);
    let keep = false;
    try {
      const probe = knownLarge ? null : Buffer.allocUnsafe(PROBE_SIZE);
      const n = probe ? await readAt(fd, probe, 0, PROBE_SIZE, 0) : PROBE_SIZE;
      let out: OpenedFile;
      if (probe && n < PROBE_SIZE) {
        out = parseWhole(dev, path, probe.subarray(0, n));
      } else {
        const size = (await fstatFd(fd)).size;
        const want = Math.min(size, PROBE_SIZE);
        const end = await readExactly(fd, want, size - want);
        const footer = parseFooter(end.subarray(want - FOOTER_SIZE), size);
        const tail =
          footer.tailLen + FOOTER_SIZE <= want
            ? end.subarray(want - FOOTER_SIZE - footer.tailLen, want - FOOTER_SIZE)
            : await readExactly(fd, footer.tailLen, size - FOOTER_SIZE - footer.tailLen);
        const { table, record } = parseTail(tail, footer);
        keep = keepOpen;
        out = { dev, path, fd: keep ? fd : -1, size, footer, table, record };
      }
      if (out.record.timestamp !== v.ts) throw new CorruptFileError('record timestamp does not match its file name');
      return out;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESHORT') throw new CorruptFileError('file shorter than expected');
      throw e;
    } finally {
      if (!keep) closeQuietly(fd);
    }
  }

  /** Moves a corrupt file to `<device>/quarantined/<kind>/<hash>/` so replication restores it. */
  async quarantine(dev: RingDevice, kind: Kind, part: number, hash: string, file: string, reason: string): Promise<boolean> {
    const from = `${this.hashDir(dev, kind, part, hash)}/${file}`;
    const qdir = join(dev.path, 'quarantined', kind, hash);
    const packed = this.packEntry(dev, kind, hash, file);
    if (packed) {
      // The record's bytes are kept aside as a file, then the version is dropped from the pack.
      const pack = this.packs.get(dev.id)!;
      try {
        const raw = await pack.read(packed).catch(() => null);
        if (raw) {
          await mkdirsDurable(qdir, dev.path); // never recreates a missing device directory
          await writeFileDurable(`${qdir}/${file}.${Date.now()}`, raw);
        }
      } catch (e) {
        this.log.warn({ device: dev.name, hash, file, err: String(e) }, 'could not keep a copy of a corrupt pack record');
      }
      if (!(await pack.kill(hash, file).catch(() => false))) return false;
      this.log.warn({ device: dev.name, kind, partition: part, hash, file, reason, pack: packed.seg }, 'quarantined corrupt pack record');
      return true;
    }
    try {
      await mkdirsDurable(qdir, dev.path);
      await renamePath(from, `${qdir}/${file}.${Date.now()}`);
      this.log.warn({ device: dev.name, kind, partition: part, hash, file, reason }, 'quarantined corrupt file');
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error({ device: dev.name, path: from, err: String(e) }, 'quarantine failed');
      return false;
    }
  }

  /**
   * Unlinks obsolete versions in one hash directory and pack (in the
   * background, once at a time). Where the object partition holds no hash
   * directory on the device (small objects live in the pack), the hash
   * directory is not listed: this runs after every overwrite and delete.
   */
  scheduleCleanup(dev: RingDevice, kind: Kind, part: number, hash: string): void {
    const dir = this.hashDir(dev, kind, part, hash);
    if (this.cleaning.has(dir)) return;
    this.cleaning.add(dir);
    const mayHaveDir = kind !== 'objects' || this.mayHaveHashDirs(dev, part);
    this.track(
      (async () => {
        try {
          const versions = await this.listVersions(dev, kind, part, hash, mayHaveDir);
          if (!versions || versions.length < 2) return;
          await Promise.all(obsoleteVersions(versions).map((v) => this.removeVersion(dev, kind, part, hash, v.file)));
        } finally {
          this.cleaning.delete(dir);
        }
      })(),
    );
  }

  /** Removes one version, from the pack or the hash directory, wherever it is. */
  async removeVersion(dev: RingDevice, kind: Kind, part: number, hash: string, file: string): Promise<void> {
    if (this.packEntry(dev, kind, hash, file)) await this.packs.get(dev.id)!.kill(hash, file).catch(() => false);
    else await unlinkQuietly(`${this.hashDir(dev, kind, part, hash)}/${file}`);
  }

  /** Remembers which partition directories exist (so writes skip the mkdir). */
  async learnPartDirs(): Promise<void> {
    for (const dev of this.ring.devices) {
      if (!this.isUp(dev)) continue;
      for (const kind of KINDS) for (const p of await this.partDirNumbers(dev, kind)) this.knownPartDirs.add(this.partDir(dev, kind, p));
    }
  }

  /** Partition numbers that have a directory on a device for a kind. */
  private async partDirNumbers(dev: RingDevice, kind: Kind): Promise<number[]> {
    return (await readdirOrEmpty(`${dev.path}/${kind}`)).filter((n) => /^\d+$/.test(n)).map(Number);
  }

  /** Partition numbers present on a device for a kind (directories, and for objects the pack's). */
  async listPartitions(dev: RingDevice, kind: Kind): Promise<number[]> {
    const parts = new Set(await this.partDirNumbers(dev, kind));
    if (kind === 'objects') for (const p of this.packs.get(dev.id)!.index.partitions()) parts.add(p);
    return [...parts];
  }

  /**
   * Hashes present in one partition of a device (`all`), and those of them
   * that have a hash directory (`dirs`; the others are only in the pack).
   */
  async listHashes(dev: RingDevice, kind: Kind, part: number): Promise<{ all: string[]; dirs: ReadonlySet<string> }> {
    const epoch = kind === 'objects' ? this.hdEpoch.get(dev.id)![part]! : 0;
    const names = await readdirOrEmpty(this.partDir(dev, kind, part));
    const dirs = new Set(names.filter((n) => /^[0-9a-f]{32}$/.test(n)));
    if (kind === 'objects') this.noteHashDirs(dev, part, epoch, dirs.size > 0);
    const packed = kind === 'objects' ? this.packs.get(dev.id)!.index.hashesIn(part) : [];
    if (!packed.length) return { all: [...dirs], dirs };
    const all = new Set(dirs);
    for (const h of packed) all.add(h);
    return { all: [...all], dirs };
  }

  /** Unlinks every file of a hash directory, then the directory. */
  async removeHashDir(dev: RingDevice, kind: Kind, part: number, hash: string): Promise<void> {
    if (kind === 'objects') {
      const pack = this.packs.get(dev.id)!;
      for (const e of pack.versions(hash)) await pack.kill(hash, e.file).catch(() => false);
    }
    const dir = this.hashDir(dev, kind, part, hash);
    for (const n of await readdirOrEmpty(dir)) await unlinkQuietly(`${dir}/${n}`);
    await rmdirQuietly(dir);
  }

  /** Removes a partition directory if it is empty. */
  async removePartDirIfEmpty(dev: RingDevice, kind: Kind, part: number): Promise<void> {
    const pd = this.partDir(dev, kind, part);
    if (await rmdirQuietly(pd)) this.knownPartDirs.delete(pd);
  }

  /**
   * Removes temp files nobody is writing: those of earlier (crashed) processes
   * and any this process abandoned. Returns how many were removed.
   */
  async cleanTmp(dev: RingDevice): Promise<number> {
    let n = 0;
    for (const name of await readdirOrEmpty(this.tmpDir(dev))) {
      const path = `${this.tmpDir(dev)}/${name}`;
      if (this.inflightTmp.has(path)) continue;
      await unlinkQuietly(path);
      n++;
    }
    return n;
  }

  /**
   * Copies an opened file to another device (temp file, fsync, rename, dir
   * fsync), verifying the data blocks on the way: a corrupt source throws
   * CorruptFileError and nothing is left on the target.
   */
  async copyFile(f: OpenedFile, dst: RingDevice, kind: Kind, part: number, hash: string, file: string): Promise<void> {
    if (f.raw && this.packable(kind, f.raw.length)) {
      await this.packs.get(dst.id)!.append(part, hash, file, [f.raw]);
      return;
    }
    const t = await this.openTmp(dst);
    await this.complete(t, kind, part, hash, file, async () => {
      if (f.raw) {
        await writeAll(t.fd, f.raw, 0);
        return;
      }
      const bs = f.footer.blockSize;
      const chunk = Math.max(1, Math.floor((1024 * 1024) / bs)) * bs;
      for (let pos = 0; pos < f.size; ) {
        const len = Math.min(chunk, f.size - pos);
        const buf = await readExactly(f.fd, len, pos);
        if (pos < f.footer.dataLen) verifyBlocks(buf.subarray(0, Math.min(len, f.footer.dataLen - pos)), pos, f.table, bs, f.footer.dataLen);
        await writeAll(t.fd, buf, pos);
        pos += len;
      }
    });
  }

  // ---------------------------------------------------------------- writing

  private async openTmp(dev: RingDevice): Promise<Target> {
    const tmp = `${this.tmpDir(dev)}/${this.sessionId}-${++this.tmpCounter}.tmp`;
    this.inflightTmp.add(tmp);
    try {
      const fd = await openFd(tmp, O_NEW_FILE);
      return { dev, fd, tmp, handoff: false, dead: false };
    } catch (e) {
      this.inflightTmp.delete(tmp);
      throw e;
    }
  }

  /**
   * Opens a temp file on each primary; a primary that is down or fails is
   * replaced by the next handoff device.
   */
  async openTargets(kind: Kind, part: number): Promise<Target[]> {
    const prim = this.ring.primaries(part);
    const opened = await Promise.all(
      prim.map((dev) =>
        this.isUp(dev)
          ? this.openTmp(dev).catch((e: unknown) => {
              this.markDown(dev, e);
              return null;
            })
          : null,
      ),
    );
    const out: Target[] = [];
    let handoffs: RingDevice[] | null = null;
    let hi = 0;
    for (let t of opened) {
      if (!t) {
        handoffs ??= this.ring.handoffs(part);
        while (!t && hi < handoffs.length) {
          const h = handoffs[hi++]!;
          if (!this.isUp(h)) continue;
          t = await this.openTmp(h).catch((e: unknown) => {
            this.markDown(h, e);
            return null;
          });
          if (t) {
            t.handoff = true;
            this.handoffParts.add(`${kind}:${part}`);
          }
        }
      }
      if (t) out.push(t);
    }
    if (out.length < this.quorum) {
      for (const t of out) this.discard(t);
      throw new UnavailableError(`only ${out.length} devices available for a write quorum of ${this.quorum}`);
    }
    return out;
  }

  private discard(t: Target): void {
    t.dead = true;
    closeQuietly(t.fd);
    this.inflightTmp.delete(t.tmp);
    void unlinkQuietly(t.tmp);
  }

  /**
   * Renames a complete, fsynced temp file into its hash directory and makes
   * the new entries durable (fsync of the hash directory, and of the
   * partition directory when the hash directory is new).
   */
  async finalize(dev: RingDevice, kind: Kind, part: number, hash: string, tmp: string, file: string): Promise<void> {
    const pd = this.partDir(dev, kind, part);
    const hd = `${pd}/${hash}`;
    for (let attempt = 0; ; attempt++) {
      if (!this.knownPartDirs.has(pd)) {
        await mkdirsDurable(pd, dev.path);
        this.knownPartDirs.add(pd);
      }
      try {
        if (kind === 'objects') this.markHashDirs(dev, part);
        const created = await mkdirOne(hd).finally(() => {
          // Again once the directory exists: a listing that ran while the
          // mkdir did may have found none and marked the partition empty.
          if (kind === 'objects') this.markHashDirs(dev, part);
        });
        await renamePath(tmp, `${hd}/${file}`);
        await Promise.all([fsyncDir(hd), created ? fsyncDir(pd) : null]);
        if (!created || (kind === 'objects' && this.packs.get(dev.id)!.count(hash) > 0)) this.scheduleCleanup(dev, kind, part, hash);
        return;
      } catch (e) {
        // The partition or hash directory vanished under us (replicator reclaim): retry once.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw e;
        this.knownPartDirs.delete(pd);
      }
    }
  }

  /** Data written; fsync, close and rename one target. Cleans up on failure. */
  private async complete(t: Target, kind: Kind, part: number, hash: string, file: string, write: (() => Promise<void>) | null): Promise<void> {
    let open = true;
    try {
      if (write) await write();
      await fdatasyncFd(t.fd);
      open = false;
      await closeFd(t.fd);
      await this.finalize(t.dev, kind, part, hash, t.tmp, file);
    } catch (e) {
      if (open) closeQuietly(t.fd);
      await unlinkQuietly(t.tmp);
      this.log.warn({ device: t.dev.name, kind, hash, file, err: String(e) }, 'replica write failed');
      throw e;
    } finally {
      this.inflightTmp.delete(t.tmp);
    }
  }

  /**
   * Writes a whole file held in memory to every replica. `acked` resolves
   * once a quorum is durable; `all` once every replica is done.
   */
  async writeWhole(
    kind: Kind,
    part: number,
    hash: string,
    file: string,
    bufs: Buffer[],
    /**
     * Whether the object may have had an earlier version (then its files are
     * cleaned up after a pack append). Asked only where the partition may
     * hold hash directories on a device: elsewhere the pack alone tells.
     */
    mayReplace: () => boolean = () => true,
  ): Promise<{ acked: Promise<number>; all: Promise<number> }> {
    let len = 0;
    for (const b of bufs) len += b.length;
    if (this.packable(kind, len)) return this.packWrite(kind, part, hash, file, bufs, mayReplace);
    const targets = await this.openTargets(kind, part);
    const q = quorumOf(
      targets.map((t) => this.complete(t, kind, part, hash, file, () => writevAll(t.fd, bufs, 0))),
      this.quorum,
    );
    this.track(q.all);
    return q;
  }

  /**
   * Appends a record to the packs of the partition's primaries (a primary
   * that is down is replaced by the next handoff). Each append is durable
   * when it resolves (group commit per device).
   */
  private packWrite(kind: Kind, part: number, hash: string, file: string, bufs: Buffer[], mayReplace: () => boolean): { acked: Promise<number>; all: Promise<number> } {
    let replaces: boolean | undefined;
    const targets: RingDevice[] = [];
    let handoffs: RingDevice[] | null = null;
    let hi = 0;
    for (const dev of this.ring.primaries(part)) {
      if (this.isUp(dev)) {
        targets.push(dev);
        continue;
      }
      handoffs ??= this.ring.handoffs(part);
      while (hi < handoffs.length && !this.isUp(handoffs[hi]!)) hi++;
      if (hi < handoffs.length) {
        targets.push(handoffs[hi++]!);
        this.handoffParts.add(`${kind}:${part}`);
      }
    }
    const q = quorumOf(
      targets.map(async (dev) => {
        const pack = this.packs.get(dev.id)!;
        try {
          await pack.append(part, hash, file, bufs);
        } catch (e) {
          this.markDown(dev, e);
          this.log.warn({ device: dev.name, kind, hash, file, err: String(e) }, 'replica write failed');
          throw e;
        }
        // An earlier version is either in the pack or a file in a hash directory.
        if (pack.count(hash) > 1 || (this.mayHaveHashDirs(dev, part) && (replaces ??= mayReplace()))) this.scheduleCleanup(dev, kind, part, hash);
      }),
      this.quorum,
    );
    this.track(q.all);
    return q;
  }

  /** Starts a streamed write to every replica. */
  async beginStream(kind: Kind, part: number, hash: string, file: string): Promise<StreamWrite> {
    return new StreamWrite(this, await this.openTargets(kind, part), kind, part, hash, file);
  }

  /** Internal to StreamWrite. */
  _complete(t: Target, kind: Kind, part: number, hash: string, file: string, write: () => Promise<void>): Promise<void> {
    return this.complete(t, kind, part, hash, file, write);
  }
  _discard(t: Target): void {
    this.discard(t);
  }
}

/** A write being streamed to several replicas at once. */
export class StreamWrite {
  private pos = 0;
  private finished = false;

  constructor(
    private readonly disk: Disk,
    private readonly targets: Target[],
    private readonly kind: Kind,
    private readonly part: number,
    private readonly hash: string,
    private readonly file: string,
  ) {}

  private live(): Target[] {
    return this.targets.filter((t) => !t.dead);
  }

  /** Appends buffers on every live replica; a replica that fails drops out. */
  async write(bufs: Buffer[]): Promise<void> {
    let len = 0;
    for (const b of bufs) len += b.length;
    const pos = this.pos;
    await Promise.all(
      this.live().map((t) =>
        writevAll(t.fd, bufs, pos).catch((e: unknown) => {
          this.disk.log.warn({ device: t.dev.name, err: String(e) }, 'replica write failed; dropping it');
          this.disk._discard(t);
        }),
      ),
    );
    this.pos += len;
    if (this.live().length < this.disk.quorum) {
      this.abort();
      throw new UnavailableError('too many replica writes failed');
    }
  }

  /** Writes the trailer, fsyncs and renames every replica. */
  commit(trailer: Buffer): { acked: Promise<number>; all: Promise<number> } {
    this.finished = true;
    const pos = this.pos;
    const q = quorumOf(
      this.live().map((t) => this.disk._complete(t, this.kind, this.part, this.hash, this.file, () => writeAll(t.fd, trailer, pos))),
      this.disk.quorum,
    );
    this.disk.track(q.all);
    return q;
  }

  /** Drops every temp file: nothing of this write becomes visible. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.targets) if (!t.dead) this.disk._discard(t);
  }
}

/** Parses and verifies a whole record file held in memory (a small file, or a pack record). */
function parseWhole(dev: RingDevice, path: string, raw: Buffer): OpenedFile {
  const n = raw.length;
  if (n < FOOTER_SIZE) throw new CorruptFileError('file too short');
  const footer = parseFooter(raw.subarray(n - FOOTER_SIZE, n), n);
  const { table, record } = parseTail(raw.subarray(footer.dataLen, n - FOOTER_SIZE), footer);
  const data = raw.subarray(0, footer.dataLen);
  verifyBlocks(data, 0, table, footer.blockSize, footer.dataLen);
  return { dev, path, fd: -1, size: n, footer, table, record, data, raw };
}

/** Merges per-device listings of one hash directory. */
export function mergeVersions(kind: Kind, partition: number, hash: string, perDevice: DeviceVersions[]): Gathered {
  const all: Version[] = [];
  let failed = 0;
  for (const d of perDevice) {
    if (d.versions) all.push(...d.versions);
    else failed++;
  }
  const { base, meta } = resolveVersions(all);
  const holders = (v: Version | undefined) =>
    v ? perDevice.filter((d) => d.versions?.some((x) => x.file === v.file)).map((d) => d.dev) : [];
  return { kind, partition, hash, perDevice, base, meta, baseHolders: holders(base), metaHolders: holders(meta), failed };
}
