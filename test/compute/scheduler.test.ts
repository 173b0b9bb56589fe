/**
 * Scheduling and build failures: no valid host (each capacity constraint
 * named), atomic claims when the host fills up, disabled/down hosts, driver
 * spawn failures, and server group (anti-)affinity on a one-host cloud.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startComputeCloud, IMG, waitFor, type ComputeCloud, type Member } from './helpers.js';

let c: ComputeCloud;
let m: Member;

before(async () => {
  c = await startComputeCloud();
  m = await c.newMember('sched');
  // Quota is not what these tests are about.
  const q = await c.api('PUT', `/os-quota-sets/${m.projectId}`, { token: c.admin.token, body: { quota_set: { instances: -1, cores: -1, ram: -1, server_group_members: -1 } } });
  assert.equal(q.status, 200, q.text);
});
after(async () => {
  await c?.stop();
});

async function flavor(name: string, f: { ram?: number; vcpus?: number; disk?: number }): Promise<string> {
  const r = await c.api('POST', '/flavors', { token: c.admin.token, body: { flavor: { name, ram: 128, vcpus: 1, disk: 1, ...f } } });
  assert.equal(r.status, 200, r.text);
  return r.json.flavor.id;
}

async function boot(server: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  return (await c.boot(m.token, server, extra)).id;
}

async function deleteAll(): Promise<void> {
  const l = await c.api('GET', '/servers', { token: m.token });
  for (const s of l.json.servers as { id: string }[]) assert.equal((await c.api('DELETE', `/servers/${s.id}`, { token: m.token })).status, 204);
  for (const s of l.json.servers as { id: string }[]) await c.waitGone(s.id);
  assert.equal((await c.allocations()).length, 0, 'no allocation is left');
  await waitFor('usage zero', async () => (await c.usage(m.projectId)).instances!.in_use === 0);
}

describe('no valid host', () => {
  test('a flavor with more RAM than the host → ERROR with a fault "No valid host was found" naming RAM', async () => {
    // host: 16384 MB × ram ratio 1.5 = 24576 MB
    const id = await boot({ name: 'too-big-ram', flavorRef: await flavor('ram-30000', { ram: 30000 }) });
    const s = await c.waitStatus(id, 'ERROR', m.token);
    assert.equal(s['OS-EXT-STS:vm_state'], 'error');
    assert.equal(s['OS-EXT-STS:task_state'], null);
    assert.equal(s['OS-EXT-STS:power_state'], 0);
    assert.equal(s.fault.code, 500);
    assert.match(s.fault.message, /^No valid host was found\. /);
    assert.match(s.fault.message, /needs 30000 MB RAM, 24576 MB free/);
    assert.match(s.fault.message, new RegExp(c.host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.ok(s.fault.created);
    assert.equal(s.fault.details, undefined, 'details only for admins');
    const sa = await c.server(id, c.admin.token);
    assert.equal(typeof sa.fault.details, 'string');
    assert.equal(sa['OS-EXT-SRV-ATTR:host'], null, 'never placed on a host');
    assert.ok(!(await c.allocations()).some((a) => a.instance_id === id), 'no allocation');
    assert.ok(!c.driver.calls.includes(`spawn ${id}`), 'the driver never saw it');
    // the create action records the failed scheduling event
    const acts = await c.api('GET', `/servers/${id}/os-instance-actions`, { token: m.token });
    const create = acts.json.instanceActions.find((a: { action: string }) => a.action === 'create');
    const ev = await c.api('GET', `/servers/${id}/os-instance-actions/${create.request_id}`, { token: c.admin.token });
    const sched = ev.json.instanceAction.events.find((e: { event: string }) => e.event === 'conductor_schedule_and_build_instances');
    assert.equal(sched.result, 'Error');
    assert.equal(ev.json.instanceAction.message, 'Error');
    // an ERROR server without a host is deleted at once, and its quota comes back
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: m.token })).status, 204);
    await c.waitGone(id);
    assert.equal((await c.usage(m.projectId)).instances!.in_use, 0);
  });

  test('disk and vCPU constraints are named too', async () => {
    const disk = await boot({ name: 'too-big-disk', flavorRef: await flavor('disk-500', { disk: 500 }) });
    const cpu = await boot({ name: 'too-many-cpus', flavorRef: await flavor('vcpu-200', { vcpus: 200 }) });
    const sd = await c.waitStatus(disk, 'ERROR', m.token);
    assert.match(sd.fault.message, /^No valid host was found\. .*needs 500 GB disk, 200 GB free/);
    const sc = await c.waitStatus(cpu, 'ERROR', m.token);
    assert.match(sc.fault.message, /^No valid host was found\. .*needs 200 VCPU, 128 free/);
    // status filter finds them; only ACTIVE/ERROR-free actions refuse
    const l = await c.api('GET', '/servers/detail?status=ERROR', { token: m.token });
    assert.equal(l.json.servers.length, 2);
    const stop = await c.action(disk, { 'os-stop': null }, m.token);
    assert.equal(stop.status, 409, 'an ERROR server without a host cannot be stopped');
    await deleteAll();
  });

  test('claims are atomic: booting more than fits fills the host and the rest go ERROR', async () => {
    const f = await flavor('ram-8000', { ram: 8000 });
    const r = await c.api('POST', '/servers', { token: m.token, body: { server: { name: 'fill', imageRef: IMG.cirros, flavorRef: f, max_count: 5 } } });
    assert.equal(r.status, 202, r.text);
    const l = await c.api('GET', '/servers', { token: m.token });
    const ids = (l.json.servers as { id: string }[]).map((s) => s.id);
    assert.equal(ids.length, 5);
    const states = await Promise.all(ids.map((id) => waitFor(`${id} settles`, async () => {
      const s = await c.server(id);
      return s.status === 'ACTIVE' || s.status === 'ERROR' ? s : undefined;
    })));
    const active = states.filter((s) => s.status === 'ACTIVE');
    const failed = states.filter((s) => s.status === 'ERROR');
    assert.equal(active.length, 3, '3 × 8000 MB fit in 24576 MB');
    assert.equal(failed.length, 2);
    for (const s of failed) assert.match(s.fault.message, /^No valid host was found\. .*needs 8000 MB RAM, 576 MB free/);
    const allocs = await c.allocations();
    assert.equal(allocs.reduce((a, x) => a + x.memory_mb, 0), 24000);
    const hv = await c.api('GET', '/os-hypervisors/statistics', { token: c.admin.token });
    assert.equal(hv.json.hypervisor_statistics.memory_mb_used, 24000);
    assert.equal(hv.json.hypervisor_statistics.running_vms, 3);
    await deleteAll();
  });

  test('a disabled or down compute service is skipped with the reason', async () => {
    const db = c.cloud.servers.db;
    await db.updateTable('nova_compute_hosts').set({ status: 'disabled', disabled_reason: 'maintenance' }).where('host', '=', c.host).execute();
    try {
      const id = await boot({ name: 'no-host' });
      const s = await c.waitStatus(id, 'ERROR', m.token);
      assert.match(s.fault.message, /^No valid host was found\. .*compute service disabled \(maintenance\)/);
    } finally {
      await db.updateTable('nova_compute_hosts').set({ status: 'enabled', disabled_reason: null }).where('host', '=', c.host).execute();
    }
    await db.updateTable('nova_compute_hosts').set({ forced_down: 1 }).where('host', '=', c.host).execute();
    try {
      const id = await boot({ name: 'host-down' });
      const s = await c.waitStatus(id, 'ERROR', m.token);
      assert.match(s.fault.message, /compute service is down/);
      const svc = await c.api('GET', '/os-services?binary=nova-compute', { token: c.admin.token });
      assert.equal(svc.json.services[0].state, 'down');
      assert.equal(svc.json.services[0].forced_down, true);
    } finally {
      await db.updateTable('nova_compute_hosts').set({ forced_down: 0 }).where('host', '=', c.host).execute();
    }
    const ok = await boot({ name: 'host-back' });
    await c.waitStatus(ok, 'ACTIVE', m.token);
    await deleteAll();
  });
});

test('an action refused because the server has no host does not leave a task_state behind', async () => {
  const id = await boot({ name: 'hostless', flavorRef: await flavor('ram-40000', { ram: 40000 }) });
  await c.waitStatus(id, 'ERROR', m.token);
  try {
    for (const body of [{ 'os-stop': null }, { reboot: { type: 'HARD' } }, { rebuild: { imageRef: IMG.cirros } }]) {
      const r = await c.action(id, body, m.token);
      assert.equal(r.status, 409, `${JSON.stringify(body)}: ${r.status}`);
      const s = await c.server(id);
      assert.equal(s['OS-EXT-STS:task_state'], null, `${JSON.stringify(body)} left task_state ${s['OS-EXT-STS:task_state']}`);
      assert.equal(s.status, 'ERROR');
    }
  } finally {
    await c.api('DELETE', `/servers/${id}`, { token: m.token });
    await c.waitGone(id);
  }
});

describe('driver failures', () => {
  test('a spawn failure ends ERROR with the driver message in the fault; the guest is cleaned up', async () => {
    c.driver.failNext('spawn');
    const id = await boot({ name: 'spawn-fails' });
    const s = await c.waitStatus(id, 'ERROR', m.token);
    assert.equal(s['OS-EXT-STS:task_state'], null);
    assert.equal(s['OS-EXT-STS:power_state'], 0);
    assert.equal(s.fault.code, 500);
    assert.equal(s.fault.message, `Build of instance ${id} aborted: injected failure in spawn`);
    assert.equal((await c.driver.getInfo(id)).powerState, 'nostate');
    const acts = await c.api('GET', `/servers/${id}/os-instance-actions`, { token: m.token });
    const ev = await c.api('GET', `/servers/${id}/os-instance-actions/${acts.json.instanceActions[0].request_id}`, { token: c.admin.token });
    const build = ev.json.instanceAction.events.find((e: { event: string }) => e.event === 'compute_build_and_run_instance');
    assert.equal(build.result, 'Error');
    assert.match(build.traceback, /injected failure in spawn/);
    // it can be deleted; usage comes back
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: m.token })).status, 204);
    await c.waitGone(id);
    assert.equal((await c.usage(m.projectId)).instances!.in_use, 0);
  });

  test('a spawn failure leaves no allocation on the host', async () => {
    c.driver.failNext('spawn');
    const id = await boot({ name: 'spawn-fails-2' });
    try {
      await c.waitStatus(id, 'ERROR', m.token);
      assert.ok(!(await c.allocations()).some((a) => a.instance_id === id), 'allocation freed after the failed build');
      const hv = await c.api('GET', '/os-hypervisors/statistics', { token: c.admin.token });
      assert.equal(hv.json.hypervisor_statistics.memory_mb_used, 0);
    } finally {
      await c.api('DELETE', `/servers/${id}`, { token: m.token });
      await c.waitGone(id);
    }
  });

  test('a failing delete leaves the server in ERROR (not stuck deleting), and a second delete completes', async () => {
    const id = await boot({ name: 'hard-to-kill' });
    await c.waitStatus(id, 'ACTIVE', m.token);
    c.driver.failNext('destroy', undefined, id);
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: m.token })).status, 204);
    const s = await c.waitStatus(id, 'ERROR', m.token);
    assert.match(s.fault.message, /delete failed: injected failure in destroy/);
    assert.equal((await c.api('DELETE', `/servers/${id}`, { token: m.token })).status, 204);
    await c.waitGone(id);
    assert.equal((await c.usage(m.projectId)).instances!.in_use, 0);
  });
});

describe('server groups and the scheduler', () => {
  const group = async (policy: string) => {
    const r = await c.api('POST', '/os-server-groups', { token: m.token, body: { server_group: { name: `g-${policy}`, policies: [policy] } } });
    assert.equal(r.status, 200, r.text);
    return r.json.server_group.id as string;
  };

  test('affinity: both members land on the one host', async () => {
    const g = await group('affinity');
    const a = await boot({ name: 'aff-a' }, { 'os:scheduler_hints': { group: g } });
    await c.waitStatus(a, 'ACTIVE', m.token);
    const b = await boot({ name: 'aff-b' }, { 'os:scheduler_hints': { group: g } });
    const sb = await c.waitStatus(b, 'ACTIVE', m.token);
    const sa = await c.server(a, m.token);
    assert.equal(sa.hostId, sb.hostId);
    const sg = await c.api('GET', `/os-server-groups/${g}`, { token: m.token });
    assert.deepEqual([...sg.json.server_group.members].sort(), [a, b].sort());
    await deleteAll();
    const after = await c.api('GET', `/os-server-groups/${g}`, { token: m.token });
    assert.deepEqual(after.json.server_group.members, [], 'deleted servers leave the group');
  });

  test('anti-affinity with one host: the second member goes ERROR with "No valid host"', async () => {
    const g = await group('anti-affinity');
    const a = await boot({ name: 'anti-a' }, { 'OS-SCH-HNT:scheduler_hints': { group: g } });
    await c.waitStatus(a, 'ACTIVE', m.token);
    const b = await boot({ name: 'anti-b' }, { 'os:scheduler_hints': { group: g } });
    const sb = await c.waitStatus(b, 'ERROR', m.token);
    assert.match(sb.fault.message, /^No valid host was found\. .*anti-affinity: a group member already runs here/);
    // once the first is gone, a new member fits
    await c.api('DELETE', `/servers/${a}`, { token: m.token });
    await c.waitGone(a);
    const d = await boot({ name: 'anti-d' }, { 'os:scheduler_hints': { group: g } });
    await c.waitStatus(d, 'ACTIVE', m.token);
    await deleteAll();
  });

  test('anti-affinity holds for members booted together (max_count 2): exactly one ACTIVE', async () => {
    for (let round = 0; round < 3; round++) {
      const g = await group('anti-affinity');
      const r = await c.api('POST', '/servers', { token: m.token, body: { server: { name: 'pair', imageRef: IMG.cirros, flavorRef: '42', max_count: 2 }, 'os:scheduler_hints': { group: g } } });
      assert.equal(r.status, 202, r.text);
      const l = await c.api('GET', '/servers', { token: m.token });
      assert.equal(l.json.servers.length, 2);
      const st = await Promise.all((l.json.servers as { id: string }[]).map((s) => waitFor('settled', async () => {
        const x = await c.server(s.id);
        return x.status === 'ACTIVE' || x.status === 'ERROR' ? (x.status as string) : undefined;
      })));
      assert.deepEqual(st.sort(), ['ACTIVE', 'ERROR'], `round ${round}`);
      await deleteAll();
      assert.equal((await c.api('DELETE', `/os-server-groups/${g}`, { token: m.token })).status, 204);
    }
  });

  test('soft-anti-affinity only prefers: both members run on the one host', async () => {
    const g = await group('soft-anti-affinity');
    const a = await boot({ name: 'soft-a' }, { 'os:scheduler_hints': { group: g } });
    const b = await boot({ name: 'soft-b' }, { 'os:scheduler_hints': { group: g } });
    await c.waitStatus(a, 'ACTIVE', m.token);
    await c.waitStatus(b, 'ACTIVE', m.token);
    await deleteAll();
  });

  test("an unknown group, or another project's group, is 400", async () => {
    const r = await c.api('POST', '/servers', { token: m.token, body: { server: { name: 'x', imageRef: IMG.cirros, flavorRef: '42' }, 'os:scheduler_hints': { group: '00000000-0000-4000-8000-000000000000' } } });
    assert.equal(r.status, 400);
    assert.match(r.json.badRequest.message, /Invalid server group/);
    const mine = await group('affinity');
    const r2 = await c.api('POST', '/servers', { token: c.demo.token, body: { server: { name: 'x', imageRef: IMG.cirros, flavorRef: '42' }, 'os:scheduler_hints': { group: mine } } });
    assert.equal(r2.status, 400);
    assert.equal(await c.liveInstances(m.projectId), 0);
  });

  test('server_group_members quota limits how many servers join a group (403)', async () => {
    const other = await c.newMember('sgm');
    const q = await c.api('PUT', `/os-quota-sets/${other.projectId}`, { token: c.admin.token, body: { quota_set: { server_group_members: 1 } } });
    assert.equal(q.status, 200);
    const g = await c.api('POST', '/os-server-groups', { token: other.token, body: { server_group: { name: 'small', policies: ['soft-affinity'] } } });
    assert.equal(g.status, 200);
    const hints = { 'os:scheduler_hints': { group: g.json.server_group.id } };
    const a = await c.api('POST', '/servers', { token: other.token, body: { server: { name: 'a', imageRef: IMG.cirros, flavorRef: '42' }, ...hints } });
    assert.equal(a.status, 202);
    const b = await c.api('POST', '/servers', { token: other.token, body: { server: { name: 'b', imageRef: IMG.cirros, flavorRef: '42' }, ...hints } });
    try {
      assert.equal(b.status, 403, `second member: ${b.status}`);
      assert.match(b.json.forbidden.message, /Quota exceeded/);
    } finally {
      for (const r of [a, b]) if (r.status === 202) {
        await c.waitStatus(r.json.server.id, 'ACTIVE');
        await c.api('DELETE', `/servers/${r.json.server.id}`, { token: other.token });
        await c.waitGone(r.json.server.id);
      }
    }
  });
});
