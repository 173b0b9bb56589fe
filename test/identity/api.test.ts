/**
 * Identity v3 API, end to end through the HTTP layer of an in-process cloud:
 * tokens, the resource/assignment/catalog/credential APIs, and what tokens
 * carry as a consequence of them.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startInprocCloud, ID, type InprocCloud, type InjectResponse } from '../helpers/inproc.js';
import { signV4 } from '../../src/core/sigv4.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let c: InprocCloud;
let admin: string; // admin on the admin project (cloud admin)
const call = (method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, token?: string, body?: unknown, headers?: Record<string, string>) =>
  c.inject(method, `${ID}${path}`, { token, body, headers });
const ok = (res: InjectResponse, status: number, what = '') => {
  assert.equal(res.status, status, `${what} expected ${status}, got ${res.status}: ${res.text}`);
  return res.json;
};
const roleIds: Record<string, string> = {};
let adminUserId: string;
let adminProjectId: string;
let demoProjectId: string;
let demoUserId: string;

/** Issues a token (POST /auth/tokens) and returns the raw response. */
const auth = (identity: unknown, scope?: unknown, query = '') =>
  c.inject('POST', `${ID}/auth/tokens${query}`, { body: { auth: { identity, ...(scope !== undefined ? { scope } : {}) } } });
const pw = (user: Record<string, unknown>, password: string) => ({ methods: ['password'], password: { user: { ...user, password } } });
const subject = (res: InjectResponse) => {
  const t = res.headers['x-subject-token'];
  assert.equal(typeof t, 'string', 'X-Subject-Token header');
  return t as string;
};
const roleNames = (body: { token: { roles?: { name: string }[] } }) => (body.token.roles ?? []).map((r) => r.name).sort();

let nUser = 0;
async function mkUser(extra: Record<string, unknown> = {}): Promise<{ id: string; name: string; password: string }> {
  const name = (extra.name as string | undefined) ?? `user${++nUser}`;
  const password = `pw-${name}-S3cret!`;
  const res = await call('POST', '/users', admin, { user: { name, password, ...extra } });
  const body = ok(res, 201, 'create user');
  return { id: body.user.id, name, password };
}
let nProject = 0;
async function mkProject(extra: Record<string, unknown> = {}): Promise<{ id: string; name: string; domain_id: string; parent_id: string; tags: string[] }> {
  const res = await call('POST', '/projects', admin, { project: { name: `project${++nProject}`, ...extra } });
  return ok(res, 201, 'create project').project;
}
const grant = async (projectId: string, userId: string, role: string) =>
  ok(await call('PUT', `/projects/${projectId}/users/${userId}/roles/${roleIds[role]}`, admin), 204, 'grant');
const projectToken = async (user: { id: string; password: string }, projectId: string) =>
  subject(ok201(await auth(pw({ id: user.id }, user.password), { project: { id: projectId } })));
function ok201(res: InjectResponse): InjectResponse {
  assert.equal(res.status, 201, `token issue failed: ${res.status} ${res.text}`);
  return res;
}
const validate = (token: string, asToken = admin, query = '') => call('GET', `/auth/tokens${query}`, asToken, undefined, { 'x-subject-token': token });

before(async () => {
  c = await startInprocCloud();
  admin = await c.adminToken();
  const roles = ok(await call('GET', '/roles', admin), 200).roles as { id: string; name: string }[];
  for (const r of roles) roleIds[r.name] = r.id;
  const users = ok(await call('GET', '/users', admin), 200).users as { id: string; name: string }[];
  adminUserId = users.find((u) => u.name === 'admin')!.id;
  demoUserId = users.find((u) => u.name === 'demo')!.id;
  const projects = ok(await call('GET', '/projects', admin), 200).projects as { id: string; name: string }[];
  adminProjectId = projects.find((p) => p.name === 'admin')!.id;
  demoProjectId = projects.find((p) => p.name === 'demo')!.id;
});
after(async () => {
  await c?.stop();
});

describe('tokens: POST /v3/auth/tokens', () => {
  test('password by user id, project scope: 201, X-Subject-Token, roles (implied expanded), catalog', async () => {
    const res = await auth(pw({ id: adminUserId }, c.adminPassword()), { project: { id: adminProjectId } });
    assert.equal(res.status, 201);
    const token = subject(res);
    assert.ok(token.length > 50 && token.length <= 1024);
    const t = res.json.token;
    assert.deepEqual(t.methods, ['password']);
    assert.deepEqual(t.user, { id: adminUserId, name: 'admin', domain: { id: 'default', name: 'Default' }, password_expires_at: null });
    assert.deepEqual(t.project, { id: adminProjectId, name: 'admin', domain: { id: 'default', name: 'Default' } });
    assert.equal(t.is_admin_project, true);
    assert.deepEqual(roleNames(res.json), ['admin', 'member', 'reader']);
    assert.equal(t.audit_ids.length, 1);
    const ttl = Date.parse(t.expires_at) - Date.parse(t.issued_at);
    assert.ok(Math.abs(ttl - 3600_000) < 2000, `ttl ${ttl}`);
    assert.match(t.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    const types = (t.catalog as { type: string; endpoints: { interface: string; url: string }[] }[]).map((s) => s.type).sort();
    assert.ok(types.includes('identity') && types.includes('compute'), `catalog types ${types}`);
    const identity = t.catalog.find((s: { type: string }) => s.type === 'identity');
    assert.ok(identity.endpoints.some((e: { url: string }) => e.url.endsWith('/identity/v3')));
    assert.ok(!('domain' in t) && !('system' in t));
  });

  test('password by user name + domain id, and by name + domain name', async () => {
    const byId = await auth(pw({ name: 'demo', domain: { id: 'default' } }, c.demoPassword()), { project: { name: 'demo', domain: { name: 'Default' } } });
    assert.equal(byId.status, 201, byId.text);
    assert.equal(byId.json.token.user.id, demoUserId);
    assert.equal(byId.json.token.project.id, demoProjectId);
    assert.deepEqual(roleNames(byId.json), ['member', 'reader']);
    assert.equal(byId.json.token.is_admin_project, false);
    const byName = await auth(pw({ name: 'demo', domain: { name: 'Default' } }, c.demoPassword()), { project: { id: demoProjectId } });
    assert.equal(byName.status, 201, byName.text);
    assert.equal(byName.json.token.user.id, demoUserId);
  });

  test('a user name without a domain is a 400', async () => {
    const res = await auth(pw({ name: 'demo' }, c.demoPassword()));
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 400);
  });

  test('no scope: the default project when the user has a role there, otherwise unscoped', async () => {
    // admin's default project is the admin project.
    const dflt = await auth(pw({ id: adminUserId }, c.adminPassword()));
    assert.equal(dflt.status, 201);
    assert.equal(dflt.json.token.project.id, adminProjectId);
    // A user with no default project gets an unscoped token: no roles, no catalog.
    const u = await mkUser();
    const res = await auth(pw({ id: u.id }, u.password));
    assert.equal(res.status, 201);
    const t = res.json.token;
    for (const k of ['project', 'domain', 'system', 'roles', 'catalog']) assert.ok(!(k in t), `unscoped token has ${k}`);
    // A default project without a role on it also yields an unscoped token.
    const p = await mkProject();
    ok(await call('PATCH', `/users/${u.id}`, admin, { user: { default_project_id: p.id } }), 200);
    await sleep(2);
    const res2 = await auth(pw({ id: u.id }, u.password));
    assert.equal(res2.status, 201);
    assert.ok(!('project' in res2.json.token));
    await grant(p.id, u.id, 'reader');
    const res3 = await auth(pw({ id: u.id }, u.password));
    assert.equal(res3.json.token.project.id, p.id);
  });

  test('scope "unscoped" overrides the default project', async () => {
    const res = await auth(pw({ id: adminUserId }, c.adminPassword()), 'unscoped');
    assert.equal(res.status, 201);
    assert.ok(!('project' in res.json.token));
    assert.ok(!('roles' in res.json.token));
  });

  test('domain scope: needs a role on the domain', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'tok-dom' } }), 201).domain;
    const u = await mkUser();
    const denied = await auth(pw({ id: u.id }, u.password), { domain: { id: d.id } });
    assert.equal(denied.status, 401);
    ok(await call('PUT', `/domains/${d.id}/users/${u.id}/roles/${roleIds.admin}`, admin), 204);
    const res = await auth(pw({ id: u.id }, u.password), { domain: { name: 'tok-dom' } });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(res.json.token.domain, { id: d.id, name: 'tok-dom' });
    assert.deepEqual(roleNames(res.json), ['admin', 'member', 'reader']);
    assert.ok(!('project' in res.json.token));
  });

  test('system scope: admin gets it, a project member does not', async () => {
    const res = await auth(pw({ id: adminUserId }, c.adminPassword()), { system: { all: true } });
    assert.equal(res.status, 201);
    assert.deepEqual(res.json.token.system, { all: true });
    assert.deepEqual(roleNames(res.json), ['admin', 'member', 'reader']);
    assert.ok(!('project' in res.json.token));
    const demo = await auth(pw({ id: demoUserId }, c.demoPassword()), { system: { all: true } });
    assert.equal(demo.status, 401);
    assert.equal((await auth(pw({ id: adminUserId }, c.adminPassword()), { system: { all: false } })).status, 400);
  });

  test('a project the user has no role on, or an unknown/disabled one: 401', async () => {
    assert.equal((await auth(pw({ id: demoUserId }, c.demoPassword()), { project: { id: adminProjectId } })).status, 401);
    assert.equal((await auth(pw({ id: demoUserId }, c.demoPassword()), { project: { id: 'nope' } })).status, 401);
    assert.equal((await auth(pw({ id: demoUserId }, c.demoPassword()), { project: { name: 'nope', domain: { id: 'default' } } })).status, 401);
  });

  test('two scopes at once, unsupported methods and missing credentials are refused', async () => {
    const two = await auth(pw({ id: adminUserId }, c.adminPassword()), { project: { id: adminProjectId }, system: { all: true } });
    assert.equal(two.status, 400);
    const kerb = await auth({ methods: ['kerberos'] });
    assert.equal(kerb.status, 401);
    const noPw = await auth({ methods: ['password'] });
    assert.equal(noPw.status, 400);
    const empty = await auth({ methods: [] });
    assert.equal(empty.status, 400);
    const trust = await auth(pw({ id: adminUserId }, c.adminPassword()), { 'OS-TRUST:trust': { id: 'x' } });
    assert.equal(trust.status, 401);
  });

  test('?nocatalog leaves the catalog out of issue and validation responses', async () => {
    const res = await auth(pw({ id: demoUserId }, c.demoPassword()), { project: { id: demoProjectId } }, '?nocatalog');
    assert.equal(res.status, 201);
    assert.ok(!('catalog' in res.json.token));
    assert.ok(res.json.token.roles.length > 0);
    const tok = subject(res);
    const v = validate(tok, admin, '?nocatalog');
    assert.ok(!('catalog' in ok(await v, 200).token));
    assert.ok(Array.isArray(ok(await validate(tok), 200).token.catalog));
  });

  test('rescope with the token method: same user, new scope, chained audit ids, no longer life', async () => {
    const u = await mkUser();
    const p = await mkProject();
    await grant(p.id, u.id, 'member');
    const first = ok201(await auth(pw({ id: u.id }, u.password)));
    const unscoped = subject(first);
    await sleep(5);
    const res = await auth({ methods: ['token'], token: { id: unscoped } }, { project: { id: p.id } });
    assert.equal(res.status, 201, res.text);
    const t = res.json.token;
    assert.equal(t.user.id, u.id);
    assert.equal(t.project.id, p.id);
    assert.deepEqual([...t.methods].sort(), ['password', 'token']);
    assert.equal(t.audit_ids.length, 2);
    assert.equal(t.audit_ids[1], first.json.token.audit_ids[0]);
    assert.notEqual(t.audit_ids[0], first.json.token.audit_ids[0]);
    assert.ok(Date.parse(t.expires_at) <= Date.parse(first.json.token.expires_at), 'a rescoped token never outlives its parent');
    assert.deepEqual(roleNames(res.json), ['member', 'reader']);
    // Without a scope, the token method keeps the parent's scope.
    const keep = await auth({ methods: ['token'], token: { id: subject(res) } });
    assert.equal(keep.status, 201);
    assert.equal(keep.json.token.project.id, p.id);
    // An invalid token cannot be exchanged.
    assert.equal((await auth({ methods: ['token'], token: { id: 'garbage' } })).status, 401);
    // Password plus a token of another user: refused.
    const mixed = await auth({ methods: ['password', 'token'], password: { user: { id: demoUserId, password: c.demoPassword() } }, token: { id: unscoped } });
    assert.equal(mixed.status, 401);
  });

  test('revoking a token revokes everything rescoped from it, down the whole chain', async () => {
    const u = await mkUser();
    const p = await mkProject();
    await grant(p.id, u.id, 'member');
    const t0 = subject(ok201(await auth(pw({ id: u.id }, u.password))));
    const r1 = ok201(await auth({ methods: ['token'], token: { id: t0 } }, { project: { id: p.id } }));
    const t1 = subject(r1);
    const r2 = ok201(await auth({ methods: ['token'], token: { id: t1 } }));
    ok(await call('DELETE', '/auth/tokens', admin, undefined, { 'x-subject-token': t0 }), 204);
    assert.equal((await validate(t1)).status, 404, 'child revoked');
    assert.equal((await call('GET', '/auth/projects', t1)).status, 401);
    assert.equal(r2.json.token.audit_ids.length, 2);
    // The parent itself is gone too, and revoking a child never revokes its parent.
    assert.equal((await validate(t0)).status, 404);
    const s0 = subject(ok201(await auth(pw({ id: u.id }, u.password))));
    const s1 = subject(ok201(await auth({ methods: ['token'], token: { id: s0 } }, { project: { id: p.id } })));
    ok(await call('DELETE', '/auth/tokens', admin, undefined, { 'x-subject-token': s1 }), 204);
    assert.equal((await validate(s0)).status, 200);
  });

  test(
    'a token rescoped twice keeps the original audit id as its chain id (Keystone audit chain)',
    {},
    async () => {
      const u = await mkUser();
      const t0r = ok201(await auth(pw({ id: u.id }, u.password)));
      const t1 = subject(ok201(await auth({ methods: ['token'], token: { id: subject(t0r) } })));
      const t2r = ok201(await auth({ methods: ['token'], token: { id: t1 } }));
      assert.equal(t2r.json.token.audit_ids[1], t0r.json.token.audit_ids[0]);
      // ...so revoking the original token revokes the grandchild as well.
      ok(await call('DELETE', '/auth/tokens', admin, undefined, { 'x-subject-token': subject(t0r) }), 204);
      assert.equal((await validate(subject(t2r))).status, 404, 'grandchild must be revoked with its chain');
    },
  );
});

describe('tokens: validate / check / revoke (X-Subject-Token)', () => {
  test('GET validates: same body shape as issue, X-Subject-Token echoed', async () => {
    const issued = ok201(await auth(pw({ id: demoUserId }, c.demoPassword()), { project: { id: demoProjectId } }));
    const tok = subject(issued);
    const res = await validate(tok);
    const body = ok(res, 200);
    assert.equal(res.headers['x-subject-token'], tok);
    assert.equal(body.token.user.id, demoUserId);
    assert.equal(body.token.project.id, demoProjectId);
    assert.deepEqual(body.token.audit_ids, issued.json.token.audit_ids);
    assert.equal(body.token.expires_at, issued.json.token.expires_at);
    assert.deepEqual(roleNames(body), ['member', 'reader']);
  });

  test('a user may validate its own token, not someone else\'s', async () => {
    const demo = await c.tokenFor('demo', c.demoPassword(), 'demo');
    assert.equal((await validate(demo, demo)).status, 200);
    const res = await validate(admin, demo);
    assert.equal(res.status, 403);
    assert.ok(!res.text.includes(adminProjectId));
  });

  test('HEAD checks: 200 with no body; 404 for a bad subject', async () => {
    const demo = await c.tokenFor('demo', c.demoPassword(), 'demo');
    const res = await call('HEAD', '/auth/tokens', admin, undefined, { 'x-subject-token': demo });
    assert.equal(res.status, 200);
    assert.equal(res.text, '');
    assert.equal((await call('HEAD', '/auth/tokens', admin, undefined, { 'x-subject-token': 'nonsense' })).status, 404);
  });

  test('missing X-Subject-Token: 400; invalid subject: 404', async () => {
    assert.equal((await call('GET', '/auth/tokens', admin)).status, 400);
    const bad = await validate('gAAAAABnot-a-real-token');
    assert.equal(bad.status, 404);
    assert.equal(bad.json.error.code, 404);
  });

  test('DELETE revokes: 204, then the token neither validates nor authenticates; a second DELETE is 404', async () => {
    const victim = await c.tokenFor('demo', c.demoPassword(), 'demo');
    assert.equal((await call('GET', '/auth/projects', victim)).status, 200);
    const del = await call('DELETE', '/auth/tokens', admin, undefined, { 'x-subject-token': victim });
    assert.equal(del.status, 204);
    assert.equal((await validate(victim)).status, 404);
    assert.equal((await call('GET', '/auth/projects', victim)).status, 401);
    assert.equal((await call('DELETE', '/auth/tokens', admin, undefined, { 'x-subject-token': victim })).status, 404);
    // Other tokens of the same user are unaffected.
    const fresh = await c.tokenFor('demo', c.demoPassword(), 'demo');
    assert.equal((await call('GET', '/auth/projects', fresh)).status, 200);
  });

  test('a user can revoke its own token (self-logout)', async () => {
    const tok = await c.tokenFor('demo', c.demoPassword(), 'demo');
    assert.equal((await call('DELETE', '/auth/tokens', tok, undefined, { 'x-subject-token': tok })).status, 204);
    assert.equal((await call('GET', '/auth/projects', tok)).status, 401);
  });
});

describe('/v3/auth/{catalog,projects,domains,system}', () => {
  test('catalog for a project-scoped token lists every registered service', async () => {
    const demo = await c.tokenFor('demo', c.demoPassword(), 'demo');
    const body = ok(await call('GET', '/auth/catalog', demo), 200);
    const types = body.catalog.map((s: { type: string }) => s.type);
    assert.ok(types.includes('identity') && types.includes('compute'));
    for (const s of body.catalog) {
      assert.match(s.id, /^[0-9a-f]{32}$/);
      assert.ok(s.endpoints.length > 0);
      for (const e of s.endpoints) assert.ok(['public', 'internal', 'admin'].includes(e.interface));
    }
    assert.match(body.links.self, /\/identity\/v3\/auth\/catalog$/);
  });

  test(
    'catalog for an unscoped token is 403 (Keystone: "A project-scoped token is required")',
    {},
    async () => {
      const u = await mkUser();
      const unscoped = subject(ok201(await auth(pw({ id: u.id }, u.password))));
      assert.equal((await call('GET', '/auth/catalog', unscoped)).status, 403);
    },
  );

  test('projects: exactly the enabled projects where the caller has a role (direct, group or inherited)', async () => {
    const u = await mkUser();
    const p1 = await mkProject();
    const p2 = await mkProject();
    const p3 = await mkProject({ enabled: false });
    const g = ok(await call('POST', '/groups', admin, { group: { name: 'authproj-g' } }), 201).group;
    ok(await call('PUT', `/groups/${g.id}/users/${u.id}`, admin), 204);
    await grant(p1.id, u.id, 'reader');
    ok(await call('PUT', `/projects/${p2.id}/groups/${g.id}/roles/${roleIds.member}`, admin), 204);
    await grant(p3.id, u.id, 'member');
    const tok = subject(ok201(await auth(pw({ id: u.id }, u.password))));
    const body = ok(await call('GET', '/auth/projects', tok), 200);
    assert.deepEqual(body.projects.map((p: { id: string }) => p.id).sort(), [p1.id, p2.id].sort());
    assert.ok(body.projects.every((p: { links: { self: string } }) => p.links.self.includes('/projects/')));
  });

  test('domains: the domains where the caller has a role', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'auth-dom' } }), 201).domain;
    const u = await mkUser();
    const tok = subject(ok201(await auth(pw({ id: u.id }, u.password))));
    assert.deepEqual(ok(await call('GET', '/auth/domains', tok), 200).domains, []);
    ok(await call('PUT', `/domains/${d.id}/users/${u.id}/roles/${roleIds.reader}`, admin), 204);
    const tok2 = subject(ok201(await auth(pw({ id: u.id }, u.password))));
    assert.deepEqual(ok(await call('GET', '/auth/domains', tok2), 200).domains.map((x: { id: string }) => x.id), [d.id]);
  });

  test('system: [{all: true}] for a system role holder, [] otherwise', async () => {
    assert.deepEqual(ok(await call('GET', '/auth/system', admin), 200).system, [{ all: true }]);
    const demo = await c.tokenFor('demo', c.demoPassword(), 'demo');
    assert.deepEqual(ok(await call('GET', '/auth/system', demo), 200).system, []);
  });

  test('all of them need a token', async () => {
    for (const p of ['/auth/catalog', '/auth/projects', '/auth/domains', '/auth/system']) assert.equal((await call('GET', p)).status, 401, p);
  });
});

describe('domains', () => {
  test('create, get, update, delete (403 while enabled), then gone', async () => {
    const created = await call('POST', '/domains', admin, { domain: { name: 'acme', description: 'Acme Corp', tags: ['t1'] } });
    const d = ok(created, 201).domain;
    assert.match(d.id, /^[0-9a-f]{32}$/);
    assert.equal(d.name, 'acme');
    assert.equal(d.description, 'Acme Corp');
    assert.equal(d.enabled, true);
    assert.deepEqual(d.tags, ['t1']);
    assert.match(d.links.self, new RegExp(`/identity/v3/domains/${d.id}$`));
    assert.deepEqual(ok(await call('GET', `/domains/${d.id}`, admin), 200).domain, d);
    const up = ok(await call('PATCH', `/domains/${d.id}`, admin, { domain: { description: 'changed' } }), 200).domain;
    assert.equal(up.description, 'changed');
    assert.equal(up.name, 'acme');

    const refused = await call('DELETE', `/domains/${d.id}`, admin);
    assert.equal(refused.status, 403);
    assert.match(refused.json.error.message, /disable/i);
    assert.equal((await call('GET', `/domains/${d.id}`, admin)).status, 200, 'still there');

    ok(await call('PATCH', `/domains/${d.id}`, admin, { domain: { enabled: false } }), 200);
    assert.equal((await call('DELETE', `/domains/${d.id}`, admin)).status, 204);
    assert.equal((await call('GET', `/domains/${d.id}`, admin)).status, 404);
    assert.equal((await call('DELETE', `/domains/${d.id}`, admin)).status, 404);
  });

  test('deleting a domain removes its projects, users and groups', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'doomed' } }), 201).domain;
    const p = await mkProject({ domain_id: d.id });
    const u = await mkUser({ domain_id: d.id });
    const g = ok(await call('POST', '/groups', admin, { group: { name: 'doomed-g', domain_id: d.id } }), 201).group;
    ok(await call('PATCH', `/domains/${d.id}`, admin, { domain: { enabled: false } }), 200);
    ok(await call('DELETE', `/domains/${d.id}`, admin), 204);
    assert.equal((await call('GET', `/projects/${p.id}`, admin)).status, 404);
    assert.equal((await call('GET', `/users/${u.id}`, admin)).status, 404);
    assert.equal((await call('GET', `/groups/${g.id}`, admin)).status, 404);
  });

  test('the default domain cannot be deleted', async () => {
    assert.equal((await call('DELETE', '/domains/default', admin)).status, 403);
    assert.equal((await call('GET', '/domains/default', admin)).status, 200);
  });

  test('duplicate names: 409; explicit_domain_id is honoured', async () => {
    ok(await call('POST', '/domains', admin, { domain: { name: 'dupdom' } }), 201);
    const dup = await call('POST', '/domains', admin, { domain: { name: 'dupdom' } });
    assert.equal(dup.status, 409);
    assert.equal(dup.json.error.title, 'Conflict');
    const ex = ok(await call('POST', '/domains', admin, { domain: { name: 'explicit', explicit_domain_id: 'my-domain-id' } }), 201).domain;
    assert.equal(ex.id, 'my-domain-id');
    assert.ok(!('explicit_domain_id' in ex));
  });

  test('list filters (name, enabled) and limit/marker paging', async () => {
    for (const n of ['pg-a', 'pg-b', 'pg-c']) ok(await call('POST', '/domains', admin, { domain: { name: n, enabled: n !== 'pg-b' } }), 201);
    const byName = ok(await call('GET', '/domains?name=pg-b', admin), 200).domains;
    assert.deepEqual(byName.map((d: { name: string }) => d.name), ['pg-b']);
    const disabled = ok(await call('GET', '/domains?enabled=false', admin), 200).domains.map((d: { name: string }) => d.name);
    assert.ok(disabled.includes('pg-b') && !disabled.includes('pg-a') && !disabled.includes('Default'));
    const all = ok(await call('GET', '/domains', admin), 200).domains.map((d: { id: string }) => d.id) as string[];
    assert.ok(all.length >= 4);
    // Walk the whole list two at a time by following links.next.
    const seen: string[] = [];
    let url: string | null = '/domains?limit=2';
    let pages = 0;
    while (url && pages++ < 20) {
      const page: { domains: { id: string }[]; links: { next: string | null } } = ok(await call('GET', url, admin), 200);
      assert.ok(page.domains.length <= 2);
      seen.push(...page.domains.map((d) => d.id));
      url = page.links.next ? page.links.next.replace(/^.*\/identity\/v3/, '') : null;
    }
    assert.deepEqual(seen, all);
    const afterFirst = ok(await call('GET', `/domains?marker=${all[0]}`, admin), 200).domains.map((d: { id: string }) => d.id);
    assert.deepEqual(afterFirst, all.slice(1));
    assert.equal((await call('GET', '/domains?marker=does-not-exist', admin)).status, 400);
    assert.equal((await call('GET', '/domains?limit=-1', admin)).status, 400);
  });
});

describe('projects', () => {
  test('hierarchy: parent_id, children listing, no deleting a parent', async () => {
    const parent = await mkProject({ description: 'top' });
    assert.equal(parent.domain_id, 'default');
    assert.equal(parent.parent_id, 'default', 'a top-level project\'s parent is its domain');
    const child = await mkProject({ parent_id: parent.id });
    assert.equal(child.parent_id, parent.id);
    assert.equal(child.domain_id, 'default');
    const grandchild = await mkProject({ parent_id: child.id });
    assert.equal(grandchild.parent_id, child.id);
    const kids = ok(await call('GET', `/projects?parent_id=${parent.id}`, admin), 200).projects;
    assert.deepEqual(kids.map((p: { id: string }) => p.id), [child.id]);
    const refused = await call('DELETE', `/projects/${parent.id}`, admin);
    assert.equal(refused.status, 403);
    assert.equal((await call('PATCH', `/projects/${child.id}`, admin, { project: { parent_id: adminProjectId } })).status, 403, 'reparenting refused');
    ok(await call('DELETE', `/projects/${grandchild.id}`, admin), 204);
    ok(await call('DELETE', `/projects/${child.id}`, admin), 204);
    ok(await call('DELETE', `/projects/${parent.id}`, admin), 204);
    assert.equal((await call('GET', `/projects/${parent.id}`, admin)).status, 404);
  });

  test('a parent in another domain, or an unknown parent, is refused', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'proj-dom' } }), 201).domain;
    const parent = await mkProject();
    assert.equal((await call('POST', '/projects', admin, { project: { name: 'x-dom-child', parent_id: parent.id, domain_id: d.id } })).status, 400);
    assert.equal((await call('POST', '/projects', admin, { project: { name: 'orphan', parent_id: 'nope' } })).status, 400);
    const inDom = await mkProject({ domain_id: d.id });
    assert.equal(inDom.domain_id, d.id);
    assert.equal(inDom.parent_id, d.id);
    assert.equal((await call('POST', '/projects', admin, { project: { name: 'nodom', domain_id: 'nope' } })).status, 404);
  });

  test('same name twice in a domain: 409; fine in another domain', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'dup-proj-dom' } }), 201).domain;
    await mkProject({ name: 'samename' });
    assert.equal((await call('POST', '/projects', admin, { project: { name: 'samename' } })).status, 409);
    await mkProject({ name: 'samename', domain_id: d.id });
  });

  test('update: name, description, enabled; extra attributes are kept', async () => {
    const p = await mkProject({ description: 'before', cost_center: 'cc-1' });
    assert.equal((p as unknown as Record<string, unknown>).cost_center, 'cc-1');
    const up = ok(await call('PATCH', `/projects/${p.id}`, admin, { project: { description: 'after', enabled: false, name: `${p.name}-renamed` } }), 200).project;
    assert.equal(up.description, 'after');
    assert.equal(up.enabled, false);
    assert.equal(up.name, `${p.name}-renamed`);
    assert.equal(up.cost_center, 'cc-1');
    assert.equal((await call('PATCH', `/projects/${p.id}`, admin, { project: { domain_id: 'other' } })).status, 400);
  });

  test('tags: create with tags, replace, add one, check one, remove one, clear, filter lists by tags', async () => {
    const p = await mkProject({ tags: ['red', 'blue'] });
    assert.deepEqual(p.tags, ['red', 'blue']);
    assert.deepEqual(ok(await call('GET', `/projects/${p.id}/tags`, admin), 200).tags, ['red', 'blue']);
    const withBoth = ok(await call('GET', '/projects?tags=red,blue', admin), 200).projects.map((x: { id: string }) => x.id);
    assert.ok(withBoth.includes(p.id));
    const withOther = ok(await call('GET', '/projects?tags=red,green', admin), 200).projects.map((x: { id: string }) => x.id);
    assert.ok(!withOther.includes(p.id), 'tags= requires every tag');
    assert.deepEqual(ok(await call('PUT', `/projects/${p.id}/tags`, admin, { tags: ['x', 'y'] }), 200).tags, ['x', 'y']);
    assert.equal((await call('PUT', `/projects/${p.id}/tags/z`, admin)).status, 201);
    assert.equal((await call('PUT', `/projects/${p.id}/tags/z`, admin)).status, 201, 'idempotent');
    assert.deepEqual(ok(await call('GET', `/projects/${p.id}`, admin), 200).project.tags, ['x', 'y', 'z']);
    assert.equal((await call('GET', `/projects/${p.id}/tags/z`, admin)).status, 204);
    assert.equal((await call('GET', `/projects/${p.id}/tags/nope`, admin)).status, 404);
    assert.equal((await call('DELETE', `/projects/${p.id}/tags/x`, admin)).status, 204);
    assert.deepEqual(ok(await call('GET', `/projects/${p.id}/tags`, admin), 200).tags, ['y', 'z']);
    assert.equal((await call('DELETE', `/projects/${p.id}/tags`, admin)).status, 204);
    assert.deepEqual(ok(await call('GET', `/projects/${p.id}/tags`, admin), 200).tags, []);
    assert.equal((await call('POST', '/projects', admin, { project: { name: 'comma-tags', tags: ['a,b'] } })).status, 400, 'commas are not allowed in tags');
    assert.equal((await call('POST', '/projects', admin, { project: { name: 'slash-tags', tags: ['a/b'] } })).status, 400, 'slashes are not allowed in tags');
  });

  test(
    'tags set through /projects/{id}/tags follow the same rules as on create (no commas or slashes)',
    {},
    async () => {
      const p = await mkProject();
      assert.equal((await call('PUT', `/projects/${p.id}/tags`, admin, { tags: ['a,b'] })).status, 400);
      assert.equal((await call('PUT', `/projects/${p.id}/tags/a%2Cb`, admin)).status, 400);
      assert.deepEqual(ok(await call('GET', `/projects/${p.id}/tags`, admin), 200).tags, []);
    },
  );

  test('list filters and paging', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'list-proj-dom' } }), 201).domain;
    const ps = [await mkProject({ domain_id: d.id }), await mkProject({ domain_id: d.id, enabled: false }), await mkProject({ domain_id: d.id })];
    const inDom = ok(await call('GET', `/projects?domain_id=${d.id}`, admin), 200).projects.map((p: { id: string }) => p.id).sort();
    assert.deepEqual(inDom, ps.map((p) => p.id).sort());
    const enabled = ok(await call('GET', `/projects?domain_id=${d.id}&enabled=true`, admin), 200).projects.map((p: { id: string }) => p.id);
    assert.equal(enabled.length, 2);
    assert.ok(!enabled.includes(ps[1]!.id));
    assert.deepEqual(ok(await call('GET', `/projects?name=${ps[0]!.name}`, admin), 200).projects.map((p: { id: string }) => p.id), [ps[0]!.id]);
    const page1 = ok(await call('GET', `/projects?domain_id=${d.id}&limit=2`, admin), 200);
    assert.equal(page1.projects.length, 2);
    assert.ok(page1.links.next);
    const page2 = ok(await call('GET', page1.links.next.replace(/^.*\/identity\/v3/, ''), admin), 200);
    assert.equal(page2.projects.length, 1);
    assert.equal(page2.links.next, null);
    assert.deepEqual([...page1.projects, ...page2.projects].map((p: { id: string }) => p.id).sort(), inDom);
    assert.deepEqual(ok(await call('GET', '/projects?is_domain=true', admin), 200).projects, []);
  });
});

describe('users', () => {
  test('the password never appears in any response', async () => {
    const password = 'Sup3r-Secret-Value-42';
    const res = await call('POST', '/users', admin, { user: { name: 'pw-user', password, email: 'pw@example.org', description: 'd' } });
    const u = ok(res, 201).user;
    const check = (r: InjectResponse, what: string) => {
      assert.ok(!r.text.includes(password), `${what} leaks the password`);
      assert.ok(!/password_hash|"password"\s*:/.test(r.text), `${what} has a password field: ${r.text}`);
      assert.ok(!r.text.includes('$2'), `${what} leaks a bcrypt hash`);
    };
    check(res, 'create');
    assert.equal(u.email, 'pw@example.org');
    assert.equal(u.enabled, true);
    assert.equal(u.domain_id, 'default');
    assert.equal(u.password_expires_at, null);
    check(await call('GET', `/users/${u.id}`, admin), 'get');
    check(await call('GET', '/users', admin), 'list');
    check(await call('GET', `/users?name=pw-user`, admin), 'filtered list');
    const newPw = 'An0ther-Secret-Value';
    const upd = await call('PATCH', `/users/${u.id}`, admin, { user: { password: newPw } });
    assert.equal(upd.status, 200);
    assert.ok(!upd.text.includes(newPw));
    check(upd, 'update');
    const grp = ok(await call('POST', '/groups', admin, { group: { name: 'pw-group' } }), 201).group;
    ok(await call('PUT', `/groups/${grp.id}/users/${u.id}`, admin), 204);
    const members = await call('GET', `/groups/${grp.id}/users`, admin);
    assert.ok(!members.text.includes(newPw) && !members.text.includes('$2'));
    // The new password works, the old one does not.
    await sleep(2);
    assert.equal((await auth(pw({ id: u.id }, newPw))).status, 201);
    assert.equal((await auth(pw({ id: u.id }, password))).status, 401);
  });

  test('password hashes are stored hashed (bcrypt), never in clear', async () => {
    const u = await mkUser();
    const row = await c.cloud.database.db.selectFrom('id_users').selectAll().where('id', '=', u.id).executeTakeFirst();
    assert.ok(row);
    assert.match(row.password_hash, /^\$2[aby]\$/);
    assert.ok(!JSON.stringify(row).includes(u.password));
  });

  test('get, update (name, enabled, extra), delete', async () => {
    const u = await mkUser({ description: 'first' });
    const got = ok(await call('GET', `/users/${u.id}`, admin), 200).user;
    assert.equal(got.name, u.name);
    assert.equal(got.description, 'first');
    const up = ok(await call('PATCH', `/users/${u.id}`, admin, { user: { name: `${u.name}-x`, enabled: false, description: 'second' } }), 200).user;
    assert.equal(up.name, `${u.name}-x`);
    assert.equal(up.enabled, false);
    assert.equal(up.description, 'second');
    assert.equal((await call('PATCH', `/users/${u.id}`, admin, { user: { domain_id: 'other' } })).status, 400);
    assert.equal((await call('DELETE', `/users/${u.id}`, admin)).status, 204);
    assert.equal((await call('GET', `/users/${u.id}`, admin)).status, 404);
    assert.equal((await call('DELETE', `/users/${u.id}`, admin)).status, 404);
  });

  test('duplicate name in a domain: 409; users in an unknown domain: 404', async () => {
    await mkUser({ name: 'dupuser' });
    assert.equal((await call('POST', '/users', admin, { user: { name: 'dupuser' } })).status, 409);
    assert.equal((await call('POST', '/users', admin, { user: { name: 'x', domain_id: 'nope' } })).status, 404);
  });

  test('list filters (name, domain_id, enabled) and paging', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'users-dom' } }), 201).domain;
    const a = await mkUser({ domain_id: d.id });
    const b = await mkUser({ domain_id: d.id, enabled: false });
    const cc = await mkUser({ domain_id: d.id });
    const inDom = ok(await call('GET', `/users?domain_id=${d.id}`, admin), 200).users.map((u: { id: string }) => u.id).sort();
    assert.deepEqual(inDom, [a.id, b.id, cc.id].sort());
    const off = ok(await call('GET', `/users?domain_id=${d.id}&enabled=false`, admin), 200).users.map((u: { id: string }) => u.id);
    assert.deepEqual(off, [b.id]);
    assert.deepEqual(ok(await call('GET', `/users?name=${a.name}&domain_id=${d.id}`, admin), 200).users.map((u: { id: string }) => u.id), [a.id]);
    const p1 = ok(await call('GET', `/users?domain_id=${d.id}&limit=1`, admin), 200);
    assert.equal(p1.users.length, 1);
    const p2 = ok(await call('GET', `/users?domain_id=${d.id}&limit=5&marker=${p1.users[0].id}`, admin), 200);
    assert.equal(p2.users.length, 2);
    assert.ok(!p2.users.some((u: { id: string }) => u.id === p1.users[0].id));
  });

  test('/users/{id}/projects lists the projects the user has a role on', async () => {
    const u = await mkUser();
    const p = await mkProject();
    await grant(p.id, u.id, 'reader');
    const body = ok(await call('GET', `/users/${u.id}/projects`, admin), 200);
    assert.deepEqual(body.projects.map((x: { id: string }) => x.id), [p.id]);
  });
});

describe('groups and membership', () => {
  test('create, get, update, members (add, check, list both ways, remove), delete', async () => {
    const g = ok(await call('POST', '/groups', admin, { group: { name: 'devs', description: 'Developers' } }), 201).group;
    assert.equal(g.domain_id, 'default');
    assert.equal(g.description, 'Developers');
    assert.equal(ok(await call('GET', `/groups/${g.id}`, admin), 200).group.name, 'devs');
    assert.deepEqual(ok(await call('GET', '/groups?name=devs', admin), 200).groups.map((x: { id: string }) => x.id), [g.id]);
    assert.equal(ok(await call('PATCH', `/groups/${g.id}`, admin, { group: { description: 'Devs!' } }), 200).group.description, 'Devs!');
    assert.equal((await call('POST', '/groups', admin, { group: { name: 'devs' } })).status, 409);

    const u = await mkUser();
    const other = await mkUser();
    assert.equal((await call('HEAD', `/groups/${g.id}/users/${u.id}`, admin)).status, 404);
    assert.equal((await call('PUT', `/groups/${g.id}/users/${u.id}`, admin)).status, 204);
    assert.equal((await call('PUT', `/groups/${g.id}/users/${u.id}`, admin)).status, 204, 'idempotent');
    assert.equal((await call('HEAD', `/groups/${g.id}/users/${u.id}`, admin)).status, 204);
    assert.equal((await call('GET', `/groups/${g.id}/users/${u.id}`, admin)).status, 204);
    assert.equal((await call('GET', `/groups/${g.id}/users/${other.id}`, admin)).status, 404);
    assert.deepEqual(ok(await call('GET', `/groups/${g.id}/users`, admin), 200).users.map((x: { id: string }) => x.id), [u.id]);
    assert.deepEqual(ok(await call('GET', `/users/${u.id}/groups`, admin), 200).groups.map((x: { id: string }) => x.id), [g.id]);
    assert.equal((await call('PUT', `/groups/${g.id}/users/nope`, admin)).status, 404);

    assert.equal((await call('DELETE', `/groups/${g.id}/users/${u.id}`, admin)).status, 204);
    assert.equal((await call('HEAD', `/groups/${g.id}/users/${u.id}`, admin)).status, 404);
    assert.equal((await call('DELETE', `/groups/${g.id}/users/${u.id}`, admin)).status, 404);
    assert.equal((await call('DELETE', `/groups/${g.id}`, admin)).status, 204);
    assert.equal((await call('GET', `/groups/${g.id}`, admin)).status, 404);
  });

  test('a role granted to a group is in its members\' tokens', async () => {
    const g = ok(await call('POST', '/groups', admin, { group: { name: 'group-roles' } }), 201).group;
    const u = await mkUser();
    const p = await mkProject();
    ok(await call('PUT', `/groups/${g.id}/users/${u.id}`, admin), 204);
    ok(await call('PUT', `/projects/${p.id}/groups/${g.id}/roles/${roleIds.member}`, admin), 204);
    const res = ok201(await auth(pw({ id: u.id }, u.password), { project: { id: p.id } }));
    assert.deepEqual(roleNames(res.json), ['member', 'reader']);
  });
});

describe('roles and implied roles', () => {
  test('the bootstrap roles and their inference chain admin → member → reader', async () => {
    for (const r of ['admin', 'member', 'reader', 'service']) assert.ok(roleIds[r], `role ${r}`);
    const inf = ok(await call('GET', '/role_inferences', admin), 200).role_inferences as { prior_role: { name: string }; implies: { name: string }[] }[];
    const pairs = inf.flatMap((x) => x.implies.map((i) => `${x.prior_role.name}>${i.name}`));
    assert.ok(pairs.includes('admin>member'));
    assert.ok(pairs.includes('member>reader'));
    const adminImplies = ok(await call('GET', `/roles/${roleIds.admin}/implies`, admin), 200).role_inference;
    assert.equal(adminImplies.prior_role.id, roleIds.admin);
    assert.deepEqual(adminImplies.implies.map((r: { name: string }) => r.name), ['member']);
    assert.equal((await call('HEAD', `/roles/${roleIds.member}/implies/${roleIds.reader}`, admin)).status, 204);
    assert.equal((await call('HEAD', `/roles/${roleIds.reader}/implies/${roleIds.member}`, admin)).status, 404);
  });

  test('role CRUD', async () => {
    const r = ok(await call('POST', '/roles', admin, { role: { name: 'auditor', description: 'Reads audit logs' } }), 201).role;
    assert.match(r.id, /^[0-9a-f]{32}$/);
    assert.equal(r.domain_id, null);
    assert.equal(ok(await call('GET', `/roles/${r.id}`, admin), 200).role.name, 'auditor');
    assert.deepEqual(ok(await call('GET', '/roles?name=auditor', admin), 200).roles.map((x: { id: string }) => x.id), [r.id]);
    assert.equal(ok(await call('PATCH', `/roles/${r.id}`, admin, { role: { description: 'changed' } }), 200).role.description, 'changed');
    assert.equal((await call('POST', '/roles', admin, { role: { name: 'auditor' } })).status, 409);
    assert.equal((await call('DELETE', `/roles/${r.id}`, admin)).status, 204);
    assert.equal((await call('GET', `/roles/${r.id}`, admin)).status, 404);
  });

  test('a new implied role is effective at once in existing tokens, and so is its removal', async () => {
    const r = ok(await call('POST', '/roles', admin, { role: { name: 'operator' } }), 201).role;
    const u = await mkUser();
    const p = await mkProject();
    ok(await call('PUT', `/projects/${p.id}/users/${u.id}/roles/${r.id}`, admin), 204);
    const tok = await projectToken(u, p.id);
    assert.deepEqual(roleNames(ok(await validate(tok), 200)), ['operator']);
    const imp = await call('PUT', `/roles/${r.id}/implies/${roleIds.member}`, admin);
    assert.equal(imp.status, 201);
    assert.equal(imp.json.role_inference.prior_role.id, r.id);
    assert.equal(imp.json.role_inference.implies.id, roleIds.member);
    assert.deepEqual(roleNames(ok(await validate(tok), 200)), ['member', 'operator', 'reader'], 'implied roles follow transitively');
    assert.equal((await call('DELETE', `/roles/${r.id}/implies/${roleIds.member}`, admin)).status, 204);
    assert.deepEqual(roleNames(ok(await validate(tok), 200)), ['operator']);
    assert.equal((await call('DELETE', `/roles/${r.id}/implies/${roleIds.member}`, admin)).status, 404);
  });

  test('cycles and self-implication are refused', async () => {
    assert.equal((await call('PUT', `/roles/${roleIds.reader}/implies/${roleIds.admin}`, admin)).status, 403);
    assert.equal((await call('PUT', `/roles/${roleIds.reader}/implies/${roleIds.reader}`, admin)).status, 403);
    const pairs = (ok(await call('GET', '/role_inferences', admin), 200).role_inferences as { prior_role: { id: string } }[]).map((x) => x.prior_role.id);
    assert.ok(!pairs.includes(roleIds.reader!));
  });

  test('a domain-specific role is never effective itself, only what it implies', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'dsr-dom' } }), 201).domain;
    const dsr = ok(await call('POST', '/roles', admin, { role: { name: 'dev', domain_id: d.id } }), 201).role;
    assert.equal(dsr.domain_id, d.id);
    assert.ok(!ok(await call('GET', '/roles', admin), 200).roles.some((x: { id: string }) => x.id === dsr.id), 'global list excludes domain roles');
    assert.ok(ok(await call('GET', `/roles?domain_id=${d.id}`, admin), 200).roles.some((x: { id: string }) => x.id === dsr.id));
    ok(await call('PUT', `/roles/${dsr.id}/implies/${roleIds.member}`, admin), 201);
    const u = await mkUser();
    const p = await mkProject();
    ok(await call('PUT', `/projects/${p.id}/users/${u.id}/roles/${dsr.id}`, admin), 204);
    const res = ok201(await auth(pw({ id: u.id }, u.password), { project: { id: p.id } }));
    assert.deepEqual(roleNames(res.json), ['member', 'reader']);
  });

  test('deleting a role removes it from every assignment', async () => {
    const r = ok(await call('POST', '/roles', admin, { role: { name: 'temp-role' } }), 201).role;
    const u = await mkUser();
    const p = await mkProject();
    ok(await call('PUT', `/projects/${p.id}/users/${u.id}/roles/${r.id}`, admin), 204);
    await grant(p.id, u.id, 'reader');
    ok(await call('DELETE', `/roles/${r.id}`, admin), 204);
    const list = ok(await call('GET', `/role_assignments?user.id=${u.id}`, admin), 200).role_assignments;
    assert.deepEqual(list.map((a: { role: { id: string } }) => a.role.id), [roleIds.reader]);
  });
});

describe('grants', () => {
  test('project grants for a user: PUT, HEAD, GET (check and list), DELETE', async () => {
    const u = await mkUser();
    const p = await mkProject();
    const path = `/projects/${p.id}/users/${u.id}/roles`;
    assert.equal((await call('HEAD', `${path}/${roleIds.member}`, admin)).status, 404);
    assert.equal((await call('PUT', `${path}/${roleIds.member}`, admin)).status, 204);
    assert.equal((await call('PUT', `${path}/${roleIds.member}`, admin)).status, 204, 'idempotent');
    assert.equal((await call('HEAD', `${path}/${roleIds.member}`, admin)).status, 204);
    assert.equal((await call('GET', `${path}/${roleIds.member}`, admin)).status, 204);
    const list = ok(await call('GET', path, admin), 200).roles;
    assert.deepEqual(list.map((r: { id: string }) => r.id), [roleIds.member], 'only direct grants, not implied roles');
    assert.equal((await call('DELETE', `${path}/${roleIds.member}`, admin)).status, 204);
    assert.equal((await call('HEAD', `${path}/${roleIds.member}`, admin)).status, 404);
    assert.equal((await call('DELETE', `${path}/${roleIds.member}`, admin)).status, 404);
    assert.equal((await call('PUT', `/projects/nope/users/${u.id}/roles/${roleIds.member}`, admin)).status, 404);
    assert.equal((await call('PUT', `${path}/nope`, admin)).status, 404);
    assert.equal((await call('PUT', `/projects/${p.id}/users/nope/roles/${roleIds.member}`, admin)).status, 404);
  });

  test('domain grants give a domain-scoped token; system grants give a system-scoped one', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'grant-dom' } }), 201).domain;
    const u = await mkUser();
    ok(await call('PUT', `/domains/${d.id}/users/${u.id}/roles/${roleIds.reader}`, admin), 204);
    assert.deepEqual(ok(await call('GET', `/domains/${d.id}/users/${u.id}/roles`, admin), 200).roles.map((r: { name: string }) => r.name), ['reader']);
    const dt = ok201(await auth(pw({ id: u.id }, u.password), { domain: { id: d.id } }));
    assert.deepEqual(roleNames(dt.json), ['reader']);

    assert.equal((await auth(pw({ id: u.id }, u.password), { system: { all: true } })).status, 401);
    assert.equal((await call('PUT', `/system/users/${u.id}/roles/${roleIds.reader}`, admin)).status, 204);
    assert.equal((await call('HEAD', `/system/users/${u.id}/roles/${roleIds.reader}`, admin)).status, 204);
    assert.deepEqual(ok(await call('GET', `/system/users/${u.id}/roles`, admin), 200).roles.map((r: { name: string }) => r.name), ['reader']);
    const st = ok201(await auth(pw({ id: u.id }, u.password), { system: { all: true } }));
    assert.deepEqual(roleNames(st.json), ['reader']);
    assert.equal((await call('DELETE', `/system/users/${u.id}/roles/${roleIds.reader}`, admin)).status, 204);
    assert.equal((await call('HEAD', `/system/users/${u.id}/roles/${roleIds.reader}`, admin)).status, 404);
  });

  test('inherited grants: on a domain → every project in it; on a project → its subtree, not itself', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'inherit-dom' } }), 201).domain;
    const pd = await mkProject({ domain_id: d.id });
    const u = await mkUser();
    const path = `/OS-INHERIT/domains/${d.id}/users/${u.id}/roles/${roleIds.member}/inherited_to_projects`;
    assert.equal((await call('PUT', path, admin)).status, 204);
    assert.equal((await call('HEAD', path, admin)).status, 204);
    assert.deepEqual(ok(await call('GET', `/OS-INHERIT/domains/${d.id}/users/${u.id}/roles/inherited_to_projects`, admin), 200).roles.map((r: { id: string }) => r.id), [roleIds.member]);
    assert.deepEqual(roleNames(ok201(await auth(pw({ id: u.id }, u.password), { project: { id: pd.id } })).json), ['member', 'reader']);
    assert.equal((await auth(pw({ id: u.id }, u.password), { domain: { id: d.id } })).status, 401, 'an inherited grant is not a role on the domain itself');

    const top = await mkProject();
    const sub = await mkProject({ parent_id: top.id });
    const v = await mkUser();
    ok(await call('PUT', `/OS-INHERIT/projects/${top.id}/users/${v.id}/roles/${roleIds.reader}/inherited_to_projects`, admin), 204);
    assert.deepEqual(roleNames(ok201(await auth(pw({ id: v.id }, v.password), { project: { id: sub.id } })).json), ['reader']);
    assert.deepEqual(ok(await call('GET', `/users/${v.id}/projects`, admin), 200).projects.map((x: { id: string }) => x.id).includes(sub.id), true);
    // role_assignments?effective applies it to the subtree only.
    const eff = ok(await call('GET', `/role_assignments?effective&user.id=${v.id}`, admin), 200).role_assignments as { scope: { project?: { id: string } } }[];
    assert.deepEqual(eff.map((a) => a.scope.project?.id), [sub.id]);
    // System grants cannot be inherited.
    assert.equal((await call('PUT', `/system/users/${v.id}/roles/${roleIds.reader}`, admin)).status, 204);
  });

  test(
    'an inherited project grant is not a role on the project itself (Keystone inherited_to_projects)',
    {},
    async () => {
      const top = await mkProject();
      const sub = await mkProject({ parent_id: top.id });
      const v = await mkUser();
      ok(await call('PUT', `/OS-INHERIT/projects/${top.id}/users/${v.id}/roles/${roleIds.reader}/inherited_to_projects`, admin), 204);
      assert.equal((await auth(pw({ id: v.id }, v.password), { project: { id: sub.id } })).status, 201);
      assert.equal((await auth(pw({ id: v.id }, v.password), { project: { id: top.id } })).status, 401);
    },
  );
});

describe('/v3/role_assignments', () => {
  test('filters, effective expansion (groups, inheritance, implied roles) and include_names', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'ra-dom' } }), 201).domain;
    const p = await mkProject({ domain_id: d.id });
    const u = await mkUser({ domain_id: d.id });
    const g = ok(await call('POST', '/groups', admin, { group: { name: 'ra-group', domain_id: d.id } }), 201).group;
    ok(await call('PUT', `/groups/${g.id}/users/${u.id}`, admin), 204);
    ok(await call('PUT', `/projects/${p.id}/users/${u.id}/roles/${roleIds.member}`, admin), 204);
    ok(await call('PUT', `/domains/${d.id}/groups/${g.id}/roles/${roleIds.reader}`, admin), 204);
    ok(await call('PUT', `/OS-INHERIT/domains/${d.id}/users/${u.id}/roles/${roleIds.admin}/inherited_to_projects`, admin), 204);

    type RA = { role: { id: string; name?: string }; user?: { id: string; name?: string; domain?: { id: string; name?: string } }; group?: { id: string }; scope: Record<string, { id?: string; name?: string; all?: boolean } | string>; links: { assignment: string; membership?: string } };
    const direct = ok(await call('GET', `/role_assignments?user.id=${u.id}`, admin), 200).role_assignments as RA[];
    assert.equal(direct.length, 2);
    const proj = direct.find((a) => a.scope.project)!;
    assert.equal(proj.role.id, roleIds.member);
    assert.deepEqual(proj.scope, { project: { id: p.id } });
    assert.match(proj.links.assignment, new RegExp(`/projects/${p.id}/users/${u.id}/roles/${roleIds.member}$`));
    const inh = direct.find((a) => a.scope['OS-INHERIT:inherited_to'])!;
    assert.equal(inh.role.id, roleIds.admin);
    assert.equal(inh.scope['OS-INHERIT:inherited_to'], 'projects');
    assert.deepEqual(inh.scope.domain, { id: d.id });

    const groupOnly = ok(await call('GET', `/role_assignments?group.id=${g.id}`, admin), 200).role_assignments as RA[];
    assert.deepEqual(groupOnly.map((a) => [a.group?.id, a.role.id]), [[g.id, roleIds.reader]]);
    const onProject = ok(await call('GET', `/role_assignments?scope.project.id=${p.id}`, admin), 200).role_assignments as RA[];
    assert.deepEqual(onProject.map((a) => a.user?.id), [u.id]);
    const byRole = ok(await call('GET', `/role_assignments?role.id=${roleIds.admin}&user.id=${u.id}`, admin), 200).role_assignments as RA[];
    assert.equal(byRole.length, 1);

    const eff = ok(await call('GET', `/role_assignments?effective&user.id=${u.id}`, admin), 200).role_assignments as RA[];
    const effKeys = eff.map((a) => `${a.role.id}@${a.scope.project ? 'p:' + (a.scope.project as { id: string }).id : a.scope.domain ? 'd:' + (a.scope.domain as { id: string }).id : 's'}`).sort();
    const want = [
      `${roleIds.admin}@p:${p.id}`, // inherited from the domain
      `${roleIds.member}@p:${p.id}`, // direct (and implied by admin)
      `${roleIds.reader}@p:${p.id}`, // implied
      `${roleIds.reader}@d:${d.id}`, // via the group
    ].sort();
    assert.deepEqual(effKeys, want);
    assert.ok(eff.every((a) => a.user?.id === u.id && !a.group), 'effective lists users only');
    assert.ok(!eff.some((a) => a.scope['OS-INHERIT:inherited_to']), 'effective lists no inherited markers');
    const viaGroup = eff.find((a) => a.scope.domain)!;
    assert.match(viaGroup.links.membership!, new RegExp(`/groups/${g.id}/users/${u.id}$`));

    const named = ok(await call('GET', `/role_assignments?user.id=${u.id}&scope.project.id=${p.id}&include_names`, admin), 200).role_assignments as RA[];
    assert.equal(named.length, 1);
    assert.deepEqual(named[0]!.role, { id: roleIds.member, name: 'member' });
    assert.deepEqual(named[0]!.user, { id: u.id, name: u.name, domain: { id: d.id, name: 'ra-dom' } });
    assert.deepEqual(named[0]!.scope.project, { id: p.id, name: p.name, domain: { id: d.id, name: 'ra-dom' } });
    const unnamed = ok(await call('GET', `/role_assignments?user.id=${u.id}&scope.project.id=${p.id}&include_names=false`, admin), 200).role_assignments as RA[];
    assert.deepEqual(unnamed[0]!.role, { id: roleIds.member });

    assert.equal((await call('GET', `/role_assignments?effective&group.id=${g.id}`, admin)).status, 400);
    const sys = ok(await call('GET', '/role_assignments?scope.system=all', admin), 200).role_assignments as RA[];
    assert.ok(sys.some((a) => a.user?.id === adminUserId && (a.scope.system as { all: boolean }).all === true));
    assert.ok(sys.every((a) => a.scope.system));
  });
});

describe('regions, services, endpoints and the catalog', () => {
  test('region CRUD with parents; regions are readable by any user', async () => {
    const r = ok(await call('POST', '/regions', admin, { region: { id: 'RegionTwo', description: 'second' } }), 201).region;
    assert.deepEqual({ id: r.id, description: r.description, parent_region_id: r.parent_region_id }, { id: 'RegionTwo', description: 'second', parent_region_id: null });
    assert.equal((await call('POST', '/regions', admin, { region: { id: 'RegionTwo' } })).status, 409);
    const child = ok(await call('PUT', '/regions/RegionTwo-a', admin, { region: { parent_region_id: 'RegionTwo' } }), 201).region;
    assert.equal(child.id, 'RegionTwo-a');
    assert.equal(child.parent_region_id, 'RegionTwo');
    assert.deepEqual(ok(await call('GET', '/regions?parent_region_id=RegionTwo', admin), 200).regions.map((x: { id: string }) => x.id), ['RegionTwo-a']);
    const demo = await c.tokenFor('demo', c.demoPassword(), 'demo');
    assert.equal(ok(await call('GET', '/regions/RegionTwo', demo), 200).region.description, 'second');
    assert.equal(ok(await call('PATCH', '/regions/RegionTwo', admin, { region: { description: 'Second' } }), 200).region.description, 'Second');
    assert.equal((await call('DELETE', '/regions/RegionTwo', admin)).status, 409, 'has a child');
    assert.equal((await call('POST', '/regions', admin, { region: { id: 'r3', parent_region_id: 'nope' } })).status, 400);
    assert.equal((await call('DELETE', '/regions/RegionTwo-a', admin)).status, 204);
    assert.equal((await call('DELETE', '/regions/RegionTwo', admin)).status, 204);
    assert.equal((await call('GET', '/regions/RegionTwo', admin)).status, 404);
  });

  test('a service with an endpoint appears in new tokens\' catalogs; deleting it removes it', async () => {
    ok(await call('POST', '/regions', admin, { region: { id: 'RegionCat' } }), 201);
    const svc = ok(await call('POST', '/services', admin, { service: { type: 'dns', name: 'designate', description: 'DNS' } }), 201).service;
    assert.equal(svc.enabled, true);
    assert.deepEqual(ok(await call('GET', '/services?type=dns', admin), 200).services.map((s: { id: string }) => s.id), [svc.id]);
    const ep = ok(await call('POST', '/endpoints', admin, { endpoint: { service_id: svc.id, interface: 'public', url: 'http://volume.example:8776/v3', region_id: 'RegionCat' } }), 201).endpoint;
    assert.equal(ep.region_id, 'RegionCat');
    assert.equal(ep.region, 'RegionCat');
    assert.equal(ep.enabled, true);
    const internal = ok(await call('POST', '/endpoints', admin, { endpoint: { service_id: svc.id, interface: 'internal', url: 'http://10.0.0.1:8776/v3', region: 'RegionCat' } }), 201).endpoint;
    const pub = ok(await call('GET', `/endpoints?service_id=${svc.id}&interface=public`, admin), 200).endpoints;
    assert.deepEqual(pub.map((e: { id: string }) => e.id), [ep.id]);
    assert.deepEqual(ok(await call('GET', `/endpoints/${internal.id}`, admin), 200).endpoint.url, 'http://10.0.0.1:8776/v3');

    const demo = await c.tokenFor('demo', c.demoPassword(), 'demo');
    const cat = ok(await call('GET', '/auth/catalog', demo), 200).catalog as { id: string; type: string; name: string; endpoints: { id: string; interface: string; url: string; region: string }[] }[];
    const vol = cat.find((s) => s.type === 'dns');
    assert.ok(vol, 'new service in the catalog');
    assert.equal(vol.name, 'designate');
    assert.deepEqual(vol.endpoints.map((e) => `${e.interface} ${e.url} ${e.region}`).sort(), ['internal http://10.0.0.1:8776/v3 RegionCat', 'public http://volume.example:8776/v3 RegionCat']);

    ok(await call('PATCH', `/endpoints/${internal.id}`, admin, { endpoint: { enabled: false } }), 200);
    assert.deepEqual(ok(await call('GET', `/endpoints?service_id=${svc.id}&enabled=false`, admin), 200).endpoints.map((e: { id: string }) => e.id), [internal.id]);
    const cat2 = ok(await call('GET', '/auth/catalog', demo), 200).catalog as typeof cat;
    assert.deepEqual(cat2.find((s) => s.type === 'dns')!.endpoints.map((e) => e.interface), ['public'], 'disabled endpoints leave the catalog');

    assert.equal((await call('DELETE', '/regions/RegionCat', admin)).status, 409, 'endpoints still refer to it');
    assert.equal((await call('DELETE', `/services/${svc.id}`, admin)).status, 204);
    assert.equal((await call('GET', `/endpoints/${ep.id}`, admin)).status, 404, 'endpoints go with their service');
    const cat3 = ok(await call('GET', '/auth/catalog', demo), 200).catalog as typeof cat;
    assert.ok(!cat3.some((s) => s.type === 'dns'));
    assert.equal((await call('DELETE', '/regions/RegionCat', admin)).status, 204);
  });

  test('endpoint validation: interface enum and URL shape', async () => {
    const svc = ok(await call('POST', '/services', admin, { service: { type: 'x-test' } }), 201).service;
    assert.equal((await call('POST', '/endpoints', admin, { endpoint: { service_id: svc.id, interface: 'private', url: 'http://x' } })).status, 400);
    assert.equal((await call('POST', '/endpoints', admin, { endpoint: { service_id: svc.id, interface: 'public', url: 'not a url' } })).status, 400);
    assert.equal((await call('POST', '/endpoints', admin, { endpoint: { service_id: 'nope', interface: 'public', url: 'http://x' } })).status, 400);
    assert.equal(ok(await call('PATCH', `/services/${svc.id}`, admin, { service: { name: 'renamed' } }), 200).service.name, 'renamed');
    ok(await call('DELETE', `/services/${svc.id}`, admin), 204);
  });
});

describe('application credentials', () => {
  let u: { id: string; name: string; password: string };
  let p: { id: string };
  let userTok: string;
  before(async () => {
    u = await mkUser();
    p = await mkProject();
    await grant(p.id, u.id, 'member');
    userTok = await projectToken(u, p.id);
  });
  const acAuth = (ac: Record<string, unknown>, scope?: unknown) => auth({ methods: ['application_credential'], application_credential: ac }, scope);

  test('create shows the secret once; get and list never do', async () => {
    const res = await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'ci', description: 'CI runner' } });
    const ac = ok(res, 201).application_credential;
    assert.match(ac.id, /^[0-9a-f]{32}$/);
    assert.equal(typeof ac.secret, 'string');
    assert.ok(ac.secret.length >= 40);
    assert.equal(ac.project_id, p.id);
    assert.equal(ac.unrestricted, false);
    assert.equal(ac.expires_at, null);
    assert.deepEqual(ac.roles.map((r: { name: string }) => r.name).sort(), ['member', 'reader']);
    const got = await call('GET', `/users/${u.id}/application_credentials/${ac.id}`, userTok);
    assert.equal(got.status, 200);
    assert.ok(!('secret' in got.json.application_credential));
    assert.ok(!got.text.includes(ac.secret));
    const list = await call('GET', `/users/${u.id}/application_credentials`, userTok);
    assert.ok(!list.text.includes(ac.secret));
    assert.deepEqual(list.json.application_credentials.map((x: { id: string }) => x.id), [ac.id]);
    assert.deepEqual(ok(await call('GET', `/users/${u.id}/application_credentials?name=ci`, userTok), 200).application_credentials.length, 1);
    const row = await c.cloud.database.db.selectFrom('id_app_creds').selectAll().where('id', '=', ac.id).executeTakeFirst();
    assert.ok(!JSON.stringify(row).includes(ac.secret), 'the secret is stored hashed');
    assert.equal((await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'ci' } })).status, 409);
  });

  test('authenticating with it (by id, or by name + user) gives a token bound to its project', async () => {
    const ac = ok(await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'auth-ac' } }), 201).application_credential;
    const res = await acAuth({ id: ac.id, secret: ac.secret });
    assert.equal(res.status, 201, res.text);
    const t = res.json.token;
    assert.deepEqual(t.methods, ['application_credential']);
    assert.equal(t.user.id, u.id);
    assert.equal(t.project.id, p.id);
    assert.deepEqual(t.application_credential, { id: ac.id, name: 'auth-ac', restricted: true });
    assert.deepEqual(roleNames(res.json), ['member', 'reader']);
    const byName = await acAuth({ name: 'auth-ac', secret: ac.secret, user: { id: u.id } });
    assert.equal(byName.status, 201, byName.text);
    const byUserName = await acAuth({ name: 'auth-ac', secret: ac.secret, user: { name: u.name, domain: { id: 'default' } } });
    assert.equal(byUserName.status, 201, byUserName.text);
    assert.equal((await acAuth({ id: ac.id, secret: ac.secret + 'x' })).status, 401);
    assert.equal((await acAuth({ id: 'nope', secret: ac.secret })).status, 401);
    // Bound to its project: another scope is refused.
    const other = await mkProject();
    await grant(other.id, u.id, 'member');
    assert.equal((await acAuth({ id: ac.id, secret: ac.secret }, { project: { id: other.id } })).status, 401);
    // Its tokens cannot be exchanged for other tokens.
    assert.equal((await auth({ methods: ['token'], token: { id: subject(res) } })).status, 401);
  });

  test('a restricted subset of roles: only those are in its tokens; a role the user lacks is refused', async () => {
    const ac = ok(await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'ro', roles: [{ name: 'reader' }] } }), 201).application_credential;
    assert.deepEqual(ac.roles.map((r: { name: string }) => r.name), ['reader']);
    const res = ok201(await acAuth({ id: ac.id, secret: ac.secret }));
    assert.deepEqual(roleNames(res.json), ['reader']);
    const byId = ok(await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'ro2', roles: [{ id: roleIds.reader }] } }), 201).application_credential;
    assert.deepEqual(byId.roles.map((r: { id: string }) => r.id), [roleIds.reader]);
    const refused = await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'greedy', roles: [{ name: 'admin' }] } });
    assert.equal(refused.status, 403);
    assert.equal((await call('GET', `/users/${u.id}/application_credentials?name=greedy`, userTok)).json.application_credentials.length, 0);
    // A restricted credential's token cannot create more credentials.
    const acTok = subject(res);
    assert.equal((await call('POST', `/users/${u.id}/application_credentials`, acTok, { application_credential: { name: 'child' } })).status, 403);
  });

  test('expiry: in the past is refused; once expired, auth and its tokens fail', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    assert.equal((await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'old', expires_at: past } })).status, 400);
    assert.equal((await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'bad-date', expires_at: 'tomorrow' } })).status, 400);
    const soon = new Date(Date.now() + 1200).toISOString();
    const ac = ok(await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'short', expires_at: soon } }), 201).application_credential;
    assert.match(ac.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    const res = ok201(await acAuth({ id: ac.id, secret: ac.secret }));
    const tok = subject(res);
    assert.ok(Date.parse(res.json.token.expires_at) <= Date.parse(soon) + 1, 'a token never outlives its credential');
    assert.equal((await call('GET', '/auth/projects', tok)).status, 200);
    await sleep(Date.parse(soon) - Date.now() + 50);
    assert.equal((await acAuth({ id: ac.id, secret: ac.secret })).status, 401);
    assert.equal((await call('GET', '/auth/projects', tok)).status, 401);
  });

  test('deleting it kills its tokens', async () => {
    const ac = ok(await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'doomed-ac' } }), 201).application_credential;
    const tok = subject(ok201(await acAuth({ id: ac.id, secret: ac.secret })));
    assert.equal((await call('GET', '/auth/projects', tok)).status, 200);
    assert.equal((await call('DELETE', `/users/${u.id}/application_credentials/${ac.id}`, userTok)).status, 204);
    assert.equal((await call('GET', '/auth/projects', tok)).status, 401);
    assert.equal((await validate(tok)).status, 404);
    assert.equal((await acAuth({ id: ac.id, secret: ac.secret })).status, 401);
    assert.equal((await call('GET', `/users/${u.id}/application_credentials/${ac.id}`, userTok)).status, 404);
    // The user's own token is unaffected.
    assert.equal((await call('GET', '/auth/projects', userTok)).status, 200);
  });

  test('only the owner can create one, with a project-scoped token', async () => {
    assert.equal((await call('POST', `/users/${u.id}/application_credentials`, admin, { application_credential: { name: 'by-admin' } })).status, 403);
    const unscoped = subject(ok201(await auth(pw({ id: u.id }, u.password))));
    assert.equal((await call('POST', `/users/${u.id}/application_credentials`, unscoped, { application_credential: { name: 'unscoped' } })).status, 400);
    assert.equal((await call('POST', `/users/${u.id}/application_credentials`, userTok, { application_credential: { name: 'x', bogus: 1 } })).status, 400);
  });
});

describe('credentials and EC2', () => {
  let u: { id: string; name: string; password: string };
  let p: { id: string };
  let userTok: string;
  before(async () => {
    u = await mkUser();
    p = await mkProject();
    await grant(p.id, u.id, 'member');
    userTok = await projectToken(u, p.id);
  });

  test('generic credentials: CRUD by the owner; blobs are encrypted at rest; others see nothing', async () => {
    const secretBlob = 'otpauth-seed-JBSWY3DPEHPK3PXP';
    const cr = ok(await call('POST', '/credentials', userTok, { credential: { user_id: u.id, type: 'totp', blob: secretBlob } }), 201).credential;
    assert.match(cr.id, /^[0-9a-f]{32}$/);
    assert.equal(cr.blob, secretBlob);
    assert.equal(cr.project_id, null);
    const row = await c.cloud.database.db.selectFrom('id_credentials').selectAll().where('id', '=', cr.id).executeTakeFirst();
    assert.ok(row && !row.encrypted_blob.includes(secretBlob), 'stored encrypted');
    assert.equal(ok(await call('GET', `/credentials/${cr.id}`, userTok), 200).credential.blob, secretBlob);
    const mine = ok(await call('GET', '/credentials', userTok), 200).credentials;
    assert.deepEqual(mine.map((x: { id: string }) => x.id), [cr.id]);
    assert.deepEqual(ok(await call('GET', `/credentials?user_id=${u.id}&type=totp`, admin), 200).credentials.map((x: { id: string }) => x.id), [cr.id]);
    assert.equal(ok(await call('PATCH', `/credentials/${cr.id}`, userTok, { credential: { blob: 'new-blob' } }), 200).credential.blob, 'new-blob');
    assert.equal((await call('PATCH', `/credentials/${cr.id}`, userTok, { credential: { user_id: demoUserId } })).status, 403);
    const demo = await c.tokenFor('demo', c.demoPassword(), 'demo');
    assert.equal((await call('GET', `/credentials/${cr.id}`, demo)).status, 403);
    const demoList = await call('GET', '/credentials', demo);
    assert.equal(demoList.status, 200);
    assert.ok(!demoList.text.includes(cr.id), 'other users\' credentials never listed');
    assert.equal((await call('GET', `/credentials?user_id=${u.id}`, demo)).status, 403);
    assert.equal((await call('POST', '/credentials', demo, { credential: { user_id: u.id, type: 'totp', blob: 'x' } })).status, 403);
    assert.equal((await call('DELETE', `/credentials/${cr.id}`, demo)).status, 403);
    assert.equal((await call('DELETE', `/credentials/${cr.id}`, userTok)).status, 204);
    assert.equal((await call('GET', `/credentials/${cr.id}`, userTok)).status, 404);
  });

  test('ec2-type credentials: id is sha256(access); need JSON blob with access and a project', async () => {
    const access = 'AKIAEXAMPLEACCESS1';
    const cr = ok(await call('POST', '/credentials', userTok, { credential: { user_id: u.id, project_id: p.id, type: 'ec2', blob: JSON.stringify({ access, secret: 's3cr3t' }) } }), 201).credential;
    assert.equal(cr.id, createHash('sha256').update(access).digest('hex'));
    assert.equal((await call('POST', '/credentials', userTok, { credential: { user_id: u.id, project_id: p.id, type: 'ec2', blob: JSON.stringify({ access, secret: 'x' }) } })).status, 409);
    assert.equal((await call('POST', '/credentials', userTok, { credential: { user_id: u.id, type: 'ec2', blob: JSON.stringify({ access: 'a2', secret: 'x' }) } })).status, 400);
    assert.equal((await call('POST', '/credentials', userTok, { credential: { user_id: u.id, project_id: p.id, type: 'ec2', blob: 'not json' } })).status, 400);
    // It is visible through OS-EC2 as well.
    const ec2 = ok(await call('GET', `/users/${u.id}/credentials/OS-EC2/${access}`, userTok), 200).credential;
    assert.equal(ec2.secret, 's3cr3t');
    assert.equal(ec2.tenant_id, p.id);
    ok(await call('DELETE', `/credentials/${cr.id}`, userTok), 204);
  });

  test('OS-EC2: create, get, list, delete; only on projects where the user has a role', async () => {
    const created = ok(await call('POST', `/users/${u.id}/credentials/OS-EC2`, userTok, { tenant_id: p.id }), 201).credential;
    assert.match(created.access, /^[0-9a-f]{32}$/);
    assert.match(created.secret, /^[0-9a-f]{32}$/);
    assert.equal(created.user_id, u.id);
    assert.equal(created.tenant_id, p.id);
    assert.equal(created.trust_id, null);
    assert.match(created.links.self, new RegExp(`/users/${u.id}/credentials/OS-EC2/${created.access}$`));
    const list = ok(await call('GET', `/users/${u.id}/credentials/OS-EC2`, userTok), 200).credentials;
    assert.ok(list.some((x: { access: string; secret: string }) => x.access === created.access && x.secret === created.secret));
    const got = ok(await call('GET', `/users/${u.id}/credentials/OS-EC2/${created.access}`, userTok), 200).credential;
    assert.equal(got.secret, created.secret);
    // Without a body project, the token's project is used.
    const implicit = ok(await call('POST', `/users/${u.id}/credentials/OS-EC2`, userTok, {}), 201).credential;
    assert.equal(implicit.tenant_id, p.id);
    assert.equal((await call('POST', `/users/${u.id}/credentials/OS-EC2`, userTok, { tenant_id: demoProjectId })).status, 403);
    assert.equal((await call('POST', `/users/${u.id}/credentials/OS-EC2`, userTok, { tenant_id: 'nope' })).status, 404);
    assert.equal((await call('GET', `/users/${demoUserId}/credentials/OS-EC2/${created.access}`, admin)).status, 404, 'another user\'s access key');
    assert.equal((await call('DELETE', `/users/${u.id}/credentials/OS-EC2/${implicit.access}`, userTok)).status, 204);
    assert.equal((await call('GET', `/users/${u.id}/credentials/OS-EC2/${implicit.access}`, userTok)).status, 404);
    assert.equal((await call('DELETE', `/users/${u.id}/credentials/OS-EC2/${implicit.access}`, userTok)).status, 404);
  });

  describe('/v3/ec2tokens (SigV4)', () => {
    let access: string;
    let secret: string;
    before(async () => {
      const created = ok(await call('POST', `/users/${u.id}/credentials/OS-EC2`, userTok, { tenant_id: p.id }), 201).credential;
      access = created.access;
      secret = created.secret;
    });
    const amzNow = (d = new Date()) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    /** A signed S3 GET as the S3 API would forward it to Keystone. */
    function signed(opts: { secretKey?: string; amzDate?: string; path?: string; accessKey?: string } = {}) {
      const amzDate = opts.amzDate ?? amzNow();
      const date = amzDate.slice(0, 8);
      const scope = { date, region: 'RegionOne', service: 's3' };
      const path = opts.path ?? '/bucket/object.txt';
      const headers: Record<string, string> = { host: 'localhost:8701', 'x-amz-date': amzDate, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
      const signedHeaders = ['host', 'x-amz-content-sha256', 'x-amz-date'];
      const signature = signV4({ method: 'GET', path, query: [['list-type', '2']], headers, signedHeaders, payloadHash: 'UNSIGNED-PAYLOAD', amzDate, scope, service: 's3' }, opts.secretKey ?? secret);
      const acc = opts.accessKey ?? access;
      return {
        access: acc,
        signature,
        host: 'localhost:8701',
        verb: 'GET',
        path,
        params: { 'list-type': '2' },
        headers: { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${acc}/${date}/RegionOne/s3/aws4_request, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}` },
        body_hash: 'UNSIGNED-PAYLOAD',
      };
    }

    test('a correct signature yields a project-scoped token for the key\'s owner', async () => {
      const res = await c.inject('POST', `${ID}/ec2tokens`, { body: { credentials: signed() } });
      assert.equal(res.status, 200, res.text);
      const tok = subject(res);
      assert.equal(res.json.token.user.id, u.id);
      assert.equal(res.json.token.project.id, p.id);
      assert.deepEqual(res.json.token.methods, ['ec2credential']);
      assert.deepEqual(roleNames(res.json), ['member', 'reader']);
      assert.equal((await call('GET', '/auth/projects', tok)).status, 200, 'the token works');
      // The legacy "credential" key is accepted too.
      assert.equal((await c.inject('POST', `${ID}/ec2tokens`, { body: { credential: signed() } })).status, 200);
    });

    test('a wrong signature, wrong secret, tampered path or unknown key: 401 and no token', async () => {
      const good = signed();
      const flipped = { ...good, signature: good.signature.slice(0, -1) + (good.signature.endsWith('0') ? '1' : '0') };
      const cases = [flipped, signed({ secretKey: secret + 'x' }), { ...good, path: '/bucket/other.txt' }, signed({ accessKey: 'unknown-access' }), { ...good, signature: '' }];
      for (const cred of cases) {
        const res = await c.inject('POST', `${ID}/ec2tokens`, { body: { credentials: cred } });
        assert.equal(res.status, 401, JSON.stringify(cred).slice(0, 80));
        assert.equal(res.headers['x-subject-token'], undefined);
      }
      assert.equal((await c.inject('POST', `${ID}/ec2tokens`, { body: { credentials: { access } } })).status, 400);
    });

    test('a disabled owner gets no token', async () => {
      const v = await mkUser();
      await grant(p.id, v.id, 'member');
      const vt = await projectToken(v, p.id);
      const kp = ok(await call('POST', `/users/${v.id}/credentials/OS-EC2`, vt, { tenant_id: p.id }), 201).credential;
      const amzDate = amzNow();
      const date = amzDate.slice(0, 8);
      const headers = { host: 'h', 'x-amz-date': amzDate };
      const sig = signV4({ method: 'GET', path: '/', query: [], headers, signedHeaders: ['host', 'x-amz-date'], payloadHash: 'UNSIGNED-PAYLOAD', amzDate, scope: { date, region: 'RegionOne', service: 's3' }, service: 's3' }, kp.secret);
      const cred = {
        access: kp.access, signature: sig, host: 'h', verb: 'GET', path: '/', params: {},
        headers: { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${kp.access}/${date}/RegionOne/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${sig}` },
      };
      assert.equal((await c.inject('POST', `${ID}/ec2tokens`, { body: { credentials: cred } })).status, 200);
      ok(await call('PATCH', `/users/${v.id}`, admin, { user: { enabled: false } }), 200);
      assert.equal((await c.inject('POST', `${ID}/ec2tokens`, { body: { credentials: cred } })).status, 401);
    });

    test(
      'a signature whose X-Amz-Date is long past is refused (replay protection, Keystone auth_ttl = 15 min)',
      {},
      async () => {
        const old = signed({ amzDate: amzNow(new Date(Date.now() - 2 * 3600_000)) });
        assert.equal((await c.inject('POST', `${ID}/ec2tokens`, { body: { credentials: old } })).status, 401);
      },
    );
  });
});
