/**
 * Who sees what: project isolation, roles (member writes, reader reads),
 * the reseller admin, container ACLs (`.r:*`, `.rlistings`, project:user,
 * roles) and TempURLs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startSwiftCloud, type SwiftCloud, type User } from './helpers.js';

let c: SwiftCloud;
let other: User;
let reader: User;
before(async () => {
  c = await startSwiftCloud();
  other = await c.newUser('member');
  reader = await c.newUser('reader', c.demo.projectId);
});
after(async () => {
  await c?.stop();
});

test('another project sees nothing: account, container, object, listing, writes', async () => {
  const A = c.demo.account;
  await c.sw('PUT', `${A}/private`, { token: c.demo.token });
  await c.sw('PUT', `${A}/private/secret`, { token: c.demo.token, body: 's3cr3t' });
  for (const [m, p] of [
    ['HEAD', A],
    ['GET', A],
    ['GET', `${A}/private`],
    ['HEAD', `${A}/private`],
    ['GET', `${A}/private/secret`],
    ['PUT', `${A}/private/x`],
    ['DELETE', `${A}/private/secret`],
    ['POST', `${A}/private`],
    ['PUT', `${A}/newcont`],
  ] as const) {
    const r = await c.sw(m, p, { token: other.token, ...(m === 'PUT' ? { body: 'x' } : {}) });
    assert.equal(r.status, 403, `${m} ${p}`);
    const anon = await c.sw(m, p, m === 'PUT' ? { body: 'x' } : {});
    assert.equal(anon.status, 401, `anonymous ${m} ${p}`);
  }
  assert.equal((await c.sw('GET', `${A}/private/secret`, { token: 'not-a-token' })).status, 401);
  assert.equal((await c.sw('GET', `${A}/private/secret`, { token: c.demo.token })).text, 's3cr3t');
  // the cloud admin (reseller admin) reaches every account
  assert.equal((await c.sw('GET', `${A}/private/secret`, { token: c.admin.token })).text, 's3cr3t');
  // X-Storage-Token works like X-Auth-Token
  assert.equal((await c.sw('GET', `${A}/private/secret`, { headers: { 'x-storage-token': c.demo.token } })).status, 200);
});

test('the reader role reads but cannot write', async () => {
  const A = c.demo.account;
  await c.sw('PUT', `${A}/shared-r`, { token: c.demo.token });
  await c.sw('PUT', `${A}/shared-r/o`, { token: c.demo.token, body: 'r' });
  assert.equal((await c.sw('GET', `${A}/shared-r/o`, { token: reader.token })).status, 200);
  assert.equal((await c.sw('GET', `${A}/shared-r`, { token: reader.token })).status, 200);
  assert.equal((await c.sw('HEAD', A, { token: reader.token })).status, 204);
  assert.equal((await c.sw('PUT', `${A}/shared-r/o2`, { token: reader.token, body: 'x' })).status, 403);
  assert.equal((await c.sw('DELETE', `${A}/shared-r/o`, { token: reader.token })).status, 403);
  assert.equal((await c.sw('PUT', `${A}/reader-cont`, { token: reader.token })).status, 403);
  assert.equal((await c.sw('POST', A, { token: reader.token, headers: { 'x-account-meta-x': '1' } })).status, 403);
});

test('ACL .r:* opens objects to anyone; listings need .rlistings; ACL headers show to the owner only', async () => {
  const A = c.demo.account;
  await c.sw('PUT', `${A}/public`, { token: c.demo.token, headers: { 'x-container-read': '.r:*' } });
  await c.sw('PUT', `${A}/public/page.html`, { token: c.demo.token, body: '<p>hi</p>' });
  let r = await c.sw('GET', `${A}/public/page.html`);
  assert.equal(r.status, 200);
  assert.equal(r.text, '<p>hi</p>');
  assert.equal((await c.sw('GET', `${A}/public/page.html`, { token: other.token })).status, 200);
  assert.equal((await c.sw('GET', `${A}/public`)).status, 401, 'no listing without .rlistings');
  assert.equal((await c.sw('PUT', `${A}/public/x`, { body: 'x' })).status, 401, 'read ACL does not grant writes');
  await c.sw('POST', `${A}/public`, { token: c.demo.token, headers: { 'x-container-read': '.r:*,.rlistings' } });
  r = await c.sw('GET', `${A}/public`);
  assert.equal(r.text, 'page.html\n');
  assert.equal(r.headers.get('x-container-read'), null, 'ACLs are not shown to others');
  assert.equal((await c.sw('HEAD', `${A}/public`, { token: c.demo.token })).headers.get('x-container-read'), '.r:*,.rlistings');
  assert.equal((await c.sw('POST', `${A}/public`, { token: c.demo.token, headers: { 'x-container-write': '.r:*' } })).status, 400);
  await c.sw('POST', `${A}/public`, { token: c.demo.token, headers: { 'x-remove-container-read': 'x' } });
  assert.equal((await c.sw('GET', `${A}/public/page.html`)).status, 401);
});

test('project:user ACLs grant read (with listing) and write to another project; role-name ACLs match roles', async () => {
  const A = c.demo.account;
  await c.sw('PUT', `${A}/team`, { token: c.demo.token });
  await c.sw('PUT', `${A}/team/doc`, { token: c.demo.token, body: 'doc' });
  assert.equal((await c.sw('GET', `${A}/team/doc`, { token: other.token })).status, 403);
  await c.sw('POST', `${A}/team`, { token: c.demo.token, headers: { 'x-container-read': `${other.projectId}:${other.userId}` } });
  assert.equal((await c.sw('GET', `${A}/team/doc`, { token: other.token })).text, 'doc');
  assert.equal((await c.sw('GET', `${A}/team`, { token: other.token })).text, 'doc\n');
  assert.equal((await c.sw('PUT', `${A}/team/new`, { token: other.token, body: 'n' })).status, 403);
  await c.sw('POST', `${A}/team`, { token: c.demo.token, headers: { 'x-container-write': `${other.projectName}:*` } });
  assert.equal((await c.sw('PUT', `${A}/team/new`, { token: other.token, body: 'n' })).status, 201);
  assert.equal((await c.sw('DELETE', `${A}/team/new`, { token: other.token })).status, 204);
  assert.equal((await c.sw('POST', `${A}/team`, { token: other.token, headers: { 'x-container-read': '.r:*' } })).status, 403, 'ACL holders cannot change the container');
  assert.equal((await c.sw('DELETE', `${A}/team`, { token: other.token })).status, 403);
  // a third project is still out
  const third = await c.newUser('member');
  assert.equal((await c.sw('GET', `${A}/team/doc`, { token: third.token })).status, 403);
  await c.sw('POST', `${A}/team`, { token: c.demo.token, headers: { 'x-container-read': '*:*' } });
  assert.equal((await c.sw('GET', `${A}/team/doc`, { token: third.token })).status, 200);
  assert.equal((await c.sw('GET', `${A}/team/doc`)).status, 401, '*:* needs a token');
  await c.sw('POST', `${A}/team`, { token: c.demo.token, headers: { 'x-container-read': 'auditor-role' } });
  const auditor = await c.newUser('auditor-role');
  assert.equal((await c.sw('GET', `${A}/team/doc`, { token: auditor.token })).status, 200);
  assert.equal((await c.sw('GET', `${A}/team/doc`, { token: third.token })).status, 403);
});

test('TempURL: account and container keys, sha1/sha256/sha512, expiry, methods, prefix, wrong signatures', async () => {
  const A = c.demo.account;
  const acct = `AUTH_${c.demo.projectId}`;
  await c.sw('PUT', `${A}/tmp`, { token: c.demo.token });
  await c.sw('PUT', `${A}/tmp/file.txt`, { token: c.demo.token, body: 'temporary', headers: { 'x-object-meta-private': 'p', 'x-object-meta-public-tag': 't' } });
  await c.sw('POST', A, { token: c.demo.token, headers: { 'x-account-meta-temp-url-key': 'acctkey' } });
  await c.sw('POST', `${A}/tmp`, { token: c.demo.token, headers: { 'x-container-meta-temp-url-key': 'contkey' } });
  const sign = (method: string, path: string, key: string, exp: number, alg = 'sha1') => createHmac(alg, key).update(`${method}\n${exp}\n${path}`).digest('hex');
  const exp = Math.floor(Date.now() / 1000) + 300;
  const path = `/v1/${acct}/tmp/file.txt`;
  for (const [key, alg] of [['acctkey', 'sha1'], ['contkey', 'sha256'], ['acctkey', 'sha512']] as const) {
    const r = await c.sw('GET', `${A}/tmp/file.txt?temp_url_sig=${sign('GET', path, key, exp, alg)}&temp_url_expires=${exp}`);
    assert.equal(r.status, 200, `${key} ${alg}`);
    assert.equal(r.text, 'temporary');
    assert.equal(r.headers.get('content-disposition'), 'attachment; filename="file.txt"');
    assert.equal(r.headers.get('x-object-meta-private'), null, 'private metadata is not shown through a TempURL');
    assert.equal(r.headers.get('x-object-meta-public-tag'), 't');
  }
  // signatures over the full mounted path work too, and base64 form
  const full = `/object${path}`;
  const b64 = createHmac('sha256', 'acctkey').update(`GET\n${exp}\n${full}`).digest('base64');
  assert.equal((await c.sw('GET', `${A}/tmp/file.txt?temp_url_sig=sha256:${encodeURIComponent(b64)}&temp_url_expires=${exp}&inline`)).status, 200);
  assert.equal((await c.sw('HEAD', `${A}/tmp/file.txt?temp_url_sig=${sign('GET', path, 'acctkey', exp)}&temp_url_expires=${exp}`)).status, 200, 'HEAD with a GET signature');
  assert.equal((await c.sw('GET', `${A}/tmp/file.txt?temp_url_sig=${sign('GET', path, 'wrong', exp)}&temp_url_expires=${exp}`)).status, 401);
  const past = Math.floor(Date.now() / 1000) - 10;
  assert.equal((await c.sw('GET', `${A}/tmp/file.txt?temp_url_sig=${sign('GET', path, 'acctkey', past)}&temp_url_expires=${past}`)).status, 401);
  assert.equal((await c.sw('DELETE', `${A}/tmp/file.txt?temp_url_sig=${sign('GET', path, 'acctkey', exp)}&temp_url_expires=${exp}`)).status, 401, 'method is signed');
  assert.equal((await c.sw('GET', `${A}/tmp/other?temp_url_sig=${sign('GET', path, 'acctkey', exp)}&temp_url_expires=${exp}`)).status, 401, 'path is signed');
  // PUT through a TempURL
  const upath = `/v1/${acct}/tmp/uploaded`;
  assert.equal((await c.sw('PUT', `${A}/tmp/uploaded?temp_url_sig=${sign('PUT', upath, 'acctkey', exp)}&temp_url_expires=${exp}`, { body: 'up' })).status, 201);
  assert.equal((await c.sw('GET', `${A}/tmp/uploaded`, { token: c.demo.token })).text, 'up');
  // prefix-based
  const psig = createHmac('sha256', 'acctkey').update(`GET\n${exp}\nprefix:/v1/${acct}/tmp/file`).digest('hex');
  assert.equal((await c.sw('GET', `${A}/tmp/file.txt?temp_url_sig=${psig}&temp_url_expires=${exp}&temp_url_prefix=file`)).status, 200);
  assert.equal((await c.sw('GET', `${A}/tmp/uploaded?temp_url_sig=${psig}&temp_url_expires=${exp}&temp_url_prefix=file`)).status, 401);
  // keys are hidden from non-owners
  await c.sw('POST', `${A}/tmp`, { token: c.demo.token, headers: { 'x-container-read': '.r:*,.rlistings' } });
  assert.equal((await c.sw('HEAD', `${A}/tmp`)).headers.get('x-container-meta-temp-url-key'), null);
  assert.equal((await c.sw('HEAD', `${A}/tmp`, { token: c.demo.token })).headers.get('x-container-meta-temp-url-key'), 'contkey');
});
