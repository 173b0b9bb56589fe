/**
 * bench/compute: control-plane time from POST /servers to ACTIVE (ACTIVE is
 * reported once the QEMU process runs, before the guest has booted), at 1 and
 * 10 concurrent; time from POST to the guest's console marker; extra host
 * memory per instance beyond the guest's RAM. Prints figures only.
 * Run: `npx tsx bench/compute/run.ts` after a build.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBenchCloud, pct, rssMb } from '../lib/cloud.js';

async function main() {
  const cloud = await startBenchCloud({ STRATUS_GUEST_IMAGE_CACHE: process.env.STRATUS_GUEST_IMAGE_CACHE ?? '/var/tmp/stratus-test-cache/guest-image' });
  try {
    const tok = await cloud.token('demo');
    const admin = await cloud.token('admin');
    const imgs = await cloud.api(tok, 'GET', '/image/v2/images?status=active');
    const image = imgs.body.images[0].id as string;
    // quota for the run
    const project = (await cloud.api(admin, 'GET', '/identity/v3/projects?name=demo')).body.projects[0].id;
    await cloud.api(admin, 'PUT', `/compute/v2.1/os-quota-sets/${project}`, { quota_set: { instances: 50, cores: 100, ram: 102400 } });
    const boot = async (name: string) => {
      const t0 = performance.now();
      const r = await cloud.api(tok, 'POST', '/compute/v2.1/servers', { server: { name, imageRef: image, flavorRef: '42' } });
      if (r.status !== 202) throw new Error(`create failed ${r.status} ${JSON.stringify(r.body)}`);
      const id = r.body.server.id as string;
      let active = 0;
      for (;;) {
        const s = await cloud.api(tok, 'GET', `/compute/v2.1/servers/${id}`);
        if (s.body.server.status === 'ACTIVE') { active = performance.now() - t0; break; }
        if (s.body.server.status === 'ERROR') throw new Error(JSON.stringify(s.body.server.fault));
        await new Promise((res) => setTimeout(res, 20));
      }
      let marker = 0;
      const log = join(cloud.dataDir, 'instances', id, 'console.log');
      for (let i = 0; i < 6000; i++) {
        try {
          if (readFileSync(log, 'utf8').includes('STRATUS-GUEST-READY')) { marker = performance.now() - t0; break; }
        } catch { /* not yet */ }
        await new Promise((res) => setTimeout(res, 50));
      }
      return { id, active, marker };
    };
    const del = async (ids: string[]) => {
      await Promise.all(ids.map((id) => cloud.api(tok, 'DELETE', `/compute/v2.1/servers/${id}`)));
      for (const id of ids) for (;;) {
        const s = await cloud.api(tok, 'GET', `/compute/v2.1/servers/${id}`);
        if (s.status === 404) break;
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    console.log('# bench/compute (TCG guests, m1.nano, 2 cores)');
    const one = await boot('bench-1');
    console.log(`1 server:   POST→ACTIVE ${one.active.toFixed(0)} ms   POST→console marker ${one.marker.toFixed(0)} ms`);
    const pid = Number(readFileSync(join(cloud.dataDir, 'instances', one.id, 'qemu.pid'), 'utf8'));
    const rss = rssMb(pid);
    console.log(`QEMU RSS of a booted m1.nano guest (128 MB RAM): ${rss.toFixed(1)} MB → host overhead beyond guest RAM ≈ ${(rss - 128).toFixed(1)} MB (TCG allocates guest RAM lazily, so this is an upper bound on overhead only when the guest touched all its RAM)`);
    await del([one.id]);
    const ten = await Promise.all(Array.from({ length: 10 }, (_, i) => boot(`bench-10-${i}`)));
    const act = ten.map((x) => x.active), mk = ten.map((x) => x.marker);
    console.log(`10 servers: POST→ACTIVE p50 ${pct(act, 50).toFixed(0)} ms, max ${Math.max(...act).toFixed(0)} ms; POST→marker p50 ${pct(mk, 50).toFixed(0)} ms, max ${Math.max(...mk).toFixed(0)} ms`);
    console.log(`stratus process RSS with 10 guests: ${rssMb(cloud.proc.pid!).toFixed(1)} MB`);
    await del(ten.map((x) => x.id));
  } finally {
    await cloud.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
