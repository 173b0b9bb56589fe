/**
 * Nova's image proxy (`/compute/v2.1/images`) over the real image service of
 * an in-process cloud: list, detail, show (status and progress in Nova's
 * words), delete; another project's private image is not found.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startInprocCloud, type InprocCloud } from '../helpers/inproc.js';

let c: InprocCloud;
let admin: string;
let demo: string;

before(async () => {
  c = await startInprocCloud();
  admin = await c.adminToken();
  demo = await c.tokenFor('demo', c.demoPassword(), 'demo');
});
after(async () => {
  await c?.stop();
});

const create = async (token: string, name: string) => {
  const r = await c.inject('POST', '/image/v2/images', { token, body: { name, disk_format: 'raw', container_format: 'bare', min_ram: 64, foo: 'bar' } });
  assert.equal(r.status, 201, r.text);
  const id = (r.json as { id: string }).id;
  const up = await c.inject('PUT', `/image/v2/images/${id}/file`, { token, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096, 1) });
  assert.equal(up.status, 204, up.text);
  return id;
};

test('list, detail, show and delete through the compute API', async () => {
  const id = await create(demo, 'proxied');
  const queued = (await c.inject('POST', '/image/v2/images', { token: demo, body: { name: 'empty' } })).json as { id: string };

  const show = await c.inject('GET', `/compute/v2.1/images/${id}`, { token: demo });
  assert.equal(show.status, 200, show.text);
  const img = (show.json as { image: Record<string, unknown> }).image;
  assert.equal(img['status'], 'ACTIVE');
  assert.equal(img['progress'], 100);
  assert.equal(img['minRam'], 64);
  assert.equal(img['OS-EXT-IMG-SIZE:size'], 4096);
  assert.deepEqual(img['metadata'], { foo: 'bar' });
  assert.ok((img['links'] as Array<{ rel: string }>).some((l) => l.rel === 'self'));
  const q = (await c.inject('GET', `/compute/v2.1/images/${queued.id}`, { token: demo })).json as { image: Record<string, unknown> };
  assert.equal(q.image['status'], 'SAVING');

  const list = (await c.inject('GET', '/compute/v2.1/images', { token: demo })).json as { images: Array<Record<string, unknown>> };
  assert.ok(list.images.some((i) => i['id'] === id));
  assert.deepEqual(Object.keys(list.images[0]!).sort(), ['id', 'links', 'name']);
  const detail = (await c.inject('GET', '/compute/v2.1/images/detail?limit=1', { token: demo })).json as { images: Array<Record<string, unknown>> };
  assert.equal(detail.images.length, 1);
  assert.ok(detail.images[0]!['status']);

  // another project's private image is not there for demo
  const adminImage = await create(admin, 'admins');
  assert.equal((await c.inject('GET', `/compute/v2.1/images/${adminImage}`, { token: demo })).status, 404);
  assert.equal((await c.inject('DELETE', `/compute/v2.1/images/${adminImage}`, { token: demo })).status, 404);

  assert.equal((await c.inject('DELETE', `/compute/v2.1/images/${id}`, { token: demo })).status, 204);
  assert.equal((await c.inject('GET', `/compute/v2.1/images/${id}`, { token: demo })).status, 404);
  assert.equal((await c.inject('GET', `/image/v2/images/${id}`, { token: demo })).status, 404, 'gone from the image service too');
});
