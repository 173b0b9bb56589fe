import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { defineRoute, type RouteDef } from '../../core/http.js';
import { badRequest, notFound } from '../../core/errors.js';
import type { InstancePort } from '../../network/protocol.js';
import type { ServerService } from '../service/servers.js';
import type { InstanceRow } from '../store/tables.js';
import { securityGroupsOf, type ViewEnv } from './views.js';

const Id = Type.Object({ id: Type.String() });
const IdPort = Type.Object({ id: Type.String(), port_id: Type.String() });

const attachmentView = (p: InstancePort) => ({
  port_state: 'ACTIVE', port_id: p.id, net_id: p.network_id, mac_addr: p.mac_address,
  fixed_ips: p.fixed_ips.map((f) => ({ subnet_id: f.subnet_id, ip_address: f.ip_address })),
});

/** `/servers/{id}/os-interface` (interface attach/detach) and `/servers/{id}/os-security-groups`. */
export function interfaceRoutes(d: {
  servers: ServerService;
  env: ViewEnv;
  inst: (req: FastifyRequest, id: string) => Promise<InstanceRow>;
  target: (r: InstanceRow) => Record<string, unknown>;
  isAdmin: (req: FastifyRequest) => boolean;
}): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { servers, inst, target } = d;
  const projectGroups = async (projectId: string) => {
    const r = (await servers.network.projectSecurityGroups(projectId)) as Array<{ id: string; name: string; description: string }>;
    return r.map((g) => ({ id: g.id, name: g.name, description: g.description, tenant_id: projectId, rules: [] }));
  };
  return [
    defineRoute({
      method: 'GET', url: '/servers/:id/os-interface', policy: 'os_compute_api:os-attach-interfaces:list', params: Id, errors: [404],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => ({ interfaceAttachments: (await servers.network.instancePorts((await inst(req, req.params.id)).id)).map(attachmentView) }),
    }),
    defineRoute({
      method: 'GET', url: '/servers/:id/os-interface/:port_id', policy: 'os_compute_api:os-attach-interfaces:show', params: IdPort, errors: [404],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const p = (await servers.network.instancePorts((await inst(req, req.params.id)).id)).find((x) => x.id === req.params.port_id);
        if (!p) throw notFound(`Instance ${req.params.id} is not attached to port ${req.params.port_id}.`);
        return { interfaceAttachment: attachmentView(p) };
      },
    }),
    defineRoute({
      method: 'POST', url: '/servers/:id/os-interface', policy: 'os_compute_api:os-attach-interfaces:create', params: Id, errors: [400, 404, 409],
      body: Type.Object({
        interfaceAttachment: Type.Object({
          port_id: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F-]{32,36}$' })),
          net_id: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F-]{32,36}$' })),
          fixed_ips: Type.Optional(Type.Array(Type.Object({ ip_address: Type.String() }, { additionalProperties: false }), { maxItems: 1 })),
          tag: Type.Optional(Type.String()),
        }, { additionalProperties: false }),
      }, { additionalProperties: false }),
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const a = req.body.interfaceAttachment;
        if (a.port_id && a.net_id) throw badRequest('Must not input both network_id and port_id');
        if (a.port_id && a.fixed_ips) throw badRequest('Must input network_id when request IP address');
        const r = await inst(req, req.params.id);
        const port = await servers.attachInterface(r, { port_id: a.port_id, network_id: a.net_id, fixed_ip: a.fixed_ips?.[0]?.ip_address }, d.isAdmin(req));
        return { interfaceAttachment: attachmentView(port) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/servers/:id/os-interface/:port_id', policy: 'os_compute_api:os-attach-interfaces:delete', params: IdPort, status: 202, errors: [404, 409],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req, reply) => {
        const r = await inst(req, req.params.id);
        await servers.detachInterface(r, req.params.port_id, d.isAdmin(req));
        reply.code(202).send();
      },
    }),
    // Nova's proxy of the project's security groups (the CLI looks groups up here for server add security group)
    defineRoute({
      method: 'GET', url: '/os-security-groups', policy: 'os_compute_api:os-security-groups:list',
      target: (req) => ({ project_id: req.auth?.projectId }),
      handler: async (req) => ({ security_groups: await projectGroups(req.auth!.projectId!) }),
    }),
    defineRoute({
      method: 'GET', url: '/os-security-groups/:id', policy: 'os_compute_api:os-security-groups:list', params: Id, errors: [404],
      target: (req) => ({ project_id: req.auth?.projectId }),
      handler: async (req) => {
        const g = (await projectGroups(req.auth!.projectId!)).find((x) => x.id === req.params.id);
        if (!g) throw notFound(`Security group ${req.params.id} not found.`);
        return { security_group: g };
      },
    }),
    defineRoute({
      method: 'GET', url: '/servers/:id/os-security-groups', policy: 'os_compute_api:os-security-groups:list', params: Id, errors: [404],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const r = await inst(req, req.params.id);
        return { security_groups: securityGroupsOf(r).map((g) => ({ name: g.name, tenant_id: r.project_id, description: '', rules: [] })) };
      },
    }),
  ];
}
