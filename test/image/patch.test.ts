/**
 * Image updates with JSON patch (application/openstack-images-v2.1-json-patch):
 * add/replace/remove semantics, read-only and reserved attributes (403),
 * malformed patches (400), wrong media type (415) — all-or-nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startImageCloud, type ImageCloud } from './helpers.js';

let c: ImageCloud;
before(async () => {
  c = await startImageCloud();
});
after(async () => {
  await c?.stop();
});

test('add/replace/remove on base attributes, tags and properties', async () => {
  const img = await c.create(c.demo.token, { name: 'before', foo: 'bar' });
  const r = await c.patch(c.demo.token, img.id, [
    { op: 'replace', path: '/name', value: 'after' },
    { op: 'add', path: '/min_ram', value: 512 },
    { op: 'replace', path: '/tags', value: ['x', 'y'] },
    { op: 'add', path: '/hw_disk_bus', value: 'virtio' },
    { op: 'replace', path: '/foo', value: 'baz' },
    { op: 'add', path: '/protected', value: true },
    { op: 'add', path: '/os_hidden', value: true },
    { op: 'replace', path: '/disk_format', value: 'qcow2' },
  ]);
  assert.equal(r.status, 200, r.text);
  const v = r.json;
  assert.equal(v.name, 'after');
  assert.equal(v.min_ram, 512);
  assert.deepEqual(v.tags, ['x', 'y']);
  assert.equal(v.hw_disk_bus, 'virtio');
  assert.equal(v.foo, 'baz');
  assert.equal(v.protected, true);
  assert.equal(v.os_hidden, true);
  assert.equal(v.disk_format, 'qcow2');
  assert.deepEqual(await c.image(img.id), v);
  const rm = await c.patch(c.demo.token, img.id, [{ op: 'remove', path: '/foo' }, { op: 'add', path: '/name', value: null }]);
  assert.equal(rm.status, 200, rm.text);
  assert.equal(rm.json.foo, undefined);
  assert.equal(rm.json.name, null);
  // add on an existing property replaces it (v2.1), JSON pointer escapes are decoded
  const esc = await c.patch(c.demo.token, img.id, [{ op: 'add', path: '/hw_disk_bus', value: 'scsi' }, { op: 'add', path: '/a~1b~0c', value: 'v' }]);
  assert.equal(esc.status, 200, esc.text);
  assert.equal(esc.json.hw_disk_bus, 'scsi');
  assert.equal(esc.json['a/b~c'], 'v');
  // the empty patch changes nothing
  const same = await c.patch(c.demo.token, img.id, []);
  assert.equal(same.status, 200);
  assert.equal(same.json.updated_at, esc.json.updated_at);
});

test('bad patches are refused and change nothing', async () => {
  const img = await c.create(c.demo.token, { name: 'stable', foo: 'bar', tags: ['t'] });
  const snapshot = await c.image(img.id);
  const cases: [unknown, number, RegExp?][] = [
    [{ op: 'replace', path: '/name', value: 'x' }, 400, /JSON array/],
    [[{ op: 'move', path: '/name', from: '/foo' }], 400, /Invalid operation/],
    [[{ path: '/name', value: 'x' }], 400, /op/],
    [[{ op: 'replace', value: 'x' }], 400],
    [[{ op: 'replace', path: 'name', value: 'x' }], 400, /does not start with/],
    [[{ op: 'replace', path: '/name' }], 400, /requires a member named "value"/],
    [[{ op: 'replace', path: '/tags/0', value: 'x' }], 400, /Invalid JSON pointer/],
    [[{ op: 'replace', path: '/a//b', value: 'x' }], 400],
    [[{ op: 'replace', path: '/a~2', value: 'x' }], 400, /~/],
    [[{ op: 'replace', path: '/min_ram', value: 'lots' }], 400],
    [[{ op: 'replace', path: '/min_disk', value: -5 }], 400],
    [[{ op: 'replace', path: '/disk_format', value: 'floppy' }], 400],
    [[{ op: 'replace', path: '/visibility', value: 'everyone' }], 400],
    [[{ op: 'add', path: '/custom', value: 7 }], 400],
    [[{ op: 'replace', path: '/tags', value: 'a,b' }], 400],
    [['not an object'], 400, /JSON objects/],
    [[{ op: 'replace', path: '/name', value: 'ok' }, { op: 'replace', path: '/status', value: 'active' }], 403, /read-only/],
    [[{ op: 'replace', path: '/id', value: '1' }], 403],
    [[{ op: 'replace', path: '/checksum', value: 'x' }], 403],
    [[{ op: 'replace', path: '/size', value: 1 }], 403],
    [[{ op: 'add', path: '/self', value: 'x' }], 403],
    [[{ op: 'add', path: '/locations/-', value: { url: 'file:///etc/passwd', metadata: {} } }], 403],
    [[{ op: 'add', path: '/deleted', value: 'x' }], 403, /reserved/],
    [[{ op: 'add', path: '/os_glance_foo', value: 'x' }], 403, /reserved/],
    [[{ op: 'remove', path: '/name' }], 403, /may not be removed/],
    [[{ op: 'replace', path: '/owner', value: 'someone-else' }], 403, /Owner/],
    [[{ op: 'replace', path: '/name', value: 'ok' }, { op: 'replace', path: '/nope', value: 'x' }], 409, /does not exist/],
    [[{ op: 'remove', path: '/nope' }], 409],
  ];
  for (const [body, status, re] of cases) {
    const r = await c.patch(c.demo.token, img.id, body);
    assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
    if (re) assert.match(r.json.message, re, JSON.stringify(body));
  }
  assert.deepEqual(await c.image(img.id), snapshot, 'nothing changed');
});

test('PATCH needs a JSON-patch media type (415 with Accept-Patch); v2.0 draft-4 form works', async () => {
  const img = await c.create(c.demo.token, { name: 'media' });
  const r = await c.patch(c.demo.token, img.id, [{ op: 'replace', path: '/name', value: 'x' }], 'application/json');
  assert.equal(r.status, 415, r.text);
  assert.match(String(r.headers['accept-patch']), /openstack-images-v2.1-json-patch/);
  assert.equal((await c.image(img.id))!.name, 'media');
  const d4 = await c.patch(c.demo.token, img.id, [{ replace: '/name', value: 'draft4' }, { add: '/k', value: 'v' }], 'application/openstack-images-v2.0-json-patch');
  assert.equal(d4.status, 200, d4.text);
  assert.equal(d4.json.name, 'draft4');
  const dup = await c.patch(c.demo.token, img.id, [{ add: '/k', value: 'again' }], 'application/openstack-images-v2.0-json-patch');
  assert.equal(dup.status, 409, 'draft 4 add of an existing property');
});

test('visibility changes: public needs admin (publicize_image), community and private are owner decisions', async () => {
  const img = await c.create(c.demo.token, { name: 'vis' });
  const pub = await c.patch(c.demo.token, img.id, [{ op: 'replace', path: '/visibility', value: 'public' }]);
  assert.equal(pub.status, 403);
  assert.match(pub.json.message, /publicize_image/);
  assert.equal((await c.image(img.id))!.visibility, 'shared');
  for (const v of ['community', 'private', 'shared']) {
    const r = await c.patch(c.demo.token, img.id, [{ op: 'replace', path: '/visibility', value: v }]);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.visibility, v);
  }
  const adm = await c.patch(c.admin.token, img.id, [{ op: 'replace', path: '/visibility', value: 'public' }]);
  assert.equal(adm.status, 200, adm.text);
  assert.equal(adm.json.visibility, 'public');
});

test('formats are frozen once data exists; admins may change the owner (usage follows)', async () => {
  const img = await c.create(c.demo.token, { name: 'frozen' });
  assert.equal((await c.upload(c.demo.token, img.id, 'abc')).status, 204);
  const r = await c.patch(c.demo.token, img.id, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }]);
  assert.equal(r.status, 403, r.text);
  const same = await c.patch(c.demo.token, img.id, [{ op: 'replace', path: '/disk_format', value: 'raw' }]);
  assert.equal(same.status, 200, 'setting the same value is fine');
  const other = await c.newMember('new-owner');
  const before = await c.usage(other.projectId);
  const o = await c.patch(c.admin.token, img.id, [{ op: 'replace', path: '/owner', value: other.projectId }]);
  assert.equal(o.status, 200, o.text);
  assert.equal(o.json.owner, other.projectId);
  const after = await c.usage(other.projectId);
  assert.equal(after.image_count!.in_use, before.image_count!.in_use + 1);
  assert.equal(after.image_size_total!.in_use, before.image_size_total!.in_use + 3);
  assert.equal((await c.api('GET', `/images/${img.id}`, { token: c.demo.token })).status, 404, 'no longer demo\'s');
});

test('limits: more than 128 properties or tags is 413', async () => {
  const img = await c.create(c.demo.token, { name: 'many' });
  const ops = Array.from({ length: 129 }, (_, i) => ({ op: 'add', path: `/p${i}`, value: 'v' }));
  const r = await c.patch(c.demo.token, img.id, ops);
  assert.equal(r.status, 413, r.text);
  const tags = await c.patch(c.demo.token, img.id, [{ op: 'replace', path: '/tags', value: Array.from({ length: 129 }, (_, i) => `t${i}`) }]);
  assert.equal(tags.status, 413);
  assert.equal(Object.keys((await c.image(img.id))!).filter((k) => /^p\d+$/.test(k)).length, 0);
});
