import { BadRequestError } from './errors.js';

/** Swift's default constraints. */
export const LIMITS = {
  maxAccountNameBytes: 256,
  maxContainerNameBytes: 256,
  maxObjectNameBytes: 1024,
  maxMetaNameBytes: 128,
  maxMetaValueBytes: 256,
  maxMetaCount: 90,
  maxMetaOverallBytes: 4096,
  /** 5 GiB. */
  maxObjectSize: 5 * 1024 * 1024 * 1024,
  maxContentTypeBytes: 256,
} as const;

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** A JS string that round-trips through UTF-8 (no lone surrogates). */
const wellFormed = (s: string): boolean => s.isWellFormed();

function checkName(what: string, s: string, max: number, slashOk: boolean): void {
  if (typeof s !== 'string' || s.length === 0) throw new BadRequestError(`${what} name is empty`);
  if (utf8Bytes(s) > max) throw new BadRequestError(`${what} name is longer than ${max} bytes`);
  if (!slashOk && s.includes('/')) throw new BadRequestError(`${what} name contains '/'`);
  if (s.includes('\0')) throw new BadRequestError(`${what} name contains a NUL byte`);
  if (!wellFormed(s)) throw new BadRequestError(`${what} name is not valid UTF-8`);
}

export function checkAccount(a: string): void {
  checkName('Account', a, LIMITS.maxAccountNameBytes, false);
}

export function checkContainer(c: string): void {
  checkName('Container', c, LIMITS.maxContainerNameBytes, false);
}

export function checkObjectName(o: string): void {
  checkName('Object', o, LIMITS.maxObjectNameBytes, true);
}

/**
 * Validates user metadata (keys without the `X-*-Meta-` prefix) against
 * Swift's limits and returns it with lower-cased keys. With `allowEmpty`,
 * empty values are kept (they mean "remove this key" in a POST).
 */
export function normalizeUserMeta(meta: Record<string, string> | undefined, allowEmpty = false): Record<string, string> {
  const out: Record<string, string> = {};
  if (!meta) return out;
  let count = 0;
  let total = 0;
  for (const [k0, v] of Object.entries(meta)) {
    const k = k0.toLowerCase();
    if (typeof v !== 'string') throw new BadRequestError(`Metadata value for ${k0} is not a string`);
    if (!k) throw new BadRequestError('Metadata name cannot be empty');
    if (/[\r\n\0:]/.test(k) || /[\r\n\0]/.test(v)) throw new BadRequestError(`Metadata ${k0} contains invalid characters`);
    if (utf8Bytes(k) > LIMITS.maxMetaNameBytes) throw new BadRequestError(`Metadata name too long: ${k0}`);
    if (utf8Bytes(v) > LIMITS.maxMetaValueBytes) throw new BadRequestError(`Metadata value longer than ${LIMITS.maxMetaValueBytes}: ${k0}`);
    if (v === '' && !allowEmpty) continue;
    count++;
    total += utf8Bytes(k) + utf8Bytes(v);
    out[k] = v;
  }
  if (count > LIMITS.maxMetaCount) throw new BadRequestError(`Too many metadata items; max ${LIMITS.maxMetaCount}`);
  if (total > LIMITS.maxMetaOverallBytes) throw new BadRequestError(`Total metadata too large; max ${LIMITS.maxMetaOverallBytes}`);
  return out;
}

/** Applies a POST/PUT metadata update: given keys set, empty values delete. */
export function mergeMeta(current: Record<string, string>, update: Record<string, string> | undefined): Record<string, string> {
  const out = { ...current };
  for (const [k, v] of Object.entries(update ?? {})) {
    if (v === '') delete out[k];
    else out[k] = v;
  }
  return out;
}

/** System metadata: any string keys/values (no limits beyond being strings). */
export function normalizeSysMeta(meta: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta ?? {})) {
    if (typeof v !== 'string') throw new BadRequestError(`System metadata value for ${k} is not a string`);
    out[k.toLowerCase()] = v;
  }
  return out;
}

/** An ETag as clients send it (`"abc"`, `W/"abc"`) reduced to bare lower-case hex. */
export function normalizeEtag(e: string): string {
  return e.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1').toLowerCase();
}
