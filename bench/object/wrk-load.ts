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
 * request a new key); GET the first 1,000 objects written (as objload.py
 * reads back its 1,000), cycling, at concurrency 1 and 32; then GET every
 * object the PUTs wrote at concurrency 32 — a set larger than the server's
 * small-object cache. Server CPU per request comes from /proc.
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

export async function runWrkLoad(api: ObjectApi, o: WrkLoadOptions = {}): Promise<WrkLoadResult> {
  const seconds = o.seconds ?? 10;
  const nKeys = o.keys ?? 30000;
  const log = o.log ?? ((l: string) => console.log(l));
  const bucket = `wrk-${randomBytes(4).toString('hex')}`;
  // Printable, so it travels through wrk's Lua as is.
  const body = randomBytes(BODY).toString('base64').slice(0, BODY);
  const written: string[] = [];
  const timed = async (c: number, requests: Parameters<typeof wrk>[0]['requests']): Promise<WrkOps> => {
    const cpu0 = o.serverCpuUs?.();
    const r = await wrk({ url: api.origin, connections: c, threads: 1, seconds, requests, bodies: [body] });
    const cpu = o.serverCpuUs && cpu0 !== undefined ? (o.serverCpuUs() - cpu0) / Math.max(1, r.requests) : null;
    return { ...r, serverCpuUsPerOp: cpu };
  };
  await api.createBucket(bucket);
  try {
    const put = async (c: number) => {
      const keys = Array.from({ length: nKeys }, (_, i) => `c${c}-${i}`);
      const r = await timed(c, keys.map((k) => ({ method: 'PUT', ...api.replayable('PUT', bucket, k), body: 0 })));
      // Requests go out in list order with at most c outstanding, so every key before (completed - c) was written.
      written.push(...keys.slice(0, Math.min(nKeys, r.requests + c)));
      if (r.requests >= nKeys) log(`${api.label}: PUT c=${c} went through all ${nKeys} keys (later requests overwrote): raise --wrk-keys`);
      return { r, readable: keys.slice(0, Math.max(0, Math.min(nKeys, r.requests) - c)) };
    };
    const p1 = await put(1);
    log(fmtWrk(`${api.label} PUT 4 KiB c=1`, p1.r));
    const p32 = await put(32);
    log(fmtWrk(`${api.label} PUT 4 KiB c=32`, p32.r));
    const readable = [...p32.readable, ...p1.readable];
    const hot = o.hot ?? 1000;
    if (readable.length < hot) throw new Error(`${api.label}: only ${readable.length} objects written, fewer than the ${hot} to read`);
    const gets = readable.map((k) => ({ method: 'GET', ...api.replayable('GET', bucket, k) }));
    const g1 = await timed(1, gets.slice(0, hot));
    log(fmtWrk(`${api.label} GET 4 KiB c=1`, g1));
    const g32 = await timed(32, gets.slice(0, hot));
    log(fmtWrk(`${api.label} GET 4 KiB c=32`, g32));
    const all = await timed(32, gets);
    log(fmtWrk(`${api.label} GET 4 KiB c=32, all ${gets.length}`, all));
    return { put: { c1: p1.r, c32: p32.r }, get: { c1: g1, c32: g32 }, getAll: { ...all, objects: gets.length } as WrkOps };
  } finally {
    await api.removeAll(bucket, written);
  }
}
