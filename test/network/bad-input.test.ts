/**
 * The bad-input cases, each answered with the reference's error and
 * leaving every network table exactly as it was: an IP outside the subnet, a
 * duplicate fixed IP, a gateway outside the CIDR, a router interface on a
 * subnet already attached (and an overlapping one), a floating IP on a port
 * with no route to the external network; plus the in-use refusals.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNetCloud, type NetCloud } from './helpers.js';
import type { InjectResponse } from '../helpers/inproc.js';

let c: NetCloud;
let pub: { id: string };
let net: { id: string };
let subnet: { id: string };
let router: { id: string };
let port: { id: string };
before(async () => {
  c = await startNetCloud();
  pub = (await c.ok('POST', '/networks', { network: { name: 'bad-pub', 'router:external': true } }, c.admin.token, 201)).network;
  await c.ok('POST', '/subnets', { subnet: { network_id: pub.id, ip_version: 4, cidr: '172.29.0.0/24', enable_dhcp: false } }, c.admin.token, 201);
  net = (await c.ok('POST', '/networks', { network: { name: 'bad-net' } }, c.demo.token, 201)).network;
  subnet = (await c.ok('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.70.0.0/24' } }, c.demo.token, 201)).subnet;
  router = (await c.ok('POST', '/routers', { router: { name: 'bad-r', external_gateway_info: { network_id: pub.id } } }, c.demo.token, 201)).router;
  await c.ok('PUT', `/routers/${router.id}/add_router_interface`, { subnet_id: subnet.id }, c.demo.token, 200);
  port = (await c.ok('POST', '/ports', { port: { network_id: net.id, fixed_ips: [{ ip_address: '10.70.0.20' }] } }, c.demo.token, 201)).port;
});
after(async () => {
  await c?.stop();
});

/** Runs `req`, asserts the error, and that no network table changed. */
async function refused(req: () => Promise<InjectResponse>, status: number, type: string, message?: RegExp): Promise<void> {
  const before = await c.snapshot();
  c.expectError(await req(), status, type, message);
  assert.deepEqual(await c.snapshot(), before, 'nothing changed');
}

test('an IP outside the subnet', async () => {
  await refused(() => c.api('POST', '/ports', { port: { network_id: net.id, fixed_ips: [{ subnet_id: subnet.id, ip_address: '10.71.0.5' }] } }, c.demo.token), 400, 'InvalidIpForSubnet', /not a valid IP for the specified subnet/);
  await refused(() => c.api('POST', '/ports', { port: { network_id: net.id, fixed_ips: [{ ip_address: '192.0.2.5' }] } }, c.demo.token), 400, 'InvalidIpForNetwork');
  await refused(() => c.api('POST', '/ports', { port: { network_id: net.id, fixed_ips: [{ ip_address: '10.70.0.255' }] } }, c.demo.token), 400, 'InvalidIpForSubnet');
  await refused(() => c.api('PUT', `/ports/${port.id}`, { port: { fixed_ips: [{ ip_address: '10.99.0.1' }] } }, c.demo.token), 400, 'InvalidIpForNetwork');
  await refused(() => c.api('POST', '/ports', { port: { network_id: net.id, fixed_ips: [{ ip_address: 'not-an-ip' }] } }, c.demo.token), 400, 'BadRequest');
});

test('a duplicate fixed IP', async () => {
  await refused(() => c.api('POST', '/ports', { port: { network_id: net.id, fixed_ips: [{ ip_address: '10.70.0.20' }] } }, c.demo.token), 409, 'IpAddressAlreadyAllocated', /10\.70\.0\.20 already allocated/);
  // the router's address on the subnet is taken too
  await refused(() => c.api('POST', '/ports', { port: { network_id: net.id, fixed_ips: [{ ip_address: '10.70.0.1' }] } }, c.demo.token), 409, 'IpAddressAlreadyAllocated');
  // two of the same in one request
  await refused(() => c.api('POST', '/ports', { port: { network_id: net.id, fixed_ips: [{ ip_address: '10.70.0.30' }, { ip_address: '10.70.0.30' }] } }, c.demo.token), 400, 'InvalidInput');
});

test('a gateway outside the CIDR, and other bad subnets', async () => {
  await refused(() => c.api('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.72.0.0/24', gateway_ip: '10.73.0.1' } }, c.demo.token), 400, 'InvalidInput', /Gateway is not valid on subnet/);
  await refused(() => c.api('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.72.0.0/24', gateway_ip: '10.72.0.255' } }, c.demo.token), 400, 'InvalidInput');
  await refused(() => c.api('PUT', `/subnets/${subnet.id}`, { subnet: { gateway_ip: '10.1.1.1' } }, c.demo.token), 400, 'InvalidInput');
  await refused(() => c.api('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.72.0.1/24' } }, c.demo.token), 400, 'BadRequest', /isn't a recognized IP subnet cidr, '10\.72\.0\.0\/24' is recommended/);
  await refused(() => c.api('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.70.0.128/25' } }, c.demo.token), 400, 'InvalidInput', /overlaps with another subnet/);
  await refused(() => c.api('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 6, cidr: '10.72.0.0/24' } }, c.demo.token), 400, 'InvalidInput');
  await refused(() => c.api('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.72.0.0/24', allocation_pools: [{ start: '10.72.0.10', end: '10.72.1.5' }] } }, c.demo.token), 400, 'OutOfBoundsAllocationPool');
  await refused(() => c.api('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.72.0.0/24', allocation_pools: [{ start: '10.72.0.20', end: '10.72.0.10' }] } }, c.demo.token), 400, 'InvalidAllocationPool');
  await refused(() => c.api('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.72.0.0/24', allocation_pools: [{ start: '10.72.0.1', end: '10.72.0.10' }] } }, c.demo.token), 409, 'GatewayConflictWithAllocationPools');
  await refused(() => c.api('POST', '/subnets', { subnet: { network_id: net.id, ip_version: 4, cidr: '10.72.0.0/24', dns_nameservers: ['1.1.1.1', '1.1.1.1'] } }, c.demo.token), 400, 'BadRequest');
});

test('a router interface on a subnet already attached, or overlapping another', async () => {
  await refused(() => c.api('PUT', `/routers/${router.id}/add_router_interface`, { subnet_id: subnet.id }, c.demo.token), 400, 'BadRequest', /Router already has a port on subnet/);
  const other = (await c.ok('POST', '/networks', { network: { name: 'bad-net2' } }, c.demo.token, 201)).network;
  const overlapping = (await c.ok('POST', '/subnets', { subnet: { network_id: other.id, ip_version: 4, cidr: '10.70.0.0/25', enable_dhcp: false } }, c.demo.token, 201)).subnet;
  await refused(() => c.api('PUT', `/routers/${router.id}/add_router_interface`, { subnet_id: overlapping.id }, c.demo.token), 400, 'BadRequest', /overlaps with/);
  await refused(() => c.api('PUT', `/routers/${router.id}/add_router_interface`, {}, c.demo.token), 400, 'BadRequest');
  await refused(() => c.api('PUT', `/routers/${router.id}/add_router_interface`, { subnet_id: subnet.id, port_id: port.id }, c.demo.token), 400, 'BadRequest');
  await refused(() => c.api('PUT', `/routers/${router.id}/add_router_interface`, { port_id: port.id }, c.demo.token), 400, 'BadRequest', /Router already has a port on subnet/);
  const noGw = (await c.ok('POST', '/subnets', { subnet: { network_id: other.id, ip_version: 4, cidr: '10.74.0.0/24', gateway_ip: null, enable_dhcp: false } }, c.demo.token, 201)).subnet;
  await refused(() => c.api('PUT', `/routers/${router.id}/add_router_interface`, { subnet_id: noGw.id }, c.demo.token), 400, 'BadRequest', /must have a gateway IP/);
});

test('a floating IP on a port with no route to the external network', async () => {
  const lonely = (await c.ok('POST', '/networks', { network: { name: 'bad-lonely' } }, c.demo.token, 201)).network;
  await c.ok('POST', '/subnets', { subnet: { network_id: lonely.id, ip_version: 4, cidr: '10.75.0.0/24', enable_dhcp: false } }, c.demo.token, 201);
  const lp = (await c.ok('POST', '/ports', { port: { network_id: lonely.id } }, c.demo.token, 201)).port;
  await refused(() => c.api('POST', '/floatingips', { floatingip: { floating_network_id: pub.id, port_id: lp.id } }, c.demo.token), 404, 'ExternalGatewayForFloatingIPNotFound', /is not reachable from subnet/);
  const f = (await c.ok('POST', '/floatingips', { floatingip: { floating_network_id: pub.id } }, c.demo.token, 201)).floatingip;
  await refused(() => c.api('PUT', `/floatingips/${f.id}`, { floatingip: { port_id: lp.id } }, c.demo.token), 404, 'ExternalGatewayForFloatingIPNotFound');
  await refused(() => c.api('POST', '/floatingips', { floatingip: { floating_network_id: net.id } }, c.demo.token), 400, 'BadRequest', /not a valid external network/);
  // the reachable port works, and a second floating IP for the same address is refused
  await c.ok('PUT', `/floatingips/${f.id}`, { floatingip: { port_id: port.id } }, c.demo.token, 200);
  await refused(() => c.api('POST', '/floatingips', { floatingip: { floating_network_id: pub.id, port_id: port.id } }, c.demo.token), 409, 'FloatingIPPortAlreadyAssociated');
  await c.ok('PUT', `/floatingips/${f.id}`, { floatingip: { port_id: null } }, c.demo.token, 200);
});

test('in use: network with ports, subnet with addresses, router with interfaces', async () => {
  await refused(() => c.api('DELETE', `/networks/${net.id}`, undefined, c.demo.token), 409, 'NetworkInUse');
  await refused(() => c.api('DELETE', `/subnets/${subnet.id}`, undefined, c.demo.token), 409, 'SubnetInUse');
  await refused(() => c.api('DELETE', `/routers/${router.id}`, undefined, c.demo.token), 409, 'RouterInUse');
  await refused(() => c.api('PUT', `/networks/${pub.id}`, { network: { 'router:external': false } }, c.admin.token), 409, 'ExternalNetworkInUse');
});
