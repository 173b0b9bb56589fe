/**
 * The Swift-compatible Object Storage API v1 on the storage engine:
 * `/object/v1/AUTH_<project_id>[/<container>[/<object>]]`.
 *
 * One handler dispatches on the path depth and method; authorization is
 * Swift's (keystoneauth roles via policy rules, container ACLs, TempURL),
 * decided here rather than by `mountService` because ACLs and TempURLs grant
 * access per container and object, and anonymous requests are legitimate.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../core/errors.js';
import type { AuthContext, TokenValidator } from '../../core/context.js';
import { allowedOnProject } from '../../core/context.js';
import type { PolicyEngine } from '../../core/policy.js';
import type { Logger } from '../../core/log.js';
import {
  LIMITS,
  NotFoundError,
  NotModifiedError,
  PreconditionFailedError,
  checkConditions,
  normalizeEtag,
  type AccountInfo,
  type AccountMeta,
  type ContainerInfo,
  type ContainerMeta,
  type ObjectEntry,
  type ObjectMeta,
  type ObjectStore,
  type ReadConditions,
} from '../store/index.js';
import { cleanAcl, groupsMatch, parseAcl, referrerAllowed } from './acl.js';
import {
  errorBody,
  fromHeader,
  guessContentType,
  header,
  httpDate,
  isTempUrlKey,
  TEMP_URL_KEYS,
  listingFormat,
  LISTING_TYPES,
  metaFromHeaders,
  metaHeaders,
  parseRanges,
  renderAccountListing,
  renderObjectListing,
  sendEmpty,
  sendStream,
  sendWhole,
  toHeader,
  transId,
  type ListingFormat,
} from './http.js';
import {
  SLO_MAX_MANIFEST_BYTES,
  buildSloManifest,
  largeKind,
  openLargeObject,
  rawManifest,
  readSloManifest,
  splitDloManifest,
  splitSegmentPath,
} from './large-objects.js';
import { parseTempUrlQuery, tempUrlValid, type TempUrlQuery } from './tempurl.js';
import { readTar, TarFormatError } from './tar.js';
import { createGunzip } from 'node:zlib';

export const BULK_MAX_DELETES = 10000;
export const BULK_MAX_FAILED = 1000;
export const EXTRACT_MAX_CONTAINERS = 10000;
export const EXTRACT_MAX_FAILED = 1000;
const VERSION = '2.30.1';

export interface SwiftApiOptions {
  store: ObjectStore;
  policy: PolicyEngine;
  validator: TokenValidator;
  log: Logger;
  /** Path prefix the API is mounted under (before `/v1`), e.g. `/object`. */
  prefix: string;
}

interface Target {
  account: string;
  container?: string;
  object?: string;
}

/** What the caller may do in one account, worked out once per request. */
interface Caller {
  auth: AuthContext | null;
  readonly reseller: boolean;
  readonly operator: boolean;
  readonly reader: boolean;
  tempUrl: TempUrlQuery | null;
}

/** Request state shared by the handlers. */
interface Ctx {
  req: FastifyRequest;
  reply: FastifyReply;
  method: string;
  t: Target;
  q: URLSearchParams;
  caller: Caller;
  /** The request body has been (or is being) read: an error must not leave the connection reusable otherwise. */
  bodyTouched: boolean;
  container?: ContainerMeta | null;
}

/** Each role is checked against the policy when first asked (an owner's GET needs one rule, not three). */
class CallerRights implements Caller {
  private _reseller: boolean | undefined;
  private _operator: boolean | undefined;
  private _reader: boolean | undefined;

  constructor(
    private readonly policy: PolicyEngine,
    public auth: AuthContext | null,
    private readonly projectId: string | null,
    public tempUrl: TempUrlQuery | null,
  ) {}

  get reseller(): boolean {
    return (this._reseller ??= this.auth ? allowedOnProject(this.policy, this.auth, 'object_store:reseller_admin', this.projectId ?? '\0') : false);
  }

  get operator(): boolean {
    return (this._operator ??= this.auth && this.projectId !== null ? allowedOnProject(this.policy, this.auth, 'object_store:operator', this.projectId) : false);
  }

  get reader(): boolean {
    return (this._reader ??= this.auth && this.projectId !== null ? allowedOnProject(this.policy, this.auth, 'object_store:reader', this.projectId) : false);
  }
}

const owned = (c: Caller) => c.operator || c.reseller;

function intHeader(v: string | undefined, what: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v.trim())) throw new ApiError(400, `Invalid ${what}`);
  return Number(v.trim());
}

/** Parses X-Delete-At / X-Delete-After into unix seconds (undefined = not given). */
function deleteAtFrom(req: FastifyRequest): number | undefined {
  const at = header(req, 'x-delete-at');
  const after = header(req, 'x-delete-after');
  if (after !== undefined) {
    if (!/^\d+$/.test(after.trim())) throw new ApiError(400, 'Non-integer X-Delete-After');
    return Math.floor(Date.now() / 1000) + Number(after.trim());
  }
  if (at !== undefined) {
    const v = at.trim();
    if (!/^\d+(\.\d+)?$/.test(v)) throw new ApiError(400, 'Non-integer X-Delete-At');
    const n = Math.floor(Number(v));
    if (n <= Date.now() / 1000) throw new ApiError(400, 'X-Delete-At in past');
    return n;
  }
  return undefined;
}

function conditionsFrom(req: FastifyRequest): ReadConditions | undefined {
  const c: ReadConditions = {};
  const im = header(req, 'if-match');
  const inm = header(req, 'if-none-match');
  const ims = header(req, 'if-modified-since');
  const ius = header(req, 'if-unmodified-since');
  if (im !== undefined) c.ifMatch = im;
  if (inm !== undefined) c.ifNoneMatch = inm;
  if (ims !== undefined && !Number.isNaN(Date.parse(ims))) c.ifModifiedSince = Date.parse(ims);
  if (ius !== undefined && !Number.isNaN(Date.parse(ius))) c.ifUnmodifiedSince = Date.parse(ius);
  return Object.keys(c).length ? c : undefined;
}

/** `/container/object` of a Destination or X-Copy-From header. */
function splitCopyPath(v: string, what: string): { container: string; object: string } {
  let s: string;
  try {
    s = decodeURIComponent(fromHeader(v));
  } catch {
    throw new ApiError(412, `${what} header must be of the form <container name>/<object name>`);
  }
  const p = splitSegmentPath(s.startsWith('/') ? s : `/${s}`);
  if (!p) throw new ApiError(412, `${what} header must be of the form <container name>/<object name>`);
  return { container: p.container, object: p.name };
}

const versionedName = (name: string, ts: string) => `${Buffer.byteLength(name).toString(16).padStart(3, '0')}${name}/${ts}`;
const versionedPrefix = (name: string) => `${Buffer.byteLength(name).toString(16).padStart(3, '0')}${name}/`;

export class SwiftApi {
  readonly store: ObjectStore;
  private readonly policy: PolicyEngine;
  private readonly validator: TokenValidator;
  private readonly log: Logger;
  readonly prefix: string;

  constructor(opts: SwiftApiOptions) {
    this.store = opts.store;
    this.policy = opts.policy;
    this.validator = opts.validator;
    this.log = opts.log;
    this.prefix = opts.prefix;
  }

  /** The `/info` document: exactly the features this implementation supports. */
  info(): Record<string, unknown> {
    return {
      swift: {
        version: VERSION,
        max_file_size: this.store.maxObjectSize,
        max_meta_name_length: LIMITS.maxMetaNameBytes,
        max_meta_value_length: LIMITS.maxMetaValueBytes,
        max_meta_count: LIMITS.maxMetaCount,
        max_meta_overall_size: LIMITS.maxMetaOverallBytes,
        max_header_size: 8192,
        max_object_name_length: LIMITS.maxObjectNameBytes,
        container_listing_limit: 10000,
        account_listing_limit: 10000,
        max_account_name_length: LIMITS.maxAccountNameBytes,
        max_container_name_length: LIMITS.maxContainerNameBytes,
        extra_header_count: 0,
        valid_api_versions: ['v1'],
        policies: [{ name: 'Policy-0', default: true }],
        allow_account_management: false,
        account_autocreate: true,
        strict_cors_mode: true,
      },
      tempurl: {
        methods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'],
        incoming_remove_headers: ['x-timestamp'],
        incoming_allow_headers: [],
        outgoing_remove_headers: ['x-object-meta-*'],
        outgoing_allow_headers: ['x-object-meta-public-*'],
        allowed_digests: ['sha1', 'sha256', 'sha512'],
      },
      slo: { max_manifest_segments: 1000, max_manifest_size: SLO_MAX_MANIFEST_BYTES, min_segment_size: 1, yield_frequency: 10, allow_async_delete: false },
      dlo: { max_segments: 10000 },
      bulk_delete: { max_deletes_per_request: BULK_MAX_DELETES, max_failed_deletes: BULK_MAX_FAILED },
      bulk_upload: { max_containers_per_extraction: EXTRACT_MAX_CONTAINERS, max_failed_extractions: EXTRACT_MAX_FAILED },
      account_quotas: {},
      container_quotas: {},
      versioned_writes: { allowed_flags: ['x-versions-location', 'x-history-location'] },
    };
  }

  // ---------------------------------------------------------------- dispatch

  /** Entry point for every request under `<prefix>/v1/`. */
  async handle(req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    reply.header('X-Trans-Id', transId(req));
    const ctx = { req, reply, method: req.method, bodyTouched: false } as Ctx;
    try {
      const raw = req.raw.url ?? req.url;
      const qi = raw.indexOf('?');
      ctx.q = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
      ctx.t = this.parsePath(qi >= 0 ? raw.slice(0, qi) : raw);
      ctx.caller = await this.caller(req, ctx.t.account, ctx.q);
      if (ctx.t.object !== undefined) return await this.object(ctx);
      if (ctx.t.container !== undefined) return await this.containerReq(ctx);
      return await this.accountReq(ctx);
    } catch (e) {
      return this.fail(ctx, e);
    }
  }

  private parsePath(path: string): Target {
    const base = `${this.prefix}/v1/`;
    const rest = path.slice(base.length);
    const dec = (s: string) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new ApiError(400, 'Invalid UTF8 or contains NULL');
      }
    };
    const i = rest.indexOf('/');
    const account = dec(i < 0 ? rest : rest.slice(0, i));
    if (!account) throw new ApiError(412, 'Invalid path');
    let container: string | undefined;
    let object: string | undefined;
    if (i >= 0) {
      const r2 = rest.slice(i + 1);
      const j = r2.indexOf('/');
      const c = dec(j < 0 ? r2 : r2.slice(0, j));
      if (c) container = c;
      if (j >= 0 && container !== undefined) {
        const o = dec(r2.slice(j + 1));
        if (o) object = o;
      }
    }
    // A lone surrogate (from a %-escape of invalid UTF-8) does not round-trip through UTF-8.
    for (const s of [account, container, object]) if (s !== undefined && (s.includes('\0') || !s.isWellFormed())) throw new ApiError(412, 'Invalid UTF8 or contains NULL');
    if (container !== undefined && Buffer.byteLength(container) > LIMITS.maxContainerNameBytes)
      throw new ApiError(400, `Container name length of ${Buffer.byteLength(container)} longer than ${LIMITS.maxContainerNameBytes}`);
    if (object !== undefined && Buffer.byteLength(object) > LIMITS.maxObjectNameBytes)
      throw new ApiError(400, `Object name length of ${Buffer.byteLength(object)} longer than ${LIMITS.maxObjectNameBytes}`);
    return { account, container, object };
  }

  /** Decoded `/v1/a/c/o` (what TempURL signatures cover) and the same under the prefix. */
  private signedPaths(t: Target): string[] {
    const v1 = `/v1/${t.account}${t.container !== undefined ? `/${t.container}` : ''}${t.object !== undefined ? `/${t.object}` : ''}`;
    return [v1, `${this.prefix}${v1}`];
  }

  private async caller(req: FastifyRequest, account: string, q: URLSearchParams): Promise<Caller> {
    let auth = req.auth;
    if (!auth) {
      const st = header(req, 'x-storage-token');
      if (st) auth = req.auth = await this.validator.validate(st);
    }
    const tu = parseTempUrlQuery(q);
    if (tu === 'invalid') throw new ApiError(401, 'Temp URL invalid');
    return new CallerRights(this.policy, auth ?? null, account.startsWith('AUTH_') ? account.slice(5) : null, tu);
  }

  private deny(c: Caller): never {
    throw c.auth ? new ApiError(403, 'Forbidden') : new ApiError(401, 'Unauthorized');
  }

  private fail(ctx: Ctx, e: unknown): FastifyReply {
    const { reply, req } = ctx;
    if (reply.sent) {
      reply.raw.destroy();
      return reply;
    }
    let status = 500;
    let message = 'An error occurred';
    const headers: Record<string, string> = {};
    if (e instanceof NotModifiedError) {
      reply.code(304).header('ETag', e.etag);
      return reply.send();
    }
    if (e instanceof ApiError) {
      status = e.status;
      message = e.message;
      if (e.headers) Object.assign(headers, e.headers);
    } else if (e instanceof TarFormatError) {
      status = 400;
      message = `Invalid Tar File: ${e.message}`;
    } else {
      this.log.error({ err: e, reqId: req.id, url: req.url }, 'swift request failed');
    }
    if (status === 499) {
      reply.raw.destroy();
      return reply;
    }
    if (status === 401) headers['WWW-Authenticate'] = 'Keystone uri="/identity/v3"';
    // A body we stopped reading would be taken for the next request: close instead.
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (hasBody && !req.raw.readableEnded) headers['Connection'] = 'close';
    const { body, type } = errorBody(status, message);
    reply.code(status).headers(headers).header('Content-Type', type);
    if (ctx.method === 'HEAD') return reply.header('Content-Length', String(Buffer.byteLength(body))).send();
    return reply.send(body);
  }

  // ---------------------------------------------------------------- access checks

  /** A container's metadata (ACLs, quotas, versioning, keys), or null when it does not exist; no stats. */
  private containerMeta(ctx: Ctx, container = ctx.t.container!): ContainerMeta | null {
    if (container === ctx.t.container && ctx.container !== undefined) return ctx.container;
    let info: ContainerMeta | null;
    try {
      info = this.store.containerMeta(ctx.t.account, container);
    } catch (e) {
      if (e instanceof NotFoundError) info = null;
      else throw e;
    }
    if (container === ctx.t.container) ctx.container = info;
    return info;
  }

  /** Read access to a container's objects (listing too when `listing`). */
  private async authorizeRead(ctx: Ctx, container: string, listing: boolean): Promise<void> {
    const c = ctx.caller;
    if (owned(c) || c.reader) return;
    const info = this.containerMeta(ctx, container);
    if (info) {
      const acl = parseAcl(info.sysMeta['acl-read']);
      if (groupsMatch(c.auth, acl.groups)) return;
      if (referrerAllowed(header(ctx.req, 'referer'), acl.referrers) && (!listing || acl.rlistings)) return;
    }
    this.deny(c);
  }

  private async authorizeWrite(ctx: Ctx, container: string): Promise<void> {
    const c = ctx.caller;
    if (owned(c)) return;
    const info = this.containerMeta(ctx, container);
    if (info && groupsMatch(c.auth, parseAcl(info.sysMeta['acl-write']).groups)) return;
    this.deny(c);
  }

  /** TempURL: true when the request is authorized by a valid signature; throws 401 for a bad one. */
  private async tempUrlGrants(ctx: Ctx): Promise<boolean> {
    const tu = ctx.caller.tempUrl;
    if (!tu) return false;
    const bad = () => new ApiError(401, 'Temp URL invalid');
    if (tu.expires < Date.now() / 1000) throw bad();
    if (!['GET', 'HEAD', 'PUT', 'POST', 'DELETE'].includes(ctx.method)) throw bad();
    if (ctx.t.object === undefined) throw bad();
    let paths = this.signedPaths(ctx.t);
    if (tu.prefix !== undefined) {
      if (!ctx.t.object.startsWith(tu.prefix)) throw bad();
      paths = paths.map((p) => p.slice(0, p.length - ctx.t.object!.length) + tu.prefix);
    }
    const keys: string[] = [];
    const acct = this.accountMeta(ctx.t.account);
    for (const k of TEMP_URL_KEYS) if (acct?.userMeta[k]) keys.push(acct.userMeta[k]);
    const cont = this.containerMeta(ctx);
    for (const k of TEMP_URL_KEYS) if (cont?.userMeta[k]) keys.push(cont.userMeta[k]);
    if (!tempUrlValid(tu, ctx.method, paths, keys)) throw bad();
    return true;
  }

  // ---------------------------------------------------------------- account

  private async accountInfo(account: string): Promise<AccountInfo> {
    try {
      return await this.store.headAccount(account);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      // Account autocreate: an account exists implicitly until its first write.
      const now = (Date.now() / 1000).toFixed(5);
      return { name: account, containerCount: 0, objectCount: 0, bytesUsed: 0, userMeta: {}, sysMeta: {}, putTimestamp: now, timestamp: now };
    }
  }

  private accountHeaders(ctx: Ctx, info: AccountInfo): Record<string, string> {
    const owner = owned(ctx.caller);
    return {
      'X-Account-Container-Count': String(info.containerCount),
      'X-Account-Object-Count': String(info.objectCount),
      'X-Account-Bytes-Used': String(info.bytesUsed),
      'X-Timestamp': info.putTimestamp,
      'X-Put-Timestamp': info.putTimestamp,
      'X-Account-Storage-Policy-Policy-0-Container-Count': String(info.containerCount),
      'X-Account-Storage-Policy-Policy-0-Object-Count': String(info.objectCount),
      'X-Account-Storage-Policy-Policy-0-Bytes-Used': String(info.bytesUsed),
      ...metaHeaders('Account', info.userMeta, owner ? undefined : isTempUrlKey),
    };
  }

  private async accountReq(ctx: Ctx): Promise<unknown> {
    const { method, caller: c, req, reply, q, t } = ctx;
    if (c.tempUrl) throw new ApiError(401, 'Temp URL invalid');
    if ((method === 'POST' || method === 'DELETE') && q.has('bulk-delete')) return this.bulkDelete(ctx);
    if (method === 'PUT' && q.has('extract-archive')) return this.extractArchive(ctx);
    switch (method) {
      case 'HEAD':
      case 'GET': {
        if (!owned(c) && !c.reader) this.deny(c);
        if (method === 'HEAD') {
          const info = await this.accountInfo(t.account);
          return sendEmpty(reply, 204, { ...this.accountHeaders(ctx, info), 'Content-Type': 'text/plain; charset=utf-8' });
        }
        const format = listingFormat(q, header(req, 'accept'));
        const opts = this.listOptions(q);
        let info: AccountInfo;
        let entries: Parameters<typeof renderAccountListing>[2] = [];
        try {
          ({ info, entries } = await this.store.listAccount(t.account, opts));
        } catch (e) {
          if (!(e instanceof NotFoundError)) throw e;
          info = await this.accountInfo(t.account);
        }
        return this.sendListing(ctx, format, renderAccountListing(format, t.account, entries), entries.length, this.accountHeaders(ctx, info));
      }
      case 'POST': {
        if (!owned(c)) this.deny(c);
        const meta = metaFromHeaders(req, 'account', true);
        if ('quota-bytes' in meta) {
          if (!c.reseller) this.deny(c);
          if (meta['quota-bytes'] !== '' && !/^\d+$/.test(meta['quota-bytes']!)) throw new ApiError(400, 'Invalid quota value');
        }
        await this.store.putAccount(t.account, { userMeta: meta });
        return sendEmpty(reply, 204, { 'Content-Type': 'text/html; charset=UTF-8' });
      }
      case 'PUT':
      case 'DELETE':
        // allow_account_management = false: accounts come and go with projects.
        return sendEmpty(reply.header('Allow', 'HEAD, GET, POST'), 405);
      default:
        return sendEmpty(reply, 405);
    }
  }

  private listOptions(q: URLSearchParams) {
    const limitS = q.get('limit');
    let limit: number | undefined;
    if (limitS !== null) {
      if (!/^\d+$/.test(limitS)) throw new ApiError(412, 'Value of limit must be a positive integer');
      limit = Number(limitS);
      if (limit > 10000) throw new ApiError(412, 'Maximum limit is 10000');
    }
    const delimiter = q.get('delimiter') ?? undefined;
    if (delimiter !== undefined && [...delimiter].length > 1) throw new ApiError(412, 'Bad delimiter');
    const reverse = ['true', '1', 'yes', 'on', 't', 'y'].includes((q.get('reverse') ?? '').toLowerCase());
    for (const k of ['prefix', 'marker', 'end_marker', 'delimiter']) {
      const v = q.get(k);
      if (v !== null && (v.includes('\0') || Buffer.byteLength(v) > 1024)) throw new ApiError(400, `Invalid ${k}`);
    }
    return {
      prefix: q.get('prefix') ?? undefined,
      delimiter: delimiter || undefined,
      marker: q.get('marker') ?? undefined,
      endMarker: q.get('end_marker') ?? undefined,
      limit,
      reverse,
    };
  }

  private sendListing(ctx: Ctx, format: ListingFormat, body: string, count: number, headers: Record<string, string>): FastifyReply {
    const { reply } = ctx;
    reply.headers(headers);
    if (count === 0 && format === 'plain') return sendEmpty(reply, 204, { 'Content-Type': LISTING_TYPES.plain });
    reply.code(200).header('Content-Type', LISTING_TYPES[format]).header('Content-Length', String(Buffer.byteLength(body)));
    if (ctx.method === 'HEAD') return reply.send();
    return reply.send(body);
  }

  // ---------------------------------------------------------------- container

  private containerHeaders(ctx: Ctx, info: ContainerInfo): Record<string, string> {
    const owner = owned(ctx.caller);
    const h: Record<string, string> = {
      'X-Container-Object-Count': String(info.objectCount),
      'X-Container-Bytes-Used': String(info.bytesUsed),
      'X-Timestamp': info.putTimestamp,
      'X-Put-Timestamp': info.timestamp,
      'X-Storage-Policy': 'Policy-0',
      ...metaHeaders('Container', info.userMeta, owner ? undefined : isTempUrlKey),
    };
    if (owner) {
      if (info.sysMeta['acl-read']) h['X-Container-Read'] = toHeader(info.sysMeta['acl-read']);
      if (info.sysMeta['acl-write']) h['X-Container-Write'] = toHeader(info.sysMeta['acl-write']);
    }
    if (info.sysMeta['versions-location']) {
      h[info.sysMeta['versions-mode'] === 'history' ? 'X-History-Location' : 'X-Versions-Location'] = toHeader(encodeURIComponent(info.sysMeta['versions-location']));
    }
    return h;
  }

  /** Container metadata + sysmeta (ACLs, versioning) from PUT/POST headers. */
  private containerUpdate(ctx: Ctx): { userMeta: Record<string, string>; sysMeta: Record<string, string> } {
    const { req } = ctx;
    const userMeta = metaFromHeaders(req, 'container', true);
    for (const k of ['quota-bytes', 'quota-count']) {
      const v = userMeta[k];
      if (v !== undefined && v !== '' && !/^\d+$/.test(v)) throw new ApiError(400, `Invalid ${k === 'quota-bytes' ? 'bytes' : 'count'} quota`);
    }
    const sysMeta: Record<string, string> = {};
    for (const [h, key] of [['read', 'acl-read'], ['write', 'acl-write']] as const) {
      const v = header(req, `x-container-${h}`);
      if (v !== undefined) sysMeta[key] = cleanAcl(h, fromHeader(v));
      if (header(req, `x-remove-container-${h}`) !== undefined) sysMeta[key] = '';
    }
    const vl = header(req, 'x-versions-location');
    const hl = header(req, 'x-history-location');
    if (vl !== undefined && hl !== undefined && vl && hl) throw new ApiError(400, 'Only one of X-Versions-Location or X-History-Location may be specified');
    const loc = hl || vl;
    if (loc !== undefined && (vl !== undefined || hl !== undefined)) {
      let name = '';
      try {
        name = decodeURIComponent(fromHeader(loc ?? '')).trim();
      } catch {
        throw new ApiError(400, 'Invalid versions location');
      }
      if (name.includes('/')) throw new ApiError(400, 'Versions location cannot contain a slash');
      if (name && Buffer.byteLength(name) > LIMITS.maxContainerNameBytes) throw new ApiError(400, 'Versions location name too long');
      sysMeta['versions-location'] = name;
      sysMeta['versions-mode'] = name ? (hl ? 'history' : 'stack') : '';
    }
    if (header(req, 'x-remove-versions-location') !== undefined || header(req, 'x-remove-history-location') !== undefined) {
      sysMeta['versions-location'] = '';
      sysMeta['versions-mode'] = '';
    }
    return { userMeta, sysMeta };
  }

  private async containerReq(ctx: Ctx): Promise<unknown> {
    const { method, caller: c, req, reply, q, t } = ctx;
    const container = t.container!;
    if (c.tempUrl) throw new ApiError(401, 'Temp URL invalid');
    if (method === 'PUT' && q.has('extract-archive')) return this.extractArchive(ctx);
    switch (method) {
      case 'HEAD':
      case 'GET': {
        await this.authorizeRead(ctx, container, true);
        if (method === 'HEAD') {
          const info = await this.store.headContainer(t.account, container);
          return sendEmpty(reply, 204, { ...this.containerHeaders(ctx, info), 'Content-Type': 'text/plain; charset=utf-8' });
        }
        const format = listingFormat(q, header(req, 'accept'));
        const { info, entries } = await this.store.listContainer(t.account, container, this.listOptions(q));
        return this.sendListing(ctx, format, renderObjectListing(format, container, entries, listingOverride), entries.length, this.containerHeaders(ctx, info));
      }
      case 'PUT': {
        if (!owned(c)) this.deny(c);
        const { userMeta, sysMeta } = this.containerUpdate(ctx);
        const { created } = await this.store.putContainer(t.account, container, { userMeta, sysMeta });
        return sendEmpty(reply, created ? 201 : 202, { 'Content-Type': 'text/html; charset=UTF-8' });
      }
      case 'POST': {
        if (!owned(c)) this.deny(c);
        const { userMeta, sysMeta } = this.containerUpdate(ctx);
        await this.store.postContainerMeta(t.account, container, { userMeta, sysMeta });
        return sendEmpty(reply, 204, { 'Content-Type': 'text/html; charset=UTF-8' });
      }
      case 'DELETE': {
        if (!owned(c)) this.deny(c);
        await this.store.deleteContainer(t.account, container);
        return sendEmpty(reply, 204, { 'Content-Type': 'text/html; charset=UTF-8' });
      }
      default:
        return sendEmpty(reply, 405);
    }
  }

  // ---------------------------------------------------------------- object

  private async object(ctx: Ctx): Promise<unknown> {
    const { method, caller: c, t } = ctx;
    const container = t.container!;
    if (method === 'PUT' && ctx.q.has('extract-archive') && !c.tempUrl) return this.extractArchive(ctx);
    const viaTempUrl = await this.tempUrlGrants(ctx);
    switch (method) {
      case 'GET':
      case 'HEAD':
        if (!viaTempUrl) await this.authorizeRead(ctx, container, false);
        return this.getObject(ctx, viaTempUrl);
      case 'PUT':
        if (!viaTempUrl) await this.authorizeWrite(ctx, container);
        return this.putObject(ctx);
      case 'POST':
        if (!viaTempUrl) await this.authorizeWrite(ctx, container);
        return this.postObject(ctx);
      case 'DELETE':
        if (!viaTempUrl) await this.authorizeWrite(ctx, container);
        return this.deleteObject(ctx);
      case 'COPY': {
        const dest = header(ctx.req, 'destination');
        if (!dest) throw new ApiError(412, 'Destination header required');
        const d = splitCopyPath(dest, 'Destination');
        const destAccount = header(ctx.req, 'destination-account');
        const acct = destAccount ? fromHeader(destAccount) : t.account;
        if (acct !== t.account) throw new ApiError(403, 'Copying to another account is not supported');
        await this.authorizeRead(ctx, container, false);
        await this.authorizeWrite(ctx, d.container);
        return this.copyInto(ctx, { container, object: t.object! }, d);
      }
      default:
        void c;
        return sendEmpty(ctx.reply, 405);
    }
  }

  /** With `viaTempUrl`, only `X-Object-Meta-Public-*` is shown (tempurl's outgoing_remove_headers). */
  private objectHeaders(meta: ObjectMeta, size: number, etag: string, viaTempUrl = false): Record<string, string> {
    const h: Record<string, string> = {
      'Content-Type': toHeader(stripSwiftBytes(meta.contentType)),
      'Content-Length': String(size),
      ETag: etag,
      'Last-Modified': httpDate(meta.lastModified),
      'X-Timestamp': meta.timestamp,
      'Accept-Ranges': 'bytes',
    };
    // Added to the literal, not spread into it: this runs on every GET and HEAD.
    metaHeaders('Object', meta.userMeta, viaTempUrl ? (k) => !k.startsWith('public-') : undefined, h); // via TempURL only public-* metadata shows
    if (meta.deleteAt !== undefined) h['X-Delete-At'] = String(meta.deleteAt);
    if (meta.sysMeta['content-disposition']) h['Content-Disposition'] = toHeader(meta.sysMeta['content-disposition']);
    if (meta.sysMeta['content-encoding']) h['Content-Encoding'] = toHeader(meta.sysMeta['content-encoding']);
    if (meta.sysMeta['dlo'] !== undefined) h['X-Object-Manifest'] = toHeader(encodeURI(meta.sysMeta['dlo']));
    if (meta.sysMeta['slo'] === 'true') {
      h['X-Static-Large-Object'] = 'True';
      h['X-Manifest-Etag'] = meta.etag;
    }
    return h;
  }

  private async getObject(ctx: Ctx, viaTempUrl: boolean): Promise<unknown> {
    const { req, reply, t, q, method } = ctx;
    const a = t.account;
    const cname = t.container!;
    const oname = t.object!;
    const rangeHeader = header(req, 'range');
    const cond = conditionsFrom(req);
    const manifestGet = q.get('multipart-manifest') === 'get';
    const extra: Record<string, string> = {};
    if (viaTempUrl && method === 'GET') {
      const tu = ctx.caller.tempUrl!;
      const fname = (tu.filename ?? oname.slice(oname.lastIndexOf('/') + 1)).replace(/["\\]/g, '\\$&');
      extra['Content-Disposition'] = tu.inline && tu.filename === undefined ? 'inline' : `${tu.inline ? 'inline' : 'attachment'}; filename="${toHeader(fname)}"`;
    }

    // Fast path: a plain GET (no Range, no conditions) costs one engine call.
    if (method === 'GET' && !rangeHeader && !cond) {
      const got = await this.store.getObject(a, cname, oname);
      const kind = largeKind(got.meta);
      if (!kind || manifestGet) {
        if (kind === 'slo' && manifestGet) return this.sendManifest(ctx, got.meta, got.body);
        const headers = Object.assign(this.objectHeaders(got.meta, got.meta.size, got.meta.etag, viaTempUrl), extra);
        if (got.body) return sendWhole(reply, 200, headers, got.body);
        return sendStream(reply, 200, headers, got.stream);
      }
      if (!got.body) got.stream.destroy();
      return this.serveLarge(ctx, got.meta, undefined, cond, extra, viaTempUrl);
    }
    const meta = await this.store.headObject(a, cname, oname);
    const kind = largeKind(meta);
    if (kind && !manifestGet) return this.serveLarge(ctx, meta, rangeHeader, cond, extra, viaTempUrl);
    if (cond) checkConditions(meta, cond);
    if (kind === 'slo' && manifestGet) {
      if (method === 'HEAD') return sendEmpty(reply, 200, { ...this.objectHeaders(meta, meta.size, meta.etag), 'Content-Type': 'application/json; charset=utf-8' });
      const got = await this.store.getObject(a, cname, oname);
      return this.sendManifest(ctx, got.meta, got.body);
    }
    const headers = { ...this.objectHeaders(meta, meta.size, meta.etag, viaTempUrl), ...extra };
    const ranges = parseRanges(rangeHeader, meta.size);
    return this.sendRanges(ctx, headers, meta.size, ranges, async (r) => {
      const got = await this.store.getObject(a, cname, oname, r ? { range: r, conditions: { ifMatch: meta.etag } } : { conditions: { ifMatch: meta.etag } });
      return got.body ? Readable.from([got.body]) : got.stream;
    });
  }

  private async sendManifest(ctx: Ctx, meta: ObjectMeta, body: Buffer | undefined): Promise<FastifyReply> {
    const segs = body ? (JSON.parse(body.toString('utf8')) as Parameters<typeof rawManifest>[0]) : await readSloManifest(this.store, ctx.t.account, ctx.t.container!, ctx.t.object!);
    const out = Buffer.from(ctx.q.get('format') === 'raw' ? JSON.stringify(rawManifest(segs)) : JSON.stringify(segs));
    ctx.reply.code(200).headers({ ...this.objectHeaders(meta, out.length, normalizeEtag(meta.etag)), 'Content-Type': 'application/json; charset=utf-8' });
    return ctx.reply.send(out);
  }

  private async serveLarge(
    ctx: Ctx,
    meta: ObjectMeta,
    rangeHeader: string | undefined,
    cond: ReadConditions | undefined,
    extra: Record<string, string>,
    viaTempUrl: boolean,
  ): Promise<unknown> {
    const { t } = ctx;
    // A TempURL grants the whole large object, segments included (as Swift's tempurl does).
    const lo = await openLargeObject(this.store, t.account, meta, viaTempUrl ? {} : { authorizeRead: (c) => this.authorizeRead(ctx, c, true) });
    const plan = lo!.plan;
    if (cond) checkConditions({ ...meta, etag: normalizeEtag(plan.etag), size: plan.size }, cond);
    const headers = { ...this.objectHeaders(meta, plan.size, plan.etag, viaTempUrl), ...extra };
    // The first segment is opened before the headers go out, so a missing or
    // changed first segment is an error status (409, as Swift answers), not a 200 cut short.
    return this.sendRanges(ctx, headers, plan.size, parseRanges(rangeHeader, plan.size), async (r) => primed(lo!.stream(r ?? undefined)));
  }

  /** 200 / 206 (single range) / 206 multipart/byteranges / 416. */
  private sendRanges(
    ctx: Ctx,
    headers: Record<string, string>,
    size: number,
    ranges: Array<{ start: number; end: number }> | null,
    open: (r: { start: number; end: number } | null) => Promise<Readable>,
  ): Promise<FastifyReply> | FastifyReply {
    const { reply, method } = ctx;
    if (ranges !== null && ranges.length === 0) {
      throw new ApiError(416, 'Requested range not satisfiable', undefined, { 'Content-Range': `bytes */${size}` });
    }
    if (ranges === null || size === 0) {
      reply.code(200).headers(headers);
      if (method === 'HEAD') return reply.send();
      return open(null).then((s) => reply.send(s));
    }
    if (ranges.length === 1) {
      const r = ranges[0]!;
      reply.code(206).headers({ ...headers, 'Content-Length': String(r.end - r.start + 1), 'Content-Range': `bytes ${r.start}-${r.end}/${size}` });
      if (method === 'HEAD') return reply.send();
      return open(r).then((s) => reply.send(s));
    }
    const boundary = Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))).toString('hex');
    const ct = headers['Content-Type'] ?? 'application/octet-stream';
    const partHead = (r: { start: number; end: number }) => `--${boundary}\r\nContent-Type: ${ct}\r\nContent-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`;
    const tail = `--${boundary}--`;
    let len = Buffer.byteLength(tail);
    for (const r of ranges) len += Buffer.byteLength(partHead(r)) + (r.end - r.start + 1) + 2;
    reply.code(206).headers({ ...headers, 'Content-Type': `multipart/byteranges;boundary=${boundary}`, 'Content-Length': String(len) });
    if (method === 'HEAD') return reply.send();
    async function* gen() {
      for (const r of ranges!) {
        yield Buffer.from(partHead(r));
        for await (const c of await open(r)) yield c as Buffer;
        yield Buffer.from('\r\n');
      }
      yield Buffer.from(tail);
    }
    return reply.send(Readable.from(gen(), { objectMode: false }));
  }

  /** Content-Length of the request (undefined when chunked); 411/413/400 as Swift answers. */
  private declaredLength(ctx: Ctx): number | undefined {
    const { req } = ctx;
    const cl = header(req, 'content-length');
    const te = header(req, 'transfer-encoding');
    if (te !== undefined && te.toLowerCase() !== 'chunked') throw new ApiError(501, 'Not Implemented');
    if (cl === undefined) {
      if (te === undefined) throw new ApiError(411, 'Missing Content-Length header.');
      return undefined;
    }
    if (!/^\d+$/.test(cl.trim())) throw new ApiError(400, 'Invalid Content-Length header value');
    const n = Number(cl.trim());
    if (n > this.store.maxObjectSize) throw new ApiError(413, 'Your request is too large.');
    return n;
  }

  /** Container and account quotas for adding `bytes` (one object) to a container. */
  private async checkQuotas(ctx: Ctx, container: string, bytes: number, replacing: boolean): Promise<void> {
    const info = await this.store.headContainer(ctx.t.account, container).catch((e: unknown) => (e instanceof NotFoundError ? null : Promise.reject(e)));
    if (!info) return;
    const qb = info.userMeta['quota-bytes'];
    const qc = info.userMeta['quota-count'];
    if (qb !== undefined && info.bytesUsed + bytes > Number(qb)) throw new ApiError(413, 'Upload exceeds quota.');
    if (qc !== undefined && !replacing && info.objectCount + 1 > Number(qc)) throw new ApiError(413, 'Upload exceeds quota.');
    const acct = await this.store.headAccount(ctx.t.account).catch(() => null);
    const qa = acct?.userMeta['quota-bytes'];
    if (qa !== undefined && acct!.bytesUsed + bytes > Number(qa)) throw new ApiError(413, 'Upload exceeds quota.');
  }

  private async currentMeta(a: string, c: string, o: string): Promise<ObjectMeta | null> {
    try {
      return await this.store.headObject(a, c, o);
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  /**
   * Object versioning before an overwrite: the current version is copied to
   * the versions container as `<len><name>/<timestamp>` (both modes).
   */
  private async archiveCurrent(ctx: Ctx, container: string, name: string): Promise<void> {
    const info = this.containerMeta(ctx, container);
    const loc = info?.sysMeta['versions-location'];
    if (!loc) return;
    const cur = await this.currentMeta(ctx.t.account, container, name);
    if (!cur) return;
    // A TempURL authorizes the versioning side effects of its own write, as in Swift.
    if (!ctx.caller.tempUrl) await this.authorizeWrite(ctx, loc);
    try {
      await this.store.copyObject(
        { account: ctx.t.account, container, name },
        { account: ctx.t.account, container: loc, name: versionedName(name, cur.timestamp) },
        {},
      );
    } catch (e) {
      if (e instanceof NotFoundError) {
        if (!this.containerMeta(ctx, loc)) throw new ApiError(412, `Versions container ${loc} does not exist`);
        return; // the object went away meanwhile: nothing to archive
      }
      throw e;
    }
  }

  private async putObject(ctx: Ctx): Promise<unknown> {
    const { req, reply, t, q } = ctx;
    const a = t.account;
    const cname = t.container!;
    const oname = t.object!;
    const copyFrom = header(req, 'x-copy-from');
    if (copyFrom !== undefined) {
      const cl = header(req, 'content-length');
      if (cl !== undefined && cl.trim() !== '0') throw new ApiError(400, 'Copy requests require a zero byte body');
      const src = splitCopyPath(copyFrom, 'X-Copy-From');
      const srcAccount = header(req, 'x-copy-from-account');
      if (srcAccount && fromHeader(srcAccount) !== a) throw new ApiError(403, 'Copying from another account is not supported');
      await this.authorizeRead(ctx, src.container, false);
      return this.copyInto(ctx, src, { container: cname, object: oname });
    }
    const length = this.declaredLength(ctx);
    if (q.get('multipart-manifest') === 'put') return this.putSlo(ctx, length);
    const userMeta = metaFromHeaders(req, 'object', false);
    const ctHeader = header(req, 'content-type');
    const detect = (header(req, 'x-detect-content-type') ?? '').toLowerCase() === 'true';
    const contentType = ctHeader && !detect ? fromHeader(ctHeader).replace(/;\s*swift_bytes=\d+/, '') : guessContentType(oname);
    const sysMeta: Record<string, string> = {};
    for (const h of ['content-disposition', 'content-encoding']) {
      const v = header(req, h);
      if (v !== undefined) sysMeta[h] = fromHeader(v);
    }
    const dlo = await this.dloManifest(ctx);
    if (dlo !== undefined) sysMeta['dlo'] = dlo;
    const deleteAt = deleteAtFrom(req);
    const etag = header(req, 'etag');
    const inm = header(req, 'if-none-match');
    if (inm !== undefined && inm.trim() !== '*') throw new ApiError(400, 'If-None-Match only supports *');
    const cur = this.containerMeta(ctx, cname);
    if (!cur) throw new NotFoundError(`Container ${cname} not found`);
    if (cur.userMeta['quota-bytes'] !== undefined || cur.userMeta['quota-count'] !== undefined || this.accountHasQuota(a)) {
      const existing = cur.userMeta['quota-count'] !== undefined ? await this.currentMeta(a, cname, oname) : null;
      await this.checkQuotas(ctx, cname, length ?? 0, existing !== null);
    }
    await this.archiveCurrent(ctx, cname, oname);
    ctx.bodyTouched = true;
    const res = await this.store.putObject(a, cname, oname, req.raw, {
      contentType,
      userMeta,
      sysMeta,
      ...(deleteAt !== undefined ? { deleteAt } : {}),
      ...(etag !== undefined ? { expectedEtag: etag } : {}),
      ...(length !== undefined ? { expectedSize: length } : {}),
      ...(inm !== undefined ? { ifNoneMatch: '*' as const } : {}),
    });
    return sendEmpty(reply, 201, { ETag: res.etag, 'Last-Modified': httpDate(res.lastModified), 'Content-Type': 'text/html; charset=UTF-8' });
  }

  private accountHasQuota(account: string): boolean {
    return this.accountMeta(account)?.userMeta['quota-bytes'] !== undefined;
  }

  /** An account's metadata, or null when it does not exist. */
  private accountMeta(account: string): AccountMeta | null {
    try {
      return this.store.accountMeta(account);
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  private async readBody(ctx: Ctx, max: number, what: string): Promise<Buffer> {
    ctx.bodyTouched = true;
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of ctx.req.raw) {
      n += (c as Buffer).length;
      if (n > max) throw new ApiError(413, `${what} is too large (max ${max} bytes)`);
      parts.push(c as Buffer);
    }
    return Buffer.concat(parts, n);
  }

  /** `PUT ?multipart-manifest=put`: validate every segment, then store the manifest. */
  private async putSlo(ctx: Ctx, length: number | undefined): Promise<unknown> {
    const { req, reply, t } = ctx;
    if (length !== undefined && length > SLO_MAX_MANIFEST_BYTES) throw new ApiError(413, `Manifest File > ${SLO_MAX_MANIFEST_BYTES} bytes`);
    const cur = this.containerMeta(ctx, t.container!);
    if (!cur) throw new NotFoundError(`Container ${t.container} not found`);
    const body = await this.readBody(ctx, SLO_MAX_MANIFEST_BYTES, 'Manifest');
    const built = await buildSloManifest(this.store, t.account, body, { authorizeRead: (c) => this.authorizeRead(ctx, c, false) });
    const want = header(req, 'etag');
    if (want !== undefined && normalizeEtag(want) !== built.etag) throw new ApiError(422, 'Etag mismatch');
    const ctHeader = header(req, 'content-type');
    const contentType = ctHeader ? fromHeader(ctHeader) : guessContentType(t.object!);
    const deleteAt = deleteAtFrom(req);
    await this.archiveCurrent(ctx, t.container!, t.object!);
    const res = await this.store.putObject(t.account, t.container!, t.object!, built.json, {
      contentType: `${stripSwiftBytes(contentType)};swift_bytes=${built.size}`,
      userMeta: metaFromHeaders(req, 'object', false),
      sysMeta: { slo: 'true', 'slo-etag': built.etag, 'slo-size': String(built.size) },
      ...(deleteAt !== undefined ? { deleteAt } : {}),
    });
    return sendEmpty(reply, 201, { ETag: `"${built.etag}"`, 'X-Manifest-Etag': res.etag, 'Last-Modified': httpDate(res.lastModified), 'Content-Type': 'text/html; charset=UTF-8' });
  }

  /** `X-Object-Manifest` (a DLO's `container/prefix`), checked and readable by the caller; undefined when absent. */
  private async dloManifest(ctx: Ctx): Promise<string | undefined> {
    const manifest = header(ctx.req, 'x-object-manifest');
    if (manifest === undefined) return undefined;
    let m: string;
    try {
      m = decodeURIComponent(fromHeader(manifest));
    } catch {
      throw new ApiError(400, 'X-Object-Manifest must be in the format container/prefix');
    }
    const { container: segC } = splitDloManifest(m);
    await this.authorizeRead(ctx, segC, true);
    return m.replace(/^\/+/, '');
  }

  private async postObject(ctx: Ctx): Promise<unknown> {
    const { req, reply, t } = ctx;
    const ct = header(req, 'content-type');
    const deleteAt = deleteAtFrom(req);
    const sysMeta: Record<string, string> = {};
    for (const h of ['content-disposition', 'content-encoding']) {
      const v = header(req, h);
      if (v !== undefined) sysMeta[h] = fromHeader(v);
    }
    // A POST may turn an object into a DLO (or point its manifest elsewhere), as Swift allows.
    const dlo = await this.dloManifest(ctx);
    if (dlo !== undefined) sysMeta['dlo'] = dlo;
    let contentType = ct ? stripSwiftBytes(fromHeader(ct)) : undefined;
    if (contentType !== undefined) {
      const cur = await this.store.headObject(t.account, t.container!, t.object!);
      if (largeKind(cur) === 'slo') contentType += `;swift_bytes=${cur.sysMeta['slo-size']}`;
    }
    await this.store.postObjectMeta(t.account, t.container!, t.object!, {
      userMeta: metaFromHeaders(req, 'object', false),
      ...(contentType !== undefined ? { contentType } : {}),
      deleteAt: deleteAt ?? null,
      sysMeta,
    });
    return sendEmpty(reply, 202, { 'Content-Type': 'text/html; charset=UTF-8' });
  }

  private async deleteObject(ctx: Ctx): Promise<unknown> {
    const { reply, t, q } = ctx;
    const a = t.account;
    const cname = t.container!;
    const oname = t.object!;
    if (q.get('multipart-manifest') === 'delete') {
      const meta = await this.store.headObject(a, cname, oname);
      if (largeKind(meta) === 'slo') {
        const segs = await readSloManifest(this.store, a, cname, oname);
        const paths = segs.map((s) => s.name);
        const result = await this.deletePaths(ctx, paths, true);
        await this.store.deleteObject(a, cname, oname);
        result.deleted++;
        return this.sendBulkResult(ctx, { 'Number Deleted': result.deleted, 'Number Not Found': result.notFound, Errors: result.errors }, '200 OK');
      }
    }
    const info = this.containerMeta(ctx, cname);
    const loc = info?.sysMeta['versions-location'];
    if (loc && info?.sysMeta['versions-mode'] === 'history') {
      await this.archiveCurrent(ctx, cname, oname);
      await this.store.deleteObject(a, cname, oname);
      return sendEmpty(reply, 204, { 'Content-Type': 'text/html; charset=UTF-8' });
    }
    if (loc) return this.deleteRestoringVersion(ctx, loc);
    await this.store.deleteObject(a, cname, oname);
    return sendEmpty(reply, 204, { 'Content-Type': 'text/html; charset=UTF-8' });
  }

  /** Stack mode: the newest archived version (if any) replaces the deleted object. */
  private async deleteRestoringVersion(ctx: Ctx, loc: string): Promise<unknown> {
    const { t, reply } = ctx;
    const a = t.account;
    if (!ctx.caller.tempUrl) await this.authorizeWrite(ctx, loc);
    let newest: ObjectEntry | undefined;
    try {
      const { entries } = await this.store.listContainer(a, loc, { prefix: versionedPrefix(t.object!), reverse: true, limit: 1 });
      newest = entries.find((e): e is ObjectEntry => 'etag' in e);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    if (!newest) {
      await this.store.deleteObject(a, t.container!, t.object!);
      return sendEmpty(reply, 204, { 'Content-Type': 'text/html; charset=UTF-8' });
    }
    await this.store.copyObject({ account: a, container: loc, name: newest.name }, { account: a, container: t.container!, name: t.object! }, {});
    await this.store.deleteObject(a, loc, newest.name).catch((e: unknown) => {
      if (!(e instanceof NotFoundError)) throw e;
    });
    return sendEmpty(reply, 204, { 'Content-Type': 'text/html; charset=UTF-8' });
  }

  /** COPY / PUT with X-Copy-From: a large source is copied as its contents unless `?multipart-manifest=get`. */
  private async copyInto(ctx: Ctx, src: { container: string; object: string }, dst: { container: string; object: string }): Promise<unknown> {
    const { req, reply, t, q } = ctx;
    const a = t.account;
    const srcMeta = await this.store.headObject(a, src.container, src.object);
    const cond = conditionsFrom(req);
    const userMeta = metaFromHeaders(req, 'object', false);
    const fresh = (header(req, 'x-fresh-metadata') ?? '').toLowerCase() === 'true';
    const ct = header(req, 'content-type');
    const deleteAt = deleteAtFrom(req);
    const kind = largeKind(srcMeta);
    const dstInfo = this.containerMeta(ctx, dst.container);
    if (!dstInfo) throw new NotFoundError(`Container ${dst.container} not found`);
    const lo = kind && q.get('multipart-manifest') !== 'get' ? await openLargeObject(this.store, a, srcMeta, { authorizeRead: (c) => this.authorizeRead(ctx, c, false) }) : null;
    const size = lo ? lo.plan.size : srcMeta.size;
    if (size > this.store.maxObjectSize) throw new ApiError(413, 'Your request is too large.');
    await this.checkQuotas(ctx, dst.container, size, false);
    await this.archiveCurrent(ctx, dst.container, dst.object);
    let res: { etag: string; lastModified: number };
    if (lo) {
      if (cond) checkConditions({ ...srcMeta, etag: normalizeEtag(lo.plan.etag), size }, cond);
      const keepSys: Record<string, string> = {};
      for (const k of ['content-disposition', 'content-encoding']) if (srcMeta.sysMeta[k]) keepSys[k] = srcMeta.sysMeta[k];
      res = await this.store.putObject(a, dst.container, dst.object, lo.stream(), {
        contentType: ct ? fromHeader(ct) : stripSwiftBytes(srcMeta.contentType),
        userMeta: fresh ? userMeta : { ...srcMeta.userMeta, ...userMeta },
        sysMeta: keepSys,
        expectedSize: size,
        ...(deleteAt !== undefined ? { deleteAt } : {}),
      });
    } else {
      res = await this.store.copyObject({ account: a, container: src.container, name: src.object }, { account: a, container: dst.container, name: dst.object }, {
        userMeta,
        freshMetadata: fresh,
        ...(ct ? { contentType: fromHeader(ct) } : {}),
        ...(deleteAt !== undefined ? { deleteAt } : {}),
        ...(cond ? { sourceConditions: cond } : {}),
      });
    }
    // As Swift's copy middleware: the response carries the new object's metadata.
    return sendEmpty(reply, 201, {
      ...metaHeaders('Object', fresh ? userMeta : { ...srcMeta.userMeta, ...userMeta }),
      ETag: res.etag,
      'Last-Modified': httpDate(res.lastModified),
      'X-Copied-From': toHeader(encodeURI(`${src.container}/${src.object}`)),
      'X-Copied-From-Account': toHeader(encodeURI(a)),
      'X-Copied-From-Last-Modified': httpDate(srcMeta.lastModified),
      'Content-Type': 'text/html; charset=UTF-8',
    });
  }

  // ---------------------------------------------------------------- bulk operations

  private async deletePaths(ctx: Ctx, paths: string[], objectsOnly: boolean): Promise<{ deleted: number; notFound: number; errors: Array<[string, string]> }> {
    const a = ctx.t.account;
    let deleted = 0;
    let notFound = 0;
    const errors: Array<[string, string]> = [];
    for (const p of paths) {
      if (errors.length >= BULK_MAX_FAILED) break;
      const s = p.replace(/^\/+/, '');
      const i = s.indexOf('/');
      const container = i < 0 ? s : s.slice(0, i);
      const object = i < 0 ? '' : s.slice(i + 1);
      try {
        if (!container) throw new ApiError(400, 'Invalid container name');
        if (object) {
          await this.authorizeWrite(ctx, container);
          await this.store.deleteObject(a, container, object);
        } else {
          if (objectsOnly) throw new ApiError(400, 'Invalid path');
          if (!owned(ctx.caller)) this.deny(ctx.caller);
          await this.store.deleteContainer(a, container);
        }
        deleted++;
      } catch (e) {
        if (e instanceof NotFoundError) notFound++;
        else if (e instanceof ApiError) errors.push([p, `${e.status} ${STATUS_TEXT[e.status] ?? 'Error'}`]);
        else throw e;
      }
    }
    return { deleted, notFound, errors };
  }

  private sendBulkResult(ctx: Ctx, fields: Record<string, unknown> & { Errors: Array<[string, string]> }, okStatus: string): FastifyReply {
    const status = fields.Errors.length ? (fields.Errors.every((e) => e[1].startsWith('401')) ? '401 Unauthorized' : fields.Errors.every((e) => e[1].startsWith('403')) ? '403 Forbidden' : '400 Bad Request') : okStatus;
    const doc = { ...fields, 'Response Status': status, 'Response Body': '' };
    const format = listingFormat(ctx.q, header(ctx.req, 'accept'));
    let body: string;
    if (format === 'json') body = JSON.stringify(doc);
    else if (format === 'xml') {
      const esc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      const tag = (k: string) => k.toLowerCase().replace(/ /g, '_');
      const parts = Object.entries(doc).map(([k, v]) =>
        k === 'Errors'
          ? `<errors>${(v as Array<[string, string]>).map(([n, s]) => `<object><name>${esc(n)}</name><status>${esc(s)}</status></object>`).join('')}</errors>`
          : `<${tag(k)}>${esc(String(v))}</${tag(k)}>`,
      );
      body = `<?xml version="1.0" encoding="UTF-8"?>\n<delete>${parts.join('')}</delete>`;
    } else {
      body = Object.entries(doc)
        .filter(([k]) => k !== 'Errors')
        .map(([k, v]) => `${k}: ${String(v)}\n`)
        .join('') + `Errors:\n${fields.Errors.map(([n, s]) => `${n}, ${s}\n`).join('')}`;
    }
    ctx.reply.code(200).header('Content-Type', LISTING_TYPES[format]).header('Content-Length', String(Buffer.byteLength(body)));
    return ctx.reply.send(body);
  }

  /** `POST|DELETE /v1/AUTH_x?bulk-delete`: newline-separated, URL-encoded `/container[/object]` paths. */
  private async bulkDelete(ctx: Ctx): Promise<unknown> {
    const c = ctx.caller;
    if (!c.auth) this.deny(c);
    const body = await this.readBody(ctx, BULK_MAX_DELETES * (LIMITS.maxObjectNameBytes + LIMITS.maxContainerNameBytes + 8), 'Bulk delete request');
    const lines = body.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    if (lines.length > BULK_MAX_DELETES) throw new ApiError(413, `Maximum Bulk Deletes: ${BULK_MAX_DELETES} per request`);
    const paths: string[] = [];
    const errors: Array<[string, string]> = [];
    for (const l of lines) {
      try {
        paths.push(decodeURIComponent(l));
      } catch {
        errors.push([l, '412 Precondition Failed']);
      }
    }
    // Objects before containers, so "delete c/o and c" in one request works.
    paths.sort((x, y) => Number(!x.replace(/^\/+/, '').includes('/')) - Number(!y.replace(/^\/+/, '').includes('/')));
    const r = await this.deletePaths(ctx, paths, false);
    return this.sendBulkResult(ctx, { 'Number Deleted': r.deleted, 'Number Not Found': r.notFound, Errors: [...errors, ...r.errors] }, '200 OK');
  }

  /** `PUT /v1/AUTH_x[/container[/prefix]]?extract-archive=tar|tar.gz`: each regular file becomes an object. */
  private async extractArchive(ctx: Ctx): Promise<unknown> {
    const { req, t, q } = ctx;
    const fmt = q.get('extract-archive');
    if (fmt !== 'tar' && fmt !== 'tar.gz' && fmt !== 'tgz') throw new ApiError(400, 'Unsupported archive format');
    const c = ctx.caller;
    if (!c.auth) this.deny(c);
    const base = t.container;
    if (base === undefined && !owned(c)) this.deny(c);
    if (base !== undefined) await this.authorizeWrite(ctx, base);
    this.declaredLength(ctx);
    ctx.bodyTouched = true;
    const input: AsyncIterable<unknown> = fmt === 'tar' ? req.raw : req.raw.pipe(createGunzip());
    let created = 0;
    const errors: Array<[string, string]> = [];
    const containers = new Set<string>();
    for await (const entry of readTar(input)) {
      if (entry.type !== '0' && entry.type !== '7') continue; // directories, links, devices: skipped as in Swift
      let path = entry.name.replace(/^\.?\/+/, '').replace(/^\.\//, '');
      if (!path) continue;
      let container: string;
      let object: string;
      if (base !== undefined) {
        container = base;
        object = t.object ? `${t.object.replace(/\/+$/, '')}/${path}` : path;
      } else {
        const i = path.indexOf('/');
        if (i <= 0 || i === path.length - 1) {
          errors.push([path, '400 Bad Request']);
          continue;
        }
        container = path.slice(0, i);
        object = path.slice(i + 1);
        path = `${container}/${object}`;
      }
      try {
        if (!containers.has(container)) {
          if (containers.size >= EXTRACT_MAX_CONTAINERS) throw new ApiError(400, 'More than the maximum number of containers');
          if (!this.containerMeta(ctx, container)) {
            if (!owned(c)) this.deny(c);
            await this.store.putContainer(t.account, container);
          }
          containers.add(container);
        }
        if (base === undefined && !owned(c)) await this.authorizeWrite(ctx, container);
        await this.checkQuotas(ctx, container, entry.size, false);
        await this.store.putObject(t.account, container, object, entry.body, { contentType: guessContentType(object), expectedSize: entry.size });
        created++;
      } catch (e) {
        entry.body.resume();
        if (!(e instanceof ApiError)) throw e;
        errors.push([`/${container}/${object}`, `${e.status} ${STATUS_TEXT[e.status] ?? 'Error'}`]);
        if (errors.length >= EXTRACT_MAX_FAILED) break;
      }
    }
    return this.sendBulkResult(ctx, { 'Number Files Created': created, Errors: errors }, '201 Created');
  }
}

/** Waits for the first chunk of `s` (so its errors surface before a response starts), then streams it all. */
async function primed(s: Readable): Promise<Readable> {
  const it = s[Symbol.asyncIterator]();
  let first: IteratorResult<unknown>;
  try {
    first = await it.next();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 412 || e.status === 404)) throw new ApiError(409, `A segment of the large object is missing or changed: ${e.message}`);
    throw e;
  }
  async function* all() {
    try {
      if (first.done) return;
      yield first.value as Buffer;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value as Buffer;
      }
    } finally {
      await it.return?.();
    }
  }
  return Readable.from(all(), { objectMode: false });
}

/**
 * SLO manifests are stored with `;swift_bytes=<total size>` on their content
 * type (as Swift's container rows carry it), so listings show the large
 * object's size; the parameter never reaches clients.
 */
function listingOverride(e: ObjectEntry): Partial<{ bytes: number; hash: string; contentType: string }> {
  const m = /;\s*swift_bytes=(\d+)/.exec(e.contentType);
  return m ? { bytes: Number(m[1]), contentType: stripSwiftBytes(e.contentType) } : {};
}

export function stripSwiftBytes(ct: string): string {
  return ct.replace(/;\s*swift_bytes=\d+/, '');
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Request Entity Too Large',
  422: 'Unprocessable Entity',
  499: 'Client Disconnect',
  503: 'Service Unavailable',
};

export { PreconditionFailedError };
