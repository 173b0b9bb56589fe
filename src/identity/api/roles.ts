import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { defineRoute, type RouteDef } from '../../core/http.js';
import { badRequest } from '../../core/errors.js';
import type { Identity } from '../index.js';
import { boolParam, IdParam, ListQuery, Name, OptStr, pagedList, selfLink, listBody, type ApiEnv } from './common.js';
import type { Role, Actor, Target, AssignmentView } from '../service/assignments.js';

const RoleCreate = Type.Object(
  { role: Type.Object({ name: Name, domain_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), description: OptStr(), options: Type.Optional(Type.Object({}, { additionalProperties: true })) }, { additionalProperties: true }) },
  { additionalProperties: false },
);
const RoleUpdate = Type.Object(
  { role: Type.Object({ name: Type.Optional(Name), description: OptStr(), domain_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), options: Type.Optional(Type.Object({}, { additionalProperties: true })) }, { additionalProperties: true, minProperties: 1 }) },
  { additionalProperties: false },
);

export function roleRoutes(id: Identity, env: ApiEnv): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = (x: Role) => ({ ...x, links: selfLink(env, `/roles/${x.id}`) });
  const ref = (x: Role) => ({ id: x.id, name: x.name, links: selfLink(env, `/roles/${x.id}`) });

  // Grants: /{projects|domains}/{tid}/{users|groups}/{aid}/roles[/{rid}], plus OS-INHERIT and system.
  const grantRoutes: RouteDef<any, any, any>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  for (const tkind of ['projects', 'domains'] as const)
    for (const akind of ['users', 'groups'] as const)
      for (const inherited of [false, true]) {
        const base = `${inherited ? '/OS-INHERIT' : ''}/${tkind}/:tid/${akind}/:aid/roles`;
        const actor = (p: { aid: string }): Actor => (akind === 'users' ? { user: p.aid } : { group: p.aid });
        const target = (p: { tid: string }): Target => (tkind === 'projects' ? { project: p.tid } : { domain: p.tid });
        const check = async (p: { tid: string; aid: string; rid?: string }) => {
          const t = tkind === 'projects' ? await id.resources.getProject(p.tid) : await id.resources.getDomain(p.tid);
          if (akind === 'users') await id.users.get(p.aid); else await id.users.getGroup(p.aid);
          if (p.rid) await id.assignments.getRole(p.rid);
          return { domain_id: tkind === 'projects' ? (t as unknown as { domain_id: string }).domain_id : t.id, project: t, target: t };
        };
        const P = Type.Object({ tid: Type.String(), aid: Type.String(), rid: Type.String() });
        grantRoutes.push(
          defineRoute({
            method: 'GET', url: inherited ? `${base}/inherited_to_projects` : base, policy: 'identity:list_grants', errors: [404],
            params: Type.Object({ tid: Type.String(), aid: Type.String() }),
            target: (req) => check(req.params),
            handler: async (req) => listBody(env, req, 'roles', (await id.assignments.listGranted(actor(req.params), target(req.params), inherited)).map(ref)),
          }),
          defineRoute({
            method: 'PUT', url: inherited ? `${base}/:rid/inherited_to_projects` : `${base}/:rid`, policy: 'identity:create_grant', status: 204, errors: [404], params: P,
            target: (req) => check(req.params),
            handler: async (req, reply) => {
              await id.assignments.grant(actor(req.params), target(req.params), req.params.rid, inherited);
              reply.code(204).send();
            },
          }),
          defineRoute({
            method: 'HEAD', url: inherited ? `${base}/:rid/inherited_to_projects` : `${base}/:rid`, policy: 'identity:check_grant', status: 204, errors: [404], params: P,
            target: (req) => check(req.params),
            handler: async (req, reply) => {
              await id.assignments.check(actor(req.params), target(req.params), req.params.rid, inherited);
              reply.code(204).send();
            },
          }),
          defineRoute({
            method: 'GET', url: inherited ? `${base}/:rid/inherited_to_projects` : `${base}/:rid`, policy: 'identity:check_grant', status: 204, errors: [404], params: P,
            target: (req) => check(req.params),
            handler: async (req, reply) => {
              await id.assignments.check(actor(req.params), target(req.params), req.params.rid, inherited);
              reply.code(204).send();
            },
          }),
          defineRoute({
            method: 'DELETE', url: inherited ? `${base}/:rid/inherited_to_projects` : `${base}/:rid`, policy: 'identity:revoke_grant', status: 204, errors: [404], params: P,
            target: (req) => check(req.params),
            handler: async (req, reply) => {
              await id.assignments.revoke(actor(req.params), target(req.params), req.params.rid, inherited);
              reply.code(204).send();
            },
          }),
        );
      }
  for (const akind of ['users', 'groups'] as const) {
    const actor = (aid: string): Actor => (akind === 'users' ? { user: aid } : { group: aid });
    const exists = (aid: string) => (akind === 'users' ? id.users.get(aid) : id.users.getGroup(aid));
    const P = Type.Object({ aid: Type.String(), rid: Type.String() });
    grantRoutes.push(
      defineRoute({
        method: 'GET', url: `/system/${akind}/:aid/roles`, policy: 'identity:list_system_grants', errors: [404], params: Type.Object({ aid: Type.String() }),
        target: async (req) => ({ actor: await exists(req.params.aid) }),
        handler: async (req) => listBody(env, req, 'roles', (await id.assignments.listGranted(actor(req.params.aid), { system: true })).map(ref)),
      }),
      defineRoute({
        method: 'PUT', url: `/system/${akind}/:aid/roles/:rid`, policy: 'identity:create_system_grant', status: 204, errors: [404], params: P,
        target: async (req) => ({ actor: await exists(req.params.aid) }),
        handler: async (req, reply) => {
          await id.assignments.grant(actor(req.params.aid), { system: true }, req.params.rid);
          reply.code(204).send();
        },
      }),
      defineRoute({
        method: 'HEAD', url: `/system/${akind}/:aid/roles/:rid`, policy: 'identity:list_system_grants', status: 204, errors: [404], params: P,
        target: async (req) => ({ actor: await exists(req.params.aid) }),
        handler: async (req, reply) => {
          await id.assignments.check(actor(req.params.aid), { system: true }, req.params.rid);
          reply.code(204).send();
        },
      }),
      defineRoute({
        method: 'GET', url: `/system/${akind}/:aid/roles/:rid`, policy: 'identity:list_system_grants', status: 204, errors: [404], params: P,
        target: async (req) => ({ actor: await exists(req.params.aid) }),
        handler: async (req, reply) => {
          await id.assignments.check(actor(req.params.aid), { system: true }, req.params.rid);
          reply.code(204).send();
        },
      }),
      defineRoute({
        method: 'DELETE', url: `/system/${akind}/:aid/roles/:rid`, policy: 'identity:revoke_system_grant', status: 204, errors: [404], params: P,
        target: async (req) => ({ actor: await exists(req.params.aid) }),
        handler: async (req, reply) => {
          await id.assignments.revoke(actor(req.params.aid), { system: true }, req.params.rid);
          reply.code(204).send();
        },
      }),
    );
  }

  const renderAssignment = async (a: AssignmentView, names: boolean, cache: Map<string, unknown>) => {
    const memo = async <T>(k: string, f: () => Promise<T>): Promise<T> => {
      if (!cache.has(k)) cache.set(k, await f().catch(() => null));
      return cache.get(k) as T;
    };
    const domName = async (did: string) => (await memo(`d:${did}`, () => id.resources.getDomain(did)) as { name?: string } | null)?.name;
    const out: Record<string, unknown> = {};
    const role = await memo(`r:${a.roleId}`, () => id.assignments.getRole(a.roleId)) as Role | null;
    out.role = names && role ? { id: a.roleId, name: role.name, ...(role.domain_id ? { domain: { id: role.domain_id, name: await domName(role.domain_id) } } : {}) } : { id: a.roleId };
    if (a.userId) {
      const u = names ? (await memo(`u:${a.userId}`, () => id.users.get(a.userId!)) as { name: string; domain_id: string } | null) : null;
      out.user = u ? { id: a.userId, name: u.name, domain: { id: u.domain_id, name: await domName(u.domain_id) } } : { id: a.userId };
    } else if (a.groupId) {
      const g = names ? (await memo(`g:${a.groupId}`, () => id.users.getGroup(a.groupId!)) as { name: string; domain_id: string } | null) : null;
      out.group = g ? { id: a.groupId, name: g.name, domain: { id: g.domain_id, name: await domName(g.domain_id) } } : { id: a.groupId };
    }
    if (a.projectId) {
      const p = names ? (await memo(`p:${a.projectId}`, () => id.resources.getProject(a.projectId!)) as { name: string; domain_id: string } | null) : null;
      out.scope = { project: p ? { id: a.projectId, name: p.name, domain: { id: p.domain_id, name: await domName(p.domain_id) } } : { id: a.projectId } };
    } else if (a.domainId) {
      out.scope = { domain: names ? { id: a.domainId, name: await domName(a.domainId) } : { id: a.domainId } };
    } else if (a.system) out.scope = { system: { all: true } };
    if (a.inherited) (out.scope as Record<string, unknown>)['OS-INHERIT:inherited_to'] = 'projects';
    const actorPath = a.userId ? `users/${a.userId}` : `groups/${a.groupId}`;
    const tgtPath = a.projectId ? `projects/${a.projectId}` : a.domainId ? `domains/${a.domainId}` : 'system';
    out.links = {
      assignment: `${env.base}${a.inherited ? '/OS-INHERIT' : ''}/${tgtPath}/${actorPath}/roles/${a.roleId}${a.inherited ? '/inherited_to_projects' : ''}`,
      ...(a.viaGroup ? { membership: `${env.base}/groups/${a.viaGroup}/users/${a.userId}` } : {}),
    };
    return out;
  };

  const descendants = async (pid: string): Promise<string[]> => {
    const all = await id.resources.listProjects({});
    const out: string[] = [];
    const walk = (p: string) => {
      for (const c of all.filter((x) => x.parent_id === p)) {
        out.push(c.id);
        walk(c.id);
      }
    };
    walk(pid);
    return out;
  };

  return [
    defineRoute({
      method: 'GET', url: '/roles', policy: 'identity:list_roles',
      query: ListQuery({ name: Type.Optional(Type.String()), domain_id: Type.Optional(Type.String()) }),
      handler: async (req) => pagedList(env, req, 'roles', await id.assignments.listRoles({ name: req.query.name, domain_id: req.query.domain_id ?? null }), req.query, r),
    }),
    defineRoute({
      method: 'POST', url: '/roles', policy: 'identity:create_role', body: RoleCreate, status: 201, errors: [409],
      handler: async (req) => ({ role: r(await id.assignments.createRole(req.body.role)) }),
    }),
    defineRoute({
      method: 'GET', url: '/roles/:id', policy: 'identity:get_role', params: IdParam, errors: [404],
      handler: async (req) => ({ role: r(await id.assignments.getRole(req.params.id)) }),
    }),
    defineRoute({
      method: 'PATCH', url: '/roles/:id', policy: 'identity:update_role', params: IdParam, body: RoleUpdate, errors: [404, 409],
      handler: async (req) => ({ role: r(await id.assignments.updateRole(req.params.id, req.body.role)) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/roles/:id', policy: 'identity:delete_role', params: IdParam, status: 204, errors: [404],
      handler: async (req, reply) => {
        await id.assignments.deleteRole(req.params.id);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/roles/:id/implies', policy: 'identity:list_implied_roles', params: IdParam, errors: [404],
      handler: async (req) => {
        const [rule] = await id.assignments.listImplied(req.params.id);
        return { role_inference: { prior_role: ref(rule!.prior), implies: rule!.implies.map(ref) }, links: selfLink(env, `/roles/${req.params.id}/implies`) };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/roles/:prior/implies/:implied', policy: 'identity:create_implied_role', status: 201, errors: [404],
      params: Type.Object({ prior: Type.String(), implied: Type.String() }),
      handler: async (req) => {
        await id.assignments.addImplied(req.params.prior, req.params.implied);
        return { role_inference: { prior_role: ref(await id.assignments.getRole(req.params.prior)), implies: ref(await id.assignments.getRole(req.params.implied)) }, links: selfLink(env, `/roles/${req.params.prior}/implies/${req.params.implied}`) };
      },
    }),
    defineRoute({
      method: 'HEAD', url: '/roles/:prior/implies/:implied', policy: 'identity:get_implied_role', status: 204, errors: [404],
      params: Type.Object({ prior: Type.String(), implied: Type.String() }),
      handler: async (req, reply) => {
        await id.assignments.getImplied(req.params.prior, req.params.implied);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/roles/:prior/implies/:implied', policy: 'identity:get_implied_role', errors: [404],
      params: Type.Object({ prior: Type.String(), implied: Type.String() }),
      handler: async (req) => {
        await id.assignments.getImplied(req.params.prior, req.params.implied);
        return { role_inference: { prior_role: ref(await id.assignments.getRole(req.params.prior)), implies: ref(await id.assignments.getRole(req.params.implied)) }, links: selfLink(env, `/roles/${req.params.prior}/implies/${req.params.implied}`) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/roles/:prior/implies/:implied', policy: 'identity:delete_implied_role', status: 204, errors: [404],
      params: Type.Object({ prior: Type.String(), implied: Type.String() }),
      handler: async (req, reply) => {
        await id.assignments.removeImplied(req.params.prior, req.params.implied);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/role_inferences', policy: 'identity:list_role_inference_rules',
      handler: async () => ({
        role_inferences: (await id.assignments.listImplied()).map((x) => ({ prior_role: ref(x.prior), implies: x.implies.map(ref) })),
        links: selfLink(env, '/role_inferences'),
      }),
    }),
    defineRoute({
      method: 'GET', url: '/role_assignments', policy: 'identity:list_role_assignments',
      query: Type.Object({}, { additionalProperties: true }),
      target: (req) => ({ domain_id: (req.query as Record<string, string>)['scope.domain.id'] }),
      handler: async (req: FastifyRequest) => {
        const q = req.query as Record<string, string | undefined>;
        const effective = q.effective !== undefined && boolParam(q.effective) !== false;
        if (effective && q['group.id']) throw badRequest('Combining effective and group filter will always result in an empty list.');
        const list = await id.assignments.listAssignments({
          userId: q['user.id'], groupId: q['group.id'], roleId: q['role.id'], projectId: q['scope.project.id'], domainId: q['scope.domain.id'],
          system: q['scope.system'] !== undefined ? true : undefined,
          inherited: q['scope.OS-INHERIT:inherited_to'] !== undefined ? true : undefined,
          effective,
          projectsInDomain: async (did) => (await id.resources.listProjects({ domain_id: did })).map((p) => p.id),
          descendants,
        });
        const names = q.include_names !== undefined && boolParam(q.include_names) !== false;
        const cache = new Map<string, unknown>();
        const out = [];
        for (const a of list) out.push(await renderAssignment(a, names, cache));
        return listBody(env, req, 'role_assignments', out);
      },
    }),
    ...grantRoutes,
  ];
}
