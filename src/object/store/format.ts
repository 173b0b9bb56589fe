import { crc32 } from 'node:zlib';
import type { Timestamp } from './timestamp.js';

/**
 * On-disk record file format (objects, tombstones, metadata updates,
 * container and account records all use it):
 *
 * ```
 * [data: dataLen bytes]
 * [block table: ceil(dataLen / blockSize) x uint32 LE, CRC-32 of each data block]
 * [meta: metaLen bytes of UTF-8 JSON, the record]
 * [footer: 32 bytes]
 *   0  magic  "STRATOB1"
 *   8  dataLen   uint64 LE
 *   16 metaLen   uint32 LE
 *   20 blockSize uint32 LE
 *   24 CRC-32 of (block table + meta)
 *   28 CRC-32 of footer bytes 0..27
 * ```
 *
 * Data and metadata live in one file that is renamed into place only after
 * it is complete and fsynced, so they are atomic together. The ETag (MD5) is
 * in the JSON; the per-block CRCs let a reader verify any range, block by
 * block, before sending it, and fall back to another replica mid-stream.
 */

export const MAGIC = Buffer.from('STRATOB1', 'latin1');
export const FOOTER_SIZE = 32;
export const BLOCK_SIZE = 256 * 1024;

/** A file that fails its own checksums or structure. Quarantined when seen. */
export class CorruptFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptFileError';
  }
}

export interface ObjectRecord {
  kind: 'object';
  account: string;
  container: string;
  name: string;
  timestamp: Timestamp;
  etag: string;
  size: number;
  contentType: string;
  userMeta: Record<string, string>;
  sysMeta: Record<string, string>;
  /** Unix seconds after which the object is gone (X-Delete-At). */
  deleteAt?: number;
}

/** A fast POST: replaces user metadata, optionally content type / delete-at; merges sysmeta. */
export interface MetaRecord {
  kind: 'meta';
  account: string;
  container: string;
  name: string;
  timestamp: Timestamp;
  userMeta: Record<string, string>;
  contentType?: string;
  /** null clears X-Delete-At. */
  deleteAt?: number | null;
  sysMeta?: Record<string, string>;
}

export interface TombstoneRecord {
  kind: 'tombstone';
  account: string;
  container?: string;
  name?: string;
  timestamp: Timestamp;
}

export interface ContainerRecord {
  kind: 'container';
  account: string;
  container: string;
  timestamp: Timestamp;
  /** When this incarnation of the container was created. */
  putTimestamp: Timestamp;
  userMeta: Record<string, string>;
  sysMeta: Record<string, string>;
}

export interface AccountRecord {
  kind: 'account';
  account: string;
  timestamp: Timestamp;
  putTimestamp: Timestamp;
  userMeta: Record<string, string>;
  sysMeta: Record<string, string>;
}

export type AnyRecord = ObjectRecord | MetaRecord | TombstoneRecord | ContainerRecord | AccountRecord;

/** File extension of each record kind. */
export type Ext = 'data' | 'ts' | 'meta';

export function extOf(rec: AnyRecord): Ext {
  return rec.kind === 'tombstone' ? 'ts' : rec.kind === 'meta' ? 'meta' : 'data';
}

/** Incremental per-block CRC-32 of a data stream. */
export class BlockChecksummer {
  private crcs: number[] = [];
  private cur = 0;
  private fill = 0;
  constructor(readonly blockSize = BLOCK_SIZE) {}

  update(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(this.blockSize - this.fill, chunk.length - off);
      this.cur = crc32(off === 0 && take === chunk.length ? chunk : chunk.subarray(off, off + take), this.cur);
      this.fill += take;
      off += take;
      if (this.fill === this.blockSize) {
        this.crcs.push(this.cur);
        this.cur = 0;
        this.fill = 0;
      }
    }
  }

  /** The block table (uint32 LE per block). */
  finish(): Buffer {
    if (this.fill > 0) {
      this.crcs.push(this.cur);
      this.cur = 0;
      this.fill = 0;
    }
    const table = Buffer.allocUnsafe(this.crcs.length * 4);
    for (let i = 0; i < this.crcs.length; i++) table.writeUInt32LE(this.crcs[i]!, i * 4);
    return table;
  }
}

/** Block table of a buffer held whole in memory. */
export function blockTableOf(data: Uint8Array, blockSize = BLOCK_SIZE): Buffer {
  const c = new BlockChecksummer(blockSize);
  c.update(data);
  return c.finish();
}

/** Everything that follows the data: block table, JSON record, footer. */
export function encodeTrailer(dataLen: number, table: Buffer, record: AnyRecord, blockSize = BLOCK_SIZE): Buffer {
  const meta = Buffer.from(JSON.stringify(record), 'utf8');
  const out = Buffer.allocUnsafe(table.length + meta.length + FOOTER_SIZE);
  table.copy(out, 0);
  meta.copy(out, table.length);
  const tailCrc = crc32(out.subarray(0, table.length + meta.length));
  const f = table.length + meta.length;
  MAGIC.copy(out, f);
  out.writeUInt32LE(dataLen % 0x1_0000_0000, f + 8);
  out.writeUInt32LE(Math.floor(dataLen / 0x1_0000_0000), f + 12);
  out.writeUInt32LE(meta.length, f + 16);
  out.writeUInt32LE(blockSize, f + 20);
  out.writeUInt32LE(tailCrc, f + 24);
  out.writeUInt32LE(crc32(out.subarray(f, f + 28)), f + 28);
  return out;
}

/** A whole record file with no data (tombstones, POSTs, container and account records). */
export function encodeRecordFile(record: AnyRecord): Buffer {
  return encodeTrailer(0, Buffer.alloc(0), record);
}

/** A whole small file (data held in memory). */
export function encodeSmallFile(data: Uint8Array, record: AnyRecord): Buffer[] {
  return [data as Buffer, encodeTrailer(data.length, blockTableOf(data), record)];
}

export interface Footer {
  dataLen: number;
  metaLen: number;
  blockSize: number;
  tailCrc: number;
  /** Length of block table + meta. */
  tailLen: number;
  tableLen: number;
}

/** Parses and checks the last 32 bytes of a file of `fileSize` bytes. */
export function parseFooter(buf: Uint8Array, fileSize: number): Footer {
  if (buf.length !== FOOTER_SIZE) throw new CorruptFileError('short footer');
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  if (!b.subarray(0, 8).equals(MAGIC)) throw new CorruptFileError('bad magic');
  if (crc32(b.subarray(0, 28)) !== b.readUInt32LE(28)) throw new CorruptFileError('footer checksum mismatch');
  const dataLen = b.readUInt32LE(8) + b.readUInt32LE(12) * 0x1_0000_0000;
  const metaLen = b.readUInt32LE(16);
  const blockSize = b.readUInt32LE(20);
  if (blockSize === 0) throw new CorruptFileError('bad block size');
  const tableLen = Math.ceil(dataLen / blockSize) * 4;
  const tailLen = tableLen + metaLen;
  if (dataLen + tailLen + FOOTER_SIZE !== fileSize) throw new CorruptFileError('file size does not match footer');
  return { dataLen, metaLen, blockSize, tailCrc: b.readUInt32LE(24), tailLen, tableLen };
}

/** Checks the tail (block table + meta) against the footer and parses the record. */
export function parseTail(tail: Uint8Array, footer: Footer): { table: Buffer; record: AnyRecord } {
  if (tail.length !== footer.tailLen) throw new CorruptFileError('short tail');
  if (crc32(tail) !== footer.tailCrc) throw new CorruptFileError('metadata checksum mismatch');
  const b = Buffer.from(tail.buffer, tail.byteOffset, tail.length);
  let record: AnyRecord;
  try {
    record = JSON.parse(b.toString('utf8', footer.tableLen)) as AnyRecord;
  } catch {
    throw new CorruptFileError('metadata is not JSON');
  }
  return { table: b.subarray(0, footer.tableLen), record };
}

/**
 * Verifies `buf`, which holds data bytes starting at block-aligned offset
 * `pos`, against the block table. Throws CorruptFileError on a mismatch.
 */
export function verifyBlocks(buf: Uint8Array, pos: number, table: Buffer, blockSize: number, dataLen: number): void {
  let off = 0;
  let block = pos / blockSize;
  while (off < buf.length) {
    const len = Math.min(blockSize, dataLen - block * blockSize);
    if (off + len > buf.length) throw new CorruptFileError('short block');
    const want = table.readUInt32LE(block * 4);
    if (crc32(buf.subarray(off, off + len)) !== want) throw new CorruptFileError(`block ${block} checksum mismatch`);
    off += len;
    block++;
  }
}

/** `<timestamp>.<ext>` file names; anything else in a hash directory is ignored. */
const FILE_RE = /^(\d{10}\.\d{5})\.(data|ts|meta)$/;

export interface Version {
  ts: Timestamp;
  ext: Ext;
  file: string;
}

export function parseFileName(file: string): Version | null {
  const m = FILE_RE.exec(file);
  return m ? { ts: m[1]!, ext: m[2] as Ext, file } : null;
}

/**
 * The live state of one hash directory's files: the newest `.data` or `.ts`
 * (the base) and the newest `.meta` newer than the base.
 */
export function resolveVersions(versions: Iterable<Version>): { base?: Version; meta?: Version } {
  let base: Version | undefined;
  let meta: Version | undefined;
  for (const v of versions) {
    if (v.ext === 'meta') {
      if (!meta || v.ts > meta.ts) meta = v;
    } else if (!base || v.ts > base.ts || (v.ts === base.ts && v.ext === 'ts')) {
      base = v;
    }
  }
  if (meta && (!base || base.ext !== 'data' || meta.ts <= base.ts)) meta = undefined;
  return { base, meta };
}

/**
 * Files made obsolete by the live state (safe to unlink): every `.data`/`.ts`
 * but the base; `.meta` files older than the base, older than the live
 * `.meta`, or left behind a tombstone. A `.meta` with no base at all is kept
 * (its data may still arrive by replication).
 */
export function obsoleteVersions(versions: Version[]): Version[] {
  const { base, meta } = resolveVersions(versions);
  return versions.filter((v) => {
    if (v.file === base?.file || v.file === meta?.file) return false;
    if (v.ext !== 'meta') return true;
    if (!base) return false;
    return base.ext === 'ts' || v.ts <= base.ts || meta !== undefined;
  });
}
