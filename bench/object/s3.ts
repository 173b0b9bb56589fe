/**
 * S3 API benchmark (figures only, no assertions).
 *
 *   npx tsx bench/object/s3.ts [--small-ops 2000] [--big-mib 256] [--endpoint http://127.0.0.1:8701 --access AK --secret SK]
 *
 * Without --endpoint it builds nothing itself: it starts the built cloud
 * (`dist/`, as `./stratus up` leaves it) on a temp data dir with
 * UV_THREADPOOL_SIZE=16, makes an EC2 credential for the admin through the
 * identity API, and runs against its S3 listener. Workloads, the same as
 * the Swift API's in bench/object so they can be compared: 4 KiB PUT and
 * GET requests/s with p50/p99 latency at concurrency 1 and 32, then one
 * 256 MiB object's PUT and GET in MB/s. Requests are signed SigV4 with
 * UNSIGNED-PAYLOAD (what boto3 does over TLS), over keep-alive connections.
 *
 * `runS3Bench()` is exported for a runner that puts several APIs side by side.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { S3Client } from '../../test/helpers/s3-client.js';
import { freePort } from '../lib/cloud.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface S3BenchOptions {
  endpoint: string;
  access: string;
  secret: string;
  region?: string;
  smallOps?: number;
  bigMiB?: number;
  log?: (line: string) => void;
}

export interface OpsResult {
  opsPerSec: number;
  p50ms: number;
  p99ms: number;
}

export interface S3BenchResult {
  put4k: { c1: OpsResult; c32: OpsResult };
  get4k: { c1: OpsResult; c32: OpsResult };
  bigPutMBps: number;
  bigGetMBps: number;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

async function runOps(total: number, concurrency: number, op: (i: number) => Promise<void>): Promise<OpsResult> {
  const lat: number[] = [];
  let next = 0;
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
  lat.sort((a, b) => a - b);
  return { opsPerSec: total / secs, p50ms: pct(lat, 50), p99ms: pct(lat, 99) };
}

/** Runs the workloads against an S3 endpoint; creates and removes its own bucket. */
export async function runS3Bench(o: S3BenchOptions): Promise<S3BenchResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const s3 = new S3Client({ endpoint: o.endpoint, access: o.access, secret: o.secret, region: o.region ?? 'RegionOne', agent });
  const bucket = `bench-${randomBytes(4).toString('hex')}`;
  const smallOps = o.smallOps ?? 2000;
  const bigMiB = o.bigMiB ?? 256;
  const must = (r: { status: number; text: string }, what: string, want = 200) => {
    if (r.status !== want) throw new Error(`${what}: ${r.status} ${r.text}`);
  };
  must(await s3.request('PUT', `/${bucket}`), 'create bucket');
  const body = randomBytes(4096);
  const fmt = (name: string, r: OpsResult) => log(`${name.padEnd(18)} ${r.opsPerSec.toFixed(0).padStart(7)} req/s   p50 ${r.p50ms.toFixed(2).padStart(7)} ms   p99 ${r.p99ms.toFixed(2).padStart(7)} ms`);
  try {
    const n1 = Math.max(100, Math.floor(smallOps / 4));
    const put1 = await runOps(n1, 1, async (i) => must(await s3.request('PUT', `/${bucket}/c1-${i}`, { body, payload: 'unsigned', discard: true }), 'put'));
    fmt('PUT 4 KiB c=1', put1);
    const put32 = await runOps(smallOps, 32, async (i) => must(await s3.request('PUT', `/${bucket}/c32-${i}`, { body, payload: 'unsigned', discard: true }), 'put'));
    fmt('PUT 4 KiB c=32', put32);
    const get1 = await runOps(n1, 1, async (i) => must(await s3.request('GET', `/${bucket}/c1-${i}`, { discard: true }), 'get'));
    fmt('GET 4 KiB c=1', get1);
    const get32 = await runOps(smallOps, 32, async (i) => must(await s3.request('GET', `/${bucket}/c32-${i % smallOps}`, { discard: true }), 'get'));
    fmt('GET 4 KiB c=32', get32);

    const big = randomBytes(bigMiB * 1024 * 1024);
    let t = performance.now();
    must(await s3.request('PUT', `/${bucket}/big`, { body: big, payload: 'unsigned', discard: true }), 'big put');
    const bigPutMBps = (big.length / 1e6) / ((performance.now() - t) / 1000);
    t = performance.now();
    must(await s3.request('GET', `/${bucket}/big`, { discard: true }), 'big get');
    const bigGetMBps = (big.length / 1e6) / ((performance.now() - t) / 1000);
    log(`PUT ${bigMiB} MiB         ${bigPutMBps.toFixed(0).padStart(7)} MB/s`);
    log(`GET ${bigMiB} MiB         ${bigGetMBps.toFixed(0).padStart(7)} MB/s`);
    return { put4k: { c1: put1, c32: put32 }, get4k: { c1: get1, c32: get32 }, bigPutMBps, bigGetMBps };
  } finally {
    // Clean up: every key, then the bucket.
    const keys: string[] = [];
    for (let i = 0; i < Math.max(100, Math.floor(smallOps / 4)); i++) keys.push(`c1-${i}`);
    for (let i = 0; i < smallOps; i++) keys.push(`c32-${i}`);
    keys.push('big');
    for (let i = 0; i < keys.length; i += 1000) {
      const xml = `<Delete><Quiet>true</Quiet>${keys.slice(i, i + 1000).map((k) => `<Object><Key>${k}</Key></Object>`).join('')}</Delete>`;
      await s3.request('POST', `/${bucket}`, { query: { delete: '' }, body: xml }).catch(() => undefined);
    }
    await s3.request('DELETE', `/${bucket}`).catch(() => undefined);
    agent.destroy();
  }
}

/** Starts dist/ on a temp data dir; returns the S3 endpoint and an admin EC2 credential. */
async function startCloud(): Promise<{ endpoint: string; access: string; secret: string; stop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-s3bench-'));
  const port = await freePort();
  const s3Port = await freePort();
  const proc = spawn(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'up', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--s3-listen', `127.0.0.1:${s3Port}`, '--no-seed', '--log-level', 'warn'], {
    env: { ...process.env, UV_THREADPOOL_SIZE: '16', STRATUS_COMPUTE__ACCEL: 'tcg' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((res, rej) => {
    proc.stdout!.on('data', (d: Buffer) => d.toString().includes('stratus ready') && res());
    proc.once('exit', (c) => rej(new Error(`stratus up exited ${c}`)));
  });
  const url = `http://127.0.0.1:${port}/identity/v3`;
  const password = readFileSync(join(dataDir, 'secrets', 'admin-password'), 'utf8').trim();
  const auth = await fetch(`${url}/auth/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } }),
  });
  const token = auth.headers.get('x-subject-token')!;
  const { token: t } = (await auth.json()) as { token: { user: { id: string }; project: { id: string } } };
  const made = await fetch(`${url}/users/${t.user.id}/credentials/OS-EC2`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': token }, body: JSON.stringify({ tenant_id: t.project.id }),
  });
  const { credential } = (await made.json()) as { credential: { access: string; secret: string } };
  return {
    endpoint: `http://127.0.0.1:${s3Port}`,
    access: credential.access,
    secret: credential.secret,
    stop: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const given = arg('endpoint');
  const target = given ? { endpoint: given, access: arg('access')!, secret: arg('secret')!, stop: async () => {} } : await startCloud();
  try {
    console.log(`S3 API at ${target.endpoint}`);
    await runS3Bench({ ...target, smallOps: Number(arg('small-ops') ?? 2000), bigMiB: Number(arg('big-mib') ?? 256) });
  } finally {
    await target.stop();
  }
}
