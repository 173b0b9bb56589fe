import fs from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Thin promise wrappers over the callback `fs` API on raw file descriptors:
 * one libuv request per call and no FileHandle objects on the hot paths.
 */

export const O_RDONLY = fs.constants.O_RDONLY;
export const O_NEW_FILE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;
export const O_DIRECTORY = fs.constants.O_RDONLY | (fs.constants.O_DIRECTORY ?? 0);

export function openFd(path: string, flags: number, mode = 0o644): Promise<number> {
  return new Promise((res, rej) => fs.open(path, flags, mode, (e, fd) => (e ? rej(e) : res(fd))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((res, rej) => fs.close(fd, (e) => (e ? rej(e) : res())));
}

/** Closes and ignores errors (cleanup paths). */
export function closeQuietly(fd: number): void {
  fs.close(fd, () => {});
}

function writeOnce(fd: number, buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
  return new Promise((res, rej) => fs.write(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
}

/** Writes the whole buffer at `pos` (looping over short writes). */
export async function writeAll(fd: number, buf: Uint8Array, pos: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await writeOnce(fd, buf, off, buf.length - off, pos + off);
    off += n;
  }
}

function writevOnce(fd: number, bufs: Uint8Array[], pos: number): Promise<number> {
  return new Promise((res, rej) => fs.writev(fd, bufs, pos, (e, n) => (e ? rej(e) : res(n))));
}

/** Gathers the buffers into one positioned write (looping over short writes). */
export async function writevAll(fd: number, bufs: Uint8Array[], pos: number): Promise<void> {
  let total = 0;
  for (const b of bufs) total += b.length;
  let n = await writevOnce(fd, bufs, pos);
  if (n === total) return;
  // Short write: finish the rest buffer by buffer.
  let skip = n;
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    await writeAll(fd, skip ? b.subarray(skip) : b, pos + n);
    n += b.length - skip;
    skip = 0;
  }
}

/** Reads up to `len` bytes at `pos` into `buf[off..]`; resolves the count read (0 at EOF). */
export function readAt(fd: number, buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
  return new Promise((res, rej) => fs.read(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
}

/** Reads exactly `len` bytes at `pos` (fails on a short file). */
export function readExactly(fd: number, len: number, pos: number): Promise<Buffer> {
  return readExactlyInto(fd, Buffer.allocUnsafe(len), len, pos);
}

/** Reads exactly `len` bytes at `pos` into the start of `into`; resolves `into[0..len)`. */
export async function readExactlyInto(fd: number, into: Buffer, len: number, pos: number): Promise<Buffer> {
  const buf = into.length === len ? into : into.subarray(0, len);
  let got = 0;
  while (got < len) {
    const n = await readAt(fd, buf, got, len - got, pos + got);
    if (n === 0) throw Object.assign(new Error('unexpected end of file'), { code: 'ESHORT' });
    got += n;
  }
  return buf;
}

export function ftruncateFd(fd: number, len: number): Promise<void> {
  return new Promise((res, rej) => fs.ftruncate(fd, len, (e) => (e ? rej(e) : res())));
}

export function fstatFd(fd: number): Promise<fs.Stats> {
  return new Promise((res, rej) => fs.fstat(fd, (e, st) => (e ? rej(e) : res(st))));
}

export function fdatasyncFd(fd: number): Promise<void> {
  return new Promise((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
}

export function fsyncFd(fd: number): Promise<void> {
  return new Promise((res, rej) => fs.fsync(fd, (e) => (e ? rej(e) : res())));
}

export function renamePath(from: string, to: string): Promise<void> {
  return new Promise((res, rej) => fs.rename(from, to, (e) => (e ? rej(e) : res())));
}

export function unlinkPath(path: string): Promise<void> {
  return new Promise((res, rej) => fs.unlink(path, (e) => (e ? rej(e) : res())));
}

/** Unlinks and ignores "not there". */
export async function unlinkQuietly(path: string): Promise<void> {
  try {
    await unlinkPath(path);
  } catch {
    /* already gone */
  }
}

/** rmdir; resolves false (and ignores the error) when it is missing or not empty. */
export function rmdirQuietly(path: string): Promise<boolean> {
  return new Promise((res) => fs.rmdir(path, (e) => res(!e)));
}

/** mkdir; resolves true when created, false when it already existed. */
export function mkdirOne(path: string): Promise<boolean> {
  return new Promise((res, rej) =>
    fs.mkdir(path, 0o755, (e) => {
      if (!e) res(true);
      else if (e.code === 'EEXIST') res(false);
      else rej(e);
    }),
  );
}

/** Directory entries; [] when the directory does not exist. */
export function readdirOrEmpty(path: string): Promise<string[]> {
  return new Promise((res, rej) =>
    fs.readdir(path, (e, names) => {
      if (!e) res(names);
      else if (e.code === 'ENOENT' || e.code === 'ENOTDIR') res([]);
      else rej(e);
    }),
  );
}

/** fsync of a directory, so that entries created or renamed in it are durable. */
export async function fsyncDir(path: string): Promise<void> {
  const fd = await openFd(path, O_DIRECTORY);
  try {
    await fsyncFd(fd);
  } finally {
    closeQuietly(fd);
  }
}

/**
 * Creates `path` and any missing parents, fsyncing the parent of every
 * directory it creates (so the new entries survive a power cut). It never
 * creates `root` itself: a device directory that is missing (unmounted) makes
 * it fail with ENOENT instead of silently filling the parent filesystem.
 * Resolves the number of directories created.
 */
export async function mkdirsDurable(path: string, root?: string): Promise<number> {
  if (root !== undefined && (path === root || !path.startsWith(root + '/'))) {
    if (await pathIsDir(path)) return 0;
    throw Object.assign(new Error(`ENOENT: ${path} is missing (device not mounted?)`), { code: 'ENOENT' });
  }
  if (await mkdirOne(path).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)))) {
    await fsyncDir(dirname(path));
    return 1;
  }
  // mkdirOne resolved false (existed) or null (parent missing).
  if (await pathIsDir(path)) return 0;
  const made = await mkdirsDurable(dirname(path), root);
  const created = await mkdirOne(path);
  if (created) await fsyncDir(dirname(path));
  return made + (created ? 1 : 0);
}

function pathIsDir(path: string): Promise<boolean> {
  return new Promise((res) => fs.stat(path, (e, st) => res(!e && st.isDirectory())));
}

/**
 * Writes a small file atomically and durably: temp file in the same directory,
 * fsync, rename over the target, fsync the directory.
 */
export async function writeFileDurable(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdirsDurable(dir);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = await openFd(tmp, O_NEW_FILE);
  try {
    await writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data, 0);
    await fsyncFd(fd);
  } catch (e) {
    closeQuietly(fd);
    await unlinkQuietly(tmp);
    throw e;
  }
  await closeFd(fd);
  await renamePath(tmp, path);
  await fsyncDir(dir);
}
