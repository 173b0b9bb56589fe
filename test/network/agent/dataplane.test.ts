/**
 * The network agent against the real kernel, inside a namespace this test
 * creates as the agent's host namespace (nothing in the root namespace):
 * bridges, dnsmasq, a router with SNAT and a floating IP, security groups,
 * the metadata proxies, adoption after a restart and complete removal.
 * "Guests" are namespaces wired to their VM ports through the agent's veth
 * hook (a tap needs QEMU behind it); one port is a real tap to show that path.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { HostNetworkState, NetworkState, PortState, RouterState, SecurityGroupRuleState } from '../../../src/network/protocol.js';
import type { NetworkAgent } from '../../../src/network/agent/index.js';
import { makeWorld, dhcp, pingOk, inNs, must, mac, uuid, network, vmPort, group, RecordingRunner, type World } from './helpers.js';

const rule = (o: Partial<SecurityGroupRuleState>): SecurityGroupRuleState => ({
  id: uuid(), direction: 'ingress', ethertype: 'IPv4', protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, ...o,
});

describe('network agent data plane (real kernel, throwaway namespaces)', () => {
  let w: World;
  let agent: NetworkAgent;
  const ids = { net: uuid(), sub: uuid(), ext: uuid(), extSub: uuid(), iso: uuid(), isoSub: uuid(), router: uuid(), sg: uuid(), dhcpPort: uuid(), isoDhcpPort: uuid(), rIf: uuid(), rGw: uuid(), vm1: uuid(), vm2: uuid(), vm3: uuid(), tapPort: uuid(), fip: uuid() };
  let g1 = '', g2 = '', g3 = '';
  const icmpRule = rule({ protocol: 'icmp' });
  const sameGroup = rule({ remote_group_id: ids.sg });
  const egress = [rule({ direction: 'egress' }), rule({ direction: 'egress', ethertype: 'IPv6' })];

  function full(icmp: boolean): Omit<HostNetworkState, 'host' | 'generation'> {
    const tenant = network({ id: ids.net, subnetId: ids.sub, cidr: '10.77.0.0/24', gateway: '10.77.0.1', mtu: 1450, dhcpPort: { id: ids.dhcpPort, mac: mac(2), ip: '10.77.0.2' } });
    tenant.dhcp_hosts = [
      { port_id: ids.vm1, mac_address: mac(11), ip_address: '10.77.0.11', hostname: 'vm1' },
      { port_id: ids.vm2, mac_address: mac(12), ip_address: '10.77.0.12', hostname: 'vm2' },
    ];
    const ext = network({ id: ids.ext, subnetId: ids.extSub, cidr: '172.24.250.0/24', gateway: '172.24.250.1', external: true });
    const iso = network({ id: ids.iso, subnetId: ids.isoSub, cidr: '10.78.0.0/24', gateway: null, dhcpPort: { id: ids.isoDhcpPort, mac: mac(0x102), ip: '10.78.0.2' } });
    iso.dhcp_hosts = [{ port_id: ids.vm3, mac_address: mac(0x103), ip_address: '10.78.0.3', hostname: 'vm3' }];
    const router: RouterState = {
      id: ids.router, admin_state_up: true,
      gateway: { port_id: ids.rGw, network_id: ids.ext, mac_address: mac(0x210), fixed_ips: [{ subnet_id: ids.extSub, ip_address: '172.24.250.10', prefixlen: 24 }], enable_snat: true, next_hop: null },
      interfaces: [{ port_id: ids.rIf, network_id: ids.net, subnet_id: ids.sub, mac_address: mac(1), ip_address: '10.77.0.1', prefixlen: 24, cidr: '10.77.0.0/24' }],
      routes: [],
      floating_ips: [{ id: ids.fip, floating_ip_address: '172.24.250.100', fixed_ip_address: '10.77.0.11', port_id: ids.vm1 }],
    };
    const ports: PortState[] = [
      vmPort({ id: ids.vm1, net: tenant, mac: mac(11), ip: '10.77.0.11', groups: [ids.sg] }),
      vmPort({ id: ids.vm2, net: tenant, mac: mac(12), ip: '10.77.0.12', groups: [ids.sg] }),
      vmPort({ id: ids.vm3, net: iso, mac: mac(0x103), ip: '10.78.0.3', groups: [ids.sg] }),
      vmPort({ id: ids.tapPort, net: tenant, mac: mac(13), ip: '10.77.0.13', groups: [ids.sg] }),
    ];
    const sg = group(ids.sg, ['10.77.0.11', '10.77.0.12', '10.77.0.13', '10.78.0.3'], [...(icmp ? [icmpRule] : []), sameGroup, ...egress]);
    return { networks: [tenant, ext, iso], ports, routers: [router], security_groups: [sg] };
  }

  before(async () => {
    w = await makeWorld();
    g1 = await w.newGuest('g1');
    g2 = await w.newGuest('g2');
    g3 = await w.newGuest('g3');
    w.guests.set(ids.vm1, g1);
    w.guests.set(ids.vm2, g2);
    w.guests.set(ids.vm3, g3);
    w.setState(full(true));
    agent = w.agent();
    await agent.start();
  });
  after(async () => {
    await w?.cleanup();
  });

  test('start builds bridges, namespaces, dnsmasq and proxies without errors', async () => {
    const s = await agent.status();
    assert.deepEqual(s.errors, []);
    assert.equal(s.generation, w.state.generation);
    assert.deepEqual(s.bridges, [`brq${ids.net.slice(0, 11)}`, `brq${ids.ext.slice(0, 11)}`, `brq${ids.iso.slice(0, 11)}`].sort());
    assert.deepEqual(s.namespaces, [`qdhcp-${ids.iso}`, `qdhcp-${ids.net}`, `qrouter-${ids.router}`].sort());
    // the host's own address on the external bridge
    const addrs = await must('ip', ['-n', w.hostNs, '-br', 'addr', 'show', 'dev', `brq${ids.ext.slice(0, 11)}`]);
    assert.match(addrs, /172\.24\.250\.1\/24/);
    // the real tap (no guest behind it): a tun device of mode tap on the tenant bridge
    const tap = JSON.parse(await must('ip', ['-n', w.hostNs, '-d', '-j', 'link', 'show', 'dev', `tap${ids.tapPort.slice(0, 11)}`]))[0];
    assert.equal(tap.linkinfo.info_kind, 'tun');
    assert.equal(tap.linkinfo.info_data.type, 'tap');
    assert.equal(tap.master, `brq${ids.net.slice(0, 11)}`);
    assert.equal(tap.mtu, 1450);
    // plug over the bus answers with the device once wired
    assert.deepEqual(await w.bus.call(`netagent.test-host`, 'plug', { port_id: ids.tapPort }), { device: `tap${ids.tapPort.slice(0, 11)}` });
  });

  test('guests get their DHCP leases from dnsmasq (address, router, MTU, DNS, metadata route when isolated)', async () => {
    const e1 = await dhcp(g1, join(w.stateDir, '..'), mac(11));
    assert.equal(e1.ip, '10.77.0.11');
    assert.equal(e1.router, '10.77.0.1');
    assert.equal(e1.mtu, '1450');
    assert.equal(e1.dns, '10.77.0.2');
    assert.equal(e1.domain, 'openstacklocal');
    const e2 = await dhcp(g2, join(w.stateDir, '..'), mac(12));
    assert.equal(e2.ip, '10.77.0.12');
    const e3 = await dhcp(g3, join(w.stateDir, '..'), mac(0x103));
    assert.equal(e3.ip, '10.78.0.3');
    assert.equal(e3.staticroutes, '169.254.169.254/32 10.78.0.2');
    const leases = await readFile(join(w.stateDir, 'dhcp', ids.net, 'leases'), 'utf8');
    assert.match(leases, new RegExp(`${mac(11)} 10\\.77\\.0\\.11 vm1`));
    // DNS for the ports' names only
    const r = await inNs(g1, 'busybox', ['nslookup', 'vm2.openstacklocal', '10.77.0.2']);
    assert.match(r.out, /10\.77\.0\.12/);
  });

  test('two guests ping each other; the host namespace reaches a guest through its floating IP', async () => {
    assert.ok(await pingOk(g1, '10.77.0.12'), 'vm1 -> vm2');
    assert.ok(await pingOk(g2, '10.77.0.11'), 'vm2 -> vm1');
    assert.ok(await pingOk(w.hostNs, '172.24.250.100'), 'host -> floating IP of vm1');
    // vm2 (no floating IP) leaves through SNAT to the router's gateway address
    assert.ok(await pingOk(g2, '172.24.250.1'), 'vm2 -> host via SNAT');
    const nat = await must('ip', ['netns', 'exec', `qrouter-${ids.router}`, 'nft', 'list', 'table', 'ip', 'stratus_router']);
    assert.match(nat, /dnat to 10\.77\.0\.11/);
    // a guest reaches another guest's floating IP through the router (hairpin NAT)
    assert.ok(await pingOk(g2, '172.24.250.100'), 'vm2 -> floating IP of vm1');
  });

  test('anti-spoofing: a guest sending from an address that is not its own is dropped', async () => {
    await must('ip', ['-n', g2, 'addr', 'add', '10.77.0.50/24', 'dev', 'eth0']);
    try {
      const r = await inNs(g2, 'ping', ['-c', '1', '-W', '1', '-I', '10.77.0.50', '10.77.0.11']);
      assert.notEqual(r.code, 0, 'spoofed source must not get through');
    } finally {
      await must('ip', ['-n', g2, 'addr', 'del', '10.77.0.50/24', 'dev', 'eth0']);
    }
    assert.ok(await pingOk(g2, '10.77.0.11'), 'its own address still works');
  });

  test('a security group rule removed blocks the traffic it allowed; re-added, it passes again', async () => {
    await agent.reconcile(w.setState(full(false)));
    assert.deepEqual((await agent.status()).errors, []);
    assert.equal(await pingOk(w.hostNs, '172.24.250.100', 1), false, 'host -> FIP must be blocked without the icmp rule');
    assert.ok(await pingOk(g2, '10.77.0.11'), 'same-group traffic still passes (remote_group_id)');
    assert.ok(await pingOk(g1, '172.24.250.1'), 'vm1 -> host still works: replies are established (stateful)');
    await agent.reconcile(w.setState(full(true)));
    assert.ok(await pingOk(w.hostNs, '172.24.250.100'), 'host -> FIP passes again');
  });

  test('the metadata proxies forward to the unix socket with the guest address and router / network id', async () => {
    w.metadataRequests.length = 0;
    const r1 = await inNs(g1, 'busybox', ['wget', '-q', '-O', '-', '--header', 'X-Forwarded-For: 6.6.6.6', 'http://169.254.169.254/openstack/latest/meta_data.json'], 15_000);
    assert.equal(r1.code, 0, r1.err);
    assert.equal(r1.out.trim(), 'meta for 10.77.0.11');
    const r3 = await inNs(g3, 'busybox', ['wget', '-q', '-O', '-', 'http://169.254.169.254/latest/meta-data/'], 15_000);
    assert.equal(r3.code, 0, r3.err);
    const [a, b] = w.metadataRequests;
    assert.equal(a?.url, '/openstack/latest/meta_data.json');
    assert.equal(a?.headers['x-forwarded-for'], '10.77.0.11', 'the guest cannot forge X-Forwarded-For');
    assert.equal(a?.headers['x-stratus-router-id'], ids.router);
    assert.equal(b?.headers['x-forwarded-for'], '10.78.0.3');
    assert.equal(b?.headers['x-stratus-network-id'], ids.iso);
  });

  test('a new agent object adopts everything without disruption (a ping loop keeps going)', async () => {
    const pidOf = async (f: string) => Number((await readFile(f, 'utf8')).trim());
    const dnsmasqPid = await pidOf(join(w.stateDir, 'dhcp', ids.net, 'pid'));
    const proxyPid = await pidOf(join(w.stateDir, 'metadata', `qrouter-${ids.router}.pid`));
    const ifindex = async () => JSON.parse(await must('ip', ['-n', w.hostNs, '-j', 'link', 'show'])).map((l: { ifname: string; ifindex: number }) => `${l.ifname}:${l.ifindex}`).sort().join(',');
    const before = await ifindex();
    // 40 pings at 0.1 s from the host namespace to the floating IP while the agent is replaced
    const loop = spawn('ip', ['netns', 'exec', w.hostNs, 'ping', '-c', '40', '-i', '0.1', '-W', '2', '172.24.250.100'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    loop.stdout.on('data', (b) => (out += b));
    const done = new Promise<number>((r) => loop.on('exit', (c) => r(c ?? 1)));
    await new Promise((r) => setTimeout(r, 800));
    await agent.stop();
    const runner = new RecordingRunner();
    agent = w.agent(runner);
    await agent.start();
    assert.deepEqual((await agent.status()).errors, []);
    const code = await done;
    assert.equal(code, 0, out);
    assert.match(out, / 0% packet loss/);
    assert.equal(await pidOf(join(w.stateDir, 'dhcp', ids.net, 'pid')), dnsmasqPid, 'dnsmasq kept');
    assert.equal(await pidOf(join(w.stateDir, 'metadata', `qrouter-${ids.router}.pid`)), proxyPid, 'proxy kept');
    assert.equal(await ifindex(), before, 'no interface was recreated');
    const changes = runner.commands.filter((c) => / (add|del|replace) |nft -f|dnsmasq |tuntap/.test(c));
    assert.deepEqual(changes, [], 'the adopting agent changed nothing');
  });

  test('a hosts-file change reaches the running dnsmasq by SIGHUP; a range change restarts it', async () => {
    const pidFile = join(w.stateDir, 'dhcp', ids.net, 'pid');
    const pid0 = Number((await readFile(pidFile, 'utf8')).trim());
    const s = full(true);
    s.networks[0]!.dhcp_hosts.push({ port_id: uuid(), mac_address: mac(14), ip_address: '10.77.0.14', hostname: 'vm4' });
    await agent.reconcile(w.setState(s));
    assert.equal(Number((await readFile(pidFile, 'utf8')).trim()), pid0);
    const r = await inNs(g1, 'busybox', ['nslookup', 'vm4.openstacklocal', '10.77.0.2']);
    assert.match(r.out, /10\.77\.0\.14/, 'the new name is served after SIGHUP');
    const s2 = full(true);
    s2.networks[0]!.subnets.push({ id: uuid(), cidr: '10.79.0.0/24', ip_version: 4, gateway_ip: null, enable_dhcp: true, dns_nameservers: [], host_routes: [] });
    await agent.reconcile(w.setState(s2));
    assert.notEqual(Number((await readFile(pidFile, 'utf8')).trim()), pid0, 'a new range means a new dnsmasq');
    assert.deepEqual((await agent.status()).errors, []);
  });

  test('drift is repaired: a deleted bridge port and a deleted rule table come back', async () => {
    await must('ip', ['-n', w.hostNs, 'link', 'del', 'dev', `tap${ids.tapPort.slice(0, 11)}`]);
    await must('ip', ['netns', 'exec', w.hostNs, 'nft', 'delete', 'table', 'inet', 'stratus_agent']);
    await agent.reconcile(w.state);
    await must('ip', ['-n', w.hostNs, 'link', 'show', 'dev', `tap${ids.tapPort.slice(0, 11)}`]);
    await must('ip', ['netns', 'exec', w.hostNs, 'nft', 'list', 'table', 'inet', 'stratus_agent']);
  });

  test('unplug removes the tap and its rules; an older generation is ignored', async () => {
    await w.bus.call('netagent.test-host', 'unplug', { port_id: ids.tapPort });
    const r = await inNs(w.hostNs, 'ip', ['link', 'show', 'dev', `tap${ids.tapPort.slice(0, 11)}`]);
    assert.notEqual(r.code, 0);
    const rules = await must('ip', ['netns', 'exec', w.hostNs, 'nft', 'list', 'ruleset']);
    assert.ok(!rules.includes(`tap${ids.tapPort.slice(0, 11)}`));
    const gen = agent.generation;
    await agent.reconcile({ ...w.state, generation: gen - 5, networks: [], ports: [], routers: [] });
    assert.equal(agent.generation, gen);
    assert.ok((await agent.status()).bridges.length > 0);
  });

  test('a state with nothing left removes every bridge, tap, namespace, dnsmasq, proxy and nft rule', async () => {
    const pids = [
      Number((await readFile(join(w.stateDir, 'dhcp', ids.net, 'pid'), 'utf8')).trim()),
      Number((await readFile(join(w.stateDir, 'metadata', `qrouter-${ids.router}.pid`), 'utf8')).trim()),
      Number((await readFile(join(w.stateDir, 'metadata', `qdhcp-${ids.iso}.pid`), 'utf8')).trim()),
    ];
    await agent.reconcile(w.setState({ networks: [], ports: [], routers: [], security_groups: [] }));
    const s = await agent.status();
    assert.deepEqual(s.errors, []);
    assert.deepEqual([s.bridges, s.taps, s.namespaces], [[], [], []]);
    const links = JSON.parse(await must('ip', ['-n', w.hostNs, '-j', 'link', 'show'])).map((l: { ifname: string }) => l.ifname);
    assert.deepEqual(links, ['lo']);
    const nsList = await must('ip', ['netns', 'list']);
    assert.ok(!nsList.includes(ids.net) && !nsList.includes(ids.iso) && !nsList.includes(ids.router));
    for (const pid of pids) assert.equal(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''), '', `process ${pid} is gone`);
    const rules = await must('ip', ['netns', 'exec', w.hostNs, 'nft', 'list', 'ruleset']);
    assert.equal(rules.trim(), '');
  });
});
