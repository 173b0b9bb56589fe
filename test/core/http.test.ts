import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Type } from '@sinclair/typebox';
import { createApp, defineRoute, enforce, mountService, type RouteDef } from '../../src/core/http.js';
import { ApiError, notFound } from '../../src/core/errors.js';
import { PolicyEngine } from '../../src/core/policy.js';
import type { AuthContext, TokenValidator } from '../../src/core/context.js';

const REQ_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function ctx(over: Partial<AuthContext>): AuthContext {
  return {
    token: 't', userId: 'u', userName: 'u', userDomainId: 'default', userDomainName: 'Default',
    projectId: 'p1', projectName: 'p1', projectDomainId: 'default', projectDomainName: 'Default', domainId: null, domainName: null, system: false,
    roles: [], roleIds: [], isAdminProject: false, applicationCredentialId: null, methods: ['password'], auditIds: ['a'], issuedAt: 0, expiresAt: Date.now() + 3_600_000,
    ...over,
  };
}

/** Tokens are just names here: the validator maps them to callers. */
const callers: Record<string, AuthContext> = {
  admin: ctx({ userId: 'u-admin', roles: ['admin', 'member', 'reader'] }),
  member: ctx({ userId: 'u-member', roles: ['member', 'reader'] }),
  reader: ctx({ userId: 'u-reader', roles: ['reader'] }),
  other: ctx({ userId: 'u-other', projectId: 'p2', roles: ['member', 'reader'] }),
};

class LogCapture {
  lines: Record<string, unknown>[] = [];
  write(s: string) {
    this.lines.push(JSON.parse(s) as Record<string, unknown>);
  }
}

describe('core/http: one app, fail-closed policy, one error model', () => {
  let app: FastifyInstance;
  const logs = new LogCapture();
  const validated: string[] = [];
  let handlerRuns = 0;
  const validator: TokenValidator = {
    async validate(token) {
      validated.push(token);
      if (token === 'explode') throw new Error('validator backend down');
      return callers[token] ?? null;
    },
  };

  before(async () => {
    const policy = new PolicyEngine({
      'svc:admin_only': 'role:admin',
      'svc:member_of_project': 'role:member and project_id:%(target.project_id)s',
      'svc:fine': 'role:admin',
      'svc:any': '',
    });
    const log = pino({ level: 'info' }, logs);
    app = createApp({ log, maxJsonBodyBytes: 1024, validator, policy });
    const routes: RouteDef<any, any, any>[] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
      defineRoute({ method: 'GET', url: '/public', policy: null, handler: async (req) => ({ public: true, authenticated: req.auth !== null }) }),
      defineRoute({
        method: 'GET', url: '/x', policy: 'svc:admin_only',
        handler: async (req) => {
          handlerRuns++;
          return { secret: 'only-for-admins', user: req.auth!.userId };
        },
      }),
      defineRoute({
        method: 'DELETE', url: '/x', policy: 'svc:admin_only', status: 204,
        handler: async (_req, reply) => {
          handlerRuns++;
          reply.code(204).send();
        },
      }),
      defineRoute({
        method: 'GET', url: '/projects/:pid/things', policy: 'svc:member_of_project', params: Type.Object({ pid: Type.String() }),
        target: (req) => {
          if (req.params.pid === 'missing') throw notFound('Could not find project: missing.');
          return { project_id: req.params.pid };
        },
        handler: async (req) => ({ things: [req.params.pid] }),
      }),
      defineRoute({
        method: 'POST', url: '/things', policy: 'svc:any', status: 201, errors: [409],
        body: Type.Object({ thing: Type.Object({ name: Type.String({ minLength: 1 }), size: Type.Optional(Type.Integer()) }, { additionalProperties: false }) }, { additionalProperties: false }),
        handler: async (req) => {
          handlerRuns++;
          if (req.body.thing.name === 'dup') throw new ApiError(409, 'Duplicate thing.', 'Conflict', { 'x-dup': 'yes' });
          return { thing: req.body.thing };
        },
      }),
      defineRoute({
        method: 'GET', url: '/q', policy: null, query: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1 })), flag: Type.Optional(Type.Boolean()) }),
        handler: async (req) => ({ limit: req.query.limit ?? null, type: typeof req.query.limit, flag: req.query.flag ?? null }),
      }),
      defineRoute({
        method: 'GET', url: '/crash', policy: 'svc:any',
        handler: async () => {
          const e = new Error('db password is hunter2 at /srv/secret/path');
          throw e;
        },
      }),
      defineRoute({
        method: 'GET', url: '/crash-public', policy: null,
        handler: () => {
          throw new TypeError("Cannot read properties of undefined (reading 'id')");
        },
      }),
      defineRoute({
        method: 'GET', url: '/fine', policy: 'svc:any',
        handler: async (req) => {
          // Handlers may enforce a finer rule themselves.
          enforce(policy, req, 'svc:fine', {});
          return { fine: true };
        },
      }),
      defineRoute({ method: 'GET', url: '/teapot', policy: null, errors: [418], handler: () => { throw new ApiError(418, 'I am a teapot.'); } }),
    ];
    mountService(app, policy, { prefix: '/svc/v1', format: 'keystone', routes });
    // A service whose onRequest hook answers by itself on a protected route:
    // the policy never ran, so the framework must refuse to leak the answer.
    mountService(app, policy, {
      prefix: '/leaky',
      format: 'nova',
      onRequest: (req, reply) => {
        if (req.headers['x-shortcut']) void reply.code(200).send({ leaked: 'data' });
      },
      routes: [
        defineRoute({ method: 'GET', url: '/data', policy: 'svc:admin_only', handler: async () => ({ data: 'protected' }) }),
        defineRoute({ method: 'GET', url: '/open', policy: null, handler: async () => ({ open: true }) }),
        defineRoute({ method: 'GET', url: '/crash', policy: null, handler: async () => { throw new Error('nova boom'); } }),
      ],
    });
    await app.ready();
  });
  after(async () => {
    await app.close();
  });

  const get = (url: string, token?: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url, headers: { ...headers, ...(token ? { 'x-auth-token': token } : {}) } });

  describe('authentication and policy', () => {
    test('a public route works without a token', async () => {
      const res = await get('/svc/v1/public');
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { public: true, authenticated: false });
      assert.match(String(res.headers['x-openstack-request-id']), REQ_ID);
    });

    test('a public route still sees a valid token', async () => {
      assert.deepEqual((await get('/svc/v1/public', 'member')).json(), { public: true, authenticated: true });
    });

    test('a protected route without a token: 401 in the service\'s error format, with WWW-Authenticate; handler never runs', async () => {
      const before = handlerRuns;
      const res = await get('/svc/v1/x');
      assert.equal(res.statusCode, 401);
      assert.deepEqual(Object.keys(res.json()), ['error']);
      assert.equal(res.json().error.code, 401);
      assert.equal(res.json().error.title, 'Unauthorized');
      assert.match(res.json().error.message, /requires authentication/);
      assert.match(String(res.headers['www-authenticate']), /^Keystone uri=/);
      assert.equal(handlerRuns, before);
    });

    test('an invalid token on a protected route is 401, on a public one it is ignored', async () => {
      const res = await get('/svc/v1/x', 'garbage');
      assert.equal(res.statusCode, 401);
      assert.ok(!res.body.includes('only-for-admins'));
      const pub = await get('/svc/v1/public', 'garbage');
      assert.equal(pub.statusCode, 200);
      assert.equal(pub.json().authenticated, false);
    });

    test('a route with a policy denies a caller without the right role (403) and admits one with it', async () => {
      for (const who of ['member', 'reader']) {
        const before = handlerRuns;
        const res = await get('/svc/v1/x', who);
        assert.equal(res.statusCode, 403, who);
        assert.equal(res.json().error.code, 403);
        assert.equal(res.json().error.title, 'Forbidden');
        assert.match(res.json().error.message, /svc:admin_only/);
        assert.ok(!res.body.includes('only-for-admins'));
        assert.equal(handlerRuns, before, 'the handler must not run when the policy denies');
      }
      const ok = await get('/svc/v1/x', 'admin');
      assert.equal(ok.statusCode, 200);
      assert.deepEqual(ok.json(), { secret: 'only-for-admins', user: 'u-admin' });
    });

    test('policy applies to every method of a path (DELETE too), and status comes from the route', async () => {
      const denied = await app.inject({ method: 'DELETE', url: '/svc/v1/x', headers: { 'x-auth-token': 'member' } });
      assert.equal(denied.statusCode, 403);
      const ok = await app.inject({ method: 'DELETE', url: '/svc/v1/x', headers: { 'x-auth-token': 'admin' } });
      assert.equal(ok.statusCode, 204);
      assert.equal(ok.body, '');
    });

    test('HEAD on a protected GET route is protected too', async () => {
      assert.equal((await app.inject({ method: 'HEAD', url: '/svc/v1/x' })).statusCode, 401);
      assert.equal((await app.inject({ method: 'HEAD', url: '/svc/v1/x', headers: { 'x-auth-token': 'member' } })).statusCode, 403);
      const ok = await app.inject({ method: 'HEAD', url: '/svc/v1/x', headers: { 'x-auth-token': 'admin' } });
      assert.equal(ok.statusCode, 200);
      assert.equal(ok.body, '');
    });

    test('the policy target is built per request (project-scoped rule)', async () => {
      assert.equal((await get('/svc/v1/projects/p1/things', 'member')).statusCode, 200);
      assert.equal((await get('/svc/v1/projects/p2/things', 'member')).statusCode, 403);
      assert.equal((await get('/svc/v1/projects/p2/things', 'other')).statusCode, 200);
      // Reader lacks the member role even on its own project.
      assert.equal((await get('/svc/v1/projects/p1/things', 'reader')).statusCode, 403);
    });

    test('a target loader may answer 404; unauthenticated callers get 401 before it runs', async () => {
      const res = await get('/svc/v1/projects/missing/things', 'member');
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().error.message, 'Could not find project: missing.');
      assert.equal((await get('/svc/v1/projects/missing/things')).statusCode, 401);
    });

    test('handlers can enforce a finer rule with enforce()', async () => {
      assert.equal((await get('/svc/v1/fine', 'member')).statusCode, 403);
      assert.equal((await get('/svc/v1/fine', 'admin')).statusCode, 200);
    });

    test('a validator failure is a 500, never a pass', async () => {
      const res = await get('/svc/v1/x', 'explode');
      assert.equal(res.statusCode, 500);
      assert.ok(!res.body.includes('only-for-admins'));
      assert.ok(!res.body.includes('validator backend down'));
    });

    test('fail closed: a protected route answered without its policy being enforced becomes a 500', async () => {
      // Authenticated (authentication runs before any service hook), but the
      // service's hook answers before the policy could run.
      const res = await get('/leaky/data', 'member', { 'x-shortcut': '1' });
      assert.equal(res.statusCode, 500);
      assert.ok(!res.body.includes('leaked'), res.body);
      const id = String(res.headers['x-openstack-request-id']);
      assert.match(id, REQ_ID);
      assert.deepEqual(res.json(), { computeFault: { code: 500, message: `Internal error (request ${id}).` } });
      assert.ok(logs.lines.some((l) => l.msg === 'policy was not enforced on a protected route' && l.reqId === id));
      // The same shortcut on a public route is fine.
      const open = await get('/leaky/open', undefined, { 'x-shortcut': '1' });
      assert.equal(open.statusCode, 200);
      assert.deepEqual(open.json(), { leaked: 'data' });
      // And the normal path of the protected route works.
      assert.deepEqual((await get('/leaky/data', 'admin')).json(), { data: 'protected' });
    });
  });

  describe('errors', () => {
    test('an unexpected Error becomes a 500 carrying the request id, with no stack and no internal message', async () => {
      const res = await get('/svc/v1/crash', 'member');
      assert.equal(res.statusCode, 500);
      const id = String(res.headers['x-openstack-request-id']);
      assert.match(id, REQ_ID);
      const body = res.json();
      assert.deepEqual(Object.keys(body), ['error']);
      assert.equal(body.error.code, 500);
      assert.equal(body.error.title, 'Internal Server Error');
      assert.ok(body.error.message.includes(id), 'the message names the request id');
      for (const leak of ['hunter2', '/srv/secret', 'at ', 'stack', '.ts:']) assert.ok(!res.body.includes(leak), `body leaks "${leak}": ${res.body}`);
      // ...but the log has the whole story under the same request id.
      const line = logs.lines.find((l) => l.msg === 'unhandled error' && l.reqId === id);
      assert.ok(line, 'the error is logged with the request id');
      assert.match(JSON.stringify(line), /hunter2/);
    });

    test('a synchronous TypeError in a public handler is a 500 too', async () => {
      const res = await get('/svc/v1/crash-public');
      assert.equal(res.statusCode, 500);
      assert.ok(res.json().error.message.includes(String(res.headers['x-openstack-request-id'])));
      assert.ok(!res.body.includes('Cannot read properties'));
    });

    test('500s use the mount\'s error format', async () => {
      const res = await get('/leaky/crash');
      assert.equal(res.statusCode, 500);
      const id = String(res.headers['x-openstack-request-id']);
      assert.equal(res.json().computeFault.code, 500);
      assert.ok(res.json().computeFault.message.includes(id));
      assert.ok(!res.body.includes('nova boom'));
    });

    test('ApiError: status, message and extra headers are kept', async () => {
      const res = await app.inject({ method: 'POST', url: '/svc/v1/things', headers: { 'x-auth-token': 'member' }, payload: { thing: { name: 'dup' } } });
      assert.equal(res.statusCode, 409);
      assert.deepEqual(res.json(), { error: { code: 409, message: 'Duplicate thing.', title: 'Conflict' } });
      assert.equal(res.headers['x-dup'], 'yes');
    });

    test('an undeclared 4xx is still answered (and logged as a contract slip)', async () => {
      const res = await get('/svc/v1/teapot');
      assert.equal(res.statusCode, 418);
      assert.equal(res.json().error.message, 'I am a teapot.');
    });

    test('unknown paths: 404 in the format of the prefix', async () => {
      const a = await get('/svc/v1/nope');
      assert.equal(a.statusCode, 404);
      assert.deepEqual(a.json(), { error: { code: 404, message: 'The resource could not be found.', title: 'Not Found' } });
      assert.match(String(a.headers['x-openstack-request-id']), REQ_ID);
      const b = await get('/leaky/nope');
      assert.equal(b.statusCode, 404);
      assert.equal(b.json().itemNotFound.code, 404);
    });

    test('unsupported method on a known path: 404', async () => {
      assert.equal((await app.inject({ method: 'PATCH', url: '/svc/v1/public' })).statusCode, 404);
    });
  });

  describe('request validation', () => {
    const post = (payload: string | object, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
      app.inject({ method: 'POST', url: '/svc/v1/things', headers: { 'x-auth-token': 'member', ...headers }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });

    test('a valid body reaches the handler; status from the route', async () => {
      const res = await post({ thing: { name: 'a', size: 3 } });
      assert.equal(res.statusCode, 201);
      assert.deepEqual(res.json(), { thing: { name: 'a', size: 3 } });
    });

    test('malformed JSON: 400 MalformedRequestBody, handler not run', async () => {
      const before = handlerRuns;
      const res = await post('{"thing": {"name": ');
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error.code, 400);
      assert.equal(res.json().error.title, 'Bad Request');
      assert.match(res.json().error.message, /not valid JSON/);
      assert.equal(handlerRuns, before);
    });

    test('types are never coerced in bodies', async () => {
      for (const bad of [{ thing: { name: 'a', size: '3' } }, { thing: { name: 1 } }, { thing: { name: 'a', size: 1.5 } }, { thing: 'x' }, [], null]) {
        const before = handlerRuns;
        const res = await post(bad as object);
        assert.equal(res.statusCode, 400, JSON.stringify(bad));
        assert.match(res.json().error.message, /Invalid input/);
        assert.equal(handlerRuns, before);
      }
    });

    test('unknown fields where the schema forbids them, and missing required fields, are 400 naming the field', async () => {
      const extra = await post({ thing: { name: 'a' }, evil: true });
      assert.equal(extra.statusCode, 400);
      assert.match(extra.json().error.message, /'evil' was unexpected/);
      const nested = await post({ thing: { name: 'a', colour: 'red' } });
      assert.equal(nested.statusCode, 400);
      assert.match(nested.json().error.message, /'colour' was unexpected/);
      const missing = await post({ thing: {} });
      assert.equal(missing.statusCode, 400);
      assert.match(missing.json().error.message, /'name' is a required property/);
    });

    test('an empty body on a route with a body schema is a 400, not a crash', async () => {
      const res = await post('');
      assert.equal(res.statusCode, 400);
    });

    test('a non-JSON content type on a JSON route is refused with a 4xx', async () => {
      const res = await post('name=a', { 'content-type': 'application/x-www-form-urlencoded' });
      assert.ok(res.statusCode === 400 || res.statusCode === 415, `got ${res.statusCode}`);
    });

    test('a body over maxJsonBodyBytes is a 413 in the error format', async () => {
      const res = await post({ thing: { name: 'x'.repeat(2000) } });
      assert.equal(res.statusCode, 413);
      assert.equal(res.json().error.code, 413);
      assert.equal(res.json().error.title, 'Request Entity Too Large');
      assert.match(String(res.headers['x-openstack-request-id']), REQ_ID);
    });

    test('query strings are coerced to the schema\'s types and validated', async () => {
      const ok = await get('/svc/v1/q?limit=5&flag=true');
      assert.deepEqual(ok.json(), { limit: 5, type: 'number', flag: true });
      const bad = await get('/svc/v1/q?limit=abc');
      assert.equal(bad.statusCode, 400);
      assert.match(bad.json().error.message, /limit/);
      assert.equal((await get('/svc/v1/q?limit=0')).statusCode, 400);
    });
  });

  describe('request ids', () => {
    test('each response has its own req-<uuid> id', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) ids.add(String((await get('/svc/v1/public')).headers['x-openstack-request-id']));
      assert.equal(ids.size, 5);
      for (const id of ids) assert.match(id, REQ_ID);
    });

    test('a well-formed incoming request id is kept (for tracing across services); anything else is replaced', async () => {
      const given = 'req-0b5a8c1e-1111-4222-8333-944445555666';
      assert.equal((await get('/svc/v1/public', undefined, { 'x-openstack-request-id': given })).headers['x-openstack-request-id'], given);
      for (const bad of ['req-<script>', 'hello', 'req-0b5a8c1e-1111-4222-8333-944445555666\r\nx: y'.replace(/\r\n.*/, 'zz')]) {
        const got = String((await get('/svc/v1/public', undefined, { 'x-openstack-request-id': bad })).headers['x-openstack-request-id']);
        assert.notEqual(got, bad);
        assert.match(got, REQ_ID);
      }
    });

    test('error responses carry the id too (401, 403, 404, 400, 413, 500)', async () => {
      const responses = [
        await get('/svc/v1/x'),
        await get('/svc/v1/x', 'member'),
        await get('/svc/v1/nope'),
        await post400(),
        await get('/svc/v1/crash', 'member'),
      ];
      for (const r of responses) assert.match(String(r.headers['x-openstack-request-id']), REQ_ID, `status ${r.statusCode}`);
    });
    const post400 = () => app.inject({ method: 'POST', url: '/svc/v1/things', headers: { 'x-auth-token': 'member', 'content-type': 'application/json' }, payload: '{' });
  });
});
