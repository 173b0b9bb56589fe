/**
 * The large GET alone: one 256 MiB object through the Swift API, fetched
 * with curl N times, each next to an O_DIRECT read (dd) of the file the
 * server stored it in, with the server's CPU per thread during the GET
 * (from /proc: the main thread, V8's GC helpers, libuv's pool). This is
 * how the cost of fresh read buffers (GC threads busy) was found.
 *
 *   npx tsx bench/object/big-get.ts [rounds=5] [mib=256]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { objectAccess, startBenchCloud } from '../lib/cloud.js';
import { rawReadOfLargest, swiftApi, threadsCpuUs } from './load.js';

const rounds = Number(process.argv[2] ?? 5);
const mib = Number(process.argv[3] ?? 256);

const cloud = await startBenchCloud({ UV_THREADPOOL_SIZE: '16' });
try {
  const { token: tok, storageUrl: url } = await objectAccess(cloud, 'admin');
  const api = swiftApi('swift', url, tok);
  await api.createBucket('b');
  await api.put('b', 'big', randomBytes(mib * 1024 * 1024));
  const pid = cloud.proc.pid!;
  const mainTid = String(pid);
  for (let i = 0; i < rounds; i++) {
    const before = threadsCpuUs(pid);
    const r = spawnSync('curl', ['-sf', '-o', '/dev/null', '-w', '%{speed_download}', '-H', `X-Auth-Token: ${tok}`, `${url}/b/big`], { encoding: 'utf8' });
    const after = threadsCpuUs(pid);
    let main = 0;
    let others = 0;
    for (const [k, v] of after) {
      const d = (v - (before.get(k) ?? 0)) / 1000;
      if (k.endsWith(`:${mainTid}`)) main += d;
      else others += d;
    }
    const got = Number(r.stdout) / 1e6;
    const raw = rawReadOfLargest(cloud.dataDir, mib * 1024 * 1024) ?? NaN;
    console.log(`GET ${mib} MiB with curl ${got.toFixed(0)} MB/s   raw O_DIRECT read ${raw.toFixed(0)} MB/s (${((got / raw) * 100).toFixed(0)} %)   server CPU: main thread ${main} ms, other threads ${others} ms`);
  }
  api.close();
} finally {
  await cloud.stop();
}
