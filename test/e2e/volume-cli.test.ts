/**
 * Block storage end to end with the real cloud (`./stratus up`, real QEMU
 * guests under TCG, at most two at a time) judged by the real `openstack`
 * CLI: a volume is hot-plugged into a running guest, written from inside
 * the guest, moved to a second guest with its data, snapshotted, cloned
 * from the snapshot, made from the seeded image and booted, extended,
 * backed up to the object store and restored.
 *
 * The guest keeps a root shell on its serial console; the test types
 * commands into the console socket (as recipe 06 does) and reads their
 * output from the console log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { consoleMatch, deleteServersAndStop, hasOpenstackCli, openstack, osJson, osOk, type RunningCloud, startCloud, waitFor } from '../helpers/cloud-process.js';

const D = 'stratus-demo' as const;
const A = 'stratus-admin' as const;
let cloud: RunningCloud;
const hasQemu = existsSync('/usr/bin/qemu-system-x86_64');
const skip = (!hasOpenstackCli() && 'python3-openstackclient not installed') || (!hasQemu && 'qemu-system-x86 not installed');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  if (skip) return;
  cloud = await startCloud({ env: { STRATUS_GUEST_IMAGE_CACHE: process.env.STRATUS_GUEST_IMAGE_CACHE ?? '/var/tmp/stratus-test-cache/guest-image', STRATUS_COMPUTE__ACCEL: 'tcg' }, timeoutMs: 600_000 });
});
after(() => deleteServersAndStop(cloud));

const volStatus = async (name: string) => String((await osJson(cloud, D, ['volume', 'show', name])).status);
const waitVolume = (name: string, want: string, t = 120_000) =>
  waitFor(`volume ${name} ${want}`, async () => {
    const s = await volStatus(name);
    if (s.startsWith('error') && !want.startsWith('error')) throw new Error(`volume ${name} is ${s}`);
    return s === want;
  }, t);
const consoleHas = (name: string, re: RegExp, t = 240_000) => consoleMatch(cloud, D, name, re, t);
const serverId = async (name: string) => String((await osJson(cloud, D, ['server', 'show', name])).id);

/**
 * Runs `cmd` in the guest's root shell on its serial console and returns
 * its output (what the recipes' `gexec` does): the command is framed by
 * unique markers, its output read back from the console log.
 */
async function gexec(name: string, cmd: string, timeoutMs = 90_000): Promise<string> {
  const id = await serverId(name);
  const dir = join(cloud.dataDir, 'instances', id);
  const tag = randomBytes(4).toString('hex');
  const sock = connect(join(dir, 'console.sock'));
  await new Promise<void>((res, rej) => {
    sock.once('connect', () => res());
    sock.once('error', rej);
  });
  sock.write(`echo "@@B${tag}"; ${cmd}; echo "@@E${tag} rc=$?"\n`);
  // QEMU drops unread input on disconnect: stay connected a moment
  await sleep(800);
  sock.end();
  const log = await waitFor(`guest ${name} to run ${cmd}`, async () => {
    const text = readFileSync(join(dir, 'console.log'), 'utf8').replace(/\r/g, '');
    return new RegExp(`@@E${tag} rc=\\d+`).test(text) ? text : undefined;
  }, timeoutMs, 500);
  const lines = log.split('\n');
  const start = lines.findIndex((l) => l === `@@B${tag}`);
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    const i = l.indexOf(`@@E${tag} rc=`);
    if (i >= 0) {
      if (i > 0) out.push(l.slice(0, i));
      const rc = Number(/rc=(\d+)/.exec(l.slice(i))![1]);
      assert.equal(rc, 0, `guest command failed (rc=${rc}): ${cmd}\n${out.join('\n')}`);
      break;
    }
    out.push(l);
  }
  return out.join('\n');
}

/** First bytes of a volume's data as the host sees them (qemu-io on the volume's qcow2 file). */
function hostRead(volumeId: string, len = 16): string {
  const f = join(cloud.dataDir, 'volumes', `volume-${volumeId}.qcow2`);
  // whole 16-byte lines only, so the hex columns are never followed by a short ASCII column
  const out = execFileSync('qemu-io', ['-U', '-r', '-c', `read -v 0 ${Math.ceil(len / 16) * 16}`, f]).toString();
  const hex = out.split('\n').filter((l) => /^[0-9a-f]{8}:/.test(l)).flatMap((l) => l.slice(10, 58).trim().split(/\s+/));
  return Buffer.from(hex.join(''), 'hex').toString('latin1').slice(0, len);
}

const MARK = 'stratus-vol-e2e-data';

test('volumes with the openstack CLI: hot-plug, data, snapshot, boot from volume, extend, backup', { skip, timeout: 1_800_000 }, async (t) => {
  const image = 'stratus-guest';

  await t.test('volume create --size 1 v1', async () => {
    const v = await osJson(cloud, D, ['volume', 'create', '--size', '1', 'v1']);
    assert.equal(v.size, 1);
    await waitVolume('v1', 'available');
  });

  await t.test('server add volume: the guest sees vdb, and writes data into it', async () => {
    const s1 = await osJson(cloud, D, ['server', 'create', '--image', image, '--flavor', 'm1.nano', '--wait', 's1']);
    assert.equal(s1.status, 'ACTIVE');
    await consoleHas('s1', /STRATUS-GUEST-READY hostname=s1\b/);
    await consoleHas('s1', /STRATUS-BLOCK-ADDED vda\b/);
    await osOk(cloud, D, ['server', 'add', 'volume', 's1', 'v1']);
    const v1 = await osJson(cloud, D, ['volume', 'show', 'v1']);
    assert.equal(v1.status, 'in-use');
    const out = await consoleHas('s1', /STRATUS-BLOCK-ADDED vdb bytes=1073741824/);
    assert.match(out.input, new RegExp(`STRATUS-BLOCK-ADDED vdb bytes=1073741824 serial=${String(v1.id).slice(0, 20)}`));
    await gexec('s1', `echo ${MARK} | dd of=/dev/vdb bs=512 count=1 conv=sync,fsync 2>/dev/null; sync`);
    const back = await gexec('s1', 'dd if=/dev/vdb bs=512 count=1 2>/dev/null | head -n1');
    assert.match(back, new RegExp(MARK));
  });

  await t.test('server remove volume: the volume is available again and holds the data', async () => {
    await osOk(cloud, D, ['server', 'remove', 'volume', 's1', 'v1']);
    await waitVolume('v1', 'available', 120_000);
    await consoleHas('s1', /STRATUS-BLOCK-REMOVED vdb/);
    const v1 = await osJson(cloud, D, ['volume', 'show', 'v1']);
    assert.equal(hostRead(String(v1.id), MARK.length), MARK);
  });

  await t.test('attached to a second server, the same data is there', async () => {
    const s2 = await osJson(cloud, D, ['server', 'create', '--image', image, '--flavor', 'm1.nano', '--wait', 's2']);
    assert.equal(s2.status, 'ACTIVE');
    await consoleHas('s2', /STRATUS-GUEST-READY hostname=s2\b/);
    await consoleHas('s2', /STRATUS-BLOCK-ADDED vda\b/);
    await osOk(cloud, D, ['server', 'add', 'volume', 's2', 'v1']);
    await consoleHas('s2', /STRATUS-BLOCK-ADDED vdb/);
    const back = await gexec('s2', 'dd if=/dev/vdb bs=512 count=1 2>/dev/null | head -n1');
    assert.match(back, new RegExp(MARK));
    // a volume that is not multiattach is never attached twice
    const again = await openstack(cloud, D, ['server', 'add', 'volume', 's1', 'v1']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /400|status must be available|Invalid volume/i);
    await osOk(cloud, D, ['server', 'remove', 'volume', 's2', 'v1']);
    await waitVolume('v1', 'available');
    // make room: at most two guests at a time
    await osOk(cloud, D, ['server', 'delete', '--wait', 's1']);
  });

  await t.test('deleting an in-use volume is refused and changes nothing', async () => {
    await osOk(cloud, D, ['server', 'add', 'volume', 's2', 'v1']);
    const del = await openstack(cloud, D, ['volume', 'delete', 'v1']);
    assert.notEqual(del.code, 0);
    assert.match(del.stderr, /400/);
    assert.equal(await volStatus('v1'), 'in-use');
    await osOk(cloud, D, ['server', 'remove', 'volume', 's2', 'v1']);
    await waitVolume('v1', 'available');
  });

  await t.test('volume snapshot create, and volume create --snapshot (copy-on-write, same data)', async () => {
    await osJson(cloud, D, ['volume', 'snapshot', 'create', '--volume', 'v1', 'snap1']);
    await waitFor('snap1 available', async () => (await osJson(cloud, D, ['volume', 'snapshot', 'show', 'snap1'])).status === 'available', 60_000);
    await osJson(cloud, D, ['volume', 'create', '--snapshot', 'snap1', 'v2']);
    await waitVolume('v2', 'available');
    const v2 = await osJson(cloud, D, ['volume', 'show', 'v2']);
    assert.equal(v2.size, 1);
    assert.equal(hostRead(String(v2.id), MARK.length), MARK);
    const file = join(cloud.dataDir, 'volumes', `volume-${String(v2.id)}.qcow2`);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file]).toString()) as { 'backing-filename'?: string; 'actual-size': number };
    assert.ok(info['backing-filename'], 'the clone is an overlay on the snapshot');
    assert.ok(info['actual-size'] < 4 * 1024 * 1024, `the clone is small (${info['actual-size']} bytes)`);
  });

  await t.test('volume create --image --bootable, and server create --volume boots from it', async () => {
    const bv = await osJson(cloud, D, ['volume', 'create', '--image', image, '--bootable', '--size', '1', 'bv']);
    assert.ok(bv.id);
    await waitVolume('bv', 'available');
    const shown = await osJson(cloud, D, ['volume', 'show', 'bv']);
    assert.equal(String(shown.bootable), 'true');
    assert.match(JSON.stringify(shown.volume_image_metadata ?? {}), /image_id/);
    const s3 = await osJson(cloud, D, ['server', 'create', '--volume', 'bv', '--flavor', 'm1.nano', '--wait', 's3']);
    assert.equal(s3.status, 'ACTIVE');
    await consoleHas('s3', /STRATUS-GUEST-READY hostname=s3\b/).catch(async (e) => {
      throw new Error(`${(e as Error).message}\nconsole of s3:\n${(await openstack(cloud, D, ['console', 'log', 'show', 's3'])).stdout.slice(-3000)}`);
    });
    assert.equal(await volStatus('bv'), 'in-use');
    const att = await osJson<{ 'Volume ID': string; Device: string }[]>(cloud, D, ['server', 'volume', 'list', 's3']).catch(() => null);
    if (att) assert.ok(att.some((a) => a.Device === '/dev/vda'));
    await osOk(cloud, D, ['server', 'delete', '--wait', 's3']);
    await waitVolume('bv', 'available');
  });

  await t.test('volume set --size 2 extends; shrinking is refused', async () => {
    await osOk(cloud, D, ['volume', 'set', '--size', '2', 'v1']);
    await waitFor('v1 size 2', async () => {
      const v = await osJson(cloud, D, ['volume', 'show', 'v1']);
      return v.size === 2 && v.status === 'available';
    }, 60_000);
    const shrink = await openstack(cloud, D, ['volume', 'set', '--size', '1', 'v1']);
    assert.notEqual(shrink.code, 0);
    assert.equal((await osJson(cloud, D, ['volume', 'show', 'v1'])).size, 2);
  });

  await t.test('volume backup create and volume backup restore', async () => {
    await osJson(cloud, D, ['volume', 'backup', 'create', '--name', 'b1', 'v1']);
    await waitFor('b1 available', async () => {
      const b = await osJson(cloud, D, ['volume', 'backup', 'show', 'b1']);
      if (b.status === 'error') throw new Error(`backup failed: ${String(b.fail_reason)}`);
      return b.status === 'available';
    }, 300_000, 2000);
    // OSC 6.0 restores, then fails to print the result ("cannot unpack non-iterable
    // VolumeBackupsRestore object"): judge by what the cloud did.
    const r = await openstack(cloud, D, ['volume', 'backup', 'restore', 'b1', 'v1restored']);
    if (r.code !== 0) assert.match(r.stderr, /cannot unpack non-iterable VolumeBackupsRestore/, r.stderr);
    await waitVolume('v1restored', 'available', 300_000);
    const rv = await osJson(cloud, D, ['volume', 'show', 'v1restored']);
    assert.equal(rv.size, 2);
    assert.equal(hostRead(String(rv.id), MARK.length), MARK);
  });
});
