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
import { mergeLoads, wrk, type LoadResult as WrkResult, type WrkRequest } from '../lib/wrk.js';
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
  /** Turns each workload is split into, the APIs alternating (default: one per 2 s of `seconds`). */
  slices?: number;
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
 * workload, and each workload in `slices` turns: API A runs for
 * seconds/slices, then B, then B, then A, … (`reverse` starts with B), and an
 * API's figure for the workload merges its slices (mergeLoads). This
 * machine's speed drifts by tens of per cent over seconds (the same GET costs
 * the server 51 µs of CPU in one second and 150 µs a few seconds later, for both
 * APIs alike); ten-second runs one after the other measured that drift as
 * much as the APIs, where slices taken turn about share it. PUT slices go on
 * with new keys, "GET all" slices go on through the set where the last one
 * stopped. Returns one result per API, in the order given.
 */
export async function runWrkLoads(apis: ObjectApi[], o: WrkLoadOptions & { reverse?: boolean } = {}): Promise<WrkLoadResult[]> {
  const seconds = o.seconds ?? 10;
  const nSlices = Math.max(1, o.slices ?? Math.round(seconds / 2));
  const nKeys = o.keys ?? 30000;
  const hot = o.hot ?? 1000;
  const log = o.log ?? ((l: string) => console.log(l));
  // Printable, so it travels through wrk's Lua as is.
  const body = randomBytes(BODY).toString('base64').slice(0, BODY);
  const runs = apis.map((api) => ({ api, bucket: `wrk-${randomBytes(4).toString('hex')}`, written: [] as string[], readable: [] as string[], gets: [] as WrkRequest[], r: {} as Partial<Record<'p1' | 'p32' | 'g1' | 'g32' | 'all', WrkOps>> }));
  type Run = (typeof runs)[number];
  let step = o.reverse ? 1 : 0;
  /**
   * One workload: `nSlices` turns of every API, the order swapping from one
   * turn to the next; `requests(run, k)` gives the requests of API k's next
   * slice, `after` sees each slice's result. Logs and returns each API's merged result.
   */
  const workload = async (name: string, c: number, requests: (run: Run, k: number) => WrkRequest[], after?: (run: Run, k: number, r: WrkResult) => void): Promise<WrkOps[]> => {
    const parts = runs.map(() => ({ slices: [] as WrkResult[], cpuUs: 0 }));
    for (let turn = 0; turn < nSlices; turn++) {
      const order = runs.map((_, k) => k);
      for (const k of step++ % 2 === 0 ? order : order.reverse()) {
        const run = runs[k]!;
        const cpu0 = o.serverCpuUs?.();
        const r = await wrk({ url: run.api.origin, connections: c, threads: 1, seconds: seconds / nSlices, requests: requests(run, k), bodies: [body] });
        if (cpu0 !== undefined) parts[k]!.cpuUs += o.serverCpuUs!() - cpu0;
        parts[k]!.slices.push(r);
        after?.(run, k, r);
      }
    }
    return runs.map((run, k) => {
      const merged = mergeLoads(parts[k]!.slices);
      const r: WrkOps = { ...merged, serverCpuUsPerOp: o.serverCpuUs ? parts[k]!.cpuUs / Math.max(1, merged.requests) : null };
      log(fmtWrk(`${run.api.label} ${name}`, r) + (nSlices > 1 ? `   slices ${parts[k]!.slices.map((x) => x.rps.toFixed(0)).join('/')}` : ''));
      return r;
    });
  };
  const made: Run[] = [];
  try {
    for (const run of runs) {
      await run.api.createBucket(run.bucket);
      made.push(run);
    }
    for (const c of [1, 32] as const) {
      const keys = Array.from({ length: nKeys }, (_, i) => `c${c}-${i}`);
      // Where each API's next slice starts in `keys`, and what this workload made readable.
      const next = runs.map(() => 0);
      const readable = runs.map(() => [] as string[]);
      const rs = await workload(`PUT 4 KiB c=${c}`, c, (run, k) => {
        // Past the last key (see the warning below), the slice writes the keys again.
        const rest = next[k]! < nKeys ? keys.slice(next[k]) : keys;
        return rest.map((key) => ({ method: 'PUT', ...run.api.replayable('PUT', run.bucket, key), body: 0 }));
      }, (run, k, r) => {
        const from = next[k]!;
        // Requests go out in list order with at most c outstanding, so every key before
        // (completed - c) was written; the c after may have been. The next slice starts past them.
        run.written.push(...keys.slice(from, Math.min(nKeys, from + r.requests + c)));
        readable[k]!.push(...keys.slice(from, Math.max(from, Math.min(nKeys, from + r.requests - c))));
        if (from + r.requests >= nKeys) log(`${run.api.label}: PUT c=${c} went through all ${nKeys} keys (later requests overwrote): raise --wrk-keys`);
        next[k] = Math.min(nKeys, from + r.requests + c);
      });
      runs.forEach((run, k) => {
        run.readable.unshift(...readable[k]!);
        run.r[c === 1 ? 'p1' : 'p32'] = rs[k];
      });
    }
    for (const run of runs) {
      if (run.readable.length < hot) throw new Error(`${run.api.label}: only ${run.readable.length} objects written, fewer than the ${hot} to read`);
      run.gets = run.readable.map((k) => ({ method: 'GET', ...run.api.replayable('GET', run.bucket, k) }));
    }
    for (const c of [1, 32] as const) {
      const rs = await workload(`GET 4 KiB c=${c}`, c, (run) => run.gets.slice(0, hot));
      runs.forEach((run, k) => (run.r[c === 1 ? 'g1' : 'g32'] = rs[k]));
    }
    // As many objects for every API (those written first): the API that
    // wrote more would otherwise read a set the cache holds less of.
    const n = Math.min(...runs.map((run) => run.gets.length));
    const pos = runs.map(() => 0);
    const rs = await workload(`GET 4 KiB c=32, all ${n}`, 32, (run, k) => [...run.gets.slice(pos[k], n), ...run.gets.slice(0, pos[k])], (_run, k, r) => {
      pos[k] = (pos[k]! + r.requests) % n;
    });
    runs.forEach((run, k) => (run.r.all = { ...rs[k]!, objects: n }));
    return runs.map(({ r }) => ({ put: { c1: r.p1!, c32: r.p32! }, get: { c1: r.g1!, c32: r.g32! }, getAll: r.all! }));
  } finally {
    for (const run of made) await run.api.removeAll(run.bucket, run.written);
  }
}
