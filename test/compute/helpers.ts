/**
 * Compute API test harness: the shared in-process cloud (test/helpers/inproc.ts)
 * with a fake image service plugged into `cloud.imagePort`, direct access to
 * the cloud's FakeComputeDriver, and small helpers for the compute API
 * (create a server, wait for a state, a second project with its own member).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInprocCloud, ID, type HttpMethod, type InjectOptions, type InjectResponse, type InprocCloud, type InprocOptions } from '../helpers/inproc.js';
import { FakeComputeDriver } from '../../src/compute/drivers/fake-driver.js';
import type { ImagePort } from '../../src/compute/service/ports.js';
import type { AuthContext } from '../../src/core/context.js';
import { ApiError } from '../../src/core/errors.js';

export const C = '/compute/v2.1';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FakeImage {
  id: string;
  name: string;
  status: string;
  diskFormat: 'qcow2' | 'raw';
  minDisk: number;
  minRam: number;
  size?: number;
  properties: Record<string, unknown>;
  localPath: string;
}

/**
 * An in-memory image service for compute: a few active images backed by
 * small files (the agent hard-links them into its base-image cache), and a
 * record of every snapshot request.
 */
export class FakeImagePort implements ImagePort {
  readonly dir = mkdtempSync(join(tmpdir(), 'stratus-fake-images-'));
  readonly images = new Map<string, FakeImage>();
  readonly reserved: { ctx: AuthContext; name: string; properties: Record<string, string>; id: string }[] = [];
  /** Each upload with the snapshot file's content read at upload time (the agent removes the file afterwards). */
  readonly uploads: { name: string; diskFormat: string; path: string; properties: Record<string, string>; imageId?: string; content: string }[] = [];
  readonly bootLookups: string[] = [];
  /** Images deleted through the port (e.g. a failed snapshot's queued image). */
  readonly deleted: string[] = [];
  private n = 0;

  constructor() {
    this.add({ id: '11111111-1111-4111-8111-111111111111', name: 'cirros', minDisk: 0, minRam: 0 });
    // Needs more than m1.tiny (1 GB disk, 512 MB RAM) offers.
    this.add({ id: '22222222-2222-4222-8222-222222222222', name: 'big', minDisk: 30, minRam: 1024 });
    this.add({ id: '33333333-3333-4333-8333-333333333333', name: 'rescue', minDisk: 0, minRam: 0 });
    this.add({ id: '44444444-4444-4444-8444-444444444444', name: 'queued', minDisk: 0, minRam: 0, status: 'queued' });
  }

  add(i: Partial<FakeImage> & { id: string; name: string }): FakeImage {
    const localPath = join(this.dir, i.id);
    writeFileSync(localPath, `fake image ${i.name}\n`);
    const img: FakeImage = { status: 'active', diskFormat: 'qcow2', minDisk: 0, minRam: 0, size: 4096, properties: {}, localPath, ...i };
    this.images.set(img.id, img);
    return img;
  }

  async getImageForBoot(_ctx: AuthContext, id: string) {
    this.bootLookups.push(id);
    const i = this.images.get(id);
    if (!i) throw new ApiError(404, `Image ${id} could not be found.`, 'NotFound');
    return { ...i };
  }

  async reserveImage(ctx: AuthContext, input: { name: string; properties: Record<string, string> }): Promise<{ id: string }> {
    const id = `snap-${++this.n}-0000-4000-8000-000000000000`;
    this.reserved.push({ ctx, ...input, id });
    this.images.set(id, { id, name: input.name, status: 'queued', diskFormat: 'qcow2', minDisk: 0, minRam: 0, properties: input.properties, localPath: '' });
    return { id };
  }

  async createImageFromFile(_ctx: AuthContext, input: { name: string; diskFormat: string; path: string; properties: Record<string, string>; imageId?: string }): Promise<{ id: string }> {
    this.uploads.push({ ...input, content: readFileSync(input.path, 'utf8') });
    const id = input.imageId ?? `up-${++this.n}`;
    const i = this.images.get(id);
    if (i) i.status = 'active';
    return { id };
  }

  /** Not (yet) part of ImagePort: what Nova does with the queued image of a failed snapshot. */
  async deleteImage(_ctx: AuthContext, id: string): Promise<void> {
    this.deleted.push(id);
    this.images.delete(id);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const IMG = {
  cirros: '11111111-1111-4111-8111-111111111111',
  big: '22222222-2222-4222-8222-222222222222',
  rescue: '33333333-3333-4333-8333-333333333333',
  queued: '44444444-4444-4444-8444-444444444444',
} as const;

export interface Member {
  userId: string;
  projectId: string;
  token: string;
}

export interface ComputeCloud extends InprocCloud {
  driver: FakeComputeDriver;
  images: FakeImagePort;
  /** The compute host name the agent registered. */
  host: string;
  /** Compute API request (path relative to /compute/v2.1). */
  api(method: HttpMethod, path: string, opts?: InjectOptions): Promise<InjectResponse>;
  demo: Member;
  admin: Member;
  /** A new project with a member user (name unique per call). */
  newMember(prefix?: string): Promise<Member>;
  /** POST /servers, asserting 202; returns the server id and the raw response. */
  boot(token: string, server?: Record<string, unknown>, extra?: Record<string, unknown>): Promise<{ id: string; res: InjectResponse }>;
  /** GET /servers/{id} as `token` (admin by default). */
  server(id: string, token?: string): Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Polls until the server's status is `status` (throws on timeout, or on ERROR unless ERROR is wanted). */
  waitStatus(id: string, status: string, token?: string, timeoutMs?: number): Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Polls until GET /servers/{id} is 404. */
  waitGone(id: string, timeoutMs?: number): Promise<void>;
  /** Polls until the server has no task_state and `pred` holds. */
  waitIdle(id: string, pred?: (s: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** POST /servers/{id}/action. */
  action(id: string, body: Record<string, unknown>, token?: string): Promise<InjectResponse>;
  /** Instance rows not soft-deleted (optionally of one project). */
  liveInstances(projectId?: string): Promise<number>;
  allocations(): Promise<{ instance_id: string; host: string; vcpus: number; memory_mb: number; disk_gb: number }[]>;
  /** Quota usage (in_use) of the compute resources of a project. */
  usage(projectId: string): Promise<Record<string, { limit: number; in_use: number; reserved: number }>>;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 5000, everyMs = 10): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String((last as Error).message ?? last)}` : ''}`);
    await sleep(everyMs);
  }
}

export async function startComputeCloud(opts: InprocOptions = {}): Promise<ComputeCloud> {
  const base = await startInprocCloud(opts);
  const images = new FakeImagePort();
  base.cloud.imagePort = images;
  const driver = (base.cloud as unknown as { computeDriver: unknown }).computeDriver;
  assert.ok(driver instanceof FakeComputeDriver, 'the in-process cloud runs the fake compute driver');
  assert.ok(base.cloud.computeAgent, 'the compute agent runs');
  const host = base.cloud.computeAgent.host;

  const api = (method: HttpMethod, path: string, o?: InjectOptions) => base.inject(method, `${C}${path}`, o);
  const adminToken = await base.adminToken();
  const demoToken = await base.tokenFor('demo', base.demoPassword(), 'demo');
  const ctxOf = async (token: string): Promise<Member> => {
    const r = await base.inject('GET', `${ID}/auth/tokens`, { token, headers: { 'x-subject-token': token } });
    assert.equal(r.status, 200, r.text);
    return { token, userId: r.json.token.user.id, projectId: r.json.token.project.id };
  };
  const admin = await ctxOf(adminToken);
  const demo = await ctxOf(demoToken);

  let members = 0;
  const roleId = async (name: string) => {
    const r = await base.inject('GET', `${ID}/roles?name=${name}`, { token: adminToken });
    assert.equal(r.status, 200, r.text);
    const role = (r.json.roles as { id: string; name: string }[]).find((x) => x.name === name);
    assert.ok(role, `role ${name} exists`);
    return role.id;
  };
  const newMember = async (prefix = 'other'): Promise<Member> => {
    const name = `${prefix}-${++members}-${Date.now()}`;
    const p = await base.inject('POST', `${ID}/projects`, { token: adminToken, body: { project: { name, domain_id: 'default' } } });
    assert.equal(p.status, 201, p.text);
    const password = 'pw-' + name;
    const u = await base.inject('POST', `${ID}/users`, { token: adminToken, body: { user: { name, password, domain_id: 'default', default_project_id: p.json.project.id } } });
    assert.equal(u.status, 201, u.text);
    const g = await base.inject('PUT', `${ID}/projects/${p.json.project.id}/users/${u.json.user.id}/roles/${await roleId('member')}`, { token: adminToken });
    assert.equal(g.status, 204, g.text);
    const token = await base.tokenFor(name, password, name);
    return { token, userId: u.json.user.id, projectId: p.json.project.id };
  };

  const server = async (id: string, token = adminToken) => {
    const r = await api('GET', `/servers/${id}`, { token });
    assert.equal(r.status, 200, `GET server ${id}: ${r.status} ${r.text}`);
    return r.json.server;
  };

  const self: ComputeCloud = {
    ...base,
    driver,
    images,
    host,
    api,
    demo,
    admin,
    newMember,
    async boot(token, s = {}, extra = {}) {
      const res = await api('POST', '/servers', { token, body: { server: { name: 'vm', imageRef: IMG.cirros, flavorRef: '42', ...s }, ...extra } });
      assert.equal(res.status, 202, `create server: ${res.status} ${res.text}`);
      return { id: res.json.server.id as string, res };
    },
    server,
    async waitStatus(id, status, token = adminToken, timeoutMs = 5000) {
      let last: Record<string, unknown> | undefined;
      return waitFor(`server ${id} ${status} (last: ${last?.status}/${last?.['OS-EXT-STS:task_state']})`, async () => {
        const s = await server(id, token);
        last = s;
        if (s.status === 'ERROR' && status !== 'ERROR') throw new Error(`server ${id} went ERROR: ${JSON.stringify(s.fault)}`);
        return s.status === status && s['OS-EXT-STS:task_state'] === null ? s : undefined;
      }, timeoutMs);
    },
    async waitGone(id, timeoutMs = 5000) {
      await waitFor(`server ${id} gone`, async () => (await api('GET', `/servers/${id}`, { token: adminToken })).status === 404, timeoutMs);
    },
    async waitIdle(id, pred = () => true, timeoutMs = 5000) {
      return waitFor(`server ${id} idle`, async () => {
        const s = await server(id);
        return s['OS-EXT-STS:task_state'] === null && pred(s) ? s : undefined;
      }, timeoutMs);
    },
    action: (id, body, token = demoToken) => api('POST', `/servers/${id}/action`, { token, body }),
    async liveInstances(projectId) {
      let q = base.cloud.servers.db.selectFrom('nova_instances').select('id').where('deleted', '=', 0);
      if (projectId) q = q.where('project_id', '=', projectId);
      return (await q.execute()).length;
    },
    allocations: () => base.cloud.servers.db.selectFrom('nova_allocations').selectAll().execute(),
    usage: (projectId) => base.cloud.quota.usage(projectId, ['instances', 'cores', 'ram', 'server_groups', 'metadata_items']),
    async stop() {
      try {
        await base.stop();
      } finally {
        images.cleanup();
      }
    },
  };
  return self;
}

type DriverMethod = 'spawn' | 'destroy' | 'powerOff' | 'powerOn' | 'reboot' | 'pause' | 'unpause' | 'suspend' | 'resume' | 'snapshot' | 'resize' | 'rescue' | 'unrescue';

export interface Hold {
  /** Resolves when the held call has been entered. */
  reached: Promise<void>;
  /** Lets the held call proceed. */
  release(): void;
  /** Resolves when the held call has finished (either way). */
  done: Promise<void>;
}

/**
 * Holds the next call of a driver method (for one instance, or any) until
 * `release()`: makes transitional states (task_state) observable with a
 * driver that otherwise answers instantly.
 */
export function holdNext(driver: FakeComputeDriver, method: DriverMethod, uuid?: string): Hold {
  const d = driver as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const orig = d[method]!.bind(driver);
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const reached = new Promise<void>((r) => (entered = r));
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  d[method] = async (...args: unknown[]) => {
    const id = typeof args[0] === 'string' ? args[0] : (args[0] as { uuid?: string })?.uuid;
    if (uuid && id !== uuid) return orig(...args);
    delete d[method];
    entered();
    await released;
    try {
      return await orig(...args);
    } finally {
      finished();
    }
  };
  return { reached, release, done };
}
