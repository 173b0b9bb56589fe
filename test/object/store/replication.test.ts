import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { join, basename, dirname } from 'node:path';
import { copyFile, readFile, readdir, rename, rm, unlink, writeFile, stat } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { NotFoundError, ObjectStore } from '../../../src/object/store/index.js';
import { corrupt, filesUnder, md5, pattern, readAll, replicaFiles, withStore } from './helpers.js';

const A = 'AUTH_repl';

/** Waits (up to 5 s) for a condition that background work makes true. */
async function until(cond: () => Promise<boolean>): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > 5000) assert.fail('condition not reached in 5 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function quarantined(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for (const d of store.ring.devices) out.push(...(await filesUnder(join(d.path, 'quarantined'))));
  return out;
}

/** Every replica holds exactly the same single file. */
async function assertHealthy(store: ObjectStore, name: string, container = 'c'): Promise<void> {
  const files = await replicaFiles(store, A, container, name);
  assert.equal(files.length, 3);
  const contents = await Promise.all(files.map(async (f) => {
    assert.equal(f.length, 1, `replica holds ${f.map((p) => basename(p)).join(', ')}`);
    return readFile(f[0]!);
  }));
  assert.ok(contents[1]!.equals(contents[0]!) && contents[2]!.equals(contents[0]!), 'replicas differ');
  assert.deepEqual(files.map((f) => basename(f[0]!)), files.map(() => basename(files[0]![0]!)));
}

describe('replication and auditing', () => {
  test('corrupt replica: read still works, auditor quarantines, replicator repairs', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      await store.putObject(A, 'c', 'o', 'precious data');
      await store.close();
      const s2 = await ObjectStore.open({ root: store.root });
      try {
        const files = await replicaFiles(s2, A, 'c', 'o');
        // The second replica rots: reads (from the first) are unaffected.
        await corrupt(files[1]![0]!, 3);
        assert.equal((await s2.getObject(A, 'c', 'o')).body?.toString(), 'precious data');
        const audit = await s2.auditor.runOnce();
        assert.equal(audit.quarantined, 1);
        assert.equal((await quarantined(s2)).length, 1);
        assert.equal((await replicaFiles(s2, A, 'c', 'o'))[1]!.length, 0);
        const rep = await s2.replicator.runOnce();
        assert.equal(rep.copied, 1);
        await assertHealthy(s2, 'o');
        assert.equal((await s2.auditor.runOnce()).quarantined, 0);

        // Now the first (read) replica rots: the read falls back and quarantines it.
        await corrupt((await replicaFiles(s2, A, 'c', 'o'))[0]![0]!, 0);
        assert.equal((await s2.getObject(A, 'c', 'o')).body?.toString(), 'precious data');
        await until(async () => (await quarantined(s2)).length === 2);
        await s2.replicator.runOnce();
        await assertHealthy(s2, 'o');
      } finally {
        await s2.close();
      }
    } finally {
      await done();
    }
  });

  test('a bad block in a large object fails over mid-stream to another replica', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const data = pattern(5 * 1024 * 1024 + 3, 11);
      await store.putObject(A, 'c', 'big', Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]));
      await store.close();
      const s2 = await ObjectStore.open({ root: store.root });
      try {
        const files = await replicaFiles(s2, A, 'c', 'big');
        await corrupt(files[0]![0]!, 3 * 1024 * 1024 + 100); // block 12 of the first replica
        await corrupt(files[1]![0]!, 4 * 1024 * 1024 + 100); // block 16 of the second
        const g = await s2.getObject(A, 'c', 'big');
        const got = await readAll(g.stream);
        assert.equal(got.length, data.length);
        assert.ok(got.equals(data), 'content survived two bad replicas');
        const r = await s2.getObject(A, 'c', 'big', { range: { start: 3 * 1024 * 1024, end: 3 * 1024 * 1024 + 999 } });
        assert.ok((await readAll(r.stream)).equals(data.subarray(3 * 1024 * 1024, 3 * 1024 * 1024 + 1000)));
        await until(async () => (await quarantined(s2)).length === 2);
        const rep = await s2.replicator.runOnce();
        assert.equal(rep.copied, 2);
        await assertHealthy(s2, 'big');
        const audit = await s2.auditor.runOnce();
        assert.equal(audit.quarantined, 0);
        assert.ok(audit.bytes >= data.length * 3);
      } finally {
        await s2.close();
      }
    } finally {
      await done();
    }
  });

  test('auditor catches data whose MD5 no longer matches its ETag', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const data = pattern(2 * 1024 * 1024, 2);
      await store.putObject(A, 'c', 'o', data);
      await store.close();
      const s2 = await ObjectStore.open({ root: store.root });
      try {
        const f = (await replicaFiles(s2, A, 'c', 'o'))[2]![0]!;
        await corrupt(f, 1_500_000);
        const audit = await s2.auditor.runOnce();
        assert.equal(audit.quarantined, 1);
        await s2.replicator.runOnce();
        await assertHealthy(s2, 'o');
      } finally {
        await s2.close();
      }
    } finally {
      await done();
    }
  });

  test('a deleted replica file is restored by the replicator (pausing between partitions at a duty cycle below 1)', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      await store.putObject(A, 'c', 'o', 'x'.repeat(1000));
      await store.putObject(A, 'c', 'big', pattern(600_000));
      assert.equal((await store.replicator.runOnce()).pausedMs, 0, 'no pauses at the default duty cycle');
      await store.close();
      await assert.rejects(ObjectStore.open({ root: store.root, replicationDutyCycle: 0 }), RangeError);
      const s2 = await ObjectStore.open({ root: store.root, replicationDutyCycle: 0.5 });
      try {
        await unlink((await replicaFiles(s2, A, 'c', 'o'))[0]![0]!);
        const bigFiles = await replicaFiles(s2, A, 'c', 'big');
        await rm(dirname(bigFiles[2]![0]!), { recursive: true });
        const first = await s2.replicator.runOnce();
        assert.equal(first.copied, 2);
        assert.ok(first.pausedMs > 0, 'it paused between partitions');
        await assertHealthy(s2, 'o');
        await assertHealthy(s2, 'big');
        const second = await s2.replicator.runOnce();
        assert.equal(second.copied, 0);
        assert.equal(second.errors, 0);
      } finally {
        await s2.close();
      }
    } finally {
      await done();
    }
  });

  test('tombstones propagate to a replica that missed the delete, and are reclaimed', async () => {
    const { store, done } = await withStore({ reclaimAgeSeconds: 1 });
    try {
      await store.putContainer(A, 'c');
      await store.putObject(A, 'c', 'o', 'old data');
      await store.close();
      const s2 = await ObjectStore.open({ root: store.root, reclaimAgeSeconds: 1 });
      try {
        const before = await replicaFiles(s2, A, 'c', 'o');
        const saved = join(store.root, 'saved-replica');
        await copyFile(before[2]![0]!, saved);
        await s2.deleteObject(A, 'c', 'o');
        await s2.close();
        // Replica 3 "missed" the delete: it still has the data and no tombstone.
        const dir = dirname(before[2]![0]!);
        for (const f of await readdir(dir)) await unlink(join(dir, f));
        await rename(saved, before[2]![0]!);
        const s3 = await ObjectStore.open({ root: store.root, reclaimAgeSeconds: 1 });
        try {
          await assert.rejects(s3.getObject(A, 'c', 'o'), NotFoundError);
          const rep = await s3.replicator.runOnce();
          assert.equal(rep.copied, 1);
          assert.ok(rep.removed >= 1);
          const files = await replicaFiles(s3, A, 'c', 'o');
          for (const f of files) assert.deepEqual(f.map((p) => p.slice(-3)), ['.ts']);
          await new Promise((r) => setTimeout(r, 1200));
          const later = await s3.replicator.runOnce();
          assert.ok(later.reclaimed >= 1);
          for (const f of await replicaFiles(s3, A, 'c', 'o')) assert.deepEqual(f, []);
          assert.deepEqual((await s3.listContainer(A, 'c')).entries, []);
        } finally {
          await s3.close();
        }
      } finally {
        await s2.close();
      }
    } finally {
      await done();
    }
  });

  test('writes go to a handoff while a device is down, and move back when it returns', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      // The container PUT resolved at quorum: let its third replica (and the
      // account's) land before the device goes away, or the replicator also
      // copies those records when it comes back.
      await store.drain();
      const place = store.ring.locate(A, 'c', 'o');
      const down = place.devices[0]!;
      await rename(down.path, down.path + '.unmounted');
      await store.putObject(A, 'c', 'o', 'written while d was away');
      assert.equal((await store.getObject(A, 'c', 'o')).body?.toString(), 'written while d was away');
      // The PUT resolved at quorum (2 of 3): wait for the third replica before looking for it.
      await store.drain();
      const handoffFiles = (
        await Promise.all(store.ring.handoffs(place.partition).map((d) => filesUnder(join(d.path, 'objects', String(place.partition), place.hash))))
      ).flat();
      assert.equal(handoffFiles.length, 1);
      await assert.rejects(stat(down.path), { code: 'ENOENT' }, 'nothing recreated the missing device directory');
      await rename(down.path + '.unmounted', down.path);
      const rep = await store.replicator.runOnce();
      assert.equal(rep.copied, 1);
      assert.equal(rep.handoffsCleared, 1);
      await assertHealthy(store, 'o');
      assert.equal((await store.getObject(A, 'c', 'o')).body?.toString(), 'written while d was away');
    } finally {
      await done();
    }
  });

  test('abandoned temp files are removed', async () => {
    const { store, done } = await withStore();
    try {
      await store.drain(); // the sweep started by open() is done
      const dev = store.ring.devices[0]!;
      await writeFile(join(dev.path, 'tmp', 'deadbeef-1.tmp'), 'half an upload');
      const rep = await store.replicator.runOnce();
      assert.equal(rep.tmpRemoved, 1);
      assert.deepEqual(await readdir(join(dev.path, 'tmp')), []);
      await writeFile(join(dev.path, 'tmp', 'deadbeef-2.tmp'), 'half an upload');
      assert.equal((await store.auditor.runOnce()).tmpRemoved, 1);
    } finally {
      await done();
    }
  });

  test('a lost index is rebuilt from the devices; a lagging one is reconciled', async () => {
    const { store, root, done } = await withStore();
    try {
      await store.putContainer(A, 'c', { userMeta: { k: 'v' } });
      await store.putContainer(A, 'empty');
      await store.putAccount(A, { userMeta: { a: 'b' } });
      const big = pattern(400_000, 4);
      await store.putObject(A, 'c', 'x', 'xx', { contentType: 'text/x' });
      await store.putObject(A, 'c', 'y', big);
      await store.putObject(A, 'c', 'z', 'zz');
      await store.postObjectMeta(A, 'c', 'x', { userMeta: { m: '1' }, contentType: 'text/y' });
      await store.deleteObject(A, 'c', 'z');
      const listing = await store.listContainer(A, 'c');
      await store.close();
      for (const f of ['index.db', 'index.db-wal', 'index.db-shm']) await rm(join(root, f), { force: true });

      const s2 = await ObjectStore.open({ root });
      try {
        assert.deepEqual(await s2.listContainer(A, 'c'), listing);
        assert.deepEqual((await s2.listAccount(A)).entries.map((e) => ('name' in e ? e.name : e.subdir)), ['c', 'empty']);
        const acct = await s2.headAccount(A);
        assert.deepEqual([acct.containerCount, acct.objectCount, acct.bytesUsed, acct.userMeta], [2, 2, 2 + big.length, { a: 'b' }]);
        assert.deepEqual((await s2.headObject(A, 'c', 'x')).userMeta, { m: '1' });
      } finally {
        await s2.close();
      }

      // A PUT whose listing row never committed (crash between rename and commit).
      const db = new Database(join(root, 'index.db'));
      const cid = (db.prepare("SELECT id FROM containers WHERE name = 'c'").get() as { id: number }).id;
      db.prepare("DELETE FROM objects WHERE cid = ? AND name = 'y'").run(cid);
      db.prepare('UPDATE containers SET object_count = object_count - 1, bytes_used = bytes_used - ? WHERE id = ?').run(big.length, cid);
      db.prepare('UPDATE accounts SET object_count = object_count - 1, bytes_used = bytes_used - ? WHERE name = ?').run(big.length, A);
      db.close();
      const s3 = await ObjectStore.open({ root });
      try {
        await assert.rejects(s3.headObject(A, 'c', 'y'), NotFoundError);
        const rep = await s3.replicator.runOnce();
        assert.equal(rep.reconciled, 1);
        assert.equal((await s3.headObject(A, 'c', 'y')).etag, md5(big));
        assert.deepEqual(await s3.listContainer(A, 'c'), listing);
      } finally {
        await s3.close();
      }
    } finally {
      await done();
    }
  });

  test('background tasks run periodically and stop', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      await store.putObject(A, 'c', 'o', 'x');
      store.replicator.start(20);
      store.auditor.start(20);
      const t0 = Date.now();
      while ((store.replicator.passes < 2 || store.auditor.passes < 2) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
      assert.ok(store.replicator.passes >= 2 && store.auditor.passes >= 2);
      await Promise.all([store.replicator.stop(), store.auditor.stop()]);
      assert.equal(store.replicator.running, false);
      const n = store.replicator.passes;
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(store.replicator.passes, n);
      assert.ok((await stat(join(store.root, 'index.db'))).size > 0);
    } finally {
      await done();
    }
  });
});
