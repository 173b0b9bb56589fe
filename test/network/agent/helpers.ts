/**
 * A throwaway world for network-agent tests: a host namespace the agent uses
 * as its `hostNetns`, "guest" namespaces wired to VM ports through the
 * agent's veth hook, a bus with a stand-in network service that hands out
 * hand-built HostNetworkState objects, and a cleanup that removes every
 * namespace and process (by pid) whatever happened.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, readdirSync, writeFileSync, chmodSync, mkdirSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessBus } from '../../../src/core/bus.js';
import type { HostNetworkState, NetworkState, PortState, SecurityGroupState } from '../../../src/network/protocol.js';
import { NetworkAgent, type AgentLog } from '../../../src/network/agent/index.js';
import { Runner, type RunOpts } from '../../../src/network/agent/runner.js';

export function sh(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, encoding: 'utf8', maxBuffer: 64 << 20 }, (e, out, err) => {
      resolve({ code: e ? (typeof (e as { code?: unknown }).code === 'number' ? ((e as { code: number }).code) : 1) : 0, out, err });
    });
    if (opts.input !== undefined) c.stdin?.end(opts.input);
  });
}

export async function must(cmd: string, args: string[]): Promise<string> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.err || r.out}`);
  return r.out;
}

/** Runs in a namespace. */
export const inNs = (ns: string, cmd: string, args: string[], timeoutMs?: number) => sh('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs });

export const silentLog: AgentLog = { info() {}, warn() {}, error() {}, debug() {} };
export const consoleLog: AgentLog = {
  info: (o, m) => console.log('INFO', m ?? '', JSON.stringify(o)),
  warn: (o, m) => console.log('WARN', m ?? '', JSON.stringify(o)),
  error: (o, m) => console.log('ERROR', m ?? '', JSON.stringify(o)),
  debug: () => {},
};

/** A runner that remembers every command (to show what an adopting agent did not do). */
export class RecordingRunner extends Runner {
  readonly commands: string[] = [];
  override run(cmd: string, args: readonly string[], opts: RunOpts = {}): Promise<string> {
    this.commands.push(`${opts.ns ? `[${opts.ns}] ` : ''}${cmd} ${args.join(' ')}`);
    return super.run(cmd, args, opts);
  }
  override daemonize(ns: string | null, cmd: string, args: readonly string[], timeoutMs?: number): Promise<void> {
    this.commands.push(`${ns ? `[${ns}] ` : ''}${cmd} ${args.join(' ')}`);
    return super.daemonize(ns, cmd, args, timeoutMs);
  }
}

export interface World {
  tag: string;
  hostNs: string;
  stateDir: string;
  metadataSocket: string;
  bus: InProcessBus;
  state: HostNetworkState;
  /** port id -> guest namespace (the veth hook) */
  guests: Map<string, string>;
  metadataRequests: Array<{ url: string; headers: IncomingHttpHeaders }>;
  newGuest(name: string): Promise<string>;
  agent(runner?: Runner): NetworkAgent;
  setState(next: Omit<HostNetworkState, 'host' | 'generation'>): HostNetworkState;
  cleanup(): Promise<void>;
}

export async function makeWorld(): Promise<World> {
  const tag = randomBytes(4).toString('hex');
  const hostNs = `stratus-t-${tag}`;
  const base = mkdtempSync(join(tmpdir(), `stratus-netagent-${tag}-`));
  const stateDir = join(base, 'network');
  mkdirSync(join(base, 'run'), { recursive: true });
  const metadataSocket = join(base, 'run', 'metadata.sock');
  const created: string[] = [];
  const agents: NetworkAgent[] = [];
  let server: Server | null = null;
  const metadataRequests: World['metadataRequests'] = [];
  const bus = new InProcessBus();
  const world: World = {
    tag, hostNs, stateDir, metadataSocket, bus, guests: new Map(), metadataRequests,
    state: { host: 'test-host', generation: 0, networks: [], ports: [], routers: [], security_groups: [] },
    async newGuest(name) {
      const ns = `${hostNs}-${name}`;
      await must('ip', ['netns', 'add', ns]);
      created.push(ns);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      return ns;
    },
    agent(runner) {
      const a = new NetworkAgent({ bus, host: 'test-host', hostNetns: hostNs, stateDir, metadataSocket, log: process.env.NETAGENT_DEBUG ? consoleLog : silentLog, vethForPort: (p) => world.guests.get(p.id) ?? null, runner, resyncIntervalMs: 3_600_000 });
      agents.push(a);
      return a;
    },
    setState(next) {
      world.state = { host: 'test-host', generation: world.state.generation + 1, ...next };
      return world.state;
    },
    async cleanup() {
      for (const a of agents) await a.stop().catch(() => undefined);
      server?.close();
      // processes the agent started: by the pids in its own pid files
      const pidFiles: string[] = [];
      for (const d of safeList(join(stateDir, 'dhcp'))) pidFiles.push(join(stateDir, 'dhcp', d, 'pid'));
      for (const f of safeList(join(stateDir, 'metadata'))) if (f.endsWith('.pid')) pidFiles.push(join(stateDir, 'metadata', f));
      for (const f of pidFiles) {
        const pid = Number((await readFile(f, 'utf8').catch(() => '')).trim());
        if (pid > 1) {
          const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
          if (cmdline.includes(f)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        }
      }
      for (const ns of safeList(join(stateDir, 'netns'))) await sh('ip', ['netns', 'del', ns]);
      for (const ns of created) await sh('ip', ['netns', 'del', ns]);
      await sh('ip', ['netns', 'del', hostNs]);
      rmSync(base, { recursive: true, force: true });
    },
  };
  await must('ip', ['netns', 'add', hostNs]);
  await must('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
  bus.serve('network', {
    register_agent: () => world.state as never,
    get_host_state: () => world.state as never,
  });
  server = createServer((req, res) => {
    metadataRequests.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`meta for ${req.headers['x-forwarded-for']}\n`);
  });
  await new Promise<void>((r) => server!.listen(metadataSocket, r));
  return world;
}

function safeList(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

/** A DHCP client run in a guest namespace (busybox udhcpc); resolves with what it got. */
export async function dhcp(ns: string, dir: string, mac: string): Promise<Record<string, string>> {
  await must('ip', ['-n', ns, 'link', 'set', 'dev', 'eth0', 'address', mac, 'up']);
  const script = join(dir, `udhcpc-${ns}.sh`);
  const out = join(dir, `udhcpc-${ns}.env`);
  if (!existsSync(script)) {
    writeFileSync(script, `#!/bin/sh
case "$1" in
  bound|renew)
    env > ${out}
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    elif [ -n "$router" ]; then
      ip route replace default via "$router" dev "$interface"
    fi
    ;;
esac
exit 0
`);
    chmodSync(script, 0o755);
  }
  const r = await inNs(ns, 'busybox', ['udhcpc', '-i', 'eth0', '-O', 'mtu', '-O', 'staticroutes', '-f', '-q', '-n', '-t', '8', '-T', '1', '-s', script], 30_000);
  if (r.code !== 0) throw new Error(`udhcpc in ${ns} failed: ${r.err}${r.out}`);
  const env: Record<string, string> = {};
  for (const line of (await readFile(out, 'utf8')).split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
  }
  return env;
}

export async function pingOk(ns: string, ip: string, count = 2): Promise<boolean> {
  return (await inNs(ns, 'ping', ['-c', String(count), '-W', '1', '-i', '0.3', ip], 15_000)).code === 0;
}

export const mac = (n: number) => `fa:16:3e:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
export const uuid = () => randomUUID();

export function network(o: Partial<NetworkState> & { id: string; cidr: string; gateway: string | null; subnetId: string; dhcpPort?: { id: string; mac: string; ip: string } }): NetworkState {
  return {
    id: o.id, project_id: 'p1', mtu: o.mtu ?? 1500, admin_state_up: true, external: o.external ?? false, network_type: 'flat', segmentation_id: null,
    subnets: [{ id: o.subnetId, cidr: o.cidr, ip_version: 4, gateway_ip: o.gateway, enable_dhcp: !!o.dhcpPort, dns_nameservers: [], host_routes: [] }],
    dhcp_port: o.dhcpPort ? { id: o.dhcpPort.id, mac_address: o.dhcpPort.mac, fixed_ips: [{ subnet_id: o.subnetId, ip_address: o.dhcpPort.ip }] } : null,
    dhcp_hosts: o.dhcp_hosts ?? [],
  };
}

export function vmPort(o: { id: string; net: NetworkState; mac: string; ip: string; groups?: string[]; security?: boolean }): PortState {
  return {
    id: o.id, network_id: o.net.id, mac_address: o.mac, fixed_ips: [{ subnet_id: o.net.subnets[0]!.id, ip_address: o.ip }],
    device: `tap${o.id.slice(0, 11)}`, device_id: uuid(), admin_state_up: true, port_security_enabled: o.security ?? true,
    security_group_ids: o.groups ?? [], allowed_address_pairs: [],
  };
}

export function group(id: string, members: string[], rules: SecurityGroupState['rules']): SecurityGroupState {
  return { id, member_ips: members, rules };
}
