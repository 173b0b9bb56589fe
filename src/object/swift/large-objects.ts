/**
 * Large objects on the storage engine: Swift's Static Large Objects (a JSON
 * manifest naming segments) and Dynamic Large Objects (`X-Object-Manifest`:
 * every object under a container/prefix, in name order).
 *
 * The manifest objects are ordinary engine objects marked by system
 * metadata, so any API layer (Swift here; S3 multipart later) can write and
 * read them:
 *
 * | sysMeta key | meaning |
 * |---|---|
 * | `slo` = `true` | the body is an SLO manifest (JSON array of {@link SloSegment}) |
 * | `slo-etag`, `slo-size` | the large object's ETag (MD5 of the segments' ETags) and total size |
 * | `dlo` = `container/prefix` | a DLO manifest (body ignored; usually empty) |
 *
 * {@link openLargeObject} streams the whole object (or a byte range of it)
 * segment by segment; every segment is read with `If-Match` on the ETag the
 * manifest recorded, so a segment replaced after the manifest was written
 * breaks the stream instead of serving mixed data. Nothing is buffered
 * beyond one engine read at a time.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ApiError } from '../../core/errors.js';
import { NotFoundError, timestampToIso, type ObjectMeta, type ObjectStore, type ObjectEntry } from '../store/index.js';

export const SLO_MAX_SEGMENTS = 1000;
export const SLO_MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
export const SLO_MIN_SEGMENT_SIZE = 1;
export const DLO_MAX_SEGMENTS = 10000;
const MAX_NESTING = 10;

/** One entry of a stored SLO manifest (Swift's internal manifest format). */
export interface SloSegment {
  /** `/container/object` (not URL-encoded). */
  name: string;
  hash: string;
  bytes: number;
  content_type?: string;
  last_modified?: string;
  /** `start-end` (inclusive) within the segment. */
  range?: string;
  /** The segment is itself an SLO. */
  sub_slo?: boolean;
}

/** One contiguous piece of a segment object, inclusive offsets. */
export interface Piece {
  container: string;
  name: string;
  start: number;
  end: number;
  /** ETag the segment must still have (`If-Match`); absent for DLO segments. */
  etag?: string;
}

export interface LargeObjectPlan {
  kind: 'slo' | 'dlo';
  size: number;
  /** Quoted as Swift sends it: `"<md5>"`. */
  etag: string;
  pieces: Piece[];
}

export type LargeKind = 'slo' | 'dlo' | null;

/** Which kind of large object a manifest is, if any. */
export function largeKind(meta: Pick<ObjectMeta, 'sysMeta'>): LargeKind {
  if (meta.sysMeta['slo'] === 'true') return 'slo';
  if (meta.sysMeta['dlo'] !== undefined) return 'dlo';
  return null;
}

/** Splits `container/prefix` (a DLO manifest value, URL-decoded). */
export function splitDloManifest(value: string): { container: string; prefix: string } {
  const v = value.replace(/^\/+/, '');
  const i = v.indexOf('/');
  if (i <= 0) throw new ApiError(400, 'X-Object-Manifest must be in the format container/prefix');
  return { container: v.slice(0, i), prefix: v.slice(i + 1) };
}

/** Splits `/container/object` of a manifest path. */
export function splitSegmentPath(path: string): { container: string; name: string } | null {
  const p = path.startsWith('/') ? path.slice(1) : path;
  const i = p.indexOf('/');
  if (i <= 0 || i === p.length - 1) return null;
  return { container: p.slice(0, i), name: p.slice(i + 1) };
}

/** Parses `a-b`, `a-`, `-n` against a segment of `size` bytes (inclusive result). */
export function parseSegmentRange(spec: string, size: number): { start: number; end: number } | null {
  const m = /^(\d*)-(\d*)$/.exec(spec.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return null;
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return null;
  return { start, end };
}

const md5hex = (s: string) => createHash('md5').update(s).digest('hex');

/** Swift's SLO ETag: MD5 over each segment's ETag (`etag:range;` for ranged ones). */
export function sloEtag(segments: SloSegment[]): string {
  return md5hex(segments.map((s) => (s.range ? `${s.hash}:${s.range};` : s.hash)).join(''));
}

async function readAll(stream: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    n += b.length;
    if (n > max) {
      stream.destroy();
      throw new ApiError(400, `Manifest larger than ${max} bytes`);
    }
    parts.push(b);
  }
  return Buffer.concat(parts, n);
}

/** Reads and parses a stored SLO manifest. */
export async function readSloManifest(store: ObjectStore, account: string, container: string, name: string, etag?: string): Promise<SloSegment[]> {
  const got = await store.getObject(account, container, name, etag ? { conditions: { ifMatch: etag } } : {});
  const body = got.body ?? (await readAll(got.stream, SLO_MAX_MANIFEST_BYTES));
  const parsed = JSON.parse(body.toString('utf8')) as unknown;
  if (!Array.isArray(parsed)) throw new ApiError(500, 'Stored SLO manifest is not a list');
  return parsed as SloSegment[];
}

/** Hook that throws (401/403) when the caller may not read a container holding segments. */
export type AuthorizeRead = (container: string) => void | Promise<void>;

/**
 * Works out what a manifest object stands for: its total size, ETag and the
 * segment pieces in order. Returns null for an ordinary object.
 */
export async function planLargeObject(
  store: ObjectStore,
  account: string,
  meta: ObjectMeta,
  opts: { authorizeRead?: AuthorizeRead } = {},
): Promise<LargeObjectPlan | null> {
  const kind = largeKind(meta);
  if (kind === 'dlo') {
    const { container, prefix } = splitDloManifest(meta.sysMeta['dlo']!);
    await opts.authorizeRead?.(container);
    const entries = await listAll(store, account, container, prefix, DLO_MAX_SEGMENTS);
    const pieces: Piece[] = [];
    let size = 0;
    const etags: string[] = [];
    for (const e of entries) {
      etags.push(e.etag);
      if (e.size > 0) pieces.push({ container, name: e.name, start: 0, end: e.size - 1 });
      size += e.size;
    }
    return { kind, size, etag: `"${md5hex(etags.join(''))}"`, pieces };
  }
  if (kind === 'slo') {
    const pieces: Piece[] = [];
    await flattenSlo(store, account, meta.container, meta.name, meta.etag, pieces, 0, opts.authorizeRead);
    const size = pieces.reduce((n, p) => n + (p.end - p.start + 1), 0);
    return { kind, size, etag: `"${meta.sysMeta['slo-etag'] ?? ''}"`, pieces };
  }
  return null;
}

async function flattenSlo(
  store: ObjectStore,
  account: string,
  container: string,
  name: string,
  manifestEtag: string | undefined,
  out: Piece[],
  depth: number,
  authorizeRead?: AuthorizeRead,
): Promise<void> {
  if (depth > MAX_NESTING) throw new ApiError(409, `Max recursion depth exceeded on ${container}/${name}`);
  const segs = await readSloManifest(store, account, container, name, manifestEtag);
  for (const s of segs) {
    const where = splitSegmentPath(s.name);
    if (!where) throw new ApiError(500, `Bad segment name in manifest: ${s.name}`);
    if (s.sub_slo) {
      await authorizeRead?.(where.container);
      const sub: Piece[] = [];
      const subMeta = await store.headObject(account, where.container, where.name);
      if (subMeta.sysMeta['slo-etag'] !== s.hash) throw new ApiError(409, `Segment ${s.name} changed since the manifest was written`);
      await flattenSlo(store, account, where.container, where.name, subMeta.etag, sub, depth + 1, authorizeRead);
      out.push(...clipPieces(sub, s.range ? parseSegmentRange(s.range, s.bytes) : null));
      continue;
    }
    const r = s.range ? parseSegmentRange(s.range, s.bytes) : { start: 0, end: s.bytes - 1 };
    if (!r || s.bytes === 0) continue;
    if (!out.some((p) => p.container === where.container)) await authorizeRead?.(where.container);
    out.push({ container: where.container, name: where.name, start: r.start, end: r.end, etag: s.hash });
  }
}

/** The part of `pieces` (as one byte sequence) within `range`. */
function clipPieces(pieces: Piece[], range: { start: number; end: number } | null): Piece[] {
  if (!range) return pieces;
  const out: Piece[] = [];
  let off = 0;
  for (const p of pieces) {
    const len = p.end - p.start + 1;
    const a = Math.max(range.start, off);
    const b = Math.min(range.end, off + len - 1);
    if (a <= b) out.push({ ...p, start: p.start + (a - off), end: p.start + (b - off) });
    off += len;
  }
  return out;
}

async function listAll(store: ObjectStore, account: string, container: string, prefix: string, max: number): Promise<ObjectEntry[]> {
  const out: ObjectEntry[] = [];
  let marker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await store.listContainer(account, container, { prefix, marker, limit: 10000 });
    } catch (e) {
      if (e instanceof NotFoundError) return out; // Swift serves an empty DLO when the segment container is gone
      throw e;
    }
    const objs = page.entries.filter((e): e is ObjectEntry => 'etag' in e);
    out.push(...objs);
    if (objs.length < 10000 || out.length >= max) return out.slice(0, max);
    marker = objs[objs.length - 1]!.name;
  }
}

/**
 * Streams a large object (or the inclusive `range` of it) by reading its
 * pieces one after the other. An error (segment gone or changed) destroys
 * the stream: the client sees a short body, as with Swift.
 */
export function streamLargeObject(store: ObjectStore, account: string, plan: LargeObjectPlan, range?: { start: number; end: number }): Readable {
  const pieces = range ? clipPieces(plan.pieces, range) : plan.pieces;
  async function* gen() {
    for (const p of pieces) {
      const got = await store.getObject(account, p.container, p.name, {
        range: { start: p.start, end: p.end },
        ...(p.etag ? { conditions: { ifMatch: p.etag } } : {}),
      });
      if (got.body) {
        yield got.body;
        continue;
      }
      for await (const c of got.stream) yield c as Buffer;
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

/**
 * Everything needed to serve a manifest object's contents: size, ETag and a
 * stream factory. Returns null for ordinary objects. Reused by the S3 API.
 */
export async function openLargeObject(
  store: ObjectStore,
  account: string,
  meta: ObjectMeta,
  opts: { authorizeRead?: AuthorizeRead } = {},
): Promise<{ plan: LargeObjectPlan; stream: (range?: { start: number; end: number }) => Readable } | null> {
  const plan = await planLargeObject(store, account, meta, opts);
  if (!plan) return null;
  return { plan, stream: (range) => streamLargeObject(store, account, plan, range) };
}

/** A segment as `?multipart-manifest=put` names it. */
interface PutSegment {
  path: string;
  etag?: string | null;
  size_bytes?: number | null;
  range?: string | null;
}

/**
 * Validates a `?multipart-manifest=put` body against the segments as they
 * are now and returns the manifest to store, with its ETag and size.
 * Throws 400 listing every problem (Swift's `Errors:` body) — nothing is
 * written by this function.
 */
export async function buildSloManifest(
  store: ObjectStore,
  account: string,
  body: Buffer,
  opts: { authorizeRead?: AuthorizeRead } = {},
): Promise<{ segments: SloSegment[]; etag: string; size: number; json: string }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError(400, 'Manifest must be valid JSON.\n');
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new ApiError(400, 'Manifest must be a non-empty list of segments.\n');
  if (parsed.length > SLO_MAX_SEGMENTS) throw new ApiError(400, `Number of segments must be <= ${SLO_MAX_SEGMENTS}\n`);
  const errors: string[] = [];
  const items: PutSegment[] = [];
  parsed.forEach((x: unknown, i) => {
    if (!x || typeof x !== 'object' || Array.isArray(x)) return errors.push(`Index ${i}: not a JSON object`);
    const o = x as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => !['path', 'etag', 'size_bytes', 'range'].includes(k));
    if (extra.length) return errors.push(`Index ${i}: extraneous keys "${extra.join('", "')}"`);
    if (typeof o['path'] !== 'string' || !splitSegmentPath(o['path'])) return errors.push(`Index ${i}: "path" must be a string of the form /container/object`);
    if (o['etag'] !== undefined && o['etag'] !== null && typeof o['etag'] !== 'string') return errors.push(`Index ${i}: "etag" must be a string or null`);
    if (o['size_bytes'] !== undefined && o['size_bytes'] !== null && !(Number.isSafeInteger(o['size_bytes']) && (o['size_bytes'] as number) >= 0))
      return errors.push(`Index ${i}: "size_bytes" must be an integer or null`);
    if (o['range'] !== undefined && o['range'] !== null && typeof o['range'] !== 'string') return errors.push(`Index ${i}: "range" must be a string`);
    items.push(o as unknown as PutSegment);
  });
  if (errors.length) throw new ApiError(400, `Errors:\n${errors.join('\n')}\n`);

  const segments: SloSegment[] = [];
  let size = 0;
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    const where = splitSegmentPath(it.path)!;
    let meta: ObjectMeta;
    try {
      await opts.authorizeRead?.(where.container);
      meta = await store.headObject(account, where.container, where.name);
    } catch (e) {
      const status = e instanceof ApiError ? e.status : 500;
      errors.push(`${it.path}, ${status === 404 ? '404 Not Found' : status === 401 || status === 403 ? '403 Forbidden' : `${status} Error`}`);
      continue;
    }
    const sub = largeKind(meta) === 'slo';
    if (largeKind(meta) === 'dlo') {
      errors.push(`${it.path}, Segment is a DLO manifest`);
      continue;
    }
    const segSize = sub ? Number(meta.sysMeta['slo-size']) : meta.size;
    const segEtag = sub ? meta.sysMeta['slo-etag']! : meta.etag;
    if (it.etag != null && it.etag.replace(/"/g, '').toLowerCase() !== segEtag) {
      errors.push(`${it.path}, Etag Mismatch`);
      continue;
    }
    if (it.size_bytes != null && it.size_bytes !== segSize) {
      errors.push(`${it.path}, Size Mismatch`);
      continue;
    }
    let used = segSize;
    let range: string | undefined;
    if (it.range != null) {
      const r = parseSegmentRange(it.range, segSize);
      if (!r) {
        errors.push(`${it.path}, Unsatisfiable Range`);
        continue;
      }
      used = r.end - r.start + 1;
      if (!(r.start === 0 && r.end === segSize - 1)) range = `${r.start}-${r.end}`;
    }
    if (used < SLO_MIN_SEGMENT_SIZE && i < items.length - 1) {
      errors.push(`${it.path}, Too small; each segment must be at least ${SLO_MIN_SEGMENT_SIZE} byte.`);
      continue;
    }
    const seg: SloSegment = {
      name: `/${where.container}/${where.name}`,
      hash: segEtag,
      bytes: segSize,
      content_type: meta.contentType,
      last_modified: timestampToIso(meta.timestamp),
    };
    if (range) seg.range = range;
    if (sub) seg.sub_slo = true;
    segments.push(seg);
    size += used;
  }
  if (errors.length) throw new ApiError(400, `Errors:\n${errors.join('\n')}\n`);
  return { segments, etag: sloEtag(segments), size, json: JSON.stringify(segments) };
}

/** The manifest in the `?multipart-manifest=put` form (`GET ...?multipart-manifest=get&format=raw`). */
export function rawManifest(segments: SloSegment[]): Array<{ path: string; etag: string; size_bytes: number; range?: string }> {
  return segments.map((s) => ({ path: s.name, etag: s.hash, size_bytes: s.bytes, ...(s.range ? { range: s.range } : {}) }));
}
