/**
 * Fernet tokens (https://github.com/fernet/spec), version 0x80, on node:crypto.
 *
 * Keystone's tokens and its encrypted credentials are Fernet tokens; using the
 * same format and key files means a Stratus key repository is interchangeable
 * with a Keystone one, and tokens stay verifiable by any Fernet library.
 *
 *   token = base64url(0x80 ‖ timestamp(64-bit BE seconds) ‖ IV(16) ‖ AES-128-CBC(PKCS7) ‖ HMAC-SHA256)
 *   key   = base64url(signing key(16) ‖ encryption key(16))
 */

import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A Fernet key: 32 raw bytes, or its base64url text (as stored in key files). */
export type Key = Buffer | string;

const VERSION = 0x80;
const HEADER = 1 + 8 + 16; // version, timestamp, IV
const MAC = 32;
const BLOCK = 16;
/** The smallest token: header, one cipher block (an empty message pads to one), MAC. */
const MIN_TOKEN = HEADER + BLOCK + MAC;
/** How far in the future a token's timestamp may be, to tolerate clock skew between hosts. */
export const MAX_CLOCK_SKEW_SECONDS = 60;

const B64URL_BODY = /^[A-Za-z0-9_-]*$/;

/**
 * Strict base64url decoding: Node's decoder silently skips characters it does
 * not know, which would let a mangled token or key decode to something.
 * Padding is optional (Keystone strips it from tokens), but when present it
 * must be exactly right.
 */
function decodeB64url(s: string): Buffer | null {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x3d /* = */) end--;
  const pad = s.length - end;
  if (pad > 2 || (pad > 0 && s.length % 4 !== 0)) return null;
  const body = pad > 0 ? s.slice(0, end) : s;
  if (body.length % 4 === 1 || !B64URL_BODY.test(body)) return null;
  return Buffer.from(body, 'base64url');
}

/** base64url with `=` padding, the spec's format for tokens and keys. */
function encodeB64url(b: Buffer): string {
  const s = b.toString('base64url');
  const rem = s.length % 4;
  return rem === 0 ? s : s + '='.repeat(4 - rem);
}

/**
 * Normalises a key to its 32 raw bytes. A key of the wrong size is a
 * configuration error (a corrupt key file, a truncated secret), so it throws
 * rather than letting every token silently fail to verify.
 */
export function decodeKey(key: Key): Buffer {
  if (typeof key === 'string') {
    const raw = decodeB64url(key.trim());
    if (raw === null || raw.length !== 32) throw new Error('Fernet key must be 32 bytes of base64url');
    return raw;
  }
  if (key.length !== 32) throw new Error(`Fernet key must be 32 bytes, got ${key.length}`);
  return key;
}

/**
 * A fresh random key in the text form Keystone writes to key files
 * (44 characters, padded), so the files are usable by either system.
 */
export function generateKey(): string {
  return encodeB64url(randomBytes(32));
}

function writeTimestamp(buf: Buffer, seconds: number): void {
  buf.writeUInt32BE(Math.floor(seconds / 0x1_0000_0000), 1);
  buf.writeUInt32BE(seconds >>> 0, 5);
}

function readTimestamp(buf: Buffer): number {
  return buf.readUInt32BE(1) * 0x1_0000_0000 + buf.readUInt32BE(5);
}

/**
 * Seals `plaintext` under `key`. `now` is in milliseconds (Date.now()'s unit,
 * like the rest of Stratus; the token records whole seconds) and `iv` is
 * only for reproducible tests: in production both must be left to default,
 * because reusing an IV under one key leaks plaintext relationships.
 */
export function encrypt(key: Key, plaintext: Buffer, now: number = Date.now(), iv?: Buffer): string {
  const k = decodeKey(key);
  if (!Number.isFinite(now) || now < 0) throw new RangeError('Fernet timestamp must be a non-negative time');
  const theIv = iv ?? randomBytes(16);
  if (theIv.length !== 16) throw new RangeError('Fernet IV must be 16 bytes');
  const cipher = createCipheriv('aes-128-cbc', k.subarray(16, 32), theIv);
  const c1 = cipher.update(plaintext);
  const c2 = cipher.final();
  const bodyLen = HEADER + c1.length + c2.length;
  const out = Buffer.allocUnsafe(bodyLen + MAC);
  out[0] = VERSION;
  writeTimestamp(out, Math.floor(now / 1000));
  theIv.copy(out, 9);
  c1.copy(out, HEADER);
  c2.copy(out, HEADER + c1.length);
  createHmac('sha256', k.subarray(0, 16)).update(out.subarray(0, bodyLen)).digest().copy(out, bodyLen);
  return encodeB64url(out);
}

/**
 * Opens a token with the first key whose HMAC verifies, so tokens sealed by
 * any key still in the repository (primary, secondary or staged) remain valid
 * across rotations. Returns null for anything that is not a valid, live token
 * (never throws for bad input: tokens come from untrusted clients).
 *
 * With `ttlSeconds`, a token older than that (or dated more than
 * MAX_CLOCK_SKEW_SECONDS in the future) is rejected; this is checked before
 * any HMAC work. `now` is in milliseconds. Without a TTL the age is not
 * checked, for callers (like Keystone tokens) that carry their own expiry.
 */
export function decrypt(keys: readonly Key[], token: string, ttlSeconds?: number, now: number = Date.now()): Buffer | null {
  if (typeof token !== 'string' || token.length === 0) return null;
  const data = decodeB64url(token);
  if (data === null || data.length < MIN_TOKEN || data[0] !== VERSION) return null;
  const cipherLen = data.length - HEADER - MAC;
  if (cipherLen % BLOCK !== 0) return null;
  if (ttlSeconds !== undefined) {
    const ts = readTimestamp(data);
    const nowSec = Math.floor(now / 1000);
    if (ts + ttlSeconds < nowSec) return null;
    if (ts > nowSec + MAX_CLOCK_SKEW_SECONDS) return null;
  }
  const body = data.subarray(0, data.length - MAC);
  const mac = data.subarray(data.length - MAC);
  for (const key of keys) {
    const k = decodeKey(key);
    const expected = createHmac('sha256', k.subarray(0, 16)).update(body).digest();
    if (!timingSafeEqual(expected, mac)) continue;
    // The MAC proves this key sealed the token; a decryption failure now means
    // a corrupt token, and no other key can do better.
    try {
      const decipher = createDecipheriv('aes-128-cbc', k.subarray(16, 32), data.subarray(9, HEADER));
      const p1 = decipher.update(data.subarray(HEADER, data.length - MAC));
      const p2 = decipher.final();
      return p2.length === 0 ? p1 : Buffer.concat([p1, p2]);
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * The creation time recorded in a token, in seconds since the epoch, or null
 * if it is not shaped like a Fernet token. Unauthenticated: only for
 * diagnostics or after `decrypt` has accepted the token.
 */
export function tokenTimestamp(token: string): number | null {
  const data = decodeB64url(token);
  if (data === null || data.length < MIN_TOKEN || data[0] !== VERSION) return null;
  return readTimestamp(data);
}
