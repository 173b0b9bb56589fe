/**
 * Object storage engine benchmark (figures only, no assertions).
 *
 *   npx tsx bench/object/engine-bench.ts [--dir /tmp] [--small-ops 4000] [--big-mib 256] [--no-pack]
 *
 * Prints 4 KiB PUT and GET ops/s with p50/p99 latency at concurrency 1 and
 * 32 (three replicas, every replica fsynced, listing updated before the PUT
 * resolves), then a large object's PUT/GET MB/s beside a raw `cp` and a raw
 * read of the same file. The store lives in a fresh directory under --dir.
 * Run it with UV_THREADPOOL_SIZE=16 in the environment to see the setting
 * recommended for the server (src/object/store/README.md).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ObjectStore } from '../../src/object/store/index.js';
import { runOps } from './load.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const baseDir = arg('dir', tmpdir());
const smallOps = Number(arg('small-ops', '4000'));
const bigMiB = Number(arg('big-mib', '256'));
/** Small records go to the pack logs (as in the cloud) unless --no-pack. */
const packMaxBytes = args.includes('--no-pack') ? 0 : 64 * 1024;

const fmt = (n: number, d = 0) => n.toFixed(d).padStart(8);

const nullSink = () =>
  new Writable({
    highWaterMark: 1 << 20,
    write(_c, _e, cb) {
      cb();
    },
  });

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function main() {
  const dir = mkdtempSync(join(baseDir, 'stratus-objbench-'));
  const root = join(dir, 'store');
  console.log(`# object engine bench: store at ${root}, node ${process.version}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, packs ${packMaxBytes ? 'on' : 'off'}`);
  const store = await ObjectStore.open({ root, packMaxBytes });
  try {
    await store.putContainer('AUTH_bench', 'small');
    await store.putContainer('AUTH_bench', 'big');
    const body = randomBytes(4096);

    console.log('\n4 KiB objects (3 replicas, fsync file + dir on each, quorum 2, listing committed)');
    console.log('  op    conc      ops/s   p50 ms   p99 ms  CPU µs/op (all threads)');
    for (const conc of [1, 32]) {
      const n = conc === 1 ? Math.min(smallOps, 500) : smallOps;
      const put = await runOps(n, conc, async (i) => {
        await store.putObject('AUTH_bench', 'small', `c${conc}/obj-${i}`, body, { contentType: 'application/octet-stream' });
      });
      console.log(`  PUT ${fmt(conc)} ${fmt(put.opsPerSec)} ${fmt(put.p50ms, 2)} ${fmt(put.p99ms, 2)} ${fmt(put.cpuUsPerOp)}`);
    }
    for (const conc of [1, 32]) {
      const n = conc === 1 ? Math.min(smallOps * 2, 2000) : smallOps * 4;
      const get = await runOps(n, conc, async (i) => {
        const r = await store.getObject('AUTH_bench', 'small', `c32/obj-${i % smallOps}`);
        if (r.length !== 4096) throw new Error('short read');
      });
      console.log(`  GET ${fmt(conc)} ${fmt(get.opsPerSec)} ${fmt(get.p50ms, 2)} ${fmt(get.p99ms, 2)} ${fmt(get.cpuUsPerOp)}`);
    }
    const head = await runOps(smallOps, 32, async (i) => {
      await store.headObject('AUTH_bench', 'small', `c32/obj-${i % smallOps}`);
    });
    console.log(`  HEAD${fmt(32)} ${fmt(head.opsPerSec)} ${fmt(head.p50ms, 2)} ${fmt(head.p99ms, 2)} ${fmt(head.cpuUsPerOp)}`);
    const t = await timeIt(() => store.listContainer('AUTH_bench', 'small', { prefix: 'c32/', limit: 1000 }));
    console.log(`  listing of 1000 names: ${(t * 1000).toFixed(1)} ms`);
    await store.replicator.runOnce(); // let third replicas and cleanups settle

    // ---------------------------------------------------------------- large object
    if (bigMiB <= 0) return;
    const mib = bigMiB;
    const bytes = mib * 1024 * 1024;
    const src = join(dir, 'source.bin');
    {
      const fh = await open(src, 'w');
      const chunk = randomBytes(1 << 20);
      for (let i = 0; i < mib; i++) await fh.write(chunk);
      await fh.sync();
      await fh.close();
    }
    console.log(`\n${mib} MiB object (MB/s, MiB = 2^20 bytes)`);
    const cpSecs = await timeIt(async () => {
      execFileSync('cp', [src, join(dir, 'copy.bin')]);
    });
    const cpSyncSecs = await timeIt(async () => {
      execFileSync('cp', [src, join(dir, 'copy2.bin')]);
      const fh = await open(join(dir, 'copy2.bin'), 'r+');
      await fh.sync();
      await fh.close();
    });
    const putSecs = await timeIt(() => store.putObject('AUTH_bench', 'big', 'blob', createReadStream(src, { highWaterMark: 1 << 20 })));
    console.log(`  raw cp (1 copy, no fsync)          ${fmt(mib / cpSecs)}`);
    console.log(`  raw cp + fsync (1 copy)            ${fmt(mib / cpSyncSecs)}`);
    console.log(`  PUT (3 replicas, fsync, MD5+CRC)   ${fmt(mib / putSecs)}`);

    await store.drain(); // the third replica finishes after the PUT resolved
    // The replica file the store reads from (the first primary).
    const place = store.ring.locate('AUTH_bench', 'big', 'blob');
    const hd = join(place.devices[0]!.path, 'objects', String(place.partition), place.hash);
    const replicaFile = join(hd, readdirSync(hd).find((f) => f.endsWith('.data'))!);
    if (statSync(replicaFile).size < bytes) throw new Error('replica file too small');
    // Let writeback of the PUT settle so that it does not skew the reads.
    execFileSync('sync');
    await new Promise((r) => setTimeout(r, 2000));
    const rounds: Array<{ raw: number; raw1m: number; get: number }> = [];
    for (let round = 1; round <= 5; round++) {
      const rawSecs = await timeIt(() => pipeline(createReadStream(replicaFile, { end: bytes - 1 }), nullSink()));
      const raw1mSecs = await timeIt(() => pipeline(createReadStream(replicaFile, { end: bytes - 1, highWaterMark: 1 << 20 }), nullSink()));
      const getSecs = await timeIt(async () => {
        const r = await store.getObject('AUTH_bench', 'big', 'blob');
        await pipeline(r.stream, nullSink());
      });
      rounds.push({ raw: mib / rawSecs, raw1m: mib / raw1mSecs, get: mib / getSecs });
    }
    const med = (k: 'raw' | 'raw1m' | 'get') => rounds.map((r) => r[k]).sort((a, b) => a - b)[2]!;
    for (const [i, r] of rounds.entries()) {
      console.log(`  round ${i + 1}: raw read (64 KiB chunks) ${fmt(r.raw)} | raw read (1 MiB chunks) ${fmt(r.raw1m)} | GET (CRC-verified) ${fmt(r.get)}`);
    }
    console.log(
      `  median:  raw read (64 KiB chunks) ${fmt(med('raw'))} | raw read (1 MiB chunks) ${fmt(med('raw1m'))} | GET (CRC-verified) ${fmt(med('get'))}` +
        `  => GET = ${((med('get') / med('raw')) * 100).toFixed(0)}% / ${((med('get') / med('raw1m')) * 100).toFixed(0)}% of raw`,
    );
    const rangeSecs = await timeIt(async () => {
      for (let i = 0; i < 200; i++) {
        const start = Math.floor(Math.random() * (bytes - 65536));
        const r = await store.getObject('AUTH_bench', 'big', 'blob', { range: { start, end: start + 65535 } });
        await pipeline(r.stream, nullSink());
      }
    });
    console.log(`  64 KiB range GETs: ${fmt(200 / rangeSecs)} /s`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
