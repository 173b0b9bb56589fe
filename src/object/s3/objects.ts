import { createHash } from 'node:crypto';
import { NotFoundError, resolveRange, sendBody, type ObjectMeta, type PutObjectOptions } from '../store/index.js';
import { bodyLength, readSmall, requestBody } from './body.js';
import {
  authorize,
  bucketExists,
  checkBucketName,
  checkKey,
  checkS3Conditions,
  conditionsFrom,
  COPY_SOURCE_CONDITION_HEADERS,
  contentMd5,
  headerText,
  isoDate,
  mapObjectError,
  noSuchBucket,
  objectHeaders,
  parseRange,
  storedHeadersFrom,
  SYS_S3_ETAG,
  userMetaFrom,
  type S3Env,
} from './common.js';
import { S3Error, fromStoreError } from './errors.js';
import type { S3Request } from './request.js';
import { longRunning, sendEmpty, sendXml } from './respond.js';
import { childrenOf, doc, el, parseRequestXml, textOf } from './xml.js';

const hdr = (r: S3Request, name: string): string | undefined => {
  const v = r.req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
};

/** The decoded body length, required (S3 refuses uploads without one); over the engine's limit → EntityTooLarge. */
export function requiredLength(env: S3Env, r: S3Request): number {
  const len = bodyLength(r.req, r.auth.payload);
  if (len === undefined) throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.');
  if (len > env.store.maxObjectSize) {
    throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', { ProposedSize: String(len), MaxSizeAllowed: String(env.store.maxObjectSize) });
  }
  return len;
}

/** PUT /bucket/key — the body streams into the engine; Content-MD5 → BadDigest on mismatch; If-None-Match: * / If-Match for conditional writes. */
export async function putObject(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:write');
  const key = r.key!;
  checkKey(key);
  const len = requiredLength(env, r);
  const opts: PutObjectOptions = {
    contentType: headerText(hdr(r, 'content-type') || 'binary/octet-stream'),
    userMeta: userMetaFrom(r.req.headers),
    sysMeta: storedHeadersFrom(r.req.headers),
    expectedSize: len,
  };
  const md5 = contentMd5(r.req.headers);
  if (md5) opts.expectedEtag = md5;
  const inm = hdr(r, 'if-none-match');
  if (inm !== undefined) {
    if (inm.trim() !== '*') throw new S3Error('NotImplemented', 'If-None-Match on PUT supports only *');
    opts.ifNoneMatch = '*';
  }
  const im = hdr(r, 'if-match');
  if (im !== undefined) opts.ifMatch = im;
  let put;
  try {
    put = await env.store.putObject(r.account, r.bucket!, key, requestBody(r.req, r.auth.payload), opts);
  } catch (e) {
    throw await mapObjectError(env, r.account, r.bucket!, key, e);
  }
  sendEmpty(r.res, r.id, 200, { etag: `"${put.etag}"` });
}

/** Query parameters that override response headers on a GET (used with presigned URLs). */
const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-content-type': 'content-type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
};

/** GET / HEAD /bucket/key — Range (one `bytes=` range), conditions on the S3 ETag, user metadata as x-amz-meta-*. */
export async function getObject(env: S3Env, r: S3Request, head: boolean): Promise<void> {
  authorize(env, r, 's3:read');
  const key = r.key!;
  checkKey(key);
  const conditions = conditionsFrom(r.req.headers);
  if (head) {
    let meta: ObjectMeta;
    try {
      meta = await env.store.headObject(r.account, r.bucket!, key);
    } catch (e) {
      throw await mapObjectError(env, r.account, r.bucket!, key, e);
    }
    checkS3Conditions(meta, conditions);
    const range = parseRange(hdr(r, 'range'));
    const h = objectHeaders(meta, r.id);
    if (range) {
      let rr;
      try {
        rr = resolveRange(range, meta.size);
      } catch (e) {
        throw fromStoreError(e) ?? e;
      }
      h['content-length'] = String(rr.end - rr.start + 1);
      h['content-range'] = `bytes ${rr.start}-${rr.end}/${meta.size}`;
      r.res.writeHead(206, h);
    } else {
      h['content-length'] = String(meta.size);
      r.res.writeHead(200, h);
    }
    r.res.end();
    return;
  }
  let got;
  try {
    got = await env.store.getObject(r.account, r.bucket!, key, { range: parseRange(hdr(r, 'range')) });
  } catch (e) {
    throw await mapObjectError(env, r.account, r.bucket!, key, e);
  }
  try {
    checkS3Conditions(got.meta, conditions);
  } catch (e) {
    if (!got.body) got.stream.destroy();
    throw e;
  }
  const h = objectHeaders(got.meta, r.id);
  h['content-length'] = String(got.length);
  if (r.query.size > 0) {
    for (const q in RESPONSE_OVERRIDES) {
      const v = r.query.get(q);
      if (v !== undefined) h[RESPONSE_OVERRIDES[q]!] = v;
    }
  }
  if (got.range) h['content-range'] = `bytes ${got.range.start}-${got.range.end}/${got.meta.size}`;
  r.res.writeHead(got.range ? 206 : 200, h);
  if (got.body) {
    r.res.end(got.body);
    return;
  }
  const err = await sendBody(got.stream, r.res);
  if (err) env.log.warn({ err, requestId: r.id }, 's3: object stream ended early');
}

/** DELETE /bucket/key — 204 whether or not the key existed (as S3); a missing bucket is NoSuchBucket. */
export async function deleteObject(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:write');
  const key = r.key!;
  checkKey(key);
  try {
    await env.store.deleteObject(r.account, r.bucket!, key);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw fromStoreError(e) ?? e;
    if (!(await bucketExists(env, r.account, r.bucket!))) throw noSuchBucket(r.bucket!);
  }
  sendEmpty(r.res, r.id, 204);
}

/** `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded. */
export function parseCopySource(v: string): { bucket: string; key: string } {
  let s = v.trim();
  const q = s.indexOf('?');
  if (q >= 0) {
    const vid = s.slice(q + 1);
    if (!/^versionId=(null)?$/.test(vid)) throw new S3Error('InvalidArgument', 'Object versions are not supported', { ArgumentName: 'x-amz-copy-source' });
    s = s.slice(0, q);
  }
  let dec: string;
  try {
    dec = decodeURIComponent(s);
  } catch {
    throw new S3Error('InvalidArgument', 'Invalid copy source encoding', { ArgumentName: 'x-amz-copy-source' });
  }
  if (dec.startsWith('/')) dec = dec.slice(1);
  const i = dec.indexOf('/');
  if (i <= 0 || i === dec.length - 1) throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', { ArgumentName: 'x-amz-copy-source' });
  const bucket = dec.slice(0, i);
  const key = dec.slice(i + 1);
  checkBucketName(bucket);
  checkKey(key);
  return { bucket, key };
}

/**
 * The copy source's metadata after its `x-amz-copy-source-if-*` conditions
 * (a failed condition is 412 PreconditionFailed, also for If-None-Match).
 */
export async function copySourceMeta(env: S3Env, r: S3Request, src: { bucket: string; key: string }): Promise<ObjectMeta> {
  let meta: ObjectMeta;
  try {
    meta = await env.store.headObject(r.account, src.bucket, src.key);
  } catch (e) {
    throw await mapObjectError(env, r.account, src.bucket, src.key, e);
  }
  try {
    checkS3Conditions(meta, conditionsFrom(r.req.headers, COPY_SOURCE_CONDITION_HEADERS));
  } catch (e) {
    if (e instanceof S3Error && e.code === 'NotModified') throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'x-amz-copy-source-If-None-Match' });
    throw e;
  }
  return meta;
}

/**
 * PUT /bucket/key with x-amz-copy-source — a server-side streamed copy.
 * `x-amz-metadata-directive: COPY` (default) keeps the source's content
 * type and metadata, `REPLACE` takes them from this request; copying an
 * object onto itself needs REPLACE.
 */
export async function copyObject(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:read');
  authorize(env, r, 's3:write');
  const key = r.key!;
  checkKey(key);
  const src = parseCopySource(hdr(r, 'x-amz-copy-source')!);
  const directive = (hdr(r, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') throw new S3Error('InvalidArgument', 'Unknown metadata directive.', { ArgumentName: 'x-amz-metadata-directive', ArgumentValue: directive });
  if (src.bucket === r.bucket && src.key === key && directive === 'COPY') {
    throw new S3Error('InvalidRequest', "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.");
  }
  if (!(await bucketExists(env, r.account, r.bucket!))) throw noSuchBucket(r.bucket!);
  const meta = await copySourceMeta(env, r, src);
  const replace = directive === 'REPLACE';
  await longRunning(
    r.res,
    r.id,
    r.resource,
    async () => {
      const put = await env.store.copyObject(
        { account: r.account, container: src.bucket, name: src.key },
        { account: r.account, container: r.bucket!, name: key },
        {
          freshMetadata: replace,
          userMeta: replace ? userMetaFrom(r.req.headers) : undefined,
          contentType: replace ? headerText(hdr(r, 'content-type') || 'binary/octet-stream') : undefined,
          // A copy is one plain object: its ETag is the MD5 of the data.
          sysMeta: { [SYS_S3_ETAG]: '', ...(replace ? storedHeadersFrom(r.req.headers, true) : {}) },
          sourceConditions: { ifMatch: meta.etag },
        },
      );
      return { xml: doc('CopyObjectResult', el('LastModified', isoDate(put.lastModified)) + el('ETag', `"${put.etag}"`)) };
    },
    (e) => {
      const m = e instanceof NotFoundError ? new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: src.key }) : fromStoreError(e);
      if (m) return m;
      env.log.error({ err: e, requestId: r.id }, 's3: copy failed');
      return new S3Error('InternalError', 'We encountered an internal error. Please try again.');
    },
  );
}

/**
 * POST /bucket?delete — up to 1000 keys in one request. The document is
 * validated whole before anything is deleted (MalformedXML changes nothing);
 * a key that was not there counts as deleted (as S3).
 */
export async function deleteObjects(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:write');
  const body = await readSmall(requestBody(r.req, r.auth.payload), 2 * 1024 * 1024);
  const md5 = contentMd5(r.req.headers);
  if (md5 && createHash('md5').update(body).digest('hex') !== md5) throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
  const xml = parseRequestXml(body, 'Delete');
  const quietText = textOf(xml.Quiet as never)?.trim();
  if (quietText !== undefined && quietText !== 'true' && quietText !== 'false') throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
  const quiet = quietText === 'true';
  const objs = childrenOf(xml, 'Object');
  if (objs.length === 0 || objs.length > 1000) throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
  const keys = objs.map((o) => {
    const k = textOf(o.Key as never);
    if (k === undefined || k === '') throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
    return k;
  });
  if (!(await bucketExists(env, r.account, r.bucket!))) throw noSuchBucket(r.bucket!);
  const results: string[] = new Array(keys.length);
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const i = next++;
      const key = keys[i]!;
      try {
        checkKey(key);
        await env.store.deleteObject(r.account, r.bucket!, key).catch((e: unknown) => {
          if (!(e instanceof NotFoundError)) throw e;
        });
        results[i] = quiet ? '' : `<Deleted>${el('Key', key)}</Deleted>`;
      } catch (e) {
        const m = fromStoreError(e) ?? new S3Error('InternalError', 'We encountered an internal error. Please try again.');
        if (m.code === 'InternalError') env.log.error({ err: e, requestId: r.id }, 's3: multi-delete item failed');
        results[i] = `<Error>${el('Key', key)}${el('Code', m.code)}${el('Message', m.message)}</Error>`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, keys.length) }, worker));
  sendXml(r.res, r.id, 200, doc('DeleteResult', results.join('')));
}
