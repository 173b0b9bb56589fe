import { ConflictError, NotFoundError, timestampToMs, type ObjectEntry, type SubdirEntry } from '../store/index.js';
import { readSmall, requestBody } from './body.js';
import {
  authorize,
  bucketExists,
  checkNewBucketName,
  isoDate,
  noSuchBucket,
  SEGMENTS_SUFFIX,
  type S3Env,
} from './common.js';
import { S3Error, fromStoreError } from './errors.js';
import type { S3Request } from './request.js';
import { sendEmpty, sendXml } from './respond.js';
import { doc, el, esc, parseRequestXml, textOf } from './xml.js';

const owner = (r: S3Request) => `<Owner>${el('ID', r.auth.ctx.projectId)}${el('DisplayName', r.auth.ctx.projectName ?? r.auth.ctx.projectId)}</Owner>`;

/** GET / — the project's buckets (hidden `+segments` containers left out). */
export async function listBuckets(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:read');
  const rows: string[] = [];
  let marker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await env.store.listAccount(r.account, { marker, limit: 10000 });
    } catch (e) {
      if (e instanceof NotFoundError) break; // no container was ever made
      throw e;
    }
    for (const e of page.entries) {
      if ('subdir' in e) continue;
      marker = e.name;
      if (e.name.endsWith(SEGMENTS_SUFFIX)) continue;
      rows.push(`<Bucket>${el('Name', e.name)}${el('CreationDate', isoDate(timestampToMs(e.timestamp)))}</Bucket>`);
    }
    if (page.entries.length < 10000) break;
  }
  sendXml(r.res, r.id, 200, doc('ListAllMyBucketsResult', `${owner(r)}<Buckets>${rows.join('')}</Buckets>`));
}

/** PUT /bucket — CreateBucket, with an optional CreateBucketConfiguration naming this region. */
export async function createBucket(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:write');
  const bucket = r.bucket!;
  checkNewBucketName(bucket);
  const body = await readSmall(requestBody(r.req, r.auth.payload), 64 * 1024);
  if (body.length > 0) {
    const cfg = parseRequestXml(body, 'CreateBucketConfiguration');
    const loc = textOf(cfg.LocationConstraint as never)?.trim();
    if (loc && loc !== env.region) {
      throw new S3Error('InvalidLocationConstraint', `The specified location-constraint is not valid: this cloud's region is ${env.region}`, { LocationConstraint: loc });
    }
  }
  if (await bucketExists(env, r.account, bucket)) {
    throw new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', { BucketName: bucket });
  }
  await env.store.putContainer(r.account, bucket);
  sendEmpty(r.res, r.id, 200, { location: `/${bucket}` });
}

/** HEAD /bucket */
export async function headBucket(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:read');
  if (!(await bucketExists(env, r.account, r.bucket!))) throw noSuchBucket(r.bucket!);
  sendEmpty(r.res, r.id, 200, { 'x-amz-bucket-region': env.region });
}

/** GET /bucket?location */
export async function getBucketLocation(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:read');
  if (!(await bucketExists(env, r.account, r.bucket!))) throw noSuchBucket(r.bucket!);
  sendXml(r.res, r.id, 200, `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${esc(env.region)}</LocationConstraint>`);
}

/**
 * DELETE /bucket — only when empty: objects → BucketNotEmpty, and so are
 * multipart uploads in progress (abort them first). The hidden segments
 * container goes with the bucket.
 */
export async function deleteBucket(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:write');
  const bucket = r.bucket!;
  const notEmpty = () => new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty', { BucketName: bucket });
  const segs = bucket + SEGMENTS_SUFFIX;
  try {
    const info = await env.store.headContainer(r.account, segs);
    if (info.objectCount > 0) throw notEmpty();
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
  }
  try {
    await env.store.deleteContainer(r.account, bucket);
  } catch (e) {
    if (e instanceof NotFoundError) throw noSuchBucket(bucket);
    if (e instanceof ConflictError) throw notEmpty();
    throw fromStoreError(e) ?? e;
  }
  await env.store.deleteContainer(r.account, segs).catch(() => undefined);
  sendEmpty(r.res, r.id, 204);
}

function maxKeysOf(r: S3Request, name = 'max-keys'): number {
  const v = r.query.get(name);
  if (v === undefined || v === '') return 1000;
  if (!/^\d+$/.test(v)) throw new S3Error('InvalidArgument', `Provided ${name} not an integer or within integer range`, { ArgumentName: name, ArgumentValue: v });
  return Math.min(Number(v), 1000);
}

/** encoding-type=url: keys and prefixes are URL-encoded in the answer (clients decode them). */
export function encoderOf(r: S3Request): (s: string) => string {
  const t = r.query.get('encoding-type');
  if (t === undefined) return (s) => s;
  if (t !== 'url') throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type', ArgumentValue: t });
  return (s) => encodeURIComponent(s).replace(/%2F/g, '/');
}

/**
 * GET /bucket — ListObjects (v1: `marker`, NextMarker with a delimiter) and
 * ListObjectsV2 (`list-type=2`: `continuation-token`, `start-after`,
 * `fetch-owner`), with `prefix`, `delimiter` (CommonPrefixes), `max-keys`
 * (≤ 1000; keys and prefixes together) and `encoding-type=url`.
 */
export async function listObjects(env: S3Env, r: S3Request): Promise<void> {
  authorize(env, r, 's3:read');
  const v2 = r.query.get('list-type') === '2';
  if (r.query.has('list-type') && !v2) throw new S3Error('InvalidArgument', 'Invalid list-type', { ArgumentName: 'list-type' });
  const bucket = r.bucket!;
  const prefix = r.query.get('prefix') ?? '';
  const delimiter = r.query.get('delimiter') || undefined;
  const maxKeys = maxKeysOf(r);
  const enc = encoderOf(r);
  let marker: string | undefined;
  let token: string | undefined;
  if (v2) {
    token = r.query.get('continuation-token');
    if (token !== undefined) {
      const dec = Buffer.from(token, 'base64url').toString('utf8');
      if (!token || !dec.startsWith('1:')) throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
      marker = dec.slice(2);
    } else marker = r.query.get('start-after') || undefined;
  } else marker = r.query.get('marker') || undefined;
  let entries: Array<ObjectEntry | SubdirEntry> = [];
  try {
    // One more than asked tells whether the listing is truncated.
    entries = (await env.store.listContainer(r.account, bucket, { prefix: prefix || undefined, delimiter, marker, limit: maxKeys + 1 })).entries;
  } catch (e) {
    if (e instanceof NotFoundError) throw noSuchBucket(bucket);
    throw fromStoreError(e) ?? e;
  }
  const truncated = entries.length > maxKeys;
  const page = entries.slice(0, maxKeys);
  const fetchOwner = !v2 || r.query.get('fetch-owner') === 'true';
  const own = fetchOwner ? owner(r) : '';
  const contents: string[] = [];
  const prefixes: string[] = [];
  for (const e of page) {
    if ('subdir' in e) prefixes.push(`<CommonPrefixes>${el('Prefix', enc(e.subdir))}</CommonPrefixes>`);
    else {
      contents.push(
        `<Contents>${el('Key', enc(e.name))}${el('LastModified', isoDate(timestampToMs(e.timestamp)))}${el('ETag', `"${e.etag}"`)}${el('Size', e.size)}${own}${el('StorageClass', 'STANDARD')}</Contents>`,
      );
    }
  }
  const last = page.length ? ('subdir' in page[page.length - 1]! ? (page[page.length - 1] as SubdirEntry).subdir : (page[page.length - 1] as ObjectEntry).name) : undefined;
  let head = el('Name', bucket) + el('Prefix', enc(prefix));
  if (v2) {
    if (token !== undefined) head += el('ContinuationToken', token);
    if (r.query.has('start-after')) head += el('StartAfter', enc(r.query.get('start-after')!));
    head += el('KeyCount', page.length);
    if (truncated && last !== undefined) head += el('NextContinuationToken', Buffer.from(`1:${last}`, 'utf8').toString('base64url'));
  } else {
    head += el('Marker', enc(marker ?? ''));
    if (truncated && delimiter && last !== undefined) head += el('NextMarker', enc(last));
  }
  head += el('MaxKeys', maxKeys);
  if (delimiter) head += el('Delimiter', enc(delimiter));
  if (r.query.has('encoding-type')) head += el('EncodingType', 'url');
  head += el('IsTruncated', truncated);
  sendXml(r.res, r.id, 200, doc('ListBucketResult', head + contents.join('') + prefixes.join('')));
}
