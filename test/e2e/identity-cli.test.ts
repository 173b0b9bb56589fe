/**
 * Identity end to end, judged by the real `openstack` CLI (Debian's
 * python3-openstackclient) against a freshly started `./stratus up`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, openstack, osJson, osOk, hasOpenstackCli, type RunningCloud } from '../helpers/cloud-process.js';

let cloud: RunningCloud;
const A = 'stratus-admin' as const;
const D = 'stratus-demo' as const;

before(async () => {
  cloud = await startCloud();
});
after(async () => {
  await cloud?.stop();
  cloud?.cleanup();
});

test('openstack CLI drives identity', { skip: !hasOpenstackCli() && 'python3-openstackclient not installed' }, async (t) => {
  await t.test('token issue and catalog list', async () => {
    const tok = await osJson(cloud, A, ['token', 'issue']);
    assert.match(String(tok.id), /^gAAAAA/);
    assert.ok(tok.project_id && tok.user_id);
    const cat = await osJson<{ Name: string; Type: string }[]>(cloud, A, ['catalog', 'list']);
    assert.ok(cat.some((c) => c.Type === 'identity'));
  });

  await t.test('domain create/list/show/set/delete', async () => {
    const d = await osJson(cloud, A, ['domain', 'create', '--description', 'first', 'e2e-dom']);
    assert.equal(d.name, 'e2e-dom');
    const list = await osJson<{ Name: string }[]>(cloud, A, ['domain', 'list']);
    assert.ok(list.some((x) => x.Name === 'e2e-dom'));
    await osOk(cloud, A, ['domain', 'set', '--description', 'second', 'e2e-dom']);
    assert.equal((await osJson(cloud, A, ['domain', 'show', 'e2e-dom'])).description, 'second');
    // An enabled domain cannot be deleted; disabling first is the documented way.
    const refused = await openstack(cloud, A, ['domain', 'delete', 'e2e-dom']);
    assert.notEqual(refused.code, 0);
    await osOk(cloud, A, ['domain', 'set', '--disable', 'e2e-dom']);
    await osOk(cloud, A, ['domain', 'delete', 'e2e-dom']);
    assert.notEqual((await openstack(cloud, A, ['domain', 'show', 'e2e-dom'])).code, 0);
  });

  await t.test('project/user/group/role lifecycle, role add and effective assignments', async () => {
    const p = await osJson(cloud, A, ['project', 'create', '--description', 'p', 'e2e-proj']);
    const u = await osJson(cloud, A, ['user', 'create', '--password', 'e2e-pass-1', '--email', 'u@example.org', 'e2e-user']);
    assert.equal(u.password, undefined, 'password never returned');
    const g = await osJson(cloud, A, ['group', 'create', 'e2e-group']);
    const r = await osJson(cloud, A, ['role', 'create', 'e2e-role']);
    assert.ok(p.id && u.id && g.id && r.id);

    for (const [kind, name] of [['project', 'e2e-proj'], ['user', 'e2e-user'], ['group', 'e2e-group'], ['role', 'e2e-role']] as const) {
      const list = await osJson<{ Name: string }[]>(cloud, A, [kind, 'list']);
      assert.ok(list.some((x) => x.Name === name), `${kind} list shows ${name}`);
      const shown = await osJson(cloud, A, [kind, 'show', name]);
      assert.equal(shown.name, name);
    }
    await osOk(cloud, A, ['project', 'set', '--description', 'changed', 'e2e-proj']);
    assert.equal((await osJson(cloud, A, ['project', 'show', 'e2e-proj'])).description, 'changed');
    await osOk(cloud, A, ['user', 'set', '--email', 'v@example.org', 'e2e-user']);
    assert.equal((await osJson(cloud, A, ['user', 'show', 'e2e-user'])).email, 'v@example.org');
    await osOk(cloud, A, ['group', 'set', '--description', 'grp', 'e2e-group']);
    assert.equal((await osJson(cloud, A, ['group', 'show', 'e2e-group'])).description, 'grp');
    await osOk(cloud, A, ['role', 'set', '--description', 'rl', 'e2e-role']);
    assert.equal((await osJson(cloud, A, ['role', 'show', 'e2e-role'])).description, 'rl');

    await osOk(cloud, A, ['group', 'add', 'user', 'e2e-group', 'e2e-user']);
    await osOk(cloud, A, ['role', 'add', '--user', 'e2e-user', '--project', 'e2e-proj', 'member']);
    await osOk(cloud, A, ['role', 'add', '--group', 'e2e-group', '--project', 'e2e-proj', 'e2e-role']);
    const eff = await osJson<{ Role: string; User: string; Project: string; Group: string }[]>(cloud, A, ['role', 'assignment', 'list', '--names', '--effective', '--project', 'e2e-proj']);
    const mine = eff.filter((a) => a.User === 'e2e-user@Default' && a.Project === 'e2e-proj@Default').map((a) => a.Role).sort();
    // direct member, implied reader, and the group's role resolved to the user
    assert.deepEqual(mine, ['e2e-role', 'member', 'reader']);
    assert.ok(eff.every((a) => !a.Group), 'effective lists show users, not groups');

    // the new user can log in to the project
    const utok = await osJson(cloud, null, ['token', 'issue'], {
      OS_AUTH_URL: `${cloud.url}/identity/v3`, OS_USERNAME: 'e2e-user', OS_PASSWORD: 'e2e-pass-1', OS_PROJECT_NAME: 'e2e-proj',
      OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default', OS_IDENTITY_API_VERSION: '3',
    });
    assert.equal(utok.project_id, p.id);

    await osOk(cloud, A, ['role', 'remove', '--group', 'e2e-group', '--project', 'e2e-proj', 'e2e-role']);
    for (const [kind, name] of [['role', 'e2e-role'], ['group', 'e2e-group'], ['user', 'e2e-user'], ['project', 'e2e-proj']] as const) {
      await osOk(cloud, A, [kind, 'delete', name]);
      assert.notEqual((await openstack(cloud, A, [kind, 'show', name])).code, 0, `${kind} ${name} is gone`);
    }
  });

  await t.test('application credential authenticates a new CLI call on its own', async () => {
    const ac = await osJson(cloud, A, ['application', 'credential', 'create', 'e2e-ac']);
    assert.ok(typeof ac.secret === 'string' && ac.secret.length > 20);
    const env = {
      OS_AUTH_URL: `${cloud.url}/identity/v3`, OS_AUTH_TYPE: 'v3applicationcredential', OS_APPLICATION_CREDENTIAL_ID: String(ac.id),
      OS_APPLICATION_CREDENTIAL_SECRET: String(ac.secret), OS_IDENTITY_API_VERSION: '3',
    };
    const projects = await osJson<{ Name: string }[]>(cloud, null, ['project', 'list'], env);
    assert.ok(projects.some((p) => p.Name === 'admin'));
    const bad = await openstack(cloud, null, ['project', 'list'], { ...env, OS_APPLICATION_CREDENTIAL_SECRET: 'wrong' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /401/);
  });

  await t.test('ec2 credentials create and list', async () => {
    const c = await osJson(cloud, D, ['ec2', 'credentials', 'create']);
    assert.match(String(c.access), /^[0-9a-f]{32}$/);
    const list = await osJson<{ Access: string }[]>(cloud, D, ['ec2', 'credentials', 'list']);
    assert.ok(list.some((x) => x.Access === c.access));
  });

  await t.test('token revoke makes the token stop working', async () => {
    const tok = String((await osJson(cloud, A, ['token', 'issue'])).id);
    const ok = await fetch(`${cloud.url}/identity/v3/auth/tokens`, { headers: { 'x-auth-token': tok, 'x-subject-token': tok } });
    assert.equal(ok.status, 200);
    await osOk(cloud, A, ['token', 'revoke', tok]);
    const after = await fetch(`${cloud.url}/identity/v3/projects`, { headers: { 'x-auth-token': tok } });
    assert.equal(after.status, 401);
    const body = (await after.json()) as { error: { code: number } };
    assert.equal(body.error.code, 401);
  });

  await t.test('a demo user cannot list users (403)', async () => {
    const r = await openstack(cloud, D, ['user', 'list']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /HTTP 403/);
  });
});

test('restart keeps users, projects, keys and valid tokens', { skip: !hasOpenstackCli() && 'python3-openstackclient not installed' }, async () => {
  await osOk(cloud, A, ['project', 'create', 'survivor']);
  const tok = String((await osJson(cloud, A, ['token', 'issue'])).id);
  const code = await cloud.stop();
  assert.equal(code, 0, 'SIGTERM stops cleanly');
  cloud = await startCloud({ dataDir: cloud.dataDir, port: cloud.port, hostNetns: cloud.hostNetns ?? false });
  const shown = await osJson(cloud, A, ['project', 'show', 'survivor']);
  assert.equal(shown.name, 'survivor');
  const r = await fetch(`${cloud.url}/identity/v3/auth/tokens`, { headers: { 'x-auth-token': tok, 'x-subject-token': tok } });
  assert.equal(r.status, 200, 'a token issued before the restart still validates');
  const demo = await osJson(cloud, D, ['token', 'issue']);
  assert.ok(demo.id);
});
