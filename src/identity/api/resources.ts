import { Type } from '@sinclair/typebox';
import { defineRoute, type RouteDef } from '../../core/http.js';
import type { Identity } from '../index.js';
import { boolParam, IdParam, ListQuery, Name64, OptStr, pagedList, selfLink, type ApiEnv } from './common.js';
import type { Domain, Project } from '../service/resources.js';

const Tags = Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255, pattern: '^[^,/]*$' }), { maxItems: 80 }));
const DomainCreate = Type.Object(
  {
    domain: Type.Object(
      { name: Name64, description: OptStr(), enabled: Type.Optional(Type.Boolean()), tags: Tags, options: Type.Optional(Type.Object({})), explicit_domain_id: Type.Optional(Type.String({ pattern: '^[a-zA-Z0-9_-]{1,64}$' })) },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: false },
);
const DomainUpdate = Type.Object(
  { domain: Type.Object({ name: Type.Optional(Name64), description: OptStr(), enabled: Type.Optional(Type.Boolean()), tags: Tags, options: Type.Optional(Type.Object({})) }, { additionalProperties: true, minProperties: 1 }) },
  { additionalProperties: false },
);
const ProjectCreate = Type.Object(
  {
    project: Type.Object(
      {
        name: Name64, domain_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), parent_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), description: OptStr(),
        enabled: Type.Optional(Type.Boolean()), is_domain: Type.Optional(Type.Boolean()), tags: Tags, options: Type.Optional(Type.Object({})),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: false },
);
const ProjectUpdate = Type.Object(
  {
    project: Type.Object(
      { name: Type.Optional(Name64), description: OptStr(), enabled: Type.Optional(Type.Boolean()), tags: Tags, options: Type.Optional(Type.Object({})), domain_id: Type.Optional(Type.String()), parent_id: Type.Optional(Type.String()), is_domain: Type.Optional(Type.Boolean()) },
      { additionalProperties: true, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
);

export function resourceRoutes(id: Identity, env: ApiEnv): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const d = (x: Domain) => ({ ...x, links: selfLink(env, `/domains/${x.id}`) });
  const p = (x: Project) => ({ ...x, links: selfLink(env, `/projects/${x.id}`) });
  return [
    defineRoute({
      method: 'GET', url: '/domains', policy: 'identity:list_domains',
      query: ListQuery({ name: Type.Optional(Type.String()), enabled: Type.Optional(Type.String()) }),
      handler: async (req) => pagedList(env, req, 'domains', await id.resources.listDomains({ name: req.query.name, enabled: boolParam(req.query.enabled) }), req.query, d),
    }),
    defineRoute({
      method: 'POST', url: '/domains', policy: 'identity:create_domain', body: DomainCreate, status: 201, errors: [409],
      handler: async (req) => {
        const { explicit_domain_id, ...rest } = req.body.domain;
        return { domain: d(await id.resources.createDomain({ ...rest, ...(explicit_domain_id ? { id: explicit_domain_id } : {}) })) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/domains/:id', policy: 'identity:get_domain', params: IdParam, errors: [404],
      target: async (req) => ({ domain: await id.resources.getDomain(req.params.id) }),
      handler: async (req) => ({ domain: d(await id.resources.getDomain(req.params.id)) }),
    }),
    defineRoute({
      method: 'PATCH', url: '/domains/:id', policy: 'identity:update_domain', params: IdParam, body: DomainUpdate, errors: [404, 409],
      target: async (req) => ({ domain: await id.resources.getDomain(req.params.id) }),
      handler: async (req) => {
        const before = await id.resources.getDomain(req.params.id);
        const after = await id.resources.updateDomain(req.params.id, req.body.domain);
        if (before.enabled && !after.enabled) await id.tokens.revoke({ domainId: after.id });
        return { domain: d(after) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/domains/:id', policy: 'identity:delete_domain', params: IdParam, status: 204, errors: [404],
      target: async (req) => ({ domain: await id.resources.getDomain(req.params.id) }),
      handler: async (req, reply) => {
        await id.resources.deleteDomain(req.params.id);
        await id.tokens.revoke({ domainId: req.params.id });
        reply.code(204).send();
      },
    }),

    defineRoute({
      method: 'GET', url: '/projects', policy: 'identity:list_projects',
      query: ListQuery({ name: Type.Optional(Type.String()), domain_id: Type.Optional(Type.String()), parent_id: Type.Optional(Type.String()), enabled: Type.Optional(Type.String()), is_domain: Type.Optional(Type.String()), tags: Type.Optional(Type.String()) }),
      target: (req) => ({ domain_id: req.query.domain_id }),
      handler: async (req) => {
        if (boolParam(req.query.is_domain)) return pagedList(env, req, 'projects', [], req.query, p);
        const list = await id.resources.listProjects({
          name: req.query.name, domain_id: req.query.domain_id, parent_id: req.query.parent_id, enabled: boolParam(req.query.enabled), tags: req.query.tags?.split(','),
        });
        return pagedList(env, req, 'projects', list, req.query, p);
      },
    }),
    defineRoute({
      method: 'POST', url: '/projects', policy: 'identity:create_project', body: ProjectCreate, status: 201, errors: [409],
      target: (req) => ({ project: { domain_id: req.body.project.domain_id ?? req.auth?.projectDomainId ?? req.auth?.domainId ?? 'default' } }),
      handler: async (req) => {
        const { parent_id, domain_id, ...rest } = req.body.project;
        // Keystone puts a project without a domain into the caller's domain.
        const dom = domain_id ?? req.auth?.projectDomainId ?? req.auth?.domainId ?? undefined;
        return { project: p(await id.resources.createProject({ ...rest, ...(dom ? { domain_id: dom } : {}), ...(parent_id ? { parent_id } : {}) })) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/projects/:id', policy: 'identity:get_project', params: IdParam, errors: [404],
      target: async (req) => ({ project: await id.resources.getProject(req.params.id) }),
      handler: async (req) => ({ project: p(await id.resources.getProject(req.params.id)) }),
    }),
    defineRoute({
      method: 'PATCH', url: '/projects/:id', policy: 'identity:update_project', params: IdParam, body: ProjectUpdate, errors: [404, 409],
      target: async (req) => ({ project: await id.resources.getProject(req.params.id) }),
      handler: async (req) => {
        const before = await id.resources.getProject(req.params.id);
        const after = await id.resources.updateProject(req.params.id, req.body.project);
        if (before.enabled && !after.enabled) await id.tokens.revoke({ projectId: after.id });
        return { project: p(after) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/projects/:id', policy: 'identity:delete_project', params: IdParam, status: 204, errors: [404],
      target: async (req) => ({ project: await id.resources.getProject(req.params.id) }),
      handler: async (req, reply) => {
        await id.resources.deleteProject(req.params.id);
        await id.tokens.revoke({ projectId: req.params.id });
        reply.code(204).send();
      },
    }),
    // project tags
    defineRoute({
      method: 'GET', url: '/projects/:id/tags', policy: 'identity:get_project', params: IdParam, errors: [404],
      target: async (req) => ({ project: await id.resources.getProject(req.params.id) }),
      handler: async (req) => ({ tags: (await id.resources.getProject(req.params.id)).tags }),
    }),
    defineRoute({
      method: 'PUT', url: '/projects/:id/tags', policy: 'identity:update_project', params: IdParam, errors: [404],
      body: Type.Object({ tags: Type.Array(Type.String({ minLength: 1, maxLength: 255, pattern: '^[^,/]*$' }), { maxItems: 80 }) }, { additionalProperties: false }),
      target: async (req) => ({ project: await id.resources.getProject(req.params.id) }),
      handler: async (req) => ({ tags: (await id.resources.updateProject(req.params.id, { tags: req.body.tags })).tags }),
    }),
    defineRoute({
      method: 'DELETE', url: '/projects/:id/tags', policy: 'identity:update_project', params: IdParam, status: 204, errors: [404],
      target: async (req) => ({ project: await id.resources.getProject(req.params.id) }),
      handler: async (req, reply) => {
        await id.resources.updateProject(req.params.id, { tags: [] });
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: ['PUT'], url: '/projects/:id/tags/:tag', policy: 'identity:update_project', status: 201, errors: [404],
      params: Type.Object({ id: Type.String(), tag: Type.String({ minLength: 1, maxLength: 255, pattern: '^[^,/]*$' }) }),
      target: async (req) => ({ project: await id.resources.getProject(req.params.id) }),
      handler: async (req, reply) => {
        const cur = await id.resources.getProject(req.params.id);
        if (!cur.tags.includes(req.params.tag)) await id.resources.updateProject(req.params.id, { tags: [...cur.tags, req.params.tag] });
        reply.code(201).send();
      },
    }),
    defineRoute({
      method: ['GET'], url: '/projects/:id/tags/:tag', policy: 'identity:get_project', status: 204, errors: [404],
      params: Type.Object({ id: Type.String(), tag: Type.String() }),
      target: async (req) => ({ project: await id.resources.getProject(req.params.id) }),
      handler: async (req, reply) => {
        const cur = await id.resources.getProject(req.params.id);
        if (!cur.tags.includes(req.params.tag)) reply.code(404).send();
        else reply.code(204).send();
      },
    }),
    defineRoute({
      method: ['DELETE'], url: '/projects/:id/tags/:tag', policy: 'identity:update_project', status: 204, errors: [404],
      params: Type.Object({ id: Type.String(), tag: Type.String() }),
      target: async (req) => ({ project: await id.resources.getProject(req.params.id) }),
      handler: async (req, reply) => {
        const cur = await id.resources.getProject(req.params.id);
        await id.resources.updateProject(req.params.id, { tags: cur.tags.filter((t) => t !== req.params.tag) });
        reply.code(204).send();
      },
    }),
  ];
}
