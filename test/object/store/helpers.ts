import { mkdtempSync, rmSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ObjectStore, type OpenOptions } from '../../../src/object/store/index.js';

/** A fresh temp directory, removed by the returned cleanup. */
export function tempDir(tag = 'objstore'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `stratus-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Opens a store in a fresh temp dir; `done()` closes it and removes the dir. */
export async function withStore(opts: Partial<OpenOptions> = {}): Promise<{ store: ObjectStore; root: string; done: () => Promise<void> }> {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'store');
  const store = await ObjectStore.open({ partPower: 6, ...opts, root });
  return {
    store,
    root,
    done: async () => {
      await store.close().catch(() => {});
      cleanup();
    },
  };
}

export async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

/** Deterministic pseudo-random bytes. */
export function pattern(size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Every file below `dir` (recursively), as absolute paths. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

/** Paths of an object's files on its primaries (hash dir listing per device). */
export async function replicaFiles(store: ObjectStore, account: string, container: string, name: string): Promise<string[][]> {
  const place = store.ring.locate(account, container, name);
  return Promise.all(
    place.devices.map(async (d) => {
      const dir = join(d.path, 'objects', String(place.partition), place.hash);
      try {
        return (await readdir(dir)).map((f) => join(dir, f)).sort();
      } catch {
        return [];
      }
    }),
  );
}

/** Flips one byte of a file at `offset`. */
export async function corrupt(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, offset);
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, offset);
  await fh.close();
}
