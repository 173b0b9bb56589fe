import type { ObjectMeta } from './store.js';

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
  private readonly map = new Map<string, { meta: ObjectMeta; data: Buffer }>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  /** `capacity` bytes in all; entries larger than `maxEntry` are never kept. */
  constructor(
    readonly capacity: number,
    readonly maxEntry: number,
  ) {}

  static key(hash: string, ts: string, metaTs: string | null): string {
    return metaTs === null ? `${hash}/${ts}` : `${hash}/${ts}/${metaTs}`;
  }

  get(key: string): { meta: ObjectMeta; data: Buffer } | undefined {
    const e = this.map.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Refresh its place in the LRU order.
    this.map.delete(key);
    this.map.set(key, e);
    return e;
  }

  set(key: string, meta: ObjectMeta, data: Buffer): void {
    if (this.capacity <= 0 || data.length > this.maxEntry) return;
    const cost = data.length + 512;
    const old = this.map.get(key);
    if (old) {
      this.map.delete(key);
      this.bytes -= old.data.length + 512;
    }
    this.map.set(key, { meta, data });
    this.bytes += cost;
    while (this.bytes > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      const e = this.map.get(oldest.value)!;
      this.map.delete(oldest.value);
      this.bytes -= e.data.length + 512;
    }
  }

  delete(key: string): void {
    const e = this.map.get(key);
    if (!e) return;
    this.map.delete(key);
    this.bytes -= e.data.length + 512;
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  get size(): number {
    return this.map.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }
}
