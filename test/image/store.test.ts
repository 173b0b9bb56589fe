/**
 * The file-system image store and its ingest ring: digests and bytes are
 * exact whatever the chunking (slot boundaries, O_DIRECT-sized and odd
 * tails), failures leave nothing behind, ranges read back exactly.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FilesystemStore, StoreLimitError, StoreNotFoundError } from '../../src/image/drivers/store.js';
import { IngestRing, SLOT_BYTES } from '../../src/image/drivers/ingest.js';

const dir = mkdtempSync(join(tmpdir(), 'stratus-image-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');
async function* chunks(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = sizes[i++ % sizes.length]!;
    yield data.subarray(off, off + n);
    off += n;
  }
}
const collect = async (r: Readable) => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

test('put/get round trip with digests, for sizes around slot and block boundaries and odd chunkings', async () => {
  const store = new FilesystemStore(join(dir, 'a'));
  await store.init();
  const sizes = [0, 1, 4095, 4096, 4097, SLOT_BYTES - 1, SLOT_BYTES, SLOT_BYTES + 1, 3 * SLOT_BYTES + 12345, 20 * SLOT_BYTES + 7];
  for (const size of sizes) {
    const data = randomBytes(size);
    const key = `img-${size}`;
    const res = await store.put(key, chunks(data, [65536, 1000, 3 * SLOT_BYTES, 7]));
    assert.equal(res.size, size);
    assert.equal(res.md5, md5(data), `md5 for ${size}`);
    assert.equal(res.sha512, sha512(data), `sha512 for ${size}`);
    assert.ok(readFileSync(store.path(key)).equals(data), `bytes for ${size}`);
    assert.equal(await store.size(key), size);
  }
  assert.deepEqual(readdirSync(join(dir, 'a')).filter((f) => f.endsWith('.tmp')), []);
});

test('ranges read back exactly; missing objects are StoreNotFoundError; delete is idempotent', async () => {
  const store = new FilesystemStore(join(dir, 'b'));
  await store.init();
  const data = randomBytes(3 * SLOT_BYTES + 5);
  await store.put('x', Readable.from([data]));
  assert.ok((await collect(await store.get('x'))).equals(data));
  assert.ok((await collect(await store.get('x', { start: 10, end: SLOT_BYTES + 20 }))).equals(data.subarray(10, SLOT_BYTES + 21)));
  await assert.rejects(store.get('nope'), StoreNotFoundError);
  assert.equal(await store.size('nope'), null);
  await store.delete('x');
  await store.delete('x');
  assert.equal(await store.size('x'), null);
  assert.throws(() => store.path('../etc/passwd'));
});

test('maxBytes and source errors fail the put and leave no file, no temporary', async () => {
  const store = new FilesystemStore(join(dir, 'c'));
  await store.init();
  await assert.rejects(store.put('big', chunks(randomBytes(5 * SLOT_BYTES), [SLOT_BYTES / 2]), { maxBytes: 2 * SLOT_BYTES }), StoreLimitError);
  async function* failing() {
    yield randomBytes(3 * SLOT_BYTES);
    throw new Error('client went away');
  }
  await assert.rejects(store.put('broken', failing()), /client went away/);
  assert.deepEqual(readdirSync(join(dir, 'c')), []);
  // a put that fails does not disturb an existing object of the same key
  const keep = randomBytes(1000);
  await store.put('keep', Readable.from([keep]));
  await assert.rejects(store.put('keep', failing()), /client went away/);
  assert.ok(readFileSync(store.path('keep')).equals(keep));
});

test('the ring hashes inline too (one-CPU hosts), and its sink sees every byte at its offset', async () => {
  const data = randomBytes(2 * SLOT_BYTES + 999);
  for (const inlineHashing of [true, false]) {
    const out = Buffer.alloc(data.length);
    const positions: number[] = [];
    const ring = new IngestRing(async (buf, pos) => {
      positions.push(pos);
      Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).copy(out, pos);
    }, { inlineHashing });
    for await (const c of chunks(data, [300_000])) {
      const w = ring.push(c);
      if (w) await w;
    }
    const r = await ring.finish();
    assert.equal(r.md5, md5(data));
    assert.equal(r.sha512, sha512(data));
    assert.ok(out.equals(data));
    assert.deepEqual(positions.sort((a, b) => a - b), [0, SLOT_BYTES, 2 * SLOT_BYTES]);
  }
});

test('a failing sink fails the stream', async () => {
  const ring = new IngestRing(async () => {
    throw new Error('disk full');
  });
  await assert.rejects(async () => {
    for await (const c of chunks(randomBytes(12 * SLOT_BYTES), [SLOT_BYTES])) {
      const w = ring.push(c);
      if (w) await w;
    }
    await ring.finish();
  }, /disk full/);
  await ring.abort();
});

test('file systems without O_DIRECT (tmpfs) fall back to buffered writes', { skip: !existsSync('/dev/shm') && 'no /dev/shm' }, async () => {
  const shm = mkdtempSync('/dev/shm/stratus-image-store-');
  try {
    const store = new FilesystemStore(shm);
    await store.init();
    const data = randomBytes(2 * SLOT_BYTES + 3);
    const res = await store.put('x', chunks(data, [100_000]));
    assert.equal(res.md5, md5(data));
    assert.ok(readFileSync(store.path('x')).equals(data));
  } finally {
    rmSync(shm, { recursive: true, force: true });
  }
});
