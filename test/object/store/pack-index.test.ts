/**
 * The pack logs' compact in-memory index (pack-index.ts): checked against a
 * plain Map model through a long random sequence of adds, replacements and
 * deletes (with growth, slot reuse and odd file names), then its lookups by
 * hash, partition and segment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PackIndex, type PackEntry } from '../../../src/object/store/pack-index.js';

const hashOf = (i: number) => createHash('md5').update(`h${i}`).digest('hex');

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sortEntries = (l: PackEntry[]) => [...l].sort((a, b) => a.file.localeCompare(b.file));

test('agrees with a Map model through random adds, replacements and deletes', () => {
  const rand = rng(7);
  const idx = new PackIndex(16); // small, so it grows many times
  const model = new Map<string, Map<string, PackEntry>>();
  const files = ['1700000000.00001.data', '1700000000.00001.ts', '1700000001.99999.meta', '0000000000.00000.data', '9999999999.99999.ts', 'odd-name', '1700000000.00001.datx'];
  const hashes = Array.from({ length: 400 }, (_, i) => hashOf(i));
  const partOf = (h: string) => parseInt(h.slice(0, 2), 16) % 8;
  for (let step = 0; step < 20000; step++) {
    const hash = hashes[Math.floor(rand() * hashes.length)]!;
    const file = files[Math.floor(rand() * files.length)]!;
    const versions = model.get(hash) ?? new Map<string, PackEntry>();
    if (rand() < 0.6) {
      const e: PackEntry = { seg: Math.floor(rand() * 5), off: Math.floor(rand() * 2 ** 32), len: Math.floor(rand() * 65536), file, part: partOf(hash) };
      assert.deepEqual(idx.set(hash, e), versions.get(file));
      versions.set(file, e);
      model.set(hash, versions);
    } else {
      assert.deepEqual(idx.delete(hash, file), versions.get(file));
      versions.delete(file);
      if (versions.size === 0) model.delete(hash);
    }
  }
  let total = 0;
  for (const hash of hashes) {
    const want = [...(model.get(hash)?.values() ?? [])];
    total += want.length;
    assert.deepEqual(sortEntries(idx.versions(hash)), sortEntries(want));
    assert.equal(idx.count(hash), want.length);
    for (const f of files) assert.deepEqual(idx.get(hash, f), model.get(hash)?.get(f));
  }
  assert.equal(idx.size, total);
  const parts = new Set([...model.keys()].map(partOf));
  assert.deepEqual(idx.partitions().sort(), [...parts].sort());
  for (const p of parts) assert.deepEqual(idx.hashesIn(p).sort(), [...model.keys()].filter((h) => partOf(h) === p).sort());
  assert.deepEqual(idx.hashesIn(99), []);
  for (let seg = 0; seg < 5; seg++) {
    const want = [...model].flatMap(([hash, v]) => [...v.values()].filter((e) => e.seg === seg).map((e) => ({ hash, e })));
    const key = (x: { hash: string; e: PackEntry }) => `${x.hash}/${x.e.file}`;
    assert.deepEqual(idx.inSegment(seg).sort((a, b) => key(a).localeCompare(key(b))), want.sort((a, b) => key(a).localeCompare(key(b))));
  }
});

test('a version moved to another partition is listed under the new one only', () => {
  const idx = new PackIndex();
  const h = hashOf(1);
  idx.set(h, { seg: 1, off: 0, len: 10, file: '1700000000.00000.data', part: 3 });
  idx.set(h, { seg: 1, off: 50, len: 10, file: '1700000000.00000.data', part: 4 });
  assert.deepEqual(idx.partitions(), [4]);
  assert.deepEqual(idx.hashesIn(4), [h]);
  assert.deepEqual(idx.get(h, '1700000000.00000.data'), { seg: 1, off: 50, len: 10, file: '1700000000.00000.data', part: 4 });
});

test('uppercase hex finds the same versions; bad keys and out-of-range entries are refused', () => {
  const idx = new PackIndex();
  const h = hashOf(2);
  idx.set(h, { seg: 0, off: 1, len: 2, file: '1700000000.00000.ts', part: 0 });
  assert.equal(idx.count(h.toUpperCase()), 1);
  assert.throws(() => idx.count('xyz'), TypeError);
  assert.throws(() => idx.count('g'.repeat(32)), TypeError);
  assert.throws(() => idx.set(h, { seg: 0, off: 2 ** 32, len: 2, file: 'a', part: 0 }), RangeError);
  assert.equal(idx.size, 1, 'the refused entry changed nothing');
});
