import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildCpio, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from '../../../src/image/seed/cpio.js';
import { buildMbr, chs } from '../../../src/image/seed/mbr.js';

const hasCpio = (() => {
  try {
    execFileSync('cpio', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('cpio newc writer', () => {
  const entries = [
    { name: 'bin', mode: S_IFDIR | 0o755 },
    { name: 'bin/hello', mode: S_IFREG | 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
    { name: 'bin/sh', mode: S_IFLNK | 0o777, data: Buffer.from('busybox') },
    { name: 'dev', mode: S_IFDIR | 0o755 },
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
  ];

  it('writes 4-byte aligned headers, names and data, and a trailer', () => {
    const buf = buildCpio(entries);
    assert.equal(buf.length % 4, 0);
    assert.equal(buf.subarray(0, 6).toString(), '070701');
    // first header: mode field (2nd) = dir 0755, namesize field (12th) = "bin\0"
    const h = buf.subarray(0, 110).toString();
    assert.equal(parseInt(h.slice(14, 22), 16), S_IFDIR | 0o755);
    assert.equal(parseInt(h.slice(94, 102), 16), 4);
    assert.equal(buf.subarray(110, 113).toString(), 'bin');
    assert.ok(buf.includes(Buffer.from('TRAILER!!!\0')));
    assert.ok(buf.includes(Buffer.from('#!/bin/sh\necho hi\n')));
  });

  it('is readable by GNU cpio (names, modes, symlinks, device nodes)', { skip: hasCpio ? false : 'cpio not installed' }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cpio-test-'));
    try {
      await writeFile(join(dir, 'a.cpio'), buildCpio(entries));
      const list = execFileSync('cpio', ['-itv', '--quiet', '-F', join(dir, 'a.cpio')], { encoding: 'utf8' });
      assert.match(list, /^-rwxr-xr-x .* bin\/hello$/m);
      assert.match(list, /^lrwxrwxrwx .* bin\/sh -> busybox$/m);
      assert.match(list, /^crw------- .* 5,\s+1 .* dev\/console$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('MBR writer', () => {
  it('writes one bootable partition entry, CHS and the signature', () => {
    const code = Buffer.alloc(440, 0xfa);
    const mbr = buildMbr(code, [{ startLba: 2048, sectors: 40960, type: 0x0e, bootable: true }], 0x12345678);
    assert.equal(mbr.length, 512);
    assert.deepEqual(mbr.subarray(0, 440), code);
    assert.equal(mbr.readUInt32LE(440), 0x12345678);
    assert.equal(mbr[446], 0x80);
    assert.deepEqual([...mbr.subarray(447, 450)], chs(2048));
    assert.deepEqual(chs(2048), [32, 33, 0]); // head 32, sector 33, cylinder 0 for 255/63
    assert.equal(mbr[450], 0x0e);
    assert.equal(mbr.readUInt32LE(454), 2048);
    assert.equal(mbr.readUInt32LE(458), 40960);
    assert.equal(mbr.readUInt16LE(510), 0xaa55);
    assert.deepEqual(chs(100_000_000), [254, 0xff, 0xff]); // clamped
  });

  it('is understood by sfdisk/fdisk when present', { skip: (() => { try { execFileSync('sfdisk', ['--version'], { stdio: 'ignore' }); return false; } catch { return 'sfdisk not installed'; } })() }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mbr-test-'));
    try {
      const img = join(dir, 'd.img');
      const disk = Buffer.alloc(2048 * 512 + 40960 * 512);
      buildMbr(Buffer.alloc(440), [{ startLba: 2048, sectors: 40960, type: 0x0e, bootable: true }], 1).copy(disk);
      await writeFile(img, disk);
      const dump = execFileSync('sfdisk', ['--dump', img], { encoding: 'utf8' });
      assert.match(dump, /start=\s*2048, size=\s*40960, type=e, bootable/);
      assert.ok((await readFile(img)).length > 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
