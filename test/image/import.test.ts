/**
 * Interoperable import (glance-direct): stage, import, the
 * api_image_import task, conversion to qcow2, and failures.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startImageCloud, sleep, type ImageCloud } from './helpers.js';

let c: ImageCloud;
const work = mkdtempSync(join(tmpdir(), 'stratus-image-import-'));
before(async () => {
  c = await startImageCloud();
});
after(async () => {
  await c?.stop();
  rmSync(work, { recursive: true, force: true });
});

const stage = (token: string, id: string, data: Buffer, headers: Record<string, string> = {}) =>
  c.api('PUT', `/images/${id}/stage`, { token, body: data, headers: { 'content-type': 'application/octet-stream', ...headers } });
const importImage = (token: string, id: string, body: unknown = { method: { name: 'glance-direct' } }) => c.api('POST', `/images/${id}/import`, { token, body });
async function waitImage(id: string, want: (s: string) => boolean, ms = 120_000): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const end = Date.now() + ms;
  for (;;) {
    const img = (await c.image(id))!;
    if (want(img.status)) return img;
    if (Date.now() > end) throw new Error(`image ${id} still ${img.status}`);
    await sleep(50);
  }
}

test('import discovery lists only what is implemented', async () => {
  const r = await c.api('GET', '/info/import', { token: c.demo.token });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json['import-methods'].value, ['glance-direct']);
  assert.equal(r.json['import-methods'].type, 'array');
});

test('raw image: stage (uploading) → import (importing) → active as qcow2, with a successful task', async () => {
  const rawPath = join(work, 'disk.raw');
  const raw = Buffer.concat([randomBytes(1024 * 1024), Buffer.alloc(3 * 1024 * 1024)]);
  writeFileSync(rawPath, raw);
  const img = await c.create(c.demo.token, { name: 'imported', disk_format: 'raw', container_format: 'bare' });
  const s = await stage(c.demo.token, img.id, raw);
  assert.equal(s.status, 204, s.text);
  const staged = (await c.image(img.id))!;
  assert.equal(staged.status, 'uploading');
  assert.ok(c.stagingFiles().includes(img.id));
  assert.equal((await c.api('GET', `/images/${img.id}/file`, { token: c.demo.token })).status, 204, 'staged data is not downloadable');
  assert.equal((await stage(c.demo.token, img.id, raw)).status, 409, 'staged once');
  const r = await importImage(c.demo.token, img.id);
  assert.equal(r.status, 202, r.text);
  const done = await waitImage(img.id, (st) => st === 'active' || st === 'queued');
  assert.equal(done.status, 'active');
  assert.equal(done.disk_format, 'qcow2', 'converted to the preferred format');
  assert.equal(done.virtual_size, raw.length);
  assert.ok(!c.stagingFiles().includes(img.id), 'staging cleaned');
  const file = await c.download(c.demo.token, img.id);
  assert.equal(file.status, 200);
  assert.equal(createHash('md5').update(file.body).digest('hex'), done.checksum);
  assert.equal(file.body.subarray(0, 4).toString('latin1'), 'QFI\xfb', 'qcow2 magic');
  // the converted image holds the same disk content
  const back = join(work, 'back.qcow2');
  writeFileSync(back, file.body);
  execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', back, join(work, 'back.raw')]);
  assert.ok(readFileSync(join(work, 'back.raw')).equals(raw));
  // the task (it records its success just after the image turns active)
  let tasks = await c.api('GET', `/images/${img.id}/tasks`, { token: c.demo.token });
  for (let i = 0; i < 100 && tasks.json?.tasks?.[0]?.status === 'processing'; i++) {
    await sleep(50);
    tasks = await c.api('GET', `/images/${img.id}/tasks`, { token: c.demo.token });
  }
  assert.equal(tasks.status, 200);
  assert.equal(tasks.json.tasks.length, 1);
  const t = tasks.json.tasks[0];
  assert.equal(t.type, 'api_image_import');
  assert.equal(t.status, 'success');
  assert.equal(t.image_id, img.id);
  assert.deepEqual(t.result, { image_id: img.id });
  assert.deepEqual(t.input.import_req, { method: { name: 'glance-direct' } });
  const one = await c.api('GET', `/tasks/${t.id}`, { token: c.demo.token });
  assert.equal(one.status, 200);
  assert.equal(one.json.id, t.id);
  assert.equal(one.json.self, `/v2/tasks/${t.id}`);
  assert.ok(one.json.expires_at, 'finished tasks expire');
  const list = await c.api('GET', '/tasks', { token: c.demo.token });
  assert.equal(list.status, 200);
  assert.ok(list.json.tasks.some((x: { id: string }) => x.id === t.id));
  assert.equal(list.json.tasks[0].input, undefined, 'the list leaves out input/result');
  assert.equal(list.json.schema, '/v2/schemas/tasks');
  // other projects do not see it
  const other = await c.newMember('other');
  assert.equal((await c.api('GET', `/tasks/${t.id}`, { token: other.token })).status, 404);
  assert.ok(!(await c.api('GET', '/tasks', { token: other.token })).json.tasks.some((x: { id: string }) => x.id === t.id));
  assert.ok((await c.api('GET', '/tasks?type=api_image_import&status=success', { token: c.admin.token })).json.tasks.some((x: { id: string }) => x.id === t.id));
});

test('a qcow2 import is stored as is', async () => {
  const q = join(work, 'in.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', q, '16M']);
  const data = readFileSync(q);
  const img = await c.create(c.demo.token, { name: 'qcow2-import', disk_format: 'qcow2' });
  assert.equal((await stage(c.demo.token, img.id, data)).status, 204);
  assert.equal((await importImage(c.demo.token, img.id)).status, 202);
  const done = await waitImage(img.id, (st) => st === 'active' || st === 'queued');
  assert.equal(done.status, 'active');
  assert.equal(done.checksum, createHash('md5').update(data).digest('hex'), 'not converted');
  assert.equal(done.virtual_size, 16 * 1024 * 1024);
});

test('a failing import leaves the image queued, no data, and a failed task with a message', async () => {
  const evil = join(work, 'evil.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/hostname', evil, '1M']);
  const img = await c.create(c.demo.token, { name: 'evil-import', disk_format: 'qcow2' });
  assert.equal((await stage(c.demo.token, img.id, readFileSync(evil))).status, 204);
  assert.equal((await importImage(c.demo.token, img.id)).status, 202);
  const done = await waitImage(img.id, (st) => st === 'active' || st === 'queued');
  assert.equal(done.status, 'queued');
  assert.equal(done.size, null);
  assert.ok(!c.storeFiles().includes(img.id));
  assert.ok(!c.stagingFiles().includes(img.id));
  const t = (await c.api('GET', `/images/${img.id}/tasks`, { token: c.demo.token })).json.tasks[0];
  assert.equal(t.status, 'failure');
  assert.match(t.message, /backing file/);
  const notQcow = await c.create(c.demo.token, { name: 'garbage-import', disk_format: 'vmdk' });
  assert.equal((await stage(c.demo.token, notQcow.id, Buffer.from('not a vmdk at all'))).status, 204);
  assert.equal((await importImage(c.demo.token, notQcow.id)).status, 202);
  assert.equal((await waitImage(notQcow.id, (st) => st === 'active' || st === 'queued')).status, 'queued');
  assert.equal((await c.api('GET', `/images/${notQcow.id}/tasks`, { token: c.demo.token })).json.tasks[0].status, 'failure');
});

test('import preconditions: staged first (409), a known method (400), formats set (409); nothing changes', async () => {
  const img = await c.create(c.demo.token, { name: 'not-staged' });
  const before = await c.count('glance_tasks');
  assert.equal((await importImage(c.demo.token, img.id)).status, 409);
  assert.equal((await importImage(c.demo.token, img.id, { method: { name: 'web-download', uri: 'http://example.com/x' } })).status, 400);
  assert.equal((await importImage(c.demo.token, img.id, { method: { name: 'copy-image' } })).status, 400);
  assert.equal((await importImage(c.demo.token, img.id, {})).status, 400);
  assert.equal((await importImage(c.demo.token, img.id, { method: {} })).status, 400);
  assert.equal((await importImage(c.demo.token, img.id, { method: { name: 'glance-direct' }, all_stores: 'yes' })).status, 400);
  const noFmt = await c.api('POST', '/images', { token: c.demo.token, body: { name: 'no-fmt' } });
  assert.equal((await stage(c.demo.token, noFmt.json.id, Buffer.from('x'))).status, 204);
  assert.equal((await importImage(c.demo.token, noFmt.json.id)).status, 409);
  assert.equal(await c.count('glance_tasks'), before);
  assert.equal((await c.image(img.id))!.status, 'queued');
  // stage size mismatch → 400, back to queued, nothing staged
  const s = await stage(c.demo.token, img.id, Buffer.from('12345'), { 'x-openstack-image-size': '6' });
  assert.equal(s.status, 400, s.text);
  assert.equal((await c.image(img.id))!.status, 'queued');
  assert.ok(!c.stagingFiles().includes(img.id));
  // others cannot stage or import
  const other = await c.newMember('intruder');
  const pub = await c.create(c.admin.token, { name: 'pub-import', visibility: 'public' });
  assert.equal((await stage(other.token, pub.id, Buffer.from('x'))).status, 403);
  assert.equal((await importImage(other.token, pub.id)).status, 403);
});

test('deleting a staged image removes the staged data', async () => {
  const img = await c.create(c.demo.token, { name: 'staged-delete' });
  assert.equal((await stage(c.demo.token, img.id, Buffer.from('abc'))).status, 204);
  assert.ok(c.stagingFiles().includes(img.id));
  assert.equal((await c.api('DELETE', `/images/${img.id}`, { token: c.demo.token })).status, 204);
  assert.ok(!c.stagingFiles().includes(img.id));
});
