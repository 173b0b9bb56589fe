/**
 * Heap the object storage engine keeps per small object: after N 4 KiB
 * PUTs, then after deleting them all (heap after full collections, the
 * small-object cache off). The pack logs keep an in-memory index entry per
 * record version and replica, tombstones included until the reclaim age,
 * so this is what bounds how many small objects one server can hold.
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
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
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
  const before = heap();
  await inBatches((name) => store.putObject('AUTH_heap', 'c', name, body));
  const held = heap();
  await inBatches((name) => store.deleteObject('AUTH_heap', 'c', name));
  const deleted = heap();
  const entries = [...store.disk.packs.values()].reduce((a, p) => a + p.entryCount, 0);
  console.log(`${n} objects of 4 KiB, 3 replicas: heap +${((held - before) / n).toFixed(0)} B per object held`);
  console.log(`after deleting them: heap +${((deleted - before) / n).toFixed(0)} B per object deleted (${entries} pack index entries: the tombstones)`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
