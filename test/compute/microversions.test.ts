/**
 * Compute API versions: the version documents and microversion negotiation
 * (OpenStack-API-Version / X-OpenStack-Nova-API-Version), as Nova does it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startComputeCloud, type ComputeCloud } from './helpers.js';

let c: ComputeCloud;
before(async () => {
  c = await startComputeCloud();
});
after(async () => {
  await c?.stop();
});

const mv = (v: string) => ({ 'OpenStack-API-Version': `compute ${v}` });

test('GET /compute/v2.1 is the version document, without a token', async () => {
  for (const url of ['/compute/v2.1', '/compute/v2.1/']) {
    const r = await c.inject('GET', url);
    assert.equal(r.status, 200, `${url}: ${r.text}`);
    const v = r.json.version;
    assert.equal(v.id, 'v2.1');
    assert.equal(v.status, 'CURRENT');
    assert.equal(v.version, '2.1');
    assert.equal(v.min_version, '2.1');
    assert.ok(v.links.some((l: { rel: string; href: string }) => l.rel === 'self' && l.href === `${c.config.publicUrl}/compute/v2.1/`));
    assert.equal(v['media-types'][0].type, 'application/vnd.openstack.compute+json;version=2.1');
  }
  const root = await c.inject('GET', '/compute');
  assert.equal(root.status, 200);
  assert.deepEqual(root.json.versions.map((v: { id: string }) => v.id), ['v2.0', 'v2.1']);
  // every listed version's self link leads to a document with the same self link
  for (const v of root.json.versions) {
    const self = v.links.filter((l: { rel: string }) => l.rel === 'self');
    assert.equal(self.length, 1);
    const doc = await c.inject('GET', new URL(self[0].href).pathname);
    assert.equal(doc.status, 200, self[0].href);
    assert.deepEqual(doc.json.version.links.filter((l: { rel: string }) => l.rel === 'self'), self);
  }
});

test('v2.0 serves the same API at the base microversion, without negotiation headers', async () => {
  const r = await c.inject('GET', '/compute/v2/flavors', { token: c.demo.token, headers: mv('2.1') });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.flavors.length > 0);
  assert.equal(r.headers['openstack-api-version'], undefined);
  const v21 = await c.api('GET', '/flavors', { token: c.demo.token });
  assert.deepEqual(r.json.flavors.map((f: { id: string }) => f.id), v21.json.flavors.map((f: { id: string }) => f.id));
  assert.equal((await c.inject('GET', '/compute/v2/servers')).status, 401);
});

test('the compute endpoint is in the service catalog', async () => {
  const r = await c.inject('GET', '/identity/v3/auth/catalog', { token: c.demo.token });
  assert.equal(r.status, 200, r.text);
  const compute = r.json.catalog.find((s: { type: string }) => s.type === 'compute');
  assert.ok(compute, 'a compute service');
  assert.equal(compute.name, 'nova');
  assert.ok(compute.endpoints.some((e: { url: string }) => e.url === `${c.config.publicUrl}/compute/v2.1`));
});

test('no version asked: the minimum (2.1) is used and echoed, with Vary', async () => {
  const r = await c.api('GET', '/flavors', { token: c.demo.token });
  assert.equal(r.status, 200);
  assert.equal(r.headers['openstack-api-version'], 'compute 2.1');
  assert.equal(r.headers['x-openstack-nova-api-version'], '2.1');
  assert.match(String(r.headers.vary), /OpenStack-API-Version/);
  assert.match(String(r.headers.vary), /X-OpenStack-Nova-API-Version/);
});

test('compute 2.1 and latest are served and echoed as 2.1', async () => {
  for (const v of ['2.1', 'latest', 'LATEST']) {
    const r = await c.api('GET', '/flavors', { token: c.demo.token, headers: mv(v) });
    assert.equal(r.status, 200, v);
    assert.equal(r.headers['openstack-api-version'], 'compute 2.1', v);
  }
  // several services in one header: the compute entry counts
  const multi = await c.api('GET', '/flavors', { token: c.demo.token, headers: { 'OpenStack-API-Version': 'volume 3.0, compute 2.1' } });
  assert.equal(multi.status, 200);
  assert.equal(multi.headers['openstack-api-version'], 'compute 2.1');
  // another service's version alone does not concern compute
  const vol = await c.api('GET', '/flavors', { token: c.demo.token, headers: { 'OpenStack-API-Version': 'volume 3.70' } });
  assert.equal(vol.status, 200);
  assert.equal(vol.headers['openstack-api-version'], 'compute 2.1');
});

test('versions outside [2.1, 2.1] are 406 (computeFault body); a malformed one is 400', async () => {
  for (const v of ['99.0', '2.2', '2.0', '1.9', '3.1']) {
    const r = await c.api('GET', '/flavors', { token: c.demo.token, headers: mv(v) });
    assert.equal(r.status, 406, `${v}: ${r.status}`);
    assert.equal(r.json.computeFault.code, 406);
    assert.equal(r.json.computeFault.message, `Version ${v} is not supported by the API. Minimum is 2.1 and maximum is 2.1.`);
  }
  for (const v of ['abc', '2', '2.1.1']) {
    const r = await c.api('GET', '/flavors', { token: c.demo.token, headers: mv(v) });
    assert.equal(r.status, 400, v);
    assert.match(r.json.badRequest.message, /invalid format/);
  }
  // also on writes: nothing is created when the version is refused
  const n = await c.liveInstances();
  const w = await c.api('POST', '/servers', { token: c.demo.token, headers: mv('99.0'), body: { server: { name: 'x', imageRef: 'x', flavorRef: '42' } } });
  assert.equal(w.status, 406);
  assert.equal(await c.liveInstances(), n);
});

test('the legacy X-OpenStack-Nova-API-Version header is honoured', async () => {
  const ok = await c.api('GET', '/flavors', { token: c.demo.token, headers: { 'X-OpenStack-Nova-API-Version': '2.1' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-openstack-nova-api-version'], '2.1');
  const bad = await c.api('GET', '/flavors', { token: c.demo.token, headers: { 'X-OpenStack-Nova-API-Version': '2.90' } });
  assert.equal(bad.status, 406);
  // the standard header wins when both are given
  const both = await c.api('GET', '/flavors', { token: c.demo.token, headers: { 'X-OpenStack-Nova-API-Version': '2.90', ...mv('2.1') } });
  assert.equal(both.status, 200);
});

test('error answers carry the version headers and request ids too; a given request id is kept', async () => {
  const r = await c.api('GET', '/servers/00000000-0000-4000-8000-000000000000', { token: c.demo.token, headers: mv('2.1') });
  assert.equal(r.status, 404);
  assert.equal(r.headers['openstack-api-version'], 'compute 2.1');
  assert.match(String(r.headers['x-openstack-request-id']), /^req-[0-9a-f-]{36}$/);
  assert.equal(r.headers['x-compute-request-id'], r.headers['x-openstack-request-id']);
  const given = 'req-12345678-1234-1234-1234-123456789abc';
  const g = await c.api('GET', '/flavors', { token: c.demo.token, headers: { 'X-OpenStack-Request-ID': given } });
  assert.equal(g.headers['x-openstack-request-id'], given);
  assert.equal(g.headers['x-compute-request-id'], given);
});
