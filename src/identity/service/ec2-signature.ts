import { createHmac } from 'node:crypto';
import { parseAuthorization, safeEqualHex, signV4, awsEncode } from '../../core/sigv4.js';

/**
 * Checks the signature of an EC2/S3 request as Keystone's /v3/ec2tokens
 * receives it: { access, signature, host, verb, path, params, headers,
 * body_hash }. Signature V4 (header or query form) and V2 are understood.
 */
export function verifyEc2Signature(cred: Record<string, unknown>, secret: string): boolean {
  const signature = String(cred.signature ?? '');
  const verb = String(cred.verb ?? 'GET');
  const path = String(cred.path ?? '/');
  const params = (cred.params ?? {}) as Record<string, string>;
  const headers = Object.fromEntries(Object.entries((cred.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const bodyHash = String(cred.body_hash ?? '');

  const auth = headers.authorization ? parseAuthorization(headers.authorization) : null;
  if (auth || params['X-Amz-Algorithm'] === 'AWS4-HMAC-SHA256') {
    let scope: { date: string; region: string; service: string };
    let signed: string[];
    let amzDate: string;
    if (auth) {
      scope = auth.scope;
      signed = auth.signedHeaders;
      amzDate = headers['x-amz-date'] ?? '';
    } else {
      const c = (params['X-Amz-Credential'] ?? '').split('/');
      if (c.length !== 5) return false;
      scope = { date: c[1]!, region: c[2]!, service: c[3]! };
      signed = (params['X-Amz-SignedHeaders'] ?? '').split(';');
      amzDate = params['X-Amz-Date'] ?? '';
    }
    if (headers.host === undefined && cred.host) headers.host = String(cred.host);
    const want = signV4(
      {
        method: verb, path, query: Object.entries(params), headers, signedHeaders: signed, payloadHash: bodyHash || headers['x-amz-content-sha256'] || 'UNSIGNED-PAYLOAD',
        amzDate, scope, service: scope.service === 's3' ? 's3' : 'other',
      },
      secret,
    );
    return safeEqualHex(want, signature);
  }
  // Signature V2 (HmacSHA256 / HmacSHA1 over the canonical query string)
  const method = params.SignatureMethod === 'HmacSHA1' ? 'sha1' : 'sha256';
  const qs = Object.keys(params)
    .filter((k) => k !== 'Signature')
    .sort()
    .map((k) => `${awsEncode(k)}=${awsEncode(params[k] ?? '')}`)
    .join('&');
  const sts = [verb.toUpperCase(), String(cred.host ?? '').toLowerCase(), path, qs].join('\n');
  const want = createHmac(method, secret).update(sts).digest('base64');
  return safeEqualHex(want, signature);
}
