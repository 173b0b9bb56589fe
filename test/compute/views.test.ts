/**
 * The server view of update and rebuild responses (Nova's basic view): no
 * extension attributes, and addresses with only addr and version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { updateView } from '../../src/compute/api/routes.js';

test('update/rebuild view: extension attributes and extended address fields are left out', () => {
  const full = {
    id: 'x', name: 'n', status: 'ACTIVE', 'OS-EXT-STS:vm_state': 'active', 'OS-SRV-USG:launched_at': 't', 'os-extended-volumes:volumes_attached': [],
    key_name: 'k', security_groups: [{ name: 'default' }], config_drive: '', metadata: { a: 'b' },
    addresses: { net1: [{ addr: '10.0.0.5', version: 4, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': 'fa:16:3e:00:00:01' }] },
  };
  assert.deepEqual(updateView(full), { id: 'x', name: 'n', status: 'ACTIVE', metadata: { a: 'b' }, addresses: { net1: [{ version: 4, addr: '10.0.0.5' }] } });
});
