/**
 * Volumes and servers, in process (fake compute driver, real qcow2 volumes):
 * Nova's os-volume_attachments, the Cinder attachments API (3.27+) and the
 * older os-* attach actions, concurrency (a volume is attached once unless
 * multiattach), failures that leave nothing attaching, boot from volume,
 * clean-up when a server is deleted, and extend of an attached volume.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ComputeDriverError } from '../../src/compute/drivers/driver.js';
import { startVolumeCloud, waitFor, type VolumeCloud } from './helpers.js';

let c: VolumeCloud;
before(async () => {
  c = await startVolumeCloud();
  for (const [k, n] of Object.entries({ volumes: 100, gigabytes: 1000, instances: 50, cores: 100, ram: 100_000 })) await c.cloud.quota.setLimit(c.demo.projectId, k, n);
});
after(async () => {
  await c?.stop();
});

const attach = (serverId: string, volumeId: string, token = c.demo.token) =>
  c.api('POST', `/servers/${serverId}/os-volume_attachments`, { token, body: { volumeAttachment: { volumeId } } });

async function bootActive(name: string): Promise<string> {
  const { id } = await c.boot(c.demo.token, { name });
  await c.waitStatus(id, 'ACTIVE');
  return id;
}

test('server add volume / remove volume through Nova hot-plugs through the driver', async () => {
  const sid = await bootActive('att1');
  const v = await c.createVolume(c.demo, { name: 'att-v1' });
  const r = await attach(sid, v.id);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.volumeAttachment, { id: v.id, serverId: sid, volumeId: v.id, device: '/dev/vdb' });
  const shown = await c.v(c.demo, 'GET', `/volumes/${v.id}`);
  assert.equal(shown.json.volume.status, 'in-use');
  assert.equal(shown.json.volume.attachments[0].server_id, sid);
  assert.equal(shown.json.volume.attachments[0].device, '/dev/vdb');
  const onHost = await c.driver.listVolumes(sid);
  assert.equal(onHost.length, 1);
  assert.match(onHost[0]!.path, new RegExp(`volume-${v.id}\\.qcow2$`));
  assert.match(await c.driver.consoleOutput(sid), /STRATUS-BLOCK-ADDED vdb/);
  assert.deepEqual((await c.server(sid, c.demo.token))['os-extended-volumes:volumes_attached'], [{ id: v.id }]);
  const list = await c.api('GET', `/servers/${sid}/os-volume_attachments`, { token: c.demo.token });
  assert.equal(list.json.volumeAttachments.length, 1);
  assert.equal((await c.api('GET', `/servers/${sid}/os-volume_attachments/${v.id}`, { token: c.demo.token })).status, 200);

  // attaching it again (same or other server) is refused; nothing changes
  const before = await c.snapshotRows();
  const again = await attach(sid, v.id);
  assert.equal(again.status, 400, again.text);
  assert.deepEqual(await c.snapshotRows(), before);
  // deleting an in-use volume is refused
  const del = await c.v(c.demo, 'DELETE', `/volumes/${v.id}`);
  assert.equal(del.status, 400);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'in-use');

  const det = await c.api('DELETE', `/servers/${sid}/os-volume_attachments/${v.id}`, { token: c.demo.token });
  assert.equal(det.status, 202, det.text);
  await c.waitVolume(c.demo, v.id, 'available');
  assert.equal((await c.driver.listVolumes(sid)).length, 0);
  assert.equal((await c.api('DELETE', `/servers/${sid}/os-volume_attachments/${v.id}`, { token: c.demo.token })).status, 404);
});

test('bad attach requests: unknown volume 404, bad uuid 400, other project\'s server 404 — nothing changes', async () => {
  const sid = await bootActive('att-bad');
  const v = await c.createVolume(c.demo, { name: 'att-bad' });
  const other = await c.newMember('attother');
  const ov = await c.createVolume(other, { name: 'theirs' });
  const before = await c.snapshotRows();
  assert.equal((await attach(sid, '00000000-0000-4000-8000-000000000000')).status, 404);
  assert.equal((await attach(sid, 'not-a-uuid')).status, 400);
  assert.equal((await attach(sid, ov.id)).status, 404, "another project's volume is invisible");
  assert.equal((await attach(sid, v.id, other.token)).status, 404, "another project's server is invisible");
  const extra = await c.api('POST', `/servers/${sid}/os-volume_attachments`, { token: c.demo.token, body: { volumeAttachment: { volumeId: v.id, bogus: 1 } } });
  assert.equal(extra.status, 400);
  assert.deepEqual(await c.snapshotRows(), before);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'available');
});

test('concurrent attach of one volume to two servers: exactly one wins', async () => {
  const a = await bootActive('race-a');
  const b = await bootActive('race-b');
  for (let round = 0; round < 3; round++) {
    const v = await c.createVolume(c.demo, { name: `race-${round}` });
    const res = await Promise.all([attach(a, v.id), attach(b, v.id), attach(a, v.id), attach(b, v.id)]);
    const ok = res.filter((r) => r.status === 200);
    assert.equal(ok.length, 1, res.map((r) => `${r.status} ${r.text}`).join('\n'));
    assert.ok(res.filter((r) => r.status !== 200).every((r) => r.status === 400));
    const shown = (await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume;
    assert.equal(shown.status, 'in-use');
    assert.equal(shown.attachments.length, 1);
    const attachedTo = [...(await c.driver.listVolumes(a)), ...(await c.driver.listVolumes(b))].filter((x) => x.volumeId === v.id);
    assert.equal(attachedTo.length, 1, 'plugged into exactly one guest');
    const sid = ok[0]!.json.volumeAttachment.serverId as string;
    await c.api('DELETE', `/servers/${sid}/os-volume_attachments/${v.id}`, { token: c.demo.token });
    await c.waitVolume(c.demo, v.id, 'available');
  }
});

test('a hot-plug that fails leaves the volume available, not attaching', async () => {
  const sid = await bootActive('att-fail');
  const v = await c.createVolume(c.demo, { name: 'att-fail' });
  c.driver.failNext('attachVolume', new ComputeDriverError('Failed', 'QMP device_add failed: injected'), sid);
  const r = await attach(sid, v.id);
  assert.equal(r.status, 500, r.text);
  assert.match(r.text, /device_add failed/);
  const shown = (await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume;
  assert.equal(shown.status, 'available');
  assert.deepEqual(shown.attachments, []);
  assert.equal((await c.api('GET', `/servers/${sid}/os-volume_attachments`, { token: c.demo.token })).json.volumeAttachments.length, 0);
  // and it can be attached afterwards
  assert.equal((await attach(sid, v.id)).status, 200);
});

test('a detach the guest refuses puts the volume back in-use', async () => {
  const sid = await bootActive('det-fail');
  const v = await c.createVolume(c.demo, { name: 'det-fail' });
  assert.equal((await attach(sid, v.id)).status, 200);
  c.driver.failNext('detachVolume', new ComputeDriverError('Timeout', 'guest did not release the volume'), sid);
  assert.equal((await c.api('DELETE', `/servers/${sid}/os-volume_attachments/${v.id}`, { token: c.demo.token })).status, 202);
  await waitFor('back to in-use', async () => (await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status === 'in-use', 5000);
  assert.equal((await c.driver.listVolumes(sid)).length, 1);
});

test('a detach answers 202 at once while the guest takes its time; a second one is refused while it is detaching', async () => {
  const sid = await bootActive('att-slow');
  const v = await c.createVolume(c.demo, { name: 'att-slow' });
  assert.equal((await attach(sid, v.id)).status, 200);
  const release = c.driver.holdNext('detachVolume', sid);
  try {
    const det = await c.api('DELETE', `/servers/${sid}/os-volume_attachments/${v.id}`, { token: c.demo.token });
    assert.equal(det.status, 202, 'answered before the guest let go');
    assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'detaching');
    assert.equal((await c.api('DELETE', `/servers/${sid}/os-volume_attachments/${v.id}`, { token: c.demo.token })).status, 400);
  } finally {
    release();
  }
  await c.waitVolume(c.demo, v.id, 'available');
  assert.equal((await c.driver.listVolumes(sid)).length, 0);
});

test('multiattach volumes attach to two servers', async () => {
  const a = await bootActive('multi-a');
  const b = await bootActive('multi-b');
  const v = await c.createVolume(c.demo, { name: 'multi', multiattach: true });
  assert.equal(v.multiattach, true);
  assert.equal((await attach(a, v.id)).status, 200);
  assert.equal((await attach(b, v.id)).status, 200);
  assert.equal((await attach(b, v.id)).status, 400, 'not twice to the same server');
  const shown = (await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume;
  assert.equal(shown.attachments.length, 2);
  await c.api('DELETE', `/servers/${a}/os-volume_attachments/${v.id}`, { token: c.demo.token });
  await waitFor('one attachment left', async () => (await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.attachments.length === 1, 5000);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'in-use');
});

test('extend of an attached volume goes through the compute agent', async () => {
  const sid = await bootActive('ext-att');
  const v = await c.createVolume(c.demo, { name: 'ext-att' });
  assert.equal((await attach(sid, v.id)).status, 200);
  const calls = c.driver.calls.length;
  const old = await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body: { 'os-extend': { new_size: 2 } } });
  assert.equal(old.status, 400, 'in-use extend needs 3.42');
  const r = await c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { mv: '3.42', body: { 'os-extend': { new_size: 2 } } });
  assert.equal(r.status, 202, r.text);
  const after = await c.waitVolume(c.demo, v.id, 'in-use');
  assert.equal(after.size, 2);
  assert.ok(c.driver.calls.slice(calls).some((x) => x.startsWith('extendVolume')), c.driver.calls.slice(calls).join(','));
});

test('server delete detaches its volumes (and deletes delete_on_termination ones)', async () => {
  const sid = await bootActive('del-att');
  const v = await c.createVolume(c.demo, { name: 'del-att' });
  assert.equal((await attach(sid, v.id)).status, 200);
  assert.equal((await c.api('DELETE', `/servers/${sid}`, { token: c.demo.token })).status, 204);
  await c.waitGone(sid);
  const shown = await c.waitVolume(c.demo, v.id, 'available');
  assert.deepEqual(shown.attachments, []);
});

test('boot from volume (block_device_mapping_v2, source volume) and from an image-made volume', async () => {
  const img = await c.image();
  const bv = await c.createVolume(c.demo, { imageRef: img, name: 'bootvol' });
  const { id } = await c.boot(c.demo.token, { name: 'bfv', imageRef: undefined, block_device_mapping_v2: [{ uuid: bv.id, boot_index: '0', source_type: 'volume', destination_type: 'volume' }] });
  const s = await c.waitStatus(id, 'ACTIVE');
  assert.equal(s.image, '');
  const shown = (await c.v(c.demo, 'GET', `/volumes/${bv.id}`)).json.volume;
  assert.equal(shown.status, 'in-use');
  assert.equal(shown.attachments[0].device, '/dev/vda');
  assert.equal((await c.api('DELETE', `/servers/${id}/os-volume_attachments/${bv.id}`, { token: c.demo.token })).status, 400, 'the root volume stays');
  // in use: a second server cannot boot from it, and nothing of that server remains
  const liveBefore = await c.liveInstances(c.demo.projectId);
  const second = await c.api('POST', '/servers', { token: c.demo.token, body: { server: { name: 'bfv2', flavorRef: '42', block_device_mapping_v2: [{ uuid: bv.id, boot_index: 0, source_type: 'volume', destination_type: 'volume' }] } } });
  assert.equal(second.status, 400, second.text);
  assert.equal(await c.liveInstances(c.demo.projectId), liveBefore);
  await c.api('DELETE', `/servers/${id}`, { token: c.demo.token });
  await c.waitGone(id);
  await c.waitVolume(c.demo, bv.id, 'available');

  // source image with delete_on_termination: the volume is made, then deleted with the server
  const n0 = (await c.v(c.demo, 'GET', '/volumes')).json.volumes.length;
  const { id: id2 } = await c.boot(c.demo.token, { name: 'bfv-img', imageRef: undefined, block_device_mapping_v2: [{ uuid: img, boot_index: 0, source_type: 'image', destination_type: 'volume', volume_size: 1, delete_on_termination: true }] });
  await c.waitStatus(id2, 'ACTIVE');
  const vols = (await c.v(c.demo, 'GET', '/volumes/detail')).json.volumes as { id: string; status: string; bootable: string }[];
  assert.equal(vols.length, n0 + 1);
  assert.ok(vols.some((v) => v.status === 'in-use' && v.bootable === 'true'));
  await c.api('DELETE', `/servers/${id2}`, { token: c.demo.token });
  await c.waitGone(id2);
  await waitFor('the root volume is deleted', async () => (await c.v(c.demo, 'GET', '/volumes')).json.volumes.length === n0, 10_000, 50);
});

test('bad block_device_mapping_v2 is refused and creates nothing', async () => {
  const liveBefore = await c.liveInstances(c.demo.projectId);
  const rows = await c.snapshotRows();
  const bad = [
    [{ uuid: 'nope', boot_index: 0, source_type: 'volume', destination_type: 'volume' }],
    [{ uuid: '00000000-0000-4000-8000-000000000000', boot_index: 0, source_type: 'volume', destination_type: 'volume' }],
    [{ uuid: '00000000-0000-4000-8000-000000000000', boot_index: 0, source_type: 'blank', destination_type: 'volume' }],
    [{ uuid: '00000000-0000-4000-8000-000000000000', boot_index: 1, source_type: 'volume', destination_type: 'volume' }],
    ['not-an-object'],
  ];
  for (const bdm of bad) {
    const r = await c.api('POST', '/servers', { token: c.demo.token, body: { server: { name: 'badbdm', flavorRef: '42', block_device_mapping_v2: bdm } } });
    assert.equal(r.status, 400, `${JSON.stringify(bdm)}: ${r.text}`);
  }
  assert.equal(await c.liveInstances(c.demo.projectId), liveBefore);
  assert.deepEqual(await c.snapshotRows(), rows);
});

test('Cinder attachments API (3.27+, os-complete 3.44) and the older os-* actions', async () => {
  const v = await c.createVolume(c.demo, { name: 'api-att' });
  const inst = '11111111-2222-4333-8444-555555555555';
  assert.equal((await c.v(c.demo, 'POST', '/attachments', { body: { attachment: { volume_uuid: v.id, instance_uuid: inst } } })).status, 404, 'needs 3.27');
  const cr = await c.v(c.demo, 'POST', '/attachments', { mv: '3.44', body: { attachment: { volume_uuid: v.id, instance_uuid: inst } } });
  assert.equal(cr.status, 200, cr.text);
  assert.equal(cr.json.attachment.status, 'reserved');
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'reserved');
  const att = cr.json.attachment.id;
  const second = await c.v(c.demo, 'POST', '/attachments', { mv: '3.44', body: { attachment: { volume_uuid: v.id, instance_uuid: '11111111-2222-4333-8444-666666666666' } } });
  assert.equal(second.status, 400, 'not multiattach');
  const upd = await c.v(c.demo, 'PUT', `/attachments/${att}`, { mv: '3.44', body: { attachment: { connector: { host: 'h1', initiator: 'x' } } } });
  assert.equal(upd.status, 200, upd.text);
  assert.equal(upd.json.attachment.connection_info.driver_volume_type, 'file');
  assert.match(upd.json.attachment.connection_info.device_path, new RegExp(`volume-${v.id}\\.qcow2$`));
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'attaching');
  const done = await c.v(c.demo, 'POST', `/attachments/${att}/action`, { mv: '3.44', body: { 'os-complete': null } });
  assert.equal(done.status, 204, done.text);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'in-use');
  const list = await c.v(c.demo, 'GET', `/attachments?volume_id=${v.id}`, { mv: '3.44' });
  assert.equal(list.json.attachments.length, 1);
  assert.equal(list.json.attachments[0].status, 'attached');
  assert.equal((await c.v(c.demo, 'DELETE', `/attachments/${att}`, { mv: '3.44' })).status, 200);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'available');

  // the older actions
  const act = (body: unknown) => c.v(c.demo, 'POST', `/volumes/${v.id}/action`, { body });
  assert.equal((await act({ 'os-reserve': null })).status, 202);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'reserved');
  assert.equal((await act({ 'os-reserve': null })).status, 400, 'reserved twice');
  const conn = await act({ 'os-initialize_connection': { connector: { host: 'h1' } } });
  assert.equal(conn.status, 200, conn.text);
  assert.equal(conn.json.connection_info.driver_volume_type, 'file');
  assert.equal((await act({ 'os-attach': { instance_uuid: inst, mountpoint: '/dev/vdc' } })).status, 202);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'in-use');
  assert.equal((await act({ 'os-begin_detaching': null })).status, 202);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'detaching');
  assert.equal((await act({ 'os-roll_detaching': null })).status, 202);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'in-use');
  assert.equal((await act({ 'os-terminate_connection': { connector: { host: 'h1' } } })).status, 202);
  assert.equal((await act({ 'os-detach': {} })).status, 202);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'available');
  assert.equal((await act({ 'os-detach': {} })).status, 400, 'not attached');
  assert.equal((await act({ 'os-reserve': null })).status, 202);
  assert.equal((await act({ 'os-unreserve': null })).status, 202);
  assert.equal((await c.v(c.demo, 'GET', `/volumes/${v.id}`)).json.volume.status, 'available');
});
