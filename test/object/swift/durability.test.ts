/**
 * Durability through the Swift API: with replicas of an object removed or
 * corrupted on disk, reads still return the right bytes, and a replicator +
 * auditor pass makes all three replicas whole again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, openSync, readdirSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { startSwiftCloud, type SwiftCloud } from './helpers.js';

let c: SwiftCloud;
before(async () => {
  c = await startSwiftCloud();
});
after(async () => {
  await c?.stop();
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** Where each primary holds the object's data: a file, or a record in the device's pack log (null where missing). */
function replicas(account: string, container: string, name: string): Array<{ path: string; off: number } | null> {
  const store = c.cloud.objectStore;
  const place = store.ring.locate(account, container, name);
  return store.ring.primaries(place.partition).map((d) => {
    const packed = store.disk.packs.get(d.id)!.versions(place.hash).find((e) => e.file.endsWith('.data'));
    if (packed) return { path: join(d.path, 'packs', `${String(packed.seg).padStart(8, '0')}.pack`), off: packed.off };
    const dir = join(d.path, 'objects', String(place.partition), place.hash);
    if (!existsSync(dir)) return null;
    const f = readdirSync(dir).find((x) => x.endsWith('.data'));
    return f ? { path: join(dir, f), off: 0 } : null;
  });
}

function corrupt(r: { path: string; off: number }, at: number): void {
  const fd = openSync(r.path, 'r+');
  writeSync(fd, Buffer.from('CORRUPTION!'), 0, 11, r.off + at);
  closeSync(fd);
}

// 5000 bytes: a record in each replica's pack log (two of the three are
// corrupted); 3 MiB: a file per replica (one removed, one corrupted).
for (const size of [5000, 3 * 1024 * 1024]) {
  test(`a ${size}-byte object survives damaged replicas; replicator and auditor restore them`, async () => {
    const A = c.demo.account;
    const account = `AUTH_${c.demo.projectId}`;
    const cont = `dur${size}`;
    await c.sw('PUT', `${A}/${cont}`, { token: c.demo.token });
    const data = randomBytes(size);
    assert.equal((await c.sw('PUT', `${A}/${cont}/obj`, { token: c.demo.token, body: data })).status, 201);
    await c.cloud.objectStore.drain();
    const reps = replicas(account, cont, 'obj');
    assert.equal(reps.filter(Boolean).length, 3, 'three replicas on disk');
    const packed = reps[0]!.path.endsWith('.pack');
    assert.equal(packed, size < 65536, 'small objects are packed, large ones are files');
    if (packed) corrupt(reps[0]!, Math.floor(size / 3));
    else rmSync(reps[0]!.path);
    corrupt(reps[1]!, Math.floor(size / 2));
    for (let i = 0; i < 3; i++) {
      const r = await c.sw('GET', `${A}/${cont}/obj`, { token: c.demo.token });
      assert.equal(r.status, 200);
      assert.equal(md5(r.body), md5(data), 'reads return the right bytes');
    }
    await c.cloud.objectStore.auditor.runOnce();
    await c.cloud.objectStore.replicator.runOnce();
    const after = replicas(account, cont, 'obj');
    assert.equal(after.filter(Boolean).length, 3, 'all replicas back');
    // every replica now verifies: a fresh audit finds nothing to quarantine
    const stats = await c.cloud.objectStore.auditor.runOnce();
    assert.equal(stats.quarantined, 0);
    const r = await c.sw('GET', `${A}/${cont}/obj`, { token: c.demo.token });
    assert.equal(md5(r.body), md5(data));
  });
}
