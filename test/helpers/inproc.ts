/**
 * An in-process Stratus cloud for API tests: a real `Cloud` (database,
 * identity, policy, compute control plane) on a temp data dir, with requests
 * injected through Fastify (`app.inject`) — no network round trips, no QEMU
 * (the compute agent runs the fake driver), no guest image build.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { loadConfig, type DeepPartial, type StratusConfig } from '../../src/core/config.js';
import { Cloud } from '../../src/server/cloud.js';
import { FakeComputeDriver } from '../../src/compute/drivers/fake-driver.js';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

export interface InjectOptions {
  /** An object is sent as JSON; a string or Buffer is sent as is (set content-type yourself). */
  body?: unknown;
  /** Sent as X-Auth-Token. */
  token?: string;
  headers?: Record<string, string>;
}

export interface InjectResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  /** The raw body text. */
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export type ScopeSpec = string | { project: string; domain?: string } | { domain: string } | 'system' | 'unscoped';

export interface InprocCloud {
  cloud: Cloud;
  config: StratusConfig;
  dataDir: string;
  /** Sends a request through Fastify's inject (no network). */
  inject(method: HttpMethod, url: string, opts?: InjectOptions): Promise<InjectResponse>;
  /** A token for admin on the admin project (cached). */
  adminToken(): Promise<string>;
  /** A system-scoped admin token (cached). */
  systemToken(): Promise<string>;
  /**
   * Issues a token for `user` (a name in the Default domain, or `{ id }`).
   * scope: a project name (Default domain), `{ project, domain }`, `{ domain }`
   * (a domain name or id), 'system', or 'unscoped'.
   */
  tokenFor(user: string | { id: string }, password: string, scope?: ScopeSpec): Promise<string>;
  /** Number of rows in a table (for "the database did not change" checks). */
  count(table: string): Promise<number>;
  /** The demo user's password (when seeded). */
  demoPassword(): string;
  adminPassword(): string;
  stop(): Promise<void>;
}

/** Identity v3 base path, for building URLs: `${ID}/users`. */
export const ID = '/identity/v3';

export interface InprocOptions {
  /** Extra config, deep-merged over the test defaults. */
  config?: DeepPartial<StratusConfig>;
  /** Create the demo project/user (default true). */
  demo?: boolean;
  /** Environment used for config loading (default: none, so the host's STRATUS_* never leak in). */
  env?: NodeJS.ProcessEnv;
}

function mergeDeep<T>(a: T, b: unknown): T {
  if (!b || typeof b !== 'object' || Array.isArray(b)) return a;
  const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
  for (const [k, v] of Object.entries(b as Record<string, unknown>)) {
    const cur = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' ? mergeDeep(cur, v) : v;
  }
  return out as T;
}

export async function startInprocCloud(opts: InprocOptions = {}): Promise<InprocCloud> {
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-inproc-'));
  const flags = mergeDeep<DeepPartial<StratusConfig>>(
    {
      dataDir,
      listen: { host: '127.0.0.1', port: 0 },
      s3Listen: { host: '127.0.0.1', port: 0 },
      logLevel: 'silent',
      // No guest image build and no demo seeding through Cloud.start (which
      // would build the image); the demo user is created below instead.
      seed: false,
      identity: { passwordHashCost: 4 },
    },
    opts.config ?? {},
  );
  const config = loadConfig(flags, opts.env ?? {});
  const cloud = new Cloud(config, { computeDriver: new FakeComputeDriver() });
  try {
    await cloud.start();
    if (opts.demo !== false) await cloud.identity.seedDemo();
  } catch (e) {
    await cloud.stop().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }

  const inject = async (method: HttpMethod, url: string, o: InjectOptions = {}): Promise<InjectResponse> => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.token !== undefined) headers['x-auth-token'] = o.token;
    let payload: string | Buffer | undefined;
    if (o.body !== undefined) {
      if (typeof o.body === 'string' || Buffer.isBuffer(o.body)) payload = o.body;
      else payload = JSON.stringify(o.body);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
    const res = await cloud.app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) });
    let json: unknown;
    try {
      json = res.body ? JSON.parse(res.body) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, headers: res.headers, text: res.body, json };
  };

  const scopeBody = (scope: ScopeSpec | undefined): unknown => {
    if (scope === undefined || scope === 'unscoped') return undefined;
    if (scope === 'system') return { system: { all: true } };
    if (typeof scope === 'string') return { project: { name: scope, domain: { id: 'default' } } };
    if ('project' in scope) return { project: { name: scope.project, domain: { id: scope.domain ?? 'default' } } };
    return { domain: { name: scope.domain } };
  };

  const tokenFor = async (user: string | { id: string }, password: string, scope?: ScopeSpec): Promise<string> => {
    const u = typeof user === 'string' ? { name: user, domain: { id: 'default' }, password } : { id: user.id, password };
    const sb = scopeBody(scope);
    const res = await inject('POST', `${ID}/auth/tokens?nocatalog`, {
      body: { auth: { identity: { methods: ['password'], password: { user: u } }, ...(sb ? { scope: sb } : {}) } },
    });
    if (res.status !== 201) throw new Error(`token for ${JSON.stringify(user)} failed: ${res.status} ${res.text}`);
    const t = res.headers['x-subject-token'];
    if (typeof t !== 'string') throw new Error('no X-Subject-Token in the token response');
    return t;
  };

  let admin: string | null = null;
  let system: string | null = null;
  const adminPassword = () => cloud.identity.adminPassword();
  return {
    cloud,
    config,
    dataDir,
    inject,
    async adminToken() {
      admin ??= await tokenFor('admin', adminPassword(), 'admin');
      return admin;
    },
    async systemToken() {
      system ??= await tokenFor('admin', adminPassword(), 'system');
      return system;
    },
    tokenFor,
    async count(table: string) {
      const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(cloud.database.db);
      return Number(r.rows[0]?.n ?? 0);
    },
    demoPassword: () => cloud.identity.keptSecret('demo-password'),
    adminPassword,
    async stop() {
      try {
        await cloud.stop();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}
