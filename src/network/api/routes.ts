import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { allowed, defineRoute, enforce, type RouteDef } from '../../core/http.js';
import type { PolicyEngine } from '../../core/policy.js';
import { bool } from '../../core/db.js';
import type { NetworkService } from '../service/service.js';
import type { Caller } from '../service/context.js';
import { Networks } from '../service/networks.js';
import { Ports } from '../service/ports.js';
import { Routers } from '../service/routers.js';
import { SecurityGroups } from '../service/security-groups.js';
import { HostStates } from '../service/host-state.js';
import { badRequest, nerr, notFound } from '../service/errors.js';
import { unwrap, type Body } from '../service/validate.js';
import type { TaggedResource, View } from '../service/views.js';
import type { NetworkRow } from '../store/tables.js';
import { listBody, projectOne, type RawQuery } from './query.js';
import { EXTENSIONS } from './extensions.js';

export interface NetworkApiEnv {
  /** The endpoint as clients reach it, e.g. http://127.0.0.1:8700/network */
  root: string;
}

const Id = Type.Object({ id: Type.String({ maxLength: 255 }) });
const TagParams = Type.Object({ id: Type.String({ maxLength: 255 }), tag: Type.String({ maxLength: 255 }) });
const ProjectParams = Type.Object({ project_id: Type.String({ maxLength: 255 }) });

type AnyRoute = RouteDef<any, any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Which attribute-level rules a request body triggers (Neutron enforces them for attributes set to a non-default value on create, any value on update). */
const ATTR_RULES: Record<string, Record<string, unknown>> = {
  network: { shared: false, 'router:external': false, 'provider:network_type': undefined, 'provider:physical_network': undefined, 'provider:segmentation_id': undefined },
  port: { mac_address: undefined, 'fixed_ips:ip_address': undefined, port_security_enabled: undefined, 'binding:host_id': '', 'binding:profile': undefined, allowed_address_pairs: undefined, device_owner: undefined },
  router: { 'external_gateway_info:enable_snat': undefined, 'external_gateway_info:external_fixed_ips': undefined },
  floatingip: { floating_ip_address: undefined },
};
const HIDDEN: Record<string, string[]> = {
  network: ['provider:network_type', 'provider:physical_network', 'provider:segmentation_id'],
  port: ['binding:vif_type', 'binding:vif_details', 'binding:host_id', 'binding:profile'],
};

/** A port of a create request, checked and placed, before it is made. */
type PlannedPort = { body: Body; net: NetworkRow; target: Record<string, unknown> };

/** Every route of the Networking API v2.0 and its version documents, mounted under /network. */
export function networkRoutes(svc: NetworkService, policy: PolicyEngine, env: NetworkApiEnv): AnyRoute[] {
  const v2 = `${env.root}/v2.0`;
  const callers = new WeakMap<FastifyRequest, Caller>();
  const stash = new WeakMap<FastifyRequest, { row?: unknown; body?: Body; net?: NetworkRow; extra?: unknown }>();
  const callerOf = (req: FastifyRequest): Caller => {
    let c = callers.get(req);
    if (!c) {
      c = { projectId: req.auth?.projectId ?? null, userId: req.auth?.userId ?? null, admin: allowed(policy, req, 'context_is_admin', {}) };
      callers.set(req, c);
    }
    return c;
  };
  const the = <T>(req: FastifyRequest): { row: T; body: Body; net: NetworkRow; extra: unknown } => stash.get(req) as never;
  const put = (req: FastifyRequest, v: { row?: unknown; body?: Body; net?: NetworkRow; extra?: unknown }) => stash.set(req, { ...(stash.get(req) ?? {}), ...v });
  const noContent = (reply: FastifyReply) => {
    reply.code(204).send();
  };
  const q = (req: FastifyRequest) => req.query as RawQuery;

  /** Drops what the caller's policy does not let them read (provider and binding attributes). */
  const hide = (req: FastifyRequest, res: string, v: View, target: Record<string, unknown>): View => {
    const hidden = HIDDEN[res];
    if (!hidden) return v;
    const out = { ...v };
    for (const a of hidden) if (!allowed(policy, req, `get_${res}:${a}`, target)) delete out[a];
    return out;
  };
  /** Enforces `<action>_<res>:<attr>` for each attribute the body sets. */
  const attrRules = (req: FastifyRequest, action: 'create' | 'update', res: string, b: Body, target: Record<string, unknown>) => {
    const rules = ATTR_RULES[res];
    if (!rules) return;
    for (const [attr, dflt] of Object.entries(rules)) {
      let present: boolean;
      if (attr === 'fixed_ips:ip_address') present = Array.isArray(b.fixed_ips) && (b.fixed_ips as Array<{ ip_address?: string }>).some((f) => f.ip_address !== undefined);
      else if (attr.startsWith('external_gateway_info:')) {
        const gw = b.external_gateway_info as Record<string, unknown> | null | undefined;
        const sub = attr.slice('external_gateway_info:'.length);
        present = !!gw && gw[sub] !== undefined && !(sub === 'enable_snat' && gw[sub] === true && action === 'create');
      } else if (attr === 'device_owner') present = typeof b.device_owner === 'string' && (b.device_owner as string).startsWith('network:');
      else present = b[attr] !== undefined && (action === 'update' || b[attr] !== dflt);
      if (present) enforce(policy, req, `${action}_${res}:${attr}`, target);
    }
  };

  const netTarget = (n: NetworkRow) => ({ project_id: n.project_id, tenant_id: n.project_id, shared: bool(n.shared), 'router:external': bool(n.external) });
  const onNetTarget = (project: string, n: NetworkRow) => ({
    project_id: project,
    tenant_id: project,
    'network:project_id': n.project_id,
    'network:tenant_id': n.project_id,
    'network:shared': bool(n.shared),
  });
  const listTarget = (req: FastifyRequest) => ({ project_id: callerOf(req).projectId, tenant_id: callerOf(req).projectId });
  const bodyOf = (req: FastifyRequest, res: string, check: (b: unknown) => Body) => check(unwrap(req.body, res));

  // Networks whose views need per-item target for hiding.
  const netViews = async (req: FastifyRequest, views: View[]) =>
    views.map((v) => hide(req, 'network', v, { project_id: v.project_id, shared: v.shared, 'router:external': v['router:external'] }));
  const portViews = async (req: FastifyRequest, views: View[]) => views.map((v) => hide(req, 'port', v, { project_id: v.project_id }));

  const preIds = (req: FastifyRequest, key = 'id'): string[] | undefined => {
    const v = (req.query as RawQuery)[key];
    return v === undefined ? undefined : Array.isArray(v) ? v : [v];
  };

  const routes: AnyRoute[] = [
    // ------------------------------------------------------------------ versions and discovery
    defineRoute({
      method: 'GET', url: '/', policy: null,
      handler: async () => ({ versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ href: `${v2}/`, rel: 'self' }] }] }),
    }),
    defineRoute({
      method: 'GET', url: '/v2.0', policy: null,
      handler: async () => ({
        resources: ['network', 'subnet', 'port', 'router', 'floatingip', 'security_group', 'security_group_rule', 'quota', 'agent', 'availability_zone', 'extension'].map((name) => {
          const collection = name === 'security_group' ? 'security-groups' : name === 'security_group_rule' ? 'security-group-rules' : `${name}s`;
          return { name, collection, links: [{ href: `${v2}/${collection}`, rel: 'self' }] };
        }),
      }),
    }),
    defineRoute({
      method: 'GET', url: '/v2.0/extensions', policy: 'get_extension',
      handler: async () => ({ extensions: EXTENSIONS }),
    }),
    defineRoute({
      method: 'GET', url: '/v2.0/extensions/:id', policy: 'get_extension', params: Id, errors: [404],
      handler: async (req) => {
        const e = EXTENSIONS.find((x) => x.alias === req.params.id);
        if (!e) throw nerr(404, 'NotFound', `Extension with alias ${req.params.id} does not exist`);
        return { extension: e };
      },
    }),
    defineRoute({
      method: 'GET', url: '/v2.0/availability_zones', policy: 'get_availability_zone',
      handler: async (req) => {
        const az = svc.ctx.availabilityZone;
        const views = [{ name: az, resource: 'network', state: 'available' }, { name: az, resource: 'router', state: 'available' }];
        return listBody('availability_zones', views.map((v) => ({ ...v, id: `${v.resource}:${v.name}` })), q(req), `${v2}/availability_zones`) as never;
      },
    }),

    // ------------------------------------------------------------------ networks
    defineRoute({
      method: 'GET', url: '/v2.0/networks', policy: 'get_network',
      target: listTarget,
      handler: async (req) => listBody('networks', await netViews(req, await svc.networks.list(callerOf(req), { ids: preIds(req) })), q(req), `${v2}/networks`),
    }),
    defineRoute({
      method: 'POST', url: '/v2.0/networks', policy: 'create_network', status: 201, errors: [404, 409],
      target: (req) => {
        const body = bodyOf(req, 'network', Networks.checkCreate);
        put(req, { body });
        const project = (body.project_id as string | undefined) ?? callerOf(req).projectId;
        return { project_id: project, tenant_id: project };
      },
      handler: async (req) => {
        const { body } = the(req);
        attrRules(req, 'create', 'network', body, { project_id: body.project_id ?? callerOf(req).projectId });
        const v = await svc.networks.create(callerOf(req), body);
        return { network: hide(req, 'network', v, { project_id: v.project_id }) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/v2.0/networks/:id', policy: 'get_network', params: Id, errors: [404],
      target: async (req) => {
        const row = await svc.networks.get(callerOf(req), req.params.id);
        put(req, { row });
        return netTarget(row);
      },
      handler: async (req) => {
        const row = the<NetworkRow>(req).row;
        return { network: projectOne(hide(req, 'network', await svc.networks.view(row), netTarget(row)), q(req)) };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/v2.0/networks/:id', policy: 'update_network', params: Id, errors: [404, 409],
      target: async (req) => {
        const body = bodyOf(req, 'network', Networks.checkUpdate);
        const row = await svc.networks.get(callerOf(req), req.params.id);
        put(req, { row, body });
        return netTarget(row);
      },
      handler: async (req) => {
        const { row, body } = the<NetworkRow>(req);
        for (const a of ['shared', 'router:external']) if (body[a] !== undefined) enforce(policy, req, `update_network:${a}`, netTarget(row));
        return { network: hide(req, 'network', await svc.networks.update(callerOf(req), row, body), netTarget(row)) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v2.0/networks/:id', policy: 'delete_network', params: Id, status: 204, errors: [404, 409],
      target: async (req) => {
        const row = await svc.networks.get(callerOf(req), req.params.id);
        put(req, { row });
        return netTarget(row);
      },
      handler: async (req, reply) => {
        await svc.networks.delete(the<NetworkRow>(req).row);
        noContent(reply);
      },
    }),

    // ------------------------------------------------------------------ subnets
    defineRoute({
      method: 'GET', url: '/v2.0/subnets', policy: 'get_subnet',
      target: listTarget,
      handler: async (req) => listBody('subnets', await svc.networks.listSubnets(callerOf(req), { ids: preIds(req), network_id: preIds(req, 'network_id') }), q(req), `${v2}/subnets`),
    }),
    defineRoute({
      method: 'POST', url: '/v2.0/subnets', policy: 'create_subnet', status: 201, errors: [404, 409],
      target: async (req) => {
        const body = bodyOf(req, 'subnet', Networks.checkSubnetCreate);
        if (typeof body.network_id !== 'string') throw badRequest("Invalid input for network_id. Reason: 'None' is not a valid UUID.");
        const net = await svc.networks.get(callerOf(req), body.network_id);
        put(req, { body, net });
        return onNetTarget((body.project_id as string | undefined) ?? callerOf(req).projectId ?? net.project_id, net);
      },
      handler: async (req) => {
        const { body, net } = the(req);
        return { subnet: await svc.networks.createSubnet(callerOf(req), net, body) };
      },
    }),
    ...['GET', 'PUT', 'DELETE'].map((method) =>
      defineRoute({
        method: method as 'GET', url: '/v2.0/subnets/:id', params: Id, errors: [404, 409],
        policy: method === 'GET' ? 'get_subnet' : method === 'PUT' ? 'update_subnet' : 'delete_subnet',
        status: method === 'DELETE' ? 204 : 200,
        target: async (req) => {
          const body = method === 'PUT' ? bodyOf(req, 'subnet', Networks.checkSubnetUpdate) : undefined;
          const row = await svc.networks.getSubnet(callerOf(req), req.params.id);
          const net = await svc.networks.get({ ...callerOf(req), admin: true }, row.network_id);
          put(req, { row, net, ...(body ? { body } : {}) });
          return onNetTarget(row.project_id, net);
        },
        handler: async (req, reply) => {
          const { row, body } = the<import('../store/tables.js').SubnetRow>(req);
          if (method === 'GET') return { subnet: projectOne(await svc.networks.subnetView(row), q(req)) };
          if (method === 'PUT') return { subnet: await svc.networks.updateSubnet(callerOf(req), row, body) };
          await svc.networks.deleteSubnet(row);
          return noContent(reply);
        },
      }),
    ),

    // ------------------------------------------------------------------ ports
    defineRoute({
      method: 'GET', url: '/v2.0/ports', policy: 'get_port',
      target: listTarget,
      handler: async (req) =>
        listBody('ports', await portViews(req, await svc.ports.list(callerOf(req), { ids: preIds(req), network_id: preIds(req, 'network_id'), device_id: preIds(req, 'device_id') })), q(req), `${v2}/ports`),
    }),
    defineRoute({
      method: 'POST', url: '/v2.0/ports', policy: 'create_port', status: 201, errors: [404, 409],
      // One port ({"port": …}) or several at once ({"ports": […]}, Neutron's bulk create: all or none).
      target: async (req) => {
        const raw = req.body as Record<string, unknown> | null;
        const bulk = raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'ports' in raw && !('port' in raw);
        if (bulk && (!Array.isArray(raw.ports) || raw.ports.length === 0)) throw badRequest('Resource body required for ports: a non-empty list.');
        const items = bulk ? (raw.ports as unknown[]).map((p) => Ports.checkCreate(p)) : [bodyOf(req, 'port', Ports.checkCreate)];
        const planned: PlannedPort[] = [];
        for (const body of items) {
          if (typeof body.network_id !== 'string') throw badRequest("Invalid input for network_id. Reason: 'None' is not a valid UUID.");
          const net = await svc.networks.get(callerOf(req), body.network_id);
          planned.push({ body, net, target: onNetTarget((body.project_id as string | undefined) ?? callerOf(req).projectId ?? net.project_id, net) });
        }
        // The first port's target is checked by the route; every other one here, before anything is created.
        for (const p of planned.slice(1)) enforce(policy, req, 'create_port', p.target);
        put(req, { extra: { planned, bulk } });
        return planned[0]!.target;
      },
      handler: async (req) => {
        const { planned, bulk } = the(req).extra as { planned: PlannedPort[]; bulk: boolean };
        for (const p of planned) attrRules(req, 'create', 'port', p.body, p.target);
        const made: View[] = [];
        try {
          for (const p of planned) made.push(await svc.ports.create(callerOf(req), p.net, p.body));
        } catch (e) {
          // All or none: undo the ports made before the failure.
          for (const v of made.reverse()) await svc.ports.delete(await svc.ports.get({ ...callerOf(req), admin: true }, v.id as string)).catch(() => undefined);
          throw e;
        }
        const views = made.map((v) => hide(req, 'port', v, { project_id: v.project_id }));
        return bulk ? { ports: views } : { port: views[0] };
      },
    }),
    ...['GET', 'PUT', 'DELETE'].map((method) =>
      defineRoute({
        method: method as 'GET', url: '/v2.0/ports/:id', params: Id, errors: [404, 409],
        policy: method === 'GET' ? 'get_port' : method === 'PUT' ? 'update_port' : 'delete_port',
        status: method === 'DELETE' ? 204 : 200,
        target: async (req) => {
          const body = method === 'PUT' ? bodyOf(req, 'port', Ports.checkUpdate) : undefined;
          const row = await svc.ports.get(callerOf(req), req.params.id);
          const net = await svc.networks.get({ ...callerOf(req), admin: true }, row.network_id);
          put(req, { row, net, ...(body ? { body } : {}) });
          return { ...onNetTarget(row.project_id, net), device_owner: row.device_owner };
        },
        handler: async (req, reply) => {
          const { row, body, net } = the<import('../store/tables.js').PortRow>(req);
          const target = onNetTarget(row.project_id, net);
          if (method === 'GET') return { port: projectOne(hide(req, 'port', await svc.ports.view(row), target), q(req)) };
          if (method === 'PUT') {
            attrRules(req, 'update', 'port', body, target);
            return { port: hide(req, 'port', await svc.ports.update(callerOf(req), row, body), target) };
          }
          await svc.ports.delete(row);
          return noContent(reply);
        },
      }),
    ),

    // ------------------------------------------------------------------ routers
    defineRoute({
      method: 'GET', url: '/v2.0/routers', policy: 'get_router',
      target: listTarget,
      handler: async (req) => listBody('routers', await svc.routers.list(callerOf(req), { ids: preIds(req) }), q(req), `${v2}/routers`),
    }),
    defineRoute({
      method: 'POST', url: '/v2.0/routers', policy: 'create_router', status: 201, errors: [404, 409],
      target: (req) => {
        const body = bodyOf(req, 'router', Routers.checkCreate);
        put(req, { body });
        const project = (body.project_id as string | undefined) ?? callerOf(req).projectId;
        return { project_id: project, tenant_id: project };
      },
      handler: async (req) => {
        const { body } = the(req);
        attrRules(req, 'create', 'router', body, { project_id: body.project_id ?? callerOf(req).projectId });
        return { router: await svc.routers.create(callerOf(req), body) };
      },
    }),
    ...['GET', 'PUT', 'DELETE'].map((method) =>
      defineRoute({
        method: method as 'GET', url: '/v2.0/routers/:id', params: Id, errors: [404, 409],
        policy: method === 'GET' ? 'get_router' : method === 'PUT' ? 'update_router' : 'delete_router',
        status: method === 'DELETE' ? 204 : 200,
        target: async (req) => {
          const body = method === 'PUT' ? bodyOf(req, 'router', Routers.checkUpdate) : undefined;
          const row = await svc.routers.get(callerOf(req), req.params.id);
          put(req, { row, ...(body ? { body } : {}) });
          return { project_id: row.project_id, tenant_id: row.project_id };
        },
        handler: async (req, reply) => {
          const { row, body } = the<import('../store/tables.js').RouterRow>(req);
          if (method === 'GET') return { router: projectOne(await svc.routers.view(row), q(req)) };
          if (method === 'PUT') {
            attrRules(req, 'update', 'router', body, { project_id: row.project_id });
            return { router: await svc.routers.update(callerOf(req), row, body) };
          }
          await svc.routers.delete(row);
          return noContent(reply);
        },
      }),
    ),
    ...(['add_router_interface', 'remove_router_interface'] as const).map((action) =>
      defineRoute({
        method: 'PUT', url: `/v2.0/routers/:id/${action}`, policy: action, params: Id, errors: [404, 409],
        target: async (req) => {
          const row = await svc.routers.get(callerOf(req), req.params.id);
          put(req, { row });
          return { project_id: row.project_id, tenant_id: row.project_id };
        },
        handler: async (req) => {
          const row = the<import('../store/tables.js').RouterRow>(req).row;
          return action === 'add_router_interface' ? svc.routers.addInterface(callerOf(req), row, req.body) : svc.routers.removeInterface(callerOf(req), row, req.body);
        },
      }),
    ),

    // ------------------------------------------------------------------ floating IPs
    defineRoute({
      method: 'GET', url: '/v2.0/floatingips', policy: 'get_floatingip',
      target: listTarget,
      handler: async (req) => listBody('floatingips', await svc.routers.listFips(callerOf(req), { ids: preIds(req) }), q(req), `${v2}/floatingips`),
    }),
    defineRoute({
      method: 'POST', url: '/v2.0/floatingips', policy: 'create_floatingip', status: 201, errors: [404, 409],
      target: (req) => {
        const body = bodyOf(req, 'floatingip', Routers.checkFipCreate);
        put(req, { body });
        const project = (body.project_id as string | undefined) ?? callerOf(req).projectId;
        return { project_id: project, tenant_id: project };
      },
      handler: async (req) => {
        const { body } = the(req);
        attrRules(req, 'create', 'floatingip', body, { project_id: body.project_id ?? callerOf(req).projectId });
        return { floatingip: await svc.routers.createFip(callerOf(req), body) };
      },
    }),
    ...['GET', 'PUT', 'DELETE'].map((method) =>
      defineRoute({
        method: method as 'GET', url: '/v2.0/floatingips/:id', params: Id, errors: [404, 409],
        policy: method === 'GET' ? 'get_floatingip' : method === 'PUT' ? 'update_floatingip' : 'delete_floatingip',
        status: method === 'DELETE' ? 204 : 200,
        target: async (req) => {
          const body = method === 'PUT' ? bodyOf(req, 'floatingip', Routers.checkFipUpdate) : undefined;
          const row = await svc.routers.getFip(callerOf(req), req.params.id);
          put(req, { row, ...(body ? { body } : {}) });
          return { project_id: row.project_id, tenant_id: row.project_id };
        },
        handler: async (req, reply) => {
          const { row, body } = the<import('../store/tables.js').FloatingIpRow>(req);
          if (method === 'GET') return { floatingip: projectOne(await svc.routers.fipView(row), q(req)) };
          if (method === 'PUT') return { floatingip: await svc.routers.updateFip(callerOf(req), row, body) };
          await svc.routers.deleteFip(row);
          return noContent(reply);
        },
      }),
    ),

    // ------------------------------------------------------------------ security groups
    defineRoute({
      method: 'GET', url: '/v2.0/security-groups', policy: 'get_security_group',
      target: listTarget,
      handler: async (req) => listBody('security_groups', await svc.securityGroups.list(callerOf(req), { ids: preIds(req) }), q(req), `${v2}/security-groups`),
    }),
    defineRoute({
      method: 'POST', url: '/v2.0/security-groups', policy: 'create_security_group', status: 201, errors: [404, 409],
      target: (req) => {
        const body = bodyOf(req, 'security_group', SecurityGroups.checkCreate);
        put(req, { body });
        const project = (body.project_id as string | undefined) ?? callerOf(req).projectId;
        return { project_id: project, tenant_id: project };
      },
      handler: async (req) => ({ security_group: await svc.securityGroups.create(callerOf(req), the(req).body) }),
    }),
    ...['GET', 'PUT', 'DELETE'].map((method) =>
      defineRoute({
        method: method as 'GET', url: '/v2.0/security-groups/:id', params: Id, errors: [404, 409],
        policy: method === 'GET' ? 'get_security_group' : method === 'PUT' ? 'update_security_group' : 'delete_security_group',
        status: method === 'DELETE' ? 204 : 200,
        target: async (req) => {
          const body = method === 'PUT' ? bodyOf(req, 'security_group', SecurityGroups.checkUpdate) : undefined;
          const row = await svc.securityGroups.get(callerOf(req), req.params.id);
          put(req, { row, ...(body ? { body } : {}) });
          return { project_id: row.project_id, tenant_id: row.project_id };
        },
        handler: async (req, reply) => {
          const { row, body } = the<import('../store/tables.js').SecurityGroupRow>(req);
          if (method === 'GET') return { security_group: projectOne(await svc.securityGroups.view(row), q(req)) };
          if (method === 'PUT') return { security_group: await svc.securityGroups.update(callerOf(req), row, body) };
          await svc.securityGroups.delete(row, callerOf(req).admin);
          return noContent(reply);
        },
      }),
    ),
    defineRoute({
      method: 'GET', url: '/v2.0/security-group-rules', policy: 'get_security_group_rule',
      target: listTarget,
      handler: async (req) =>
        listBody('security_group_rules', await svc.securityGroups.listRules(callerOf(req), { ids: preIds(req), security_group_id: preIds(req, 'security_group_id') }), q(req), `${v2}/security-group-rules`),
    }),
    defineRoute({
      method: 'POST', url: '/v2.0/security-group-rules', policy: 'create_security_group_rule', status: 201, errors: [404, 409],
      target: async (req) => {
        const body = bodyOf(req, 'security_group_rule', SecurityGroups.checkRuleCreate);
        if (typeof body.security_group_id !== 'string') throw badRequest("Invalid input for security_group_id. Reason: 'None' is not a valid UUID.");
        const row = await svc.securityGroups.get(callerOf(req), body.security_group_id).catch(() => {
          throw notFound('security_group', body.security_group_id as string);
        });
        put(req, { body, row });
        const project = (body.project_id as string | undefined) ?? row.project_id;
        return { project_id: project, tenant_id: project, 'security_group:project_id': row.project_id };
      },
      handler: async (req) => {
        const { row, body } = the<import('../store/tables.js').SecurityGroupRow>(req);
        return { security_group_rule: await svc.securityGroups.createRule(callerOf(req), row, body) };
      },
    }),
    ...['GET', 'PUT', 'DELETE'].map((method) =>
      defineRoute({
        method: method as 'GET', url: '/v2.0/security-group-rules/:id', params: Id, errors: [404, 409],
        policy: method === 'GET' ? 'get_security_group_rule' : method === 'PUT' ? 'update_security_group_rule' : 'delete_security_group_rule',
        status: method === 'DELETE' ? 204 : 200,
        target: async (req) => {
          const body = method === 'PUT' ? bodyOf(req, 'security_group_rule', SecurityGroups.checkRuleUpdate) : undefined;
          const row = await svc.securityGroups.getRule(callerOf(req), req.params.id);
          const group = await svc.securityGroups.groupOf(row);
          put(req, { row, ...(body ? { body } : {}) });
          return { project_id: row.project_id, tenant_id: row.project_id, 'security_group:project_id': group?.project_id ?? null };
        },
        handler: async (req, reply) => {
          const { row, body } = the<import('../store/tables.js').SecurityGroupRuleRow>(req);
          if (method === 'GET') return { security_group_rule: projectOne((await svc.securityGroups.listRules({ projectId: null, userId: null, admin: true }, { ids: [row.id] }))[0]!, q(req)) };
          if (method === 'PUT') return { security_group_rule: await svc.securityGroups.updateRule(callerOf(req), row, body) };
          await svc.securityGroups.deleteRule(row);
          return noContent(reply);
        },
      }),
    ),

    // ------------------------------------------------------------------ quotas
    defineRoute({
      method: 'GET', url: '/v2.0/quotas', policy: 'get_quota',
      target: () => ({ project_id: null }),
      handler: async () => {
        const out = [];
        for (const p of await svc.quotaProjects()) out.push({ ...(await svc.quotaLimits(p)), project_id: p, tenant_id: p });
        return { quotas: out };
      },
    }),
    defineRoute({
      method: 'GET', url: '/v2.0/quotas/:project_id', policy: 'get_quota', params: ProjectParams,
      target: (req) => ({ project_id: req.params.project_id, tenant_id: req.params.project_id }),
      handler: async (req) => ({ quota: await svc.quotaLimits(req.params.project_id) }),
    }),
    defineRoute({
      method: 'GET', url: '/v2.0/quotas/:project_id/default', policy: 'get_quota', params: ProjectParams,
      target: (req) => ({ project_id: req.params.project_id, tenant_id: req.params.project_id }),
      handler: async () => ({ quota: await svc.quotaDefaults() }),
    }),
    defineRoute({
      method: 'GET', url: '/v2.0/quotas/:project_id/details', policy: 'get_quota', params: ProjectParams,
      target: (req) => ({ project_id: req.params.project_id, tenant_id: req.params.project_id }),
      handler: async (req) => ({ quota: await svc.quotaDetails(req.params.project_id) }),
    }),
    defineRoute({
      method: 'PUT', url: '/v2.0/quotas/:project_id', policy: 'update_quota', params: ProjectParams,
      target: (req) => ({ project_id: req.params.project_id, tenant_id: req.params.project_id }),
      handler: async (req) => ({ quota: await svc.setQuotas(req.params.project_id, unwrap(req.body, 'quota')) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/v2.0/quotas/:project_id', policy: 'delete_quota', params: ProjectParams, status: 204,
      target: (req) => ({ project_id: req.params.project_id, tenant_id: req.params.project_id }),
      handler: async (req, reply) => {
        await svc.deleteQuotas(req.params.project_id);
        noContent(reply);
      },
    }),

    // ------------------------------------------------------------------ agents
    defineRoute({
      method: 'GET', url: '/v2.0/agents', policy: 'get_agent',
      handler: async (req) => listBody('agents', (await svc.hosts.agents()).map((a) => agentView(a, svc.ctx.availabilityZone)), q(req), `${v2}/agents`),
    }),
    ...['GET', 'PUT', 'DELETE'].map((method) =>
      defineRoute({
        method: method as 'GET', url: '/v2.0/agents/:id', params: Id, errors: [404],
        policy: method === 'GET' ? 'get_agent' : method === 'PUT' ? 'update_agent' : 'delete_agent',
        status: method === 'DELETE' ? 204 : 200,
        handler: async (req, reply) => {
          const a = (await svc.hosts.agents()).find((x) => x.id === req.params.id);
          if (!a) throw notFound('agent', req.params.id);
          if (method === 'GET') return { agent: agentView(a, svc.ctx.availabilityZone) };
          if (method === 'PUT') {
            const b = unwrap(req.body, 'agent') as Record<string, unknown>;
            const extra = Object.keys(b ?? {}).filter((k) => k !== 'admin_state_up' && k !== 'description');
            if (extra.length) throw badRequest(`Unrecognized attribute(s) '${extra.join(', ')}'`);
            if (b.admin_state_up !== undefined && typeof b.admin_state_up !== 'boolean') throw badRequest(`Invalid input for admin_state_up. Reason: '${String(b.admin_state_up)}' is not a valid boolean value.`);
            await svc.ctx.db
              .updateTable('neutron_agents')
              .set({ ...(b.admin_state_up !== undefined ? { admin_state_up: b.admin_state_up ? 1 : 0 } : {}), ...(typeof b.description === 'string' ? { description: b.description } : {}) })
              .where('id', '=', a.id)
              .execute();
            const fresh = (await svc.hosts.agents()).find((x) => x.id === a.id)!;
            return { agent: agentView(fresh, svc.ctx.availabilityZone) };
          }
          await svc.ctx.db.deleteFrom('neutron_agents').where('id', '=', a.id).execute();
          return noContent(reply);
        },
      }),
    ),
  ];

  // ------------------------------------------------------------------ tags, on every taggable resource
  const taggable: Array<[TaggedResource, string, (req: FastifyRequest, id: string) => Promise<Record<string, unknown>>]> = [
    ['networks', 'network', async (req, id) => netTarget(await svc.networks.get(callerOf(req), id))],
    ['subnets', 'subnet', async (req, id) => {
      const s = await svc.networks.getSubnet(callerOf(req), id);
      return onNetTarget(s.project_id, await svc.networks.get({ ...callerOf(req), admin: true }, s.network_id));
    }],
    ['ports', 'port', async (req, id) => {
      const p = await svc.ports.get(callerOf(req), id);
      return onNetTarget(p.project_id, await svc.networks.get({ ...callerOf(req), admin: true }, p.network_id));
    }],
    ['routers', 'router', async (req, id) => ({ project_id: (await svc.routers.get(callerOf(req), id)).project_id })],
    ['floatingips', 'floatingip', async (req, id) => ({ project_id: (await svc.routers.getFip(callerOf(req), id)).project_id })],
    ['security-groups', 'security_group', async (req, id) => ({ project_id: (await svc.securityGroups.get(callerOf(req), id)).project_id })],
  ];
  for (const [coll, res, load] of taggable) {
    routes.push(
      defineRoute({
        method: 'GET', url: `/v2.0/${coll}/:id/tags`, policy: `get_${res}`, params: Id, errors: [404],
        target: (req) => load(req, req.params.id),
        handler: async (req) => ({ tags: await svc.tags.list(coll, req.params.id) }),
      }),
      defineRoute({
        method: 'PUT', url: `/v2.0/${coll}/:id/tags`, policy: `update_${res}`, params: Id, errors: [404],
        target: (req) => load(req, req.params.id),
        handler: async (req) => {
          const b = req.body as { tags?: unknown } | undefined;
          if (!b || typeof b !== 'object' || !('tags' in b)) throw badRequest("Invalid input for tags. Reason: 'tags' is a required property.");
          return { tags: await svc.tags.replace(coll, req.params.id, b.tags) };
        },
      }),
      defineRoute({
        method: 'DELETE', url: `/v2.0/${coll}/:id/tags`, policy: `update_${res}`, params: Id, status: 204, errors: [404],
        target: (req) => load(req, req.params.id),
        handler: async (req, reply) => {
          await svc.tags.clear(coll, req.params.id);
          noContent(reply);
        },
      }),
      defineRoute({
        method: 'GET', url: `/v2.0/${coll}/:id/tags/:tag`, policy: `get_${res}`, params: TagParams, status: 204, errors: [404],
        target: (req) => load(req, req.params.id),
        handler: async (req, reply) => {
          await svc.tags.has(coll, req.params.id, req.params.tag);
          noContent(reply);
        },
      }),
      defineRoute({
        method: 'PUT', url: `/v2.0/${coll}/:id/tags/:tag`, policy: `update_${res}`, params: TagParams, status: 201, errors: [404],
        target: (req) => load(req, req.params.id),
        handler: async (req, reply) => {
          await svc.tags.add(coll, req.params.id, req.params.tag);
          reply.code(201).send();
        },
      }),
      defineRoute({
        method: 'DELETE', url: `/v2.0/${coll}/:id/tags/:tag`, policy: `update_${res}`, params: TagParams, status: 204, errors: [404],
        target: (req) => load(req, req.params.id),
        handler: async (req, reply) => {
          await svc.tags.remove(coll, req.params.id, req.params.tag);
          noContent(reply);
        },
      }),
    );
  }
  return routes;
}

/** Neutron renders agent times as "2026-11-23 00:10:07". */
const agentTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');

function agentView(a: import('../store/tables.js').AgentRow, az: string): View {
  return {
    id: a.id,
    agent_type: a.agent_type,
    binary: a.binary,
    host: a.host,
    topic: a.topic,
    admin_state_up: bool(a.admin_state_up),
    alive: HostStates.alive(a),
    availability_zone: az,
    created_at: agentTime(Number(a.created_at)),
    started_at: agentTime(Number(a.started_at)),
    heartbeat_timestamp: agentTime(Number(a.heartbeat_at)),
    description: a.description,
    configurations: {},
    resources_synced: null,
  };
}
