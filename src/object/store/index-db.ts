import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import type { AccountRecord, ContainerRecord, TombstoneRecord } from './format.js';
import { timestampToIso, type Timestamp } from './timestamp.js';

/**
 * The listing index: one SQLite database (WAL) at `<root>/index.db` holding
 * accounts, containers and every object's listing row, with object counts
 * and bytes used kept per container and per account.
 *
 * It is an index, not the source of truth: every row is derived from the
 * ring-placed, replicated record files (object files carry name, size, etag
 * and content type; containers and accounts have record files of their own),
 * and the replicator reconciles rows with those files, so a lost or lagging
 * index is rebuilt from the devices.
 *
 * Object listing updates are batched: all updates queued during one turn of
 * the event loop are applied in one transaction (group commit), and each
 * caller's promise resolves when that transaction has committed.
 */

export interface MetaMaps {
  user: Record<string, string>;
  sys: Record<string, string>;
}

export interface AccountRow {
  name: string;
  ts: Timestamp;
  putTs: Timestamp;
  deleted: boolean;
  meta: MetaMaps;
  containerCount: number;
  objectCount: number;
  bytesUsed: number;
}

export interface ContainerRow {
  id: number;
  account: string;
  name: string;
  ts: Timestamp;
  putTs: Timestamp;
  deleted: boolean;
  meta: MetaMaps;
  objectCount: number;
  bytesUsed: number;
}

/** A container's record without its stats (which change with every object write). */
export type ContainerMetaRow = Readonly<Omit<ContainerRow, 'objectCount' | 'bytesUsed'>>;
/** An account's record without its stats. */
export type AccountMetaRow = Readonly<Omit<AccountRow, 'containerCount' | 'objectCount' | 'bytesUsed'>>;

export interface ObjectIndexRow {
  cid: number;
  name: string;
  ts: Timestamp;
  metaTs: Timestamp | null;
  deleted: boolean;
  size: number;
  etag: string;
  contentType: string;
  deleteAt: number | null;
}

/** The version an object's row names. */
export type ObjectRowState = Pick<ObjectIndexRow, 'ts' | 'metaTs' | 'deleted'>;

export type ObjectUpdate =
  | { op: 'put'; cid: number; name: string; ts: Timestamp; size: number; etag: string; contentType: string; deleteAt: number | null; hash: Buffer }
  | { op: 'delete'; cid: number; name: string; ts: Timestamp; hash: Buffer }
  | { op: 'post'; cid: number; name: string; ts: Timestamp; contentType?: string; deleteAt?: number | null };

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  marker?: string;
  endMarker?: string;
  /** Default and maximum 10000. */
  limit?: number;
  reverse?: boolean;
}

/** A listing entry that rolls up names sharing `prefix...delimiter`. */
export interface SubdirEntry {
  subdir: string;
}

export interface ObjectEntry {
  name: string;
  etag: string;
  size: number;
  contentType: string;
  /** Timestamp of the object's data (X-Timestamp). */
  timestamp: Timestamp;
  /** Swift's `last_modified`: `2016-03-29T19:41:38.176080`. */
  lastModified: string;
}

export interface ContainerEntry {
  name: string;
  objectCount: number;
  bytesUsed: number;
  /** When the container was created. */
  timestamp: Timestamp;
  lastModified: string;
}

/** Any string with prefix `p` (of at most 1024 bytes after it) sorts at or below this. */
const MAX_TAIL = '\u{10FFFF}'.repeat(257);
export const LISTING_LIMIT = 10_000;

interface RawObj {
  name: string;
  ts: string;
  meta_ts: string | null;
  deleted: number;
  size: number;
  etag: string;
  content_type: string;
  delete_at: number | null;
}
const objectRow = (r: RawObj & { cid: number }): ObjectIndexRow => ({
  cid: r.cid,
  name: r.name,
  ts: r.ts,
  metaTs: r.meta_ts,
  deleted: r.deleted !== 0,
  size: r.size,
  etag: r.etag,
  contentType: r.content_type,
  deleteAt: r.delete_at,
});

interface RawContainer {
  id: number;
  account: string;
  name: string;
  ts: string;
  put_ts: string;
  deleted: number;
  user_meta: string;
  sys_meta: string;
  object_count: number;
  bytes_used: number;
}
interface RawAccount {
  name: string;
  ts: string;
  put_ts: string;
  deleted: number;
  user_meta: string;
  sys_meta: string;
  container_count: number;
  object_count: number;
  bytes_used: number;
}

/** Minimum spacing of listing commits under load (group commit window). */
const FLUSH_INTERVAL_MS = 2;
const CHECKPOINT_EVERY_MS = 250;

/** A worker thread running PASSIVE WAL checkpoints on its own connection. */
function startCheckpointer(file: string): Worker | null {
  try {
    const modulePath = createRequire(import.meta.url).resolve('better-sqlite3');
    const w = new Worker(
      `const { workerData } = require('node:worker_threads');
       const Database = require(workerData.modulePath);
       const db = new Database(workerData.file);
       db.pragma('busy_timeout = 2000');
       setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, workerData.every);`,
      { eval: true, workerData: { modulePath, file, every: CHECKPOINT_EVERY_MS }, execArgv: [] },
    );
    w.unref();
    w.on('error', () => {});
    return w;
  } catch {
    return null;
  }
}

/** Object rows kept by getObject's cache (~300–400 B each in the heap, so ~20 MB at most); the cache starts over when full. */
const ROW_CACHE_ENTRIES = 50_000;
/** Container / account metadata records kept in memory (the map is emptied when full). */
const META_CACHE_MAX = 10_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  name TEXT PRIMARY KEY,
  hash BLOB NOT NULL,
  ts TEXT NOT NULL,
  put_ts TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  user_meta TEXT NOT NULL DEFAULT '{}',
  sys_meta TEXT NOT NULL DEFAULT '{}',
  container_count INTEGER NOT NULL DEFAULT 0,
  object_count INTEGER NOT NULL DEFAULT 0,
  bytes_used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS accounts_hash ON accounts(hash);
CREATE TABLE IF NOT EXISTS containers (
  id INTEGER PRIMARY KEY,
  account TEXT NOT NULL,
  name TEXT NOT NULL,
  hash BLOB NOT NULL,
  ts TEXT NOT NULL,
  put_ts TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  user_meta TEXT NOT NULL DEFAULT '{}',
  sys_meta TEXT NOT NULL DEFAULT '{}',
  object_count INTEGER NOT NULL DEFAULT 0,
  bytes_used INTEGER NOT NULL DEFAULT 0,
  UNIQUE (account, name)
);
CREATE INDEX IF NOT EXISTS containers_hash ON containers(hash);
CREATE TABLE IF NOT EXISTS objects (
  cid INTEGER NOT NULL,
  name TEXT NOT NULL,
  hash BLOB NOT NULL,
  ts TEXT NOT NULL,
  meta_ts TEXT,
  deleted INTEGER NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  content_type TEXT NOT NULL,
  delete_at INTEGER,
  PRIMARY KEY (cid, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_hash ON objects(hash);
CREATE INDEX IF NOT EXISTS objects_delete_at ON objects(delete_at) WHERE delete_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS objects_tombstones ON objects(ts) WHERE deleted = 1;
`;

function parseMeta(user: string, sys: string): MetaMaps {
  return { user: JSON.parse(user) as Record<string, string>, sys: JSON.parse(sys) as Record<string, string> };
}

function toContainer(r: RawContainer): ContainerRow {
  return {
    id: r.id,
    account: r.account,
    name: r.name,
    ts: r.ts,
    putTs: r.put_ts,
    deleted: r.deleted !== 0,
    meta: parseMeta(r.user_meta, r.sys_meta),
    objectCount: r.object_count,
    bytesUsed: r.bytes_used,
  };
}

/** Metadata shared by cache readers: frozen, so that no caller can change what the next one reads. */
function frozenMeta(r: { user_meta: string; sys_meta: string }): MetaMaps {
  const m = parseMeta(r.user_meta, r.sys_meta);
  Object.freeze(m.user);
  Object.freeze(m.sys);
  return Object.freeze(m);
}

/** The entry for `key`, read with `load` (null: no row) on a miss; the map starts over at META_CACHE_MAX entries. */
function metaCached<V>(map: Map<string, V | null>, key: string, load: () => V | null): V | null {
  let m = map.get(key);
  if (m === undefined) {
    m = load();
    if (map.size >= META_CACHE_MAX) map.clear();
    map.set(key, m);
  }
  return m;
}

function toAccount(r: RawAccount): AccountRow {
  return {
    name: r.name,
    ts: r.ts,
    putTs: r.put_ts,
    deleted: r.deleted !== 0,
    meta: parseMeta(r.user_meta, r.sys_meta),
    containerCount: r.container_count,
    objectCount: r.object_count,
    bytesUsed: r.bytes_used,
  };
}

interface Waiter {
  u: ObjectUpdate;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class IndexDb {
  private readonly db: Database.Database;
  private queue: Waiter[] = [];
  private scheduled: { immediate: NodeJS.Immediate } | { timer: NodeJS.Timeout } | null = null;
  private lastFlush = 0;
  private readonly checkpointer: Worker | null;
  private readonly cidAccount = new Map<number, string>();
  /** `account/container` → id of the live container (or null: missing/deleted). */
  private readonly cidCache = new Map<string, number | null>();
  /**
   * Container and account records without their stats, by `account/name`
   * and by account (null: no row). Every write of a container or account
   * record goes through applyContainer / applyAccount / ensureAccount, which
   * drop the entry; the stats columns, updated with every object batch, are
   * not in it.
   */
  private readonly containerMetaCache = new Map<string, ContainerMetaRow | null>();
  private readonly accountMetaCache = new Map<string, AccountMetaRow | null>();
  private readonly listStmts = new Map<string, Statement>();
  /**
   * `cid/name` → the object's row as last read (null: no row). Every write to
   * the objects table goes through applyBatch (which drops the rows it
   * touches, even on a rollback) or reclaim (which drops them all), so an
   * entry is never older than the table.
   */
  private readonly rows = new Map<string, Readonly<ObjectIndexRow> | null>();
  private readonly s: Record<string, Statement>;
  private readonly applyBatchTx: (batch: ObjectUpdate[]) => void;
  private closed = false;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a process crash; a power cut may lose the
    // newest transactions, which the replicator's reconciliation restores.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('cache_size = -65536');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    // Checkpoints (which fsync) run on a second connection in a worker thread,
    // off the event loop; the main connection only checkpoints as a safety net.
    this.checkpointer = file === ':memory:' ? null : startCheckpointer(file);
    if (this.checkpointer) this.db.pragma('wal_autocheckpoint = 20000');
    const db = this.db;
    this.s = {
      getObj: db.prepare('SELECT name, ts, meta_ts, deleted, size, etag, content_type, delete_at FROM objects WHERE cid = ? AND name = ?'),
      putObj: db.prepare(
        `INSERT INTO objects (cid, name, hash, ts, meta_ts, deleted, size, etag, content_type, delete_at) VALUES (?, ?, ?, ?, NULL, 0, ?, ?, ?, ?)
         ON CONFLICT (cid, name) DO UPDATE SET hash = excluded.hash, ts = excluded.ts, meta_ts = NULL, deleted = 0, size = excluded.size,
           etag = excluded.etag, content_type = excluded.content_type, delete_at = excluded.delete_at`,
      ),
      delObj: db.prepare(
        `INSERT INTO objects (cid, name, hash, ts, meta_ts, deleted, size, etag, content_type, delete_at) VALUES (?, ?, ?, ?, NULL, 1, 0, '', '', NULL)
         ON CONFLICT (cid, name) DO UPDATE SET ts = excluded.ts, meta_ts = NULL, deleted = 1, size = 0, etag = '', content_type = '', delete_at = NULL`,
      ),
      postObj: db.prepare('UPDATE objects SET meta_ts = ?, content_type = coalesce(?, content_type), delete_at = CASE WHEN ? THEN ? ELSE delete_at END WHERE cid = ? AND name = ?'),
      addContainerStats: db.prepare('UPDATE containers SET object_count = object_count + ?, bytes_used = bytes_used + ? WHERE id = ?'),
      addAccountStats: db.prepare('UPDATE accounts SET object_count = object_count + ?, bytes_used = bytes_used + ? WHERE name = ?'),
      addAccountContainers: db.prepare('UPDATE accounts SET container_count = container_count + ?, object_count = object_count + ?, bytes_used = bytes_used + ? WHERE name = ?'),
      getContainer: db.prepare('SELECT * FROM containers WHERE account = ? AND name = ?'),
      getContainerId: db.prepare('SELECT id, deleted FROM containers WHERE account = ? AND name = ?'),
      getContainerById: db.prepare('SELECT * FROM containers WHERE id = ?'),
      insContainer: db.prepare(
        'INSERT INTO containers (account, name, hash, ts, put_ts, deleted, user_meta, sys_meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      updContainer: db.prepare('UPDATE containers SET ts = ?, put_ts = ?, deleted = ?, user_meta = ?, sys_meta = ? WHERE id = ?'),
      getAccount: db.prepare('SELECT * FROM accounts WHERE name = ?'),
      insAccount: db.prepare('INSERT INTO accounts (name, hash, ts, put_ts, deleted, user_meta, sys_meta) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      updAccount: db.prepare('UPDATE accounts SET ts = ?, put_ts = ?, deleted = ?, user_meta = ?, sys_meta = ? WHERE name = ?'),
      objByHash: db.prepare('SELECT cid, name, ts, meta_ts, deleted, size, etag, content_type, delete_at FROM objects WHERE hash = ?'),
      objStateFrom: db.prepare('SELECT hash, ts, meta_ts, deleted FROM objects WHERE hash >= ?'),
      objStateRange: db.prepare('SELECT hash, ts, meta_ts, deleted FROM objects WHERE hash >= ? AND hash < ?'),
      containerByHash: db.prepare('SELECT * FROM containers WHERE hash = ?'),
      accountByHash: db.prepare('SELECT * FROM accounts WHERE hash = ?'),
      expired: db.prepare(
        `SELECT c.account AS account, c.name AS container, o.name AS name, o.delete_at AS delete_at
         FROM objects o JOIN containers c ON c.id = o.cid WHERE o.delete_at <= ? AND o.deleted = 0 ORDER BY o.delete_at LIMIT ?`,
      ),
      reclaimObjects: db.prepare('DELETE FROM objects WHERE deleted = 1 AND ts < ?'),
      reclaimContainers: db.prepare(
        'DELETE FROM containers WHERE deleted = 1 AND ts < ? AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.cid = containers.id)',
      ),
      reclaimAccounts: db.prepare(
        'DELETE FROM accounts WHERE deleted = 1 AND ts < ? AND NOT EXISTS (SELECT 1 FROM containers c WHERE c.account = accounts.name)',
      ),
    };
    this.applyBatchTx = this.db.transaction((batch: ObjectUpdate[]) => this.applyBatch(batch));
  }

  // ------------------------------------------------------------ object rows

  /**
   * Queues a listing update; resolves once the batch holding it has
   * committed. Updates apply last-writer-wins by timestamp.
   */
  enqueue(u: ObjectUpdate): Promise<void> {
    if (this.closed) return Promise.reject(new Error('index closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ u, resolve, reject });
      if (this.scheduled) return;
      // Group commit: flush at the end of this event-loop turn, but under load
      // at most once per FLUSH_INTERVAL_MS so that batches grow.
      const wait = this.lastFlush + FLUSH_INTERVAL_MS - performance.now();
      this.scheduled = wait > 0 ? { timer: setTimeout(() => this.flushNow(), wait) } : { immediate: setImmediate(() => this.flushNow()) };
    });
  }

  /** Commits whatever is queued now. */
  flushNow(): void {
    if (this.scheduled) {
      if ('timer' in this.scheduled) clearTimeout(this.scheduled.timer);
      else clearImmediate(this.scheduled.immediate);
    }
    this.scheduled = null;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.lastFlush = performance.now();
    try {
      this.applyBatchTx(batch.map((w) => w.u));
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    for (const w of batch) w.resolve();
  }

  private accountOf(cid: number): string | undefined {
    let a = this.cidAccount.get(cid);
    if (a === undefined) {
      a = (this.s.getContainerById!.get(cid) as RawContainer | undefined)?.account;
      if (a !== undefined) this.cidAccount.set(cid, a);
    }
    return a;
  }

  private applyBatch(batch: ObjectUpdate[]): void {
    const deltas = new Map<number, { n: number; b: number }>();
    const add = (cid: number, n: number, b: number) => {
      const d = deltas.get(cid);
      if (d) {
        d.n += n;
        d.b += b;
      } else deltas.set(cid, { n, b });
    };
    for (const u of batch) {
      this.rows.delete(`${u.cid}/${u.name}`);
      const row = this.s.getObj!.get(u.cid, u.name) as RawObj | undefined;
      const live = row !== undefined && row.deleted === 0;
      if (u.op === 'post') {
        if (!live || row.ts >= u.ts || (row.meta_ts !== null && row.meta_ts >= u.ts)) continue;
        this.s.postObj!.run(u.ts, u.contentType ?? null, u.deleteAt !== undefined ? 1 : 0, u.deleteAt ?? null, u.cid, u.name);
        continue;
      }
      if (row && row.ts >= u.ts) continue;
      if (u.op === 'put') {
        this.s.putObj!.run(u.cid, u.name, u.hash, u.ts, u.size, u.etag, u.contentType, u.deleteAt);
        add(u.cid, live ? 0 : 1, u.size - (live ? row.size : 0));
      } else {
        this.s.delObj!.run(u.cid, u.name, u.hash, u.ts);
        if (live) add(u.cid, -1, -row.size);
      }
    }
    for (const [cid, d] of deltas) {
      if (d.n === 0 && d.b === 0) continue;
      this.s.addContainerStats!.run(d.n, d.b, cid);
      const account = this.accountOf(cid);
      if (account !== undefined) this.s.addAccountStats!.run(d.n, d.b, account);
    }
  }

  /** Listing rows whose files have this path hash (normally one). */
  objectsByHash(hash: Buffer): ObjectIndexRow[] {
    return (this.s.objByHash!.all(hash) as Array<RawObj & { cid: number }>).map(objectRow);
  }

  /**
   * The versions (timestamps and deleted flag) the rows of every object
   * whose hash is in `[lo, hi)` name (`hi` null: no upper bound), by hex
   * hash: one query for a whole ring partition, whose hashes are one such
   * range, instead of one per hash.
   */
  objectStatesByHashRange(lo: Buffer, hi: Buffer | null): Map<string, ObjectRowState[]> {
    const raw = (hi ? this.s.objStateRange!.all(lo, hi) : this.s.objStateFrom!.all(lo)) as Array<{ hash: Buffer; ts: string; meta_ts: string | null; deleted: number }>;
    const out = new Map<string, ObjectRowState[]>();
    for (const r of raw) {
      const h = r.hash.toString('hex');
      const st = { ts: r.ts, metaTs: r.meta_ts, deleted: r.deleted !== 0 };
      const list = out.get(h);
      if (list) list.push(st);
      else out.set(h, [st]);
    }
    return out;
  }

  /**
   * One object's listing row (live or tombstone), frozen. Rows are cached
   * (see `rows`): a hot GET then costs no SQLite read transaction, which is
   * the largest share of a cached small GET's CPU after the socket write.
   */
  getObject(cid: number, name: string): Readonly<ObjectIndexRow> | undefined {
    const key = `${cid}/${name}`;
    const hit = this.rows.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const r = this.s.getObj!.get(cid, name) as RawObj | undefined;
    const row = r ? Object.freeze({ cid, name: r.name, ts: r.ts, metaTs: r.meta_ts, deleted: r.deleted !== 0, size: r.size, etag: r.etag, contentType: r.content_type, deleteAt: r.delete_at }) : null;
    if (this.rows.size >= ROW_CACHE_ENTRIES) this.rows.clear();
    this.rows.set(key, row);
    return row ?? undefined;
  }

  /** Objects whose X-Delete-At has passed. */
  expired(nowSeconds: number, limit: number): Array<{ account: string; container: string; name: string; deleteAt: number }> {
    return (this.s.expired!.all(nowSeconds, limit) as Array<{ account: string; container: string; name: string; delete_at: number }>).map((r) => ({
      account: r.account,
      container: r.container,
      name: r.name,
      deleteAt: r.delete_at,
    }));
  }

  /** Drops tombstone rows older than `before`. */
  reclaim(before: Timestamp): number {
    this.rows.clear();
    return this.db.transaction(() => {
      let n = this.s.reclaimObjects!.run(before).changes;
      n += this.s.reclaimContainers!.run(before).changes;
      n += this.s.reclaimAccounts!.run(before).changes;
      return n;
    })();
  }

  // ------------------------------------------------------------ containers

  /** Id of a live container, or undefined (cached; every change goes through this class). */
  liveContainerId(account: string, name: string): number | undefined {
    const key = `${account}/${name}`;
    let id = this.cidCache.get(key);
    if (id === undefined) {
      const r = this.s.getContainerId!.get(account, name) as { id: number; deleted: number } | undefined;
      id = r && r.deleted === 0 ? r.id : null;
      if (this.cidCache.size > 100_000) this.cidCache.clear();
      this.cidCache.set(key, id);
    }
    return id ?? undefined;
  }

  /**
   * A container's record without its stats, from memory after the first
   * read: the object write path asks for it (ACLs, quotas, versioning) on
   * every PUT, and a read of the SQLite row under a stream of writes cost
   * more than the rest of the check. The returned row is frozen.
   */
  containerMeta(account: string, name: string): ContainerMetaRow | undefined {
    const m = metaCached(this.containerMetaCache, `${account}/${name}`, () => {
      const r = this.s.getContainer!.get(account, name) as RawContainer | undefined;
      return r ? Object.freeze({ id: r.id, account: r.account, name: r.name, ts: r.ts, putTs: r.put_ts, deleted: r.deleted !== 0, meta: frozenMeta(r) }) : null;
    });
    return m ?? undefined;
  }

  /** An account's record without its stats (see containerMeta). */
  accountMeta(name: string): AccountMetaRow | undefined {
    const m = metaCached(this.accountMetaCache, name, () => {
      const r = this.s.getAccount!.get(name) as RawAccount | undefined;
      return r ? Object.freeze({ name: r.name, ts: r.ts, putTs: r.put_ts, deleted: r.deleted !== 0, meta: frozenMeta(r) }) : null;
    });
    return m ?? undefined;
  }

  getContainer(account: string, name: string): ContainerRow | undefined {
    const r = this.s.getContainer!.get(account, name) as RawContainer | undefined;
    return r && toContainer(r);
  }

  containersByHash(hash: Buffer): ContainerRow[] {
    return (this.s.containerByHash!.all(hash) as RawContainer[]).map(toContainer);
  }

  /**
   * Applies a container record or tombstone (last writer wins). Creates the
   * account row if needed. Returns whether the row changed, and whether the
   * container came to life with it.
   */
  applyContainer(rec: ContainerRecord | (TombstoneRecord & { container: string }), hash: Buffer, accountHash: Buffer): { changed: boolean; created: boolean } {
    this.cidCache.delete(`${rec.account}/${rec.container}`);
    this.containerMetaCache.delete(`${rec.account}/${rec.container}`);
    return this.db.transaction(() => {
      const row = this.s.getContainer!.get(rec.account, rec.container) as RawContainer | undefined;
      if (row && row.ts >= rec.timestamp) return { changed: false, created: false };
      const alive = rec.kind === 'container';
      const user = alive ? JSON.stringify(rec.userMeta) : '{}';
      const sys = alive ? JSON.stringify(rec.sysMeta) : '{}';
      const putTs = alive ? rec.putTimestamp : (row?.put_ts ?? rec.timestamp);
      if (alive) this.ensureAccount(rec.account, accountHash, rec.timestamp);
      if (!row) {
        this.s.insContainer!.run(rec.account, rec.container, hash, rec.timestamp, putTs, alive ? 0 : 1, user, sys);
        if (alive) this.s.addAccountContainers!.run(1, 0, 0, rec.account);
        return { changed: true, created: alive };
      }
      const wasAlive = row.deleted === 0;
      this.s.updContainer!.run(rec.timestamp, putTs, alive ? 0 : 1, user, sys, row.id);
      if (alive && !wasAlive) this.s.addAccountContainers!.run(1, 0, 0, rec.account);
      if (!alive && wasAlive) {
        // A deleted container leaves the account's totals (it should be empty).
        this.s.addAccountContainers!.run(-1, -row.object_count, -row.bytes_used, rec.account);
        this.s.addContainerStats!.run(-row.object_count, -row.bytes_used, row.id);
      }
      return { changed: true, created: alive && !wasAlive };
    })();
  }

  // ------------------------------------------------------------ accounts

  getAccount(name: string): AccountRow | undefined {
    const r = this.s.getAccount!.get(name) as RawAccount | undefined;
    return r && toAccount(r);
  }

  accountsByHash(hash: Buffer): AccountRow[] {
    return (this.s.accountByHash!.all(hash) as RawAccount[]).map(toAccount);
  }

  private ensureAccount(name: string, hash: Buffer, ts: Timestamp): void {
    this.accountMetaCache.delete(name);
    const row = this.s.getAccount!.get(name) as RawAccount | undefined;
    if (!row) this.s.insAccount!.run(name, hash, ts, ts, 0, '{}', '{}');
    else if (row.deleted) this.s.updAccount!.run(ts > row.ts ? ts : row.ts, ts, 0, '{}', '{}', name);
  }

  /** Applies an account record or tombstone (last writer wins). */
  applyAccount(rec: AccountRecord | TombstoneRecord, hash: Buffer): { changed: boolean; created: boolean } {
    this.accountMetaCache.delete(rec.account);
    return this.db.transaction(() => {
      const row = this.s.getAccount!.get(rec.account) as RawAccount | undefined;
      if (row && row.ts >= rec.timestamp) return { changed: false, created: false };
      const alive = rec.kind === 'account';
      const user = alive ? JSON.stringify(rec.userMeta) : '{}';
      const sys = alive ? JSON.stringify(rec.sysMeta) : '{}';
      const putTs = alive ? rec.putTimestamp : (row?.put_ts ?? rec.timestamp);
      if (!row) {
        this.s.insAccount!.run(rec.account, hash, rec.timestamp, putTs, alive ? 0 : 1, user, sys);
        return { changed: true, created: alive };
      }
      this.s.updAccount!.run(rec.timestamp, putTs, alive ? 0 : 1, user, sys, rec.account);
      return { changed: true, created: alive && row.deleted !== 0 };
    })();
  }

  // ------------------------------------------------------------ listings

  private listStmt(table: 'objects' | 'containers', conds: string[], reverse: boolean): Statement {
    const key = `${table}|${conds.join(',')}|${reverse ? 'd' : 'a'}`;
    let st = this.listStmts.get(key);
    if (!st) {
      const cols =
        table === 'objects'
          ? 'name, ts, size, etag, content_type'
          : 'name, put_ts, object_count, bytes_used';
      const scope = table === 'objects' ? 'cid = ?' : 'account = ?';
      const where = [scope, 'deleted = 0', ...conds.map((c) => `name ${c} ?`)].join(' AND ');
      st = this.db.prepare(`SELECT ${cols} FROM ${table} WHERE ${where} ORDER BY name ${reverse ? 'DESC' : 'ASC'} LIMIT ?`);
      this.listStmts.set(key, st);
    }
    return st;
  }

  /**
   * Swift listing semantics over names: `prefix`, `delimiter` (names sharing
   * `prefix…delimiter` roll up into one `subdir` entry), `marker` (after it),
   * `endMarker` (before it), `limit`, `reverse` (descending; `marker` and
   * `endMarker` keep their meaning relative to the listing order).
   */
  private list<T>(table: 'objects' | 'containers', scope: number | string, opts: ListOptions, map: (r: Record<string, unknown>) => T): Array<T | SubdirEntry> {
    const limit = opts.limit ?? LISTING_LIMIT;
    const prefix = opts.prefix ?? '';
    const delimiter = opts.delimiter || undefined;
    const reverse = opts.reverse === true;
    const out: Array<T | SubdirEntry> = [];
    if (limit <= 0) return out;
    // Bounds: [lowIncl, lowExcl) below, (highExcl, highIncl] above.
    let lowExcl = reverse ? opts.endMarker : opts.marker;
    let highExcl = reverse ? opts.marker : opts.endMarker;
    const lowIncl = prefix || undefined;
    const highIncl = prefix ? prefix + MAX_TAIL : undefined;
    for (;;) {
      const conds: string[] = [];
      const args: unknown[] = [scope];
      if (lowExcl !== undefined && lowExcl !== '') (conds.push('>'), args.push(lowExcl));
      if (lowIncl !== undefined) (conds.push('>='), args.push(lowIncl));
      if (highExcl !== undefined && highExcl !== '') (conds.push('<'), args.push(highExcl));
      if (highIncl !== undefined) (conds.push('<='), args.push(highIncl));
      const want = limit - out.length;
      args.push(want);
      const rows = this.listStmt(table, conds, reverse).all(...args) as Array<Record<string, unknown> & { name: string }>;
      let requery = false;
      for (const r of rows) {
        if (delimiter) {
          const i = r.name.indexOf(delimiter, prefix.length);
          if (i >= 0) {
            const sub = r.name.slice(0, i + delimiter.length);
            if (sub !== opts.marker) out.push({ subdir: sub });
            if (reverse) highExcl = sub;
            else lowExcl = sub + MAX_TAIL;
            requery = true;
            break;
          }
        }
        out.push(map(r));
        if (reverse) highExcl = r.name;
        else lowExcl = r.name;
      }
      if (out.length >= limit) break;
      if (!requery && rows.length < want) break;
    }
    return out;
  }

  listObjects(cid: number, opts: ListOptions): Array<ObjectEntry | SubdirEntry> {
    return this.list(this.checkList('objects', opts), cid, opts, (r) => ({
      name: r.name as string,
      etag: r.etag as string,
      size: r.size as number,
      contentType: r.content_type as string,
      timestamp: r.ts as string,
      lastModified: timestampToIso(r.ts as string),
    }));
  }

  listContainers(account: string, opts: ListOptions): Array<ContainerEntry | SubdirEntry> {
    return this.list(this.checkList('containers', opts), account, opts, (r) => ({
      name: r.name as string,
      objectCount: r.object_count as number,
      bytesUsed: r.bytes_used as number,
      timestamp: r.put_ts as string,
      lastModified: timestampToIso(r.put_ts as string),
    }));
  }

  private checkList<T extends 'objects' | 'containers'>(table: T, opts: ListOptions): T {
    if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 0)) throw new RangeError('limit must be a non-negative integer');
    return table;
  }

  // ------------------------------------------------------------ lifecycle

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  checkpoint(): void {
    this.db.pragma('wal_checkpoint(PASSIVE)');
  }

  close(): void {
    if (this.closed) return;
    this.flushNow();
    this.closed = true;
    if (this.checkpointer) void this.checkpointer.terminate();
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      /* best effort */
    }
    this.db.close();
  }
}
