import { badRequest } from '../../core/errors.js';
import type { MemberStatus, Visibility } from '../store/tables.js';
import { SORT_KEYS, type ColumnFilter, type FilterOp, type ImageListQuery, type SortKey } from '../service/catalog.js';
import type { TaskListQuery } from '../service/tasks.js';

/** Default and maximum page sizes (Glance's limit_param_default / api_limit_max). */
export const LIMIT_DEFAULT = 25;
export const LIMIT_MAX = 1000;

export type RawQuery = Record<string, string | string[] | undefined>;

const all = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[v.length - 1] : v);

/** Parameters of the list call itself (never treated as property filters). */
const CONTROL = new Set(['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'member_status', 'visibility', 'tag', 'size_min', 'size_max', 'changes-since']);

const OPS: FilterOp[] = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'in'];

/** `gt:2016-04-18T21:38:54Z` → ['gt', '2016-...']; a value without a known operator is `eq`. */
export function splitOp(v: string): [FilterOp, string] {
  const i = v.indexOf(':');
  if (i > 0) {
    const op = v.slice(0, i) as FilterOp;
    if (OPS.includes(op)) return [op, v.slice(i + 1)];
  }
  return ['eq', v];
}

/** Splits an `in:` list on commas outside double quotes (`in:"a, b",c` → ['a, b', 'c']). */
export function splitList(v: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of v) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted) throw badRequest(`Invalid filter value ${v}. The quote is not closed.`);
  out.push(cur);
  return out.map((s) => s.trim());
}

export function parseLimit(v: string | undefined): number {
  if (v === undefined) return LIMIT_DEFAULT;
  if (!/^-?\d+$/.test(v.trim())) throw badRequest('limit param must be an integer');
  const n = Number(v);
  if (n < 0) throw badRequest('limit param must be positive');
  return Math.min(n, LIMIT_MAX);
}

function parseTime(v: string, key: string): number {
  const ms = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(ms)) throw badRequest(`Invalid time format for ${key}.`);
  return ms;
}

function parseInt64(v: string, key: string): number {
  if (!/^\d+$/.test(v.trim())) throw badRequest(`Invalid value for ${key}: ${v}. It must be a non-negative integer.`);
  return Number(v);
}

function parseBoolFilter(v: string, key: string): number {
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return 1;
  if (['false', '0', 'no', 'off'].includes(s)) return 0;
  throw badRequest(`Invalid value '${v}' for '${key}' filter. It must be 'true' or 'false'.`);
}

const EXACT_COLUMNS = new Set(['id', 'name', 'status', 'disk_format', 'container_format', 'owner', 'checksum', 'os_hash_value']);
const LIST_COLUMNS = new Set(['id', 'name', 'status', 'disk_format', 'container_format']);
const NUMBER_COLUMNS = new Set(['min_disk', 'min_ram', 'size', 'virtual_size']);
const TIME_COLUMNS = new Set(['created_at', 'updated_at']);

/** Parses the query of `GET /v2/images` as Glance does (400 for anything malformed). */
export function parseImageListQuery(q: RawQuery): ImageListQuery {
  if (q['changes-since'] !== undefined) throw badRequest('The "changes-since" filter is no longer available on v2.');
  const out: ImageListQuery = { limit: parseLimit(one(q.limit)), sort: parseSort(q), memberStatus: 'accepted', filters: [], tags: [], properties: {} };
  const marker = one(q.marker);
  if (marker !== undefined) out.marker = marker;
  const ms = one(q.member_status);
  if (ms !== undefined) {
    if (!['pending', 'accepted', 'rejected', 'all'].includes(ms)) throw badRequest(`Invalid status: ${ms}`);
    out.memberStatus = ms as MemberStatus | 'all';
  }
  const vis = one(q.visibility);
  if (vis !== undefined) {
    if (!['community', 'public', 'private', 'shared', 'all'].includes(vis)) throw badRequest(`Invalid visibility value: ${vis}`);
    out.visibility = vis as Visibility | 'all';
  }
  out.tags = all(q.tag).map((t) => t.trim());
  const sizeMin = one(q.size_min);
  if (sizeMin !== undefined) out.filters.push({ column: 'size', op: 'gte', value: parseInt64(sizeMin, 'size_min') });
  const sizeMax = one(q.size_max);
  if (sizeMax !== undefined) out.filters.push({ column: 'size', op: 'lte', value: parseInt64(sizeMax, 'size_max') });
  let hidden: number | undefined;
  for (const [key, raw] of Object.entries(q)) {
    if (CONTROL.has(key) || raw === undefined) continue;
    const value = one(raw)!;
    if (key === 'os_hidden' || key === 'protected') {
      const b = parseBoolFilter(value, key);
      if (key === 'os_hidden') hidden = b;
      else out.filters.push({ column: 'protected', op: 'eq', value: b });
      continue;
    }
    if (EXACT_COLUMNS.has(key) || NUMBER_COLUMNS.has(key) || TIME_COLUMNS.has(key)) {
      const [op, v] = splitOp(value);
      const column = key as ColumnFilter['column'];
      if (op === 'in') {
        if (!LIST_COLUMNS.has(key)) throw badRequest(`The "in" operator is not supported for ${key}.`);
        out.filters.push({ column, op, value: splitList(v) });
      } else if (TIME_COLUMNS.has(key)) {
        // Times are shown to the second: compare whole seconds.
        const s = Math.floor(parseTime(v, key) / 1000) * 1000;
        const e = s + 1000;
        const byOp: Record<Exclude<FilterOp, 'in'>, ColumnFilter> = {
          eq: { column, op: 'within', value: [s, e] },
          neq: { column, op: 'outside', value: [s, e] },
          gt: { column, op: 'gte', value: e },
          gte: { column, op: 'gte', value: s },
          lt: { column, op: 'lt', value: s },
          lte: { column, op: 'lt', value: e },
        };
        out.filters.push(byOp[op]);
      } else if (NUMBER_COLUMNS.has(key)) {
        out.filters.push({ column, op, value: parseInt64(v, key) });
      } else {
        if (op !== 'eq' && op !== 'neq') throw badRequest(`Unable to filter on a range with a non-numeric value for ${key}.`);
        out.filters.push({ column, op, value: v });
      }
      continue;
    }
    // Anything else filters on an extra property's exact value.
    out.properties[key] = value;
  }
  // Hidden images are left out unless asked for.
  out.filters.push({ column: 'os_hidden', op: 'eq', value: hidden ?? 0 });
  return out;
}

/** Both sort syntaxes: `sort=name:asc,size` or repeated `sort_key`/`sort_dir` (default created_at desc). */
export function parseSort(q: RawQuery): { key: SortKey; dir: 'asc' | 'desc' }[] {
  const key = (k: string): SortKey => {
    const t = k.trim();
    if (!(SORT_KEYS as string[]).includes(t)) throw badRequest(`Invalid sort key: ${t}. It must be one of the following: ${SORT_KEYS.join(', ')}.`);
    return t as SortKey;
  };
  const dir = (d: string): 'asc' | 'desc' => {
    const t = d.trim();
    if (t !== 'asc' && t !== 'desc') throw badRequest(`Invalid sort direction: ${t}`);
    return t;
  };
  if (q.sort !== undefined) {
    if (q.sort_key !== undefined || q.sort_dir !== undefined) throw badRequest('Old and new sorting syntax cannot be combined');
    return one(q.sort)!
      .split(',')
      .map((part) => {
        const [k, d] = part.split(':');
        return { key: key(k ?? ''), dir: dir(d && d.trim() ? d : 'desc') };
      });
  }
  const keys = all(q.sort_key).map(key);
  const dirs = all(q.sort_dir).map(dir);
  if (dirs.length > 1 && dirs.length !== keys.length) throw badRequest('Number of sort dirs does not match the number of sort keys');
  if (keys.length === 0) return [{ key: 'created_at', dir: dirs[0] ?? 'desc' }];
  return keys.map((k, i) => ({ key: k, dir: dirs.length > 1 ? dirs[i]! : (dirs[0] ?? 'desc') }));
}

/** Query of `GET /v2/tasks`. */
export function parseTaskListQuery(q: RawQuery, owner: string | null): TaskListQuery {
  const sortKey = one(q.sort_key) ?? 'created_at';
  if (!['created_at', 'updated_at', 'id', 'status', 'type'].includes(sortKey)) throw badRequest(`Invalid sort key: ${sortKey}.`);
  const sortDir = one(q.sort_dir) ?? 'desc';
  if (sortDir !== 'asc' && sortDir !== 'desc') throw badRequest(`Invalid sort direction: ${sortDir}`);
  const type = one(q.type);
  const status = one(q.status);
  if (status !== undefined && !['pending', 'processing', 'success', 'failure'].includes(status)) throw badRequest(`Invalid status value: ${status}`);
  if (type !== undefined && !['import', 'api_image_import', 'location_import'].includes(type)) throw badRequest(`Invalid type value: ${type}`);
  const marker = one(q.marker);
  return {
    limit: parseLimit(one(q.limit)),
    sortKey: sortKey as TaskListQuery['sortKey'],
    sortDir,
    owner,
    ...(marker !== undefined ? { marker } : {}),
    ...(type !== undefined ? { type } : {}),
    ...(status !== undefined ? { status } : {}),
  };
}

/**
 * `first` and `next` links of a list: the request's own query (repeated
 * keys kept) without, respectively with, the marker.
 */
export function pageLinks(path: string, rawUrl: string, nextMarker: string | null): { first: string; next?: string } {
  const qs = rawUrl.includes('?') ? rawUrl.slice(rawUrl.indexOf('?') + 1) : '';
  const params = new URLSearchParams(qs);
  params.delete('marker');
  const first = params.toString() ? `${path}?${params.toString()}` : path;
  if (nextMarker === null) return { first };
  params.set('marker', nextMarker);
  return { first, next: `${path}?${params.toString()}` };
}
