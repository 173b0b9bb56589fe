import { createHash, createHmac, type Hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { ChunkSigning, PayloadMode } from './auth.js';
import { S3Error } from './errors.js';

/** The SHA-256 of an empty body: what most GET, HEAD and DELETE requests carry. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Passes bytes through and fails at the end unless they hash to the signed `x-amz-content-sha256`. */
class Sha256Check extends Transform {
  private readonly h = createHash('sha256');
  constructor(private readonly want: string) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.h.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = this.h.digest('hex');
    if (got !== this.want) {
      cb(new S3Error('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", { ClientComputedContentSHA256: this.want, S3ComputedContentSHA256: got }));
    } else cb();
  }
}

/** A running checksum for a trailing `x-amz-checksum-*` header. */
interface Checksum {
  update(b: Buffer): void;
  digest(): string;
}

function checksumFor(trailerName: string | undefined): { name: string; sum: Checksum | null } | null {
  if (!trailerName) return null;
  const name = trailerName.trim().toLowerCase();
  if (name === 'x-amz-checksum-crc32') {
    let c = 0;
    return {
      name,
      sum: {
        update: (b) => (c = crc32(b, c)),
        digest: () => {
          const out = Buffer.alloc(4);
          out.writeUInt32BE(c >>> 0);
          return out.toString('base64');
        },
      },
    };
  }
  if (name === 'x-amz-checksum-sha1' || name === 'x-amz-checksum-sha256') {
    const h: Hash = createHash(name.endsWith('sha1') ? 'sha1' : 'sha256');
    return { name, sum: { update: (b) => h.update(b), digest: () => h.digest('base64') } };
  }
  // crc32c / crc64nvme: no implementation in Node's standard library; the
  // trailer is accepted unverified (the object's MD5 is still computed).
  return { name, sum: null };
}

const MAX_LINE = 4096;

/**
 * Decodes an `aws-chunked` body (`<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n`
 * … `0…\r\n` [trailers] `\r\n`). With `signing`, every chunk's signature is
 * verified against the chain seeded by the request signature (SigV4
 * streaming, STREAMING-AWS4-HMAC-SHA256-PAYLOAD), as is the trailer
 * signature; data is passed on as it arrives and a bad signature fails the
 * stream before it ends, so the engine never commits the object. A trailing
 * `x-amz-checksum-crc32|sha1|sha256` is checked against the decoded bytes.
 */
export class AwsChunkedDecoder extends Transform {
  private state: 'size' | 'data' | 'data-crlf' | 'final-crlf' | 'trailer' | 'done' = 'size';
  private line = Buffer.alloc(0);
  private remaining = 0;
  private chunkSig = '';
  private prevSig: string;
  private chunkHash: Hash | null = null;
  private readonly trailers = new Map<string, string>();
  private readonly checksum: { name: string; sum: Checksum | null } | null;

  constructor(
    private readonly signing: ChunkSigning | null,
    private readonly trailer: boolean,
    trailerHeader?: string,
  ) {
    super();
    this.prevSig = signing?.seed ?? '';
    this.checksum = trailer ? checksumFor(trailerHeader) : null;
  }

  private fail(code: string, message: string): S3Error {
    this.state = 'done';
    return new S3Error(code, message);
  }

  /** Takes one CRLF-terminated line from the input; null until it is complete. */
  private takeLine(buf: Buffer, pos: number): { line: string; next: number } | null {
    const i = buf.indexOf('\n', pos);
    if (i < 0) {
      this.line = Buffer.concat([this.line, buf.subarray(pos)]);
      if (this.line.length > MAX_LINE) throw this.fail('IncompleteBody', 'aws-chunked framing line too long');
      return null;
    }
    const whole = Buffer.concat([this.line, buf.subarray(pos, i + 1)]);
    this.line = Buffer.alloc(0);
    if (whole.length > MAX_LINE) throw this.fail('IncompleteBody', 'aws-chunked framing line too long');
    const s = whole.toString('latin1');
    if (!s.endsWith('\r\n')) throw this.fail('IncompleteBody', 'aws-chunked framing line not terminated by CRLF');
    return { line: s.slice(0, -2), next: i + 1 };
  }

  private verifyChunk(dataHash: string): void {
    const s = this.signing;
    if (!s) return;
    const sts = ['AWS4-HMAC-SHA256-PAYLOAD', s.amzDate, s.scope, this.prevSig, EMPTY_SHA256, dataHash].join('\n');
    const want = createHmac('sha256', s.key).update(sts).digest('hex');
    if (want !== this.chunkSig) throw this.fail('SignatureDoesNotMatch', 'The chunk signature we calculated does not match the signature you provided.');
    this.prevSig = want;
  }

  override _transform(buf: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      let pos = 0;
      while (pos < buf.length) {
        if (this.state === 'size') {
          const got = this.takeLine(buf, pos);
          if (!got) break;
          pos = got.next;
          const m = /^([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(got.line);
          if (!m) throw this.fail('IncompleteBody', 'Malformed aws-chunked chunk header');
          if (this.signing && !m[2]) throw this.fail('SignatureDoesNotMatch', 'A chunk signature is missing');
          this.remaining = parseInt(m[1]!, 16);
          this.chunkSig = m[2] ?? '';
          this.chunkHash = this.signing ? createHash('sha256') : null;
          if (this.remaining === 0) {
            this.verifyChunk(EMPTY_SHA256);
            this.state = this.trailer ? 'trailer' : 'final-crlf';
          } else this.state = 'data';
        } else if (this.state === 'data') {
          const n = Math.min(this.remaining, buf.length - pos);
          const part = buf.subarray(pos, pos + n);
          this.chunkHash?.update(part);
          this.checksum?.sum?.update(part);
          this.push(part);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 'data-crlf';
        } else if (this.state === 'data-crlf' || this.state === 'final-crlf') {
          const got = this.takeLine(buf, pos);
          if (!got) break;
          pos = got.next;
          if (got.line !== '') throw this.fail('IncompleteBody', 'aws-chunked chunk data not followed by CRLF');
          if (this.state === 'final-crlf') {
            this.state = 'done';
            continue;
          }
          if (this.chunkHash) this.verifyChunk(this.chunkHash.digest('hex'));
          this.chunkHash = null;
          this.state = 'size';
        } else if (this.state === 'trailer') {
          const got = this.takeLine(buf, pos);
          if (!got) break;
          pos = got.next;
          if (got.line === '') {
            this.finishTrailers();
            this.state = 'done';
            continue;
          }
          const i = got.line.indexOf(':');
          if (i <= 0) throw this.fail('IncompleteBody', 'Malformed aws-chunked trailer');
          if (this.trailers.size > 16) throw this.fail('IncompleteBody', 'Too many trailers');
          this.trailers.set(got.line.slice(0, i).trim().toLowerCase(), got.line.slice(i + 1).trim());
        } else {
          // 'done': anything after the final chunk is a framing error.
          throw this.fail('IncompleteBody', 'Data after the final aws-chunked chunk');
        }
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  private finishTrailers(): void {
    if (this.checksum) {
      const got = this.trailers.get(this.checksum.name);
      if (got === undefined) throw this.fail('InvalidRequest', `The trailer ${this.checksum.name} announced in x-amz-trailer is missing`);
      if (this.checksum.sum && this.checksum.sum.digest() !== got) {
        throw this.fail('BadDigest', `The ${this.checksum.name.replace('x-amz-checksum-', '').toUpperCase()} you specified did not match the calculated checksum.`);
      }
    }
    if (this.signing) {
      const sig = this.trailers.get('x-amz-trailer-signature');
      if (!sig) throw this.fail('SignatureDoesNotMatch', 'The trailer signature is missing');
      const canon = [...this.trailers].filter(([k]) => k !== 'x-amz-trailer-signature').map(([k, v]) => `${k}:${v}\n`).join('');
      const sts = ['AWS4-HMAC-SHA256-TRAILER', this.signing.amzDate, this.signing.scope, this.prevSig, createHash('sha256').update(canon).digest('hex')].join('\n');
      const want = createHmac('sha256', this.signing.key).update(sts).digest('hex');
      if (want !== sig) throw this.fail('SignatureDoesNotMatch', 'The trailer signature we calculated does not match the signature you provided.');
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.state !== 'done') cb(new S3Error('IncompleteBody', 'The aws-chunked body ended before its final chunk.'));
    else cb();
  }
}

/**
 * The request body as the client meant it: raw, checked against the signed
 * SHA-256, or decoded from aws-chunked (with chunk signatures verified).
 * Errors of the request (client went away) fail the returned stream.
 */
export function requestBody(req: IncomingMessage, payload: PayloadMode): Readable {
  let t: Transform;
  if (payload.kind === 'unsigned') return req;
  if (payload.kind === 'sha256') t = new Sha256Check(payload.hash);
  else {
    const trailerHeader = req.headers['x-amz-trailer'];
    t = new AwsChunkedDecoder(payload.signed, payload.trailer, Array.isArray(trailerHeader) ? trailerHeader[0] : trailerHeader);
  }
  pipeline(req, t, () => {});
  return t;
}

/**
 * The decoded body length: `x-amz-decoded-content-length` for aws-chunked
 * bodies, else Content-Length. Undefined when neither is given.
 */
export function bodyLength(req: IncomingMessage, payload: PayloadMode): number | undefined {
  const raw = payload.kind === 'chunked' ? req.headers['x-amz-decoded-content-length'] : req.headers['content-length'];
  if (raw === undefined) return undefined;
  const v = Array.isArray(raw) ? raw[0]! : raw;
  if (!/^\d{1,16}$/.test(v)) throw new S3Error('InvalidArgument', `Invalid ${payload.kind === 'chunked' ? 'x-amz-decoded-content-length' : 'Content-Length'}: ${v}`);
  return Number(v);
}

/** Reads a small body (an XML request document) whole; larger than `limit` → MaxMessageLengthExceeded. */
export async function readSmall(body: Readable, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    n += b.length;
    if (n > limit) {
      body.destroy();
      throw new S3Error('MaxMessageLengthExceeded', 'Your request was too big.');
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}
