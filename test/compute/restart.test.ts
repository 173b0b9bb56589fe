/**
 * Restarts: a new compute agent (same host, same driver state, as after an
 * agent crash or upgrade) adopts the running guests; interrupted builds end
 * in ERROR with a fault, interrupted actions are reverted, interrupted
 * deletes complete, guests that died meanwhile are started again. Then the
 * same for a restart of the whole cloud on its data dir.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startComputeCloud, holdNext, waitFor, C, type ComputeCloud } from './helpers.js';
import { ComputeManager } from '../../src/compute/agent/compute-manager.js';
import { Cloud } from '../../src/server/cloud.js';
import { ID } from '../helpers/inproc.js';

describe('compute agent restart', () => {
  let c: ComputeCloud;
  before(async () => {
    c = await startComputeCloud();
  });
  after(async () => {
    await c?.stop();
  });

  /** Stops the running agent and starts a new one on the same bus, driver and host. */
  async function restartAgent(beforeStart?: () => Promise<void>): Promise<ComputeManager> {
    const old = c.cloud.computeAgent!;
    await old.stop();
    if (beforeStart) await beforeStart();
    const agent = new ComputeManager(c.cloud.bus, c.driver, c.cloud.log, { stateDir: join(c.dataDir, 'instances'), availabilityZone: c.config.compute.availabilityZone });
    assert.equal(agent.host, c.host);
    await agent.start();
    c.cloud.computeAgent = agent;
    return agent;
  }

  test('running and stopped guests are adopted as they are; an interrupted build ends ERROR with a fault', async () => {
    const running = (await c.boot(c.demo.token, { name: 'keeps-running' })).id;
    const stopped = (await c.boot(c.demo.token, { name: 'stays-stopped' })).id;
    const diedMeanwhile = (await c.boot(c.demo.token, { name: 'died' })).id;
    const midAction = (await c.boot(c.demo.token, { name: 'mid-action' })).id;
    const midDelete = (await c.boot(c.demo.token, { name: 'mid-delete' })).id;
    for (const id of [running, stopped, diedMeanwhile, midAction, midDelete]) await c.waitStatus(id, 'ACTIVE');
    assert.equal((await c.action(stopped, { 'os-stop': null })).status, 202);
    await c.waitStatus(stopped, 'SHUTOFF');

    // a build in progress when the agent goes away (spawn never returns)
    const hold = holdNext(c.driver, 'spawn');
    const building = (await c.boot(c.demo.token, { name: 'interrupted' })).id;
    await hold.reached;
    assert.equal((await c.server(building)).status, 'BUILD');

    const pidOf = async (id: string) => (await c.driver.getInfo(id)).pid;
    const pidRunning = await pidOf(running);
    const usageBefore = await c.usage(c.demo.projectId);
    const mark = c.driver.calls.length;
    const db = c.cloud.servers.db;
    await restartAgent(async () => {
      // While no agent runs: a guest powers off on its own, an operation and a delete were cut short.
      c.driver.guestStops(diedMeanwhile);
      await db.updateTable('nova_instances').set({ task_state: 'powering-off' }).where('id', '=', midAction).execute();
      await db.updateTable('nova_instances').set({ task_state: 'deleting' }).where('id', '=', midDelete).execute();
    });
    const since = c.driver.calls.slice(mark);
    assert.ok(since.includes('init'), 'the new agent initialises the driver');
    assert.ok(since.includes('listInstances'));
    assert.ok(!since.includes(`spawn ${running}`) && !since.includes(`reboot ${running}`) && !since.includes(`powerOn ${running}`), 'a running guest is left alone');

    const r = await c.server(running);
    assert.equal(r.status, 'ACTIVE');
    assert.equal(r['OS-EXT-STS:power_state'], 1);
    assert.equal(await pidOf(running), pidRunning, 'same guest process');

    const s = await c.server(stopped);
    assert.equal(s.status, 'SHUTOFF');
    assert.equal(s['OS-EXT-STS:power_state'], 4);
    assert.ok(!since.includes(`powerOn ${stopped}`), 'a stopped server is not started');

    assert.ok(since.includes(`powerOn ${diedMeanwhile}`), 'a guest that should run is started again');
    const d = await c.server(diedMeanwhile);
    assert.equal(d.status, 'ACTIVE');
    assert.equal(d['OS-EXT-STS:power_state'], 1);

    const m = await c.server(midAction);
    assert.equal(m.status, 'ACTIVE');
    assert.equal(m['OS-EXT-STS:task_state'], null, 'the interrupted action is reverted');

    await c.waitGone(midDelete);
    assert.ok(since.includes(`destroy ${midDelete}`));
    assert.equal((await c.driver.getInfo(midDelete)).powerState, 'nostate');

    const b = await c.server(building);
    assert.equal(b.status, 'ERROR');
    assert.equal(b['OS-EXT-STS:task_state'], null);
    assert.equal(b['OS-EXT-STS:power_state'], 0);
    assert.equal(b.fault.code, 500);
    assert.match(b.fault.message, /Build was interrupted by a restart of the compute agent/);
    assert.ok(since.includes(`destroy ${building}`), 'whatever was half-built is removed');

    // quota: the finished delete gave its share back, nothing else changed
    const u = await c.usage(c.demo.projectId);
    assert.equal(u.instances!.in_use, usageBefore.instances!.in_use - 1);
    assert.equal(u.instances!.reserved, 0);
  });

  test('the new agent serves the API: actions and deletes work on adopted servers', async () => {
    const l = await c.api('GET', '/servers/detail?name=^keeps-running$', { token: c.demo.token });
    const id = l.json.servers[0].id as string;
    assert.equal((await c.action(id, { 'os-stop': null })).status, 202);
    await c.waitStatus(id, 'SHUTOFF');
    assert.equal((await c.action(id, { 'os-start': null })).status, 202);
    await c.waitStatus(id, 'ACTIVE');
    const out = await c.action(id, { 'os-getConsoleOutput': { length: 1 } });
    assert.equal(out.status, 200);
    assert.match(out.json.output, /STRATUS-GUEST-READY/);
    // the ERROR server left by the interrupted build can be deleted
    const e = await c.api('GET', '/servers/detail?status=ERROR', { token: c.demo.token });
    assert.equal(e.json.servers.length, 1);
    assert.equal((await c.api('DELETE', `/servers/${e.json.servers[0].id}`, { token: c.demo.token })).status, 204);
    await c.waitGone(e.json.servers[0].id);
    assert.ok(!(await c.allocations()).some((a) => a.instance_id === e.json.servers[0].id));
    // and new servers build
    const n = await c.boot(c.demo.token, { name: 'after-restart' });
    await c.waitStatus(n.id, 'ACTIVE');
  });

  test('the agent reports its host again (heartbeat) on start', async () => {
    const db = c.cloud.servers.db;
    await db.updateTable('nova_compute_hosts').set({ heartbeat_at: 0 }).where('host', '=', c.host).execute();
    const down = await c.api('GET', '/os-services?binary=nova-compute', { token: c.admin.token });
    assert.equal(down.json.services[0].state, 'down');
    await restartAgent();
    const up = await c.api('GET', '/os-services?binary=nova-compute', { token: c.admin.token });
    assert.equal(up.json.services[0].state, 'up');
  });
});

describe('whole cloud restart on the same data dir', () => {
  test('servers, usage and identity survive; a build cut short by the restart ends ERROR', async () => {
    const c = await startComputeCloud();
    let second: Cloud | null = null;
    try {
      const a = (await c.boot(c.demo.token, { name: 'survivor' })).id;
      const b = (await c.boot(c.demo.token, { name: 'stopped-survivor' })).id;
      await c.waitStatus(a, 'ACTIVE');
      await c.waitStatus(b, 'ACTIVE');
      assert.equal((await c.action(b, { 'os-stop': null })).status, 202);
      await c.waitStatus(b, 'SHUTOFF');
      const hold = holdNext(c.driver, 'spawn');
      const building = (await c.boot(c.demo.token, { name: 'cut-short' })).id;
      await hold.reached;
      const usage = await c.usage(c.demo.projectId);
      const adminPassword = c.adminPassword();
      const demoPassword = c.demoPassword();

      await c.cloud.stop();
      assert.ok(c.driver.calls.includes('close'), 'the driver was closed, not the guests');
      assert.equal((await c.driver.getInfo(a)).powerState, 'running', 'guests outlive the cloud process');

      second = new Cloud(c.config, { computeDriver: c.driver });
      await second.start();
      // after start: a cloud with an image service plugs its own port in start()
      second.imagePort = c.images;
      const cloud = second;
      const inject = async (method: 'GET' | 'POST' | 'DELETE', url: string, token?: string, body?: unknown) => {
        const res = await cloud.app.inject({ method, url, headers: { ...(token ? { 'x-auth-token': token } : {}), ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { payload: JSON.stringify(body) } : {}) });
        return { status: res.statusCode, json: res.body ? JSON.parse(res.body) : undefined, headers: res.headers };
      };
      assert.equal(second.identity.adminPassword(), adminPassword, 'the admin password is kept');
      assert.equal(second.identity.keptSecret('demo-password'), demoPassword);
      const tok = await inject('POST', `${ID}/auth/tokens`, undefined, { auth: { identity: { methods: ['password'], password: { user: { name: 'demo', domain: { id: 'default' }, password: demoPassword } } }, scope: { project: { name: 'demo', domain: { id: 'default' } } } } });
      assert.equal(tok.status, 201);
      const token = tok.headers['x-subject-token'] as string;
      // tokens issued before the restart stay valid
      assert.equal((await inject('GET', `${C}/servers`, c.demo.token)).status, 200);

      const show = async (id: string) => (await inject('GET', `${C}/servers/${id}`, token)).json.server;
      assert.equal((await show(a)).status, 'ACTIVE');
      assert.equal((await show(a))['OS-EXT-STS:power_state'], 1);
      assert.equal((await show(b)).status, 'SHUTOFF');
      const cut = await show(building);
      assert.equal(cut.status, 'ERROR');
      assert.match(cut.fault.message, /Build was interrupted by a restart of the compute agent/);
      const u = await second.quota.usage(c.demo.projectId, ['instances', 'cores', 'ram']);
      assert.equal(u.instances!.in_use, usage.instances!.in_use);
      assert.equal(u.ram!.in_use, usage.ram!.in_use);
      // the flavors were not seeded twice
      const fl = await inject('GET', `${C}/flavors`, token);
      assert.equal(fl.json.flavors.length, 4);
      // and it keeps working
      assert.equal((await inject('POST', `${C}/servers/${b}/action`, token, { 'os-start': null })).status, 202);
      await waitFor('restarted server ACTIVE', async () => (await show(b)).status === 'ACTIVE');
      assert.equal((await inject('DELETE', `${C}/servers/${a}`, token)).status, 204);
      await waitFor('deleted', async () => (await inject('GET', `${C}/servers/${a}`, token)).status === 404);
    } finally {
      if (second) await second.stop().catch(() => undefined);
      else await c.cloud.stop().catch(() => undefined);
      rmSync(c.dataDir, { recursive: true, force: true });
      c.images.cleanup();
    }
  });
});
