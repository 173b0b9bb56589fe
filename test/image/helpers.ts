/**
 * Image API test harness: the shared in-process cloud (test/helpers/inproc.ts)
 * with helpers for /image/v2 — create/upload/patch shorthands, users in
 * separate projects, and a look at the store directory.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startInprocCloud, ID, type HttpMethod, type InjectOptions, type InjectResponse, type InprocCloud, type InprocOptions } from '../helpers/inproc.js';

export const V2 = '/image/v2';
export const PATCH_CT = 'application/openstack-images-v2.1-json-patch';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Member {
  userId: string;
  projectId: string;
  token: string;
}

export interface ImageCloud extends InprocCloud {
  /** Request on the image API (`path` relative to /image/v2). */
  api(method: HttpMethod, path: string, opts?: InjectOptions): Promise<InjectResponse>;
  admin: Member;
  demo: Member;
  /** A new project with a member user (and optionally a reader). */
  newMember(prefix?: string, role?: string): Promise<Member>;
  /** POST /images, asserting 201. */
  create(token: string, body?: Record<string, unknown>): Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** PUT /images/{id}/file with octet-stream data. */
  upload(token: string, id: string, data: Buffer | string, headers?: Record<string, string>): Promise<InjectResponse>;
  /** PATCH /images/{id} with a v2.1 JSON patch. */
  patch(token: string, id: string, ops: unknown, contentType?: string): Promise<InjectResponse>;
  /** GET /images/{id}/file with the body as bytes. */
  download(token: string, id: string, headers?: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>;
  /** GET /images/{id} as admin; the image or null on 404. */
  image(id: string, token?: string): Promise<Record<string, any> | null>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Files (not temporaries) in the image store and the staging area. */
  storeFiles(): string[];
  stagingFiles(): string[];
  /** Every entry of the store directory, temporaries included. */
  storeEntries(): string[];
  /** The HTTP base URL of the listening server (for real-socket tests). */
  baseUrl(): string;
  /** Quota usage of the image resources of a project. */
  usage(projectId: string): Promise<Record<string, { limit: number; in_use: number; reserved: number }>>;
}

export async function startImageCloud(opts: InprocOptions = {}): Promise<ImageCloud> {
  const base = await startInprocCloud(opts);
  const adminToken = await base.adminToken();
  const demoToken = await base.tokenFor('demo', base.demoPassword(), 'demo');
  const ids = async (token: string) => {
    const r = await base.inject('GET', `${ID}/auth/tokens`, { token: adminToken, headers: { 'x-subject-token': token } });
    assert.equal(r.status, 200, r.text);
    return { userId: r.json.token.user.id as string, projectId: r.json.token.project.id as string };
  };
  const admin = { token: adminToken, ...(await ids(adminToken)) };
  const demo = { token: demoToken, ...(await ids(demoToken)) };
  const roleIds = new Map<string, string>();
  const roleId = async (name: string) => {
    if (!roleIds.has(name)) {
      const r = await base.inject('GET', `${ID}/roles?name=${name}`, { token: adminToken });
      roleIds.set(name, r.json.roles[0].id);
    }
    return roleIds.get(name)!;
  };
  let n = 0;
  const newMember = async (prefix = 'proj', role = 'member'): Promise<Member> => {
    const name = `${prefix}-${++n}-${Date.now() % 100000}`;
    const p = await base.inject('POST', `${ID}/projects`, { token: adminToken, body: { project: { name, domain_id: 'default' } } });
    assert.equal(p.status, 201, p.text);
    const password = 'pw-' + name;
    const u = await base.inject('POST', `${ID}/users`, { token: adminToken, body: { user: { name, password, domain_id: 'default', default_project_id: p.json.project.id } } });
    assert.equal(u.status, 201, u.text);
    const g = await base.inject('PUT', `${ID}/projects/${p.json.project.id}/users/${u.json.user.id}/roles/${await roleId(role)}`, { token: adminToken });
    assert.equal(g.status, 204, g.text);
    return { token: await base.tokenFor(name, password, name), userId: u.json.user.id, projectId: p.json.project.id };
  };
  const api = (method: HttpMethod, path: string, o: InjectOptions = {}) => base.inject(method, `${V2}${path}`, o);
  const dir = join(base.dataDir, 'images');
  const files = (d: string) => (existsSync(d) ? readdirSync(d, { withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name) : []);
  return {
    ...base,
    api,
    admin,
    demo,
    newMember,
    async create(token, body = {}) {
      const r = await api('POST', '/images', { token, body: { disk_format: 'raw', container_format: 'bare', ...body } });
      assert.equal(r.status, 201, `create image: ${r.status} ${r.text}`);
      return r.json;
    },
    upload(token, id, data, headers = {}) {
      return api('PUT', `/images/${id}/file`, { token, body: Buffer.isBuffer(data) ? data : Buffer.from(data), headers: { 'content-type': 'application/octet-stream', ...headers } });
    },
    patch(token, id, ops, contentType = PATCH_CT) {
      return api('PATCH', `/images/${id}`, { token, body: JSON.stringify(ops), headers: { 'content-type': contentType } });
    },
    async download(token, id, headers = {}) {
      const r = await base.cloud.app.inject({ method: 'GET', url: `${V2}/images/${id}/file`, headers: { 'x-auth-token': token, ...headers } });
      return { status: r.statusCode, headers: r.headers, body: r.rawPayload };
    },
    async image(id, token = adminToken) {
      const r = await api('GET', `/images/${id}`, { token });
      if (r.status === 404) return null;
      assert.equal(r.status, 200, r.text);
      return r.json;
    },
    storeFiles: () => files(dir),
    stagingFiles: () => files(join(dir, 'staging')),
    storeEntries: () => (existsSync(dir) ? readdirSync(dir) : []),
    baseUrl() {
      const a = base.cloud.app.server.address();
      if (!a || typeof a === 'string') throw new Error('the cloud is not listening');
      return `http://127.0.0.1:${a.port}`;
    },
    async usage(projectId) {
      return base.cloud.quota.usage(projectId, ['image_count', 'image_size_total']);
    },
  };
}
