/**
 * Hostile and broken requests against the real identity API of an
 * in-process cloud: each is refused with the right status and a Keystone
 * error body, carries a request id, and leaves the database exactly as it was.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startInprocCloud, ID, type InprocCloud, type InjectResponse } from '../helpers/inproc.js';
import { encrypt, generateKey } from '../../src/identity/service/fernet.js';

const REQ_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TITLES: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 413: 'Request Entity Too Large', 415: 'Unsupported Media Type' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type M = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

const TABLES = ['id_domains', 'id_projects', 'id_users', 'id_groups', 'id_group_members', 'id_roles', 'id_implied_roles', 'id_assignments', 'id_regions', 'id_services', 'id_endpoints', 'id_app_creds', 'id_credentials', 'id_revocations'];

/** Counts of every identity table plus a digest of the rows a request could plausibly touch. */
async function snapshot(c: InprocCloud) {
  const counts = Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await c.count(t)] as const)));
  const db = c.cloud.database.db;
  const rows = {
    users: await db.selectFrom('id_users').select(['id', 'name', 'enabled', 'password_hash', 'extra', 'failed_auth_count']).orderBy('id').execute(),
    projects: await db.selectFrom('id_projects').select(['id', 'name', 'enabled', 'description', 'tags', 'extra']).orderBy('id').execute(),
    domains: await db.selectFrom('id_domains').select(['id', 'name', 'enabled', 'description']).orderBy('id').execute(),
  };
  return { counts, rows };
}

/** Asserts the Keystone error shape, the request id, and returns the body. */
function assertError(res: InjectResponse, status: number, what: string) {
  assert.equal(res.status, status, `${what}: expected ${status}, got ${res.status} ${res.text.slice(0, 300)}`);
  assert.match(String(res.headers['x-openstack-request-id']), REQ_ID, `${what}: request id`);
  assert.match(String(res.headers['content-type']), /^application\/json/, `${what}: content type`);
  const body = res.json;
  assert.ok(body && typeof body === 'object', `${what}: JSON body`);
  assert.deepEqual(Object.keys(body), ['error'], `${what}: body keys`);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'title'], `${what}: error keys`);
  assert.equal(body.error.code, status, what);
  assert.equal(body.error.title, TITLES[status], what);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.ok(!/\bat .+\.(ts|js):\d+/.test(res.text), `${what}: stack trace in body`);
  return body;
}

describe('bad input to the identity API', () => {
  let c: InprocCloud;
  let admin: string;
  let userId: string;
  let projectId: string;
  let demoToken: string;

  before(async () => {
    c = await startInprocCloud({ config: { maxJsonBodyBytes: 64 * 1024 } });
    admin = await c.adminToken();
    demoToken = await c.tokenFor('demo', c.demoPassword(), 'demo');
    userId = (await c.inject('POST', `${ID}/users`, { token: admin, body: { user: { name: 'victim', password: 'Victim-Pw-1' } } })).json.user.id;
    projectId = (await c.inject('POST', `${ID}/projects`, { token: admin, body: { project: { name: 'victim-project' } } })).json.project.id;
  });
  after(async () => {
    await c?.stop();
  });

  /** Sends each request, checks the error, and proves the database did not change. */
  async function expectRefused(status: number, reqs: { m: M; path: string; body?: unknown; token?: string | null; headers?: Record<string, string>; what?: string }[]) {
    const before = await snapshot(c);
    for (const r of reqs) {
      const what = r.what ?? `${r.m} ${r.path} ${typeof r.body === 'string' ? r.body.slice(0, 40) : JSON.stringify(r.body ?? null).slice(0, 60)}`;
      const res = await c.inject(r.m, `${ID}${r.path}`, { body: r.body, token: r.token === null ? undefined : (r.token ?? admin), headers: r.headers });
      assertError(res, status, what);
      assert.equal(res.headers['x-subject-token'], undefined, `${what}: no token issued`);
    }
    assert.deepEqual(await snapshot(c), before, 'the database must be unchanged');
  }

  test('malformed JSON: 400 with a Keystone error body', async () => {
    const bodies = ['{', '{"user": {"name": "x"', '{"user": {"name": "x",}}', "{'user': {}}", 'not json at all', '{"user": {"name": "x"}}}', '\u0000'];
    const reqs = [];
    for (const b of bodies) {
      reqs.push({ m: 'POST' as const, path: '/users', body: b });
      reqs.push({ m: 'POST' as const, path: '/projects', body: b });
      reqs.push({ m: 'PATCH' as const, path: `/users/${userId}`, body: b });
      reqs.push({ m: 'POST' as const, path: '/auth/tokens', body: b, token: null });
    }
    await expectRefused(400, reqs);
    const res = await c.inject('POST', `${ID}/users`, { token: admin, body: '{' });
    assert.match(res.json.error.message, /JSON/);
  });

  test('unknown fields where the schema forbids them: 400 naming the field', async () => {
    await expectRefused(400, [
      { m: 'POST', path: '/users', body: { user: { name: 'x1' }, is_admin: true } },
      { m: 'PATCH', path: `/users/${userId}`, body: { user: { description: 'x' }, role: 'admin' } },
      { m: 'POST', path: '/projects', body: { project: { name: 'x2' }, extra: 1 } },
      { m: 'PATCH', path: `/projects/${projectId}`, body: { project: { description: 'x' }, x: 1 } },
      { m: 'POST', path: '/domains', body: { domain: { name: 'x3' }, x: 1 } },
      { m: 'POST', path: '/groups', body: { group: { name: 'x4' }, x: 1 } },
      { m: 'POST', path: '/roles', body: { role: { name: 'x5' }, x: 1 } },
      { m: 'POST', path: '/regions', body: { region: { id: 'x6' }, x: 1 } },
      { m: 'POST', path: '/services', body: { service: { type: 'x7' }, x: 1 } },
      { m: 'PUT', path: `/projects/${projectId}/tags`, body: { tags: ['a'], more: ['b'] } },
      { m: 'POST', path: `/users/${userId}/password`, body: { user: { original_password: 'Victim-Pw-1', password: 'New-Pw-2', admin: true } }, token: null },
      { m: 'POST', path: `/users/${userId}/password`, body: { user: { original_password: 'Victim-Pw-1', password: 'New-Pw-2' }, x: 1 }, token: null },
      { m: 'POST', path: '/credentials', body: { credential: { user_id: userId, type: 'x', blob: 'y' }, x: 1 } },
    ]);
    const res = await c.inject('POST', `${ID}/users`, { token: admin, body: { user: { name: 'x1' }, is_admin: true } });
    assert.match(res.json.error.message, /is_admin/);
    // The password change really did not happen.
    assert.equal((await c.inject('POST', `${ID}/auth/tokens`, { body: { auth: { identity: { methods: ['password'], password: { user: { id: userId, password: 'Victim-Pw-1' } } } } } })).status, 201);
  });

  test('wrong types and out-of-range values: 400, never coerced', async () => {
    await expectRefused(400, [
      { m: 'POST', path: '/users', body: { user: { name: 123 } } },
      { m: 'POST', path: '/users', body: { user: { name: 'x', enabled: 'true' } } },
      { m: 'POST', path: '/users', body: { user: { name: 'x', enabled: 1 } } },
      { m: 'POST', path: '/users', body: { user: { name: 'x', password: 12345 } } },
      { m: 'POST', path: '/users', body: { user: { name: '' } } },
      { m: 'POST', path: '/users', body: { user: { name: 'x'.repeat(256) } } },
      { m: 'POST', path: '/users', body: { user: 'x' } },
      { m: 'POST', path: '/users', body: { user: ['x'] } },
      { m: 'POST', path: '/users', body: { user: null } },
      { m: 'POST', path: '/users', body: { user: {} } },
      { m: 'POST', path: '/users', body: {} },
      { m: 'POST', path: '/users', body: [] },
      { m: 'POST', path: '/users', body: 'null' },
      { m: 'POST', path: '/users', body: '"a string"' },
      { m: 'POST', path: '/users', body: '42' },
      { m: 'PATCH', path: `/users/${userId}`, body: { user: {} } },
      { m: 'PATCH', path: `/users/${userId}`, body: { user: { enabled: 'false' } } },
      { m: 'POST', path: '/projects', body: { project: { name: 'x'.repeat(65) } } },
      { m: 'POST', path: '/projects', body: { project: { name: 'x', enabled: 'yes' } } },
      { m: 'POST', path: '/projects', body: { project: { name: 'x', tags: 'a' } } },
      { m: 'POST', path: '/projects', body: { project: { name: 'x', tags: Array.from({ length: 81 }, (_, i) => `t${i}`) } } },
      { m: 'PATCH', path: `/projects/${projectId}`, body: { project: { enabled: 0 } } },
      { m: 'POST', path: '/domains', body: { domain: { name: null } } },
      { m: 'POST', path: '/domains', body: { domain: { name: 'x', explicit_domain_id: 'has spaces' } } },
      { m: 'POST', path: '/roles', body: { role: { name: { a: 1 } } } },
      { m: 'POST', path: '/endpoints', body: { endpoint: { service_id: 'x', interface: 'everywhere', url: 'http://x' } } },
      { m: 'POST', path: '/auth/tokens', body: { auth: { identity: { methods: 'password' } } }, token: null },
      { m: 'POST', path: '/auth/tokens', body: { auth: { identity: { methods: [] } } }, token: null },
      { m: 'POST', path: '/auth/tokens', body: { auth: 'x' }, token: null },
      { m: 'POST', path: '/auth/tokens', body: { nope: {} }, token: null },
      { m: 'POST', path: '/auth/tokens', body: { auth: { identity: { methods: ['password'], password: { user: { id: userId, password: 1 } } } } }, token: null },
      { m: 'POST', path: '/auth/tokens', body: { auth: { identity: { methods: ['password'], password: { user: { id: userId, password: 'Victim-Pw-1' } } }, scope: 7 } }, token: null },
      { m: 'GET', path: '/users?limit=abc' },
      { m: 'GET', path: '/users?limit=-5' },
      { m: 'GET', path: '/users?enabled=maybe' },
    ]);
  });

  test('a non-JSON content type on a JSON API is refused', async () => {
    const before = await snapshot(c);
    const res = await c.inject('POST', `${ID}/users`, { token: admin, body: JSON.stringify({ user: { name: 'ctype' } }), headers: { 'content-type': 'text/plain' } });
    assert.ok(res.status === 400 || res.status === 415, `got ${res.status}`);
    assertError(res, res.status, 'text/plain body');
    assert.deepEqual(await snapshot(c), before);
  });

  test('an oversized body: 413 and nothing stored (authenticated or not)', async () => {
    const big = 'x'.repeat(70 * 1024);
    await expectRefused(413, [
      { m: 'POST', path: '/users', body: { user: { name: 'big', description: big } } },
      { m: 'PATCH', path: `/projects/${projectId}`, body: { project: { description: big } } },
      { m: 'POST', path: '/auth/tokens', body: { auth: { identity: { methods: ['password'], password: { user: { id: userId, password: big } } } } }, token: null },
    ]);
    // Without a token the caller is refused before the body is even read.
    await expectRefused(401, [{ m: 'POST', path: '/users', body: { user: { name: 'big2', description: big } }, token: null }]);
  });

  test('an over-long password is refused without being hashed', async () => {
    await expectRefused(400, [{ m: 'POST', path: '/users', body: { user: { name: 'longpw', password: 'p'.repeat(5000) } } }]);
  });

  test('missing token: 401 with WWW-Authenticate, for reads and writes', async () => {
    await expectRefused(401, [
      { m: 'GET', path: '/users', token: null },
      { m: 'POST', path: '/users', body: { user: { name: 'anon' } }, token: null },
      { m: 'PATCH', path: `/users/${userId}`, body: { user: { enabled: false } }, token: null },
      { m: 'DELETE', path: `/projects/${projectId}`, token: null },
      { m: 'PUT', path: `/projects/${projectId}/tags/x`, token: null },
      { m: 'POST', path: '/domains', body: { domain: { name: 'anon-dom' } }, token: null },
      { m: 'GET', path: '/auth/projects', token: null },
      { m: 'DELETE', path: '/auth/tokens', token: null, headers: { 'x-subject-token': demoToken } },
    ]);
    const res = await c.inject('GET', `${ID}/users`);
    assert.match(String(res.headers['www-authenticate']), /^Keystone uri=/);
    assert.equal((await c.inject('GET', `${ID}/auth/projects`, { token: demoToken })).status, 200, 'the demo token was not revoked');
  });

  test('garbage and forged tokens: 401', async () => {
    const forged = encrypt(generateKey(), Buffer.from(JSON.stringify({ v: 1, u: 'admin', m: ['password'], e: Date.now() + 3_600_000, i: Date.now(), a: ['x'] })));
    const tampered = admin.slice(0, -6) + (admin.slice(-6, -5) === 'A' ? 'B' : 'A') + admin.slice(-5);
    const garbage = ['garbage', 'gAAAAA', forged, tampered, admin + 'x', 'x'.repeat(5000), admin.toUpperCase(), ' ', '%00'];
    const reqs = [];
    for (const t of garbage) {
      reqs.push({ m: 'GET' as const, path: '/users', token: t, what: `GET /users with token ${t.slice(0, 20)}…` });
      reqs.push({ m: 'POST' as const, path: '/users', body: { user: { name: 'forged-user' } }, token: t, what: `POST /users with token ${t.slice(0, 20)}…` });
    }
    await expectRefused(401, reqs);
    // A garbage token is not a valid subject either.
    assert.equal((await c.inject('GET', `${ID}/auth/tokens`, { token: admin, headers: { 'x-subject-token': forged } })).status, 404);
  });

  test('an unauthorized caller gets 403 and changes nothing', async () => {
    await expectRefused(403, [
      { m: 'POST', path: '/users', body: { user: { name: 'by-demo' } }, token: demoToken },
      { m: 'PATCH', path: `/users/${userId}`, body: { user: { password: 'x' } }, token: demoToken },
      { m: 'DELETE', path: `/projects/${projectId}`, token: demoToken },
    ]);
  });

  test('prototype-pollution payloads are stored as plain data, never merged into prototypes', async () => {
    const body = '{"user": {"name": "pp-user", "__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted2": "yes"}}}}';
    const res = await c.inject('POST', `${ID}/users`, { token: admin, body });
    assert.ok(res.status === 201 || res.status === 400, `got ${res.status}`);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted2, undefined);
    if (res.status === 201) {
      const got = await c.inject('GET', `${ID}/users/${res.json.user.id}`, { token: admin });
      assert.equal(got.status, 200);
      assert.equal(got.json.user.polluted, undefined, 'no inherited property leaked into the user view');
      assert.equal(got.json.user.name, 'pp-user');
      // Another user's view is unaffected.
      const other = await c.inject('GET', `${ID}/users/${userId}`, { token: admin });
      assert.equal(other.json.user.polluted, undefined);
    }
  });

  test('every response carries x-openstack-request-id: req-<uuid>, each different', async () => {
    const responses = [
      await c.inject('GET', `${ID}`),
      await c.inject('GET', `${ID}/users`, { token: admin }),
      await c.inject('POST', `${ID}/auth/tokens`, { body: { auth: { identity: { methods: ['password'], password: { user: { id: userId, password: 'Victim-Pw-1' } } } } } }),
      await c.inject('HEAD', `${ID}/auth/tokens`, { token: admin, headers: { 'x-subject-token': admin } }),
      await c.inject('PUT', `${ID}/projects/${projectId}/tags/rid`, { token: admin }),
      await c.inject('DELETE', `${ID}/projects/${projectId}/tags/rid`, { token: admin }),
      await c.inject('GET', `${ID}/users/nope`, { token: admin }),
      await c.inject('GET', `${ID}/no/such/route`),
      await c.inject('GET', '/no/such/service'),
      await c.inject('POST', `${ID}/projects`, { token: admin, body: { project: { name: 'victim-project' } } }),
      await c.inject('GET', `${ID}/users`),
      await c.inject('GET', `${ID}/users`, { token: demoToken }),
      await c.inject('POST', `${ID}/users`, { token: admin, body: '{' }),
      await c.inject('GET', '/identity'),
      await c.inject('GET', '/healthz'),
    ];
    const statuses = new Set(responses.map((r) => r.status));
    for (const s of [200, 201, 204, 300, 400, 401, 403, 404, 409]) assert.ok(statuses.has(s), `status ${s} covered`);
    const ids = responses.map((r) => String(r.headers['x-openstack-request-id']));
    for (const [i, id] of ids.entries()) assert.match(id, REQ_ID, `response ${i} (status ${responses[i]!.status})`);
    assert.equal(new Set(ids).size, ids.length, 'request ids are unique');
  });

  test(
    'an unauthenticated request to a protected route is refused with 401 before its body is validated',
    {},
    async () => {
      const res = await c.inject('POST', `${ID}/users`, { body: { user: { name: 123 } } });
      assert.equal(res.status, 401);
    },
  );
});

describe('expired tokens (identity.tokenExpirationSeconds = 1)', () => {
  let c: InprocCloud;
  before(async () => {
    c = await startInprocCloud({ config: { identity: { tokenExpirationSeconds: 1 } }, demo: false });
  });
  after(async () => {
    await c?.stop();
  });

  test('an expired token is a 401 everywhere and changes nothing; allow_expired only helps validation', async () => {
    const old = await c.tokenFor('admin', c.adminPassword(), 'admin');
    const issued = (await c.inject('GET', `${ID}/auth/tokens`, { token: old, headers: { 'x-subject-token': old } })).json.token;
    const ttl = Date.parse(issued.expires_at) - Date.parse(issued.issued_at);
    assert.ok(ttl > 900 && ttl <= 1000, `ttl ${ttl}`);
    assert.equal((await c.inject('GET', `${ID}/users`, { token: old })).status, 200);
    await sleep(Date.parse(issued.expires_at) - Date.now() + 30);
    const before = await snapshot(c);
    for (const [m, path, body] of [
      ['GET', '/users', undefined],
      ['POST', '/users', { user: { name: 'too-late' } }],
      ['POST', '/projects', { project: { name: 'too-late' } }],
      ['PATCH', '/domains/default', { domain: { description: 'too late' } }],
      ['GET', '/auth/projects', undefined],
    ] as [M, string, unknown][]) {
      const res = await c.inject(m, `${ID}${path}`, { token: old, body });
      assertError(res, 401, `${m} ${path} with an expired token`);
    }
    assert.deepEqual(await snapshot(c), before);
    // It cannot be exchanged for a new token either.
    const rescope = await c.inject('POST', `${ID}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: old } } } } });
    assertError(rescope, 401, 'rescoping an expired token');
    // A fresh token sees it as gone, unless allow_expired is asked for.
    const fresh = await c.tokenFor('admin', c.adminPassword(), 'admin');
    assert.equal((await c.inject('GET', `${ID}/auth/tokens`, { token: fresh, headers: { 'x-subject-token': old } })).status, 404);
    const allowed = await c.inject('GET', `${ID}/auth/tokens?allow_expired=true`, { token: fresh, headers: { 'x-subject-token': old } });
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(allowed.json.token.expires_at, issued.expires_at);
    assert.equal((await c.inject('GET', `${ID}/users`, { token: fresh })).status, 200);
  });
});
