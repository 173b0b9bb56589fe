/**
 * List semantics (filters, fields, sorting, pagination with links) and IPAM
 * under concurrency: parallel port creates never share an address, and an
 * exhausted pool answers 409 IpAddressGenerationFailure changing nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNetCloud, type NetCloud } from './helpers.js';

let c: NetCloud;
const nets: Array<{ id: string; name: string }> = [];
before(async () => {
  c = await startNetCloud();
  for (const [name, admin_state_up] of [['l-charlie', true], ['l-alpha', false], ['l-bravo', true], ['l-delta', true], ['l-echo', false]] as const)
    nets.push((await c.ok('POST', '/networks', { network: { name, admin_state_up, description: 'list' } }, c.demo.token, 201)).network);
});
after(async () => {
  await c?.stop();
});

const names = (b: { networks: Array<{ name: string }> }) => b.networks.map((n) => n.name);

test('filters: any attribute, repeated values are alternatives, booleans', async () => {
  assert.deepEqual(names(await c.ok('GET', '/networks?name=l-alpha', undefined, c.demo.token, 200)), ['l-alpha']);
  assert.deepEqual(names(await c.ok('GET', '/networks?name=l-alpha&name=l-echo&sort_key=name', undefined, c.demo.token, 200)), ['l-alpha', 'l-echo']);
  assert.deepEqual(names(await c.ok('GET', '/networks?description=list&admin_state_up=False&sort_key=name', undefined, c.demo.token, 200)), ['l-alpha', 'l-echo']);
  assert.deepEqual(names(await c.ok('GET', `/networks?id=${nets[0]!.id}`, undefined, c.demo.token, 200)), ['l-charlie']);
  assert.equal((await c.ok('GET', `/networks?project_id=${c.admin.projectId}&description=list`, undefined, c.demo.token, 200)).networks.length, 0);
  assert.equal((await c.ok('GET', `/networks?tenant_id=${c.demo.projectId}&description=list`, undefined, c.demo.token, 200)).networks.length, 5);
});

test('fields= keeps only the named attributes', async () => {
  const b = await c.ok('GET', '/networks?description=list&fields=id&fields=name', undefined, c.demo.token, 200);
  for (const n of b.networks) assert.deepEqual(Object.keys(n).sort(), ['id', 'name']);
  const one = await c.ok('GET', `/networks/${nets[0]!.id}?fields=name`, undefined, c.demo.token, 200);
  assert.deepEqual(one.network, { name: 'l-charlie' });
});

test('sort_key/sort_dir, and bad sort parameters', async () => {
  assert.deepEqual(names(await c.ok('GET', '/networks?description=list&sort_key=name&sort_dir=desc', undefined, c.demo.token, 200)), ['l-echo', 'l-delta', 'l-charlie', 'l-bravo', 'l-alpha']);
  assert.deepEqual(names(await c.ok('GET', '/networks?description=list&sort_key=admin_state_up&sort_dir=asc&sort_key=name&sort_dir=asc', undefined, c.demo.token, 200)), ['l-alpha', 'l-echo', 'l-bravo', 'l-charlie', 'l-delta']);
  c.expectError(await c.api('GET', '/networks?sort_key=name&sort_dir=sideways', undefined, c.demo.token), 400, 'BadRequest');
  c.expectError(await c.api('GET', '/networks?sort_key=nonsense', undefined, c.demo.token), 400, 'BadRequest');
});

test('limit/marker pagination with next and previous links', async () => {
  const seen: string[] = [];
  let url = '/networks?description=list&sort_key=name&limit=2';
  for (let i = 0; i < 5 && url; i++) {
    const b = await c.ok('GET', url, undefined, c.demo.token, 200);
    seen.push(...names(b));
    const next = (b.networks_links ?? []).find((l: { rel: string }) => l.rel === 'next');
    if (i > 0) assert.ok(b.networks_links.some((l: { rel: string }) => l.rel === 'previous'));
    url = next ? next.href.replace(/^.*\/network\/v2\.0/, '') : '';
  }
  assert.deepEqual(seen, ['l-alpha', 'l-bravo', 'l-charlie', 'l-delta', 'l-echo']);
  // page_reverse walks backwards from the marker
  const bravo = nets.find((n) => n.name === 'l-bravo')!;
  const delta = nets.find((n) => n.name === 'l-delta')!;
  const back = await c.ok('GET', `/networks?description=list&sort_key=name&limit=2&marker=${delta.id}&page_reverse=True`, undefined, c.demo.token, 200);
  assert.deepEqual(names(back), ['l-bravo', 'l-charlie']);
  const fwd = await c.ok('GET', `/networks?description=list&sort_key=name&limit=10&marker=${bravo.id}`, undefined, c.demo.token, 200);
  assert.deepEqual(names(fwd), ['l-charlie', 'l-delta', 'l-echo']);
  c.expectError(await c.api('GET', '/networks?limit=abc', undefined, c.demo.token), 400, 'BadRequest');
});

test('port filters: fixed_ips, device_owner, network_id', async () => {
  const n = nets[0]!;
  const s = (await c.ok('POST', '/subnets', { subnet: { network_id: n.id, ip_version: 4, cidr: '10.50.0.0/24', enable_dhcp: false } }, c.demo.token, 201)).subnet;
  const p1 = (await c.ok('POST', '/ports', { port: { network_id: n.id, fixed_ips: [{ ip_address: '10.50.0.7' }], device_owner: 'compute:nova', device_id: 'vm-a' } }, c.demo.token, 201)).port;
  await c.ok('POST', '/ports', { port: { network_id: n.id, fixed_ips: [{ ip_address: '10.50.0.8' }] } }, c.demo.token, 201);
  const byIp = (await c.ok('GET', '/ports?fixed_ips=ip_address%3D10.50.0.7', undefined, c.demo.token, 200)).ports;
  assert.deepEqual(byIp.map((p: { id: string }) => p.id), [p1.id]);
  assert.equal((await c.ok('GET', `/ports?fixed_ips=subnet_id%3D${s.id}`, undefined, c.demo.token, 200)).ports.length, 2);
  assert.equal((await c.ok('GET', '/ports?device_owner=compute:nova&device_id=vm-a', undefined, c.demo.token, 200)).ports.length, 1);
  assert.equal((await c.ok('GET', `/ports?network_id=${n.id}`, undefined, c.demo.token, 200)).ports.length, 2);
});

test('IPAM: 50 parallel port creates on a /26 get distinct addresses, then exhaustion is 409 and changes nothing', async () => {
  const n = (await c.ok('POST', '/networks', { network: { name: 'ipam-net' } }, c.demo.token, 201)).network;
  const s = (await c.ok('POST', '/subnets', { subnet: { network_id: n.id, ip_version: 4, cidr: '10.60.0.0/26', enable_dhcp: false } }, c.demo.token, 201)).subnet;
  assert.deepEqual(s.allocation_pools, [{ start: '10.60.0.2', end: '10.60.0.62' }]); // 61 addresses
  const results = await Promise.all(Array.from({ length: 50 }, () => c.api('POST', '/ports', { port: { network_id: n.id } }, c.demo.token)));
  for (const r of results) assert.equal(r.status, 201, r.text);
  const ips = results.map((r) => r.json.port.fixed_ips[0].ip_address as string);
  assert.equal(new Set(ips).size, 50, 'every address is distinct');
  // 11 left: a mix of parallel creates, some of which must fail cleanly
  const more = await Promise.all(Array.from({ length: 15 }, () => c.api('POST', '/ports', { port: { network_id: n.id } }, c.demo.token)));
  const ok = more.filter((r) => r.status === 201);
  const refused = more.filter((r) => r.status !== 201);
  assert.equal(ok.length, 11);
  assert.equal(refused.length, 4);
  for (const r of refused) c.expectError(r, 409, 'IpAddressGenerationFailure');
  const all = [...ips, ...ok.map((r) => r.json.port.fixed_ips[0].ip_address as string)];
  assert.equal(new Set(all).size, 61);
  const before = await c.snapshot();
  c.expectError(await c.api('POST', '/ports', { port: { network_id: n.id } }, c.demo.token), 409, 'IpAddressGenerationFailure', /No more IP addresses available/);
  assert.deepEqual(await c.snapshot(), before);
  // deleting a port frees its address for the next one
  const freed = ok[0]!.json.port;
  await c.ok('DELETE', `/ports/${freed.id}`, undefined, c.demo.token, 204);
  const again = (await c.ok('POST', '/ports', { port: { network_id: n.id } }, c.demo.token, 201)).port;
  assert.equal(again.fixed_ips[0].ip_address, freed.fixed_ips[0].ip_address);
});
