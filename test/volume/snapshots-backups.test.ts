/**
 * Snapshots (qcow2 backing chains), backups (full and incremental, in the
 * object store), quotas and /limits, and volume transfers — in process with
 * the real qcow2 driver and the real object store engine.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startVolumeCloud, volumeHasPattern, waitFor, type VolumeCloud } from './helpers.js';
import { BACKUP_ACCOUNT } from '../../src/volume/index.js';

let c: VolumeCloud;
before(async () => {
  c = await startVolumeCloud();
});
after(async () => {
  await c?.stop();
});

const file = (id: string) => join(c.dataDir, 'volumes', `volume-${id}.qcow2`);
const write = (id: string, pattern: number, offset: string) => execFileSync('qemu-io', ['-c', `write -P 0x${pattern.toString(16)} ${offset} 64k`, file(id)]);
const waitSnap = (id: string, status: string) =>
  waitFor(`snapshot ${id} ${status}`, async () => (await c.v(c.demo, 'GET', `/snapshots/${id}`)).json?.snapshot?.status === status, 20_000, 20);
const waitBackup = (id: string, status: string, m = c.demo) =>
  waitFor(`backup ${id} ${status}`, async () => {
    const b = (await c.v(m, 'GET', `/backups/${id}`)).json?.backup;
    if (b?.status === 'error' && status !== 'error') throw new Error(`backup failed: ${b.fail_reason}`);
    return b?.status === status ? b : undefined;
  }, 60_000, 50);

test('snapshots freeze a volume in time; a volume from a snapshot is a small overlay with that data', async () => {
  const v = await c.createVolume(c.demo, { name: 'snapsrc' });
  write(v.id, 0x11, '0');
  const cr = await c.v(c.demo, 'POST', '/snapshots', { body: { snapshot: { volume_id: v.id, name: 's1', metadata: { k: 'v' } } } });
  assert.equal(cr.status, 202, cr.text);
  // Cinder's summary view: no extended attributes, and no links in any snapshot view.
  assert.equal(cr.json.snapshot['os-extended-snapshot-attributes:progress'], undefined);
  assert.equal(cr.json.snapshot.links, undefined);
  const snapId = cr.json.snapshot.id as string;
  await waitSnap(snapId, 'available');
  write(v.id, 0x22, '0'); // the volume moves on
  const t0 = Date.now();
  const clone = await c.createVolume(c.demo, { snapshot_id: snapId, name: 'fromsnap' });
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(clone.snapshot_id, snapId);
  assert.ok(volumeHasPattern(file(clone.id), 0x11, '0'), 'the clone has the snapshot data');
  assert.ok(volumeHasPattern(file(v.id), 0x22, '0'), 'the volume kept its new data');
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', file(clone.id)]).toString()) as { 'actual-size': number; 'backing-filename'?: string };
  assert.ok(info['backing-filename']?.includes(`snapshot-${snapId}`));
  assert.ok(info['actual-size'] < 2 * 1024 * 1024);

  // list/show/update
  const list = await c.v(c.demo, 'GET', `/snapshots/detail?volume_id=${v.id}`);
  assert.equal(list.json.snapshots.length, 1);
  assert.equal(list.json.snapshots[0]['os-extended-snapshot-attributes:progress'], '100%');
  const up = await c.v(c.demo, 'PUT', `/snapshots/${snapId}`, { body: { snapshot: { name: 's1b' } } });
  assert.equal(up.json.snapshot.name, 's1b');
  assert.equal(up.json.snapshot['os-extended-snapshot-attributes:project_id'], undefined);
  assert.equal((await c.v(c.demo, 'GET', `/snapshots/${snapId}`)).json.snapshot['os-extended-snapshot-attributes:project_id'], c.demo.projectId);
  assert.deepEqual((await c.v(c.demo, 'GET', `/snapshots/${snapId}/metadata`)).json.metadata, { k: 'v' });
  // one metadata item: show, update; a body that names another key changes nothing
  assert.deepEqual((await c.v(c.demo, 'GET', `/snapshots/${snapId}/metadata/k`)).json.meta, { k: 'v' });
  assert.equal((await c.v(c.demo, 'GET', `/snapshots/${snapId}/metadata/nope`)).status, 404);
  assert.deepEqual((await c.v(c.demo, 'PUT', `/snapshots/${snapId}/metadata/k`, { body: { meta: { k: 'v2' } } })).json.meta, { k: 'v2' });
  assert.equal((await c.v(c.demo, 'PUT', `/snapshots/${snapId}/metadata/k`, { body: { meta: { other: 'x' } } })).status, 400);
  assert.deepEqual((await c.v(c.demo, 'GET', `/snapshots/${snapId}/metadata`)).json.metadata, { k: 'v2' });
  // a null volume id is a volume that does not exist (Cinder: 404)
  assert.equal((await c.v(c.demo, 'POST', '/snapshots', { body: { snapshot: { volume_id: null, name: 'x' } } })).status, 404);

  // the volume cannot go while it has snapshots; the snapshot can go while clones use it (their data is folded in)
  const del = await c.v(c.demo, 'DELETE', `/volumes/${v.id}`);
  assert.equal(del.status, 400);
  assert.match(del.json.badRequest.message, /dependent snapshots/);
  assert.equal((await c.v(c.demo, 'DELETE', `/snapshots/${snapId}`)).status, 202);
  await waitFor('snapshot gone', async () => (await c.v(c.demo, 'GET', `/snapshots/${snapId}`)).status === 404, 20_000, 20);
  assert.ok(!existsSync(join(c.dataDir, 'volumes', `snapshot-${snapId}.qcow2`)));
  assert.ok(volumeHasPattern(file(clone.id), 0x11, '0'), 'the clone still has its data');
  assert.ok(volumeHasPattern(file(v.id), 0x22, '0'), 'so does the volume');
  assert.equal((await c.v(c.demo, 'DELETE', `/volumes/${v.id}`)).status, 202);
  await c.waitVolumeGone(c.demo, v.id);
});

test('snapshot bad input; in-use needs force; cascade delete', async () => {
  const v = await c.createVolume(c.demo, { name: 'snapbad' });
  const rows = await c.snapshotRows();
  for (const body of [{ snapshot: {} }, { snapshot: { volume_id: '00000000-0000-4000-8000-000000000000' } }, { snapshot: { volume_id: v.id, bogus: 1 } }, { snapshot: { volume_id: v.id, force: 'perhaps' } }]) {
    const r = await c.v(c.demo, 'POST', '/snapshots', { body });
    assert.ok(r.status === 400 || r.status === 404, `${JSON.stringify(body)} → ${r.status}`);
  }
  assert.deepEqual(await c.snapshotRows(), rows);
  // in-use (attached through the old actions)
  const act = (body: unknown) => c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body });
  await act({ 'os-attach': { instance_uuid: '11111111-2222-4333-8444-777777777777', mountpoint: '/dev/vdb' } });
  assert.equal((await c.v(c.demo, 'POST', '/snapshots', { body: { snapshot: { volume_id: v.id } } })).status, 400);
  const forced = await c.v(c.demo, 'POST', '/snapshots', { body: { snapshot: { volume_id: v.id, force: true } } });
  assert.equal(forced.status, 202, forced.text);
  await waitSnap(forced.json.snapshot.id, 'available');
  await act({ 'os-detach': {} });
  const casc = await c.v(c.demo, 'DELETE', `/volumes/${v.id}?cascade=true`);
  assert.equal(casc.status, 202, casc.text);
  await c.waitVolumeGone(c.demo, v.id);
  assert.equal((await c.v(c.demo, 'GET', `/snapshots/${forced.json.snapshot.id}`)).status, 404);
});

test('backups: full then incremental in the object store; restore to a new and to an existing volume', async () => {
  const v = await c.createVolume(c.demo, { name: 'bk', size: 1 });
  write(v.id, 0x31, '0');
  write(v.id, 0x32, '512M');
  const b1 = await c.v(c.demo, 'POST', '/backups', { body: { backup: { volume_id: v.id, name: 'full' } } });
  assert.equal(b1.status, 202, b1.text);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'backing-up');
  const full = await waitBackup(b1.json.backup.id, 'available');
  assert.equal(full.is_incremental, false);
  assert.equal(full.container, 'volumebackups');
  assert.equal(full.object_count, 3, 'two data chunks and a manifest (zero chunks are not stored)');
  await c.waitVolume(c.demo, v.id, 'available');
  const listed = await c.cloud.objectStore.listContainer(BACKUP_ACCOUNT, 'volumebackups', { prefix: `${full.id}/` });
  assert.equal(listed.entries.length, 3);

  write(v.id, 0x33, '512M');
  const b2 = await c.v(c.demo, 'POST', '/backups', { body: { backup: { volume_id: v.id, name: 'incr', incremental: true } } });
  assert.equal(b2.status, 202, b2.text);
  const incr = await waitBackup(b2.json.backup.id, 'available');
  assert.equal(incr.is_incremental, true);
  assert.equal(incr.object_count, 2, 'only the changed chunk and a manifest');
  assert.equal((await c.v(c.demo, 'GET', `/backups/${full.id}`)).json.backup.has_dependent_backups, true);
  assert.equal((await c.v(c.demo, 'DELETE', `/backups/${full.id}`)).status, 400, 'a backup with incrementals stays');

  // restore the incremental to a new volume: data from both backups
  const r1 = await c.v(c.demo, 'POST', `/backups/${incr.id}/restore`, { body: { restore: { name: 'restored' } } });
  assert.equal(r1.status, 202, r1.text);
  const nv = r1.json.restore.volume_id as string;
  await c.waitVolume(c.demo, nv, 'available', 60_000);
  assert.ok(volumeHasPattern(file(nv), 0x31, '0'));
  assert.ok(volumeHasPattern(file(nv), 0x33, '512M'));
  // restore the full one onto an existing volume
  const target = await c.createVolume(c.demo, { name: 'target', size: 1 });
  const r2 = await c.v(c.demo, 'POST', `/backups/${full.id}/restore`, { body: { restore: { volume_id: target.id } } });
  assert.equal(r2.status, 202, r2.text);
  await waitFor('target restoring', async () => ['restoring-backup', 'available'].includes((await c.v(c.demo, 'GET', `/volumes/${target.id}`)).json.volume.status), 5000, 10);
  await c.waitVolume(c.demo, target.id, 'available', 60_000);
  assert.ok(volumeHasPattern(file(target.id), 0x32, '512M'));
  // a volume from a backup (backup_id on create)
  const fromB = await c.createVolume(c.demo, { backup_id: full.id, size: 1 });
  assert.ok(volumeHasPattern(file(fromB.id), 0x31, '0'));

  // bad input
  const rows = await c.snapshotRows();
  assert.equal((await c.v(c.demo, 'POST', `/backups/${full.id}/restore`, { body: { restore: { volume_id: '00000000-0000-4000-8000-000000000000' } } })).status, 404);
  assert.equal((await c.v(c.demo, 'POST', '/backups', { body: { backup: { volume_id: '00000000-0000-4000-8000-000000000000' } } })).status, 404);
  assert.equal((await c.v(c.demo, 'POST', '/backups', { body: { backup: { volume_id: v.id, bogus: 1 } } })).status, 400);
  const other = await c.createVolume(c.demo, { name: 'noparent' });
  assert.equal((await c.v(c.demo, 'POST', '/backups', { body: { backup: { volume_id: other.id, incremental: true } } })).status, 400, 'no full backup to build on');
  assert.equal((await c.v(c.demo, 'DELETE', `/volumes/${other.id}`)).status, 202);
  await c.waitVolumeGone(c.demo, other.id);
  const after = await c.snapshotRows();
  assert.equal(after.cinder_backups, rows.cinder_backups);

  // delete: incremental first, then full; their objects go
  assert.equal((await c.v(c.demo, 'DELETE', `/backups/${incr.id}`)).status, 202);
  await waitFor('incr gone', async () => (await c.v(c.demo, 'GET', `/backups/${incr.id}`)).status === 404, 20_000, 20);
  assert.equal((await c.v(c.demo, 'DELETE', `/backups/${full.id}`)).status, 202);
  await waitFor('full gone', async () => (await c.v(c.demo, 'GET', `/backups/${full.id}`)).status === 404, 20_000, 20);
  const left = await c.cloud.objectStore.listContainer(BACKUP_ACCOUNT, 'volumebackups', { prefix: `${full.id}/` });
  assert.equal(left.entries.length, 0);
});

test('quotas: volumes, gigabytes, per type, snapshots; 413 changes nothing; /limits and os-quota-sets', async () => {
  const m = await c.newMember('volquota');
  const adm = (method: 'GET' | 'PUT' | 'DELETE', path: string, body?: unknown) => c.inject(method, `/volume/v3/${c.admin.projectId}${path}`, { token: c.admin.token, ...(body ? { body } : {}) });
  assert.equal((await c.v(m, 'PUT', `/os-quota-sets/${m.projectId}`, { body: { quota_set: { volumes: 100 } } })).status, 403, 'members do not set quotas');
  const set = await adm('PUT', `/os-quota-sets/${m.projectId}`, { quota_set: { volumes: 2, gigabytes: 3, snapshots: 1 } });
  assert.equal(set.status, 200, set.text);
  assert.equal(set.json.quota_set.volumes, 2);
  assert.equal((await adm('PUT', `/os-quota-sets/${m.projectId}`, { quota_set: { bogus: 1 } })).status, 400);
  assert.equal((await adm('PUT', `/os-quota-sets/${m.projectId}`, { quota_set: { volumes: -5 } })).status, 400);

  const v1 = await c.createVolume(m, { size: 2 });
  let rows = await c.snapshotRows();
  const tooBig = await c.v(m, 'POST', '/volumes', { body: { volume: { size: 2 } } });
  assert.equal(tooBig.status, 413, tooBig.text);
  assert.match(tooBig.json.overLimit.message, /gigabytes/);
  assert.deepEqual(await c.snapshotRows(), rows);
  await c.createVolume(m, { size: 1 });
  rows = await c.snapshotRows();
  const tooMany = await c.v(m, 'POST', '/volumes', { body: { volume: { size: 1 } } });
  assert.equal(tooMany.status, 413);
  assert.match(tooMany.json.overLimit.message, /volumes/);
  const ext = await c.v(m, 'POST', `/volumes/${v1.id}/action`, { body: { 'os-extend': { new_size: 5 } } });
  assert.equal(ext.status, 413, 'extend past the gigabytes quota');
  assert.deepEqual(await c.snapshotRows(), rows);
  assert.equal((await c.v(m, 'GET', `/volumes/${v1.id}`)).json.volume.size, 2);

  const lim = await c.v(m, 'GET', '/limits');
  assert.equal(lim.status, 200, lim.text);
  assert.deepEqual({ ...lim.json.limits.absolute }, { ...lim.json.limits.absolute, maxTotalVolumes: 2, totalVolumesUsed: 2, maxTotalVolumeGigabytes: 3, totalGigabytesUsed: 3 });
  const usage = await c.v(m, 'GET', `/os-quota-sets/${m.projectId}?usage=True`);
  assert.equal(usage.json.quota_set.volumes.in_use, 2);
  assert.equal(usage.json.quota_set.volumes___DEFAULT__.in_use, 2, 'per-type usage');
  const dflt = await c.v(m, 'GET', `/os-quota-sets/${m.projectId}/defaults`);
  assert.equal(dflt.json.quota_set.volumes, 10);

  // per-type quota
  await adm('PUT', `/os-quota-sets/${m.projectId}`, { quota_set: { volumes: 10, gigabytes: 100, volumes___DEFAULT__: 2 } });
  const perType = await c.v(m, 'POST', '/volumes', { body: { volume: { size: 1 } } });
  assert.equal(perType.status, 413);
  assert.match(perType.json.overLimit.message, /volumes___DEFAULT__/);

  // snapshots quota: 1
  const s1 = await c.v(m, 'POST', '/snapshots', { body: { snapshot: { volume_id: v1.id } } });
  assert.equal(s1.status, 202, s1.text);
  const s2 = await c.v(m, 'POST', '/snapshots', { body: { snapshot: { volume_id: v1.id } } });
  assert.equal(s2.status, 413);
  assert.match(s2.json.overLimit.message, /snapshots/);

  // deleting gives quota back
  assert.equal((await adm('DELETE', `/os-quota-sets/${m.projectId}`)).status, 200);
  assert.equal((await c.v(m, 'GET', `/os-quota-sets/${m.projectId}`)).json.quota_set.volumes, 10);
});

test('volume transfer between projects', async () => {
  const giver = await c.newMember('giver');
  const taker = await c.newMember('taker');
  const v = await c.createVolume(giver, { name: 'gift', size: 1 });
  const cr = await c.v(giver, 'POST', '/os-volume-transfer', { body: { transfer: { volume_id: v.id, name: 't1' } } });
  assert.equal(cr.status, 202, cr.text);
  const { id, auth_key: key } = cr.json.transfer as { id: string; auth_key: string };
  assert.ok(key);
  assert.equal((await c.v(giver, 'GET', `/volumes/${v.id}`)).json.volume.status, 'awaiting-transfer');
  assert.equal((await c.v(giver, 'GET', '/os-volume-transfer')).json.transfers.length, 1);
  assert.equal((await c.v(giver, 'DELETE', `/volumes/${v.id}`)).status, 400, 'awaiting transfer');
  const bad = await c.v(taker, 'POST', `/os-volume-transfer/${id}/accept`, { body: { accept: { auth_key: 'wrong' } } });
  assert.equal(bad.status, 400);
  assert.equal((await c.v(giver, 'GET', `/volumes/${v.id}`)).json.volume.status, 'awaiting-transfer', 'a wrong key changes nothing');
  const ok = await c.v(taker, 'POST', `/os-volume-transfer/${id}/accept`, { body: { accept: { auth_key: key } } });
  assert.equal(ok.status, 202, ok.text);
  assert.equal((await c.v(giver, 'GET', `/volumes/${v.id}`)).status, 404);
  const mine = await c.v(taker, 'GET', `/volumes/${v.id}`);
  assert.equal(mine.json.volume.status, 'available');
  assert.equal(mine.json.volume['os-vol-tenant-attr:tenant_id'], taker.projectId);
  assert.equal((await c.v(taker, 'GET', `/os-quota-sets/${taker.projectId}?usage=True`)).json.quota_set.volumes.in_use, 1);
  assert.equal((await c.v(giver, 'GET', `/os-quota-sets/${giver.projectId}?usage=True`)).json.quota_set.volumes.in_use, 0);
  // a transfer can be cancelled
  const v2 = await c.createVolume(taker, { name: 'gift2' });
  const t2 = await c.v(taker, 'POST', '/volume-transfers', { mv: '3.55', body: { transfer: { volume_id: v2.id } } });
  assert.equal(t2.status, 202, t2.text);
  assert.equal((await c.v(taker, 'DELETE', `/volume-transfers/${t2.json.transfer.id}`, { mv: '3.55' })).status, 202);
  assert.equal((await c.v(taker, 'GET', `/volumes/${v2.id}`)).json.volume.status, 'available');
});

test('concurrent snapshots of one volume, deleted concurrently, keep every volume\'s data', async () => {
  const v = await c.createVolume(c.demo, { name: 'chain' });
  const ids: string[] = [];
  const made = await Promise.all([0, 1, 2].map(async (i) => {
    write(v.id, 0x40 + i, `${i}M`);
    return c.v(c.demo, 'POST', '/snapshots', { body: { snapshot: { volume_id: v.id, name: `c${i}` } } });
  }));
  for (const r of made) {
    assert.equal(r.status, 202, r.text);
    ids.push(r.json.snapshot.id);
  }
  for (const id of ids) await waitSnap(id, 'available');
  const clone = await c.createVolume(c.demo, { snapshot_id: ids[1] });
  // a snapshot cannot go while a volume reading its chain is attached
  const act = (id: string, body: unknown) => c.v(c.demo, 'POST', `/volumes/${id}/action`, { body });
  await act(clone.id, { 'os-attach': { instance_uuid: '11111111-2222-4333-8444-888888888888', mountpoint: '/dev/vdb' } });
  const refused = await c.v(c.demo, 'DELETE', `/snapshots/${ids[0]}`);
  assert.equal(refused.status, 400, refused.text);
  await act(clone.id, { 'os-detach': {} });
  const dels = await Promise.all(ids.map((id) => c.v(c.demo, 'DELETE', `/snapshots/${id}`)));
  for (const d of dels) assert.equal(d.status, 202, d.text);
  for (const id of ids) await waitFor('gone', async () => (await c.v(c.demo, 'GET', `/snapshots/${id}`)).status === 404, 20_000, 20);
  for (let i = 0; i < 3; i++) assert.ok(volumeHasPattern(file(v.id), 0x40 + i, `${i}M`), `volume keeps write ${i}`);
  execFileSync('qemu-img', ['check', file(v.id)]);
  execFileSync('qemu-img', ['check', file(clone.id)]);
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', file(v.id)]).toString()) as { 'backing-filename'?: string };
  assert.equal(info['backing-filename'], undefined, 'no snapshot file is left under the volume');
});
