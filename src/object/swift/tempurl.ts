/**
 * TempURL signature checks (Swift's tempurl middleware): HMAC over
 * `METHOD\nEXPIRES\nPATH` (or `prefix:PATH` for prefix-based URLs), keyed
 * with an account or container `Temp-URL-Key(-2)`. Signatures are hex
 * SHA-1/SHA-256/SHA-512 (told apart by length) or `<digest>:<base64>`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TEMPURL_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'] as const;
export const TEMPURL_DIGESTS = ['sha1', 'sha256', 'sha512'] as const;
type Digest = (typeof TEMPURL_DIGESTS)[number];

export interface TempUrlQuery {
  sig: string;
  expires: number;
  prefix?: string;
  filename?: string;
  inline: boolean;
}

/** Reads the temp_url_* parameters; null when this is not a TempURL request; 401 cases return 'invalid'. */
export function parseTempUrlQuery(q: URLSearchParams): TempUrlQuery | 'invalid' | null {
  const sig = q.get('temp_url_sig');
  const exp = q.get('temp_url_expires');
  if (sig === null && exp === null) return null;
  if (!sig || !exp) return 'invalid';
  let expires: number;
  if (/^\d+$/.test(exp)) expires = Number(exp);
  else {
    const t = Date.parse(exp);
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(exp) || Number.isNaN(t)) return 'invalid';
    expires = t / 1000;
  }
  const out: TempUrlQuery = { sig, expires, inline: q.has('inline') };
  const prefix = q.get('temp_url_prefix');
  if (prefix !== null) out.prefix = prefix;
  const filename = q.get('filename');
  if (filename !== null) out.filename = filename;
  return out;
}

function splitSig(sig: string): { digest: Digest; mac: Buffer } | null {
  const i = sig.indexOf(':');
  if (i > 0) {
    const d = sig.slice(0, i) as Digest;
    if (!TEMPURL_DIGESTS.includes(d)) return null;
    const b64 = sig.slice(i + 1).replace(/-/g, '+').replace(/_/g, '/');
    return { digest: d, mac: Buffer.from(b64, 'base64') };
  }
  if (!/^[0-9a-fA-F]+$/.test(sig)) return null;
  const digest: Digest | undefined = sig.length === 40 ? 'sha1' : sig.length === 64 ? 'sha256' : sig.length === 128 ? 'sha512' : undefined;
  return digest ? { digest, mac: Buffer.from(sig, 'hex') } : null;
}

/**
 * True when `q.sig` is a valid signature for `method` on one of `paths`
 * (the same object may be addressed as `/v1/...` or `/object/v1/...`) with
 * one of `keys`. HEAD is also accepted with a GET, PUT or POST signature, as
 * in Swift. Expiry is checked by the caller.
 */
export function tempUrlValid(q: TempUrlQuery, method: string, paths: string[], keys: string[]): boolean {
  const s = splitSig(q.sig);
  if (!s || keys.length === 0) return false;
  const methods = method === 'HEAD' ? ['HEAD', 'GET', 'PUT', 'POST'] : [method];
  const expStr = String(Math.trunc(q.expires));
  for (const key of keys) {
    for (const m of methods) {
      for (const p of paths) {
        const body = `${m}\n${expStr}\n${q.prefix !== undefined ? 'prefix:' : ''}${p}`;
        const mac = createHmac(s.digest, key).update(body).digest();
        if (mac.length === s.mac.length && timingSafeEqual(mac, s.mac)) return true;
      }
    }
  }
  return false;
}
