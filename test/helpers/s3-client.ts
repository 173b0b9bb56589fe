/**
 * A small S3 client for tests and benchmarks, with its own Signature V4
 * signer (written from the AWS specification, independent of the server's
 * verifier): header signing with a signed or unsigned payload, aws-chunked
 * streaming uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and presigned URLs.
 */
import { createHash, createHmac } from 'node:crypto';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

export interface S3ClientOptions {
  endpoint: string;
  access: string;
  secret: string;
  region?: string;
  agent?: Agent;
}

export interface S3Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface S3RequestOptions {
  query?: Array<[string, string]> | Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** A streamed body (sent with UNSIGNED-PAYLOAD); give content-length in headers. */
  stream?: Readable;
  /** 'signed' (default): sha256 of the body; 'unsigned': UNSIGNED-PAYLOAD; 'streaming': aws-chunked with chunk signatures. */
  payload?: 'signed' | 'unsigned' | 'streaming';
  chunkSize?: number;
  /** Host header to send (virtual-host style tests); default from the endpoint. */
  host?: string;
  /** Sign with this time instead of now. */
  date?: Date;
  /** Corrupt the n-th chunk signature (streaming tests). */
  badChunk?: number;
  /** Discard the response body (benchmarks). */
  discard?: boolean;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const hmac = (k: Buffer | string, s: string) => createHmac('sha256', k).update(s).digest();

/** RFC 3986 percent-encoding as SigV4 wants it. */
export function uriEncode(s: string, keepSlash = false): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** `/bucket/key` with the key encoded for the wire. */
export const objectPath = (bucket: string, key?: string) => `/${uriEncode(bucket)}${key !== undefined ? '/' + uriEncode(key, true) : ''}`;

const amzDateOf = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

export class S3Client {
  readonly region: string;
  private readonly url: URL;
  constructor(readonly opts: S3ClientOptions) {
    this.region = opts.region ?? 'RegionOne';
    this.url = new URL(opts.endpoint);
  }

  withSecret(secret: string): S3Client {
    return new S3Client({ ...this.opts, secret });
  }

  private keyCache: { date: string; key: Buffer } | null = null;

  /** The day's signing key (cached for the day, as the AWS SDKs do). */
  private key(date: string): Buffer {
    if (this.keyCache?.date !== date) this.keyCache = { date, key: hmac(hmac(hmac(hmac('AWS4' + this.opts.secret, date), this.region), 's3'), 'aws4_request') };
    return this.keyCache.key;
  }

  private canonicalQuery(q: Array<[string, string]>): string {
    return q
      .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
  }

  /** Signs and sends one request; resolves with the whole response. */
  async request(method: string, path: string, o: S3RequestOptions = {}): Promise<S3Response> {
    const s = this.sign(method, path, o);
    return this.send(method, s.pathQs, s.headers, s.body, o.stream, o.discard);
  }

  /**
   * Signs one request (SigV4 in the Authorization header) without sending it:
   * the path with its query string, the headers to send and the body as
   * encoded. A signed request may be sent again unchanged while its date is
   * within the server's window (benchmarks replay them from a C client).
   */
  sign(method: string, path: string, o: S3RequestOptions = {}): { pathQs: string; headers: Record<string, string>; body: Buffer | undefined } {
    const date = o.date ?? new Date();
    const amzDate = amzDateOf(date);
    const day = amzDate.slice(0, 8);
    const scope = `${day}/${this.region}/s3/aws4_request`;
    const query: Array<[string, string]> = Array.isArray(o.query) ? o.query : Object.entries(o.query ?? {});
    const host = o.host ?? this.url.host;
    const headers: Record<string, string> = { host, 'x-amz-date': amzDate };
    for (const [k, v] of Object.entries(o.headers ?? {})) headers[k.toLowerCase()] = v;
    let body: Buffer | undefined = o.body === undefined ? undefined : Buffer.from(o.body);
    const mode = o.stream ? 'unsigned' : (o.payload ?? 'signed');
    let payloadHash: string;
    if (mode === 'signed') payloadHash = sha256(body ?? '');
    else if (mode === 'unsigned') payloadHash = 'UNSIGNED-PAYLOAD';
    else {
      payloadHash = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
      headers['content-encoding'] = headers['content-encoding'] ? `aws-chunked,${headers['content-encoding']}` : 'aws-chunked';
      headers['x-amz-decoded-content-length'] = String(body?.length ?? 0);
    }
    // A caller-given hash is signed as is (tests of a body that does not match it).
    if (o.headers?.['x-amz-content-sha256']) payloadHash = o.headers['x-amz-content-sha256'];
    headers['x-amz-content-sha256'] = payloadHash;
    if (body && mode !== 'streaming') headers['content-length'] = String(body.length);
    const signedNames = Object.keys(headers).filter((h) => h === 'host' || h.startsWith('x-amz-') || h === 'content-type' || h === 'content-md5' || h === 'content-encoding' || h === 'range').sort();
    const canonical = [
      method, path, this.canonicalQuery(query),
      signedNames.map((h) => `${h}:${headers[h]!.trim()}\n`).join(''), signedNames.join(';'), payloadHash,
    ].join('\n');
    const key = this.key(day);
    const sts = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
    const signature = createHmac('sha256', key).update(sts).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${this.opts.access}/${scope}, SignedHeaders=${signedNames.join(';')}, Signature=${signature}`;
    if (mode === 'streaming') {
      body = this.chunked(body ?? Buffer.alloc(0), o.chunkSize ?? 64 * 1024, key, amzDate, scope, signature, o.badChunk);
      headers['content-length'] = String(body.length);
    }
    const qs = query.map(([k, v]) => (v === '' && !['prefix', 'marker'].includes(k) ? uriEncode(k) : `${uriEncode(k)}=${uriEncode(v)}`)).join('&');
    return { pathQs: path + (qs ? `?${qs}` : ''), headers, body };
  }

  private chunked(data: Buffer, size: number, key: Buffer, amzDate: string, scope: string, seed: string, bad?: number): Buffer {
    const out: Buffer[] = [];
    let prev = seed;
    const emptyHash = sha256('');
    let n = 0;
    for (let off = 0; ; off += size) {
      const chunk = data.subarray(off, Math.min(off + size, data.length));
      const sts = ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, prev, emptyHash, sha256(chunk)].join('\n');
      let sig = createHmac('sha256', key).update(sts).digest('hex');
      prev = sig;
      if (bad === n) sig = sig.replace(/^./, (c) => (c === '0' ? '1' : '0'));
      out.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${sig}\r\n`), chunk, Buffer.from('\r\n'));
      n++;
      if (chunk.length === 0) break;
    }
    return Buffer.concat(out);
  }

  /** A presigned URL (query-string SigV4, UNSIGNED-PAYLOAD). */
  presign(method: string, path: string, expiresSeconds: number, o: { date?: Date; query?: Array<[string, string]> } = {}): string {
    const amzDate = amzDateOf(o.date ?? new Date());
    const day = amzDate.slice(0, 8);
    const scope = `${day}/${this.region}/s3/aws4_request`;
    const query: Array<[string, string]> = [
      ...(o.query ?? []),
      ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
      ['X-Amz-Credential', `${this.opts.access}/${scope}`],
      ['X-Amz-Date', amzDate],
      ['X-Amz-Expires', String(expiresSeconds)],
      ['X-Amz-SignedHeaders', 'host'],
    ];
    const canonical = [method, path, this.canonicalQuery(query), `host:${this.url.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
    const sts = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
    const sig = createHmac('sha256', this.key(day)).update(sts).digest('hex');
    const qs = [...query, ['X-Amz-Signature', sig]].map(([k, v]) => `${uriEncode(k!)}=${uriEncode(v!)}`).join('&');
    return `${this.opts.endpoint}${path}?${qs}`;
  }

  private send(method: string, pathQs: string, headers: Record<string, string>, body: Buffer | undefined, stream: Readable | undefined, discard?: boolean): Promise<S3Response> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: this.url.hostname, port: this.url.port, method, path: pathQs, headers, agent: this.opts.agent },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            if (!discard) parts.push(c);
          });
          res.on('end', () => {
            const b = Buffer.concat(parts);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (stream) stream.pipe(req);
      else req.end(body);
    });
  }
}

/** The text of the first `<name>` element in an XML body. */
export function xmlText(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? m[1] : undefined;
}

/** The texts of every `<name>` element. */
export function xmlAll(xml: string, name: string): string[] {
  return [...xml.matchAll(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, 'g'))].map((m) => m[1]!);
}
