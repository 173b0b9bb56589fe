/**
 * Image service benchmark (prints figures, asserts nothing):
 *
 *  1. upload and download MB/s of a 1 GiB image through the HTTP API, next
 *     to a plain `cp` of the same file on the same disk (ratio in one run),
 *     with the server's RSS growth during each transfer;
 *  2. image list latency (p50/p99) with 1,000 images.
 *
 * The cloud runs as its own process (`stratus up --no-seed` from the
 * sources, via tsx), so the client's work is not counted in its RSS.
 *
 *   npx tsx bench/image/run.ts [--size-mb 1024] [--images 1000] [--requests 300]
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync, closeSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomFillSync } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { freePort, rssMb } from '../lib/cloud.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SIZE = arg('size-mb', 1024) * 1024 * 1024;
const IMAGES = arg('images', 1000);
const REQUESTS = arg('requests', 300);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const mbps = (bytes: number, ms: number) => bytes / 1024 / 1024 / (ms / 1000);

/** Samples a process's RSS every 50 ms until stopped; returns the peak. */
function rssSampler(pid: number) {
  let peak = rssMb(pid);
  const t = setInterval(() => {
    try {
      peak = Math.max(peak, rssMb(pid));
    } catch {
      /* exited */
    }
  }, 50);
  return { stop: () => (clearInterval(t), Math.max(peak, rssMb(pid))) };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'stratus-bench-image-'));
  const dataDir = join(work, 'data');
  const src = join(work, 'source.img');
  console.log(`# image bench: ${SIZE / 1024 / 1024} MiB image, ${IMAGES} images for the list, data in ${work}`);
  // A source file of random-looking data (incompressible), written in 8 MiB blocks.
  {
    const fd = openSync(src, 'w');
    const block = Buffer.alloc(8 * 1024 * 1024);
    for (let done = 0; done < SIZE; done += block.length) {
      randomFillSync(block);
      writeSync(fd, block, 0, Math.min(block.length, SIZE - done));
    }
    closeSync(fd);
  }
  const srcMd5 = createHash('md5').update(readFileSync(src)).digest('hex');

  // Plain cp on the same disk (warm cache, as the uploads below).
  execFileSync('sync');
  let t0 = performance.now();
  execFileSync('cp', [src, join(work, 'copy.img')]);
  const cpMs = performance.now() - t0;
  t0 = performance.now();
  execFileSync('sync', ['-f', join(work, 'copy.img')]);
  const cpSyncMs = cpMs + (performance.now() - t0);
  rmSync(join(work, 'copy.img'));

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'up', '--no-seed', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--s3-listen', `127.0.0.1:${await freePort()}`, '--log-level', 'warn'], {
    cwd: ROOT,
    env: { ...process.env, STRATUS_IDENTITY__PASSWORD_HASH_COST: '4', STRATUS_COMPUTE__ACCEL: 'tcg' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((res, rej) => {
      proc.stdout!.on('data', (d: Buffer) => d.toString().includes('stratus ready') && res());
      proc.once('exit', (code) => rej(new Error(`stratus exited with ${code}`)));
    });
    const pid = proc.pid!;
    const password = readFileSync(join(dataDir, 'secrets', 'admin-password'), 'utf8').trim();
    const tr = await fetch(`${url}/identity/v3/auth/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } }, scope: { project: { name: 'admin', domain: { id: 'default' } } } } }),
    });
    const token = tr.headers.get('x-subject-token')!;
    const api = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${url}/image/v2${path}`, { method, headers: { 'x-auth-token': token, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : null };
    };
    const img = await api('POST', '/images', { name: 'big', disk_format: 'raw', container_format: 'bare' });
    const id = img.json.id as string;

    // Upload
    const rssBefore = rssMb(pid);
    let sampler = rssSampler(pid);
    t0 = performance.now();
    const upStatus = await new Promise<number>((res, rej) => {
      const req = request(`${url}/image/v2/images/${id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream', 'content-length': String(SIZE) } });
      req.on('response', (r) => {
        r.resume();
        r.on('end', () => res(r.statusCode!));
      });
      req.on('error', rej);
      createReadStream(src, { highWaterMark: 1024 * 1024 }).pipe(req);
    });
    const upMs = performance.now() - t0;
    const upPeak = sampler.stop();
    const after = await api('GET', `/images/${id}`);
    if (upStatus !== 204 || after.json.checksum !== srcMd5) throw new Error(`upload failed: ${upStatus} ${JSON.stringify(after.json)}`);

    // Download to a file on the same disk
    const dst = join(work, 'download.img');
    const rssBeforeDown = rssMb(pid);
    sampler = rssSampler(pid);
    t0 = performance.now();
    await new Promise<void>((res, rej) => {
      const req = request(`${url}/image/v2/images/${id}/file`, { headers: { 'x-auth-token': token } }, (r) => {
        if (r.statusCode !== 200) return rej(new Error(`download: ${r.statusCode}`));
        pipeline(r, createWriteStream(dst, { highWaterMark: 1024 * 1024 })).then(res, rej);
      });
      req.on('error', rej);
      req.end();
    });
    const downMs = performance.now() - t0;
    const downPeak = sampler.stop();
    if (statSync(dst).size !== SIZE) throw new Error('download size mismatch');
    const dstMd5 = createHash('md5').update(readFileSync(dst)).digest('hex');
    rmSync(dst);

    const mb = SIZE / 1024 / 1024;
    console.log('');
    console.log(`cp (same disk, no fsync)         ${(cpMs / 1000).toFixed(2)} s   ${mbps(SIZE, cpMs).toFixed(0)} MB/s`);
    console.log(`cp + sync                        ${(cpSyncMs / 1000).toFixed(2)} s   ${mbps(SIZE, cpSyncMs).toFixed(0)} MB/s`);
    console.log(`upload   PUT /file (md5+sha512, fsync)  ${(upMs / 1000).toFixed(2)} s   ${mbps(SIZE, upMs).toFixed(0)} MB/s   ratio to cp ${(cpMs / upMs).toFixed(2)}   server RSS +${(upPeak - rssBefore).toFixed(1)} MB (peak ${upPeak.toFixed(0)} MB)`);
    console.log(`download GET /file → file               ${(downMs / 1000).toFixed(2)} s   ${mbps(SIZE, downMs).toFixed(0)} MB/s   ratio to cp ${(cpMs / downMs).toFixed(2)}   server RSS +${(downPeak - rssBeforeDown).toFixed(1)} MB (peak ${downPeak.toFixed(0)} MB)   md5 ${dstMd5 === srcMd5 ? 'ok' : 'MISMATCH'}`);
    console.log(`(${mb} MiB each)`);

    // List latency with IMAGES images. The admin project's image_count quota
    // (100 by default) is lifted first; there is no quota API for images yet,
    // so the bench writes the limit row the QuotaEngine reads.
    await api('DELETE', `/images/${id}`);
    {
      const db = new Database(join(dataDir, 'stratus.db'));
      const project = (await (await fetch(`${url}/identity/v3/auth/tokens`, { headers: { 'x-auth-token': token, 'x-subject-token': token } })).json()) as { token: { project: { id: string } } };
      db.prepare('DELETE FROM quota_limits WHERE project_id = ? AND resource = ?').run(project.token.project.id, 'image_count');
      db.prepare('INSERT INTO quota_limits (project_id, resource, hard_limit) VALUES (?, ?, ?)').run(project.token.project.id, 'image_count', -1);
      db.close();
    }
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const call = (method: string, path: string, body?: string) =>
      new Promise<{ status: number; ms: number; body: string }>((res, rej) => {
        const s = performance.now();
        const req = request(`${url}/image/v2${path}`, { method, agent, headers: { 'x-auth-token': token, ...(body ? { 'content-type': 'application/json' } : {}) } }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (d: Buffer) => chunks.push(d));
          r.on('end', () => res({ status: r.statusCode!, ms: performance.now() - s, body: Buffer.concat(chunks).toString() }));
        });
        req.on('error', rej);
        req.end(body);
      });
    t0 = performance.now();
    for (let i = 0; i < IMAGES; i += 8) {
      const rs = await Promise.all(
        Array.from({ length: Math.min(8, IMAGES - i) }, (_, k) =>
          call('POST', '/images', JSON.stringify({ name: `img-${String(i + k).padStart(4, '0')}`, disk_format: (i + k) % 2 ? 'qcow2' : 'raw', container_format: 'bare', tags: [(i + k) % 10 === 0 ? 'tenth' : 'other'], os_distro: 'bench' })),
        ),
      );
      for (const r of rs) if (r.status !== 201) throw new Error(`create image: ${r.status} ${r.body}`);
    }
    const createMs = performance.now() - t0;
    console.log('');
    console.log(`created ${IMAGES} images in ${(createMs / 1000).toFixed(1)} s (${(IMAGES / (createMs / 1000)).toFixed(0)}/s, 8 concurrent)`);
    for (const [label, path] of [
      ['GET /v2/images (default page of 25)', '/images'],
      ['GET /v2/images?limit=1000', '/images?limit=1000'],
      ['GET /v2/images?sort=name:asc&limit=25&marker=(page 20)', null],
      ['GET /v2/images?tag=tenth&disk_format=raw', '/images?tag=tenth&disk_format=raw'],
    ] as [string, string | null][]) {
      let p = path;
      if (p === null) {
        const r = JSON.parse((await call('GET', '/images?sort=name:asc&limit=500')).body);
        p = `/images?sort=name:asc&limit=25&marker=${r.images[499].id}`;
      }
      for (let i = 0; i < 20; i++) await call('GET', p); // warm-up
      const counts: string[] = [];
      const lat: number[] = [];
      const n = p.includes('limit=1000') ? Math.max(20, Math.floor(REQUESTS / 5)) : REQUESTS;
      for (let i = 0; i < n; i++) {
        const r = await call('GET', p);
        if (r.status !== 200) throw new Error(`${p}: ${r.status}`);
        if (i === 0) counts.push(`${JSON.parse(r.body).images.length} images/page`);
        lat.push(r.ms);
      }
      console.log(`${label.padEnd(56)} p50 ${pct(lat, 50).toFixed(2)} ms   p99 ${pct(lat, 99).toFixed(2)} ms   (${n} sequential requests; ${counts.join('')})`);
    }
    agent.destroy();
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
