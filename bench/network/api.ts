/**
 * bench/network/api: port create+delete pairs per second through the
 * Networking API (HTTP, real `stratus up` from dist/), at concurrency 1 and
 * 16, with create/delete latency percentiles and the server's CPU time per
 * pair (the machine is shared; pairs per server CPU-second is the figure that
 * does not depend on what else runs). Goal: ≥ 500 pairs/s.
 * Prints figures; asserts nothing.
 *
 * Run: `npx tsx bench/network/api.ts` (after `./stratus up` has built dist/).
 * The cloud runs with --no-seed and --host-netns on a namespace created here
 * (and removed), so no data plane lands in the root namespace.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startBenchCloud, pct } from '../lib/cloud.js';

/** CPU seconds (user + system) the process has used: the machine is shared, so the server's CPU cost per pair is the load-independent figure. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);

async function main() {
  const netns = `stx-bench-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', netns]);
  let cloud: Awaited<ReturnType<typeof startBenchCloud>> | undefined;
  try {
    cloud = await startBenchCloud({}, ['--no-seed', '--host-netns', netns]);
    const token = await cloud.token('admin');
    const n = await cloud.api(token, 'POST', '/network/v2.0/networks', { network: { name: 'bench-net' } });
    if (n.status !== 201) throw new Error(`network create: ${n.status} ${JSON.stringify(n.body)}`);
    const s = await cloud.api(token, 'POST', '/network/v2.0/subnets', { subnet: { network_id: n.body.network.id, ip_version: 4, cidr: '10.128.0.0/16', enable_dhcp: false } });
    if (s.status !== 201) throw new Error(`subnet create: ${s.status} ${JSON.stringify(s.body)}`);
    const body = { port: { network_id: n.body.network.id } };
    console.log(`# bench/network/api  (${SECONDS}s per run; server and client share the machine's cores)`);
    for (const conc of [1, 16]) {
      const createMs: number[] = [];
      const deleteMs: number[] = [];
      let pairs = 0;
      let errors = 0;
      const end = performance.now() + SECONDS * 1000;
      const worker = async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          const c = await cloud!.api(token, 'POST', '/network/v2.0/ports', body);
          const t1 = performance.now();
          if (c.status !== 201) {
            errors++;
            continue;
          }
          const d = await cloud!.api(token, 'DELETE', `/network/v2.0/ports/${c.body.port.id}`);
          const t2 = performance.now();
          if (d.status !== 204) errors++;
          createMs.push(t1 - t0);
          deleteMs.push(t2 - t1);
          pairs++;
        }
      };
      const t0 = performance.now();
      const cpu0 = cpuSeconds(cloud.proc.pid!);
      await Promise.all(Array.from({ length: conc }, worker));
      const secs = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(cloud.proc.pid!) - cpu0;
      console.log(
        `port create+delete c=${String(conc).padStart(2)}: ${(pairs / secs).toFixed(0)} pairs/s (${((2 * pairs) / secs).toFixed(0)} req/s)` +
          `  create p50 ${pct(createMs, 50).toFixed(1)} ms p99 ${pct(createMs, 99).toFixed(1)} ms` +
          `  delete p50 ${pct(deleteMs, 50).toFixed(1)} ms p99 ${pct(deleteMs, 99).toFixed(1)} ms  errors ${errors}` +
          `  | server CPU ${((1000 * cpu) / Math.max(1, pairs)).toFixed(2)} ms/pair = ${(pairs / Math.max(cpu, 0.001)).toFixed(0)} pairs per server CPU-second`,
      );
    }
  } finally {
    await cloud?.stop();
    execFileSync('ip', ['netns', 'delete', netns]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
