import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { defineRoute, enforce, allowed, type RouteDef } from '../../core/http.js';
import { ApiError, badRequest, notFound } from '../../core/errors.js';
import type { PolicyEngine } from '../../core/policy.js';
import type { VolumeService, ListQuery } from '../service/volumes.js';
import { VOLUME_STATUSES } from '../service/states.js';
import type { VolumeRow } from '../store/tables.js';
import { atLeast, microversionOf, v3VersionDoc } from './microversions.js';
import { attachmentView, backupView, snapshotView, transferView, typeView, volumeView, type VolumeViewEnv } from './views.js';

export interface VolumeApiDeps {
  volumes: VolumeService;
  policy: PolicyEngine;
  env: VolumeViewEnv;
}

const P = Type.Object({ project_id: Type.String() });
const PI = Type.Object({ project_id: Type.String(), id: Type.String() });
const PIK = Type.Object({ project_id: Type.String(), id: Type.String(), key: Type.String() });
const AnyQuery = Type.Object({}, { additionalProperties: true });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));
const Meta = Type.Record(Type.String(), Type.String());
const Name = Type.String({ maxLength: 255 });

const VolumeCreate = Type.Object(
  {
    volume: Type.Object(
      {
        size: Type.Optional(Type.Union([Type.Integer(), Type.String({ pattern: '^[0-9]+$' }), Type.Null()])),
        name: Nullable(Name),
        display_name: Nullable(Name),
        description: Nullable(Type.String({ maxLength: 255 })),
        display_description: Nullable(Type.String({ maxLength: 255 })),
        volume_type: Nullable(Type.String()),
        availability_zone: Nullable(Type.String()),
        metadata: Type.Optional(Type.Union([Meta, Type.Null()])),
        snapshot_id: Nullable(Type.String()),
        source_volid: Nullable(Type.String()),
        imageRef: Nullable(Type.String()),
        image_id: Nullable(Type.String()),
        backup_id: Nullable(Type.String()),
        consistencygroup_id: Type.Optional(Type.Null()),
        group_id: Type.Optional(Type.Null()),
        multiattach: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
        source_replica: Type.Optional(Type.Null()),
      },
      { additionalProperties: false },
    ),
    'OS-SCH-HNT:scheduler_hints': Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()])),
  },
  { additionalProperties: false },
);

/** What a volume action returns to answer 200 with no body (see the action route). */
const OK_NO_BODY = Object.freeze({});

/** Cinder's create and update responses are the plain view: no tenant attribute or image metadata extensions. */
function plainVolume(view: Record<string, unknown>): Record<string, unknown> {
  const { 'os-vol-tenant-attr:tenant_id': _tenant, volume_image_metadata: _image, ...volume } = view;
  return volume;
}

const toBool = (v: unknown, field: string): boolean => {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    if (/^(true|t|yes|y|1|on)$/i.test(v)) return true;
    if (/^(false|f|no|n|0|off)$/i.test(v)) return false;
  }
  throw badRequest(`Invalid input received: ${field} must be a boolean, got '${String(v)}'.`, 'InvalidInput');
};
const toInt = (v: unknown, field: string): number => {
  const n = typeof v === 'string' && /^-?[0-9]+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw badRequest(`Invalid input received: ${field} must be an integer.`, 'InvalidInput');
  return n;
};
const isMeta = (m: unknown): m is Record<string, string> => !!m && typeof m === 'object' && !Array.isArray(m) && Object.values(m).every((v) => typeof v === 'string');

export function volumeRoutes(d: VolumeApiDeps): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { volumes: svc, policy, env } = d;
  const isAdmin = (req: FastifyRequest) => allowed(policy, req, 'cloud_admin', {});
  const seesAll = (req: FastifyRequest) => allowed(policy, req, 'cloud_reader', {});
  /** Cinder refuses a URL naming another project than the token's (admins may name any). */
  const checkProject = (req: FastifyRequest) => {
    const pid = (req.params as { project_id?: string }).project_id;
    if (pid && pid !== req.auth?.projectId && !seesAll(req)) throw badRequest('Malformed request url', 'MalformedRequestUrl');
  };
  const vol = async (req: FastifyRequest, id: string) => {
    checkProject(req);
    return svc.get(id, req.auth, seesAll(req));
  };
  const target = (r: { project_id: string }) => ({ project_id: r.project_id });
  const showVolume = async (req: FastifyRequest, v: VolumeRow) =>
    volumeView(env, v, { mv: microversionOf(req), admin: isAdmin(req), type: await svc.typeOf(v), attachments: await svc.attachmentsOf(v.id) });

  const listQuery = (req: FastifyRequest): ListQuery => {
    const q = { ...(req.query as Record<string, string | string[] | undefined>) };
    const one = (k: string) => { const v = q[k]; delete q[k]; return Array.isArray(v) ? v[v.length - 1] : v; };
    const limitS = one('limit');
    const marker = one('marker');
    const offsetS = one('offset');
    let sort = one('sort');
    const sortKey = one('sort_key');
    const sortDir = one('sort_dir');
    if (!sort && sortKey) sort = `${sortKey}:${sortDir ?? 'desc'}`;
    const allT = one('all_tenants') ?? one('all_projects');
    one('with_count');
    let limit: number | undefined;
    if (limitS !== undefined) {
      if (!/^[0-9]+$/.test(limitS)) throw badRequest(`Invalid input received: limit must be a non-negative integer.`, 'InvalidInput');
      limit = Math.min(Number(limitS), 1000);
    }
    let offset: number | undefined;
    if (offsetS !== undefined) {
      if (!/^[0-9]+$/.test(offsetS)) throw badRequest(`Invalid input received: offset must be a non-negative integer.`, 'InvalidInput');
      offset = Number(offsetS);
    }
    const filters: Record<string, string> = {};
    for (const [k, v] of Object.entries(q)) if (v !== undefined) filters[k] = Array.isArray(v) ? v[v.length - 1]! : v;
    if (filters.status !== undefined && !(VOLUME_STATUSES as readonly string[]).includes(filters.status) && !['deleted'].includes(filters.status)) {
      // Cinder filters on any string; an unknown status simply matches nothing.
    }
    return { admin: seesAll(req), allTenants: allT !== undefined && /^(1|true|t|yes|y|on)$/i.test(allT), filters, limit, marker, offset, sort };
  };
  const nextLinks = (req: FastifyRequest, kind: string, rows: { id: string }[], q: ListQuery) => {
    if (q.limit === undefined || rows.length < q.limit || !rows.length) return undefined;
    const u = new URL(`${env.root}${req.url.replace(/^\/volume/, '')}`);
    u.searchParams.set('marker', rows[rows.length - 1]!.id);
    return [{ rel: 'next', href: u.toString() }];
  };

  const listVolumes = async (req: FastifyRequest, detail: boolean) => {
    checkProject(req);
    const q = listQuery(req);
    const rows = await svc.list(req.auth!, q);
    const out: Record<string, unknown> = {
      volumes: detail ? await Promise.all(rows.map((r) => showVolume(req, r))) : rows.map((r) => ({ id: r.id, name: r.name, links: volumeView(env, r, { mv: [3, 0], admin: false, type: undefined, attachments: [] }).links })),
    };
    const l = nextLinks(req, 'volumes', rows, q);
    if (l) out.volumes_links = l;
    if (atLeast(microversionOf(req), 3, 45) && (req.query as Record<string, string>).with_count) out.count = (await svc.list(req.auth!, { ...q, limit: undefined, marker: undefined, offset: undefined })).length;
    return out;
  };

  // ---------------- volume actions (POST /volumes/{id}/action) ----------------
  const volumeAction = async (req: FastifyRequest, v: VolumeRow): Promise<unknown> => {
    const body = req.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || Object.keys(body).length !== 1) throw badRequest('Invalid request body: exactly one action is expected.', 'InvalidInput');
    const [name, argRaw] = Object.entries(body)[0]!;
    const arg = (argRaw ?? {}) as Record<string, unknown>;
    if (typeof arg !== 'object' || Array.isArray(arg)) throw badRequest(`Invalid input for action ${name}.`, 'InvalidInput');
    const rule = (r: string) => enforce(policy, req, r, target(v));
    const mv = microversionOf(req);
    switch (name) {
      case 'os-extend': {
        rule(v.status === 'in-use' ? 'volume:extend_attached_volume' : 'volume:extend');
        if (arg.new_size === undefined) throw badRequest("Invalid input for field/attribute os-extend. 'new_size' is a required property", 'InvalidInput');
        // Cinder extends attached volumes from microversion 3.42 on
        if (v.status === 'in-use' && !atLeast(mv, 3, 42)) throw badRequest(`Invalid volume: Volume ${v.id} status must be 'available' to extend; an in-use volume can be extended with microversion 3.42 or later.`, 'InvalidVolume');
        await svc.extend(v, toInt(arg.new_size, 'new_size'));
        return null;
      }
      case 'os-set_bootable':
        rule('volume:update');
        if (arg.bootable === undefined) throw badRequest("Invalid input for field/attribute os-set_bootable. 'bootable' is a required property", 'InvalidInput');
        await svc.setBootable(v, toBool(arg.bootable, 'bootable'));
        return OK_NO_BODY;
      case 'os-update_readonly_flag':
        rule('volume:update_readonly_flag');
        if (arg.readonly === undefined) throw badRequest("'readonly' is a required property", 'InvalidInput');
        await svc.setReadonly(v, toBool(arg.readonly, 'readonly'));
        return null;
      case 'os-reset_status': {
        rule('volume_extension:volume_admin_actions:reset_status');
        const s = arg as { status?: string; attach_status?: string; migration_status?: string };
        if (!s.status && !s.attach_status && !s.migration_status) throw badRequest('Must specify status, attach_status or migration_status.', 'InvalidInput');
        if (s.status && !(VOLUME_STATUSES as readonly string[]).includes(s.status)) throw badRequest(`Invalid input received: Must specify a valid status: ${s.status}.`, 'InvalidInput');
        if (s.attach_status && !['attached', 'detached'].includes(s.attach_status)) throw badRequest(`Must specify a valid attach status: ${s.attach_status}.`, 'InvalidInput');
        await svc.resetStatus(v, s);
        return null;
      }
      case 'os-force_delete':
        rule('volume:force_delete');
        await svc.delete(v, { force: true, cascade: true });
        return null;
      case 'os-volume_upload_image': {
        rule('volume_extension:volume_actions:upload_image');
        if (typeof arg.image_name !== 'string' || !arg.image_name) throw badRequest("Invalid input for field/attribute image_name. 'image_name' is a required property", 'InvalidInput');
        if (arg.visibility === 'public' || arg['os-volume_upload_image:visibility'] === 'public') rule('volume_extension:volume_actions:upload_public');
        const force = arg.force === undefined ? false : toBool(arg.force, 'force');
        const r = await svc.uploadToImage(req.auth!, v, { image_name: arg.image_name, disk_format: arg.disk_format as string | undefined, container_format: arg.container_format as string | undefined, force });
        const cur = await svc.get(v.id, null, true);
        return {
          'os-volume_upload_image': {
            id: v.id, updated_at: null, status: cur.status, display_description: v.description, size: v.size, volume_type: (await svc.typeOf(v))?.name ?? null,
            image_id: r.imageId, container_format: 'bare', disk_format: r.diskFormat, image_name: arg.image_name, protected: false, visibility: 'private',
          },
        };
      }
      case 'os-reserve':
        rule('volume_extension:volume_actions:reserve');
        await svc.reserveAttachment(req.auth!, v, { instanceUuid: null });
        return null;
      case 'os-unreserve': {
        rule('volume_extension:volume_actions:unreserve');
        const atts = await svc.attachmentsOf(v.id);
        const pending = atts.find((a) => a.attach_status === 'reserved' || a.attach_status === 'attaching');
        if (pending) await svc.removeAttachment(pending);
        return null;
      }
      case 'os-initialize_connection': {
        rule('volume_extension:volume_actions:initialize_connection');
        const connector = arg.connector;
        if (!connector || typeof connector !== 'object') throw badRequest("Invalid input for field/attribute connector. 'connector' is a required property", 'InvalidInput');
        if (!['attaching', 'reserved', 'in-use', 'available'].includes(v.status)) throw badRequest(`Invalid volume: Volume ${v.id} status must be available, reserved, attaching or in-use to initialize a connection.`, 'InvalidVolume');
        return { connection_info: svc.connectionFor(v.id) };
      }
      case 'os-terminate_connection':
        rule('volume_extension:volume_actions:terminate_connection');
        if (!arg.connector || typeof arg.connector !== 'object') throw badRequest("'connector' is a required property", 'InvalidInput');
        return null;
      case 'os-attach': {
        rule('volume_extension:volume_actions:attach');
        const inst = (arg.instance_uuid as string | undefined) ?? null;
        const host = (arg.host_name as string | undefined) ?? null;
        if (!inst && !host) throw badRequest('Invalid request to attach volume to an invalid target', 'InvalidInput');
        if (typeof arg.mountpoint !== 'string') throw badRequest("'mountpoint' is a required property", 'InvalidInput');
        const mode = (arg.mode as string | undefined) ?? 'rw';
        if (!['rw', 'ro'].includes(mode)) throw badRequest('Invalid request to attach volume with an invalid mode. Attaching mode should be \'rw\' or \'ro\'', 'InvalidInput');
        let att = (await svc.attachmentsOf(v.id)).find((a) => (a.attach_status === 'reserved' || a.attach_status === 'attaching') && (a.instance_uuid === null || a.instance_uuid === inst));
        if (!att) att = await svc.reserveAttachment(req.auth!, v, { instanceUuid: inst, mode });
        if (att.instance_uuid !== inst) await svc.db.updateTable('cinder_attachments').set({ instance_uuid: inst }).where('id', '=', att.id).execute();
        await svc.completeAttachment({ ...att, instance_uuid: inst }, arg.mountpoint, host);
        return null;
      }
      case 'os-begin_detaching':
        rule('volume_extension:volume_actions:begin_detaching');
        await svc.beginDetaching(v);
        return null;
      case 'os-roll_detaching':
        rule('volume_extension:volume_actions:roll_detaching');
        await svc.rollDetaching(v);
        return null;
      case 'os-detach': {
        rule('volume_extension:volume_actions:detach');
        const atts = (await svc.attachmentsOf(v.id)).filter((a) => a.attach_status !== 'detached');
        const id = arg.attachment_id as string | undefined;
        const att = id ? atts.find((a) => a.id === id) : atts.length === 1 ? atts[0] : undefined;
        if (!att) {
          if (id || atts.length > 1) throw badRequest(`Invalid volume: Volume ${v.id} has no attachment ${id ?? '(attachment_id is required for a multiattach volume)'}.`, 'InvalidVolume');
          throw badRequest(`Invalid volume: Volume ${v.id} is not attached.`, 'InvalidVolume');
        }
        await svc.removeAttachment(att);
        return null;
      }
      case 'os-force_detach': {
        rule('volume_extension:volume_admin_actions:force_detach');
        for (const a of await svc.attachmentsOf(v.id)) if (!arg.attachment_id || a.id === arg.attachment_id) await svc.removeAttachment(a);
        return null;
      }
      case 'os-set_image_metadata': {
        rule('volume_extension:volume_image_metadata:set');
        const m = (arg as { metadata?: unknown }).metadata;
        if (!isMeta(m)) throw badRequest('Malformed request body: metadata must be a map of strings.', 'InvalidInput');
        return { metadata: await svc.setImageMetadata(v, m) };
      }
      case 'os-unset_image_metadata': {
        rule('volume_extension:volume_image_metadata:remove');
        if (typeof arg.key !== 'string') throw badRequest("'key' is a required property", 'InvalidInput');
        await svc.unsetImageMetadata(v, arg.key);
        return OK_NO_BODY;
      }
      case 'os-show_image_metadata':
        rule('volume_extension:volume_image_metadata:show');
        return { metadata: JSON.parse(v.image_metadata) as Record<string, string> };
      case 'os-retype':
        rule('volume:retype');
        throw badRequest('Invalid input received: retype is not supported by the qcow2 backend.', 'InvalidInput');
      default:
        void mv;
        throw badRequest(`There is no such action: ${name}`, 'InvalidInput');
    }
  };

  const metaBody = (key: 'metadata' | 'meta') => Type.Object({ [key]: Meta }, { additionalProperties: false });

  const routes: RouteDef<any, any, any>[] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
    defineRoute({ method: 'GET', url: '/v3', policy: null, handler: async () => ({ versions: [v3VersionDoc(env.root)] }) }),

    // ---- volumes ----
    defineRoute({
      method: 'GET', url: '/v3/:project_id/volumes', policy: 'volume:get_all', params: P, query: AnyQuery, errors: [400, 404],
      handler: (req) => {
        // `volumes/` is Cinder's show of an empty id, not the list (the router ignores the trailing slash).
        if (req.url.split('?')[0]!.endsWith('/')) throw notFound('Volume  could not be found.', 'VolumeNotFound');
        return listVolumes(req, false);
      },
    }),
    defineRoute({ method: 'GET', url: '/v3/:project_id/volumes/detail', policy: 'volume:get_all', params: P, query: AnyQuery, errors: [400], handler: (req) => listVolumes(req, true) }),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/volumes/summary', policy: 'volume:get_all', params: P, query: AnyQuery, errors: [400, 404],
      handler: async (req) => {
        if (!atLeast(microversionOf(req), 3, 12)) throw notFound('The resource could not be found. (volumes/summary needs microversion 3.12 or later.)', 'VersionNotFoundForAPIMethod');
        checkProject(req);
        const q = listQuery(req);
        const rows = await svc.list(req.auth!, { ...q, limit: undefined, marker: undefined, offset: undefined });
        const summary: Record<string, unknown> = { total_size: rows.reduce((a, r) => a + r.size, 0), total_count: rows.length };
        if (atLeast(microversionOf(req), 3, 36)) {
          const meta: Record<string, string[]> = {};
          for (const r of rows) for (const [k, v] of Object.entries(JSON.parse(r.metadata) as Record<string, string>)) if (!(meta[k] ??= []).includes(v)) meta[k]!.push(v);
          summary.metadata = meta;
        }
        return { 'volume-summary': summary };
      },
    }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/volumes', policy: 'volume:create', params: P, body: VolumeCreate, status: 202, errors: [404],
      target: (req) => ({ project_id: req.auth?.projectId }),
      handler: async (req) => {
        checkProject(req);
        const b = req.body.volume;
        if (b.imageRef || b.image_id) enforce(policy, req, 'volume:create_from_image', { project_id: req.auth?.projectId });
        if (b.multiattach) enforce(policy, req, 'volume:multiattach', { project_id: req.auth?.projectId });
        const size = b.size === undefined || b.size === null ? null : typeof b.size === 'string' ? Number(b.size) : b.size;
        const row = await svc.create(req.auth!, {
          size, name: b.name ?? b.display_name ?? null, description: b.description ?? b.display_description ?? null, volume_type: b.volume_type,
          availability_zone: b.availability_zone, metadata: b.metadata, snapshot_id: b.snapshot_id, source_volid: b.source_volid, imageRef: b.imageRef ?? b.image_id,
          backup_id: b.backup_id, multiattach: b.multiattach,
        });
        return { volume: plainVolume(await showVolume(req, row)) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/volumes/:id', policy: 'volume:get', params: PI, errors: [404],
      target: async (req) => target(await vol(req, req.params.id)),
      handler: async (req) => ({ volume: await showVolume(req, await vol(req, req.params.id)) }),
    }),
    defineRoute({
      method: 'PUT', url: '/v3/:project_id/volumes/:id', policy: 'volume:update', params: PI, errors: [404],
      body: Type.Object({ volume: Type.Object({ name: Nullable(Name), display_name: Nullable(Name), description: Nullable(Type.String({ maxLength: 255 })), display_description: Nullable(Type.String({ maxLength: 255 })), metadata: Type.Optional(Meta) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: async (req) => target(await vol(req, req.params.id)),
      handler: async (req) => {
        const b = req.body.volume;
        if (!Object.keys(b).length) throw badRequest('Invalid input received: volume update needs at least one of name, description, metadata.', 'InvalidInput');
        const v = await svc.update(await vol(req, req.params.id), { name: 'name' in b ? b.name : b.display_name, description: 'description' in b ? b.description : b.display_description, metadata: b.metadata });
        return { volume: plainVolume(await showVolume(req, v)) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v3/:project_id/volumes/:id', policy: 'volume:delete', params: PI, query: Type.Object({ cascade: Type.Optional(Type.String()), force: Type.Optional(Type.String()) }, { additionalProperties: true }), status: 202, errors: [404],
      target: async (req) => target(await vol(req, req.params.id)),
      handler: async (req, reply) => {
        const force = req.query.force !== undefined && toBool(req.query.force, 'force');
        if (force) enforce(policy, req, 'volume:force_delete', {});
        await svc.delete(await vol(req, req.params.id), { cascade: req.query.cascade !== undefined && toBool(req.query.cascade, 'cascade'), force });
        reply.code(202).send();
      },
    }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/volumes/:id/action', policy: 'volume:get', params: PI, body: Type.Object({}, { additionalProperties: true }), errors: [404, 409],
      target: async (req) => target(await vol(req, req.params.id)),
      handler: async (req, reply) => {
        const out = await volumeAction(req, await vol(req, req.params.id));
        // Cinder: actions without a body and os-volume_upload_image answer 202, the others 200
        // (os-set_bootable and os-unset_image_metadata: 200 without a body)
        if (out === null || out === OK_NO_BODY) {
          reply.code(out === null ? 202 : 200).send();
          return;
        }
        reply.code('os-volume_upload_image' in (out as object) ? 202 : 200);
        return out;
      },
    }),
    // metadata
    defineRoute({
      method: 'GET', url: '/v3/:project_id/volumes/:id/metadata', policy: 'volume:get_volume_metadata', params: PI, errors: [404],
      target: async (req) => target(await vol(req, req.params.id)),
      handler: async (req) => ({ metadata: JSON.parse((await vol(req, req.params.id)).metadata) as Record<string, string> }),
    }),
    ...(['POST', 'PUT'] as const).map((m) =>
      defineRoute({
        method: m, url: '/v3/:project_id/volumes/:id/metadata', policy: m === 'POST' ? 'volume:create_volume_metadata' : 'volume:update_volume_metadata', params: PI, body: metaBody('metadata'), errors: [404],
        target: async (req) => target(await vol(req, req.params.id)),
        handler: async (req) => ({ metadata: await svc.setMetadata(await vol(req, req.params.id), (req.body as { metadata: Record<string, string> }).metadata, m === 'PUT') }),
      }),
    ),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/volumes/:id/metadata/:key', policy: 'volume:get_volume_metadata', params: PIK, errors: [404],
      target: async (req) => target(await vol(req, req.params.id)),
      handler: async (req) => {
        const m = JSON.parse((await vol(req, req.params.id)).metadata) as Record<string, string>;
        if (!(req.params.key in m)) throw notFound(`Volume ${req.params.id} has no metadata with key ${req.params.key}.`, 'VolumeMetadataNotFound');
        return { meta: { [req.params.key]: m[req.params.key] } };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/v3/:project_id/volumes/:id/metadata/:key', policy: 'volume:update_volume_metadata', params: PIK, body: metaBody('meta'), errors: [404],
      target: async (req) => target(await vol(req, req.params.id)),
      handler: async (req) => {
        const meta = (req.body as { meta: Record<string, string> }).meta;
        if (Object.keys(meta).length !== 1 || !(req.params.key in meta)) throw badRequest('Request body and URI mismatch', 'InvalidInput');
        await svc.setMetadata(await vol(req, req.params.id), meta, false);
        return { meta };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v3/:project_id/volumes/:id/metadata/:key', policy: 'volume:delete_volume_metadata', params: PIK, errors: [404],
      target: async (req) => target(await vol(req, req.params.id)),
      handler: async (req, reply) => {
        await svc.deleteMetadataKey(await vol(req, req.params.id), req.params.key);
        reply.code(200).send();
      },
    }),
  ];

  return [...routes, ...snapshotRoutes(d, { checkProject, seesAll, isAdmin, listQuery, nextLinks, vol }), ...otherRoutes(d, { checkProject, seesAll, isAdmin, listQuery, nextLinks, vol, showVolume })];
}

interface Helpers {
  checkProject: (req: FastifyRequest) => void;
  seesAll: (req: FastifyRequest) => boolean;
  isAdmin: (req: FastifyRequest) => boolean;
  listQuery: (req: FastifyRequest) => ListQuery;
  nextLinks: (req: FastifyRequest, kind: string, rows: { id: string }[], q: ListQuery) => { rel: string; href: string }[] | undefined;
  vol: (req: FastifyRequest, id: string) => Promise<VolumeRow>;
}

function snapshotRoutes(d: VolumeApiDeps, h: Helpers): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { volumes: svc, policy, env } = d;
  const snap = async (req: FastifyRequest, id: string) => {
    h.checkProject(req);
    return svc.getSnapshot(id, req.auth, h.seesAll(req));
  };
  const list = async (req: FastifyRequest, detail: boolean) => {
    h.checkProject(req);
    const q = h.listQuery(req);
    const rows = await svc.listSnapshots(req.auth!, q);
    const mv = microversionOf(req);
    const out: Record<string, unknown> = { snapshots: rows.map((s) => snapshotView(s, mv, detail)) };
    const l = h.nextLinks(req, 'snapshots', rows, q);
    if (l) out.snapshots_links = l;
    return out;
  };
  return [
    defineRoute({ method: 'GET', url: '/v3/:project_id/snapshots', policy: 'volume:get_all_snapshots', params: P, query: AnyQuery, handler: (req) => list(req, false) }),
    defineRoute({ method: 'GET', url: '/v3/:project_id/snapshots/detail', policy: 'volume:get_all_snapshots', params: P, query: AnyQuery, handler: (req) => list(req, true) }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/snapshots', policy: 'volume:create_snapshot', params: P, status: 202, errors: [404],
      body: Type.Object({ snapshot: Type.Object({ volume_id: Type.Union([Type.String(), Type.Null()]), name: Nullable(Name), display_name: Nullable(Name), description: Nullable(Type.String({ maxLength: 255 })), display_description: Nullable(Type.String({ maxLength: 255 })), force: Type.Optional(Type.Union([Type.Boolean(), Type.String(), Type.Null()])), metadata: Type.Optional(Type.Union([Meta, Type.Null()])) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: async (req) => ({ project_id: req.body.snapshot.volume_id === null ? req.auth?.projectId : (await h.vol(req, req.body.snapshot.volume_id)).project_id }),
      handler: async (req) => {
        const b = req.body.snapshot;
        // As Cinder: a null volume id is a volume that does not exist.
        if (b.volume_id === null) throw notFound('Volume None could not be found.', 'VolumeNotFound');
        const v = await h.vol(req, b.volume_id);
        const force = b.force === undefined || b.force === null ? false : toBool(b.force, 'force');
        const s = await svc.createSnapshot(req.auth!, v, { name: b.name ?? b.display_name, description: b.description ?? b.display_description, force, metadata: b.metadata ?? undefined });
        return { snapshot: snapshotView(s, microversionOf(req), false) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/snapshots/:id', policy: 'volume:get_snapshot', params: PI, errors: [404],
      target: async (req) => ({ project_id: (await snap(req, req.params.id)).project_id }),
      handler: async (req) => ({ snapshot: snapshotView(await snap(req, req.params.id), microversionOf(req), true) }),
    }),
    defineRoute({
      method: 'PUT', url: '/v3/:project_id/snapshots/:id', policy: 'volume:update_snapshot', params: PI, errors: [404],
      body: Type.Object({ snapshot: Type.Object({ name: Nullable(Name), display_name: Nullable(Name), description: Nullable(Type.String({ maxLength: 255 })), display_description: Nullable(Type.String({ maxLength: 255 })) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: async (req) => ({ project_id: (await snap(req, req.params.id)).project_id }),
      handler: async (req) => {
        const b = req.body.snapshot;
        if (!Object.keys(b).length) throw badRequest('Invalid input received: snapshot update needs name or description.', 'InvalidInput');
        const s = await svc.updateSnapshot(await snap(req, req.params.id), { name: 'name' in b ? b.name : b.display_name, description: 'description' in b ? b.description : b.display_description });
        return { snapshot: snapshotView(s, microversionOf(req), false) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v3/:project_id/snapshots/:id', policy: 'volume:delete_snapshot', params: PI, status: 202, errors: [404],
      target: async (req) => ({ project_id: (await snap(req, req.params.id)).project_id }),
      handler: async (req, reply) => {
        await svc.deleteSnapshot(await snap(req, req.params.id));
        reply.code(202).send();
      },
    }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/snapshots/:id/action', policy: 'volume:get_snapshot', params: PI, body: Type.Object({}, { additionalProperties: true }), status: 202, errors: [404],
      target: async (req) => ({ project_id: (await snap(req, req.params.id)).project_id }),
      handler: async (req, reply) => {
        const s = await snap(req, req.params.id);
        const body = req.body as Record<string, Record<string, unknown> | null>;
        if ('os-reset_status' in body) {
          enforce(policy, req, 'volume_extension:snapshot_admin_actions:reset_status', { project_id: s.project_id });
          const st = body['os-reset_status']?.status;
          if (typeof st !== 'string' || !['creating', 'available', 'deleting', 'error', 'error_deleting'].includes(st)) throw badRequest(`Invalid input received: Must specify a valid status.`, 'InvalidInput');
          await svc.db.updateTable('cinder_snapshots').set({ status: st, updated_at: Date.now() }).where('id', '=', s.id).execute();
        } else if ('os-force_delete' in body) {
          enforce(policy, req, 'volume_extension:snapshot_admin_actions:force_delete', { project_id: s.project_id });
          await svc.deleteSnapshot(s, true);
        } else throw badRequest(`There is no such action: ${Object.keys(body)[0] ?? ''}`, 'InvalidInput');
        reply.code(202).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/snapshots/:id/metadata', policy: 'volume:get_snapshot_metadata', params: PI, errors: [404],
      target: async (req) => ({ project_id: (await snap(req, req.params.id)).project_id }),
      handler: async (req) => ({ metadata: JSON.parse((await snap(req, req.params.id)).metadata) as Record<string, string> }),
    }),
    ...(['POST', 'PUT'] as const).map((m) =>
      defineRoute({
        method: m, url: '/v3/:project_id/snapshots/:id/metadata', policy: 'volume:update_snapshot_metadata', params: PI, body: Type.Object({ metadata: Meta }, { additionalProperties: false }), errors: [404],
        target: async (req) => ({ project_id: (await snap(req, req.params.id)).project_id }),
        handler: async (req) => ({ metadata: await svc.setSnapshotMetadata(await snap(req, req.params.id), (req.body as { metadata: Record<string, string> }).metadata, m === 'PUT') }),
      }),
    ),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/snapshots/:id/metadata/:key', policy: 'volume:get_snapshot_metadata', params: PIK, errors: [404],
      target: async (req) => ({ project_id: (await snap(req, req.params.id)).project_id }),
      handler: async (req) => {
        const s = await snap(req, req.params.id);
        const m = JSON.parse(s.metadata) as Record<string, string>;
        if (!(req.params.key in m)) throw notFound(`Snapshot ${s.id} has no metadata with key ${req.params.key}.`, 'SnapshotMetadataNotFound');
        return { meta: { [req.params.key]: m[req.params.key] } };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/v3/:project_id/snapshots/:id/metadata/:key', policy: 'volume:update_snapshot_metadata', params: PIK, body: Type.Object({ meta: Meta }, { additionalProperties: false }), errors: [404],
      target: async (req) => ({ project_id: (await snap(req, req.params.id)).project_id }),
      handler: async (req) => {
        const meta = (req.body as { meta: Record<string, string> }).meta;
        if (Object.keys(meta).length !== 1 || !(req.params.key in meta)) throw badRequest('Request body and URI mismatch', 'InvalidInput');
        await svc.setSnapshotMetadata(await snap(req, req.params.id), meta, false);
        return { meta };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v3/:project_id/snapshots/:id/metadata/:key', policy: 'volume:delete_snapshot_metadata', params: PIK, errors: [404],
      target: async (req) => ({ project_id: (await snap(req, req.params.id)).project_id }),
      handler: async (req, reply) => {
        const s = await snap(req, req.params.id);
        const m = JSON.parse(s.metadata) as Record<string, string>;
        if (!(req.params.key in m)) throw notFound(`Snapshot ${s.id} has no metadata with key ${req.params.key}.`, 'SnapshotMetadataNotFound');
        delete m[req.params.key];
        await svc.setSnapshotMetadata(s, m, true);
        reply.code(200).send();
      },
    }),
  ];
}

function otherRoutes(d: VolumeApiDeps, h: Helpers & { showVolume: (req: FastifyRequest, v: VolumeRow) => Promise<unknown> }): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { volumes: svc, policy, env } = d;
  const backup = async (req: FastifyRequest, id: string) => {
    h.checkProject(req);
    return svc.getBackup(id, req.auth, h.seesAll(req));
  };
  const showBackup = async (req: FastifyRequest, b: Awaited<ReturnType<typeof backup>>) => backupView(env, b, { mv: microversionOf(req), admin: h.isAdmin(req), hasDependents: await svc.hasDependentBackups(b.id) });
  const listBackups = async (req: FastifyRequest, detail: boolean) => {
    h.checkProject(req);
    const q = h.listQuery(req);
    const rows = await svc.listBackups(req.auth!, q);
    const out: Record<string, unknown> = { backups: await Promise.all(rows.map(async (b) => (detail ? showBackup(req, b) : { id: b.id, name: b.name, links: backupView(env, b, { mv: [3, 0], admin: false, hasDependents: false }).links }))) };
    const l = h.nextLinks(req, 'backups', rows, q);
    if (l) out.backups_links = l;
    return out;
  };
  const attachment = async (req: FastifyRequest, id: string) => {
    h.checkProject(req);
    return svc.getAttachment(id, req.auth, h.seesAll(req));
  };
  const needs327 = (req: FastifyRequest) => {
    if (!atLeast(microversionOf(req), 3, 27)) throw new ApiError(404, 'The resource could not be found. (The attachments API needs microversion 3.27 or later.)', 'VersionNotFoundForAPIMethod');
  };
  const type = async (req: FastifyRequest, id: string) => svc.getType(id, h.isAdmin(req));
  const quotaTarget = (req: FastifyRequest) => ({ project_id: (req.params as { id: string }).id });
  const quotaSet = async (projectId: string, usage: boolean) => {
    const res = await svc.quotaResources();
    if (usage) {
      const u = await svc.usage(projectId);
      return { id: projectId, ...Object.fromEntries(res.map((r) => [r, { limit: u[r]!.limit, in_use: u[r]!.in_use, reserved: u[r]!.reserved, allocated: 0 }])) };
    }
    return { id: projectId, ...(await svc.quota.limits(projectId, res)) };
  };
  const transfers = (prefix: string) => {
    const tr = async (req: FastifyRequest, id: string, forAccept = false) => {
      h.checkProject(req);
      return svc.getTransfer(id, req.auth, h.seesAll(req), forAccept);
    };
    return [
      defineRoute({
        method: 'POST', url: `/v3/:project_id/${prefix}`, policy: 'volume:create_transfer', params: P, status: 202, errors: [404],
        body: Type.Object({ transfer: Type.Object({ volume_id: Type.String(), name: Nullable(Name), no_snapshots: Type.Optional(Type.Boolean()) }, { additionalProperties: false }) }, { additionalProperties: false }),
        target: async (req) => ({ project_id: (await h.vol(req, req.body.transfer.volume_id)).project_id }),
        handler: async (req) => {
          const v = await h.vol(req, req.body.transfer.volume_id);
          const { row, authKey } = await svc.createTransfer(v, req.body.transfer.name ?? null);
          return { transfer: transferView(env, row, { auth_key: authKey }) };
        },
      }),
      ...[false, true].map((detail) =>
        defineRoute({
          method: 'GET', url: `/v3/:project_id/${prefix}${detail ? '/detail' : ''}`, policy: 'volume:get_all_transfers', params: P, query: AnyQuery,
          handler: async (req) => {
            h.checkProject(req);
            const q = req.query as Record<string, string | undefined>;
            const all = h.seesAll(req) && !!q.all_tenants && /^(1|true)$/i.test(q.all_tenants);
            const rows = await svc.listTransfers(req.auth!, all);
            return { transfers: rows.map((t) => (detail ? transferView(env, t) : { id: t.id, name: t.name, volume_id: t.volume_id, links: transferView(env, t).links })) };
          },
        }),
      ),
      defineRoute({
        method: 'GET', url: `/v3/:project_id/${prefix}/:id`, policy: 'volume:get_transfer', params: PI, errors: [404],
        target: async (req) => ({ project_id: (await tr(req, req.params.id)).project_id }),
        handler: async (req) => ({ transfer: transferView(env, await tr(req, req.params.id)) }),
      }),
      defineRoute({
        method: 'DELETE', url: `/v3/:project_id/${prefix}/:id`, policy: 'volume:delete_transfer', params: PI, status: 202, errors: [404],
        target: async (req) => ({ project_id: (await tr(req, req.params.id)).project_id }),
        handler: async (req, reply) => {
          await svc.deleteTransfer(await tr(req, req.params.id));
          reply.code(202).send();
        },
      }),
      defineRoute({
        method: 'POST', url: `/v3/:project_id/${prefix}/:id/accept`, policy: 'volume:accept_transfer', params: PI, status: 202, errors: [404],
        body: Type.Object({ accept: Type.Object({ auth_key: Type.String() }, { additionalProperties: false }) }, { additionalProperties: false }),
        target: async (req) => ({ project_id: req.auth?.projectId }),
        handler: async (req) => {
          const t = await tr(req, req.params.id, true);
          const v = await svc.acceptTransfer(req.auth!, t, req.body.accept.auth_key);
          return { transfer: { id: t.id, name: t.name, volume_id: v.id, links: transferView(env, t).links } };
        },
      }),
    ];
  };

  return [
    // ---- backups ----
    defineRoute({ method: 'GET', url: '/v3/:project_id/backups', policy: 'backup:get_all', params: P, query: AnyQuery, handler: (req) => listBackups(req, false) }),
    defineRoute({ method: 'GET', url: '/v3/:project_id/backups/detail', policy: 'backup:get_all', params: P, query: AnyQuery, handler: (req) => listBackups(req, true) }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/backups', policy: 'backup:create', params: P, status: 202, errors: [404],
      body: Type.Object({ backup: Type.Object({ volume_id: Type.String(), container: Nullable(Type.String({ maxLength: 255 })), name: Nullable(Name), description: Nullable(Type.String({ maxLength: 255 })), incremental: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])), force: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])), snapshot_id: Nullable(Type.String()), metadata: Type.Optional(Type.Union([Meta, Type.Null()])), availability_zone: Nullable(Type.String()) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: async (req) => ({ project_id: (await h.vol(req, req.body.backup.volume_id)).project_id }),
      handler: async (req) => {
        const b = req.body.backup;
        const v = await h.vol(req, b.volume_id);
        const row = await svc.createBackup(req.auth!, v, { name: b.name, description: b.description, incremental: !!b.incremental, force: !!b.force, container: b.container, snapshot_id: b.snapshot_id });
        return { backup: { id: row.id, name: row.name, links: backupView(env, row, { mv: [3, 0], admin: false, hasDependents: false }).links } };
      },
    }),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/backups/:id', policy: 'backup:get', params: PI, errors: [404],
      target: async (req) => ({ project_id: (await backup(req, req.params.id)).project_id }),
      handler: async (req) => ({ backup: await showBackup(req, await backup(req, req.params.id)) }),
    }),
    defineRoute({
      method: 'PUT', url: '/v3/:project_id/backups/:id', policy: 'backup:update', params: PI, errors: [404],
      body: Type.Object({ backup: Type.Object({ name: Nullable(Name), description: Nullable(Type.String({ maxLength: 255 })), metadata: Type.Optional(Meta) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: async (req) => ({ project_id: (await backup(req, req.params.id)).project_id }),
      handler: async (req) => {
        const b = await backup(req, req.params.id);
        const p = req.body.backup;
        await svc.db.updateTable('cinder_backups').set({ ...(p.name !== undefined ? { name: p.name } : {}), ...(p.description !== undefined ? { description: p.description } : {}), updated_at: Date.now() }).where('id', '=', b.id).execute();
        return { backup: await showBackup(req, await backup(req, req.params.id)) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v3/:project_id/backups/:id', policy: 'backup:delete', params: PI, status: 202, errors: [404],
      target: async (req) => ({ project_id: (await backup(req, req.params.id)).project_id }),
      handler: async (req, reply) => {
        await svc.deleteBackup(await backup(req, req.params.id));
        reply.code(202).send();
      },
    }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/backups/:id/restore', policy: 'backup:restore', params: PI, status: 202, errors: [404],
      body: Type.Object({ restore: Type.Union([Type.Object({ volume_id: Nullable(Type.String()), name: Nullable(Name) }, { additionalProperties: false }), Type.Null()]) }, { additionalProperties: false }),
      target: async (req) => ({ project_id: (await backup(req, req.params.id)).project_id }),
      handler: async (req) => {
        const b = await backup(req, req.params.id);
        const r = req.body.restore ?? {};
        if (r.volume_id) enforce(policy, req, 'volume:update', { project_id: (await h.vol(req, r.volume_id)).project_id });
        const v = await svc.restoreBackup(req.auth!, b, { volume_id: r.volume_id, name: r.name });
        return { restore: { backup_id: b.id, volume_id: v.id, volume_name: v.name } };
      },
    }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/backups/:id/action', policy: 'backup:get', params: PI, status: 202, errors: [404], body: Type.Object({}, { additionalProperties: true }),
      target: async (req) => ({ project_id: (await backup(req, req.params.id)).project_id }),
      handler: async (req, reply) => {
        const b = await backup(req, req.params.id);
        const body = req.body as Record<string, Record<string, unknown> | null>;
        if ('os-reset_status' in body) {
          enforce(policy, req, 'volume_extension:backup_admin_actions:reset_status', { project_id: b.project_id });
          const st = body['os-reset_status']?.status;
          if (typeof st !== 'string' || !['available', 'error'].includes(st)) throw badRequest('Invalid input received: Must specify a valid status (available or error).', 'InvalidInput');
          await svc.db.updateTable('cinder_backups').set({ status: st, updated_at: Date.now() }).where('id', '=', b.id).execute();
        } else if ('os-force_delete' in body) {
          enforce(policy, req, 'volume_extension:backup_admin_actions:force_delete', { project_id: b.project_id });
          await svc.deleteBackup(b, true);
        } else throw badRequest(`There is no such action: ${Object.keys(body)[0] ?? ''}`, 'InvalidInput');
        reply.code(202).send();
      },
    }),

    // ---- attachments (3.27+) ----
    defineRoute({
      method: 'POST', url: '/v3/:project_id/attachments', policy: 'volume:attachment_create', params: P, errors: [404],
      body: Type.Object({ attachment: Type.Object({ volume_uuid: Type.String(), instance_uuid: Nullable(Type.String()), connector: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()])), mode: Type.Optional(Type.String()) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: async (req) => ({ project_id: (await h.vol(req, req.body.attachment.volume_uuid)).project_id }),
      handler: async (req) => {
        needs327(req);
        const b = req.body.attachment;
        if (b.mode && !atLeast(microversionOf(req), 3, 54)) throw badRequest('Invalid input received: mode needs microversion 3.54.', 'InvalidInput');
        const v = await h.vol(req, b.volume_uuid);
        const att = await svc.reserveAttachment(req.auth!, v, { instanceUuid: b.instance_uuid ?? null, connector: b.connector ?? null, mode: b.mode });
        return { attachment: attachmentView(att, b.connector ? svc.connectionFor(v.id, att.attach_mode) : null) };
      },
    }),
    ...[false, true].map((detail) =>
      defineRoute({
        method: 'GET', url: `/v3/:project_id/attachments${detail ? '/detail' : ''}`, policy: 'volume:attachment_get_all', params: P, query: AnyQuery,
        handler: async (req) => {
          needs327(req);
          h.checkProject(req);
          const rows = await svc.listAttachments(req.auth!, h.listQuery(req));
          return { attachments: rows.map((a) => (detail ? attachmentView(a, a.connector ? svc.connectionFor(a.volume_id, a.attach_mode) : null) : { id: a.id, status: a.attach_status, instance: a.instance_uuid, volume_id: a.volume_id })) };
        },
      }),
    ),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/attachments/:id', policy: 'volume:attachment_get', params: PI, errors: [404],
      target: async (req) => ({ project_id: (await attachment(req, req.params.id)).project_id }),
      handler: async (req) => {
        needs327(req);
        const a = await attachment(req, req.params.id);
        return { attachment: attachmentView(a, a.connector ? svc.connectionFor(a.volume_id, a.attach_mode) : null) };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/v3/:project_id/attachments/:id', policy: 'volume:attachment_update', params: PI, errors: [404],
      body: Type.Object({ attachment: Type.Object({ connector: Type.Object({}, { additionalProperties: true }) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: async (req) => ({ project_id: (await attachment(req, req.params.id)).project_id }),
      handler: async (req) => {
        needs327(req);
        const { att, connection } = await svc.connectAttachment(await attachment(req, req.params.id), req.body.attachment.connector);
        return { attachment: attachmentView(att, connection) };
      },
    }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/attachments/:id/action', policy: 'volume:attachment_complete', params: PI, status: 204, errors: [404], body: Type.Object({ 'os-complete': Type.Union([Type.Null(), Type.Object({})]) }, { additionalProperties: false }),
      target: async (req) => ({ project_id: (await attachment(req, req.params.id)).project_id }),
      handler: async (req, reply) => {
        if (!atLeast(microversionOf(req), 3, 44)) throw new ApiError(404, 'The resource could not be found. (os-complete needs microversion 3.44 or later.)', 'VersionNotFoundForAPIMethod');
        await svc.completeAttachment(await attachment(req, req.params.id));
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v3/:project_id/attachments/:id', policy: 'volume:attachment_delete', params: PI, errors: [404],
      target: async (req) => ({ project_id: (await attachment(req, req.params.id)).project_id }),
      handler: async (req) => {
        needs327(req);
        const a = await attachment(req, req.params.id);
        await svc.removeAttachment(a);
        return { attachments: [] };
      },
    }),

    // ---- volume types ----
    ...[false].map(() =>
      defineRoute({
        method: 'GET', url: '/v3/:project_id/types', policy: 'volume_extension:type_get_all', params: P, query: AnyQuery,
        handler: async (req) => ({ volume_types: (await svc.listTypes(h.isAdmin(req))).map((t) => typeView(t, h.isAdmin(req))) }),
      }),
    ),
    defineRoute({ method: 'GET', url: '/v3/:project_id/types/default', policy: 'volume_extension:type_get', params: P, handler: async (req) => ({ volume_type: typeView(await svc.defaultType(), h.isAdmin(req)) }) }),
    defineRoute({ method: 'GET', url: '/v3/:project_id/types/:id', policy: 'volume_extension:type_get', params: PI, errors: [404], handler: async (req) => ({ volume_type: typeView(await type(req, req.params.id), h.isAdmin(req)) }) }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/types', policy: 'volume_extension:types_manage', params: P, errors: [409],
      body: Type.Object({ volume_type: Type.Object({ name: Type.String({ minLength: 1, maxLength: 255 }), description: Nullable(Type.String({ maxLength: 255 })), 'os-volume-type-access:is_public': Type.Optional(Type.Union([Type.Boolean(), Type.String()])), extra_specs: Type.Optional(Meta) }, { additionalProperties: false }) }, { additionalProperties: false }),
      handler: async (req) => {
        const b = req.body.volume_type;
        if (!b.name.trim()) throw badRequest('Invalid input received: Volume type name can not be empty.', 'InvalidInput');
        const isPublic = b['os-volume-type-access:is_public'] === undefined ? true : toBool(b['os-volume-type-access:is_public'], 'is_public');
        return { volume_type: typeView(await svc.createType({ name: b.name.trim(), description: b.description, is_public: isPublic, extra_specs: b.extra_specs }), true, 'create') };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/v3/:project_id/types/:id', policy: 'volume_extension:types_manage', params: PI, errors: [404, 409],
      body: Type.Object({ volume_type: Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), description: Nullable(Type.String({ maxLength: 255 })), is_public: Type.Optional(Type.Union([Type.Boolean(), Type.String()])) }, { additionalProperties: false }) }, { additionalProperties: false }),
      handler: async (req) => {
        const b = req.body.volume_type;
        if (b.name === undefined && b.description === undefined && b.is_public === undefined) throw badRequest('Specify volume type name, description, is_public or a combination thereof.', 'InvalidInput');
        return { volume_type: typeView(await svc.updateType(await type(req, req.params.id), { name: b.name, description: b.description, is_public: b.is_public === undefined ? undefined : toBool(b.is_public, 'is_public') }), true, 'update') };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v3/:project_id/types/:id', policy: 'volume_extension:types_manage', params: PI, status: 202, errors: [404],
      handler: async (req, reply) => {
        await svc.deleteType(await type(req, req.params.id));
        reply.code(202).send();
      },
    }),
    defineRoute({ method: 'GET', url: '/v3/:project_id/types/:id/extra_specs', policy: 'volume_extension:types_extra_specs:index', params: PI, errors: [404], handler: async (req) => ({ extra_specs: JSON.parse((await type(req, req.params.id)).extra_specs) as Record<string, string> }) }),
    defineRoute({
      method: 'POST', url: '/v3/:project_id/types/:id/extra_specs', policy: 'volume_extension:types_extra_specs:create', params: PI, errors: [404],
      body: Type.Object({ extra_specs: Meta }, { additionalProperties: false }),
      // Cinder answers with the specs given (they are merged into the type's).
      handler: async (req) => {
        await svc.setExtraSpecs(await type(req, req.params.id), req.body.extra_specs);
        return { extra_specs: req.body.extra_specs };
      },
    }),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/types/:id/extra_specs/:key', policy: 'volume_extension:types_extra_specs:show', params: PIK, errors: [404],
      handler: async (req) => {
        const s = JSON.parse((await type(req, req.params.id)).extra_specs) as Record<string, string>;
        if (!(req.params.key in s)) throw notFound(`Volume Type ${req.params.id} has no extra specs with key ${req.params.key}.`, 'VolumeTypeExtraSpecsNotFound');
        return { [req.params.key]: s[req.params.key] };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/v3/:project_id/types/:id/extra_specs/:key', policy: 'volume_extension:types_extra_specs:update', params: PIK, errors: [404],
      body: Type.Record(Type.String(), Type.String()),
      handler: async (req) => {
        const b = req.body as Record<string, string>;
        if (Object.keys(b).length !== 1 || !(req.params.key in b)) throw badRequest('Request body and URI mismatch', 'InvalidInput');
        await svc.setExtraSpecs(await type(req, req.params.id), b, req.params.key);
        return b;
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v3/:project_id/types/:id/extra_specs/:key', policy: 'volume_extension:types_extra_specs:delete', params: PIK, status: 202, errors: [404],
      handler: async (req, reply) => {
        await svc.unsetExtraSpec(await type(req, req.params.id), req.params.key);
        reply.code(202).send();
      },
    }),

    // ---- quotas and limits ----
    defineRoute({
      method: 'GET', url: '/v3/:project_id/os-quota-sets/:id', policy: 'volume_extension:quotas:show', params: PI, query: Type.Object({ usage: Type.Optional(Type.String()) }, { additionalProperties: true }),
      target: quotaTarget,
      handler: async (req) => ({ quota_set: await quotaSet(req.params.id, !!req.query.usage && /^(1|true|t|yes)$/i.test(req.query.usage)) }),
    }),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/os-quota-sets/:id/defaults', policy: 'volume_extension:quotas:show', params: PI, target: quotaTarget,
      handler: async (req) => {
        const res = await svc.quotaResources();
        return { quota_set: { id: req.params.id, ...Object.fromEntries(await Promise.all(res.map(async (r) => [r, await svc.quota.defaultLimit(r)] as const))) } };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/v3/:project_id/os-quota-sets/:id', policy: 'volume_extension:quotas:update', params: PI, target: quotaTarget,
      body: Type.Object({ quota_set: Type.Record(Type.String(), Type.Union([Type.Integer(), Type.String()])) }, { additionalProperties: false }),
      handler: async (req) => {
        const res = new Set(await svc.quotaResources());
        const set: [string, number][] = [];
        for (const [k, v] of Object.entries(req.body.quota_set)) {
          if (k === 'tenant_id' || k === 'id') continue;
          if (!res.has(k)) throw badRequest(`Bad key(s) in quota set: ${k}`, 'InvalidInput');
          const n = toInt(v, k);
          if (n < -1) throw badRequest(`Invalid input received: Quota limit ${n} for ${k} must be -1 or greater.`, 'InvalidInput');
          const used = (await svc.quota.usage(req.params.id, [k]))[k]!;
          if (n >= 0 && n < used.in_use + used.reserved) throw badRequest(`Invalid input received: Quota limit ${n} for ${k} must be greater than or equal to already used and reserved ${used.in_use + used.reserved}.`, 'InvalidInput');
          set.push([k, n]);
        }
        for (const [k, n] of set) await svc.quota.setLimit(req.params.id, k, n);
        const { id: _id, ...rest } = await quotaSet(req.params.id, false);
        return { quota_set: rest };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v3/:project_id/os-quota-sets/:id', policy: 'volume_extension:quotas:delete', params: PI, target: quotaTarget,
      handler: async (req, reply) => {
        // Back to the defaults (the quota engine keeps other services' limits of the project).
        for (const r of await svc.quotaResources()) await svc.quota.setLimit(req.params.id, r, await svc.quota.defaultLimit(r));
        reply.code(200).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/limits', policy: 'limits_extension:used_limits', params: P, target: (req) => ({ project_id: req.auth?.projectId }),
      handler: async (req) => {
        h.checkProject(req);
        const u = await svc.usage(req.auth!.projectId ?? '');
        return {
          limits: {
            rate: [],
            absolute: {
              maxTotalVolumes: u.volumes!.limit, maxTotalSnapshots: u.snapshots!.limit, maxTotalVolumeGigabytes: u.gigabytes!.limit, maxTotalBackups: u.backups!.limit,
              maxTotalBackupGigabytes: u.backup_gigabytes!.limit, totalVolumesUsed: u.volumes!.in_use, totalGigabytesUsed: u.gigabytes!.in_use,
              totalSnapshotsUsed: u.snapshots!.in_use, totalBackupsUsed: u.backups!.in_use, totalBackupGigabytesUsed: u.backup_gigabytes!.in_use,
            },
          },
        };
      },
    }),

    // ---- transfers ----
    ...transfers('os-volume-transfer'),
    ...transfers('volume-transfers'),

    // ---- misc ----
    defineRoute({
      method: 'GET', url: '/v3/:project_id/os-availability-zone', policy: 'volume_extension:availability_zone_list', params: P,
      handler: () => ({ availabilityZoneInfo: [{ zoneName: svc.opts.availabilityZone, zoneState: { available: true } }] }),
    }),
    defineRoute({ method: 'GET', url: '/v3/:project_id/extensions', policy: 'volume_extension:list_extensions', params: P, handler: () => ({ extensions: [] }) }),
    defineRoute({
      method: 'GET', url: '/v3/:project_id/os-services', policy: 'volume_extension:services:index', params: P, query: AnyQuery,
      handler: () => {
        const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000');
        return {
          services: [
            { binary: 'cinder-scheduler', host: svc.opts.host, zone: svc.opts.availabilityZone, status: 'enabled', state: 'up', updated_at: now, disabled_reason: null },
            { binary: 'cinder-volume', host: `${svc.opts.host}@qcow2`, zone: svc.opts.availabilityZone, status: 'enabled', state: 'up', updated_at: now, disabled_reason: null },
            { binary: 'cinder-backup', host: svc.opts.host, zone: svc.opts.availabilityZone, status: 'enabled', state: 'up', updated_at: now, disabled_reason: null },
          ],
        };
      },
    }),
  ];
}
