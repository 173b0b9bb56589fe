import { badRequest } from './errors.js';
import { looksLikeUuid } from '../../core/ids.js';

/**
 * Request-body checking in Neutron's terms: an attribute the resource does
 * not have is "Unrecognized attribute(s)", one that may not be set in this
 * method is "Attribute 'x' not allowed in POST", and a bad value is
 * "Invalid input for x. Reason: ...". All are 400s and nothing is changed.
 */
export type Body = Record<string, unknown>;

export interface AttrSpec {
  post?: boolean;
  put?: boolean;
  /** Returns the normalized value or throws a 400 (via `fail`). */
  check?: (v: unknown, fail: (reason: string) => never) => unknown;
}

/** Validates one resource body (`{"network": {...}}` already unwrapped). */
export function checkBody(resource: string, body: unknown, specs: Record<string, AttrSpec>, method: 'POST' | 'PUT'): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest(`Resource body required for ${resource}.`);
  const b = body as Body;
  const unknown = Object.keys(b).filter((k) => !(k in specs));
  if (unknown.length) throw badRequest(`Unrecognized attribute(s) '${unknown.join(', ')}'`);
  const out: Body = {};
  for (const [k, v] of Object.entries(b)) {
    const spec = specs[k]!;
    if (method === 'POST' ? !spec.post : !spec.put) throw badRequest(`Attribute '${k}' not allowed in ${method}`);
    const fail = (reason: string): never => {
      throw badRequest(`Invalid input for ${k}. Reason: ${reason}.`);
    };
    out[k] = spec.check ? spec.check(v, fail) : v;
  }
  if ('tenant_id' in out && 'project_id' in out && out.tenant_id !== out.project_id) throw badRequest("'project_id' and 'tenant_id' do not match");
  if ('tenant_id' in out && !('project_id' in out)) out.project_id = out.tenant_id;
  delete out.tenant_id;
  return out;
}

/** Unwraps `{"<resource>": {...}}`. */
export function unwrap(body: unknown, resource: string): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !(resource in body)) throw badRequest(`Resource body required for ${resource}.`);
  return (body as Body)[resource];
}

export const str =
  (max = 255) =>
  (v: unknown, fail: (r: string) => never): string => {
    if (typeof v !== 'string') return fail(`'${String(v)}' is not a valid string`);
    if (v.length > max) return fail(`'${v}' exceeds maximum length of ${max}`);
    return v;
  };

export const boolean = (v: unknown, fail: (r: string) => never): boolean => {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0') return false;
  }
  if (v === 0 || v === 1) return v === 1;
  return fail(`'${String(v)}' is not a valid boolean value`);
};

export const integer =
  (min: number, max: number) =>
  (v: unknown, fail: (r: string) => never): number => {
    const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) return fail(`'${String(v)}' is not an integer`);
    if (n < min || n > max) return fail(`'${n}' is not in range ${min} through ${max}`);
    return n;
  };

export const nullableInteger =
  (min: number, max: number) =>
  (v: unknown, fail: (r: string) => never): number | null =>
    v === null ? null : integer(min, max)(v, fail);

export const uuidStr = (v: unknown, fail: (r: string) => never): string => {
  if (typeof v !== 'string' || !looksLikeUuid(v)) return fail(`'${String(v)}' is not a valid UUID`);
  return v;
};

export const nullableUuid = (v: unknown, fail: (r: string) => never): string | null => (v === null ? null : uuidStr(v, fail));

export const projectId = (v: unknown, fail: (r: string) => never): string => {
  if (typeof v !== 'string' || v.length === 0 || v.length > 255) return fail(`'${String(v)}' is not a valid project id`);
  return v;
};

export const list =
  <T>(item: (v: unknown, fail: (r: string) => never) => T) =>
  (v: unknown, fail: (r: string) => never): T[] => {
    if (!Array.isArray(v)) return fail(`'${JSON.stringify(v)}' is not a list`);
    return v.map((x) => item(x, fail));
  };

export const tagList = (v: unknown, fail: (r: string) => never): string[] => {
  const tags = list(str(255))(v, fail);
  for (const t of tags) if (t === '' || t.includes(',') || t.includes('/')) fail(`'${t}' is not a valid tag`);
  return [...new Set(tags)];
};

export const anyValue = (v: unknown): unknown => v;

export const isUuid = looksLikeUuid;
