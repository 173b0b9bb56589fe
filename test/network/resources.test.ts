/**
 * CRUD of every Networking API resource, the version documents,
 * extensions, quotas, tags, and who may see and do what.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNetCloud, type NetCloud } from './helpers.js';

let c: NetCloud;
before(async () => {
  c = await startNetCloud();
});
after(async () => {
  await c?.stop();
});

test('version documents, extensions and availability zones', async () => {
  const root = await c.inject('GET', '/network/');
  assert.equal(root.status, 200);
  assert.equal(root.json.versions[0].id, 'v2.0');
  assert.match(root.json.versions[0].links[0].href, /\/network\/v2\.0\/$/);
  const v2 = await c.inject('GET', '/network/v2.0/');
  assert.ok(v2.json.resources.some((r: { collection: string }) => r.collection === 'networks'));
  const ext = await c.ok('GET', '/extensions', undefined, c.demo.token, 200);
  const aliases = ext.extensions.map((e: { alias: string }) => e.alias);
  for (const a of ['router', 'external-net', 'security-group', 'binding', 'port-security', 'quotas', 'standard-attr-tag', 'extraroute', 'ext-gw-mode'])
    assert.ok(aliases.includes(a), a);
  assert.equal((await c.ok('GET', '/extensions/router', undefined, c.demo.token, 200)).extension.alias, 'router');
  c.expectError(await c.api('GET', '/extensions/qos', undefined, c.demo.token), 404, 'NotFound');
  const az = await c.ok('GET', '/availability_zones', undefined, c.demo.token, 200);
  assert.deepEqual(az.availability_zones.map((z: { resource: string }) => z.resource).sort(), ['network', 'router']);
  // the catalog names the endpoint
  const cat = await c.inject('GET', '/identity/v3/auth/catalog', { token: c.demo.token });
  const net = cat.json.catalog.find((s: { type: string }) => s.type === 'network');
  assert.equal(net.name, 'neutron');
  assert.match(net.endpoints[0].url, /\/network$/);
});

test('network CRUD, provider attributes and policy', async () => {
  const n = (await c.ok('POST', '/networks', { network: { name: 'crud-net', description: 'd', mtu: 1400 } }, c.demo.token, 201)).network;
  assert.equal(n.name, 'crud-net');
  assert.equal(n.mtu, 1400);
  assert.equal(n.status, 'ACTIVE');
  assert.equal(n.project_id, c.demo.projectId);
  assert.equal(n.tenant_id, c.demo.projectId);
  assert.equal(n['router:external'], false);
  assert.equal(n.revision_number, 1);
  assert.equal(n['provider:network_type'], undefined, 'provider attributes are admin-only');
  const shown = (await c.ok('GET', `/networks/${n.id}`, undefined, c.admin.token, 200)).network;
  assert.equal(shown['provider:network_type'], 'local');
  const upd = (await c.ok('PUT', `/networks/${n.id}`, { network: { name: 'crud-net2', admin_state_up: false } }, c.demo.token, 200)).network;
  assert.equal(upd.name, 'crud-net2');
  assert.equal(upd.admin_state_up, false);
  assert.equal(upd.revision_number, 2);
  // unknown and read-only attributes
  c.expectError(await c.api('POST', '/networks', { network: { name: 'x', bogus: 1 } }, c.demo.token), 400, 'BadRequest', /Unrecognized attribute/);
  c.expectError(await c.api('PUT', `/networks/${n.id}`, { network: { 'provider:network_type': 'flat' } }, c.admin.token), 400, 'BadRequest', /not allowed in PUT/);
  c.expectError(await c.api('POST', '/networks', { network: { mtu: 9000 } }, c.demo.token), 400, 'InvalidInput', /MTU is too big/);
  // demo may not create external/shared/provider networks
  const before = await c.snapshot();
  c.expectError(await c.api('POST', '/networks', { network: { name: 'ext', 'router:external': true } }, c.demo.token), 403, 'Forbidden');
  c.expectError(await c.api('POST', '/networks', { network: { name: 'sh', shared: true } }, c.demo.token), 403, 'Forbidden');
  c.expectError(await c.api('POST', '/networks', { network: { 'provider:network_type': 'vlan', 'provider:physical_network': 'physnet1' } }, c.demo.token), 403, 'Forbidden');
  assert.deepEqual(await c.snapshot(), before);
  // admin can: flat needs a physical network; one flat network per physical network; VLANs allocated
  c.expectError(await c.api('POST', '/networks', { network: { 'provider:network_type': 'flat' } }), 400, 'InvalidInput', /physical_network required/);
  c.expectError(await c.api('POST', '/networks', { network: { 'provider:network_type': 'gre' } }), 400, 'InvalidInput', /not supported/);
  const flat = (await c.ok('POST', '/networks', { network: { name: 'flat1', 'provider:network_type': 'flat', 'provider:physical_network': 'physnet9' } }, undefined, 201)).network;
  c.expectError(await c.api('POST', '/networks', { network: { 'provider:network_type': 'flat', 'provider:physical_network': 'physnet9' } }), 409, 'FlatNetworkInUse');
  const vlan = (await c.ok('POST', '/networks', { network: { 'provider:network_type': 'vlan', 'provider:physical_network': 'physnet1' } }, undefined, 201)).network;
  assert.equal(vlan['provider:segmentation_id'], 1);
  const vx = (await c.ok('POST', '/networks', { network: { 'provider:network_type': 'vxlan', 'provider:segmentation_id': 77 } }, undefined, 201)).network;
  assert.equal(vx.mtu, 1450);
  c.expectError(await c.api('POST', '/networks', { network: { 'provider:network_type': 'vxlan', 'provider:segmentation_id': 77 } }), 409, 'TunnelIdInUse');
  // demo cannot see the admin's private networks, and gets 404 (not 403) for them
  const demoList = (await c.ok('GET', '/networks', undefined, c.demo.token, 200)).networks.map((x: { id: string }) => x.id);
  assert.ok(demoList.includes(n.id));
  assert.ok(!demoList.includes(flat.id));
  c.expectError(await c.api('GET', `/networks/${flat.id}`, undefined, c.demo.token), 404, 'NetworkNotFound');
  c.expectError(await c.api('DELETE', `/networks/${flat.id}`, undefined, c.demo.token), 404, 'NetworkNotFound');
  // an admin-made shared network is visible and usable, but not writable
  const shared = (await c.ok('POST', '/networks', { network: { name: 'shared1', shared: true } }, undefined, 201)).network;
  assert.ok((await c.ok('GET', '/networks', undefined, c.demo.token, 200)).networks.some((x: { id: string }) => x.id === shared.id));
  c.expectError(await c.api('PUT', `/networks/${shared.id}`, { network: { name: 'mine' } }, c.demo.token), 403, 'Forbidden');
  for (const x of [n, flat, vlan, vx, shared]) await c.ok('DELETE', `/networks/${x.id}`, undefined, c.admin.token, 204);
  c.expectError(await c.api('GET', `/networks/${n.id}`), 404, 'NetworkNotFound');
});

test('subnet CRUD: pools, gateway, DNS, host routes, IPv6, DHCP port', async () => {
  const n = (await c.ok('POST', '/networks', { network: { name: 'sn-net' } }, c.demo.token, 201)).network;
  const s = (
    await c.ok('POST', '/subnets', { subnet: { network_id: n.id, ip_version: 4, cidr: '10.20.0.0/24', name: 's4', dns_nameservers: ['8.8.8.8'], host_routes: [{ destination: '10.99.0.0/16', nexthop: '10.20.0.254' }], allocation_pools: [{ start: '10.20.0.10', end: '10.20.0.100' }] } }, c.demo.token, 201)
  ).subnet;
  assert.equal(s.gateway_ip, '10.20.0.1');
  assert.deepEqual(s.allocation_pools, [{ start: '10.20.0.10', end: '10.20.0.100' }]);
  assert.deepEqual(s.dns_nameservers, ['8.8.8.8']);
  assert.equal(s.enable_dhcp, true);
  // the DHCP port appears, with an address from the pool
  const ports = (await c.ok('GET', `/ports?network_id=${n.id}&device_owner=network:dhcp`, undefined, c.demo.token, 200)).ports;
  assert.equal(ports.length, 1);
  assert.equal(ports[0].fixed_ips[0].ip_address, '10.20.0.10');
  const nets = (await c.ok('GET', `/networks/${n.id}`, undefined, c.demo.token, 200)).network;
  assert.deepEqual(nets.subnets, [s.id]);
  // default pool, gateway null, v6
  const s2 = (await c.ok('POST', '/subnets', { subnet: { network_id: n.id, ip_version: 4, cidr: '10.21.0.0/29', gateway_ip: null, enable_dhcp: false } }, c.demo.token, 201)).subnet;
  assert.equal(s2.gateway_ip, null);
  assert.deepEqual(s2.allocation_pools, [{ start: '10.21.0.1', end: '10.21.0.6' }]);
  const s6 = (await c.ok('POST', '/subnets', { subnet: { network_id: n.id, ip_version: 6, cidr: '2001:db8:1::/64', ipv6_address_mode: 'slaac', ipv6_ra_mode: 'slaac' } }, c.demo.token, 201)).subnet;
  assert.equal(s6.gateway_ip, '2001:db8:1::1');
  assert.equal(s6.ipv6_address_mode, 'slaac');
  // a port gets v4 and an EUI-64 v6 address
  const p = (await c.ok('POST', '/ports', { port: { network_id: n.id } }, c.demo.token, 201)).port;
  assert.equal(p.fixed_ips.length, 2);
  assert.ok(p.fixed_ips.some((f: { ip_address: string }) => f.ip_address.startsWith('2001:db8:1:') && f.ip_address.includes('3eff:fe')), JSON.stringify(p.fixed_ips));
  // update
  const u = (await c.ok('PUT', `/subnets/${s.id}`, { subnet: { name: 's4b', dns_nameservers: [], allocation_pools: [{ start: '10.20.0.10', end: '10.20.0.200' }] } }, c.demo.token, 200)).subnet;
  assert.equal(u.name, 's4b');
  assert.deepEqual(u.allocation_pools, [{ start: '10.20.0.10', end: '10.20.0.200' }]);
  // in use: 409; after the port goes, deletable; the DHCP port goes with the last DHCP subnet
  c.expectError(await c.api('DELETE', `/subnets/${s.id}`, undefined, c.demo.token), 409, 'SubnetInUse');
  await c.ok('DELETE', `/ports/${p.id}`, undefined, c.demo.token, 204);
  for (const x of [s, s2, s6]) await c.ok('DELETE', `/subnets/${x.id}`, undefined, c.demo.token, 204);
  assert.equal((await c.ok('GET', `/ports?network_id=${n.id}`, undefined, c.demo.token, 200)).ports.length, 0);
  await c.ok('DELETE', `/networks/${n.id}`, undefined, c.demo.token, 204);
});

test('port CRUD: MAC, fixed IPs, security groups, address pairs, binding', async () => {
  const n = (await c.ok('POST', '/networks', { network: { name: 'p-net' } }, c.demo.token, 201)).network;
  const s = (await c.ok('POST', '/subnets', { subnet: { network_id: n.id, ip_version: 4, cidr: '10.30.0.0/24', enable_dhcp: false } }, c.demo.token, 201)).subnet;
  const p = (await c.ok('POST', '/ports', { port: { network_id: n.id, name: 'p1', fixed_ips: [{ subnet_id: s.id, ip_address: '10.30.0.9' }], allowed_address_pairs: [{ ip_address: '10.30.0.200/32' }], dns_name: 'vm1' } }, c.demo.token, 201)).port;
  assert.match(p.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
  assert.deepEqual(p.fixed_ips, [{ subnet_id: s.id, ip_address: '10.30.0.9' }]);
  assert.equal(p.security_groups.length, 1, 'the default group');
  assert.deepEqual(p.allowed_address_pairs, [{ ip_address: '10.30.0.200', mac_address: p.mac_address }]);
  assert.equal(p.dns_assignment[0].hostname, 'vm1');
  assert.equal(p.status, 'DOWN');
  assert.equal(p['binding:vif_type'], undefined, 'binding attributes are admin-only');
  const sg = (await c.ok('GET', '/security-groups?name=default', undefined, c.demo.token, 200)).security_groups[0];
  assert.deepEqual(p.security_groups, [sg.id]);
  // admin binds it to a host
  const b = (await c.ok('PUT', `/ports/${p.id}`, { port: { 'binding:host_id': 'host1', device_id: 'vm-1', device_owner: 'compute:nova' } }, c.admin.token, 200)).port;
  assert.equal(b['binding:host_id'], 'host1');
  assert.equal(b['binding:vif_type'], 'tap');
  assert.equal(b.status, 'ACTIVE');
  c.expectError(await c.api('PUT', `/ports/${p.id}`, { port: { 'binding:host_id': 'host2' } }, c.demo.token), 403, 'Forbidden');
  // change addresses: keep one, add one
  const u = (await c.ok('PUT', `/ports/${p.id}`, { port: { fixed_ips: [{ ip_address: '10.30.0.9' }, { subnet_id: s.id }] } }, c.demo.token, 200)).port;
  assert.equal(u.fixed_ips.length, 2);
  // port security off needs no groups
  c.expectError(await c.api('PUT', `/ports/${p.id}`, { port: { port_security_enabled: false } }, c.demo.token), 409, 'PortSecurityPortHasSecurityGroup');
  const off = (await c.ok('PUT', `/ports/${p.id}`, { port: { port_security_enabled: false, security_groups: [], allowed_address_pairs: [] } }, c.demo.token, 200)).port;
  assert.equal(off.port_security_enabled, false);
  assert.deepEqual(off.security_groups, []);
  // a chosen MAC; a taken MAC is 409
  const p2 = (await c.ok('POST', '/ports', { port: { network_id: n.id, mac_address: 'fa:16:3e:00:00:01' } }, c.demo.token, 201)).port;
  assert.equal(p2.mac_address, 'fa:16:3e:00:00:01');
  c.expectError(await c.api('POST', '/ports', { port: { network_id: n.id, mac_address: 'FA:16:3E:00:00:01' } }, c.demo.token), 409, 'MacAddressInUse');
  c.expectError(await c.api('POST', '/ports', { port: { network_id: n.id, security_groups: ['no-such-group'] } }, c.demo.token), 404, 'SecurityGroupNotFound');
  for (const x of [p, p2]) await c.ok('DELETE', `/ports/${x.id}`, undefined, c.demo.token, 204);
  c.expectError(await c.api('GET', `/ports/${p.id}`, undefined, c.demo.token), 404, 'PortNotFound');
  await c.ok('DELETE', `/networks/${n.id}`, undefined, c.demo.token, 204);
});

test('bulk port create: several ports in one request, all or none', async () => {
  const n1 = (await c.ok('POST', '/networks', { network: { name: 'bulk-1' } }, c.demo.token, 201)).network;
  const n2 = (await c.ok('POST', '/networks', { network: { name: 'bulk-2' } }, c.demo.token, 201)).network;
  const made = (await c.ok('POST', '/ports', { ports: [{ network_id: n1.id, name: 'a' }, { network_id: n2.id, name: 'b' }] }, c.demo.token, 201)).ports;
  assert.deepEqual(made.map((p: { network_id: string }) => p.network_id), [n1.id, n2.id]);
  assert.ok(made.every((p: { admin_state_up: boolean }) => p.admin_state_up));
  const before = await c.snapshot();
  // A bad item refuses the whole request before anything is made; a failure while creating undoes the ports made before it.
  c.expectError(await c.api('POST', '/ports', { ports: [{ network_id: n1.id }, { network_id: '00000000-0000-0000-0000-000000000000' }] }, c.demo.token), 404, 'NetworkNotFound');
  c.expectError(await c.api('POST', '/ports', { ports: [{ network_id: n1.id, name: 'x' }, { network_id: n2.id, mac_address: made[0].mac_address }, { network_id: n2.id, mac_address: made[0].mac_address }] }, c.demo.token), 409, 'MacAddressInUse');
  c.expectError(await c.api('POST', '/ports', { ports: [] }, c.demo.token), 400, 'BadRequest');
  assert.deepEqual(await c.snapshot(), before);
  for (const p of made) await c.ok('DELETE', `/ports/${p.id}`, undefined, c.demo.token, 204);
  for (const n of [n1, n2]) await c.ok('DELETE', `/networks/${n.id}`, undefined, c.demo.token, 204);
});

test('routers, interfaces, routes, gateway and floating IPs', async () => {
  const pub = (await c.ok('POST', '/networks', { network: { name: 'r-pub', 'router:external': true } }, c.admin.token, 201)).network;
  const pubSub = (await c.ok('POST', '/subnets', { subnet: { network_id: pub.id, ip_version: 4, cidr: '172.31.5.0/24', enable_dhcp: false } }, c.admin.token, 201)).subnet;
  const n = (await c.ok('POST', '/networks', { network: { name: 'r-net' } }, c.demo.token, 201)).network;
  const s = (await c.ok('POST', '/subnets', { subnet: { network_id: n.id, ip_version: 4, cidr: '10.40.0.0/24' } }, c.demo.token, 201)).subnet;
  const r = (await c.ok('POST', '/routers', { router: { name: 'r1' } }, c.demo.token, 201)).router;
  assert.equal(r.external_gateway_info, null);
  // gateway (non-admin may not choose SNAT or addresses)
  c.expectError(await c.api('PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: pub.id, enable_snat: false } } }, c.demo.token), 403, 'Forbidden');
  const g = (await c.ok('PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: pub.id } } }, c.demo.token, 200)).router;
  assert.equal(g.external_gateway_info.network_id, pub.id);
  assert.equal(g.external_gateway_info.enable_snat, true);
  assert.equal(g.external_gateway_info.external_fixed_ips[0].subnet_id, pubSub.id);
  c.expectError(await c.api('PUT', `/routers/${r.id}`, { router: { external_gateway_info: { network_id: n.id } } }, c.demo.token), 400, 'BadRequest', /not an external network/);
  // interface by subnet: a router_interface port on the gateway address
  const i = await c.ok('PUT', `/routers/${r.id}/add_router_interface`, { subnet_id: s.id }, c.demo.token, 200);
  assert.equal(i.subnet_id, s.id);
  const ip = (await c.ok('GET', `/ports/${i.port_id}`, undefined, c.demo.token, 200)).port;
  assert.equal(ip.device_owner, 'network:router_interface');
  assert.equal(ip.device_id, r.id);
  assert.equal(ip.fixed_ips[0].ip_address, '10.40.0.1');
  c.expectError(await c.api('DELETE', `/ports/${i.port_id}`, undefined, c.demo.token), 409, 'L3PortInUse');
  // static routes must go through a connected subnet
  c.expectError(await c.api('PUT', `/routers/${r.id}`, { router: { routes: [{ destination: '192.168.77.0/24', nexthop: '10.99.0.5' }] } }, c.demo.token), 400, 'InvalidRoutes');
  const rr = (await c.ok('PUT', `/routers/${r.id}`, { router: { routes: [{ destination: '192.168.77.0/24', nexthop: '10.40.0.5' }] } }, c.demo.token, 200)).router;
  assert.deepEqual(rr.routes, [{ destination: '192.168.77.0/24', nexthop: '10.40.0.5' }]);
  // "routes": null clears them (Tempest's cleanup does that), then they go back
  assert.deepEqual((await c.ok('PUT', `/routers/${r.id}`, { router: { routes: null } }, c.demo.token, 200)).router.routes, []);
  await c.ok('PUT', `/routers/${r.id}`, { router: { routes: rr.routes } }, c.demo.token, 200);
  // interface by port
  const n2 = (await c.ok('POST', '/networks', { network: { name: 'r-net2' } }, c.demo.token, 201)).network;
  await c.ok('POST', '/subnets', { subnet: { network_id: n2.id, ip_version: 4, cidr: '10.41.0.0/24', enable_dhcp: false } }, c.demo.token, 201);
  const pp = (await c.ok('POST', '/ports', { port: { network_id: n2.id } }, c.demo.token, 201)).port;
  const i2 = await c.ok('PUT', `/routers/${r.id}/add_router_interface`, { port_id: pp.id }, c.demo.token, 200);
  assert.equal(i2.port_id, pp.id);
  // floating IP: create, associate, disassociate
  const vm = (await c.ok('POST', '/ports', { port: { network_id: n.id } }, c.demo.token, 201)).port;
  const f = (await c.ok('POST', '/floatingips', { floatingip: { floating_network_id: pub.id } }, c.demo.token, 201)).floatingip;
  assert.equal(f.status, 'DOWN');
  assert.match(f.floating_ip_address, /^172\.31\.5\./);
  c.expectError(await c.api('POST', '/floatingips', { floatingip: { floating_network_id: pub.id, floating_ip_address: '172.31.5.99' } }, c.demo.token), 403, 'Forbidden');
  const fa = (await c.ok('PUT', `/floatingips/${f.id}`, { floatingip: { port_id: vm.id } }, c.demo.token, 200)).floatingip;
  assert.equal(fa.port_id, vm.id);
  assert.equal(fa.fixed_ip_address, vm.fixed_ips[0].ip_address);
  assert.equal(fa.router_id, r.id);
  assert.equal(fa.status, 'ACTIVE');
  c.expectError(await c.api('PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: s.id }, c.demo.token), 409, 'RouterInterfaceInUseByFloatingIP');
  c.expectError(await c.api('PUT', `/routers/${r.id}`, { router: { external_gateway_info: {} } }, c.demo.token), 409, 'RouterExternalGatewayInUseByFloatingIp');
  const fd = (await c.ok('PUT', `/floatingips/${f.id}`, { floatingip: { port_id: null } }, c.demo.token, 200)).floatingip;
  assert.equal(fd.port_id, null);
  // the floating IP's own port is listed as in Neutron
  const fport = (await c.ok('GET', `/ports?device_owner=network:floatingip&device_id=${f.id}`, undefined, c.admin.token, 200)).ports;
  assert.equal(fport.length, 1);
  assert.equal(fport[0].fixed_ips[0].ip_address, f.floating_ip_address);
  // teardown, including RouterInUse while interfaces remain
  c.expectError(await c.api('DELETE', `/routers/${r.id}`, undefined, c.demo.token), 409, 'RouterInUse');
  await c.ok('DELETE', `/floatingips/${f.id}`, undefined, c.demo.token, 204);
  await c.ok('PUT', `/routers/${r.id}`, { router: { routes: [] } }, c.demo.token, 200);
  await c.ok('PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: s.id }, c.demo.token, 200);
  await c.ok('PUT', `/routers/${r.id}/remove_router_interface`, { port_id: pp.id }, c.demo.token, 200);
  c.expectError(await c.api('PUT', `/routers/${r.id}/remove_router_interface`, { subnet_id: s.id }, c.demo.token), 404, 'RouterInterfaceNotFoundForSubnet');
  await c.ok('DELETE', `/routers/${r.id}`, undefined, c.demo.token, 204);
  await c.ok('DELETE', `/ports/${vm.id}`, undefined, c.demo.token, 204);
  for (const x of [n, n2]) await c.ok('DELETE', `/networks/${x.id}`, undefined, c.demo.token, 204);
  await c.ok('DELETE', `/networks/${pub.id}`, undefined, c.admin.token, 204);
  assert.equal((await c.ok('GET', '/ports', undefined, c.admin.token, 200)).ports.filter((p: { network_id: string }) => [pub.id, n.id, n2.id].includes(p.network_id)).length, 0);
});

test('security groups and rules: default group, validation, duplicates', async () => {
  const groups = (await c.ok('GET', '/security-groups', undefined, c.demo.token, 200)).security_groups;
  const dflt = groups.find((g: { name: string }) => g.name === 'default');
  const rules = dflt.security_group_rules.map((r: Record<string, unknown>) => `${r.direction}/${r.ethertype}/${r.remote_group_id === dflt.id ? 'self' : String(r.remote_group_id)}`).sort();
  assert.deepEqual(rules, ['egress/IPv4/null', 'egress/IPv6/null', 'ingress/IPv4/self', 'ingress/IPv6/self']);
  c.expectError(await c.api('DELETE', `/security-groups/${dflt.id}`, undefined, c.demo.token), 409, 'SecurityGroupCannotRemoveDefault');
  // an admin may remove a default group no port uses (Tempest's credential cleanup does)
  const adminDefault = (await c.ok('GET', '/security-groups?name=default', undefined, c.admin.token, 200)).security_groups.find((x: { project_id: string }) => x.project_id === c.admin.projectId);
  assert.ok(adminDefault, 'the admin project has its default group');
  assert.equal((await c.api('DELETE', `/security-groups/${adminDefault.id}`, undefined, c.admin.token)).status, 204);
  assert.equal((await c.api('GET', `/security-groups/${adminDefault.id}`, undefined, c.admin.token)).status, 404);
  const g = (await c.ok('POST', '/security-groups', { security_group: { name: 'web', description: 'w' } }, c.demo.token, 201)).security_group;
  assert.equal(g.security_group_rules.length, 2, 'egress rules');
  const rule = (await c.ok('POST', '/security-group-rules', { security_group_rule: { security_group_id: g.id, direction: 'ingress', protocol: 'tcp', port_range_min: 80, port_range_max: 80, remote_ip_prefix: '0.0.0.0/0' } }, c.demo.token, 201)).security_group_rule;
  assert.equal(rule.protocol, 'tcp');
  assert.equal(rule.ethertype, 'IPv4');
  const before = await c.snapshot();
  const bad: Array<[Record<string, unknown>, number, string]> = [
    [{ direction: 'ingress', protocol: 'tcp', port_range_min: 80, port_range_max: 80 }, 409, 'SecurityGroupRuleExists'],
    [{ direction: 'sideways' }, 400, 'BadRequest'],
    [{ direction: 'ingress', protocol: 'foo' }, 400, 'SecurityGroupRuleInvalidProtocol'],
    [{ direction: 'ingress', protocol: '300' }, 400, 'SecurityGroupRuleInvalidProtocol'],
    [{ direction: 'ingress', protocol: 'tcp', port_range_min: 90, port_range_max: 80 }, 400, 'SecurityGroupInvalidPortRange'],
    [{ direction: 'ingress', port_range_min: 80, port_range_max: 80 }, 400, 'SecurityGroupProtocolRequiredWithPorts'],
    [{ direction: 'ingress', protocol: 'gre', port_range_min: 80, port_range_max: 80 }, 400, 'SecurityGroupInvalidProtocolForPortRange'],
    [{ direction: 'ingress', protocol: 'icmp', port_range_max: 3 }, 400, 'SecurityGroupMissingIcmpType'],
    [{ direction: 'ingress', remote_ip_prefix: '10.0.0.0/8', remote_group_id: g.id }, 400, 'SecurityGroupRemoteGroupAndRemoteIpPrefix'],
    [{ direction: 'ingress', ethertype: 'IPv6', remote_ip_prefix: '10.0.0.0/8' }, 400, 'SecurityGroupRuleParameterConflict'],
    [{ direction: 'ingress', remote_group_id: '00000000-0000-0000-0000-000000000000' }, 404, 'SecurityGroupNotFound'],
  ];
  for (const [body, status, type] of bad)
    c.expectError(await c.api('POST', '/security-group-rules', { security_group_rule: { security_group_id: g.id, ...body } }, c.demo.token), status, type);
  // Out-of-range ports in Neutron's words (Tempest looks for them).
  for (const [min, max, word] of [[-16, 80, 'port -16'], [80, 65536, 'port 65536']] as const) {
    const r = await c.api('POST', '/security-group-rules', { security_group_rule: { security_group_id: g.id, direction: 'ingress', protocol: 'tcp', port_range_min: min, port_range_max: max } }, c.demo.token);
    c.expectError(r, 400, 'BadRequest', new RegExp(`Invalid value for ${word}`));
  }
  assert.deepEqual(await c.snapshot(), before);
  // protocol numbers and names; remote group
  await c.ok('POST', '/security-group-rules', { security_group_rule: { security_group_id: g.id, direction: 'ingress', protocol: '17', port_range_min: 53, port_range_max: 53 } }, c.demo.token, 201);
  await c.ok('POST', '/security-group-rules', { security_group_rule: { security_group_id: g.id, direction: 'ingress', ethertype: 'IPv6', protocol: 'ipv6-icmp' } }, c.demo.token, 201);
  await c.ok('POST', '/security-group-rules', { security_group_rule: { security_group_id: g.id, direction: 'ingress', remote_group_id: dflt.id } }, c.demo.token, 201);
  await c.ok('DELETE', `/security-group-rules/${rule.id}`, undefined, c.demo.token, 204);
  c.expectError(await c.api('GET', `/security-group-rules/${rule.id}`, undefined, c.demo.token), 404, 'SecurityGroupRuleNotFound');
  const up = (await c.ok('PUT', `/security-groups/${g.id}`, { security_group: { name: 'web2' } }, c.demo.token, 200)).security_group;
  assert.equal(up.name, 'web2');
  // in use by a port
  const n = (await c.ok('POST', '/networks', { network: { name: 'sg-net' } }, c.demo.token, 201)).network;
  const p = (await c.ok('POST', '/ports', { port: { network_id: n.id, security_groups: [g.id] } }, c.demo.token, 201)).port;
  c.expectError(await c.api('DELETE', `/security-groups/${g.id}`, undefined, c.demo.token), 409, 'SecurityGroupInUse');
  await c.ok('DELETE', `/ports/${p.id}`, undefined, c.demo.token, 204);
  await c.ok('DELETE', `/security-groups/${g.id}`, undefined, c.demo.token, 204);
  await c.ok('DELETE', `/networks/${n.id}`, undefined, c.demo.token, 204);
  // another project cannot see the demo's groups
  assert.ok(!(await c.ok('GET', '/security-groups', undefined, c.admin.token, 200)).security_groups.some((x: { id: string; project_id: string }) => x.project_id === c.admin.projectId && x.id === dflt.id));
});

test('quotas: show, defaults, details, set, enforcement (409 OverQuota), delete', async () => {
  const pid = c.demo.projectId;
  const q = (await c.ok('GET', `/quotas/${pid}`, undefined, c.demo.token, 200)).quota;
  assert.equal(q.network, 100);
  assert.equal(q.port, 500);
  assert.equal((await c.ok('GET', `/quotas/${pid}/default`, undefined, c.demo.token, 200)).quota.router, 10);
  c.expectError(await c.api('PUT', `/quotas/${pid}`, { quota: { network: 1 } }, c.demo.token), 403, 'Forbidden');
  c.expectError(await c.api('PUT', `/quotas/${pid}`, { quota: { widgets: 1 } }), 400, 'BadRequest');
  const used = (await c.ok('GET', `/quotas/${pid}/details`, undefined, c.demo.token, 200)).quota.network.used;
  await c.ok('PUT', `/quotas/${pid}`, { quota: { network: used + 1 } }, c.admin.token, 200);
  assert.ok((await c.ok('GET', '/quotas', undefined, c.admin.token, 200)).quotas.some((x: { project_id: string }) => x.project_id === pid));
  const n = (await c.ok('POST', '/networks', { network: { name: 'q1' } }, c.demo.token, 201)).network;
  const before = await c.snapshot();
  c.expectError(await c.api('POST', '/networks', { network: { name: 'q2' } }, c.demo.token), 409, 'OverQuota');
  assert.deepEqual(await c.snapshot(), before);
  const d = (await c.ok('GET', `/quotas/${pid}/details`, undefined, c.demo.token, 200)).quota;
  assert.deepEqual(d.network, { limit: used + 1, used: used + 1, reserved: 0 });
  await c.ok('DELETE', `/quotas/${pid}`, undefined, c.admin.token, 204);
  assert.equal((await c.ok('GET', `/quotas/${pid}`, undefined, c.demo.token, 200)).quota.network, 100);
  await c.ok('DELETE', `/networks/${n.id}`, undefined, c.demo.token, 204);
});

test('tags on every resource', async () => {
  const n = (await c.ok('POST', '/networks', { network: { name: 'tag-net', tags: ['a'] } }, c.demo.token, 201)).network;
  assert.deepEqual(n.tags, ['a']);
  assert.deepEqual((await c.ok('PUT', `/networks/${n.id}/tags`, { tags: ['x', 'y'] }, c.demo.token, 200)).tags, ['x', 'y']);
  assert.equal((await c.api('PUT', `/networks/${n.id}/tags/z`, undefined, c.demo.token)).status, 201);
  assert.equal((await c.api('GET', `/networks/${n.id}/tags/z`, undefined, c.demo.token)).status, 204);
  c.expectError(await c.api('GET', `/networks/${n.id}/tags/nope`, undefined, c.demo.token), 404, 'TagNotFound');
  assert.deepEqual((await c.ok('GET', `/networks/${n.id}/tags`, undefined, c.demo.token, 200)).tags, ['x', 'y', 'z']);
  assert.equal((await c.api('DELETE', `/networks/${n.id}/tags/x`, undefined, c.demo.token)).status, 204);
  const tagged = (await c.ok('GET', '/networks?tags=y,z', undefined, c.demo.token, 200)).networks;
  assert.deepEqual(tagged.map((x: { id: string }) => x.id), [n.id]);
  assert.equal((await c.ok('GET', '/networks?not-tags-any=z', undefined, c.demo.token, 200)).networks.filter((x: { id: string }) => x.id === n.id).length, 0);
  const p = (await c.ok('POST', '/ports', { port: { network_id: n.id, tags: ['vm'] } }, c.demo.token, 201)).port;
  assert.deepEqual(p.tags, ['vm']);
  const g = (await c.ok('POST', '/security-groups', { security_group: { name: 'tg' } }, c.demo.token, 201)).security_group;
  assert.deepEqual((await c.ok('PUT', `/security-groups/${g.id}/tags`, { tags: ['s'] }, c.demo.token, 200)).tags, ['s']);
  const r = (await c.ok('POST', '/routers', { router: { name: 'tr' } }, c.demo.token, 201)).router;
  assert.deepEqual((await c.ok('PUT', `/routers/${r.id}/tags`, { tags: ['r'] }, c.demo.token, 200)).tags, ['r']);
  assert.equal((await c.api('DELETE', `/routers/${r.id}/tags`, undefined, c.demo.token)).status, 204);
  c.expectError(await c.api('PUT', `/networks/${n.id}/tags/a,b`, undefined, c.demo.token), 400, 'BadRequest');
  await c.ok('DELETE', `/ports/${p.id}`, undefined, c.demo.token, 204);
  await c.ok('DELETE', `/routers/${r.id}`, undefined, c.demo.token, 204);
  await c.ok('DELETE', `/security-groups/${g.id}`, undefined, c.demo.token, 204);
  await c.ok('DELETE', `/networks/${n.id}`, undefined, c.demo.token, 204);
  assert.equal(await c.count('neutron_tags'), 0);
});

test('errors are Neutron-shaped, unauthenticated requests are 401', async () => {
  const r = await c.inject('GET', '/network/v2.0/networks');
  assert.equal(r.status, 401);
  c.expectError(await c.api('GET', '/networks/not-a-network', undefined, c.demo.token), 404, 'NetworkNotFound');
  c.expectError(await c.api('POST', '/networks', { nope: {} }, c.demo.token), 400, 'BadRequest');
  const bad = await c.inject('POST', '/network/v2.0/networks', { token: c.demo.token, body: '{bad', headers: { 'content-type': 'application/json' } });
  assert.equal(bad.status, 400);
  assert.ok(bad.json.NeutronError);
});
