/**
 * The 4 KiB workloads driven by wrk (Debian's C load generator, one thread)
 * instead of a Node or Python client: on this 2-core machine the client shares
 * the CPU with the server, and a client in an interpreted language caps what
 * a fast server can show (objload.py tops out near 4,000–4,600 GET/s whatever
 * the server). wrk replays requests prepared beforehand — a token header for
 * the Swift API, a SigV4 signature per object for the S3 API (valid for the
 * server's 15-minute window) — so the client does no per-request work beyond
 * sending and parsing, and the server still checks every request in full.
 *
 * Per API: PUT 4 KiB objects for `seconds` at concurrency 1, then 32 (each
 * request a new key); GET the first 1,000 objects written at c=32 (as
 * objload.py reads back its 1,000), cycling, at concurrency 1 and 32; then
 * GET every object the PUTs wrote at concurrency 32 — a set larger than the
 * server's small-object cache (with several APIs, each reads as many as the
 * one that wrote fewest). Server CPU per request comes from /proc.
 */
import { randomBytes } from 'node:crypto';
import { wrk, type LoadResult as WrkResult } from '../lib/wrk.js';
import type { ObjectApi } from './load.js';

export interface WrkOps extends WrkResult {
  /** CPU time of the server's processes per request (µs), if known. */
  serverCpuUsPerOp: number | null;
  /** How many distinct objects a GET run read. */
  objects?: number;
}

export interface WrkLoadResult {
  put: { c1: WrkOps; c32: WrkOps };
  /** GETs of the first `hot` objects written (objload.py reads back what it wrote: 1,000 objects). */
  get: { c1: WrkOps; c32: WrkOps };
  /** GETs at c=32 of every object the PUT runs wrote (tens of thousands: beyond a small cache). */
  getAll: WrkOps;
}

export interface WrkLoadOptions {
  seconds?: number;
  /** Keys prepared for each PUT run (a run stops writing new keys beyond them: keep it above rate × seconds). */
  keys?: number;
  /** How many objects the GET runs read, cycling (default 1,000, as objload.py); `getAll` reads them all. */
  hot?: number;
  serverCpuUs?: () => number;
  log?: (line: string) => void;
}

const BODY = 4096;

export const fmtWrk = (name: string, r: WrkOps) =>
  `${name.padEnd(26)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50ms.toFixed(2).padStart(7)} ms   p99 ${r.p99ms.toFixed(2).padStart(7)} ms` +
  (r.serverCpuUsPerOp !== null ? `   server CPU ${r.serverCpuUsPerOp.toFixed(0).padStart(5)} µs/req` : '') +
  (r.non2xx ? `   ${r.non2xx} ERRORS` : '');

/** The better of two results (per figure, by rate). */
export function bestOfWrk(a: WrkLoadResult, b: WrkLoadResult): WrkLoadResult {
  const best = (x: WrkOps, y: WrkOps) => (y.rps > x.rps ? y : x);
  return { put: { c1: best(a.put.c1, b.put.c1), c32: best(a.put.c32, b.put.c32) }, get: { c1: best(a.get.c1, b.get.c1), c32: best(a.get.c32, b.get.c32) }, getAll: best(a.getAll, b.getAll) };
}

/**
 * Runs the workloads on several APIs of one server (or one API), workload by
 * workload: each API does PUT c=1, then each does PUT c=32, and so on, the
 * order of the APIs swapping from one workload to the next (A B, B A, A B …;
 * `reverse` starts with B A). The figures of one workload are then taken a
 * few seconds apart on a server in the same state (the same objects stored,
 * the same background work due), where running all of one API's workloads
 * before the other's put a minute and a round of deletes between them.
 * Returns one result per API, in the order given.
 */
export async function runWrkLoads(apis: ObjectApi[], o: WrkLoadOptions & { reverse?: boolean } = {}): Promise<WrkLoadResult[]> {
  const seconds = o.seconds ?? 10;
  const nKeys = o.keys ?? 30000;
  const hot = o.hot ?? 1000;
  const log = o.log ?? ((l: string) => console.log(l));
  // Printable, so it travels through wrk's Lua as is.
  const body = randomBytes(BODY).toString('base64').slice(0, BODY);
  const runs = apis.map((api) => ({ api, bucket: `wrk-${randomBytes(4).toString('hex')}`, written: [] as string[], readable: [] as string[], gets: [] as Array<{ method: string; path: string; headers: Record<string, string> }>, r: {} as Partial<Record<'p1' | 'p32' | 'g1' | 'g32' | 'all', WrkOps>> }));
  let step = o.reverse ? 1 : 0;
  /** Runs one workload on every API, in this step's order. */
  const each = async (fn: (run: (typeof runs)[number]) => Promise<void>) => {
    for (const run of step++ % 2 === 0 ? runs : [...runs].reverse()) await fn(run);
  };
  const timed = async (api: ObjectApi, c: number, requests: Parameters<typeof wrk>[0]['requests']): Promise<WrkOps> => {
    const cpu0 = o.serverCpuUs?.();
    const r = await wrk({ url: api.origin, connections: c, threads: 1, seconds, requests, bodies: [body] });
    const cpu = o.serverCpuUs && cpu0 !== undefined ? (o.serverCpuUs() - cpu0) / Math.max(1, r.requests) : null;
    return { ...r, serverCpuUsPerOp: cpu };
  };
  const made: typeof runs = [];
  try {
    for (const run of runs) {
      await run.api.createBucket(run.bucket);
      made.push(run);
    }
    for (const c of [1, 32] as const) {
      await each(async (run) => {
        const keys = Array.from({ length: nKeys }, (_, i) => `c${c}-${i}`);
        const r = await timed(run.api, c, keys.map((k) => ({ method: 'PUT', ...run.api.replayable('PUT', run.bucket, k), body: 0 })));
        // Requests go out in list order with at most c outstanding, so every key before (completed - c) was written.
        run.written.push(...keys.slice(0, Math.min(nKeys, r.requests + c)));
        if (r.requests >= nKeys) log(`${run.api.label}: PUT c=${c} went through all ${nKeys} keys (later requests overwrote): raise --wrk-keys`);
        run.readable.unshift(...keys.slice(0, Math.max(0, Math.min(nKeys, r.requests) - c)));
        run.r[c === 1 ? 'p1' : 'p32'] = r;
        log(fmtWrk(`${run.api.label} PUT 4 KiB c=${c}`, r));
      });
    }
    for (const run of runs) {
      if (run.readable.length < hot) throw new Error(`${run.api.label}: only ${run.readable.length} objects written, fewer than the ${hot} to read`);
      run.gets = run.readable.map((k) => ({ method: 'GET', ...run.api.replayable('GET', run.bucket, k) }));
    }
    for (const c of [1, 32] as const) {
      await each(async (run) => {
        const r = await timed(run.api, c, run.gets.slice(0, hot));
        run.r[c === 1 ? 'g1' : 'g32'] = r;
        log(fmtWrk(`${run.api.label} GET 4 KiB c=${c}`, r));
      });
    }
    // As many objects for every API (those written first): the API that
    // wrote more would otherwise read a set the cache holds less of.
    const n = Math.min(...runs.map((run) => run.gets.length));
    await each(async (run) => {
      const r = await timed(run.api, 32, run.gets.slice(0, n));
      run.r.all = { ...r, objects: n };
      log(fmtWrk(`${run.api.label} GET 4 KiB c=32, all ${n}`, r));
    });
    return runs.map(({ r }) => ({ put: { c1: r.p1!, c32: r.p32! }, get: { c1: r.g1!, c32: r.g32! }, getAll: r.all! }));
  } finally {
    for (const run of made) await run.api.removeAll(run.bucket, run.written);
  }
}
