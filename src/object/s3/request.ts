import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Authenticated } from './auth.js';
import { S3Error } from './errors.js';

/** One S3 request after routing and authentication. */
export interface S3Request {
  req: IncomingMessage;
  res: ServerResponse;
  /** x-amz-request-id */
  id: string;
  method: string;
  /** Bucket (null for the service: ListBuckets). */
  bucket: string | null;
  /** Object key, decoded (null for bucket requests). */
  key: string | null;
  /** Decoded query parameters (last value wins). */
  query: Map<string, string>;
  auth: Authenticated;
  /** The engine account: `AUTH_<project_id>` of the credential's project. */
  account: string;
  /** `/bucket/key` for error documents. */
  resource: string;
  /** Set by `authorize()`; a handler that finishes without it is a bug (logged by the server). */
  authorized: boolean;
}

/** Splits a raw query string into decoded pairs (`a&b=1` → [['a',''],['b','1']]); `+` stays a plus (SigV4 clients encode spaces as %20). */
export function parseQuery(raw: string): [string, string][] {
  if (!raw) return [];
  const out: [string, string][] = [];
  for (const part of raw.split('&')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const k = i < 0 ? part : part.slice(0, i);
    const v = i < 0 ? '' : part.slice(i + 1);
    out.push([decodeStrict(k), decodeStrict(v)]);
  }
  return out;
}

function decodeStrict(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error('InvalidURI', "Couldn't parse the specified URI.");
  }
}

/**
 * Where the bucket name is: in front of a known S3 host name
 * (virtual-host style, `photos.s3.example.com`) or in the path.
 *
 * Virtual-host style is recognised when the Host (port stripped, lower-cased)
 * is `<bucket>.<name>` for one of `hostNames` (the S3 listener's host,
 * the public URL's host, `localhost`), or has the AWS-like form
 * `<bucket>.s3.<anything>` / `<bucket>.s3-<region>.<anything>`. A Host that
 * is an IP address, one of the names itself, or starts with `s3.` is
 * path style.
 */
export function bucketFromHost(hostHeader: string | undefined, hostNames: readonly string[]): string | null {
  if (!hostHeader) return null;
  let host = hostHeader.trim().toLowerCase();
  if (host.startsWith('[')) return null; // IPv6 literal
  const colon = host.lastIndexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (!host || isIP(host) || hostNames.includes(host)) return null;
  for (const name of hostNames) {
    if (name && host.endsWith(`.${name}`)) return host.slice(0, -name.length - 1) || null;
  }
  if (host.startsWith('s3.') || host.startsWith('s3-')) return null;
  const m = /^(.+?)\.s3[.-]/.exec(host);
  return m ? m[1]! : null;
}

/** Splits the path into bucket and key for path-style or virtual-host-style requests. */
export function locate(rawPath: string, hostBucket: string | null): { bucket: string | null; key: string | null } {
  const path = rawPath.includes('%') ? decodeStrict(rawPath) : rawPath;
  if (hostBucket !== null) {
    const key = path.startsWith('/') ? path.slice(1) : path;
    return { bucket: hostBucket, key: key === '' ? null : key };
  }
  const rest = path.startsWith('/') ? path.slice(1) : path;
  if (rest === '') return { bucket: null, key: null };
  const i = rest.indexOf('/');
  if (i < 0) return { bucket: rest, key: null };
  const key = rest.slice(i + 1);
  return { bucket: rest.slice(0, i), key: key === '' ? null : key };
}
