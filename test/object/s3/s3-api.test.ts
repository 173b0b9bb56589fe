/**
 * The S3 API in process: a real Cloud (identity, policy, object store) with
 * its S3 listener on a free loopback port, driven by a small independent
 * SigV4 client.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { startInprocCloud, type InprocCloud } from '../../helpers/inproc.js';
import { S3Client, objectPath as p, xmlAll, xmlText, type S3Response } from '../../helpers/s3-client.js';

const md5hex = (b: Buffer | string) => createHash('md5').update(b).digest('hex');
const md5b64 = (b: Buffer | string) => createHash('md5').update(b).digest('base64');
const uniq = (what: string) => `${what}-${randomBytes(4).toString('hex')}`;

function assertError(r: S3Response, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text}`);
  if (r.text) {
    assert.equal(xmlText(r.text, 'Code'), code, r.text);
    assert.ok(xmlText(r.text, 'RequestId'), 'error has a RequestId');
    assert.ok(xmlText(r.text, 'Message'), 'error has a Message');
    assert.ok(r.text.includes('<Resource>'), 'error has a Resource');
  }
  assert.ok(r.headers['x-amz-request-id'], 'x-amz-request-id header');
}

describe('S3 API (in process)', () => {
  let c: InprocCloud;
  let s3: S3Client;
  let reader: S3Client;
  let endpoint: string;
  let account: string;

  before(async () => {
    c = await startInprocCloud();
    endpoint = `http://127.0.0.1:${c.cloud.s3!.port}`;
    const demo = await c.cloud.identity.seedDemo();
    account = `AUTH_${demo.projectId}`;
    const ec2 = await c.cloud.identity.creds.createEc2(demo.userId, demo.projectId);
    s3 = new S3Client({ endpoint, access: ec2.access, secret: ec2.secret, region: c.config.region });
    const ru = await c.cloud.identity.users.create({ name: uniq('s3reader'), domain_id: 'default', password: 'pw-reader-1' });
    const readerRole = (await c.cloud.identity.assignments.findRoleByName('reader'))!;
    await c.cloud.identity.assignments.grant({ user: ru.id }, { project: demo.projectId }, readerRole.id);
    const rc = await c.cloud.identity.creds.createEc2(ru.id, demo.projectId);
    reader = new S3Client({ endpoint, access: rc.access, secret: rc.secret, region: c.config.region });
  });

  after(async () => {
    await c?.stop();
  });

  describe('authentication', () => {
    it('a wrong secret gets 403 SignatureDoesNotMatch', async () => {
      const r = await s3.withSecret('not-the-secret').request('GET', '/');
      assertError(r, 403, 'SignatureDoesNotMatch');
    });

    it('an unknown access key gets 403 InvalidAccessKeyId', async () => {
      const r = await new S3Client({ endpoint, access: 'nosuchkey', secret: 'x' }).request('GET', '/');
      assertError(r, 403, 'InvalidAccessKeyId');
    });

    it('Expect: 100-continue: the go-ahead comes only after authentication', async () => {
      const b = uniq('expect');
      assert.equal((await s3.request('PUT', p(b))).status, 200);
      const good = await s3.request('PUT', p(b, 'k'), { body: 'continued', headers: { expect: '100-continue' } });
      assert.equal(good.status, 200, good.text);
      assert.equal((await s3.request('GET', p(b, 'k'))).text, 'continued');
      // A refused request is answered without 100 Continue (the client never sends the body).
      const { request } = await import('node:http');
      const status = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
        let continued = false;
        const req = request({ host: '127.0.0.1', port: c.cloud.s3!.port, method: 'PUT', path: p(b, 'k2'), headers: { expect: '100-continue', 'content-length': '100000000' } });
        req.on('continue', () => (continued = true));
        req.on('response', (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, continued });
          req.destroy();
        });
        req.on('error', reject);
        req.flushHeaders();
      });
      assert.deepEqual(status, { status: 403, continued: false });
    });

    it('an unsigned request gets 403 AccessDenied; a stale one RequestTimeTooSkewed', async () => {
      const res = await fetch(`${endpoint}/`);
      assert.equal(res.status, 403);
      assert.equal(xmlText(await res.text(), 'Code'), 'AccessDenied');
      const r = await s3.request('GET', '/', { date: new Date(Date.now() - 3600_000) });
      assertError(r, 403, 'RequestTimeTooSkewed');
    });

    it('a malformed Authorization header and a SigV2 one are refused', async () => {
      const bad = await fetch(`${endpoint}/`, { headers: { authorization: 'AWS4-HMAC-SHA256 garbage' } });
      assert.equal(bad.status, 400);
      assert.equal(xmlText(await bad.text(), 'Code'), 'AuthorizationHeaderMalformed');
      const v2 = await fetch(`${endpoint}/`, { headers: { authorization: 'AWS AKID:c2lnbmF0dXJl' } });
      assert.equal(v2.status, 400);
      assert.equal(xmlText(await v2.text(), 'Code'), 'InvalidRequest');
    });

    it('the Authorization header is read the same whatever the order of its parts, and a changed signature fails after a good one', async () => {
      const signed = s3.sign('GET', '/');
      const { host: _host, authorization, ...rest } = signed.headers;
      const send = (auth: string) => fetch(`${endpoint}/`, { headers: { ...rest, authorization: auth } });
      const m = /^AWS4-HMAC-SHA256 (Credential=[^,]+), (SignedHeaders=[^,]+), Signature=([0-9a-f]{64})$/.exec(authorization!);
      assert.ok(m, authorization);
      const [, cred, names, sig] = m;
      assert.equal((await send(authorization!)).status, 200);
      const flipped = sig!.slice(0, 63) + (sig!.endsWith('0') ? '1' : '0');
      const wrong = await send(`AWS4-HMAC-SHA256 ${cred}, ${names}, Signature=${flipped}`);
      assert.equal(wrong.status, 403);
      assert.equal(xmlText(await wrong.text(), 'Code'), 'SignatureDoesNotMatch');
      assert.equal((await send(`AWS4-HMAC-SHA256 Signature=${sig},${names} ,  ${cred}`)).status, 200);
      const twice = await send(`AWS4-HMAC-SHA256 ${cred}, ${names}, Signature=junk Signature=${sig}`);
      assert.equal(twice.status, 403);
      assert.equal(xmlText(await twice.text(), 'Code'), 'SignatureDoesNotMatch');
      // the parse of a header seen before is remembered up to its signature: an empty one is still malformed
      const empty = await send(`AWS4-HMAC-SHA256 ${cred}, ${names}, Signature=`);
      assert.equal(empty.status, 400);
      assert.equal(xmlText(await empty.text(), 'Code'), 'AuthorizationHeaderMalformed');
      assert.equal((await send(`AWS4-HMAC-SHA256 ${cred}, ${names}, Signature=${sig}, `)).status, 200);
      assert.equal((await send(`AWS4-HMAC-SHA256 ${cred}, ${names}, Signature=  ${sig} `)).status, 200);
    });

    it('presigned URLs work with a plain GET, and expire', async () => {
      const b = uniq('presign');
      assert.equal((await s3.request('PUT', p(b))).status, 200);
      assert.equal((await s3.request('PUT', p(b, 'hello.txt'), { body: 'hello presign' })).status, 200);
      const url = s3.presign('GET', p(b, 'hello.txt'), 300);
      const ok = await fetch(url);
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), 'hello presign');
      const expired = await fetch(s3.presign('GET', p(b, 'hello.txt'), 60, { date: new Date(Date.now() - 120_000) }));
      assert.equal(expired.status, 403);
      const et = await expired.text();
      assert.equal(xmlText(et, 'Code'), 'AccessDenied');
      assert.equal(xmlText(et, 'Message'), 'Request has expired');
      const forged = await fetch(s3.withSecret('wrong').presign('GET', p(b, 'hello.txt'), 300));
      assert.equal(forged.status, 403);
      assert.equal(xmlText(await forged.text(), 'Code'), 'SignatureDoesNotMatch');
      const tooLong = await fetch(s3.presign('GET', p(b, 'hello.txt'), 604801));
      assert.equal(tooLong.status, 400);
      assert.equal(xmlText(await tooLong.text(), 'Code'), 'AuthorizationQueryParametersError');
      const up = await fetch(s3.presign('PUT', p(b, 'uploaded.txt'), 300), { method: 'PUT', body: 'presigned upload' });
      assert.equal(up.status, 200);
      assert.equal((await s3.request('GET', p(b, 'uploaded.txt'))).text, 'presigned upload');
      const over = s3.presign('GET', p(b, 'hello.txt'), 300, { query: [['response-content-type', 'text/x-test']] });
      assert.equal((await fetch(over)).headers.get('content-type'), 'text/x-test');
    });

    it("another project's credential sees none of this project's buckets", async () => {
      const b = uniq('mine');
      assert.equal((await s3.request('PUT', p(b))).status, 200);
      assert.equal((await s3.request('PUT', p(b, 'secret.txt'), { body: 'mine' })).status, 200);
      const id = c.cloud.identity;
      const prj = await id.resources.createProject({ name: uniq('other'), domain_id: 'default' });
      const u = await id.users.create({ name: uniq('other-user'), domain_id: 'default', password: 'pw-other-1' });
      await id.assignments.grant({ user: u.id }, { project: prj.id }, (await id.assignments.findRoleByName('member'))!.id);
      const ec2 = await id.creds.createEc2(u.id, prj.id);
      const other = new S3Client({ endpoint, access: ec2.access, secret: ec2.secret, region: c.config.region });
      assert.ok(!xmlAll((await other.request('GET', '/')).text, 'Name').includes(b));
      assertError(await other.request('GET', p(b, 'secret.txt')), 404, 'NoSuchBucket');
      assertError(await other.request('DELETE', p(b)), 404, 'NoSuchBucket');
      // the same name is free in the other project (its own account)
      assert.equal((await other.request('PUT', p(b))).status, 200);
      assert.equal((await other.request('DELETE', p(b))).status, 204);
      assert.equal((await s3.request('GET', p(b, 'secret.txt'))).text, 'mine');
      // a deleted credential stops working at once
      await id.creds.deleteEc2(u.id, ec2.access);
      assertError(await other.request('GET', '/'), 403, 'InvalidAccessKeyId');
    });

    it('a reader may list and read but not write', async () => {
      const b = uniq('roles');
      assert.equal((await s3.request('PUT', p(b))).status, 200);
      assert.equal((await s3.request('PUT', p(b, 'k'), { body: 'v' })).status, 200);
      assert.equal((await reader.request('GET', p(b, 'k'))).text, 'v');
      assert.ok((await reader.request('GET', '/')).text.includes(`<Name>${b}</Name>`));
      assertError(await reader.request('PUT', p(b, 'k2'), { body: 'nope' }), 403, 'AccessDenied');
      assertError(await reader.request('DELETE', p(b, 'k')), 403, 'AccessDenied');
      assertError(await reader.request('PUT', p(uniq('rb'))), 403, 'AccessDenied');
      assert.equal((await s3.request('GET', p(b, 'k'))).status, 200, 'still there');
    });
  });

  describe('buckets', () => {
    it('create, list, head, location, delete; errors change nothing', async () => {
      const b = uniq('bkt');
      const cfg = `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${c.config.region}</LocationConstraint></CreateBucketConfiguration>`;
      const made = await s3.request('PUT', p(b), { body: cfg });
      assert.equal(made.status, 200, made.text);
      assert.equal(made.headers.location, `/${b}`);
      assertError(await s3.request('PUT', p(b)), 409, 'BucketAlreadyOwnedByYou');
      assertError(await s3.request('PUT', p('Bad_Name')), 400, 'InvalidBucketName');
      assertError(await s3.request('PUT', p('ab')), 400, 'InvalidBucketName');
      const other = uniq('bkt');
      assertError(await s3.request('PUT', p(other), { body: cfg.replace(c.config.region, 'mars-1') }), 400, 'InvalidLocationConstraint');
      assertError(await s3.request('PUT', p(other), { body: '<CreateBucketConfiguration><LocationConstraint>' }), 400, 'MalformedXML');
      assert.equal((await s3.request('HEAD', p(other))).status, 404, 'not created');
      const list = await s3.request('GET', '/');
      assert.equal(list.status, 200);
      assert.ok(xmlAll(list.text, 'Name').includes(b));
      assert.ok(!xmlAll(list.text, 'Name').includes(other));
      assert.ok(xmlText(list.text, 'CreationDate'));
      const head = await s3.request('HEAD', p(b));
      assert.equal(head.status, 200);
      assert.equal(head.headers['x-amz-bucket-region'], c.config.region);
      const loc = await s3.request('GET', p(b), { query: { location: '' } });
      assert.equal(xmlText(loc.text, 'LocationConstraint'), undefined);
      assert.ok(loc.text.includes(`>${c.config.region}</LocationConstraint>`), loc.text);
      await s3.request('PUT', p(b, 'x'), { body: 'x' });
      assertError(await s3.request('DELETE', p(b)), 409, 'BucketNotEmpty');
      assert.equal((await s3.request('DELETE', p(b, 'x'))).status, 204);
      assert.equal((await s3.request('DELETE', p(b))).status, 204);
      assert.equal((await s3.request('HEAD', p(b))).status, 404);
      assertError(await s3.request('DELETE', p(b)), 404, 'NoSuchBucket');
      assertError(await s3.request('GET', p(b)), 404, 'NoSuchBucket');
    });

    it('virtual-host-style requests name the bucket in the Host', async () => {
      const b = uniq('vhost');
      const port = c.cloud.s3!.port;
      assert.equal((await s3.request('PUT', '/', { host: `${b}.localhost:${port}` })).status, 200);
      assert.equal((await s3.request('PUT', '/dir/file.txt', { host: `${b}.localhost:${port}`, body: 'vhost body' })).status, 200);
      assert.equal((await s3.request('GET', p(b, 'dir/file.txt'))).text, 'vhost body');
      const aws = await s3.request('GET', '/dir/file.txt', { host: `${b}.s3.${c.config.region.toLowerCase()}.example.com` });
      assert.equal(aws.text, 'vhost body');
      const listed = await s3.request('GET', '/', { host: `${b}.localhost:${port}`, query: { 'list-type': '2' } });
      assert.deepEqual(xmlAll(listed.text, 'Key'), ['dir/file.txt']);
    });
  });

  describe('objects', () => {
    let b: string;
    before(async () => {
      b = uniq('obj');
      assert.equal((await s3.request('PUT', p(b))).status, 200);
    });

    it('PUT/GET/HEAD with metadata, visible to the Swift side as userMeta', async () => {
      const body = 'The quick brown fox';
      const put = await s3.request('PUT', p(b, 'dir/fox.txt'), {
        body, headers: { 'content-type': 'text/plain', 'x-amz-meta-color': 'brown', 'content-md5': md5b64(body), 'cache-control': 'max-age=60' },
      });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.headers.etag, `"${md5hex(body)}"`);
      const get = await s3.request('GET', p(b, 'dir/fox.txt'));
      assert.equal(get.text, body);
      assert.equal(get.headers['content-type'], 'text/plain');
      assert.equal(get.headers['x-amz-meta-color'], 'brown');
      assert.equal(get.headers['cache-control'], 'max-age=60');
      assert.equal(get.headers.etag, `"${md5hex(body)}"`);
      assert.ok(get.headers['last-modified']);
      const head = await s3.request('HEAD', p(b, 'dir/fox.txt'));
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(body.length));
      assert.equal(head.body.length, 0);
      const meta = await c.cloud.objectStore.headObject(account, b, 'dir/fox.txt');
      assert.deepEqual(meta.userMeta, { color: 'brown' });
      // and the other way round: an object written at the engine (as the Swift API does)
      await c.cloud.objectStore.putObject(account, b, 'from-swift', 'swift data', { userMeta: { Foo: 'bar', Name: 'Zoë' } });
      const g2 = await s3.request('GET', p(b, 'from-swift'));
      assert.equal(g2.text, 'swift data');
      assert.equal(g2.headers['x-amz-meta-foo'], 'bar');
      assert.equal(g2.headers['x-amz-meta-name'], `=?UTF-8?B?${Buffer.from('Zoë').toString('base64')}?=`, 'non-ASCII metadata is RFC 2047-encoded');
    });

    it('keys with special characters round-trip', async () => {
      for (const key of ['sp ace/+plus', 'ünï/çødé', "q'uote(s)!*", 'a%20b', 'x=y&z']) {
        const put = await s3.request('PUT', p(b, key), { body: key });
        assert.equal(put.status, 200, `${key}: ${put.text}`);
        assert.equal((await s3.request('GET', p(b, key))).text, key);
      }
    });

    it('Content-MD5 mismatch is BadDigest, a bad payload hash XAmzContentSHA256Mismatch; nothing is written', async () => {
      assertError(await s3.request('PUT', p(b, 'bad-md5'), { body: 'abc', headers: { 'content-md5': md5b64('abd') } }), 400, 'BadDigest');
      assertError(await s3.request('PUT', p(b, 'bad-md5'), { body: 'abc', headers: { 'content-md5': 'not-base64!' } }), 400, 'InvalidDigest');
      assertError(await s3.request('GET', p(b, 'bad-md5')), 404, 'NoSuchKey');
      const r = await s3.request('PUT', p(b, 'bad-sha'), { body: 'abc', headers: { 'x-amz-content-sha256': createHash('sha256').update('abd').digest('hex') } });
      // the header is part of the signature: the client signs the wrong hash, the body differs
      assertError(r, 400, 'XAmzContentSHA256Mismatch');
      assert.equal((await s3.request('HEAD', p(b, 'bad-sha'))).status, 404);
    });

    it('UNSIGNED-PAYLOAD and aws-chunked streaming uploads; a bad chunk signature writes nothing', async () => {
      const data = randomBytes(200 * 1024 + 17);
      assert.equal((await s3.request('PUT', p(b, 'unsigned'), { body: data, payload: 'unsigned' })).status, 200);
      assert.equal(md5hex((await s3.request('GET', p(b, 'unsigned'))).body), md5hex(data));
      const put = await s3.request('PUT', p(b, 'chunked'), { body: data, payload: 'streaming', chunkSize: 64 * 1024, headers: { 'x-amz-meta-k': 'v' } });
      assert.equal(put.status, 200, put.text);
      const got = await s3.request('GET', p(b, 'chunked'));
      assert.equal(md5hex(got.body), md5hex(data));
      assert.equal(got.headers['x-amz-meta-k'], 'v');
      assert.equal(got.headers['content-encoding'], undefined, 'aws-chunked is not stored');
      const bad = await s3.request('PUT', p(b, 'chunked-bad'), { body: data, payload: 'streaming', chunkSize: 64 * 1024, badChunk: 2 });
      assertError(bad, 403, 'SignatureDoesNotMatch');
      assert.equal((await s3.request('HEAD', p(b, 'chunked-bad'))).status, 404);
    });

    it('aws-chunked with an unsigned payload and a CRC32 trailer (newer SDKs); a wrong CRC writes nothing', async () => {
      const data = randomBytes(100 * 1024 + 3);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(data));
      const frame = (sum: string) =>
        Buffer.concat([
          Buffer.from(`${(64 * 1024).toString(16)}\r\n`), data.subarray(0, 64 * 1024), Buffer.from('\r\n'),
          Buffer.from(`${(data.length - 64 * 1024).toString(16)}\r\n`), data.subarray(64 * 1024), Buffer.from('\r\n'),
          Buffer.from(`0\r\nx-amz-checksum-crc32:${sum}\r\n\r\n`),
        ]);
      const headers = {
        'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'x-amz-trailer': 'x-amz-checksum-crc32',
        'x-amz-decoded-content-length': String(data.length), 'content-encoding': 'aws-chunked',
      };
      const put = await s3.request('PUT', p(b, 'trailer'), { body: frame(crc.toString('base64')), headers });
      assert.equal(put.status, 200, put.text);
      assert.ok((await s3.request('GET', p(b, 'trailer'))).body.equals(data));
      assertError(await s3.request('PUT', p(b, 'trailer-bad'), { body: frame('AAAAAA=='), headers }), 400, 'BadDigest');
      assert.equal((await s3.request('HEAD', p(b, 'trailer-bad'))).status, 404);
      const cut = frame(crc.toString('base64')).subarray(0, 70 * 1024);
      assertError(await s3.request('PUT', p(b, 'trailer-cut'), { body: cut, headers }), 400, 'IncompleteBody');
      assert.equal((await s3.request('HEAD', p(b, 'trailer-cut'))).status, 404);
    });

    it('ranges', async () => {
      const data = Buffer.from('0123456789abcdefghij');
      await s3.request('PUT', p(b, 'range'), { body: data });
      const r1 = await s3.request('GET', p(b, 'range'), { headers: { range: 'bytes=2-5' } });
      assert.equal(r1.status, 206);
      assert.equal(r1.text, '2345');
      assert.equal(r1.headers['content-range'], 'bytes 2-5/20');
      assert.equal((await s3.request('GET', p(b, 'range'), { headers: { range: 'bytes=-3' } })).text, 'hij');
      assert.equal((await s3.request('GET', p(b, 'range'), { headers: { range: 'bytes=15-' } })).text, 'fghij');
      assertError(await s3.request('GET', p(b, 'range'), { headers: { range: 'bytes=50-60' } }), 416, 'InvalidRange');
      // A large object's range streams from the middle
      const big = randomBytes(3 * 1024 * 1024);
      await s3.request('PUT', p(b, 'big-range'), { body: big, payload: 'unsigned' });
      const r2 = await s3.request('GET', p(b, 'big-range'), { headers: { range: 'bytes=1000000-2000000' } });
      assert.equal(r2.status, 206);
      assert.ok(r2.body.equals(big.subarray(1000000, 2000001)));
    });

    it('conditional GET and HEAD', async () => {
      const put = await s3.request('PUT', p(b, 'cond'), { body: 'conditional' });
      const etag = put.headers.etag as string;
      const future = new Date(Date.now() + 86400_000).toUTCString();
      const past = new Date(Date.now() - 86400_000).toUTCString();
      assert.equal((await s3.request('GET', p(b, 'cond'), { headers: { 'if-match': etag } })).status, 200);
      assertError(await s3.request('GET', p(b, 'cond'), { headers: { 'if-match': '"0000"' } }), 412, 'PreconditionFailed');
      const nm = await s3.request('GET', p(b, 'cond'), { headers: { 'if-none-match': etag } });
      assert.equal(nm.status, 304);
      assert.equal(nm.headers.etag, etag);
      assert.equal(nm.body.length, 0);
      assert.equal((await s3.request('HEAD', p(b, 'cond'), { headers: { 'if-none-match': etag } })).status, 304);
      assert.equal((await s3.request('GET', p(b, 'cond'), { headers: { 'if-modified-since': future } })).status, 304);
      assert.equal((await s3.request('GET', p(b, 'cond'), { headers: { 'if-modified-since': past } })).status, 200);
      assertError(await s3.request('GET', p(b, 'cond'), { headers: { 'if-unmodified-since': past } }), 412, 'PreconditionFailed');
      assert.equal((await s3.request('HEAD', p(b, 'cond'), { headers: { 'if-match': '"nope"' } })).status, 412);
      // conditional PUT
      assertError(await s3.request('PUT', p(b, 'cond'), { body: 'again', headers: { 'if-none-match': '*' } }), 412, 'PreconditionFailed');
      assert.equal((await s3.request('GET', p(b, 'cond'))).text, 'conditional');
    });

    it('DELETE is idempotent; a missing bucket is NoSuchBucket', async () => {
      await s3.request('PUT', p(b, 'del'), { body: 'x' });
      assert.equal((await s3.request('DELETE', p(b, 'del'))).status, 204);
      assert.equal((await s3.request('DELETE', p(b, 'del'))).status, 204);
      assertError(await s3.request('GET', p(b, 'del')), 404, 'NoSuchKey');
      const nb = uniq('nobucket');
      assertError(await s3.request('PUT', p(nb, 'k'), { body: 'x' }), 404, 'NoSuchBucket');
      assertError(await s3.request('GET', p(nb, 'k')), 404, 'NoSuchBucket');
      assertError(await s3.request('DELETE', p(nb, 'k')), 404, 'NoSuchBucket');
      assertError(await s3.request('GET', p(b, 'k'.repeat(1025))), 400, 'KeyTooLongError');
    });

    it('copy with metadata directive COPY and REPLACE', async () => {
      await s3.request('PUT', p(b, 'src'), { body: 'copy me', headers: { 'x-amz-meta-a': '1', 'content-type': 'text/a' } });
      const c1 = await s3.request('PUT', p(b, 'dst1'), { headers: { 'x-amz-copy-source': `/${b}/src` } });
      assert.equal(c1.status, 200, c1.text);
      assert.equal(xmlText(c1.text, 'ETag'), `&quot;${md5hex('copy me')}&quot;`);
      const g1 = await s3.request('GET', p(b, 'dst1'));
      assert.equal(g1.text, 'copy me');
      assert.equal(g1.headers['x-amz-meta-a'], '1');
      assert.equal(g1.headers['content-type'], 'text/a');
      const c2 = await s3.request('PUT', p(b, 'dst2'), { headers: { 'x-amz-copy-source': `${b}/src`, 'x-amz-metadata-directive': 'REPLACE', 'x-amz-meta-b': '2', 'content-type': 'text/b' } });
      assert.equal(c2.status, 200);
      const g2 = await s3.request('HEAD', p(b, 'dst2'));
      assert.equal(g2.headers['x-amz-meta-a'], undefined);
      assert.equal(g2.headers['x-amz-meta-b'], '2');
      assert.equal(g2.headers['content-type'], 'text/b');
      assertError(await s3.request('PUT', p(b, 'src'), { headers: { 'x-amz-copy-source': `/${b}/src` } }), 400, 'InvalidRequest');
      assert.equal((await s3.request('PUT', p(b, 'src'), { headers: { 'x-amz-copy-source': `/${b}/src`, 'x-amz-metadata-directive': 'REPLACE', 'x-amz-meta-c': '3' } })).status, 200);
      assert.equal((await s3.request('HEAD', p(b, 'src'))).headers['x-amz-meta-c'], '3');
      assertError(await s3.request('PUT', p(b, 'dst3'), { headers: { 'x-amz-copy-source': `/${b}/missing` } }), 404, 'NoSuchKey');
      assertError(await s3.request('PUT', p(b, 'dst3'), { headers: { 'x-amz-copy-source': `/${b}/src`, 'x-amz-copy-source-if-match': '"abc"' } }), 412, 'PreconditionFailed');
      assertError(await s3.request('PUT', p(b, 'dst3'), { headers: { 'x-amz-copy-source': `/${b}/src`, 'x-amz-metadata-directive': 'MOVE' } }), 400, 'InvalidArgument');
      assert.equal((await s3.request('HEAD', p(b, 'dst3'))).status, 404);
    });

    it('multi-delete; malformed XML deletes nothing', async () => {
      for (const k of ['m1', 'm2', 'm3']) await s3.request('PUT', p(b, k), { body: k });
      const malformed = '<Delete><Object><Key>m1</Key></Object><Object><Key>m2</Key>';
      assertError(await s3.request('POST', p(b), { query: { delete: '' }, body: malformed, headers: { 'content-md5': md5b64(malformed) } }), 400, 'MalformedXML');
      assertError(await s3.request('POST', p(b), { query: { delete: '' }, body: '<Delete><Object><Key></Key></Object></Delete>' }), 400, 'MalformedXML');
      assert.equal((await s3.request('HEAD', p(b, 'm1'))).status, 200);
      const xml = '<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>m1</Key></Object><Object><Key>m2</Key></Object><Object><Key>never-there</Key></Object></Delete>';
      const r = await s3.request('POST', p(b), { query: { delete: '' }, body: xml, headers: { 'content-md5': md5b64(xml) } });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(xmlAll(r.text, 'Key').sort(), ['m1', 'm2', 'never-there']);
      assert.equal((await s3.request('HEAD', p(b, 'm1'))).status, 404);
      assert.equal((await s3.request('HEAD', p(b, 'm3'))).status, 200);
      await s3.request('PUT', p(b, 'a&b<c>"d'), { body: 'x' });
      const esc = await s3.request('POST', p(b), { query: { delete: '' }, body: '<Delete><Object><Key>a&amp;b&lt;c&gt;&quot;d</Key></Object></Delete>' });
      assert.equal(xmlText(esc.text, 'Key'), 'a&amp;b&lt;c&gt;&quot;d');
      assert.equal((await s3.request('HEAD', p(b, 'a&b<c>"d'))).status, 404);
      const quiet = await s3.request('POST', p(b), { query: { delete: '' }, body: '<Delete><Quiet>true</Quiet><Object><Key>m3</Key></Object></Delete>' });
      assert.equal(quiet.status, 200);
      assert.equal(xmlAll(quiet.text, 'Deleted').length, 0);
      assert.equal((await s3.request('HEAD', p(b, 'm3'))).status, 404);
    });
  });

  describe('listing', () => {
    let b: string;
    const keys = ['a/1', 'a/2', 'b/1', 'c', 'd e+f', 'z/y/x'];
    before(async () => {
      b = uniq('list');
      await s3.request('PUT', p(b));
      for (const k of keys) await s3.request('PUT', p(b, k), { body: k });
    });

    it('ListObjects v1 with delimiter, prefix, marker and max-keys', async () => {
      const all = await s3.request('GET', p(b));
      assert.deepEqual(xmlAll(all.text, 'Key'), keys);
      assert.equal(xmlText(all.text, 'IsTruncated'), 'false');
      assert.ok(xmlText(all.text, 'Owner'));
      const d = await s3.request('GET', p(b), { query: { delimiter: '/' } });
      assert.deepEqual(xmlAll(d.text, 'Key'), ['c', 'd e+f']);
      assert.deepEqual(xmlAll(d.text, 'Prefix').filter(Boolean), ['a/', 'b/', 'z/']);
      const pre = await s3.request('GET', p(b), { query: { prefix: 'a/' } });
      assert.deepEqual(xmlAll(pre.text, 'Key'), ['a/1', 'a/2']);
      // paging with a delimiter: NextMarker may be a common prefix
      const seen: string[] = [];
      let marker = '';
      for (let i = 0; i < 10; i++) {
        const pg = await s3.request('GET', p(b), { query: { delimiter: '/', 'max-keys': '2', marker } });
        seen.push(...xmlAll(pg.text, 'Key'), ...xmlAll(pg.text, 'Prefix').filter((x) => x.endsWith('/')));
        if (xmlText(pg.text, 'IsTruncated') !== 'true') break;
        marker = xmlText(pg.text, 'NextMarker')!;
        assert.ok(marker);
      }
      assert.deepEqual(seen.sort(), ['a/', 'b/', 'c', 'd e+f', 'z/']);
      assertError(await s3.request('GET', p(b), { query: { 'max-keys': 'x' } }), 400, 'InvalidArgument');
    });

    it('ListObjectsV2 with continuation tokens, start-after, fetch-owner and url encoding', async () => {
      const got: string[] = [];
      let token: string | undefined;
      for (let i = 0; i < 10; i++) {
        const q: Record<string, string> = { 'list-type': '2', 'max-keys': '4' };
        if (token) q['continuation-token'] = token;
        const pg = await s3.request('GET', p(b), { query: q });
        assert.equal(pg.status, 200, pg.text);
        got.push(...xmlAll(pg.text, 'Key'));
        assert.equal(xmlText(pg.text, 'KeyCount'), String(xmlAll(pg.text, 'Key').length));
        assert.equal(xmlText(pg.text, 'Owner'), undefined, 'no owner without fetch-owner');
        if (xmlText(pg.text, 'IsTruncated') !== 'true') break;
        token = xmlText(pg.text, 'NextContinuationToken');
      }
      assert.deepEqual(got, keys);
      const sa = await s3.request('GET', p(b), { query: { 'list-type': '2', 'start-after': 'b/1', 'fetch-owner': 'true' } });
      assert.deepEqual(xmlAll(sa.text, 'Key'), ['c', 'd e+f', 'z/y/x']);
      assert.ok(xmlText(sa.text, 'Owner'));
      const enc = await s3.request('GET', p(b), { query: { 'list-type': '2', 'encoding-type': 'url', prefix: 'd' } });
      assert.deepEqual(xmlAll(enc.text, 'Key'), ['d%20e%2Bf']);
      assertError(await s3.request('GET', p(b), { query: { 'list-type': '2', 'continuation-token': 'garbage' } }), 400, 'InvalidArgument');
    });
  });

  describe('multipart uploads', () => {
    let b: string;
    const MiB = 1024 * 1024;
    before(async () => {
      b = uniq('mpu');
      await s3.request('PUT', p(b));
    });

    const initiate = async (key: string, headers: Record<string, string> = {}) => {
      const r = await s3.request('POST', p(b, key), { query: { uploads: '' }, headers });
      assert.equal(r.status, 200, r.text);
      return xmlText(r.text, 'UploadId')!;
    };
    const part = async (key: string, id: string, n: number, body: Buffer) => {
      const r = await s3.request('PUT', p(b, key), { query: { partNumber: String(n), uploadId: id }, body, payload: 'unsigned' });
      assert.equal(r.status, 200, r.text);
      return r.headers.etag as string;
    };
    const completeXml = (parts: Array<[number, string]>) =>
      `<CompleteMultipartUpload>${parts.map(([n, e]) => `<Part><PartNumber>${n}</PartNumber><ETag>${e}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;

    it('initiate, upload parts (one by copy), list, complete; the parts are gone afterwards', async () => {
      const p1 = randomBytes(5 * MiB);
      const source = randomBytes(6 * MiB);
      const p3 = randomBytes(1000);
      await s3.request('PUT', p(b, 'copy-source'), { body: source, payload: 'unsigned' });
      const id = await initiate('big/object', { 'content-type': 'video/test', 'x-amz-meta-origin': 'mpu' });
      const e1 = await part('big/object', id, 1, p1);
      const cp = await s3.request('PUT', p(b, 'big/object'), {
        query: { partNumber: '2', uploadId: id }, headers: { 'x-amz-copy-source': `/${b}/copy-source`, 'x-amz-copy-source-range': `bytes=0-${5 * MiB - 1}` },
      });
      assert.equal(cp.status, 200, cp.text);
      const e2 = xmlText(cp.text, 'ETag')!.replace(/&quot;/g, '"');
      assert.equal(e2, `"${md5hex(source.subarray(0, 5 * MiB))}"`);
      const e3 = await part('big/object', id, 3, p3);
      const lp = await s3.request('GET', p(b, 'big/object'), { query: { uploadId: id, 'max-parts': '2' } });
      assert.deepEqual(xmlAll(lp.text, 'PartNumber'), ['1', '2']);
      assert.equal(xmlText(lp.text, 'IsTruncated'), 'true');
      const lp2 = await s3.request('GET', p(b, 'big/object'), { query: { uploadId: id, 'part-number-marker': '2' } });
      assert.deepEqual(xmlAll(lp2.text, 'PartNumber'), ['3']);
      assert.equal(xmlText(lp2.text, 'Size'), '1000');
      const lu = await s3.request('GET', p(b), { query: { uploads: '' } });
      assert.ok(xmlAll(lu.text, 'UploadId').includes(id));
      assert.ok(xmlAll(lu.text, 'Key').includes('big/object'));
      // bad completes change nothing
      assertError(await s3.request('POST', p(b, 'big/object'), { query: { uploadId: id }, body: completeXml([[1, e1], [2, '"0123"'], [3, e3]]) }), 400, 'InvalidPart');
      assertError(await s3.request('POST', p(b, 'big/object'), { query: { uploadId: id }, body: completeXml([[2, e2], [1, e1], [3, e3]]) }), 400, 'InvalidPartOrder');
      assertError(await s3.request('POST', p(b, 'big/object'), { query: { uploadId: id }, body: completeXml([[1, e1], [3, e3], [2, e2]]) }), 400, 'InvalidPartOrder');
      assertError(await s3.request('POST', p(b, 'big/object'), { query: { uploadId: id }, body: '<CompleteMultipartUpload><Part>' }), 400, 'MalformedXML');
      assertError(await s3.request('POST', p(b, 'big/object'), { query: { uploadId: id }, body: completeXml([[1, e1], [3, e3], [4, e3]]) }), 400, 'InvalidPart');
      assert.equal((await s3.request('HEAD', p(b, 'big/object'))).status, 404, 'nothing written yet');
      const done = await s3.request('POST', p(b, 'big/object'), { query: { uploadId: id }, body: completeXml([[1, e1], [2, e2], [3, e3]]) });
      assert.equal(done.status, 200, done.text);
      const md5s = createHash('md5');
      for (const e of [e1, e2, e3]) md5s.update(Buffer.from(e.replace(/"/g, ''), 'hex'));
      const want = `"${md5s.digest('hex')}-3"`;
      assert.equal(xmlText(done.text, 'ETag')!.replace(/&quot;/g, '"'), want);
      const got = await s3.request('GET', p(b, 'big/object'));
      assert.equal(got.status, 200);
      assert.equal(got.headers.etag, want);
      assert.equal(got.headers['content-type'], 'video/test');
      assert.equal(got.headers['x-amz-meta-origin'], 'mpu');
      assert.equal(md5hex(got.body), md5hex(Buffer.concat([p1, source.subarray(0, 5 * MiB), p3])));
      assert.equal((await s3.request('GET', p(b, 'big/object'), { headers: { 'if-none-match': want } })).status, 304);
      // the upload and its parts are gone; the segments container is hidden
      assertError(await s3.request('GET', p(b, 'big/object'), { query: { uploadId: id } }), 404, 'NoSuchUpload');
      assertError(await s3.request('POST', p(b, 'big/object'), { query: { uploadId: id }, body: completeXml([[1, e1]]) }), 404, 'NoSuchUpload');
      const segs = await c.cloud.objectStore.listContainer(account, `${b}+segments`, {});
      assert.deepEqual(segs.entries, []);
      const buckets = await s3.request('GET', '/');
      assert.ok(!xmlAll(buckets.text, 'Name').some((n) => n.includes('+')));
    });

    it('non-last parts under 5 MiB are EntityTooSmall; abort removes the upload', async () => {
      const id = await initiate('small');
      const e1 = await part('small', id, 1, Buffer.from('tiny'));
      const e2 = await part('small', id, 2, Buffer.from('tiny too'));
      assertError(await s3.request('POST', p(b, 'small'), { query: { uploadId: id }, body: completeXml([[1, e1], [2, e2]]) }), 400, 'EntityTooSmall');
      assertError(await s3.request('PUT', p(b, 'small'), { query: { partNumber: '10001', uploadId: id }, body: 'x' }), 400, 'InvalidArgument');
      assertError(await s3.request('DELETE', p(b)), 409, 'BucketNotEmpty');
      assert.equal((await s3.request('DELETE', p(b, 'small'), { query: { uploadId: id } })).status, 204);
      assertError(await s3.request('DELETE', p(b, 'small'), { query: { uploadId: id } }), 404, 'NoSuchUpload');
      assertError(await s3.request('PUT', p(b, 'small'), { query: { partNumber: '1', uploadId: id }, body: 'x' }), 404, 'NoSuchUpload');
      assertError(await s3.request('PUT', p(b, 'small'), { query: { partNumber: '1', uploadId: 'nonsense' }, body: 'x' }), 404, 'NoSuchUpload');
      const lu = await s3.request('GET', p(b), { query: { uploads: '' } });
      assert.ok(!xmlAll(lu.text, 'UploadId').includes(id));
      const segs = await c.cloud.objectStore.listContainer(account, `${b}+segments`, { prefix: `p/${id}/` });
      assert.deepEqual(segs.entries, []);
    });

    it('ListMultipartUploads with prefix, delimiter and markers', async () => {
      const ids: Record<string, string> = {};
      for (const k of ['l/a', 'l/b', 'l/sub/c', 'm']) ids[k] = await initiate(k);
      const second = await initiate('l/a');
      try {
        const all = await s3.request('GET', p(b), { query: { uploads: '', prefix: 'l/' } });
        assert.deepEqual(xmlAll(all.text, 'Key'), ['l/a', 'l/a', 'l/b', 'l/sub/c']);
        assert.deepEqual(xmlAll(all.text, 'UploadId').slice(0, 2), [ids['l/a'], second]);
        const del = await s3.request('GET', p(b), { query: { uploads: '', prefix: 'l/', delimiter: '/' } });
        assert.deepEqual(xmlAll(del.text, 'Key'), ['l/a', 'l/a', 'l/b']);
        assert.ok(del.text.includes('<CommonPrefixes><Prefix>l/sub/</Prefix></CommonPrefixes>'));
        const pg = await s3.request('GET', p(b), { query: { uploads: '', prefix: 'l/', 'max-uploads': '1' } });
        assert.equal(xmlText(pg.text, 'IsTruncated'), 'true');
        const pg2 = await s3.request('GET', p(b), {
          query: { uploads: '', prefix: 'l/', 'key-marker': xmlText(pg.text, 'NextKeyMarker')!, 'upload-id-marker': xmlText(pg.text, 'NextUploadIdMarker')! },
        });
        assert.deepEqual(xmlAll(pg2.text, 'UploadId'), [second, ids['l/b'], ids['l/sub/c']]);
      } finally {
        for (const [k, id] of [...Object.entries(ids), ['l/a', second] as const]) await s3.request('DELETE', p(b, k), { query: { uploadId: id } });
      }
    });
  });

  it('unsupported sub-resources are 501 NotImplemented; wrong methods 405', async () => {
    const b = uniq('misc');
    await s3.request('PUT', p(b));
    assertError(await s3.request('GET', p(b), { query: { policy: '' } }), 501, 'NotImplemented');
    assertError(await s3.request('POST', p(b)), 405, 'MethodNotAllowed');
    assertError(await s3.request('DELETE', '/'), 405, 'MethodNotAllowed');
  });
});
