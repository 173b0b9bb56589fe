/**
 * One load generator for both object APIs, so that the Swift API and the S3
 * API (of Stratus, and of real Swift with its s3api middleware) are driven by
 * the same client code and compared on equal terms: Node's http client over
 * keep-alive connections, response bodies discarded, one in-flight request per
 * simulated client.
 *
 * Workloads (the same as objload.py's): 4 KiB PUT then GET at concurrency 1
 * and 32 (req/s, p50/p99 ms), then one big object's PUT and GET (MB/s,
 * MB = 10^6 B). Each run uses its own container/bucket and removes it after.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { S3Client } from '../../test/helpers/s3-client.js';

export interface OpsResult {
  opsPerSec: number;
  p50ms: number;
  p99ms: number;
  /** CPU time of this process per operation (µs): the engine's cost when it runs in-process. */
  cpuUsPerOp: number;
  /** CPU time of the server's processes per operation (µs), when the caller can see them. */
  serverCpuUsPerOp: number | null;
}

export interface LoadResult {
  put4k: { c1: OpsResult; c32: OpsResult };
  get4k: { c1: OpsResult; c32: OpsResult };
  bigPutMBps: number | null;
  bigGetMBps: number | null;
  /** The big GET again with curl (a C client, so the server's rate rather than Node's), when the API offers it; best of 3. */
  bigGetCurlMBps: number | null;
  /** A raw read (O_DIRECT, best of 3) of the file the server stored the big object in, when `rawRead` was given. */
  bigRawReadMBps: number | null;
}

/** What a workload needs from an object API. */
export interface ObjectApi {
  readonly label: string;
  createBucket(name: string): Promise<void>;
  put(bucket: string, key: string, body: Buffer): Promise<void>;
  get(bucket: string, key: string): Promise<void>;
  /** curl arguments (URL and auth) for a GET of the key, if this API can be driven by curl. */
  curlArgs?(bucket: string, key: string): string[];
  /** Removes the given keys and then the bucket (best effort). */
  removeAll(bucket: string, keys: string[]): Promise<void>;
  /**
   * The request for a 4 KiB PUT (body given) or a GET of the key, authorized
   * and ready to be sent as is, again and again, by another client (wrk):
   * `Host` and `Content-Length` are left to that client.
   */
  replayable(method: 'PUT' | 'GET', bucket: string, key: string): { path: string; headers: Record<string, string> };
  /** The API's origin (scheme, host, port). */
  readonly origin: string;
  close(): void;
}

interface Res {
  status: number;
  text: string;
}

function send(agent: Agent, url: URL, method: string, path: string, headers: Record<string, string>, body?: Buffer, keep = false): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers, agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (keep || (res.statusCode ?? 0) >= 300) parts.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function must(r: Res, what: string, ok: number[]): void {
  if (!ok.includes(r.status)) throw new Error(`${what}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
}

/** The Swift API: a storage URL (…/v1/AUTH_x) and a token. */
export function swiftApi(label: string, storageUrl: string, token: string): ObjectApi {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const url = new URL(storageUrl);
  const base = url.pathname.replace(/\/$/, '');
  const enc = (s: string) => encodeURIComponent(s);
  return {
    label,
    async createBucket(name) {
      must(await send(agent, url, 'PUT', `${base}/${enc(name)}`, { 'x-auth-token': token, 'content-length': '0' }), 'create container', [201, 202]);
    },
    async put(b, k, body) {
      must(await send(agent, url, 'PUT', `${base}/${enc(b)}/${enc(k)}`, { 'x-auth-token': token, 'content-length': String(body.length), 'content-type': 'application/octet-stream' }, body), 'put', [201]);
    },
    async get(b, k) {
      must(await send(agent, url, 'GET', `${base}/${enc(b)}/${enc(k)}`, { 'x-auth-token': token }), 'get', [200]);
    },
    curlArgs: (b, k) => ['-H', `X-Auth-Token: ${token}`, `${url.origin}${base}/${enc(b)}/${enc(k)}`],
    origin: url.origin,
    replayable: (method, b, k) => ({
      path: `${base}/${enc(b)}/${enc(k)}`,
      headers: { 'X-Auth-Token': token, ...(method === 'PUT' ? { 'Content-Type': 'application/octet-stream' } : {}) },
    }),
    async removeAll(b, keys) {
      await runOps(keys.length, 16, async (i) => {
        await send(agent, url, 'DELETE', `${base}/${enc(b)}/${enc(keys[i]!)}`, { 'x-auth-token': token }).catch(() => undefined);
      });
      await send(agent, url, 'DELETE', `${base}/${enc(b)}`, { 'x-auth-token': token }).catch(() => undefined);
    },
    close: () => agent.destroy(),
  };
}

/** The S3 API: path-style, SigV4 with UNSIGNED-PAYLOAD (what boto3 does over TLS). */
export function s3Api(label: string, endpoint: string, access: string, secret: string, region = 'RegionOne'): ObjectApi {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const s3 = new S3Client({ endpoint, access, secret, region, agent });
  return {
    label,
    async createBucket(name) {
      must(await s3.request('PUT', `/${name}`), 'create bucket', [200]);
    },
    async put(b, k, body) {
      must(await s3.request('PUT', `/${b}/${k}`, { body, payload: 'unsigned', discard: true }), 'put', [200]);
    },
    async get(b, k) {
      must(await s3.request('GET', `/${b}/${k}`, { discard: true }), 'get', [200]);
    },
    origin: new URL(endpoint).origin,
    replayable(method, b, k) {
      // Signed now (SigV4; a PUT's body UNSIGNED-PAYLOAD, so any body goes); the server accepts the same signature
      // again within its 15-minute window.
      const signed = s3.sign(method, `/${b}/${k}`, method === 'PUT' ? { payload: 'unsigned' } : {});
      const headers: Record<string, string> = {};
      for (const [h, v] of Object.entries(signed.headers)) if (h !== 'host' && h !== 'content-length') headers[h] = v;
      return { path: signed.pathQs, headers };
    },
    async removeAll(b, keys) {
      for (let i = 0; i < keys.length; i += 1000) {
        const xml = `<Delete><Quiet>true</Quiet>${keys.slice(i, i + 1000).map((k) => `<Object><Key>${k}</Key></Object>`).join('')}</Delete>`;
        await s3.request('POST', `/${b}`, { query: { delete: '' }, body: xml }).catch(() => undefined);
      }
      await s3.request('DELETE', `/${b}`).catch(() => undefined);
    },
    close: () => agent.destroy(),
  };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

export async function runOps(total: number, concurrency: number, op: (i: number) => Promise<void>, serverCpuUs?: () => number): Promise<OpsResult> {
  const lat: number[] = [];
  let next = 0;
  const server0 = serverCpuUs?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t = performance.now();
        await op(i);
        lat.push(performance.now() - t);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  const serverCpuUsPerOp = serverCpuUs && server0 !== undefined ? (serverCpuUs() - server0) / total : null;
  return { opsPerSec: total / secs, p50ms: pct(lat, 50), p99ms: pct(lat, 99), cpuUsPerOp: (cpu.user + cpu.system) / total, serverCpuUsPerOp };
}

/** The better of two results of the same workloads (each figure on its own; rates: higher is better). */
export function bestOf(a: LoadResult, b: LoadResult): LoadResult {
  const ops = (x: OpsResult, y: OpsResult) => (y.opsPerSec > x.opsPerSec ? y : x);
  const max = (x: number | null, y: number | null) => (x === null ? y : y === null ? x : Math.max(x, y));
  return {
    put4k: { c1: ops(a.put4k.c1, b.put4k.c1), c32: ops(a.put4k.c32, b.put4k.c32) },
    get4k: { c1: ops(a.get4k.c1, b.get4k.c1), c32: ops(a.get4k.c32, b.get4k.c32) },
    bigPutMBps: max(a.bigPutMBps, b.bigPutMBps),
    bigGetMBps: max(a.bigGetMBps, b.bigGetMBps),
    bigGetCurlMBps: max(a.bigGetCurlMBps, b.bigGetCurlMBps),
    bigRawReadMBps: max(a.bigRawReadMBps, b.bigRawReadMBps),
  };
}

/**
 * CPU time (µs) used so far by the given processes and all their
 * descendants (from /proc; a server that forks workers is counted whole).
 */
export function processTreeCpuUs(rootPids: number[]): number {
  const stats = new Map<number, { ppid: number; cpu: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = parseProcStat(readFileSync(`/proc/${name}/stat`, 'utf8'));
      stats.set(Number(name), { ppid: st.ppid, cpu: st.cpuUs });
    } catch {
      /* exited */
    }
  }
  const wanted = new Set(rootPids);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, s] of stats) if (!wanted.has(pid) && wanted.has(s.ppid)) wanted.add(pid), (grew = true);
  }
  let total = 0;
  for (const pid of wanted) total += stats.get(pid)?.cpu ?? 0;
  return total;
}

/** What the benches read of a /proc/<pid>[/task/<tid>]/stat text: command name, parent pid, CPU time (µs, user + system). */
export function parseProcStat(st: string): { name: string; ppid: number; cpuUs: number } {
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  const tick = 1e6 / 100; // USER_HZ
  return { name: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')), ppid: Number(f[1]), cpuUs: (Number(f[11]) + Number(f[12])) * tick };
}

/** CPU time (µs) of each thread of a process, by `name:tid`. */
export function threadsCpuUs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = parseProcStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
      out.set(`${st.name}:${tid}`, st.cpuUs);
    } catch {
      /* thread gone */
    }
  }
  return out;
}

/** MB/s of the best of `n` O_DIRECT reads of the largest `*.data` file below `dir` (null if none has at least `minBytes`). */
export function rawReadOfLargest(dir: string, minBytes: number, n = 3): number | null {
  const r = spawnSync('find', [dir, '-type', 'f', '-name', '*.data', '-size', `+${Math.max(0, Math.floor(minBytes / 1024) - 1)}k`, '-printf', '%s %p\n'], { encoding: 'utf8' });
  const files = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => ({ size: Number(l.slice(0, l.indexOf(' '))), path: l.slice(l.indexOf(' ') + 1) }))
    .sort((x, y) => y.size - x.size);
  const f = files[0];
  if (!f) return null;
  let best = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const d = spawnSync('dd', [`if=${f.path}`, 'of=/dev/null', 'bs=4M', 'iflag=direct'], { stdio: 'ignore' });
    if (d.status !== 0) return null;
    best = Math.max(best, f.size / 1e6 / ((performance.now() - t0) / 1000));
  }
  return best;
}

export const fmtOps = (name: string, r: OpsResult) =>
  `${name.padEnd(18)} ${r.opsPerSec.toFixed(0).padStart(7)} req/s   p50 ${r.p50ms.toFixed(2).padStart(7)} ms   p99 ${r.p99ms.toFixed(2).padStart(7)} ms` +
  (r.serverCpuUsPerOp !== null ? `   server CPU ${r.serverCpuUsPerOp.toFixed(0).padStart(5)} µs/req` : '');

export interface LoadOptions {
  /** 4 KiB objects at concurrency 32 (a quarter of them, at least 100, at concurrency 1). */
  smallOps?: number;
  /** Size of the big object in MiB; 0 skips it. */
  bigMiB?: number;
  log?: (line: string) => void;
  /** Called after the big PUT: MB/s of a raw read of the file holding the object on the server's disk (null if not found). */
  rawRead?: () => number | null;
  /** Cumulative CPU time (µs) of the server's processes, to report CPU per request. */
  serverCpuUs?: () => number;
}

/**
 * Untimed warm-up: `ops` 4 KiB PUTs at concurrency 32, each object read back
 * twice, then removed. A JIT-compiled server (and client) runs its hot paths
 * in the interpreter for the first thousands of requests; the benchmarks
 * measure a server as it runs, so every target (real Swift too) gets the
 * same warm-up before anything is timed.
 */
export async function warmUp(api: ObjectApi, ops = 3000): Promise<void> {
  if (ops <= 0) return;
  const bucket = `warm-${randomBytes(4).toString('hex')}`;
  const body = randomBytes(4096);
  const keys = Array.from({ length: ops }, (_, i) => `w-${i}`);
  await api.createBucket(bucket);
  try {
    await runOps(ops, 32, (i) => api.put(bucket, keys[i]!, body));
    await runOps(ops * 2, 32, (i) => api.get(bucket, keys[i % ops]!));
  } finally {
    await api.removeAll(bucket, keys);
  }
}

/** Runs the workloads against one API; creates and removes its own bucket. */
export async function runLoad(api: ObjectApi, o: LoadOptions = {}): Promise<LoadResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const bucket = `bench-${randomBytes(4).toString('hex')}`;
  const smallOps = o.smallOps ?? 2000;
  const n1 = Math.max(100, Math.floor(smallOps / 4));
  const bigMiB = o.bigMiB ?? 256;
  const body = randomBytes(4096);
  const keys: string[] = [];
  await api.createBucket(bucket);
  try {
    const put1 = await runOps(n1, 1, (i) => api.put(bucket, `c1-${i}`, body), o.serverCpuUs);
    for (let i = 0; i < n1; i++) keys.push(`c1-${i}`);
    log(fmtOps(`${api.label} PUT 4 KiB c=1`, put1));
    const put32 = await runOps(smallOps, 32, (i) => api.put(bucket, `c32-${i}`, body), o.serverCpuUs);
    for (let i = 0; i < smallOps; i++) keys.push(`c32-${i}`);
    log(fmtOps(`${api.label} PUT 4 KiB c=32`, put32));
    const get1 = await runOps(n1, 1, (i) => api.get(bucket, `c1-${i}`), o.serverCpuUs);
    log(fmtOps(`${api.label} GET 4 KiB c=1`, get1));
    const get32 = await runOps(smallOps, 32, (i) => api.get(bucket, `c32-${i}`), o.serverCpuUs);
    log(fmtOps(`${api.label} GET 4 KiB c=32`, get32));
    let bigPutMBps: number | null = null;
    let bigGetMBps: number | null = null;
    let bigGetCurlMBps: number | null = null;
    let bigRawReadMBps: number | null = null;
    if (bigMiB > 0) {
      const big = randomBytes(bigMiB * 1024 * 1024);
      keys.push('big');
      let t = performance.now();
      await api.put(bucket, 'big', big);
      bigPutMBps = big.length / 1e6 / ((performance.now() - t) / 1000);
      t = performance.now();
      await api.get(bucket, 'big');
      bigGetMBps = big.length / 1e6 / ((performance.now() - t) / 1000);
      log(`${api.label} PUT ${bigMiB} MiB`.padEnd(18) + ` ${bigPutMBps.toFixed(0).padStart(7)} MB/s`);
      log(`${api.label} GET ${bigMiB} MiB`.padEnd(18) + ` ${bigGetMBps.toFixed(0).padStart(7)} MB/s`);
      const curl = api.curlArgs?.(bucket, 'big');
      for (let i = 0; curl && i < 3; i++) {
        const r = spawnSync('curl', ['-sf', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', ...curl], { encoding: 'utf8' });
        const [size, secs] = r.stdout.split(' ').map(Number);
        if (r.status === 0 && size === big.length && secs) bigGetCurlMBps = Math.max(bigGetCurlMBps ?? 0, size / 1e6 / secs);
      }
      if (bigGetCurlMBps !== null) log(`${api.label} GET ${bigMiB} MiB (curl, best of 3)`.padEnd(18) + ` ${bigGetCurlMBps.toFixed(0).padStart(7)} MB/s`);
      bigRawReadMBps = o.rawRead?.() ?? null;
      if (bigRawReadMBps !== null) log(`${api.label} raw read of the stored file (O_DIRECT, best of 3)`.padEnd(18) + ` ${bigRawReadMBps.toFixed(0).padStart(7)} MB/s`);
    }
    return { put4k: { c1: put1, c32: put32 }, get4k: { c1: get1, c32: get32 }, bigPutMBps, bigGetMBps, bigGetCurlMBps, bigRawReadMBps };
  } finally {
    await api.removeAll(bucket, keys);
  }
}
