import { Type } from '@sinclair/typebox';
import { defineRoute, type RouteDef } from '../../core/http.js';
import { badRequest, forbidden, notFound, unauthorized } from '../../core/errors.js';
import type { Identity } from '../index.js';
import type { AuthRequest } from '../service/tokens.js';
import { listBody, selfLink, type ApiEnv } from './common.js';
import { projectView } from '../service/resources.js';
import { bool } from '../../core/db.js';
import { verifyEc2Signature } from '../service/ec2-signature.js';

const AuthBody = Type.Object(
  {
    auth: Type.Object(
      {
        identity: Type.Object({ methods: Type.Array(Type.String(), { minItems: 1 }) }, { additionalProperties: true }),
        scope: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.String()])),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: true },
);

export function versionDoc(base: string) {
  return {
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${base}/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  };
}

export function authRoutes(id: Identity, env: ApiEnv): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const subject = async (req: { headers: Record<string, unknown>; auth: unknown }, allowExpired = false) => {
    const t = req.headers['x-subject-token'];
    if (typeof t !== 'string' || !t) throw badRequest('X-Subject-Token header is required.');
    const ctx = await id.tokens.validate(t, { allowExpired });
    if (!ctx) throw notFound('Could not find token: the token is invalid, expired or revoked.');
    return ctx;
  };
  return [
    defineRoute({ method: 'GET', url: '', policy: null, handler: async () => ({ version: versionDoc(env.base) }) }),
    defineRoute({
      method: 'POST',
      url: '/auth/tokens',
      policy: null,
      body: AuthBody,
      status: 201,
      errors: [404, 409],
      query: Type.Object({ nocatalog: Type.Optional(Type.String()) }, { additionalProperties: true }),
      handler: async (req, reply) => {
        const issued = await id.tokens.issue(req.body.auth as unknown as AuthRequest);
        reply.header('x-subject-token', issued.token);
        return id.tokens.render(issued.ctx, req.query.nocatalog === undefined);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/auth/tokens',
      policy: 'identity:validate_token',
      errors: [404],
      query: Type.Object({ nocatalog: Type.Optional(Type.String()), allow_expired: Type.Optional(Type.String()) }, { additionalProperties: true }),
      target: async (req) => ({ token: { user_id: (await subject(req, /^(1|true)$/i.test(req.query.allow_expired ?? ''))).userId } }),
      handler: async (req, reply) => {
        const token = req.headers['x-subject-token'] as string;
        const ctx = await subject(req, /^(1|true)$/i.test(req.query.allow_expired ?? ''));
        reply.header('x-subject-token', token);
        return id.tokens.render(ctx, req.query.nocatalog === undefined);
      },
    }),
    defineRoute({
      method: 'HEAD',
      url: '/auth/tokens',
      policy: 'identity:check_token',
      errors: [404],
      target: async (req) => ({ token: { user_id: (await subject(req)).userId } }),
      handler: async (req, reply) => {
        reply.header('x-subject-token', req.headers['x-subject-token'] as string);
        reply.code(200).send();
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/auth/tokens',
      policy: 'identity:revoke_token',
      status: 204,
      errors: [404],
      target: async (req) => ({ token: { user_id: (await subject(req)).userId } }),
      handler: async (req, reply) => {
        await id.tokens.revokeToken(req.headers['x-subject-token'] as string);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/auth/catalog',
      policy: 'identity:get_auth_catalog',
      handler: async (req) => {
        if (!req.auth!.projectId && !req.auth!.domainId && !req.auth!.system) throw forbidden('The service catalog is only available to scoped tokens.');
        return { catalog: await id.tokens.catalogFor(req.auth!), links: selfLink(env, '/auth/catalog') };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/auth/projects',
      policy: 'identity:get_auth_projects',
      handler: async (req) => {
        const all = await id.resources.listProjects({ enabled: true });
        const mine = new Set(await id.assignments.projectsForUser(req.auth!.userId, all));
        const domains = new Map((await id.resources.listDomains({})).map((d) => [d.id, d.enabled]));
        const projects = all.filter((p) => mine.has(p.id) && domains.get(p.domain_id));
        return listBody(env, req, 'projects', projects.map((p) => ({ ...p, links: selfLink(env, `/projects/${p.id}`) })));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/auth/domains',
      policy: 'identity:get_auth_domains',
      handler: async (req) => {
        const ids = await id.assignments.domainsForUser(req.auth!.userId);
        const domains = (await id.resources.listDomains({ ids })).filter((d) => d.enabled);
        return listBody(env, req, 'domains', domains.map((d) => ({ ...d, links: selfLink(env, `/domains/${d.id}`) })));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/auth/system',
      policy: 'identity:get_auth_system',
      handler: async (req) => {
        const roles = await id.assignments.effectiveSystemRoles(req.auth!.userId);
        return { system: roles.size ? [{ all: true }] : [], links: selfLink(env, '/auth/system') };
      },
    }),
    // EC2/S3 signature validation: a service (the S3 API) presents a signed
    // request and gets back a token for the credential's owner.
    defineRoute({
      method: 'POST',
      url: '/ec2tokens',
      policy: null,
      errors: [],
      body: Type.Object({ credentials: Type.Optional(Type.Object({}, { additionalProperties: true })), credential: Type.Optional(Type.Object({}, { additionalProperties: true })) }, { additionalProperties: true }),
      handler: async (req, reply) => {
        const cred = (req.body.credentials ?? req.body.credential) as Record<string, unknown> | undefined;
        if (!cred || typeof cred.access !== 'string' || typeof cred.signature !== 'string') throw badRequest('EC2 credentials with access and signature are required.');
        const found = await id.creds.findEc2(cred.access);
        if (!found || !verifyEc2Signature(cred, found.secret)) throw unauthorized('EC2 signature not supplied or invalid.');
        if (!ec2TimestampFresh(cred)) throw unauthorized('EC2 signature expired: the signed request is older than 15 minutes.');
        const user = await id.users.getRow(found.user_id);
        const project = await id.resources.getProjectRow(found.tenant_id);
        if (!user || !bool(user.enabled) || !project || !bool(project.enabled)) throw unauthorized();
        const issued = await id.tokens.issueFor(user.id, project.id, ['ec2credential']);
        reply.header('x-subject-token', issued.token);
        reply.code(200);
        return id.tokens.render(issued.ctx, true);
      },
    }),
  ];
}

export { projectView };

/** A signed request is only good for 15 minutes (replay protection, as Keystone's _check_timestamp). */
function ec2TimestampFresh(cred: Record<string, unknown>): boolean {
  const params = (cred.params ?? {}) as Record<string, string>;
  const headers = Object.fromEntries(Object.entries((cred.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const raw = headers['x-amz-date'] ?? params['X-Amz-Date'] ?? params.Timestamp ?? headers.date;
  if (!raw) return true; // V2 requests without a timestamp are signed over Expires/none; nothing to check
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(raw);
  const t = m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : Date.parse(raw);
  if (Number.isNaN(t)) return false;
  const expires = Number(params['X-Amz-Expires'] ?? 0);
  const window = Math.max(15 * 60, expires) * 1000;
  return Math.abs(Date.now() - t) <= window;
}
