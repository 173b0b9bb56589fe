import { Type } from '@sinclair/typebox';
import { defineRoute, type RouteDef } from '../../core/http.js';
import type { Identity } from '../index.js';
import { boolParam, IdParam, ListQuery, OptStr, pagedList, selfLink, type ApiEnv } from './common.js';
import type { Endpoint, Region, Service } from '../service/catalog.js';

const RegionBody = Type.Object(
  { region: Type.Object({ id: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), description: OptStr(), parent_region_id: Type.Optional(Type.Union([Type.String(), Type.Null()])) }, { additionalProperties: true }) },
  { additionalProperties: false },
);
const ServiceCreate = Type.Object(
  { service: Type.Object({ type: Type.String({ minLength: 1, maxLength: 255 }), name: OptStr(255), description: OptStr(), enabled: Type.Optional(Type.Boolean()) }, { additionalProperties: true }) },
  { additionalProperties: false },
);
const ServiceUpdate = Type.Object(
  { service: Type.Object({ type: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), name: OptStr(255), description: OptStr(), enabled: Type.Optional(Type.Boolean()) }, { additionalProperties: true, minProperties: 1 }) },
  { additionalProperties: false },
);
const Iface = Type.Union([Type.Literal('public'), Type.Literal('internal'), Type.Literal('admin')]);
const EndpointCreate = Type.Object(
  {
    endpoint: Type.Object(
      { service_id: Type.String(), interface: Iface, url: Type.String({ minLength: 1, maxLength: 225, pattern: '^[a-zA-Z0-9+.-]+://' }), region_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), region: Type.Optional(Type.Union([Type.String(), Type.Null()])), enabled: Type.Optional(Type.Boolean()) },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: false },
);
const EndpointUpdate = Type.Object(
  {
    endpoint: Type.Object(
      { service_id: Type.Optional(Type.String()), interface: Type.Optional(Iface), url: Type.Optional(Type.String({ minLength: 1, maxLength: 225, pattern: '^[a-zA-Z0-9+.-]+://' })), region_id: Type.Optional(Type.Union([Type.String(), Type.Null()])), region: Type.Optional(Type.Union([Type.String(), Type.Null()])), enabled: Type.Optional(Type.Boolean()) },
      { additionalProperties: true, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
);

export function catalogRoutes(id: Identity, env: ApiEnv): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const rg = (x: Region) => ({ ...x, links: selfLink(env, `/regions/${x.id}`) });
  const sv = (x: Service) => ({ ...x, links: selfLink(env, `/services/${x.id}`) });
  const ep = (x: Endpoint) => ({ ...x, links: selfLink(env, `/endpoints/${x.id}`) });
  return [
    defineRoute({
      method: 'GET', url: '/regions', policy: 'identity:list_regions', query: ListQuery({ parent_region_id: Type.Optional(Type.String()) }),
      handler: async (req) => pagedList(env, req, 'regions', await id.catalog.listRegions(req.query), req.query, rg),
    }),
    defineRoute({
      method: 'POST', url: '/regions', policy: 'identity:create_region', body: RegionBody, status: 201, errors: [409],
      handler: async (req) => ({ region: rg(await id.catalog.createRegion(req.body.region as Parameters<Identity['catalog']['createRegion']>[0])) }),
    }),
    defineRoute({
      method: 'PUT', url: '/regions/:id', policy: 'identity:create_region', params: IdParam, body: RegionBody, status: 201, errors: [409],
      handler: async (req) => ({ region: rg(await id.catalog.createRegion({ ...(req.body.region as Record<string, unknown>), id: req.params.id })) }),
    }),
    defineRoute({
      method: 'GET', url: '/regions/:id', policy: 'identity:get_region', params: IdParam, errors: [404],
      handler: async (req) => ({ region: rg(await id.catalog.getRegion(req.params.id)) }),
    }),
    defineRoute({
      method: 'PATCH', url: '/regions/:id', policy: 'identity:update_region', params: IdParam, body: RegionBody, errors: [404],
      handler: async (req) => ({ region: rg(await id.catalog.updateRegion(req.params.id, req.body.region)) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/regions/:id', policy: 'identity:delete_region', params: IdParam, status: 204, errors: [404, 409],
      handler: async (req, reply) => {
        await id.catalog.deleteRegion(req.params.id);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/services', policy: 'identity:list_services', query: ListQuery({ type: Type.Optional(Type.String()), name: Type.Optional(Type.String()) }),
      handler: async (req) => pagedList(env, req, 'services', await id.catalog.listServices(req.query), req.query, sv),
    }),
    defineRoute({
      method: 'POST', url: '/services', policy: 'identity:create_service', body: ServiceCreate, status: 201,
      handler: async (req) => ({ service: sv(await id.catalog.createService(req.body.service)) }),
    }),
    defineRoute({
      method: 'GET', url: '/services/:id', policy: 'identity:get_service', params: IdParam, errors: [404],
      handler: async (req) => ({ service: sv(await id.catalog.getService(req.params.id)) }),
    }),
    defineRoute({
      method: 'PATCH', url: '/services/:id', policy: 'identity:update_service', params: IdParam, body: ServiceUpdate, errors: [404],
      handler: async (req) => ({ service: sv(await id.catalog.updateService(req.params.id, req.body.service)) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/services/:id', policy: 'identity:delete_service', params: IdParam, status: 204, errors: [404],
      handler: async (req, reply) => {
        await id.catalog.deleteService(req.params.id);
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/endpoints', policy: 'identity:list_endpoints',
      query: ListQuery({ interface: Type.Optional(Type.String()), service_id: Type.Optional(Type.String()), region_id: Type.Optional(Type.String()), enabled: Type.Optional(Type.String()) }),
      handler: async (req) => {
        let list = await id.catalog.listEndpoints(req.query);
        const en = boolParam(req.query.enabled);
        if (en !== undefined) list = list.filter((e) => e.enabled === en);
        return pagedList(env, req, 'endpoints', list, req.query, ep);
      },
    }),
    defineRoute({
      method: 'POST', url: '/endpoints', policy: 'identity:create_endpoint', body: EndpointCreate, status: 201,
      handler: async (req) => ({ endpoint: ep(await id.catalog.createEndpoint(req.body.endpoint)) }),
    }),
    defineRoute({
      method: 'GET', url: '/endpoints/:id', policy: 'identity:get_endpoint', params: IdParam, errors: [404],
      handler: async (req) => ({ endpoint: ep(await id.catalog.getEndpoint(req.params.id)) }),
    }),
    defineRoute({
      method: 'PATCH', url: '/endpoints/:id', policy: 'identity:update_endpoint', params: IdParam, body: EndpointUpdate, errors: [404],
      handler: async (req) => ({ endpoint: ep(await id.catalog.updateEndpoint(req.params.id, req.body.endpoint)) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/endpoints/:id', policy: 'identity:delete_endpoint', params: IdParam, status: 204, errors: [404],
      handler: async (req, reply) => {
        await id.catalog.deleteEndpoint(req.params.id);
        reply.code(204).send();
      },
    }),
  ];
}
