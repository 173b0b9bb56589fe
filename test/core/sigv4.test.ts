import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { canonicalRequest, HmacSha256Key, parseAuthorization, safeEqualHex, signV4, type SigV4Input } from '../../src/core/sigv4.js';

// The worked example of Amazon's S3 documentation ("Signature Calculations for
// the Authorization Header", GET Object): its published signature.
const example: SigV4Input = {
  method: 'GET',
  path: '/test.txt',
  query: [],
  headers: {
    host: 'examplebucket.s3.amazonaws.com',
    range: 'bytes=0-9',
    'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'x-amz-date': '20130524T000000Z',
  },
  signedHeaders: ['host', 'range', 'x-amz-content-sha256', 'x-amz-date'],
  payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  amzDate: '20130524T000000Z',
  scope: { date: '20130524', region: 'us-east-1', service: 's3' },
  service: 's3',
};

test('the S3 documentation example signs to its published signature', () => {
  assert.equal(signV4(example, 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'), 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
});

test('canonical headers are trimmed and inner whitespace folded to one space', () => {
  const i: SigV4Input = { ...example, headers: { ...example.headers, range: ' bytes=0-9 ', 'x-amz-meta-a': 'a  b\tc\u00a0d', 'x-amz-meta-b': ['x', ' y '] }, signedHeaders: ['host', 'range', 'x-amz-meta-a', 'x-amz-meta-b'] };
  const lines = canonicalRequest(i).split('\n');
  assert.deepEqual(lines.slice(3, 7), ['host:examplebucket.s3.amazonaws.com', 'range:bytes=0-9', 'x-amz-meta-a:a b c d', 'x-amz-meta-b:x, y']);
  assert.equal(lines[7], '');
  assert.equal(lines[8], 'host;range;x-amz-meta-a;x-amz-meta-b');
});

test('parseAuthorization reads the three parts in any order and with any spacing', () => {
  const want = {
    access: 'AKIAIOSFODNN7EXAMPLE',
    scope: { date: '20130524', region: 'us-east-1', service: 's3' },
    signedHeaders: ['host', 'x-amz-date'],
    signature: 'abc',
  };
  assert.deepEqual(parseAuthorization('AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-date,Signature=abc'), want);
  assert.deepEqual(parseAuthorization('AWS4-HMAC-SHA256   Signature=abc , SignedHeaders=host;x-amz-date,  Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request'), want);
  assert.equal(parseAuthorization('AWS4-HMAC-SHA256Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc'), null);
  assert.equal(parseAuthorization('AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3,SignedHeaders=host,Signature=abc'), null);
  assert.equal(parseAuthorization('AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host'), null);
  assert.equal(parseAuthorization('AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,=x,SignedHeaders=host,Signature='), null);
  assert.equal(parseAuthorization('AWS AKIAIOSFODNN7EXAMPLE:sig'), null);
});

test('HmacSha256Key gives createHmac\'s digest for any key length and message (also after its buffer grew)', () => {
  for (const keyLen of [0, 1, 32, 63, 64, 65, 200]) {
    const key = randomBytes(keyLen);
    const mac = new HmacSha256Key(key);
    for (const msg of ['', 'a', 'AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n' + 'f'.repeat(64), 'é✓ ' + 'x'.repeat(2000), '\u{1F600}'.repeat(700), 'a']) {
      assert.equal(mac.hex(msg), createHmac('sha256', key).update(msg).digest('hex'), `key ${keyLen} B, message ${msg.length} chars`);
    }
  }
});

test('safeEqualHex: equal only for the same string', () => {
  const a = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41';
  assert.equal(safeEqualHex(a, a.slice()), true);
  assert.equal(safeEqualHex(a, a.slice(0, 63) + '0'), false);
  assert.equal(safeEqualHex(a, a.slice(0, 63)), false);
  assert.equal(safeEqualHex(a, a.toUpperCase()), false);
  assert.equal(safeEqualHex('', ''), true);
});
