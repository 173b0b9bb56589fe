/**
 * What one replicator pass costs, per hash, on the engine alone: N 4 KiB
 * objects (packed, 3 replicas), then the same after deleting them all (their
 * tombstones stay until the reclaim age, so they are walked too). The cloud
 * runs a pass every 5 minutes, so this CPU is taken from requests on a busy
 * server, at random moments. Figures only.
 *
 *   npx tsx bench/object/replicator-pass.ts [objects 20000]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ObjectStore } from '../../src/object/store/index.js';

const n = Number(process.argv[2] ?? 20000);
const dir = mkdtempSync(join('/var/tmp', 'stratus-repl-'));
const store = await ObjectStore.open({ root: join(dir, 'store'), packMaxBytes: 64 * 1024, smallObjectCacheBytes: 0 });
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const inBatches = async (op: (name: string) => Promise<unknown>) => {
  for (let i = 0; i < n; i += 64) await Promise.all(Array.from({ length: Math.min(64, n - i) }, (_, j) => op(`o-${i + j}`)));
  await store.drain();
};
const passes = async (what: string) => {
  for (let i = 0; i < 2; i++) {
    const c = cpuMs();
    const st = await store.replicator.runOnce();
    const cpu = cpuMs() - c;
    console.log(`${what}, pass ${i + 1}: ${st.durationMs} ms wall, ${cpu.toFixed(0)} ms CPU for ${st.hashes} hashes (${((cpu * 1000) / st.hashes).toFixed(0)} µs each); copied ${st.copied}, removed ${st.removed}, reconciled ${st.reconciled}`);
  }
};
try {
  await store.putContainer('AUTH_r', 'c');
  const body = randomBytes(4096);
  await inBatches((name) => store.putObject('AUTH_r', 'c', name, body));
  await passes(`${n} objects`);
  await inBatches((name) => store.deleteObject('AUTH_r', 'c', name));
  await passes(`${n} tombstones`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
