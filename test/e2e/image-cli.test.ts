/**
 * Image service end to end, judged by the real `openstack` CLI (Debian's
 * python3-openstackclient 6.0) against a freshly started `./stratus up`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCloud, openstack, osJson, osOk, hasOpenstackCli, waitFor, type RunningCloud } from '../helpers/cloud-process.js';

let cloud: RunningCloud;
const A = 'stratus-admin' as const;
const D = 'stratus-demo' as const;
const work = mkdtempSync(join(tmpdir(), 'stratus-e2e-image-'));
const skip = (!hasOpenstackCli() && 'python3-openstackclient not installed') || (!existsSync('/usr/bin/qemu-img') && 'qemu-utils not installed');

before(async () => {
  if (!skip) cloud = await startCloud({ timeoutMs: 600_000 });
});
after(async () => {
  await cloud?.stop();
  cloud?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const md5File = (p: string) => createHash('md5').update(readFileSync(p)).digest('hex');
const props = (img: Record<string, unknown>) => (img.properties ?? {}) as Record<string, unknown>;
test('openstack CLI drives the image service', { skip, timeout: 900_000 }, async (t) => {
  // A real qcow2 with some data in it.
  const src = join(work, 'disk.qcow2');
  const raw = join(work, 'disk.raw');
  writeFileSync(raw, Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.alloc(5 * 1024 * 1024)]));
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, src]);
  let id = '';

  await t.test('the seeded guest image is public and active', async () => {
    const list = await osJson<{ Name: string; Status: string }[]>(cloud, D, ['image', 'list']);
    assert.ok(list.some((i) => i.Name === 'stratus-guest' && i.Status === 'active'), JSON.stringify(list));
  });

  await t.test('image create --file --property uploads the data; show reports the checksum', async () => {
    const created = await osJson(cloud, D, ['image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--file', src, '--property', 'k=v', 'e2e-img']);
    id = String(created.id);
    const shown = await osJson(cloud, D, ['image', 'show', 'e2e-img']);
    assert.equal(shown.status, 'active');
    assert.equal(shown.checksum, md5File(src));
    assert.equal(shown.size, readFileSync(src).length);
    assert.equal(shown.virtual_size, 8 * 1024 * 1024);
    assert.equal(shown.disk_format, 'qcow2');
    assert.equal(props(shown).k, 'v');
    assert.equal(props(shown).os_hash_algo, 'sha512');
    const list = await osJson<{ ID: string; Name: string; Status: string }[]>(cloud, D, ['image', 'list']);
    assert.ok(list.some((i) => i.ID === id && i.Status === 'active'));
    const long = await osJson<{ ID: string; Checksum: string }[]>(cloud, D, ['image', 'list', '--long', '--property', 'k=v']);
    assert.deepEqual(long.map((i) => i.ID), [id]);
  });

  await t.test('image set --property --tag, image unset', async () => {
    await osOk(cloud, D, ['image', 'set', '--property', 'k2=v2', '--tag', 'red', '--tag', 'blue', '--min-ram', '64', 'e2e-img']);
    let shown = await osJson(cloud, D, ['image', 'show', id]);
    assert.equal(props(shown).k2, 'v2');
    assert.deepEqual([...(shown.tags as string[])].sort(), ['blue', 'red']);
    assert.equal(shown.min_ram, 64);
    const tagged = await osJson<{ ID: string }[]>(cloud, D, ['image', 'list', '--tag', 'red']);
    assert.deepEqual(tagged.map((i) => i.ID), [id]);
    await osOk(cloud, D, ['image', 'unset', '--property', 'k2', '--tag', 'blue', id]);
    shown = await osJson(cloud, D, ['image', 'show', id]);
    assert.equal(props(shown).k2, undefined);
    assert.deepEqual(shown.tags, ['red']);
  });

  await t.test('image save --file returns the same bytes', async () => {
    const out = join(work, 'saved.qcow2');
    await osOk(cloud, D, ['image', 'save', '--file', out, 'e2e-img']);
    assert.equal(md5File(out), md5File(src));
  });

  await t.test('sharing: image add project, then the member accepts with image set --accept', async () => {
    const shared = await osJson(cloud, A, ['image', 'create', '--disk-format', 'raw', '--container-format', 'bare', '--shared', '--file', raw, 'e2e-shared']);
    const sid = String(shared.id);
    const added = await osJson(cloud, A, ['image', 'add', 'project', sid, 'demo']);
    assert.equal(added.status, 'pending');
    let demoList = await osJson<{ ID: string }[]>(cloud, D, ['image', 'list']);
    assert.ok(!demoList.some((i) => i.ID === sid), 'pending images are not listed');
    await osOk(cloud, D, ['image', 'set', '--accept', sid]);
    demoList = await osJson<{ ID: string }[]>(cloud, D, ['image', 'list']);
    assert.ok(demoList.some((i) => i.ID === sid), 'accepted images are listed');
    const members = await osJson<{ 'Member ID': string; Status: string }[]>(cloud, A, ['image', 'member', 'list', sid]);
    assert.equal(members.length, 1);
    assert.equal(members[0]!.Status, 'accepted');
    const out = join(work, 'shared.raw');
    await osOk(cloud, D, ['image', 'save', '--file', out, sid]);
    assert.equal(md5File(out), md5File(raw));
    await osOk(cloud, A, ['image', 'remove', 'project', sid, 'demo']);
    const gone = await openstack(cloud, D, ['image', 'show', sid]);
    assert.notEqual(gone.code, 0);
  });

  await t.test('image set --deactivate / --activate', async () => {
    await osOk(cloud, D, ['image', 'set', '--deactivate', id]);
    assert.equal((await osJson(cloud, D, ['image', 'show', id])).status, 'deactivated');
    const refused = await openstack(cloud, D, ['image', 'save', '--file', join(work, 'nope'), id]);
    assert.notEqual(refused.code, 0, 'no download while deactivated');
    await osOk(cloud, D, ['image', 'set', '--activate', id]);
    assert.equal((await osJson(cloud, D, ['image', 'show', id])).status, 'active');
  });

  await t.test('image create --import (glance-direct) converts raw to qcow2 through a task', async () => {
    const imp = await osJson(cloud, D, ['image', 'create', '--disk-format', 'raw', '--container-format', 'bare', '--file', raw, '--import', 'e2e-import']);
    const iid = String(imp.id);
    const done = await waitFor('import to finish', async () => {
      const s = await osJson(cloud, D, ['image', 'show', iid]);
      return s.status === 'active' ? s : undefined;
    });
    assert.equal(done.disk_format, 'qcow2');
    assert.equal(done.virtual_size, readFileSync(raw).length);
  });

  await t.test('demo cannot create a public image nor see another project\'s private image', async () => {
    // (always --file: without it the CLI reads image data from a non-tty stdin)
    const pub = await openstack(cloud, D, ['image', 'create', '--public', '--disk-format', 'raw', '--container-format', 'bare', '--file', raw, 'e2e-public']);
    assert.notEqual(pub.code, 0);
    assert.match(pub.stderr, /403|publicize_image|not authorized/i);
    const priv = await osJson(cloud, A, ['image', 'create', '--private', '--disk-format', 'raw', '--container-format', 'bare', '--file', raw, 'e2e-admin-private']);
    const hidden = await openstack(cloud, D, ['image', 'show', String(priv.id)]);
    assert.notEqual(hidden.code, 0);
    assert.match(hidden.stderr, /No Image found|404|not found/i);
    const list = await osJson<{ Name: string }[]>(cloud, D, ['image', 'list']);
    assert.ok(!list.some((i) => i.Name === 'e2e-admin-private' || i.Name === 'e2e-public'));
  });

  await t.test('image delete (refused while protected)', async () => {
    await osOk(cloud, D, ['image', 'set', '--protected', id]);
    assert.notEqual((await openstack(cloud, D, ['image', 'delete', id])).code, 0);
    await osOk(cloud, D, ['image', 'set', '--unprotected', id]);
    await osOk(cloud, D, ['image', 'delete', id]);
    assert.notEqual((await openstack(cloud, D, ['image', 'show', id])).code, 0);
    assert.ok(!existsSync(join(cloud.dataDir, 'images', id)), 'data removed from the store');
  });
});
