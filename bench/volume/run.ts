/**
 * bench/volume: time to create a 10 GiB volume from the seeded image and
 * from a snapshot (POST → available; goal < 1 s: both are qcow2 overlays),
 * attach/detach latency (API answer, and until the guest reports the disk),
 * and sequential write/read MB/s from inside a TCG guest beside the same
 * figures on a host file (ratio). Prints figures only.
 * Run: `npx tsx bench/volume/run.ts` after a build.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startBenchCloud, pct } from '../lib/cloud.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const cloud = await startBenchCloud({ STRATUS_GUEST_IMAGE_CACHE: process.env.STRATUS_GUEST_IMAGE_CACHE ?? '/var/tmp/stratus-test-cache/guest-image', STRATUS_COMPUTE__ACCEL: process.env.STRATUS_COMPUTE__ACCEL ?? 'tcg' });
  try {
    const tok = await cloud.token('demo');
    const admin = await cloud.token('admin');
    const project = (await cloud.api(admin, 'GET', '/identity/v3/projects?name=demo')).body.projects[0].id as string;
    const adminProject = (await cloud.api(admin, 'GET', '/identity/v3/projects?name=admin')).body.projects[0].id as string;
    await cloud.api(admin, 'PUT', `/volume/v3/${adminProject}/os-quota-sets/${project}`, { quota_set: { volumes: 100, gigabytes: 1000, snapshots: 20 } });
    const V = `/volume/v3/${project}`;
    const image = (await cloud.api(tok, 'GET', '/image/v2/images?status=active')).body.images[0].id as string;
    const waitVol = async (id: string, want: string) => {
      for (;;) {
        const r = await cloud.api(tok, 'GET', `${V}/volumes/${id}`);
        if (r.body.volume.status === want) return;
        if (String(r.body.volume.status).startsWith('error')) throw new Error(`volume ${id} ${r.body.volume.status}`);
        await sleep(5);
      }
    };
    const create = async (body: Record<string, unknown>) => {
      const t0 = performance.now();
      const r = await cloud.api(tok, 'POST', `${V}/volumes`, { volume: body });
      if (r.status !== 202) throw new Error(`create ${r.status} ${JSON.stringify(r.body)}`);
      await waitVol(r.body.volume.id, 'available');
      return { id: r.body.volume.id as string, ms: performance.now() - t0 };
    };
    console.log('# bench/volume (qcow2 driver; guests under TCG, 2 shared cores)');
    const fromImage = [];
    for (let i = 0; i < 5; i++) fromImage.push(await create({ size: 10, imageRef: image }));
    console.log(`10 GiB volume from the seeded image: p50 ${pct(fromImage.map((x) => x.ms), 50).toFixed(0)} ms, max ${Math.max(...fromImage.map((x) => x.ms)).toFixed(0)} ms`);
    const src = fromImage[0]!.id;
    const sr = await cloud.api(tok, 'POST', `${V}/snapshots`, { snapshot: { volume_id: src, name: 'bench' } });
    for (;;) {
      if ((await cloud.api(tok, 'GET', `${V}/snapshots/${sr.body.snapshot.id}`)).body.snapshot.status === 'available') break;
      await sleep(5);
    }
    const fromSnap = [];
    for (let i = 0; i < 5; i++) fromSnap.push(await create({ size: 10, snapshot_id: sr.body.snapshot.id }));
    console.log(`10 GiB volume from a snapshot:      p50 ${pct(fromSnap.map((x) => x.ms), 50).toFixed(0)} ms, max ${Math.max(...fromSnap.map((x) => x.ms)).toFixed(0)} ms`);
    const du = (id: string) => Number(execFileSync('du', ['-k', join(cloud.dataDir, 'volumes', `volume-${id}.qcow2`)]).toString().split('\t')[0]);
    console.log(`on-disk size of such a volume: ${du(fromSnap[0]!.id)} KiB (virtual 10 GiB)`);

    // a guest for attach/detach and I/O
    const s = await cloud.api(tok, 'POST', '/compute/v2.1/servers', { server: { name: 'bench-vol', imageRef: image, flavorRef: '42' } });
    const sid = s.body.server.id as string;
    const log = join(cloud.dataDir, 'instances', sid, 'console.log');
    const consoleText = () => {
      try {
        return readFileSync(log, 'utf8').replace(/\r/g, '');
      } catch {
        return '';
      }
    };
    const waitConsole = async (re: RegExp, from = 0, timeoutMs = 300_000) => {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        if (re.test(consoleText().slice(from))) return;
        await sleep(20);
      }
      throw new Error(`console never showed ${re}`);
    };
    await waitConsole(/STRATUS-GUEST-READY/);
    await waitConsole(/STRATUS-BLOCK-ADDED vda/);
    const gexec = async (cmd: string) => {
      const tag = randomBytes(4).toString('hex');
      const sock = connect(join(cloud.dataDir, 'instances', sid, 'console.sock'));
      await new Promise((r) => sock.once('connect', r));
      sock.write(`echo "@@B${tag}"; ${cmd}; echo "@@E${tag} rc=$?"\n`);
      await sleep(300);
      sock.end();
      await waitConsole(new RegExp(`@@E${tag} rc=\\d+`), 0, 600_000);
    };

    const vol = (await create({ size: 1 })).id;
    const att: number[] = [], seen: number[] = [], det: number[] = [];
    for (let i = 0; i < 3; i++) {
      const mark = consoleText().length;
      const t0 = performance.now();
      const r = await cloud.api(tok, 'POST', `/compute/v2.1/servers/${sid}/os-volume_attachments`, { volumeAttachment: { volumeId: vol } });
      if (r.status !== 200) throw new Error(`attach ${r.status} ${JSON.stringify(r.body)}`);
      att.push(performance.now() - t0);
      await waitConsole(/STRATUS-BLOCK-ADDED vdb/, mark);
      seen.push(performance.now() - t0);
      const t1 = performance.now();
      const mark2 = consoleText().length;
      await cloud.api(tok, 'DELETE', `/compute/v2.1/servers/${sid}/os-volume_attachments/${vol}`);
      await waitVol(vol, 'available');
      det.push(performance.now() - t1);
      // the guest's disk watcher polls: let it see the disk go before the next attach
      await waitConsole(/STRATUS-BLOCK-REMOVED vdb/, mark2);
    }
    console.log(`attach: API answer p50 ${pct(att, 50).toFixed(0)} ms; until the guest shows vdb p50 ${pct(seen, 50).toFixed(0)} ms`);
    console.log(`detach: DELETE → volume available (QEMU released the device) p50 ${pct(det, 50).toFixed(0)} ms`);

    // sequential I/O: 256 MiB through the guest vs a host file on the same file system
    await cloud.api(tok, 'POST', `/compute/v2.1/servers/${sid}/os-volume_attachments`, { volumeAttachment: { volumeId: vol } });
    await waitVol(vol, 'in-use');
    await sleep(2000);
    const t = async (cmd: string) => {
      const t0 = performance.now();
      await gexec(cmd);
      return performance.now() - t0;
    };
    const base = await t('true');
    const wr = (await t('dd if=/dev/zero of=/dev/vdb bs=1M count=256 conv=fsync 2>/dev/null')) - base;
    const rd = (await t('echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vdb of=/dev/null bs=1M count=256 2>/dev/null')) - base;
    const hostFile = join(cloud.dataDir, 'volumes', 'bench-host.raw');
    const h0 = performance.now();
    execFileSync('dd', ['if=/dev/zero', `of=${hostFile}`, 'bs=1M', 'count=256', 'conv=fsync'], { stdio: 'ignore' });
    const hw = performance.now() - h0;
    const h1 = performance.now();
    execFileSync('dd', [`if=${hostFile}`, 'of=/dev/null', 'bs=1M', 'iflag=direct'], { stdio: 'ignore' });
    const hr = performance.now() - h1;
    rmSync(hostFile, { force: true });
    const mbs = (ms: number) => 256 / (ms / 1000);
    console.log(`sequential write 256 MiB: guest ${mbs(wr).toFixed(0)} MB/s, host file ${mbs(hw).toFixed(0)} MB/s, ratio ${(mbs(wr) / mbs(hw)).toFixed(2)}`);
    console.log(`sequential read  256 MiB: guest ${mbs(rd).toFixed(0)} MB/s, host file ${mbs(hr).toFixed(0)} MB/s, ratio ${(mbs(rd) / mbs(hr)).toFixed(2)}`);
    console.log('(guest figures include typing the command on the serial console, ~1 s less the baseline of a no-op; TCG emulation dominates them)');
    await cloud.api(tok, 'DELETE', `/compute/v2.1/servers/${sid}`);
    for (;;) {
      if ((await cloud.api(tok, 'GET', `/compute/v2.1/servers/${sid}`)).status === 404) break;
      await sleep(200);
    }
  } finally {
    await cloud.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
