/**
 * The `network` bus topic (src/network/protocol.ts) as agents and compute
 * use it: agent registration and host state, `sync` casts after changes,
 * ports for servers (allocate/deallocate/attach/detach), metadata lookups;
 * and the idempotent seed of public/private networks and router1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteError, type Json } from '../../src/core/bus.js';
import type { HostNetworkState, InstancePort } from '../../src/network/protocol.js';
import { startNetCloud, type NetCloud } from './helpers.js';

let c: NetCloud;
let pub: { id: string };
let net: { id: string };
let subnet: { id: string };
let router: { id: string };
const syncs: HostNetworkState[] = [];
const call = async <T>(method: string, args: unknown): Promise<T> => (await c.cloud.bus.call('network', method, args as Json)) as T;

before(async () => {
  c = await startNetCloud();
  // A stand-in for host1's agent: records what the service casts to it.
  c.cloud.bus.serve('netagent.host1', { sync: (a) => void syncs.push((a as unknown as { state: HostNetworkState }).state) });
  pub = (await c.ok('POST', '/networks', { network: { name: 'bus-pub', 'router:external': true } }, c.admin.token, 201)).network;
  await c.ok('POST', '/subnets', { subnet: { network_id: pub.id, ip_version: 4, cidr: '172.28.0.0/24', enable_dhcp: false } }, c.admin.token, 201);
  net = (await c.ok('POST', '/networks', { network: { name: 'bus-net' } }, c.demo.token, 201)).network;
  subnet = (await c.ok('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.80.0.0/24', dns_nameservers: ['10.80.0.53'] } }, c.demo.token, 201)).subnet;
  router = (await c.ok('POST', '/routers', { router: { name: 'bus-r', external_gateway_info: { network_id: pub.id } } }, c.demo.token, 201)).router;
  await c.ok('PUT', `/routers/${router.id}/add_router_interface`, { subnet_id: subnet.id }, c.demo.token, 200);
});
after(async () => {
  await c?.stop();
});

const waitFor = async (pred: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('register_agent records the agent and hands it the DHCP and router work', async () => {
  const state = await call<HostNetworkState>('register_agent', { host: 'host1' });
  assert.equal(state.host, 'host1');
  assert.ok(state.generation > 0);
  const n = state.networks.find((x) => x.id === net.id)!;
  assert.ok(n, 'the tenant network (DHCP and router interface)');
  assert.equal(n.dhcp_port?.fixed_ips[0]?.ip_address, '10.80.0.2');
  assert.deepEqual(n.subnets[0]!.dns_nameservers, ['10.80.0.53']);
  assert.ok(state.networks.find((x) => x.id === pub.id)?.external, 'the external network');
  const r = state.routers.find((x) => x.id === router.id)!;
  assert.equal(r.gateway?.network_id, pub.id);
  assert.equal(r.gateway?.fixed_ips[0]?.prefixlen, 24);
  assert.equal(r.gateway?.next_hop, '172.28.0.1');
  assert.deepEqual(r.interfaces.map((i) => [i.ip_address, i.cidr]), [['10.80.0.1', '10.80.0.0/24']]);
  const agents = (await c.ok('GET', '/agents', undefined, c.admin.token, 200)).agents;
  assert.equal(agents.length, 1);
  assert.equal(agents[0].host, 'host1');
  assert.equal(agents[0].alive, true);
  c.expectError(await c.api('GET', '/agents', undefined, c.demo.token), 403, 'Forbidden');
  // a second host gets only what is bound to it
  const other = await call<HostNetworkState>('get_host_state', { host: 'host2' });
  assert.deepEqual([other.networks.length, other.routers.length, other.ports.length], [0, 0, 0]);
  assert.ok(other.generation > state.generation);
});

test('allocate_for_instance binds ports; host state and sync casts follow', async () => {
  const before = syncs.length;
  const out = await call<{ ports: InstancePort[] }>('allocate_for_instance', {
    instance_id: 'vm-1', project_id: c.demo.projectId, host: 'host1', hostname: 'My VM', requested: 'auto', security_groups: [],
  });
  assert.equal(out.ports.length, 1);
  const p = out.ports[0]!;
  assert.equal(p.network_id, net.id);
  assert.equal(p.network_name, 'bus-net');
  assert.match(p.device, /^tap[0-9a-f-]{11}$/);
  assert.equal(p.fixed_ips[0]!.cidr, '10.80.0.0/24');
  assert.equal(p.fixed_ips[0]!.gateway_ip, '10.80.0.1');
  assert.equal(p.fixed_ips[0]!.version, 4);
  assert.deepEqual(p.dns_nameservers, ['10.80.0.53']);
  const api = (await c.ok('GET', `/ports/${p.id}`, undefined, c.admin.token, 200)).port;
  assert.equal(api.device_id, 'vm-1');
  assert.equal(api.device_owner, 'compute:nova');
  assert.equal(api['binding:host_id'], 'host1');
  assert.equal(api['binding:vif_type'], 'tap');
  assert.equal(api.dns_name, 'my-vm');
  assert.equal(api.security_groups.length, 1);
  await waitFor(() => syncs.length > before);
  const last = syncs[syncs.length - 1]!;
  const ps = last.ports.find((x) => x.id === p.id)!;
  assert.equal(ps.device, p.device);
  assert.deepEqual(ps.security_group_ids, api.security_groups);
  const sg = last.security_groups.find((g) => g.id === api.security_groups[0])!;
  assert.ok(sg.member_ips.includes(p.fixed_ips[0]!.ip_address));
  assert.equal(sg.rules.length, 4);
  const dhcpHost = last.networks.find((n) => n.id === net.id)!.dhcp_hosts.find((h) => h.port_id === p.id)!;
  assert.equal(dhcpHost.hostname, 'my-vm');
  assert.equal((await call<{ ports: InstancePort[] }>('instance_ports', { instance_id: 'vm-1' })).ports[0]!.id, p.id);
  // metadata lookups by network and by router
  const ip = p.fixed_ips[0]!.ip_address;
  assert.deepEqual(await call('lookup_instance', { network_id: net.id, ip }), { instance_id: 'vm-1', project_id: c.demo.projectId });
  assert.deepEqual(await call('lookup_instance', { router_id: router.id, ip }), { instance_id: 'vm-1', project_id: c.demo.projectId });
  assert.deepEqual(await call('lookup_instance', { network_id: net.id, ip: '10.80.0.250' }), { instance_id: null, project_id: null });
  // a floating IP shows in compute's view
  const f = (await c.ok('POST', '/floatingips', { floatingip: { floating_network_id: pub.id, port_id: p.id } }, c.demo.token, 201)).floatingip;
  const again = (await call<{ ports: InstancePort[] }>('instance_ports', { instance_id: 'vm-1' })).ports[0]!;
  assert.deepEqual(again.fixed_ips[0]!.floating_ips, [f.floating_ip_address]);
  // many servers' ports in one call (server lists): every id answers, with [] when it has none
  const many = await call<{ ports: Record<string, InstancePort[]> }>('ports_of_instances', { instance_ids: ['vm-1', 'vm-none'] });
  assert.deepEqual(Object.keys(many.ports).sort(), ['vm-1', 'vm-none']);
  assert.deepEqual(many.ports['vm-1'], [again]);
  assert.deepEqual(many.ports['vm-none'], []);
  await c.hostsFlush();
  const fs = syncs[syncs.length - 1]!.routers.find((r) => r.id === router.id)!.floating_ips;
  assert.deepEqual(fs.map((x) => [x.floating_ip_address, x.fixed_ip_address]), [[f.floating_ip_address, ip]]);
  assert.ok(syncs.every((s, i) => i === 0 || s.generation > syncs[i - 1]!.generation), 'generations increase');
  await c.ok('DELETE', `/floatingips/${f.id}`, undefined, c.demo.token, 204);
});

test('allocate errors reach compute with a status, a type and a message, and leave nothing behind', async () => {
  const before = await c.snapshot();
  await assert.rejects(
    call('allocate_for_instance', { instance_id: 'vm-x', project_id: c.demo.projectId, host: 'host1', hostname: 'x', requested: [{ network_id: net.id }, { network_id: net.id, fixed_ip: '10.80.0.1' }], security_groups: [] }),
    (e: unknown) => {
      assert.ok(e instanceof RemoteError);
      assert.deepEqual([e.status, e.code], [409, 'IpAddressAlreadyAllocated']);
      assert.match(e.message, /10\.80\.0\.1 already allocated/);
      return true;
    },
  );
  await assert.rejects(
    call('allocate_for_instance', { instance_id: 'vm-x', project_id: c.demo.projectId, host: 'host1', hostname: 'x', requested: [{ network_id: pub.id }], security_groups: [] }),
    (e: RemoteError) => e.status === 403,
  );
  await assert.rejects(
    call('allocate_for_instance', { instance_id: 'vm-x', project_id: c.demo.projectId, host: 'host1', hostname: 'x', requested: [{ network_id: net.id }], security_groups: ['nope'] }),
    (e: RemoteError) => e.code === 'SecurityGroupNotFound',
  );
  assert.deepEqual(await c.snapshot(), before);
  // two usable networks: Nova's "Multiple possible networks found"
  const second = (await c.ok('POST', '/networks', { network: { name: 'bus-net2' } }, c.demo.token, 201)).network;
  await assert.rejects(
    call('allocate_for_instance', { instance_id: 'vm-x', project_id: c.demo.projectId, host: 'host1', hostname: 'x', requested: 'auto', security_groups: [] }),
    (e: RemoteError) => e.code === 'NetworkAmbiguous' && /Multiple possible networks/.test(e.message),
  );
  assert.deepEqual(await call('allocate_for_instance', { instance_id: 'vm-x', project_id: c.demo.projectId, host: 'host1', hostname: 'x', requested: 'none', security_groups: [] }), { ports: [] });
  await c.ok('DELETE', `/networks/${second.id}`, undefined, c.demo.token, 204);
});

test('attach/detach and deallocate: created ports go, user ports stay unbound', async () => {
  const userPort = (await c.ok('POST', '/ports', { port: { network_id: net.id, name: 'mine' } }, c.demo.token, 201)).port;
  const a = await call<{ port: InstancePort }>('attach_port', { instance_id: 'vm-1', host: 'host1', project_id: c.demo.projectId, port_id: userPort.id });
  assert.equal(a.port.id, userPort.id);
  const b = await call<{ port: InstancePort }>('attach_port', { instance_id: 'vm-1', host: 'host1', project_id: c.demo.projectId, network_id: net.id, fixed_ip: '10.80.0.77' });
  assert.equal(b.port.fixed_ips[0]!.ip_address, '10.80.0.77');
  assert.equal((await call<{ ports: InstancePort[] }>('instance_ports', { instance_id: 'vm-1' })).ports.length, 3);
  await assert.rejects(call('attach_port', { instance_id: 'vm-2', host: 'host1', project_id: c.demo.projectId, port_id: userPort.id }), (e: RemoteError) => e.code === 'PortInUse');
  await call('detach_port', { instance_id: 'vm-1', port_id: b.port.id });
  c.expectError(await c.api('GET', `/ports/${b.port.id}`, undefined, c.demo.token), 404, 'PortNotFound');
  await call('deallocate_for_instance', { instance_id: 'vm-1', host: 'host1' });
  assert.equal((await call<{ ports: InstancePort[] }>('instance_ports', { instance_id: 'vm-1' })).ports.length, 0);
  const kept = (await c.ok('GET', `/ports/${userPort.id}`, undefined, c.admin.token, 200)).port;
  assert.equal(kept.device_id, '');
  assert.equal(kept['binding:host_id'], '');
  await c.ok('DELETE', `/ports/${userPort.id}`, undefined, c.demo.token, 204);
  await c.hostsFlush();
  assert.equal(syncs[syncs.length - 1]!.ports.length, 0);
});

test('seedNetworks is idempotent: public, private, router1', async () => {
  const ids = { adminProjectId: c.admin.projectId, demoProjectId: c.demo.projectId };
  await c.cloud.network.seedNetworks(ids);
  await c.cloud.network.seedNetworks(ids);
  const nets = (await c.ok('GET', '/networks', undefined, c.admin.token, 200)).networks;
  const pubs = nets.filter((n: { name: string }) => n.name === 'public');
  assert.equal(pubs.length, 1);
  assert.equal(pubs[0]['router:external'], true);
  assert.equal(pubs[0].shared, false);
  assert.equal(pubs[0]['provider:network_type'], 'flat');
  const subs = (await c.ok('GET', `/subnets?network_id=${pubs[0].id}`, undefined, c.admin.token, 200)).subnets;
  assert.deepEqual([subs[0].name, subs[0].cidr, subs[0].gateway_ip, subs[0].enable_dhcp], ['public-subnet', '172.24.4.0/24', '172.24.4.1', false]);
  assert.deepEqual(subs[0].allocation_pools, [{ start: '172.24.4.10', end: '172.24.4.250' }]);
  const priv = (await c.ok('GET', '/networks?name=private', undefined, c.demo.token, 200)).networks;
  assert.equal(priv.length, 1);
  const ps = (await c.ok('GET', `/subnets?network_id=${priv[0].id}`, undefined, c.demo.token, 200)).subnets;
  assert.deepEqual([ps[0].name, ps[0].cidr, ps[0].enable_dhcp, ps[0].dns_nameservers], ['private-subnet', '10.0.0.0/24', true, []]);
  const routers = (await c.ok('GET', '/routers?name=router1', undefined, c.demo.token, 200)).routers;
  assert.equal(routers.length, 1);
  assert.equal(routers[0].external_gateway_info.network_id, pubs[0].id);
  assert.equal(routers[0].external_gateway_info.external_fixed_ips[0].ip_address, '172.24.4.10');
  const ifaces = (await c.ok('GET', `/ports?device_id=${routers[0].id}&device_owner=network:router_interface`, undefined, c.demo.token, 200)).ports;
  assert.equal(ifaces.length, 1);
  assert.equal(ifaces[0].fixed_ips[0].ip_address, '10.0.0.1');
});

test('DHCP and routers move to a live agent when theirs stops heartbeating', async () => {
  await call('register_agent', { host: 'host2' });
  const routerHost = async () => (await c.cloud.database.db.selectFrom('neutron_routers').select('l3_host').where('id', '=', router.id).executeTakeFirstOrThrow()).l3_host;
  assert.equal(await routerHost(), 'host1', 'the first registered agent hosts it');
  // host1 falls silent for longer than the agent down time
  await c.cloud.database.db.updateTable('neutron_agents').set({ heartbeat_at: Date.now() - 10 * 60_000 }).where('host', '=', 'host1').execute();
  await call('heartbeat', { host: 'host2' });
  const s2 = await call<HostNetworkState>('get_host_state', { host: 'host2' });
  assert.equal(await routerHost(), 'host2');
  assert.ok(s2.routers.some((r) => r.id === router.id));
  const agents = (await c.ok('GET', '/agents', undefined, c.admin.token, 200)).agents;
  assert.deepEqual(agents.map((a: { host: string; alive: boolean }) => [a.host, a.alive]).sort(), [['host1', false], ['host2', true]]);
  // host1 comes back: it does not take the work back (no flapping)
  await call('register_agent', { host: 'host1' });
  assert.equal(await routerHost(), 'host2');
});
