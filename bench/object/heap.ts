/**
 * Memory the object storage engine keeps per small object: after N 4 KiB
 * PUTs, then after deleting them all (after full collections, the
 * small-object cache off). The pack logs keep an index entry per record
 * version and replica, tombstones included until the reclaim age, in typed
 * arrays (off the JS heap, counted as array buffers), so this is what bounds
 * how many small objects one server can hold. The JS heap figure also holds
 * ring.locate()'s memo of recent placements, which is bounded (1 Mi path
 * characters) and so stops growing past some tens of thousands of names.
 * Figures only.
 *
 *   node --expose-gc --import tsx bench/object/heap.ts [objects 20000]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ObjectStore } from '../../src/object/store/index.js';

const n = Number(process.argv[2] ?? 20000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const mem = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, off: m.arrayBuffers };
};
const dir = mkdtempSync(join('/var/tmp', 'stratus-heap-'));
const store = await ObjectStore.open({ root: join(dir, 'store'), packMaxBytes: 64 * 1024, smallObjectCacheBytes: 0 });
const inBatches = async (op: (name: string) => Promise<unknown>) => {
  for (let i = 0; i < n; i += 64) await Promise.all(Array.from({ length: Math.min(64, n - i) }, (_, j) => op(`o-${i + j}`)));
  await store.drain();
  await store.replicator.runOnce(); // third replicas written, obsolete versions killed
};
try {
  await store.putContainer('AUTH_heap', 'c');
  const body = randomBytes(4096);
  const before = mem();
  await inBatches((name) => store.putObject('AUTH_heap', 'c', name, body));
  const held = mem();
  await inBatches((name) => store.deleteObject('AUTH_heap', 'c', name));
  const deleted = mem();
  const packs = [...store.disk.packs.values()];
  const entries = packs.reduce((a, p) => a + p.entryCount, 0);
  const indexBytes = packs.reduce((a, p) => a + p.index.bytes, 0);
  const per = (m: { heap: number; off: number }) => `JS heap +${((m.heap - before.heap) / n).toFixed(0)} B, array buffers +${((m.off - before.off) / n).toFixed(0)} B`;
  console.log(`${n} objects of 4 KiB, 3 replicas, per object held: ${per(held)}`);
  console.log(`after deleting them, per object deleted: ${per(deleted)} (${entries} pack index entries: the tombstones)`);
  console.log(`pack indexes' typed arrays: ${(indexBytes / 2 ** 20).toFixed(1)} MiB for ${entries} entries (${(indexBytes / Math.max(1, entries)).toFixed(0)} B each, growth headroom included)`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
