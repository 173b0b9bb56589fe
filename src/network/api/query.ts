import { badRequest, nerr } from '../service/errors.js';
import type { View } from '../service/views.js';

/**
 * Neutron's list semantics, applied to the resource bodies the caller may
 * see: any attribute is a filter (repeated values are alternatives), `tags`,
 * `tags-any`, `not-tags`, `not-tags-any` (comma-separated), `fields=` to
 * project, `sort_key`/`sort_dir` pairs (id breaks ties), and `limit`/`marker`
 * (`page_reverse`) pagination with `<collection>_links`.
 */
export type RawQuery = Record<string, string | string[] | undefined>;

const CONTROL = new Set(['fields', 'sort_key', 'sort_dir', 'limit', 'marker', 'page_reverse', 'tags', 'tags-any', 'not-tags', 'not-tags-any']);

const all = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

function matchesScalar(actual: unknown, wanted: string): boolean {
  if (typeof actual === 'boolean') {
    const w = wanted.toLowerCase();
    if (TRUE.has(w)) return actual;
    if (FALSE.has(w)) return !actual;
    return false;
  }
  if (actual === null || actual === undefined) return wanted === '' || wanted === 'None';
  if (typeof actual === 'number') return String(actual) === wanted;
  if (typeof actual === 'string') return actual === wanted;
  return false;
}

/** `fixed_ips=ip_address=10.0.0.5&fixed_ips=subnet_id=...`: each key's values are alternatives, keys are combined. */
function matchesFixedIps(actual: unknown, wanted: string[]): boolean {
  const ips = (Array.isArray(actual) ? actual : []) as Array<{ subnet_id: string; ip_address: string }>;
  const by: Record<string, string[]> = {};
  for (const w of wanted) {
    const i = w.indexOf('=');
    if (i < 0) throw badRequest(`Invalid input for fixed_ips filter: '${w}'.`);
    (by[w.slice(0, i)] ??= []).push(w.slice(i + 1));
  }
  return ips.some((ip) =>
    Object.entries(by).every(([k, vs]) => {
      if (k === 'ip_address') return vs.includes(ip.ip_address);
      if (k === 'subnet_id') return vs.includes(ip.subnet_id);
      if (k === 'ip_address_substr') return vs.some((v) => ip.ip_address.includes(v));
      throw badRequest(`Invalid input for fixed_ips filter: '${k}' is not a valid filter.`);
    }),
  );
}

export function applyFilters(views: View[], q: RawQuery): View[] {
  const filters = Object.entries(q).filter(([k, v]) => !CONTROL.has(k) && v !== undefined);
  const tagSets = (k: string) => all(q[k]).flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  const tagsAll = tagSets('tags');
  const tagsAny = tagSets('tags-any');
  const notAll = tagSets('not-tags');
  const notAny = tagSets('not-tags-any');
  return views.filter((v) => {
    for (const [k, raw] of filters) {
      if (!(k in v)) continue; // Neutron ignores filters on attributes a resource does not have
      const wanted = all(raw);
      const actual = v[k];
      if (k === 'fixed_ips') {
        if (!matchesFixedIps(actual, wanted)) return false;
      } else if (Array.isArray(actual)) {
        if (!wanted.some((w) => actual.some((a) => matchesScalar(a, w)))) return false;
      } else if (typeof actual === 'object' && actual !== null) {
        continue;
      } else if (!wanted.some((w) => matchesScalar(actual, w))) return false;
    }
    const tags = (v.tags as string[] | undefined) ?? [];
    if (tagsAll.length && !tagsAll.every((t) => tags.includes(t))) return false;
    if (tagsAny.length && !tagsAny.some((t) => tags.includes(t))) return false;
    if (notAll.length && notAll.every((t) => tags.includes(t))) return false;
    if (notAny.length && notAny.some((t) => tags.includes(t))) return false;
    return true;
  });
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return a ? 1 : -1;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function applySort(views: View[], q: RawQuery, sortable: (key: string) => boolean): View[] {
  const keys = all(q.sort_key);
  const dirs = all(q.sort_dir);
  if (dirs.length > keys.length) throw badRequest('The number of sort_keys and sort_dirs must be same');
  for (const d of dirs) if (d !== 'asc' && d !== 'desc') throw badRequest(`${d} is an invalid value for sort_dir, valid values are 'asc' and 'desc'`);
  for (const k of keys) if (!sortable(k)) throw badRequest(`${k} is an invalid attribute for sort_key`);
  const order = keys.map((k, i) => ({ k, desc: dirs[i] === 'desc' }));
  if (!keys.includes('id')) order.push({ k: 'id', desc: order.length ? order[order.length - 1]!.desc : false });
  return [...views].sort((a, b) => {
    for (const { k, desc } of order) {
      const c = compare(a[k], b[k]);
      if (c !== 0) return desc ? -c : c;
    }
    return 0;
  });
}

export interface Page {
  items: View[];
  links: Array<{ rel: string; href: string }> | null;
}

export function paginate(views: View[], q: RawQuery, collectionUrl: string): Page {
  const limitRaw = all(q.limit).pop();
  const marker = all(q.marker).pop();
  const reverse = TRUE.has((all(q.page_reverse).pop() ?? 'false').toLowerCase());
  if (limitRaw === undefined) {
    if (marker === undefined) return { items: views, links: null };
  } else if (!/^-?\d+$/.test(limitRaw)) throw badRequest(`Invalid input for limit. Reason: '${limitRaw}' is not an integer.`);
  let limit = limitRaw === undefined ? 0 : Number(limitRaw);
  if (limit < 0) throw badRequest(`Limit must be an integer 0 or greater and not '${limitRaw}'`);
  if (limit === 0) limit = Number.MAX_SAFE_INTEGER;
  let idx = -1;
  if (marker !== undefined) {
    idx = views.findIndex((v) => v.id === marker);
    if (idx < 0) throw nerr(404, 'NotFound', `Marker ${marker} could not be found.`);
  }
  const link = (rel: string, m: string, rev: boolean) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (!['limit', 'marker', 'page_reverse'].includes(k)) for (const x of all(v)) params.append(k, x);
    if (limitRaw !== undefined) params.set('limit', limitRaw);
    params.set('marker', m);
    if (rev) params.set('page_reverse', 'True');
    return { rel, href: `${collectionUrl}?${params.toString()}` };
  };
  const links: Array<{ rel: string; href: string }> = [];
  let items: View[];
  if (!reverse) {
    const start = idx + 1;
    items = views.slice(start, start + limit);
    if (items.length && start + limit < views.length) links.push(link('next', items[items.length - 1]!.id as string, false));
    if (marker !== undefined && items.length) links.push(link('previous', items[0]!.id as string, true));
  } else {
    const end = idx < 0 ? views.length : idx;
    const start = Math.max(0, end - limit);
    items = views.slice(start, end);
    if (items.length && start > 0) links.push(link('previous', items[0]!.id as string, true));
    if (marker !== undefined && items.length) links.push(link('next', items[items.length - 1]!.id as string, false));
  }
  return { items, links };
}

/** `fields=a&fields=b` keeps only those attributes. */
export function project(views: View[], q: RawQuery): View[] {
  const fields = all(q.fields).flatMap((f) => f.split(',')).filter(Boolean);
  if (!fields.length) return views;
  return views.map((v) => Object.fromEntries(fields.filter((f) => f in v).map((f) => [f, v[f]])));
}

/** A list response: filter, sort, paginate, project. */
export function listBody(collection: string, views: View[], q: RawQuery, collectionUrl: string): Record<string, unknown> {
  const keys = new Set(views.flatMap((v) => Object.keys(v)));
  const filtered = applyFilters(views, q);
  const sorted = applySort(filtered, q, (k) => keys.has(k) || views.length === 0);
  const page = paginate(sorted, q, collectionUrl);
  const body: Record<string, unknown> = { [collection]: project(page.items, q) };
  if (page.links) body[`${collection}_links`] = page.links;
  return body;
}

/** `fields=` on a single resource. */
export function projectOne(view: View, q: RawQuery): View {
  return project([view], q)[0]!;
}
