/**
 * Networking API test harness: the shared in-process cloud
 * (test/helpers/inproc.ts) with shorthands for /network/v2.0 as the admin
 * and as the demo user, and a snapshot of every network table's row count
 * for "a refused request changed nothing" checks.
 */
import assert from 'node:assert/strict';
import { startInprocCloud, ID, type HttpMethod, type InprocCloud, type InjectResponse } from '../helpers/inproc.js';

export const NET = '/network/v2.0';

export const TABLES = [
  'neutron_networks',
  'neutron_subnets',
  'neutron_allocation_pools',
  'neutron_ip_allocations',
  'neutron_ports',
  'neutron_port_security_groups',
  'neutron_routers',
  'neutron_router_ports',
  'neutron_floatingips',
  'neutron_security_groups',
  'neutron_security_group_rules',
  'neutron_tags',
];

export interface NetCloud extends InprocCloud {
  admin: { token: string; projectId: string };
  demo: { token: string; projectId: string };
  /** Request on the networking API (`path` relative to /network/v2.0). */
  api(method: HttpMethod, path: string, body?: unknown, token?: string): Promise<InjectResponse>;
  /** Like api(), asserting the status; returns the parsed body. */
  ok(method: HttpMethod, path: string, body: unknown, token: string | undefined, status: number): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Row counts of every network table. */
  snapshot(): Promise<Record<string, number>>;
  /** Asserts the error body is Neutron's with this status and type. */
  expectError(r: InjectResponse, status: number, type: string, message?: RegExp): void;
  /** Sends pending `sync` casts now and lets the in-process bus deliver them. */
  hostsFlush(): Promise<void>;
}

export async function startNetCloud(): Promise<NetCloud> {
  const base = await startInprocCloud();
  const adminToken = await base.adminToken();
  const demoToken = await base.tokenFor('demo', base.demoPassword(), 'demo');
  const projectOf = async (token: string) => {
    const r = await base.inject('GET', `${ID}/auth/tokens`, { token: adminToken, headers: { 'x-subject-token': token } });
    assert.equal(r.status, 200, r.text);
    return r.json.token.project.id as string;
  };
  const c = base as NetCloud;
  c.admin = { token: adminToken, projectId: await projectOf(adminToken) };
  c.demo = { token: demoToken, projectId: await projectOf(demoToken) };
  c.api = (method, path, body, token = adminToken) => base.inject(method, `${NET}${path}`, { token, ...(body !== undefined ? { body } : {}) });
  c.ok = async (method, path, body, token, status) => {
    const r = await c.api(method, path, body, token);
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    return r.json;
  };
  c.snapshot = async () => {
    const out: Record<string, number> = {};
    for (const t of TABLES) out[t] = await base.count(t);
    return out;
  };
  c.expectError = (r, status, type, message) => {
    assert.equal(r.status, status, r.text);
    assert.equal(r.json?.NeutronError?.type, type, r.text);
    assert.equal(typeof r.json.NeutronError.message, 'string');
    if (message) assert.match(r.json.NeutronError.message, message);
  };
  c.hostsFlush = async () => {
    await c.cloud.network.hosts.flush();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  };
  return c;
}
