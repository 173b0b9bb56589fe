import { Type } from '@sinclair/typebox';
import { defineRoute, type RouteDef } from '../../core/http.js';
import type { Identity } from '../index.js';
import { boolParam, IdParam, ListQuery, Name, OptStr, pagedList, selfLink, listBody, type ApiEnv } from './common.js';
import type { Group, User } from '../service/users.js';

const Password = Type.Union([Type.String({ maxLength: 4096 }), Type.Null()]);
const UserCreate = Type.Object(
  {
    user: Type.Object(
      {
        name: Name, domain_id: Type.Optional(Type.String()), enabled: Type.Optional(Type.Boolean()), password: Type.Optional(Password),
        default_project_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), description: Type.Optional(Type.Union([Type.String(), Type.Null()])),
        email: Type.Optional(Type.Union([Type.String(), Type.Null()])), options: Type.Optional(Type.Object({}, { additionalProperties: true })),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: false },
);
const UserUpdate = Type.Object(
  {
    user: Type.Object(
      {
        name: Type.Optional(Name), enabled: Type.Optional(Type.Boolean()), password: Type.Optional(Password), domain_id: Type.Optional(Type.String()),
        default_project_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), description: Type.Optional(Type.Union([Type.String(), Type.Null()])),
        email: Type.Optional(Type.Union([Type.String(), Type.Null()])), options: Type.Optional(Type.Object({}, { additionalProperties: true })),
      },
      { additionalProperties: true, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
);
const GroupCreate = Type.Object(
  { group: Type.Object({ name: Name, domain_id: Type.Optional(Type.String()), description: OptStr() }, { additionalProperties: true }) },
  { additionalProperties: false },
);
const GroupUpdate = Type.Object(
  { group: Type.Object({ name: Type.Optional(Name), description: OptStr(), domain_id: Type.Optional(Type.String()) }, { additionalProperties: true, minProperties: 1 }) },
  { additionalProperties: false },
);
const GU = Type.Object({ gid: Type.String(), uid: Type.String() });

export function userRoutes(id: Identity, env: ApiEnv): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const u = (x: User) => ({ ...x, links: selfLink(env, `/users/${x.id}`) });
  const g = (x: Group) => ({ ...x, links: selfLink(env, `/groups/${x.id}`) });
  const userTarget = async (uid: string) => ({ user: await id.users.get(uid) });
  const groupTarget = async (gid: string) => ({ group: await id.users.getGroup(gid) });
  return [
    defineRoute({
      method: 'GET', url: '/users', policy: 'identity:list_users',
      query: ListQuery({ name: Type.Optional(Type.String()), domain_id: Type.Optional(Type.String()), enabled: Type.Optional(Type.String()) }),
      target: (req) => ({ domain_id: req.query.domain_id }),
      handler: async (req) => pagedList(env, req, 'users', await id.users.list({ name: req.query.name, domain_id: req.query.domain_id, enabled: boolParam(req.query.enabled) }), req.query, u),
    }),
    defineRoute({
      method: 'POST', url: '/users', policy: 'identity:create_user', body: UserCreate, status: 201, errors: [409],
      target: (req) => ({ user: { domain_id: req.body.user.domain_id ?? 'default' } }),
      handler: async (req) => {
        const { default_project_id, ...rest } = req.body.user;
        return { user: u(await id.users.create({ ...rest, password: rest.password ?? undefined, ...(default_project_id ? { default_project_id } : {}) })) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/users/:id', policy: 'identity:get_user', params: IdParam, errors: [404],
      target: (req) => userTarget(req.params.id),
      handler: async (req) => ({ user: u(await id.users.get(req.params.id)) }),
    }),
    defineRoute({
      method: 'PATCH', url: '/users/:id', policy: 'identity:update_user', params: IdParam, body: UserUpdate, errors: [404, 409],
      target: (req) => userTarget(req.params.id),
      handler: async (req) => ({ user: u(await id.users.update(req.params.id, req.body.user)) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/users/:id', policy: 'identity:delete_user', params: IdParam, status: 204, errors: [404],
      target: (req) => userTarget(req.params.id),
      handler: async (req, reply) => {
        await id.users.delete(req.params.id);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'POST', url: '/users/:id/password', policy: null, params: IdParam, status: 204, errors: [404],
      body: Type.Object({ user: Type.Object({ original_password: Type.String({ maxLength: 4096 }), password: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }) }, { additionalProperties: false }),
      // Self-service and unprotected, as in Keystone: the original password is the credential.
      handler: async (req, reply) => {
        await id.users.changePassword(req.params.id, req.body.user.original_password, req.body.user.password);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/users/:id/groups', policy: 'identity:list_groups_for_user', params: IdParam, errors: [404],
      target: (req) => userTarget(req.params.id),
      handler: async (req) => listBody(env, req, 'groups', (await id.users.listGroups({ ids: await id.users.userGroupIds(req.params.id) })).map(g)),
    }),
    defineRoute({
      method: 'GET', url: '/users/:id/projects', policy: 'identity:list_user_projects', params: IdParam, errors: [404],
      target: (req) => userTarget(req.params.id),
      handler: async (req) => {
        const all = await id.resources.listProjects({});
        const mine = new Set(await id.assignments.projectsForUser(req.params.id, all));
        return listBody(env, req, 'projects', all.filter((p) => mine.has(p.id)).map((p) => ({ ...p, links: selfLink(env, `/projects/${p.id}`) })));
      },
    }),

    defineRoute({
      method: 'GET', url: '/groups', policy: 'identity:list_groups',
      query: ListQuery({ name: Type.Optional(Type.String()), domain_id: Type.Optional(Type.String()) }),
      target: (req) => ({ domain_id: req.query.domain_id }),
      handler: async (req) => pagedList(env, req, 'groups', await id.users.listGroups({ name: req.query.name, domain_id: req.query.domain_id }), req.query, g),
    }),
    defineRoute({
      method: 'POST', url: '/groups', policy: 'identity:create_group', body: GroupCreate, status: 201, errors: [409],
      target: (req) => ({ group: { domain_id: req.body.group.domain_id ?? 'default' } }),
      handler: async (req) => ({ group: g(await id.users.createGroup(req.body.group)) }),
    }),
    defineRoute({
      method: 'GET', url: '/groups/:id', policy: 'identity:get_group', params: IdParam, errors: [404],
      target: (req) => groupTarget(req.params.id),
      handler: async (req) => ({ group: g(await id.users.getGroup(req.params.id)) }),
    }),
    defineRoute({
      method: 'PATCH', url: '/groups/:id', policy: 'identity:update_group', params: IdParam, body: GroupUpdate, errors: [404, 409],
      target: (req) => groupTarget(req.params.id),
      handler: async (req) => ({ group: g(await id.users.updateGroup(req.params.id, req.body.group)) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/groups/:id', policy: 'identity:delete_group', params: IdParam, status: 204, errors: [404],
      target: (req) => groupTarget(req.params.id),
      handler: async (req, reply) => {
        await id.users.deleteGroup(req.params.id);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/groups/:id/users', policy: 'identity:list_users_in_group', params: IdParam, errors: [404],
      target: (req) => groupTarget(req.params.id),
      handler: async (req) => listBody(env, req, 'users', (await id.users.list({ ids: await id.users.groupMemberIds(req.params.id) })).map(u)),
    }),
    defineRoute({
      method: 'PUT', url: '/groups/:gid/users/:uid', policy: 'identity:add_user_to_group', params: GU, status: 204, errors: [404],
      target: (req) => groupTarget(req.params.gid),
      handler: async (req, reply) => {
        await id.users.addMember(req.params.gid, req.params.uid);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'HEAD', url: '/groups/:gid/users/:uid', policy: 'identity:check_user_in_group', params: GU, status: 204, errors: [404],
      target: (req) => groupTarget(req.params.gid),
      handler: async (req, reply) => {
        reply.code((await id.users.isMember(req.params.gid, req.params.uid)) ? 204 : 404).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/groups/:gid/users/:uid', policy: 'identity:check_user_in_group', params: GU, status: 204, errors: [404],
      target: (req) => groupTarget(req.params.gid),
      handler: async (req, reply) => {
        if (!(await id.users.isMember(req.params.gid, req.params.uid))) throw Object.assign(new Error(), { statusCode: 404, message: `User ${req.params.uid} is not a member of group ${req.params.gid}.` });
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/groups/:gid/users/:uid', policy: 'identity:remove_user_from_group', params: GU, status: 204, errors: [404],
      target: (req) => groupTarget(req.params.gid),
      handler: async (req, reply) => {
        await id.users.removeMember(req.params.gid, req.params.uid);
        reply.code(204).send();
      },
    }),
  ];
}
