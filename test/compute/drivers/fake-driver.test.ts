import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ComputeDriverError, type InstanceSpec } from '../../../src/compute/drivers/driver.js';
import { FakeComputeDriver } from '../../../src/compute/drivers/fake-driver.js';

const spec = (uuid: string, extra: Partial<InstanceSpec> = {}): InstanceSpec => ({
  uuid,
  name: `vm-${uuid.slice(0, 4)}`,
  vcpus: 1,
  memoryMb: 256,
  rootGb: 1,
  imagePath: '/images/guest.qcow2',
  imageFormat: 'qcow2',
  nics: [{ mac: 'fa:16:3e:00:00:01', tapName: 'tap0001' }],
  ...extra,
});
const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof ComputeDriverError && e.code === code);
}

describe('FakeComputeDriver', () => {
  it('spawns, reports power states through the lifecycle, destroys idempotently', async () => {
    const d = new FakeComputeDriver();
    await d.init();
    assert.equal(d.initialized, true);
    await d.spawn(spec(U1, { configDrive: { metaData: { hostname: 'web-1.example' }, userData: Buffer.from('#!/bin/sh\necho hi\n') } }));
    const info = await d.getInfo(U1);
    assert.equal(info.powerState, 'running');
    assert.ok(info.pid && info.pid > 0);
    const out = await d.consoleOutput(U1);
    assert.match(out, new RegExp(`STRATUS-GUEST-READY hostname=web-1 instance-id=${U1} `));
    assert.match(out, /STRATUS-USERDATA-DONE rc=0/);

    await d.pause(U1);
    assert.equal((await d.getInfo(U1)).powerState, 'paused');
    await d.pause(U1); // idempotent
    await d.unpause(U1);
    assert.equal((await d.getInfo(U1)).powerState, 'running');

    await d.suspend(U1);
    assert.deepEqual(await d.getInfo(U1), { powerState: 'suspended' });
    await rejectsWith(d.reboot(U1, true), 'InvalidState');
    await d.resume(U1);
    assert.equal((await d.getInfo(U1)).powerState, 'running');

    const pidBefore = (await d.getInfo(U1)).pid;
    await d.powerOff(U1);
    assert.deepEqual(await d.getInfo(U1), { powerState: 'shutdown' });
    await d.powerOff(U1); // no-op when off
    await d.powerOn(U1);
    const after = await d.getInfo(U1);
    assert.equal(after.powerState, 'running');
    assert.notEqual(after.pid, pidBefore);

    assert.deepEqual(await d.listInstances(), [U1]);
    await d.destroy(U1);
    await d.destroy(U1);
    assert.deepEqual(await d.getInfo(U1), { powerState: 'nostate' });
    assert.deepEqual(await d.listInstances(), []);
  });

  it('enforces state rules and reports unknown instances', async () => {
    const d = new FakeComputeDriver();
    await d.spawn(spec(U1));
    await rejectsWith(d.spawn(spec(U1)), 'Exists');
    await rejectsWith(d.unpause(U2), 'NotFound');
    await rejectsWith(d.resume(U1), 'InvalidState');
    await d.powerOff(U1);
    await rejectsWith(d.pause(U1), 'InvalidState');
    await rejectsWith(d.suspend(U1), 'InvalidState');
    await rejectsWith(d.spawn(spec(U2, { vcpus: 0 })), 'InvalidSpec');
  });

  it('attaches volumes with predicted device names, idempotently, and detaches', async () => {
    const d = new FakeComputeDriver();
    await d.spawn(spec(U1));
    assert.equal(await d.attachVolume(U1, { volumeId: 'vol-a', path: '/v/a', format: 'raw' }), 'vdb');
    assert.equal(await d.attachVolume(U1, { volumeId: 'vol-b', path: '/v/b', format: 'qcow2', serial: 'serial-b' }), 'vdc');
    assert.equal(await d.attachVolume(U1, { volumeId: 'vol-a', path: '/v/a', format: 'raw' }), 'vdb');
    assert.match(await d.consoleOutput(U1, 1), /STRATUS-BLOCK-ADDED vdc bytes=0 serial=serial-b/);
    await d.extendVolume(U1, 'vol-a', 1 << 30);
    await rejectsWith(d.extendVolume(U1, 'nope', 1), 'NotFound');
    await d.detachVolume(U1, 'vol-a');
    await d.detachVolume(U1, 'vol-a'); // unknown: no-op
    assert.deepEqual((await d.listVolumes(U1)).map((v) => v.device), ['vdc']);
    // the freed letter is reused
    assert.equal(await d.attachVolume(U1, { volumeId: 'vol-c', path: '/v/c', format: 'raw' }), 'vdb');
  });

  it('resizes (never shrinking), rescues, snapshots to a file', async () => {
    const d = new FakeComputeDriver();
    await d.spawn(spec(U1, { rootGb: 2 }));
    await rejectsWith(d.resize(U1, { vcpus: 2, memoryMb: 512, rootGb: 1 }), 'InvalidSpec');
    await d.resize(U1, { vcpus: 2, memoryMb: 512, rootGb: 4 });
    await d.rescue(U1, { imagePath: '/images/rescue.qcow2', imageFormat: 'qcow2' });
    await rejectsWith(d.rescue(U1, { imagePath: '/images/rescue.qcow2', imageFormat: 'qcow2' }), 'InvalidState');
    assert.equal(await d.attachVolume(U1, { volumeId: 'v', path: '/v', format: 'raw' }), 'vdc');
    await d.unrescue(U1);
    await rejectsWith(d.unrescue(U1), 'InvalidState');
    const dir = await mkdtemp(join(tmpdir(), 'fake-driver-'));
    try {
      await d.snapshot(U1, join(dir, 'snap.qcow2'));
      assert.match(await readFile(join(dir, 'snap.qcow2'), 'utf8'), new RegExp(U1));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('injects failures once, records calls, simulates guest-side stops', async () => {
    const d = new FakeComputeDriver({ host: { vcpus: 2 } });
    d.failNext('spawn');
    await rejectsWith(d.spawn(spec(U1)), 'Failed');
    await d.spawn(spec(U1));
    d.failNext('powerOff', new Error('boom'), U1);
    await assert.rejects(d.powerOff(U1), /boom/);
    d.guestStops(U1, 'crashed');
    assert.equal((await d.getInfo(U1)).powerState, 'crashed');
    await d.reboot(U1, true);
    assert.equal((await d.getInfo(U1)).powerState, 'running');
    assert.equal((await d.hostInfo()).vcpus, 2);
    assert.deepEqual(d.calls.slice(0, 3), [`spawn ${U1}`, `spawn ${U1}`, `powerOff ${U1}`]);
  });
});
