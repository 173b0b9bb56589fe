/**
 * Compute end to end with real QEMU guests (TCG), judged by the real
 * `openstack` CLI. The guest image is the seeded Stratus guest: it prints
 * `STRATUS-GUEST-READY hostname=H ...` and runs `#!` user data.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { consoleMatch, deleteServersAndStop, hasOpenstackCli, openstack, osJson, osOk, type RunningCloud, startCloud, waitFor } from '../helpers/cloud-process.js';

const D = 'stratus-demo' as const;
const A = 'stratus-admin' as const;
let cloud: RunningCloud;
const work = mkdtempSync(join(tmpdir(), 'stratus-e2e-compute-'));
const hasQemu = existsSync('/usr/bin/qemu-system-x86_64');
const skip = (!hasOpenstackCli() && 'python3-openstackclient not installed') || (!hasQemu && 'qemu-system-x86 not installed');

before(async () => {
  if (skip) return;
  cloud = await startCloud({ env: { STRATUS_GUEST_IMAGE_CACHE: process.env.STRATUS_GUEST_IMAGE_CACHE ?? '/var/tmp/stratus-test-cache/guest-image', STRATUS_COMPUTE__ACCEL: 'tcg' }, timeoutMs: 600_000 });
});
after(async () => {
  try {
    await deleteServersAndStop(cloud);
  } finally {
    // The keypair's private key and the user-data script.
    rmSync(work, { recursive: true, force: true });
  }
});

const status = async (name: string, who: typeof D | typeof A = D) => String((await osJson(cloud, who, ['server', 'show', name])).status);
const waitStatus = (name: string, want: string, t = 180_000) => waitFor(`${name} ${want}`, async () => (await status(name)) === want, t);
const consoleHas = (name: string, re: RegExp, t = 180_000) => consoleMatch(cloud, D, name, re, t);
const pidOf = (id: string) => {
  const f = join(cloud.dataDir, 'instances', id, 'qemu.pid');
  return existsSync(f) ? Number(readFileSync(f, 'utf8').trim()) : null;
};
const alive = (pid: number | null) => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('servers boot real guests and obey the lifecycle', { skip, timeout: 1_500_000 }, async (t) => {
  const images = await osJson<{ Name: string; Status: string }[]>(cloud, D, ['image', 'list']);
  const seeded = images.find((i) => i.Status === 'active');
  assert.ok(seeded, 'a seeded active image exists');
  const image = seeded.Name;
  await osOk(cloud, D, ['keypair', 'create', '--private-key', join(work, 'k.pem'), 'k']);
  const ud = join(work, 'ud.sh');
  writeFileSync(ud, '#!/bin/sh\necho "USERDATA-MARK value=e2e-42"\n');

  let s1: Record<string, unknown> = {};
  await t.test('server create --wait reaches ACTIVE and the console shows hostname and user data', async () => {
    s1 = await osJson(cloud, D, ['server', 'create', '--image', image, '--flavor', 'm1.tiny', '--key-name', 'k', '--user-data', ud, '--wait', 's1']);
    assert.equal(s1.status, 'ACTIVE');
    const out = await consoleHas('s1', /STRATUS-GUEST-READY hostname=s1\b/);
    assert.match(out.input, /instance-id=/);
    await consoleHas('s1', /USERDATA-MARK value=e2e-42/);
  });

  await t.test('stop, start, hard reboot, pause/unpause', async () => {
    await osOk(cloud, D, ['server', 'stop', 's1']);
    await waitStatus('s1', 'SHUTOFF');
    await osOk(cloud, D, ['server', 'start', 's1']);
    await waitStatus('s1', 'ACTIVE');
    await osOk(cloud, D, ['server', 'reboot', '--hard', '--wait', 's1']);
    assert.equal(await status('s1'), 'ACTIVE');
    await osOk(cloud, D, ['server', 'pause', 's1']);
    await waitStatus('s1', 'PAUSED');
    await osOk(cloud, D, ['server', 'unpause', 's1']);
    await waitStatus('s1', 'ACTIVE');
  });

  await t.test('an action not allowed in the current state is refused (409)', async () => {
    const r = await openstack(cloud, D, ['server', 'unpause', 's1']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /409/);
  });

  await t.test('resize to m1.small and confirm', async () => {
    await osOk(cloud, D, ['server', 'resize', '--flavor', 'm1.small', '--wait', 's1']);
    await waitStatus('s1', 'VERIFY_RESIZE');
    await osOk(cloud, D, ['server', 'resize', 'confirm', 's1']);
    await waitStatus('s1', 'ACTIVE');
    const shown = await osJson(cloud, D, ['server', 'show', 's1']);
    assert.match(String(shown.flavor), /m1\.small|2\b/);
  });

  await t.test('snapshot, and a second server boots from it', async () => {
    await osOk(cloud, D, ['server', 'image', 'create', '--name', 'snap1', '--wait', 's1']);
    const img = await osJson(cloud, D, ['image', 'show', 'snap1']);
    assert.equal(img.status, 'active');
    const s2 = await osJson(cloud, D, ['server', 'create', '--image', 'snap1', '--flavor', 'm1.tiny', '--wait', 's2']);
    assert.equal(s2.status, 'ACTIVE');
    await consoleHas('s2', /STRATUS-GUEST-READY hostname=s2\b/);
  });

  await t.test('delete leaves no process, tap or file', async () => {
    const links = () => execFileSync('ip', ['-n', cloud.hostNetns!, '-o', 'link', 'show'], { encoding: 'utf8' });
    for (const name of ['s1', 's2']) {
      const id = String((await osJson(cloud, D, ['server', 'show', name])).id);
      const ports = (await osOk(cloud, D, ['port', 'list', '--server', id, '-f', 'value', '-c', 'ID'])).split('\n').filter(Boolean);
      const taps = ports.map((p) => `tap${p.slice(0, 11)}`);
      const pid = pidOf(id);
      assert.ok(alive(pid), 'QEMU runs before delete');
      for (const tap of taps) assert.ok(links().includes(tap), `tap ${tap} exists before delete`);
      await osOk(cloud, D, ['server', 'delete', '--wait', name]);
      assert.ok(!alive(pid), 'QEMU process is gone');
      assert.ok(!existsSync(join(cloud.dataDir, 'instances', id)), 'instance dir is gone');
      for (const tap of taps) assert.ok(!links().includes(tap), `tap ${tap} is gone`);
      for (const p of ports) assert.notEqual((await openstack(cloud, D, ['port', 'show', p])).code, 0, `port ${p} was deleted with the server`);
    }
  });

  await t.test('ten at once all reach ACTIVE; an eleventh is over quota', async () => {
    await osOk(cloud, D, ['server', 'create', '--image', image, '--flavor', 'm1.nano', '--min', '10', '--max', '10', '--wait', 'many']);
    const list = await osJson<{ Name: string; Status: string }[]>(cloud, D, ['server', 'list']);
    const many = list.filter((s) => s.Name.startsWith('many'));
    assert.equal(many.length, 10);
    await waitFor('all 10 ACTIVE', async () => (await osJson<{ Status: string; Name: string }[]>(cloud, D, ['server', 'list'])).filter((s) => s.Name.startsWith('many') && s.Status === 'ACTIVE').length === 10, 300_000);
    const r = await openstack(cloud, D, ['server', 'create', '--image', image, '--flavor', 'm1.nano', 'eleventh']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Quota exceeded for instances/);
  });

  await t.test('a restart of stratus keeps guests running with the same QEMU processes', async () => {
    const before = (await osJson<{ ID: string; Name: string }[]>(cloud, D, ['server', 'list'])).filter((s) => s.Name.startsWith('many'));
    const pids = new Map(before.map((s) => [s.ID, pidOf(s.ID)]));
    assert.ok([...pids.values()].every(alive));
    assert.equal(await cloud.stop(), 0);
    assert.ok([...pids.values()].every(alive), 'guests outlive the stratus process');
    cloud = await startCloud({ dataDir: cloud.dataDir, port: cloud.port, hostNetns: cloud.hostNetns ?? false, env: { STRATUS_GUEST_IMAGE_CACHE: process.env.STRATUS_GUEST_IMAGE_CACHE ?? '/var/tmp/stratus-test-cache/guest-image', STRATUS_COMPUTE__ACCEL: 'tcg' } });
    const after = await osJson<{ ID: string; Status: string; Name: string }[]>(cloud, D, ['server', 'list']);
    for (const s of after.filter((x) => x.Name.startsWith('many'))) {
      assert.equal(s.Status, 'ACTIVE');
      assert.equal(pidOf(s.ID), pids.get(s.ID), 'same pid');
      assert.ok(alive(pidOf(s.ID)));
    }
  });

  await t.test('bad input: too-small flavor (400), unknown image (400), unknown flavor (400)', async () => {
    const before = (await osJson<unknown[]>(cloud, A, ['server', 'list', '--all-projects'])).length;
    await osOk(cloud, A, ['image', 'set', '--min-ram', '1024', image]);
    const small = await openstack(cloud, D, ['server', 'create', '--image', image, '--flavor', 'm1.nano', 'toosmall']);
    assert.match(small.stderr, /too small/);
    await osOk(cloud, A, ['image', 'set', '--min-ram', '0', image]);
    const noimg = await openstack(cloud, D, ['server', 'create', '--image', '00000000-0000-0000-0000-000000000000', '--flavor', 'm1.nano', 'x']);
    assert.notEqual(noimg.code, 0);
    const noflv = await openstack(cloud, D, ['server', 'create', '--image', image, '--flavor', 'no-such-flavor', 'x']);
    assert.notEqual(noflv.code, 0);
    assert.equal((await osJson<unknown[]>(cloud, A, ['server', 'list', '--all-projects'])).length, before, 'no partial instance');
  });

  await t.test('deleting everything leaves no QEMU process and no instance dir', async () => {
    const list = await osJson<{ ID: string }[]>(cloud, D, ['server', 'list']);
    const pids = list.map((s) => pidOf(s.ID));
    for (const s of list) await osOk(cloud, D, ['server', 'delete', '--wait', s.ID]);
    assert.ok(pids.every((p) => !alive(p)));
    const dirs = readdirSync(join(cloud.dataDir, 'instances')).filter((d) => /^[0-9a-f-]{36}$/.test(d));
    assert.deepEqual(dirs, []);
  });
});
