import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LoadResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  requests: number;
  non2xx: number;
  /** How long the run lasted (s), as wrk measured it. */
  seconds: number;
  /**
   * Latency (ms) at the quantiles (k + 0.5) / QUANTILES, k = 0 … QUANTILES − 1:
   * each stands for an equal share of the requests, so runs can be merged
   * (mergeLoads).
   */
  quantiles: number[];
}

/** How many latency quantiles a run reports (0.1 % steps: the merged p99 is exact to about 0.1 percentile). */
export const QUANTILES = 1000;

const toMs = (v: string, unit: string) => Number(v) * (unit === 'us' ? 0.001 : unit === 's' ? 1000 : unit === 'm' ? 60000 : 1);

/** One request of a list that wrk sends in turn (see `requests`). */
export interface WrkRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Index into `bodies` (bodies are shared, so a list of PUTs does not hold a copy each). */
  body?: number;
}

const lua = (v: string) => JSON.stringify(v);

/**
 * Runs Debian's `wrk` (a C load generator, so the client costs the 2-core
 * machine as little as possible) and parses requests/s and latency
 * percentiles from its --latency report. With `requests`, each thread sends
 * the list in turn (one after another, from the first again at the end), so
 * a run can read many objects or replay requests signed beforehand; the URL
 * then only gives the host. Responses above 399 are counted as errors by wrk.
 */
export async function wrk(opts: {
  url: string; connections: number; threads?: number; seconds: number; method?: string; headers?: Record<string, string>; body?: string;
  requests?: WrkRequest[]; bodies?: string[];
}): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'wrk-'));
  const script = join(dir, 's.lua');
  const hdrs = Object.entries(opts.headers ?? {}).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`).join('\n');
  let text = `wrk.method = ${lua(opts.method ?? 'GET')}\n${hdrs}\n${opts.body !== undefined ? `wrk.body = ${lua(opts.body)}` : ''}\n`;
  if (opts.requests?.length) {
    // One line per request (tab-separated: method, path, body number or "-", header name, value, ...) and one file per
    // body, read and formatted once per thread in init: wrk then only hands out ready strings in turn.
    const clean = (v: string) => {
      if (/[\t\n]/.test(v)) throw new Error(`wrk request field with a tab or newline: ${JSON.stringify(v)}`);
      return v;
    };
    writeFileSync(join(dir, 'requests'), opts.requests.map((r) => [r.method, r.path, r.body === undefined ? '-' : String(r.body), ...Object.entries(r.headers ?? {}).flat()].map(clean).join('\t')).join('\n') + '\n');
    (opts.bodies ?? []).forEach((b, k) => writeFileSync(join(dir, `body-${k}`), b));
    text += `local dir = ${lua(dir)}\nlocal ready, n, i = {}, 0, 0\n` +
      `function init(args)\n` +
      `  local bodies = {}\n` +
      `  for line in io.lines(dir .. "/requests") do\n` +
      `    local f = {}\n    for x in string.gmatch(line, "[^\\t]+") do f[#f + 1] = x end\n` +
      `    local h = {}\n    for k = 4, #f - 1, 2 do h[f[k]] = f[k + 1] end\n` +
      `    local body = nil\n    if f[3] ~= "-" then\n      body = bodies[f[3]]\n      if not body then local fh = io.open(dir .. "/body-" .. f[3], "rb"); body = fh:read("*a"); fh:close(); bodies[f[3]] = body end\n    end\n` +
      `    n = n + 1\n    ready[n] = wrk.format(f[1], f[2], h, body)\n  end\nend\n` +
      // wrk 4.1 calls request() once per thread before it connects and throws that answer away (the first request of
      // a list never reached a server here), so that first call does not move along the list.
      `local asked = false\n` +
      `function request()\n  if not asked then asked = true; return ready[1] end\n  i = i + 1\n  if i > n then i = 1 end\n  return ready[i]\nend\n`;
  }
  // done() runs once at the end: the duration and the latency quantiles, for merging runs.
  text += `function done(summary, latency, requests)\n` +
    `  local f = io.open(${lua(join(dir, 'summary'))}, "w")\n` +
    `  f:write(summary.duration, "\\n")\n` +
    `  for k = 0, ${QUANTILES - 1} do f:write(latency:percentile((k + 0.5) * ${100 / QUANTILES}), "\\n") end\n` +
    `  f:close()\nend\n`;
  writeFileSync(script, text);
  const args = ['-t', String(opts.threads ?? Math.min(2, opts.connections)), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency', '-s', script, opts.url];
  const out: string = await new Promise((res, rej) =>
    execFile('wrk', args, { timeout: (opts.seconds + 30) * 1000 }, (e, so, se) => (e ? rej(new Error(`${e.message}\n${se}`)) : res(so))),
  );
  const summary = readFileSync(join(dir, 'summary'), 'utf8').trim().split('\n').map(Number);
  rmSync(dir, { recursive: true, force: true });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50ms: pct('50'), p99ms: pct('99'), requests, non2xx, seconds: summary[0]! / 1e6, quantiles: summary.slice(1).map((us) => us / 1000) };
}

/**
 * One result for several runs of the same load (slices of one measurement):
 * the rate over their summed duration, and p50/p99 of all their requests
 * (each run's quantiles weighted by its request count).
 */
export function mergeLoads(runs: LoadResult[]): LoadResult {
  if (runs.length === 1) return runs[0]!;
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const seconds = runs.reduce((n, r) => n + r.seconds, 0);
  const points = runs.flatMap((r) => r.quantiles.map((ms) => ({ ms, w: r.requests / r.quantiles.length }))).sort((a, b) => a.ms - b.ms);
  // One sweep up the weighted points, taking each wanted quantile as it is passed.
  const wanted = [...Array.from({ length: QUANTILES }, (_, k) => (k + 0.5) / QUANTILES), 0.5, 0.99].sort((a, b) => a - b);
  const found = new Map<number, number>();
  let acc = 0;
  let i = 0;
  for (const p of wanted) {
    while (i < points.length - 1 && acc + points[i]!.w < p * requests) acc += points[i++]!.w;
    found.set(p, points[i]?.ms ?? NaN);
  }
  const at = (p: number) => found.get(p)!;
  const quantiles = Array.from({ length: QUANTILES }, (_, k) => at((k + 0.5) / QUANTILES));
  return { rps: requests / seconds, p50ms: at(0.5), p99ms: at(0.99), requests, non2xx: runs.reduce((n, r) => n + r.non2xx, 0), seconds, quantiles };
}

export const fmt = (r: LoadResult) => `${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50ms.toFixed(2).padStart(7)} ms   p99 ${r.p99ms.toFixed(2).padStart(7)} ms   (${r.requests} requests${r.non2xx ? `, ${r.non2xx} NOT 2xx` : ''})`;
