/**
 * A streaming reader of POSIX tar archives (ustar, with GNU long names and
 * pax `path`/`size` records), for `?extract-archive=tar`. It yields each
 * regular file as a stream of exactly its size; the caller must consume (or
 * `skip()`) an entry before asking for the next one. Nothing is buffered
 * beyond one input chunk.
 */
import { Readable } from 'node:stream';

export interface TarEntry {
  name: string;
  size: number;
  /** `0` file, `5` directory, ... (after long-name/pax records are applied). */
  type: string;
  body: Readable;
}

export class TarFormatError extends Error {}

class ByteSource {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<unknown>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, r.value as Buffer]) : (r.value as Buffer);
    }
    return this.buf.length >= n;
  }

  /** Exactly n bytes, or null at a clean end of input (0 bytes left). */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.buf.length === 0) return null;
      throw new TarFormatError('Truncated archive');
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Up to `max` bytes (at least 1), as they arrive. */
  async chunk(max: number): Promise<Buffer> {
    if (!(await this.fill(1))) throw new TarFormatError('Truncated archive');
    const n = Math.min(max, this.buf.length);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

const str = (b: Buffer, off: number, len: number) => {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString('utf8');
};

function octal(b: Buffer, off: number, len: number): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    // GNU base-256 for sizes ≥ 8 GiB
    let n = 0;
    for (let i = 1; i < f.length; i++) n = n * 256 + f[i]!;
    return n;
  }
  const s = str(b, off, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError('Invalid tar header');
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const want = octal(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === want;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number(data.subarray(off, sp).toString());
    if (!len) break;
    const rec = data.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

/** Iterates the entries of the tar stream `input`. */
export async function* readTar(input: AsyncIterable<unknown>): AsyncGenerator<TarEntry> {
  const src = new ByteSource(input[Symbol.asyncIterator]());
  let longName: string | null = null;
  let pax: Record<string, string> = {};
  for (;;) {
    const h = await src.read(512);
    if (!h) return;
    if (h.every((x) => x === 0)) return; // end-of-archive marker
    if (!checksumOk(h)) throw new TarFormatError('Invalid tar header checksum');
    let size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156] || 0x30);
    const magic = str(h, 257, 6);
    let name = str(h, 0, 100);
    if (magic === 'ustar' && h[345]) name = `${str(h, 345, 155)}/${name}`;
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'L' || type === 'x' || type === 'g') {
      const data = padded ? await src.read(padded) : Buffer.alloc(0);
      if (!data) throw new TarFormatError('Truncated archive');
      const content = data.subarray(0, size);
      if (type === 'L') longName = str(content, 0, content.length);
      else if (type === 'x') pax = parsePax(content);
      continue;
    }
    if (longName !== null) name = longName;
    if (pax['path'] !== undefined) name = pax['path'];
    if (pax['size'] !== undefined) size = Number(pax['size']);
    longName = null;
    pax = {};
    let left = size;
    let inflight: Promise<void> = Promise.resolve();
    const body = new Readable({
      read() {
        if (left === 0) return void this.push(null);
        inflight = src.chunk(Math.min(left, 1024 * 1024)).then(
          (c) => {
            left -= c.length;
            this.push(c);
          },
          (e: unknown) => {
            this.destroy(e as Error);
          },
        );
      },
    });
    yield { name, size, type: type === '\0' ? '0' : type, body };
    // Drain whatever the consumer left, then the padding.
    await inflight.catch(() => {});
    body.destroy();
    while (left > 0) left -= (await src.chunk(left)).length;
    const pad = Math.ceil(size / 512) * 512 - size;
    if (pad && !(await src.read(pad))) throw new TarFormatError('Truncated archive');
  }
}
