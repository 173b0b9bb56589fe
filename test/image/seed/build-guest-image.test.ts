/**
 * Builds the guest image into the shared test cache
 * (/var/tmp/stratus-test-cache/guest-image, also used by the compute driver
 * tests), so after the first run this only checks the cached result.
 * Skipped where the Debian tools are missing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildGuestImage } from '../../../src/image/seed/build-guest-image.js';

const CACHE = process.env.STRATUS_TEST_CACHE ?? '/var/tmp/stratus-test-cache';
const OUT = join(CACHE, 'guest-image');

const missing = ['apt-get', 'dpkg-deb', 'mformat', 'mcopy', 'syslinux', 'qemu-img'].filter((c) => {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', c], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});
const skip = missing.length ? `missing host tools: ${missing.join(', ')} (apt-get install mtools syslinux syslinux-common qemu-utils)` : false;

describe('buildGuestImage', { skip, timeout: 300_000 }, () => {
  it('builds a bootable MBR disk with a FAT partition, kernel and initramfs', async () => {
    const img = await buildGuestImage(OUT);
    assert.equal(img.qcow2, join(OUT, 'disk.qcow2'));
    assert.ok(existsSync(img.raw) && existsSync(img.qcow2));
    const manifest = JSON.parse(await readFile(join(OUT, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    assert.match(String(manifest.kernelVersion), /cloud-amd64$/);
    assert.equal(manifest.diskVirtualSize, img.size);

    // MBR: boot signature, one bootable FAT16 (LBA) partition at 1 MiB, SYSLINUX's boot code
    const fh = await open(img.raw, 'r');
    const mbr = Buffer.alloc(512);
    const vbr = Buffer.alloc(512);
    await fh.read(mbr, 0, 512, 0);
    await fh.read(vbr, 0, 512, 1024 * 1024);
    await fh.close();
    assert.equal(mbr.readUInt16LE(510), 0xaa55);
    assert.equal(mbr[446], 0x80);
    assert.equal(mbr[450], 0x0e);
    assert.equal(mbr.readUInt32LE(454), 2048);
    assert.equal(vbr.subarray(54, 59).toString(), 'FAT16');
    assert.equal(vbr.readUInt32LE(28), 2048); // hidden sectors = partition start

    const files = execFileSync('mdir', ['-a', '-b', '-i', `${img.raw}@@1M`, '::/'], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    for (const f of ['vmlinuz', 'initrd.gz', 'syslinux.cfg', 'ldlinux.sys']) assert.match(files, new RegExp(f, 'i'));

    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', img.qcow2], { encoding: 'utf8' })) as Record<string, unknown>;
    assert.equal(info.format, 'qcow2');
    assert.equal(info['virtual-size'], img.size);
  });

  it('returns the cached image at once and removes leftovers of interrupted builds', async () => {
    const stale = join(OUT, '.build-999999999-stale');
    await mkdir(stale, { recursive: true });
    const t0 = Date.now();
    const again = await buildGuestImage(OUT);
    assert.ok(Date.now() - t0 < 2000, `cached call took ${Date.now() - t0} ms`);
    assert.equal(existsSync(stale), false);
    assert.equal(again.qcow2, join(OUT, 'disk.qcow2'));
    // concurrent callers share one result
    const [a, b] = await Promise.all([buildGuestImage(OUT), buildGuestImage(OUT)]);
    assert.deepEqual(a, b);
  });
});
