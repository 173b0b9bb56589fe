/**
 * Image data: upload (checksums, sizes, status machine, failures that leave
 * the image queued with nothing stored), download (Content-MD5, Range),
 * safety of qcow2 data, and the quotas on count and bytes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startImageCloud, sleep, type ImageCloud } from './helpers.js';

let c: ImageCloud;
const work = mkdtempSync(join(tmpdir(), 'stratus-image-data-'));
before(async () => {
  c = await startImageCloud();
});
after(async () => {
  await c?.stop();
  rmSync(work, { recursive: true, force: true });
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');

test('upload: queued → active with size, checksum, sha512 and virtual size; download returns the same bytes', async () => {
  const data = randomBytes(300_000);
  const img = await c.create(c.demo.token, { name: 'up' });
  const r = await c.upload(c.demo.token, img.id, data);
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '');
  const after = (await c.image(img.id))!;
  assert.equal(after.status, 'active');
  assert.equal(after.size, data.length);
  assert.equal(after.virtual_size, data.length);
  assert.equal(after.checksum, md5(data));
  assert.equal(after.os_hash_algo, 'sha512');
  assert.equal(after.os_hash_value, sha512(data));
  const d = await c.download(c.demo.token, img.id);
  assert.equal(d.status, 200);
  assert.equal(d.headers['content-type'], 'application/octet-stream');
  assert.equal(d.headers['content-md5'], md5(data), 'Glance sends the hex MD5 in Content-MD5');
  assert.equal(Number(d.headers['content-length']), data.length);
  assert.ok(d.body.equals(data), 'same bytes');
  const part = await c.download(c.demo.token, img.id, { range: 'bytes=1000-199999' });
  assert.equal(part.status, 206);
  assert.ok(part.body.equals(data.subarray(1000, 200000)));
  assert.equal(part.headers['content-md5'], undefined, 'no whole-image MD5 on a partial response');
});

test('download with Range: 206 with Content-Range, suffix and open ranges; 416 when unsatisfiable', async () => {
  const img = await c.create(c.demo.token, { name: 'range' });
  await c.upload(c.demo.token, img.id, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ');
  const get = (range: string) => c.api('GET', `/images/${img.id}/file`, { token: c.demo.token, headers: { range } });
  let r = await get('bytes=3-10');
  assert.equal(r.status, 206);
  assert.equal(r.text, 'DEFGHIJK');
  assert.equal(r.headers['content-range'], 'bytes 3-10/26');
  assert.equal(Number(r.headers['content-length']), 8);
  r = await get('bytes=20-');
  assert.equal(r.status, 206);
  assert.equal(r.text, 'UVWXYZ');
  r = await get('bytes=-3');
  assert.equal(r.text, 'XYZ');
  r = await get('bytes=24-100');
  assert.equal(r.text, 'YZ');
  assert.equal(r.headers['content-range'], 'bytes 24-25/26');
  for (const bad of ['bytes=10-5', 'bytes=26-', 'bytes=-0', 'items=1-2', 'bytes=1-2,4-5']) {
    r = await get(bad);
    assert.equal(r.status, 416, bad);
    assert.equal(r.headers['content-range'], 'bytes */26');
  }
});

test('download of an image without data is 204; HEAD works', async () => {
  const img = await c.create(c.demo.token, { name: 'empty' });
  const r = await c.api('GET', `/images/${img.id}/file`, { token: c.demo.token });
  assert.equal(r.status, 204);
  assert.equal(r.text, '');
  const zero = await c.create(c.demo.token, { name: 'zero' });
  assert.equal((await c.upload(c.demo.token, zero.id, Buffer.alloc(0))).status, 204);
  const z = (await c.image(zero.id))!;
  assert.equal(z.status, 'active');
  assert.equal(z.size, 0);
  assert.equal(z.checksum, 'd41d8cd98f00b204e9800998ecf8427e');
  const dz = await c.api('GET', `/images/${zero.id}/file`, { token: c.demo.token });
  assert.equal(dz.status, 200);
  assert.equal(dz.text, '');
  const full = await c.create(c.demo.token, { name: 'head' });
  await c.upload(c.demo.token, full.id, 'twelve bytes');
  const h = await c.api('HEAD', `/images/${full.id}/file`, { token: c.demo.token });
  assert.equal(h.status, 200);
  assert.equal(h.text, '');
  assert.equal(Number(h.headers['content-length']), 12);
  assert.equal(h.headers['content-md5'], createHash('md5').update('twelve bytes').digest('hex'));
});

test('upload to an active image is 409 and changes nothing; 415 for other media types; formats needed first', async () => {
  const img = await c.create(c.demo.token, { name: 'once' });
  assert.equal((await c.upload(c.demo.token, img.id, 'first')).status, 204);
  const before = (await c.image(img.id))!;
  const r = await c.upload(c.demo.token, img.id, 'second');
  assert.equal(r.status, 409, r.text);
  assert.deepEqual(await c.image(img.id), before);
  assert.equal((await c.api('GET', `/images/${img.id}/file`, { token: c.demo.token })).text, 'first');
  const q = await c.create(c.demo.token, { name: 'ctype' });
  const j = await c.api('PUT', `/images/${q.id}/file`, { token: c.demo.token, body: '{"a":1}', headers: { 'content-type': 'application/json' } });
  assert.equal(j.status, 415, j.text);
  const t = await c.api('PUT', `/images/${q.id}/file`, { token: c.demo.token, body: 'x', headers: { 'content-type': 'text/plain' } });
  assert.equal(t.status, 415);
  assert.equal((await c.image(q.id))!.status, 'queued');
  const noFormat = await c.api('POST', '/images', { token: c.demo.token, body: { name: 'no-format' } });
  const nf = await c.upload(c.demo.token, noFormat.json.id, 'x');
  assert.equal(nf.status, 400, nf.text);
  assert.equal((await c.image(noFormat.json.id))!.status, 'queued');
  // other projects cannot upload to an image they can see
  const pub = await c.create(c.admin.token, { name: 'pub-q', visibility: 'public' });
  assert.equal((await c.upload(c.demo.token, pub.id, 'x')).status, 403);
});

test('x-openstack-image-size mismatch (short or long) and a wrong Content-MD5 fail with 400; image stays queued, nothing stored', async () => {
  const img = await c.create(c.demo.token, { name: 'mismatch' });
  const data = Buffer.from('0123456789');
  for (const [headers, re] of [
    [{ 'x-openstack-image-size': '11' }, /size/],
    [{ 'x-openstack-image-size': '5' }, /size/],
    [{ 'content-md5': '00000000000000000000000000000000' }, /MD5|checksum/],
    [{ 'content-md5': Buffer.alloc(16).toString('base64') }, /MD5|checksum/],
    [{ 'x-openstack-image-size': 'ten' }, /integer/],
  ] as [Record<string, string>, RegExp][]) {
    const r = await c.upload(c.demo.token, img.id, data, headers);
    assert.equal(r.status, 400, `${JSON.stringify(headers)}: ${r.text}`);
    assert.match(r.json.message, re);
    const now = (await c.image(img.id))!;
    assert.equal(now.status, 'queued');
    assert.equal(now.size, null);
    assert.equal(now.checksum, null);
    assert.ok(!c.storeEntries().some((f) => f.includes(img.id)), `nothing stored after ${JSON.stringify(headers)}`);
  }
  const ok = await c.upload(c.demo.token, img.id, data, { 'x-openstack-image-size': '10', 'content-md5': createHash('md5').update(data).digest('base64') });
  assert.equal(ok.status, 204, ok.text);
  assert.equal((await c.image(img.id))!.status, 'active');
});

test('an upload interrupted by the client leaves the image queued with no partial file', async () => {
  const img = await c.create(c.demo.token, { name: 'interrupted' });
  const url = new URL(`/image/v2/images/${img.id}/file`, c.baseUrl());
  await new Promise<void>((resolve) => {
    const req = request(url, { method: 'PUT', headers: { 'x-auth-token': c.demo.token, 'content-type': 'application/octet-stream', 'content-length': String(64 * 1024 * 1024) } });
    req.on('error', () => resolve());
    req.on('response', () => resolve());
    req.write(randomBytes(4 * 1024 * 1024), () => {
      // half-way through: the client goes away
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200);
    });
  });
  // the server notices and cleans up
  let img2 = (await c.image(img.id))!;
  for (let i = 0; i < 50 && img2.status !== 'queued'; i++) {
    await sleep(100);
    img2 = (await c.image(img.id))!;
  }
  assert.equal(img2.status, 'queued');
  assert.equal(img2.size, null);
  for (let i = 0; i < 20 && c.storeEntries().some((f) => f.includes(img.id)); i++) await sleep(100);
  assert.deepEqual(c.storeEntries().filter((f) => f.includes(img.id)), [], 'no file, no temporary');
  const usage = await c.usage(c.demo.projectId);
  assert.equal(usage.image_size_total!.reserved, 0, 'reservation rolled back');
  // and the image can be uploaded afterwards
  assert.equal((await c.upload(c.demo.token, img.id, 'complete')).status, 204);
});

test('qcow2: virtual size from qemu-img; data with a backing file is refused (400) and not stored', async () => {
  const good = join(work, 'good.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', good, '32M']);
  const img = await c.create(c.demo.token, { name: 'q', disk_format: 'qcow2' });
  assert.equal((await c.upload(c.demo.token, img.id, readFileSync(good))).status, 204);
  assert.equal((await c.image(img.id))!.virtual_size, 32 * 1024 * 1024);
  const evil = join(work, 'evil.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/hostname', evil, '1M']);
  const bad = await c.create(c.demo.token, { name: 'evil', disk_format: 'qcow2' });
  const r = await c.upload(c.demo.token, bad.id, readFileSync(evil));
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.message, /backing file/);
  assert.equal((await c.image(bad.id))!.status, 'queued');
  assert.ok(!c.storeFiles().includes(bad.id));
  // data that is not in its declared format is kept, with an unknown virtual size
  const notQcow = await c.create(c.demo.token, { name: 'not-really-qcow2', disk_format: 'qcow2' });
  assert.equal((await c.upload(c.demo.token, notQcow.id, 'plain text')).status, 204);
  assert.equal((await c.image(notQcow.id))!.virtual_size, null);
});

test('quota: image_count and image_size_total are enforced (413) and given back on delete', async () => {
  const p = await c.newMember('quota');
  await c.cloud.quota.setLimit(p.projectId, 'image_count', 2);
  await c.cloud.quota.setLimit(p.projectId, 'image_size_total', 1000);
  const a = await c.create(p.token, { name: 'a' });
  const b = await c.create(p.token, { name: 'b' });
  const before = await c.count('glance_images');
  const third = await c.api('POST', '/images', { token: p.token, body: { name: 'c', disk_format: 'raw', container_format: 'bare' } });
  assert.equal(third.status, 413, third.text);
  assert.equal(await c.count('glance_images'), before);
  assert.equal((await c.upload(p.token, a.id, Buffer.alloc(600))).status, 204);
  const big = await c.upload(p.token, b.id, Buffer.alloc(600));
  assert.equal(big.status, 413, big.text);
  assert.equal((await c.image(b.id))!.status, 'queued');
  assert.ok(!c.storeEntries().some((f) => f.includes(b.id)));
  // chunked (no Content-Length): stopped as soon as the quota is exceeded
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = request(new URL(`/image/v2/images/${b.id}/file`, c.baseUrl()), { method: 'PUT', headers: { 'x-auth-token': p.token, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.write(Buffer.alloc(300));
    req.end(Buffer.alloc(300));
  });
  assert.equal(chunked, 413);
  assert.equal((await c.image(b.id))!.status, 'queued');
  let u = await c.usage(p.projectId);
  assert.equal(u.image_count!.in_use, 2);
  assert.equal(u.image_size_total!.in_use, 600);
  assert.equal(u.image_size_total!.reserved, 0);
  assert.equal((await c.upload(p.token, b.id, Buffer.alloc(400))).status, 204, 'what fits, fits');
  assert.equal((await c.api('DELETE', `/images/${a.id}`, { token: p.token })).status, 204);
  u = await c.usage(p.projectId);
  assert.equal(u.image_count!.in_use, 1);
  assert.equal(u.image_size_total!.in_use, 400);
  await c.create(p.token, { name: 'fits-again' });
});

test('deleting an image while it is uploading makes the upload fail and removes its data', async () => {
  const img = await c.create(c.demo.token, { name: 'racing' });
  const url = new URL(`/image/v2/images/${img.id}/file`, c.baseUrl());
  let status = 0;
  const done = new Promise<void>((resolve) => {
    const req = request(url, { method: 'PUT', headers: { 'x-auth-token': c.demo.token, 'content-type': 'application/octet-stream', 'content-length': String(2 * 1024 * 1024) } });
    req.on('response', (res) => {
      status = res.statusCode!;
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', () => resolve());
    req.write(Buffer.alloc(1024 * 1024));
    setTimeout(async () => {
      for (let i = 0; i < 50 && (await c.image(img.id))?.status !== 'saving'; i++) await sleep(20);
      assert.equal((await c.api('DELETE', `/images/${img.id}`, { token: c.demo.token })).status, 204);
      req.end(Buffer.alloc(1024 * 1024));
    }, 100);
  });
  await done;
  assert.equal(status, 410);
  assert.ok(!c.storeEntries().some((f) => f.includes(img.id)));
});
