import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Ring } from '../../../src/object/store/index.js';
import { tempDir } from './helpers.js';

const sixDevices = (zones = 3) => Array.from({ length: 6 }, (_, i) => ({ name: `d${i}`, zone: (i % zones) + 1, path: `devices/d${i}` }));

describe('Ring', () => {
  test('every partition gets `replicas` distinct devices in distinct zones', () => {
    const ring = Ring.build({ partPower: 8, replicas: 3, devices: sixDevices() }, '/r');
    assert.equal(ring.partCount, 256);
    for (let p = 0; p < ring.partCount; p++) {
      const devs = ring.primaries(p);
      assert.equal(devs.length, 3);
      assert.equal(new Set(devs.map((d) => d.id)).size, 3, `partition ${p} repeats a device`);
      assert.equal(new Set(devs.map((d) => d.zone)).size, 3, `partition ${p} repeats a zone`);
    }
  });

  test('partitions are balanced across equal-weight devices', () => {
    const ring = Ring.build({ partPower: 10, replicas: 3, devices: sixDevices() }, '/r');
    const counts = ring.partsPerDevice();
    const want = (1024 * 3) / 6;
    for (const c of counts) assert.ok(Math.abs(c - want) <= 1, `device holds ${c} partitions, want ~${want}`);
    // Each device is the first (read) replica about equally often.
    const firsts = new Array(6).fill(0);
    for (let p = 0; p < 1024; p++) firsts[ring.primaries(p)[0]!.id]++;
    for (const f of firsts) assert.ok(Math.abs(f - 1024 / 6) <= 30, `first-replica share ${f}`);
  });

  test('with fewer zones than replicas, zones are spread as far as possible', () => {
    const ring = Ring.build({ partPower: 6, replicas: 3, devices: sixDevices(2) }, '/r');
    for (let p = 0; p < ring.partCount; p++) {
      const zones = ring.primaries(p).map((d) => d.zone);
      assert.equal(new Set(zones).size, 2, `partition ${p} uses zones ${zones}`);
      assert.equal(new Set(ring.primaries(p).map((d) => d.id)).size, 3);
    }
  });

  test('weights steer the share of partitions', () => {
    const devices = sixDevices().map((d, i) => ({ ...d, weight: i === 0 ? 2 : 1 }));
    const ring = Ring.build({ partPower: 10, replicas: 3, devices }, '/r');
    const counts = ring.partsPerDevice();
    assert.ok(counts[0]! > counts[3]! * 1.3, `heavier device has ${counts[0]} vs ${counts[3]}`);
    for (let p = 0; p < ring.partCount; p++) assert.equal(new Set(ring.primaries(p).map((d) => d.id)).size, 3);
  });

  test('hashing is salted by the ring secret and maps into the partition range', () => {
    const a = Ring.build({ partPower: 10, replicas: 3, devices: sixDevices() }, '/r');
    const b = Ring.build({ partPower: 10, replicas: 3, devices: sixDevices() }, '/r');
    assert.notEqual(a.hashPath('AUTH_x', 'c', 'o'), b.hashPath('AUTH_x', 'c', 'o'));
    assert.match(a.hashPath('AUTH_x'), /^[0-9a-f]{32}$/);
    assert.notEqual(a.hashPath('AUTH_x', 'c'), a.hashPath('AUTH_x', 'c', ''));
    const fixed = Ring.build({ partPower: 4, replicas: 3, devices: sixDevices(), hashPathPrefix: 'p', hashPathSuffix: 's' }, '/r');
    // md5("p/AUTH_x/c/os") is deterministic.
    const h = fixed.hashPath('AUTH_x', 'c', 'o');
    assert.equal(h, fixed.hashPath('AUTH_x', 'c', 'o'));
    assert.equal(fixed.partitionOf(h), parseInt(h.slice(0, 8), 16) >>> 28);
    for (let i = 0; i < 1000; i++) {
      const p = a.partitionOf(a.hashPath('AUTH_x', 'c', `o${i}`));
      assert.ok(p >= 0 && p < 1024);
    }
  });

  test("a partition's hashes are exactly those in its hashRange", () => {
    for (const partPower of [0, 4, 10]) {
      const ring = Ring.build({ partPower, replicas: 3, devices: sixDevices() }, '/r');
      const last = ring.hashRange(ring.partCount - 1);
      assert.equal(last.hi, null, 'the last range is open above');
      for (let i = 0; i < 2000; i++) {
        const h = ring.hashPath('AUTH_x', 'c', `o${i}`);
        const hb = Buffer.from(h, 'hex');
        const inRange = (p: number) => {
          const { lo, hi } = ring.hashRange(p);
          return Buffer.compare(lo, hb) <= 0 && (hi === null || Buffer.compare(hb, hi) < 0);
        };
        const p = ring.partitionOf(h);
        assert.ok(inRange(p), `${h} in partition ${p}'s range`);
        if (p > 0) assert.ok(!inRange(p - 1));
        if (p + 1 < ring.partCount) assert.ok(!inRange(p + 1));
      }
    }
  });

  test('placement is stable across save and load', async () => {
    const { dir, cleanup } = tempDir('ring');
    try {
      const ring = Ring.build({ partPower: 8, replicas: 3, devices: sixDevices() }, dir);
      await ring.save(join(dir, 'ring.json'), dir);
      const again = await Ring.load(join(dir, 'ring.json'), dir);
      assert.equal(again.hashPathPrefix, ring.hashPathPrefix);
      assert.equal(again.devices[2]!.path, join(dir, 'devices/d2'));
      for (let i = 0; i < 500; i++) {
        const a = ring.locate('AUTH_t', 'cont', `obj/${i}`);
        const b = again.locate('AUTH_t', 'cont', `obj/${i}`);
        assert.deepEqual(b, a);
      }
      for (let p = 0; p < ring.partCount; p++) assert.deepEqual(again.primaries(p), ring.primaries(p));
    } finally {
      cleanup();
    }
  });

  test('handoffs are the other devices, unused zones first', () => {
    const devices = [...sixDevices(), { name: 'd6', zone: 4, path: 'devices/d6' }];
    const ring = Ring.build({ partPower: 6, replicas: 3, devices }, '/r');
    for (let p = 0; p < ring.partCount; p++) {
      const prim = ring.primaries(p);
      const hand = ring.handoffs(p);
      assert.equal(prim.length + hand.length, 7);
      assert.ok(hand.every((h) => !prim.some((d) => d.id === h.id)));
      if (!prim.some((d) => d.zone === 4)) assert.equal(hand[0]!.zone, 4);
    }
  });

  test('rejects impossible rings', () => {
    assert.throws(() => Ring.build({ partPower: 4, replicas: 4, devices: sixDevices().slice(0, 3) }, '/r'));
    assert.throws(() => Ring.build({ partPower: 40, replicas: 3, devices: sixDevices() }, '/r'));
  });
});
