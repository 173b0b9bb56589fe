/**
 * bench/network/dataplane: the network agent on the real kernel, inside a
 * throwaway host namespace (nothing in the root namespace).
 *  1. plug latency: a new port appears in the host state, `plug` over the bus
 *     answers once the tap is on its bridge with its anti-spoofing and
 *     security-group rules in force — with 20 ports already on the host and
 *     groups of 5 and of 500 rules;
 *  2. throughput between two "guests" (namespaces wired to VM ports like
 *     guests, through the agent's veth hook) with no port security, with a
 *     group of 2 rules and with a group of 500 rules (the one rule that allows
 *     the traffic last, so a new connection walks all of them).
 * iperf3 when installed (apt-get install iperf3), else a node TCP transfer.
 * Prints figures only. Run: `npx tsx bench/network/dataplane.ts` (as root).
 */
import { spawn, execFileSync } from 'node:child_process';
import type { PortState, SecurityGroupRuleState } from '../../src/network/protocol.js';
import { makeWorld, dhcp, inNs, mac, uuid, network, vmPort, group, type World } from '../../test/network/agent/helpers.js';

const rule = (o: Partial<SecurityGroupRuleState>): SecurityGroupRuleState => ({
  id: uuid(), direction: 'ingress', ethertype: 'IPv4', protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, ...o,
});
/** n rules that never match the benchmark's traffic, then the one that does. */
function rules(n: number): SecurityGroupRuleState[] {
  const out: SecurityGroupRuleState[] = [];
  for (let i = 0; out.length < n - 2; i++) out.push(rule({ protocol: 'tcp', port_range_min: 10000 + i, port_range_max: 10000 + i, remote_ip_prefix: `198.18.${i >> 8}.${i & 255}/32` }));
  out.push(rule({ direction: 'egress' }), rule({ protocol: 'tcp', port_range_min: 5201, port_range_max: 5201 }));
  return out;
}
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const hasIperf = (() => { try { execFileSync('iperf3', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

async function plugLatency(w: World, nRules: number): Promise<number[]> {
  const agent = w.agent();
  const net = network({ id: uuid(), subnetId: uuid(), cidr: '10.90.0.0/16', gateway: '10.90.0.1', dhcpPort: { id: uuid(), mac: mac(2), ip: '10.90.0.2' } });
  const sg = uuid();
  const ports: PortState[] = [];
  for (let i = 0; i < 20; i++) ports.push(vmPort({ id: uuid(), net, mac: mac(100 + i), ip: `10.90.1.${i + 1}`, groups: [sg] }));
  const groups = [group(sg, ports.map((p) => p.fixed_ips[0]!.ip_address), rules(nRules))];
  w.setState({ networks: [net], ports, routers: [], security_groups: groups });
  await agent.start();
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const p = vmPort({ id: uuid(), net, mac: mac(200 + i), ip: `10.90.2.${i + 1}`, groups: [sg] });
    w.setState({ networks: [net], ports: [...ports, p], routers: [], security_groups: groups });
    const t0 = performance.now();
    await w.bus.call(`netagent.test-host`, 'plug', { port_id: p.id });
    times.push(performance.now() - t0);
    ports.push(p);
  }
  const s = await agent.status();
  if (s.errors.length) throw new Error(s.errors.join('; '));
  await agent.reconcile(w.setState({ networks: [], ports: [], routers: [], security_groups: [] }));
  await agent.stop();
  return times;
}

async function throughput(w: World, g1: string, g2: string, mode: 'none' | number): Promise<number> {
  const net = network({ id: uuid(), subnetId: uuid(), cidr: '10.91.0.0/24', gateway: null, dhcpPort: { id: uuid(), mac: mac(0x302), ip: '10.91.0.2' } });
  net.dhcp_hosts = [
    { port_id: 'a', mac_address: mac(0x311), ip_address: '10.91.0.11', hostname: 'a' },
    { port_id: 'b', mac_address: mac(0x312), ip_address: '10.91.0.12', hostname: 'b' },
  ];
  const sg = uuid();
  const secure = mode !== 'none';
  const p1 = vmPort({ id: uuid(), net, mac: mac(0x311), ip: '10.91.0.11', groups: [sg], security: secure });
  const p2 = vmPort({ id: uuid(), net, mac: mac(0x312), ip: '10.91.0.12', groups: [sg], security: secure });
  w.guests.set(p1.id, g1);
  w.guests.set(p2.id, g2);
  const agent = w.agent();
  w.setState({ networks: [net], ports: [p1, p2], routers: [], security_groups: [group(sg, ['10.91.0.11', '10.91.0.12'], secure ? rules(mode as number) : [])] });
  await agent.start();
  try {
    await dhcp(g1, w.stateDir, mac(0x311));
    await dhcp(g2, w.stateDir, mac(0x312));
    if (hasIperf) {
      const server = spawn('ip', ['netns', 'exec', g2, 'iperf3', '-s', '-1', '-B', '10.91.0.12'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 500));
      const r = await inNs(g1, 'iperf3', ['-c', '10.91.0.12', '-t', '5', '-J'], 30_000);
      server.kill();
      const j = JSON.parse(r.out) as { end: { sum_received: { bits_per_second: number } } };
      return j.end.sum_received.bits_per_second / 1e9;
    }
    const server = spawn('ip', ['netns', 'exec', g2, process.execPath, '-e', "require('net').createServer(s=>s.resume()).listen(5201,'10.91.0.12')"], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    const client = "const s=require('net').connect(5201,'10.91.0.12');const b=Buffer.alloc(1<<16);let n=0;const t=Date.now();function w(){while(Date.now()-t<5000){n+=b.length;if(!s.write(b))return s.once('drain',w)}s.end(()=>{console.log(n*8/((Date.now()-t)/1000)/1e9);process.exit(0)})}s.on('connect',w)";
    const r = await inNs(g1, process.execPath, ['-e', client], 30_000);
    server.kill();
    return Number(r.out.trim());
  } finally {
    await agent.reconcile(w.setState({ networks: [], ports: [], routers: [], security_groups: [] }));
    await agent.stop();
  }
}

async function main() {
  const w = await makeWorld();
  try {
    for (const n of [5, 500]) {
      const t = await plugLatency(w, n);
      console.log(`plug -> tap wired with rules (20 ports on the host, group of ${n} rules): median ${pct(t, 50).toFixed(0)} ms, p90 ${pct(t, 90).toFixed(0)} ms, min ${Math.min(...t).toFixed(0)} ms (${t.length} plugs)`);
    }
    const g1 = await w.newGuest('b1');
    const g2 = await w.newGuest('b2');
    for (const mode of ['none', 2, 500] as const) {
      const gbps: number[] = [];
      for (let i = 0; i < 3; i++) gbps.push(await throughput(w, g1, g2, mode));
      const label = mode === 'none' ? 'no port security' : `port security, group of ${mode} rules`;
      console.log(`throughput guest->guest (${hasIperf ? 'iperf3' : 'node TCP'}, 5 s, ${label}): ${gbps.map((g) => g.toFixed(2)).join(' / ')} Gbit/s`);
    }
  } finally {
    await w.cleanup();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
