import { createHmac, hash } from 'node:crypto';

/**
 * AWS Signature Version 4, shared by the S3 API and identity's /v3/ec2tokens.
 * The canonical request is built from what the client sent; callers pass the
 * path exactly as it appeared on the wire.
 */
export interface SigV4Input {
  method: string;
  /** Raw (already URI-encoded) path as sent. */
  path: string;
  /** Query parameters, decoded. X-Amz-Signature is ignored. */
  query: [string, string][];
  /** Header names lower-cased. */
  headers: Record<string, string | string[] | undefined>;
  signedHeaders: string[];
  payloadHash: string;
  amzDate: string; // 20130524T000000Z
  scope: { date: string; region: string; service: string };
  /** S3 does not double-encode the path; other services do. */
  service?: 's3' | 'other';
}

// One-shot digest (no Hash object per call): this runs on every S3 request.
const sha256hex = (s: string | Buffer) => hash('sha256', s, 'hex');
const hmac = (k: Buffer | string, s: string) => createHmac('sha256', k).update(s).digest();

/** RFC 3986 encoding the way SigV4 wants it (unreserved chars kept). */
export const awsEncode = (s: string, keepSlash = false): string => {
  const e = encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  // (A `/$^/` "match nothing" regex would match the empty string and turn '' into '/'.)
  return keepSlash ? e.replace(/%2F/g, '/') : e;
};

export function canonicalRequest(i: SigV4Input): string {
  const query = i.query.length === 0 ? '' : i.query
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [awsEncode(k), awsEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  // Runs on every S3 request: one string built in place, no intermediate arrays.
  let headers = '';
  for (const h of i.signedHeaders) {
    const v = i.headers[h];
    headers += `${h}:${canonicalHeaderValue(Array.isArray(v) ? v.join(',') : (v ?? ''))}\n`;
  }
  const path = i.service === 's3' ? i.path || '/' : i.path.split('/').map((seg) => awsEncode(decodeURIComponentSafe(seg))).join('/') || '/';
  return `${i.method}\n${path}\n${query}\n${headers}\n${i.signedHeaders.join(';')}\n${i.payloadHash}`;
}

/** A header value trimmed, inner runs of whitespace folded to one space (the regex only runs when there is any to fold). */
function canonicalHeaderValue(v: string): string {
  const t = v.trim();
  return /\s\s|[^\S ]/.test(t) ? t.replace(/\s+/g, ' ') : t;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function stringToSign(i: SigV4Input): string {
  return `AWS4-HMAC-SHA256\n${i.amzDate}\n${i.scope.date}/${i.scope.region}/${i.scope.service}/aws4_request\n${sha256hex(canonicalRequest(i))}`;
}

export function signingKey(secret: string, scope: { date: string; region: string; service: string }): Buffer {
  const kDate = hmac('AWS4' + secret, scope.date);
  const kRegion = hmac(kDate, scope.region);
  const kService = hmac(kRegion, scope.service);
  return hmac(kService, 'aws4_request');
}

/**
 * HMAC-SHA256 (RFC 2104) with a key fixed once and used for many messages,
 * as a SigV4 signing key is: H((K ^ opad) || H((K ^ ipad) || m)) over Node's
 * one-shot SHA-256. `createHmac` sets up a keyed OpenSSL context and a stream
 * object on every call, which was ~6 µs of a cached S3 GET here. Here each
 * key keeps two buffers that start with its padded key, written once: a
 * message is written after the inner pad, and the inner digest after the
 * outer one, as a latin1 ("binary") string (a digest returned as a Buffer allocates a
 * new ArrayBuffer each time, which cost more than the digest itself).
 * test/core/sigv4.test.ts checks it against createHmac.
 */
export class HmacSha256Key {
  /** K ^ ipad, then room for a message (grown for a longer one). */
  private inner = Buffer.alloc(64 + 512);
  /** K ^ opad, then the inner digest. */
  private readonly outer = Buffer.alloc(64 + 32);

  constructor(readonly key: Buffer) {
    const k = key.length > 64 ? hash('sha256', key, 'buffer') : key;
    this.inner.fill(0x36, 0, 64);
    this.outer.fill(0x5c, 0, 64);
    for (let i = 0; i < k.length; i++) {
      this.inner[i]! ^= k[i]!;
      this.outer[i]! ^= k[i]!;
    }
  }

  /** Hex HMAC of the UTF-8 bytes of `msg`. */
  hex(msg: string): string {
    const cap = 64 + msg.length * 3;
    if (this.inner.length < cap) {
      const grown = Buffer.alloc(cap);
      this.inner.copy(grown, 0, 0, 64);
      this.inner = grown;
    }
    const n = 64 + this.inner.write(msg, 64, 'utf8');
    this.outer.write(hash('sha256', this.inner.subarray(0, n), 'binary'), 64, 'binary');
    return hash('sha256', this.outer, 'hex');
  }
}

export function signV4(i: SigV4Input, secret: string): string {
  return new HmacSha256Key(signingKey(secret, i.scope)).hex(stringToSign(i));
}

/** Constant-time comparison of two signatures (no buffers: this runs on every S3 request). */
export function safeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** An Authorization header's parts (see parseAuthorization). */
export interface ParsedAuthorization {
  access: string;
  scope: { date: string; region: string; service: string };
  signedHeaders: string[];
  signature: string;
}

/**
 * Parses `AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=a;b, Signature=...`
 * (the three parts in any order, separated by commas; runs on every S3 request, so no regex).
 */
export function parseAuthorization(h: string): ParsedAuthorization | null {
  const ALG = 'AWS4-HMAC-SHA256';
  if (!h.startsWith(ALG)) return null;
  let at = ALG.length;
  if (at >= h.length || !isSpace(h.charCodeAt(at))) return null;
  while (at < h.length && isSpace(h.charCodeAt(at))) at++;
  let credential: string | undefined;
  let signedHeaders: string | undefined;
  let signature: string | undefined;
  while (at < h.length) {
    let end = h.indexOf(',', at);
    if (end < 0) end = h.length;
    const eq = h.indexOf('=', at);
    if (eq > at && eq < end) {
      const name = h.slice(at, eq).trim();
      const value = h.slice(eq + 1, end).trim();
      if (name === 'Credential') credential = value;
      else if (name === 'SignedHeaders') signedHeaders = value;
      else if (name === 'Signature') signature = value;
    }
    at = end + 1;
  }
  const cred = credential?.split('/');
  if (!cred || cred.length !== 5 || !signedHeaders || !signature) return null;
  return {
    access: cred[0]!, scope: { date: cred[1]!, region: cred[2]!, service: cred[3]! },
    signedHeaders: signedHeaders.split(';'), signature,
  };
}

/** Whitespace as a regex `\s` means it, for the characters a header can hold. */
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12 || c === 0xa0;
