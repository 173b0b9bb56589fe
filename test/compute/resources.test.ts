/**
 * The compute API around servers: flavors (with extra specs and private
 * access), keypairs, availability zones, hypervisors, services, limits,
 * quota sets and server groups.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { startComputeCloud, IMG, type ComputeCloud, type Member } from './helpers.js';

let c: ComputeCloud;
let other: Member;

before(async () => {
  c = await startComputeCloud();
  other = await c.newMember();
});
after(async () => {
  await c?.stop();
});

const sshString = (b: Buffer) => {
  const l = Buffer.alloc(4);
  l.writeUInt32BE(b.length);
  return Buffer.concat([l, b]);
};
const md5Fingerprint = (blob: Buffer) => createHash('md5').update(blob).digest('hex').match(/../g)!.join(':');

describe('flavors', () => {
  test('the seeded flavors are listed (sorted by id) and shown with their details', async () => {
    const r = await c.api('GET', '/flavors', { token: c.demo.token });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.flavors.map((f: { id: string; name: string }) => [f.id, f.name]), [['1', 'm1.tiny'], ['2', 'm1.small'], ['3', 'm1.medium'], ['42', 'm1.nano']]);
    for (const f of r.json.flavors) assert.deepEqual(Object.keys(f).sort(), ['id', 'links', 'name']);
    const d = await c.api('GET', '/flavors/detail', { token: c.demo.token });
    const nano = d.json.flavors.find((f: { id: string }) => f.id === '42');
    assert.deepEqual(
      { ...nano, links: undefined },
      { id: '42', name: 'm1.nano', links: undefined, ram: 128, disk: 1, vcpus: 1, swap: '', 'OS-FLV-EXT-DATA:ephemeral': 0, 'OS-FLV-DISABLED:disabled': false, 'os-flavor-access:is_public': true, rxtx_factor: 1 },
    );
    assert.equal(nano.links[0].href, `${c.config.publicUrl}/compute/v2.1/flavors/42`);
    const one = await c.api('GET', '/flavors/3', { token: c.demo.token });
    assert.equal(one.status, 200);
    assert.equal(one.json.flavor.name, 'm1.medium');
    assert.equal(one.json.flavor.ram, 4096);
    assert.equal((await c.api('GET', '/flavors/nope', { token: c.demo.token })).status, 404);
    assert.equal((await c.api('GET', '/flavors')).status, 401);
  });

  test('minRam/minDisk filters and limit/marker paging', async () => {
    const ids = async (q: string) => (await c.api('GET', `/flavors?${q}`, { token: c.demo.token })).json.flavors.map((f: { id: string }) => f.id);
    assert.deepEqual(await ids('minRam=2048'), ['2', '3']);
    assert.deepEqual(await ids('minDisk=20'), ['2', '3']);
    assert.deepEqual(await ids('minRam=512&minDisk=2'), ['2', '3']);
    const p1 = await c.api('GET', '/flavors?limit=2', { token: c.demo.token });
    assert.deepEqual(p1.json.flavors.map((f: { id: string }) => f.id), ['1', '2']);
    const next = p1.json.flavors_links[0].href as string;
    assert.match(next, /limit=2&marker=2$/);
    const p2 = await c.api('GET', next.slice(next.indexOf('/flavors')), { token: c.demo.token });
    assert.deepEqual(p2.json.flavors.map((f: { id: string }) => f.id), ['3', '42']);
    assert.equal((await c.api('GET', '/flavors?marker=nope', { token: c.demo.token })).status, 400);
  });

  test('admins create and delete flavors; members get 403', async () => {
    const body = { flavor: { name: 'custom.1', id: 'custom-1', ram: 1024, vcpus: 2, disk: 10, 'OS-FLV-EXT-DATA:ephemeral': 5, swap: 512, rxtx_factor: 2 } };
    const denied = await c.api('POST', '/flavors', { token: c.demo.token, body });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.forbidden.code, 403);
    const r = await c.api('POST', '/flavors', { token: c.admin.token, body });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual({ ...r.json.flavor, links: undefined }, {
      id: 'custom-1', name: 'custom.1', links: undefined, ram: 1024, vcpus: 2, disk: 10, 'OS-FLV-EXT-DATA:ephemeral': 5, swap: 512,
      'OS-FLV-DISABLED:disabled': false, 'os-flavor-access:is_public': true, rxtx_factor: 2,
    });
    assert.equal((await c.api('GET', '/flavors/custom-1', { token: c.demo.token })).json.flavor.vcpus, 2);
    // an id is generated when not given; string numbers are accepted
    const auto = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'auto', ram: '256', vcpus: '1', disk: '0' } } });
    assert.equal(auto.status, 200, auto.text);
    assert.match(auto.json.flavor.id, /^[0-9a-f-]{36}$/);
    assert.equal(auto.json.flavor.ram, 256);
    assert.equal(auto.json.flavor.swap, '');
    // conflicts
    assert.equal((await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'custom.1', ram: 1, vcpus: 1, disk: 1 } } })).status, 409);
    assert.equal((await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'another', id: 'custom-1', ram: 1, vcpus: 1, disk: 1 } } })).status, 409);
    // validation
    for (const bad of [
      { name: 'x', ram: 0, vcpus: 1, disk: 1 },
      { name: 'x', ram: 1, vcpus: 0, disk: 1 },
      { name: 'x', ram: 1, vcpus: 1, disk: -1 },
      { name: '', ram: 1, vcpus: 1, disk: 1 },
      { name: 'x', ram: 'lots', vcpus: 1, disk: 1 },
      { name: 'x', id: 'bad/id', ram: 1, vcpus: 1, disk: 1 },
      { name: 'x', ram: 1, vcpus: 1 },
      { name: 'x', ram: 1, vcpus: 1, disk: 1, extra: true },
    ]) {
      const x = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: bad } });
      assert.equal(x.status, 400, `${JSON.stringify(bad)}: ${x.status}`);
    }
    assert.equal((await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: '   ', ram: 1, vcpus: 1, disk: 1 } } })).status, 400, 'blank name');
    // delete
    assert.equal((await c.api('DELETE', '/flavors/custom-1', { token: c.demo.token })).status, 403);
    assert.equal((await c.api('DELETE', '/flavors/custom-1', { token: c.admin.token })).status, 202);
    assert.equal((await c.api('GET', '/flavors/custom-1', { token: c.demo.token })).status, 404);
    assert.equal((await c.api('DELETE', '/flavors/custom-1', { token: c.admin.token })).status, 404);
  });

  test('a server keeps its embedded flavor after the flavor is deleted', async () => {
    const f = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'ephemeral-flavor', ram: 256, vcpus: 1, disk: 1 } } });
    const { id } = await c.boot(c.demo.token, { flavorRef: f.json.flavor.id });
    await c.waitStatus(id, 'ACTIVE');
    assert.equal((await c.api('DELETE', `/flavors/${f.json.flavor.id}`, { token: c.admin.token })).status, 202);
    const s = await c.server(id, c.demo.token);
    assert.equal(s.flavor.id, f.json.flavor.id);
    assert.equal(s.status, 'ACTIVE');
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: c.demo.token })).status, 204);
    await c.waitGone(id);
  });

  test('extra specs: anyone reads, admins write; values become strings', async () => {
    const base = '/flavors/2/os-extra_specs';
    let r = await c.api('GET', base, { token: c.demo.token });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { extra_specs: {} });
    assert.equal((await c.api('POST', base, { token: c.demo.token, body: { extra_specs: { 'hw:cpu_policy': 'dedicated' } } })).status, 403);
    r = await c.api('POST', base, { token: c.admin.token, body: { extra_specs: { 'hw:cpu_policy': 'dedicated', 'quota:disk_read_bytes_sec': 10240, 'hw:vif_multiqueue_enabled': true } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.extra_specs, { 'hw:cpu_policy': 'dedicated', 'quota:disk_read_bytes_sec': '10240', 'hw:vif_multiqueue_enabled': 'true' });
    r = await c.api('POST', base, { token: c.admin.token, body: { extra_specs: { 'hw:mem_page_size': 'large' } } });
    assert.equal(Object.keys(r.json.extra_specs).length, 4, 'POST merges');
    r = await c.api('GET', `${base}/hw:cpu_policy`, { token: c.demo.token });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { 'hw:cpu_policy': 'dedicated' });
    assert.equal((await c.api('GET', `${base}/nope`, { token: c.demo.token })).status, 404);
    r = await c.api('PUT', `${base}/hw:cpu_policy`, { token: c.admin.token, body: { 'hw:cpu_policy': 'shared' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { 'hw:cpu_policy': 'shared' });
    assert.equal((await c.api('PUT', `${base}/hw:cpu_policy`, { token: c.admin.token, body: { other: 'x' } })).status, 400);
    assert.equal((await c.api('PUT', `${base}/hw:cpu_policy`, { token: c.demo.token, body: { 'hw:cpu_policy': 'x' } })).status, 403);
    assert.equal((await c.api('DELETE', `${base}/hw:cpu_policy`, { token: c.demo.token })).status, 403);
    assert.equal((await c.api('DELETE', `${base}/hw:cpu_policy`, { token: c.admin.token })).status, 200);
    assert.equal((await c.api('DELETE', `${base}/hw:cpu_policy`, { token: c.admin.token })).status, 404);
    r = await c.api('GET', base, { token: c.demo.token });
    assert.deepEqual(Object.keys(r.json.extra_specs).sort(), ['hw:mem_page_size', 'hw:vif_multiqueue_enabled', 'quota:disk_read_bytes_sec']);
    assert.equal((await c.api('GET', '/flavors/nope/os-extra_specs', { token: c.demo.token })).status, 404);
    assert.equal((await c.api('POST', '/flavors/nope/os-extra_specs', { token: c.admin.token, body: { extra_specs: { a: 'b' } } })).status, 404);
    // a server created afterwards embeds the flavor's extra specs (not visible in 2.1 views, but stored)
  });

  test('extra spec keys with invalid characters, and non-scalar values, are 400', async () => {
    const base = '/flavors/3/os-extra_specs';
    const badKey = await c.api('POST', base, { token: c.admin.token, body: { extra_specs: { 'bad/key': 'x' } } });
    assert.equal(badKey.status, 400, `bad key: ${badKey.status} ${badKey.text}`);
    const badValue = await c.api('POST', base, { token: c.admin.token, body: { extra_specs: { 'bad/key2': { nested: true } } } });
    assert.equal(badValue.status, 400, `object value: ${badValue.status} ${badValue.text}`);
    assert.deepEqual((await c.api('GET', base, { token: c.admin.token })).json.extra_specs, {});
  });

  test('private flavors: hidden from projects without access; admins manage the access list', async () => {
    const r = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'private.1', id: 'priv-1', ram: 128, vcpus: 1, disk: 1, 'os-flavor-access:is_public': false } } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.flavor['os-flavor-access:is_public'], false);
    const demoIds = async () => (await c.api('GET', '/flavors', { token: c.demo.token })).json.flavors.map((f: { id: string }) => f.id);
    assert.ok(!(await demoIds()).includes('priv-1'));
    assert.equal((await c.api('GET', '/flavors/priv-1', { token: c.demo.token })).status, 404);
    assert.equal((await c.api('GET', '/flavors/priv-1', { token: c.admin.token })).status, 200);
    // grant
    const acl = '/flavors/priv-1/os-flavor-access';
    assert.equal((await c.api('GET', acl, { token: c.demo.token })).status, 403);
    let g = await c.api('POST', '/flavors/priv-1/action', { token: c.admin.token, body: { addTenantAccess: { tenant: c.demo.projectId } } });
    assert.equal(g.status, 200, g.text);
    assert.ok(g.json.flavor_access.some((a: { tenant_id: string; flavor_id: string }) => a.tenant_id === c.demo.projectId && a.flavor_id === 'priv-1'));
    assert.ok((await demoIds()).includes('priv-1'));
    assert.equal((await c.api('GET', '/flavors/priv-1', { token: c.demo.token })).status, 200);
    assert.ok(!(await c.api('GET', '/flavors', { token: other.token })).json.flavors.some((f: { id: string }) => f.id === 'priv-1'), 'other projects still do not see it');
    assert.equal((await c.api('POST', '/flavors/priv-1/action', { token: c.admin.token, body: { addTenantAccess: { tenant: c.demo.projectId } } })).status, 409, 'already granted');
    assert.equal((await c.api('POST', '/flavors/priv-1/action', { token: c.demo.token, body: { addTenantAccess: { tenant: other.projectId } } })).status, 403);
    // is_public=false lists private flavors the caller may see
    const priv = await c.api('GET', '/flavors?is_public=false', { token: c.demo.token });
    assert.deepEqual(priv.json.flavors.map((f: { id: string }) => f.id), ['priv-1']);
    // revoke
    g = await c.api('POST', '/flavors/priv-1/action', { token: c.admin.token, body: { removeTenantAccess: { tenant: c.demo.projectId } } });
    assert.equal(g.status, 200);
    assert.ok(!g.json.flavor_access.some((a: { tenant_id: string }) => a.tenant_id === c.demo.projectId));
    assert.ok(!(await demoIds()).includes('priv-1'));
    assert.equal((await c.api('POST', '/flavors/priv-1/action', { token: c.admin.token, body: { removeTenantAccess: { tenant: c.demo.projectId } } })).status, 404);
    // public flavors have no access list
    assert.equal((await c.api('GET', '/flavors/1/os-flavor-access', { token: c.admin.token })).status, 404);
    assert.equal((await c.api('POST', '/flavors/1/action', { token: c.admin.token, body: { addTenantAccess: { tenant: c.demo.projectId } } })).status, 409);
    assert.equal((await c.api('POST', '/flavors/priv-1/action', { token: c.admin.token, body: { bogus: {} } })).status, 400);
  });

  test('a new private flavor has an empty access list (Tempest test_flavor_access_list_with_private_flavor)', async () => {
    const r = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'private.2', id: 'priv-2', ram: 128, vcpus: 1, disk: 1, 'os-flavor-access:is_public': false } } });
    assert.equal(r.status, 200, r.text);
    const acl = await c.api('GET', '/flavors/priv-2/os-flavor-access', { token: c.admin.token });
    assert.equal(acl.status, 200);
    assert.deepEqual(acl.json.flavor_access, []);
  });

  test('admin is_public=None lists every flavor (public and private) once', async () => {
    const r = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'private.3', id: 'priv-3', ram: 128, vcpus: 1, disk: 1, 'os-flavor-access:is_public': false } } });
    assert.equal(r.status, 200);
    await c.api('POST', '/flavors/priv-3/action', { token: c.admin.token, body: { addTenantAccess: { tenant: c.admin.projectId } } });
    const all = await c.api('GET', '/flavors?is_public=None', { token: c.admin.token });
    const ids = all.json.flavors.map((f: { id: string }) => f.id) as string[];
    assert.ok(ids.includes('priv-3') && ids.includes('priv-1') && ids.includes('1'));
    assert.equal(new Set(ids).size, ids.length, `duplicates in ${ids.join(',')}`);
    // members asking for None get the normal view
    const m = await c.api('GET', '/flavors?is_public=None', { token: other.token });
    assert.ok(!m.json.flavors.some((f: { id: string }) => f.id.startsWith('priv-')));
  });
});

describe('keypairs', () => {
  test('generate: 200 with a private key that matches the public key and its MD5 fingerprint', async () => {
    const r = await c.api('POST', '/os-keypairs', { token: c.demo.token, body: { keypair: { name: 'gen' } } });
    assert.equal(r.status, 200, r.text);
    const k = r.json.keypair;
    assert.equal(k.name, 'gen');
    assert.equal(k.user_id, c.demo.userId);
    assert.match(k.private_key, /^-----BEGIN RSA PRIVATE KEY-----\n/);
    assert.match(k.public_key, /^ssh-rsa AAAA[0-9A-Za-z+/=]+ /);
    const blob = Buffer.from(k.public_key.split(' ')[1], 'base64');
    assert.equal(k.fingerprint, md5Fingerprint(blob));
    assert.match(k.fingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    // the public key is the private key's
    const jwk = createPublicKey(k.private_key).export({ format: 'jwk' }) as { n: string; e: string };
    const mpint = (b64: string) => {
      let b = Buffer.from(b64, 'base64url');
      if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
      return sshString(b);
    };
    assert.deepEqual(blob, Buffer.concat([sshString(Buffer.from('ssh-rsa')), mpint(jwk.e), mpint(jwk.n)]));
    // shown without the private key afterwards
    const show = await c.api('GET', '/os-keypairs/gen', { token: c.demo.token });
    assert.equal(show.status, 200);
    assert.equal(show.json.keypair.private_key, undefined);
    assert.equal(show.json.keypair.public_key, k.public_key);
    assert.equal(show.json.keypair.fingerprint, k.fingerprint);
    assert.equal(show.json.keypair.user_id, c.demo.userId);
    assert.match(show.json.keypair.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000$/);
  });

  test('import an ed25519 key: fingerprint computed, no private key returned', async () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = Buffer.from((publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url');
    const blob = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(raw)]);
    const line = `ssh-ed25519 ${blob.toString('base64')} me@laptop`;
    const r = await c.api('POST', '/os-keypairs', { token: c.demo.token, body: { keypair: { name: 'ed', public_key: line } } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.keypair.private_key, undefined);
    assert.equal(r.json.keypair.public_key, line);
    assert.equal(r.json.keypair.fingerprint, md5Fingerprint(blob));
    const l = await c.api('GET', '/os-keypairs', { token: c.demo.token });
    assert.deepEqual(l.json.keypairs.map((x: { keypair: { name: string } }) => x.keypair.name), ['ed', 'gen']);
    assert.deepEqual(Object.keys(l.json.keypairs[0].keypair).sort(), ['fingerprint', 'name', 'public_key']);
  });

  test('duplicate name 409; invalid keys and names 400', async () => {
    const dup = await c.api('POST', '/os-keypairs', { token: c.demo.token, body: { keypair: { name: 'gen' } } });
    assert.equal(dup.status, 409);
    assert.match(dup.json.conflictingRequest.message, /already exists/);
    const rsaBlob = Buffer.from((await c.api('GET', '/os-keypairs/gen', { token: c.demo.token })).json.keypair.public_key.split(' ')[1], 'base64');
    for (const [label, keypair] of [
      ['garbage', { name: 'k1', public_key: 'not a key' }],
      ['unknown type', { name: 'k2', public_key: 'ssh-foo AAAAB3NzaC1yc2EAAAADAQABAAABAQ' }],
      ['too short', { name: 'k3', public_key: 'ssh-rsa AAAA' }],
      ['type mismatch', { name: 'k4', public_key: `ssh-ed25519 ${rsaBlob.toString('base64')}` }],
      ['bad name', { name: 'bad/name' }],
      ['padded name', { name: ' gen2' }],
      ['bad type', { name: 'k5', type: 'pgp' }],
      ['extra field', { name: 'k6', color: 'blue' }],
    ] as const) {
      const r = await c.api('POST', '/os-keypairs', { token: c.demo.token, body: { keypair: keypair as Record<string, unknown> } });
      assert.equal(r.status, 400, `${label}: ${r.status} ${r.text}`);
    }
    const l = await c.api('GET', '/os-keypairs', { token: c.demo.token });
    assert.equal(l.json.keypairs.length, 2, 'nothing was added');
  });

  test('keypairs are per user: invisible and unreachable for another user; admins may name the user', async () => {
    const l = await c.api('GET', '/os-keypairs', { token: other.token });
    assert.deepEqual(l.json.keypairs, []);
    assert.equal((await c.api('GET', '/os-keypairs/gen', { token: other.token })).status, 404);
    assert.equal((await c.api('DELETE', '/os-keypairs/gen', { token: other.token })).status, 404);
    assert.equal((await c.api('GET', `/os-keypairs/gen?user_id=${c.demo.userId}`, { token: other.token })).status, 403);
    assert.equal((await c.api('GET', `/os-keypairs?user_id=${c.demo.userId}`, { token: other.token })).status, 403);
    assert.equal((await c.api('POST', '/os-keypairs', { token: other.token, body: { keypair: { name: 'planted', user_id: c.demo.userId } } })).status, 403);
    const a = await c.api('GET', `/os-keypairs/gen?user_id=${c.demo.userId}`, { token: c.admin.token });
    assert.equal(a.status, 200);
    assert.equal(a.json.keypair.user_id, c.demo.userId);
    // the same name is free for another user
    const mine = await c.api('POST', '/os-keypairs', { token: other.token, body: { keypair: { name: 'gen' } } });
    assert.equal(mine.status, 200);
    assert.notEqual(mine.json.keypair.fingerprint, a.json.keypair.fingerprint);
  });

  test('delete: 202, then 404', async () => {
    assert.equal((await c.api('DELETE', '/os-keypairs/ed', { token: c.demo.token })).status, 202);
    assert.equal((await c.api('GET', '/os-keypairs/ed', { token: c.demo.token })).status, 404);
    assert.equal((await c.api('DELETE', '/os-keypairs/ed', { token: c.demo.token })).status, 404);
    // the name can be reused
    assert.equal((await c.api('POST', '/os-keypairs', { token: c.demo.token, body: { keypair: { name: 'ed' } } })).status, 200);
  });
});

describe('availability zones, hypervisors, services', () => {
  test('os-availability-zone lists the zone of the host for everyone; detail is for cloud readers', async () => {
    const r = await c.api('GET', '/os-availability-zone', { token: c.demo.token });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true }, hosts: null }] });
    assert.equal((await c.api('GET', '/os-availability-zone/detail', { token: c.demo.token })).status, 403);
    const d = await c.api('GET', '/os-availability-zone/detail', { token: c.admin.token });
    assert.equal(d.status, 200);
    const zones = d.json.availabilityZoneInfo as { zoneName: string; hosts: Record<string, Record<string, { available: boolean; active: boolean }>> }[];
    assert.deepEqual(zones.map((z) => z.zoneName), ['internal', 'nova']);
    const nova = zones.find((z) => z.zoneName === 'nova')!;
    assert.deepEqual(Object.keys(nova.hosts), [c.host]);
    assert.equal(nova.hosts[c.host]!['nova-compute']!.available, true);
    assert.equal(nova.hosts[c.host]!['nova-compute']!.active, true);
  });

  test('os-hypervisors: list, detail with the host capacity and usage, statistics, show; admins only', async () => {
    assert.equal((await c.api('GET', '/os-hypervisors', { token: c.demo.token })).status, 403);
    assert.equal((await c.api('GET', '/os-hypervisors/statistics', { token: c.demo.token })).status, 403);
    const l = await c.api('GET', '/os-hypervisors', { token: c.admin.token });
    assert.equal(l.status, 200);
    assert.deepEqual(l.json.hypervisors, [{ id: 1, hypervisor_hostname: c.host, state: 'up', status: 'enabled' }]);
    const { id } = await c.boot(c.demo.token, { name: 'counted', flavorRef: '1' });
    await c.waitStatus(id, 'ACTIVE');
    const d = await c.api('GET', '/os-hypervisors/detail', { token: c.admin.token });
    const h = d.json.hypervisors[0];
    assert.equal(h.hypervisor_type, 'QEMU');
    assert.equal(h.vcpus, 8);
    assert.equal(h.memory_mb, 16384);
    assert.equal(h.local_gb, 200);
    assert.equal(h.vcpus_used, 1);
    assert.equal(h.memory_mb_used, 512);
    assert.equal(h.free_ram_mb, 16384 - 512);
    assert.equal(h.local_gb_used, 1);
    assert.equal(h.running_vms, 1);
    assert.equal(h.service.host, c.host);
    assert.equal(typeof JSON.parse(h.cpu_info).arch, 'string');
    const s = await c.api('GET', '/os-hypervisors/statistics', { token: c.admin.token });
    assert.deepEqual(
      { count: s.json.hypervisor_statistics.count, vcpus: s.json.hypervisor_statistics.vcpus, vcpus_used: s.json.hypervisor_statistics.vcpus_used, memory_mb_used: s.json.hypervisor_statistics.memory_mb_used, running_vms: s.json.hypervisor_statistics.running_vms },
      { count: 1, vcpus: 8, vcpus_used: 1, memory_mb_used: 512, running_vms: 1 },
    );
    const one = await c.api('GET', '/os-hypervisors/1', { token: c.admin.token });
    assert.equal(one.status, 200);
    assert.equal(one.json.hypervisor.hypervisor_hostname, c.host);
    assert.equal((await c.api('GET', '/os-hypervisors/99', { token: c.admin.token })).status, 404);
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: c.demo.token })).status, 204);
    await c.waitGone(id);
    const after = await c.api('GET', '/os-hypervisors/statistics', { token: c.admin.token });
    assert.equal(after.json.hypervisor_statistics.running_vms, 0);
    assert.equal(after.json.hypervisor_statistics.memory_mb_used, 0);
  });

  test('os-services lists conductor, scheduler and this host\'s compute (up); filters by binary and host', async () => {
    assert.equal((await c.api('GET', '/os-services', { token: c.demo.token })).status, 403);
    const r = await c.api('GET', '/os-services', { token: c.admin.token });
    assert.equal(r.status, 200);
    const binaries = r.json.services.map((s: { binary: string }) => s.binary).sort();
    assert.deepEqual(binaries, ['nova-compute', 'nova-conductor', 'nova-scheduler']);
    const compute = r.json.services.find((s: { binary: string }) => s.binary === 'nova-compute');
    assert.equal(compute.host, c.host);
    assert.equal(compute.zone, 'nova');
    assert.equal(compute.state, 'up');
    assert.equal(compute.status, 'enabled');
    assert.equal(compute.forced_down, false);
    const f = await c.api('GET', `/os-services?binary=nova-compute&host=${encodeURIComponent(c.host)}`, { token: c.admin.token });
    assert.equal(f.json.services.length, 1);
    assert.equal((await c.api('GET', '/os-services?host=nowhere', { token: c.admin.token })).json.services.length, 0);
  });
});

describe('limits and quota sets', () => {
  test('limits: absolute limits and usage of the caller\'s project', async () => {
    const { id } = await c.boot(c.demo.token, { name: 'limits', flavorRef: '1' });
    await c.waitStatus(id, 'ACTIVE');
    const r = await c.api('GET', '/limits', { token: c.demo.token });
    assert.equal(r.status, 200);
    const a = r.json.limits.absolute;
    assert.deepEqual(r.json.limits.rate, []);
    assert.equal(a.maxTotalInstances, 10);
    assert.equal(a.maxTotalCores, 20);
    assert.equal(a.maxTotalRAMSize, 51200);
    assert.equal(a.maxServerMeta, 128);
    assert.equal(a.maxTotalKeypairs, 100);
    assert.equal(a.maxServerGroups, 10);
    assert.equal(a.maxServerGroupMembers, 10);
    assert.equal(a.totalInstancesUsed, 1);
    assert.equal(a.totalCoresUsed, 1);
    assert.equal(a.totalRAMUsed, 512);
    const o = await c.api('GET', '/limits', { token: other.token });
    assert.equal(o.json.limits.absolute.totalInstancesUsed, 0);
    // admins may look at another project; members may not
    const adm = await c.api('GET', `/limits?tenant_id=${c.demo.projectId}`, { token: c.admin.token });
    assert.equal(adm.json.limits.absolute.totalInstancesUsed, 1);
    const sneaky = await c.api('GET', `/limits?tenant_id=${c.demo.projectId}`, { token: other.token });
    assert.equal(sneaky.json.limits.absolute.totalInstancesUsed, 0, 'tenant_id is ignored for non-admins');
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: c.demo.token })).status, 204);
    await c.waitGone(id);
  });

  test('os-quota-sets: show (own project), defaults, detail; another project is 403 for members', async () => {
    const r = await c.api('GET', `/os-quota-sets/${c.demo.projectId}`, { token: c.demo.token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.quota_set, {
      id: c.demo.projectId, instances: 10, cores: 20, ram: 51200, server_groups: 10, server_group_members: 10, metadata_items: 128,
      injected_files: 5, injected_file_content_bytes: 10240, injected_file_path_bytes: 255, key_pairs: 100,
      floating_ips: 10, fixed_ips: -1, security_groups: 10, security_group_rules: 20, // Nova 2.1's deprecated network quotas
    });
    assert.equal((await c.api('GET', `/os-quota-sets/${c.demo.projectId}`, { token: other.token })).status, 403);
    const d = await c.api('GET', `/os-quota-sets/${c.demo.projectId}/defaults`, { token: c.demo.token });
    assert.equal(d.status, 200);
    assert.equal(d.json.quota_set.instances, 10);
    assert.equal(d.json.quota_set.key_pairs, 100);
    assert.equal(d.json.quota_set.id, c.demo.projectId);
    const { id } = await c.boot(c.demo.token, { name: 'quota-detail' });
    await c.waitStatus(id, 'ACTIVE');
    const det = await c.api('GET', `/os-quota-sets/${c.demo.projectId}/detail`, { token: c.demo.token });
    assert.equal(det.status, 200);
    assert.deepEqual(det.json.quota_set.instances, { limit: 10, in_use: 1, reserved: 0 });
    assert.deepEqual(det.json.quota_set.cores, { limit: 20, in_use: 1, reserved: 0 });
    assert.deepEqual(det.json.quota_set.ram, { limit: 51200, in_use: 128, reserved: 0 });
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: c.demo.token })).status, 204);
    await c.waitGone(id);
  });

  test('os-quota-sets update: admins only (member → 403); validated; takes effect; DELETE restores defaults', async () => {
    const m = await c.newMember('quota');
    const url = `/os-quota-sets/${m.projectId}`;
    const denied = await c.api('PUT', url, { token: m.token, body: { quota_set: { instances: 100 } } });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.forbidden.code, 403);
    assert.equal((await c.api('PUT', `/os-quota-sets/${c.demo.projectId}`, { token: c.demo.token, body: { quota_set: { instances: 100 } } })).status, 403, 'not even for its own project');
    const r = await c.api('PUT', url, { token: c.admin.token, body: { quota_set: { instances: 1, cores: '4', ram: -1 } } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.quota_set.id, undefined, 'the update answer has no id');
    assert.equal(r.json.quota_set.instances, 1);
    assert.equal(r.json.quota_set.cores, 4);
    assert.equal(r.json.quota_set.ram, -1);
    assert.equal((await c.api('GET', url, { token: m.token })).json.quota_set.instances, 1);
    for (const bad of [{ instances: -2 }, { instances: 'many' }, { bogus: 1 }, { instances: 1.5 }]) {
      const x = await c.api('PUT', url, { token: c.admin.token, body: { quota_set: bad } });
      assert.equal(x.status, 400, `${JSON.stringify(bad)}: ${x.status}`);
    }
    assert.equal((await c.api('PUT', url, { token: c.admin.token, body: { quota: {} } })).status, 400);
    // takes effect
    const a = await c.boot(m.token, { name: 'q1' });
    const over = await c.api('POST', '/servers', { token: m.token, body: { server: { name: 'q2', imageRef: IMG.cirros, flavorRef: '42' } } });
    assert.equal(over.status, 403);
    assert.match(over.json.forbidden.message, /Quota exceeded for instances: Requested 1, but already used 1 of 1 instances/);
    // delete → defaults again
    assert.equal((await c.api('DELETE', url, { token: m.token })).status, 403);
    assert.equal((await c.api('DELETE', url, { token: c.admin.token })).status, 202);
    assert.equal((await c.api('GET', url, { token: m.token })).json.quota_set.instances, 10);
    await c.waitStatus(a.id, 'ACTIVE');
    await c.api('DELETE', `/servers/${a.id}`, { token: m.token });
    await c.waitGone(a.id);
  });

  test('a quota below current usage is refused without force (400)', async () => {
    const m = await c.newMember('below');
    const a = await c.boot(m.token, { name: 'b1', max_count: 2 });
    const url = `/os-quota-sets/${m.projectId}`;
    try {
      const r = await c.api('PUT', url, { token: c.admin.token, body: { quota_set: { instances: 1 } } });
      assert.equal(r.status, 400, `${r.status} ${r.text}`);
      const forced = await c.api('PUT', url, { token: c.admin.token, body: { quota_set: { instances: 1, force: true } } });
      assert.equal(forced.status, 200);
    } finally {
      await c.api('DELETE', url, { token: c.admin.token });
      void a;
    }
  });

  test('setting key_pairs for one project does not change other projects', async () => {
    const a = await c.newMember('kpa');
    const b = await c.newMember('kpb');
    const r = await c.api('PUT', `/os-quota-sets/${a.projectId}`, { token: c.admin.token, body: { quota_set: { key_pairs: 3 } } });
    assert.equal(r.status, 200);
    try {
      assert.equal(r.json.quota_set.key_pairs, 3);
      const qb = await c.api('GET', `/os-quota-sets/${b.projectId}`, { token: c.admin.token });
      assert.equal(qb.json.quota_set.key_pairs, 100, "project B's key_pairs limit is untouched");
    } finally {
      await c.cloud.quota.setDefault('key_pairs', 100);
    }
  });
});

describe('server groups', () => {
  test('create, list, show, delete; members field; invalid policies are 400', async () => {
    const r = await c.api('POST', '/os-server-groups', { token: c.demo.token, body: { server_group: { name: 'web', policies: ['anti-affinity'] } } });
    assert.equal(r.status, 200, r.text);
    const g = r.json.server_group;
    assert.deepEqual({ ...g, id: undefined }, { id: undefined, name: 'web', policies: ['anti-affinity'], members: [], metadata: {}, project_id: c.demo.projectId, user_id: c.demo.userId });
    const l = await c.api('GET', '/os-server-groups', { token: c.demo.token });
    assert.deepEqual(l.json.server_groups.map((x: { id: string }) => x.id), [g.id]);
    const s = await c.api('GET', `/os-server-groups/${g.id}`, { token: c.demo.token });
    assert.equal(s.status, 200);
    assert.equal(s.json.server_group.name, 'web');
    // another project neither lists nor reads it; admins list it with all_projects
    assert.deepEqual((await c.api('GET', '/os-server-groups', { token: other.token })).json.server_groups, []);
    assert.equal((await c.api('GET', `/os-server-groups/${g.id}`, { token: other.token })).status, 403);
    assert.equal((await c.api('DELETE', `/os-server-groups/${g.id}`, { token: other.token })).status, 403);
    const all = await c.api('GET', '/os-server-groups?all_projects=1', { token: c.admin.token });
    assert.ok(all.json.server_groups.some((x: { id: string }) => x.id === g.id));
    for (const bad of [{ name: 'x', policies: ['best-effort'] }, { name: 'x', policies: [] }, { name: 'x', policies: ['affinity', 'anti-affinity'] }, { name: '', policies: ['affinity'] }, { policies: ['affinity'] }]) {
      const x = await c.api('POST', '/os-server-groups', { token: c.demo.token, body: { server_group: bad } });
      assert.equal(x.status, 400, JSON.stringify(bad));
    }
    assert.equal((await c.api('DELETE', `/os-server-groups/${g.id}`, { token: c.demo.token })).status, 204);
    assert.equal((await c.api('GET', `/os-server-groups/${g.id}`, { token: c.demo.token })).status, 404);
    assert.equal((await c.api('DELETE', `/os-server-groups/${g.id}`, { token: c.demo.token })).status, 404);
  });

  test('server_groups quota: the 11th group is 403; deleting one frees room', async () => {
    const m = await c.newMember('groups');
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await c.api('POST', '/os-server-groups', { token: m.token, body: { server_group: { name: `g${i}`, policies: ['affinity'] } } });
      assert.equal(r.status, 200, r.text);
      ids.push(r.json.server_group.id);
    }
    const over = await c.api('POST', '/os-server-groups', { token: m.token, body: { server_group: { name: 'g10', policies: ['affinity'] } } });
    assert.equal(over.status, 403);
    assert.match(over.json.forbidden.message, /Quota exceeded/);
    assert.equal((await c.api('GET', '/os-server-groups', { token: m.token })).json.server_groups.length, 10);
    assert.equal((await c.api('DELETE', `/os-server-groups/${ids[0]}`, { token: m.token })).status, 204);
    assert.equal((await c.api('POST', '/os-server-groups', { token: m.token, body: { server_group: { name: 'g11', policies: ['affinity'] } } })).status, 200);
    const lim = await c.api('GET', '/limits', { token: m.token });
    assert.equal(lim.json.limits.absolute.totalServerGroupsUsed, 10);
  });
});
