/**
 * Durability through the Swift API: with one replica of an object removed
 * and another corrupted on disk, reads still return the right bytes, and a
 * replicator + auditor pass makes all three replicas whole again.
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

/** The `.data` file of the object on each primary device (null where missing). */
function replicaFiles(account: string, container: string, name: string): Array<string | null> {
  const store = c.cloud.objectStore;
  const place = store.ring.locate(account, container, name);
  return store.ring.primaries(place.partition).map((d) => {
    const dir = join(d.path, 'objects', String(place.partition), place.hash);
    if (!existsSync(dir)) return null;
    const f = readdirSync(dir).find((x) => x.endsWith('.data'));
    return f ? join(dir, f) : null;
  });
}

for (const size of [5000, 3 * 1024 * 1024]) {
  test(`a ${size}-byte object survives a removed and a corrupted replica; replicator and auditor restore both`, async () => {
    const A = c.demo.account;
    const account = `AUTH_${c.demo.projectId}`;
    const cont = `dur${size}`;
    await c.sw('PUT', `${A}/${cont}`, { token: c.demo.token });
    const data = randomBytes(size);
    assert.equal((await c.sw('PUT', `${A}/${cont}/obj`, { token: c.demo.token, body: data })).status, 201);
    await c.cloud.objectStore.drain();
    const files = replicaFiles(account, cont, 'obj');
    assert.equal(files.filter(Boolean).length, 3, 'three replicas on disk');
    rmSync(files[0]!);
    const fd = openSync(files[1]!, 'r+');
    writeSync(fd, Buffer.from('CORRUPTION!'), 0, 11, Math.floor(size / 2));
    closeSync(fd);
    for (let i = 0; i < 3; i++) {
      const r = await c.sw('GET', `${A}/${cont}/obj`, { token: c.demo.token });
      assert.equal(r.status, 200);
      assert.equal(md5(r.body), md5(data), 'reads return the right bytes');
    }
    await c.cloud.objectStore.auditor.runOnce();
    await c.cloud.objectStore.replicator.runOnce();
    const after = replicaFiles(account, cont, 'obj');
    assert.equal(after.filter(Boolean).length, 3, 'all replicas back');
    // every replica now verifies: a fresh audit finds nothing to quarantine
    const stats = await c.cloud.objectStore.auditor.runOnce();
    assert.equal(stats.quarantined, 0);
    const r = await c.sw('GET', `${A}/${cont}/obj`, { token: c.demo.token });
    assert.equal(md5(r.body), md5(data));
  });
}
