/**
 * Swift middleware features on the engine: DLO and SLO (incl. malformed
 * manifests that leave nothing visible), object versioning (stack and
 * history), expiry, bulk delete, archive extraction, quotas.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwiftCloud, sleep, type SwiftCloud } from './helpers.js';

let c: SwiftCloud;
let A: string;
let T: string;
const work = mkdtempSync(join(tmpdir(), 'stratus-swift-feat-'));
before(async () => {
  c = await startSwiftCloud();
  A = c.demo.account;
  T = c.demo.token;
});
after(async () => {
  await c?.stop();
  rmSync(work, { recursive: true, force: true });
});

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

test('DLO: X-Object-Manifest serves the segments in order, with ranges; the manifest itself on multipart-manifest=get', async () => {
  await c.sw('PUT', `${A}/dlo`, { token: T });
  await c.sw('PUT', `${A}/dlo_segments`, { token: T });
  const segs = [randomBytes(100_000), randomBytes(70_000), randomBytes(5)];
  for (let i = 0; i < segs.length; i++) await c.sw('PUT', `${A}/dlo_segments/big/${String(i).padStart(8, '0')}`, { token: T, body: segs[i] });
  let r = await c.sw('PUT', `${A}/dlo/big`, { token: T, body: '', headers: { 'x-object-manifest': 'dlo_segments/big/' } });
  assert.equal(r.status, 201);
  const whole = Buffer.concat(segs);
  r = await c.sw('GET', `${A}/dlo/big`, { token: T });
  assert.equal(r.status, 200);
  assert.equal(md5(r.body), md5(whole));
  assert.equal(r.headers.get('x-object-manifest'), 'dlo_segments/big/');
  assert.equal(r.headers.get('etag'), `"${md5(segs.map(md5).join(''))}"`);
  r = await c.sw('HEAD', `${A}/dlo/big`, { token: T });
  assert.equal(r.headers.get('content-length'), String(whole.length));
  r = await c.sw('GET', `${A}/dlo/big`, { token: T, headers: { range: 'bytes=99990-100009' } });
  assert.equal(r.status, 206);
  assert.deepEqual(r.body, whole.subarray(99990, 100010));
  // a TempURL for the manifest reaches its segments too
  await c.sw('POST', A, { token: T, headers: { 'x-account-meta-temp-url-key': 'dlokey' } });
  const exp = Math.floor(Date.now() / 1000) + 60;
  const sig = createHmac('sha256', 'dlokey').update(`GET\n${exp}\n/v1/AUTH_${c.demo.projectId}/dlo/big`).digest('hex');
  r = await c.sw('GET', `${A}/dlo/big?temp_url_sig=${sig}&temp_url_expires=${exp}`);
  assert.equal(r.status, 200);
  assert.equal(md5(r.body), md5(whole));
  r = await c.sw('GET', `${A}/dlo/big?multipart-manifest=get`, { token: T });
  assert.equal(r.body.length, 0);
  // a copy of a DLO is a plain object holding its contents
  r = await c.sw('COPY', `${A}/dlo/big`, { token: T, headers: { destination: 'dlo/flat' } });
  assert.equal(r.status, 201);
  r = await c.sw('GET', `${A}/dlo/flat`, { token: T });
  assert.equal(md5(r.body), md5(whole));
  assert.equal(r.headers.get('x-object-manifest'), null);
  // a plain object becomes a DLO by a POST of X-Object-Manifest (what Tempest's segment upload does)
  assert.equal((await c.sw('PUT', `${A}/dlo/later`, { token: T, body: '' })).status, 201);
  assert.equal((await c.sw('POST', `${A}/dlo/later`, { token: T, headers: { 'x-object-manifest': 'dlo_segments/big/' } })).status, 202);
  r = await c.sw('HEAD', `${A}/dlo/later`, { token: T });
  assert.equal(r.headers.get('x-object-manifest'), 'dlo_segments/big/');
  assert.equal(r.headers.get('etag'), `"${md5(segs.map(md5).join(''))}"`);
  assert.equal(r.headers.get('content-length'), String(whole.length));
  assert.equal(md5((await c.sw('GET', `${A}/dlo/later`, { token: T })).body), md5(whole));
  assert.equal((await c.sw('POST', `${A}/dlo/later`, { token: T, headers: { 'x-object-manifest': 'no-slash' } })).status, 400);
});

test('SLO: manifest put, GET of the whole and of ranges, manifest get (raw too), nested, delete with segments', async () => {
  await c.sw('PUT', `${A}/slo`, { token: T });
  await c.sw('PUT', `${A}/slo_seg`, { token: T });
  const segs = [randomBytes(200_000), randomBytes(1000), randomBytes(300)];
  for (let i = 0; i < segs.length; i++) await c.sw('PUT', `${A}/slo_seg/s${i}`, { token: T, body: segs[i] });
  const manifest = segs.map((s, i) => ({ path: `/slo_seg/s${i}`, etag: md5(s), size_bytes: s.length }));
  manifest[2] = { ...manifest[2]!, range: '100-199' } as (typeof manifest)[number];
  let r = await c.sw('PUT', `${A}/slo/obj?multipart-manifest=put`, { token: T, body: JSON.stringify(manifest), headers: { 'content-type': 'application/x-test' } });
  assert.equal(r.status, 201, r.text);
  const whole = Buffer.concat([segs[0]!, segs[1]!, segs[2]!.subarray(100, 200)]);
  const sloEtag = md5(md5(segs[0]!) + md5(segs[1]!) + `${md5(segs[2]!)}:100-199;`);
  assert.equal(r.headers.get('etag'), `"${sloEtag}"`);
  r = await c.sw('GET', `${A}/slo/obj`, { token: T });
  assert.equal(r.status, 200);
  assert.equal(md5(r.body), md5(whole));
  assert.equal(r.headers.get('x-static-large-object'), 'True');
  assert.equal(r.headers.get('content-type'), 'application/x-test');
  assert.equal(r.headers.get('etag'), `"${sloEtag}"`);
  r = await c.sw('HEAD', `${A}/slo/obj`, { token: T });
  assert.equal(r.headers.get('content-length'), String(whole.length));
  assert.equal(r.headers.get('content-type'), 'application/x-test');
  r = await c.sw('GET', `${A}/slo?format=json`, { token: T });
  const row = JSON.parse(r.text).find((e: { name: string }) => e.name === 'obj');
  assert.equal(row.bytes, whole.length, 'listings show the large object size');
  assert.equal(row.content_type, 'application/x-test');
  await c.sw('POST', `${A}/slo/obj`, { token: T, headers: { 'content-type': 'text/x-other' } });
  r = await c.sw('GET', `${A}/slo?format=json`, { token: T });
  assert.deepEqual(
    (({ bytes, content_type }) => ({ bytes, content_type }))(JSON.parse(r.text).find((e: { name: string }) => e.name === 'obj')),
    { bytes: whole.length, content_type: 'text/x-other' },
  );
  r = await c.sw('GET', `${A}/slo/obj`, { token: T, headers: { range: 'bytes=199990-200010,-50' } });
  assert.equal(r.status, 206);
  assert.ok(r.body.includes(whole.subarray(199990, 200011)));
  assert.ok(r.body.includes(whole.subarray(whole.length - 50)));
  assert.equal((await c.sw('GET', `${A}/slo/obj`, { token: T, headers: { 'if-match': `"${sloEtag}"` } })).status, 200);
  r = await c.sw('GET', `${A}/slo/obj?multipart-manifest=get`, { token: T });
  const stored = JSON.parse(r.text);
  assert.equal(stored.length, 3);
  assert.equal(stored[0].name, '/slo_seg/s0');
  assert.equal(stored[2].range, '100-199');
  r = await c.sw('GET', `${A}/slo/obj?multipart-manifest=get&format=raw`, { token: T });
  assert.deepEqual(JSON.parse(r.text)[0], { path: '/slo_seg/s0', etag: md5(segs[0]!), size_bytes: segs[0]!.length });
  // nested SLO
  r = await c.sw('PUT', `${A}/slo/outer?multipart-manifest=put`, {
    token: T,
    body: JSON.stringify([{ path: '/slo/obj' }, { path: '/slo_seg/s1' }]),
  });
  assert.equal(r.status, 201, r.text);
  r = await c.sw('GET', `${A}/slo/outer`, { token: T });
  assert.equal(md5(r.body), md5(Buffer.concat([whole, segs[1]!])));
  // a segment replaced after the manifest: the read fails rather than mixing data
  await c.sw('PUT', `${A}/slo_seg/s9`, { token: T, body: 'nine' });
  await c.sw('PUT', `${A}/slo/fragile?multipart-manifest=put`, { token: T, body: JSON.stringify([{ path: '/slo_seg/s9' }, { path: '/slo_seg/s1' }]) });
  await c.sw('PUT', `${A}/slo_seg/s9`, { token: T, body: 'NINE' });
  assert.equal((await c.sw('GET', `${A}/slo/fragile`, { token: T })).status, 409);
  // a later segment that changed cuts the body short (the status is already out)
  await c.sw('PUT', `${A}/slo/fragile2?multipart-manifest=put`, { token: T, body: JSON.stringify([{ path: '/slo_seg/s0' }, { path: '/slo_seg/s9' }]) });
  await c.sw('PUT', `${A}/slo_seg/s9`, { token: T, body: 'nine again' });
  await assert.rejects(c.sw('GET', `${A}/slo/fragile2`, { token: T }));
  // delete with segments
  r = await c.sw('DELETE', `${A}/slo/obj?multipart-manifest=delete`, { token: T, headers: { accept: 'application/json' } });
  assert.equal(r.status, 200);
  const res = JSON.parse(r.text);
  assert.equal(res['Number Deleted'], 4);
  assert.equal(res['Response Status'], '200 OK');
  assert.equal((await c.sw('HEAD', `${A}/slo_seg/s0`, { token: T })).status, 404);
  assert.equal((await c.sw('HEAD', `${A}/slo/obj`, { token: T })).status, 404);
});

test('SLO: malformed or unsatisfiable manifests are 400 and nothing becomes visible', async () => {
  await c.sw('PUT', `${A}/slobad`, { token: T });
  await c.sw('PUT', `${A}/slobad/seg`, { token: T, body: 'segment' });
  const bad = [
    'not json',
    '{}',
    '[]',
    JSON.stringify([{ path: 'no-slash-form' }]),
    JSON.stringify([{ path: '/slobad/seg', bogus: 1 }]),
    JSON.stringify([{ path: '/slobad/missing' }]),
    JSON.stringify([{ path: '/slobad/seg', etag: md5('other') }]),
    JSON.stringify([{ path: '/slobad/seg', size_bytes: 99 }]),
    JSON.stringify([{ path: '/slobad/seg', range: '50-60' }]),
    JSON.stringify(Array.from({ length: 1001 }, () => ({ path: '/slobad/seg' }))),
  ];
  for (const body of bad) {
    const r = await c.sw('PUT', `${A}/slobad/manifest?multipart-manifest=put`, { token: T, body });
    assert.equal(r.status, 400, `${body.slice(0, 60)} → ${r.status} ${r.text}`);
  }
  const r = await c.sw('PUT', `${A}/slobad/manifest?multipart-manifest=put`, { token: T, body: JSON.stringify([{ path: '/slobad/missing' }, { path: '/slobad/seg', etag: 'x' }]) });
  assert.match(r.text, /Errors:\n\/slobad\/missing, 404 Not Found\n\/slobad\/seg, Etag Mismatch/);
  assert.equal((await c.sw('HEAD', `${A}/slobad/manifest`, { token: T })).status, 404);
  assert.equal((await c.sw('GET', `${A}/slobad`, { token: T })).text, 'seg\n');
  // the ETag header of a manifest PUT is the SLO's ETag
  const e = await c.sw('PUT', `${A}/slobad/manifest?multipart-manifest=put`, { token: T, body: JSON.stringify([{ path: '/slobad/seg' }]), headers: { etag: md5('wrong') } });
  assert.equal(e.status, 422);
  assert.equal((await c.sw('HEAD', `${A}/slobad/manifest`, { token: T })).status, 404);
});

test('versioning: X-Versions-Location (stack) restores on delete; X-History-Location keeps history', async () => {
  await c.sw('PUT', `${A}/vers-archive`, { token: T });
  await c.sw('PUT', `${A}/vers`, { token: T, headers: { 'x-versions-location': 'vers-archive' } });
  assert.equal((await c.sw('HEAD', `${A}/vers`, { token: T })).headers.get('x-versions-location'), 'vers-archive');
  for (const v of ['v1', 'v2', 'v3']) await c.sw('PUT', `${A}/vers/doc`, { token: T, body: v });
  let list = (await c.sw('GET', `${A}/vers-archive`, { token: T })).text.split('\n').filter(Boolean);
  assert.equal(list.length, 2);
  assert.ok(list.every((n) => n.startsWith('003doc/')));
  assert.equal((await c.sw('GET', `${A}/vers/doc`, { token: T })).text, 'v3');
  assert.equal((await c.sw('DELETE', `${A}/vers/doc`, { token: T })).status, 204);
  assert.equal((await c.sw('GET', `${A}/vers/doc`, { token: T })).text, 'v2');
  await c.sw('DELETE', `${A}/vers/doc`, { token: T });
  assert.equal((await c.sw('GET', `${A}/vers/doc`, { token: T })).text, 'v1');
  await c.sw('DELETE', `${A}/vers/doc`, { token: T });
  assert.equal((await c.sw('GET', `${A}/vers/doc`, { token: T })).status, 404);
  assert.equal((await c.sw('GET', `${A}/vers-archive`, { token: T })).status, 204);
  // a TempURL write to a versioned container archives the old version too
  await c.sw('PUT', `${A}/vers/tu`, { token: T, body: 'old' });
  await c.sw('POST', `${A}/vers`, { token: T, headers: { 'x-container-meta-temp-url-key': 'verskey' } });
  const exp = Math.floor(Date.now() / 1000) + 60;
  const sig = createHmac('sha1', 'verskey').update(`PUT\n${exp}\n/v1/AUTH_${c.demo.projectId}/vers/tu`).digest('hex');
  assert.equal((await c.sw('PUT', `${A}/vers/tu?temp_url_sig=${sig}&temp_url_expires=${exp}`, { body: 'new' })).status, 201);
  assert.equal((await c.sw('GET', `${A}/vers-archive?prefix=002tu/`, { token: T })).text.split('\n').filter(Boolean).length, 1);

  await c.sw('PUT', `${A}/hist-archive`, { token: T });
  await c.sw('PUT', `${A}/hist`, { token: T, headers: { 'x-history-location': 'hist-archive' } });
  await c.sw('PUT', `${A}/hist/doc`, { token: T, body: 'h1' });
  await c.sw('PUT', `${A}/hist/doc`, { token: T, body: 'h2' });
  assert.equal((await c.sw('DELETE', `${A}/hist/doc`, { token: T })).status, 204);
  assert.equal((await c.sw('GET', `${A}/hist/doc`, { token: T })).status, 404);
  list = (await c.sw('GET', `${A}/hist-archive`, { token: T })).text.split('\n').filter(Boolean);
  assert.equal(list.length, 2);
  const bodies = await Promise.all(list.map(async (n) => (await c.sw('GET', `${A}/hist-archive/${n}`, { token: T })).text));
  assert.deepEqual(bodies.sort(), ['h1', 'h2']);
  assert.equal((await c.sw('POST', `${A}/hist`, { token: T, headers: { 'x-versions-location': 'a', 'x-history-location': 'b' } })).status, 400);
  await c.sw('POST', `${A}/hist`, { token: T, headers: { 'x-remove-history-location': 'x' } });
  assert.equal((await c.sw('HEAD', `${A}/hist`, { token: T })).headers.get('x-history-location'), null);
});

test('expiry: X-Delete-After hides the object when due and the expirer removes it from listings', async () => {
  await c.sw('PUT', `${A}/exp`, { token: T });
  const r = await c.sw('PUT', `${A}/exp/soon`, { token: T, body: 'bye', headers: { 'x-delete-after': '1' } });
  assert.equal(r.status, 201);
  const h = await c.sw('HEAD', `${A}/exp/soon`, { token: T });
  assert.ok(Number(h.headers.get('x-delete-at')) > Date.now() / 1000);
  await c.sw('PUT', `${A}/exp/later`, { token: T, body: 'stay', headers: { 'x-delete-at': String(Math.floor(Date.now() / 1000) + 3600) } });
  // POST without X-Delete-At removes the expiry (Swift semantics)
  await c.sw('POST', `${A}/exp/later`, { token: T, headers: { 'x-object-meta-k': 'v' } });
  assert.equal((await c.sw('HEAD', `${A}/exp/later`, { token: T })).headers.get('x-delete-at'), null);
  await sleep(2100);
  assert.equal((await c.sw('GET', `${A}/exp/soon`, { token: T })).status, 404);
  await c.cloud.objectStore.expireOnce();
  assert.equal((await c.sw('GET', `${A}/exp`, { token: T })).text, 'later\n');
});

test('bulk delete: objects and containers in one request, not-found counted, JSON and plain answers', async () => {
  await c.sw('PUT', `${A}/bulk`, { token: T });
  for (const n of ['a', 'b c', 'd']) await c.sw('PUT', `${A}/bulk/${encodeURIComponent(n)}`, { token: T, body: n });
  let r = await c.sw('POST', `${A}?bulk-delete`, {
    token: T,
    body: ['/bulk/a', `/bulk/${encodeURIComponent('b c')}`, '/bulk/missing', '/bulk/d', '/bulk'].join('\n') + '\n',
    headers: { 'content-type': 'text/plain', accept: 'application/json' },
  });
  assert.equal(r.status, 200);
  const res = JSON.parse(r.text);
  assert.equal(res['Number Deleted'], 4);
  assert.equal(res['Number Not Found'], 1);
  assert.deepEqual(res.Errors, []);
  assert.equal(res['Response Status'], '200 OK');
  assert.equal((await c.sw('HEAD', `${A}/bulk`, { token: T })).status, 404);
  await c.sw('PUT', `${A}/bulk2`, { token: T });
  await c.sw('PUT', `${A}/bulk2/x`, { token: T, body: 'x' });
  r = await c.sw('DELETE', `${A}?bulk-delete`, { token: T, body: '/bulk2\n', headers: { 'content-type': 'text/plain' } });
  assert.match(r.text, /Number Deleted: 0\nNumber Not Found: 0\nResponse Status: 400 Bad Request\nResponse Body: \nErrors:\n\/bulk2, 409 Conflict\n/);
  const other = await c.newUser('member');
  r = await c.sw('POST', `${A}?bulk-delete`, { token: other.token, body: '/bulk2/x\n', headers: { accept: 'application/json' } });
  assert.equal(JSON.parse(r.text).Errors[0][1], '403 Forbidden');
  assert.equal((await c.sw('HEAD', `${A}/bulk2/x`, { token: T })).status, 200);
});

test('extract-archive: tar and tar.gz into the account (first directory = container) and into a container/prefix', async () => {
  const src = join(work, 'tree');
  mkdirSync(join(src, 'arch1', 'sub'), { recursive: true });
  writeFileSync(join(src, 'arch1', 'a.txt'), 'A');
  writeFileSync(join(src, 'arch1', 'sub', 'b.bin'), randomBytes(2000));
  const long = 'n'.repeat(150);
  writeFileSync(join(src, 'arch1', `${long}.txt`), 'long');
  execFileSync('tar', ['-C', src, '-cf', join(work, 'a.tar'), 'arch1']);
  execFileSync('tar', ['-C', join(src, 'arch1'), '-czf', join(work, 'b.tgz'), 'a.txt', 'sub']);
  let r = await c.sw('PUT', `${A}?extract-archive=tar`, { token: T, body: readFileSync(join(work, 'a.tar')), headers: { accept: 'application/json' } });
  assert.equal(r.status, 200);
  let res = JSON.parse(r.text);
  assert.equal(res['Number Files Created'], 3, r.text);
  assert.equal(res['Response Status'], '201 Created');
  r = await c.sw('GET', `${A}/arch1`, { token: T });
  assert.deepEqual(r.text.split('\n').filter(Boolean).sort(), ['a.txt', `${long}.txt`, 'sub/b.bin'].sort());
  assert.equal((await c.sw('GET', `${A}/arch1/a.txt`, { token: T })).text, 'A');
  assert.equal((await c.sw('HEAD', `${A}/arch1/a.txt`, { token: T })).headers.get('content-type'), 'text/plain');
  await c.sw('PUT', `${A}/arch2`, { token: T });
  r = await c.sw('PUT', `${A}/arch2/pre?extract-archive=tar.gz`, { token: T, body: readFileSync(join(work, 'b.tgz')), headers: { accept: 'application/json' } });
  res = JSON.parse(r.text);
  assert.equal(res['Number Files Created'], 2, r.text);
  r = await c.sw('GET', `${A}/arch2`, { token: T });
  assert.deepEqual(r.text.split('\n').filter(Boolean), ['pre/a.txt', 'pre/sub/b.bin']);
  r = await c.sw('PUT', `${A}/arch2?extract-archive=tar`, { token: T, body: randomBytes(1024) });
  assert.equal(r.status, 400);
  r = await c.sw('PUT', `${A}/arch2?extract-archive=zip`, { token: T, body: 'x' });
  assert.equal(r.status, 400);
});

test('quotas: container bytes and count (413), account bytes set only by the reseller admin', async () => {
  await c.sw('PUT', `${A}/quota`, { token: T, headers: { 'x-container-meta-quota-bytes': '10', 'x-container-meta-quota-count': '2' } });
  assert.equal((await c.sw('PUT', `${A}/quota/a`, { token: T, body: '12345' })).status, 201);
  assert.equal((await c.sw('PUT', `${A}/quota/b`, { token: T, body: '123456' })).status, 413);
  assert.equal((await c.sw('PUT', `${A}/quota/b`, { token: T, body: '1' })).status, 201);
  assert.equal((await c.sw('PUT', `${A}/quota/c`, { token: T, body: '1' })).status, 413, 'count quota');
  assert.equal((await c.sw('PUT', `${A}/quota/a`, { token: T, body: '1234' })).status, 201, 'overwrite within the count');
  assert.equal((await c.sw('POST', `${A}/quota`, { token: T, headers: { 'x-container-meta-quota-bytes': 'lots' } })).status, 400);
  // account quota
  const acc = await c.newUser('member');
  await c.sw('PUT', `${acc.account}/q`, { token: acc.token });
  assert.equal((await c.sw('POST', acc.account, { token: acc.token, headers: { 'x-account-meta-quota-bytes': '100' } })).status, 403);
  assert.equal((await c.sw('POST', acc.account, { token: c.admin.token, headers: { 'x-account-meta-quota-bytes': '100' } })).status, 204);
  assert.equal((await c.sw('PUT', `${acc.account}/q/small`, { token: acc.token, body: randomBytes(60) })).status, 201);
  assert.equal((await c.sw('PUT', `${acc.account}/q/big`, { token: acc.token, body: randomBytes(60) })).status, 413);
  assert.equal((await c.sw('POST', acc.account, { token: acc.token, headers: { 'x-remove-account-meta-quota-bytes': 'x' } })).status, 403);
});
