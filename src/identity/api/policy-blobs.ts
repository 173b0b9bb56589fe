import { Type } from '@sinclair/typebox';
import { defineRoute, type RouteDef } from '../../core/http.js';
import { notFound } from '../../core/errors.js';
import { hexId } from '../../core/ids.js';
import type { Identity } from '../index.js';
import { listBody, selfLink, type ApiEnv } from './common.js';

/** /v3/policies: opaque policy blobs (Keystone stores them for other services; Stratus does not interpret them). */
export function policyBlobRoutes(id: Identity, env: ApiEnv): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const db = id.core.db;
  const view = (r: { id: string; type: string; blob: string; extra: string }) => ({ ...(JSON.parse(r.extra) as object), id: r.id, type: r.type, blob: r.blob, links: selfLink(env, `/policies/${r.id}`) });
  const get = async (pid: string) => {
    const r = await db.selectFrom('id_policy_blobs').selectAll().where('id', '=', pid).executeTakeFirst();
    if (!r) throw notFound(`Could not find policy: ${pid}.`);
    return r;
  };
  const Body = Type.Object({ policy: Type.Object({ type: Type.String({ minLength: 1, maxLength: 255 }), blob: Type.String() }, { additionalProperties: true }) }, { additionalProperties: false });
  const Patch = Type.Object({ policy: Type.Object({ type: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), blob: Type.Optional(Type.String()) }, { additionalProperties: true }) }, { additionalProperties: false });
  const P = Type.Object({ id: Type.String() });
  return [
    defineRoute({
      method: 'GET', url: '/policies', policy: 'identity:list_policies', query: Type.Object({ type: Type.Optional(Type.String()) }, { additionalProperties: true }),
      handler: async (req) => {
        let q = db.selectFrom('id_policy_blobs').selectAll();
        if (req.query.type) q = q.where('type', '=', req.query.type);
        return listBody(env, req, 'policies', (await q.execute()).map(view));
      },
    }),
    defineRoute({
      method: 'POST', url: '/policies', policy: 'identity:create_policy', body: Body, status: 201,
      handler: async (req) => {
        const { type, blob, id: _i, ...extra } = req.body.policy as { type: string; blob: string; id?: string };
        const row = { id: hexId(), type, blob, extra: JSON.stringify(extra) };
        await db.insertInto('id_policy_blobs').values(row).execute();
        return { policy: view(row) };
      },
    }),
    defineRoute({ method: 'GET', url: '/policies/:id', policy: 'identity:get_policy', params: P, errors: [404], handler: async (req) => ({ policy: view(await get(req.params.id)) }) }),
    defineRoute({
      method: 'PATCH', url: '/policies/:id', policy: 'identity:update_policy', params: P, body: Patch, errors: [404],
      handler: async (req) => {
        const cur = await get(req.params.id);
        const { type, blob, id: _i, ...extra } = req.body.policy as { type?: string; blob?: string; id?: string };
        await db.updateTable('id_policy_blobs').set({ type: type ?? cur.type, blob: blob ?? cur.blob, extra: JSON.stringify({ ...(JSON.parse(cur.extra) as object), ...extra }) }).where('id', '=', cur.id).execute();
        return { policy: view(await get(cur.id)) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/policies/:id', policy: 'identity:delete_policy', params: P, status: 204, errors: [404],
      handler: async (req, reply) => {
        await get(req.params.id);
        await db.deleteFrom('id_policy_blobs').where('id', '=', req.params.id).execute();
        reply.code(204).send();
      },
    }),
  ];
}
