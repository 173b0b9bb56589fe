import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildConfigDrive, configDriveFiles, OPENSTACK_METADATA_VERSIONS } from '../../../src/compute/drivers/config-drive.js';

const hasGenisoimage = (() => {
  try {
    execFileSync('genisoimage', ['--version'], { stdio: 'ignore' });
    execFileSync('isoinfo', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('config drive', () => {
  const spec = {
    metaData: { uuid: 'abc', hostname: 'h1', name: 'h1' },
    userData: Buffer.from('#!/bin/sh\necho hi\n'),
    networkData: { links: [], networks: [{ id: 'n0', type: 'ipv4_dhcp' }], services: [] },
  };

  it('lays files out per metadata version as Nova does', () => {
    const files = configDriveFiles(spec);
    assert.equal(OPENSTACK_METADATA_VERSIONS[0], '2012-08-10');
    assert.equal(OPENSTACK_METADATA_VERSIONS.at(-1), 'latest');
    for (const v of OPENSTACK_METADATA_VERSIONS) {
      assert.ok(files.has(`openstack/${v}/meta_data.json`), v);
      assert.ok(files.has(`openstack/${v}/user_data`), v);
    }
    assert.ok(!files.has('openstack/2012-08-10/vendor_data.json'));
    assert.ok(files.has('openstack/2013-10-17/vendor_data.json'));
    assert.ok(!files.has('openstack/2013-10-17/network_data.json'));
    assert.ok(files.has('openstack/2015-10-15/network_data.json'));
    assert.ok(files.has('openstack/latest/vendor_data2.json'));
    assert.deepEqual(JSON.parse(files.get('openstack/latest/meta_data.json')!.toString()), spec.metaData);
    assert.deepEqual(JSON.parse(files.get('openstack/latest/network_data.json')!.toString()), spec.networkData);
    assert.deepEqual(JSON.parse(files.get('openstack/latest/vendor_data.json')!.toString()), {});
    // no user data: no user_data files
    assert.equal([...configDriveFiles({ metaData: {} }).keys()].some((k) => k.endsWith('user_data')), false);
  });

  it('builds an ISO9660 image labelled config-2 with Rock Ridge names', { skip: hasGenisoimage ? false : 'genisoimage/isoinfo not installed' }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'config-drive-'));
    try {
      const iso = join(dir, 'disk.config');
      await buildConfigDrive(iso, spec);
      const pvd = execFileSync('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' });
      assert.match(pvd, /Volume id: config-2/);
      assert.match(pvd, /Rock Ridge signatures version/);
      const list = execFileSync('isoinfo', ['-R', '-f', '-i', iso], { encoding: 'utf8' });
      assert.match(list, /^\/openstack\/latest\/meta_data\.json$/m);
      assert.match(list, /^\/openstack\/2012-08-10\/user_data$/m);
      const md = execFileSync('isoinfo', ['-R', '-i', iso, '-x', '/openstack/latest/meta_data.json'], { encoding: 'utf8' });
      assert.deepEqual(JSON.parse(md), spec.metaData);
      const ud = execFileSync('isoinfo', ['-R', '-i', iso, '-x', '/openstack/latest/user_data']);
      assert.deepEqual(ud, spec.userData);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
