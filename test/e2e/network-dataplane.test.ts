/**
 * Networking end to end, judged by the real `openstack` CLI and by packets:
 * a network, subnet and router with an external gateway; two real guests
 * that get their DHCP addresses and ping each other; a floating IP reached
 * from the host side; a security-group rule that decides whether that works;
 * a restart that keeps it all; and a teardown that leaves nothing behind.
 *
 * The cloud runs with `--host-netns` (a namespace this test creates): every
 * packet the test sends goes from inside that namespace.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consoleMatch, deleteServersAndStop, hasOpenstackCli, openstack, osJson, osOk, type RunningCloud, startCloud, waitFor } from '../helpers/cloud-process.js';

const D = 'stratus-demo' as const;
const A = 'stratus-admin' as const;
let cloud: RunningCloud;
const work = mkdtempSync(join(tmpdir(), 'stratus-e2e-net-'));
const hasQemu = existsSync('/usr/bin/qemu-system-x86_64');
const skip = (!hasOpenstackCli() && 'python3-openstackclient not installed') || (!hasQemu && 'qemu-system-x86 not installed');
const ENV = { STRATUS_GUEST_IMAGE_CACHE: process.env.STRATUS_GUEST_IMAGE_CACHE ?? '/var/tmp/stratus-test-cache/guest-image', STRATUS_COMPUTE__ACCEL: 'tcg' };

before(async () => {
  if (skip) return;
  cloud = await startCloud({ env: ENV, timeoutMs: 600_000 });
});
after(async () => {
  await deleteServersAndStop(cloud);
  rmSync(work, { recursive: true, force: true });
});

const consoleHas = (name: string, re: RegExp, t = 240_000) => consoleMatch(cloud, D, name, re, t);

/** Runs a command inside the cloud's host namespace (never in the root namespace). */
const inHost = (cmd: string[], timeoutMs = 20_000): { ok: boolean; out: string } => {
  try {
    return { ok: true, out: execFileSync('ip', ['netns', 'exec', cloud.hostNetns!, ...cmd], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    return { ok: false, out: String((e as { stdout?: string }).stdout ?? '') + String((e as { stderr?: string }).stderr ?? '') };
  }
};
const pingFromHost = (ip: string) => inHost(['ping', '-c', '2', '-W', '2', ip]).ok;
const httpFromHost = (ip: string) => inHost(['curl', '-s', '-m', '5', `http://${ip}/`]);

/** Every network object of the host side whose name carries one of these ids. */
function dataPlaneFor(ids: string[]): string[] {
  const found: string[] = [];
  const short = ids.map((i) => i.slice(0, 11));
  for (const l of inHost(['ip', '-o', 'link', 'show']).out.split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(l)?.[1];
    if (name && short.some((s) => name.includes(s))) found.push(`link ${name}`);
  }
  for (const ns of execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')) {
    const name = ns.split(' ')[0];
    if (name && ids.some((i) => name.endsWith(i))) found.push(`netns ${name}`);
  }
  const rules = inHost(['nft', 'list', 'ruleset']).out;
  for (const s of short) if (rules.includes(s)) found.push(`nft rules mentioning ${s}`);
  return found;
}

test('tenant network, two guests, a router, a floating IP and a security group', { skip, timeout: 1_800_000 }, async (t) => {
  const image = (await osJson<{ Name: string; Status: string }[]>(cloud, D, ['image', 'list'])).find((i) => i.Status === 'active')!.Name;
  const net = await osJson<{ id: string }>(cloud, D, ['network', 'create', 'e2e-net']);
  const subnet = await osJson<{ id: string }>(cloud, D, ['subnet', 'create', '--network', 'e2e-net', '--subnet-range', '10.77.0.0/24', 'e2e-subnet']);
  const router = await osJson<{ id: string }>(cloud, D, ['router', 'create', 'e2e-router']);
  await osOk(cloud, D, ['router', 'set', '--external-gateway', 'public', 'e2e-router']);
  await osOk(cloud, D, ['router', 'add', 'subnet', 'e2e-router', 'e2e-subnet']);

  // each guest pings the other until it answers, and says so on its console
  const ud = (peer: string) => {
    const f = join(work, `ud-${peer}.sh`);
    writeFileSync(f, `#!/bin/sh\ni=0\nwhile [ $i -lt 90 ]; do\n  if ping -c 1 -W 1 ${peer} >/dev/null 2>&1; then echo "PEER-PING-OK ${peer}"; exit 0; fi\n  i=$((i+1)); sleep 1\ndone\necho "PEER-PING-FAILED ${peer}"\n`);
    return f;
  };
  const servers: Record<string, { id: string }> = {};
  await t.test('two servers on the network get their DHCP addresses and reach each other', async () => {
    for (const [name, ip, peer] of [['n1', '10.77.0.11', '10.77.0.12'], ['n2', '10.77.0.12', '10.77.0.11']] as const) {
      servers[name] = await osJson(cloud, D, ['server', 'create', '--image', image, '--flavor', 'm1.nano', '--nic', `net-id=${net.id},v4-fixed-ip=${ip}`, '--user-data', ud(peer), name]);
    }
    for (const [name, ip] of [['n1', '10.77.0.11'], ['n2', '10.77.0.12']] as const) {
      await waitFor(`${name} ACTIVE`, async () => String((await osJson(cloud, D, ['server', 'show', name])).status) === 'ACTIVE');
      const m = await consoleHas(name, /STRATUS-GUEST-READY hostname=(\S+) instance-id=\S+ ip=(\S+) datasource=(\S+)/);
      assert.equal(m[1], name, 'hostname from the metadata');
      assert.equal(m[2], ip, 'the address IPAM gave the port, leased by DHCP');
      const shown = await osJson<{ addresses: unknown }>(cloud, D, ['server', 'show', name]);
      assert.match(JSON.stringify(shown.addresses), new RegExp(ip.replace(/\./g, '\\.')));
    }
    // the server list shows every server's addresses (one network call) and filters by address
    const listed = await osJson<Array<{ Name: string; Networks: unknown }>>(cloud, D, ['server', 'list', '--long']);
    for (const [name, ip] of [['n1', '10.77.0.11'], ['n2', '10.77.0.12']]) assert.match(JSON.stringify(listed.find((x) => x.Name === name)?.Networks), new RegExp(ip!.replace(/\./g, '\\.')));
    const byIp = await osJson<Array<{ Name: string }>>(cloud, D, ['server', 'list', '--ip', '10.77.0.12']);
    assert.deepEqual(byIp.map((x) => x.Name), ['n2']);
    await consoleHas('n1', /PEER-PING-OK 10\.77\.0\.12/);
    await consoleHas('n2', /PEER-PING-OK 10\.77\.0\.11/);
  });

  let fip = '';
  await t.test('a floating IP reaches the guest from the host side, as the security group allows', async () => {
    fip = String((await osJson<{ floating_ip_address: string }>(cloud, D, ['floating', 'ip', 'create', 'public'])).floating_ip_address);
    await osOk(cloud, D, ['server', 'add', 'floating', 'ip', 'n1', fip]);
    // the default group admits only its own members: nothing from outside yet
    // (the association reaches the router within moments; from then on nothing from outside passes)
    await waitFor('the floating IP to be wired', async () => inHost(['ip', 'netns', 'exec', `qrouter-${router.id}`, 'nft', 'list', 'ruleset']).out.includes(fip), 60_000);
    assert.equal(pingFromHost(fip), false, 'ICMP from outside the group is dropped by default');
    const rule = await osJson<{ id: string }>(cloud, D, ['security', 'group', 'rule', 'create', '--protocol', 'icmp', '--ingress', 'default']);
    const web = await osJson<{ id: string }>(cloud, D, ['security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '80', '--ingress', 'default']);
    await waitFor('ping via the floating IP', async () => pingFromHost(fip), 60_000);
    const body = await waitFor('HTTP via the floating IP', async () => {
      const r = httpFromHost(fip);
      return r.ok && r.out.includes('n1') ? r.out : undefined;
    }, 60_000);
    assert.match(body, /^n1 \S+ 10\.77\.0\.11/);
    await osOk(cloud, D, ['security', 'group', 'rule', 'delete', rule.id]);
    await waitFor('ping blocked again', async () => !pingFromHost(fip), 60_000);
    assert.ok(httpFromHost(fip).ok, 'the other rule still lets HTTP through');
    await osOk(cloud, D, ['security', 'group', 'rule', 'create', '--protocol', 'icmp', '--ingress', 'default']);
    await waitFor('ping allowed again', async () => pingFromHost(fip), 60_000);
    void web;
  });

  await t.test('server add/remove port and security group', async () => {
    const links = () => inHost(['ip', '-o', 'link', 'show']).out;
    const port = await osJson<{ id: string }>(cloud, D, ['port', 'create', '--network', 'e2e-net', '--fixed-ip', 'ip-address=10.77.0.40', 'extra']);
    await osOk(cloud, D, ['server', 'add', 'port', 'n2', 'extra']);
    const shown = await osJson<{ device_id: string; status?: string }>(cloud, D, ['port', 'show', 'extra']);
    assert.equal(shown.device_id, servers.n2!.id, 'the port now belongs to n2');
    assert.ok(links().includes(`tap${port.id.slice(0, 11)}`), 'its tap is wired on the host');
    assert.match(JSON.stringify((await osJson<{ addresses: unknown }>(cloud, D, ['server', 'show', 'n2'])).addresses), /10\.77\.0\.40/);
    await osOk(cloud, D, ['server', 'remove', 'port', 'n2', 'extra']);
    await waitFor('the tap to go', async () => !links().includes(`tap${port.id.slice(0, 11)}`), 60_000);
    assert.equal((await osJson<{ device_id: string }>(cloud, D, ['port', 'show', 'extra'])).device_id, '', 'the port is free again');
    await osOk(cloud, D, ['port', 'delete', 'extra']);

    await osOk(cloud, D, ['security', 'group', 'create', 'e2e-web']);
    await osOk(cloud, D, ['server', 'add', 'security', 'group', 'n1', 'e2e-web']);
    const n1Port = (await osOk(cloud, D, ['port', 'list', '--server', servers.n1!.id, '-f', 'value', '-c', 'ID'])).trim().split('\n')[0]!;
    const groups = async () => JSON.stringify((await osJson<{ security_group_ids: unknown }>(cloud, D, ['port', 'show', n1Port])).security_group_ids);
    const webId = String((await osJson<{ id: string }>(cloud, D, ['security', 'group', 'show', 'e2e-web'])).id);
    assert.ok((await groups()).includes(webId), 'the group is on the server\'s port');
    assert.match(JSON.stringify((await osJson<{ security_groups: unknown }>(cloud, D, ['server', 'show', 'n1'])).security_groups), /e2e-web/);
    await osOk(cloud, D, ['server', 'remove', 'security', 'group', 'n1', 'e2e-web']);
    assert.ok(!(await groups()).includes(webId), 'the group is gone from the port');
    await osOk(cloud, D, ['security', 'group', 'delete', 'e2e-web']);
    assert.ok(pingFromHost(fip), 'the default group still lets ICMP in');
  });

  await t.test('a restart keeps addresses and connectivity', async () => {
    const pidFile = join(cloud.dataDir, 'instances', servers.n1!.id, 'qemu.pid');
    const pid = readFileSync(pidFile, 'utf8').trim();
    await cloud.stop();
    assert.ok(pingFromHost(fip), 'the data plane keeps working while stratus is down');
    cloud = await startCloud({ dataDir: cloud.dataDir, port: cloud.port, hostNetns: cloud.hostNetns ?? false, env: ENV, timeoutMs: 600_000 });
    assert.ok(pingFromHost(fip), 'the floating IP still answers right after the restart');
    assert.equal(readFileSync(pidFile, 'utf8').trim(), pid, 'the same QEMU process runs the guest');
    const shown = await osJson<{ addresses: unknown; status: string }>(cloud, D, ['server', 'show', 'n1']);
    assert.equal(shown.status, 'ACTIVE');
    assert.match(JSON.stringify(shown.addresses), /10\.77\.0\.11/);
    assert.match(JSON.stringify(shown.addresses), new RegExp(fip.replace(/\./g, '\\.')));
  });

  await t.test('bad input changes nothing', async () => {
    const before = await osOk(cloud, D, ['port', 'list', '-f', 'value', '-c', 'ID']);
    const bad = async (args: string[], re: RegExp) => {
      const r = await openstack(cloud, D, args);
      assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
      assert.match(r.stderr, re, args.join(' '));
    };
    await bad(['port', 'create', '--network', 'e2e-net', '--fixed-ip', 'subnet=e2e-subnet,ip-address=10.99.0.5', 'bad1'], /subnet|address|valid/i);
    await bad(['port', 'create', '--network', 'e2e-net', '--fixed-ip', 'subnet=e2e-subnet,ip-address=10.77.0.11', 'bad2'], /already allocated|in use|IpAddressAlreadyAllocated/i);
    await bad(['subnet', 'create', '--network', 'e2e-net', '--subnet-range', '10.78.0.0/24', '--gateway', '10.79.0.1', 'bad3'], /gateway|outside|valid/i);
    await bad(['router', 'add', 'subnet', 'e2e-router', 'e2e-subnet'], /already|overlap|has/i);
    assert.equal(await osOk(cloud, D, ['port', 'list', '-f', 'value', '-c', 'ID']), before, 'no port was created by the failures');
  });

  await t.test('deleting everything leaves no bridge, tap, namespace, dnsmasq or nftables rule', async () => {
    const portIds = (await osOk(cloud, D, ['port', 'list', '--network', 'e2e-net', '-f', 'value', '-c', 'ID'])).split('\n').filter(Boolean);
    await osOk(cloud, D, ['server', 'delete', '--wait', 'n1', 'n2']);
    await osOk(cloud, D, ['floating', 'ip', 'delete', fip]);
    await osOk(cloud, D, ['router', 'remove', 'subnet', 'e2e-router', 'e2e-subnet']);
    await osOk(cloud, D, ['router', 'unset', '--external-gateway', 'e2e-router']);
    await osOk(cloud, D, ['router', 'delete', 'e2e-router']);
    await osOk(cloud, D, ['subnet', 'delete', 'e2e-subnet']);
    await osOk(cloud, D, ['network', 'delete', 'e2e-net']);
    const ids = [net.id, subnet.id, router.id, ...portIds];
    const left = await waitFor('the data plane to be gone', async () => (dataPlaneFor(ids).length === 0 ? [] : undefined), 60_000).catch(() => dataPlaneFor(ids));
    assert.deepEqual(left, [], `left behind: ${left.join(', ')}`);
    const dnsmasq = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('dnsmasq') && l.includes(net.id));
    assert.deepEqual(dnsmasq, [], 'no dnsmasq of the network runs');
  });
});
