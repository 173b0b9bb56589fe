import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ObjectStore } from '../../../src/object/store/index.js';
import { md5, readAll, tempDir } from './helpers.js';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const A = 'AUTH_crash';

interface Ack {
  name: string;
  md5: string;
  size: number;
  ts: string;
}

/** Runs the uploader child until it has acknowledged `acks` uploads, then SIGKILLs it. */
async function runAndKill(root: string, round: number, acks: number, packMaxBytes: number): Promise<Ack[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, root, String(round), String(packMaxBytes)], { stdio: ['ignore', 'pipe', 'pipe'], cwd: process.cwd() });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const got: Ack[] = [];
  const exited = new Promise<NodeJS.Signals | number | null>((res) => child.on('exit', (code, sig) => res(sig ?? code)));
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child too slow (${got.length} acks) ${stderr}`)), 60_000);
    lines.on('line', (line) => {
      const [tag, name, sum, size, ts] = line.split(' ');
      if (tag !== 'ACK') return;
      got.push({ name: name!, md5: sum!, size: Number(size), ts: ts! });
      if (got.length === acks) {
        clearTimeout(timer);
        // Kill a little later, at a random point of the uploads in flight.
        setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, Math.floor(Math.random() * 30));
      }
    });
    void exited.then((how) => {
      if (got.length < acks) reject(new Error(`child exited (${String(how)}) early: ${stderr}`));
    });
  });
  assert.equal(await exited, 'SIGKILL');
  lines.close();
  return got;
}

async function verify(store: ObjectStore, acked: Ack[]): Promise<void> {
  // The newest acknowledged version of each name must be intact (or superseded by a newer whole one).
  const newest = new Map<string, Ack>();
  for (const a of acked) if (!newest.has(a.name) || newest.get(a.name)!.ts < a.ts) newest.set(a.name, a);
  for (const a of newest.values()) {
    const g = await store.getObject(A, 'c', a.name);
    const body = await readAll(g.stream);
    assert.ok(g.meta.timestamp >= a.ts, `${a.name}: acknowledged version lost`);
    assert.equal(md5(body), g.meta.etag, `${a.name}: object is not whole`);
    assert.equal(body.length, g.meta.size);
    if (g.meta.timestamp === a.ts) assert.equal(g.meta.etag, a.md5);
  }
  // Everything listed is whole and readable; every acknowledged name is listed.
  const { entries, info } = await store.listContainer(A, 'c');
  const listed = new Map(entries.map((e) => ['name' in e ? e.name : e.subdir, e]));
  for (const a of newest.values()) assert.ok(listed.has(a.name), `${a.name} missing from the listing`);
  let bytes = 0;
  for (const e of entries) {
    if (!('name' in e)) continue;
    const g = await store.getObject(A, 'c', e.name);
    const body = await readAll(g.stream);
    assert.equal(md5(body), e.etag, `${e.name}: listed object is not whole`);
    bytes += e.size;
  }
  assert.equal(info.objectCount, entries.length);
  assert.equal(info.bytesUsed, bytes);
}

describe('crash safety', () => {
  // Rounds 1 and 3 put the small uploads in pack logs, round 2 in files of their own.
  test('SIGKILL mid-upload: every acknowledged upload is intact after reopening', { timeout: 240_000 }, async () => {
    const { dir, cleanup } = tempDir('crash');
    const root = join(dir, 'store');
    const acked: Ack[] = [];
    let tornUploads = 0;
    try {
      for (let round = 1; round <= 3; round++) {
        acked.push(...(await runAndKill(root, round, 40, round === 2 ? 0 : 64 * 1024 - 1)));
        for (let d = 0; d < 6; d++) tornUploads += (await readdir(join(root, 'devices', `d${d}`, 'tmp'))).length;
        const store = await ObjectStore.open({ root }); // the dead child's lock is stale
        try {
          await verify(store, acked);
          const rep = await store.replicator.runOnce();
          assert.equal(rep.errors, 0);
          const audit = await store.auditor.runOnce();
          assert.equal(audit.quarantined, 0, 'no torn file is visible');
          for (const d of store.ring.devices) assert.deepEqual(await readdir(join(d.path, 'tmp')), [], 'temp files cleaned up');
          await verify(store, acked);
        } finally {
          await store.close();
        }
      }
      assert.ok(tornUploads > 0, 'the kills landed in the middle of uploads');
    } finally {
      cleanup();
    }
  });
});
