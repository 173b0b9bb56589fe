/**
 * Image records: create/show/delete, validation, visibility rules, tags,
 * deactivate/reactivate, versions and schemas.
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

test('version discovery: /image answers 300 with v2 links, /image/versions 200', async () => {
  const r = await c.inject('GET', '/image');
  assert.equal(r.status, 300);
  assert.ok(r.json.versions.length >= 1);
  const current = r.json.versions.find((v: { status: string }) => v.status === 'CURRENT');
  assert.match(current.id, /^v2\.\d+$/);
  assert.match(current.links[0].href, /\/image\/v2\/$/);
  const v = await c.inject('GET', '/image/versions');
  assert.equal(v.status, 200);
  assert.deepEqual(v.json, r.json);
});

test('the catalog lists the image endpoint', async () => {
  const r = await c.inject('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['password'], password: { user: { name: 'demo', domain: { id: 'default' }, password: c.demoPassword() } } }, scope: { project: { name: 'demo', domain: { id: 'default' } } } } },
  });
  const svc = r.json.token.catalog.find((s: { type: string }) => s.type === 'image');
  assert.equal(svc.name, 'glance');
  assert.ok(svc.endpoints.some((e: { url: string; interface: string }) => e.url.endsWith('/image') && e.interface === 'public'));
});

test('schemas are JSON schemas that describe what the API returns', async () => {
  for (const name of ['image', 'images', 'member', 'members', 'task', 'tasks']) {
    const r = await c.api('GET', `/schemas/${name}`);
    assert.equal(r.status, 200, name);
    assert.equal(r.json.name, name);
    assert.equal(typeof r.json.properties, 'object');
  }
  const s = (await c.api('GET', '/schemas/image')).json;
  assert.deepEqual(s.additionalProperties, { type: 'string' });
  assert.ok(s.properties.disk_format.enum.includes('qcow2'));
  assert.ok(s.properties.disk_format.enum.includes(null));
  assert.deepEqual(s.properties.size.type, ['null', 'integer']);
  assert.equal(s.properties.status.readOnly, true);
  // Every base attribute of a real image is described by the schema with a matching type.
  const img = await c.create(c.demo.token, { name: 'schema-check', foo: 'bar' });
  const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
  for (const [k, v] of Object.entries(img)) {
    const p = s.properties[k];
    if (!p) {
      assert.equal(typeof v, 'string', `extra property ${k} must be a string`);
      continue;
    }
    const types = Array.isArray(p.type) ? p.type : [p.type];
    assert.ok(types.includes(typeOf(v)), `${k}: ${typeOf(v)} not in ${types}`);
  }
});

test('create: defaults, Location header, import-methods header, 201 body', async () => {
  const r = await c.api('POST', '/images', { token: c.demo.token, body: { name: 'cirros', disk_format: 'qcow2', container_format: 'bare', min_ram: 64, min_disk: 1, tags: ['a', 'b', 'a'], os_distro: 'cirros' } });
  assert.equal(r.status, 201, r.text);
  const img = r.json;
  assert.match(img.id, /^[0-9a-f-]{36}$/);
  assert.equal(r.headers.location, `${c.config.publicUrl}/image/v2/images/${img.id}`);
  assert.equal(r.headers['openstack-image-import-methods'], 'glance-direct');
  assert.equal(img.status, 'queued');
  assert.equal(img.visibility, 'shared');
  assert.equal(img.protected, false);
  assert.equal(img.os_hidden, false);
  assert.equal(img.owner, c.demo.projectId);
  assert.deepEqual(img.tags, ['a', 'b']);
  assert.equal(img.os_distro, 'cirros');
  assert.equal(img.min_ram, 64);
  for (const k of ['checksum', 'os_hash_algo', 'os_hash_value', 'size', 'virtual_size']) assert.equal(img[k], null, k);
  assert.equal(img.self, `/v2/images/${img.id}`);
  assert.equal(img.file, `/v2/images/${img.id}/file`);
  assert.equal(img.schema, '/v2/schemas/image');
  assert.match(img.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(img.locations, undefined, 'locations are not shown');
  const shown = await c.image(img.id, c.demo.token);
  assert.deepEqual(shown, img);
});

test('create with a given id; the same id again is 409', async () => {
  const id = 'c0ffee00-1234-4abc-8def-000000000001';
  const img = await c.create(c.demo.token, { id, name: 'fixed' });
  assert.equal(img.id, id);
  const again = await c.api('POST', '/images', { token: c.demo.token, body: { id, name: 'dup' } });
  assert.equal(again.status, 409);
  assert.equal(again.json.code, 409);
  assert.equal(again.json.title, 'Conflict');
});

test('create: bad input is 400/403 and creates nothing', async () => {
  const before = await c.count('glance_images');
  const cases: [Record<string, unknown> | string, number][] = [
    [{ name: 'x', disk_format: 'floppy' }, 400],
    [{ name: 'x', container_format: 'tarball' }, 400],
    [{ name: 'x', visibility: 'everyone' }, 400],
    [{ name: 'x', min_ram: -1 }, 400],
    [{ name: 'x', min_disk: 'big' }, 400],
    [{ name: 'x', protected: 'yes' }, 400],
    [{ name: 'x'.repeat(256) }, 400],
    [{ name: 'x', tags: 'a,b' }, 400],
    [{ name: 'x', tags: ['x'.repeat(256)] }, 400],
    [{ name: 'x', custom: 42 }, 400],
    [{ name: 'x', id: 'not-a-uuid' }, 400],
    [{ name: 'x', ['k'.repeat(256)]: 'v' }, 400],
    [{ name: 'x', status: 'active' }, 403],
    [{ name: 'x', checksum: 'abc' }, 403],
    [{ name: 'x', size: 10 }, 403],
    [{ name: 'x', self: '/x' }, 403],
    [{ name: 'x', locations: [] }, 403],
    [{ name: 'x', deleted: 'true' }, 403],
    [{ name: 'x', os_glance_importing_to_stores: 'x' }, 403],
    ['[1,2]', 400],
    ['{not json', 400],
  ];
  for (const [body, status] of cases) {
    const r = await c.api('POST', '/images', { token: c.demo.token, body: typeof body === 'string' ? body : body, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 60)} → ${r.status} ${r.text}`);
    assert.equal(r.json.code, status);
  }
  assert.equal(await c.count('glance_images'), before);
});

test('a member cannot create a public image (403) nor an image for another project; community is allowed', async () => {
  const before = await c.count('glance_images');
  const pub = await c.api('POST', '/images', { token: c.demo.token, body: { name: 'p', visibility: 'public' } });
  assert.equal(pub.status, 403, pub.text);
  assert.match(pub.json.message, /publicize_image/);
  const other = await c.api('POST', '/images', { token: c.demo.token, body: { name: 'p', owner: c.admin.projectId } });
  assert.equal(other.status, 403);
  assert.equal(await c.count('glance_images'), before);
  const com = await c.create(c.demo.token, { name: 'community-ok', visibility: 'community' });
  assert.equal(com.visibility, 'community');
  const adminPub = await c.create(c.admin.token, { name: 'admin-public', visibility: 'public' });
  assert.equal(adminPub.visibility, 'public');
});

test('visibility: private images of another project are 404; public, community and own are visible', async () => {
  const priv = await c.create(c.admin.token, { name: 'admin-private', visibility: 'private' });
  const shared = await c.create(c.admin.token, { name: 'admin-shared' });
  const com = await c.create(c.admin.token, { name: 'admin-community', visibility: 'community' });
  const pub = await c.create(c.admin.token, { name: 'admin-public-2', visibility: 'public' });
  for (const id of [priv.id, shared.id]) {
    const r = await c.api('GET', `/images/${id}`, { token: c.demo.token });
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.title, 'Not Found');
    // writes on invisible images are 404 too, never 403
    assert.equal((await c.patch(c.demo.token, id, [{ op: 'replace', path: '/name', value: 'x' }])).status, 404);
    assert.equal((await c.api('DELETE', `/images/${id}`, { token: c.demo.token })).status, 404);
    assert.equal((await c.api('GET', `/images/${id}/file`, { token: c.demo.token })).status, 404);
  }
  for (const id of [com.id, pub.id]) assert.equal((await c.api('GET', `/images/${id}`, { token: c.demo.token })).status, 200);
  // visible but not theirs: 403 on writes
  assert.equal((await c.patch(c.demo.token, pub.id, [{ op: 'replace', path: '/name', value: 'x' }])).status, 403);
  assert.equal((await c.api('DELETE', `/images/${pub.id}`, { token: c.demo.token })).status, 403);
  assert.equal((await c.image(pub.id))!.name, 'admin-public-2');
  // unknown ids and garbage ids are 404
  assert.equal((await c.api('GET', '/images/00000000-0000-4000-8000-000000000000', { token: c.demo.token })).status, 404);
  assert.equal((await c.api('GET', '/images/not-an-id', { token: c.demo.token })).status, 404);
  // no token: 401
  assert.equal((await c.api('GET', `/images/${pub.id}`)).status, 401);
});

test('delete: 204, then 404; protected images cannot be deleted (403) until unprotected', async () => {
  const img = await c.create(c.demo.token, { name: 'to-delete', protected: true });
  const r = await c.api('DELETE', `/images/${img.id}`, { token: c.demo.token });
  assert.equal(r.status, 403, r.text);
  assert.match(r.json.message, /protected/);
  assert.ok(await c.image(img.id), 'still there');
  assert.equal((await c.patch(c.demo.token, img.id, [{ op: 'replace', path: '/protected', value: false }])).status, 200);
  const d = await c.api('DELETE', `/images/${img.id}`, { token: c.demo.token });
  assert.equal(d.status, 204, d.text);
  assert.equal(d.text, '');
  assert.equal(await c.image(img.id), null);
  assert.equal((await c.api('DELETE', `/images/${img.id}`, { token: c.demo.token })).status, 404);
  // the id is not reused
  assert.equal((await c.api('POST', '/images', { token: c.demo.token, body: { id: img.id } })).status, 409);
});

test('delete removes the data from the store', async () => {
  const img = await c.create(c.demo.token, { name: 'with-data' });
  assert.equal((await c.upload(c.demo.token, img.id, 'some bytes')).status, 204);
  assert.ok(c.storeFiles().includes(img.id));
  assert.equal((await c.api('DELETE', `/images/${img.id}`, { token: c.demo.token })).status, 204);
  assert.ok(!c.storeFiles().includes(img.id));
});

test('tags: PUT adds (idempotent), DELETE removes, 404 for a missing tag', async () => {
  const img = await c.create(c.demo.token, { name: 'tagged' });
  assert.equal((await c.api('PUT', `/images/${img.id}/tags/web`, { token: c.demo.token })).status, 204);
  assert.equal((await c.api('PUT', `/images/${img.id}/tags/web`, { token: c.demo.token })).status, 204);
  assert.equal((await c.api('PUT', `/images/${img.id}/tags/db`, { token: c.demo.token })).status, 204);
  assert.deepEqual((await c.image(img.id))!.tags, ['db', 'web']);
  assert.equal((await c.api('DELETE', `/images/${img.id}/tags/web`, { token: c.demo.token })).status, 204);
  assert.equal((await c.api('DELETE', `/images/${img.id}/tags/web`, { token: c.demo.token })).status, 404);
  assert.deepEqual((await c.image(img.id))!.tags, ['db']);
  const other = await c.newMember('tagger');
  const pub = await c.create(c.admin.token, { name: 'pub-tags', visibility: 'public' });
  assert.equal((await c.api('PUT', `/images/${pub.id}/tags/x`, { token: other.token })).status, 403);
  assert.equal((await c.api('PUT', `/images/${img.id}/tags/x`, { token: other.token })).status, 404);
});

test('deactivate/reactivate: owner or admin, only active images, data hidden from non-admins while deactivated', async () => {
  const img = await c.create(c.demo.token, { name: 'deact', visibility: 'community' });
  // not active yet
  assert.equal((await c.api('POST', `/images/${img.id}/actions/deactivate`, { token: c.demo.token })).status, 403);
  assert.equal((await c.upload(c.demo.token, img.id, 'payload')).status, 204);
  const other = await c.newMember('consumer');
  assert.equal((await c.api('POST', `/images/${img.id}/actions/deactivate`, { token: other.token })).status, 403, 'not the owner');
  const d = await c.api('POST', `/images/${img.id}/actions/deactivate`, { token: c.demo.token });
  assert.equal(d.status, 204, d.text);
  assert.equal((await c.image(img.id))!.status, 'deactivated');
  assert.equal((await c.api('POST', `/images/${img.id}/actions/deactivate`, { token: c.demo.token })).status, 204, 'idempotent');
  assert.equal((await c.api('GET', `/images/${img.id}/file`, { token: other.token })).status, 403);
  assert.equal((await c.api('GET', `/images/${img.id}/file`, { token: c.demo.token })).status, 403, 'owner is not admin');
  const adm = await c.api('GET', `/images/${img.id}/file`, { token: c.admin.token });
  assert.equal(adm.status, 200);
  assert.equal(adm.text, 'payload');
  const re = await c.api('POST', `/images/${img.id}/actions/reactivate`, { token: c.admin.token });
  assert.equal(re.status, 204);
  assert.equal((await c.image(img.id))!.status, 'active');
  assert.equal((await c.api('GET', `/images/${img.id}/file`, { token: other.token })).text, 'payload');
  const queued = await c.create(c.demo.token, { name: 'q' });
  assert.equal((await c.api('POST', `/images/${queued.id}/actions/reactivate`, { token: c.demo.token })).status, 403);
});

test('a reader can read but not write', async () => {
  const reader = await c.newMember('readonly', 'reader');
  const pub = await c.create(c.admin.token, { name: 'pub-for-reader', visibility: 'public' });
  assert.equal((await c.api('GET', `/images/${pub.id}`, { token: reader.token })).status, 200);
  assert.equal((await c.api('GET', '/images', { token: reader.token })).status, 200);
  const r = await c.api('POST', '/images', { token: reader.token, body: { name: 'nope' } });
  assert.equal(r.status, 403, r.text);
});

test('errors use the Glance body shape', async () => {
  const r = await c.api('GET', '/images/00000000-0000-4000-8000-000000000000', { token: c.demo.token });
  assert.equal(r.status, 404);
  assert.deepEqual(Object.keys(r.json).sort(), ['code', 'message', 'title']);
});
