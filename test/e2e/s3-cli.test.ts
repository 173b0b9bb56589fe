/**
 * End to end: the real cloud (`./stratus up`) and Debian's awscli against
 * its S3 listener, with EC2 credentials made by the real `openstack` CLI.
 * A 1 GiB file goes up as a multipart upload and comes back with the same
 * MD5; a presigned URL works with a plain HTTP GET; a wrong secret gets
 * SignatureDoesNotMatch. boto3 is used for an extra check when Debian's
 * python3-boto3 is installed.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { osJson, startCloud, type RunningCloud } from '../helpers/cloud-process.js';

const AWS = '/usr/bin/aws';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function md5File(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const c of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) h.update(c as Buffer);
  return h.digest('hex');
}

describe('S3 API with awscli (e2e)', { skip: !existsSync(AWS) && 'awscli (/usr/bin/aws) is not installed' }, () => {
  let cloud: RunningCloud;
  let work: string;
  let creds: { access: string; secret: string };
  const bucket = `e2e-${randomBytes(4).toString('hex')}`;
  const region = 'RegionOne';

  const aws = (args: string[], secret = creds.secret, timeout = 600_000): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        AWS,
        ['--endpoint-url', `http://127.0.0.1:${cloud.s3Port}`, ...args],
        {
          env: {
            PATH: '/usr/bin:/bin', HOME: work, AWS_CONFIG_FILE: join(work, 'no-config'), AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-credentials'),
            AWS_ACCESS_KEY_ID: creds.access, AWS_SECRET_ACCESS_KEY: secret, AWS_DEFAULT_REGION: region, AWS_EC2_METADATA_DISABLED: 'true', AWS_PAGER: '',
          },
          timeout,
          maxBuffer: 16 * 1024 * 1024,
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const ok = async (args: string[]): Promise<string> => {
    const r = await aws(args);
    assert.equal(r.code, 0, `aws ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'stratus-s3-e2e-'));
    cloud = await startCloud({ args: ['--no-seed'] });
    const c = await osJson<{ access: string; secret: string }>(cloud, 'stratus-admin', ['ec2', 'credentials', 'create']);
    creds = { access: c.access, secret: c.secret };
  });

  after(async () => {
    try {
      await cloud?.stop();
    } finally {
      cloud?.cleanup();
      if (work) rmSync(work, { recursive: true, force: true });
    }
  });

  it('mb, cp (1 GiB multipart) up and down with equal MD5, ls, presign + GET, rm, rb', async () => {
    assert.match(await ok(['s3', 'mb', `s3://${bucket}`]), new RegExp(`make_bucket: ${bucket}`));
    assert.match(await ok(['s3', 'ls']), new RegExp(` ${bucket}\\n`));

    // 1 GiB of random data, written in 8 MiB pieces
    const big = join(work, 'big.bin');
    const fd = openSync(big, 'w');
    try {
      const block = Buffer.alloc(8 * 1024 * 1024);
      for (let i = 0; i < 128; i++) {
        randomBytes(block.length).copy(block);
        writeSync(fd, block);
      }
    } finally {
      closeSync(fd);
    }
    const want = await md5File(big);
    await ok(['s3', 'cp', big, `s3://${bucket}/data/big.bin`, '--only-show-errors']);
    rmSync(big);
    const head = JSON.parse(await ok(['s3api', 'head-object', '--bucket', bucket, '--key', 'data/big.bin'])) as { ContentLength: number; ETag: string };
    assert.equal(head.ContentLength, 1024 * 1024 * 1024);
    assert.match(head.ETag, /^"[0-9a-f]{32}-\d+"$/, 'a multipart ETag');
    const down = join(work, 'big.down');
    await ok(['s3', 'cp', `s3://${bucket}/data/big.bin`, down, '--only-show-errors']);
    assert.equal(await md5File(down), want, 'downloaded file has the uploaded MD5');
    rmSync(down);

    const small = join(work, 'hello.txt');
    writeFileSync(small, 'hello from awscli\n');
    await ok(['s3', 'cp', small, `s3://${bucket}/hello.txt`, '--only-show-errors']);
    const ls = await ok(['s3', 'ls', `s3://${bucket}`]);
    assert.match(ls, /PRE data\//);
    assert.match(ls, /\s18 hello\.txt/);
    const rec = await ok(['s3', 'ls', `s3://${bucket}`, '--recursive']);
    assert.match(rec, /1073741824 data\/big\.bin/);

    const url = (await ok(['s3', 'presign', `s3://${bucket}/hello.txt`, '--expires-in', '300'])).trim();
    assert.match(url, /X-Amz-Signature=/);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello from awscli\n');
    const tampered = await fetch(url.replace(/X-Amz-Expires=300/, 'X-Amz-Expires=301'));
    assert.equal(tampered.status, 403);

    // s3api: list-objects-v2 and a copy keep working through the real client
    await ok(['s3api', 'copy-object', '--bucket', bucket, '--key', 'hello-copy.txt', '--copy-source', `${bucket}/hello.txt`]);
    const listed = JSON.parse(await ok(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'hello'])) as { Contents: Array<{ Key: string; Size: number }> };
    assert.deepEqual(listed.Contents.map((c) => c.Key), ['hello-copy.txt', 'hello.txt']);

    const rb = await aws(['s3', 'rb', `s3://${bucket}`]);
    assert.notEqual(rb.code, 0, 'a bucket with objects is not removed');
    assert.match(rb.stderr, /BucketNotEmpty/);
    await ok(['s3', 'rm', `s3://${bucket}/hello.txt`]);
    await ok(['s3', 'rm', `s3://${bucket}`, '--recursive']);
    assert.equal((await ok(['s3', 'ls', `s3://${bucket}`, '--recursive'])).trim(), '');
    await ok(['s3', 'rb', `s3://${bucket}`]);
    assert.doesNotMatch(await ok(['s3', 'ls']), new RegExp(bucket));
  });

  it('a wrong secret gets SignatureDoesNotMatch', async () => {
    const r = await aws(['s3', 'ls'], 'not-the-secret');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /SignatureDoesNotMatch/);
  });

  it('boto3 (when Debian python3-boto3 is installed) sees the same API', async (t) => {
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import boto3'], { env: { PATH: '/usr/bin:/bin' } });
    if (probe.status !== 0) {
      t.skip('python3-boto3 is not installed');
      return;
    }
    const script = `
import boto3, sys
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name=sys.argv[4])
b = sys.argv[5]
s3.create_bucket(Bucket=b)
s3.put_object(Bucket=b, Key='k', Body=b'boto3 body', Metadata={'m': 'v'})
o = s3.get_object(Bucket=b, Key='k')
assert o['Body'].read() == b'boto3 body' and o['Metadata'] == {'m': 'v'}
s3.delete_object(Bucket=b, Key='k')
s3.delete_bucket(Bucket=b)
print('ok')
`;
    const r = spawnSync('/usr/bin/python3', ['-c', script, `http://127.0.0.1:${cloud.s3Port}`, creds.access, creds.secret, region, `boto-${randomBytes(4).toString('hex')}`], {
      env: { PATH: '/usr/bin:/bin', HOME: work }, encoding: 'utf8', timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
  });
});
