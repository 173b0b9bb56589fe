import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Writer for the "newc" cpio format (the one the Linux kernel unpacks as an
 * initramfs): per entry a 110-byte ASCII header ("070701" + 13 eight-digit
 * hex fields), the NUL-terminated name padded to 4 bytes, then the data
 * padded to 4 bytes; the archive ends with an entry named "TRAILER!!!".
 * Owners are always root, so no root privileges are needed to build an
 * initramfs that contains device nodes.
 */

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

export interface CpioEntry {
  /** Path inside the archive, without a leading slash (e.g. "bin/sh"). */
  name: string;
  /** Full st_mode: file type bits | permissions. */
  mode: number;
  /** File contents, or the link target for symlinks. Empty for dirs/devices. */
  data?: Buffer;
  /** Device numbers for character/block nodes. */
  rdevMajor?: number;
  rdevMinor?: number;
  mtime?: number;
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

function header(e: CpioEntry, ino: number, nameLen: number, size: number): string {
  const isDir = (e.mode & 0o170000) === S_IFDIR;
  return (
    '070701' +
    hex8(ino) +
    hex8(e.mode) +
    hex8(0) + // uid
    hex8(0) + // gid
    hex8(isDir ? 2 : 1) + // nlink
    hex8(e.mtime ?? 0) +
    hex8(size) +
    hex8(0) + // devmajor
    hex8(0) + // devminor
    hex8(e.rdevMajor ?? 0) +
    hex8(e.rdevMinor ?? 0) +
    hex8(nameLen) +
    hex8(0) // check
  );
}

/** Serialises entries (in the given order) into one newc archive. */
export function buildCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  let offset = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    offset += b.length;
  };
  const add = (e: CpioEntry, inode: number): void => {
    const name = Buffer.from(e.name + '\0', 'utf8');
    const data = e.data ?? Buffer.alloc(0);
    push(Buffer.from(header(e, inode, name.length, data.length), 'ascii'));
    push(name);
    push(Buffer.alloc(pad4(offset)));
    if (data.length > 0) {
      push(data);
      push(Buffer.alloc(pad4(offset)));
    }
  };
  for (const e of entries) add(e, ino++);
  add({ name: 'TRAILER!!!', mode: 0 }, 0);
  return Buffer.concat(parts);
}

/**
 * Collects a directory tree as cpio entries (sorted, parents first), keeping
 * permissions and symlinks; ownership becomes root:root.
 */
export async function collectTree(root: string, mtime = 0): Promise<CpioEntry[]> {
  const out: CpioEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = await lstat(p);
      const perm = st.mode & 0o7777;
      if (st.isSymbolicLink()) {
        out.push({ name: r, mode: S_IFLNK | 0o777, data: Buffer.from(await readlink(p), 'utf8'), mtime });
      } else if (st.isDirectory()) {
        out.push({ name: r, mode: S_IFDIR | perm, mtime });
        await walk(r);
      } else if (st.isFile()) {
        out.push({ name: r, mode: S_IFREG | perm, data: await readFile(p), mtime });
      }
      // sockets/fifos/devices on disk are skipped: add device nodes explicitly
    }
  };
  await walk('');
  return out;
}
