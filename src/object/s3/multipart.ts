import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { NotFoundError, resolveRange, timestampToMs, type ObjectMeta } from '../store/index.js';
import { readSmall, requestBody } from './body.js';
import { encoderOf } from './buckets.js';
import {
  authorize,
  bucketExists,
  checkKey,
  contentMd5,
  headerText,
  isoDate,
  noSuchBucket,
  noSuchUpload,
  SEGMENTS_SUFFIX,
  storedHeadersFrom,
  SYS_S3_ETAG,
  userMetaFrom,
  type S3Env,
} from './common.js';
import { S3Error, fromStoreError } from './errors.js';
import { copySourceMeta, parseCopySource, requiredLength } from './objects.js';
import type { S3Request } from './request.js';
import { longRunning, sendEmpty, sendXml } from './respond.js';
import { childrenOf, doc, el, parseRequestXml, textOf } from './xml.js';

/**
 * Multipart uploads live in the bucket's hidden container `<bucket>+segments`
 * (never listed by ListBuckets; `+` is not allowed in S3 bucket names):
 *
 *   u/<key>/<uploadId>        the upload: content type, user metadata and
 *                             stored headers of the final object; its
 *                             Last-Modified is the initiation time
 *   p/<uploadId>/<00001..>    part N, an ordinary engine object (ETag = MD5)
 *
 * Complete streams the parts in order into one engine putObject of the final
 * object (never buffered whole; each part re-checked against its ETag while
 * read), records the S3 ETag (`<md5 of the parts' md5s>-<count>`) in the
 * object's sysMeta, then deletes the upload and its parts. Upload ids start
 * with the initiation time in hex, so one key's uploads list in initiation order.
 */

export const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10000;
/** `u/` + key + `/` + 32-character upload id must fit the engine's 1024-byte names. */
const MAX_MULTIPART_KEY = 1024 - 35;

const segmentsOf = (bucket: string) => bucket + SEGMENTS_SUFFIX;
const uploadName = (key: string, id: string) => `u/${key}/${id}`;
const partPrefix = (id: string) => `p/${id}/`;
const partName = (id: string, n: number) => `p/${id}/${String(n).padStart(5, '0')}`;
const UPLOAD_ID = /^[0-9a-f]{32}$/;

function newUploadId(): string {
  return Date.now().toString(16).padStart(12, '0') + randomBytes(10).toString('hex');
}

const hdr = (r: S3Request, name: string): string | undefined => {
  const v = r.req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
};

function uploadIdOf(r: S3Request): string {
  const id = r.query.get('uploadId') ?? '';
  if (!UPLOAD_ID.test(id)) throw noSuchUpload(id);
  return id;
}

/** The upload's record; NoSuchUpload if it was never made, aborted or completed (NoSuchBucket if the bucket is gone). */
async function headUpload(env: S3Env, r: S3Request, id: string): Promise<ObjectMeta> {
  try {
    return await env.store.headObject(r.account, segmentsOf(r.bucket!), uploadName(r.key!, id));
  } catch (e) {
    if (e instanceof NotFoundError) {
      if (!(await bucketExists(env, r.account, r.bucket!))) throw noSuchBucket(r.bucket!);
      throw noSuchUpload(id);
    }
    throw fromStoreError(e) ?? e;
  }
}

const ownerXml = (r: S3Request, tag: string, id?: string) => `<${tag}>${el('ID', id ?? r.auth.ctx.projectId)}${el('DisplayName', id ?? r.auth.ctx.projectName ?? r.auth.ctx.projectId)}</${tag}>`;

/** POST /bucket/key?uploads — CreateMultipartUpload. */
export async function initiateUpload(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:write');
  const key = r.key!;
  checkKey(key);
  if (Buffer.byteLength(key) > MAX_MULTIPART_KEY) throw new S3Error('KeyTooLongError', `Keys of multipart uploads are limited to ${MAX_MULTIPART_KEY} bytes here`);
  if (!(await bucketExists(env, r.account, r.bucket!))) throw noSuchBucket(r.bucket!);
  const segs = segmentsOf(r.bucket!);
  if (!(await bucketExists(env, r.account, segs))) await env.store.putContainer(r.account, segs);
  const id = newUploadId();
  try {
    await env.store.putObject(r.account, segs, uploadName(key, id), '', {
      contentType: headerText(hdr(r, 'content-type') || 'binary/octet-stream'),
      userMeta: userMetaFrom(r.req.headers),
      sysMeta: { ...storedHeadersFrom(r.req.headers), 's3-initiator': r.auth.ctx.userId, 's3-initiator-name': r.auth.ctx.userName },
    });
  } catch (e) {
    throw fromStoreError(e) ?? e;
  }
  sendXml(r.res, r.id, 200, doc('InitiateMultipartUploadResult', el('Bucket', r.bucket!) + el('Key', key) + el('UploadId', id)));
}

function partNumberOf(r: S3Request): number {
  const v = r.query.get('partNumber') ?? '';
  const n = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= MAX_PARTS)) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber', ArgumentValue: v });
  }
  return n;
}

/**
 * A part written while the upload was being aborted or completed would be
 * orphaned: after writing it, the upload must still exist, else the part is
 * removed again and the answer is NoSuchUpload.
 */
async function confirmUpload(env: S3Env, r: S3Request, id: string, part: string): Promise<void> {
  try {
    await env.store.headObject(r.account, segmentsOf(r.bucket!), uploadName(r.key!, id));
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
    await env.store.deleteObject(r.account, segmentsOf(r.bucket!), part).catch(() => undefined);
    throw noSuchUpload(id);
  }
}

/** PUT /bucket/key?partNumber=N&uploadId=ID — UploadPart, or UploadPartCopy with x-amz-copy-source(-range). */
export async function uploadPart(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:write');
  checkKey(r.key!);
  const n = partNumberOf(r);
  const id = uploadIdOf(r);
  const segs = segmentsOf(r.bucket!);
  const name = partName(id, n);
  const copySource = hdr(r, 'x-amz-copy-source');
  if (copySource !== undefined) {
    authorize(env, r, 's3:read');
    const src = parseCopySource(copySource);
    await headUpload(env, r, id);
    const meta = await copySourceMeta(env, r, src);
    const rangeHdr = hdr(r, 'x-amz-copy-source-range');
    let range: { start: number; end: number } | undefined;
    if (rangeHdr !== undefined) {
      const m = /^bytes=(\d+)-(\d+)$/.exec(rangeHdr.trim());
      if (!m || Number(m[2]) < Number(m[1])) {
        throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy', { ArgumentName: 'x-amz-copy-source-range', ArgumentValue: rangeHdr });
      }
      range = { start: Number(m[1]), end: Number(m[2]) };
      if (range.end >= meta.size) throw new S3Error('InvalidRange', 'The requested range is not satisfiable', { ActualObjectSize: String(meta.size) });
      resolveRange(range, meta.size);
    }
    const length = range ? range.end - range.start + 1 : meta.size;
    if (length > env.store.maxObjectSize) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
    await longRunning(
      r.res,
      r.id,
      r.resource,
      async () => {
        const got = await env.store.getObject(r.account, src.bucket, src.key, { range, conditions: { ifMatch: meta.etag } });
        let put;
        try {
          put = await env.store.putObject(r.account, segs, name, got.body ?? got.stream, { expectedSize: got.length });
        } finally {
          if (!got.body) got.stream.destroy();
        }
        await confirmUpload(env, r, id, name);
        return { xml: doc('CopyPartResult', el('LastModified', isoDate(put.lastModified)) + el('ETag', `"${put.etag}"`)) };
      },
      (e) => {
        const m = e instanceof NotFoundError ? new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: src.key }) : fromStoreError(e);
        if (m) return m;
        env.log.error({ err: e, requestId: r.id }, 's3: upload part copy failed');
        return new S3Error('InternalError', 'We encountered an internal error. Please try again.');
      },
    );
    return;
  }
  const len = requiredLength(env, r);
  const md5 = contentMd5(r.req.headers);
  await headUpload(env, r, id);
  let put;
  try {
    put = await env.store.putObject(r.account, segs, name, requestBody(r.req, r.auth.payload), { expectedSize: len, ...(md5 ? { expectedEtag: md5 } : {}) });
  } catch (e) {
    if (e instanceof NotFoundError) throw noSuchUpload(id);
    throw fromStoreError(e) ?? e;
  }
  await confirmUpload(env, r, id, name);
  sendEmpty(r.res, r.id, 200, { etag: `"${put.etag}"` });
}

interface StoredPart {
  n: number;
  etag: string;
  size: number;
  lastModified: number;
}

async function storedParts(env: S3Env, r: S3Request, id: string, opts: { after?: number; limit?: number } = {}): Promise<StoredPart[]> {
  const prefix = partPrefix(id);
  const out: StoredPart[] = [];
  let marker = opts.after ? partName(id, opts.after) : undefined;
  const want = opts.limit ?? MAX_PARTS;
  while (out.length < want) {
    const limit = Math.min(10000, want - out.length);
    const page = await env.store.listContainer(r.account, segmentsOf(r.bucket!), { prefix, marker, limit });
    for (const e of page.entries) {
      if ('subdir' in e) continue;
      marker = e.name;
      const n = Number(e.name.slice(prefix.length));
      if (Number.isInteger(n)) out.push({ n, etag: e.etag, size: e.size, lastModified: timestampToMs(e.timestamp) });
    }
    if (page.entries.length < limit) break;
  }
  return out;
}

/** GET /bucket/key?uploadId=ID — ListParts (`max-parts` ≤ 1000, `part-number-marker`). */
export async function listParts(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:read');
  checkKey(r.key!);
  const id = uploadIdOf(r);
  const maxV = r.query.get('max-parts');
  const pnmV = r.query.get('part-number-marker');
  if (maxV !== undefined && !/^\d+$/.test(maxV)) throw new S3Error('InvalidArgument', 'Provided max-parts not an integer or within integer range', { ArgumentName: 'max-parts', ArgumentValue: maxV });
  if (pnmV !== undefined && pnmV !== '' && !/^\d+$/.test(pnmV)) throw new S3Error('InvalidArgument', 'Provided part-number-marker not an integer or within integer range', { ArgumentName: 'part-number-marker', ArgumentValue: pnmV });
  const max = Math.min(maxV === undefined ? 1000 : Number(maxV), 1000);
  const after = pnmV ? Math.min(Number(pnmV), MAX_PARTS) : 0;
  const upload = await headUpload(env, r, id);
  const parts = max === 0 ? [] : await storedParts(env, r, id, { after, limit: max + 1 });
  const truncated = parts.length > max;
  const page = parts.slice(0, max);
  const initiator = upload.sysMeta['s3-initiator'];
  let xml = el('Bucket', r.bucket!) + el('Key', r.key!) + el('UploadId', id);
  xml += initiator ? `<Initiator>${el('ID', initiator)}${el('DisplayName', upload.sysMeta['s3-initiator-name'] ?? initiator)}</Initiator>` : ownerXml(r, 'Initiator');
  xml += ownerXml(r, 'Owner') + el('StorageClass', 'STANDARD') + el('PartNumberMarker', after);
  if (page.length) xml += el('NextPartNumberMarker', page[page.length - 1]!.n);
  xml += el('MaxParts', max) + el('IsTruncated', truncated);
  for (const p of page) xml += `<Part>${el('PartNumber', p.n)}${el('LastModified', isoDate(p.lastModified))}${el('ETag', `"${p.etag}"`)}${el('Size', p.size)}</Part>`;
  sendXml(r.res, r.id, 200, doc('ListPartsResult', xml));
}

const malformed = () => new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');

/** Removes an upload's record, then its parts (best effort: a leftover part is unreachable and removed by a later abort of the same id). */
async function removeUpload(env: S3Env, r: S3Request, id: string): Promise<void> {
  const segs = segmentsOf(r.bucket!);
  await env.store.deleteObject(r.account, segs, uploadName(r.key!, id)).catch((e: unknown) => {
    if (!(e instanceof NotFoundError)) throw e;
  });
  for (;;) {
    const parts = await storedParts(env, r, id, { limit: 1000 });
    if (parts.length === 0) break;
    let next = 0;
    const worker = async () => {
      while (next < parts.length) {
        const p = parts[next++]!;
        await env.store.deleteObject(r.account, segs, partName(id, p.n)).catch((e: unknown) => {
          if (!(e instanceof NotFoundError)) throw e;
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }
}

/**
 * POST /bucket/key?uploadId=ID — CompleteMultipartUpload. The part list is
 * checked before anything is written: ascending part numbers
 * (InvalidPartOrder), every part uploaded with that ETag (InvalidPart),
 * every part but the last at least 5 MiB (EntityTooSmall).
 */
export async function completeUpload(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:write');
  const key = r.key!;
  checkKey(key);
  const id = uploadIdOf(r);
  const body = await readSmall(requestBody(r.req, r.auth.payload), 4 * 1024 * 1024);
  const xml = parseRequestXml(body, 'CompleteMultipartUpload');
  const wanted = childrenOf(xml, 'Part').map((p) => {
    const nText = textOf(p.PartNumber as never)?.trim();
    const etag = textOf(p.ETag as never)?.trim();
    if (!nText || !/^\d{1,5}$/.test(nText) || etag === undefined) throw malformed();
    return { n: Number(nText), etag: etag.replace(/^"(.*)"$/, '$1').toLowerCase() };
  });
  if (wanted.length === 0 || wanted.length > MAX_PARTS) throw malformed();
  const upload = await headUpload(env, r, id);
  for (let i = 1; i < wanted.length; i++) {
    if (wanted[i]!.n <= wanted[i - 1]!.n) throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.', { UploadId: id });
  }
  const stored = new Map((await storedParts(env, r, id)).map((p) => [p.n, p]));
  const parts: StoredPart[] = [];
  for (const w of wanted) {
    const p = stored.get(w.n);
    if (!p || p.etag !== w.etag) {
      throw new S3Error('InvalidPart', "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.", {
        UploadId: id, PartNumber: String(w.n), ETag: w.etag,
      });
    }
    parts.push(p);
  }
  let total = 0;
  parts.forEach((p, i) => {
    if (i < parts.length - 1 && p.size < MIN_PART_SIZE) {
      throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
        ProposedSize: String(p.size), MinSizeAllowed: String(MIN_PART_SIZE), PartNumber: String(p.n), ETag: p.etag,
      });
    }
    total += p.size;
  });
  if (total > env.store.maxObjectSize) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', { ProposedSize: String(total), MaxSizeAllowed: String(env.store.maxObjectSize) });
  const md5s = createHash('md5');
  for (const p of parts) md5s.update(Buffer.from(p.etag, 'hex'));
  const s3etag = `${md5s.digest('hex')}-${parts.length}`;
  const segs = segmentsOf(r.bucket!);
  const account = r.account;
  const store = env.store;
  async function* assembled(): AsyncGenerator<Buffer> {
    for (const p of parts) {
      // The part must still be the one listed (a concurrent re-upload changes its ETag).
      const got = await store.getObject(account, segs, partName(id, p.n), { conditions: { ifMatch: p.etag } });
      if (got.body) {
        yield got.body;
        continue;
      }
      try {
        for await (const c of got.stream) yield c as Buffer;
      } finally {
        got.stream.destroy();
      }
    }
  }
  const stored_headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(upload.sysMeta)) if (k.startsWith('s3-h-')) stored_headers[k] = v;
  const host = r.req.headers.host ?? 'localhost';
  await longRunning(
    r.res,
    r.id,
    r.resource,
    async () => {
      await store.putObject(account, r.bucket!, key, Readable.from(assembled(), { objectMode: false }), {
        expectedSize: total,
        contentType: upload.contentType,
        userMeta: upload.userMeta,
        sysMeta: { ...stored_headers, [SYS_S3_ETAG]: s3etag },
      });
      await removeUpload(env, r, id).catch((e: unknown) => env.log.warn({ err: e, uploadId: id }, 's3: removing completed upload parts failed'));
      const location = `http://${host}/${encodeURIComponent(r.bucket!)}/${key.split('/').map(encodeURIComponent).join('/')}`;
      return { xml: doc('CompleteMultipartUploadResult', el('Location', location) + el('Bucket', r.bucket!) + el('Key', key) + el('ETag', `"${s3etag}"`)) };
    },
    (e) => {
      if (e instanceof NotFoundError) return new S3Error('InvalidPart', 'A part of this upload disappeared while it was being completed.', { UploadId: id });
      const m = fromStoreError(e);
      if (m?.code === 'PreconditionFailed') return new S3Error('InvalidPart', 'A part of this upload changed while it was being completed.', { UploadId: id });
      if (m) return m;
      env.log.error({ err: e, requestId: r.id }, 's3: complete multipart upload failed');
      return new S3Error('InternalError', 'We encountered an internal error. Please try again.');
    },
  );
}

/** DELETE /bucket/key?uploadId=ID — AbortMultipartUpload: the upload and its parts are removed. */
export async function abortUpload(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:write');
  checkKey(r.key!);
  const id = uploadIdOf(r);
  await headUpload(env, r, id);
  await removeUpload(env, r, id);
  sendEmpty(r.res, r.id, 204);
}

/** GET /bucket?uploads — ListMultipartUploads (`prefix`, `delimiter`, `key-marker`, `upload-id-marker`, `max-uploads`). */
export async function listUploads(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:read');
  const bucket = r.bucket!;
  if (!(await bucketExists(env, r.account, bucket))) throw noSuchBucket(bucket);
  const prefix = r.query.get('prefix') ?? '';
  const delimiter = r.query.get('delimiter') || undefined;
  const keyMarker = r.query.get('key-marker') || undefined;
  const idMarker = keyMarker ? r.query.get('upload-id-marker') || undefined : undefined;
  const maxV = r.query.get('max-uploads');
  if (maxV !== undefined && !/^\d+$/.test(maxV)) throw new S3Error('InvalidArgument', 'Provided max-uploads not an integer or within integer range', { ArgumentName: 'max-uploads', ArgumentValue: maxV });
  const max = Math.min(maxV === undefined ? 1000 : Number(maxV), 1000);
  const enc = encoderOf(r);
  // Uploads in flight are few: gather those under the prefix and order them
  // by (key, upload id) here, which the engine's name order does not give.
  const all: Array<{ key: string; id: string; initiated: number }> = [];
  let marker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await env.store.listContainer(r.account, segmentsOf(bucket), { prefix: `u/${prefix}`, marker, limit: 10000 });
    } catch (e) {
      if (e instanceof NotFoundError) break;
      throw fromStoreError(e) ?? e;
    }
    for (const e of page.entries) {
      if ('subdir' in e) continue;
      marker = e.name;
      const slash = e.name.lastIndexOf('/');
      const id = e.name.slice(slash + 1);
      if (!UPLOAD_ID.test(id)) continue;
      all.push({ key: e.name.slice(2, slash), id, initiated: timestampToMs(e.timestamp) });
    }
    if (page.entries.length < 10000) break;
  }
  const cmp = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  all.sort((a, b) => cmp(a.key, b.key) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const items: string[] = [];
  let count = 0;
  let truncated = false;
  let nextKey: string | undefined;
  let nextId: string | undefined;
  let lastPrefix: string | undefined;
  for (const u of all) {
    if (keyMarker !== undefined) {
      const c = cmp(u.key, keyMarker);
      if (c < 0 || (c === 0 && (idMarker === undefined || u.id <= idMarker))) continue;
    }
    let cp: string | undefined;
    if (delimiter) {
      const i = u.key.indexOf(delimiter, prefix.length);
      if (i >= 0) cp = u.key.slice(0, i + delimiter.length);
    }
    if (cp !== undefined && (cp === lastPrefix || cp === keyMarker)) continue;
    if (count >= max) {
      truncated = true;
      break;
    }
    count++;
    if (cp !== undefined) {
      lastPrefix = cp;
      items.push(`<CommonPrefixes>${el('Prefix', enc(cp))}</CommonPrefixes>`);
      nextKey = cp;
      nextId = undefined;
    } else {
      items.push(
        `<Upload>${el('Key', enc(u.key))}${el('UploadId', u.id)}${ownerXml(r, 'Initiator')}${ownerXml(r, 'Owner')}${el('StorageClass', 'STANDARD')}${el('Initiated', isoDate(u.initiated))}</Upload>`,
      );
      nextKey = u.key;
      nextId = u.id;
    }
  }
  let xml = el('Bucket', bucket) + el('KeyMarker', enc(keyMarker ?? '')) + el('UploadIdMarker', idMarker ?? '');
  if (truncated) xml += el('NextKeyMarker', enc(nextKey ?? '')) + el('NextUploadIdMarker', nextId ?? '');
  if (delimiter) xml += el('Delimiter', enc(delimiter));
  xml += el('Prefix', enc(prefix)) + el('MaxUploads', max) + el('IsTruncated', truncated);
  if (r.query.has('encoding-type')) xml += el('EncodingType', 'url');
  sendXml(r.res, r.id, 200, doc('ListMultipartUploadsResult', xml + items.join('')));
}
