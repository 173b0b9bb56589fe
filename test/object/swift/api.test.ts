/**
 * Swift API core: accounts, containers, objects, metadata, listings, ranges,
 * conditional requests, copies, streaming bodies and bad input that must
 * leave nothing behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startSwiftCloud, rawStatus, type SwiftCloud } from './helpers.js';

let c: SwiftCloud;
let A: string;
let T: string;
before(async () => {
  c = await startSwiftCloud();
  A = c.demo.account;
  T = c.demo.token;
});
after(async () => {
  await c?.stop();
});

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

test('/info advertises the supported middleware, at the root and under /object', async () => {
  for (const p of ['/info', '/object/info']) {
    const r = await c.sw('GET', p);
    assert.equal(r.status, 200);
    const info = JSON.parse(r.text);
    assert.equal(info.swift.max_file_size, 5 * 1024 ** 3);
    for (const k of ['tempurl', 'slo', 'dlo', 'bulk_delete', 'bulk_upload', 'account_quotas', 'container_quotas', 'versioned_writes']) assert.ok(info[k], k);
    assert.equal(info.staticweb, undefined);
  }
});

test('healthcheck answers OK (with a transaction id), at the root and under /object', async () => {
  for (const p of ['/healthcheck', '/object/healthcheck']) {
    const r = await c.sw('GET', p);
    assert.equal(r.status, 200);
    assert.equal(r.text, 'OK');
    assert.match(r.headers.get('x-trans-id') ?? '', /^tx/);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  }
});

test('underscores in metadata header names count as hyphens (as behind Swift\'s WSGI server)', async () => {
  assert.equal((await c.sw('PUT', `${A}/underscores`, { token: T, headers: { 'X-Container-Meta-test_container_meta': 'Meta1' } })).status, 201);
  const r = await c.sw('HEAD', `${A}/underscores`, { token: T });
  assert.equal(r.headers.get('x-container-meta-test-container-meta'), 'Meta1');
  const post = await c.sw('POST', A, { token: T, headers: { 'X-Account-Meta-some_key': 'v' } });
  assert.equal(post.status, 204);
  assert.match(post.headers.get('content-type') ?? '', /^text\/html/, 'an account POST names its (empty) body type, as Swift');
  assert.equal((await c.sw('HEAD', A, { token: T })).headers.get('x-account-meta-some-key'), 'v');
  await c.sw('DELETE', `${A}/underscores`, { token: T });
});

test('the catalog names the object-store endpoint of the token project', async () => {
  const r = await c.inject('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['token'], token: { id: T } }, scope: { project: { id: c.demo.projectId } } } },
  });
  const svc = r.json.token.catalog.find((s: { type: string }) => s.type === 'object-store');
  assert.equal(svc.name, 'swift');
  assert.ok(svc.endpoints.every((e: { url: string }) => e.url.endsWith(`/object/v1/AUTH_${c.demo.projectId}`)));
});

test('account: autocreated stats, metadata POST and removal, listing formats', async () => {
  let r = await c.sw('HEAD', A, { token: T });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('x-account-container-count'), '0');
  r = await c.sw('GET', A, { token: T });
  assert.equal(r.status, 204, 'empty plain listing is 204');
  r = await c.sw('POST', A, { token: T, headers: { 'x-account-meta-color': 'blue', 'x-account-meta-size': 'xl' } });
  assert.equal(r.status, 204);
  r = await c.sw('POST', A, { token: T, headers: { 'x-remove-account-meta-size': 'x' } });
  r = await c.sw('HEAD', A, { token: T });
  assert.equal(r.headers.get('x-account-meta-color'), 'blue');
  assert.equal(r.headers.get('x-account-meta-size'), null);
  for (const n of ['acct-b', 'acct-a', 'acct-c']) assert.equal((await c.sw('PUT', `${A}/${n}`, { token: T })).status, 201);
  r = await c.sw('GET', `${A}?prefix=acct-`, { token: T });
  assert.equal(r.text, 'acct-a\nacct-b\nacct-c\n');
  r = await c.sw('GET', `${A}?prefix=acct-&format=json&limit=2`, { token: T });
  assert.deepEqual(JSON.parse(r.text).map((x: { name: string }) => x.name), ['acct-a', 'acct-b']);
  assert.equal(JSON.parse(r.text)[0].count, 0);
  r = await c.sw('GET', `${A}?prefix=acct-`, { token: T, headers: { accept: 'application/xml' } });
  assert.match(r.text, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<account name="AUTH_[0-9a-f]+"><container><name>acct-a<\/name><count>0<\/count>/);
  r = await c.sw('PUT', A, { token: T });
  assert.equal(r.status, 405);
  for (const n of ['acct-b', 'acct-a', 'acct-c']) assert.equal((await c.sw('DELETE', `${A}/${n}`, { token: T })).status, 204);
});

test('container: create 201 then 202, metadata, stats, 409 when not empty, 404 when gone', async () => {
  const C = `${A}/cont1`;
  assert.equal((await c.sw('PUT', C, { token: T, headers: { 'x-container-meta-owner': 'me' } })).status, 201);
  assert.equal((await c.sw('PUT', C, { token: T, headers: { 'x-container-meta-extra': 'yes' } })).status, 202);
  assert.equal((await c.sw('POST', C, { token: T, headers: { 'x-container-meta-owner': '' } })).status, 204);
  let r = await c.sw('HEAD', C, { token: T });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('x-container-meta-owner'), null);
  assert.equal(r.headers.get('x-container-meta-extra'), 'yes');
  assert.equal(r.headers.get('x-container-object-count'), '0');
  await c.sw('PUT', `${C}/a`, { token: T, body: 'abc' });
  r = await c.sw('HEAD', C, { token: T });
  assert.equal(r.headers.get('x-container-object-count'), '1');
  assert.equal(r.headers.get('x-container-bytes-used'), '3');
  assert.equal((await c.sw('DELETE', C, { token: T })).status, 409);
  assert.equal((await c.sw('DELETE', `${C}/a`, { token: T })).status, 204);
  assert.equal((await c.sw('DELETE', `${C}/a`, { token: T })).status, 404);
  assert.equal((await c.sw('DELETE', C, { token: T })).status, 204);
  assert.equal((await c.sw('HEAD', C, { token: T })).status, 404);
  assert.equal((await c.sw('PUT', `${C}/x`, { token: T, body: 'x' })).status, 404, 'no container, no object');
});

test('object: PUT/GET/HEAD/POST with ETag, content type, metadata and UTF-8 names and values', async () => {
  const C = `${A}/objs`;
  await c.sw('PUT', C, { token: T });
  const name = encodeURIComponent('dir/naïve file ✓.txt').replace(/%2F/g, '/');
  const data = 'hello swift';
  let r = await c.sw('PUT', `${C}/${name}`, {
    token: T,
    body: data,
    headers: { 'content-type': 'text/x-test', 'x-object-meta-color': 'blue', etag: md5(data), 'content-disposition': 'attachment; filename=x' },
  });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('etag'), md5(data));
  r = await c.sw('GET', `${C}/${name}`, { token: T });
  assert.equal(r.status, 200);
  assert.equal(r.text, data);
  assert.equal(r.headers.get('content-type'), 'text/x-test');
  assert.equal(r.headers.get('x-object-meta-color'), 'blue');
  assert.equal(r.headers.get('content-disposition'), 'attachment; filename=x');
  assert.equal(r.headers.get('accept-ranges'), 'bytes');
  assert.ok(r.headers.get('last-modified'));
  r = await c.sw('HEAD', `${C}/${name}`, { token: T });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), String(data.length));
  assert.equal(r.body.length, 0);
  // POST replaces user metadata
  assert.equal((await c.sw('POST', `${C}/${name}`, { token: T, headers: { 'x-object-meta-shape': 'round', 'content-type': 'text/plain' } })).status, 202);
  r = await c.sw('HEAD', `${C}/${name}`, { token: T });
  assert.equal(r.headers.get('x-object-meta-color'), null);
  assert.equal(r.headers.get('x-object-meta-shape'), 'round');
  assert.equal(r.headers.get('content-type'), 'text/plain');
  // UTF-8 metadata value
  await c.sw('POST', `${C}/${name}`, { token: T, headers: { 'x-object-meta-word': Buffer.from('größe', 'utf8').toString('latin1') } });
  r = await c.sw('HEAD', `${C}/${name}`, { token: T });
  assert.equal(Buffer.from(r.headers.get('x-object-meta-word')!, 'latin1').toString('utf8'), 'größe');
  // guessed content type
  await c.sw('PUT', `${C}/pic.png`, { token: T, body: Buffer.from([1, 2, 3]) });
  assert.equal((await c.sw('HEAD', `${C}/pic.png`, { token: T })).headers.get('content-type'), 'image/png');
  // listing shows the UTF-8 name
  r = await c.sw('GET', `${C}?format=json&prefix=dir/`, { token: T });
  assert.equal(JSON.parse(r.text)[0].name, 'dir/naïve file ✓.txt');
});

test('chunked PUT streams, and a body of several MiB round-trips with its MD5', async () => {
  await c.sw('PUT', `${A}/stream`, { token: T });
  const chunks = Array.from({ length: 12 }, () => randomBytes(700 * 1024));
  const whole = Buffer.concat(chunks);
  let i = 0;
  const body = new ReadableStream({
    pull(ctrl) {
      if (i < chunks.length) ctrl.enqueue(chunks[i++]);
      else ctrl.close();
    },
  });
  const r = await c.sw('PUT', `${A}/stream/big.bin`, { token: T, body });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('etag'), md5(whole));
  const g = await c.sw('GET', `${A}/stream/big.bin`, { token: T });
  assert.equal(g.body.length, whole.length);
  assert.equal(md5(g.body), md5(whole));
});

test('bodies are never parsed: JSON content types and bodies above the JSON limit are stored as they are', async () => {
  await c.sw('PUT', `${A}/raw`, { token: T });
  const notJson = '{ this is not json';
  let r = await c.sw('PUT', `${A}/raw/a.json`, { token: T, body: notJson, headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 201);
  assert.equal((await c.sw('GET', `${A}/raw/a.json`, { token: T })).text, notJson);
  const big = randomBytes(c.config.maxJsonBodyBytes + 1024);
  r = await c.sw('PUT', `${A}/raw/big.json`, { token: T, body: big, headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 201);
  assert.equal(md5((await c.sw('GET', `${A}/raw/big.json`, { token: T })).body), md5(big));
  assert.equal((await c.sw('PUT', `${A}/raw/x`, { token: T, body: 'x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 201);
});

test('ranges: single, suffix, open-ended, multi-range multipart/byteranges, 416', async () => {
  const C = `${A}/ranges`;
  await c.sw('PUT', C, { token: T });
  const data = Buffer.from('0123456789abcdefghij');
  await c.sw('PUT', `${C}/r`, { token: T, body: data });
  let r = await c.sw('GET', `${C}/r`, { token: T, headers: { range: 'bytes=2-5' } });
  assert.equal(r.status, 206);
  assert.equal(r.text, '2345');
  assert.equal(r.headers.get('content-range'), 'bytes 2-5/20');
  r = await c.sw('GET', `${C}/r`, { token: T, headers: { range: 'bytes=-3' } });
  assert.equal(r.text, 'hij');
  r = await c.sw('GET', `${C}/r`, { token: T, headers: { range: 'bytes=18-' } });
  assert.equal(r.text, 'ij');
  r = await c.sw('GET', `${C}/r`, { token: T, headers: { range: 'bytes=0-1,10-12' } });
  assert.equal(r.status, 206);
  const ct = r.headers.get('content-type')!;
  const m = /^multipart\/byteranges;boundary=(\w+)$/.exec(ct);
  assert.ok(m, ct);
  const b = m[1];
  assert.equal(
    r.text,
    `--${b}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-1/20\r\n\r\n01\r\n--${b}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 10-12/20\r\n\r\nabc\r\n--${b}--`,
  );
  assert.equal(Number(r.headers.get('content-length')), r.body.length);
  r = await c.sw('GET', `${C}/r`, { token: T, headers: { range: 'bytes=50-60' } });
  assert.equal(r.status, 416);
  assert.equal(r.headers.get('content-range'), 'bytes */20');
  r = await c.sw('GET', `${C}/r`, { token: T, headers: { range: 'bytes=junk' } });
  assert.equal(r.status, 200, 'a malformed Range is ignored');
  // a large object's range (streamed, not the small-object path)
  const big = randomBytes(3 * 1024 * 1024);
  await c.sw('PUT', `${C}/big`, { token: T, body: big });
  r = await c.sw('GET', `${C}/big`, { token: T, headers: { range: 'bytes=1000000-2500000' } });
  assert.equal(md5(r.body), md5(big.subarray(1000000, 2500001)));
});

test('conditional requests: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, If-None-Match: * on PUT', async () => {
  const C = `${A}/cond`;
  await c.sw('PUT', C, { token: T });
  const put = await c.sw('PUT', `${C}/o`, { token: T, body: 'v1' });
  const etag = put.headers.get('etag')!;
  const lm = (await c.sw('HEAD', `${C}/o`, { token: T })).headers.get('last-modified')!;
  assert.equal((await c.sw('GET', `${C}/o`, { token: T, headers: { 'if-match': `"${etag}"` } })).status, 200);
  assert.equal((await c.sw('GET', `${C}/o`, { token: T, headers: { 'if-match': '"nope"' } })).status, 412);
  const nm = await c.sw('GET', `${C}/o`, { token: T, headers: { 'if-none-match': etag } });
  assert.equal(nm.status, 304);
  assert.equal(nm.headers.get('etag'), etag);
  assert.equal((await c.sw('GET', `${C}/o`, { token: T, headers: { 'if-modified-since': lm } })).status, 304);
  assert.equal((await c.sw('GET', `${C}/o`, { token: T, headers: { 'if-modified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' } })).status, 200);
  assert.equal((await c.sw('GET', `${C}/o`, { token: T, headers: { 'if-unmodified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' } })).status, 412);
  assert.equal((await c.sw('HEAD', `${C}/o`, { token: T, headers: { 'if-none-match': etag } })).status, 304);
  assert.equal((await c.sw('PUT', `${C}/o`, { token: T, body: 'v2', headers: { 'if-none-match': '*' } })).status, 412);
  assert.equal((await c.sw('GET', `${C}/o`, { token: T })).text, 'v1');
  assert.equal((await c.sw('PUT', `${C}/new`, { token: T, body: 'n', headers: { 'if-none-match': '*' } })).status, 201);
});

test('listings: prefix, delimiter, marker, end_marker, limit, reverse in json, xml and plain', async () => {
  const C = `${A}/listing`;
  await c.sw('PUT', C, { token: T });
  const names = ['a/1', 'a/2', 'a/b/3', 'b', 'c/1', 'd'];
  for (const n of names) await c.sw('PUT', `${C}/${n}`, { token: T, body: n });
  const list = async (q: string) => (await c.sw('GET', `${C}?${q}`, { token: T })).text.split('\n').filter(Boolean);
  assert.deepEqual(await list(''), names);
  assert.deepEqual(await list('delimiter=/'), ['a/', 'b', 'c/', 'd']);
  assert.deepEqual(await list('prefix=a/&delimiter=/'), ['a/1', 'a/2', 'a/b/']);
  assert.deepEqual(await list('marker=a/2'), ['a/b/3', 'b', 'c/1', 'd']);
  assert.deepEqual(await list('end_marker=b'), ['a/1', 'a/2', 'a/b/3']);
  assert.deepEqual(await list('limit=2'), ['a/1', 'a/2']);
  assert.deepEqual(await list('reverse=true&limit=2'), ['d', 'c/1']);
  let r = await c.sw('GET', `${C}?format=json&delimiter=/&prefix=a/`, { token: T });
  const j = JSON.parse(r.text);
  assert.deepEqual(j[2], { subdir: 'a/b/' });
  assert.equal(j[0].hash, md5('a/1'));
  assert.equal(j[0].bytes, 3);
  assert.match(j[0].last_modified, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  r = await c.sw('GET', `${C}?format=xml&delimiter=/&prefix=a/`, { token: T });
  assert.match(r.text, /<container name="listing"><object><name>a\/1<\/name><hash>[0-9a-f]{32}<\/hash><bytes>3<\/bytes>/);
  assert.match(r.text, /<subdir name="a\/b\/"><name>a\/b\/<\/name><\/subdir><\/container>$/);
  assert.equal((await c.sw('GET', `${C}?limit=10001`, { token: T })).status, 412);
  assert.equal((await c.sw('GET', `${C}?limit=abc`, { token: T })).status, 412);
  assert.equal((await c.sw('GET', `${C}?prefix=zzz`, { token: T })).status, 204);
  assert.equal((await c.sw('GET', `${C}?prefix=zzz&format=json`, { token: T })).text, '[]');
});

test('COPY with Destination and PUT with X-Copy-From; X-Fresh-Metadata', async () => {
  const C = `${A}/copies`;
  await c.sw('PUT', C, { token: T });
  await c.sw('PUT', `${C}/src`, { token: T, body: 'payload', headers: { 'x-object-meta-a': '1', 'content-type': 'text/x-src' } });
  let r = await c.sw('COPY', `${C}/src`, { token: T, headers: { destination: '/copies/dst1', 'x-object-meta-b': '2' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('x-copied-from'), 'copies/src');
  r = await c.sw('GET', `${C}/dst1`, { token: T });
  assert.equal(r.text, 'payload');
  assert.equal(r.headers.get('x-object-meta-a'), '1');
  assert.equal(r.headers.get('x-object-meta-b'), '2');
  assert.equal(r.headers.get('content-type'), 'text/x-src');
  r = await c.sw('PUT', `${C}/dst2`, { token: T, headers: { 'x-copy-from': 'copies/src', 'x-fresh-metadata': 'true', 'x-object-meta-c': '3' } });
  assert.equal(r.status, 201);
  r = await c.sw('HEAD', `${C}/dst2`, { token: T });
  assert.equal(r.headers.get('x-object-meta-a'), null);
  assert.equal(r.headers.get('x-object-meta-c'), '3');
  assert.equal((await c.sw('COPY', `${C}/src`, { token: T })).status, 412, 'Destination required');
  assert.equal((await c.sw('COPY', `${C}/missing`, { token: T, headers: { destination: 'copies/x' } })).status, 404);
  assert.equal((await c.sw('PUT', `${C}/dst3`, { token: T, body: 'x', headers: { 'x-copy-from': 'copies/src' } })).status, 400, 'copy with a body');
});

test('bad input: 413 on a declared size over 5 GiB, 411 without length, long names 400, ETag mismatch 422 leaves nothing', async () => {
  const C = `${A}/bad`;
  await c.sw('PUT', C, { token: T });
  const six = String(6 * 1024 ** 3);
  const r413 = await rawStatus(c.base, 'PUT', `${C}/huge`, { 'x-auth-token': T, 'content-length': six });
  assert.equal(r413.status, 413);
  const r411 = await rawStatus(c.base, 'PUT', `${C}/nolen`, { 'x-auth-token': T });
  assert.equal(r411.status, 411);
  assert.equal((await c.sw('PUT', `${C}/${'o'.repeat(1025)}`, { token: T, body: 'x' })).status, 400);
  assert.equal((await c.sw('PUT', `${A}/${'c'.repeat(257)}`, { token: T })).status, 400);
  assert.equal((await c.sw('PUT', `${C}/ok`, { token: T, body: 'x', headers: { 'x-object-meta-k': 'v'.repeat(257) } })).status, 400);
  const r422 = await c.sw('PUT', `${C}/mismatch`, { token: T, body: 'data', headers: { etag: md5('other') } });
  assert.equal(r422.status, 422);
  assert.equal((await c.sw('HEAD', `${C}/mismatch`, { token: T })).status, 404);
  assert.equal((await c.sw('PUT', `${C}/da`, { token: T, body: 'x', headers: { 'x-delete-at': '1000' } })).status, 400);
  assert.equal((await c.sw('PUT', `${C}/da`, { token: T, body: 'x', headers: { 'x-delete-after': 'soon' } })).status, 400);
  assert.equal((await c.sw('GET', `${C}?format=json`, { token: T })).text, '[]', 'nothing half-written is listed');
});

test('object metadata keeps empty values; a copy answers with the new object\'s metadata', async () => {
  await c.sw('PUT', `${A}/emptymeta`, { token: T });
  assert.equal((await c.sw('PUT', `${A}/emptymeta/o`, { token: T, body: 'x', headers: { 'x-object-meta-blank': '', 'x-object-meta-src': 'v' } })).status, 201);
  let r = await c.sw('HEAD', `${A}/emptymeta/o`, { token: T });
  assert.equal(r.headers.get('x-object-meta-blank'), '');
  assert.equal(r.headers.get('x-object-meta-src'), 'v');
  r = await c.sw('COPY', `${A}/emptymeta/o`, { token: T, headers: { destination: 'emptymeta/o2', 'x-object-meta-added': 'a' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('x-object-meta-added'), 'a');
  assert.equal(r.headers.get('x-object-meta-src'), 'v');
  assert.equal(r.headers.get('x-object-meta-blank'), '');
  assert.equal((await c.sw('POST', `${A}/emptymeta/o2`, { token: T, headers: { 'x-object-meta-k': '' } })).status, 202);
  r = await c.sw('HEAD', `${A}/emptymeta/o2`, { token: T });
  assert.equal(r.headers.get('x-object-meta-k'), '');
  assert.equal(r.headers.get('x-object-meta-src'), null, 'a POST replaces the user metadata');
});
