import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shellQuote } from '../../../src/compute/drivers/host-process.js';
import { instancePaths, type InstanceRecord } from '../../../src/compute/drivers/instance-store.js';
import { buildQemuArgs, guestName } from '../../../src/compute/drivers/qemu-args.js';
import { powerStateOf } from '../../../src/compute/drivers/qemu-driver.js';

const uuid = '0f0f0f0f-1111-4222-8333-444455556666';
const paths = instancePaths('/var/lib/stratus/instances', uuid);
const record = (extra: Partial<InstanceRecord> = {}): InstanceRecord => ({
  version: 1,
  spec: {
    uuid,
    name: 'web, 1',
    vcpus: 2,
    memoryMb: 512,
    rootGb: 1,
    imagePath: '/images/base.qcow2',
    imageFormat: 'qcow2',
    nics: [
      { mac: 'fa:16:3e:00:00:01', tapName: 'tapaaaa', mtu: 1450 },
      { mac: 'fa:16:3e:00:00:02', tapName: 'tapbbbb' },
    ],
    hasConfigDrive: true,
  },
  volumes: [{ volumeId: 'v1', path: '/dev/vg/v1', format: 'raw', serial: 'v1', readOnly: false, device: 'vdb', slot: 0x10 }],
  createdAt: '2026-01-01T00:00:00Z',
  ...extra,
});

/** Values following each occurrence of `flag`. */
const values = (args: string[], flag: string): string[] => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));

describe('QEMU command line', () => {
  it('has the fixed machine, accel, console, monitor and pidfile options', () => {
    const args = buildQemuArgs({ uuid, paths, record: record(), accel: 'tcg', isBlockDevice: (p) => p.startsWith('/dev/'), shellQuote });
    assert.deepEqual(values(args, '-machine'), ['pc']);
    assert.deepEqual(values(args, '-accel'), ['tcg']);
    assert.deepEqual(values(args, '-cpu'), []);
    assert.deepEqual(values(args, '-uuid'), [uuid]);
    assert.equal(values(args, '-name')[0], 'guest=web--1,debug-threads=on');
    assert.ok(args.includes('-nodefaults'));
    assert.equal(values(args, '-pidfile')[0], paths.pidfile);
    assert.ok(values(args, '-chardev').some((c) => c.includes(`logfile=${paths.consoleLog},logappend=off`)));
    assert.ok(values(args, '-chardev').some((c) => c.startsWith(`socket,id=qmp0,path=${paths.qmpSock},server=on,wait=off`)));
    assert.deepEqual(values(args, '-incoming'), []);
  });

  it('gives every device a fixed PCI slot', () => {
    const args = buildQemuArgs({ uuid, paths, record: record(), accel: 'kvm', cpuModel: 'host', isBlockDevice: (p) => p.startsWith('/dev/'), shellQuote });
    assert.deepEqual(values(args, '-cpu'), ['host']);
    const devices = values(args, '-device').map((d) => (d.startsWith('{') ? (JSON.parse(d) as Record<string, unknown>) : { raw: d }));
    const byId = new Map(devices.map((d) => [d.id as string, d]));
    assert.equal(byId.get('root-disk')?.addr, '0x4');
    assert.equal(byId.get('root-disk')?.bootindex, 1);
    assert.equal(byId.get('nic0')?.addr, '0x8');
    assert.equal(byId.get('nic0')?.host_mtu, 1450);
    assert.equal(byId.get('nic1')?.addr, '0x9');
    assert.equal(byId.get('nic1')?.mac, 'fa:16:3e:00:00:02');
    assert.equal(byId.get('vdisk16')?.addr, '0x10');
    assert.equal(byId.get('vdisk16')?.serial, 'v1');
    assert.deepEqual(byId.get('config-cd'), { driver: 'ide-cd', id: 'config-cd', drive: 'config', bus: 'ide.1', unit: 0 });
    assert.deepEqual(values(args, '-netdev'), [
      'tap,id=net0,ifname=tapaaaa,script=no,downscript=no',
      'tap,id=net1,ifname=tapbbbb,script=no,downscript=no',
    ]);
    const vol = values(args, '-blockdev').map((b) => JSON.parse(b) as Record<string, unknown>).find((b) => b['node-name'] === 'vol16');
    assert.deepEqual(vol, { driver: 'raw', 'node-name': 'vol16', file: { driver: 'host_device', filename: '/dev/vg/v1' } });
  });

  it('boots the rescue disk first and restores saved state with logappend', () => {
    const args = buildQemuArgs({
      uuid,
      paths,
      record: record({ rescue: { imagePath: '/images/rescue.qcow2', imageFormat: 'qcow2' } }),
      accel: 'tcg',
      isBlockDevice: () => false,
      incomingFile: paths.memoryState,
      shellQuote,
    });
    const devices = values(args, '-device').filter((d) => d.startsWith('{')).map((d) => JSON.parse(d) as Record<string, unknown>);
    assert.deepEqual(devices.find((d) => d.id === 'boot-disk'), { driver: 'virtio-blk-pci', id: 'boot-disk', drive: 'rescue', addr: '0x4', bootindex: 1 });
    assert.deepEqual(devices.find((d) => d.id === 'root-disk'), { driver: 'virtio-blk-pci', id: 'root-disk', drive: 'root', addr: '0x6' });
    assert.deepEqual(values(args, '-incoming'), [`exec:cat '${paths.memoryState}'`]);
    assert.ok(values(args, '-chardev').some((c) => c.includes('logappend=on')));
  });

  it('sanitises names and quotes shell words; maps runstates', () => {
    assert.equal(guestName(''), 'instance');
    assert.equal(guestName('a,b=c d'), 'a-b-c-d');
    assert.equal(shellQuote(`it's`), `'it'\\''s'`);
    assert.equal(powerStateOf('running'), 'running');
    assert.equal(powerStateOf('paused'), 'paused');
    assert.equal(powerStateOf('inmigrate'), 'paused');
    assert.equal(powerStateOf('shutdown'), 'shutdown');
    assert.equal(powerStateOf('guest-panicked'), 'crashed');
    assert.equal(powerStateOf('internal-error'), 'crashed');
  });
});
