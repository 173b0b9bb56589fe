/**
 * The large PUT through both APIs of one cloud, alternating: Swift API and
 * S3 API (UNSIGNED-PAYLOAD), each with the bench's Node client and with curl
 * (`--aws-sigv4` for S3), with the server's CPU per PUT. One 256 MiB PUT
 * per figure moves a lot from one try to the next here (fsync of three
 * replicas), so the full bench's best-of-2 S3/Swift ratio for it is mostly
 * noise; this prints enough rounds to compare. Figures only.
 *
 *   npx tsx bench/object/big-put.ts [mib=256] [rounds=3]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync, rmSync } from 'node:fs';
import { objectAccess, startBenchCloud } from '../lib/cloud.js';
import { processTreeCpuUs, s3Api, swiftApi } from '../object/load.js';

const mib = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 3);
const cloud = await startBenchCloud({ UV_THREADPOOL_SIZE: '16' });
const file = `/var/tmp/bigput-${process.pid}`;
try {
  const o = await objectAccess(cloud);
  const sw = swiftApi('swift', o.storageUrl, o.token);
  const s3 = s3Api('s3', cloud.s3Url, o.access, o.secret);
  await sw.createBucket('bp');
  const big = randomBytes(mib * 1024 * 1024);
  writeFileSync(file, big);
  const pid = cloud.proc.pid!;
  const run = async (label: string, f: () => Promise<unknown> | unknown) => {
    const c = processTreeCpuUs([pid]);
    const t = performance.now();
    await f();
    const ms = performance.now() - t;
    console.log(`${label.padEnd(14)} ${(big.length / 1e3 / ms).toFixed(0).padStart(5)} MB/s  server CPU ${((processTreeCpuUs([pid]) - c) / 1000).toFixed(0)} ms`);
  };
  for (let r = 0; r < rounds; r++) {
    await run('swift node', () => sw.put('bp', 'a', big));
    await run('s3 node', () => s3.put('bp', 'b', big));
    await run('swift curl', () => spawnSync('curl', ['-sf', '-T', file, '-H', `X-Auth-Token: ${o.token}`, `${o.storageUrl}/bp/c`]));
    await run('s3 curl', () => {
      const r = spawnSync('curl', ['-sf', '-T', file, '--aws-sigv4', 'aws:amz:RegionOne:s3', '-u', `${o.access}:${o.secret}`, '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', `${cloud.s3Url}/bp/d`], { encoding: 'utf8' });
      if (r.status !== 0) console.log('curl s3 failed', r.status, r.stderr);
    });
  }
  sw.close();
  s3.close();
} finally {
  rmSync(file, { force: true });
  await cloud.stop();
}
