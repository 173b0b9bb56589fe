/**
 * A 1 GiB image goes up and comes back down through the real HTTP listener
 * while the server's RSS grows by less than 64 MB: data streams through the
 * service, it is never held in memory. (The client runs in a child process,
 * so only the server is measured.) Set STRATUS_SKIP_LARGE_TESTS=1 to skip
 * on small machines.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startImageCloud, type ImageCloud } from './helpers.js';

const GiB = 1024 * 1024 * 1024;
const BLOCK = 1024 * 1024;
// The bound (image service, #3).
const LIMIT_MB = 64;
const skip = process.env.STRATUS_SKIP_LARGE_TESTS === '1' ? 'STRATUS_SKIP_LARGE_TESTS=1' : false;

let c: ImageCloud;
before(async () => {
  if (!skip) c = await startImageCloud();
});
after(async () => {
  await c?.stop();
});

const rssMb = () => process.memoryUsage().rss / 1024 / 1024;
function sampler() {
  let peak = rssMb();
  const t = setInterval(() => (peak = Math.max(peak, rssMb())), 25);
  return () => {
    clearInterval(t);
    return Math.max(peak, rssMb());
  };
}

/**
 * The client runs in a child process so that only the server's memory is
 * measured: it streams 1 GiB of pseudo-random blocks up (or down) and prints
 * the MD5 of what it sent (or received).
 */
const CLIENT = `
const { request } = require('node:http');
const { createHash, randomBytes } = require('node:crypto');
const { Readable } = require('node:stream');
const [mode, url, token, size] = process.argv.slice(1);
const BLOCK = 1 << 20, total = Number(size), md5 = createHash('md5');
if (mode === 'up') {
  const base = randomBytes(BLOCK);
  let i = 0;
  const src = new Readable({ read() {
    if (i * BLOCK >= total) return this.push(null);
    const b = Buffer.from(base); b.writeUInt32LE(i++, 0); md5.update(b); this.push(b);
  } });
  const req = request(url, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream', 'content-length': String(total) } });
  req.on('response', (res) => { res.resume(); res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, md5: md5.digest('hex') }))); });
  src.pipe(req);
} else {
  let n = 0;
  request(url, { headers: { 'x-auth-token': token } }, (res) => {
    res.on('data', (d) => { n += d.length; md5.update(d); });
    res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, md5: md5.digest('hex'), bytes: n })));
  }).end();
}
`;
function client(mode: 'up' | 'down', url: string, token: string, size = GiB): Promise<{ status: number; md5: string; bytes?: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', CLIENT, mode, url, token, String(size)], { maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout))));
  });
}

test('1 GiB upload and download keep RSS growth under 64 MB', { skip, timeout: 600_000 }, async () => {
  const img = await c.create(c.demo.token, { name: 'one-gib' });
  // Warm-up: the same path with 64 MiB each way (hashing workers, JIT, the
  // heap's young generation and socket buffers reach their steady size), so
  // what is measured next is growth with the size of the transfer.
  const warm = await c.create(c.demo.token, { name: 'warm' });
  const warmUrl = new URL(`/image/v2/images/${warm.id}/file`, c.baseUrl()).toString();
  assert.equal((await client('up', warmUrl, c.demo.token, 64 * BLOCK)).status, 204);
  assert.equal((await client('down', warmUrl, c.demo.token, 64 * BLOCK)).status, 200);
  (globalThis as { gc?: () => void }).gc?.();
  const base = rssMb();

  const url = new URL(`/image/v2/images/${img.id}/file`, c.baseUrl()).toString();
  let stop = sampler();
  const t0 = performance.now();
  const up = await client('up', url, c.demo.token);
  const upMs = performance.now() - t0;
  const upPeak = stop();
  assert.equal(up.status, 204);
  const meta = (await c.image(img.id))!;
  assert.equal(meta.size, GiB);
  assert.equal(meta.checksum, up.md5);

  stop = sampler();
  const t1 = performance.now();
  const down = await client('down', url, c.demo.token);
  const downMs = performance.now() - t1;
  const downPeak = stop();
  assert.equal(down.status, 200);
  assert.equal(down.bytes, GiB);
  assert.equal(down.md5, meta.checksum);
  const mbps = (ms: number) => (1024 / (ms / 1000)).toFixed(0);
  console.log(`# 1 GiB upload ${mbps(upMs)} MB/s, RSS +${(upPeak - base).toFixed(1)} MB; download ${mbps(downMs)} MB/s, RSS +${(downPeak - base).toFixed(1)} MB`);
  assert.ok(upPeak - base < LIMIT_MB, `upload grew RSS by ${(upPeak - base).toFixed(1)} MB`);
  assert.ok(downPeak - base < LIMIT_MB, `download grew RSS by ${(downPeak - base).toFixed(1)} MB`);
  assert.equal((await c.api('DELETE', `/images/${img.id}`, { token: c.demo.token })).status, 204);
});
