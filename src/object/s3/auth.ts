import type { IncomingHttpHeaders } from 'node:http';
import type { AuthContext } from '../../core/context.js';
import { canonicalRequest, HmacSha256Key, parseAuthorization, type ParsedAuthorization, safeEqualHex, signingKey, stringToSign, awsEncode, type SigV4Input } from '../../core/sigv4.js';
import type { CredentialSource, S3Principal } from './credentials.js';
import { EMPTY_SHA256 } from './body.js';
import { S3Error } from './errors.js';

/** How the request body is protected, from `x-amz-content-sha256`. */
export type PayloadMode =
  | { kind: 'unsigned' }
  /** The whole body must hash to this (verified while it streams). */
  | { kind: 'sha256'; hash: string }
  /**
   * `aws-chunked` body. `signed`: STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER),
   * each chunk signed over the previous signature (seed: the request's).
   */
  | { kind: 'chunked'; signed: ChunkSigning | null; trailer: boolean };

/** What a chunk signature is computed with. */
export interface ChunkSigning {
  key: Buffer;
  seed: string;
  amzDate: string;
  /** `date/region/s3/aws4_request` */
  scope: string;
}

export interface Authenticated {
  principal: S3Principal;
  ctx: AuthContext;
  payload: PayloadMode;
}

export interface AuthRequest {
  method: string;
  /** Path exactly as sent (still percent-encoded). */
  rawPath: string;
  /** Query parameters in order, decoded. */
  query: [string, string][];
  headers: IncomingHttpHeaders;
}

/** How far a request's X-Amz-Date may be from our clock (as S3: 15 minutes). */
const MAX_SKEW_MS = 15 * 60 * 1000;
/** Longest presigned URL lifetime S3 accepts: 7 days. */
const MAX_PRESIGN_SECONDS = 604800;

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The last X-Amz-Date parsed and its time: requests of the same second carry the same one. */
let lastAmzDate = '';
let lastAmzTime = 0;

function parseAmzDate(s: string | undefined): number | null {
  if (s !== undefined && s === lastAmzDate) return lastAmzTime;
  const t = parseAmzDateOnce(s);
  if (t !== null) {
    lastAmzDate = s!;
    lastAmzTime = t;
  }
  return t;
}

function parseAmzDateOnce(s: string | undefined): number | null {
  const m = s ? AMZ_DATE.exec(s) : null;
  if (!m) return null;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isNaN(t) ? null : t;
}

const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v.join(',') : v;
};

/**
 * Verifies AWS Signature Version 4 on an S3 request — the Authorization
 * header form or the presigned-query form — against the EC2 credential the
 * access key names, and returns who is calling and how the body is signed.
 *
 * The region in the credential scope must be `region` (the cloud's) or
 * `us-east-1`, the default of clients with no region configured; the
 * service must be `s3`. Errors are S3's: unknown key → InvalidAccessKeyId,
 * wrong signature → SignatureDoesNotMatch, stale header date →
 * RequestTimeTooSkewed, expired presigned URL → AccessDenied.
 *
 * @example
 *   const who = await authenticate(creds, 'RegionOne', { method, rawPath, query, headers });
 *   who.ctx.projectId // the credential's project
 */
export class SigV4Verifier {
  private readonly keys = new Map<string, HmacSha256Key>();
  constructor(
    private readonly creds: CredentialSource,
    private readonly region: string,
  ) {}

  /** The last signing key used, checked before the map (a client signs with one key all day). */
  private last: { secret: string; date: string; region: string; service: string; key: HmacSha256Key } | null = null;

  private key(secret: string, scope: { date: string; region: string; service: string }): HmacSha256Key {
    const l = this.last;
    if (l !== null && l.secret === secret && l.date === scope.date && l.region === scope.region && l.service === scope.service) return l.key;
    const k = this.keyOf(secret, scope);
    this.last = { secret, date: scope.date, region: scope.region, service: scope.service, key: k };
    return k;
  }

  private keyOf(secret: string, scope: { date: string; region: string; service: string }): HmacSha256Key {
    const id = `${secret}\0${scope.date}\0${scope.region}\0${scope.service}`;
    let k = this.keys.get(id);
    if (!k) {
      if (this.keys.size > 4096) this.keys.clear();
      k = new HmacSha256Key(signingKey(secret, scope));
      this.keys.set(id, k);
    }
    return k;
  }

  /**
   * What precedes `Signature=` in Authorization headers already parsed: a
   * client's header changes only in its signature from one request to the
   * next (and in its scope date once a day), so the parse is remembered
   * (the signature is still checked on every request).
   */
  private readonly authPrefixes = new Map<string, Omit<ParsedAuthorization, 'signature'>>();

  /** `parseAuthorization`, remembering everything but the signature (see `authPrefixes`). */
  private parseAuth(h: string): ParsedAuthorization | null {
    const at = h.lastIndexOf('Signature=');
    if (at <= 0 || h.indexOf(',', at) >= 0) return parseAuthorization(h);
    const signature = h.slice(at + 'Signature='.length).trim();
    const prefix = h.slice(0, at);
    const hit = this.authPrefixes.get(prefix);
    if (hit !== undefined && signature !== '') return { access: hit.access, scope: hit.scope, signedHeaders: hit.signedHeaders, signature };
    const parsed = parseAuthorization(h);
    // Remembered only when the full parse read this very signature as the last
    // part, and only for a header of a usual size (this memory is bounded).
    if (parsed !== null && parsed.signature === signature && prefix.length <= 512) {
      if (this.authPrefixes.size >= 1024) this.authPrefixes.clear();
      this.authPrefixes.set(prefix, { access: parsed.access, scope: parsed.scope, signedHeaders: parsed.signedHeaders });
    }
    return parsed;
  }

  /** Synchronous when the access key's credential is already known (the hot path: no promise per request). */
  authenticate(req: AuthRequest, now = Date.now()): Authenticated | Promise<Authenticated> {
    const auth = header(req.headers, 'authorization');
    if (auth !== undefined) {
      if (req.query.some(([k]) => k === 'X-Amz-Algorithm')) throw new S3Error('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified');
      return this.headerAuth(req, auth, now);
    }
    const q = new Map(req.query);
    if (q.has('X-Amz-Algorithm') || q.has('X-Amz-Credential') || q.has('X-Amz-Signature')) return this.queryAuth(req, q, now);
    if (q.has('AWSAccessKeyId') || q.has('Signature')) {
      throw new S3Error('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
    }
    throw new S3Error('AccessDenied', 'Access Denied');
  }

  private checkScope(scope: { date: string; region: string; service: string }, amzDate: string, code: string): void {
    if (scope.service !== 's3') throw new S3Error(code, `The credential scope names service '${scope.service}'; expecting 's3'`);
    if (scope.region !== this.region && scope.region !== 'us-east-1') {
      throw new S3Error(code, `The authorization header is malformed; the region '${scope.region}' is wrong; expecting '${this.region}'`, { Region: this.region });
    }
    if (!/^\d{8}$/.test(scope.date) || scope.date !== amzDate.slice(0, 8)) {
      throw new S3Error(code, `The credential scope date ${scope.date} does not match the request date ${amzDate}`);
    }
  }

  private headerAuth(req: AuthRequest, auth: string, now: number): Authenticated | Promise<Authenticated> {
    if (/^AWS\s/.test(auth)) {
      throw new S3Error('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
    }
    const parsed = this.parseAuth(auth);
    if (!parsed) throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed; it must be AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…');
    const amzDate = header(req.headers, 'x-amz-date') ?? '';
    let t = parseAmzDate(amzDate);
    let dateForSig = amzDate;
    if (t === null) {
      // Date header instead of X-Amz-Date (allowed by SigV4, rare).
      const d = header(req.headers, 'date');
      const dt = d ? Date.parse(d) : NaN;
      if (Number.isNaN(dt)) throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
      t = dt;
      dateForSig = new Date(dt).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    }
    this.checkScope(parsed.scope, dateForSig, 'AuthorizationHeaderMalformed');
    if (!parsed.signedHeaders.includes('host')) throw new S3Error('AuthorizationHeaderMalformed', 'The host header must be signed');
    if (Math.abs(now - t) > MAX_SKEW_MS) {
      throw new S3Error('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
        RequestTime: amzDate,
        ServerTime: new Date(now).toISOString(),
        MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS),
      });
    }
    const payloadHash = header(req.headers, 'x-amz-content-sha256');
    if (payloadHash === undefined) throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    const payload = payloadMode(payloadHash);
    const known = this.creds.cached?.(parsed.access);
    if (known !== undefined) return this.finishHeaderAuth(req, parsed, dateForSig, payloadHash, payload, known);
    return this.creds.lookup(parsed.access).then((p) => this.finishHeaderAuth(req, parsed, dateForSig, payloadHash, payload, p));
  }

  private finishHeaderAuth(
    req: AuthRequest,
    parsed: ParsedAuthorization,
    dateForSig: string,
    payloadHash: string,
    payload: PayloadMode,
    principal: S3Principal | null,
  ): Authenticated {
    if (!principal) throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', { AWSAccessKeyId: parsed.access });
    const key = this.key(principal.secret, parsed.scope);
    this.verify(req, key, {
      signedHeaders: parsed.signedHeaders, payloadHash, amzDate: dateForSig, scope: parsed.scope, signature: parsed.signature, access: parsed.access,
    });
    if (payload.kind === 'chunked' && payload.signed) {
      payload.signed = { key: key.key, seed: parsed.signature, amzDate: dateForSig, scope: `${parsed.scope.date}/${parsed.scope.region}/s3/aws4_request` };
    }
    if (!principal.ctx) throw new S3Error('AccessDenied', 'Access Denied: the credential\'s user has no role on its project');
    return { principal, ctx: principal.ctx, payload };
  }

  private async queryAuth(req: AuthRequest, q: Map<string, string>, now: number): Promise<Authenticated> {
    const bad = (m: string) => new S3Error('AuthorizationQueryParametersError', m);
    if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') throw bad('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
    const cred = (q.get('X-Amz-Credential') ?? '').split('/');
    const amzDate = q.get('X-Amz-Date') ?? '';
    const expires = q.get('X-Amz-Expires');
    const signed = q.get('X-Amz-SignedHeaders');
    const signature = q.get('X-Amz-Signature');
    if (cred.length !== 5 || cred[4] !== 'aws4_request' || !cred[0]) {
      throw bad('Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
    }
    const t = parseAmzDate(amzDate);
    if (t === null) throw bad('X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
    if (expires === undefined || !/^\d+$/.test(expires)) throw bad('X-Amz-Expires should be a number');
    const seconds = Number(expires);
    if (seconds < 1 || seconds > MAX_PRESIGN_SECONDS) throw bad('X-Amz-Expires must be between 1 and 604800 seconds');
    if (!signed || !signature) throw bad('Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
    const scope = { date: cred[1]!, region: cred[2]!, service: cred[3]! };
    this.checkScope(scope, amzDate, 'AuthorizationQueryParametersError');
    if (now > t + seconds * 1000) throw new S3Error('AccessDenied', 'Request has expired', { Expires: new Date(t + seconds * 1000).toISOString(), ServerTime: new Date(now).toISOString() });
    if (t > now + MAX_SKEW_MS) throw new S3Error('AccessDenied', 'Request is not valid yet');
    const signedHeaders = signed.split(';');
    if (!signedHeaders.includes('host')) throw bad('The host header must be signed');
    const payloadHash = q.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
    const payload = payloadMode(payloadHash);
    if (payload.kind === 'chunked') throw bad('Streaming payloads cannot be presigned');
    const principal = await this.creds.lookup(cred[0]);
    if (!principal) throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', { AWSAccessKeyId: cred[0] });
    this.verify(req, this.key(principal.secret, scope), { signedHeaders, payloadHash, amzDate, scope, signature, access: cred[0] });
    if (!principal.ctx) throw new S3Error('AccessDenied', 'Access Denied: the credential\'s user has no role on its project');
    return { principal, ctx: principal.ctx, payload };
  }

  /**
   * Recomputes the signature. The canonical URI is the path as sent; if that
   * does not match, the path re-encoded the SigV4 way (clients may leave
   * characters such as `!*'()` unescaped on the wire but escape them when
   * signing).
   */
  private verify(
    req: AuthRequest,
    key: HmacSha256Key,
    s: { signedHeaders: string[]; payloadHash: string; amzDate: string; scope: { date: string; region: string; service: string }; signature: string; access: string },
  ): void {
    const input: SigV4Input = {
      method: req.method, path: req.rawPath, query: req.query, headers: req.headers, signedHeaders: s.signedHeaders,
      payloadHash: s.payloadHash, amzDate: s.amzDate, scope: s.scope, service: 's3',
    };
    const matches = () => safeEqualHex(key.hex(stringToSign(input)), s.signature);
    if (matches()) return;
    const normalized = req.rawPath.split('/').map((seg) => awsEncode(safeDecode(seg))).join('/');
    if (normalized !== req.rawPath) {
      input.path = normalized;
      const ok = matches();
      input.path = req.rawPath;
      if (ok) return;
    }
    throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {
      AWSAccessKeyId: s.access,
      StringToSign: stringToSign(input),
      CanonicalRequest: canonicalRequest(input),
    });
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** 64 lower-case hex digits (a loop, not a regex: this runs on nearly every S3 request). */
function isSha256Hex(v: string): boolean {
  if (v.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = v.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

function payloadMode(v: string): PayloadMode {
  if (v === EMPTY_SHA256) return { kind: 'sha256', hash: v };
  switch (v) {
    case 'UNSIGNED-PAYLOAD':
      return { kind: 'unsigned' };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD':
      return { kind: 'chunked', signed: { key: Buffer.alloc(0), seed: '', amzDate: '', scope: '' }, trailer: false };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER':
      return { kind: 'chunked', signed: { key: Buffer.alloc(0), seed: '', amzDate: '', scope: '' }, trailer: true };
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER':
      return { kind: 'chunked', signed: null, trailer: true };
    default:
      if (isSha256Hex(v)) return { kind: 'sha256', hash: v };
      throw new S3Error('InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.');
  }
}
