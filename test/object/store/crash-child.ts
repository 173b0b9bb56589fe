/**
 * Child process for crash.test.ts: uploads objects forever, printing
 * `ACK <name> <md5> <size> <timestamp>` once each putObject has resolved.
 * The parent kills it with SIGKILL at some point.
 *
 *   node --import tsx crash-child.ts <root> <round> [packMaxBytes]
 *
 * With packMaxBytes > 0 the small uploads go to the pack logs.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectStore } from '../../../src/object/store/index.js';

const [root, round, pack] = process.argv.slice(2) as [string, string, string | undefined];
const store = await ObjectStore.open({ root, partPower: 6, packMaxBytes: Number(pack ?? 0) });
await store.putContainer('AUTH_crash', 'c');

function content(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed || 1;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A body that trickles out in 64 KiB chunks, so a kill lands mid-stream. */
function trickle(b: Buffer): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (off >= b.length) return void this.push(null);
      const c = b.subarray(off, off + 65536);
      off += c.length;
      setTimeout(() => this.push(c), 1);
    },
  });
}

let i = 0;
async function worker(w: number) {
  for (;;) {
    const n = i++;
    // Every 5th upload overwrites an earlier name of this round.
    const name = n % 5 === 4 ? `r${round}-obj-${n - 4}` : `r${round}-obj-${n}`;
    const big = n % 3 === 0;
    const size = big ? 200_000 + ((n * 7919) % 1_500_000) : 1 + ((n * 131) % 20_000);
    const data = content(size, n * 31 + w + Number(round) * 100_000);
    const r = await store.putObject('AUTH_crash', 'c', name, big ? trickle(data) : data);
    const md5 = createHash('md5').update(data).digest('hex');
    if (r.etag !== md5) throw new Error('etag mismatch in child');
    process.stdout.write(`ACK ${name} ${md5} ${size} ${r.timestamp}\n`);
  }
}
await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
