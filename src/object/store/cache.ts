import { LRUCache } from 'lru-cache';
import type { ObjectMeta } from './store.js';

/** What an entry costs beyond its bytes (key, metadata, bookkeeping), roughly. */
const ENTRY_OVERHEAD = 512;

/**
 * A bounded, least-recently-used cache of small objects' verified bytes and
 * metadata, keyed by the version the listing index names (object hash,
 * timestamp of the data, timestamp of the last metadata POST). A version file
 * never changes once written, so an entry can never be stale: an overwrite, a
 * delete or a POST changes the index row and with it the key, and the old
 * entry simply ages out. It spares a hot small GET the open/read/close of a
 * replica (three trips through libuv's thread pool) — the same bytes the page
 * cache would hand back, without the system calls.
 */
export class SmallObjectCache {
  // lru-cache keeps its recency list in typed arrays: O(1) get, set and
  // eviction (a Map used as an LRU pays for the holes that deletes leave at
  // its front on every eviction — ~6 µs a set here once full).
  private readonly lru: LRUCache<string, { meta: ObjectMeta; data: Buffer }> | null;
  hits = 0;
  misses = 0;

  /** `capacity` bytes in all; entries larger than `maxEntry` are never kept. */
  constructor(
    readonly capacity: number,
    readonly maxEntry: number,
  ) {
    this.lru = capacity > 0 ? new LRUCache({ maxSize: capacity, sizeCalculation: (e) => e.data.length + ENTRY_OVERHEAD }) : null;
  }

  static key(hash: string, ts: string, metaTs: string | null): string {
    return metaTs === null ? `${hash}/${ts}` : `${hash}/${ts}/${metaTs}`;
  }

  get(key: string): { meta: ObjectMeta; data: Buffer } | undefined {
    const e = this.lru?.get(key);
    if (e) this.hits++;
    else this.misses++;
    return e;
  }

  set(key: string, meta: ObjectMeta, data: Buffer): void {
    if (!this.lru || data.length > this.maxEntry) return;
    this.lru.set(key, { meta, data });
  }

  delete(key: string): void {
    this.lru?.delete(key);
  }

  clear(): void {
    this.lru?.clear();
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  get usedBytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }
}
