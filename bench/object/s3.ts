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
 * bench/object/run.ts runs the same workloads (bench/object/load.ts) on the
 * Swift and S3 APIs side by side, in one run, next to real Swift.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runLoad, s3Api, warmUp, type LoadResult } from './load.js';
import { ensureBuilt, freePort } from '../lib/cloud.js';

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

/** Runs the workloads of bench/object/load.ts against an S3 endpoint. */
export async function runS3Bench(o: S3BenchOptions): Promise<LoadResult> {
  const api = s3Api('S3', o.endpoint, o.access, o.secret, o.region);
  try {
    await warmUp(api);
    return await runLoad(api, { smallOps: o.smallOps ?? 2000, bigMiB: o.bigMiB ?? 256, ...(o.log ? { log: o.log } : {}) });
  } finally {
    api.close();
  }
}

/** Starts dist/ on a temp data dir; returns the S3 endpoint and an admin EC2 credential. */
async function startCloud(): Promise<{ endpoint: string; access: string; secret: string; stop: () => Promise<void> }> {
  ensureBuilt();
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
