/**
 * bench/object: the Swift API of Stratus beside real OpenStack Swift (Debian,
 * started by /work/shared/anchors/swift-up.sh on loopback, 3 replicas) and
 * beside the raw disk, in one run, with the same load tool (objload.py):
 *
 * - 4 KiB PUT then GET: req/s, p50/p99 ms at concurrency 1 and 32;
 * - one 256 MiB PUT then GET on one connection: MB/s (MB = 10^6 B), next to
 *   `dd` (write with fsync, read with O_DIRECT and from the page cache) and
 *   `cp` + sync of a file of the same size on the same filesystem;
 * - a full JSON listing of a 10,000-object container (min/median of 5);
 * - workload `api`: the small and big workloads again, with one Node client
 *   (bench/object/load.ts) speaking the Swift API and the S3 API, against
 *   Stratus and against real Swift (its s3api middleware), so the S3 API is
 *   compared with the Swift API by the same client;
 * - workload `wrk`: the 4 KiB PUT and GET again, both APIs of both servers,
 *   driven by wrk (C, one thread) replaying requests authorized beforehand
 *   (bench/object/wrk-load.ts), so the client takes as little of the 2 cores
 *   as it can and the servers' own rates show.
 *
 * Figures only, no assertions. Run (as root, from the repository):
 *
 *   npx tsx bench/object/run.ts [--objects 1000] [--big-mib 256] [--list-count 10000]
 *                               [--no-swift] [--threadpool 16] [--json-out FILE] [--workloads small,big,list,api]
 *                               [--warmup 3000] [--rounds 2] [--wrk-seconds 10] [--wrk-keys 60000] [--wrk-slices 5]
 *
 * The one-client and wrk workloads run `--rounds` times, the APIs taking
 * turns and swapping who goes first each round (Swift API, S3 API; S3 API,
 * Swift API; …), and each figure is the best of the rounds. The wrk
 * workloads take turns workload by workload and within each workload in
 * `--wrk-slices` slices (runWrkLoads: the APIs PUT at c=1 for 2 s each in
 * ABBA order until each had its `--wrk-seconds`, then PUT at c=32 the same
 * way, …), and the S3/Swift ratio of the rounds' means, the median of each round's own ratio and every round's rate
 * are printed too; the big GET with curl is the best of 3, next to the best of 3 raw
 * O_DIRECT reads (dd) of the very file the server stored the object in.
 *
 * Before anything is timed, every target gets the same untimed warm-up through
 * each of its APIs (load.ts warmUp: --warmup 4 KiB PUTs at c=32, each read
 * twice, then deleted; 0 skips it).
 *
 * It builds dist/ first (tsc). `--threadpool` sets UV_THREADPOOL_SIZE for
 * the Stratus process (0 = Node's default of 4). Real Swift needs the Debian
 * packages named in /work/shared/anchors/README.md; without them (or with
 * --no-swift) only Stratus and the disk are measured.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bestOf, processTreeCpuUs, rawReadOfLargest, runLoad, s3Api, swiftApi, warmUp, type LoadResult, type ObjectApi } from './load.js';
import { ensureBuilt, freePort, objectAccess, startBenchCloud } from '../lib/cloud.js';
import { bestOfWrk, runWrkLoads, type WrkLoadResult } from './wrk-load.js';

const ANCHORS = process.env.STRATUS_ANCHORS ?? '/work/shared/anchors';
const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const OBJECTS = Number(arg('objects', '1000'));
const BIG_MIB = Number(arg('big-mib', '256'));
const LIST_COUNT = Number(arg('list-count', '10000'));
const THREADPOOL = Number(arg('threadpool', '16'));
const WITH_SWIFT = !args.includes('--no-swift') && existsSync('/usr/bin/swift-proxy-server') && existsSync(join(ANCHORS, 'swift-up.sh'));
const JSON_OUT = arg('json-out', '');
const WORKLOADS = new Set(arg('workloads', 'small,big,list,api,wrk').split(','));
const WRK_SECONDS = Number(arg('wrk-seconds', '10'));
const WRK_KEYS = Number(arg('wrk-keys', '60000'));
const WRK_SLICES = Math.max(1, Number(arg('wrk-slices', String(Math.round(WRK_SECONDS / 2)))));
const WARMUP = Number(arg('warmup', '3000'));
const ROUNDS = Math.max(1, Number(arg('rounds', '2')));

interface Target {
  label: string;
  /** Where the server keeps its object files (for the raw read of the stored big object). */
  dataDir: string;
  /** The server's processes (their descendants count too), for CPU per request. */
  pids: () => number[];
  url: string;
  token: string;
  /** The same account's S3 API. */
  s3: { endpoint: string; access: string; secret: string; region: string } | null;
}

type Row = Record<string, number | string | null>;
const results: Record<string, Record<string, Row>> = {};

/** Runs objload.py against one target; returns its result rows by op name. */
function objload(t: Target, workloads: string, concurrency: number, extra: string[] = []): Record<string, Row> {
  const jsonFile = join(tmpdir(), `objload-${process.pid}-${Date.now()}.jsonl`);
  const r = spawnSync(
    '/usr/bin/python3',
    [join(ANCHORS, 'objload.py'), 'run', '--url', t.url, '--token', t.token, '-n', String(OBJECTS), '-c', String(concurrency), '--runs', '1',
      '--workloads', workloads, '--big-mib', String(BIG_MIB), '--list-count', String(LIST_COUNT), '--label', t.label, '--json-out', jsonFile, '--cleanup', ...extra],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) throw new Error(`objload ${t.label} ${workloads} c=${concurrency} failed: ${r.stderr}${r.stdout}`);
  const rows: Record<string, Row> = {};
  for (const line of readFileSync(jsonFile, 'utf8').split('\n').filter(Boolean)) {
    const rec = JSON.parse(line) as { summary?: boolean; results?: Row[] };
    if (rec.summary || !rec.results) continue;
    for (const x of rec.results) rows[String(x['op'])] = x;
  }
  rmSync(jsonFile, { force: true });
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ label: t.label, workloads, concurrency, rows }) + '\n', { flag: 'a' });
  return rows;
}

function record(key: string, label: string, row: Row | undefined) {
  if (!row) return;
  (results[key] ??= {})[label] = row;
}

/** Stratus from dist/ on a temp data dir, its data plane in a namespace of its own (bench/lib/cloud.ts cleans up both). */
async function startStratus(): Promise<{ target: Target; dataDir: string; stop: () => Promise<void> }> {
  const env: Record<string, string> = { STRATUS_GUEST_IMAGE_CACHE: '/var/tmp/stratus-test-cache/guest-image', STRATUS_COMPUTE__ACCEL: 'tcg' };
  if (THREADPOOL > 0) env['UV_THREADPOOL_SIZE'] = String(THREADPOOL);
  const cloud = await startBenchCloud(env);
  const { token, storageUrl, access, secret } = await objectAccess(cloud);
  return {
    target: { label: 'stratus', dataDir: join(cloud.dataDir, 'object'), pids: () => [cloud.proc.pid!], url: storageUrl, token, s3: { endpoint: cloud.s3Url, access, secret, region: 'RegionOne' } },
    dataDir: cloud.dataDir,
    stop: () => cloud.stop(),
  };
}

async function startSwift(): Promise<{ target: Target; dir: string; stop: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'swift-saio-bench-'));
  const env = {
    ...process.env,
    SAIO_DIR: dir,
    PROXY_PORT: String(await freePort()),
    OBJECT_PORT: String(await freePort()),
    CONTAINER_PORT: String(await freePort()),
    ACCOUNT_PORT: String(await freePort()),
    MEMCACHE_PORT: String(await freePort()),
    FRESH: '1',
  };
  execFileSync(join(ANCHORS, 'swift-up.sh'), { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const envSh = readFileSync(join(dir, 'run', 'env.sh'), 'utf8');
  const get = (k: string) => new RegExp(`${k}=['"]?([^'"\\n]+)`).exec(envSh)?.[1] ?? '';
  return {
    target: {
      label: 'swift', dataDir: dir, url: get('OS_STORAGE_URL'),
      pids: () => readFileSync(join(dir, 'run', 'pids'), 'utf8').split('\n').filter(Boolean).map((l) => Number(l.split(' ')[1])), token: get('OS_AUTH_TOKEN'),
      s3: { endpoint: get('S3_ENDPOINT'), access: get('S3_ACCESS_KEY'), secret: get('S3_SECRET_KEY'), region: get('S3_REGION') || 'us-east-1' },
    },
    dir,
    stop() {
      spawnSync(join(ANCHORS, 'swift-down.sh'), { env: { ...env, PURGE: '1' }, stdio: 'inherit' });
    },
  };
}

/** dd/cp figures for a file of BIG_MIB on the filesystem of `dir` (MB/s, 10^6 B). */
function rawDisk(dir: string): Record<string, number> {
  const f = join(dir, 'dd.bin');
  const g = join(dir, 'cp.bin');
  const time = (fn: () => void) => {
    const t0 = performance.now();
    fn();
    return (BIG_MIB * 1024 * 1024) / ((performance.now() - t0) / 1000) / 1e6;
  };
  const out: Record<string, number> = {};
  try {
    out['dd write (conv=fsync)'] = time(() => execFileSync('dd', ['if=/dev/zero', `of=${f}`, 'bs=1M', `count=${BIG_MIB}`, 'conv=fsync'], { stdio: 'ignore' }));
    out['dd read (O_DIRECT)'] = time(() => execFileSync('dd', [`if=${f}`, 'of=/dev/null', 'bs=1M', 'iflag=direct'], { stdio: 'ignore' }));
    out['dd read (page cache)'] = time(() => execFileSync('dd', [`if=${f}`, 'of=/dev/null', 'bs=1M'], { stdio: 'ignore' }));
    out['cp + sync'] = time(() => {
      execFileSync('cp', [f, g]);
      execFileSync('sync', [g]);
    });
  } finally {
    rmSync(f, { force: true });
    rmSync(g, { force: true });
  }
  return out;
}

const n = (v: unknown, d = 0) => (typeof v === 'number' ? v.toFixed(d) : '-');

function printTable(targets: string[]) {
  const lines: string[] = [];
  const pad = (s: string, w: number) => s.padEnd(w);
  lines.push(`\n== Swift API: ${targets.join(' vs ')} (same machine, same objload.py; 3 replicas, fsync) ==`);
  for (const c of [1, 32]) {
    for (const op of ['put_4096B', 'get_4096B']) {
      const key = `${op} c=${c}`;
      const row = results[key] ?? {};
      lines.push(
        `${pad(key, 18)} ` +
          targets.map((t) => `${t}: ${n(row[t]?.['req_per_s'])} req/s p50 ${n(row[t]?.['p50_ms'], 1)} ms p99 ${n(row[t]?.['p99_ms'], 1)} ms`).join(' | ') +
          (targets.length === 2 && typeof row[targets[1]!]?.['req_per_s'] === 'number' && typeof row[targets[0]!]?.['req_per_s'] === 'number'
            ? `  (${((row['stratus']!['req_per_s'] as number) / (row['swift']!['req_per_s'] as number)).toFixed(1)}x)`
            : ''),
      );
    }
  }
  for (const op of [`put_${BIG_MIB}MiB`, `get_${BIG_MIB}MiB`]) {
    const row = results[op] ?? {};
    lines.push(`${pad(op, 18)} ` + targets.map((t) => `${t}: ${n(row[t]?.['MB_per_s'], 1)} MB/s`).join(' | '));
  }
  const lk = `list_${LIST_COUNT}`;
  const lrow = results[lk] ?? {};
  lines.push(`${pad(lk, 18)} ` + targets.map((t) => `${t}: min ${n(lrow[t]?.['min_s'], 3)} s median ${n(lrow[t]?.['median_s'], 3)} s`).join(' | '));
  const disk = results['raw disk'] ?? {};
  lines.push(`raw disk (${BIG_MIB} MiB): ` + Object.entries(disk['disk'] ?? {}).map(([k, v]) => `${k} ${n(v, 1)} MB/s`).join(' | '));
  console.log(lines.join('\n'));
}

/** Results of bench/object/load.ts (one Node client for both APIs), by "<target> <api>". */
const apiResults: Record<string, LoadResult> = {};

function printApiTable() {
  const cols = Object.keys(apiResults);
  if (!cols.length) return;
  const lines = [`\n== Swift API and S3 API with one client (bench/object/load.ts, Node): ${cols.join(' | ')} ==`];
  const cell = (r: { opsPerSec: number; p50ms: number; p99ms: number; serverCpuUsPerOp: number | null }) =>
    `${r.opsPerSec.toFixed(0)} req/s p50 ${r.p50ms.toFixed(1)} p99 ${r.p99ms.toFixed(1)} ms` + (r.serverCpuUsPerOp !== null ? ` (server ${r.serverCpuUsPerOp.toFixed(0)} µs/req)` : '');
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? `${((a / b) * 100).toFixed(0)}%` : '-');
  const rows: Array<[string, (r: LoadResult) => number | null, (r: LoadResult) => string]> = [
    ['PUT 4 KiB c=1', (r) => r.put4k.c1.opsPerSec, (r) => cell(r.put4k.c1)],
    ['PUT 4 KiB c=32', (r) => r.put4k.c32.opsPerSec, (r) => cell(r.put4k.c32)],
    ['GET 4 KiB c=1', (r) => r.get4k.c1.opsPerSec, (r) => cell(r.get4k.c1)],
    ['GET 4 KiB c=32', (r) => r.get4k.c32.opsPerSec, (r) => cell(r.get4k.c32)],
    [`PUT ${BIG_MIB} MiB`, (r) => r.bigPutMBps, (r) => (r.bigPutMBps === null ? '-' : `${r.bigPutMBps.toFixed(0)} MB/s`)],
    [`GET ${BIG_MIB} MiB`, (r) => r.bigGetMBps, (r) => (r.bigGetMBps === null ? '-' : `${r.bigGetMBps.toFixed(0)} MB/s`)],
    [`GET ${BIG_MIB} MiB curl`, (r) => r.bigGetCurlMBps, (r) => (r.bigGetCurlMBps === null ? '-' : `${r.bigGetCurlMBps.toFixed(0)} MB/s`)],
    [`raw read, same file`, (r) => r.bigRawReadMBps, (r) => (r.bigRawReadMBps === null ? '-' : `${r.bigRawReadMBps.toFixed(0)} MB/s`)],
  ];
  for (const [name, val, show] of rows) {
    const s3 = apiResults['stratus S3'];
    const sw = apiResults['stratus Swift'];
    const real = apiResults['swift Swift'];
    lines.push(
      `${name.padEnd(16)} ` + cols.map((c) => `${c}: ${show(apiResults[c]!)}`).join(' | ') +
        `  [stratus S3/Swift ${ratio(s3 && val(s3), sw && val(sw))}` + (real ? `, stratus/swift Swift API ${sw && val(sw) && val(real) ? (val(sw)! / val(real)!).toFixed(1) + 'x' : '-'}` : '') + ']',
    );
  }
  const s3 = apiResults['stratus S3'];
  const sw = apiResults['stratus Swift'];
  if (s3 && sw) {
    const pairs: Array<[string, number | null, number | null]> = [
      ['PUT c=1', s3.put4k.c1.serverCpuUsPerOp, sw.put4k.c1.serverCpuUsPerOp],
      ['PUT c=32', s3.put4k.c32.serverCpuUsPerOp, sw.put4k.c32.serverCpuUsPerOp],
      ['GET c=1', s3.get4k.c1.serverCpuUsPerOp, sw.get4k.c1.serverCpuUsPerOp],
      ['GET c=32', s3.get4k.c32.serverCpuUsPerOp, sw.get4k.c32.serverCpuUsPerOp],
    ];
    lines.push('stratus server CPU per 4 KiB request, S3 API / Swift API: ' + pairs.map(([k, a, b]) => `${k} ${a && b ? ((a / b) * 100).toFixed(0) + '%' : '-'}`).join(', '));
  }
  for (const c of cols) {
    const r = apiResults[c]!;
    if (r.bigGetCurlMBps && r.bigRawReadMBps) lines.push(`${c}: GET ${BIG_MIB} MiB with curl = ${((r.bigGetCurlMBps / r.bigRawReadMBps) * 100).toFixed(0)}% of a raw O_DIRECT read of the stored file`);
  }
  lines.push(
    `(The 4 KiB figures here are client-bound and short: ${OBJECTS} requests at c=32 take a fraction of a second, each API's minutes apart, ` +
      'and the Node S3 client computes a SigV4 signature per request on the same 2 cores as the server. The wrk table below measures the servers.)',
  );
  console.log(lines.join('\n'));
}

/** Results of the wrk workloads, by "<target> <api>": the best of the rounds, and every round in run order. */
const wrkResults: Record<string, WrkLoadResult> = {};
const wrkRounds: Record<string, WrkLoadResult[]> = {};

function printWrkTable() {
  const cols = Object.keys(wrkResults);
  if (!cols.length) return;
  const lines = [`\n== 4 KiB objects with wrk (C client, 1 thread, ${WRK_SECONDS} s per figure in ${WRK_SLICES} slices, best of ${ROUNDS}): ${cols.join(' | ')} ==`];
  const rows: Array<[string, (r: WrkLoadResult) => WrkLoadResult['put']['c1']]> = [
    ['PUT c=1', (r) => r.put.c1], ['PUT c=32', (r) => r.put.c32], ['GET c=1', (r) => r.get.c1], ['GET c=32', (r) => r.get.c32], ['GET all c=32', (r) => r.getAll],
  ];
  const ratio = (a?: WrkLoadResult, b?: WrkLoadResult, f?: (r: WrkLoadResult) => { rps: number }) => (a && b && f && f(b).rps ? f(a).rps / f(b).rps : null);
  for (const [name, f] of rows) {
    const x = ratio(wrkResults['stratus Swift'], wrkResults['swift Swift'], f);
    const y = ratio(wrkResults['stratus S3'], wrkResults['stratus Swift'], f);
    lines.push(
      `${name.padEnd(12)} ` +
        cols.map((c) => {
          const r = f(wrkResults[c]!);
          return `${c}: ${r.rps.toFixed(0)} req/s p50 ${r.p50ms.toFixed(2)} p99 ${r.p99ms.toFixed(1)} ms` + (r.serverCpuUsPerOp !== null ? ` (${r.serverCpuUsPerOp.toFixed(0)} µs)` : '') + (r.non2xx ? ` ${r.non2xx} ERRORS` : '');
        }).join(' | ') +
        `  [stratus/swift Swift API ${x === null ? '-' : x.toFixed(1) + 'x'}, stratus S3/Swift ${y === null ? '-' : (y * 100).toFixed(0) + '%'}]`,
    );
  }
  lines.push('(µs) = server CPU per request, all its processes. GET: the first 1,000 objects written, cycling (objload.py reads its 1,000); GET all: every object the PUT runs wrote (as many for each API of a server)');
  // Each workload runs on the APIs of a target back to back, in ABBA order
  // (runWrkLoads). The best of the rounds lets one lucky or unlucky round
  // decide; the mean of each API's rounds, and the median of the rounds'
  // own S3/Swift ratios (each from two runs seconds apart), are printed too.
  const s3r = wrkRounds['stratus S3'];
  const swr = wrkRounds['stratus Swift'];
  if (s3r?.length && swr?.length && s3r.length === swr.length) {
    const mean = (l: WrkLoadResult[], f: (r: WrkLoadResult) => { rps: number }) => l.reduce((a, r) => a + f(r).rps, 0) / l.length;
    const median = (a: number[]) => {
      const x = [...a].sort((p, q) => p - q);
      return x.length % 2 ? x[(x.length - 1) / 2]! : (x[x.length / 2 - 1]! + x[x.length / 2]!) / 2;
    };
    const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
    lines.push(`stratus S3/Swift, mean of each API's ${s3r.length} rounds: ` + rows.map(([name, f]) => `${name} ${pct(mean(s3r, f) / mean(swr, f))}`).join(', '));
    const pairs = (f: (r: WrkLoadResult) => { rps: number }) => s3r.map((r, i) => f(r).rps / f(swr[i]!).rps);
    lines.push(`stratus S3/Swift, median of the rounds' ratios: ` + rows.map(([name, f]) => `${name} ${pct(median(pairs(f)))} (${pairs(f).map(pct).join('/')})`).join(', '));
    for (const [label, l] of [['Swift', swr], ['S3', s3r]] as const) lines.push(`stratus ${label} rounds (req/s, in run order): ` + rows.map(([name, f]) => `${name} ${l.map((r) => f(r).rps.toFixed(0)).join('/')}`).join(', '));
  }
  console.log(lines.join('\n'));
}

/** The object APIs of a target: its Swift API, and its S3 API when it has one. */
const apisOf = (t: Target): ObjectApi[] => [swiftApi(`${t.label} Swift`, t.url, t.token), ...(t.s3 ? [s3Api(`${t.label} S3`, t.s3.endpoint, t.s3.access, t.s3.secret, t.s3.region)] : [])];

/**
 * Runs `run` on every API of every target `ROUNDS` times, the APIs of a
 * target taking turns, and keeps the best result per API in `into`.
 */
async function inRounds<R>(
  what: string,
  targets: Target[],
  into: Record<string, R>,
  best: (a: R, b: R) => R,
  run: (api: ObjectApi, t: Target) => Promise<R>,
  every?: Record<string, R[]>,
): Promise<void> {
  for (const t of targets) {
    const apis = apisOf(t);
    for (let round = 1; round <= ROUNDS; round++) {
      // Every other round the other API goes first: the one going second
      // always followed the other's writes and deletes (a larger store,
      // background work), which biased the S3/Swift comparison.
      for (const api of round % 2 === 0 ? [...apis].reverse() : apis) {
        console.log(`${what}: ${api.label} (round ${round} of ${ROUNDS}) ...`);
        try {
          const r = await run(api, t);
          const prev = into[api.label];
          into[api.label] = prev === undefined ? r : best(prev, r);
          if (every) (every[api.label] ??= []).push(r);
        } catch (e) {
          console.log(`${api.label}: failed: ${(e as Error).message}`);
        }
      }
    }
    for (const api of apis) api.close();
  }
}

async function main() {
  ensureBuilt();
  const stratus = await startStratus();
  const swift = WITH_SWIFT ? await startSwift() : null;
  const targets = [...(swift ? [swift.target] : []), stratus.target];
  console.log(`stratus: ${stratus.target.url} (UV_THREADPOOL_SIZE=${THREADPOOL || 'default'})${swift ? `\nswift:   ${swift.target.url}` : '\n(real Swift not available: --no-swift or packages missing)'}`);
  try {
    for (const t of WARMUP > 0 ? targets : []) {
      for (const api of apisOf(t)) {
        console.log(`warm-up: ${api.label} (${WARMUP} PUT, ${2 * WARMUP} GET, untimed) ...`);
        try {
          await warmUp(api, WARMUP);
        } catch (e) {
          console.log(`${api.label}: warm-up failed: ${(e as Error).message}`);
        } finally {
          api.close();
        }
      }
    }
    for (const c of WORKLOADS.has('small') ? [1, 32] : []) {
      for (const t of targets) {
        console.log(`small c=${c} ${t.label} ...`);
        const rows = objload(t, 'small', c);
        for (const op of ['put_4096B', 'get_4096B']) record(`${op} c=${c}`, t.label, rows[op]);
      }
    }
    for (const t of WORKLOADS.has('big') ? targets : []) {
      console.log(`big ${BIG_MIB} MiB ${t.label} ...`);
      const rows = objload(t, 'big', 1);
      for (const [op, row] of Object.entries(rows)) record(op, t.label, row);
    }
    for (const t of WORKLOADS.has('list') ? targets : []) {
      console.log(`list ${LIST_COUNT} ${t.label} ...`);
      const rows = objload(t, 'list', 32);
      for (const [op, row] of Object.entries(rows)) record(op, t.label, row);
    }
    if (WORKLOADS.has('api')) {
      await inRounds('one-client workloads', targets, apiResults, bestOf, (api, t) =>
        runLoad(api, {
          smallOps: OBJECTS,
          bigMiB: WORKLOADS.has('big') ? BIG_MIB : 0,
          rawRead: () => rawReadOfLargest(t.dataDir, BIG_MIB * 1024 * 1024),
          serverCpuUs: () => processTreeCpuUs(t.pids()),
        }),
      );
    }
    if (WORKLOADS.has('wrk')) {
      for (const t of targets) {
        const apis = apisOf(t);
        for (let round = 1; round <= ROUNDS; round++) {
          console.log(`wrk workloads: ${apis.map((a) => a.label).join(', ')} (round ${round} of ${ROUNDS}) ...`);
          try {
            const rs = await runWrkLoads(apis, { seconds: WRK_SECONDS, slices: WRK_SLICES, keys: WRK_KEYS, serverCpuUs: () => processTreeCpuUs(t.pids()), reverse: round % 2 === 0 });
            apis.forEach((api, i) => {
              const prev = wrkResults[api.label];
              wrkResults[api.label] = prev === undefined ? rs[i]! : bestOfWrk(prev, rs[i]!);
              (wrkRounds[api.label] ??= []).push(rs[i]!);
            });
          } catch (e) {
            console.log(`${t.label}: wrk workloads failed: ${(e as Error).message}`);
          }
        }
        for (const api of apis) api.close();
      }
      // Without the latency quantiles (a thousand numbers per figure, kept only to merge slices).
      if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ wrkRounds }, (k, v) => (k === 'quantiles' ? undefined : v)) + '\n', { flag: 'a' });
    }
    if (WORKLOADS.has('big')) (results['raw disk'] ??= {})['disk'] = rawDisk(stratus.dataDir) as unknown as Row;
  } finally {
    swift?.stop();
    await stratus.stop();
  }
  printTable(targets.map((t) => t.label));
  printApiTable();
  printWrkTable();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
