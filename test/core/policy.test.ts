import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PolicyEngine,
  PolicyNotRegisteredError,
  PolicySyntaxError,
  formatPolicyTrace,
  loadPolicyFile,
  type PolicyCredentials,
} from '../../src/core/policy.js';
import { allowedOnProject, type AuthContext } from '../../src/core/context.js';

const member: PolicyCredentials = { user_id: 'u1', project_id: 'p1', domain_id: null, system_scope: null, roles: ['member', 'reader'] };
const admin: PolicyCredentials = { user_id: 'u0', project_id: 'p0', roles: ['admin'] };
const nobody: PolicyCredentials = { roles: [] };

/** Evaluates a one-off rule text. */
function check(rule: string, creds: PolicyCredentials, target: Record<string, unknown> = {}, extra: Record<string, string> = {}): boolean {
  return new PolicyEngine({ ...extra, t: rule }).enforce('t', target, creds);
}

describe('basic checks', () => {
  test('"@" and the empty rule always pass, "!" never does', () => {
    assert.equal(check('@', nobody), true);
    assert.equal(check('', nobody), true);
    assert.equal(check('   ', nobody), true);
    assert.equal(check('!', admin), false);
  });

  test('role: matches case-insensitively, both ways', () => {
    assert.equal(check('role:admin', admin), true);
    assert.equal(check('role:ADMIN', admin), true);
    assert.equal(check('role:admin', { roles: ['Admin'] }), true);
    assert.equal(check('role:admin', member), false);
    assert.equal(check('role:admi', admin), false);
    assert.equal(check('role:admin', nobody), false);
  });

  test('role: with a substituted role name', () => {
    assert.equal(check('role:%(role)s', member, { role: 'Reader' }), true);
    assert.equal(check('role:%(role)s', member, { role: 'admin' }), false);
    assert.equal(check('role:%(role)s', member, {}), false);
  });

  test('role: tolerates malformed credentials', () => {
    assert.equal(check('role:admin', { roles: undefined as unknown as string[] }), false);
    assert.equal(check('role:admin', { roles: [1, null, 'admin'] as unknown as string[] }), true);
  });

  test('generic checks compare a credential with a target value', () => {
    assert.equal(check('project_id:%(project_id)s', member, { project_id: 'p1' }), true);
    assert.equal(check('project_id:%(project_id)s', member, { project_id: 'p2' }), false);
    assert.equal(check('user_id:%(target.user.id)s', member, { 'target.user.id': 'u1' }), true);
  });

  test('generic checks with a literal right side', () => {
    assert.equal(check('user_id:u1', member), true);
    assert.equal(check("user_id:'u1'", member), true);
    assert.equal(check('user_id:"u1"', member), true);
    assert.equal(check("user_id:'u2'", member), false);
    assert.equal(check("name:'two words'", { roles: [], name: 'two words' }), true);
    assert.equal(check("name:''", { roles: [], name: '' }), true);
    assert.equal(check('system_scope:all', { roles: [], system_scope: 'all' }), true);
    assert.equal(check('system_scope:all', member), false);
  });

  test('boolean credentials: is_admin:True / False', () => {
    assert.equal(check('is_admin:True', { roles: [], is_admin: true }), true);
    assert.equal(check('is_admin:True', { roles: [], is_admin: false }), false);
    assert.equal(check('is_admin:False', { roles: [], is_admin: false }), true);
    assert.equal(check('is_admin:True', nobody), false);
    assert.equal(check('is_admin:true', { roles: [], is_admin: true }), false, 'Python spelling is case-sensitive');
  });

  test('numeric credential and target values compare as text', () => {
    assert.equal(check('level:%(level)s', { roles: [], level: 3 }, { level: '3' }), true);
    assert.equal(check('level:3', { roles: [], level: 3 }), true);
  });

  test('reverse form: literal on the left, target value on the right', () => {
    assert.equal(check("'member':%(role.name)s", nobody, { 'role.name': 'member' }), true);
    assert.equal(check("'member':%(role.name)s", nobody, { 'role.name': 'admin' }), false);
    assert.equal(check('"member":%(role.name)s', nobody, { role: { name: 'member' } }), true);
    assert.equal(check('True:%(user.enabled)s', nobody, { 'user.enabled': true }), true);
    assert.equal(check('True:%(user.enabled)s', nobody, { 'user.enabled': false }), false);
    assert.equal(check('False:%(user.enabled)s', nobody, { user: { enabled: false } }), true);
    assert.equal(check('True:%(user.enabled)s', nobody, {}), false);
    assert.equal(check("'a:b':%(x)s", nobody, { x: 'a:b' }), true, 'quoted left side may hold a colon');
    assert.equal(check('42:%(n)s', nobody, { n: 42 }), true);
  });

  test('credential paths: dotted names and list fan-out', () => {
    const creds = { roles: ['member'], token: { is_admin_project: true, groups: [{ id: 'g1' }, { id: 'g2' }] } };
    assert.equal(check('token.is_admin_project:True', creds), true);
    assert.equal(check('token.groups.id:g2', creds), true);
    assert.equal(check('token.groups.id:g3', creds), false);
    assert.equal(check('roles:member', creds), true, 'generic check on a list credential');
    assert.equal(check('roles:Member', creds), false, 'generic checks are case-sensitive');
    assert.equal(check('token.missing.deep:x', creds), false);
    assert.equal(check('token.is_admin_project.x:True', creds), false);
  });
});

describe('substitution', () => {
  test('dotted target names: flat key or nested path', () => {
    const rule = 'domain_id:%(target.user.domain_id)s';
    const creds = { roles: [], domain_id: 'd1' };
    assert.equal(check(rule, creds, { 'target.user.domain_id': 'd1' }), true);
    assert.equal(check(rule, creds, { target: { user: { domain_id: 'd1' } } }), true);
    assert.equal(check(rule, creds, { target: { user: { domain_id: 'd2' } } }), false);
  });

  test('the flat key wins over the nested path', () => {
    const rule = 'domain_id:%(target.user.domain_id)s';
    const creds = { roles: [], domain_id: 'd1' };
    assert.equal(check(rule, creds, { 'target.user.domain_id': 'd1', target: { user: { domain_id: 'd2' } } }), true);
  });

  test('missing target keys make the check false and never throw', () => {
    const rule = 'project_id:%(target.project.id)s';
    for (const target of [{}, { target: null }, { target: { project: 'p1' } }, { target: { project: {} } }, { 'target.project': { id: 'p1' } }]) {
      assert.equal(check(rule, member, target as Record<string, unknown>), false, JSON.stringify(target));
    }
    // ...and a missing key on one side of an "or" doesn't spoil the other.
    assert.equal(check(`${rule} or role:member`, member, {}), true);
    // ...and under "not" the false check becomes true, as in oslo.policy.
    assert.equal(check(`not ${rule}`, member, {}), true);
  });

  test('null on either side never matches (no "None" == "None")', () => {
    assert.equal(check('domain_id:%(domain_id)s', member, { domain_id: null }), false);
    assert.equal(check('domain_id:%(domain_id)s', member, { domain_id: 'd1' }), false);
    assert.equal(check('project_id:%(project_id)s', nobody, { project_id: undefined }), false);
  });

  test('object and array target values never match', () => {
    assert.equal(check('project_id:%(p)s', member, { p: ['p1'] }), false);
    assert.equal(check('project_id:%(p)s', member, { p: { id: 'p1' } }), false);
  });

  test('prototype properties are not target keys', () => {
    assert.equal(check('user_id:%(constructor)s', { roles: [], user_id: String(Object) }, {}), false);
    assert.equal(check('user_id:%(toString)s', member, {}), false);
    assert.equal(check('constructor:%(x)s', { roles: [] }, { x: String(Object) }), false);
  });

  test('templates with literal text and several placeholders', () => {
    assert.equal(check('name:%(a)s-%(b)s', { roles: [], name: 'x-y' }, { a: 'x', b: 'y' }), true);
    assert.equal(check('name:%(a)s-%(b)s', { roles: [], name: 'x-y' }, { a: 'x' }), false);
    assert.equal(check('name:100%%', { roles: [], name: '100%' }), true);
    assert.equal(check('name:pre_%(a)s', { roles: [], name: 'pre_x' }, { a: 'x' }), true);
  });
});

describe('operators', () => {
  test('and / or / not', () => {
    assert.equal(check('role:member and role:reader', member), true);
    assert.equal(check('role:member and role:admin', member), false);
    assert.equal(check('role:admin or role:reader', member), true);
    assert.equal(check('role:admin or role:service', member), false);
    assert.equal(check('not role:admin', member), true);
    assert.equal(check('not role:member', member), false);
    assert.equal(check('not not role:member', member), true);
  });

  test('keywords are case-insensitive', () => {
    assert.equal(check('role:admin OR role:member', member), true);
    assert.equal(check('NOT role:admin And role:member', member), true);
  });

  test('precedence: "and" binds tighter than "or"', () => {
    // admin or (member and service): member lacks service -> false
    assert.equal(check('role:admin or role:member and role:service', member), false);
    // (member and reader) or admin
    assert.equal(check('role:member and role:reader or role:admin', member), true);
    // a or (b and c), with a true
    assert.equal(check('role:member or role:admin and role:service', member), true);
    // a and b or c and d
    assert.equal(check('role:admin and role:x or role:member and role:reader', member), true);
    assert.equal(check('role:admin and role:member or role:x and role:reader', member), false);
  });

  test('precedence: "not" binds tighter than "and" and "or"', () => {
    // (not admin) and member
    assert.equal(check('not role:admin and role:member', member), true);
    // (not member) or reader
    assert.equal(check('not role:member or role:reader', member), true);
    // (not member) and reader
    assert.equal(check('not role:member and role:reader', member), false);
  });

  test('parentheses override precedence', () => {
    assert.equal(check('(role:admin or role:member) and role:service', member), false);
    assert.equal(check('(role:admin or role:member) and role:reader', member), true);
    assert.equal(check('not (role:admin or role:member)', member), false);
    assert.equal(check('not (role:admin and role:member)', member), true);
    assert.equal(check('((role:member))', member), true);
    assert.equal(check('( role:member )', member), true);
    assert.equal(check('(role:admin or (role:member and (role:reader)))', member), true);
  });

  test('parentheses hugging substitutions', () => {
    const rule = '(project_id:%(project_id)s or role:admin) and (user_id:%(user_id)s)';
    assert.equal(check(rule, member, { project_id: 'p1', user_id: 'u1' }), true);
    assert.equal(check(rule, member, { project_id: 'p1', user_id: 'u9' }), false);
  });

  test('the identity-style cloud_admin rule', () => {
    const rule = 'role:admin and (system_scope:all or is_admin_project:True)';
    assert.equal(check(rule, { roles: ['admin'], system_scope: 'all' }), true);
    assert.equal(check(rule, { roles: ['admin'], is_admin_project: true }), true);
    assert.equal(check(rule, { roles: ['admin'], is_admin_project: false, system_scope: null }), false);
    assert.equal(check(rule, { roles: ['member'], system_scope: 'all' }), false);
  });
});

describe('rule references', () => {
  test('rule: evaluates the named rule with the same target and creds', () => {
    const extra = { admin_required: 'role:admin', owner: 'user_id:%(user_id)s' };
    assert.equal(check('rule:admin_required or rule:owner', admin, { user_id: 'zz' }, extra), true);
    assert.equal(check('rule:admin_required or rule:owner', member, { user_id: 'u1' }, extra), true);
    assert.equal(check('rule:admin_required or rule:owner', member, { user_id: 'u2' }, extra), false);
    assert.equal(check('not rule:admin_required', member, {}, extra), true);
  });

  test('rule names may contain colons', () => {
    assert.equal(check('rule:identity:base', member, {}, { 'identity:base': 'role:member' }), true);
  });

  test('a reference to an undefined rule is false (not an error)', () => {
    assert.equal(check('rule:nope', admin), false);
    assert.equal(check('rule:nope or role:admin', admin), true);
    assert.equal(check('not rule:nope', admin), true);
  });

  test('chains of references', () => {
    const eng = new PolicyEngine({ a: 'rule:b', b: 'rule:c', c: 'role:member' });
    assert.equal(eng.enforce('a', {}, member), true);
    assert.equal(eng.enforce('a', {}, admin), false);
  });

  test('reference cycles are rejected at load time', () => {
    assert.throws(() => new PolicyEngine({ a: 'rule:a' }), PolicySyntaxError);
    assert.throws(() => new PolicyEngine({ a: 'rule:b', b: 'role:x or rule:c', c: 'not rule:a' }), /cycle a -> b -> c -> a/);
    const eng = new PolicyEngine({ a: 'rule:b', b: 'role:x' });
    assert.throws(() => eng.loadOverrides({ b: 'rule:a' }), /cycle/);
    assert.equal(eng.enforce('a', {}, { roles: ['x'] }), true, 'failed reload keeps the old rules');
  });

  test('diamond-shaped references are not cycles', () => {
    const eng = new PolicyEngine({ top: 'rule:l and rule:r', l: 'rule:base', r: 'rule:base', base: 'role:member' });
    assert.equal(eng.enforce('top', {}, member), true);
  });
});

describe('syntax errors', () => {
  const bad = [
    'role:admin and',
    'or role:admin',
    'role:admin or or role:member',
    'role:admin role:member',
    '(role:admin',
    'role:admin)',
    '()',
    'not',
    'admin',
    'role:',
    ':admin',
    'role:admin and ()',
    "user_id:'unterminated",
    'project_id:%(project_id',
    'project_id:%(project_id)d',
    'project_id:%()s',
    'http://example.com/check',
    'not(role:admin)',
    'bad name:x',
  ];
  for (const rule of bad) {
    test(`rejects ${JSON.stringify(rule)} with the rule text`, () => {
      assert.throws(
        () => new PolicyEngine({ r: rule }),
        (err: unknown) => err instanceof PolicySyntaxError && err.ruleText === rule && err.ruleName === 'r' && err.message.includes(JSON.stringify(rule)),
      );
    });
  }

  test('overrides are validated too, atomically', () => {
    const eng = new PolicyEngine({ a: 'role:admin', b: 'role:member' });
    assert.throws(() => eng.loadOverrides({ a: '@', b: 'role:member and' }), PolicySyntaxError);
    assert.equal(eng.enforce('a', {}, member), false, 'no partial application');
    assert.deepEqual(eng.rules(), { a: 'role:admin', b: 'role:member' });
  });

  test('non-string rules are rejected', () => {
    assert.throws(() => new PolicyEngine({ a: { rule: 5 as unknown as string } }), PolicySyntaxError);
    assert.throws(() => new PolicyEngine({}).loadOverrides({ a: null as unknown as string }), PolicySyntaxError);
  });
});

describe('engine', () => {
  test('enforcing an unregistered rule throws PolicyNotRegisteredError', () => {
    const eng = new PolicyEngine({ a: 'role:admin' });
    assert.throws(() => eng.enforce('b', {}, admin), PolicyNotRegisteredError);
    assert.throws(() => eng.explain('b', {}, admin), (e: unknown) => e instanceof PolicyNotRegisteredError && e.rule === 'b');
  });

  test('rules defined only by overrides are helpers: referencable, not enforceable', () => {
    const eng = new PolicyEngine({ a: 'rule:helper' });
    assert.equal(eng.enforce('a', {}, member), false);
    eng.loadOverrides({ helper: 'role:member' });
    assert.equal(eng.enforce('a', {}, member), true);
    assert.throws(() => eng.enforce('helper', {}, member), PolicyNotRegisteredError);
  });

  test('defaults accept plain strings and { rule, description }', () => {
    const eng = new PolicyEngine({ a: 'role:admin', b: { rule: 'role:member', description: 'Members only.' } });
    assert.equal(eng.enforce('a', {}, admin), true);
    assert.equal(eng.enforce('b', {}, member), true);
    assert.equal(eng.description('b'), 'Members only.');
    assert.equal(eng.description('a'), undefined);
  });

  test('overrides replace defaults; reloading drops stale overrides', () => {
    const eng = new PolicyEngine({ 'identity:get_user': 'role:admin', other: 'role:x' });
    assert.equal(eng.enforce('identity:get_user', {}, member), false);
    eng.loadOverrides({ 'identity:get_user': 'role:member' });
    assert.equal(eng.enforce('identity:get_user', {}, member), true);
    assert.equal(eng.isOverridden('identity:get_user'), true);
    assert.deepEqual(eng.rules(), { 'identity:get_user': 'role:member', other: 'role:x' });
    eng.loadOverrides({});
    assert.equal(eng.enforce('identity:get_user', {}, member), false);
    assert.equal(eng.isOverridden('identity:get_user'), false);
  });

  test('an empty override opens a rule to everyone; "!" closes it', () => {
    const eng = new PolicyEngine({ a: 'role:admin', b: '@' });
    eng.loadOverrides({ a: '', b: '!' });
    assert.equal(eng.enforce('a', {}, nobody), true);
    assert.equal(eng.enforce('b', {}, admin), false);
  });

  test('overriding a referenced rule changes every rule that uses it', () => {
    const eng = new PolicyEngine({ admin_required: 'role:admin', x: 'rule:admin_required', y: 'rule:admin_required or role:y' });
    eng.loadOverrides({ admin_required: 'role:superuser' });
    assert.equal(eng.enforce('x', {}, admin), false);
    assert.equal(eng.enforce('x', {}, { roles: ['superuser'] }), true);
    assert.equal(eng.enforce('y', {}, { roles: ['superuser'] }), true);
  });

  test('rules() returns a copy', () => {
    const eng = new PolicyEngine({ a: 'role:admin' });
    const r = eng.rules();
    r.a = '@';
    assert.equal(eng.rules().a, 'role:admin');
  });

  test('enforcement is repeatable and independent of call order (compiled once)', () => {
    const eng = new PolicyEngine({ a: 'role:admin or project_id:%(project_id)s' });
    for (let i = 0; i < 1000; i++) {
      assert.equal(eng.enforce('a', { project_id: i % 2 ? 'p1' : 'p2' }, member), i % 2 === 1);
    }
  });
});

describe('explain', () => {
  const eng = new PolicyEngine({
    admin_required: 'role:admin',
    owner: 'user_id:%(target.user.id)s',
    'identity:get_user': 'rule:admin_required or (rule:owner and not role:suspended)',
  });

  test('reports the decision and every check, with reasons', () => {
    const trace = eng.explain('identity:get_user', { 'target.user.id': 'u2' }, member);
    assert.equal(trace.result, false);
    assert.equal(trace.rule, 'identity:get_user');
    assert.equal(trace.expression, 'rule:admin_required or (rule:owner and not role:suspended)');
    assert.deepEqual(
      trace.checks.map((c) => [c.check, c.result, c.via]),
      [
        ['role:admin', false, ['identity:get_user', 'admin_required']],
        ['user_id:%(target.user.id)s', false, ['identity:get_user', 'owner']],
        ['role:suspended', false, ['identity:get_user']],
      ],
    );
    assert.match(trace.checks[0]!.detail, /not held; roles: \[member, reader\]/);
    assert.match(trace.checks[1]!.detail, /credential user_id="u1" != "u2"/);
    assert.equal(trace.tree.kind, 'or');
    assert.equal(trace.tree.children?.length, 2);
    assert.equal(trace.tree.text, 'rule:admin_required or (rule:owner and not role:suspended)');
    assert.equal(trace.tree.children?.[1]?.text, 'rule:owner and not role:suspended');
    assert.equal(trace.tree.children?.[0]?.kind, 'rule');
    assert.equal(trace.tree.children?.[0]?.children?.[0]?.text, 'role:admin');
  });

  test('agrees with enforce', () => {
    const cases: Array<[Record<string, unknown>, PolicyCredentials]> = [
      [{ 'target.user.id': 'u1' }, member],
      [{ 'target.user.id': 'u1' }, { ...member, roles: ['suspended'] }],
      [{}, admin],
      [{}, member],
    ];
    for (const [target, creds] of cases) {
      assert.equal(eng.explain('identity:get_user', target, creds).result, eng.enforce('identity:get_user', target, creds));
    }
  });

  test('does not short-circuit, so all failing checks are visible', () => {
    const trace = eng.explain('identity:get_user', {}, admin);
    assert.equal(trace.result, true);
    assert.equal(trace.checks.length, 3);
  });

  test('names missing target keys and undefined rules', () => {
    const e = new PolicyEngine({ r: 'project_id:%(target.project.id)s or rule:ghost' });
    const trace = e.explain('r', {}, member);
    assert.match(trace.checks[0]!.detail, /target key\(s\) missing: target\.project\.id/);
    assert.match(trace.checks[1]!.detail, /rule "ghost" is not defined/);
  });

  test('formatPolicyTrace renders a readable tree', () => {
    const text = formatPolicyTrace(eng.explain('identity:get_user', { 'target.user.id': 'u1' }, member));
    const lines = text.split('\n');
    assert.match(lines[0]!, /^identity:get_user: ALLOW/);
    assert.ok(lines.some((l) => /^\s+- role:admin\s+\[/.test(l)));
    assert.ok(lines.some((l) => /^\s+\+ user_id:%\(target\.user\.id\)s/.test(l)));
  });
});

describe('loadPolicyFile', () => {
  const withDir = async (fn: (dir: string) => Promise<void>): Promise<void> => {
    const dir = await mkdtemp(join(tmpdir(), 'stratus-policy-'));
    try {
      await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  test('a missing file means no overrides', async () => {
    assert.deepEqual(await loadPolicyFile('/nonexistent/dir/policy.yaml'), {});
  });

  test('reads YAML', async () => {
    await withDir(async (dir) => {
      const p = join(dir, 'policy.yaml');
      await writeFile(p, '# comment\n"identity:get_user": "role:admin"\nadmin_required: role:admin or is_admin:True\nopen: ""\n');
      assert.deepEqual(await loadPolicyFile(p), { 'identity:get_user': 'role:admin', admin_required: 'role:admin or is_admin:True', open: '' });
    });
  });

  test('reads JSON, including tab-indented JSON', async () => {
    await withDir(async (dir) => {
      const p = join(dir, 'policy.json');
      await writeFile(p, '{\n\t"a": "role:admin",\n\t"b": "rule:a"\n}\n');
      assert.deepEqual(await loadPolicyFile(p), { a: 'role:admin', b: 'rule:a' });
    });
  });

  test('an empty or all-comments file means no overrides', async () => {
    await withDir(async (dir) => {
      const p = join(dir, 'policy.yaml');
      await writeFile(p, '# "identity:get_user": "role:admin"\n');
      assert.deepEqual(await loadPolicyFile(p), {});
      await writeFile(p, '');
      assert.deepEqual(await loadPolicyFile(p), {});
    });
  });

  test('legacy list syntax is converted', async () => {
    await withDir(async (dir) => {
      const p = join(dir, 'policy.json');
      await writeFile(p, JSON.stringify({ a: [['role:admin'], ['role:member', 'project_id:%(project_id)s']], b: [], c: [[]] }));
      const rules = await loadPolicyFile(p);
      assert.equal(rules.b, '');
      const eng = new PolicyEngine({ a: '!', b: '!', c: '@' });
      eng.loadOverrides(rules);
      assert.equal(eng.enforce('a', { project_id: 'p1' }, member), true);
      assert.equal(eng.enforce('a', { project_id: 'p2' }, member), false);
      assert.equal(eng.enforce('a', {}, admin), true);
      assert.equal(eng.enforce('b', {}, nobody), true);
      assert.equal(eng.enforce('c', {}, admin), false);
    });
  });

  test('non-mapping documents and non-string rules are errors', async () => {
    await withDir(async (dir) => {
      const p = join(dir, 'policy.yaml');
      await writeFile(p, '- role:admin\n');
      await assert.rejects(loadPolicyFile(p), /mapping/);
      await writeFile(p, 'a: 5\n');
      await assert.rejects(loadPolicyFile(p), /rule "a" must be a string/);
      await writeFile(p, 'a:\n');
      await assert.rejects(loadPolicyFile(p), /rule "a" must be a string/);
    });
  });

  test('loaded rules round-trip through the engine', async () => {
    await withDir(async (dir) => {
      const p = join(dir, 'policy.yaml');
      await writeFile(p, 'get: "role:reader or (role:member and project_id:%(target.project_id)s)"\n');
      const eng = new PolicyEngine({ get: 'role:admin' });
      eng.loadOverrides(await loadPolicyFile(p));
      assert.equal(eng.enforce('get', {}, { roles: ['Reader'] }), true);
      assert.equal(eng.enforce('get', { 'target.project_id': 'p1' }, { roles: ['member'], project_id: 'p1' }), true);
      assert.equal(eng.enforce('get', { 'target.project_id': 'p2' }, { roles: ['member'], project_id: 'p1' }), false);
    });
  });
});

describe('allowedOnProject (remembered decisions)', () => {
  const ctx: AuthContext = {
    token: 't', userId: 'u1', userName: 'u', userDomainId: 'default', userDomainName: 'Default', projectId: 'p1', projectName: 'p', projectDomainId: 'default',
    projectDomainName: 'Default', domainId: null, domainName: null, system: false, roles: ['member'], roleIds: ['r1'], isAdminProject: false,
    applicationCredentialId: null, methods: ['password'], auditIds: ['a'], issuedAt: 0, expiresAt: Date.now() + 60_000,
  };

  test('answers as enforce does, per project, and follows a policy reload', () => {
    const policy = new PolicyEngine({ 'obj:read': 'role:member and project_id:%(project_id)s' });
    assert.equal(allowedOnProject(policy, ctx, 'obj:read', 'p1'), true);
    assert.equal(allowedOnProject(policy, ctx, 'obj:read', 'p2'), false);
    assert.equal(allowedOnProject(policy, ctx, 'obj:read', 'p1'), true, 'asked again: the same answer');
    policy.loadOverrides({ 'obj:read': 'role:admin' });
    assert.equal(allowedOnProject(policy, ctx, 'obj:read', 'p1'), false, 'the reload is seen at once');
    policy.loadOverrides({});
    assert.equal(allowedOnProject(policy, ctx, 'obj:read', 'p1'), true);
  });

  test('a project-less target is the null project', () => {
    const policy = new PolicyEngine({ 'obj:any': 'role:member', 'obj:own': 'project_id:%(project_id)s' });
    assert.equal(allowedOnProject(policy, ctx, 'obj:any', null), true);
    assert.equal(allowedOnProject(policy, ctx, 'obj:own', null), false);
  });
});
