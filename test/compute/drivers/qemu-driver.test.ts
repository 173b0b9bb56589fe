/**
 * Integration test of the QEMU compute driver with a real guest (the
 * Stratus guest image, built once into /var/tmp/stratus-test-cache and
 * reused). The guest has a config drive and NO NIC: no traffic leaves it.
 * Skipped when qemu-system-x86_64 is not installed.
 *
 * Cleanup (after(), also on failure) kills QEMU processes by the PIDs this
 * test saw, after checking their command line carries the test's uuid,
 * never by name pattern, and removes the state dir.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { killPid, pidAlive, pidMatches, sleep, waitForExit } from '../../../src/compute/drivers/host-process.js';
import { ComputeDriverError, type InstanceSpec } from '../../../src/compute/drivers/driver.js';
import { QemuDriver } from '../../../src/compute/drivers/qemu-driver.js';
import { buildGuestImage, type GuestImage } from '../../../src/image/seed/build-guest-image.js';

const CACHE = process.env.STRATUS_TEST_CACHE ?? '/var/tmp/stratus-test-cache';

function haveCommand(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const skip = haveCommand('qemu-system-x86_64') ? false : 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 qemu-utils)';

const log = (msg: string): void => {
  if (process.env.STRATUS_TEST_VERBOSE) process.stderr.write(`# ${msg}\n`);
};
const driverLog = { info: log, warn: log };

describe('QemuDriver input checks (no guest needed)', () => {
  const code = (c: string) => (e: unknown) => e instanceof ComputeDriverError && e.code === c;
  const base = (over: Partial<InstanceSpec> = {}): InstanceSpec => ({
    uuid: randomUUID(),
    name: 'x',
    vcpus: 1,
    memoryMb: 128,
    rootGb: 0,
    imagePath: '/nonexistent/image.qcow2',
    imageFormat: 'qcow2',
    nics: [],
    ...over,
  });

  it('rejects state dirs QEMU options or unix sockets cannot carry', () => {
    assert.throws(() => new QemuDriver({ stateDir: '/tmp/a,b' }), code('InvalidSpec'));
    assert.throws(() => new QemuDriver({ stateDir: `/tmp/${'x'.repeat(80)}` }), code('InvalidSpec'));
  });

  it('validates specs, leaves nothing behind on failure, reports unknown instances', async () => {
    const dir = await mkdtemp('/tmp/stx-qv-');
    try {
      const d = new QemuDriver({ stateDir: dir, accel: 'tcg' });
      await d.init();
      await assert.rejects(d.spawn(base({ uuid: 'not-a-uuid' })), code('InvalidSpec'));
      await assert.rejects(d.spawn(base({ vcpus: 0 })), code('InvalidSpec'));
      await assert.rejects(d.spawn(base({ nics: [{ mac: 'zz', tapName: 'tap0' }] })), code('InvalidSpec'));
      await assert.rejects(d.spawn(base({ nics: [{ mac: 'fa:16:3e:00:00:01', tapName: 'tap-name-too-long' }] })), code('InvalidSpec'));
      await assert.rejects(d.spawn(base()), code('InvalidSpec')); // image not found
      assert.deepEqual(await readdir(dir), []);
      const u = randomUUID();
      assert.deepEqual(await d.getInfo(u), { powerState: 'nostate' });
      assert.deepEqual(await d.getInfo('garbage'), { powerState: 'nostate' });
      await d.destroy(u);
      await assert.rejects(d.powerOn(u), code('NotFound'));
      await assert.rejects(d.attachVolume(u, { volumeId: 'v', path: dir, format: 'raw' }), code('NotFound'));
      assert.deepEqual(await d.listInstances(), []);
      assert.equal((await d.hostInfo()).accel, 'tcg');
      await d.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('QemuDriver with a real guest', { skip, timeout: 240_000 }, () => {
  const uuid = randomUUID();
  const short = uuid.slice(0, 8);
  const hostname = `qd-${short}`;
  const token = `UD-VALUE-${randomUUID().slice(0, 6)}`;
  const seenPids = new Set<number>();
  let image: GuestImage;
  let stateDir: string;
  let driver: QemuDriver;
  const timings: Record<string, number> = {};

  const opts = () => ({
    stateDir,
    accel: 'auto' as const,
    probeImage: { path: image.qcow2, format: 'qcow2' as const },
    accelCacheFile: join(CACHE, 'accel-probe.json'),
    shutdownRetryIntervalS: 3,
    log: driverLog,
  });

  /** Waits until the console output matches `re`; fails with the console tail. */
  async function waitConsole(re: RegExp, timeoutMs = 90_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    let out = '';
    while (Date.now() < end) {
      out = await driver.consoleOutput(uuid);
      const m = re.exec(out);
      if (m) return m[0];
      await sleep(200);
    }
    assert.fail(`no ${re} in console after ${timeoutMs} ms; tail:\n${out.split('\n').slice(-15).join('\n')}`);
  }

  async function livePid(): Promise<number> {
    const info = await driver.getInfo(uuid);
    assert.ok(info.pid, `no pid in ${JSON.stringify(info)}`);
    seenPids.add(info.pid);
    return info.pid;
  }

  /** Types a line into the guest's serial root shell (keeps the socket open briefly: QEMU drops unread input on disconnect). */
  async function typeOnConsole(line: string): Promise<void> {
    const sock = connect(join(stateDir, uuid, 'console.sock'));
    await new Promise<void>((res, rej) => sock.once('connect', () => res()).once('error', rej));
    sock.write(`${line}\n`);
    await sleep(500);
    sock.destroy();
  }

  before(async () => {
    const t0 = Date.now();
    image = await buildGuestImage(join(CACHE, 'guest-image'), log);
    timings.imageMs = Date.now() - t0;
    stateDir = await mkdtemp('/tmp/stx-qd-');
    driver = new QemuDriver(opts());
    const t1 = Date.now();
    await driver.init();
    timings.initMs = Date.now() - t1;
  });

  after(async () => {
    await driver?.close().catch(() => undefined);
    for (const pid of seenPids) {
      if (await pidMatches(pid, [uuid])) {
        killPid(pid, 'SIGKILL');
        await waitForExit(pid, 10_000);
      }
    }
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    process.stderr.write(`# qemu-driver timings: ${JSON.stringify(timings)}\n`);
  });

  it('decided the acceleration by a probe boot (cached)', async () => {
    const host = await driver.hostInfo();
    assert.equal(host.hypervisorType, 'QEMU');
    assert.ok(host.accel === 'tcg' || host.accel === 'kvm');
    assert.ok(host.vcpus >= 1 && host.memoryMb > 0 && host.diskGb > 0);
    assert.ok(driver.probeResult, 'auto mode has a probe verdict');
    log(`accel ${host.accel}: ${driver.probeResult?.reason}`);
  });

  it('spawns a guest with a config drive and runs its user data', async () => {
    const t0 = Date.now();
    await driver.spawn({
      uuid,
      name: `stx-test-${short}`,
      vcpus: 1,
      memoryMb: 256,
      rootGb: 1,
      imagePath: image.qcow2,
      imageFormat: 'qcow2',
      nics: [],
      configDrive: {
        metaData: { uuid, hostname, name: `stx-test-${short}`, launch_index: 0, availability_zone: 'nova' },
        userData: Buffer.from(`#!/bin/sh\necho "${token} from $(hostname)"\n`),
      },
    });
    timings.spawnMs = Date.now() - t0;
    const pid = await livePid();
    assert.equal((await driver.getInfo(uuid)).powerState, 'running');
    assert.ok(existsSync(join(stateDir, uuid, 'disk.qcow2')));
    assert.deepEqual(await driver.listInstances(), [uuid]);
    const marker = await waitConsole(new RegExp(`STRATUS-GUEST-READY hostname=${hostname} instance-id=${uuid} ip=none datasource=configdrive uptime=\\S+`));
    timings.bootToMarkerMs = Date.now() - t0;
    log(marker);
    await waitConsole(new RegExp(`${token} from ${hostname}`), 30_000);
    await waitConsole(/STRATUS-USERDATA-DONE rc=0/, 30_000);
    assert.equal(await livePid(), pid);
  });

  it('pauses and unpauses', async () => {
    await driver.pause(uuid);
    assert.equal((await driver.getInfo(uuid)).powerState, 'paused');
    await driver.unpause(uuid);
    assert.equal((await driver.getInfo(uuid)).powerState, 'running');
  });

  it('hot-plugs, extends and detaches a qcow2 volume', async () => {
    await waitConsole(/STRATUS-BLOCK-ADDED vda /, 30_000); // the guest's disk watcher is running
    const volPath = join(stateDir, 'vol-test.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', volPath, '64M']);
    const volumeId = `vol-${short}`;
    const t0 = Date.now();
    const dev = await driver.attachVolume(uuid, { volumeId, path: volPath, format: 'qcow2' });
    assert.equal(dev, 'vdb');
    await waitConsole(new RegExp(`STRATUS-BLOCK-ADDED vdb bytes=67108864 serial=${volumeId}`), 30_000);
    timings.attachToGuestMs = Date.now() - t0;
    assert.deepEqual((await driver.listVolumes(uuid)).map((v) => [v.volumeId, v.device]), [[volumeId, 'vdb']]);
    // live extend: QEMU grows the file-backed volume and the guest sees the new size
    await driver.extendVolume(uuid, volumeId, 128 * 1024 * 1024);
    await typeOnConsole(`echo VDB-SECTORS-$(cat /sys/block/vdb/size)-${short}`);
    await waitConsole(new RegExp(`VDB-SECTORS-262144-${short}`), 30_000);
    const t1 = Date.now();
    await driver.detachVolume(uuid, volumeId, { timeoutS: 30 });
    timings.detachMs = Date.now() - t1;
    await waitConsole(/STRATUS-BLOCK-REMOVED vdb/, 30_000);
    assert.deepEqual(await driver.listVolumes(uuid), []);
    const vinfo = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', volPath], { encoding: 'utf8' })) as Record<string, unknown>;
    assert.equal(vinfo['virtual-size'], 128 * 1024 * 1024); // released by QEMU (no -U needed) and grown
  });

  it('snapshots the running disk to a standalone qcow2', async () => {
    const out = join(stateDir, 'snap.qcow2');
    await driver.snapshot(uuid, out);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', out], { encoding: 'utf8' })) as Record<string, unknown>;
    assert.equal(info.format, 'qcow2');
    assert.equal(info['backing-filename'], undefined);
    assert.ok((await stat(out)).size > 1024 * 1024);
    assert.equal((await driver.getInfo(uuid)).powerState, 'running');
  });

  it('is adopted by a new driver object (agent restart)', async () => {
    const pid = await livePid();
    await driver.close();
    driver = new QemuDriver(opts());
    await driver.init();
    assert.deepEqual(await driver.listInstances(), [uuid]);
    const info = await driver.getInfo(uuid);
    assert.equal(info.powerState, 'running');
    assert.equal(info.pid, pid);
    // the reconnected monitor works
    await driver.pause(uuid);
    assert.equal((await driver.getInfo(uuid)).powerState, 'paused');
    await driver.unpause(uuid);
  });

  it('suspends to disk and resumes the same boot', async () => {
    const t0 = Date.now();
    await driver.suspend(uuid);
    timings.suspendMs = Date.now() - t0;
    assert.deepEqual(await driver.getInfo(uuid), { powerState: 'suspended' });
    const t1 = Date.now();
    await driver.resume(uuid);
    timings.resumeMs = Date.now() - t1;
    await livePid();
    assert.equal((await driver.getInfo(uuid)).powerState, 'running');
    const probe = `RESUMED-${short}`;
    await typeOnConsole(`echo ${probe}-$((6*7))`);
    await waitConsole(new RegExp(`${probe}-42`), 30_000);
    // same boot: no second marker in this console log
    assert.equal((await driver.consoleOutput(uuid)).match(/STRATUS-GUEST-READY/g)?.length, 1);
  });

  it('powers off cleanly (ACPI) and on again', async () => {
    const pid = await livePid();
    const t0 = Date.now();
    await driver.powerOff(uuid, { timeoutS: 30 });
    timings.powerOffMs = Date.now() - t0;
    assert.deepEqual(await driver.getInfo(uuid), { powerState: 'shutdown' });
    assert.equal(await pidAlive(pid), false);
    assert.match(await driver.consoleOutput(uuid), /STRATUS-GUEST-POWEROFF/);

    const t1 = Date.now();
    await driver.powerOn(uuid);
    const pid2 = await livePid();
    assert.notEqual(pid2, pid);
    await waitConsole(new RegExp(`STRATUS-GUEST-READY hostname=${hostname} instance-id=${uuid} `));
    timings.powerOnToMarkerMs = Date.now() - t1;
  });

  it('reboots soft (ACPI off + start) and hard (new process)', async () => {
    for (const hard of [false, true]) {
      const pid = await livePid();
      const t0 = Date.now();
      await driver.reboot(uuid, hard);
      const pid2 = await livePid();
      assert.notEqual(pid2, pid);
      assert.equal(await pidAlive(pid), false);
      await waitConsole(new RegExp(`STRATUS-GUEST-READY hostname=${hostname} instance-id=${uuid} `));
      timings[hard ? 'hardRebootToMarkerMs' : 'softRebootToMarkerMs'] = Date.now() - t0;
    }
  });

  it('resizes a running instance: vCPUs, memory, bigger root disk', async () => {
    await assert.rejects(driver.resize(uuid, { vcpus: 1, memoryMb: 256, rootGb: 0.5 }), /cannot shrink/);
    await driver.resize(uuid, { vcpus: 2, memoryMb: 320, rootGb: 2 });
    assert.equal((await driver.getInfo(uuid)).powerState, 'running');
    await waitConsole(new RegExp(`STRATUS-GUEST-READY hostname=${hostname} `));
    await waitConsole(/STRATUS-BLOCK-ADDED vda bytes=2147483648 /, 30_000);
    await typeOnConsole(`echo NPROC-$(nproc)-MEM-$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)-${short}`);
    const line = await waitConsole(new RegExp(`NPROC-\\d+-MEM-\\d+-${short}`), 30_000);
    const [, nproc, memMb] = /NPROC-(\d+)-MEM-(\d+)/.exec(line)!;
    assert.equal(Number(nproc), 2);
    assert.ok(Number(memMb) > 256 && Number(memMb) <= 320, `guest memory ${memMb} MiB`);
  });

  it('rescues (boots the rescue image, own disk second) and unrescues', async () => {
    await driver.rescue(uuid, { imagePath: image.qcow2, imageFormat: 'qcow2' });
    await waitConsole(new RegExp(`STRATUS-GUEST-READY hostname=${hostname} `));
    await waitConsole(/STRATUS-BLOCK-ADDED vdb bytes=2147483648 /, 30_000); // the instance's own (resized) disk
    await waitConsole(new RegExp(`STRATUS-BLOCK-ADDED vda bytes=${image.size} `), 30_000);
    await driver.unrescue(uuid);
    await waitConsole(new RegExp(`STRATUS-GUEST-READY hostname=${hostname} `));
    await waitConsole(/STRATUS-BLOCK-ADDED vda bytes=2147483648 /, 30_000);
    assert.equal(existsSync(join(stateDir, uuid, 'disk.rescue.qcow2')), false);
  });

  it('destroys: no process, no dir, idempotent', async () => {
    const pid = await livePid();
    await driver.destroy(uuid);
    assert.equal(await pidAlive(pid), false);
    assert.equal(existsSync(join(stateDir, uuid)), false);
    assert.deepEqual(await driver.getInfo(uuid), { powerState: 'nostate' });
    assert.deepEqual(await driver.listInstances(), []);
    await driver.destroy(uuid);
  });
});
