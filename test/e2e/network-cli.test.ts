/**
 * Networking API end to end, judged by the real `openstack` CLI against a
 * freshly started `./stratus up`. API level only: the cloud runs with
 * `--host-netns` on a namespace this test creates (and removes), so any data
 * plane an agent builds stays out of the root namespace.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startCloud, openstack, osJson, osOk, hasOpenstackCli, type RunningCloud } from '../helpers/cloud-process.js';

let cloud: RunningCloud | undefined;
const A = 'stratus-admin' as const;
const D = 'stratus-demo' as const;
const netns = `stx-netapi-${randomBytes(3).toString('hex')}`;
const skip = !hasOpenstackCli() && 'python3-openstackclient not installed';

before(async () => {
  if (skip) return;
  execFileSync('ip', ['netns', 'add', netns]);
  cloud = await startCloud({ args: ['--host-netns', netns] });
});
after(async () => {
  try {
    await cloud?.stop();
    cloud?.cleanup();
  } finally {
    try {
      execFileSync('ip', ['netns', 'delete', netns]);
    } catch {
      /* not created */
    }
  }
});

/** Runs a command expected to fail; returns its stderr. */
async function fails(who: typeof A | typeof D, args: string[]): Promise<string> {
  const r = await openstack(cloud!, who, args);
  assert.notEqual(r.code, 0, `openstack ${args.join(' ')} should fail: ${r.stdout}`);
  return r.stderr;
}

test('openstack CLI drives the networking API', { skip }, async (t) => {
  const c = cloud!;
  let fipAddr = '';
  let ruleId = '';

  await t.test('the seeded networks and the catalog', async () => {
    const nets = await osJson<Array<{ Name: string }>>(c, D, ['network', 'list']);
    assert.ok(nets.some((n) => n.Name === 'public'));
    assert.ok(nets.some((n) => n.Name === 'private'));
    const routers = await osJson<Array<{ Name: string }>>(c, D, ['router', 'list']);
    assert.ok(routers.some((r) => r.Name === 'router1'));
    const pub = await osJson(c, A, ['network', 'show', 'public']);
    assert.equal(pub['router:external'], true);
    assert.equal(pub.provider_network_type ?? pub['provider:network_type'], 'flat');
    const ext = await osJson<Array<{ Alias: string }>>(c, D, ['extension', 'list', '--network']);
    assert.ok(ext.some((e) => e.Alias === 'router'));
  });

  await t.test('network, subnet, router with gateway and interface', async () => {
    const n = await osJson(c, D, ['network', 'create', 'e2e-net']);
    assert.equal(n.name, 'e2e-net');
    assert.equal(n.status, 'ACTIVE');
    const s = await osJson(c, D, ['subnet', 'create', '--network', 'e2e-net', '--subnet-range', '10.90.0.0/24', '--dns-nameserver', '10.90.0.53', 'e2e-sub']);
    assert.equal(s.cidr, '10.90.0.0/24');
    assert.equal(s.gateway_ip, '10.90.0.1');
    const r = await osJson(c, D, ['router', 'create', 'e2e-router']);
    assert.equal(r.name, 'e2e-router');
    await osOk(c, D, ['router', 'set', '--external-gateway', 'public', 'e2e-router']);
    const shown = await osJson(c, D, ['router', 'show', 'e2e-router']);
    const gw = shown.external_gateway_info as { network_id: string; external_fixed_ips: Array<{ ip_address: string }> };
    assert.match(gw.external_fixed_ips[0]!.ip_address, /^172\.24\.4\./);
    await osOk(c, D, ['router', 'add', 'subnet', 'e2e-router', 'e2e-sub']);
    const ports = await osJson<Array<{ 'Fixed IP Addresses': unknown }>>(c, D, ['port', 'list', '--router', 'e2e-router']);
    assert.ok(JSON.stringify(ports).includes('10.90.0.1'), JSON.stringify(ports));
  });

  await t.test('port with a fixed IP, floating IP associate/disassociate', async () => {
    const p = await osJson(c, D, ['port', 'create', '--network', 'e2e-net', '--fixed-ip', 'subnet=e2e-sub,ip-address=10.90.0.50', 'e2e-port']);
    assert.ok(JSON.stringify(p.fixed_ips).includes('10.90.0.50'));
    assert.match(String(p.mac_address), /^fa:16:3e:/);
    const f = await osJson(c, D, ['floating', 'ip', 'create', 'public']);
    fipAddr = String(f.floating_ip_address);
    assert.match(fipAddr, /^172\.24\.4\./);
    await osOk(c, D, ['floating', 'ip', 'set', '--port', 'e2e-port', fipAddr]);
    const shown = await osJson(c, D, ['floating', 'ip', 'show', fipAddr]);
    assert.equal(shown.fixed_ip_address, '10.90.0.50');
    assert.equal(shown.status, 'ACTIVE');
    await osOk(c, D, ['floating', 'ip', 'unset', '--port', fipAddr]);
    assert.equal((await osJson(c, D, ['floating', 'ip', 'show', fipAddr])).port_id, null);
    const list = await osJson<Array<{ 'Floating IP Address': string }>>(c, D, ['floating', 'ip', 'list']);
    assert.ok(list.some((x) => x['Floating IP Address'] === fipAddr));
  });

  await t.test('security group rules create/list/delete', async () => {
    const r = await osJson(c, D, ['security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', 'default']);
    ruleId = String(r.id);
    assert.equal(r.port_range_min, 22);
    const dup = await fails(D, ['security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', 'default']);
    assert.match(dup, /already exists/i);
    const rules = await osJson<Array<{ ID: string }>>(c, D, ['security', 'group', 'rule', 'list', 'default']);
    assert.ok(rules.some((x) => x.ID === ruleId));
    await osOk(c, D, ['security', 'group', 'rule', 'delete', ruleId]);
    const g = await osJson(c, D, ['security', 'group', 'create', 'e2e-sg']);
    assert.equal(g.name, 'e2e-sg');
    await osOk(c, D, ['security', 'group', 'delete', 'e2e-sg']);
  });

  await t.test('bad input: each refused with the reference error', async () => {
    const outside = await fails(D, ['port', 'create', '--network', 'e2e-net', '--fixed-ip', 'subnet=e2e-sub,ip-address=10.91.0.5', 'bad-port']);
    assert.match(outside, /not a valid IP for the specified subnet/);
    const dup = await fails(D, ['port', 'create', '--network', 'e2e-net', '--fixed-ip', 'subnet=e2e-sub,ip-address=10.90.0.50', 'bad-port']);
    assert.match(dup, /already allocated/);
    const gw = await fails(D, ['subnet', 'create', '--network', 'e2e-net', '--subnet-range', '10.92.0.0/24', '--gateway', '10.93.0.1', 'bad-sub']);
    assert.match(gw, /Gateway is not valid on subnet/);
    const again = await fails(D, ['router', 'add', 'subnet', 'e2e-router', 'e2e-sub']);
    assert.match(again, /already has a port on subnet/);
    await osJson(c, D, ['network', 'create', 'e2e-lonely']);
    await osJson(c, D, ['subnet', 'create', '--network', 'e2e-lonely', '--subnet-range', '10.94.0.0/24', 'e2e-lonely-sub']);
    await osJson(c, D, ['port', 'create', '--network', 'e2e-lonely', 'e2e-lonely-port']);
    const noRoute = await fails(D, ['floating', 'ip', 'set', '--port', 'e2e-lonely-port', fipAddr]);
    assert.match(noRoute, /not reachable from subnet/);
    const ext = await fails(D, ['network', 'create', '--external', 'bad-ext']);
    assert.match(ext, /not authorized|Forbidden|disallowed/i);
    // nothing was created by the refused requests
    const ports = await osJson<Array<{ Name: string }>>(c, D, ['port', 'list']);
    assert.ok(!ports.some((p) => p.Name === 'bad-port'));
    const subnets = await osJson<Array<{ Name: string }>>(c, D, ['subnet', 'list']);
    assert.ok(!subnets.some((s) => s.Name === 'bad-sub'));
    assert.ok(!(await osJson<Array<{ Name: string }>>(c, A, ['network', 'list'])).some((n) => n.Name === 'bad-ext'));
    const inUse = await fails(D, ['network', 'delete', 'e2e-net']);
    assert.match(inUse, /still in use|in use/i);
  });

  await t.test('show, set and delete everything', async () => {
    await osOk(c, D, ['network', 'set', '--description', 'changed', 'e2e-net']);
    assert.equal((await osJson(c, D, ['network', 'show', 'e2e-net'])).description, 'changed');
    await osOk(c, D, ['port', 'set', '--name', 'e2e-port2', 'e2e-port']);
    assert.equal((await osJson(c, D, ['port', 'show', 'e2e-port2'])).name, 'e2e-port2');
    await osOk(c, D, ['subnet', 'set', '--name', 'e2e-sub2', 'e2e-sub']);
    await osOk(c, D, ['floating', 'ip', 'delete', fipAddr]);
    await osOk(c, D, ['port', 'delete', 'e2e-port2', 'e2e-lonely-port']);
    await osOk(c, D, ['router', 'remove', 'subnet', 'e2e-router', 'e2e-sub2']);
    await osOk(c, D, ['router', 'unset', '--external-gateway', 'e2e-router']);
    await osOk(c, D, ['router', 'delete', 'e2e-router']);
    await osOk(c, D, ['subnet', 'delete', 'e2e-sub2', 'e2e-lonely-sub']);
    await osOk(c, D, ['network', 'delete', 'e2e-net', 'e2e-lonely']);
    const nets = await osJson<Array<{ Name: string }>>(c, D, ['network', 'list']);
    assert.ok(!nets.some((n) => n.Name.startsWith('e2e-')));
    const ports = await osJson<Array<{ Name: string }>>(c, A, ['port', 'list']);
    assert.ok(!ports.some((p) => p.Name.startsWith('e2e-')));
    assert.equal((await openstack(c, D, ['router', 'show', 'e2e-router'])).code === 0, false);
  });

  await t.test('quotas and agents through the CLI', async () => {
    const q = await osJson(c, A, ['quota', 'show', '--network', 'demo']).catch(async () => osJson(c, A, ['quota', 'show', 'demo']));
    assert.ok(q.networks !== undefined || q.network !== undefined, JSON.stringify(q));
    await osOk(c, A, ['network', 'agent', 'list']);
  });
});
