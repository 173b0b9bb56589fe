/**
 * bench/identity: token validation and an authenticated list at concurrency
 * 1 and 16, token issue (password and token methods), idle RSS and time to
 * ready. Prints figures; asserts nothing. Run: `npx tsx bench/identity/run.ts`
 * (after `./stratus up` has built dist/ once).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureBuilt, freePort, rssMb } from '../lib/cloud.js';
import { wrk, fmt } from '../lib/wrk.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);


async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-bench-id-'));
  ensureBuilt();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const cost = Number(process.env.BENCH_BCRYPT_COST ?? 12);
  const t0 = performance.now();
  const proc = spawn(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'up', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--s3-listen', `127.0.0.1:${await freePort()}`, '--log-level', 'warn'], {
    env: { ...process.env, STRATUS_IDENTITY__PASSWORD_HASH_COST: String(cost) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((res, rej) => {
    proc.stdout!.on('data', (d: Buffer) => d.toString().includes('stratus ready') && res());
    proc.once('exit', (c) => rej(new Error(`exited ${c}`)));
  });
  const readyMs = performance.now() - t0;
  try {
    const pw = readFileSync(join(dataDir, 'secrets', 'admin-password'), 'utf8').trim();
    const authBody = JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: pw } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } },
    });
    const r = await fetch(`${url}/identity/v3/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: authBody });
    const token = r.headers.get('x-subject-token')!;
    await new Promise((res) => setTimeout(res, 3000));
    const idleRss = rssMb(proc.pid!);

    console.log(`# bench/identity  (${SECONDS}s per run, wrk from Debian, server and client share 2 cores)`);
    console.log(`start to ready line (first start, fresh data dir, includes migrations and bcrypt of seeded users): ${readyMs.toFixed(0)} ms`);
    console.log(`idle RSS after start: ${idleRss.toFixed(1)} MB`);
    const h = { 'x-auth-token': token, 'x-subject-token': token };
    for (const c of [1, 16]) {
      console.log(`GET /v3/auth/tokens (validate)   c=${String(c).padStart(2)}: ${fmt(await wrk({ url: `${url}/identity/v3/auth/tokens?nocatalog`, connections: c, seconds: SECONDS, headers: h }))}`);
    }
    for (const c of [1, 16]) {
      console.log(`GET /v3/projects (authenticated) c=${String(c).padStart(2)}: ${fmt(await wrk({ url: `${url}/identity/v3/projects`, connections: c, seconds: SECONDS, headers: { 'x-auth-token': token } }))}`);
    }
    const tokBody = JSON.stringify({ auth: { identity: { methods: ['token'], token: { id: token } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } });
    for (const c of [1, 16]) {
      console.log(`POST /v3/auth/tokens (token)     c=${String(c).padStart(2)}: ${fmt(await wrk({ url: `${url}/identity/v3/auth/tokens`, method: 'POST', connections: c, seconds: SECONDS, headers: { 'content-type': 'application/json' }, body: tokBody }))}`);
    }
    for (const c of [1, 16]) {
      console.log(`POST /v3/auth/tokens (password)  c=${String(c).padStart(2)}: ${fmt(await wrk({ url: `${url}/identity/v3/auth/tokens`, method: 'POST', connections: c, seconds: SECONDS, headers: { 'content-type': 'application/json' }, body: authBody }))}   [bcrypt cost ${cost}]`);
    }
    console.log(`RSS after the runs: ${rssMb(proc.pid!).toFixed(1)} MB`);
  } finally {
    proc.kill('SIGTERM');
    await new Promise((res) => proc.once('exit', res));
    rmSync(dataDir, { recursive: true, force: true });
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
