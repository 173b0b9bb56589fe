/**
 * Object storage end to end, judged by Debian's python3-swiftclient
 * (`/usr/bin/swift`) against a freshly started `./stratus up`, with the
 * credentials of the cloud's openrc files: post, upload, download with equal
 * checksums, listings with prefix/delimiter, stat, copy, delete, a 1 GiB
 * segmented upload (DLO, and SLO with --use-slo) and its download, TempURL,
 * a public-read ACL, and project isolation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync, ftruncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCloud, type RunningCloud } from '../helpers/cloud-process.js';

let cloud: RunningCloud;
const work = mkdtempSync(join(tmpdir(), 'stratus-swift-e2e-'));
const hasSwift = existsSync('/usr/bin/swift');

before(async () => {
  if (hasSwift) cloud = await startCloud();
});
after(async () => {
  await cloud?.stop();
  cloud?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** The OS_* variables of `<data>/<who>-openrc.sh`. */
function openrc(who: 'admin' | 'demo'): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(cloud.dataDir, `${who}-openrc.sh`), 'utf8').split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (v.startsWith("'")) v = v.slice(1, -1).replace(/'\\''/g, "'");
    env[m[1]!] = v;
  }
  return env;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function swift(who: 'admin' | 'demo' | null, args: string[], env: Record<string, string> = {}, timeout = 600_000, cwd = work): Promise<Run> {
  return new Promise((res) => {
    execFile(
      '/usr/bin/swift',
      args,
      { cwd, env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...(who ? openrc(who) : {}), ...env }, timeout, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function ok(who: 'admin' | 'demo', args: string[], env?: Record<string, string>): Promise<string> {
  const r = await swift(who, args, env);
  assert.equal(r.code, 0, `swift ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const md5File = (path: string) =>
  new Promise<string>((res, rej) => {
    const h = createHash('md5');
    createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })
      .on('data', (d) => h.update(d))
      .on('end', () => res(h.digest('hex')))
      .on('error', rej);
  });

/** A sparse file of `size` bytes with random 1 MiB blocks every 64 MiB (so segments differ). */
function makeBigFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    for (let off = 0; off < size; off += 64 * 1024 * 1024) writeSync(fd, randomBytes(1024 * 1024), 0, 1024 * 1024, off);
  } finally {
    closeSync(fd);
  }
}

function storageUrl(stat: string): string {
  // `swift stat -v` prints "StorageURL: http://..."
  const m = /StorageURL: (\S+)/.exec(stat);
  assert.ok(m, stat);
  return m[1]!;
}

test('swift CLI drives the object store', { skip: !hasSwift && 'python3-swiftclient not installed' }, async (t) => {
  const D = 'demo' as const;

  await t.test('stat shows the account at the catalog endpoint; post creates a container with metadata', async () => {
    const stat = await ok(D, ['stat', '-v']);
    assert.match(storageUrl(stat), /\/object\/v1\/AUTH_[0-9a-f]+$/);
    await ok(D, ['post', '-m', 'Color:blue', 'e2e']);
    const cstat = await ok(D, ['stat', 'e2e']);
    assert.match(cstat, /Container: e2e/);
    assert.match(cstat, /Meta Color: blue/);
  });

  await t.test('upload, download with equal checksums, list --prefix --delimiter, stat, copy, delete', async () => {
    mkdirSync(join(work, 'up', 'dir', 'sub'), { recursive: true });
    const files = { 'a.bin': randomBytes(3 * 1024 * 1024 + 17), 'dir/b.txt': Buffer.from('bee\n'), 'dir/sub/c.txt': Buffer.from('sea\n') };
    for (const [n, d] of Object.entries(files)) writeFileSync(join(work, 'up', n), d);
    // upload: relative paths become object names
    const r = await swift(D, ['upload', 'e2e', 'a.bin', 'dir'], {}, 120_000, join(work, 'up'));
    assert.equal(r.code, 0, r.stderr);
    const list = (await ok(D, ['list', 'e2e'])).split('\n').filter(Boolean);
    assert.deepEqual(list, ['a.bin', 'dir/b.txt', 'dir/sub/c.txt']);
    assert.deepEqual((await ok(D, ['list', 'e2e', '--prefix', 'dir/', '--delimiter', '/'])).split('\n').filter(Boolean), ['dir/b.txt', 'dir/sub/']);
    assert.deepEqual((await ok(D, ['list', 'e2e', '--delimiter', '/'])).split('\n').filter(Boolean), ['a.bin', 'dir/']);
    // download (swiftclient checks the MD5 against the ETag itself) and compare
    await ok(D, ['download', 'e2e', 'a.bin', '-o', join(work, 'a.down')]);
    assert.equal(await md5File(join(work, 'a.down')), createHash('md5').update(files['a.bin']).digest('hex'));
    const ostat = await ok(D, ['stat', 'e2e', 'a.bin']);
    assert.match(ostat, new RegExp(`Content Length: ${files['a.bin'].length}`));
    assert.match(ostat, new RegExp(`ETag: ${createHash('md5').update(files['a.bin']).digest('hex')}`));
    await ok(D, ['copy', '--destination', '/e2e/a-copy.bin', 'e2e', 'a.bin']);
    await ok(D, ['download', 'e2e', 'a-copy.bin', '-o', join(work, 'a-copy.down')]);
    assert.equal(await md5File(join(work, 'a-copy.down')), createHash('md5').update(files['a.bin']).digest('hex'));
    await ok(D, ['delete', 'e2e', 'a-copy.bin', 'dir/b.txt']);
    assert.deepEqual((await ok(D, ['list', 'e2e'])).split('\n').filter(Boolean), ['a.bin', 'dir/sub/c.txt']);
  });

  await t.test('upload -S 104857600 of a 1 GiB file (DLO segments) and its download with equal MD5; delete removes the segments', async () => {
    const big = join(work, 'big.bin');
    makeBigFile(big, 1024 * 1024 * 1024);
    const want = await md5File(big);
    try {
      await ok(D, ['upload', '-S', '104857600', '--object-name', 'big.bin', 'e2e', big]);
      const segs = (await ok(D, ['list', 'e2e_segments'])).split('\n').filter(Boolean);
      assert.equal(segs.length, 11);
      const st = await ok(D, ['stat', 'e2e', 'big.bin']);
      assert.match(st, /Content Length: 1073741824/);
      assert.match(st, /Manifest: e2e_segments\//);
      await ok(D, ['download', 'e2e', 'big.bin', '-o', join(work, 'big.down')]);
      assert.equal(await md5File(join(work, 'big.down')), want);
      rmSync(join(work, 'big.down'), { force: true });
      await ok(D, ['delete', 'e2e', 'big.bin']);
      assert.equal((await ok(D, ['list', 'e2e_segments'])).trim(), '');
    } finally {
      rmSync(big, { force: true });
      rmSync(join(work, 'big.down'), { force: true });
    }
  });

  await t.test('upload --use-slo -S of a 48 MiB file: SLO manifest, download with equal MD5, delete with segments', async () => {
    const f = join(work, 'slo.bin');
    makeBigFile(f, 48 * 1024 * 1024);
    const want = await md5File(f);
    await ok(D, ['upload', '--use-slo', '-S', '10485760', '--object-name', 'slo.bin', 'e2e', f]);
    const st = await ok(D, ['stat', 'e2e', 'slo.bin']);
    assert.match(st, /Content Length: 50331648/);
    await ok(D, ['download', 'e2e', 'slo.bin', '-o', join(work, 'slo.down')]);
    assert.equal(await md5File(join(work, 'slo.down')), want);
    await ok(D, ['delete', 'e2e', 'slo.bin']);
    assert.equal((await ok(D, ['list', 'e2e_segments'])).trim(), '');
    rmSync(f, { force: true });
    rmSync(join(work, 'slo.down'), { force: true });
  });

  await t.test('tempurl then a plain HTTP GET', async () => {
    await ok(D, ['post', '-m', 'Temp-URL-Key:e2e-secret']);
    const url = storageUrl(await ok(D, ['stat', '-v']));
    const account = url.slice(url.indexOf('/v1/') + 4);
    const path = (await ok(D, ['tempurl', 'GET', '600', `/v1/${account}/e2e/a.bin`, 'e2e-secret'])).trim();
    assert.match(path, /^\/v1\/AUTH_\w+\/e2e\/a\.bin\?temp_url_sig=[0-9a-f]{40,128}&temp_url_expires=\d+$/);
    const r = await fetch(`${cloud.url}/object${path}`);
    assert.equal(r.status, 200);
    assert.equal(createHash('md5').update(Buffer.from(await r.arrayBuffer())).digest('hex'), await md5File(join(work, 'a.down')));
    const bad = await fetch(`${cloud.url}/object${path.replace(/temp_url_sig=[0-9a-f]{4}/, 'temp_url_sig=0000')}`);
    assert.equal(bad.status, 401);
  });

  await t.test("ACL .r:* allows an unauthenticated read; demo cannot read another project's container", async () => {
    await ok(D, ['post', '-r', '.r:*', 'e2e-public']);
    writeFileSync(join(work, 'pub.txt'), 'public data\n');
    await ok(D, ['upload', '--object-name', 'pub.txt', 'e2e-public', join(work, 'pub.txt')]);
    const url = storageUrl(await ok(D, ['stat', '-v']));
    const r = await fetch(`${url}/e2e-public/pub.txt`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'public data\n');
    assert.equal((await fetch(`${url}/e2e`)).status, 401);
    // admin's container is out of demo's reach
    await ok('admin', ['post', 'admin-private']);
    writeFileSync(join(work, 'adm.txt'), 'admin only\n');
    await ok('admin', ['upload', '--object-name', 'adm.txt', 'admin-private', join(work, 'adm.txt')]);
    const adminUrl = storageUrl(await ok('admin', ['stat', '-v']));
    const denied = await swift(D, ['--os-storage-url', adminUrl, 'download', 'admin-private', 'adm.txt', '-o', '-']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr + denied.stdout, /403/);
    const listDenied = await swift(D, ['--os-storage-url', adminUrl, 'list', 'admin-private']);
    assert.notEqual(listDenied.code, 0);
    assert.match(listDenied.stderr + listDenied.stdout, /403/);
  });
});
