import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import {
  BadRequestError,
  ClientDisconnectError,
  ConflictError,
  EtagMismatchError,
  NotFoundError,
  NotModifiedError,
  ObjectStore,
  PreconditionFailedError,
  RangeNotSatisfiableError,
  TooLargeError,
} from '../../../src/object/store/index.js';
import { filesUnder, md5, pattern, readAll, replicaFiles, withStore } from './helpers.js';

const A = 'AUTH_test';

/** A body delivered in chunks of `chunk` bytes. */
const chunked = (b: Buffer, chunk = 65536) => Readable.from((function* () {
  for (let i = 0; i < b.length; i += chunk) yield b.subarray(i, i + chunk);
})());

describe('ObjectStore: objects', () => {
  test('put, get, head, overwrite, delete', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const r = await store.putObject(A, 'c', 'dir/hello.txt', 'hello world', { contentType: 'text/plain', userMeta: { Color: 'Blue' } });
      assert.equal(r.etag, md5('hello world'));
      assert.equal(r.size, 11);
      assert.match(r.timestamp, /^\d{10}\.\d{5}$/);

      const h = await store.headObject(A, 'c', 'dir/hello.txt');
      assert.equal(h.etag, r.etag);
      assert.equal(h.size, 11);
      assert.equal(h.contentType, 'text/plain');
      assert.deepEqual(h.userMeta, { color: 'Blue' });
      assert.equal(h.timestamp, r.timestamp);

      const g = await store.getObject(A, 'c', 'dir/hello.txt');
      assert.equal((await readAll(g.stream)).toString(), 'hello world');
      assert.equal(g.body?.toString(), 'hello world');
      assert.equal(g.length, 11);

      const r2 = await store.putObject(A, 'c', 'dir/hello.txt', Buffer.from('bye'));
      assert.ok(r2.timestamp > r.timestamp);
      assert.equal((await readAll((await store.getObject(A, 'c', 'dir/hello.txt')).stream)).toString(), 'bye');
      const h2 = await store.headObject(A, 'c', 'dir/hello.txt');
      assert.deepEqual(h2.userMeta, {});
      assert.equal(h2.contentType, 'application/octet-stream');

      const d = await store.deleteObject(A, 'c', 'dir/hello.txt');
      assert.ok(d.timestamp > r2.timestamp);
      await assert.rejects(store.headObject(A, 'c', 'dir/hello.txt'), NotFoundError);
      await assert.rejects(store.getObject(A, 'c', 'dir/hello.txt'), NotFoundError);
      await assert.rejects(store.deleteObject(A, 'c', 'dir/hello.txt'), NotFoundError);
      await assert.rejects(store.getObject(A, 'c', 'never'), NotFoundError);
      await assert.rejects(store.putObject(A, 'nocontainer', 'x', 'y'), NotFoundError);
    } finally {
      await done();
    }
  });

  test('every replica holds one whole file; older versions are cleaned up', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      await store.putObject(A, 'c', 'o', 'one');
      const r = await store.putObject(A, 'c', 'o', 'two');
      await store.close(); // waits for third replicas and cleanups
      const files = await replicaFiles(store, A, 'c', 'o');
      assert.equal(files.length, 3);
      for (const f of files) assert.deepEqual(f.map((p) => p.slice(p.lastIndexOf('/') + 1)), [`${r.timestamp}.data`]);
    } finally {
      await done();
    }
  });

  test('streamed large object round-trips, with ranges', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const data = pattern(3 * 1024 * 1024 + 12345, 7);
      const r = await store.putObject(A, 'c', 'big', chunked(data, 100_000), { expectedSize: data.length, expectedEtag: `"${md5(data)}"` });
      assert.equal(r.etag, md5(data));
      assert.equal(r.size, data.length);
      const g = await store.getObject(A, 'c', 'big');
      assert.equal(g.body, undefined);
      assert.ok((await readAll(g.stream)).equals(data));
      for (const [start, end] of [[0, 0], [1, 262143], [262144, 262144 * 2], [1_000_000, 2_999_999], [data.length - 10, data.length - 1], [5, data.length + 100]] as const) {
        const rg = await store.getObject(A, 'c', 'big', { range: { start, end } });
        const want = data.subarray(start, Math.min(end, data.length - 1) + 1);
        assert.equal(rg.length, want.length);
        assert.ok((await readAll(rg.stream)).equals(want), `range ${start}-${end}`);
      }
      const tail = await store.getObject(A, 'c', 'big', { range: { suffix: 500 } });
      assert.deepEqual(tail.range, { start: data.length - 500, end: data.length - 1 });
      assert.ok((await readAll(tail.stream)).equals(data.subarray(data.length - 500)));
      const path = await store.read(`/${A}/c/big`, { start: 10, end: 19 });
      assert.ok((await readAll(path)).equals(data.subarray(10, 20)));
      await assert.rejects(store.getObject(A, 'c', 'big', { range: { start: data.length } }), RangeNotSatisfiableError);
      // Small object ranges.
      await store.putObject(A, 'c', 'small', 'abcdefghij');
      const s = await store.getObject(A, 'c', 'small', { range: { start: 2, end: 4 } });
      assert.equal(s.body?.toString(), 'cde');
      assert.equal((await readAll(s.stream)).toString(), 'cde');
      await assert.rejects(store.getObject(A, 'c', 'small', { range: { suffix: 0 } }), RangeNotSatisfiableError);
    } finally {
      await done();
    }
  });

  test('empty objects', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const r = await store.putObject(A, 'c', 'empty', Readable.from([]));
      assert.equal(r.etag, md5(''));
      assert.equal(r.size, 0);
      const g = await store.getObject(A, 'c', 'empty');
      assert.equal((await readAll(g.stream)).length, 0);
    } finally {
      await done();
    }
  });

  test('ETag mismatch leaves nothing visible and no files behind', async () => {
    const { store, root, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const before = (await filesUnder(join(root, 'devices'))).length;
      await assert.rejects(store.putObject(A, 'c', 'bad', 'some data', { expectedEtag: md5('other data') }), EtagMismatchError);
      const big = pattern(1024 * 1024, 3);
      await assert.rejects(store.putObject(A, 'c', 'bad-big', chunked(big), { expectedEtag: md5('x') }), (e: unknown) => e instanceof EtagMismatchError && e.status === 422);
      await assert.rejects(store.headObject(A, 'c', 'bad'), NotFoundError);
      await assert.rejects(store.headObject(A, 'c', 'bad-big'), NotFoundError);
      assert.deepEqual((await store.listContainer(A, 'c')).entries, []);
      assert.equal((await store.headContainer(A, 'c')).objectCount, 0);
      await store.close();
      assert.equal((await filesUnder(join(root, 'devices'))).length, before, 'no data, tombstone or temp file was left');
    } finally {
      await done();
    }
  });

  test('size limits and short bodies', async () => {
    const { store, done } = await withStore({ maxObjectSize: 1000 });
    try {
      await store.putContainer(A, 'c');
      await assert.rejects(store.putObject(A, 'c', 'x', pattern(1001)), TooLargeError);
      await assert.rejects(store.putObject(A, 'c', 'x', 'abc', { expectedSize: 5000 }), TooLargeError);
      await assert.rejects(store.putObject(A, 'c', 'x', chunked(pattern(5000), 100)), (e: unknown) => e instanceof TooLargeError && e.status === 413);
      await assert.rejects(store.putObject(A, 'c', 'x', 'abc', { expectedSize: 10 }), ClientDisconnectError);
      await assert.rejects(store.putObject(A, 'c', 'x', 'abcdef', { expectedSize: 3 }), BadRequestError);
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(100));
          this.destroy(new Error('socket reset'));
        },
      });
      await assert.rejects(store.putObject(A, 'c', 'x', failing), ClientDisconnectError);
      await assert.rejects(store.headObject(A, 'c', 'x'), NotFoundError);
    } finally {
      await done();
    }
  });

  test('name and metadata limits', async () => {
    const { store, done } = await withStore();
    try {
      await assert.rejects(store.putContainer(A, 'a/b'), BadRequestError);
      await assert.rejects(store.putContainer(A, 'x'.repeat(257)), BadRequestError);
      await store.putContainer(A, 'x'.repeat(256));
      await store.putContainer(A, 'c');
      await store.putObject(A, 'c', 'é'.repeat(512), 'ok'); // 1024 bytes
      await assert.rejects(store.putObject(A, 'c', 'é'.repeat(512) + 'x', 'no'), BadRequestError);
      await assert.rejects(store.putObject(A, 'c', '', 'no'), BadRequestError);
      await assert.rejects(store.putObject(A, 'c', 'bad\ud800', 'no'), BadRequestError);
      await assert.rejects(store.putObject(A, 'c', 'o', 'x', { userMeta: { k: 'v'.repeat(257) } }), BadRequestError);
      const many = Object.fromEntries(Array.from({ length: 91 }, (_, i) => [`k${i}`, 'v']));
      await assert.rejects(store.putObject(A, 'c', 'o', 'x', { userMeta: many }), BadRequestError);
      await assert.rejects(store.putObject(A, 'c', 'o', 'x', { deleteAt: 1000 }), BadRequestError);
    } finally {
      await done();
    }
  });

  test('last writer wins by timestamp; an older explicit X-Timestamp gets 409', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      await store.putObject(A, 'c', 'o', 'newer', { timestamp: '1800000000.00002' });
      await assert.rejects(store.putObject(A, 'c', 'o', 'older', { timestamp: '1800000000.00001' }), ConflictError);
      await assert.rejects(store.putObject(A, 'c', 'o', 'same', { timestamp: '1800000000.00002' }), ConflictError);
      assert.equal((await store.getObject(A, 'c', 'o')).body?.toString(), 'newer');
      const row = (await store.listContainer(A, 'c')).entries[0] as { size: number; timestamp: string };
      assert.equal(row.size, 5);
      assert.equal(row.timestamp, '1800000000.00002');
      await assert.rejects(store.deleteObject(A, 'c', 'o', { timestamp: '1800000000.00000' }), ConflictError);
      assert.equal((await store.getObject(A, 'c', 'o')).body?.toString(), 'newer');
      await store.deleteObject(A, 'c', 'o', { timestamp: '1800000000.00003' });
      await assert.rejects(store.getObject(A, 'c', 'o'), NotFoundError);
      await assert.rejects(store.putObject(A, 'c', 'o', 'stale', { timestamp: '1800000000.00002' }), ConflictError);
      await assert.rejects(store.getObject(A, 'c', 'o'), NotFoundError);
      assert.equal((await store.headContainer(A, 'c')).objectCount, 0);
      // Concurrent writers without explicit timestamps: the one stamped last wins everywhere.
      const results = await Promise.all(['a', 'bb', 'ccc', 'dddd', 'eeeee'].map((b) => store.putObject(A, 'c', 'race', b).then((r) => ({ b, ts: r.timestamp }))));
      const winner = results.reduce((x, y) => (y.ts > x.ts ? y : x));
      assert.equal((await store.getObject(A, 'c', 'race')).body?.toString(), winner.b);
      assert.equal(((await store.listContainer(A, 'c')).entries[0] as { size: number }).size, winner.b.length);
    } finally {
      await done();
    }
  });

  test('conditional reads and writes', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const r = await store.putObject(A, 'c', 'o', 'data');
      await store.getObject(A, 'c', 'o', { conditions: { ifMatch: `"${r.etag}"` } });
      await assert.rejects(store.getObject(A, 'c', 'o', { conditions: { ifMatch: '"nope"' } }), PreconditionFailedError);
      await assert.rejects(store.headObject(A, 'c', 'o', { ifNoneMatch: r.etag }), NotModifiedError);
      await assert.rejects(store.headObject(A, 'c', 'o', { ifNoneMatch: '*' }), NotModifiedError);
      await store.headObject(A, 'c', 'o', { ifNoneMatch: 'other' });
      await assert.rejects(store.headObject(A, 'c', 'o', { ifModifiedSince: r.lastModified + 5000 }), NotModifiedError);
      await store.headObject(A, 'c', 'o', { ifModifiedSince: r.lastModified - 5000 });
      await assert.rejects(store.headObject(A, 'c', 'o', { ifUnmodifiedSince: r.lastModified - 5000 }), PreconditionFailedError);
      await assert.rejects(store.putObject(A, 'c', 'o', 'again', { ifNoneMatch: '*' }), PreconditionFailedError);
      await store.putObject(A, 'c', 'fresh', 'x', { ifNoneMatch: '*' });
      await assert.rejects(store.putObject(A, 'c', 'o', 'again', { ifMatch: 'abc' }), PreconditionFailedError);
      await store.putObject(A, 'c', 'o', 'again', { ifMatch: r.etag });
      assert.equal((await store.getObject(A, 'c', 'o')).body?.toString(), 'again');
    } finally {
      await done();
    }
  });

  test('POST replaces user metadata and content type without rewriting data', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const r = await store.putObject(A, 'c', 'o', 'data', { contentType: 'text/plain', userMeta: { a: '1', b: '2' }, sysMeta: { 's-x': 'keep' } });
      const p = await store.postObjectMeta(A, 'c', 'o', { userMeta: { c: '3' }, contentType: 'application/json', sysMeta: { 's-y': 'new' } });
      const h = await store.headObject(A, 'c', 'o');
      assert.deepEqual(h.userMeta, { c: '3' });
      assert.equal(h.contentType, 'application/json');
      assert.deepEqual(h.sysMeta, { 's-x': 'keep', 's-y': 'new' });
      assert.equal(h.timestamp, r.timestamp);
      assert.equal(h.metaTimestamp, p.timestamp);
      assert.equal(h.etag, r.etag);
      const entry = (await store.listContainer(A, 'c')).entries[0] as { contentType: string };
      assert.equal(entry.contentType, 'application/json');
      await store.postObjectMeta(A, 'c', 'o', { userMeta: {} });
      const h2 = await store.headObject(A, 'c', 'o');
      assert.deepEqual(h2.userMeta, {});
      assert.equal(h2.contentType, 'application/json');
      assert.equal((await store.getObject(A, 'c', 'o')).body?.toString(), 'data');
      await assert.rejects(store.postObjectMeta(A, 'c', 'missing', { userMeta: {} }), NotFoundError);
      // A new PUT supersedes the POSTed metadata.
      await store.putObject(A, 'c', 'o', 'data2');
      assert.deepEqual((await store.headObject(A, 'c', 'o')).userMeta, {});
      assert.equal((await store.headObject(A, 'c', 'o')).metaTimestamp, undefined);
    } finally {
      await done();
    }
  });

  test('copy keeps data and merges metadata', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'src');
      await store.putContainer(A, 'dst');
      const big = pattern(600_000, 9);
      await store.putObject(A, 'src', 'big', chunked(big), { contentType: 'image/png', userMeta: { a: '1' } });
      await store.putObject(A, 'src', 'small', 'tiny', { userMeta: { a: '1' } });
      const c1 = await store.copyObject({ account: A, container: 'src', name: 'big' }, { account: A, container: 'dst', name: 'copy' }, { userMeta: { b: '2' } });
      assert.equal(c1.etag, md5(big));
      const h = await store.headObject(A, 'dst', 'copy');
      assert.deepEqual(h.userMeta, { a: '1', b: '2' });
      assert.equal(h.contentType, 'image/png');
      assert.ok((await readAll((await store.getObject(A, 'dst', 'copy')).stream)).equals(big));
      await store.copyObject({ account: A, container: 'src', name: 'small' }, { account: A, container: 'dst', name: 's2' }, { freshMetadata: true, userMeta: { z: '9' } });
      assert.deepEqual((await store.headObject(A, 'dst', 's2')).userMeta, { z: '9' });
      await assert.rejects(store.copyObject({ account: A, container: 'src', name: 'nope' }, { account: A, container: 'dst', name: 'x' }), NotFoundError);
    } finally {
      await done();
    }
  });

  test('X-Delete-At hides the object once passed and the expirer deletes it', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const at = Math.floor(Date.now() / 1000) + 1;
      await store.putObject(A, 'c', 'o', 'data', { deleteAt: at });
      assert.equal((await store.headObject(A, 'c', 'o')).deleteAt, at);
      await new Promise((r) => setTimeout(r, (at + 1) * 1000 - Date.now() + 50));
      await assert.rejects(store.headObject(A, 'c', 'o'), NotFoundError);
      assert.equal(await store.expireOnce(), 1);
      assert.equal((await store.headContainer(A, 'c')).objectCount, 0);
    } finally {
      await done();
    }
  });
});

describe('ObjectStore: containers and accounts', () => {
  test('container lifecycle, metadata and 409 on non-empty delete', async () => {
    const { store, done } = await withStore();
    try {
      const p = await store.putContainer(A, 'c', { userMeta: { 'Web-Index': 'index.html' } });
      assert.equal(p.created, true);
      const again = await store.putContainer(A, 'c', { userMeta: { other: 'x' } });
      assert.equal(again.created, false);
      let info = await store.headContainer(A, 'c');
      assert.deepEqual(info.userMeta, { 'web-index': 'index.html', other: 'x' });
      assert.equal(info.putTimestamp, p.timestamp);
      await store.postContainerMeta(A, 'c', { userMeta: { other: '' }, sysMeta: { 'storage-policy': 'gold' } });
      info = await store.headContainer(A, 'c');
      assert.deepEqual(info.userMeta, { 'web-index': 'index.html' });
      assert.deepEqual(info.sysMeta, { 'storage-policy': 'gold' });

      await store.putObject(A, 'c', 'o', 'x');
      await assert.rejects(store.deleteContainer(A, 'c'), (e: unknown) => e instanceof ConflictError && e.status === 409);
      await store.deleteObject(A, 'c', 'o');
      await store.deleteContainer(A, 'c');
      await assert.rejects(store.headContainer(A, 'c'), NotFoundError);
      await assert.rejects(store.deleteContainer(A, 'c'), NotFoundError);
      await assert.rejects(store.postContainerMeta(A, 'c', { userMeta: {} }), NotFoundError);
      await assert.rejects(store.putObject(A, 'c', 'o', 'x'), NotFoundError);
      const re = await store.putContainer(A, 'c');
      assert.equal(re.created, true);
      assert.deepEqual((await store.headContainer(A, 'c')).userMeta, {});
    } finally {
      await done();
    }
  });

  test('account is created implicitly and keeps totals', async () => {
    const { store, done } = await withStore();
    try {
      await assert.rejects(store.headAccount(A), NotFoundError);
      await store.putContainer(A, 'c1');
      await store.putContainer(A, 'c2');
      await store.putObject(A, 'c1', 'a', 'xx');
      await store.putObject(A, 'c2', 'b', 'yyy');
      await store.putObject(A, 'c2', 'c', 'zzzz');
      let acct = await store.headAccount(A);
      assert.deepEqual([acct.containerCount, acct.objectCount, acct.bytesUsed], [2, 3, 9]);
      await store.postAccountMeta(A, { userMeta: { 'Temp-URL-Key': 'secret' } });
      const listing = await store.listAccount(A);
      assert.deepEqual(
        listing.entries.map((e) => ('subdir' in e ? e.subdir : [e.name, e.objectCount, e.bytesUsed])),
        [
          ['c1', 1, 2],
          ['c2', 2, 7],
        ],
      );
      assert.deepEqual(listing.info.userMeta, { 'temp-url-key': 'secret' });
      await assert.rejects(store.deleteAccount(A), ConflictError);
      await store.deleteObject(A, 'c1', 'a');
      await store.deleteContainer(A, 'c1');
      acct = await store.headAccount(A);
      assert.deepEqual([acct.containerCount, acct.objectCount, acct.bytesUsed], [1, 2, 7]);
    } finally {
      await done();
    }
  });

  test('containerMeta / accountMeta (kept in memory) follow every change of the records; callers cannot alter them', async () => {
    const { store, done } = await withStore();
    try {
      assert.throws(() => store.accountMeta(A), NotFoundError);
      assert.throws(() => store.containerMeta(A, 'c'), NotFoundError);
      await store.putContainer(A, 'c', { userMeta: { color: 'blue' }, sysMeta: { 'acl-read': '.r:*' } });
      const first = store.containerMeta(A, 'c');
      assert.deepEqual([first.userMeta, first.sysMeta], [{ color: 'blue' }, { 'acl-read': '.r:*' }]);
      assert.deepEqual(store.accountMeta(A).userMeta, {}, 'the account was created with the container');
      assert.throws(() => {
        (first.sysMeta as Record<string, string>)['acl-read'] = 'changed';
      }, TypeError);
      assert.equal(store.containerMeta(A, 'c').sysMeta['acl-read'], '.r:*');
      await store.postContainerMeta(A, 'c', { userMeta: { color: '' }, sysMeta: { 'acl-read': '', 'acl-write': 'p:u' } });
      const posted = store.containerMeta(A, 'c');
      assert.deepEqual([posted.userMeta, posted.sysMeta], [{}, { 'acl-write': 'p:u' }]);
      assert.deepEqual(store.accountMeta(A).userMeta, {});
      await store.postAccountMeta(A, { userMeta: { 'Quota-Bytes': '10' } });
      assert.deepEqual(store.accountMeta(A).userMeta, { 'quota-bytes': '10' });
      await store.deleteContainer(A, 'c');
      assert.throws(() => store.containerMeta(A, 'c'), NotFoundError);
      await store.putContainer(A, 'c');
      assert.deepEqual(store.containerMeta(A, 'c').sysMeta, {}, 'a new container has none of the old metadata');
      await store.deleteContainer(A, 'c');
      await store.deleteAccount(A);
      assert.throws(() => store.accountMeta(A), NotFoundError);
      await store.putContainer(A, 'c2');
      assert.deepEqual(store.accountMeta(A).userMeta, {}, 'recreated account');
    } finally {
      await done();
    }
  });

  test('concurrent puts, overwrites and deletes keep stats exact', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const N = 200;
      const sizes = new Map<string, number>();
      // Every name is written 1-3 times concurrently with different sizes;
      // the last writer (by timestamp) decides its size.
      const ops: Array<Promise<unknown>> = [];
      for (let i = 0; i < N; i++) {
        const name = `o${i % 120}`;
        const size = 100 + ((i * 37) % 900);
        ops.push(store.putObject(A, 'c', name, pattern(size, i + 1)).then((r) => ({ name, size, ts: r.timestamp })));
      }
      const results = (await Promise.all(ops)) as Array<{ name: string; size: number; ts: string }>;
      const latest = new Map<string, { size: number; ts: string }>();
      for (const r of results) if (!latest.has(r.name) || latest.get(r.name)!.ts < r.ts) latest.set(r.name, r);
      for (const [n, r] of latest) sizes.set(n, r.size);
      // Delete a third of them concurrently with more puts into other names.
      await Promise.all([
        ...[...sizes.keys()].filter((_, i) => i % 3 === 0).map((n) => store.deleteObject(A, 'c', n).then(() => sizes.delete(n))),
        ...Array.from({ length: 50 }, (_, i) => store.putObject(A, 'c', `new${i}`, pattern(10 + i)).then(() => sizes.set(`new${i}`, 10 + i))),
      ]);
      const info = await store.headContainer(A, 'c');
      const total = [...sizes.values()].reduce((a, b) => a + b, 0);
      assert.equal(info.objectCount, sizes.size);
      assert.equal(info.bytesUsed, total);
      const acct = await store.headAccount(A);
      assert.equal(acct.objectCount, sizes.size);
      assert.equal(acct.bytesUsed, total);
      const listed = (await store.listContainer(A, 'c')).entries as Array<{ name: string; size: number }>;
      assert.deepEqual(new Map(listed.map((e) => [e.name, e.size])), sizes);
    } finally {
      await done();
    }
  });

  test('everything survives close and reopen', async () => {
    const { store, root, done } = await withStore();
    let reopened: ObjectStore | undefined;
    try {
      await store.putContainer(A, 'c', { userMeta: { k: 'v' } });
      await store.putObject(A, 'c', 'small', 'hello');
      const big = pattern(700_000, 5);
      await store.putObject(A, 'c', 'big', chunked(big));
      await store.close();
      reopened = await ObjectStore.open({ root });
      await assert.rejects(ObjectStore.open({ root }), /already open/);
      assert.equal((await reopened!.getObject(A, 'c', 'small')).body?.toString(), 'hello');
      assert.ok((await readAll((await reopened!.getObject(A, 'c', 'big')).stream)).equals(big));
      assert.deepEqual((await reopened!.headContainer(A, 'c')).userMeta, { k: 'v' });
      assert.equal((await reopened!.headAccount(A)).bytesUsed, 5 + big.length);
    } finally {
      await reopened?.close();
      await done();
    }
  });
});
