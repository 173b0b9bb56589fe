import { Type } from '@sinclair/typebox';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { allowed, defineRoute, enforce, type RouteDef } from '../../core/http.js';
import { ApiError, badRequest, forbidden, notFound } from '../../core/errors.js';
import type { PolicyEngine } from '../../core/policy.js';
import type { MemberStatus } from '../store/tables.js';
import { IMPORT_METHODS, type ImageService } from '../service/images.js';
import { applyPatch, parsePatch, patchDraft } from '../service/patch.js';
import { MEMBER_STATUSES, parseCreate, type Caller, type Image } from '../service/model.js';
import { taskNotFound } from '../service/tasks.js';
import { pageLinks, parseImageListQuery, parseTaskListQuery, type RawQuery } from './query.js';
import { imageSchema, imagesSchema, memberSchema, membersSchema, taskSchema, tasksSchema } from './schemas.js';
import { imageView, memberView, taskSummaryView, taskView } from './views.js';

export interface ImageApiEnv {
  /** The image endpoint as clients reach it, e.g. http://127.0.0.1:8700/image */
  root: string;
}

/** The API versions Stratus serves (Glance's version list without the multi-store and cache versions). */
export function versionsBody(env: ImageApiEnv): { versions: unknown[] } {
  const href = `${env.root.replace(/\/$/, '')}/v2/`;
  const ids = ['2.7', '2.6', '2.5', '2.4', '2.3', '2.2', '2.1', '2.0'];
  return { versions: ids.map((id, i) => ({ id: `v${id}`, status: i === 0 ? 'CURRENT' : 'SUPPORTED', links: [{ rel: 'self', href }] })) };
}

const ImageId = Type.Object({ id: Type.String({ maxLength: 255 }) });
const TagParams = Type.Object({ id: Type.String({ maxLength: 255 }), tag: Type.String({ maxLength: 1024 }) });
const MemberParams = Type.Object({ id: Type.String({ maxLength: 255 }), member: Type.String({ maxLength: 255 }) });
const TaskId = Type.Object({ id: Type.String({ maxLength: 255 }) });

/** A client that sends nothing for this long loses its upload. */
const IDLE_UPLOAD_MS = 300_000;

/** Raw-body routes keep Fastify's JSON limit: only octet-stream bodies stream, unbounded, to the handler. */
const RAW_BODY_LIMIT = 1024 * 1024;

interface Loaded {
  image: Image;
  memberStatus: MemberStatus | null;
}

/** Every route of Image API v2 and the version documents, mounted under /image. */
export function imageRoutes(svc: ImageService, policy: PolicyEngine, env: ImageApiEnv): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const callers = new WeakMap<FastifyRequest, Caller>();
  const loaded = new WeakMap<FastifyRequest, Loaded>();

  const callerOf = (req: FastifyRequest): Caller => {
    let c = callers.get(req);
    if (!c) {
      const admin = allowed(policy, req, 'cloud_admin', {});
      c = { projectId: req.auth?.projectId ?? null, userId: req.auth?.userId ?? null, admin, seesAll: admin || allowed(policy, req, 'cloud_reader', {}), requestId: req.id };
      callers.set(req, c);
    }
    return c;
  };
  const targetOf = (l: Loaded, caller: Caller, memberId?: string) => ({
    owner: l.image.owner,
    project_id: l.image.owner,
    visibility: l.image.visibility,
    protected: l.image.protected,
    image_id: l.image.id,
    member_id: memberId ?? (l.memberStatus !== null ? caller.projectId : null),
  });
  /** Loads the image (404 when invisible) and builds the policy target. */
  const imageTarget = async (req: FastifyRequest<{ Params: { id: string } }>, memberId?: string) => {
    const caller = callerOf(req);
    const l = await svc.get(caller, req.params.id);
    loaded.set(req, l);
    return targetOf(l, caller, memberId);
  };
  const the = (req: FastifyRequest): Loaded => loaded.get(req)!;
  const noContent = (reply: FastifyReply) => {
    reply.code(204).send();
  };
  /** `x-openstack-image-size` and Content-Length of a data request. */
  const sizes = (req: FastifyRequest) => {
    const h = req.headers['x-openstack-image-size'];
    let declaredSize: number | undefined;
    if (h !== undefined) {
      if (typeof h !== 'string' || !/^\d+$/.test(h.trim())) throw badRequest('x-openstack-image-size must be a non-negative integer.');
      declaredSize = Number(h);
    }
    const cl = req.headers['content-length'];
    const expectedSize = typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : undefined;
    return { ...(declaredSize !== undefined ? { declaredSize } : {}), ...(expectedSize !== undefined ? { expectedSize } : {}) };
  };
  /**
   * A client that sends nothing for IDLE_UPLOAD_MS loses its upload: the
   * socket's idle timer (no per-chunk cost) destroys the request, which the
   * store sees as an interrupted upload. Cleared when the upload is over.
   */
  const watchIdle = async <T>(req: FastifyRequest, work: () => Promise<T>): Promise<T> => {
    const socket = req.raw.socket as (typeof req.raw.socket & { setTimeout?: unknown }) | undefined;
    const real = typeof socket?.setTimeout === 'function'; // injected requests have no socket
    if (real) req.raw.setTimeout(IDLE_UPLOAD_MS, () => req.raw.destroy(new Error(`no data received for ${IDLE_UPLOAD_MS / 1000} s`)));
    try {
      return await work();
    } finally {
      if (real) socket!.setTimeout(0);
    }
  };
  const requireOctetStream = (req: FastifyRequest) => {
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (ct !== 'application/octet-stream') throw new ApiError(415, `Content-Type must be application/octet-stream, not ${ct || 'missing'}.`, 'UnsupportedMediaType');
  };
  /** Content-MD5 of an upload (hex, or base64 as RFC 1864 has it) → hex. */
  const declaredMd5 = (req: FastifyRequest): string | undefined => {
    const h = req.headers['content-md5'];
    if (typeof h !== 'string' || !h.trim()) return undefined;
    const v = h.trim();
    if (/^[0-9a-fA-F]{32}$/.test(v)) return v.toLowerCase();
    const b = Buffer.from(v, 'base64');
    if (b.length === 16) return b.toString('hex');
    throw badRequest('Content-MD5 must be an MD5 digest (hex or base64).');
  };

  return [
    // ----------------------------------------------------------------- versions
    defineRoute({
      method: 'GET', url: '/', policy: null,
      handler: async (_req, reply) => {
        reply.code(300);
        return versionsBody(env);
      },
    }),
    defineRoute({ method: 'GET', url: '/versions', policy: null, handler: async () => versionsBody(env) }),

    // ----------------------------------------------------------------- schemas and discovery
    defineRoute({ method: 'GET', url: '/v2/schemas/image', policy: null, handler: async () => imageSchema() }),
    defineRoute({ method: 'GET', url: '/v2/schemas/images', policy: null, handler: async () => imagesSchema() }),
    defineRoute({ method: 'GET', url: '/v2/schemas/member', policy: null, handler: async () => memberSchema() }),
    defineRoute({ method: 'GET', url: '/v2/schemas/members', policy: null, handler: async () => membersSchema() }),
    defineRoute({ method: 'GET', url: '/v2/schemas/task', policy: null, handler: async () => taskSchema() }),
    defineRoute({ method: 'GET', url: '/v2/schemas/tasks', policy: null, handler: async () => tasksSchema() }),
    defineRoute({
      method: 'GET', url: '/v2/info/import', policy: null,
      handler: async () => ({ 'import-methods': { description: 'Import methods available.', type: 'array', value: [...IMPORT_METHODS] } }),
    }),

    // ----------------------------------------------------------------- images
    defineRoute({
      method: 'GET', url: '/v2/images', policy: 'get_images',
      handler: async (req) => {
        // `GET /v2/images/` names an image with an empty id (Glance: 404), not the list
        if (req.url.split('?')[0]!.endsWith('/')) throw notFound('No image found with ID ');
        const q = parseImageListQuery(req.query as RawQuery);
        const { images, more } = await svc.list(callerOf(req), q);
        const links = pageLinks('/v2/images', req.url, more && images.length ? images[images.length - 1]!.id : null);
        return { images: images.map(imageView), schema: '/v2/schemas/images', ...links };
      },
    }),
    defineRoute({
      method: 'POST', url: '/v2/images', policy: 'add_image', status: 201, errors: [409],
      target: (req) => {
        const body = req.body as Record<string, unknown> | undefined;
        const owner = body && typeof body === 'object' && 'owner' in body ? body.owner : callerOf(req).projectId;
        return { owner, project_id: owner, visibility: body?.visibility ?? 'shared' };
      },
      handler: async (req, reply) => {
        const input = parseCreate(req.body);
        const caller = callerOf(req);
        const target = { owner: input.base.owner ?? caller.projectId, visibility: input.base.visibility ?? 'shared' };
        if (input.base.visibility === 'public') enforce(policy, req, 'publicize_image', target);
        if (input.base.visibility === 'community') enforce(policy, req, 'communitize_image', target);
        const img = await svc.create(caller, input);
        reply.header('location', `${env.root}/v2/images/${img.id}`);
        reply.header('openstack-image-import-methods', IMPORT_METHODS.join(','));
        return imageView(img);
      },
    }),
    defineRoute({
      method: 'GET', url: '/v2/images/:id', policy: 'get_image', params: ImageId, errors: [404],
      target: (req) => imageTarget(req),
      handler: async (req) => imageView(the(req).image),
    }),
    defineRoute({
      method: 'PATCH', url: '/v2/images/:id', policy: 'modify_image', params: ImageId, errors: [404, 409, 415],
      target: (req) => imageTarget(req),
      handler: async (req) => {
        const draft = patchDraft(req.headers['content-type']);
        const ops = parsePatch(req.body, draft);
        const { image } = the(req);
        const caller = callerOf(req);
        const { next, changed } = applyPatch(image, ops, caller, draft);
        if (changed.has('visibility') && next.visibility !== image.visibility) {
          const t = { owner: image.owner, project_id: image.owner, visibility: next.visibility };
          if (next.visibility === 'public') enforce(policy, req, 'publicize_image', t);
          if (next.visibility === 'community') enforce(policy, req, 'communitize_image', t);
        }
        return imageView(await svc.update(image, next, changed));
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v2/images/:id', policy: 'delete_image', params: ImageId, status: 204, errors: [404, 409],
      target: (req) => imageTarget(req),
      handler: async (req, reply) => {
        await svc.delete(the(req).image);
        noContent(reply);
      },
    }),
    defineRoute({
      method: 'POST', url: '/v2/images/:id/actions/deactivate', policy: 'deactivate', params: ImageId, status: 204, errors: [404],
      target: (req) => imageTarget(req),
      handler: async (req, reply) => {
        await svc.deactivate(the(req).image);
        noContent(reply);
      },
    }),
    defineRoute({
      method: 'POST', url: '/v2/images/:id/actions/reactivate', policy: 'reactivate', params: ImageId, status: 204, errors: [404],
      target: (req) => imageTarget(req),
      handler: async (req, reply) => {
        await svc.reactivate(the(req).image);
        noContent(reply);
      },
    }),

    // ----------------------------------------------------------------- data
    defineRoute({
      method: 'PUT', url: '/v2/images/:id/file', policy: 'upload_image', params: ImageId, status: 204, errors: [404, 409, 410, 415],
      rawBody: true, bodyLimit: RAW_BODY_LIMIT,
      target: (req) => imageTarget(req),
      handler: async (req, reply) => {
        requireOctetStream(req);
        const md5 = declaredMd5(req);
        await watchIdle(req, () => svc.upload(the(req).image, req.raw, { ...sizes(req), ...(md5 ? { declaredMd5: md5 } : {}) }));
        noContent(reply);
      },
    }),
    defineRoute({
      method: 'GET', url: '/v2/images/:id/file', policy: 'download_image', params: ImageId, errors: [404, 416],
      target: (req) => imageTarget(req),
      handler: async (req, reply) => {
        const range = req.headers.range;
        const data = await svc.openData(callerOf(req), the(req).image, typeof range === 'string' ? range : undefined);
        if (!data) return noContent(reply);
        reply.code(data.status);
        reply.header('content-type', 'application/octet-stream');
        reply.header('content-length', String(data.length));
        reply.header('accept-ranges', 'bytes');
        if (data.range) reply.header('content-range', `bytes ${data.range.start}-${data.range.end}/${data.size}`);
        else if (data.checksum) reply.header('content-md5', data.checksum);
        if (data.length === 0 || req.method === 'HEAD') {
          // Nothing to send (HEAD keeps the headers, and must not read the file).
          data.stream.destroy();
          return reply.send(Readable.from([]));
        }
        return reply.send(data.stream);
      },
    }),
    defineRoute({
      method: 'PUT', url: '/v2/images/:id/stage', policy: 'upload_image', params: ImageId, status: 204, errors: [404, 409, 410, 415],
      rawBody: true, bodyLimit: RAW_BODY_LIMIT,
      target: (req) => imageTarget(req),
      handler: async (req, reply) => {
        requireOctetStream(req);
        await watchIdle(req, () => svc.stage(the(req).image, req.raw, sizes(req)));
        noContent(reply);
      },
    }),
    defineRoute({
      method: 'POST', url: '/v2/images/:id/import', policy: 'modify_image', params: ImageId, status: 202, errors: [404, 409],
      target: (req) => imageTarget(req),
      handler: async (req, reply) => {
        const task = await svc.importImage(callerOf(req), the(req).image, req.body);
        reply.header('openstack-image-import-task-id', task.id);
        reply.code(202).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/v2/images/:id/tasks', policy: 'get_image', params: ImageId, errors: [404],
      target: (req) => imageTarget(req),
      handler: async (req) => ({ tasks: (await svc.tasks.forImage(the(req).image.id)).map(taskView) }),
    }),

    // ----------------------------------------------------------------- tags
    defineRoute({
      method: 'PUT', url: '/v2/images/:id/tags/:tag', policy: 'modify_image', params: TagParams, status: 204, errors: [404],
      target: (req) => imageTarget(req as never),
      handler: async (req, reply) => {
        await svc.catalog.addTag(the(req).image.id, req.params.tag);
        noContent(reply);
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v2/images/:id/tags/:tag', policy: 'modify_image', params: TagParams, status: 204, errors: [404],
      target: (req) => imageTarget(req as never),
      handler: async (req, reply) => {
        await svc.catalog.removeTag(the(req).image.id, req.params.tag);
        noContent(reply);
      },
    }),

    // ----------------------------------------------------------------- members
    defineRoute({
      method: 'GET', url: '/v2/images/:id/members', policy: 'get_members', params: ImageId, errors: [404],
      target: (req) => imageTarget(req),
      handler: async (req) => {
        const { image } = the(req);
        const caller = callerOf(req);
        if (image.visibility !== 'shared') throw forbidden('Only shared images have members.');
        const owner = caller.seesAll || (caller.projectId !== null && caller.projectId === image.owner);
        const members = await svc.catalog.members(image.id, owner ? undefined : (caller.projectId ?? ''));
        return { members: members.map(memberView), schema: '/v2/schemas/members' };
      },
    }),
    defineRoute({
      method: 'POST', url: '/v2/images/:id/members', policy: 'add_member', params: ImageId, errors: [404, 409],
      body: Type.Object({ member: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: true }),
      target: (req) => imageTarget(req),
      handler: async (req) => {
        const { image } = the(req);
        if (image.visibility !== 'shared') throw forbidden(`Image ${image.id} is not shared: only shared images can have members.`);
        return memberView(await svc.catalog.addMember(image.id, req.body.member));
      },
    }),
    defineRoute({
      method: 'GET', url: '/v2/images/:id/members/:member', policy: 'get_member', params: MemberParams, errors: [404],
      target: (req) => imageTarget(req as never),
      handler: async (req) => {
        const { image } = the(req);
        const caller = callerOf(req);
        if (image.visibility !== 'shared') throw forbidden('Only shared images have members.');
        const owner = caller.seesAll || (caller.projectId !== null && caller.projectId === image.owner);
        const m = owner || caller.projectId === req.params.member ? await svc.catalog.member(image.id, req.params.member) : null;
        if (!m) throw notFound(`${req.params.member} is not a member of image ${image.id}`, 'MemberNotFound');
        return memberView(m);
      },
    }),
    defineRoute({
      method: 'PUT', url: '/v2/images/:id/members/:member', policy: 'modify_member', params: MemberParams, errors: [404],
      body: Type.Object({ status: Type.String() }, { additionalProperties: true }),
      target: (req) => imageTarget(req as never, req.params.member),
      handler: async (req) => {
        const { image } = the(req);
        if (image.visibility !== 'shared') throw forbidden('Only shared images have members.');
        if (!(MEMBER_STATUSES as string[]).includes(req.body.status)) throw badRequest(`Invalid status: ${req.body.status}. It must be one of: ${MEMBER_STATUSES.join(', ')}.`);
        return memberView(await svc.catalog.setMemberStatus(image.id, req.params.member, req.body.status as MemberStatus));
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/v2/images/:id/members/:member', policy: 'delete_member', params: MemberParams, status: 204, errors: [404],
      target: (req) => imageTarget(req as never),
      handler: async (req, reply) => {
        const { image } = the(req);
        if (image.visibility !== 'shared') throw forbidden('Only shared images have members.');
        await svc.catalog.removeMember(image.id, req.params.member);
        noContent(reply);
      },
    }),

    // ----------------------------------------------------------------- tasks
    defineRoute({
      method: 'GET', url: '/v2/tasks', policy: 'get_tasks',
      handler: async (req) => {
        const caller = callerOf(req);
        const q = parseTaskListQuery(req.query as RawQuery, caller.seesAll ? null : (caller.projectId ?? ''));
        const { tasks, more } = await svc.tasks.list(q);
        const links = pageLinks('/v2/tasks', req.url, more && tasks.length ? tasks[tasks.length - 1]!.id : null);
        return { tasks: tasks.map(taskSummaryView), schema: '/v2/schemas/tasks', ...links };
      },
    }),
    defineRoute({
      method: 'GET', url: '/v2/tasks/:id', policy: 'get_task', params: TaskId, errors: [404],
      target: async (req) => {
        const caller = callerOf(req);
        const t = await svc.tasks.get(req.params.id);
        if (!t || (!caller.seesAll && t.owner !== caller.projectId)) throw taskNotFound(req.params.id);
        return { owner: t.owner, project_id: t.owner, task_id: t.id };
      },
      handler: async (req) => taskView((await svc.tasks.get(req.params.id))!),
    }),
  ];
}

