/**
 * Identity security properties: authentication failures that reveal nothing,
 * revocation events that take effect at once, tenant isolation and
 * read-only roles, and account lockout.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startInprocCloud, ID, type InprocCloud, type InjectResponse } from '../helpers/inproc.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type M = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

let c: InprocCloud;
let admin: string;
const roleIds: Record<string, string> = {};
const call = (method: M, path: string, token?: string, body?: unknown, headers?: Record<string, string>) => c.inject(method, `${ID}${path}`, { token, body, headers });
const ok = (res: InjectResponse, status: number, what = '') => {
  assert.equal(res.status, status, `${what} expected ${status}, got ${res.status}: ${res.text}`);
  return res.json;
};
const pwAuth = (user: Record<string, unknown>, password: string, scope?: unknown) =>
  c.inject('POST', `${ID}/auth/tokens?nocatalog`, { body: { auth: { identity: { methods: ['password'], password: { user: { ...user, password } } }, ...(scope ? { scope } : {}) } } });
const tokenOf = (res: InjectResponse) => {
  assert.equal(res.status, 201, res.text);
  return res.headers['x-subject-token'] as string;
};
/** An authenticated call that every valid token may make. */
const works = async (token: string) => (await call('GET', '/auth/projects', token)).status;
/**
 * Revocation events are recorded with millisecond precision and cover tokens
 * issued up to and including that millisecond; wait past it before minting
 * the "new" token a test expects to work.
 */
const tick = () => sleep(3);

let n = 0;
async function mkUser(extra: Record<string, unknown> = {}) {
  const name = `sec-user${++n}`;
  const password = `Pw-${name}-${n * 7919}`;
  const u = ok(await call('POST', '/users', admin, { user: { name, password, ...extra } }), 201, 'create user').user as { id: string; domain_id: string };
  return { id: u.id, name, password, domain_id: u.domain_id };
}
async function mkProject(extra: Record<string, unknown> = {}) {
  return ok(await call('POST', '/projects', admin, { project: { name: `sec-project${++n}`, ...extra } }), 201, 'create project').project as { id: string; name: string; domain_id: string };
}
const grant = async (projectId: string, userId: string, role: string) =>
  ok(await call('PUT', `/projects/${projectId}/users/${userId}/roles/${roleIds[role]}`, admin), 204, 'grant');
const projectToken = async (u: { id: string; password: string }, projectId: string) => tokenOf(await pwAuth({ id: u.id }, u.password, { project: { id: projectId } }));

/** Row counts of every identity table, to prove refused requests changed nothing. */
const TABLES = ['id_domains', 'id_projects', 'id_users', 'id_groups', 'id_group_members', 'id_roles', 'id_implied_roles', 'id_assignments', 'id_regions', 'id_services', 'id_endpoints', 'id_app_creds', 'id_credentials'];
const snapshot = async () => Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await c.count(t)] as const)));
const projectRow = async (id: string) => c.cloud.database.db.selectFrom('id_projects').selectAll().where('id', '=', id).executeTakeFirst();

before(async () => {
  c = await startInprocCloud({ config: { identity: { lockoutFailureAttempts: 3, lockoutDurationSeconds: 1 } } });
  admin = await c.adminToken();
  for (const r of ok(await call('GET', '/roles', admin), 200).roles as { id: string; name: string }[]) roleIds[r.name] = r.id;
});
after(async () => {
  await c?.stop();
});

describe('authentication failures are indistinguishable', () => {
  test('wrong password, unknown user, disabled user, passwordless user, disabled domain: the identical 401 body', async () => {
    const good = await mkUser();
    const disabled = await mkUser();
    ok(await call('PATCH', `/users/${disabled.id}`, admin, { user: { enabled: false } }), 200);
    const nopw = ok(await call('POST', '/users', admin, { user: { name: 'sec-nopw' } }), 201).user;
    const d = ok(await call('POST', '/domains', admin, { domain: { name: 'sec-off-dom' } }), 201).domain;
    const inOffDomain = await mkUser({ domain_id: d.id });
    ok(await call('PATCH', `/domains/${d.id}`, admin, { domain: { enabled: false } }), 200);

    const attempts: [string, InjectResponse][] = [
      ['wrong password (by id)', await pwAuth({ id: good.id }, 'not-the-password')],
      ['wrong password (by name)', await pwAuth({ name: good.name, domain: { id: 'default' } }, 'not-the-password')],
      ['unknown user id', await pwAuth({ id: 'f'.repeat(32) }, 'whatever')],
      ['unknown user name', await pwAuth({ name: 'no-such-user', domain: { id: 'default' } }, 'whatever')],
      ['unknown domain name', await pwAuth({ name: good.name, domain: { name: 'No Such Domain' } }, good.password)],
      ['disabled user, right password', await pwAuth({ id: disabled.id }, disabled.password)],
      ['disabled user, wrong password', await pwAuth({ id: disabled.id }, 'nope')],
      ['user without a password', await pwAuth({ id: nopw.id }, '')],
      ['user in a disabled domain', await pwAuth({ id: inOffDomain.id }, inOffDomain.password)],
    ];
    const reference = attempts[0]![1];
    assert.equal(reference.status, 401);
    assert.deepEqual(reference.json, { error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' } });
    for (const [what, res] of attempts) {
      assert.equal(res.status, 401, what);
      assert.equal(res.text, reference.text, `${what}: body differs`);
      assert.equal(res.headers['x-subject-token'], undefined, what);
      assert.equal(res.headers['www-authenticate'], reference.headers['www-authenticate'], what);
      assert.equal(res.headers['content-type'], reference.headers['content-type'], what);
    }
    // And the right password still works for the good user.
    assert.equal((await pwAuth({ id: good.id }, good.password)).status, 201);
  });

  test('an unknown user costs a password hash too (no fast path that reveals existence)', async () => {
    const u = await mkUser();
    const reset = () => c.cloud.database.db.updateTable('id_users').set({ failed_auth_count: 0, failed_auth_at: null }).where('id', '=', u.id).execute();
    /** Median wall time of 9 runs of `f` (with `after` run untimed between runs). */
    const time = async (f: () => Promise<unknown>, after: () => Promise<unknown> = async () => {}) => {
      const ts: number[] = [];
      for (let i = 0; i < 9; i++) {
        const t0 = process.hrtime.bigint();
        await f();
        ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
        await after();
      }
      return ts.sort((a, b) => a - b)[4]!;
    };
    const cheap = () => c.inject('POST', `${ID}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: 'garbage' } } } } });
    await pwAuth({ id: 'x'.repeat(32) }, 'warm-up');
    const baseline = await time(cheap); // a 401 that hashes nothing
    const unknown = await time(() => pwAuth({ id: 'x'.repeat(32) }, 'a'));
    const wrong = await time(() => pwAuth({ id: u.id }, 'bad'), reset);
    const msg = `unknown user ${unknown.toFixed(2)} ms, wrong password ${wrong.toFixed(2)} ms, no hash ${baseline.toFixed(2)} ms`;
    assert.ok(wrong - baseline > 0.3, `the bcrypt cost should be measurable: ${msg}`);
    assert.ok(unknown - baseline >= (wrong - baseline) / 2, `an unknown user must cost about as much as a wrong password: ${msg}`);
  });
});

describe('revocation: old tokens stop working at once, new ones work', () => {
  let p: { id: string };
  before(async () => {
    p = await mkProject();
  });

  test('self-service password change (POST /users/{id}/password)', async () => {
    const u = await mkUser();
    await grant(p.id, u.id, 'member');
    const scoped = await projectToken(u, p.id);
    const unscoped = tokenOf(await pwAuth({ id: u.id }, u.password));
    assert.equal(await works(scoped), 200);
    // A wrong original password changes nothing and revokes nothing.
    const wrong = await call('POST', `/users/${u.id}/password`, undefined, { user: { original_password: 'wrong', password: 'x' } });
    assert.equal(wrong.status, 401);
    assert.equal(await works(scoped), 200);
    const res = await call('POST', `/users/${u.id}/password`, undefined, { user: { original_password: u.password, password: 'Brand-New-Pw-1' } });
    assert.equal(res.status, 204, res.text);
    assert.equal(await works(scoped), 401);
    assert.equal(await works(unscoped), 401);
    assert.equal((await pwAuth({ id: u.id }, u.password)).status, 401, 'the old password is gone');
    await tick();
    const fresh = await projectToken({ id: u.id, password: 'Brand-New-Pw-1' }, p.id);
    assert.equal(await works(fresh), 200);
  });

  test('password change by an admin (PATCH /users/{id})', async () => {
    const u = await mkUser();
    await grant(p.id, u.id, 'member');
    const old = await projectToken(u, p.id);
    ok(await call('PATCH', `/users/${u.id}`, admin, { user: { password: 'Admin-Set-Pw-2' } }), 200);
    assert.equal(await works(old), 401);
    await tick();
    assert.equal(await works(await projectToken({ id: u.id, password: 'Admin-Set-Pw-2' }, p.id)), 200);
  });

  test('an update that does not touch the password or enabled flag revokes nothing', async () => {
    const u = await mkUser();
    await grant(p.id, u.id, 'member');
    const tok = await projectToken(u, p.id);
    ok(await call('PATCH', `/users/${u.id}`, admin, { user: { description: 'harmless', email: 'x@example.org' } }), 200);
    assert.equal(await works(tok), 200);
  });

  test('user disable (and re-enabling does not resurrect old tokens)', async () => {
    const u = await mkUser();
    await grant(p.id, u.id, 'member');
    const old = await projectToken(u, p.id);
    ok(await call('PATCH', `/users/${u.id}`, admin, { user: { enabled: false } }), 200);
    assert.equal(await works(old), 401);
    assert.equal((await call('GET', '/auth/tokens', admin, undefined, { 'x-subject-token': old })).status, 404);
    assert.equal((await pwAuth({ id: u.id }, u.password)).status, 401);
    ok(await call('PATCH', `/users/${u.id}`, admin, { user: { enabled: true } }), 200);
    assert.equal(await works(old), 401, 'still revoked after re-enabling');
    await tick();
    assert.equal(await works(await projectToken(u, p.id)), 200);
  });

  test('user deletion', async () => {
    const u = await mkUser();
    await grant(p.id, u.id, 'member');
    const old = await projectToken(u, p.id);
    ok(await call('DELETE', `/users/${u.id}`, admin), 204);
    assert.equal(await works(old), 401);
  });

  test('role assignment removal: tokens on that project only', async () => {
    const u = await mkUser();
    const other = await mkProject();
    await grant(p.id, u.id, 'member');
    await grant(other.id, u.id, 'member');
    const onP = await projectToken(u, p.id);
    const onOther = await projectToken(u, other.id);
    ok(await call('DELETE', `/projects/${p.id}/users/${u.id}/roles/${roleIds.member}`, admin), 204);
    assert.equal(await works(onP), 401);
    assert.equal(await works(onOther), 200, 'tokens on other projects are unaffected');
    await tick();
    assert.equal((await pwAuth({ id: u.id }, u.password, { project: { id: p.id } })).status, 401, 'no role left on the project');
    await grant(p.id, u.id, 'reader');
    await tick();
    assert.equal(await works(await projectToken(u, p.id)), 200);
    assert.equal(await works(onP), 401, 'the old token stays dead after a new grant');
  });

  test('role deletion revokes its holders\' tokens', async () => {
    const u = await mkUser();
    await grant(p.id, u.id, 'member');
    const custom = ok(await call('POST', '/roles', admin, { role: { name: `sec-extra-${n}` } }), 201).role;
    ok(await call('PUT', `/projects/${p.id}/users/${u.id}/roles/${custom.id}`, admin), 204);
    const tok = await projectToken(u, p.id);
    ok(await call('DELETE', `/roles/${custom.id}`, admin), 204);
    // Role deletion revokes the holders' tokens outright.
    assert.equal(await works(tok), 401);
  });

  test('group membership removal, and group deletion', async () => {
    const u = await mkUser();
    const g = ok(await call('POST', '/groups', admin, { group: { name: `sec-g${++n}` } }), 201).group;
    ok(await call('PUT', `/groups/${g.id}/users/${u.id}`, admin), 204);
    ok(await call('PUT', `/projects/${p.id}/groups/${g.id}/roles/${roleIds.member}`, admin), 204);
    const t1 = await projectToken(u, p.id);
    ok(await call('DELETE', `/groups/${g.id}/users/${u.id}`, admin), 204);
    assert.equal(await works(t1), 401);
    await tick();
    assert.equal((await pwAuth({ id: u.id }, u.password, { project: { id: p.id } })).status, 401);
    ok(await call('PUT', `/groups/${g.id}/users/${u.id}`, admin), 204);
    await tick();
    const t2 = await projectToken(u, p.id);
    assert.equal(await works(t2), 200);
    ok(await call('DELETE', `/groups/${g.id}`, admin), 204);
    assert.equal(await works(t2), 401);
  });

  test('revoking a group\'s role assignment revokes its members\' tokens', async () => {
    const u = await mkUser();
    const g = ok(await call('POST', '/groups', admin, { group: { name: `sec-g${++n}` } }), 201).group;
    ok(await call('PUT', `/groups/${g.id}/users/${u.id}`, admin), 204);
    ok(await call('PUT', `/projects/${p.id}/groups/${g.id}/roles/${roleIds.member}`, admin), 204);
    const tok = await projectToken(u, p.id);
    ok(await call('DELETE', `/projects/${p.id}/groups/${g.id}/roles/${roleIds.member}`, admin), 204);
    assert.equal(await works(tok), 401);
  });

  test('project disable: its tokens die, the user\'s other tokens live; re-enable needs new tokens', async () => {
    const u = await mkUser();
    const q = await mkProject();
    const other = await mkProject();
    await grant(q.id, u.id, 'member');
    await grant(other.id, u.id, 'member');
    const onQ = await projectToken(u, q.id);
    const onOther = await projectToken(u, other.id);
    const unscoped = tokenOf(await pwAuth({ id: u.id }, u.password));
    ok(await call('PATCH', `/projects/${q.id}`, admin, { project: { enabled: false } }), 200);
    assert.equal(await works(onQ), 401);
    assert.equal(await works(onOther), 200);
    assert.equal(await works(unscoped), 200);
    assert.equal((await pwAuth({ id: u.id }, u.password, { project: { id: q.id } })).status, 401);
    ok(await call('PATCH', `/projects/${q.id}`, admin, { project: { enabled: true } }), 200);
    assert.equal(await works(onQ), 401, 'old tokens stay revoked');
    await tick();
    assert.equal(await works(await projectToken(u, q.id)), 200);
  });

  test('domain disable: its users\' tokens die and they cannot authenticate', async () => {
    const d = ok(await call('POST', '/domains', admin, { domain: { name: `sec-dom${++n}` } }), 201).domain;
    const q = await mkProject({ domain_id: d.id });
    const u = await mkUser({ domain_id: d.id });
    await grant(q.id, u.id, 'member');
    const tok = await projectToken(u, q.id);
    ok(await call('PATCH', `/domains/${d.id}`, admin, { domain: { enabled: false } }), 200);
    assert.equal(await works(tok), 401);
    assert.equal((await pwAuth({ id: u.id }, u.password)).status, 401);
  });

  test('explicit revoke (DELETE /auth/tokens) kills exactly that token', async () => {
    const u = await mkUser();
    await grant(p.id, u.id, 'member');
    const a = await projectToken(u, p.id);
    const b = await projectToken(u, p.id);
    ok(await call('DELETE', '/auth/tokens', admin, undefined, { 'x-subject-token': a }), 204);
    assert.equal(await works(a), 401);
    assert.equal(await works(b), 200);
    assert.equal(await works(await projectToken(u, p.id)), 200);
  });

  test('revocations survive a restart of the token cache (they are stored)', async () => {
    const u = await mkUser();
    await grant(p.id, u.id, 'member');
    const tok = await projectToken(u, p.id);
    ok(await call('DELETE', '/auth/tokens', admin, undefined, { 'x-subject-token': tok }), 204);
    await c.cloud.identity.tokens.loadRevocations();
    assert.equal(await c.count('id_revocations') > 0, true);
    assert.equal(await works(tok), 401);
  });
});

describe('tenant isolation and read-only roles', () => {
  let alice: Awaited<ReturnType<typeof mkUser>>;
  let bob: Awaited<ReturnType<typeof mkUser>>;
  let carol: Awaited<ReturnType<typeof mkUser>>; // admin role on project A only
  let dave: Awaited<ReturnType<typeof mkUser>>; // reader on the cloud's admin project
  let rita: Awaited<ReturnType<typeof mkUser>>; // reader on project A
  let pa: { id: string; name: string };
  let pb: { id: string; name: string };
  let aliceTok: string;
  let bobTok: string;
  let carolTok: string;
  let daveTok: string;
  let ritaTok: string;
  let bobCred: string;
  let bobAc: string;
  let bobEc2: string;
  let adminProjectId: string;
  let otherDomain: string;

  before(async () => {
    pa = await mkProject({ tags: ['a'] });
    pb = await mkProject({ tags: ['b'] });
    alice = await mkUser();
    bob = await mkUser();
    carol = await mkUser();
    dave = await mkUser();
    rita = await mkUser();
    await grant(pa.id, alice.id, 'member');
    await grant(pb.id, bob.id, 'member');
    await grant(pa.id, carol.id, 'admin');
    await grant(pa.id, rita.id, 'reader');
    adminProjectId = (ok(await call('GET', '/projects?name=admin', admin), 200).projects as { id: string }[])[0]!.id;
    await grant(adminProjectId, dave.id, 'reader');
    aliceTok = await projectToken(alice, pa.id);
    bobTok = await projectToken(bob, pb.id);
    carolTok = await projectToken(carol, pa.id);
    daveTok = await projectToken(dave, adminProjectId);
    ritaTok = await projectToken(rita, pa.id);
    bobCred = ok(await call('POST', '/credentials', bobTok, { credential: { user_id: bob.id, type: 'totp', blob: 'bob-secret-blob' } }), 201).credential.id;
    bobAc = ok(await call('POST', `/users/${bob.id}/application_credentials`, bobTok, { application_credential: { name: 'bob-ac' } }), 201).application_credential.id;
    bobEc2 = ok(await call('POST', `/users/${bob.id}/credentials/OS-EC2`, bobTok, { tenant_id: pb.id }), 201).credential.access;
    otherDomain = ok(await call('POST', '/domains', admin, { domain: { name: 'sec-iso-dom' } }), 201).domain.id;
  });

  /** Asserts every request is refused with `status` and the database is unchanged. */
  async function refused(token: string | undefined, reqs: [M, string, unknown?][], status = 403) {
    const before = await snapshot();
    const pbBefore = await projectRow(pb.id);
    for (const [m, path, body] of reqs) {
      const res = await call(m, path, token, body);
      assert.equal(res.status, status, `${m} ${path}: expected ${status}, got ${res.status} ${res.text.slice(0, 200)}`);
      if (m !== 'HEAD') assert.equal(res.json.error.code, status, `${m} ${path}`);
      for (const leak of ['bob-secret-blob', bob.password]) assert.ok(!res.text.includes(leak), `${m} ${path} leaks ${leak}`);
    }
    assert.deepEqual(await snapshot(), before, 'refused requests must not change the database');
    assert.deepEqual(await projectRow(pb.id), pbBefore);
  }

  test('a member of project A can neither read nor alter project B', async () => {
    await refused(aliceTok, [
      ['GET', `/projects/${pb.id}`],
      ['GET', `/projects/${pb.id}/tags`],
      ['GET', `/projects/${pb.id}/tags/b`],
      ['PATCH', `/projects/${pb.id}`, { project: { description: 'pwned' } }],
      ['PATCH', `/projects/${pb.id}`, { project: { enabled: false } }],
      ['PUT', `/projects/${pb.id}/tags`, { tags: ['pwned'] }],
      ['PUT', `/projects/${pb.id}/tags/pwned`],
      ['DELETE', `/projects/${pb.id}/tags/b`],
      ['DELETE', `/projects/${pb.id}/tags`],
      ['DELETE', `/projects/${pb.id}`],
      ['GET', `/projects/${pb.id}/users/${bob.id}/roles`],
      ['HEAD', `/projects/${pb.id}/users/${bob.id}/roles/${roleIds.member}`],
      ['PUT', `/projects/${pb.id}/users/${alice.id}/roles/${roleIds.member}`],
      ['DELETE', `/projects/${pb.id}/users/${bob.id}/roles/${roleIds.member}`],
      ['GET', `/role_assignments?scope.project.id=${pb.id}`],
    ]);
    // Bob still works normally.
    assert.equal(await works(bobTok), 200);
  });

  test('a member cannot touch another user\'s account, credentials or tokens', async () => {
    await refused(aliceTok, [
      ['GET', `/users/${bob.id}`],
      ['PATCH', `/users/${bob.id}`, { user: { password: 'taken-over' } }],
      ['PATCH', `/users/${bob.id}`, { user: { enabled: false } }],
      ['DELETE', `/users/${bob.id}`],
      ['GET', `/users/${bob.id}/projects`],
      ['GET', `/users/${bob.id}/groups`],
      ['GET', `/users/${bob.id}/application_credentials`],
      ['GET', `/users/${bob.id}/application_credentials/${bobAc}`],
      ['DELETE', `/users/${bob.id}/application_credentials/${bobAc}`],
      ['POST', `/users/${bob.id}/application_credentials`, { application_credential: { name: 'evil' } }],
      ['GET', `/credentials/${bobCred}`],
      ['PATCH', `/credentials/${bobCred}`, { credential: { blob: 'x' } }],
      ['DELETE', `/credentials/${bobCred}`],
      ['GET', `/credentials?user_id=${bob.id}`],
      ['POST', '/credentials', { credential: { user_id: bob.id, type: 'totp', blob: 'x' } }],
      ['GET', `/users/${bob.id}/credentials/OS-EC2`],
      ['GET', `/users/${bob.id}/credentials/OS-EC2/${bobEc2}`],
      ['DELETE', `/users/${bob.id}/credentials/OS-EC2/${bobEc2}`],
      ['POST', `/users/${bob.id}/credentials/OS-EC2`, { tenant_id: pb.id }],
    ]);
    const v = await call('GET', '/auth/tokens', aliceTok, undefined, { 'x-subject-token': bobTok });
    assert.equal(v.status, 403);
    assert.equal((await call('DELETE', '/auth/tokens', aliceTok, undefined, { 'x-subject-token': bobTok })).status, 403);
    assert.equal(await works(bobTok), 200, 'bob\'s token survives');
    // Changing bob's password needs bob's password.
    assert.equal((await call('POST', `/users/${bob.id}/password`, aliceTok, { user: { original_password: 'guess', password: 'x' } })).status, 401);
    assert.equal((await pwAuth({ id: bob.id }, bob.password)).status, 201);
    // Alice's own list of credentials does not include bob's.
    const list = ok(await call('GET', '/credentials', aliceTok), 200);
    assert.deepEqual(list.credentials, []);
  });

  test('a member cannot use any identity admin API', async () => {
    await refused(aliceTok, [
      ['GET', '/users'],
      ['GET', '/users?domain_id=default'],
      ['POST', '/users', { user: { name: 'evil-user' } }],
      ['GET', '/projects'],
      ['POST', '/projects', { project: { name: 'evil-project' } }],
      ['GET', '/domains'],
      ['GET', `/domains/${otherDomain}`],
      ['POST', '/domains', { domain: { name: 'evil-domain' } }],
      ['PATCH', '/domains/default', { domain: { description: 'pwned' } }],
      ['GET', '/groups'],
      ['POST', '/groups', { group: { name: 'evil-group' } }],
      ['POST', '/roles', { role: { name: 'evil-role' } }],
      ['PATCH', `/roles/${roleIds.reader}`, { role: { name: 'admin2' } }],
      ['DELETE', `/roles/${roleIds.admin}`],
      ['PUT', `/roles/${roleIds.reader}/implies/${roleIds.service}`],
      ['GET', '/role_inferences'],
      ['GET', '/role_assignments'],
      ['PUT', `/system/users/${alice.id}/roles/${roleIds.admin}`],
      ['PUT', `/domains/default/users/${alice.id}/roles/${roleIds.admin}`],
      ['PUT', `/OS-INHERIT/domains/default/users/${alice.id}/roles/${roleIds.admin}/inherited_to_projects`],
      ['PUT', `/projects/${adminProjectId}/users/${alice.id}/roles/${roleIds.admin}`],
      ['GET', '/services'],
      ['POST', '/services', { service: { type: 'evil' } }],
      ['GET', '/endpoints'],
      ['POST', '/regions', { region: { id: 'evil-region' } }],
      ['DELETE', '/regions/RegionOne'],
    ]);
  });

  test('a member may read its own user, project and domain', async () => {
    assert.equal(ok(await call('GET', `/users/${alice.id}`, aliceTok), 200).user.id, alice.id);
    assert.equal(ok(await call('GET', `/projects/${pa.id}`, aliceTok), 200).project.id, pa.id);
    assert.equal(ok(await call('GET', '/domains/default', aliceTok), 200).domain.id, 'default');
    assert.equal((await call('GET', '/regions', aliceTok)).status, 200);
    // ...but not alter them.
    await refused(aliceTok, [
      ['PATCH', `/projects/${pa.id}`, { project: { description: 'x' } }],
      ['PATCH', `/users/${alice.id}`, { user: { enabled: false } }],
      ['PUT', `/projects/${pa.id}/users/${alice.id}/roles/${roleIds.admin}`],
    ]);
  });

  test('an admin of project A is not a cloud admin (enforce_scope)', async () => {
    const r = ok(await call('GET', '/auth/tokens', carolTok, undefined, { 'x-subject-token': carolTok }), 200);
    assert.ok(r.token.roles.some((x: { name: string }) => x.name === 'admin'));
    await refused(carolTok, [
      ['GET', '/users'],
      ['POST', '/users', { user: { name: 'carol-made' } }],
      ['GET', `/projects/${pb.id}`],
      ['PATCH', `/projects/${pb.id}`, { project: { description: 'x' } }],
      ['POST', '/domains', { domain: { name: 'carol-dom' } }],
      ['POST', '/roles', { role: { name: 'carol-role' } }],
      ['PUT', `/projects/${pa.id}/users/${alice.id}/roles/${roleIds.admin}`],
      ['PUT', `/projects/${adminProjectId}/users/${carol.id}/roles/${roleIds.admin}`],
      ['PUT', `/system/users/${carol.id}/roles/${roleIds.admin}`],
      ['GET', '/role_assignments'],
      ['DELETE', `/users/${bob.id}`],
      ['GET', `/credentials/${bobCred}`],
    ]);
  });

  test('a reader on the admin project reads everything and writes nothing', async () => {
    for (const path of ['/users', '/projects', '/domains', '/groups', '/roles', '/role_assignments', '/services', '/endpoints', `/users/${bob.id}`, `/projects/${pb.id}`, '/role_inferences', `/credentials/${bobCred}`]) {
      assert.equal((await call('GET', path, daveTok)).status, 200, `GET ${path}`);
    }
    await refused(daveTok, [
      ['POST', '/users', { user: { name: 'dave-made' } }],
      ['PATCH', `/users/${bob.id}`, { user: { enabled: false } }],
      ['DELETE', `/users/${bob.id}`],
      ['POST', '/projects', { project: { name: 'dave-project' } }],
      ['PATCH', `/projects/${pb.id}`, { project: { enabled: false } }],
      ['DELETE', `/projects/${pb.id}`],
      ['PUT', `/projects/${pb.id}/tags/dave`],
      ['POST', '/domains', { domain: { name: 'dave-dom' } }],
      ['POST', '/groups', { group: { name: 'dave-g' } }],
      ['POST', '/roles', { role: { name: 'dave-role' } }],
      ['PUT', `/projects/${pb.id}/users/${dave.id}/roles/${roleIds.member}`],
      ['PUT', `/system/users/${dave.id}/roles/${roleIds.admin}`],
      ['DELETE', `/projects/${pb.id}/users/${bob.id}/roles/${roleIds.member}`],
      ['POST', '/services', { service: { type: 'dave' } }],
      ['POST', '/regions', { region: { id: 'dave-region' } }],
      ['DELETE', `/credentials/${bobCred}`],
    ]);
    // Reading a token is allowed to a cloud reader; revoking it is not.
    assert.equal((await call('GET', '/auth/tokens', daveTok, undefined, { 'x-subject-token': bobTok })).status, 200);
    assert.equal((await call('DELETE', '/auth/tokens', daveTok, undefined, { 'x-subject-token': bobTok })).status, 403);
    assert.equal(await works(bobTok), 200);
  });

  test('a system-scoped reader is a cloud reader too, and still cannot write', async () => {
    const sr = await mkUser();
    ok(await call('PUT', `/system/users/${sr.id}/roles/${roleIds.reader}`, admin), 204);
    const tok = tokenOf(await pwAuth({ id: sr.id }, sr.password, { system: { all: true } }));
    assert.equal((await call('GET', '/users', tok)).status, 200);
    assert.equal((await call('GET', `/projects/${pb.id}`, tok)).status, 200);
    await refused(tok, [
      ['POST', '/users', { user: { name: 'sysreader-made' } }],
      ['PATCH', `/projects/${pb.id}`, { project: { description: 'x' } }],
      ['POST', '/domains', { domain: { name: 'sr-dom' } }],
    ]);
  });

  test('a reader on project A can read it but not change it', async () => {
    assert.equal((await call('GET', `/projects/${pa.id}`, ritaTok)).status, 200);
    assert.equal((await call('GET', `/projects/${pa.id}/tags`, ritaTok)).status, 200);
    await refused(ritaTok, [
      ['PATCH', `/projects/${pa.id}`, { project: { description: 'x' } }],
      ['PUT', `/projects/${pa.id}/tags/r`],
      ['DELETE', `/projects/${pa.id}/tags`],
      ['PUT', `/projects/${pa.id}/users/${rita.id}/roles/${roleIds.member}`],
      ['GET', '/users'],
    ]);
  });

  test('a domain admin administers its own domain only', async () => {
    const dadmin = await mkUser({ domain_id: otherDomain });
    ok(await call('PUT', `/domains/${otherDomain}/users/${dadmin.id}/roles/${roleIds.admin}`, admin), 204);
    const tok = tokenOf(await pwAuth({ id: dadmin.id }, dadmin.password, { domain: { id: otherDomain } }));
    const made = await call('POST', '/users', tok, { user: { name: 'dom-made', domain_id: otherDomain } });
    assert.equal(made.status, 201, made.text);
    assert.equal((await call('GET', `/users?domain_id=${otherDomain}`, tok)).status, 200);
    const proj = await call('POST', '/projects', tok, { project: { name: 'dom-proj', domain_id: otherDomain } });
    assert.equal(proj.status, 201, proj.text);
    ok(await call('PUT', `/projects/${proj.json.project.id}/users/${made.json.user.id}/roles/${roleIds.member}`, tok), 204);
    await refused(tok, [
      ['POST', '/users', { user: { name: 'dom-escape' } }],
      ['POST', '/users', { user: { name: 'dom-escape', domain_id: 'default' } }],
      ['GET', '/users'],
      ['GET', '/users?domain_id=default'],
      ['PATCH', `/users/${bob.id}`, { user: { enabled: false } }],
      ['PATCH', `/projects/${pb.id}`, { project: { description: 'x' } }],
      ['PUT', `/projects/${pb.id}/users/${dadmin.id}/roles/${roleIds.admin}`],
      ['PUT', `/system/users/${dadmin.id}/roles/${roleIds.admin}`],
      ['POST', '/domains', { domain: { name: 'dom-dom' } }],
      ['PATCH', `/domains/${otherDomain}`, { domain: { enabled: false } }],
    ]);
  });

  test(
    'a user created with a chosen id equal to a group\'s id does not inherit that group\'s roles',
    {},
    async () => {
      const g = ok(await call('POST', '/groups', admin, { group: { name: 'sec-cloud-admins' } }), 201).group;
      ok(await call('PUT', `/system/groups/${g.id}/roles/${roleIds.admin}`, admin), 204);
      const dadmin = await mkUser({ domain_id: otherDomain });
      ok(await call('PUT', `/domains/${otherDomain}/users/${dadmin.id}/roles/${roleIds.admin}`, admin), 204);
      const dtok = tokenOf(await pwAuth({ id: dadmin.id }, dadmin.password, { domain: { id: otherDomain } }));
      const made = await call('POST', '/users', dtok, { user: { name: 'sec-impostor', password: 'Impostor-Pw-1', domain_id: otherDomain, id: g.id } });
      const sys = await pwAuth({ id: g.id }, 'Impostor-Pw-1', { system: { all: true } });
      assert.equal(sys.status, 401, `impostor got a system token with roles ${JSON.stringify(sys.json?.token?.roles?.map((r: { name: string }) => r.name))}`);
      if (made.status === 201) assert.notEqual(made.json.user.id, g.id, 'the server must not let the client choose a user id');
    },
  );

  test('without a token, every identity resource is 401', async () => {
    await refused(undefined, [
      ['GET', '/users'],
      ['GET', `/users/${bob.id}`],
      ['GET', `/projects/${pb.id}`],
      ['POST', '/users', { user: { name: 'anon' } }],
      ['DELETE', `/projects/${pb.id}`],
      ['GET', '/auth/tokens'],
      ['GET', '/regions'],
    ], 401);
  });

  test('a user cannot rescope into a project where it has no role', async () => {
    const res = await c.inject('POST', `${ID}/auth/tokens`, { body: { auth: { identity: { methods: ['token'], token: { id: aliceTok } }, scope: { project: { id: pb.id } } } } });
    assert.equal(res.status, 401);
    assert.equal(res.headers['x-subject-token'], undefined);
  });
});

describe('lockout (identity.lockoutFailureAttempts = 3, 1 s)', () => {
  test('after 3 failures even the right password is refused (same 401); it lifts after the duration', async () => {
    const u = await mkUser();
    for (let i = 0; i < 3; i++) assert.equal((await pwAuth({ id: u.id }, `wrong-${i}`)).status, 401);
    const locked = await pwAuth({ id: u.id }, u.password);
    assert.equal(locked.status, 401);
    assert.equal(locked.text, (await pwAuth({ id: 'nobody-at-all' }, 'x')).text, 'a locked account looks like any other failure');
    // Other users are unaffected.
    const v = await mkUser();
    assert.equal((await pwAuth({ id: v.id }, v.password)).status, 201);
    await sleep(1100);
    assert.equal((await pwAuth({ id: u.id }, u.password)).status, 201, 'unlocked after lockoutDurationSeconds');
  });

  test('a success resets the failure count', async () => {
    const u = await mkUser();
    for (let i = 0; i < 2; i++) assert.equal((await pwAuth({ id: u.id }, 'bad')).status, 401);
    assert.equal((await pwAuth({ id: u.id }, u.password)).status, 201);
    for (let i = 0; i < 2; i++) assert.equal((await pwAuth({ id: u.id }, 'bad')).status, 401);
    assert.equal((await pwAuth({ id: u.id }, u.password)).status, 201, 'only 2 consecutive failures: not locked');
  });

  test('failures by name count the same as by id; an admin password reset unlocks', async () => {
    const u = await mkUser();
    for (let i = 0; i < 3; i++) assert.equal((await pwAuth({ name: u.name, domain: { id: 'default' } }, 'bad')).status, 401);
    assert.equal((await pwAuth({ id: u.id }, u.password)).status, 401);
    ok(await call('PATCH', `/users/${u.id}`, admin, { user: { password: 'Reset-By-Admin-9' } }), 200);
    await tick();
    assert.equal((await pwAuth({ id: u.id }, 'Reset-By-Admin-9')).status, 201);
  });

  test('the self-service password change is subject to lockout too', async () => {
    const u = await mkUser();
    for (let i = 0; i < 3; i++) assert.equal((await call('POST', `/users/${u.id}/password`, undefined, { user: { original_password: 'guess', password: 'x' } })).status, 401);
    const res = await call('POST', `/users/${u.id}/password`, undefined, { user: { original_password: u.password, password: 'Changed-Pw-7' } });
    assert.equal(res.status, 401, 'locked: even the right original password is refused');
    assert.equal((await pwAuth({ id: u.id }, 'Changed-Pw-7')).status, 401, 'the password was not changed');
  });

  test(
    'when a lockout expires the failure count starts over (Keystone resets it)',
    {},
    async () => {
      const u = await mkUser();
      for (let i = 0; i < 3; i++) assert.equal((await pwAuth({ id: u.id }, 'bad')).status, 401);
      await sleep(1100);
      assert.equal((await pwAuth({ id: u.id }, 'one typo after the lockout')).status, 401);
      assert.equal((await pwAuth({ id: u.id }, u.password)).status, 201, 'one failure after an expired lockout must not lock again');
    },
  );

  test(
    'concurrent wrong guesses all count (no lost updates that let parallel guessing bypass lockout)',
    {},
    async () => {
      const u = await mkUser();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => pwAuth({ id: u.id }, `parallel-${i}`)));
      assert.ok(results.every((r) => r.status === 401));
      const row = await c.cloud.database.db.selectFrom('id_users').select('failed_auth_count').where('id', '=', u.id).executeTakeFirst();
      assert.ok(Number(row?.failed_auth_count) >= 3, `failed_auth_count is ${row?.failed_auth_count} after 10 failures`);
      assert.equal((await pwAuth({ id: u.id }, u.password)).status, 401, 'the account must be locked after 10 failures');
    },
  );
});
