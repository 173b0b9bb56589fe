/**
 * The one way the dashboard talks to Stratus: the public OpenStack APIs with
 * the signed-in user's token (X-Auth-Token). Endpoints come from the token's
 * service catalog; errors become `ApiError` carrying the message from the
 * OpenStack error body, in words a person can read.
 */

export interface CatalogEndpoint {
  url: string;
  interface: string;
  region?: string;
  region_id?: string;
}
export interface CatalogService {
  type: string;
  name?: string;
  endpoints: CatalogEndpoint[];
}
export interface Named {
  id: string;
  name: string;
}
export interface Session {
  token: string;
  expiresAt: string;
  user: Named & { domain: Named };
  project: (Named & { domain?: Named }) | null;
  roles: Named[];
  catalog: CatalogService[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const KEY = 'stratus.session';
let current: Session | null = load();
const listeners = new Set<(s: Session | null, reason?: string) => void>();

function load(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    return Date.parse(s.expiresAt) > Date.now() ? s : null;
  } catch {
    return null;
  }
}

export function getSession(): Session | null {
  return current;
}

/** Replaces the session (null = signed out); `reason` is shown on the sign-in page. */
export function setSession(s: Session | null, reason?: string): void {
  current = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  for (const l of listeners) l(s, reason);
}

export function onSessionChange(fn: (s: Session | null, reason?: string) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export const SESSION_EXPIRED = 'Your session has expired or was revoked. Please sign in again.';

/**
 * The public endpoint of a service type from the catalog (first of `types`
 * that exists), without a trailing slash. The dashboard is served by the same
 * process as the APIs, so an endpoint on another origin (a public URL behind
 * a proxy) is reached by its path on this origin, keeping requests
 * same-origin (no CORS, and the page's CSP allows only 'self').
 */
export function serviceUrl(types: string[], s: Session | null = current): string | null {
  if (!s) return null;
  for (const t of types) {
    const svc = s.catalog.find((c) => c.type === t);
    const ep = svc?.endpoints.find((e) => e.interface === 'public') ?? svc?.endpoints[0];
    if (!ep) continue;
    let url = ep.url.replace(/\/+$/, '');
    if (s.project) url = url.replace(/[$%]\(project_id\)s|\{project_id\}/g, s.project.id);
    try {
      url = new URL(url, location.href).pathname.replace(/\/+$/, '');
    } catch {
      /* keep as is */
    }
    return url;
  }
  return null;
}

export function hasService(types: string[], s: Session | null = current): boolean {
  return serviceUrl(types, s) !== null;
}

/** The message inside an OpenStack error body (Keystone, Nova, Cinder, Neutron, Glance, Swift), or null. */
export function messageFromBody(text: string): string | null {
  if (!text) return null;
  try {
    const j = JSON.parse(text) as unknown;
    const find = (v: unknown, depth: number): string | null => {
      if (!v || typeof v !== 'object' || depth > 3) return null;
      const o = v as Record<string, unknown>;
      if (typeof o.message === 'string' && o.message) return o.message;
      if (typeof o.detail === 'string' && o.detail) return o.detail;
      if (typeof o.description === 'string' && o.description) return o.description;
      for (const k of Object.keys(o)) {
        const m = find(o[k], depth + 1);
        if (m) return m;
      }
      return null;
    };
    return find(j, 0);
  } catch {
    // Swift and some proxies answer in text or HTML.
    const plain = text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    return plain ? plain.slice(0, 400) : null;
  }
}

const STATUS_WORDS: Record<number, string> = {
  400: 'The request was not accepted',
  403: 'You are not allowed to do this',
  404: 'Not found',
  409: 'This conflicts with the current state',
  413: 'Over quota or too large',
  415: 'Unsupported media type',
  429: 'Too many requests; try again shortly',
  500: 'The cloud had an internal error',
  503: 'The service is not available right now',
};

export function describeError(status: number, body: string, statusText = ''): string {
  const msg = messageFromBody(body);
  const words = STATUS_WORDS[status] ?? (statusText || `Request failed (HTTP ${status})`);
  if (!msg) return `${words}.`;
  return status === 403 || status === 413 || status >= 500 ? `${words}: ${msg}` : msg;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Don't treat a 401 as an expired session (sign-in itself). */
  anonymous?: boolean;
  /** Return the Response instead of parsing JSON. */
  raw?: boolean;
}

export async function request<T = unknown>(url: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
  const s = current;
  if (s && !opts.anonymous) headers['x-auth-token'] = s.token;
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    if (typeof opts.body === 'string' || opts.body instanceof Blob || opts.body instanceof ArrayBuffer) body = opts.body as BodyInit;
    else {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
  }
  let res: Response;
  try {
    res = await fetch(url, { method: opts.method ?? 'GET', headers, body, signal: opts.signal, credentials: 'omit' });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'The cloud could not be reached. Check your connection and that Stratus is running.');
  }
  if (res.status === 401 && !opts.anonymous && s) {
    setSession(null, SESSION_EXPIRED);
    throw new ApiError(401, SESSION_EXPIRED);
  }
  if (!res.ok) throw new ApiError(res.status, describeError(res.status, await res.text(), res.statusText));
  if (opts.raw) return res as unknown as T;
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as unknown as T;
  }
}

export interface UploadOptions {
  method?: string;
  headers?: Record<string, string>;
  onProgress?: (loaded: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Sends a file with XMLHttpRequest, whose upload events give a progress bar
 * (fetch has no upload progress).
 */
export function upload(url: string, file: Blob, opts: UploadOptions = {}): Promise<XMLHttpRequest> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(opts.method ?? 'PUT', url);
    const s = current;
    if (s) xhr.setRequestHeader('x-auth-token', s.token);
    for (const [k, v] of Object.entries(opts.headers ?? {})) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status === 401 && s) {
        setSession(null, SESSION_EXPIRED);
        reject(new ApiError(401, SESSION_EXPIRED));
      } else if (xhr.status >= 200 && xhr.status < 300) {
        opts.onProgress?.(file.size, file.size);
        resolve(xhr);
      } else reject(new ApiError(xhr.status, describeError(xhr.status, xhr.responseText, xhr.statusText)));
    };
    xhr.onerror = () => reject(new ApiError(0, 'The upload was interrupted: the cloud could not be reached.'));
    xhr.onabort = () => reject(new ApiError(0, 'The upload was cancelled.'));
    opts.signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(file);
  });
}

/** Message of anything thrown, for display. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Query string from defined values. */
export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
