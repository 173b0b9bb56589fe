/**
 * image.store = object: image data lives in the object store's replicated
 * engine (not in <data>/images), and everything the image API and compute
 * need still works: upload with digests, download, ranges, the local file
 * compute boots from, delete.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { startImageCloud, type ImageCloud } from './helpers.js';
import { ObjectImageStore } from '../../src/image/drivers/object-store.js';
import type { AuthContext } from '../../src/core/context.js';

let c: ImageCloud;
before(async () => {
  c = await startImageCloud({ config: { image: { store: 'object' } } });
});
after(async () => {
  await c?.stop();
});

test('images are stored in the object store and served from it', async () => {
  assert.ok(c.cloud.image.store instanceof ObjectImageStore, 'the object store backend is in use');
  const data = randomBytes(300 * 1024 + 7);
  const img = await c.create(c.demo.token, { name: 'in-objects', disk_format: 'raw', container_format: 'bare' });
  assert.equal((await c.upload(c.demo.token, img.id, data)).status, 204);
  const meta = (await c.image(img.id))!;
  assert.equal(meta.status, 'active');
  assert.equal(meta.size, data.length);
  assert.equal(meta.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(meta.os_hash_value, createHash('sha512').update(data).digest('hex'));
  assert.deepEqual(c.storeFiles().filter((f) => f === img.id), [], 'nothing under <data>/images');

  // the bytes are an object of the engine
  const head = await c.cloud.objectStore.headObject('AUTH_stratus-images', 'images', img.id);
  assert.equal(head.size, data.length);

  const down = await c.download(c.demo.token, img.id);
  assert.equal(down.status, 200);
  assert.ok(down.body.equals(data));
  const part = await c.download(c.demo.token, img.id, { range: 'bytes=100-199' });
  assert.equal(part.status, 206);
  assert.ok(part.body.equals(data.subarray(100, 200)));

  // compute boots from a local copy with the same bytes
  const ctx = (await c.cloud.identity.tokens.validate(c.demo.token)) as unknown as AuthContext;
  const boot = await c.cloud.image.getImageForBoot(ctx, img.id);
  assert.ok(boot.localPath && existsSync(boot.localPath));
  assert.ok(readFileSync(boot.localPath).equals(data));

  assert.equal((await c.api('DELETE', `/images/${img.id}`, { token: c.demo.token })).status, 204);
  await assert.rejects(c.cloud.objectStore.headObject('AUTH_stratus-images', 'images', img.id), (e: unknown) => (e as { status?: number }).status === 404);
  assert.ok(!existsSync(boot.localPath), 'the local copy goes with the image');
});

test('an upload over the image size quota leaves no object behind', async () => {
  const member = await c.newMember('objq');
  await c.cloud.quota.setLimit(member.projectId, 'image_size_total', 1000);
  const img = await c.create(member.token, { name: 'too-big', disk_format: 'raw', container_format: 'bare' });
  const r = await c.upload(member.token, img.id, randomBytes(64 * 1024));
  assert.equal(r.status, 413, r.text);
  await assert.rejects(c.cloud.objectStore.headObject('AUTH_stratus-images', 'images', img.id), (e: unknown) => (e as { status?: number }).status === 404);
  assert.equal((await c.image(img.id))!.status, 'queued');
});
