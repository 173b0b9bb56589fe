import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { defineRoute, enforce, allowed, type RouteDef, type ApiRequest } from '../../core/http.js';
import { ApiError, badRequest, conflict, notFound } from '../../core/errors.js';
import type { PolicyEngine } from '../../core/policy.js';
import type { QuotaEngine } from '../../core/quota.js';
import type { Bus, Json } from '../../core/bus.js';
import { bool } from '../../core/db.js';
import { hexId, uuid } from '../../core/ids.js';
import { isoSeconds } from '../../core/time.js';
import type { ServerService } from '../service/servers.js';
import { COMPUTE_QUOTAS } from '../service/servers.js';
import type { KeypairService } from '../service/keypairs.js';
import type { EmbeddedFlavor, InstanceRow } from '../store/tables.js';
import { TASK, VM, serverStatus } from '../service/states.js';
import { serverView, flavorView, link, type ViewEnv } from './views.js';
import { addressesOf } from '../service/network.js';
import type { InstancePort } from '../../network/protocol.js';
import { hostIsUp } from '../service/scheduler.js';
import { interfaceRoutes } from './interfaces.js';
import type { ProxyImage } from '../service/ports.js';
import { isIPv4, isIPv6 } from 'node:net';

/** Nova's image proxy view of a Glance image (status in Nova's words, progress as Nova reports it). */
function imageProxyView(env: ViewEnv, i: ProxyImage): Record<string, unknown> {
  const status = ({ active: 'ACTIVE', queued: 'SAVING', saving: 'SAVING', uploading: 'SAVING', importing: 'SAVING', deleted: 'DELETED', pending_delete: 'DELETED', killed: 'ERROR', deactivated: 'ERROR' } as Record<string, string>)[i.status] ?? 'UNKNOWN';
  const progress = ({ queued: 25, uploading: 25, saving: 50, importing: 50, active: 100 } as Record<string, number>)[i.status] ?? 0;
  const view: Record<string, unknown> = {
    id: i.id, name: i.name, status, progress, minDisk: i.minDisk, minRam: i.minRam, metadata: i.properties,
    created: isoSeconds(i.createdAt), updated: isoSeconds(i.updatedAt), 'OS-EXT-IMG-SIZE:size': i.size,
    links: [...link(env, `/images/${i.id}`), { rel: 'alternate', type: 'application/vnd.openstack.image', href: `${env.root.replace(/\/compute$/, '')}/image/v2/images/${i.id}` }],
  };
  const server = i.properties['instance_uuid'];
  if (server) view.server = { id: server, links: link(env, `/servers/${server}`) };
  return view;
}

/** Nova's deprecated proxies of network quotas (the same figures os-limits shows). */
const LEGACY_NETWORK_QUOTAS: Record<string, number> = { floating_ips: 10, fixed_ips: -1, security_groups: 10, security_group_rules: 20 };

/**
 * The server view of an update or rebuild response: Nova leaves out the
 * extension attributes there, its addresses included (only addr and version).
 */
export function updateView(v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith('OS-EXT-') || k.startsWith('OS-SRV-USG:') || k.startsWith('os-extended-volumes:') || ['config_drive', 'key_name', 'security_groups'].includes(k)) continue;
    out[k] = x;
  }
  if (out.addresses && typeof out.addresses === 'object') {
    const addrs = out.addresses as Record<string, Array<{ addr: string; version: number }>>;
    out.addresses = Object.fromEntries(Object.entries(addrs).map(([net, list]) => [net, list.map((a) => ({ version: a.version, addr: a.addr }))]));
  }
  return out;
}

/** accessIPv4/accessIPv6: '' or a valid address (IPv6 in its canonical short form, as Nova stores it); else 400. */
function accessIp(v: string | undefined, version: 4 | 6): string | undefined {
  if (v === undefined || v === '') return v;
  if (version === 4) {
    if (!isIPv4(v)) throw badRequest(`Invalid input for field/attribute accessIPv4. Value: ${v}. '${v}' is not a 'ipv4'`);
    return v;
  }
  if (!isIPv6(v)) throw badRequest(`Invalid input for field/attribute accessIPv6. Value: ${v}. '${v}' is not a 'ipv6'`);
  return new URL(`http://[${v}]/`).hostname.slice(1, -1);
}

/** The highest compute microversion whose behaviour Stratus implements fully. */
export const MAX_MICROVERSION = '2.1';
export const MIN_MICROVERSION = '2.1';

const Id = Type.Object({ id: Type.String({ maxLength: 255 }) });
const Meta = Type.Record(Type.String({ pattern: '^[\\s\\S]{1,255}$' }), Type.String({ maxLength: 255 }), { additionalProperties: false });

const ServerCreate = Type.Object(
  {
    server: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 255 }),
        imageRef: Type.Optional(Type.String()),
        flavorRef: Type.Union([Type.String({ minLength: 1 }), Type.Integer()]),
        key_name: Type.Optional(Type.String()),
        user_data: Type.Optional(Type.Union([Type.String({ maxLength: 87380 }), Type.Null()])),
        metadata: Type.Optional(Meta),
        availability_zone: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        min_count: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })])),
        max_count: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })])),
        return_reservation_id: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
        config_drive: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
        accessIPv4: Type.Optional(Type.String()),
        accessIPv6: Type.Optional(Type.String()),
        adminPass: Type.Optional(Type.String()),
        networks: Type.Optional(Type.Unknown()),
        security_groups: Type.Optional(Type.Array(Type.Object({ name: Type.String() }, { additionalProperties: false }))),
        block_device_mapping: Type.Optional(Type.Unknown()),
        block_device_mapping_v2: Type.Optional(Type.Array(Type.Unknown())),
        'OS-DCF:diskConfig': Type.Optional(Type.String()),
        personality: Type.Optional(Type.Array(Type.Unknown())),
      },
      { additionalProperties: false },
    ),
    'os:scheduler_hints': Type.Optional(Type.Object({ group: Type.Optional(Type.String()) }, { additionalProperties: true })),
    'OS-SCH-HNT:scheduler_hints': Type.Optional(Type.Object({ group: Type.Optional(Type.String()) }, { additionalProperties: true })),
  },
  { additionalProperties: false },
);

function parseVersion(v: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)$/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * Reads `OpenStack-API-Version: compute X.Y` (or the legacy
 * X-OpenStack-Nova-API-Version), resolves `latest`, rejects versions outside
 * the supported range with 406 as Nova does, and echoes the version used.
 */
export function negotiateMicroversion(req: FastifyRequest, reply: FastifyReply): string {
  let asked: string | undefined;
  const h = req.headers['openstack-api-version'];
  if (typeof h === 'string') {
    const m = /(?:^|,)\s*compute\s+([^,\s]+)/i.exec(h);
    if (m) asked = m[1];
  }
  const legacy = req.headers['x-openstack-nova-api-version'];
  if (!asked && typeof legacy === 'string') asked = legacy;
  let used = MIN_MICROVERSION;
  if (asked) {
    if (asked.toLowerCase() === 'latest') used = MAX_MICROVERSION;
    else {
      const v = parseVersion(asked);
      const min = parseVersion(MIN_MICROVERSION)!, max = parseVersion(MAX_MICROVERSION)!;
      if (!v) throw badRequest(`API Version String ${asked} is of invalid format. Must be of format MajorNum.MinorNum.`);
      if (v[0] < min[0] || (v[0] === min[0] && v[1] < min[1]) || v[0] > max[0] || (v[0] === max[0] && v[1] > max[1]))
        throw new ApiError(406, `Version ${asked} is not supported by the API. Minimum is ${MIN_MICROVERSION} and maximum is ${MAX_MICROVERSION}.`, 'NotAcceptable');
      used = `${v[0]}.${v[1]}`;
    }
  }
  reply.header('openstack-api-version', `compute ${used}`);
  reply.header('x-openstack-nova-api-version', used);
  reply.header('vary', 'OpenStack-API-Version, X-OpenStack-Nova-API-Version');
  return used;
}

export interface ComputeApiDeps {
  servers: ServerService;
  keypairs: KeypairService;
  policy: PolicyEngine;
  quota: QuotaEngine;
  bus: Bus;
  env: ViewEnv;
  /** Issues serial console URLs (os-getSerialConsole). */
  consoleUrl: (instanceId: string) => string;
  /** The routes are mounted as the legacy v2.0 API (its version document at the root). */
  legacyV2?: boolean;
}

/**
 * Nova's v2.0: the same API as v2.1 at its base microversion, without
 * microversion negotiation (kept for clients of the old v2 API).
 */
export function legacyVersionDoc(env: ViewEnv) {
  return {
    id: 'v2.0', status: 'SUPPORTED', version: '', min_version: '', updated: '2011-01-21T11:33:21Z',
    links: [{ rel: 'self', href: `${env.root}/v2/` }, { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2' }],
  };
}

export function versionDoc(env: ViewEnv) {
  return {
    id: 'v2.1', status: 'CURRENT', version: MAX_MICROVERSION, min_version: MIN_MICROVERSION, updated: '2013-07-23T11:33:21Z',
    links: [{ rel: 'self', href: `${env.root}/v2.1/` }, { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
  };
}

export function computeRoutes(d: ComputeApiDeps): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { servers, keypairs, policy, quota, env } = d;
  const isAdmin = (req: FastifyRequest) => allowed(policy, req, 'cloud_admin', {});
  const isReaderAll = (req: FastifyRequest) => allowed(policy, req, 'cloud_reader', {});
  const inst = async (req: FastifyRequest, id: string) => servers.get(id, req.auth, isReaderAll(req));
  const target = (r: InstanceRow) => ({ project_id: r.project_id, user_id: r.user_id });
  const serverAddresses = async (req: FastifyRequest, id: string) => addressesOf(await servers.network.instancePorts((await inst(req, id)).id));
  const show = async (req: FastifyRequest, r: InstanceRow, ports?: InstancePort[]) => ({
    ...serverView(env, r, { detail: true, admin: isAdmin(req), fault: await servers.fault(r.id), addresses: bool(r.deleted) ? {} : addressesOf(ports ?? (await servers.network.instancePorts(r.id))) }),
    ...(servers.volumes ? { 'os-extended-volumes:volumes_attached': await servers.volumes.attachedIds(r.id) } : {}),
  });

  const listServers = async (req: ApiRequest<unknown, Record<string, string | undefined>>, detail: boolean) => {
    const q = req.query;
    const admin = isReaderAll(req);
    const allTenants = q.all_tenants !== undefined && q.all_tenants !== '0' && q.all_tenants.toLowerCase() !== 'false';
    if (allTenants) enforce(policy, req, 'os_compute_api:servers:index:get_all_tenants', {});
    let query = servers.db.selectFrom('nova_instances').selectAll();
    const project = allTenants ? q.project_id ?? q.tenant_id : admin && (q.project_id ?? q.tenant_id) ? (q.project_id ?? q.tenant_id) : req.auth!.projectId;
    if (project) query = query.where('project_id', '=', project);
    const deletedFilter = q.deleted !== undefined && admin && /^(1|true)$/i.test(q.deleted);
    if (q['changes-since']) {
      const cs = q['changes-since'];
      const since = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(cs) ? Date.parse(cs) : NaN;
      if (Number.isNaN(since)) throw badRequest(`Invalid input for query parameters changes-since. Value: ${cs}. '${cs}' is not a 'date-time'`);
      query = query.where('updated_at', '>=', since);
    } else query = query.where('deleted', '=', deletedFilter ? 1 : 0);
    if (q.image) query = query.where('image_id', '=', q.image);
    if (q.host && admin) query = query.where('host', '=', q.host);
    if (q.reservation_id) query = query.where('reservation_id', '=', q.reservation_id);
    if (q.availability_zone) query = query.where('availability_zone', '=', q.availability_zone);
    if (q.key_name) query = query.where('key_name', '=', q.key_name);
    const sortKey = ['created_at', 'updated_at', 'display_name', 'uuid', 'vm_state', 'task_state', 'launched_at'].includes(q.sort_key ?? '') ? q.sort_key! : 'created_at';
    const col = ({ display_name: 'name', uuid: 'id' } as Record<string, string>)[sortKey] ?? sortKey;
    const dir = q.sort_dir === 'asc' ? 'asc' : 'desc';
    let rows = await query.orderBy(col as 'created_at', dir).orderBy('id', dir).execute();
    if (q.name) {
      let re: RegExp;
      try {
        re = new RegExp(q.name);
      } catch {
        throw badRequest(`Invalid regular expression in name filter: ${q.name}`);
      }
      rows = rows.filter((r) => re.test(r.name));
    }
    if (q.status) {
      const want = q.status.toUpperCase();
      rows = rows.filter((r) => serverStatus(r.vm_state, r.task_state) === want);
    }
    if (q.flavor) rows = rows.filter((r) => (JSON.parse(r.flavor) as EmbeddedFlavor).id === q.flavor);
    // Addresses of every listed server with one network call (detail views and the ip filter need them).
    let ports: Map<string, InstancePort[]> | null = null;
    if (q.ip !== undefined) {
      let re: RegExp;
      try {
        re = new RegExp(q.ip);
      } catch {
        throw badRequest(`Invalid regular expression in ip filter: ${q.ip}`);
      }
      ports = await servers.network.portsOfInstances(rows.map((r) => r.id));
      rows = rows.filter((r) => ports!.get(r.id)!.some((p) => p.fixed_ips.some((ip) => re.test(ip.ip_address) || ip.floating_ips.some((f) => re.test(f)))));
    }
    if (q.marker) {
      const i = rows.findIndex((r) => r.id === q.marker);
      if (i < 0) throw badRequest(`marker [${q.marker}] not found`);
      rows = rows.slice(i + 1);
    }
    const limit = q.limit !== undefined ? Number(q.limit) : 1000;
    if (!Number.isInteger(limit) || limit < 0) throw badRequest('limit param must be an integer');
    const more = rows.length > limit;
    rows = rows.slice(0, limit);
    const out: unknown[] = [];
    if (detail && !ports) ports = await servers.network.portsOfInstances(rows.filter((r) => !bool(r.deleted)).map((r) => r.id));
    for (const r of rows) out.push(detail ? await show(req, r, ports?.get(r.id) ?? []) : serverView(env, r, { detail: false, admin }));
    const body: Record<string, unknown> = { servers: out };
    if (more && rows.length) {
      const params = new URLSearchParams(q as Record<string, string>);
      params.set('marker', rows[rows.length - 1]!.id);
      body.servers_links = [{ rel: 'next', href: `${env.root}/v2.1/servers${detail ? '/detail' : ''}?${params}` }];
    }
    return body;
  };

  const action = async (req: ApiRequest<Record<string, unknown>, unknown, { id: string }>, reply: FastifyReply) => {
    const body = req.body;
    if (!body || typeof body !== 'object' || Object.keys(body).length !== 1) throw badRequest('There is no such action: the body must name exactly one action.');
    const name = Object.keys(body)[0]!;
    const arg = body[name];
    const r = await inst(req, req.params.id);
    const admin = isAdmin(req);
    const rule = (rl: string) => enforce(policy, req, rl, target(r));
    const ctx = req.auth!;
    const act = async (nameOfAction: string, vm: string[], task: string, method: string, extra: Record<string, Json> = {}, expected?: (string | null)[]) => {
      const locked = await servers.casTask(r, nameOfAction, vm, task, { admin, ctx, expected });
      const actionId = await servers.recordAction(r, nameOfAction, ctx, req.id);
      await servers.toHost(locked, method, actionId, extra);
      reply.code(202);
      return null;
    };
    const ACTIVE_ISH = [VM.ACTIVE, VM.STOPPED, VM.PAUSED, VM.SUSPENDED];
    switch (name) {
      case 'os-stop':
        rule('os_compute_api:servers:stop');
        return act('stop', [VM.ACTIVE, VM.ERROR], TASK.POWERING_OFF, 'stop');
      case 'os-start':
        rule('os_compute_api:servers:start');
        return act('start', [VM.STOPPED], TASK.POWERING_ON, 'start');
      case 'reboot': {
        rule('os_compute_api:servers:reboot');
        const type = (arg as { type?: string })?.type;
        if (type !== 'HARD' && type !== 'SOFT') throw badRequest("Invalid input for field/attribute type. Value must be one of 'HARD', 'SOFT'.");
        if (type === 'SOFT') return act('reboot', [VM.ACTIVE], TASK.REBOOT_STARTED, 'reboot', { hard: false });
        return act('reboot', [VM.ACTIVE, VM.STOPPED, VM.PAUSED, VM.SUSPENDED, VM.ERROR], TASK.REBOOT_STARTED_HARD, 'reboot', { hard: true }, [null, TASK.REBOOT_STARTED, TASK.REBOOT_STARTED_HARD, TASK.PAUSING, TASK.UNPAUSING, TASK.SUSPENDING, TASK.RESUMING]);
      }
      case 'pause':
        rule('os_compute_api:os-pause-server:pause');
        return act('pause', [VM.ACTIVE], TASK.PAUSING, 'pause');
      case 'unpause':
        rule('os_compute_api:os-pause-server:unpause');
        return act('unpause', [VM.PAUSED], TASK.UNPAUSING, 'unpause');
      case 'suspend':
        rule('os_compute_api:os-suspend-server:suspend');
        return act('suspend', [VM.ACTIVE], TASK.SUSPENDING, 'suspend');
      case 'resume':
        rule('os_compute_api:os-suspend-server:resume');
        return act('resume', [VM.SUSPENDED], TASK.RESUMING, 'resume');
      case 'lock':
        rule('os_compute_api:os-lock-server:lock');
        await servers.setLock(r, true, ctx, admin);
        reply.code(202);
        return null;
      case 'unlock':
        rule('os_compute_api:os-lock-server:unlock');
        await servers.setLock(r, false, ctx, admin);
        reply.code(202);
        return null;
      case 'resize': {
        rule('os_compute_api:servers:resize');
        const ref = (arg as { flavorRef?: string | number })?.flavorRef;
        if (ref === undefined) throw badRequest("Invalid input for field/attribute resize. Value: {}. 'flavorRef' is a required property");
        const f = await servers.flavors.getFor(String(ref), ctx.projectId, admin).catch(() => {
          throw badRequest(`Flavor ${ref} could not be found.`);
        });
        const cur = JSON.parse(r.flavor) as EmbeddedFlavor;
        if (f.id === cur.id) throw badRequest('When resizing, instances must change flavor!');
        if (f.disk < cur.disk) throw badRequest('Unable to resize disk down.');
        const dv = f.vcpus - cur.vcpus, dr = f.ram - cur.ram;
        const resv = dv > 0 || dr > 0 ? await quota.reserve(r.project_id, { cores: Math.max(0, dv), ram: Math.max(0, dr) }).catch((e: ApiError) => {
          throw new ApiError(403, e.message, 'OverQuota');
        }) : null;
        try {
          const locked = await servers.casTask(r, 'resize', [VM.ACTIVE, VM.STOPPED], TASK.RESIZE_PREP, { admin, ctx });
          const emb: EmbeddedFlavor = { id: f.id, name: f.name, vcpus: f.vcpus, ram: f.ram, disk: f.disk, ephemeral: f.ephemeral, swap: f.swap, extra_specs: f.extra_specs };
          await servers.db.updateTable('nova_instances').set({ old_flavor: r.flavor, flavor: JSON.stringify(emb) }).where('id', '=', r.id).execute();
          if (resv) await quota.commit(resv);
          const actionId = await servers.recordAction(r, 'resize', ctx, req.id);
          await servers.toHost(locked, 'resize', actionId, { flavor: emb as unknown as Json });
        } catch (e) {
          if (resv) await quota.rollback(resv);
          throw e;
        }
        reply.code(202);
        return null;
      }
      case 'confirmResize': {
        rule('os_compute_api:servers:confirm_resize');
        if (bool(r.locked) && !admin) throw conflict(`Instance ${r.id} is locked`);
        if (r.vm_state !== VM.RESIZED) throw conflict(`Cannot 'confirmResize' instance ${r.id} while it is in vm_state ${r.vm_state}`);
        if (r.task_state !== null) throw conflict(`Cannot 'confirmResize' instance ${r.id} while it is in task_state ${r.task_state}`);
        const old = r.old_flavor ? (JSON.parse(r.old_flavor) as EmbeddedFlavor) : null;
        const power = r.power_state === 1 ? VM.ACTIVE : VM.STOPPED;
        const done = await servers.db.updateTable('nova_instances').set({ vm_state: power, task_state: null, old_flavor: null, updated_at: Date.now() })
          .where('id', '=', r.id).where('vm_state', '=', VM.RESIZED).where('task_state', 'is', null).executeTakeFirst();
        if (Number(done.numUpdatedRows) !== 1) throw conflict(`Cannot 'confirmResize' instance ${r.id}: its state changed meanwhile.`);
        // Usage was raised when the resize started; shrinking flavors give back now.
        const cur = JSON.parse(r.flavor) as EmbeddedFlavor;
        if (old) {
          const dv = cur.vcpus - old.vcpus, dr = cur.ram - old.ram;
          if (dv < 0 || dr < 0) await quota.release(r.project_id, { cores: Math.max(0, -dv), ram: Math.max(0, -dr) });
        }
        await servers.recordAction(r, 'confirmResize', ctx, req.id);
        reply.code(204);
        return null;
      }
      case 'revertResize': {
        rule('os_compute_api:servers:revert_resize');
        if (!r.old_flavor) throw conflict(`Cannot 'revertResize' instance ${r.id} while it is in vm_state ${r.vm_state}`);
        const locked = await servers.casTask(r, 'revertResize', [VM.RESIZED], TASK.RESIZE_REVERTING, { admin, ctx });
        const old = JSON.parse(r.old_flavor) as EmbeddedFlavor;
        const cur = JSON.parse(r.flavor) as EmbeddedFlavor;
        const dv = cur.vcpus - old.vcpus, dr = cur.ram - old.ram;
        if (dv > 0 || dr > 0) await quota.release(r.project_id, { cores: Math.max(0, dv), ram: Math.max(0, dr) });
        const actionId = await servers.recordAction(r, 'revertResize', ctx, req.id);
        await servers.toHost(locked, 'revert_resize', actionId, { flavor: old as unknown as Json });
        reply.code(202);
        return null;
      }
      case 'createImage': {
        rule('os_compute_api:servers:create_image');
        const a = arg as { name?: unknown; metadata?: Record<string, unknown> };
        if (typeof a?.name !== 'string' || !a.name.trim()) throw badRequest("Invalid input for field/attribute createImage. 'name' is a required property");
        const props: Record<string, string> = { image_type: 'snapshot', instance_uuid: r.id, base_image_ref: r.image_id, owner_project_name: ctx.projectName ?? '', owner_user_name: ctx.userName };
        for (const [k, v] of Object.entries(a.metadata ?? {})) props[k] = String(v);
        const imagePort = servers.images;
        if (!imagePort.reserveImage) throw new ApiError(501, 'Snapshots need the image service.', 'NotImplemented');
        const locked = await servers.casTask(r, 'createImage', ACTIVE_ISH, TASK.IMAGE_SNAPSHOT, { admin, ctx });
        let image: { id: string };
        try {
          image = await imagePort.reserveImage(ctx, { name: a.name, properties: props });
        } catch (e) {
          await servers.db.updateTable('nova_instances').set({ task_state: null }).where('id', '=', r.id).execute();
          throw e;
        }
        const actionId = await servers.recordAction(r, 'createImage', ctx, req.id);
        await servers.toHost(locked, 'snapshot', actionId, { ctx: ctx as unknown as Json, imageId: image.id, name: a.name, properties: props });
        reply.header('location', `${env.root.replace(/\/compute$/, '/image')}/v2/images/${image.id}`);
        reply.code(202);
        return null;
      }
      case 'rebuild': {
        rule('os_compute_api:servers:rebuild');
        const a = arg as { imageRef?: string; name?: string; metadata?: Record<string, string>; adminPass?: string };
        if (!a?.imageRef) throw badRequest("Invalid input for field/attribute rebuild. 'imageRef' is a required property");
        const img = await servers.images.getImageForBoot(ctx, a.imageRef).catch(() => {
          throw badRequest(`Image ${a.imageRef} could not be found.`);
        });
        const f = JSON.parse(r.flavor) as EmbeddedFlavor;
        if (f.ram < img.minRam) throw badRequest("Flavor's memory is too small for requested image.");
        if (f.disk > 0 && f.disk < img.minDisk) throw badRequest("Flavor's disk is too small for requested image.");
        const wasStopped = r.vm_state === VM.STOPPED;
        const locked = await servers.casTask(r, 'rebuild', [VM.ACTIVE, VM.STOPPED, VM.ERROR], TASK.REBUILDING, { admin, ctx });
        const set: Partial<InstanceRow> = {};
        if (a.name) set.name = a.name;
        if (a.metadata) set.metadata = JSON.stringify(a.metadata);
        if (Object.keys(set).length) await servers.db.updateTable('nova_instances').set(set).where('id', '=', r.id).execute();
        const fresh = { ...locked, ...set };
        const actionId = await servers.recordAction(r, 'rebuild', ctx, req.id);
        const spec = {
          instanceId: r.id, actionId, name: fresh.name, hostname: servers.hostnameOf(fresh), projectId: r.project_id, vcpus: f.vcpus, memoryMb: f.ram, rootGb: f.disk,
          imageId: img.id, imagePath: img.localPath, imageFormat: img.diskFormat, availabilityZone: r.availability_zone, launchIndex: r.launch_index,
          metadata: JSON.parse(fresh.metadata) as Record<string, string>, keyData: r.key_data ? JSON.parse(r.key_data) : null, userData: r.user_data,
          requestedNetworks: [], securityGroups: [], configDrive: bool(r.config_drive),
        };
        await servers.toHost(locked, 'rebuild', actionId, { spec: spec as unknown as Json, wasStopped });
        reply.code(202);
        // As Nova with enable_instance_password: the response carries the (given or generated) admin password.
        return { server: { ...updateView(await show(req, { ...fresh, task_state: TASK.REBUILDING })), adminPass: a.adminPass ?? hexId().slice(0, 12) } };
      }
      case 'rescue': {
        rule('os_compute_api:os-rescue');
        const a = (arg ?? {}) as { rescue_image_ref?: string; adminPass?: string };
        const imgId = a.rescue_image_ref ?? r.image_id;
        await servers.images.getImageForBoot(ctx, imgId).catch(() => {
          throw badRequest(`Image ${imgId} could not be found.`);
        });
        const pass = a.adminPass ?? hexId().slice(0, 12);
        await act('rescue', [VM.ACTIVE, VM.STOPPED, VM.ERROR], TASK.RESCUING, 'rescue', { ctx: ctx as unknown as Json, imageId: imgId });
        reply.code(200);
        return { adminPass: pass };
      }
      case 'unrescue':
        rule('os_compute_api:os-unrescue');
        return act('unrescue', [VM.RESCUED], TASK.UNRESCUING, 'unrescue');
      case 'os-getConsoleOutput': {
        rule('os_compute_api:os-console-output');
        const len = (arg as { length?: unknown })?.length;
        let lines: number | undefined;
        if (len !== undefined && len !== null) {
          lines = Number(len);
          if (!Number.isInteger(lines) || lines < -1) throw badRequest('Invalid input for field/attribute length.');
          if (lines === -1) lines = undefined;
        }
        if (!r.host || r.vm_state === VM.BUILDING) throw conflict(`Cannot 'os-getConsoleOutput' instance ${r.id} while it is in vm_state ${r.vm_state}`);
        const res = (await d.bus.call(`compute.${r.host}`, 'console_output', { instanceId: r.id, length: lines ?? null } as Json, { timeoutMs: 30_000 })) as { output: string };
        return { output: res.output };
      }
      case 'os-getSerialConsole': {
        rule('os_compute_api:os-remote-consoles');
        const type = (arg as { type?: string })?.type;
        if (type !== 'serial') throw badRequest("Invalid input for field/attribute type. Value must be 'serial'.");
        if (r.vm_state !== VM.ACTIVE && r.vm_state !== VM.RESCUED) throw conflict(`Cannot 'os-getSerialConsole' instance ${r.id} while it is in vm_state ${r.vm_state}`);
        return { console: { type: 'serial', url: d.consoleUrl(r.id) } };
      }
      case 'os-getVNCConsole':
      case 'os-getSPICEConsole':
      case 'os-getRDPConsole':
        throw badRequest('Unavailable console type: only the serial console is offered (os-getSerialConsole).');
      case 'addSecurityGroup':
      case 'removeSecurityGroup': {
        rule(name === 'addSecurityGroup' ? 'os_compute_api:os-security-groups:add' : 'os_compute_api:os-security-groups:remove');
        const sg = (arg as { name?: unknown } | null)?.name;
        if (typeof sg !== 'string' || !sg.trim()) throw badRequest('Security group name cannot be empty');
        await servers.changeSecurityGroup(r, name === 'addSecurityGroup' ? 'add' : 'remove', sg.trim());
        reply.code(202);
        return null;
      }
      case 'addFloatingIp':
      case 'removeFloatingIp':
        throw new ApiError(404, `Action ${name} was removed in compute microversion 2.44; use the network API (openstack server add floating ip).`, 'NotFound');
      default:
        throw badRequest(`There is no such action: ${name}`);
    }
  };

  const quotaView = async (projectId: string, detail: boolean) => {
    const res = Object.keys(COMPUTE_QUOTAS).filter((k) => k !== 'key_pairs');
    const u = await quota.usage(projectId, res);
    const out: Record<string, unknown> = { id: projectId };
    for (const k of res) out[k] = detail ? { limit: u[k]!.limit, in_use: u[k]!.in_use, reserved: u[k]!.reserved } : u[k]!.limit;
    const kp = await quota.limits(projectId, ['key_pairs']);
    out.key_pairs = detail ? { limit: kp.key_pairs, in_use: 0, reserved: 0 } : kp.key_pairs;
    // Below microversion 2.36 Nova also shows its deprecated network quotas (the network service enforces the real ones).
    for (const [k, v] of Object.entries(LEGACY_NETWORK_QUOTAS)) out[k] = detail ? { limit: v, in_use: 0, reserved: 0 } : v;
    return out;
  };

  return [
    defineRoute({ method: 'GET', url: '', policy: null, handler: async () => ({ version: d.legacyV2 ? legacyVersionDoc(env) : versionDoc(env) }) }),

    // ---- servers ----
    defineRoute({
      method: 'GET', url: '/servers', policy: 'os_compute_api:servers:index', query: Type.Object({}, { additionalProperties: true }),
      target: (req) => ({ project_id: req.auth?.projectId }),
      handler: (req) => listServers(req as never, false),
    }),
    defineRoute({
      method: 'GET', url: '/servers/detail', policy: 'os_compute_api:servers:detail', query: Type.Object({}, { additionalProperties: true }),
      target: (req) => ({ project_id: req.auth?.projectId }),
      handler: (req) => listServers(req as never, true),
    }),
    defineRoute({
      method: 'POST', url: '/servers', policy: 'os_compute_api:servers:create', body: ServerCreate, status: 202, errors: [403, 409],
      target: (req) => ({ project_id: req.auth?.projectId, user_id: req.auth?.userId }),
      handler: async (req, reply) => {
        const s = req.body.server;
        if ((s.block_device_mapping_v2?.length || s.block_device_mapping) && !servers.volumes) throw new ApiError(501, 'Boot from volume needs the block storage service, which is not running.', 'NotImplemented');
        const bootVolume = (await servers.volumes?.prepareBoot(req.auth!, s as never)) ?? undefined;
        if (s.personality?.length) throw badRequest('Personality (file injection) is not supported; use user_data or a config drive.');
        const hints = req.body['os:scheduler_hints'] ?? req.body['OS-SCH-HNT:scheduler_hints'];
        const toInt = (v: number | string | undefined) => (v === undefined ? undefined : Number(v));
        const { rows, reservationId } = await servers.create(
          req.auth!,
          {
            name: s.name, imageRef: s.imageRef, flavorRef: String(s.flavorRef), key_name: s.key_name, user_data: s.user_data ?? undefined, metadata: s.metadata,
            availability_zone: s.availability_zone, min_count: toInt(s.min_count), max_count: toInt(s.max_count), accessIPv4: accessIp(s.accessIPv4, 4), accessIPv6: accessIp(s.accessIPv6, 6),
            groupId: hints?.group, adminPass: s.adminPass, bootVolume, networks: s.networks, securityGroups: s.security_groups?.map((g) => g.name),
            config_drive: s.config_drive === undefined ? undefined : s.config_drive === true || (typeof s.config_drive === 'string' && ['true', 'True', '1', 'yes'].includes(s.config_drive)),
          },
          req.id,
          isAdmin(req),
        );
        const wantResv = s.return_reservation_id === true || s.return_reservation_id === 'True' || s.return_reservation_id === 'true';
        if (wantResv) return { reservation_id: reservationId };
        const first = rows[0]!;
        reply.header('location', `${env.root}/v2.1/servers/${first.id}`);
        return {
          server: { id: first.id, links: link(env, `/servers/${first.id}`), 'OS-DCF:diskConfig': 'MANUAL', security_groups: (s.security_groups?.length ? s.security_groups : [{ name: 'default' }]).map((g) => ({ name: g.name })), adminPass: s.adminPass ?? uuid().replace(/-/g, '').slice(0, 12) },
        };
      },
    }),
    defineRoute({
      method: 'GET', url: '/servers/:id', policy: 'os_compute_api:servers:show', params: Id, errors: [404],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => ({ server: await show(req, await inst(req, req.params.id)) }),
    }),
    defineRoute({
      method: 'GET', url: '/servers/:id/ips', policy: 'os_compute_api:ips:index', params: Id, errors: [404],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => ({ addresses: await serverAddresses(req, req.params.id) }),
    }),
    defineRoute({
      method: 'GET', url: '/servers/:id/ips/:network', policy: 'os_compute_api:ips:show', params: Type.Object({ id: Type.String(), network: Type.String() }), errors: [404],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const list = (await serverAddresses(req, req.params.id))[req.params.network];
        if (!list) throw notFound(`Instance is not a member of specified network`);
        return { [req.params.network]: list };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/servers/:id', policy: 'os_compute_api:servers:update', params: Id, errors: [404],
      body: Type.Object({ server: Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })), accessIPv4: Type.Optional(Type.String()), accessIPv6: Type.Optional(Type.String()), 'OS-DCF:diskConfig': Type.Optional(Type.String()) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const r = await inst(req, req.params.id);
        const p = req.body.server;
        await servers.update(r, { ...p, ...(p.accessIPv4 !== undefined ? { accessIPv4: accessIp(p.accessIPv4, 4) } : {}), ...(p.accessIPv6 !== undefined ? { accessIPv6: accessIp(p.accessIPv6, 6) } : {}) });
        // Nova answers an update with the basic server view (no extended attributes).
        return { server: updateView(await show(req, await inst(req, req.params.id))) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/servers/:id', policy: 'os_compute_api:servers:delete', params: Id, status: 204, errors: [404, 409],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req, reply) => {
        await servers.delete(req.auth!, await inst(req, req.params.id), req.id, isAdmin(req));
        reply.code(204).send();
      },
    }),
    defineRoute({
      method: 'POST', url: '/servers/:id/action', policy: 'os_compute_api:servers:show', params: Id, errors: [404, 409, 501],
      body: Type.Object({}, { additionalProperties: true }),
      target: async (req) => target(await inst(req, req.params.id)),
      handler: (req, reply) => action(req as never, reply),
    }),

    ...interfaceRoutes({ servers, env, inst, target, isAdmin }),

    // ---- metadata ----
    defineRoute({
      method: 'GET', url: '/servers/:id/metadata', policy: 'os_compute_api:server-metadata:index', params: Id, errors: [404],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => ({ metadata: JSON.parse((await inst(req, req.params.id)).metadata) }),
    }),
    ...(['POST', 'PUT'] as const).map((m) =>
      defineRoute({
        method: m, url: '/servers/:id/metadata', policy: m === 'POST' ? 'os_compute_api:server-metadata:create' : 'os_compute_api:server-metadata:update_all', params: Id, errors: [404, 409],
        body: Type.Object({ metadata: Meta }, { additionalProperties: false }),
        target: async (req) => target(await inst(req, req.params.id)),
        handler: async (req) => ({ metadata: await servers.setMetadata(await inst(req, req.params.id), req.body.metadata, m === 'PUT', isAdmin(req)) }),
      }),
    ),
    defineRoute({
      method: 'GET', url: '/servers/:id/metadata/:key', policy: 'os_compute_api:server-metadata:show', params: Type.Object({ id: Type.String(), key: Type.String() }), errors: [404],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const meta = JSON.parse((await inst(req, req.params.id)).metadata) as Record<string, string>;
        if (!(req.params.key in meta)) throw notFound('Metadata item was not found');
        return { meta: { [req.params.key]: meta[req.params.key] } };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/servers/:id/metadata/:key', policy: 'os_compute_api:server-metadata:update', params: Type.Object({ id: Type.String(), key: Type.String() }), errors: [404],
      body: Type.Object({ meta: Meta }, { additionalProperties: false }),
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req) => {
        const keys = Object.keys(req.body.meta);
        if (keys.length !== 1 || keys[0] !== req.params.key) throw badRequest('Request body and URI mismatch');
        await servers.setMetadata(await inst(req, req.params.id), req.body.meta, false, isAdmin(req));
        return { meta: req.body.meta };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/servers/:id/metadata/:key', policy: 'os_compute_api:server-metadata:delete', params: Type.Object({ id: Type.String(), key: Type.String() }), status: 204, errors: [404],
      target: async (req) => target(await inst(req, req.params.id)),
      handler: async (req, reply) => {
        const r = await inst(req, req.params.id);
        const meta = JSON.parse(r.metadata) as Record<string, string>;
        if (!(req.params.key in meta)) throw notFound('Metadata item was not found');
        delete meta[req.params.key];
        await servers.setMetadata(r, meta, true, isAdmin(req));
        reply.code(204).send();
      },
    }),

    // ---- instance actions ----
    defineRoute({
      method: 'GET', url: '/servers/:id/os-instance-actions', policy: 'os_compute_api:os-instance-actions:list', params: Id, errors: [404],
      target: async (req) => target(await servers.get(req.params.id, req.auth, isReaderAll(req), true)),
      handler: async (req) => {
        const rows = await servers.db.selectFrom('nova_instance_actions').selectAll().where('instance_id', '=', req.params.id).orderBy('start_time', 'desc').execute();
        return { instanceActions: rows.map((a) => ({ action: a.action, instance_uuid: a.instance_id, message: a.message, project_id: a.project_id, request_id: a.request_id, start_time: isoSeconds(a.start_time).replace('Z', '.000000'), user_id: a.user_id })) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/servers/:id/os-instance-actions/:rid', policy: 'os_compute_api:os-instance-actions:show', params: Type.Object({ id: Type.String(), rid: Type.String() }), errors: [404],
      target: async (req) => target(await servers.get(req.params.id, req.auth, isReaderAll(req), true)),
      handler: async (req) => {
        const a = await servers.db.selectFrom('nova_instance_actions').selectAll().where('instance_id', '=', req.params.id).where('request_id', '=', req.params.rid).executeTakeFirst();
        if (!a) throw notFound(`Action ${req.params.rid} not found`);
        const ev = await servers.db.selectFrom('nova_instance_action_events').selectAll().where('action_id', '=', a.id).orderBy('start_time').execute();
        const showTrace = allowed(policy, req, 'os_compute_api:os-instance-actions:events', { project_id: a.project_id });
        const t = (ms: number | null) => (ms ? isoSeconds(Number(ms)).replace('Z', '.000000') : null);
        return {
          instanceAction: {
            action: a.action, instance_uuid: a.instance_id, message: a.message, project_id: a.project_id, request_id: a.request_id, start_time: t(a.start_time), user_id: a.user_id,
            events: ev.map((e) => ({ event: e.event, start_time: t(e.start_time), finish_time: t(e.finish_time), result: e.result, ...(showTrace ? { traceback: e.traceback } : {}) })),
          },
        };
      },
    }),

    // ---- images (Nova's deprecated proxy of the image service) ----
    ...([false, true] as const).map((detail) =>
      defineRoute({
        method: 'GET', url: detail ? '/images/detail' : '/images', policy: 'os_compute_api:images', query: Type.Object({}, { additionalProperties: true }),
        handler: async (req) => {
          const q = req.query as Record<string, string | undefined>;
          const limit = q.limit !== undefined ? Number(q.limit) : 1000;
          if (!Number.isInteger(limit) || limit < 0) throw badRequest('limit param must be an integer');
          if (!servers.images.listImages) throw new ApiError(503, 'The image service is not available.', 'ServiceUnavailable');
          const list = await servers.images.listImages(req.auth!, limit, q.marker);
          return { images: list.map((i) => (detail ? imageProxyView(env, i) : { id: i.id, name: i.name, links: imageProxyView(env, i).links })) };
        },
      }),
    ),
    defineRoute({
      method: 'GET', url: '/images/:id', policy: 'os_compute_api:images', params: Id, errors: [404],
      handler: async (req) => {
        if (!servers.images.showImage) throw new ApiError(503, 'The image service is not available.', 'ServiceUnavailable');
        const img = await servers.images.showImage(req.auth!, req.params.id).catch((e: unknown) => {
          if (e instanceof ApiError && e.status === 404) throw notFound('Image not found.');
          throw e;
        });
        return { image: imageProxyView(env, img) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/images/:id', policy: 'os_compute_api:images', params: Id, status: 204, errors: [403, 404],
      handler: async (req, reply) => {
        if (!servers.images.deleteImage) throw new ApiError(503, 'The image service is not available.', 'ServiceUnavailable');
        await servers.images.deleteImage(req.auth!, req.params.id).catch((e: unknown) => {
          if (e instanceof ApiError && e.status === 404) throw notFound('Image not found.');
          throw e;
        });
        reply.code(204).send();
      },
    }),

    // ---- flavors ----
    ...([false, true] as const).map((detail) =>
      defineRoute({
        method: 'GET', url: detail ? '/flavors/detail' : '/flavors', policy: 'os_compute_api:flavors', query: Type.Object({}, { additionalProperties: true }),
        handler: async (req) => {
          const q = req.query as Record<string, string | undefined>;
          const admin = isAdmin(req);
          const isPublic = q.is_public === undefined ? undefined : /^(none)$/i.test(q.is_public) ? (admin ? null : undefined) : /^(1|t|true|yes|on)$/i.test(q.is_public);
          let list = await servers.flavors.list({ projectId: req.auth!.projectId, admin, isPublic, minRam: q.minRam ? Number(q.minRam) : undefined, minDisk: q.minDisk ? Number(q.minDisk) : undefined });
          if (isPublic === null) list = await servers.flavors.list({ projectId: null, admin: true, isPublic: undefined }).then(async (pub) => [...pub, ...(await servers.flavors.list({ projectId: null, admin: true, isPublic: false }))]);
          if (q.marker) {
            const i = list.findIndex((f) => f.id === q.marker);
            if (i < 0) throw badRequest(`marker [${q.marker}] not found`);
            list = list.slice(i + 1);
          }
          const limit = q.limit ? Number(q.limit) : 1000;
          const more = list.length > limit;
          list = list.slice(0, limit);
          const body: Record<string, unknown> = { flavors: list.map((f) => flavorView(env, f, detail)) };
          if (more && list.length) body.flavors_links = [{ rel: 'next', href: `${env.root}/v2.1/flavors${detail ? '/detail' : ''}?limit=${limit}&marker=${list[list.length - 1]!.id}` }];
          return body;
        },
      }),
    ),
    defineRoute({
      method: 'GET', url: '/flavors/:id', policy: 'os_compute_api:flavors', params: Id, errors: [404],
      handler: async (req) => ({ flavor: flavorView(env, await servers.flavors.getFor(req.params.id, req.auth!.projectId, isAdmin(req)), true) }),
    }),
    defineRoute({
      method: 'POST', url: '/flavors', policy: 'os_compute_api:os-flavor-manage:create', errors: [409],
      body: Type.Object({
        flavor: Type.Object({
          name: Type.String({ minLength: 1, maxLength: 255 }), id: Type.Optional(Type.Union([Type.String({ maxLength: 255, pattern: '^(?! )[a-zA-Z0-9. _-]+(?<! )$' }), Type.Null()])),
          ram: Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })]), vcpus: Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })]),
          disk: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]+$' })]), 'OS-FLV-EXT-DATA:ephemeral': Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]+$' })])),
          swap: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]*$' })])), rxtx_factor: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          'os-flavor-access:is_public': Type.Optional(Type.Boolean()), description: Type.Optional(Type.Union([Type.String({ maxLength: 65535 }), Type.Null()])),
        }, { additionalProperties: false }),
      }, { additionalProperties: false }),
      handler: async (req) => {
        const f = req.body.flavor;
        const n = (v: unknown) => Number(v ?? 0);
        const created = await servers.flavors.create({
          id: f.id ?? null, name: f.name, ram: n(f.ram), vcpus: n(f.vcpus), disk: n(f.disk), ephemeral: n(f['OS-FLV-EXT-DATA:ephemeral']), swap: f.swap === '' ? 0 : n(f.swap),
          rxtx_factor: f.rxtx_factor, is_public: f['os-flavor-access:is_public'], description: f.description ?? null,
        });
        return { flavor: flavorView(env, created, true) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/flavors/:id', policy: 'os_compute_api:os-flavor-manage:delete', params: Id, status: 202, errors: [404],
      handler: async (req, reply) => {
        await servers.flavors.delete(req.params.id);
        reply.code(202).send();
      },
    }),
    defineRoute({
      method: 'GET', url: '/flavors/:id/os-extra_specs', policy: 'os_compute_api:os-flavor-extra-specs:index', params: Id, errors: [404],
      handler: async (req) => ({ extra_specs: (await servers.flavors.getFor(req.params.id, req.auth!.projectId, isAdmin(req))).extra_specs }),
    }),
    defineRoute({
      method: 'POST', url: '/flavors/:id/os-extra_specs', policy: 'os_compute_api:os-flavor-extra-specs:create', params: Id, errors: [404],
      body: Type.Object({ extra_specs: Type.Record(Type.String({ pattern: '^[a-zA-Z0-9-_:. ]{1,255}$' }), Type.Union([Type.String({ maxLength: 255 }), Type.Number(), Type.Boolean()]), { additionalProperties: false }) }, { additionalProperties: false }),
      handler: async (req) => ({ extra_specs: await servers.flavors.setExtraSpecs(req.params.id, Object.fromEntries(Object.entries(req.body.extra_specs).map(([k, v]) => [k, String(v)]))) }),
    }),
    defineRoute({
      method: 'GET', url: '/flavors/:id/os-extra_specs/:key', policy: 'os_compute_api:os-flavor-extra-specs:show', params: Type.Object({ id: Type.String(), key: Type.String() }), errors: [404],
      handler: async (req) => {
        const specs = (await servers.flavors.getFor(req.params.id, req.auth!.projectId, isAdmin(req))).extra_specs;
        if (!(req.params.key in specs)) throw notFound(`Flavor ${req.params.id} has no extra specs with key ${req.params.key}.`);
        return { [req.params.key]: specs[req.params.key] };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/flavors/:id/os-extra_specs/:key', policy: 'os_compute_api:os-flavor-extra-specs:update', params: Type.Object({ id: Type.String(), key: Type.String() }), errors: [404],
      body: Type.Record(Type.String(), Type.Union([Type.String({ maxLength: 255 }), Type.Number(), Type.Boolean()])),
      handler: async (req) => {
        const body = req.body as Record<string, unknown>;
        if (Object.keys(body).length !== 1 || !(req.params.key in body)) throw badRequest('Request body and URI mismatch');
        await servers.flavors.setExtraSpecs(req.params.id, { [req.params.key]: String(body[req.params.key]) });
        return { [req.params.key]: String(body[req.params.key]) };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/flavors/:id/os-extra_specs/:key', policy: 'os_compute_api:os-flavor-extra-specs:delete', params: Type.Object({ id: Type.String(), key: Type.String() }), errors: [404],
      handler: async (req) => {
        await servers.flavors.deleteExtraSpec(req.params.id, req.params.key);
        return null;
      },
    }),
    defineRoute({
      method: 'GET', url: '/flavors/:id/os-flavor-access', policy: 'os_compute_api:os-flavor-access', params: Id, errors: [404],
      handler: async (req) => ({ flavor_access: (await servers.flavors.access(req.params.id)).map((p) => ({ flavor_id: req.params.id, tenant_id: p })) }),
    }),
    defineRoute({
      method: 'POST', url: '/flavors/:id/action', policy: 'os_compute_api:os-flavor-access', params: Id, errors: [404, 409],
      body: Type.Union([
        Type.Object({ addTenantAccess: Type.Object({ tenant: Type.String() }, { additionalProperties: false }) }, { additionalProperties: false }),
        Type.Object({ removeTenantAccess: Type.Object({ tenant: Type.String() }, { additionalProperties: false }) }, { additionalProperties: false }),
      ]),
      handler: async (req) => {
        const b = req.body as { addTenantAccess?: { tenant: string }; removeTenantAccess?: { tenant: string } };
        const list = b.addTenantAccess ? await servers.flavors.addAccess(req.params.id, b.addTenantAccess.tenant) : await servers.flavors.removeAccess(req.params.id, b.removeTenantAccess!.tenant);
        return { flavor_access: list.map((p) => ({ flavor_id: req.params.id, tenant_id: p })) };
      },
    }),

    // ---- keypairs ----
    defineRoute({
      method: 'GET', url: '/os-keypairs', policy: 'os_compute_api:os-keypairs:index', query: Type.Object({ user_id: Type.Optional(Type.String()) }, { additionalProperties: true }),
      target: (req) => ({ user_id: req.query.user_id ?? req.auth?.userId }),
      handler: async (req) => ({
        keypairs: (await keypairs.list(req.query.user_id ?? req.auth!.userId)).map((k) => ({ keypair: { name: k.name, public_key: k.public_key, fingerprint: k.fingerprint } })),
      }),
    }),
    defineRoute({
      method: 'POST', url: '/os-keypairs', policy: 'os_compute_api:os-keypairs:create', errors: [403, 409],
      body: Type.Object({ keypair: Type.Object({ name: Type.String({ minLength: 1, maxLength: 255 }), public_key: Type.Optional(Type.String()), type: Type.Optional(Type.Union([Type.Literal('ssh'), Type.Literal('x509')])), user_id: Type.Optional(Type.String()) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: (req) => ({ user_id: req.body.keypair.user_id ?? req.auth?.userId }),
      handler: async (req, reply) => {
        const k = req.body.keypair;
        const created = await keypairs.create(k.user_id ?? req.auth!.userId, k.name, k.public_key, k.type ?? 'ssh', req.auth!.projectId).catch((e: unknown) => {
          if (e instanceof ApiError && e.status === 413) throw new ApiError(403, 'Quota exceeded, too many key pairs.', 'OverQuota');
          throw e;
        });
        reply.code(200);
        return { keypair: { name: created.name, public_key: created.public_key, fingerprint: created.fingerprint, user_id: created.user_id, ...(created.private_key ? { private_key: created.private_key } : {}) } };
      },
    }),
    defineRoute({
      method: 'GET', url: '/os-keypairs/:name', policy: 'os_compute_api:os-keypairs:show', params: Type.Object({ name: Type.String() }), errors: [404],
      query: Type.Object({ user_id: Type.Optional(Type.String()) }, { additionalProperties: true }),
      target: (req) => ({ user_id: req.query.user_id ?? req.auth?.userId }),
      handler: async (req) => {
        const k = await keypairs.get(req.query.user_id ?? req.auth!.userId, req.params.name);
        return { keypair: { name: k.name, public_key: k.public_key, fingerprint: k.fingerprint, user_id: k.user_id, created_at: isoSeconds(k.created_at).replace('Z', '.000000'), deleted: false, deleted_at: null, updated_at: null, id: 0 } };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/os-keypairs/:name', policy: 'os_compute_api:os-keypairs:delete', params: Type.Object({ name: Type.String() }), status: 202, errors: [404],
      query: Type.Object({ user_id: Type.Optional(Type.String()) }, { additionalProperties: true }),
      target: (req) => ({ user_id: req.query.user_id ?? req.auth?.userId }),
      handler: async (req, reply) => {
        await keypairs.delete(req.query.user_id ?? req.auth!.userId, req.params.name);
        reply.code(202).send();
      },
    }),

    // ---- availability zones, hypervisors, services ----
    defineRoute({
      method: 'GET', url: '/os-availability-zone', policy: 'os_compute_api:os-availability-zone:list',
      handler: async () => {
        const hosts = await servers.db.selectFrom('nova_compute_hosts').selectAll().execute();
        const zones = [...new Set(hosts.map((h) => h.availability_zone))];
        return { availabilityZoneInfo: zones.map((z) => ({ zoneName: z, zoneState: { available: hosts.some((h) => h.availability_zone === z && h.status === 'enabled' && hostIsUp({ heartbeat_at: h.heartbeat_at })) }, hosts: null })) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/os-availability-zone/detail', policy: 'os_compute_api:os-availability-zone:detail',
      handler: async () => {
        const hosts = await servers.db.selectFrom('nova_compute_hosts').selectAll().execute();
        const zones = [...new Set(hosts.map((h) => h.availability_zone))];
        const up = (h: (typeof hosts)[number]) => hostIsUp({ heartbeat_at: h.heartbeat_at });
        return {
          availabilityZoneInfo: [
            { zoneName: 'internal', zoneState: { available: true }, hosts: Object.fromEntries(hosts.map((h) => [h.host, { 'nova-conductor': { available: true, active: true, updated_at: isoSeconds(Date.now()) }, 'nova-scheduler': { available: true, active: true, updated_at: isoSeconds(Date.now()) } }])) },
            ...zones.map((z) => ({
              zoneName: z, zoneState: { available: true },
              hosts: Object.fromEntries(hosts.filter((h) => h.availability_zone === z).map((h) => [h.host, { 'nova-compute': { available: up(h), active: h.status === 'enabled', updated_at: isoSeconds(Number(h.heartbeat_at)) } }])),
            })),
          ],
        };
      },
    }),
    ...(['', '/detail'] as const).map((suffix) =>
      defineRoute({
        method: 'GET', url: `/os-hypervisors${suffix}`, policy: suffix ? 'os_compute_api:os-hypervisors:list-detail' : 'os_compute_api:os-hypervisors:list',
        handler: async () => ({ hypervisors: await hypervisors(servers, suffix === '/detail') }),
      }),
    ),
    defineRoute({
      method: 'GET', url: '/os-hypervisors/statistics', policy: 'os_compute_api:os-hypervisors:statistics',
      handler: async () => {
        const hv = (await hypervisors(servers, true)) as Record<string, number>[];
        const sum = (k: string) => hv.reduce((s, h) => s + Number(h[k] ?? 0), 0);
        return { hypervisor_statistics: { count: hv.length, vcpus: sum('vcpus'), vcpus_used: sum('vcpus_used'), memory_mb: sum('memory_mb'), memory_mb_used: sum('memory_mb_used'), free_ram_mb: sum('free_ram_mb'), local_gb: sum('local_gb'), local_gb_used: sum('local_gb_used'), free_disk_gb: sum('free_disk_gb'), disk_available_least: sum('disk_available_least'), running_vms: sum('running_vms'), current_workload: 0 } };
      },
    }),
    defineRoute({
      method: 'GET', url: '/os-hypervisors/:id', policy: 'os_compute_api:os-hypervisors:show', params: Id, errors: [404],
      handler: async (req) => {
        const h = ((await hypervisors(servers, true)) as { id: number }[]).find((x) => String(x.id) === req.params.id);
        if (!h) throw notFound(`Hypervisor with ID ${req.params.id} could not be found.`);
        return { hypervisor: h };
      },
    }),
    defineRoute({
      method: 'GET', url: '/os-services', policy: 'os_compute_api:os-services:list', query: Type.Object({}, { additionalProperties: true }),
      handler: async (req) => {
        const q = req.query as Record<string, string | undefined>;
        const hosts = await servers.db.selectFrom('nova_compute_hosts').selectAll().execute();
        let list: Record<string, unknown>[] = [];
        const now = Date.now();
        list.push({ id: 1, binary: 'nova-conductor', host: 'stratus', zone: 'internal', status: 'enabled', state: 'up', updated_at: isoSeconds(now).replace('Z', '.000000'), disabled_reason: null, forced_down: false });
        list.push({ id: 2, binary: 'nova-scheduler', host: 'stratus', zone: 'internal', status: 'enabled', state: 'up', updated_at: isoSeconds(now).replace('Z', '.000000'), disabled_reason: null, forced_down: false });
        for (const h of hosts)
          list.push({
            id: 100 + h.id, binary: 'nova-compute', host: h.host, zone: h.availability_zone, status: h.status, disabled_reason: h.disabled_reason,
            state: hostIsUp(h, now) ? 'up' : 'down', updated_at: isoSeconds(Number(h.heartbeat_at)).replace('Z', '.000000'), forced_down: bool(h.forced_down),
          });
        if (q.host) list = list.filter((s) => s.host === q.host);
        if (q.binary) list = list.filter((s) => s.binary === q.binary);
        return { services: list };
      },
    }),

    // ---- limits and quotas ----
    defineRoute({
      method: 'GET', url: '/limits', policy: 'os_compute_api:limits', query: Type.Object({ tenant_id: Type.Optional(Type.String()) }, { additionalProperties: true }),
      handler: async (req) => {
        const project = req.query.tenant_id && isAdmin(req) ? req.query.tenant_id : req.auth!.projectId;
        if (!project) throw badRequest('Limits need a project-scoped token.');
        const u = await quota.usage(project, ['instances', 'cores', 'ram', 'server_groups', 'metadata_items', 'server_group_members']);
        const kp = await quota.limits(project, ['key_pairs']);
        return {
          limits: {
            rate: [],
            absolute: {
              maxTotalInstances: u.instances!.limit, maxTotalCores: u.cores!.limit, maxTotalRAMSize: u.ram!.limit, maxServerMeta: u.metadata_items!.limit,
              maxImageMeta: 128, maxPersonality: 5, maxPersonalitySize: 10240, maxTotalKeypairs: kp.key_pairs, maxServerGroups: u.server_groups!.limit,
              maxServerGroupMembers: u.server_group_members!.limit, maxSecurityGroups: 10, maxSecurityGroupRules: 20, maxTotalFloatingIps: 10,
              totalInstancesUsed: u.instances!.in_use, totalCoresUsed: u.cores!.in_use, totalRAMUsed: u.ram!.in_use, totalServerGroupsUsed: u.server_groups!.in_use,
              totalSecurityGroupsUsed: 0, totalFloatingIpsUsed: 0,
            },
          },
        };
      },
    }),
    defineRoute({
      method: 'GET', url: '/os-quota-sets/:id', policy: 'os_compute_api:os-quota-sets:show', params: Id,
      target: (req) => ({ project_id: req.params.id }),
      handler: async (req) => ({ quota_set: await quotaView(req.params.id, false) }),
    }),
    defineRoute({
      method: 'GET', url: '/os-quota-sets/:id/detail', policy: 'os_compute_api:os-quota-sets:detail', params: Id,
      target: (req) => ({ project_id: req.params.id }),
      handler: async (req) => ({ quota_set: await quotaView(req.params.id, true) }),
    }),
    defineRoute({
      method: 'GET', url: '/os-quota-sets/:id/defaults', policy: 'os_compute_api:os-quota-sets:defaults', params: Id,
      handler: async (req) => {
        const out: Record<string, unknown> = { id: req.params.id };
        for (const k of Object.keys(COMPUTE_QUOTAS)) out[k] = await quota.defaultLimit(k);
        Object.assign(out, LEGACY_NETWORK_QUOTAS);
        return { quota_set: out };
      },
    }),
    defineRoute({
      method: 'PUT', url: '/os-quota-sets/:id', policy: 'os_compute_api:os-quota-sets:update', params: Id,
      body: Type.Object({ quota_set: Type.Record(Type.String(), Type.Union([Type.Integer({ minimum: -1 }), Type.String({ pattern: '^-?[0-9]+$' }), Type.Boolean()])) }, { additionalProperties: false }),
      target: (req) => ({ project_id: req.params.id }),
      handler: async (req) => {
        const qs = req.body.quota_set;
        const force = qs.force === true || qs.force === 'True' || qs.force === 'true';
        const wanted: [string, number][] = [];
        for (const [k, v] of Object.entries(qs)) {
          if (k === 'force') continue;
          if (k in LEGACY_NETWORK_QUOTAS) continue; // deprecated network proxies: accepted, not stored (Neutron's quotas apply)
          if (!(k in COMPUTE_QUOTAS)) throw badRequest(`Bad key(s) ${k} in quota_set`);
          const n = Number(v);
          if (!Number.isInteger(n) || n < -1) throw badRequest(`Invalid quota value ${String(v)} for ${k}`);
          wanted.push([k, n]);
        }
        // Validate everything first so a refused update changes nothing.
        if (!force) {
          const u = await quota.usage(req.params.id, wanted.map(([k]) => k));
          for (const [k, n] of wanted) {
            const used = (u[k]?.in_use ?? 0) + (u[k]?.reserved ?? 0);
            if (n >= 0 && n < used) throw badRequest(`Quota limit ${n} for ${k} must be greater than or equal to already used and reserved ${used}.`);
          }
        }
        for (const [k, n] of wanted) await quota.setLimit(req.params.id, k, n);
        const view = await quotaView(req.params.id, false);
        delete view.id;
        return { quota_set: view };
      },
    }),
    defineRoute({
      method: 'DELETE', url: '/os-quota-sets/:id', policy: 'os_compute_api:os-quota-sets:delete', params: Id, status: 202,
      target: (req) => ({ project_id: req.params.id }),
      handler: async (req, reply) => {
        await quota.deleteLimits(req.params.id);
        reply.code(202).send();
      },
    }),

    // ---- server groups ----
    defineRoute({
      method: 'GET', url: '/os-server-groups', policy: 'os_compute_api:os-server-groups:index', query: Type.Object({ all_projects: Type.Optional(Type.String()) }, { additionalProperties: true }),
      target: (req) => ({ project_id: req.auth?.projectId }),
      handler: async (req) => {
        let q = servers.db.selectFrom('nova_server_groups').selectAll();
        if (!(req.query.all_projects && allowed(policy, req, 'os_compute_api:os-server-groups:index:all_projects', {}))) q = q.where('project_id', '=', req.auth!.projectId ?? '');
        const groups = await q.execute();
        const out = [];
        for (const g of groups) out.push(await groupView(servers, g));
        return { server_groups: out };
      },
    }),
    defineRoute({
      method: 'POST', url: '/os-server-groups', policy: 'os_compute_api:os-server-groups:create', errors: [403],
      body: Type.Object({ server_group: Type.Object({ name: Type.String({ minLength: 1, maxLength: 255 }), policies: Type.Array(Type.Union([Type.Literal('affinity'), Type.Literal('anti-affinity'), Type.Literal('soft-affinity'), Type.Literal('soft-anti-affinity')]), { minItems: 1, maxItems: 1 }) }, { additionalProperties: false }) }, { additionalProperties: false }),
      target: (req) => ({ project_id: req.auth?.projectId }),
      handler: async (req) => {
        const projectId = req.auth!.projectId!;
        const g = { id: uuid(), name: req.body.server_group.name, policy: req.body.server_group.policies[0]!, project_id: projectId, user_id: req.auth!.userId, created_at: Date.now() };
        await quota.withReservation(projectId, { server_groups: 1 }, async () => {
          await servers.db.insertInto('nova_server_groups').values(g).execute();
        }).catch((e: unknown) => {
          if (e instanceof ApiError && e.status === 413) throw new ApiError(403, 'Quota exceeded, too many server groups.', 'OverQuota');
          throw e;
        });
        return { server_group: await groupView(servers, g) };
      },
    }),
    defineRoute({
      method: 'GET', url: '/os-server-groups/:id', policy: 'os_compute_api:os-server-groups:show', params: Id, errors: [404],
      target: async (req) => ({ project_id: (await getGroup(servers, req.params.id)).project_id }),
      handler: async (req) => ({ server_group: await groupView(servers, await getGroup(servers, req.params.id)) }),
    }),
    defineRoute({
      method: 'DELETE', url: '/os-server-groups/:id', policy: 'os_compute_api:os-server-groups:delete', params: Id, status: 204, errors: [404],
      target: async (req) => ({ project_id: (await getGroup(servers, req.params.id)).project_id }),
      handler: async (req, reply) => {
        const g = await getGroup(servers, req.params.id);
        await servers.db.deleteFrom('nova_server_groups').where('id', '=', g.id).execute();
        await servers.db.updateTable('nova_instances').set({ server_group_id: null }).where('server_group_id', '=', g.id).execute();
        await quota.release(g.project_id, { server_groups: 1 });
        reply.code(204).send();
      },
    }),
  ];
}

async function getGroup(servers: ServerService, id: string) {
  const g = await servers.db.selectFrom('nova_server_groups').selectAll().where('id', '=', id).executeTakeFirst();
  if (!g) throw notFound(`Server group ${id} could not be found.`);
  return g;
}
async function groupView(servers: ServerService, g: { id: string; name: string; policy: string; project_id: string; user_id: string }) {
  const members = await servers.db.selectFrom('nova_instances').select('id').where('server_group_id', '=', g.id).where('deleted', '=', 0).execute();
  return { id: g.id, name: g.name, policies: [g.policy], members: members.map((m) => m.id), metadata: {}, project_id: g.project_id, user_id: g.user_id };
}

async function hypervisors(servers: ServerService, detail: boolean): Promise<unknown[]> {
  const hosts = await servers.db.selectFrom('nova_compute_hosts').selectAll().orderBy('id').execute();
  const allocs = await servers.db.selectFrom('nova_allocations').selectAll().execute();
  return hosts.map((h) => {
    const mine = allocs.filter((a) => a.host === h.host);
    const up = hostIsUp(h);
    const base = { id: h.id, hypervisor_hostname: h.host, state: up ? 'up' : 'down', status: h.status };
    if (!detail) return base;
    const vcpusUsed = mine.reduce((s, a) => s + a.vcpus, 0), ramUsed = mine.reduce((s, a) => s + a.memory_mb, 0), diskUsed = mine.reduce((s, a) => s + a.disk_gb, 0);
    return {
      ...base, hypervisor_type: h.hypervisor_type, hypervisor_version: Number(h.hypervisor_version.replace(/\D/g, '').slice(0, 7)) || 7002000, host_ip: '127.0.0.1',
      vcpus: h.vcpus, vcpus_used: vcpusUsed, memory_mb: h.memory_mb, memory_mb_used: ramUsed, free_ram_mb: h.memory_mb - ramUsed, local_gb: h.disk_gb,
      local_gb_used: diskUsed, free_disk_gb: h.disk_gb - diskUsed, disk_available_least: h.disk_gb - diskUsed, running_vms: mine.length, current_workload: 0,
      cpu_info: JSON.stringify({ arch: 'x86_64', model: h.accel === 'kvm' ? 'host' : 'qemu64', vendor: 'QEMU', topology: { sockets: h.vcpus, cores: 1, threads: 1 }, features: [] }),
      service: { id: 100 + h.id, host: h.host, disabled_reason: h.disabled_reason },
    };
  });
}

