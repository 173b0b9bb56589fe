import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from '../../core/log.js';
import type { PolicyEngine } from '../../core/policy.js';
import { allowedOnProject } from '../../core/context.js';
import { httpDate } from '../../core/http-date.js';
import { checkConditions, NotFoundError, NotModifiedError, type ObjectMeta, type ObjectStore, type ReadConditions } from '../store/index.js';
import { S3Error, fromStoreError } from './errors.js';
import { baseHeaders } from './respond.js';
import type { S3Request } from './request.js';

/** What every handler needs. */
export interface S3Env {
  store: ObjectStore;
  policy: PolicyEngine;
  region: string;
  log: Logger;
}

/** Suffix of the hidden container holding a bucket's multipart uploads (not a valid S3 bucket name). */
export const SEGMENTS_SUFFIX = '+segments';

/** sysMeta key of the S3 ETag of a completed multipart upload (`<md5 of md5s>-<parts>`). */
export const SYS_S3_ETAG = 's3-etag';
/** sysMeta prefix of the standard headers S3 stores with an object. */
const SYS_HEADER = 's3-h-';
/** Headers S3 stores with an object and returns on GET/HEAD. */
export const STORED_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'] as const;
/** [header, the sysmeta key it is stored under] (built once: objectHeaders runs on every GET). */
const STORED_AS = STORED_HEADERS.map((h) => [h, SYS_HEADER + h] as const);

/** The engine account of a request: the credential's project. */
export const accountOf = (projectId: string): string => `AUTH_${projectId}`;

/** Checks the request's policy rule (`s3:read` / `s3:write`) against the credential's roles; AccessDenied if refused. */
export function authorize(env: S3Env, r: S3Request, rule: 's3:read' | 's3:write'): void {
  const ok = allowedOnProject(env.policy, r.auth.ctx, rule, r.auth.ctx.projectId);
  if (!ok) throw new S3Error('AccessDenied', 'Access Denied');
  r.authorized = true;
}

/**
 * S3's bucket naming rules for new buckets: 3–63 characters of lower-case
 * letters, digits, dots and hyphens, starting and ending with a letter or
 * digit, no `..`, not an IP address. Existing containers made through the
 * Swift API with other names stay reachable (any name the engine accepts
 * and without `+`, which marks hidden containers).
 */
export function checkNewBucketName(name: string): void {
  const ok =
    name.length >= 3 &&
    name.length <= 63 &&
    /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name) &&
    !name.startsWith('xn--') &&
    !name.endsWith('-s3alias');
  if (!ok) throw new S3Error('InvalidBucketName', 'The specified bucket is not valid.', { BucketName: name });
}

/** Any bucket name used in a request (not just created). */
export function checkBucketName(name: string): void {
  if (name.includes('+') || name.includes('/') || name.length === 0 || Buffer.byteLength(name) > 256) {
    throw new S3Error('InvalidBucketName', 'The specified bucket is not valid.', { BucketName: name });
  }
}

/** S3 keys are at most 1024 bytes of UTF-8. */
export function checkKey(key: string): void {
  if (Buffer.byteLength(key) > 1024) throw new S3Error('KeyTooLongError', 'Your key is too long');
  if (key.includes('\0')) throw new S3Error('InvalidArgument', 'Object key contains a NUL character');
}

/** `x-amz-meta-*` headers → engine user metadata (keys lower-cased, prefix dropped). */
export function userMetaFrom(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (!k.startsWith('x-amz-meta-') || v === undefined) continue;
    const name = k.slice('x-amz-meta-'.length);
    if (!name) throw new S3Error('InvalidArgument', 'Metadata name cannot be empty');
    out[name] = headerText(Array.isArray(v) ? v.join(',') : v);
  }
  return out;
}

/**
 * Node hands header bytes over as latin1; a value that is valid UTF-8 is
 * stored as the text it encodes (so the Swift API shows the same metadata).
 */
export function headerText(v: string): string {
  if (!/[\x80-\xff]/.test(v)) return v;
  const b = Buffer.from(v, 'latin1');
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : v;
}

/** A value safe for a response header: non-ASCII text goes out RFC 2047-encoded, as S3 does. */
export function headerValue(v: string): string {
  return /^[\x20-\x7e\t]*$/.test(v) ? v : `=?UTF-8?B?${Buffer.from(v, 'utf8').toString('base64')}?=`;
}

/** The standard headers to store (Cache-Control, Content-Disposition, …) as sysMeta; `aws-chunked` is not a content encoding of the object. */
export function storedHeadersFrom(headers: IncomingHttpHeaders, clearMissing = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of STORED_HEADERS) {
    let v = headers[h];
    if (Array.isArray(v)) v = v.join(',');
    if (h === 'content-encoding' && v) {
      v = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s && s.toLowerCase() !== 'aws-chunked')
        .join(',');
    }
    if (v) out[SYS_HEADER + h] = headerText(v);
    else if (clearMissing) out[SYS_HEADER + h] = '';
  }
  return out;
}

/** The object's S3 ETag (multipart ETag when it was assembled from parts), unquoted. */
export function s3Etag(meta: Pick<ObjectMeta, 'etag' | 'sysMeta'>): string {
  return meta.sysMeta[SYS_S3_ETAG] || meta.etag;
}

/** ISO 8601 with milliseconds, as S3 listings show times. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** Response headers of a GET/HEAD of an object: those every response carries (baseHeaders) and the object's. */
export function objectHeaders(meta: ObjectMeta, requestId: string): Record<string, string> {
  // Added to one object (no spreads): this runs on every GET and HEAD.
  const h = baseHeaders(requestId);
  h.etag = `"${s3Etag(meta)}"`;
  h['last-modified'] = httpDate(meta.lastModified);
  h['content-type'] = headerValue(meta.contentType);
  h['accept-ranges'] = 'bytes';
  for (const k in meta.userMeta) {
    // A name the Swift side allowed but HTTP cannot carry is left out.
    if (/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(k)) h[`x-amz-meta-${k}`] = headerValue(meta.userMeta[k]!);
  }
  for (const [s, stored] of STORED_AS) {
    const v = meta.sysMeta[stored];
    if (v) h[s] = headerValue(v);
  }
  const parts = meta.sysMeta[SYS_S3_ETAG] ? /-(\d+)$/.exec(meta.sysMeta[SYS_S3_ETAG]) : null;
  if (parts) h['x-amz-mp-parts-count'] = parts[1]!;
  return h;
}

function httpDateArg(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t; // an unparsable date is ignored, as HTTP says
}

/** The conditional headers of a GET/HEAD, in the order If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since. */
const CONDITION_HEADERS = ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'] as const;
/** The same conditions on CopyObject's source. */
export const COPY_SOURCE_CONDITION_HEADERS = CONDITION_HEADERS.map((n) => `x-amz-copy-source-${n}` as const);

/**
 * Read conditions from the four headers `names` (CONDITION_HEADERS or
 * COPY_SOURCE_CONDITION_HEADERS). The names are constants: this runs on
 * every GET, and a lookup by a freshly concatenated string costs more.
 */
export function conditionsFrom(headers: IncomingHttpHeaders, names: readonly string[] = CONDITION_HEADERS): ReadConditions | undefined {
  const get = (n: string) => {
    const v = headers[n];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const im = get(names[0]!);
  const inm = get(names[1]!);
  const ims = get(names[2]!);
  const ius = get(names[3]!);
  if (im === undefined && inm === undefined && ims === undefined && ius === undefined) return undefined;
  const c: ReadConditions = {};
  if (im !== undefined) c.ifMatch = im;
  if (inm !== undefined) c.ifNoneMatch = inm;
  const since = httpDateArg(ims);
  const unmodified = httpDateArg(ius);
  if (since !== undefined) c.ifModifiedSince = since;
  if (unmodified !== undefined) c.ifUnmodifiedSince = unmodified;
  return Object.keys(c).length ? c : undefined;
}

/** Evaluates read conditions against the S3 ETag (so a multipart ETag matches): 412 PreconditionFailed or 304 NotModified. */
export function checkS3Conditions(meta: ObjectMeta, c: ReadConditions | undefined): void {
  if (!c) return;
  try {
    checkConditions({ ...meta, etag: s3Etag(meta) }, c);
  } catch (e) {
    if (e instanceof NotModifiedError) throw new S3Error('NotModified', 'Not Modified', {}, { etag: `"${s3Etag(meta)}"`, 'last-modified': httpDate(meta.lastModified) });
    throw fromStoreError(e) ?? e;
  }
}

/** Content-MD5 (base64) → hex for the engine; malformed → InvalidDigest. */
export function contentMd5(headers: IncomingHttpHeaders): string | undefined {
  const v = headers['content-md5'];
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? v[0]! : v;
  const b = Buffer.from(s.trim(), 'base64');
  if (b.length !== 16 || b.toString('base64') !== s.trim()) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified was invalid.');
  return b.toString('hex');
}

/** Whether the engine said a container (rather than an object) was missing. */
export async function bucketExists(env: S3Env, account: string, bucket: string): Promise<boolean> {
  try {
    env.store.containerMeta(account, bucket);
    return true;
  } catch (e) {
    if (e instanceof NotFoundError) return false;
    throw e;
  }
}

export const noSuchBucket = (bucket: string) => new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
export const noSuchKey = (key: string) => new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
export const noSuchUpload = (id: string) =>
  new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: id });

/**
 * Maps an engine error of an object operation: a missing container is
 * NoSuchBucket, a missing object NoSuchKey, the rest as `fromStoreError`.
 */
export async function mapObjectError(env: S3Env, account: string, bucket: string, key: string, e: unknown): Promise<unknown> {
  if (e instanceof NotFoundError) return (await bucketExists(env, account, bucket)) ? noSuchKey(key) : noSuchBucket(bucket);
  return fromStoreError(e) ?? e;
}

/** Parses a single `bytes=` range; anything else (multiple ranges, bad syntax) is ignored as S3 does. */
export function parseRange(v: string | undefined): { start: number; end?: number } | { suffix: number } | undefined {
  if (!v) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(v.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return { suffix: Number(m[2]) };
  const start = Number(m[1]);
  if (m[2] === '') return { start };
  const end = Number(m[2]);
  if (end < start) return undefined;
  return { start, end };
}
