import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PreconditionFailedError, type ObjectStore, type ListOptions } from '../../../src/object/store/index.js';
import { withStore } from './helpers.js';

const A = 'AUTH_list';
const NAMES = [
  'a',
  'a/1',
  'a/2',
  'a/b/1',
  'a/b/2',
  'a/c',
  'a-b',
  'b',
  'b/x',
  'c/',
  'c/d/e',
  'd',
  'photos/2024/jan.jpg',
  'photos/2024/feb.jpg',
  'photos/2025/mar.jpg',
  'photos/me.jpg',
  'zz',
  'é',
  '日本/語',
];

/** What Swift would answer, computed naively from the full sorted name list. */
function expected(names: string[], o: ListOptions): string[] {
  const enc = (s: string) => Buffer.from(s, 'utf8');
  let sorted = [...names].sort((x, y) => Buffer.compare(enc(x), enc(y)));
  const prefix = o.prefix ?? '';
  sorted = sorted.filter((n) => n.startsWith(prefix));
  if (o.reverse) {
    sorted.reverse();
    if (o.marker) sorted = sorted.filter((n) => Buffer.compare(enc(n), enc(o.marker!)) < 0);
    if (o.endMarker) sorted = sorted.filter((n) => Buffer.compare(enc(n), enc(o.endMarker!)) > 0);
  } else {
    if (o.marker) sorted = sorted.filter((n) => Buffer.compare(enc(n), enc(o.marker!)) > 0);
    if (o.endMarker) sorted = sorted.filter((n) => Buffer.compare(enc(n), enc(o.endMarker!)) < 0);
  }
  const out: string[] = [];
  for (const n of sorted) {
    const i = o.delimiter ? n.indexOf(o.delimiter, prefix.length) : -1;
    if (i >= 0) {
      const sub = n.slice(0, i + o.delimiter!.length);
      if (sub === o.marker || out.includes(sub)) continue;
      out.push(sub);
    } else out.push(n);
  }
  return out.slice(0, o.limit ?? 10000);
}

const names = (entries: Array<{ name: string } | { subdir: string }>) => entries.map((e) => ('subdir' in e ? `${e.subdir}` : e.name));

describe('container listings', () => {
  let store: ObjectStore;
  let done: () => Promise<void>;
  before(async () => {
    ({ store, done } = await withStore());
    await store.putContainer(A, 'c');
    await Promise.all(NAMES.map((n) => store.putObject(A, 'c', n, `body of ${n}`, { contentType: 'text/plain' })));
    await store.putObject(A, 'c', 'gone', 'x');
    await store.deleteObject(A, 'c', 'gone');
  });
  after(() => done());

  test('full listing is sorted by UTF-8 bytes with object details', async () => {
    const { entries } = await store.listContainer(A, 'c');
    assert.deepEqual(names(entries), expected(NAMES, {}));
    const first = entries[0] as { name: string; size: number; etag: string; contentType: string; lastModified: string };
    assert.equal(first.name, 'a');
    assert.equal(first.size, 'body of a'.length);
    assert.equal(first.contentType, 'text/plain');
    assert.match(first.lastModified, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  });

  const cases: ListOptions[] = [
    { prefix: 'a/' },
    { prefix: 'photos/', delimiter: '/' },
    { delimiter: '/' },
    { delimiter: '/', reverse: true },
    { prefix: 'photos/2024/', delimiter: '/' },
    { marker: 'a/c' },
    { marker: 'a/', delimiter: '/' },
    { endMarker: 'b' },
    { marker: 'a', endMarker: 'c/' },
    { limit: 3 },
    { limit: 0 },
    { reverse: true },
    { reverse: true, marker: 'd' },
    { reverse: true, endMarker: 'b' },
    { reverse: true, prefix: 'a/', limit: 2 },
    { reverse: true, prefix: 'photos/', delimiter: '/' },
    { delimiter: 'b' },
    { delimiter: '/', limit: 4 },
    { prefix: 'nothing' },
    { prefix: '日本' },
    { delimiter: '/2' },
  ];
  for (const o of cases) {
    test(`listing ${JSON.stringify(o)}`, async () => {
      const { entries } = await store.listContainer(A, 'c', o);
      assert.deepEqual(names(entries), expected(NAMES, o));
    });
  }

  test('paging with marker and delimiter visits every entry once', async () => {
    for (const reverse of [false, true]) {
      const seen: string[] = [];
      let marker: string | undefined;
      for (;;) {
        const { entries } = await store.listContainer(A, 'c', { delimiter: '/', limit: 2, marker, reverse });
        if (entries.length === 0) break;
        seen.push(...names(entries));
        marker = names(entries).at(-1);
      }
      assert.deepEqual(seen, expected(NAMES, { delimiter: '/', reverse }));
    }
  });

  test('limit above 10000 is refused', async () => {
    await assert.rejects(store.listContainer(A, 'c', { limit: 10001 }), PreconditionFailedError);
  });

  test('account listing uses the same rules', async () => {
    for (const c of ['logs-2024', 'logs-2025', 'media', 'x']) await store.putContainer(A, c);
    const all = (await store.listAccount(A)).entries;
    assert.deepEqual(names(all), ['c', 'logs-2024', 'logs-2025', 'media', 'x']);
    assert.deepEqual(names((await store.listAccount(A, { delimiter: '-' })).entries), ['c', 'logs-', 'media', 'x']);
    assert.deepEqual(names((await store.listAccount(A, { prefix: 'logs-', reverse: true })).entries), ['logs-2025', 'logs-2024']);
    assert.deepEqual(names((await store.listAccount(A, { marker: 'logs-2024', limit: 2 })).entries), ['logs-2025', 'media']);
    const c = all[0] as { name: string; objectCount: number; bytesUsed: number };
    assert.equal(c.objectCount, NAMES.length);
    assert.equal(c.bytesUsed, NAMES.reduce((s, n) => s + Buffer.byteLength(`body of ${n}`), 0));
  });
});
