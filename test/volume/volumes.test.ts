/**
 * Block storage API, in process with the real qcow2 driver: version
 * documents and microversions, volume CRUD, lists (filters, sorting,
 * pagination), metadata, actions, and every bad input answered with
 * Cinder's error and no change.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startVolumeCloud, volumeHasPattern, type VolumeCloud } from './helpers.js';

let c: VolumeCloud;
before(async () => {
  c = await startVolumeCloud();
});
after(async () => {
  await c?.stop();
});

/** Asserts the volume tables did not change across `fn`. */
async function unchanged(fn: () => Promise<void>): Promise<void> {
  const before = await c.snapshotRows();
  await fn();
  assert.deepEqual(await c.snapshotRows(), before, 'nothing changed');
}

test('version documents and microversions', async () => {
  const root = await c.inject('GET', '/volume/');
  assert.equal(root.status, 300, root.text);
  assert.equal(root.json.versions[0].id, 'v3.0');
  assert.equal(root.json.versions[0].min_version, '3.0');
  assert.ok(Number(root.json.versions[0].version.split('.')[1]) >= 70, 'max microversion covers what cinderclient 9.1 negotiates');
  const v3 = await c.inject('GET', '/volume/v3/');
  assert.equal(v3.status, 200, v3.text);
  assert.equal(v3.json.versions[0].status, 'CURRENT');

  const r = await c.v(c.demo, 'GET', '/volumes', { mv: '3.27' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['openstack-api-version'], 'volume 3.27');
  const latest = await c.v(c.demo, 'GET', '/volumes', { mv: 'latest' });
  assert.equal(latest.headers['openstack-api-version'], 'volume 3.70');
  const tooHigh = await c.v(c.demo, 'GET', '/volumes', { mv: '3.999' });
  assert.equal(tooHigh.status, 406, tooHigh.text);
  const bad = await c.v(c.demo, 'GET', '/volumes', { mv: 'x.y' });
  assert.equal(bad.status, 400);
  assert.ok(bad.json.badRequest.message, 'Cinder error body');
  const anon = await c.inject('GET', `/volume/v3/${c.demo.projectId}/volumes`);
  assert.equal(anon.status, 401);
});

test('the catalog names the block storage service as volumev3 and block-storage', async () => {
  const r = await c.inject('GET', '/identity/v3/auth/catalog', { token: c.demo.token });
  assert.equal(r.status, 200, r.text);
  for (const type of ['volumev3', 'block-storage']) {
    const s = (r.json.catalog as { type: string; name: string; endpoints: { url: string }[] }[]).find((x) => x.type === type);
    assert.ok(s, `${type} in the catalog`);
    assert.equal(s.name, 'cinderv3');
    assert.match(s.endpoints[0]!.url, new RegExp(`/volume/v3/${c.demo.projectId}$`));
  }
});

test('create, show, update, delete a blank volume; its file comes and goes', async () => {
  const v = await c.createVolume(c.demo, { name: 'crud', description: 'd', metadata: { a: '1' } });
  assert.equal(v.size, 1);
  assert.equal(v.bootable, 'false');
  assert.equal(v.volume_type, '__DEFAULT__');
  assert.deepEqual(v.metadata, { a: '1' });
  assert.deepEqual(v.attachments, []);
  const file = join(c.dataDir, 'volumes', `volume-${v.id}.qcow2`);
  assert.ok(existsSync(file));
  const up = await c.v(c.demo, 'PUT', `/volumes/${v.id}`, { body: { volume: { name: 'crud2', description: null } } });
  assert.equal(up.status, 200, up.text);
  assert.equal(up.json.volume.name, 'crud2');
  assert.equal(up.json.volume.description, null);
  // another project sees nothing
  const other = await c.newMember('volother');
  const hidden = await c.v(other, 'GET', `/volumes/${v.id}`);
  assert.equal(hidden.status, 404);
  assert.ok(hidden.json.itemNotFound, hidden.text);
  const wrongUrl = await c.inject('GET', `/volume/v3/${c.demo.projectId}/volumes/${v.id}`, { token: other.token });
  assert.equal(wrongUrl.status, 400, 'a URL naming another project is refused');
  const del = await c.v(c.demo, 'DELETE', `/volumes/${v.id}`);
  assert.equal(del.status, 202, del.text);
  await c.waitVolumeGone(c.demo, v.id);
  assert.ok(!existsSync(file), 'the file is removed');
});

test('bad input on create is refused with 400/404 and creates nothing', async () => {
  const id = await c.image();
  const cases: [Record<string, unknown>, number, RegExp][] = [
    [{ volume: { size: 0 } }, 400, /size/i],
    [{ volume: { size: -1 } }, 400, /size/i],
    [{ volume: { size: 'abc' } }, 400, /size/i],
    [{ volume: { size: 1.5 } }, 400, /size/i],
    [{ volume: {} }, 400, /size/i],
    [{ volume: { size: 1, bogus: 1 } }, 400, /bogus/],
    [{ nothing: {} }, 400, /volume/],
    [{ volume: { size: 1, volume_type: 'no-such-type' } }, 404, /type/i],
    [{ volume: { size: 1, snapshot_id: '00000000-0000-4000-8000-000000000000' } }, 404, /Snapshot/],
    [{ volume: { size: 1, source_volid: '00000000-0000-4000-8000-000000000000' } }, 404, /Volume/],
    [{ volume: { size: 1, imageRef: '00000000-0000-4000-8000-000000000000' } }, 400, /image/i],
    [{ volume: { size: 1, imageRef: id, source_volid: '00000000-0000-4000-8000-000000000000' } }, 400, /more than one/],
    [{ volume: { size: 1, availability_zone: 'elsewhere' } }, 400, /zone/i],
    [{ volume: { size: 1, metadata: { k: 'x'.repeat(256) } } }, 400, /255/],
    [{ volume: { size: 1, metadata: { k: 1 } } }, 400, /metadata/i],
    [{ volume: { size: 1, name: 'n'.repeat(256) } }, 400, /name/],
  ];
  for (const [body, status, re] of cases) {
    await unchanged(async () => {
      const r = await c.v(c.demo, 'POST', '/volumes', { body });
      assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
      assert.match(r.text, re);
    });
  }
  const notJson = await c.v(c.demo, 'POST', '/volumes', { body: '{not json', headers: { 'content-type': 'application/json' } });
  assert.equal(notJson.status, 400);
});

test('lists: detail, filters, sorting, limit/marker with volumes_links', async () => {
  const m = await c.newMember('vollist');
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await c.createVolume(m, { name: `l${i}`, size: 1 + (i % 2), metadata: { idx: String(i) } })).id);
  const all = await c.v(m, 'GET', '/volumes');
  assert.equal(all.status, 200);
  assert.equal(all.json.volumes.length, 5);
  assert.deepEqual(Object.keys(all.json.volumes[0]).sort(), ['id', 'links', 'name']);
  const detail = await c.v(m, 'GET', '/volumes/detail');
  assert.equal(detail.json.volumes[0].status, 'available');
  // default sort: newest first
  assert.deepEqual(detail.json.volumes.map((v: { id: string }) => v.id), [...ids].reverse());
  const byName = await c.v(m, 'GET', '/volumes/detail?name=l3');
  assert.deepEqual(byName.json.volumes.map((v: { id: string }) => v.id), [ids[3]]);
  const bySize = await c.v(m, 'GET', '/volumes/detail?sort=size:asc,name:asc');
  assert.deepEqual(bySize.json.volumes.map((v: { name: string }) => v.name), ['l0', 'l2', 'l4', 'l1', 'l3']);
  // display_name is Cinder's column name for the same key
  const byDisplayName = await c.v(m, 'GET', '/volumes/detail?sort=display_name:desc');
  assert.deepEqual(byDisplayName.json.volumes.map((v: { name: string }) => v.name), ['l4', 'l3', 'l2', 'l1', 'l0']);
  const byMeta = await c.v(m, 'GET', `/volumes/detail?metadata=${encodeURIComponent('{"idx":"2"}')}`);
  assert.deepEqual(byMeta.json.volumes.map((v: { id: string }) => v.id), [ids[2]]);
  const byStatus = await c.v(m, 'GET', '/volumes?status=in-use');
  assert.equal(byStatus.json.volumes.length, 0);
  // pages of 2, following the next links
  const seen: string[] = [];
  let url = '/volumes?limit=2&sort=name:asc';
  for (let i = 0; i < 5 && url; i++) {
    const r = await c.v(m, 'GET', url);
    assert.equal(r.status, 200, r.text);
    seen.push(...r.json.volumes.map((v: { name: string }) => v.name));
    const next = r.json.volumes_links?.find((l: { rel: string }) => l.rel === 'next')?.href as string | undefined;
    url = next ? next.slice(next.indexOf('/volumes')) : '';
  }
  assert.deepEqual(seen, ['l0', 'l1', 'l2', 'l3', 'l4']);
  const sum = await c.v(m, 'GET', '/volumes/summary', { mv: '3.36' });
  assert.equal(sum.status, 200, sum.text);
  assert.deepEqual({ ...sum.json['volume-summary'], metadata: { idx: [...sum.json['volume-summary'].metadata.idx].sort() } }, { total_size: 7, total_count: 5, metadata: { idx: ['0', '1', '2', '3', '4'] } });
  assert.equal((await c.v(m, 'GET', '/volumes/summary')).status, 404, 'needs 3.12');
  assert.equal((await c.v(m, 'GET', '/volumes?sort=bogus:asc')).status, 400);
  assert.equal((await c.v(m, 'GET', '/volumes?sort=name:sideways')).status, 400);
  assert.equal((await c.v(m, 'GET', '/volumes?limit=-1')).status, 400);
  assert.equal((await c.v(m, 'GET', '/volumes?marker=00000000-0000-4000-8000-000000000000')).status, 400);
  // admin: all_tenants
  const adm = await c.v(c.admin, 'GET', `/volumes?all_tenants=1&project_id=${m.projectId}`);
  assert.equal(adm.json.volumes.length, 5);
  const own = await c.v(c.admin, 'GET', '/volumes');
  assert.ok(!own.json.volumes.some((v: { id: string }) => ids.includes(v.id)), 'without all_tenants, only the own project');
});

test('metadata CRUD', async () => {
  const v = await c.createVolume(c.demo, { name: 'meta' });
  const base = `/volumes/${v.id}/metadata`;
  assert.deepEqual((await c.v(c.demo, 'POST', base, { body: { metadata: { a: '1', b: '2' } } })).json.metadata, { a: '1', b: '2' });
  assert.deepEqual((await c.v(c.demo, 'PUT', base, { body: { metadata: { c: '3' } } })).json.metadata, { c: '3' });
  assert.deepEqual((await c.v(c.demo, 'GET', `${base}/c`)).json.meta, { c: '3' });
  assert.equal((await c.v(c.demo, 'PUT', `${base}/c`, { body: { meta: { d: '4' } } })).status, 400, 'body and URI mismatch');
  assert.equal((await c.v(c.demo, 'PUT', `${base}/c`, { body: { meta: { c: '5' } } })).status, 200);
  assert.equal((await c.v(c.demo, 'DELETE', `${base}/c`)).status, 200);
  assert.equal((await c.v(c.demo, 'DELETE', `${base}/c`)).status, 404);
  assert.deepEqual((await c.v(c.demo, 'GET', base)).json.metadata, {});
  assert.equal((await c.v(c.demo, 'POST', base, { body: { metadata: { k: 7 } } })).status, 400);
});

test('a volume from an image is a small copy-on-write overlay, bootable, with volume_image_metadata', async () => {
  const img = await c.image();
  const t0 = Date.now();
  const v = await c.createVolume(c.demo, { imageRef: img, size: 1, name: 'fromimg' });
  const ms = Date.now() - t0;
  assert.equal(v.bootable, 'true');
  assert.equal(v.volume_image_metadata.image_id, img);
  assert.equal(v.volume_image_metadata.image_name, 'volimg');
  assert.equal(v.volume_image_metadata.os_distro, 'stratus');
  const file = join(c.dataDir, 'volumes', `volume-${v.id}.qcow2`);
  assert.ok(volumeHasPattern(file, 0x5a, '0', '1M'), 'the image data is in the volume');
  assert.ok(ms < 5000, `made in ${ms} ms`);
  // no image smaller than the volume: size defaults from the image
  const dflt = await c.createVolume(c.demo, { imageRef: img, size: null });
  assert.equal(dflt.size, 1);
  // set_bootable and image metadata actions
  const nb = await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-set_bootable': { bootable: false } } });
  assert.equal(nb.status, 200, nb.text); // Cinder: 200 without a body
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.bootable, 'false');
  // The read-only flag is admin metadata that Cinder shows among the volume's metadata.
  assert.equal((await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-update_readonly_flag': { readonly: true } } })).status, 202);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.metadata.readonly, 'True');
  const upd = await c.v(c.demo, 'PUT', `/volumes/${v.id}`, { body: { volume: { name: 'renamed' } } });
  assert.equal(upd.json.volume.name, 'renamed');
  assert.equal(upd.json.volume['os-vol-tenant-attr:tenant_id'], undefined, 'update answers with the plain view, as create');
  assert.equal(upd.json.volume.volume_image_metadata, undefined);
  // `volumes/` is a show of an empty id (Cinder: 404), not the list
  assert.equal((await c.v(c.demo, 'GET', '/volumes/')).status, 404);
  assert.equal((await c.v(c.demo, 'GET', '/volumes')).status, 200);
  assert.equal((await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-set_bootable': { bootable: 'maybe' } } })).status, 400);
  const sm = await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-set_image_metadata': { metadata: { hw_disk_bus: 'virtio' } } } });
  assert.equal(sm.json.metadata.hw_disk_bus, 'virtio');
  assert.equal((await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-unset_image_metadata': { key: 'nope' } } })).status, 404);
});

test('a volume from another volume (source_volid) is a full copy of its data', async () => {
  const img = await c.image();
  const src = await c.createVolume(c.demo, { imageRef: img, size: 1 });
  const v = await c.createVolume(c.demo, { source_volid: src.id, size: 2 });
  assert.equal(v.size, 2);
  assert.equal(v.source_volid, src.id);
  assert.ok(volumeHasPattern(join(c.dataDir, 'volumes', `volume-${v.id}.qcow2`), 0x5a, '0', '1M'));
  const small = await c.v(c.demo, 'POST', '/volumes', { body: { volume: { source_volid: v.id, size: 1 } } });
  assert.equal(small.status, 400, 'smaller than the source');
});

test('extend: grows the file; shrinking, same size, bad values are refused and change nothing', async () => {
  const v = await c.createVolume(c.demo, { name: 'ext' });
  const act = (body: unknown) => c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body });
  for (const [body, st] of [[{ 'os-extend': { new_size: 1 } }, 400], [{ 'os-extend': { new_size: 0 } }, 400], [{ 'os-extend': { new_size: 'x' } }, 400], [{ 'os-extend': {} }, 400], [{ 'os-bogus': {} }, 400], [{ 'os-extend': { new_size: 2 }, 'os-set_bootable': { bootable: true } }, 400]] as const) {
    await unchanged(async () => {
      const r = await act(body);
      assert.equal(r.status, st, `${JSON.stringify(body)}: ${r.text}`);
    });
  }
  const ok = await act({ 'os-extend': { new_size: 3 } });
  assert.equal(ok.status, 202, ok.text);
  const after = await c.waitVolume(c.demo, v.id, 'available');
  assert.equal(after.size, 3);
  assert.equal((await act({ 'os-extend': { new_size: 2 } })).status, 400, 'no shrinking');
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.size, 3);
});

test('reset_status is for admins; delete refuses busy states', async () => {
  const v = await c.createVolume(c.demo, { name: 'rs' });
  const demoTry = await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-reset_status': { status: 'error' } } });
  assert.equal(demoTry.status, 403);
  const badStatus = await c.inject('POST', `/volume/v3/${c.admin.projectId}/volumes/${v.id}/action`, { token: c.admin.token, body: { 'os-reset_status': { status: 'sideways' } } });
  assert.equal(badStatus.status, 400);
  const ok = await c.inject('POST', `/volume/v3/${c.admin.projectId}/volumes/${v.id}/action`, { token: c.admin.token, body: { 'os-reset_status': { status: 'maintenance' } } });
  assert.equal(ok.status, 202, ok.text);
  await unchanged(async () => {
    const del = await c.v(c.demo, 'DELETE', `/volumes/${v.id}`);
    assert.equal(del.status, 400, del.text);
    assert.match(del.json.badRequest.message, /Invalid volume/);
  });
  await c.inject('POST', `/volume/v3/${c.admin.projectId}/volumes/${v.id}/action`, { token: c.admin.token, body: { 'os-reset_status': { status: 'available' } } });
  assert.equal((await c.v(c.demo, 'DELETE', `/volumes/${v.id}`)).status, 202);
  await c.waitVolumeGone(c.demo, v.id);
});

test('volume types: default type, create with extra specs, use, delete refused while in use', async () => {
  const adm = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown) => c.inject(method, `/volume/v3/${c.admin.projectId}${path}`, { token: c.admin.token, ...(body ? { body } : {}) });
  const dflt = await c.v(c.demo, 'GET', '/types/default');
  assert.equal(dflt.json.volume_type.name, '__DEFAULT__');
  assert.equal((await c.v(c.demo, 'POST', '/types', { body: { volume_type: { name: 'gold' } } })).status, 403, 'members do not manage types');
  const gold = await adm('POST', '/types', { volume_type: { name: `gold-${Date.now()}`, extra_specs: { 'volume_backend_name': 'qcow2' } } });
  assert.equal(gold.status, 200, gold.text);
  assert.equal('qos_specs_id' in gold.json.volume_type, false, 'the create response has no QoS specs id (show has)');
  assert.equal((await adm('POST', '/types', { volume_type: { name: gold.json.volume_type.name } })).status, 409);
  const id = gold.json.volume_type.id;
  // the answer echoes the specs given; they are merged into the type's
  assert.deepEqual((await adm('POST', `/types/${id}/extra_specs`, { extra_specs: { tier: '1' } })).json.extra_specs, { tier: '1' });
  assert.deepEqual((await adm('GET', `/types/${id}/extra_specs`)).json.extra_specs, { volume_backend_name: 'qcow2', tier: '1' });
  assert.equal((await adm('GET', `/types/${id}/extra_specs/tier`)).json.tier, '1');
  assert.equal((await adm('DELETE', `/types/${id}/extra_specs/tier`)).status, 202);
  assert.equal((await adm('DELETE', `/types/${id}/extra_specs/tier`)).status, 404);
  const v = await c.createVolume(c.demo, { volume_type: gold.json.volume_type.name });
  assert.equal(v.volume_type, gold.json.volume_type.name);
  assert.equal((await adm('DELETE', `/types/${id}`)).status, 400, 'in use');
  assert.equal((await adm('DELETE', `/types/${dflt.json.volume_type.id}`)).status, 400, 'the default type stays');
  const list = await c.v(c.demo, 'GET', '/types');
  assert.ok(list.json.volume_types.some((t: { id: string }) => t.id === id));
  await c.v(c.demo, 'DELETE', `/volumes/${v.id}`);
  await c.waitVolumeGone(c.demo, v.id);
  assert.equal((await adm('DELETE', `/types/${id}`)).status, 202);
});

test('os-volume_upload_image makes an image of the volume', async () => {
  const img = await c.image();
  const v = await c.createVolume(c.demo, { imageRef: img, size: 1 });
  const r = await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-volume_upload_image': { image_name: 'from-volume', disk_format: 'qcow2' } } });
  assert.equal(r.status, 202, r.text);
  const imageId = r.json['os-volume_upload_image'].image_id as string;
  assert.equal(r.json['os-volume_upload_image'].status, 'uploading');
  await c.waitVolume(c.demo, v.id, 'available');
  const shown = await c.inject('GET', `/image/v2/images/${imageId}`, { token: c.demo.token });
  assert.equal(shown.status, 200, shown.text);
  assert.equal(shown.json.status, 'active');
  assert.equal(shown.json.disk_format, 'qcow2');
  const badFmt = await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-volume_upload_image': { image_name: 'x', disk_format: 'vmdk' } } });
  assert.equal(badFmt.status, 400);
  const noName = await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-volume_upload_image': {} } });
  assert.equal(noName.status, 400);
});

test('after a restart, work that was in flight ends in a final status (never stuck creating/extending)', async () => {
  const a = await c.createVolume(c.demo, { name: 'rec-a' });
  const b = await c.createVolume(c.demo, { name: 'rec-b' });
  const d = await c.createVolume(c.demo, { name: 'rec-d' });
  const db = c.vol.service.db;
  const set = (id: string, status: string) => db.updateTable('cinder_volumes').set({ status }).where('id', '=', id).execute();
  await set(a.id, 'creating'); // its file exists: it was made before the crash
  await set(b.id, 'creating');
  rmSync(join(c.dataDir, 'volumes', `volume-${b.id}.qcow2`)); // never made
  await set(d.id, 'extending');
  await (c.vol.manager as unknown as { recover(): Promise<void> }).recover();
  const st = async (id: string) => (await c.v(c.demo, 'GET', `/volumes/${id}`)).json.volume.status as string;
  assert.equal(await st(a.id), 'available');
  assert.equal(await st(b.id), 'error');
  assert.equal(await st(d.id), 'error_extending');
  // error volumes can be deleted
  for (const id of [b.id, d.id]) assert.equal((await c.v(c.demo, 'DELETE', `/volumes/${id}`)).status, 202);
});
