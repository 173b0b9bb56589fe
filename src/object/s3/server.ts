import { randomBytes } from 'node:crypto';

/** Request ids: 16 upper-case hex digits, a random per-process prefix and a counter (no CSPRNG call per request). */
const ID_PREFIX = randomBytes(4).toString('hex').toUpperCase();
let idCounter = 0;
const nextRequestId = (): string => ID_PREFIX + ((idCounter = (idCounter + 1) >>> 0).toString(16).toUpperCase().padStart(8, '0'));
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../core/log.js';
import type { PolicyEngine } from '../../core/policy.js';
import type { ObjectStore } from '../store/index.js';
import { SigV4Verifier } from './auth.js';
import { createBucket, deleteBucket, getBucketLocation, headBucket, listBuckets, listObjects } from './buckets.js';
import { accountOf, checkBucketName, type S3Env } from './common.js';
import type { CredentialSource } from './credentials.js';
import { S3Error, fromStoreError } from './errors.js';
import { abortUpload, completeUpload, initiateUpload, listParts, listUploads, uploadPart } from './multipart.js';
import { copyObject, deleteObject, deleteObjects, getObject, putObject } from './objects.js';
import { bucketFromHost, locate, parseQuery, type S3Request } from './request.js';
import { sendError } from './respond.js';

export interface S3ServerOptions {
  store: ObjectStore;
  credentials: CredentialSource;
  policy: PolicyEngine;
  /** The cloud's region: GetBucketLocation, x-amz-bucket-region, the accepted SigV4 scope. */
  region: string;
  log: Logger;
  /**
   * Host names the API is reached by; `<bucket>.<name>` is virtual-host
   * style. `localhost` is always included.
   */
  hostNames?: string[];
}

/** Bucket sub-resources not implemented: refused with 501 instead of being mistaken for a listing. */
const UNSUPPORTED_SUBRESOURCES = [
  'accelerate', 'acl', 'analytics', 'cors', 'encryption', 'intelligent-tiering', 'inventory', 'lifecycle', 'logging', 'metrics',
  'notification', 'object-lock', 'ownershipControls', 'policy', 'policyStatus', 'publicAccessBlock', 'replication', 'requestPayment',
  'restore', 'retention', 'legal-hold', 'select', 'tagging', 'torrent', 'versioning', 'versions', 'website', 'attributes',
];

/**
 * The S3 REST API on its own listener (`--s3-listen`), over the object
 * storage engine. Plain `node:http`: request bodies stream straight into
 * the engine and object bodies straight out of it.
 */
export class S3Server {
  private readonly server: Server;
  private readonly env: S3Env;
  private readonly verifier: SigV4Verifier;
  private readonly hostNames: string[];
  private readonly hostBuckets = new Map<string, string | null>();

  constructor(private readonly opts: S3ServerOptions) {
    this.env = { store: opts.store, policy: opts.policy, region: opts.region, log: opts.log };
    this.verifier = new SigV4Verifier(opts.credentials, opts.region);
    this.hostNames = [...new Set([...(opts.hostNames ?? []), 'localhost'].map((h) => h.toLowerCase()).filter(Boolean))];
    this.server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, (req, res) => {
      void this.handle(req, res, false);
    });
    // Expect: 100-continue: the client waits for the go-ahead, which is given
    // only once the request is authenticated, so a refused upload's body is
    // never sent.
    this.server.on('checkContinue', (req, res) => {
      void this.handle(req, res, true);
    });
  }

  /** Starts listening; resolves with the bound port. */
  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  /** The bound port (after `listen`). */
  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  /**
   * Stops accepting connections and closes idle ones; requests in flight get
   * `graceMs` to finish before their connections are cut (an upload cut
   * short is never committed by the engine).
   */
  async close(graceMs = 10_000): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => this.server.closeAllConnections(), graceMs);
      this.server.close(() => {
        clearTimeout(t);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    const id = nextRequestId();
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const rawPath = qi < 0 ? url : url.slice(0, qi);
    let resource = rawPath;
    const head = method === 'HEAD';
    try {
      const rawQuery = parseQuery(qi < 0 ? '' : url.slice(qi + 1));
      const hostBucket = this.bucketOfHost(req.headers.host);
      const { bucket, key } = locate(rawPath, hostBucket);
      resource = `/${bucket ?? ''}${key !== null ? `/${key}` : ''}`;
      let auth = this.verifier.authenticate({ method, rawPath, query: rawQuery, headers: req.headers });
      if (auth instanceof Promise) auth = await auth;
      if (bucket !== null) checkBucketName(bucket);
      if (expectContinue) res.writeContinue();
      const r: S3Request = {
        req, res, id, method, bucket, key, auth, resource,
        query: new Map(rawQuery), account: accountOf(auth.ctx.projectId!), authorized: false,
      };
      await this.dispatch(r);
      // Fail closed, mechanically: every operation must have run its policy check.
      if (!r.authorized) this.opts.log.error({ requestId: id, method, url }, 's3: BUG: request handled without a policy check');
    } catch (e) {
      let err = fromStoreError(e);
      if (!err) {
        this.opts.log.error({ err: e, requestId: id, method, url }, 's3: request failed');
        err = new S3Error('InternalError', 'We encountered an internal error. Please try again.');
      }
      this.finishBody(req, res);
      sendError(res, id, err, resource, head);
    }
    this.finishBody(req, res);
  }

  /** `bucketFromHost`, remembered per Host header value (clients send the same few). */
  private bucketOfHost(host: string | undefined): string | null {
    if (host === undefined) return null;
    let b = this.hostBuckets.get(host);
    if (b === undefined) {
      b = bucketFromHost(host, this.hostNames);
      if (this.hostBuckets.size >= 1024) this.hostBuckets.clear();
      this.hostBuckets.set(host, b);
    }
    return b;
  }

  /**
   * A body the handler did not read (an error before it, or a GET with a
   * body): a small one is drained so the connection can be reused, a large
   * one closes the connection after the response.
   */
  private finishBody(req: IncomingMessage, res: ServerResponse): void {
    if (req.complete || req.readableEnded || req.destroyed) return;
    const len = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(len) && len <= 1024 * 1024) {
      req.unpipe();
      req.resume();
      return;
    }
    if (!res.headersSent) res.setHeader('connection', 'close');
    else res.once('finish', () => req.destroy());
  }

  private async dispatch(r: S3Request): Promise<void> {
    const q = r.query;
    const env = this.env;
    const m = r.method;
    if (r.bucket === null) {
      if (m === 'GET') return listBuckets(env, r);
      throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
    }
    const unsupported = q.size === 0 ? undefined : UNSUPPORTED_SUBRESOURCES.find((s) => q.has(s));
    if (unsupported) throw new S3Error('NotImplemented', `The ${unsupported} subresource is not implemented.`);
    if (r.key === null) {
      switch (m) {
        case 'PUT':
          return createBucket(env, r);
        case 'HEAD':
          return headBucket(env, r);
        case 'DELETE':
          return deleteBucket(env, r);
        case 'GET':
          if (q.has('location')) return getBucketLocation(env, r);
          if (q.has('uploads')) return listUploads(env, r);
          return listObjects(env, r);
        case 'POST':
          if (q.has('delete')) return deleteObjects(env, r);
          break;
      }
      throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
    }
    switch (m) {
      case 'PUT':
        if (q.has('uploadId') || q.has('partNumber')) return uploadPart(env, r);
        if (r.req.headers['x-amz-copy-source'] !== undefined) return copyObject(env, r);
        return putObject(env, r);
      case 'GET':
        if (q.has('uploadId')) return listParts(env, r);
        return getObject(env, r, false);
      case 'HEAD':
        return getObject(env, r, true);
      case 'DELETE':
        if (q.has('uploadId')) return abortUpload(env, r);
        return deleteObject(env, r);
      case 'POST':
        if (q.has('uploads')) return initiateUpload(env, r);
        if (q.has('uploadId')) return completeUpload(env, r);
        break;
    }
    throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }
}
