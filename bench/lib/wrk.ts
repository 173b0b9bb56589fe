import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LoadResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  requests: number;
  non2xx: number;
}

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
  writeFileSync(script, text);
  const args = ['-t', String(opts.threads ?? Math.min(2, opts.connections)), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency', '-s', script, opts.url];
  const out: string = await new Promise((res, rej) =>
    execFile('wrk', args, { timeout: (opts.seconds + 30) * 1000 }, (e, so, se) => (e ? rej(new Error(`${e.message}\n${se}`)) : res(so))),
  );
  rmSync(dir, { recursive: true, force: true });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50ms: pct('50'), p99ms: pct('99'), requests, non2xx };
}

export const fmt = (r: LoadResult) => `${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50ms.toFixed(2).padStart(7)} ms   p99 ${r.p99ms.toFixed(2).padStart(7)} ms   (${r.requests} requests${r.non2xx ? `, ${r.non2xx} NOT 2xx` : ''})`;
