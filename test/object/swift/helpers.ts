/**
 * Swift API test harness: the in-process cloud (test/helpers/inproc.ts),
 * talked to over its real loopback listener (so bodies stream, chunked
 * encoding and odd methods like COPY go through Node's HTTP stack), with
 * users in separate projects and with given roles.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { startInprocCloud, ID, type InprocCloud } from '../../helpers/inproc.js';

export interface User {
  userId: string;
  userName: string;
  projectId: string;
  projectName: string;
  token: string;
  /** `/object/v1/AUTH_<project>` */
  account: string;
}

export interface Res {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
}

export interface SwiftCloud extends InprocCloud {
  base: string;
  admin: User;
  demo: User;
  /** A user with `role` in a new project (or in `projectId`). */
  newUser(role?: string, projectId?: string): Promise<User>;
  /** A request with fetch; `path` is absolute (`/object/v1/...`). */
  sw(method: string, path: string, o?: { token?: string; headers?: Record<string, string>; body?: Buffer | string | ReadableStream }): Promise<Res>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startSwiftCloud(): Promise<SwiftCloud> {
  const c = await startInprocCloud();
  const port = (c.cloud.app.server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const adminToken = await c.adminToken();
  const ids = async (token: string) => {
    const r = await c.inject('GET', `${ID}/auth/tokens`, { token: adminToken, headers: { 'x-subject-token': token } });
    assert.equal(r.status, 200, r.text);
    const tok = r.json.token;
    return { userId: tok.user.id as string, userName: tok.user.name as string, projectId: tok.project.id as string, projectName: tok.project.name as string };
  };
  const mk = async (token: string): Promise<User> => {
    const i = await ids(token);
    return { ...i, token, account: `/object/v1/AUTH_${i.projectId}` };
  };
  const admin = await mk(adminToken);
  const demo = await mk(await c.tokenFor('demo', c.demoPassword(), 'demo'));
  const roleIds = new Map<string, string>();
  const roleId = async (name: string) => {
    if (!roleIds.has(name)) {
      let r = await c.inject('GET', `${ID}/roles?name=${name}`, { token: adminToken });
      if (!r.json.roles.length) r = { ...r, json: { roles: [(await c.inject('POST', `${ID}/roles`, { token: adminToken, body: { role: { name } } })).json.role] } };
      roleIds.set(name, r.json.roles[0].id);
    }
    return roleIds.get(name)!;
  };
  let n = 0;
  const newUser = async (role = 'member', projectId?: string): Promise<User> => {
    const name = `sw-${++n}-${Date.now() % 100000}`;
    let pid = projectId;
    let pname = '';
    if (!pid) {
      const p = await c.inject('POST', `${ID}/projects`, { token: adminToken, body: { project: { name, domain_id: 'default' } } });
      assert.equal(p.status, 201, p.text);
      pid = p.json.project.id as string;
    }
    pname = (await c.inject('GET', `${ID}/projects/${pid}`, { token: adminToken })).json.project.name;
    const password = 'pw-' + name;
    const u = await c.inject('POST', `${ID}/users`, { token: adminToken, body: { user: { name, password, domain_id: 'default' } } });
    assert.equal(u.status, 201, u.text);
    const g = await c.inject('PUT', `${ID}/projects/${pid}/users/${u.json.user.id}/roles/${await roleId(role)}`, { token: adminToken });
    assert.equal(g.status, 204, g.text);
    return mk(await c.tokenFor(name, password, pname));
  };
  const sw: SwiftCloud['sw'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.token) headers['x-auth-token'] = o.token;
    const r = await fetch(base + path, {
      method,
      headers,
      ...(o.body !== undefined ? { body: o.body, duplex: 'half' } : {}),
    } as RequestInit);
    const body = Buffer.from(await r.arrayBuffer());
    return { status: r.status, headers: r.headers, body, text: body.toString('utf8') };
  };
  return { ...c, base, admin, demo, newUser, sw };
}

/**
 * A request written byte for byte on a socket (for what fetch and http.request
 * refuse or rewrite: a lying Content-Length, no length at all). Only the
 * headers are sent; resolves with the status line's code and the response head.
 */
export function rawStatus(base: string, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const u = new URL(base + path);
  return new Promise((res, rej) => {
    const s = connect(Number(u.port), u.hostname, () => {
      const head = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
      s.write(head);
    });
    let t = '';
    s.on('data', (d: Buffer) => {
      t += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d+)/.exec(t);
      if (m && t.includes('\r\n\r\n')) {
        s.destroy();
        res({ status: Number(m[1]), text: t });
      }
    });
    s.on('error', rej);
    s.on('close', () => res({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(t)?.[1] ?? 0), text: t }));
  });
}
