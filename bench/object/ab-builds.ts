/**
 * Two builds of Stratus side by side: one cloud each, running at once, the
 * same 4 KiB objects in each, then alternating wrk GET rounds at c=32 (the
 * order flips every round) and the main thread's CPU per request of each.
 * On this VM a build's CPU per request moves by 30 % from one round to the
 * next, so only many alternating rounds and the median of their pairwise
 * ratios tell two builds apart. Figures only.
 *
 *   git worktree add /tmp/old <rev> && ln -s "$PWD/node_modules" /tmp/old/ && (cd /tmp/old && npx tsc -p tsconfig.json)
 *   npm run build
 *   npx tsx bench/object/ab-builds.ts /tmp/old/dist/cli/main.js dist/cli/main.js [seconds 2] [rounds 20] [swift|s3]
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { objectAccess, startBenchCloud, type BenchCloud } from '../lib/cloud.js';
import { wrk } from '../lib/wrk.js';
import { parseProcStat, s3Api, swiftApi, type ObjectApi } from './load.js';

const [a, b] = [process.argv[2], process.argv[3]];
if (!a || !b) throw new Error('usage: ab-builds.ts <A cli/main.js> <B cli/main.js> [seconds] [rounds] [swift|s3]');
const secs = Number(process.argv[4] ?? 2);
const rounds = Number(process.argv[5] ?? 20);
const mode = process.argv[6] ?? 'swift';

/** A valid name for both APIs (S3 wants 3 characters or more). */
const BUCKET = 'ab-bench';

/** CPU time of a process's main thread (µs). */
const mainThreadCpuUs = (pid: number): number => parseProcStat(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')).cpuUs;

interface Side {
  label: string;
  cloud: BenchCloud;
  api: ObjectApi;
  requests: Array<{ method: string; path: string; headers: Record<string, string> }>;
}

const sides: Side[] = [];
try {
  for (const [label, main] of [['A', resolve(a)], ['B', resolve(b)]] as const) {
    const cloud = await startBenchCloud({ UV_THREADPOOL_SIZE: '16', STRATUS_BENCH_MAIN: main });
    const o = await objectAccess(cloud);
    const api = mode === 's3' ? s3Api('s3', cloud.s3Url, o.access, o.secret) : swiftApi('swift', o.storageUrl, o.token);
    sides.push({ label, cloud, api, requests: [] });
    await api.createBucket(BUCKET);
    const keys = Array.from({ length: 3000 }, (_, i) => `k-${i}`);
    const body = Buffer.alloc(4096, 'x');
    for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => api.put(BUCKET, k, body)));
    sides[sides.length - 1]!.requests = keys.map((k) => ({ method: 'GET', ...api.replayable('GET', BUCKET, k) }));
    await wrk({ url: api.origin, connections: 32, threads: 1, seconds: 2, requests: sides[sides.length - 1]!.requests }); // warm
  }
  const res: Record<string, Array<{ rps: number; us: number }>> = { A: [], B: [] };
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 ? [...sides].reverse() : sides) {
      const c0 = mainThreadCpuUs(s.cloud.proc.pid!);
      const g = await wrk({ url: s.api.origin, connections: 32, threads: 1, seconds: secs, requests: s.requests });
      res[s.label]!.push({ rps: g.rps, us: (mainThreadCpuUs(s.cloud.proc.pid!) - c0) / g.requests });
      if (g.non2xx) console.log(`${s.label}: ${g.non2xx} responses not 2xx`);
    }
  }
  const median = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1]!;
  for (const l of ['A', 'B']) {
    const r = res[l]!;
    console.log(`${l} req/s median ${median(r.map((x) => x.rps)).toFixed(0)}, main-thread µs per GET median ${median(r.map((x) => x.us)).toFixed(1)}  (rounds: ${r.map((x) => x.us.toFixed(0)).join(' ')})`);
  }
  console.log(`A/B main-thread CPU per GET, median of the ${rounds} pairs: ${median(res.A!.map((x, i) => x.us / res.B![i]!.us)).toFixed(3)}`);
} finally {
  for (const s of sides) {
    s.api.close();
    await s.cloud.stop();
  }
}
