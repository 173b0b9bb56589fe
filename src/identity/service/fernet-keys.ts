/**
 * A Fernet key repository in Keystone's on-disk layout, so `keystone-manage
 * fernet_setup`/`fernet_rotate` repositories (and tools that distribute
 * them between hosts) work unchanged:
 *
 *   <dir>/0        the staged key: valid for decryption, not yet used to seal,
 *                  so it can be copied to every host before it becomes primary
 *   <dir>/1..N     the highest number is the primary key (seals new tokens);
 *                  the others are secondaries, kept so older tokens still open
 *
 * Each file holds one key as base64url text. `maxActiveKeys` counts every
 * key in the directory (staged + primary + secondaries), as Keystone's
 * `max_active_keys` does.
 *
 * Rotation is serialised within a process; coordinating rotations between
 * processes or hosts is the operator's job, as with Keystone.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { decodeKey, generateKey } from './fernet.js';

const KEY_FILE = /^(0|[1-9][0-9]*)$/;

function keyIndices(names: string[]): number[] {
  return names.filter((n) => KEY_FILE.test(n)).map(Number).sort((a, b) => a - b);
}

/** Makes renames and unlinks in `dir` durable; skipped where directories cannot be fsynced. */
async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * Writes a key so that a crash leaves either the old file or the complete new
 * one, never a truncated key: temp file (0600) → fsync → rename → fsync dir.
 */
async function writeKeyFile(dir: string, name: string, content: string): Promise<void> {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(content);
      await fh.chmod(0o600); // the umask may have narrowed it; never widen beyond 0600
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

export class FernetKeyRepository {
  /** Loaded keys, primary first, then secondaries newest first, staged last. */
  private keys: Buffer[] = Object.freeze([]) as unknown as Buffer[];
  /** The file index of each entry of `keys`. */
  private indices: number[] = [];
  /** Serialises init/rotate so two rotations in one process cannot interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly dir: string,
    readonly maxActiveKeys = 3,
  ) {
    if (!Number.isInteger(maxActiveKeys) || maxActiveKeys < 2) {
      throw new RangeError(`maxActiveKeys must be an integer >= 2 (a staged and a primary key), got ${maxActiveKeys}`);
    }
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async scan(): Promise<number[]> {
    return keyIndices(await readdir(this.dir));
  }

  /**
   * Makes the repository usable on first start (staged key 0 and primary
   * key 1), and repairs one interrupted by a crash mid-rotation (no staged
   * key). An existing repository's keys are never replaced. Loads the keys.
   */
  init(): Promise<void> {
    return this.serialised(async () => {
      const created = await mkdir(this.dir, { recursive: true, mode: 0o700 });
      if (created !== undefined) await chmod(this.dir, 0o700);
      const idx = await this.scan();
      if (idx.length === 0 || (idx.length === 1 && idx[0] === 0)) {
        // No primary yet: stage a key (if none) and promote it, as any rotation does.
        await this.rotateNow();
      } else if (idx[0] !== 0) {
        await writeKeyFile(this.dir, '0', generateKey());
      }
      this.load();
    });
  }

  /**
   * Reads every key into memory. Synchronous so it can run at startup or on
   * a "keys changed" signal without making token validation async. A
   * corrupt key file throws: serving with a partial key set would reject
   * valid tokens in confusing ways.
   */
  load(): void {
    const idx = keyIndices(readdirSync(this.dir)).reverse();
    const keys: Buffer[] = [];
    for (const i of idx) {
      const file = join(this.dir, String(i));
      try {
        keys.push(decodeKey(readFileSync(file, 'utf8')));
      } catch (err) {
        throw new Error(`Invalid Fernet key file ${file}: ${(err as Error).message}`);
      }
    }
    // Highest index first; 0 (staged) sorts last by construction.
    this.keys = Object.freeze(keys) as unknown as Buffer[];
    this.indices = idx;
  }

  /** The key new tokens are sealed with. Throws if no keys are loaded. */
  primary(): Buffer {
    const k = this.keys[0];
    if (k === undefined) throw new Error(`Fernet key repository ${this.dir} has no keys (call init() and load())`);
    return k;
  }

  /**
   * Every key that may open a token, primary first (the most likely match,
   * so most tokens cost one HMAC). The array is shared and frozen: callers
   * on the hot path get it without a copy.
   */
  all(): Buffer[] {
    return this.keys;
  }

  /** File indices of the loaded keys, in the same order as `all()`; for status displays. */
  loadedIndices(): number[] {
    return this.indices.slice();
  }

  /**
   * Promotes the staged key to primary, stages a new key, and drops the
   * oldest secondaries beyond `maxActiveKeys`. Tokens sealed with a dropped
   * key stop validating, so rotate no more often than token lifetime /
   * (maxActiveKeys - 2). Reloads the keys.
   */
  rotate(): Promise<void> {
    return this.serialised(async () => {
      await this.rotateNow();
      this.load();
    });
  }

  private async rotateNow(): Promise<void> {
    const idx = await this.scan();
    if (idx[0] !== 0) {
      // Nothing staged (fresh directory or an interrupted rotation): stage one now.
      await writeKeyFile(this.dir, '0', generateKey());
    }
    const active = idx.filter((i) => i !== 0);
    const next = (active.length === 0 ? 0 : active[active.length - 1]!) + 1;
    await rename(join(this.dir, '0'), join(this.dir, String(next)));
    active.push(next);
    await writeKeyFile(this.dir, '0', generateKey());
    // Staged key + active keys may not exceed maxActiveKeys; the primary is never dropped.
    while (active.length + 1 > this.maxActiveKeys) {
      const oldest = active.shift()!;
      await unlink(join(this.dir, String(oldest))).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    await syncDir(this.dir);
  }
}
