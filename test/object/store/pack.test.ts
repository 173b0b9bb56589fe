/**
 * Pack logs (pack.ts): small object records appended to one log per device.
 * Reads, overwrites, deletes and metadata updates; reopening rebuilds the
 * same state from the segments (a torn tail is cut off); a corrupt record is
 * quarantined and restored by the replicator; compaction drops dead
 * segments without bringing anything back; a lost index is rebuilt from packs.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, openSync, readdirSync, statSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ObjectStore, type OpenOptions } from '../../../src/object/store/index.js';
import { md5, pattern, readAll, replicaFiles, withStore } from './helpers.js';

const A = 'AUTH_pack';
const PACK = 64 * 1024 - 1;

const segFiles = (root: string, d: number) => {
  const dir = join(root, 'devices', `d${d}`, 'packs');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.pack')).sort().map((n) => join(dir, n)) : [];
};

async function body(store: ObjectStore, name: string): Promise<Buffer> {
  return readAll((await store.getObject(A, 'c', name)).stream);
}

const text = async (store: ObjectStore, name: string) => (await body(store, name)).toString();

interface Case {
  store: ObjectStore;
  root: string;
  /** Closes the store in use, runs `between` (files may be changed then), opens the root again (closed at the end). */
  reopen(opts?: Partial<OpenOptions>, between?: () => void | Promise<void>): Promise<ObjectStore>;
}

/** A fresh store with packs on (and container `c`); every store the case opens is closed and the directory removed after. */
async function packCase(opts: Partial<OpenOptions>, fn: (c: Case) => Promise<void>): Promise<void> {
  const all: Partial<OpenOptions> = { packMaxBytes: PACK, ...opts };
  const { store, root, done } = await withStore(all);
  let current = store;
  try {
    await store.putContainer(A, 'c');
    await fn({
      store,
      root,
      async reopen(o = all, between) {
        await current.close();
        await between?.();
        current = await ObjectStore.open({ root, ...o });
        return current;
      },
    });
  } finally {
    await current.close();
    await done();
  }
}

describe('pack logs', () => {
  test('small objects live in packs: no hash directories; large ones stay files', () =>
    packCase({}, async ({ store, root }) => {
      const small = pattern(5000, 3);
      const big = pattern(200_000, 4);
      await store.putObject(A, 'c', 'small', small);
      await store.putObject(A, 'c', 'big', big);
      await store.drain();
      assert.deepEqual((await replicaFiles(store, A, 'c', 'small')).flat(), [], 'no file for the small object');
      assert.equal((await replicaFiles(store, A, 'c', 'big')).flat().length, 3, 'the large object is three files');
      const place = store.ring.locate(A, 'c', 'small');
      for (const d of place.devices) assert.equal(store.disk.packs.get(d.id)!.count(place.hash), 1, `one record on ${d.name}`);
      assert.ok(segFiles(root, place.devices[0]!.id).length >= 1);
      assert.equal(md5(await body(store, 'small')), md5(small));
      assert.equal(md5(await body(store, 'big')), md5(big));
      const r = await store.getObject(A, 'c', 'small', { range: { start: 10, end: 19 } });
      assert.deepEqual(await readAll(r.stream), small.subarray(10, 20));
    }));

  test('overwrite, POST and delete: obsolete records are dropped; reopening gives the same state', () =>
    packCase({}, async ({ store, reopen }) => {
      await store.putObject(A, 'c', 'o', 'one');
      await store.putObject(A, 'c', 'o', 'two');
      await store.postObjectMeta(A, 'c', 'o', { userMeta: { color: 'blue' } });
      await store.putObject(A, 'c', 'gone', 'x');
      await store.deleteObject(A, 'c', 'gone');
      await store.putObject(A, 'c', 'kept', 'k');
      await store.drain();
      const o = store.ring.locate(A, 'c', 'o');
      for (const d of o.devices) {
        const files = store.disk.packs.get(d.id)!.versions(o.hash).map((e) => e.file.split('.').at(-1)).sort();
        assert.deepEqual(files, ['data', 'meta'], 'old data dropped; newest data and its POST kept');
      }
      const g = store.ring.locate(A, 'c', 'gone');
      for (const d of g.devices) assert.deepEqual(store.disk.packs.get(d.id)!.versions(g.hash).map((e) => e.file.split('.').at(-1)), ['ts']);
      let s2 = await reopen();
      for (const d of o.devices) assert.equal(s2.disk.packs.get(d.id)!.count(o.hash), 2, 'kill records replayed');
      assert.equal(await text(s2, 'o'), 'two');
      assert.equal((await s2.headObject(A, 'c', 'o')).userMeta.color, 'blue');
      await assert.rejects(s2.headObject(A, 'c', 'gone'), { status: 404 });
      assert.equal(await text(s2, 'kept'), 'k');
      // Packs already on disk are read even when new writes go to files.
      s2 = await reopen({ packMaxBytes: 0 });
      assert.equal(await text(s2, 'o'), 'two');
      await s2.putObject(A, 'c', 'o', 'three');
      await s2.drain();
      assert.equal((await replicaFiles(s2, A, 'c', 'o')).flat().length, 3, 'the new version is a file on each replica');
      for (const d of o.devices) assert.equal(s2.disk.packs.get(d.id)!.count(o.hash), 0, 'its packed versions were dropped');
      assert.equal(await text(s2, 'o'), 'three');
    }));

  test('small and large versions of one object replace each other: the older one goes, file or record', () =>
    packCase({}, async ({ store }) => {
      const place = store.ring.locate(A, 'c', 'o');
      const packed = () => place.devices.map((d) => store.disk.packs.get(d.id)!.count(place.hash));
      const files = async () => (await replicaFiles(store, A, 'c', 'o')).flat().length;
      // Small over small: the partition is looked at once and found to hold no hash directory.
      await store.putObject(A, 'c', 'o', 'one');
      await store.putObject(A, 'c', 'o', 'two');
      await store.drain();
      assert.deepEqual(packed(), [1, 1, 1]);
      // Large over small: a hash directory appears; the packed version goes.
      const big = pattern(200_000, 5);
      await store.putObject(A, 'c', 'o', big);
      await store.drain();
      assert.deepEqual(packed(), [0, 0, 0]);
      assert.equal(await files(), 3);
      assert.equal(md5(await body(store, 'o')), md5(big));
      // Small over large: the file versions in the hash directories go.
      await store.putObject(A, 'c', 'o', 'three');
      await store.drain();
      assert.deepEqual(packed(), [1, 1, 1]);
      assert.equal(await files(), 0, 'no file version left behind');
      assert.equal(await text(store, 'o'), 'three');
      // And a delete over that leaves only the tombstone record.
      await store.deleteObject(A, 'c', 'o');
      await store.drain();
      for (const d of place.devices) assert.deepEqual(store.disk.packs.get(d.id)!.versions(place.hash).map((e) => e.file.split('.').at(-1)), ['ts']);
    }));

  test('a torn record at the end of a segment is cut off on open; writes go on', () =>
    packCase({}, async ({ store, root, reopen }) => {
      for (let i = 0; i < 20; i++) await store.putObject(A, 'c', `o${i}`, pattern(1000 + i, i + 1));
      let seg = '';
      let size = 0;
      const s2 = await reopen(undefined, () => {
        seg = segFiles(root, 0).at(-1)!;
        size = statSync(seg).size;
        // Half a record: a valid-looking magic, then garbage.
        appendFileSync(seg, Buffer.concat([Buffer.from([0x31, 0x4b, 0x50, 0x53]), pattern(50, 9)]));
      });
      assert.equal(statSync(seg).size, size, 'torn tail truncated');
      for (let i = 0; i < 20; i++) assert.equal(md5(await body(s2, `o${i}`)), md5(pattern(1000 + i, i + 1)));
      await s2.putObject(A, 'c', 'after', 'ok');
      assert.equal(await text(s2, 'after'), 'ok');
      const audit = await s2.auditor.runOnce();
      assert.equal(audit.quarantined, 0);
      assert.ok(audit.files >= 63);
    }));

  test('corrupt records: reads still work, the auditor quarantines, the replicator restores', () =>
    packCase({}, async ({ store, root }) => {
      const data = pattern(6000, 7);
      await store.putObject(A, 'c', 'o', data);
      await store.drain();
      const place = store.ring.locate(A, 'c', 'o');
      // Corrupt the data bytes of the record on two of the three replicas.
      for (const d of place.devices.slice(0, 2)) {
        const e = store.disk.packs.get(d.id)!.versions(place.hash)[0]!;
        const fd = openSync(join(root, 'devices', d.name, 'packs', `${String(e.seg).padStart(8, '0')}.pack`), 'r+');
        writeSync(fd, Buffer.from('CORRUPTION!'), 0, 11, e.off + 100);
        closeSync(fd);
      }
      for (let i = 0; i < 3; i++) assert.equal(md5(await body(store, 'o')), md5(data), 'reads return the right bytes');
      await store.auditor.runOnce();
      await store.drain();
      for (const d of place.devices.slice(0, 2)) assert.equal(store.disk.packs.get(d.id)!.count(place.hash), 0, `quarantined on ${d.name}`);
      assert.ok(existsSync(join(place.devices[0]!.path, 'quarantined', 'objects', place.hash)), 'the bad record kept aside');
      const rep = await store.replicator.runOnce();
      assert.ok(rep.copied >= 2);
      for (const d of place.devices) assert.equal(store.disk.packs.get(d.id)!.count(place.hash), 1, `restored on ${d.name}`);
      assert.equal((await store.auditor.runOnce()).quarantined, 0);
      assert.equal(md5(await body(store, 'o')), md5(data));
    }));

  test('compaction removes mostly-dead segments; nothing deleted comes back after reopening', () =>
    packCase({ packSegmentBytes: 64 * 1024 }, async ({ store, root, reopen }) => {
      for (let i = 0; i < 60; i++) await store.putObject(A, 'c', `o${i}`, pattern(3000, i + 1));
      // Most objects are deleted or overwritten; a few stay as they were.
      for (let i = 0; i < 60; i++) {
        if (i % 10 === 0) continue;
        if (i % 2) await store.deleteObject(A, 'c', `o${i}`);
        else await store.putObject(A, 'c', `o${i}`, pattern(2000, i + 100));
      }
      await store.drain();
      const before = segFiles(root, 0).length;
      const rep = await store.replicator.runOnce();
      assert.equal(rep.errors, 0);
      assert.ok(rep.packsCompacted > 0, 'some segments compacted');
      const after = store.ring.devices.reduce((n, d) => n + segFiles(root, d.id).length, 0);
      const had = store.ring.devices.reduce((n, d) => n + store.disk.packs.get(d.id)!.segments().length, 0);
      assert.equal(after, had);
      assert.ok(segFiles(root, 0).length <= before);
      const check = async (s: ObjectStore) => {
        for (let i = 0; i < 60; i++) {
          if (i % 10 !== 0 && i % 2) await assert.rejects(s.headObject(A, 'c', `o${i}`), { status: 404 }, `o${i} stays deleted`);
          else assert.equal(md5(await body(s, `o${i}`)), md5(i % 10 === 0 ? pattern(3000, i + 1) : pattern(2000, i + 100)), `o${i}`);
        }
      };
      await check(store);
      const s2 = await reopen();
      await check(s2);
      // Every replica of every live object is there after the reopen: the audit sees them all.
      assert.equal((await s2.auditor.runOnce()).quarantined, 0);
      const live = 6 + 27; // o0,o10..o50 untouched; 27 overwritten (even, not multiples of 10)
      assert.equal(s2.ring.devices.reduce((n, d) => n + s2.disk.packs.get(d.id)!.entryCount, 0), live * 3 + 27 * 3, 'data records, plus the tombstones');
    }));

  test('compaction copies many live records in groups, and stops when told to', () =>
    packCase({ packSegmentBytes: 64 * 1024 }, async ({ store, root, reopen }) => {
      // 300 objects over several segments per device; the 100 kept and the 200 tombstones are more than one copy group.
      for (let i = 0; i < 300; i++) await store.putObject(A, 'c', `m${i}`, pattern(700, i + 1));
      for (let i = 0; i < 300; i++) if (i % 3 !== 0) await store.deleteObject(A, 'c', `m${i}`);
      await store.drain();
      const pack = store.disk.packs.get(0)!;
      const segsBefore = segFiles(root, 0);
      assert.ok(segsBefore.length > 2, `several segments (${segsBefore.length})`);
      const stop = new AbortController();
      stop.abort();
      assert.equal(await pack.compact(0.5, stop.signal), 0, 'an aborted compaction removes nothing');
      assert.deepEqual(segFiles(root, 0), segsBefore);
      // Two thirds deleted: every sealed segment is mostly dead, and their live records move to the newest ones.
      const removed = await pack.compact(0.5);
      assert.ok(removed >= segsBefore.length - 1, `removed ${removed} of ${segsBefore.length}`);
      const check = async (s: ObjectStore) => {
        for (let i = 0; i < 300; i++) {
          if (i % 3 !== 0) await assert.rejects(s.headObject(A, 'c', `m${i}`), { status: 404 }, `m${i} stays deleted`);
          else assert.equal(md5(await body(s, `m${i}`)), md5(pattern(700, i + 1)), `m${i}`);
        }
      };
      await check(store);
      await check(await reopen());
    }));

  test('a device missing at open: writes go to handoff packs, and move back once it returns', () =>
    packCase({}, async ({ store, reopen }) => {
      await store.putObject(A, 'c', 'o', 'v1');
      const place = store.ring.locate(A, 'c', 'o');
      const away = place.devices[0]!;
      const s2 = await reopen(undefined, () => rename(away.path, away.path + '.away'));
      await s2.putObject(A, 'c', 'o', 'v2');
      assert.equal(await text(s2, 'o'), 'v2');
      await s2.drain();
      const onHandoffs = s2.ring.handoffs(place.partition).filter((d) => s2.disk.packs.get(d.id)!.count(place.hash) > 0);
      assert.equal(onHandoffs.length, 1, 'the missing primary was replaced by a handoff');
      await rename(away.path + '.away', away.path);
      const rep = await s2.replicator.runOnce();
      assert.equal(rep.errors, 0);
      assert.equal(rep.handoffsCleared, 1);
      const pack = s2.disk.packs.get(away.id)!;
      assert.deepEqual(pack.versions(place.hash).map((e) => e.file.split('.').at(-1)), ['data'], 'the returned device has v2 only (its pack was scanned: v1 was dropped)');
      for (const d of onHandoffs) assert.equal(s2.disk.packs.get(d.id)!.count(place.hash) > 0, false, 'moved off the handoff');
      assert.equal((await s2.auditor.runOnce()).quarantined, 0);
      assert.equal(await text(s2, 'o'), 'v2');
    }));

  test('a lost index is rebuilt from the packs', () =>
    packCase({}, async ({ store, root, reopen }) => {
      for (let i = 0; i < 10; i++) await store.putObject(A, 'c', `o${i}`, pattern(100 + i, i + 1));
      await store.deleteObject(A, 'c', 'o3');
      const s2 = await reopen(undefined, () => {
        for (const f of ['index.db', 'index.db-wal', 'index.db-shm']) if (existsSync(join(root, f))) unlinkSync(join(root, f));
      });
      const { entries, info } = await s2.listContainer(A, 'c');
      assert.deepEqual(entries.map((e) => ('name' in e ? e.name : '')), ['o0', 'o1', 'o2', 'o4', 'o5', 'o6', 'o7', 'o8', 'o9']);
      assert.equal(info.bytesUsed, [0, 1, 2, 4, 5, 6, 7, 8, 9].reduce((n, i) => n + 100 + i, 0));
      // A row that never committed (o5), and a delete the index missed (o6
      // gone from the packs, its row still live): a replicator pass, which
      // reads a partition's rows at once, puts both right.
      await s2.deleteObject(A, 'c', 'o6');
      const s3 = await reopen(undefined, () => {
        const db = new Database(join(root, 'index.db'));
        const cid = (db.prepare("SELECT id FROM containers WHERE name = 'c'").get() as { id: number }).id;
        db.prepare("DELETE FROM objects WHERE cid = ? AND name = 'o5'").run(cid);
        db.prepare("UPDATE objects SET deleted = 0, size = 106, ts = '0000000001.00000' WHERE cid = ? AND name = 'o6'").run(cid);
        db.close();
      });
      assert.deepEqual((await s3.listContainer(A, 'c')).entries.map((e) => ('name' in e ? e.name : '')), ['o0', 'o1', 'o2', 'o4', 'o6', 'o7', 'o8', 'o9']);
      const rep = await s3.replicator.runOnce();
      assert.equal(rep.reconciled, 2);
      assert.deepEqual((await s3.listContainer(A, 'c')).entries.map((e) => ('name' in e ? e.name : '')), ['o0', 'o1', 'o2', 'o4', 'o5', 'o7', 'o8', 'o9']);
      assert.equal(await text(s3, 'o5'), pattern(105, 6).toString());
      assert.equal((await s3.replicator.runOnce()).reconciled, 0, 'nothing left to reconcile');
    }));
});
