/**
 * The metadata API behind the agents' 169.254.169.254 proxies: it answers
 * for the instance whose port holds the forwarded source address, and for
 * no one else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InProcessBus, type Json } from '../../../src/core/bus.js';
import { instanceMetadata, MetadataServer } from '../../../src/compute/metadata/server.js';
import type { InstanceRow } from '../../../src/compute/store/tables.js';
import type { InstancePort } from '../../../src/network/protocol.js';

const row: InstanceRow = {
  id: 'aaaaaaaa-1111-4111-8111-111111111111', name: 'web 1', project_id: 'p1', user_id: 'u1', image_id: 'bbbbbbbb-2222-4222-8222-222222222222',
  flavor: JSON.stringify({ id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1, ephemeral: 0, swap: 0, extra_specs: {} }), old_flavor: null,
  key_name: 'k', key_data: JSON.stringify({ name: 'k', type: 'ssh', data: 'ssh-ed25519 AAAA test' }), user_data: Buffer.from('#!/bin/sh\necho hi\n').toString('base64'),
  availability_zone: 'nova', host: 'h1', vm_state: 'active', task_state: null, power_state: 1, locked: 0, locked_by: null, config_drive: 1,
  metadata: JSON.stringify({ role: 'web' }), tags: '[]', description: null, reservation_id: 'r-1', launch_index: 0, access_ip_v4: '', access_ip_v6: '',
  admin_pass_set: 0, server_group_id: null, created_at: 1, updated_at: 1, launched_at: 1, terminated_at: null, deleted: 0, requested_networks: null, security_groups: '[]',
};
const port: InstancePort = {
  id: 'cccccccc-3333-4333-8333-333333333333', network_id: 'n1', network_name: 'private', mac_address: 'fa:16:3e:00:00:01', device: 'tapcccccccc-33', mtu: 1500,
  fixed_ips: [{ subnet_id: 's1', ip_address: '10.0.0.5', version: 4, cidr: '10.0.0.0/24', gateway_ip: '10.0.0.1', floating_ips: ['172.24.4.20'] }], dns_nameservers: [],
};

function fakeDb(rows: InstanceRow[]) {
  // the one query the server makes: selectFrom(...).selectAll().where('id','=',x).executeTakeFirst()
  return {
    selectFrom: () => ({ selectAll: () => ({ where: (_c: string, _o: string, id: string) => ({ executeTakeFirst: async () => rows.find((r) => r.id === id) }) }) }),
  } as never;
}

test('answers for the instance behind the forwarded address only', async () => {
  const bus = new InProcessBus();
  const lookups: unknown[] = [];
  bus.serve('network', {
    lookup_instance: (a) => {
      lookups.push(a);
      const { ip, router_id } = a as { ip: string; router_id?: string };
      return { instance_id: ip === '10.0.0.5' && router_id === 'r1' ? row.id : null, project_id: 'p1' };
    },
    instance_ports: () => ({ ports: [port] }) as unknown as Json,
  });
  const srv = new MetadataServer(fakeDb([row]), bus, '/nonexistent/unused.sock', { error: () => undefined } as never);
  const get = (path: string, headers: Record<string, string>) => srv.handle('GET', path, headers);

  const md = await get('/openstack/latest/meta_data.json', { 'x-forwarded-for': '10.0.0.5', 'x-stratus-router-id': 'r1' });
  assert.equal(md.status, 200);
  const j = JSON.parse(String(md.body));
  assert.equal(j.uuid, row.id);
  assert.equal(j.hostname, 'web-1');
  assert.deepEqual(j.meta, { role: 'web' });
  assert.deepEqual(j.public_keys, { k: 'ssh-ed25519 AAAA test' });

  const ud = await get('/openstack/latest/user_data', { 'x-forwarded-for': '10.0.0.5', 'x-stratus-router-id': 'r1' });
  assert.equal(String(ud.body), '#!/bin/sh\necho hi\n');
  const nd = JSON.parse(String((await get('/openstack/latest/network_data.json', { 'x-forwarded-for': '10.0.0.5', 'x-stratus-router-id': 'r1' })).body));
  assert.equal(nd.links[0].ethernet_mac_address, 'fa:16:3e:00:00:01');
  assert.equal(nd.networks[0].ip_address, '10.0.0.5');
  assert.equal(nd.networks[0].netmask, '255.255.255.0');
  const ec2 = await get('/latest/meta-data/local-ipv4', { 'x-forwarded-for': '10.0.0.5', 'x-stratus-router-id': 'r1' });
  assert.equal(String(ec2.body), '10.0.0.5');
  assert.equal(String((await get('/latest/meta-data/public-ipv4', { 'x-forwarded-for': '10.0.0.5', 'x-stratus-router-id': 'r1' })).body), '172.24.4.20');

  // another address, or no proxy headers: nothing is revealed
  assert.equal((await get('/openstack/latest/meta_data.json', { 'x-forwarded-for': '10.0.0.9', 'x-stratus-router-id': 'r1' })).status, 404);
  assert.equal((await get('/openstack/latest/meta_data.json', { 'x-forwarded-for': '10.0.0.5' })).status, 400);
  assert.equal((await get('/openstack/latest/meta_data.json', {})).status, 400);
  assert.equal((await srv.handle('POST', '/openstack/latest/meta_data.json', { 'x-forwarded-for': '10.0.0.5', 'x-stratus-router-id': 'r1' })).status, 405);
  assert.ok(lookups.length >= 5);
});

test('instanceMetadata reflects the row and ports', () => {
  const m = instanceMetadata(row, [port]);
  assert.equal(m.instanceType, 'm1.tiny');
  assert.equal(m.localIpv4, '10.0.0.5');
  assert.equal(m.publicIpv4, '172.24.4.20');
  assert.equal(m.mac, 'fa:16:3e:00:00:01');
  assert.equal(instanceMetadata({ ...row, user_data: null }, []).userData, null);
});
