import { execFile } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
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

/**
 * Runs Debian's `wrk` (a C load generator, so the client costs the 2-core
 * machine as little as possible) and parses requests/s and latency
 * percentiles from its --latency report.
 */
export async function wrk(opts: { url: string; connections: number; threads?: number; seconds: number; method?: string; headers?: Record<string, string>; body?: string }): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'wrk-'));
  const script = join(dir, 's.lua');
  const hdrs = Object.entries(opts.headers ?? {}).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`).join('\n');
  writeFileSync(
    script,
    `wrk.method = ${JSON.stringify(opts.method ?? 'GET')}\n${hdrs}\n${opts.body !== undefined ? `wrk.body = ${JSON.stringify(opts.body)}` : ''}\n` +
      `local non2xx = 0\nfunction response(status, headers, body) if status >= 300 then non2xx = non2xx + 1 end end\n`,
  );
  const args = ['-t', String(opts.threads ?? Math.min(2, opts.connections)), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency', '-s', script, opts.url];
  const out: string = await new Promise((res, rej) =>
    execFile('wrk', args, { timeout: (opts.seconds + 30) * 1000 }, (e, so, se) => (e ? rej(new Error(`${e.message}\n${se}`)) : res(so))),
  );
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
