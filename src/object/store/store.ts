import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { Ring, type RingDevice, type RingDeviceSpec } from './ring.js';
import { closeQuietly, fsyncDir } from './fsutil.js';
import { Disk, KINDS, PROBE_SIZE, silentLogger, type Gathered, type Kind, type OpenedFile, type StoreLogger } from './disk.js';
import {
  BlockChecksummer,
  CorruptFileError,
  encodeRecordFile,
  encodeSmallFile,
  encodeTrailer,
  type AccountRecord,
  type AnyRecord,
  type ContainerRecord,
  type MetaRecord,
  type ObjectRecord,
  type TombstoneRecord,
  type Version,
} from './format.js';
import { IndexDb, LISTING_LIMIT, type ContainerEntry, type ContainerRow, type ListOptions, type ObjectEntry, type ObjectRowState, type SubdirEntry } from './index-db.js';
import {
  BadRequestError,
  ClientDisconnectError,
  ConflictError,
  EtagMismatchError,
  NotFoundError,
  NotModifiedError,
  PreconditionFailedError,
  RangeNotSatisfiableError,
  TooLargeError,
} from './errors.js';
import { TimestampClock, normalizeTimestamp, timestampToMs, type Timestamp } from './timestamp.js';
import { VerifiedReader } from './reader.js';
import {
  LIMITS,
  checkAccount,
  checkContainer,
  checkObjectName,
  mergeMeta,
  normalizeEtag,
  normalizeSysMeta,
  normalizeUserMeta,
} from './validate.js';
import { Replicator } from './replicator.js';
import { Auditor } from './auditor.js';
import { SmallObjectCache } from './cache.js';

// ------------------------------------------------------------------ public types

export interface OpenOptions {
  /** Store root: `ring.json`, `index.db`, `lock` and (by default) `devices/`. */
  root: string;
  /** Replica count (default 3, at least 3). Used only when the ring is first built. */
  replicas?: number;
  /** log2 of the partition count (default 10). Used only when the ring is first built. */
  partPower?: number;
  /** Device count (default 6, as `<root>/devices/d0..`) or explicit devices. First build only. */
  devices?: number | RingDeviceSpec[];
  /** Zones the generated devices are spread over round-robin (default 3). First build only. */
  zones?: number;
  /** Largest object accepted (default 5 GiB). */
  maxObjectSize?: number;
  /** Age after which tombstones are removed by the replicator (default 7 days). */
  reclaimAgeSeconds?: number;
  /** Start the replicator in the background with this period (off by default). */
  replicationIntervalMs?: number;
  /**
   * Share of the time a replicator pass may be busy (0 < x ≤ 1, default 1):
   * below 1 it pauses after each partition in proportion to the time the
   * partition took, so a pass over many hashes spreads out instead of taking
   * a burst of CPU from requests.
   */
  replicationDutyCycle?: number;
  /** Start the auditor in the background with this period (off by default). */
  auditIntervalMs?: number;
  /** Auditor read rate limit (bytes/s; default unlimited). */
  auditBytesPerSecond?: number;
  /**
   * Memory (bytes) for a cache of small objects (< 64 KiB) as written or read,
   * keyed by version so it is never stale (see cache.ts). Default 0: off, so
   * every read goes to the replicas (what the engine's own tests exercise).
   */
  smallObjectCacheBytes?: number;
  /**
   * Object records (data + metadata) up to this many bytes are appended to a
   * log per device with group commit (`pack.ts`) instead of one file each.
   * Default 0: every version is a file (what the engine's own file-level
   * tests exercise); the cloud turns it on. Packs already on disk are read
   * whatever this says.
   */
  packMaxBytes?: number;
  /** Size at which a pack segment is sealed and a new one started (default 64 MiB). */
  packSegmentBytes?: number;
  logger?: StoreLogger;
}

export interface PutObjectOptions {
  /** Default `application/octet-stream`. */
  contentType?: string;
  /** User metadata, keys without the `X-Object-Meta-` prefix (stored lower-cased). */
  userMeta?: Record<string, string>;
  /** System metadata for the API layers (e.g. SLO/S3 bookkeeping); not validated against user limits. */
  sysMeta?: Record<string, string>;
  /** X-Delete-At (unix seconds); must be in the future. */
  deleteAt?: number;
  /** The MD5 the client announced (ETag / Content-MD5 as hex); 422 when the body differs. */
  expectedEtag?: string;
  /** Content-Length; 499 when the body ends early, 400 when it runs over, 413 when above the limit. */
  expectedSize?: number;
  /** X-Timestamp to write with (default: now). */
  timestamp?: Timestamp;
  /** `*`: fail with 412 if the object exists. */
  ifNoneMatch?: '*';
  /** Fail with 412 unless the current object's ETag is one of these (or `*` and it exists). */
  ifMatch?: string | string[];
}

export interface PutResult {
  etag: string;
  size: number;
  timestamp: Timestamp;
  /** Milliseconds since the epoch. */
  lastModified: number;
}

export interface ObjectMeta {
  account: string;
  container: string;
  name: string;
  etag: string;
  size: number;
  contentType: string;
  /** X-Timestamp of the data. */
  timestamp: Timestamp;
  /** Timestamp of the newest metadata POST, when there was one. */
  metaTimestamp?: Timestamp;
  /** Milliseconds: newest of data and metadata timestamps (Swift's Last-Modified is its ceiling in seconds). */
  lastModified: number;
  userMeta: Record<string, string>;
  sysMeta: Record<string, string>;
  deleteAt?: number;
}

/** Conditional request headers, already parsed. Dates in milliseconds. */
export interface ReadConditions {
  ifMatch?: string | string[];
  ifNoneMatch?: string | string[];
  ifModifiedSince?: number;
  ifUnmodifiedSince?: number;
}

/** Inclusive byte range (`end` defaults to the last byte), or the last `suffix` bytes. */
export type ByteRange = { start: number; end?: number } | { suffix: number };

export interface GetObjectResult {
  meta: ObjectMeta;
  /** The inclusive range served, when one was asked for. */
  range?: { start: number; end: number };
  /** Number of bytes `stream` yields. */
  length: number;
  /** The bytes themselves when the object is small (< 64 KiB), already verified. */
  body?: Buffer;
  /**
   * The bytes, verified block by block, failing over to another replica on a
   * bad block. For large objects it holds a file descriptor: consume it or
   * `destroy()` it.
   */
  readonly stream: Readable;
}

export interface ContainerInfo {
  account: string;
  name: string;
  objectCount: number;
  bytesUsed: number;
  userMeta: Record<string, string>;
  sysMeta: Record<string, string>;
  /** Creation time of the container. */
  putTimestamp: Timestamp;
  /** Time of the last change to its record (metadata). */
  timestamp: Timestamp;
}

export interface AccountInfo {
  name: string;
  containerCount: number;
  objectCount: number;
  bytesUsed: number;
  userMeta: Record<string, string>;
  sysMeta: Record<string, string>;
  putTimestamp: Timestamp;
  timestamp: Timestamp;
}

/** A container's metadata without its stats (ContainerInfo less the counts). */
export type ContainerMeta = Readonly<Omit<ContainerInfo, 'objectCount' | 'bytesUsed'>>;
/** An account's metadata without its stats. */
export type AccountMeta = Readonly<Omit<AccountInfo, 'containerCount' | 'objectCount' | 'bytesUsed'>>;

export interface MetaUpdate {
  /** For containers and accounts: keys set, empty values remove. For objects (POST): replaces all user metadata. */
  userMeta?: Record<string, string>;
  /** Merged; empty values remove. */
  sysMeta?: Record<string, string>;
  timestamp?: Timestamp;
}

export interface PostObjectOptions extends MetaUpdate {
  contentType?: string;
  /** Unix seconds; null removes X-Delete-At. */
  deleteAt?: number | null;
}

export interface CopyOptions {
  /** Merged over the source's user metadata (or replacing it with `freshMetadata`). */
  userMeta?: Record<string, string>;
  freshMetadata?: boolean;
  contentType?: string;
  sysMeta?: Record<string, string>;
  deleteAt?: number;
  sourceConditions?: ReadConditions;
  /** Conditions on the destination, as for putObject. */
  ifNoneMatch?: '*';
}

export interface DeleteObjectOptions {
  timestamp?: Timestamp;
  /** X-If-Delete-At: delete only if the object's X-Delete-At is this (used by the expirer); else 412. */
  ifDeleteAt?: number;
  ifMatch?: string | string[];
}

// ------------------------------------------------------------------ helpers

/** Serializes async sections per key. */
class KeyedMutex {
  private tails = new Map<string, Promise<void>>();
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** Bodies up to this size are gathered in memory and written with one call per replica. */
const SMALL_BODY = 256 * 1024;
/** Streamed bodies are written in batches of about this size. */
const WRITE_BATCH = 1024 * 1024;

const heldRoots = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One process owns a store root at a time (`<root>/lock` holds its pid). */
function acquireLock(root: string): void {
  const file = join(root, 'lock');
  if (heldRoots.has(root)) throw new Error(`object store at ${root} is already open in this process`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      heldRoots.add(root);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid && pid !== process.pid && pidAlive(pid)) throw new Error(`object store at ${root} is in use by process ${pid}`);
      unlinkSync(file); // stale: its owner is gone
    }
  }
  throw new Error(`could not lock ${root}`);
}

function etagMatches(etag: string, cond: string | string[]): boolean {
  const list = Array.isArray(cond) ? cond : cond.split(',');
  return list.some((e) => e.trim() === '*' || normalizeEtag(e) === etag);
}

const toBody = (b: Buffer) => {
  const s = new Readable({ read() {} });
  s.push(b);
  s.push(null);
  return s;
};

// ------------------------------------------------------------------ the store

/**
 * The object storage engine behind Stratus's Swift and S3 APIs: accounts,
 * containers and objects on a ring of devices, replicated (quorum writes,
 * newest-replica reads), with listings in a SQLite index.
 */
export class ObjectStore {
  readonly replicator: Replicator;
  readonly auditor: Auditor;
  readonly maxObjectSize: number;
  readonly reclaimAgeSeconds: number;
  private readonly clock = new TimestampClock();
  private readonly locks = new KeyedMutex();
  private readonly inflight = new Map<number, number>();
  private readonly deleting = new Set<number>();
  private closed = false;
  /** @internal */ readonly cache: SmallObjectCache;

  private constructor(
    readonly root: string,
    readonly ring: Ring,
    /** @internal */ readonly disk: Disk,
    /** @internal */ readonly index: IndexDb,
    readonly log: StoreLogger,
    opts: OpenOptions,
  ) {
    this.maxObjectSize = opts.maxObjectSize ?? LIMITS.maxObjectSize;
    this.reclaimAgeSeconds = opts.reclaimAgeSeconds ?? 7 * 24 * 3600;
    this.replicator = new Replicator(this, opts.replicationDutyCycle);
    this.auditor = new Auditor(this, opts.auditBytesPerSecond);
    this.cache = new SmallObjectCache(opts.smallObjectCacheBytes ?? 0, PROBE_SIZE - 1);
  }

  /**
   * Opens (and on first start creates) the store under `opts.root`: builds
   * and persists the ring once, creates the device directories, opens the
   * listing index (rebuilding it from the devices if it is missing) and takes
   * the root's lock. Temp files left by a crashed process are removed in the
   * background.
   */
  static async open(opts: OpenOptions): Promise<ObjectStore> {
    const duty = opts.replicationDutyCycle ?? 1;
    if (!(duty > 0 && duty <= 1)) throw new RangeError('replicationDutyCycle must be in (0, 1]');
    const root = resolve(opts.root);
    mkdirSync(root, { recursive: true });
    acquireLock(root);
    try {
      const log = opts.logger ?? silentLogger;
      const ringFile = join(root, 'ring.json');
      let ring: Ring;
      const newRing = !existsSync(ringFile);
      if (!newRing) {
        ring = await Ring.load(ringFile, root);
      } else {
        const replicas = opts.replicas ?? 3;
        if (!Number.isInteger(replicas) || replicas < 3) throw new Error('replicas must be an integer of at least 3');
        const zones = opts.zones ?? 3;
        const devices =
          typeof opts.devices === 'object'
            ? opts.devices
            : Array.from({ length: opts.devices ?? 6 }, (_, i) => ({ name: `d${i}`, zone: (i % zones) + 1, path: `devices/d${i}` }));
        ring = Ring.build({ partPower: opts.partPower ?? 10, replicas, devices }, root);
        for (const d of ring.devices) mkdirSync(join(d.path, 'objects'), { recursive: true });
        // Object partition directories exist from the start on their primaries:
        // a first write into a partition then needs no mkdir + parent fsync.
        if (ring.partCount * ring.replicas <= 65536) {
          for (let p = 0; p < ring.partCount; p++) for (const d of ring.primaries(p)) mkdirSync(join(d.path, 'objects', String(p)), { recursive: true });
        }
        for (const d of ring.devices) await fsyncDir(join(d.path, 'objects'));
        await ring.save(ringFile, root);
      }
      const packMax = Math.min(opts.packMaxBytes ?? 0, PROBE_SIZE - 1);
      const disk = new Disk(ring, `${process.pid.toString(36)}${randomBytes(4).toString('hex')}`, log, packMax, opts.packSegmentBytes);
      for (const d of ring.devices) {
        try {
          await access(d.path);
          for (const sub of ['tmp', ...KINDS, 'quarantined']) mkdirSync(join(d.path, sub), { recursive: true });
        } catch (e) {
          disk.markDown(d, e);
        }
      }
      await disk.loadPacks();
      await disk.learnPartDirs();
      const indexFile = join(root, 'index.db');
      const fresh = !existsSync(indexFile);
      const index = new IndexDb(indexFile);
      const store = new ObjectStore(root, ring, disk, index, log, opts);
      // A ring built just now has only empty devices: nothing to rebuild from.
      if (fresh && !newRing && (await store.devicesHoldData())) {
        log.warn({ root }, 'listing index missing: rebuilding it from the devices');
        await store.replicator.reconcileAll();
      }
      disk.track(store.replicator.cleanTmp().catch(() => {}));
      if (opts.replicationIntervalMs) store.replicator.start(opts.replicationIntervalMs);
      if (opts.auditIntervalMs) store.auditor.start(opts.auditIntervalMs);
      return store;
    } catch (e) {
      heldRoots.delete(root);
      try {
        unlinkSync(join(root, 'lock'));
      } catch {
        /* ignore */
      }
      throw e;
    }
  }

  private async devicesHoldData(): Promise<boolean> {
    for (const d of this.ring.devices) {
      for (const k of [...KINDS, 'packs']) {
        try {
          if ((await readdir(join(d.path, k))).length > 0) return true;
        } catch {
          /* missing */
        }
      }
    }
    return false;
  }

  /**
   * Waits until the replica writes still running after their quorum was
   * reached (e.g. third replicas) and old-version cleanups are done.
   */
  async drain(): Promise<void> {
    while (this.disk.background.size > 0) await Promise.allSettled([...this.disk.background]);
  }

  /**
   * Stops the background tasks, waits for replica writes still in flight
   * (e.g. third replicas of acknowledged PUTs), closes the index and releases
   * the lock.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.replicator.stop(), this.auditor.stop()]);
    await this.drain();
    await this.disk.closePacks();
    this.index.close();
    heldRoots.delete(this.root);
    try {
      unlinkSync(join(this.root, 'lock'));
    } catch {
      /* ignore */
    }
  }

  /** False once close() has begun. */
  get isOpen(): boolean {
    return !this.closed;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('object store is closed');
  }

  private ts(given?: Timestamp): Timestamp {
    return given !== undefined ? normalizeTimestamp(given) : this.clock.next();
  }

  // ------------------------------------------------------------ record files

  /** Writes a small record file to its replicas; resolves at write quorum. */
  private async writeRecord(kind: Kind, part: number, hash: string, rec: AnyRecord, bufs?: Buffer[]): Promise<void> {
    const ext = rec.kind === 'tombstone' ? 'ts' : rec.kind === 'meta' ? 'meta' : 'data';
    const { acked } = await this.disk.writeWhole(kind, part, hash, `${rec.timestamp}.${ext}`, bufs ?? [encodeRecordFile(rec)]);
    await acked;
  }

  /**
   * Opens the first intact copy of `v` among `holders` (quarantining corrupt
   * ones; skipping missing ones). Returns the file and openers for the
   * remaining holders, or null when no holder has an intact copy.
   */
  private async openFirst(
    kind: Kind,
    part: number,
    hash: string,
    holders: RingDevice[],
    v: Version,
    keepOpen: boolean,
    knownLarge = false,
  ): Promise<{ f: OpenedFile; rest: Array<() => Promise<OpenedFile>> } | null> {
    const open = async (i: number): Promise<OpenedFile> => {
      const dev = holders[i]!;
      try {
        return await this.disk.openFile(dev, kind, part, hash, v, keepOpen, knownLarge);
      } catch (e) {
        if (e instanceof CorruptFileError) void this.disk.quarantine(dev, kind, part, hash, v.file, e.message);
        throw e;
      }
    };
    for (let i = 0; i < holders.length; i++) {
      try {
        const f = await open(i);
        const rest = holders.slice(i + 1).map((_, j) => () => open(i + 1 + j));
        return { f, rest };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (!(e instanceof CorruptFileError) && code !== 'ENOENT') {
          this.log.warn({ device: holders[i]!.name, err: String(e) }, 'replica read failed');
        }
      }
    }
    return null;
  }

  // ------------------------------------------------------------ accounts

  private accountHash(account: string): Buffer {
    return Buffer.from(this.ring.hashPath(account), 'hex');
  }

  /** Creates the account if it does not exist (Swift's account autocreate). */
  private async ensureAccount(account: string): Promise<void> {
    const live = () => {
      const row = this.index.getAccount(account);
      return row !== undefined && !row.deleted;
    };
    if (live()) return;
    await this.locks.run(`a/${account}`, async () => {
      if (!live()) await this.writeAccount(account, {}, {}, undefined);
    });
  }

  /**
   * Creates an account or updates its metadata (keys set; empty values
   * remove). Accounts are also created implicitly by the first container PUT.
   */
  async putAccount(account: string, opts: MetaUpdate = {}): Promise<{ created: boolean; timestamp: Timestamp }> {
    this.checkOpen();
    checkAccount(account);
    const update = normalizeUserMeta(opts.userMeta, true);
    const sys = normalizeSysMeta(opts.sysMeta);
    return this.locks.run(`a/${account}`, () => this.writeAccount(account, update, sys, opts.timestamp));
  }

  /** Writes the account record (caller holds the account lock). */
  private async writeAccount(account: string, update: Record<string, string>, sys: Record<string, string>, given?: Timestamp): Promise<{ created: boolean; timestamp: Timestamp }> {
    const row = this.index.getAccount(account);
    const live = row && !row.deleted ? row : undefined;
    const ts = this.ts(given);
    const rec: AccountRecord = {
      kind: 'account',
      account,
      timestamp: ts,
      putTimestamp: live?.putTs ?? ts,
      userMeta: normalizeUserMeta(mergeMeta(live?.meta.user ?? {}, update)),
      sysMeta: mergeMeta(live?.meta.sys ?? {}, sys),
    };
    const place = this.ring.locate(account);
    await this.writeRecord('accounts', place.partition, place.hash, rec);
    this.index.applyAccount(rec, Buffer.from(place.hash, 'hex'));
    return { created: !live, timestamp: ts };
  }

  /** Updates account metadata (keys set; empty values remove). 404 if the account does not exist. */
  async postAccountMeta(account: string, update: MetaUpdate): Promise<void> {
    checkAccount(account);
    this.liveAccount(account);
    await this.putAccount(account, update);
  }

  private liveAccount(account: string) {
    const row = this.index.getAccount(account);
    if (!row || row.deleted) throw new NotFoundError(`Account ${account} not found`);
    return row;
  }

  /** Account totals and metadata. 404 if it does not exist (the API layer may autocreate). */
  async headAccount(account: string): Promise<AccountInfo> {
    this.checkOpen();
    checkAccount(account);
    const row = this.liveAccount(account);
    return {
      name: row.name,
      containerCount: row.containerCount,
      objectCount: row.objectCount,
      bytesUsed: row.bytesUsed,
      userMeta: row.meta.user,
      sysMeta: row.meta.sys,
      putTimestamp: row.putTs,
      timestamp: row.ts,
    };
  }

  /**
   * An account's metadata without its stats, from memory (the index keeps it
   * until the account record changes): for checks made on every request.
   * The maps are frozen. 404 if the account does not exist.
   */
  accountMeta(account: string): AccountMeta {
    this.checkOpen();
    checkAccount(account);
    const row = this.index.accountMeta(account);
    if (!row || row.deleted) throw new NotFoundError(`Account ${account} not found`);
    return { name: row.name, userMeta: row.meta.user, sysMeta: row.meta.sys, putTimestamp: row.putTs, timestamp: row.ts };
  }

  /** Lists an account's containers with Swift's listing parameters. */
  async listAccount(account: string, opts: ListOptions = {}): Promise<{ info: AccountInfo; entries: Array<ContainerEntry | SubdirEntry> }> {
    const info = await this.headAccount(account);
    return { info, entries: this.index.listContainers(account, checkListOptions(opts)) };
  }

  /** Deletes an empty account (409 while it has containers). */
  async deleteAccount(account: string, opts: { timestamp?: Timestamp } = {}): Promise<void> {
    this.checkOpen();
    checkAccount(account);
    await this.locks.run(`a/${account}`, async () => {
      const row = this.liveAccount(account);
      if (row.containerCount > 0) throw new ConflictError(`Account ${account} still has containers`);
      const rec: TombstoneRecord = { kind: 'tombstone', account, timestamp: this.ts(opts.timestamp) };
      const place = this.ring.locate(account);
      await this.writeRecord('accounts', place.partition, place.hash, rec);
      this.index.applyAccount(rec, Buffer.from(place.hash, 'hex'));
    });
  }

  // ------------------------------------------------------------ containers

  private liveContainer(account: string, container: string): ContainerRow {
    const row = this.index.getContainer(account, container);
    if (!row || row.deleted) throw new NotFoundError(`Container ${container} not found`);
    return row;
  }

  private containerInfo(row: ContainerRow): ContainerInfo {
    return {
      account: row.account,
      name: row.name,
      objectCount: row.objectCount,
      bytesUsed: row.bytesUsed,
      userMeta: row.meta.user,
      sysMeta: row.meta.sys,
      putTimestamp: row.putTs,
      timestamp: row.ts,
    };
  }

  /**
   * Creates a container (creating its account if needed) or, if it exists,
   * updates the given metadata. `created` tells 201 from 202.
   */
  async putContainer(account: string, container: string, opts: MetaUpdate = {}): Promise<{ created: boolean; timestamp: Timestamp }> {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    const update = normalizeUserMeta(opts.userMeta, true);
    const sys = normalizeSysMeta(opts.sysMeta);
    await this.ensureAccount(account);
    return this.locks.run(`c/${account}/${container}`, async () => {
      const row = this.index.getContainer(account, container);
      const live = row && !row.deleted ? row : undefined;
      const ts = this.ts(opts.timestamp);
      const rec: ContainerRecord = {
        kind: 'container',
        account,
        container,
        timestamp: ts,
        putTimestamp: live?.putTs ?? ts,
        userMeta: normalizeUserMeta(mergeMeta(live?.meta.user ?? {}, update)),
        sysMeta: mergeMeta(live?.meta.sys ?? {}, sys),
      };
      const place = this.ring.locate(account, container);
      await this.writeRecord('containers', place.partition, place.hash, rec);
      this.index.applyContainer(rec, Buffer.from(place.hash, 'hex'), this.accountHash(account));
      return { created: !live, timestamp: ts };
    });
  }

  /** Container stats (object count, bytes used) and metadata. */
  async headContainer(account: string, container: string): Promise<ContainerInfo> {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    return this.containerInfo(this.liveContainer(account, container));
  }

  /** A container's metadata without its stats, from memory (see accountMeta). 404 if missing. */
  containerMeta(account: string, container: string): ContainerMeta {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    const row = this.index.containerMeta(account, container);
    if (!row || row.deleted) throw new NotFoundError(`Container ${container} not found`);
    return { account: row.account, name: row.name, userMeta: row.meta.user, sysMeta: row.meta.sys, putTimestamp: row.putTs, timestamp: row.ts };
  }

  /** Updates container metadata (keys set; empty values remove). 404 if missing. */
  async postContainerMeta(account: string, container: string, update: MetaUpdate): Promise<void> {
    checkAccount(account);
    checkContainer(container);
    this.liveContainer(account, container);
    await this.putContainer(account, container, update);
  }

  /** Deletes an empty container: 404 if missing, 409 if it holds objects (or uploads are in flight). */
  async deleteContainer(account: string, container: string, opts: { timestamp?: Timestamp } = {}): Promise<void> {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    await this.locks.run(`c/${account}/${container}`, async () => {
      const row = this.liveContainer(account, container);
      this.index.flushNow();
      const fresh = this.liveContainer(account, container);
      if ((this.inflight.get(row.id) ?? 0) > 0 || fresh.objectCount > 0) throw new ConflictError(`Container ${container} is not empty`);
      this.deleting.add(row.id);
      try {
        const rec: TombstoneRecord & { container: string } = { kind: 'tombstone', account, container, timestamp: this.ts(opts.timestamp) };
        const place = this.ring.locate(account, container);
        await this.writeRecord('containers', place.partition, place.hash, rec);
        this.index.applyContainer(rec, Buffer.from(place.hash, 'hex'), this.accountHash(account));
      } finally {
        this.deleting.delete(row.id);
      }
    });
  }

  /**
   * Lists a container's objects: `prefix`, `delimiter` (roll-ups as
   * `{ subdir }` entries), `marker`, `endMarker`, `limit` (≤ 10000), `reverse`.
   */
  async listContainer(account: string, container: string, opts: ListOptions = {}): Promise<{ info: ContainerInfo; entries: Array<ObjectEntry | SubdirEntry> }> {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    const row = this.liveContainer(account, container);
    return { info: this.containerInfo(row), entries: this.index.listObjects(row.id, checkListOptions(opts)) };
  }

  // ------------------------------------------------------------ objects

  private containerId(account: string, container: string): number {
    const id = this.index.liveContainerId(account, container);
    if (id === undefined) throw new NotFoundError(`Container ${container} not found`);
    return id;
  }

  private beginObjectWrite(account: string, container: string): { id: number } {
    const id = this.containerId(account, container);
    if (this.deleting.has(id)) throw new NotFoundError(`Container ${container} not found`);
    this.inflight.set(id, (this.inflight.get(id) ?? 0) + 1);
    return { id };
  }

  /**
   * Timestamp for a write to an object. An explicit X-Timestamp that is not
   * newer than the object's current one (data, tombstone or POST) is refused
   * with 409, as Swift's object server does.
   */
  private objectTs(cid: number, name: string, given?: Timestamp): Timestamp {
    if (given === undefined) return this.clock.next();
    const ts = normalizeTimestamp(given);
    const cur = this.index.getObject(cid, name);
    if (cur && (cur.ts >= ts || (cur.metaTs !== null && cur.metaTs >= ts))) {
      throw new ConflictError(`X-Timestamp ${ts} is not newer than the object's ${cur.metaTs ?? cur.ts}`);
    }
    return ts;
  }

  private endObjectWrite(cid: number): void {
    const n = (this.inflight.get(cid) ?? 1) - 1;
    if (n <= 0) this.inflight.delete(cid);
    else this.inflight.set(cid, n);
  }

  /**
   * Stores an object. The body is streamed to a temp file on every replica
   * device (MD5 ETag and per-block CRCs computed on the way), fsynced and
   * renamed into place; resolves once a quorum of replicas is durable and the
   * listing row has committed. Last writer (by timestamp) wins.
   */
  async putObject(
    account: string,
    container: string,
    name: string,
    body: Readable | Uint8Array | string,
    opts: PutObjectOptions = {},
  ): Promise<PutResult> {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    checkObjectName(name);
    const userMeta = normalizeUserMeta(opts.userMeta, true);
    const sysMeta = normalizeSysMeta(opts.sysMeta);
    const contentType = opts.contentType || 'application/octet-stream';
    if (Buffer.byteLength(contentType) > LIMITS.maxContentTypeBytes || /[\r\n]/.test(contentType)) throw new BadRequestError('Invalid Content-Type');
    if (opts.deleteAt !== undefined && (!Number.isInteger(opts.deleteAt) || opts.deleteAt <= Date.now() / 1000)) {
      throw new BadRequestError('X-Delete-At in past');
    }
    if (opts.expectedSize !== undefined) {
      if (!Number.isSafeInteger(opts.expectedSize) || opts.expectedSize < 0) throw new BadRequestError('Invalid Content-Length');
      if (opts.expectedSize > this.maxObjectSize) throw new TooLargeError('Your request is too large.');
    }
    const expectedEtag = opts.expectedEtag !== undefined ? normalizeEtag(opts.expectedEtag) : undefined;
    const row = this.beginObjectWrite(account, container);
    try {
      const place = this.ring.locate(account, container, name);
      if (opts.ifNoneMatch !== undefined || opts.ifMatch !== undefined) {
        const cur = await this.resolveObject(account, container, name, place, false).catch((e: unknown) => {
          if (e instanceof NotFoundError) return null;
          throw e;
        });
        if (opts.ifNoneMatch === '*' && cur) throw new PreconditionFailedError();
        if (opts.ifMatch !== undefined && (!cur || !etagMatches(cur.meta.etag, opts.ifMatch))) throw new PreconditionFailedError();
      }
      const ts = this.objectTs(row.id, name, opts.timestamp);
      const file = `${ts}.data`;
      const base = { kind: 'object' as const, account, container, name, timestamp: ts, contentType, userMeta, sysMeta, deleteAt: opts.deleteAt };
      const md5 = createHash('md5');
      const checkSize = (n: number) => {
        if (n > this.maxObjectSize) throw new TooLargeError('Your request is too large.');
        if (opts.expectedSize !== undefined && n > opts.expectedSize) throw new BadRequestError('Body is longer than Content-Length');
      };
      const finish = (size: number) => {
        if (opts.expectedSize !== undefined && size < opts.expectedSize) {
          throw new ClientDisconnectError(`Body ended after ${size} of ${opts.expectedSize} bytes`);
        }
        const etag = md5.digest('hex');
        if (expectedEtag !== undefined && expectedEtag !== etag) throw new EtagMismatchError(expectedEtag, etag);
        const rec: ObjectRecord = { ...base, etag, size };
        if (rec.deleteAt === undefined) delete rec.deleteAt;
        return rec;
      };

      // Gather up to SMALL_BODY bytes; a body that ends by then is written in one call per replica.
      let first: Buffer[] = [];
      let firstLen = 0;
      let iter: AsyncIterator<unknown> | null = null;
      if (typeof body === 'string' || body instanceof Uint8Array) {
        const b = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.length);
        first = [b];
        firstLen = b.length;
      } else {
        iter = body[Symbol.asyncIterator]();
        try {
          while (firstLen <= SMALL_BODY) {
            const r = await iter.next();
            if (r.done) {
              iter = null;
              break;
            }
            const c = toBuffer(r.value);
            first.push(c);
            firstLen += c.length;
            checkSize(firstLen);
          }
        } catch (e) {
          throw bodyError(e);
        }
      }
      checkSize(firstLen);
      for (const c of first) md5.update(c);

      let rec: ObjectRecord;
      if (!iter) {
        const data = first.length === 1 ? first[0]! : Buffer.concat(first, firstLen);
        rec = finish(firstLen);
        const cid = row.id;
        const { acked } = await this.disk.writeWhole('objects', place.partition, place.hash, file, encodeSmallFile(data, rec), () => this.index.getObject(cid, name) !== undefined);
        await acked;
        if (this.cache.capacity > 0) this.cache.set(SmallObjectCache.key(place.hash, ts, null), frozenMeta(objectMeta(rec)), Buffer.from(data));
      } else {
        const sw = await this.disk.beginStream('objects', place.partition, place.hash, file);
        const crc = new BlockChecksummer();
        for (const c of first) crc.update(c);
        let size = firstLen;
        try {
          let pending: Promise<void> | null = sw.write(first);
          pending.catch(() => {});
          let batch: Buffer[] = [];
          let batchLen = 0;
          for (;;) {
            let r: IteratorResult<unknown>;
            try {
              r = await iter.next();
            } catch (e) {
              throw bodyError(e);
            }
            if (r.done) break;
            const c = toBuffer(r.value);
            size += c.length;
            checkSize(size);
            md5.update(c);
            crc.update(c);
            batch.push(c);
            batchLen += c.length;
            if (batchLen >= WRITE_BATCH) {
              if (pending) await pending;
              pending = sw.write(batch);
              pending.catch(() => {});
              batch = [];
              batchLen = 0;
            }
          }
          if (pending) await pending;
          if (batch.length) await sw.write(batch);
          rec = finish(size);
        } catch (e) {
          // Nothing becomes visible. The body may be left partly unread: the caller owns it.
          sw.abort();
          throw e;
        }
        await sw.commit(encodeTrailer(size, crc.finish(), rec)).acked;
      }
      await this.index.enqueue({
        op: 'put',
        cid: row.id,
        name,
        ts,
        size: rec.size,
        etag: rec.etag,
        contentType,
        deleteAt: opts.deleteAt ?? null,
        hash: Buffer.from(place.hash, 'hex'),
      });
      return { etag: rec.etag, size: rec.size, timestamp: ts, lastModified: timestampToMs(ts) };
    } finally {
      this.endObjectWrite(row.id);
    }
  }

  /**
   * Finds the current version of an object and opens an intact copy of it
   * (plus its newest metadata update). The listing index names the current
   * version (it is updated before a write is acknowledged), so a read opens
   * that file on the first replica that has it intact, with no directory
   * listing; if no replica has it, the replicas' directories are listed and
   * the newest version found there is used.
   */
  private async resolveObject(
    account: string,
    container: string,
    name: string,
    place: { partition: number; hash: string },
    keepOpen: boolean,
  ): Promise<Resolved> {
    const cid = this.containerId(account, container);
    const row = this.index.getObject(cid, name);
    if (!row || row.deleted) throw new NotFoundError(`Object ${name} not found`, row?.ts);
    const key = this.cache.capacity > 0 && row.size < PROBE_SIZE ? SmallObjectCache.key(place.hash, row.ts, row.metaTs) : null;
    if (key) {
      const hit = this.cache.get(key);
      if (hit) {
        if (hit.meta.deleteAt !== undefined && hit.meta.deleteAt <= Date.now() / 1000) throw new NotFoundError(`Object ${name} not found (expired)`);
        return { meta: hit.meta, data: hit.data };
      }
    }
    const devs = this.disk.readDevices('objects', place.partition).map((d) => d.dev);
    const opened = await this.openFirst('objects', place.partition, place.hash, devs, versionOf(row.ts, 'data'), keepOpen, row.size >= PROBE_SIZE);
    if (opened) {
      let overlay: MetaRecord | undefined;
      let metaOk = true;
      if (row.metaTs !== null) {
        const m = await this.openFirst('objects', place.partition, place.hash, devs, versionOf(row.metaTs, 'meta'), false);
        if (m && m.f.record.kind === 'meta') overlay = m.f.record;
        else metaOk = false;
      }
      if (metaOk) {
        const r = this.finishResolve(account, container, name, opened, overlay);
        if (key && r.f.data && r.f.data.length === r.meta.size) {
          r.meta = frozenMeta(r.meta);
          this.cache.set(key, r.meta, r.f.data);
        }
        return r;
      }
      closeFdQuietly(opened.f);
    }
    return this.resolveByGather(account, container, name, place, keepOpen);
  }

  /** The slow path: list every replica's directory and take the newest version. */
  private async resolveByGather(
    account: string,
    container: string,
    name: string,
    place: { partition: number; hash: string },
    keepOpen: boolean,
  ): Promise<Resolved> {
    for (let attempt = 0; ; attempt++) {
      const g = await this.disk.gather('objects', place.partition, place.hash);
      if (!g.base || g.base.ext !== 'data') throw new NotFoundError(`Object ${name} not found`, g.base?.ts);
      const opened = await this.openFirst('objects', g.partition, g.hash, g.baseHolders, g.base, keepOpen);
      if (!opened) {
        // Every copy vanished (overwritten and cleaned up meanwhile) or was corrupt: look again once.
        if (attempt === 0) continue;
        throw new NotFoundError(`Object ${name} not found`);
      }
      let overlay: MetaRecord | undefined;
      if (g.meta) {
        const m = await this.openFirst('objects', g.partition, g.hash, g.metaHolders, g.meta, false);
        if (m && m.f.record.kind === 'meta') overlay = m.f.record;
      }
      return this.finishResolve(account, container, name, opened, overlay);
    }
  }

  private finishResolve(
    account: string,
    container: string,
    name: string,
    opened: { f: OpenedFile; rest: Array<() => Promise<OpenedFile>> },
    overlay: MetaRecord | undefined,
  ): OpenedVersion {
    const rec = opened.f.record;
    if (rec.kind !== 'object' || rec.account !== account || rec.container !== container || rec.name !== name) {
      closeFdQuietly(opened.f);
      throw new CorruptFileError(`object file ${opened.f.path} holds another record`);
    }
    const meta = objectMeta(rec, overlay);
    if (meta.deleteAt !== undefined && meta.deleteAt <= Date.now() / 1000) {
      closeFdQuietly(opened.f);
      throw new NotFoundError(`Object ${name} not found (expired)`);
    }
    return { meta, f: opened.f, rest: opened.rest };
  }

  /** An object's metadata. Throws 404, or 412/304 per `conditions`. */
  async headObject(account: string, container: string, name: string, conditions?: ReadConditions): Promise<ObjectMeta> {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    checkObjectName(name);
    const place = this.ring.locate(account, container, name);
    const { meta } = await this.resolveObject(account, container, name, place, false);
    if (conditions) checkConditions(meta, conditions);
    return meta;
  }

  /**
   * Reads an object (or a byte range of it) from the first intact replica
   * holding its newest version. Every block is checked against its CRC before
   * it is handed out; a bad block makes the stream continue from another
   * replica (and the bad file is quarantined).
   */
  async getObject(
    account: string,
    container: string,
    name: string,
    opts: { range?: ByteRange; conditions?: ReadConditions } = {},
  ): Promise<GetObjectResult> {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    checkObjectName(name);
    const place = this.ring.locate(account, container, name);
    const resolved = await this.resolveObject(account, container, name, place, true);
    const { meta } = resolved;
    if (resolved.data) {
      if (opts.conditions) checkConditions(meta, opts.conditions);
      const range = opts.range ? resolveRange(opts.range, meta.size) : undefined;
      const data = resolved.data;
      const body = range ? data.subarray(range.start, range.end + 1) : data;
      let s: Readable | undefined;
      return {
        meta,
        range,
        length: body.length,
        body,
        get stream() {
          return (s ??= toBody(body));
        },
      };
    }
    const { f, rest } = resolved;
    try {
      if (opts.conditions) checkConditions(meta, opts.conditions);
      const range = opts.range ? resolveRange(opts.range, meta.size) : undefined;
      const start = range?.start ?? 0;
      const end = range?.end ?? meta.size - 1;
      const length = end - start + 1;
      if (f.data) {
        const body = start === 0 && length === f.data.length ? f.data : f.data.subarray(start, end + 1);
        let s: Readable | undefined;
        return {
          meta,
          range,
          length,
          body,
          get stream() {
            return (s ??= toBody(body));
          },
        };
      }
      const stream = new VerifiedReader(f, start, end, rest, (bad, err) => {
        void this.disk.quarantine(bad.dev, 'objects', place.partition, place.hash, bad.path.slice(bad.path.lastIndexOf('/') + 1), String(err));
      });
      return { meta, range, length, stream };
    } catch (e) {
      closeFdQuietly(f);
      throw e;
    }
  }

  /**
   * Stream of `/account/container/object` bytes `start..end` (inclusive).
   * Convenience over getObject.
   */
  async read(path: string, range?: { start?: number; end?: number }): Promise<Readable> {
    const m = /^\/?([^/]+)\/([^/]+)\/(.+)$/.exec(path);
    if (!m) throw new BadRequestError(`Not an object path: ${path}`);
    const r = await this.getObject(m[1]!, m[2]!, m[3]!, range ? { range: { start: range.start ?? 0, end: range.end } } : {});
    return r.stream;
  }

  /**
   * Swift's fast POST: replaces the object's user metadata (and optionally
   * its content type and X-Delete-At; sysmeta is merged) without rewriting
   * the data, as a `.meta` file next to it.
   */
  async postObjectMeta(account: string, container: string, name: string, opts: PostObjectOptions): Promise<{ timestamp: Timestamp }> {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    checkObjectName(name);
    const userMeta = normalizeUserMeta(opts.userMeta, true);
    if (opts.deleteAt !== undefined && opts.deleteAt !== null && (!Number.isInteger(opts.deleteAt) || opts.deleteAt <= Date.now() / 1000)) {
      throw new BadRequestError('X-Delete-At in past');
    }
    const row = this.beginObjectWrite(account, container);
    try {
      const place = this.ring.locate(account, container, name);
      return await this.locks.run(`o/${place.hash}`, async () => {
        const { meta } = await this.resolveObject(account, container, name, place, false);
        const ts = this.objectTs(row.id, name, opts.timestamp);
        const rec: MetaRecord = {
          kind: 'meta',
          account,
          container,
          name,
          timestamp: ts,
          userMeta,
          contentType: opts.contentType || meta.contentType,
          deleteAt: opts.deleteAt === undefined ? (meta.deleteAt ?? null) : opts.deleteAt,
          sysMeta: mergeMeta(meta.sysMeta, normalizeSysMeta(opts.sysMeta)),
        };
        await this.writeRecord('objects', place.partition, place.hash, rec);
        await this.index.enqueue({ op: 'post', cid: row.id, name, ts, contentType: rec.contentType, deleteAt: rec.deleteAt });
        return { timestamp: ts };
      });
    } finally {
      this.endObjectWrite(row.id);
    }
  }

  /**
   * Deletes an object by writing a tombstone on its replicas. The tombstone is
   * written even when the object is missing (to bury stale replicas); the
   * call then throws 404.
   */
  async deleteObject(account: string, container: string, name: string, opts: DeleteObjectOptions = {}): Promise<{ timestamp: Timestamp }> {
    this.checkOpen();
    checkAccount(account);
    checkContainer(container);
    checkObjectName(name);
    const row = this.beginObjectWrite(account, container);
    try {
      const place = this.ring.locate(account, container, name);
      const cur = this.index.getObject(row.id, name);
      const existed = cur !== undefined && !cur.deleted && !(cur.deleteAt !== null && cur.deleteAt <= Date.now() / 1000);
      // X-If-Delete-At is judged on the listing row (it also sees expired objects).
      if (opts.ifDeleteAt !== undefined && (!cur || cur.deleted || cur.deleteAt !== opts.ifDeleteAt)) throw new PreconditionFailedError();
      if (opts.ifMatch !== undefined) {
        const live = await this.resolveObject(account, container, name, place, false).catch((e: unknown) => {
          if (e instanceof NotFoundError) return null;
          throw e;
        });
        if (!live || !etagMatches(live.meta.etag, opts.ifMatch)) throw new PreconditionFailedError();
      }
      const ts = this.objectTs(row.id, name, opts.timestamp);
      const rec: TombstoneRecord = { kind: 'tombstone', account, container, name, timestamp: ts };
      await this.writeRecord('objects', place.partition, place.hash, rec);
      await this.index.enqueue({ op: 'delete', cid: row.id, name, ts, hash: Buffer.from(place.hash, 'hex') });
      if (!existed) throw new NotFoundError(`Object ${name} not found`, ts);
      return { timestamp: ts };
    } finally {
      this.endObjectWrite(row.id);
    }
  }

  /**
   * Server-side copy: streams the source (verified) into a new object. The
   * destination gets the source's metadata merged with `opts` (or only
   * `opts.userMeta` with `freshMetadata`) and the source's ETag is checked.
   */
  async copyObject(
    src: { account: string; container: string; name: string },
    dst: { account: string; container: string; name: string },
    opts: CopyOptions = {},
  ): Promise<PutResult> {
    this.containerId(dst.account, dst.container);
    const r = await this.getObject(src.account, src.container, src.name, { conditions: opts.sourceConditions });
    const m = r.meta;
    try {
      return await this.putObject(dst.account, dst.container, dst.name, r.body ?? r.stream, {
        contentType: opts.contentType ?? m.contentType,
        userMeta: opts.freshMetadata ? (opts.userMeta ?? {}) : { ...m.userMeta, ...normalizeUserMeta(opts.userMeta, true) },
        sysMeta: { ...m.sysMeta, ...normalizeSysMeta(opts.sysMeta) },
        deleteAt: opts.deleteAt,
        expectedEtag: m.etag,
        expectedSize: m.size,
        ifNoneMatch: opts.ifNoneMatch,
      });
    } finally {
      if (!r.body) r.stream.destroy();
    }
  }

  /**
   * Deletes objects whose X-Delete-At has passed (what Swift's expirer does);
   * the replicator calls it on each pass. Returns how many were deleted.
   */
  async expireOnce(limit = 1000): Promise<number> {
    let n = 0;
    for (const e of this.index.expired(Math.floor(Date.now() / 1000), limit)) {
      try {
        await this.deleteObject(e.account, e.container, e.name, { ifDeleteAt: e.deleteAt });
        n++;
      } catch (err) {
        // 404: deleted (an expired object already reads as missing). 412: re-PUT or re-POSTed meanwhile.
        if (err instanceof NotFoundError) n++;
        else if (!(err instanceof PreconditionFailedError)) throw err;
      }
    }
    return n;
  }

  // ------------------------------------------------------------ index reconciliation

  /**
   * Brings the listing index in line with the newest record of one hash
   * directory (used by the replicator, and to rebuild a lost index).
   * `known`: for an object, the versions its index rows named a moment ago
   * (the replicator reads a partition's at once); read here when absent.
   * Returns true when the index changed.
   * @internal
   */
  async reconcile(g: Gathered, known?: readonly ObjectRowState[]): Promise<boolean> {
    if (!g.base) return false;
    const hash = Buffer.from(g.hash, 'hex');
    const base = g.base;
    if (g.kind === 'objects') {
      const rows = known ?? this.index.objectsByHash(hash);
      if (rows.length === 1) {
        const r = rows[0]!;
        const metaOk = !g.meta || (r.metaTs !== null && r.metaTs >= g.meta.ts);
        if (r.ts > base.ts || (r.ts === base.ts && (base.ext !== 'data' || metaOk) && r.deleted === (base.ext === 'ts'))) return false;
      }
      const opened = await this.openFirst(g.kind, g.partition, g.hash, g.baseHolders, base, false);
      if (!opened) return false;
      const rec = opened.f.record;
      if (rec.kind !== 'object' && rec.kind !== 'tombstone') return false;
      if (rec.container === undefined || rec.name === undefined) return false;
      const c = this.index.getContainer(rec.account, rec.container);
      if (!c) return false;
      const before = this.index.getObject(c.id, rec.name);
      if (rec.kind === 'object') {
        await this.index.enqueue({
          op: 'put',
          cid: c.id,
          name: rec.name,
          ts: rec.timestamp,
          size: rec.size,
          etag: rec.etag,
          contentType: rec.contentType,
          deleteAt: rec.deleteAt ?? null,
          hash,
        });
        if (g.meta) {
          const m = await this.openFirst(g.kind, g.partition, g.hash, g.metaHolders, g.meta, false);
          if (m && m.f.record.kind === 'meta') {
            const mr = m.f.record;
            await this.index.enqueue({ op: 'post', cid: c.id, name: rec.name, ts: mr.timestamp, contentType: mr.contentType, deleteAt: mr.deleteAt });
          }
        }
      } else {
        await this.index.enqueue({ op: 'delete', cid: c.id, name: rec.name, ts: rec.timestamp, hash });
      }
      const after = this.index.getObject(c.id, rec.name);
      return JSON.stringify(before) !== JSON.stringify(after);
    }
    const rows = g.kind === 'containers' ? this.index.containersByHash(hash) : this.index.accountsByHash(hash);
    if (rows.length === 1 && rows[0]!.ts >= base.ts) return false;
    const opened = await this.openFirst(g.kind, g.partition, g.hash, g.baseHolders, base, false);
    if (!opened) return false;
    const rec = opened.f.record;
    if (g.kind === 'containers') {
      if (rec.kind !== 'container' && !(rec.kind === 'tombstone' && rec.container !== undefined && rec.name === undefined)) return false;
      return this.index.applyContainer(rec as ContainerRecord | (TombstoneRecord & { container: string }), hash, this.accountHash(rec.account)).changed;
    }
    if (rec.kind !== 'account' && !(rec.kind === 'tombstone' && rec.container === undefined)) return false;
    return this.index.applyAccount(rec as AccountRecord | TombstoneRecord, hash).changed;
  }
}

// ------------------------------------------------------------------ module helpers

function toBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v);
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.length);
  throw new BadRequestError('Body stream yielded a non-binary chunk');
}

function bodyError(e: unknown): Error {
  if (e instanceof Error && 'status' in e) return e;
  return new ClientDisconnectError(`Body stream failed: ${e instanceof Error ? e.message : String(e)}`);
}

function closeFdQuietly(f: OpenedFile): void {
  if (f.fd >= 0) {
    closeQuietly(f.fd);
    f.fd = -1;
  }
}

/** The current version of an object: an open replica, or (from the cache) its bytes. */
interface OpenedVersion {
  meta: ObjectMeta;
  f: OpenedFile;
  rest: Array<() => Promise<OpenedFile>>;
  data?: undefined;
}
type Resolved = OpenedVersion | { meta: ObjectMeta; data: Buffer; f?: undefined; rest?: undefined };

/** Metadata shared through the cache must not be changed by a caller. */
function frozenMeta(m: ObjectMeta): ObjectMeta {
  Object.freeze(m.userMeta);
  Object.freeze(m.sysMeta);
  return Object.freeze(m);
}

function versionOf(ts: Timestamp, ext: Version['ext']): Version {
  return { ts, ext, file: `${ts}.${ext}` };
}

function objectMeta(rec: ObjectRecord, overlay?: MetaRecord): ObjectMeta {
  const meta: ObjectMeta = {
    account: rec.account,
    container: rec.container,
    name: rec.name,
    etag: rec.etag,
    size: rec.size,
    contentType: rec.contentType,
    timestamp: rec.timestamp,
    lastModified: timestampToMs(rec.timestamp),
    userMeta: rec.userMeta,
    sysMeta: rec.sysMeta,
  };
  if (rec.deleteAt !== undefined) meta.deleteAt = rec.deleteAt;
  if (overlay) {
    meta.metaTimestamp = overlay.timestamp;
    meta.lastModified = timestampToMs(overlay.timestamp);
    meta.userMeta = overlay.userMeta;
    if (overlay.contentType) meta.contentType = overlay.contentType;
    if (overlay.sysMeta) meta.sysMeta = overlay.sysMeta;
    if (overlay.deleteAt === null) delete meta.deleteAt;
    else if (overlay.deleteAt !== undefined) meta.deleteAt = overlay.deleteAt;
  }
  return meta;
}

/** RFC 7232 evaluation order; Last-Modified compared at second precision (rounded up, as Swift does). */
export function checkConditions(meta: ObjectMeta, c: ReadConditions): void {
  const lastModifiedSec = Math.ceil(meta.lastModified / 1000);
  if (c.ifMatch !== undefined && !etagMatches(meta.etag, c.ifMatch)) throw new PreconditionFailedError();
  if (c.ifMatch === undefined && c.ifUnmodifiedSince !== undefined && lastModifiedSec > Math.floor(c.ifUnmodifiedSince / 1000)) {
    throw new PreconditionFailedError();
  }
  if (c.ifNoneMatch !== undefined) {
    if (etagMatches(meta.etag, c.ifNoneMatch)) throw new NotModifiedError(meta.etag, meta.timestamp);
  } else if (c.ifModifiedSince !== undefined && lastModifiedSec <= Math.floor(c.ifModifiedSince / 1000)) {
    throw new NotModifiedError(meta.etag, meta.timestamp);
  }
}

/** Resolves a byte range against an object size (416 when it does not overlap). */
export function resolveRange(r: ByteRange, size: number): { start: number; end: number } {
  if ('suffix' in r) {
    if (!Number.isSafeInteger(r.suffix) || r.suffix < 0) throw new BadRequestError('Invalid range');
    if (r.suffix === 0 || size === 0) throw new RangeNotSatisfiableError(size);
    return { start: Math.max(0, size - r.suffix), end: size - 1 };
  }
  const { start } = r;
  if (!Number.isSafeInteger(start) || start < 0 || (r.end !== undefined && (!Number.isSafeInteger(r.end) || r.end < start))) {
    throw new BadRequestError('Invalid range');
  }
  if (start >= size) throw new RangeNotSatisfiableError(size);
  return { start, end: Math.min(r.end ?? size - 1, size - 1) };
}

function checkListOptions(opts: ListOptions): ListOptions {
  if (opts.limit !== undefined) {
    if (!Number.isInteger(opts.limit) || opts.limit < 0) throw new BadRequestError('Invalid limit');
    if (opts.limit > LISTING_LIMIT) throw new PreconditionFailedError(`Maximum limit is ${LISTING_LIMIT}`);
  }
  return opts;
}
