/**
 * Servers through the compute API of an in-process cloud (fake driver, fake
 * image service): create, show/list with filters and paging, update,
 * metadata, delete with quota given back, every server action with Nova's
 * state rules, instance actions and events.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startComputeCloud, holdNext, waitFor, IMG, type ComputeCloud, type Member } from './helpers.js';

let c: ComputeCloud;
let other: Member;

before(async () => {
  c = await startComputeCloud();
  other = await c.newMember();
  // Room for every server this file boots (the default is 10 instances, 20 cores).
  const q = await c.api('PUT', `/os-quota-sets/${c.demo.projectId}`, { token: c.admin.token, body: { quota_set: { instances: 60, cores: 60, ram: 200000 } } });
  assert.equal(q.status, 200, q.text);
});
after(async () => {
  await c?.stop();
});

/** A fresh ACTIVE server of the demo project. */
async function active(name = 'vm', extra: Record<string, unknown> = {}): Promise<string> {
  const { id } = await c.boot(c.demo.token, { name, ...extra });
  await c.waitStatus(id, 'ACTIVE');
  return id;
}

/** Runs an action as demo, asserting the status, then waits until the server rests in `status`. */
async function act(id: string, body: Record<string, unknown>, status: string, code = 202) {
  const r = await c.action(id, body);
  assert.equal(r.status, code, `${Object.keys(body)[0]}: ${r.status} ${r.text}`);
  return { res: r, server: await c.waitStatus(id, status) };
}

describe('create and show', () => {
  test('POST /servers answers 202 with Location, links and an adminPass; the server reaches ACTIVE', async () => {
    const before = await c.usage(c.demo.projectId);
    const res = await c.api('POST', '/servers', { token: c.demo.token, body: { server: { name: 'first', imageRef: IMG.cirros, flavorRef: '42', metadata: { role: 'web' } } } });
    assert.equal(res.status, 202, res.text);
    const s = res.json.server;
    assert.match(s.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(res.headers.location, `${c.config.publicUrl}/compute/v2.1/servers/${s.id}`);
    assert.equal(typeof s.adminPass, 'string');
    assert.ok(s.adminPass.length >= 8, 'a generated admin password');
    assert.deepEqual(s.links.map((l: { rel: string }) => l.rel), ['self', 'bookmark']);
    assert.equal(s['OS-DCF:diskConfig'], 'MANUAL');
    assert.ok(res.headers['x-compute-request-id'], 'x-compute-request-id is set');
    assert.equal(res.headers['x-compute-request-id'], res.headers['x-openstack-request-id']);

    const v = await c.waitStatus(s.id, 'ACTIVE', c.demo.token);
    assert.equal(v['OS-EXT-STS:vm_state'], 'active');
    assert.equal(v['OS-EXT-STS:power_state'], 1);
    assert.equal(v['OS-EXT-STS:task_state'], null);
    assert.equal(v.name, 'first');
    assert.equal(v.tenant_id, c.demo.projectId);
    assert.equal(v.user_id, c.demo.userId);
    assert.equal(v.image.id, IMG.cirros);
    assert.equal(v.flavor.id, '42');
    assert.deepEqual(v.metadata, { role: 'web' });
    assert.equal(v['OS-EXT-AZ:availability_zone'], 'nova');
    assert.ok(v['OS-SRV-USG:launched_at'], 'launched_at is set once ACTIVE');
    assert.match(v.hostId, /^[0-9a-f]{56}$/);
    assert.equal(v.fault, undefined);
    // Non-admins do not see the host attributes; admins do.
    assert.equal(v['OS-EXT-SRV-ATTR:host'], undefined);
    const va = await c.server(s.id, c.admin.token);
    assert.equal(va['OS-EXT-SRV-ATTR:host'], c.host);
    assert.equal(va['OS-EXT-SRV-ATTR:hypervisor_hostname'], c.host);

    assert.ok(c.driver.calls.includes(`spawn ${s.id}`));
    const alloc = (await c.allocations()).find((a) => a.instance_id === s.id);
    assert.deepEqual(alloc, { instance_id: s.id, host: c.host, vcpus: 1, memory_mb: 128, disk_gb: 1 });
    const after = await c.usage(c.demo.projectId);
    assert.equal(after.instances!.in_use, before.instances!.in_use + 1);
    assert.equal(after.cores!.in_use, before.cores!.in_use + 1);
    assert.equal(after.ram!.in_use, before.ram!.in_use + 128);
    assert.equal(after.instances!.reserved, 0, 'no reservation is left behind');
  });

  test('the guest gets a sanitized hostname from the server name (console shows it)', async () => {
    const id = await active('My_Web.Server 1');
    const r = await c.action(id, { 'os-getConsoleOutput': {} });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.output, new RegExp(`STRATUS-GUEST-READY hostname=my-web-server-1 instance-id=${id} .*datasource=configdrive`));
  });

  test('flavorRef may be an integer; return_reservation_id answers with the reservation id only', async () => {
    const r = await c.api('POST', '/servers', { token: c.demo.token, body: { server: { name: 'resv', imageRef: IMG.cirros, flavorRef: 42, return_reservation_id: true } } });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(Object.keys(r.json), ['reservation_id']);
    assert.match(r.json.reservation_id, /^r-[0-9a-f]{8}$/);
    const l = await c.api('GET', `/servers/detail?reservation_id=${r.json.reservation_id}`, { token: c.demo.token });
    assert.equal(l.status, 200);
    assert.equal(l.json.servers.length, 1);
    assert.equal(l.json.servers[0].name, 'resv');
    await c.waitStatus(l.json.servers[0].id, 'ACTIVE');
  });

  test('request validation: missing name, unknown fields, bad user_data, unknown key_name → 400', async () => {
    const post = (server: Record<string, unknown>) => c.api('POST', '/servers', { token: c.demo.token, body: { server } });
    const n0 = await c.liveInstances();
    for (const [label, body] of [
      ['no name', { imageRef: IMG.cirros, flavorRef: '42' }],
      ['empty name', { name: '', imageRef: IMG.cirros, flavorRef: '42' }],
      ['unknown field', { name: 'x', imageRef: IMG.cirros, flavorRef: '42', bogus: 1 }],
      ['bad base64', { name: 'x', imageRef: IMG.cirros, flavorRef: '42', user_data: 'not base64!!' }],
      ['unknown keypair', { name: 'x', imageRef: IMG.cirros, flavorRef: '42', key_name: 'nope' }],
      ['unknown az', { name: 'x', imageRef: IMG.cirros, flavorRef: '42', availability_zone: 'mars' }],
      ['queued image', { name: 'x', imageRef: IMG.queued, flavorRef: '42' }],
      ['no image', { name: 'x', flavorRef: '42' }],
    ] as const) {
      const r = await post(body as Record<string, unknown>);
      assert.equal(r.status, 400, `${label}: ${r.status} ${r.text}`);
      assert.equal(r.json.badRequest.code, 400, label);
    }
    assert.equal(await c.liveInstances(), n0, 'no instance row was created');
  });

  test('no token → 401; a server of another project is 404 for show, update, delete, actions and metadata', async () => {
    const id = await active('private');
    assert.equal((await c.api('GET', `/servers/${id}`)).status, 401);
    const o = other.token;
    const show = await c.api('GET', `/servers/${id}`, { token: o });
    assert.equal(show.status, 404);
    assert.equal(show.json.itemNotFound.code, 404);
    assert.equal((await c.api('PUT', `/servers/${id}`, { token: o, body: { server: { name: 'stolen' } } })).status, 404);
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: o })).status, 404);
    assert.equal((await c.action(id, { 'os-stop': null }, o)).status, 404);
    assert.equal((await c.api('GET', `/servers/${id}/metadata`, { token: o })).status, 404);
    assert.equal((await c.api('POST', `/servers/${id}/metadata`, { token: o, body: { metadata: { a: 'b' } } })).status, 404);
    assert.equal((await c.api('GET', `/servers/${id}/os-instance-actions`, { token: o })).status, 404);
    // untouched
    const s = await c.server(id, c.demo.token);
    assert.equal(s.name, 'private');
    assert.equal(s.status, 'ACTIVE');
    assert.equal((await c.api('GET', `/servers/00000000-0000-4000-8000-000000000000`, { token: c.demo.token })).status, 404);
  });
});

describe('list and detail', () => {
  let ids: string[] = [];
  let beta = '';
  before(async () => {
    const r = await c.api('POST', '/servers', { token: other.token, body: { server: { name: 'alpha', imageRef: IMG.cirros, flavorRef: '42', max_count: 3 } } });
    assert.equal(r.status, 202, r.text);
    const l = await c.api('GET', '/servers', { token: other.token });
    ids = l.json.servers.map((s: { id: string }) => s.id);
    assert.equal(ids.length, 3);
    for (const id of ids) await c.waitStatus(id, 'ACTIVE');
    beta = (await c.boot(other.token, { name: 'beta' })).id;
    await c.waitStatus(beta, 'ACTIVE');
    const stop = await c.action(beta, { 'os-stop': null }, other.token);
    assert.equal(stop.status, 202, stop.text);
    await c.waitStatus(beta, 'SHUTOFF');
  });

  test('GET /servers lists id, name and links only, for the caller project only', async () => {
    const r = await c.api('GET', '/servers', { token: other.token });
    assert.equal(r.status, 200);
    assert.equal(r.json.servers.length, 4);
    for (const s of r.json.servers) assert.deepEqual(Object.keys(s).sort(), ['id', 'links', 'name']);
    assert.deepEqual(r.json.servers.map((s: { name: string }) => s.name).sort(), ['alpha-1', 'alpha-2', 'alpha-3', 'beta']);
    const d = await c.api('GET', '/servers', { token: c.demo.token });
    assert.ok(!d.json.servers.some((s: { id: string }) => s.id === beta), "demo does not see the other project's servers");
    // project_id is ignored for non-admins
    const d2 = await c.api('GET', `/servers?project_id=${other.projectId}`, { token: c.demo.token });
    assert.ok(!d2.json.servers.some((s: { id: string }) => s.id === beta));
  });

  test('all_tenants: admin sees every project (and can filter one); a member is refused', async () => {
    const a = await c.api('GET', '/servers/detail?all_tenants=1', { token: c.admin.token });
    assert.equal(a.status, 200);
    const projects = new Set(a.json.servers.map((s: { tenant_id: string }) => s.tenant_id));
    assert.ok(projects.has(other.projectId) && projects.has(c.demo.projectId));
    const f = await c.api('GET', `/servers/detail?all_tenants=1&project_id=${other.projectId}`, { token: c.admin.token });
    assert.equal(f.json.servers.length, 4);
    assert.equal((await c.api('GET', '/servers?all_tenants=1', { token: other.token })).status, 403);
  });

  test('filters: name is a regular expression, status, flavor, image; a bad regex is 400', async () => {
    const get = async (q: string) => {
      const r = await c.api('GET', `/servers/detail?${q}`, { token: other.token });
      assert.equal(r.status, 200, `${q}: ${r.text}`);
      return (r.json.servers as { name: string }[]).map((s) => s.name).sort();
    };
    assert.deepEqual(await get('name=^alpha'), ['alpha-1', 'alpha-2', 'alpha-3']);
    assert.deepEqual(await get('name=a-[12]$'), ['alpha-1', 'alpha-2']);
    assert.deepEqual(await get('name=eta'), ['beta']);
    assert.deepEqual(await get('status=SHUTOFF'), ['beta']);
    assert.deepEqual(await get('status=active'), ['alpha-1', 'alpha-2', 'alpha-3']);
    assert.deepEqual(await get('status=ERROR'), []);
    assert.deepEqual(await get('flavor=42'), ['alpha-1', 'alpha-2', 'alpha-3', 'beta']);
    assert.deepEqual(await get('flavor=1'), []);
    assert.deepEqual(await get(`image=${IMG.cirros}`), ['alpha-1', 'alpha-2', 'alpha-3', 'beta']);
    const bad = await c.api('GET', '/servers?name=(', { token: other.token });
    assert.equal(bad.status, 400);
  });

  test('limit/marker paging with servers_links walks every server exactly once', async () => {
    const all = await c.api('GET', '/servers', { token: other.token });
    const expected = all.json.servers.map((s: { id: string }) => s.id);
    assert.equal(all.json.servers_links, undefined, 'no next link when everything fits');
    const seen: string[] = [];
    let url: string | null = '/servers?limit=1';
    let pages = 0;
    while (url) {
      const r = await c.api('GET', url, { token: other.token });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.servers.length <= 1);
      seen.push(...r.json.servers.map((s: { id: string }) => s.id));
      const next = r.json.servers_links?.find((l: { rel: string }) => l.rel === 'next')?.href as string | undefined;
      if (next) {
        assert.ok(next.startsWith(`${c.config.publicUrl}/compute/v2.1/servers?`), next);
        assert.match(next, /limit=1/);
        assert.match(next, new RegExp(`marker=${r.json.servers[0].id}`));
      }
      url = next ? next.slice(next.indexOf('/servers')) : null;
      if (++pages > 10) assert.fail('paging does not end');
    }
    assert.deepEqual(seen, expected);
    const two = await c.api('GET', '/servers/detail?limit=2', { token: other.token });
    assert.equal(two.json.servers.length, 2);
    assert.match(two.json.servers_links[0].href, /\/servers\/detail\?/);
    const rest = await c.api('GET', `/servers/detail?marker=${two.json.servers[1].id}`, { token: other.token });
    assert.deepEqual(rest.json.servers.map((s: { id: string }) => s.id), expected.slice(2));
    assert.equal((await c.api('GET', '/servers?marker=nope', { token: other.token })).status, 400);
    assert.equal((await c.api('GET', '/servers?limit=-1', { token: other.token })).status, 400);
    assert.equal((await c.api('GET', '/servers?limit=abc', { token: other.token })).status, 400);
  });

  test('sort_key/sort_dir order the list', async () => {
    const asc = await c.api('GET', '/servers/detail?sort_key=display_name&sort_dir=asc', { token: other.token });
    assert.deepEqual(asc.json.servers.map((s: { name: string }) => s.name), ['alpha-1', 'alpha-2', 'alpha-3', 'beta']);
    const desc = await c.api('GET', '/servers/detail?sort_key=display_name&sort_dir=desc', { token: other.token });
    assert.deepEqual(desc.json.servers.map((s: { name: string }) => s.name), ['beta', 'alpha-3', 'alpha-2', 'alpha-1']);
  });
});

describe('update, metadata, delete', () => {
  test('PUT /servers/{id} renames; validation errors are 400', async () => {
    const id = await active('old-name');
    const r = await c.api('PUT', `/servers/${id}`, { token: c.demo.token, body: { server: { name: 'new-name', accessIPv4: '192.0.2.7' } } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.server.name, 'new-name');
    assert.equal(r.json.server.accessIPv4, '192.0.2.7');
    assert.equal((await c.server(id, c.demo.token)).name, 'new-name');
    assert.equal((await c.api('PUT', `/servers/${id}`, { token: c.demo.token, body: { server: { name: '' } } })).status, 400);
    assert.equal((await c.api('PUT', `/servers/${id}`, { token: c.demo.token, body: { server: { flavorRef: '1' } } })).status, 400);
    assert.equal((await c.api('PUT', `/servers/${id}`, { token: c.demo.token, body: { name: 'x' } })).status, 400);
    // the update response is Nova's basic view
    assert.equal(r.json.server['OS-EXT-STS:vm_state'], undefined);
    assert.equal(r.json.server.key_name, undefined);
    assert.equal(r.json.server.security_groups, undefined);
    // access addresses: validated, IPv6 in its canonical short form
    const v6 = await c.api('PUT', `/servers/${id}`, { token: c.demo.token, body: { server: { accessIPv6: '0000:0000:0000:0000:0000:babe:220.12.22.2' } } });
    assert.equal(v6.status, 200, v6.text);
    assert.equal(v6.json.server.accessIPv6, '::babe:dc0c:1602');
    for (const bad of [{ accessIPv6: 'notvalid' }, { accessIPv4: '1.2.3' }]) {
      assert.equal((await c.api('PUT', `/servers/${id}`, { token: c.demo.token, body: { server: bad } })).status, 400, JSON.stringify(bad));
    }
    assert.equal((await c.server(id, c.demo.token)).accessIPv6, '::babe:dc0c:1602', 'a refused update changes nothing');
    // addresses by network (none here: this cloud has no network service ports)
    const ips = await c.api('GET', `/servers/${id}/ips`, { token: c.demo.token });
    assert.equal(ips.status, 200, ips.text);
    assert.deepEqual(ips.json, { addresses: {} });
    assert.equal((await c.api('GET', `/servers/${id}/ips/private`, { token: c.demo.token })).status, 404);
    assert.equal((await c.api('GET', `/servers/${id}/ips`, { token: other.token })).status, 404, 'another project');
    assert.equal(r.json.server.progress, 0, 'an ACTIVE server shows its progress');
    // changes-since takes ISO 8601 only
    assert.equal((await c.api('GET', '/servers?changes-since=2011/01/01', { token: c.demo.token })).status, 400);
    assert.equal((await c.api('GET', '/servers?changes-since=2011-01-01T00:00:00Z', { token: c.demo.token })).status, 200);
  });

  test('metadata: list, merge (POST), replace (PUT), show/set/delete one key, quota of items', async () => {
    const id = await active('meta', { metadata: { a: '1' } });
    const base = `/servers/${id}/metadata`;
    const t = { token: c.demo.token };
    let r = await c.api('GET', base, t);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { metadata: { a: '1' } });
    r = await c.api('POST', base, { ...t, body: { metadata: { b: '2', a: 'one' } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.metadata, { a: 'one', b: '2' });
    r = await c.api('PUT', base, { ...t, body: { metadata: { c: '3' } } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.metadata, { c: '3' });
    r = await c.api('GET', `${base}/c`, t);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { meta: { c: '3' } });
    assert.equal((await c.api('GET', `${base}/zzz`, t)).status, 404);
    r = await c.api('PUT', `${base}/d`, { ...t, body: { meta: { d: '4' } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { meta: { d: '4' } });
    assert.equal((await c.api('PUT', `${base}/d`, { ...t, body: { meta: { e: '5' } } })).status, 400, 'URI and body key must match');
    assert.equal((await c.api('PUT', `${base}/d`, { ...t, body: { meta: { d: '4', e: '5' } } })).status, 400);
    r = await c.api('DELETE', `${base}/c`, t);
    assert.equal(r.status, 204);
    assert.equal((await c.api('DELETE', `${base}/c`, t)).status, 404);
    assert.deepEqual((await c.server(id, c.demo.token)).metadata, { d: '4' });
    // values are strings; keys non-empty
    assert.equal((await c.api('POST', base, { ...t, body: { metadata: { n: 1 } } })).status, 400);
    // more items than metadata_items (128) → 403
    const many = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`k${i}`, 'v']));
    r = await c.api('PUT', base, { ...t, body: { metadata: many } });
    assert.equal(r.status, 403, r.text);
    assert.match(r.json.forbidden.message, /Quota exceeded for metadata_items/);
    assert.deepEqual((await c.server(id, c.demo.token)).metadata, { d: '4' }, 'unchanged');
  });

  test('metadata keys must be 1..255 characters (400)', async () => {
    const id = await active('meta-keys');
    const base = `/servers/${id}/metadata`;
    const t = { token: c.demo.token };
    const empty = await c.api('POST', base, { ...t, body: { metadata: { '': 'x' } } });
    assert.equal(empty.status, 400, `empty key: ${empty.status} ${empty.text}`);
    const long = await c.api('POST', base, { ...t, body: { metadata: { ['k'.repeat(256)]: 'x' } } });
    assert.equal(long.status, 400, `256-char key: ${long.status}`);
    const boot = await c.api('POST', '/servers', { token: c.demo.token, body: { server: { name: 'x', imageRef: IMG.cirros, flavorRef: '42', metadata: { '': 'x' } } } });
    assert.equal(boot.status, 400, `create with an empty key: ${boot.status}`);
    assert.deepEqual((await c.server(id)).metadata, {});
  });

  test('DELETE removes the guest, frees the allocation and gives the quota back', async () => {
    const id = await active('doomed');
    const before = await c.usage(c.demo.projectId);
    const r = await c.api('DELETE', `/servers/${id}`, { token: c.demo.token });
    assert.equal(r.status, 204);
    assert.equal(r.text, '');
    await c.waitGone(id);
    assert.ok(c.driver.calls.includes(`destroy ${id}`));
    assert.equal((await c.driver.getInfo(id)).powerState, 'nostate');
    assert.ok(!(await c.allocations()).some((a) => a.instance_id === id), 'allocation freed');
    const after = await c.usage(c.demo.projectId);
    assert.equal(after.instances!.in_use, before.instances!.in_use - 1);
    assert.equal(after.cores!.in_use, before.cores!.in_use - 1);
    assert.equal(after.ram!.in_use, before.ram!.in_use - 128);
    // gone from lists; admins can still list deleted ones; its actions stay readable
    const l = await c.api('GET', '/servers', { token: c.demo.token });
    assert.ok(!l.json.servers.some((s: { id: string }) => s.id === id));
    const dl = await c.api('GET', `/servers/detail?deleted=true&all_tenants=1`, { token: c.admin.token });
    const gone = dl.json.servers.find((s: { id: string }) => s.id === id);
    assert.ok(gone, 'admin lists deleted servers');
    assert.equal(gone.status, 'DELETED');
    assert.ok(gone['OS-SRV-USG:terminated_at']);
    const acts = await c.api('GET', `/servers/${id}/os-instance-actions`, { token: c.demo.token });
    assert.equal(acts.status, 200);
    assert.deepEqual(acts.json.instanceActions.map((a: { action: string }) => a.action), ['delete', 'create']);
    // deleting again: 404
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: c.demo.token })).status, 404);
  });

  test('a server deleted while it is being spawned ends deleted, with no guest left on the host', async () => {
    const hold = holdNext(c.driver, 'spawn');
    // The real driver serialises operations on one instance: destroy waits for spawn.
    const d = c.driver as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const origDestroy = d.destroy!.bind(c.driver);
    d.destroy = async (...a: unknown[]) => {
      await hold.done;
      return origDestroy(...a);
    };
    try {
      const before = await c.usage(c.demo.projectId);
      const { id } = await c.boot(c.demo.token, { name: 'short-lived' });
      await hold.reached;
      const s = await c.server(id);
      assert.equal(s.status, 'BUILD');
      assert.equal(s['OS-EXT-STS:task_state'], 'spawning');
      assert.equal((await c.api('DELETE', `/servers/${id}`, { token: c.demo.token })).status, 204);
      hold.release();
      await c.waitGone(id);
      await waitFor('guest destroyed', async () => (await c.driver.getInfo(id)).powerState === 'nostate');
      assert.ok(!(await c.allocations()).some((a) => a.instance_id === id));
      const after = await c.usage(c.demo.projectId);
      assert.equal(after.instances!.in_use, before.instances!.in_use);
    } finally {
      delete d.destroy;
    }
  });
});

describe('power actions', () => {
  let id = '';
  before(async () => {
    id = await active('power');
  });

  test('os-stop → SHUTOFF (power_state 4), os-start → ACTIVE (power_state 1)', async () => {
    const { res, server } = await act(id, { 'os-stop': null }, 'SHUTOFF');
    assert.ok(res.text === '' || res.text === 'null', `no body: ${res.text}`);
    assert.equal(server['OS-EXT-STS:vm_state'], 'stopped');
    assert.equal(server['OS-EXT-STS:power_state'], 4);
    assert.equal((await c.driver.getInfo(id)).powerState, 'shutdown');
    const s2 = (await act(id, { 'os-start': null }, 'ACTIVE')).server;
    assert.equal(s2['OS-EXT-STS:vm_state'], 'active');
    assert.equal(s2['OS-EXT-STS:power_state'], 1);
    assert.equal((await c.driver.getInfo(id)).powerState, 'running');
  });

  test('reboot SOFT and HARD reach ACTIVE through the driver; a bad type is 400', async () => {
    const n = c.driver.calls.filter((x) => x === `reboot ${id}`).length;
    await act(id, { reboot: { type: 'SOFT' } }, 'ACTIVE');
    await act(id, { reboot: { type: 'HARD' } }, 'ACTIVE');
    assert.equal(c.driver.calls.filter((x) => x === `reboot ${id}`).length, n + 2);
    for (const bad of [{ reboot: { type: 'soft!' } }, { reboot: {} }, { reboot: null }]) {
      const r = await c.action(id, bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
    }
  });

  test('pause → PAUSED (3), unpause → ACTIVE; suspend → SUSPENDED (7), resume → ACTIVE', async () => {
    let s = (await act(id, { pause: null }, 'PAUSED')).server;
    assert.equal(s['OS-EXT-STS:vm_state'], 'paused');
    assert.equal(s['OS-EXT-STS:power_state'], 3);
    s = (await act(id, { unpause: null }, 'ACTIVE')).server;
    assert.equal(s['OS-EXT-STS:power_state'], 1);
    s = (await act(id, { suspend: null }, 'SUSPENDED')).server;
    assert.equal(s['OS-EXT-STS:vm_state'], 'suspended');
    assert.equal(s['OS-EXT-STS:power_state'], 7);
    s = (await act(id, { resume: null }, 'ACTIVE')).server;
    assert.equal(s['OS-EXT-STS:power_state'], 1);
  });

  test('an action not allowed in the current vm_state is 409 with Nova\'s conflictingRequest body', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ 'os-start': null }, /Cannot 'start' instance .* while it is in vm_state active/],
      [{ unpause: null }, /Cannot 'unpause' instance .* while it is in vm_state active/],
      [{ resume: null }, /vm_state active/],
      [{ unrescue: null }, /vm_state active/],
      [{ confirmResize: null }, /vm_state active/],
      [{ revertResize: null }, /Cannot 'revertResize'/],
    ];
    for (const [body, re] of cases) {
      const r = await c.action(id, body);
      assert.equal(r.status, 409, `${JSON.stringify(body)}: ${r.text}`);
      assert.deepEqual(Object.keys(r.json), ['conflictingRequest']);
      assert.equal(r.json.conflictingRequest.code, 409);
      assert.match(r.json.conflictingRequest.message, re);
    }
    await act(id, { 'os-stop': null }, 'SHUTOFF');
    for (const body of [{ 'os-stop': null }, { pause: null }, { suspend: null }, { reboot: { type: 'SOFT' } }]) {
      const r = await c.action(id, body);
      assert.equal(r.status, 409, `${JSON.stringify(body)} on SHUTOFF: ${r.text}`);
      assert.match(r.json.conflictingRequest.message, /vm_state stopped/);
    }
    // HARD reboot starts a stopped server
    await act(id, { reboot: { type: 'HARD' } }, 'ACTIVE');
    assert.equal((await c.server(id)).status, 'ACTIVE');
  });

  test('unknown action, empty body and two actions at once are 400', async () => {
    let r = await c.action(id, { fly: {} });
    assert.equal(r.status, 400);
    assert.match(r.json.badRequest.message, /no such action/i);
    r = await c.action(id, {});
    assert.equal(r.status, 400);
    r = await c.action(id, { pause: null, unpause: null });
    assert.equal(r.status, 400);
    r = await c.api('POST', `/servers/${id}/action`, { token: c.demo.token, body: '[1]', headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400);
    assert.equal((await c.server(id)).status, 'ACTIVE', 'nothing happened');
  });

  test('while an action runs the server shows its task_state and other actions are 409', async () => {
    const hold = holdNext(c.driver, 'powerOff', id);
    const r = await c.action(id, { 'os-stop': null });
    assert.equal(r.status, 202);
    await hold.reached;
    const s = await c.server(id);
    assert.equal(s.status, 'ACTIVE');
    assert.equal(s['OS-EXT-STS:task_state'], 'powering-off');
    const again = await c.action(id, { reboot: { type: 'SOFT' } });
    assert.equal(again.status, 409);
    assert.match(again.json.conflictingRequest.message, /task_state powering-off/);
    hold.release();
    await c.waitStatus(id, 'SHUTOFF');
    await act(id, { 'os-start': null }, 'ACTIVE');
  });

  test('concurrent identical actions: exactly one wins the compare-and-set, the rest are 409', async () => {
    const pauses = () => c.driver.calls.filter((x) => x === `pause ${id}`).length;
    const p0 = pauses();
    const results = await Promise.all(Array.from({ length: 6 }, () => c.action(id, { pause: null })));
    const codes = results.map((r) => r.status).sort();
    assert.deepEqual(codes, [202, 409, 409, 409, 409, 409], results.map((r) => r.text).join('\n'));
    await c.waitStatus(id, 'PAUSED');
    assert.equal(pauses(), p0 + 1, 'the driver paused once');
    await act(id, { unpause: null }, 'ACTIVE');
  });

  test('a failing driver operation leaves the server usable: task_state reverted, action event Error', async () => {
    c.driver.failNext('pause', undefined, id);
    const r = await c.action(id, { pause: null });
    assert.equal(r.status, 202);
    const reqId = r.headers['x-openstack-request-id'] as string;
    const s = await c.waitIdle(id);
    assert.equal(s.status, 'ACTIVE');
    assert.equal(s['OS-EXT-STS:power_state'], 1);
    assert.equal(s.fault, undefined, 'no fault shown on a usable server');
    const a = await c.api('GET', `/servers/${id}/os-instance-actions/${reqId}`, { token: c.admin.token });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.instanceAction.action, 'pause');
    assert.equal(a.json.instanceAction.message, 'Error');
    const ev = a.json.instanceAction.events.find((e: { event: string }) => e.event === 'compute_pause_instance');
    assert.equal(ev.result, 'Error');
    assert.match(ev.traceback, /injected failure in pause/);
    // it can be paused for real afterwards
    await act(id, { pause: null }, 'PAUSED');
    await act(id, { unpause: null }, 'ACTIVE');
  });

  test('the power-state sync notices a guest that stopped or crashed on its own', async () => {
    const sid = await active('self-stopper');
    c.driver.guestStops(sid);
    await c.cloud.computeAgent!.syncPowerStates();
    let s = await c.server(sid);
    assert.equal(s.status, 'SHUTOFF');
    assert.equal(s['OS-EXT-STS:power_state'], 4);
    await act(sid, { 'os-start': null }, 'ACTIVE');
    c.driver.guestStops(sid, 'crashed');
    await c.cloud.computeAgent!.syncPowerStates();
    s = await c.server(sid);
    assert.equal(s.status, 'SHUTOFF');
    assert.equal(s['OS-EXT-STS:power_state'], 6);
  });
});

describe('lock', () => {
  test('the owner locks; a locked server refuses the owner\'s actions and delete (409) until unlocked', async () => {
    const id = await active('locked');
    assert.equal((await c.action(id, { lock: null })).status, 202);
    const del = await c.api('DELETE', `/servers/${id}`, { token: c.demo.token });
    assert.equal(del.status, 409, del.text);
    assert.match(del.json.conflictingRequest.message, /locked/);
    const stop = await c.action(id, { 'os-stop': null });
    assert.equal(stop.status, 409, `stop of a locked server: ${stop.status} ${stop.text}`);
    assert.match(stop.json.conflictingRequest.message, /locked/);
    assert.equal((await c.server(id)).status, 'ACTIVE');
  });

  test('lock/unlock by the owner; delete of a locked server is 409; admin may act on it', async () => {
    const id = await active('locked2');
    assert.equal((await c.action(id, { lock: null })).status, 202);
    const del = await c.api('DELETE', `/servers/${id}`, { token: c.demo.token });
    assert.equal(del.status, 409);
    assert.match(del.json.conflictingRequest.message, /is locked/);
    // an admin acts on a locked server
    assert.equal((await c.action(id, { 'os-stop': null }, c.admin.token)).status, 202);
    await c.waitStatus(id, 'SHUTOFF');
    assert.equal((await c.action(id, { unlock: null })).status, 202);
    await act(id, { 'os-start': null }, 'ACTIVE');
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: c.demo.token })).status, 204);
    await c.waitGone(id);
  });

  test('a server locked by an admin: the owner can neither act (409) nor unlock (403)', async () => {
    const id = await active('admin-locked');
    assert.equal((await c.action(id, { lock: null }, c.admin.token)).status, 202);
    const stop = await c.action(id, { 'os-stop': null });
    assert.equal(stop.status, 409);
    assert.match(stop.json.conflictingRequest.message, /locked/);
    const un = await c.action(id, { unlock: null });
    assert.equal(un.status, 403, un.text);
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: c.demo.token })).status, 409);
    assert.equal((await c.action(id, { unlock: null }, c.admin.token)).status, 202);
    await act(id, { 'os-stop': null }, 'SHUTOFF');
  });
});

describe('lock and metadata', () => {
  test('metadata of a server locked by an admin cannot be changed by its owner (409)', async () => {
    const id = await active('locked-meta');
    assert.equal((await c.action(id, { lock: null }, c.admin.token)).status, 202);
    try {
      const r = await c.api('POST', `/servers/${id}/metadata`, { token: c.demo.token, body: { metadata: { a: 'b' } } });
      assert.equal(r.status, 409, `${r.status} ${r.text}`);
      assert.deepEqual((await c.server(id)).metadata, {});
    } finally {
      await c.action(id, { unlock: null }, c.admin.token);
    }
  });
});

describe('resize', () => {
  test('resize → VERIFY_RESIZE with the new flavor, confirmResize → ACTIVE; usage and allocation follow', async () => {
    const id = await active('grow');
    const u0 = await c.usage(c.demo.projectId);
    const { server } = await act(id, { resize: { flavorRef: '1' } }, 'VERIFY_RESIZE');
    assert.equal(server['OS-EXT-STS:vm_state'], 'resized');
    assert.equal(server['OS-EXT-STS:power_state'], 1);
    assert.equal(server.flavor.id, '1');
    assert.ok(c.driver.calls.includes(`resize ${id}`));
    const u1 = await c.usage(c.demo.projectId);
    assert.equal(u1.ram!.in_use, u0.ram!.in_use + (512 - 128));
    assert.equal(u1.instances!.in_use, u0.instances!.in_use);
    const alloc = (await c.allocations()).find((a) => a.instance_id === id);
    assert.equal(alloc?.memory_mb, 512);
    // only confirm/revert (or admin things) now
    assert.equal((await c.action(id, { 'os-stop': null })).status, 409);
    assert.equal((await c.action(id, { resize: { flavorRef: '2' } })).status, 409);
    const conf = await c.action(id, { confirmResize: null });
    assert.equal(conf.status, 204, conf.text);
    const s = await c.waitStatus(id, 'ACTIVE');
    assert.equal(s.flavor.id, '1');
    assert.equal((await c.action(id, { confirmResize: null })).status, 409, 'nothing left to confirm');
    assert.equal((await c.action(id, { revertResize: null })).status, 409, 'nothing left to revert');
    assert.equal((await c.usage(c.demo.projectId)).ram!.in_use, u1.ram!.in_use);
  });

  test('revertResize → ACTIVE with the old flavor; usage and allocation go back', async () => {
    const id = await active('revert', { flavorRef: '1' });
    const u0 = await c.usage(c.demo.projectId);
    await act(id, { resize: { flavorRef: '2' } }, 'VERIFY_RESIZE');
    assert.equal((await c.usage(c.demo.projectId)).ram!.in_use, u0.ram!.in_use + (2048 - 512));
    assert.equal((await c.allocations()).find((a) => a.instance_id === id)?.disk_gb, 20);
    const r = await c.action(id, { revertResize: null });
    assert.equal(r.status, 202, r.text);
    const s = await c.waitStatus(id, 'ACTIVE');
    assert.equal(s.flavor.id, '1');
    assert.equal(s['OS-EXT-STS:power_state'], 1);
    assert.equal((await c.usage(c.demo.projectId)).ram!.in_use, u0.ram!.in_use);
    const alloc = (await c.allocations()).find((a) => a.instance_id === id);
    assert.equal(alloc?.memory_mb, 512);
    assert.equal(alloc?.disk_gb, 1);
    // the second resize can go ahead now
    await act(id, { resize: { flavorRef: '2' } }, 'VERIFY_RESIZE');
    assert.equal((await c.action(id, { confirmResize: null })).status, 204);
    await c.waitStatus(id, 'ACTIVE');
  });

  test('a stopped server resizes and stays stopped after confirm', async () => {
    const id = await active('cold');
    await act(id, { 'os-stop': null }, 'SHUTOFF');
    const { server } = await act(id, { resize: { flavorRef: '1' } }, 'VERIFY_RESIZE');
    assert.equal(server['OS-EXT-STS:power_state'], 4);
    assert.equal((await c.driver.getInfo(id)).powerState, 'shutdown');
    assert.equal((await c.action(id, { confirmResize: null })).status, 204);
    const s = await c.waitStatus(id, 'SHUTOFF');
    assert.equal(s.flavor.id, '1');
  });

  test('resize validation: same flavor, smaller disk, unknown flavor, missing flavorRef → 400', async () => {
    const id = await active('resize-bad', { flavorRef: '1' });
    for (const [body, re] of [
      [{ resize: { flavorRef: '1' } }, /must change flavor/],
      [{ resize: { flavorRef: 'nope' } }, /could not be found/],
      [{ resize: {} }, /flavorRef/],
    ] as [Record<string, unknown>, RegExp][]) {
      const r = await c.action(id, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.json.badRequest.message, re);
    }
    const big = await active('resize-down', { flavorRef: '2' });
    const r = await c.action(big, { resize: { flavorRef: '1' } });
    assert.equal(r.status, 400);
    assert.match(r.json.badRequest.message, /resize disk down/);
  });

  test('resize over the cores quota is 403 and changes nothing', async () => {
    const f = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'wide', ram: 128, vcpus: 64, disk: 1 } } });
    assert.equal(f.status, 200, f.text);
    const id = await active('wide-resize');
    const u0 = await c.usage(c.demo.projectId);
    const r = await c.action(id, { resize: { flavorRef: f.json.flavor.id } });
    assert.equal(r.status, 403, r.text);
    assert.match(r.json.forbidden.message, /Quota exceeded for cores/);
    const s = await c.server(id);
    assert.equal(s.status, 'ACTIVE');
    assert.equal(s.flavor.id, '42');
    assert.deepEqual(await c.usage(c.demo.projectId), u0);
  });

  test('a shrinking resize keeps the old usage until confirmed, then gives the difference back', async () => {
    const id = await active('shrink', { flavorRef: '1' });
    const u0 = await c.usage(c.demo.projectId);
    await act(id, { resize: { flavorRef: '42' } }, 'VERIFY_RESIZE');
    assert.equal((await c.usage(c.demo.projectId)).ram!.in_use, u0.ram!.in_use, 'still charged for the bigger flavor while it can be reverted');
    assert.equal((await c.action(id, { confirmResize: null })).status, 204);
    await c.waitStatus(id, 'ACTIVE');
    assert.equal((await c.usage(c.demo.projectId)).ram!.in_use, u0.ram!.in_use - (512 - 128));
    assert.equal((await c.allocations()).find((a) => a.instance_id === id)?.memory_mb, 128);
  });

  test('confirmResize while a revert is running is 409', async () => {
    const id = await active('confirm-race');
    await act(id, { resize: { flavorRef: '1' } }, 'VERIFY_RESIZE');
    const hold = holdNext(c.driver, 'resize', id);
    assert.equal((await c.action(id, { revertResize: null })).status, 202);
    await hold.reached;
    try {
      assert.equal((await c.server(id))['OS-EXT-STS:task_state'], 'resize_reverting');
      const r = await c.action(id, { confirmResize: null });
      assert.equal(r.status, 409, `confirm during revert: ${r.status} ${r.text}`);
    } finally {
      hold.release();
      await c.waitIdle(id);
    }
  });

  test('a resize the host cannot fit fails without changing the flavor or the usage', async () => {
    const f = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name: 'too-much-ram', ram: 30000, vcpus: 1, disk: 1 } } });
    assert.equal(f.status, 200, f.text);
    const id = await active('no-room');
    const u0 = await c.usage(c.demo.projectId);
    const r = await c.action(id, { resize: { flavorRef: f.json.flavor.id } });
    assert.equal(r.status, 202, r.text);
    const s = await c.waitIdle(id);
    assert.equal(s.status, 'ACTIVE');
    assert.equal(s.flavor.id, '42', 'the flavor is unchanged after a failed resize');
    assert.equal((await c.usage(c.demo.projectId)).ram!.in_use, u0.ram!.in_use, 'usage unchanged');
    assert.equal((await c.allocations()).find((a) => a.instance_id === id)?.memory_mb, 128);
  });
});

describe('images, rebuild, rescue, console', () => {
  test('createImage: 202 with the image Location; the image service gets the snapshot data; task_state returns to null', async () => {
    const id = await active('snapme');
    const n = c.images.uploads.length;
    const r = await c.action(id, { createImage: { name: 'snap-1', metadata: { purpose: 'backup' } } });
    assert.equal(r.status, 202, r.text);
    const reserved = c.images.reserved.at(-1)!;
    assert.equal(reserved.name, 'snap-1');
    assert.equal(r.headers.location, `${c.config.publicUrl}/image/v2/images/${reserved.id}`);
    assert.equal(reserved.properties.image_type, 'snapshot');
    assert.equal(reserved.properties.instance_uuid, id);
    assert.equal(reserved.properties.base_image_ref, IMG.cirros);
    assert.equal(reserved.properties.purpose, 'backup');
    assert.equal(reserved.ctx.projectId, c.demo.projectId);
    await waitFor('snapshot uploaded', async () => c.images.uploads.length > n);
    const up = c.images.uploads.at(-1)!;
    assert.equal(up.imageId, reserved.id);
    assert.equal(up.name, 'snap-1');
    assert.equal(up.diskFormat, 'qcow2');
    assert.match(up.content, new RegExp(`^fake snapshot of ${id}`));
    const s = await c.waitIdle(id);
    assert.equal(s.status, 'ACTIVE');
    assert.ok(c.driver.calls.includes(`snapshot ${id}`));
    // the temporary snapshot file is removed
    const dir = join(c.dataDir, 'instances', '_snapshots');
    await waitFor('snapshot file removed', async () => !existsSync(up.path));
    if (existsSync(dir)) assert.deepEqual(readdirSync(dir), []);
    // a paused server can be snapshotted too
    await act(id, { pause: null }, 'PAUSED');
    assert.equal((await c.action(id, { createImage: { name: 'snap-2' } })).status, 202);
    await c.waitIdle(id, (x) => x.status === 'PAUSED');
    // name is required
    const bad = await c.action(id, { createImage: {} });
    assert.equal(bad.status, 400);
    assert.equal((await c.action(id, { createImage: { name: '  ' } })).status, 400);
  });

  test('createImage with the image service down is 503 and leaves the server idle', async () => {
    const id = await active('snap-down');
    const port = c.cloud.imagePort;
    c.cloud.imagePort = null;
    try {
      const r = await c.action(id, { createImage: { name: 'nope' } });
      assert.equal(r.status, 503, r.text);
    } finally {
      c.cloud.imagePort = port;
    }
    const s = await c.server(id);
    assert.equal(s['OS-EXT-STS:task_state'], null);
    await act(id, { pause: null }, 'PAUSED');
  });

  test('a failed snapshot reverts task_state and records the error', async () => {
    const id = await active('snap-fails');
    c.driver.failNext('snapshot', undefined, id);
    const r = await c.action(id, { createImage: { name: 'broken' } });
    assert.equal(r.status, 202);
    const s = await c.waitIdle(id);
    assert.equal(s.status, 'ACTIVE');
    const a = await c.api('GET', `/servers/${id}/os-instance-actions/${r.headers['x-openstack-request-id']}`, { token: c.admin.token });
    assert.equal(a.json.instanceAction.events[0].event, 'compute_snapshot_instance');
    assert.equal(a.json.instanceAction.events[0].result, 'Error');
    assert.ok(!c.images.uploads.some((u) => u.name === 'broken'), 'nothing uploaded');
  });

  test("a failed snapshot does not leave its image queued in the image service", async () => {
    const id = await active('snap-orphan');
    c.driver.failNext('snapshot', undefined, id);
    const r = await c.action(id, { createImage: { name: 'orphan' } });
    assert.equal(r.status, 202);
    await c.waitIdle(id);
    const reserved = c.images.reserved.find((x) => x.name === 'orphan')!;
    const img = c.images.images.get(reserved.id);
    assert.ok(!img || img.status !== 'queued', `image ${reserved.id} is left ${img?.status}`);
  });

  test('rebuild: 202 with the server in REBUILD, then ACTIVE on the new image (guest re-created)', async () => {
    const id = await active('rebuild-me', { metadata: { k: 'v' } });
    const r = await c.action(id, { rebuild: { imageRef: IMG.rescue, name: 'rebuilt', metadata: { k2: 'v2' } } });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.server.id, id);
    assert.equal(r.json.server.status, 'REBUILD');
    assert.equal(r.json.server.name, 'rebuilt');
    assert.equal(typeof r.json.server.adminPass, 'string', 'the new admin password');
    assert.equal(r.json.server['OS-EXT-STS:vm_state'], undefined, 'the basic view');
    const s = await c.waitStatus(id, 'ACTIVE');
    assert.equal(s.image.id, IMG.rescue);
    assert.equal(s.name, 'rebuilt');
    assert.deepEqual(s.metadata, { k2: 'v2' });
    const calls = c.driver.calls.filter((x) => x === `destroy ${id}` || x === `spawn ${id}`);
    assert.deepEqual(calls, [`spawn ${id}`, `destroy ${id}`, `spawn ${id}`]);
    const out = await c.action(id, { 'os-getConsoleOutput': {} });
    assert.match(out.json.output, /hostname=rebuilt /);
  });

  test('rebuild keeps a stopped server stopped; bad images are 400; a too-small flavor is 400', async () => {
    const id = await active('rebuild-stopped');
    await act(id, { 'os-stop': null }, 'SHUTOFF');
    assert.equal((await c.action(id, { rebuild: { imageRef: IMG.cirros } })).status, 202);
    const s = await c.waitStatus(id, 'SHUTOFF');
    assert.equal(s['OS-EXT-STS:power_state'], 4);
    assert.equal((await c.driver.getInfo(id)).powerState, 'shutdown');
    assert.equal((await c.action(id, { rebuild: { imageRef: 'nope' } })).status, 400);
    assert.equal((await c.action(id, { rebuild: {} })).status, 400);
    const small = await c.action(id, { rebuild: { imageRef: IMG.big } });
    assert.equal(small.status, 400);
    assert.match(small.json.badRequest.message, /too small/);
  });

  test('rescue → RESCUE with an adminPass (200), unrescue → ACTIVE; wrong states are 409', async () => {
    const id = await active('rescue-me');
    const r = await c.action(id, { rescue: { adminPass: 'Secret123', rescue_image_ref: IMG.rescue } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { adminPass: 'Secret123' });
    const s = await c.waitStatus(id, 'RESCUE');
    assert.equal(s['OS-EXT-STS:vm_state'], 'rescued');
    assert.ok(c.driver.calls.includes(`rescue ${id}`));
    // the rescue image went into the host's base cache
    assert.ok(existsSync(join(c.dataDir, 'instances', '_base', IMG.rescue)));
    const again = await c.action(id, { rescue: null });
    assert.equal(again.status, 409);
    assert.equal((await c.action(id, { 'os-stop': null })).status, 409);
    await act(id, { unrescue: null }, 'ACTIVE');
    assert.ok(c.driver.calls.includes(`unrescue ${id}`));
    const gen = await c.action(id, { rescue: null });
    assert.equal(gen.status, 200);
    assert.equal(typeof gen.json.adminPass, 'string');
    assert.ok(gen.json.adminPass.length >= 8);
    await c.waitStatus(id, 'RESCUE');
    await act(id, { unrescue: null }, 'ACTIVE');
    assert.equal((await c.action(id, { rescue: { rescue_image_ref: 'nope' } })).status, 400);
  });

  test('os-getConsoleOutput returns the serial log; length limits the lines; bad length is 400', async () => {
    const id = await active('console');
    await act(id, { reboot: { type: 'HARD' } }, 'ACTIVE');
    const all = await c.action(id, { 'os-getConsoleOutput': { length: null } });
    assert.equal(all.status, 200);
    const lines = all.json.output.trimEnd().split('\n');
    assert.equal(lines.length, 2, 'one READY line per boot');
    for (const l of lines) assert.match(l, /^STRATUS-GUEST-READY /);
    const one = await c.action(id, { 'os-getConsoleOutput': { length: 1 } });
    assert.equal(one.json.output.trimEnd().split('\n').length, 1);
    const neg = await c.action(id, { 'os-getConsoleOutput': { length: -1 } });
    assert.equal(neg.json.output, all.json.output);
    assert.equal((await c.action(id, { 'os-getConsoleOutput': { length: 'x' } })).status, 400);
    assert.equal((await c.action(id, { 'os-getConsoleOutput': { length: -5 } })).status, 400);
    assert.equal((await c.action(id, { 'os-getConsoleOutput': {} }, other.token)).status, 404);
  });

  test('os-getSerialConsole gives a URL; VNC is 400; floating IP actions (removed in 2.44) 404; security groups need the network service', async () => {
    const id = await active('serial');
    const r = await c.action(id, { 'os-getSerialConsole': { type: 'serial' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.console.type, 'serial');
    assert.equal(typeof r.json.console.url, 'string');
    assert.equal((await c.action(id, { 'os-getSerialConsole': { type: 'novnc' } })).status, 400);
    assert.equal((await c.action(id, { 'os-getVNCConsole': { type: 'novnc' } })).status, 400);
    assert.equal((await c.action(id, { addFloatingIp: { address: '192.0.2.1' } })).status, 404);
    assert.equal((await c.action(id, { addSecurityGroup: { name: '' } })).status, 400);
    const sg = await c.action(id, { addSecurityGroup: { name: 'web' } });
    assert.ok([404, 503].includes(sg.status), `${sg.status} ${sg.text}`);
  });
});

describe('instance actions', () => {
  test('list newest first with request ids; show gives the events; tracebacks only for admins', async () => {
    const { id, res } = await c.boot(c.demo.token, { name: 'audited' });
    const createReq = res.headers['x-openstack-request-id'] as string;
    await c.waitStatus(id, 'ACTIVE');
    const stop = await c.action(id, { 'os-stop': null });
    await c.waitStatus(id, 'SHUTOFF');
    await act(id, { 'os-start': null }, 'ACTIVE');
    const l = await c.api('GET', `/servers/${id}/os-instance-actions`, { token: c.demo.token });
    assert.equal(l.status, 200);
    const acts = l.json.instanceActions as { action: string; request_id: string; instance_uuid: string; user_id: string; project_id: string; start_time: string; message: string | null }[];
    assert.deepEqual(acts.map((a) => a.action), ['start', 'stop', 'create']);
    assert.equal(acts[2]!.request_id, createReq);
    assert.equal(acts[1]!.request_id, stop.headers['x-openstack-request-id']);
    for (const a of acts) {
      assert.equal(a.instance_uuid, id);
      assert.equal(a.user_id, c.demo.userId);
      assert.equal(a.project_id, c.demo.projectId);
      assert.match(a.start_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000$/);
      assert.equal(a.message, null);
    }
    const show = await c.api('GET', `/servers/${id}/os-instance-actions/${createReq}`, { token: c.demo.token });
    assert.equal(show.status, 200, show.text);
    const ia = show.json.instanceAction;
    assert.equal(ia.action, 'create');
    const events = ia.events as { event: string; result: string; start_time: string; finish_time: string | null; traceback?: unknown }[];
    assert.deepEqual(events.map((e) => e.event).sort(), ['compute_build_and_run_instance', 'conductor_schedule_and_build_instances']);
    for (const e of events) {
      assert.equal(e.result, 'Success');
      assert.ok(e.finish_time, `${e.event} finished`);
      assert.ok(!('traceback' in e), 'no traceback for non-admins');
    }
    const adminShow = await c.api('GET', `/servers/${id}/os-instance-actions/${createReq}`, { token: c.admin.token });
    for (const e of adminShow.json.instanceAction.events) assert.ok('traceback' in e, 'admins see tracebacks');
    const stopShow = await c.api('GET', `/servers/${id}/os-instance-actions/${stop.headers['x-openstack-request-id']}`, { token: c.demo.token });
    assert.deepEqual(stopShow.json.instanceAction.events.map((e: { event: string; result: string }) => [e.event, e.result]), [['compute_stop_instance', 'Success']]);
    assert.equal((await c.api('GET', `/servers/${id}/os-instance-actions/req-00000000-0000-0000-0000-000000000000`, { token: c.demo.token })).status, 404);
    assert.equal((await c.api('GET', `/servers/${id}/os-instance-actions/${createReq}`, { token: other.token })).status, 404);
  });
});
