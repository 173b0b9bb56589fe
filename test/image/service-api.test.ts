/**
 * The image service's in-process API (what compute uses) and its start-up
 * repair of uploads and imports a crash interrupted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../../src/core/errors.js';
import type { AuthContext } from '../../src/core/context.js';
import { ImageService } from '../../src/image/index.js';
import { startImageCloud, type ImageCloud } from './helpers.js';

let c: ImageCloud;
let demoCtx: AuthContext;
let adminCtx: AuthContext;
const work = mkdtempSync(join(tmpdir(), 'stratus-image-svc-'));
before(async () => {
  c = await startImageCloud();
  demoCtx = (await c.cloud.identity.tokens.validate(c.demo.token))!;
  adminCtx = (await c.cloud.identity.tokens.validate(c.admin.token))!;
});
after(async () => {
  await c?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('the cloud wires the image service as compute\'s image port', () => {
  assert.equal(c.cloud.imagePort, c.cloud.image);
  assert.equal(c.cloud.states.image, 'ok');
});

test('getImageForBoot: active image with its local path; 404 for images the caller cannot see', async () => {
  const q = join(work, 'boot.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', q, '8M']);
  const img = await c.create(c.demo.token, { name: 'bootable', disk_format: 'qcow2', min_ram: 128, min_disk: 1, hw_rng_model: 'virtio' });
  assert.equal((await c.upload(c.demo.token, img.id, readFileSync(q))).status, 204);
  const b = await c.cloud.image.getImageForBoot(demoCtx, img.id);
  assert.equal(b.id, img.id);
  assert.equal(b.name, 'bootable');
  assert.equal(b.status, 'active');
  assert.equal(b.diskFormat, 'qcow2');
  assert.equal(b.minRam, 128);
  assert.equal(b.minDisk, 1);
  assert.equal(b.size, readFileSync(q).length);
  assert.equal(b.properties.hw_rng_model, 'virtio');
  assert.ok(readFileSync(b.localPath).equals(readFileSync(q)), 'localPath is the image file');
  const priv = await c.create(c.admin.token, { name: 'admin-only', visibility: 'private' });
  await assert.rejects(c.cloud.image.getImageForBoot(demoCtx, priv.id), (e: unknown) => e instanceof ApiError && e.status === 404);
  await assert.rejects(c.cloud.image.getImageForBoot(demoCtx, '00000000-0000-4000-8000-000000000000'), (e: unknown) => e instanceof ApiError && e.status === 404);
  const queued = await c.cloud.image.getImageForBoot(adminCtx, priv.id);
  assert.equal(queued.status, 'queued');
  assert.equal(queued.localPath, '');
});

test('createImageFromFile: a new private image from a file (the file is copied, hashes computed)', async () => {
  const f = join(work, 'snap.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', f, '4M']);
  const { id } = await c.cloud.image.createImageFromFile(demoCtx, { name: 'snap', diskFormat: 'qcow2', path: f, properties: { image_type: 'snapshot', instance_uuid: 'i-1' } });
  const img = (await c.image(id, c.demo.token))!;
  assert.equal(img.status, 'active');
  assert.equal(img.visibility, 'private');
  assert.equal(img.owner, c.demo.projectId);
  assert.equal(img.image_type, 'snapshot');
  assert.equal(img.checksum, createHash('md5').update(readFileSync(f)).digest('hex'));
  assert.equal(img.virtual_size, 4 * 1024 * 1024);
  rmSync(f);
  const d = await c.download(c.demo.token, id);
  assert.equal(d.status, 200, 'the data survives the source file');
});

test('reserveImage + createImageFromFile(imageId): Nova\'s snapshot flow', async () => {
  const { id } = await c.cloud.image.reserveImage(demoCtx, { name: 'reserved-snap', properties: { image_type: 'snapshot' } });
  const q = (await c.image(id, c.demo.token))!;
  assert.equal(q.status, 'queued');
  assert.equal(q.disk_format, 'qcow2');
  assert.equal(q.container_format, 'bare');
  const f = join(work, 'snap2.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', f, '2M']);
  const out = await c.cloud.image.createImageFromFile(demoCtx, { name: 'ignored', diskFormat: 'qcow2', path: f, properties: {}, imageId: id });
  assert.equal(out.id, id);
  const a = (await c.image(id, c.demo.token))!;
  assert.equal(a.status, 'active');
  assert.equal(a.name, 'reserved-snap');
  // another project cannot fill it
  const other = await c.newMember('snapper');
  const otherCtx = (await c.cloud.identity.tokens.validate(other.token))!;
  const r2 = await c.cloud.image.reserveImage(demoCtx, { name: 'mine', properties: {} });
  await assert.rejects(c.cloud.image.createImageFromFile(otherCtx, { name: 'x', diskFormat: 'qcow2', path: f, properties: {}, imageId: r2.id }), (e: unknown) => e instanceof ApiError && e.status === 404);
  // the quota applies to snapshots too
  await c.cloud.quota.setLimit(other.projectId, 'image_count', 0);
  await assert.rejects(c.cloud.image.reserveImage(otherCtx, { name: 'over', properties: {} }), (e: unknown) => e instanceof ApiError && e.status === 413);
});

test('deleteImage: what compute does with the queued image of a failed snapshot', async () => {
  const { id } = await c.cloud.image.reserveImage(demoCtx, { name: 'failed-snap', properties: {} });
  await c.cloud.image.deleteImage(demoCtx, id);
  assert.equal(await c.image(id), null);
  await assert.rejects(c.cloud.image.deleteImage(demoCtx, id), (e: unknown) => e instanceof ApiError && e.status === 404);
});

test('seedGuestImage registers one public image, once', async () => {
  const f = join(work, 'guest.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', f, '1M']);
  await c.cloud.image.seedGuestImage(adminCtx, f);
  await c.cloud.image.seedGuestImage(adminCtx, f);
  const r = await c.api('GET', '/images?stratus_seed=guest', { token: c.demo.token });
  assert.equal(r.json.images.length, 1);
  assert.equal(r.json.images[0].visibility, 'public');
  assert.equal(r.json.images[0].status, 'active');
  assert.equal(r.json.images[0].name, 'stratus-guest');
});

test('start-up repair: interrupted uploads and imports go back to queued (or uploading when staged) and lose partial data', async () => {
  const db = c.cloud.image.catalog.db;
  const saving = await c.create(c.demo.token, { name: 'was-saving' });
  const importingStaged = await c.create(c.demo.token, { name: 'was-importing' });
  const uploadingLost = await c.create(c.demo.token, { name: 'was-staging' });
  const dir = join(c.dataDir, 'images');
  writeFileSync(join(dir, saving.id), randomBytes(100)); // data renamed into place, activation never happened
  writeFileSync(join(dir, `.${saving.id}.abc.tmp`), 'partial');
  writeFileSync(join(dir, 'staging', importingStaged.id), 'staged');
  await db.updateTable('glance_images').set({ status: 'saving' }).where('id', '=', saving.id).execute();
  await db.updateTable('glance_images').set({ status: 'importing' }).where('id', '=', importingStaged.id).execute();
  await db.updateTable('glance_images').set({ status: 'uploading' }).where('id', '=', uploadingLost.id).execute();
  const task = await c.cloud.image.tasks.create({ type: 'api_image_import', owner: c.demo.projectId, imageId: importingStaged.id, requestId: null, userId: null, input: {} });
  await c.cloud.image.tasks.update(task.id, 'processing');
  // a new service instance on the same data = a restart
  const svc = new ImageService(c.cloud.database, c.config, c.cloud.log, c.cloud.bus, c.cloud.quota, c.cloud.policy);
  await svc.init();
  assert.equal((await c.image(saving.id))!.status, 'queued');
  assert.ok(!existsSync(join(dir, saving.id)));
  assert.ok(!existsSync(join(dir, `.${saving.id}.abc.tmp`)), 'temporaries swept');
  assert.equal((await c.image(importingStaged.id))!.status, 'uploading', 'still staged: can be imported again');
  assert.equal((await c.image(uploadingLost.id))!.status, 'queued');
  assert.equal((await svc.tasks.get(task.id))!.status, 'failure');
  // quota usage re-based on what exists
  const u = await c.usage(c.demo.projectId);
  const n = Number((await db.selectFrom('glance_images').select((e) => e.fn.countAll<number>().as('n')).where('owner', '=', c.demo.projectId).where('deleted', '=', 0).executeTakeFirst())!.n);
  assert.equal(u.image_count!.in_use, n);
});
