/**
 * HTTP details of the Swift API: error bodies, metadata headers (UTF-8
 * values travel as raw bytes in latin1 header strings), listing formats,
 * Range parsing and content-type guessing.
 */
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendBody, timestampToIso, type ContainerEntry, type ObjectEntry, type SubdirEntry } from '../store/index.js';

/** Swift's HTML bodies for the errors its proxy answers with a canned page. */
const CANNED: Record<number, [string, string]> = {
  401: ['Unauthorized', 'This server could not verify that you are authorized to access the document you requested.'],
  403: ['Forbidden', 'Access was denied to this resource.'],
  404: ['Not Found', 'The resource could not be found.'],
  409: ['Conflict', 'There was a conflict when trying to complete your request.'],
  411: ['Length Required', 'Length Required'],
  416: ['Requested Range Not Satisfiable', 'The Range requested is not available.'],
  422: ['Unprocessable Entity', 'Unable to process the contained instructions'],
  503: ['Service Unavailable', 'The server is currently unavailable. Please try again at a later time.'],
};

/** Body and content type of a Swift error response. */
export function errorBody(status: number, message: string): { body: string; type: string } {
  const c = CANNED[status];
  if (c) {
    return { body: `<html><h1>${c[0]}</h1><p>${c[1]}</p></html>`, type: 'text/html; charset=UTF-8' };
  }
  return { body: message, type: 'text/plain; charset=UTF-8' };
}

/** Header value (latin1 as Node gives it) → the UTF-8 string the client meant. */
export function fromHeader(v: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(v) ? Buffer.from(v, 'latin1').toString('utf8') : v;
}

/** UTF-8 string → latin1 header value carrying its bytes. */
export function toHeader(v: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(v) ? Buffer.from(v, 'utf8').toString('latin1') : v;
}

export function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

/**
 * User metadata from `X-<kind>-Meta-*` headers; `X-Remove-<kind>-Meta-*`
 * become empty values (= remove), as do empty `X-<kind>-Meta-*` values.
 */
export function metaFromHeaders(req: FastifyRequest, kind: 'object' | 'container' | 'account', withRemovals: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const pre = `x-${kind}-meta-`;
  const rem = `x-remove-${kind}-meta-`;
  for (const [name, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    // As behind Swift's WSGI server, underscores in header names count as hyphens.
    const k = name.includes('_') ? name.replace(/_/g, '-') : name;
    const val = Array.isArray(v) ? v.join(',') : v;
    if (k.startsWith(pre)) out[k.slice(pre.length)] = fromHeader(val.trim());
    else if (withRemovals && k.startsWith(rem)) out[k.slice(rem.length)] = '';
  }
  return out;
}

const titleCase = (k: string) => k.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());

/** `X-Object-Meta-Color: blue` style response headers. */
export function metaHeaders(
  kind: 'Object' | 'Container' | 'Account',
  meta: Record<string, string>,
  skip?: (name: string) => boolean,
  out: Record<string, string> = {},
): Record<string, string> {
  for (const k in meta) if (!skip?.(k)) out[`X-${kind}-Meta-${titleCase(k)}`] = toHeader(meta[k]!);
  return out;
}

/** The metadata holding TempURL keys (account or container), which only owners may see. */
export const TEMP_URL_KEYS = ['temp-url-key', 'temp-url-key-2'];
export const isTempUrlKey = (name: string): boolean => TEMP_URL_KEYS.includes(name);

export { httpDate } from '../../core/http-date.js';

export type ListingFormat = 'json' | 'xml' | 'plain';

/** `?format=` wins over `Accept`, as in Swift. */
export function listingFormat(query: URLSearchParams, accept: string | undefined): ListingFormat {
  const f = query.get('format')?.toLowerCase();
  if (f === 'json' || f === 'xml' || f === 'plain') return f;
  const a = (accept ?? '').toLowerCase();
  if (a.includes('application/json')) return 'json';
  if (a.includes('application/xml') || a.includes('text/xml')) return 'xml';
  return 'plain';
}

export const LISTING_TYPES: Record<ListingFormat, string> = {
  json: 'application/json; charset=utf-8',
  xml: 'application/xml; charset=utf-8',
  plain: 'text/plain; charset=utf-8',
};

const xmlEsc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderObjectListing(format: ListingFormat, container: string, entries: Array<ObjectEntry | SubdirEntry>, overrides?: (e: ObjectEntry) => Partial<{ bytes: number; hash: string; contentType: string }>): string {
  if (format === 'plain') return entries.map((e) => ('subdir' in e ? e.subdir : e.name) + '\n').join('');
  const rows = entries.map((e) => {
    if ('subdir' in e) return e;
    const o = overrides?.(e) ?? {};
    return { name: e.name, hash: o.hash ?? e.etag, bytes: o.bytes ?? e.size, content_type: o.contentType ?? e.contentType, last_modified: e.lastModified };
  });
  if (format === 'json') return JSON.stringify(rows);
  const body = rows
    .map((r) =>
      'subdir' in r
        ? `<subdir name="${xmlEsc(r.subdir)}"><name>${xmlEsc(r.subdir)}</name></subdir>`
        : `<object><name>${xmlEsc(r.name)}</name><hash>${r.hash}</hash><bytes>${r.bytes}</bytes><content_type>${xmlEsc(r.content_type)}</content_type><last_modified>${r.last_modified}</last_modified></object>`,
    )
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<container name="${xmlEsc(container)}">${body}</container>`;
}

export function renderAccountListing(format: ListingFormat, account: string, entries: Array<ContainerEntry | SubdirEntry>): string {
  if (format === 'plain') return entries.map((e) => ('subdir' in e ? e.subdir : e.name) + '\n').join('');
  const rows = entries.map((e) => ('subdir' in e ? e : { name: e.name, count: e.objectCount, bytes: e.bytesUsed, last_modified: e.lastModified }));
  if (format === 'json') return JSON.stringify(rows);
  const body = rows
    .map((r) =>
      'subdir' in r
        ? `<subdir name="${xmlEsc(r.subdir)}"><name>${xmlEsc(r.subdir)}</name></subdir>`
        : `<container><name>${xmlEsc(r.name)}</name><count>${r.count}</count><bytes>${r.bytes}</bytes><last_modified>${r.last_modified}</last_modified></container>`,
    )
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<account name="${xmlEsc(account)}">${body}</account>`;
}

/**
 * Parses a `Range: bytes=...` header into satisfiable inclusive ranges.
 * Returns null when the header is absent or malformed (Swift then serves
 * the whole object), [] when no range is satisfiable (416).
 */
export function parseRanges(value: string | undefined, size: number): Array<{ start: number; end: number }> | null {
  if (!value) return null;
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(value);
  if (!m) return null;
  const out: Array<{ start: number; end: number }> = [];
  const specs = m[1]!.split(',').map((s) => s.trim());
  if (specs.length > 100) return null;
  for (const s of specs) {
    const r = /^(\d*)-(\d*)$/.exec(s);
    if (!r || (r[1] === '' && r[2] === '')) return null;
    if (r[1] === '') {
      const n = Number(r[2]);
      if (n === 0) continue;
      if (size === 0) continue;
      out.push({ start: Math.max(0, size - n), end: size - 1 });
    } else {
      const start = Number(r[1]);
      const end = r[2] === '' ? size - 1 : Number(r[2]);
      if (r[2] !== '' && end < start) return null;
      if (start >= size) continue;
      out.push({ start, end: Math.min(end, size - 1) });
    }
  }
  return out;
}

const MIME: Record<string, string> = {
  txt: 'text/plain', text: 'text/plain', log: 'text/plain', html: 'text/html', htm: 'text/html', css: 'text/css', csv: 'text/csv',
  js: 'text/javascript', json: 'application/json', xml: 'application/xml', pdf: 'application/pdf', zip: 'application/zip',
  gz: 'application/gzip', tgz: 'application/gzip', tar: 'application/x-tar', bz2: 'application/x-bzip2', xz: 'application/x-xz',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', svg: 'image/svg+xml', webp: 'image/webp', ico: 'image/vnd.microsoft.icon',
  mp3: 'audio/mpeg', mp4: 'video/mp4', webm: 'video/webm', iso: 'application/x-iso9660-image', yaml: 'application/yaml', yml: 'application/yaml',
  sh: 'application/x-sh', py: 'text/x-python', md: 'text/markdown',
};

/** What Swift's proxy does without a Content-Type: guess from the name's extension. */
export function guessContentType(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot < 0 || dot < name.lastIndexOf('/')) return 'application/octet-stream';
  return MIME[name.slice(dot + 1).toLowerCase()] ?? 'application/octet-stream';
}

/** Swift's `tx<21 hex>-<10 hex of the time>`, from the request id (`req-<uuid>`). */
export function transId(req: FastifyRequest): string {
  const id = req.id.startsWith('req-') ? req.id.slice(4) : req.id;
  // The uuid's first 21 hex digits: 8 + 4 + 4 + 4 + 1, skipping its hyphens.
  const hex = id.length === 36 ? id.slice(0, 8) + id.slice(9, 13) + id.slice(14, 18) + id.slice(19, 23) + id.slice(24, 25) : id.replace(/-/g, '').slice(0, 21);
  return `tx${hex}-${secondsHex()}`;
}

let lastSecond = -1;
let lastSecondHex = '';
/** The current unix second in 10 hex digits (remembered: every response's X-Trans-Id ends with it). */
function secondsHex(): string {
  const sec = Math.floor(Date.now() / 1000);
  if (sec !== lastSecond) {
    lastSecond = sec;
    lastSecondHex = sec.toString(16).padStart(10, '0');
  }
  return lastSecondHex;
}

/** Ends a response without a body (HEAD, 2xx without content). */
export function sendEmpty(reply: FastifyReply, status: number, headers: Record<string, string | number> = {}): FastifyReply {
  reply.code(status).headers(headers);
  if (status !== 204 && status !== 304 && reply.request.method !== 'HEAD' && headers['Content-Length'] === undefined) reply.header('Content-Length', '0');
  return reply.send();
}

export { timestampToIso };

/**
 * Sends a whole in-memory body with `headers` (plus those already set on the
 * reply, such as the request id) straight through Node's `writeHead`/`end`,
 * bypassing Fastify's per-header bookkeeping and onSend hooks. For the hot
 * small-object GET only: the body is final and the route has no onSend work
 * (Swift's routes carry no policy config; onResponse hooks still run).
 */
export function sendWhole(reply: FastifyReply, status: number, headers: Record<string, string>, body: Buffer): FastifyReply {
  reply.hijack();
  reply.raw.writeHead(status, flatHeaders(reply, headers));
  reply.raw.end(body);
  return reply;
}

/**
 * Sends an object's body stream as sendWhole sends an in-memory one, the
 * bytes going out through the engine's `sendBody` (pooled read buffers, no
 * per-chunk allocation); resolves once the body is out or cut short.
 */
export async function sendStream(reply: FastifyReply, status: number, headers: Record<string, string>, stream: Readable): Promise<FastifyReply> {
  reply.hijack();
  reply.raw.writeHead(status, flatHeaders(reply, headers));
  const err = await sendBody(stream, reply.raw);
  if (err) reply.log.warn({ err }, 'object body cut short');
  return reply;
}

/** `headers` plus those already set on the reply (e.g. the request id), as Node's flat [name, value, …] list. */
function flatHeaders(reply: FastifyReply, headers: Record<string, string>): string[] {
  const flat: string[] = [];
  const set = reply.getHeaders(); // lower-case names
  const given = Object.keys(headers);
  for (const k in set) {
    const v = set[k];
    if (v === undefined || given.some((g) => g.length === k.length && g.toLowerCase() === k)) continue;
    if (Array.isArray(v)) for (const x of v) flat.push(k, x);
    else flat.push(k, String(v));
  }
  for (const k in headers) flat.push(k, headers[k]!);
  return flat;
}
