import type { FastifyRequest } from 'fastify';
import { Type, type TProperties } from '@sinclair/typebox';
import { badRequest } from '../../core/errors.js';

/** Base URL of the identity API as clients reach it (from config). */
export interface ApiEnv {
  base: string; // e.g. http://127.0.0.1:8700/identity/v3
}

export const selfLink = (env: ApiEnv, path: string) => ({ self: `${env.base}${path}` });

/** Keystone list envelope: `{ key: [...], links: { self, previous, next } }`. */
export function listBody(env: ApiEnv, req: FastifyRequest, key: string, items: unknown[]): Record<string, unknown> {
  const qs = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
  const path = req.url.replace(/^\/identity\/v3/, '').replace(/\?.*$/, '');
  return { [key]: items, links: { self: `${env.base}${path}${qs}`, previous: null, next: null } };
}

/**
 * Applies `limit`/`marker` paging by id (Keystone itself truncates lists;
 * we page them, and say so in `links.next`).
 */
export function page<T extends { id: string }>(items: T[], q: { limit?: number; marker?: string }): { items: T[]; more: boolean } {
  let start = 0;
  if (q.marker) {
    const i = items.findIndex((x) => x.id === q.marker);
    if (i < 0) throw badRequest(`Marker ${q.marker} could not be found.`);
    start = i + 1;
  }
  const limit = q.limit && q.limit > 0 ? q.limit : items.length;
  const out = items.slice(start, start + limit);
  return { items: out, more: start + limit < items.length };
}

export function pagedList<T extends { id: string }>(env: ApiEnv, req: FastifyRequest, key: string, all: T[], q: { limit?: number; marker?: string }, render: (x: T) => unknown) {
  const { items, more } = page(all, q);
  const body = listBody(env, req, key, items.map(render));
  if (more && items.length) {
    const path = req.url.replace(/^\/identity\/v3/, '').replace(/\?.*$/, '');
    const params = new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');
    params.set('marker', items[items.length - 1]!.id);
    (body.links as Record<string, unknown>).next = `${env.base}${path}?${params.toString()}`;
  }
  return body;
}

/** Keystone accepts "true"/"false" (and a bare key) for boolean filters. */
export function boolParam(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === '' || /^(true|1|yes|on)$/i.test(v)) return true;
  if (/^(false|0|no|off)$/i.test(v)) return false;
  throw badRequest(`Invalid boolean query value: ${v}`);
}

export const IdParam = Type.Object({ id: Type.String({ maxLength: 255 }) });
export const ListQuery = <T extends TProperties>(extra: T) =>
  Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 0 })), marker: Type.Optional(Type.String()), ...extra }, { additionalProperties: true });
export const Name = Type.String({ minLength: 1, maxLength: 255 });
/** Keystone limits project, domain and group names to 64 characters. */
export const Name64 = Type.String({ minLength: 1, maxLength: 64 });
export const OptStr = (max = 65535) => Type.Optional(Type.String({ maxLength: max }));
