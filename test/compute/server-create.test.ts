/**
 * Server creation rules: min_count/max_count, the instance/cores/RAM quota
 * (also under concurrency), image and flavor checks, and that a refused
 * request leaves nothing behind.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startComputeCloud, IMG, waitFor, type ComputeCloud, type Member } from './helpers.js';

let c: ComputeCloud;

before(async () => {
  c = await startComputeCloud();
});
after(async () => {
  await c?.stop();
});

/** Deletes every live server of a project and waits until its usage is zero. */
async function wipe(m: Member): Promise<void> {
  const l = await c.api('GET', '/servers', { token: m.token });
  for (const s of l.json.servers as { id: string }[]) {
    const r = await c.api('DELETE', `/servers/${s.id}`, { token: m.token });
    assert.equal(r.status, 204, r.text);
  }
  for (const s of l.json.servers as { id: string }[]) await c.waitGone(s.id);
  await waitFor('usage back to zero', async () => (await c.usage(m.projectId)).instances!.in_use === 0);
}

/** Waits until every server of a project rests ACTIVE. */
async function settle(m: Member): Promise<void> {
  const l = await c.api('GET', '/servers', { token: m.token });
  for (const s of l.json.servers as { id: string }[]) await c.waitStatus(s.id, 'ACTIVE');
}

/** Row counts of everything a create touches. */
async function rows() {
  return {
    instances: await c.count('nova_instances'),
    actions: await c.count('nova_instance_actions'),
    reservations: await c.count('quota_reservations'),
    allocations: await c.count('nova_allocations'),
  };
}

const post = (token: string, server: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  c.api('POST', '/servers', { token, body: { server: { name: 'vm', imageRef: IMG.cirros, flavorRef: '42', ...server }, ...extra } });

describe('min_count / max_count and the instance quota', () => {
  test('max_count 10 boots ten servers at once, all reach ACTIVE; an 11th is refused (403, Quota exceeded for instances)', async () => {
    const r = await post(c.demo.token, { name: 'fleet', max_count: 10 });
    assert.equal(r.status, 202, r.text);
    const l = await c.api('GET', '/servers/detail?name=^fleet', { token: c.demo.token });
    const servers = l.json.servers as { id: string; name: string }[];
    assert.equal(servers.length, 10);
    assert.deepEqual(servers.map((s) => s.name).sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1])), Array.from({ length: 10 }, (_, i) => `fleet-${i + 1}`));
    assert.ok(servers.some((s) => s.id === r.json.server.id), 'the answer names one of them');
    for (const s of servers) await c.waitStatus(s.id, 'ACTIVE');
    const u = await c.usage(c.demo.projectId);
    assert.deepEqual([u.instances!.in_use, u.cores!.in_use, u.ram!.in_use], [10, 10, 1280]);
    assert.equal((await c.allocations()).length, 10);

    const before = await rows();
    const over = await post(c.demo.token, { name: 'one-too-many' });
    assert.equal(over.status, 403, over.text);
    assert.equal(over.json.forbidden.code, 403);
    assert.match(over.json.forbidden.message, /^Quota exceeded for instances: Requested 1, but already used 10 of 10 instances/);
    assert.deepEqual(await rows(), before, 'nothing was written');
    await wipe(c.demo);
  });

  test('max_count above what the quota allows boots as many as fit (≥ min_count); min_count above it is 403', async () => {
    const r = await post(c.demo.token, { name: 'some', min_count: 8, max_count: 12 });
    assert.equal(r.status, 202, r.text);
    assert.equal(await c.liveInstances(c.demo.projectId), 10);
    await settle(c.demo);
    const before = await rows();
    const r2 = await post(c.demo.token, { name: 'more', min_count: 2, max_count: 4 });
    assert.equal(r2.status, 403);
    assert.match(r2.json.forbidden.message, /Quota exceeded for instances: Requested 2, but already used 10 of 10 instances/);
    assert.deepEqual(await rows(), before);
    await wipe(c.demo);
    const r3 = await post(c.demo.token, { name: 'toomany', min_count: 11 });
    assert.equal(r3.status, 403);
    assert.match(r3.json.forbidden.message, /Quota exceeded for instances: Requested 11, but already used 0 of 10/);
    assert.equal(await c.liveInstances(c.demo.projectId), 0);
  });

  test('min_count/max_count as strings; 0 or junk are 400', async () => {
    const r = await post(c.demo.token, { name: 'str', min_count: '2', max_count: '2' });
    assert.equal(r.status, 202, r.text);
    assert.equal(await c.liveInstances(c.demo.projectId), 2);
    for (const bad of [{ min_count: 0 }, { max_count: 0 }, { min_count: 'two' }, { max_count: -1 }]) {
      const x = await post(c.demo.token, bad);
      assert.equal(x.status, 400, `${JSON.stringify(bad)}: ${x.status}`);
    }
    await wipe(c.demo);
  });

  test('min_count greater than max_count is 400', async () => {
    const before = await rows();
    const r = await post(c.demo.token, { name: 'inverted', min_count: 3, max_count: 2 });
    try {
      assert.equal(r.status, 400, `${r.status} ${r.text}`);
      assert.deepEqual(await rows(), before);
    } finally {
      await settle(c.demo);
      await wipe(c.demo);
    }
  });

  test('15 concurrent single creates: exactly 10 succeed, 5 get 403, usage is exactly 10', async () => {
    const m = await c.newMember('race');
    const results = await Promise.all(Array.from({ length: 15 }, (_, i) => post(m.token, { name: `race-${i}` })));
    const ok = results.filter((r) => r.status === 202);
    const refused = results.filter((r) => r.status === 403);
    assert.equal(ok.length, 10, results.map((r) => `${r.status}`).join(','));
    assert.equal(refused.length, 5);
    for (const r of refused) assert.match(r.json.forbidden.message, /Quota exceeded for instances/);
    assert.equal(await c.liveInstances(m.projectId), 10);
    for (const r of ok) await c.waitStatus(r.json.server.id, 'ACTIVE');
    const u = await c.usage(m.projectId);
    assert.equal(u.instances!.in_use, 10);
    assert.equal(u.instances!.reserved, 0);
    assert.equal(u.cores!.in_use, 10);
    await wipe(m);
  });

  test('cores and RAM quotas are enforced too, and name the resource', async () => {
    const f = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'eight-cores', ram: 128, vcpus: 8, disk: 1 } } });
    assert.equal(f.status, 200, f.text);
    const m = await c.newMember('cores');
    const r = await post(m.token, { name: 'c', flavorRef: f.json.flavor.id, max_count: 2 });
    assert.equal(r.status, 202);
    const over = await post(m.token, { name: 'c3', flavorRef: f.json.flavor.id });
    assert.equal(over.status, 403);
    assert.match(over.json.forbidden.message, /^Quota exceeded for cores: Requested 8, but already used 16 of 20 cores/);
    await wipe(m);

    const q = await c.api('PUT', `/os-quota-sets/${m.projectId}`, { token: c.admin.token, body: { quota_set: { ram: 1000 } } });
    assert.equal(q.status, 200, q.text);
    const ram = await post(m.token, { name: 'r', min_count: 8 });
    assert.equal(ram.status, 403);
    assert.match(ram.json.forbidden.message, /^Quota exceeded for ram: Requested 1024, but already used 0 of 1000 ram/);
    const fits = await post(m.token, { name: 'r', max_count: 8 });
    assert.equal(fits.status, 202);
    assert.equal(await c.liveInstances(m.projectId), 7, '7 × 128 MB fit in 1000 MB');
    await wipe(m);
  });
});

describe('image and flavor checks', () => {
  test('flavor smaller than the image min_ram / min_disk / image size → 400, nothing written', async () => {
    c.images.add({ id: '55555555-5555-4555-8555-555555555555', name: 'fat', size: 3 * 1024 ** 3 });
    const before = await rows();
    let r = await post(c.demo.token, { imageRef: IMG.big, flavorRef: '1' });
    assert.equal(r.status, 400);
    assert.equal(r.json.badRequest.message, "Flavor's memory is too small for requested image.");
    r = await post(c.demo.token, { imageRef: IMG.big, flavorRef: '2' });
    assert.equal(r.status, 400);
    assert.equal(r.json.badRequest.message, "Flavor's disk is too small for requested image.");
    r = await post(c.demo.token, { imageRef: '55555555-5555-4555-8555-555555555555', flavorRef: '42' });
    assert.equal(r.status, 400);
    assert.match(r.json.badRequest.message, /disk is too small/);
    assert.deepEqual(await rows(), before);
    // m1.medium (4 GB RAM, 40 GB disk) is big enough
    const ok = await post(c.demo.token, { name: 'big-enough', imageRef: IMG.big, flavorRef: '3' });
    assert.equal(ok.status, 202, ok.text);
    await c.waitStatus(ok.json.server.id, 'ACTIVE');
    await wipe(c.demo);
  });

  test('unknown image, unknown flavor, a private flavor without access → 400; nothing written', async () => {
    const priv = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'secret', ram: 128, vcpus: 1, disk: 1, 'os-flavor-access:is_public': false } } });
    assert.equal(priv.status, 200, priv.text);
    const before = await rows();
    let r = await post(c.demo.token, { imageRef: '99999999-9999-4999-8999-999999999999' });
    assert.equal(r.status, 400);
    assert.match(r.json.badRequest.message, /Image 99999999-9999-4999-8999-999999999999 could not be found/);
    r = await post(c.demo.token, { flavorRef: '12345' });
    assert.equal(r.status, 400);
    assert.match(r.json.badRequest.message, /Flavor 12345 could not be found/);
    r = await post(c.demo.token, { flavorRef: priv.json.flavor.id });
    assert.equal(r.status, 400);
    assert.deepEqual(await rows(), before);
    // once granted, the project may use it
    const g = await c.api('POST', `/flavors/${priv.json.flavor.id}/action`, { token: c.admin.token, body: { addTenantAccess: { tenant: c.demo.projectId } } });
    assert.equal(g.status, 200, g.text);
    r = await post(c.demo.token, { name: 'private-ok', flavorRef: priv.json.flavor.id });
    assert.equal(r.status, 202, r.text);
    await c.waitStatus(r.json.server.id, 'ACTIVE');
    await wipe(c.demo);
  });

  test('the image service being down is 503, not 400, and writes nothing', async () => {
    const port = c.cloud.imagePort;
    c.cloud.imagePort = null;
    try {
      const before = await rows();
      const r = await post(c.demo.token, {});
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.serviceUnavailable.code, 503);
      assert.deepEqual(await rows(), before);
    } finally {
      c.cloud.imagePort = port;
    }
  });
});

describe('what the guest gets', () => {
  test('key_name and user_data reach the guest (user data script runs on the fake console)', async () => {
    const k = await c.api('POST', '/os-keypairs', { token: c.demo.token, body: { keypair: { name: 'boot-key' } } });
    assert.equal(k.status, 200, k.text);
    const ud = Buffer.from('#!/bin/sh\necho hello\n').toString('base64');
    const r = await post(c.demo.token, { name: 'with-key', key_name: 'boot-key', user_data: ud, availability_zone: 'nova' });
    assert.equal(r.status, 202, r.text);
    const s = await c.waitStatus(r.json.server.id, 'ACTIVE');
    assert.equal(s.key_name, 'boot-key');
    assert.equal(s['OS-EXT-AZ:availability_zone'], 'nova');
    assert.equal(s.config_drive, 'True');
    const out = await c.action(s.id, { 'os-getConsoleOutput': {} });
    assert.match(out.json.output, /STRATUS-USERDATA-DONE rc=0/);
    // another user's keypair name is not usable
    const m = await c.newMember('nokey');
    const r2 = await post(m.token, { key_name: 'boot-key' });
    assert.equal(r2.status, 400);
    assert.match(r2.json.badRequest.message, /Invalid key_name/);
    await wipe(c.demo);
  });
});
