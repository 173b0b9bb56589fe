/**
 * bench/dashboard: (1) the JavaScript the browser downloads for the first
 * page (sign-in) and for the instances page, gzipped as served; (2) time to
 * first render of the instances page with 200 instances — from navigation
 * start to 200 rows in the DOM — in headless chromium.
 *
 * The 200 instances are real server records made through the compute API
 * (one multi-create) on an in-process cloud whose compute agent runs the fake
 * driver (test/helpers/inproc.ts), so no guests boot; the dashboard sees
 * exactly what it would from QEMU-backed servers. Prints figures only.
 * Run: `npx tsx bench/dashboard/run.ts` (builds the UI first if needed).
 *
 * Last run (2 shared cores, headless chromium): first page 77.9 KiB of JS
 * gzipped (one file: React + the shell; each service's pages load on
 * demand, +8 KiB for overview + instances); 200 instances rendered with a
 * median of 249, 303 and 472 ms after navigation start in three runs (the
 * machine's other load varies), of which GET /servers/detail is 70-170 ms.
 */
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startInprocCloud } from '../../test/helpers/inproc.js';
import { ROOT } from '../lib/cloud.js';

const N = Number(process.env.BENCH_INSTANCES ?? 200);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

async function main() {
  if (!existsSync(join(ROOT, 'dist/dashboard/www/index.html'))) {
    console.log('building the dashboard…');
    execFileSync('npx', ['--no-install', 'vite', 'build', '--config', 'dashboard/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  }
  const c = await startInprocCloud();
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  try {
    const addr = c.cloud.app.server.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

    // --- 1. shipped JavaScript -------------------------------------------
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    const scripts = new Map<string, number>();
    page.on('response', async (r) => {
      if (r.request().resourceType() !== 'script') return;
      const size = (await r.request().sizes().catch(() => null))?.responseBodySize ?? 0;
      scripts.set(new URL(r.url()).pathname, size);
    });
    await page.goto(`${url}/`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    const signInJs = [...scripts.values()].reduce((a, b) => a + b, 0);
    const signInFiles = scripts.size;

    await page.getByLabel('User name').fill('demo');
    await page.getByLabel('Password').fill(c.demoPassword());
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.goto(`${url}/#/compute/instances`);
    await page.getByRole('heading', { name: 'Instances', level: 1 }).waitFor();
    await page.waitForLoadState('networkidle');
    const instancesJs = [...scripts.values()].reduce((a, b) => a + b, 0);
    console.log(`JS for the first page (sign-in), gzipped as served: ${(signInJs / 1024).toFixed(1)} KiB in ${signInFiles} file(s)`);
    console.log(`JS after sign-in + overview + instances page:       ${(instancesJs / 1024).toFixed(1)} KiB in ${scripts.size} file(s)`);

    // --- 2. 200 instances ----------------------------------------------
    const admin = await c.adminToken();
    const demo = await c.tokenFor('demo', c.demoPassword(), 'demo');
    const project = (await c.inject('GET', '/identity/v3/projects?name=demo', { token: admin })).json.projects[0].id as string;
    const q = await c.inject('PUT', `/compute/v2.1/os-quota-sets/${project}`, { token: admin, body: { quota_set: { instances: N + 10, cores: N + 10, ram: (N + 10) * 512 } } });
    if (q.status !== 200) throw new Error(`quota: ${q.status} ${q.text}`);
    const img = await c.inject('POST', '/image/v2/images', { token: admin, body: { name: 'bench-image', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
    const put = await c.inject('PUT', `/image/v2/images/${img.json.id}/file`, { token: admin, body: Buffer.alloc(1024 * 1024), headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 204) throw new Error(`image upload: ${put.status} ${put.text}`);
    const flavors = (await c.inject('GET', '/compute/v2.1/flavors/detail', { token: demo })).json.flavors as { id: string; ram: number }[];
    const flavor = flavors.sort((a, b) => a.ram - b.ram)[0]!.id;
    const t0 = performance.now();
    const made = await c.inject('POST', '/compute/v2.1/servers', { token: demo, body: { server: { name: 'bench', imageRef: img.json.id, flavorRef: flavor, min_count: N, max_count: N } } });
    if (made.status !== 202) throw new Error(`create: ${made.status} ${made.text}`);
    let list: { status: string }[] = [];
    for (;;) {
      list = (await c.inject('GET', '/compute/v2.1/servers/detail?limit=1000', { token: demo })).json.servers as { status: string }[];
      if (list.length >= N && list.every((s) => s.status === 'ACTIVE' || s.status === 'ERROR')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const active = list.filter((s) => s.status === 'ACTIVE').length;
    // Those the fake host has no room for end in ERROR (scheduler); every record is listed and rendered alike.
    console.log(`created ${N} server records (fake driver) in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${active} ACTIVE, ${N - active} ERROR`);

    const apiTimes: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const a = performance.now();
      const res = await fetch(`${url}/compute/v2.1/servers/detail?limit=1000`, { headers: { 'x-auth-token': demo } });
      await res.json();
      apiTimes.push(performance.now() - a);
    }

    const renders: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // A fresh load each time (the session stays in sessionStorage): cold
      // JS parse, catalog probe, list fetch and render of every row.
      await page.goto('about:blank');
      await page.goto(`${url}/#/compute/instances`);
      const ms = await page.evaluate(async (n) => {
        while (document.querySelectorAll('table.data tbody tr').length < n) await new Promise((r) => requestAnimationFrame(r));
        return performance.now();
      }, N);
      renders.push(ms);
    }
    console.log(`GET /servers/detail (${N} servers): median ${median(apiTimes).toFixed(0)} ms over ${RUNS}`);
    console.log(`instances page, navigation start → ${N} rows rendered: median ${median(renders).toFixed(0)} ms (runs: ${renders.map((r) => r.toFixed(0)).join(', ')})`);
    await page.screenshot({ path: join(ROOT, 'test-artifacts', 'bench-dashboard-200.png') }).catch(() => undefined);
  } finally {
    await browser.close();
    await c.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
