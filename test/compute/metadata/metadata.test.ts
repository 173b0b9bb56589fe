import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answer, type InstanceMetadata } from '../../../src/compute/metadata/metadata.js';

const m: InstanceMetadata = {
  uuid: '11111111-2222-3333-4444-555555555555', name: 'Web 1', hostname: 'web-1', projectId: 'p1', availabilityZone: 'nova', launchIndex: 0,
  meta: { role: 'web' }, keys: [{ name: 'k', type: 'ssh', data: 'ssh-ed25519 AAAA k' }], userData: Buffer.from('#!/bin/sh\necho hi\n'),
  networkData: { links: [], networks: [], services: [] }, instanceType: 'm1.tiny', localIpv4: '10.0.0.5', reservationId: 'r-1',
};

test('openstack meta_data.json carries identity, keys and metadata', () => {
  const r = answer('/openstack/latest/meta_data.json', m);
  assert.equal(r.status, 200);
  const j = JSON.parse(String(r.body));
  assert.equal(j.uuid, m.uuid);
  assert.equal(j.hostname, 'web-1');
  assert.deepEqual(j.public_keys, { k: 'ssh-ed25519 AAAA k' });
  assert.deepEqual(j.meta, { role: 'web' });
});

test('user_data is served raw; listings name the files', () => {
  assert.equal(String(answer('/openstack/2012-08-10/user_data', m).body), '#!/bin/sh\necho hi\n');
  assert.match(String(answer('/openstack/latest/', m).body), /network_data\.json/);
  assert.match(String(answer('/openstack', m).body), /latest/);
  assert.equal(answer('/openstack/1999-01-01/meta_data.json', m).status, 404);
  assert.equal(answer('/openstack/latest/user_data', { ...m, userData: null }).status, 404);
});

test('EC2 meta-data tree and public keys', () => {
  assert.equal(String(answer('/latest/meta-data/hostname', m).body), 'web-1');
  assert.equal(String(answer('/latest/meta-data/local-ipv4', m).body), '10.0.0.5');
  assert.match(String(answer('/latest/meta-data/', m).body), /placement\//);
  assert.equal(String(answer('/latest/meta-data/placement/availability-zone', m).body), 'nova');
  assert.equal(String(answer('/latest/meta-data/public-keys/', m).body), '0=k');
  assert.equal(String(answer('/latest/meta-data/public-keys/0/openssh-key', m).body), 'ssh-ed25519 AAAA k');
  assert.equal(String(answer('/2009-04-04/user-data', m).body), '#!/bin/sh\necho hi\n');
  assert.equal(answer('/latest/meta-data/nope', m).status, 404);
});
