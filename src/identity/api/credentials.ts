import { Type } from '@sinclair/typebox';
import { defineRoute, allowed, type RouteDef } from '../../core/http.js';
import { badRequest, forbidden, notFound } from '../../core/errors.js';
import type { PolicyEngine } from '../../core/policy.js';
import type { Identity } from '../index.js';
import { listBody, selfLink, type ApiEnv } from './common.js';
import type { AppCred, Credential } from '../service/credentials.js';

/** ISO 8601 → microseconds since the epoch (naive times are UTC, as in Keystone). */
function parseMicros(s: string): number {
  const m = /^(.*?)(?:\.(\d{1,6}))?(Z|[+-]\d\d:?\d\d)?$/.exec(s.trim());
  if (!m) return NaN;
  const ms = Date.parse(m[1]! + (m[3] ?? 'Z'));
  return ms * 1000 + Number((m[2] ?? '').padEnd(6, '0') || 0);
}

const RoleRef = Type.Object({ id: Type.Optional(Type.String()), name: Type.Optional(Type.String()), domain_id: Type.Optional(Type.Union([Type.String(), Type.Null()])) }, { additionalProperties: false });
const AppCredCreate = Type.Object(
  {
    application_credential: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 255 }), description: Type.Optional(Type.Union([Type.String(), Type.Null()])),
        secret: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Null()])), expires_at: Type.Optional(Type.Union([Type.String(), Type.Null()])),
        roles: Type.Optional(Type.Array(RoleRef)), unrestricted: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
        access_rules: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const CredCreate = Type.Object(
  { credential: Type.Object({ user_id: Type.String(), project_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), type: Type.String({ minLength: 1, maxLength: 255 }), blob: Type.String({ minLength: 1 }) }, { additionalProperties: true }) },
  { additionalProperties: false },
);
const CredUpdate = Type.Object(
  { credential: Type.Object({ user_id: Type.Optional(Type.String()), project_id: Type.Optional(Type.String()), type: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), blob: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: true, minProperties: 1 }) },
  { additionalProperties: false },
);
const UA = Type.Object({ uid: Type.String(), aid: Type.String() });

export function credentialRoutes(id: Identity, env: ApiEnv, policy: PolicyEngine): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const ac = (x: AppCred) => {
    const { user_id: _u, ...rest } = x;
    return { ...rest, links: selfLink(env, `/users/${x.user_id}/application_credentials/${x.id}`) };
  };
  const cr = (x: Credential) => ({ ...x, links: selfLink(env, `/credentials/${x.id}`) });
  const ec2 = (x: { access: string; secret: string; user_id: string; tenant_id: string; trust_id: null }) => ({
    ...x, links: selfLink(env, `/users/${x.user_id}/credentials/OS-EC2/${x.access}`),
  });
  const userTarget = async (uid: string) => ({ user: await id.users.get(uid) });
  return [
    defineRoute({
      method: 'GET', url: '/users/:uid/application_credentials', policy: 'identity:list_application_credentials', errors: [404],
      params: Type.Object({ uid: Type.String() }), query: Type.Object({ name: Type.Optional(Type.String()) }, { additionalProperties: true }),
      target: (req) => userTarget(req.params.uid),
      handler: async (req) => listBody(env, req, 'application_credentials', (await id.creds.listAppCreds(req.params.uid, req.query.name)).map(ac)),
    }),
    defineRoute({
      method: 'POST', url: '/users/:uid/application_credentials', policy: 'identity:create_application_credential', status: 201, errors: [404, 409],
      params: Type.Object({ uid: Type.String() }), body: AppCredCreate,
      target: (req) => userTarget(req.params.uid),
      handler: async (req) => {
        const auth = req.auth!;
        if (!auth.projectId) throw badRequest('Application credentials can only be created with a project-scoped token.');
        if (auth.applicationCredentialId) {
          const parent = await id.creds.getAppCredRow(auth.applicationCredentialId);
          if (!parent || parent.unrestricted !== 1) throw forbidden('A restricted application credential cannot create another application credential.');
        }
        const b = req.body.application_credential;
        const have = await id.assignments.roleNames(auth.roleIds);
        let roles = have;
        if (b.roles && b.roles.length) {
          roles = [];
          for (const r of b.roles) {
            const m = have.find((h) => (r.id && h.id === r.id) || (r.name && h.name === r.name));
            if (!m) throw forbidden(`The user does not hold the requested role ${r.id ?? r.name} on the project.`);
            roles.push(m);
          }
        }
        let expiresAt: number | null = null;
        if (b.expires_at) {
          expiresAt = parseMicros(b.expires_at);
          if (Number.isNaN(expiresAt)) throw badRequest(`Invalid input for field 'expires_at': ${b.expires_at} is not a valid date.`);
        }
        const created = await id.creds.createAppCred({
          userId: req.params.uid, projectId: auth.projectId, name: b.name, description: b.description ?? '', secret: b.secret ?? undefined,
          expiresAt, unrestricted: b.unrestricted ?? false, roles, accessRules: b.access_rules,
        });
        return { application_credential: { ...ac(created), secret: created.secret } };
      },
    }),
    defineRoute({
      method: 'GET', url: '/users/:uid/application_credentials/:aid', policy: 'identity:get_application_credential', errors: [404], params: UA,
      target: (req) => userTarget(req.params.uid),
      handler: async (req) => ({ application_credential: ac(await id.creds.getAppCred(req.params.uid, req.params.aid)) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/users/:uid/application_credentials/:aid', policy: 'identity:delete_application_credential', status: 204, errors: [404], params: UA,
      target: (req) => userTarget(req.params.uid),
      handler: async (req, reply) => {
        await id.creds.deleteAppCred(req.params.uid, req.params.aid);
        reply.code(204).send();
      },
    }),

    defineRoute({
      method: 'GET', url: '/credentials', policy: 'identity:list_credentials',
      query: Type.Object({ user_id: Type.Optional(Type.String()), type: Type.Optional(Type.String()) }, { additionalProperties: true }),
      target: (req) => ({ credential: { user_id: req.query.user_id ?? req.auth?.userId } }),
      handler: async (req) => {
        // Callers without cloud read access only ever see their own credentials.
        const list = await id.creds.listCredentials(req.query);
        const mine = list.filter((c) => allowed(policy, req, 'identity:get_credential', { credential: c }));
        return listBody(env, req, 'credentials', mine.map(cr));
      },
    }),
    defineRoute({
      method: 'POST', url: '/credentials', policy: 'identity:create_credential', body: CredCreate, status: 201, errors: [409],
      target: (req) => ({ credential: req.body.credential }),
      handler: async (req) => ({ credential: cr(await id.creds.createCredential(req.body.credential)) }),
    }),
    defineRoute({
      method: 'GET', url: '/credentials/:id', policy: 'identity:get_credential', params: Type.Object({ id: Type.String() }), errors: [404],
      target: async (req) => ({ credential: await id.creds.getCredential(req.params.id) }),
      handler: async (req) => ({ credential: cr(await id.creds.getCredential(req.params.id)) }),
    }),
    defineRoute({
      method: 'PATCH', url: '/credentials/:id', policy: 'identity:update_credential', params: Type.Object({ id: Type.String() }), body: CredUpdate, errors: [404],
      target: async (req) => ({ credential: await id.creds.getCredential(req.params.id) }),
      handler: async (req) => ({ credential: cr(await id.creds.updateCredential(req.params.id, req.body.credential)) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/credentials/:id', policy: 'identity:delete_credential', params: Type.Object({ id: Type.String() }), status: 204, errors: [404],
      target: async (req) => ({ credential: await id.creds.getCredential(req.params.id) }),
      handler: async (req, reply) => {
        await id.creds.deleteCredential(req.params.id);
        reply.code(204).send();
      },
    }),

    defineRoute({
      method: 'GET', url: '/users/:uid/credentials/OS-EC2', policy: 'identity:ec2_list_credentials', errors: [404], params: Type.Object({ uid: Type.String() }),
      target: (req) => userTarget(req.params.uid),
      handler: async (req) => listBody(env, req, 'credentials', (await id.creds.listEc2(req.params.uid)).map(ec2)),
    }),
    defineRoute({
      method: 'POST', url: '/users/:uid/credentials/OS-EC2', policy: 'identity:ec2_create_credential', status: 201, errors: [404],
      params: Type.Object({ uid: Type.String() }),
      body: Type.Object({ tenant_id: Type.Optional(Type.String()), project_id: Type.Optional(Type.String()) }, { additionalProperties: true }),
      target: (req) => userTarget(req.params.uid),
      handler: async (req) => {
        const projectId = req.body.tenant_id ?? req.body.project_id ?? req.auth!.projectId;
        if (!projectId) throw badRequest("Invalid input for field 'tenant_id': a project is required.");
        const prj = await id.resources.getProjectRow(projectId);
        if (!prj) throw notFound(`Could not find project: ${projectId}.`);
        const roles = await id.assignments.effectiveProjectRoles(req.params.uid, projectId);
        if (roles.size === 0) throw forbidden(`User ${req.params.uid} has no role on project ${projectId}.`);
        return { credential: ec2(await id.creds.createEc2(req.params.uid, projectId)) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/users/:uid/credentials/OS-EC2/:aid', policy: 'identity:ec2_get_credential', errors: [404], params: UA,
      target: (req) => userTarget(req.params.uid),
      handler: async (req) => {
        const c = await id.creds.findEc2(req.params.aid);
        if (!c || c.user_id !== req.params.uid) throw notFound(`Could not find credential: ${req.params.aid}.`);
        return { credential: ec2({ ...c, trust_id: null }) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/users/:uid/credentials/OS-EC2/:aid', policy: 'identity:ec2_delete_credential', status: 204, errors: [404], params: UA,
      target: (req) => userTarget(req.params.uid),
      handler: async (req, reply) => {
        await id.creds.deleteEc2(req.params.uid, req.params.aid);
        reply.code(204).send();
      },
    }),
  ];
}
