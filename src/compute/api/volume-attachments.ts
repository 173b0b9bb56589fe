import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { defineRoute, allowed, type RouteDef } from '../../core/http.js';
import { ApiError, badRequest } from '../../core/errors.js';
import type { PolicyEngine } from '../../core/policy.js';
import type { ServerService } from '../service/servers.js';
import type { InstanceAttachment, ServerVolumes } from '../service/volumes.js';
import type { InstanceRow } from '../store/tables.js';

const RO = 'rule:cloud_reader or (role:reader and project_id:%(project_id)s)';
const RW = 'rule:cloud_admin or (role:member and project_id:%(project_id)s)';
/** Nova's policy names for server volume attachments. */
export const computeVolumePolicies: Record<string, string> = {
  'os_compute_api:os-volumes-attachments:index': RO,
  'os_compute_api:os-volumes-attachments:show': RO,
  'os_compute_api:os-volumes-attachments:create': RW,
  'os_compute_api:os-volumes-attachments:update': RW,
  'os_compute_api:os-volumes-attachments:swap': 'rule:cloud_admin',
  'os_compute_api:os-volumes-attachments:delete': RW,
};

const Id = Type.Object({ id: Type.String({ maxLength: 255 }) });
const IdVol = Type.Object({ id: Type.String({ maxLength: 255 }), volumeId: Type.String({ maxLength: 255 }) });
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Nova's `/servers/{id}/os-volume_attachments` (what `openstack server add
 * volume` / `server remove volume` call). The work is done by
 * {@link ServerVolumes}; `volumes()` is null while the volume service is not
 * running, and the routes then answer 503.
 */
export function volumeAttachmentRoutes(d: { servers: ServerService; policy: PolicyEngine; volumes: () => ServerVolumes | null }): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { servers, policy } = d;
  const inst = (req: FastifyRequest, id: string) => servers.get(id, req.auth, allowed(policy, req, 'cloud_reader', {}));
  const target = (r: InstanceRow) => ({ project_id: r.project_id, user_id: r.user_id });
  const vols = () => {
    const v = d.volumes();
    if (!v) throw new ApiError(503, 'The block storage service is not available.', 'ServiceUnavailable');
    return v;
  };
  const view = (serverId: string, a: InstanceAttachment) => ({ id: a.volumeId, serverId, volumeId: a.volumeId, device: a.device });
  const attached = async (serverId: string) => (await vols().port.listForInstance(serverId)).filter((a) => a.status === 'attached');

  return [
    defineRoute({
      method: 'GET', url: '/servers/:id/os-volume_attachments', policy: 'os_compute_api:os-volumes-attachments:index', params: Id, errors: [404, 503],
      query: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 0 })), offset: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: true }),
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const r = await inst(req, req.params.id);
        let list = (await attached(r.id)).map((a) => view(r.id, a));
        const off = req.query.offset ?? 0;
        list = list.slice(off, req.query.limit !== undefined ? off + req.query.limit : undefined);
        return { volumeAttachments: list };
      },
    }),
    defineRoute({
      method: 'GET', url: '/servers/:id/os-volume_attachments/:volumeId', policy: 'os_compute_api:os-volumes-attachments:show', params: IdVol, errors: [404, 503],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const r = await inst(req, req.params.id);
        const a = (await attached(r.id)).find((x) => x.volumeId === req.params.volumeId);
        if (!a) throw new ApiError(404, `Instance ${r.id} is not attached to volume ${req.params.volumeId}.`, 'VolumeBDMNotFound');
        return { volumeAttachment: view(r.id, a) };
      },
    }),
    defineRoute({
      method: 'POST', url: '/servers/:id/os-volume_attachments', policy: 'os_compute_api:os-volumes-attachments:create', params: Id, errors: [404, 409, 503],
      body: Type.Object({
        volumeAttachment: Type.Object({
          volumeId: Type.String(),
          device: Type.Optional(Type.Union([Type.String({ pattern: '^(/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$' }), Type.Null()])),
          tag: Type.Optional(Type.String({ maxLength: 60 })),
          delete_on_termination: Type.Optional(Type.Boolean()),
        }, { additionalProperties: false }),
      }, { additionalProperties: false }),
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const b = req.body.volumeAttachment;
        if (!UUID_RE.test(b.volumeId)) throw badRequest(`Invalid input for field/attribute volumeId. Value: ${b.volumeId}. '${b.volumeId}' is not a 'uuid'`);
        if (b.tag !== undefined || b.delete_on_termination !== undefined) throw badRequest('Additional properties are not allowed (tag and delete_on_termination need a later microversion).');
        const r = await inst(req, req.params.id);
        const a = await vols().attach(req.auth!, r, b.volumeId);
        return { volumeAttachment: view(r.id, a) };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/servers/:id/os-volume_attachments/:volumeId', policy: 'os_compute_api:os-volumes-attachments:swap', params: IdVol, errors: [404, 501],
      body: Type.Object({}, { additionalProperties: true }),
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async () => {
        throw new ApiError(501, 'Swapping a volume is not supported.', 'NotImplemented');
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/servers/:id/os-volume_attachments/:volumeId', policy: 'os_compute_api:os-volumes-attachments:delete', params: IdVol, status: 202, errors: [404, 409, 503],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req, reply) => {
        const r = await inst(req, req.params.id);
        if (!UUID_RE.test(req.params.volumeId)) throw new ApiError(404, `volume_id not found: ${req.params.volumeId}`, 'VolumeNotFound');
        // 202 once the detach has begun; the guest lets go in the background (volume: detaching → available).
        await vols().detach(r, req.params.volumeId);
        reply.code(202).send();
      },
    }),
  ];
}
