/**
 * The small-object cache: reads it serves are never stale (overwrite, POST,
 * delete, expiry), conditions and ranges behave as from disk, and it stays
 * within its memory bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { SmallObjectCache } from '../../../src/object/store/cache.js';
import { NotFoundError, NotModifiedError, PreconditionFailedError } from '../../../src/object/store/index.js';
import { md5, withStore } from './helpers.js';

const A = 'AUTH_cache';

test('LRU: bounded by bytes, least recently used out first, large entries never kept', () => {
  const c = new SmallObjectCache(3 * (1000 + 512), 2000);
  const meta = {} as never;
  c.set('a', meta, Buffer.alloc(1000));
  c.set('b', meta, Buffer.alloc(1000));
  c.set('c', meta, Buffer.alloc(1000));
  assert.ok(c.get('a'), 'a is kept and becomes the most recent');
  c.set('d', meta, Buffer.alloc(1000));
  assert.equal(c.get('b'), undefined, 'b was the least recently used');
  assert.ok(c.get('a') && c.get('c') && c.get('d'));
  assert.ok(c.usedBytes <= c.capacity);
  c.set('big', meta, Buffer.alloc(2001));
  assert.equal(c.get('big'), undefined);
  c.delete('a');
  assert.equal(c.size, 2);
  assert.equal(new SmallObjectCache(0, 100).get('x'), undefined);
});

test('reads from the cache follow overwrites, POSTs, deletes and expiry', async () => {
  const { store, done } = await withStore({ smallObjectCacheBytes: 1024 * 1024 });
  try {
    await store.putContainer(A, 'c');
    const v1 = await store.putObject(A, 'c', 'o', 'version one', { userMeta: { k: 'v1' } });
    const hits0 = store.cache.hits;
    const g1 = await store.getObject(A, 'c', 'o');
    assert.equal(g1.body?.toString(), 'version one');
    assert.equal(g1.meta.etag, v1.etag);
    assert.equal(store.cache.hits, hits0 + 1, 'a fresh write is served from the cache');
    assert.throws(() => {
      (g1.meta.userMeta as Record<string, string>)['k'] = 'changed';
    }, TypeError, 'shared metadata is frozen');

    // Data on disk can vanish: the cached, acknowledged bytes are still right.
    await store.putObject(A, 'c', 'o', 'version two', { userMeta: { k: 'v2' } });
    const g2 = await store.getObject(A, 'c', 'o');
    assert.equal(g2.body?.toString(), 'version two');
    assert.equal(g2.meta.userMeta['k'], 'v2');

    await store.postObjectMeta(A, 'c', 'o', { userMeta: { k: 'posted' } });
    const g3 = await store.getObject(A, 'c', 'o');
    assert.equal(g3.body?.toString(), 'version two');
    assert.equal(g3.meta.userMeta['k'], 'posted', 'a POST changes the cache key');
    assert.equal((await store.headObject(A, 'c', 'o')).userMeta['k'], 'posted');

    // Ranges and conditions on a cached object.
    const r = await store.getObject(A, 'c', 'o', { range: { start: 8, end: 100 } });
    assert.equal(r.body?.toString(), 'two');
    assert.deepEqual(r.range, { start: 8, end: 10 });
    assert.equal(r.length, 3);
    assert.equal((await store.getObject(A, 'c', 'o', { range: { suffix: 3 } })).body?.toString(), 'two');
    await assert.rejects(store.getObject(A, 'c', 'o', { conditions: { ifNoneMatch: md5('version two') } }), NotModifiedError);
    await assert.rejects(store.getObject(A, 'c', 'o', { conditions: { ifMatch: 'nope' } }), PreconditionFailedError);

    await store.deleteObject(A, 'c', 'o');
    await assert.rejects(store.getObject(A, 'c', 'o'), NotFoundError, 'deleted objects are not served from the cache');

    // Expiry is checked on every hit.
    await store.putObject(A, 'c', 'x', 'short lived', { deleteAt: Math.floor(Date.now() / 1000) + 2 });
    assert.equal((await store.getObject(A, 'c', 'x')).body?.toString(), 'short lived');
    await new Promise((res) => setTimeout(res, 2100));
    await assert.rejects(store.getObject(A, 'c', 'x'), NotFoundError);
  } finally {
    await done();
  }
});

test('a read fills the cache: later reads need no replica on disk', async () => {
  const { store, root, done } = await withStore({ smallObjectCacheBytes: 1024 * 1024 });
  try {
    await store.putContainer(A, 'c');
    await store.putObject(A, 'c', 'o', 'cached bytes');
    await store.close();
    const { ObjectStore } = await import('../../../src/object/store/index.js');
    const s2 = await ObjectStore.open({ root, smallObjectCacheBytes: 1024 * 1024 });
    try {
      assert.equal(s2.cache.size, 0);
      assert.equal((await s2.getObject(A, 'c', 'o')).body?.toString(), 'cached bytes');
      assert.equal(s2.cache.size, 1, 'the verified read was cached');
      // remove every replica's object files: the cache still answers
      for (const d of s2.ring.devices) await rm(`${d.path}/objects`, { recursive: true, force: true });
      assert.equal((await s2.getObject(A, 'c', 'o')).body?.toString(), 'cached bytes');
    } finally {
      await s2.close();
    }
  } finally {
    await done();
  }
});
