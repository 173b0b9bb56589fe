import { createHash } from 'node:crypto';
import { existsSync, openSync, closeSync, statSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bus, Json } from '../../core/bus.js';
import type { AgentStatus, HostNetworkState, NetworkState, PortState, RouterState } from '../protocol.js';
import { METADATA_IP, devName, dhcpNamespace, routerNamespace } from '../protocol.js';
import { canonicalIp, parseCidr } from './addr.js';
import { dhcpFiles, dhcpPaths, dnsmasqArgs, dhcpPortAddrs, wantsDhcp, wantsDhcpMetadata } from './dhcp.js';
import { FW_TABLE, firewallScript } from './firewall.js';
import { ROUTER_TABLE, routerDefaultRoutes, routerNatScript } from './router.js';
import { HostCommandError, Runner, alive, processArgv, readPid, terminate } from './runner.js';

/** What the agent logs through (pino's Logger fits). */
export interface AgentLog {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
}

export interface NetworkAgentOptions {
  bus: Bus;
  host: string;
  /** Existing namespace holding this host's data plane; null = this process's namespace. */
  hostNetns: string | null;
  /** `<data>/network`: pid files, dnsmasq files, ownership markers, applied-rule hashes. */
  stateDir: string;
  /** The compute metadata service's unix socket (`<data>/run/metadata.sock`). */
  metadataSocket: string;
  log: AgentLog;
  /** Re-fetch the host state and repair drift this often (default 30 s). */
  resyncIntervalMs?: number;
  /** Retry registering with the network service this often while it is absent (default 5 s). */
  registerRetryMs?: number;
  /**
   * Test and benchmark hook: wire a VM port as a veth whose other end is
   * `eth0` in the returned (existing) namespace, instead of a tap for QEMU —
   * a namespace stands in for the guest. Return null to get a tap.
   */
  vethForPort?: (port: PortState) => string | null;
  runner?: Runner;
}

interface IpLink {
  ifname: string;
  mtu: number;
  flags: string[];
  master?: string;
  address?: string;
  operstate?: string;
  linkinfo?: { info_kind?: string; info_data?: { type?: string } };
}
interface IpAddrIf {
  ifname: string;
  addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string }>;
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

const OWNED_LINK = /^(tap|brq)[0-9a-f-]{1,11}$/;
const OWNED_NS_LINK = /^(qr-|qg-|ns-)[0-9a-f-]{1,11}$/;
const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The host side of networking: converges bridges, namespaces, dnsmasq, metadata proxies and nftables to a HostNetworkState. */
export class NetworkAgent {
  readonly host: string;
  private readonly bus: Bus;
  private readonly hostNs: string | null;
  private readonly runner: Runner;
  private readonly log: AgentLog;
  private unserve: (() => void) | null = null;
  private timers: NodeJS.Timeout[] = [];
  private registered = false;
  private stopped = true;
  private queue: Promise<void> = Promise.resolve();
  private pending: HostNetworkState | null = null;
  private appliedGeneration = -1;
  private lastState: HostNetworkState | null = null;
  private errors: string[] = [];
  /** Ports compute unplugged that the service still binds here: kept unwired until they leave the state or are plugged again. */
  private unplugged = new Set<string>();
  private readonly runAsRoot: boolean;

  constructor(private readonly opts: NetworkAgentOptions) {
    this.bus = opts.bus;
    this.host = opts.host;
    this.hostNs = opts.hostNetns;
    this.runner = opts.runner ?? new Runner();
    this.log = opts.log;
    this.runAsRoot = !traversableByOthers(opts.stateDir);
  }

  get generation(): number {
    return this.appliedGeneration;
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    this.stopped = false;
    await mkdir(this.opts.stateDir, { recursive: true });
    this.unserve = this.bus.serve(`netagent.${this.host}`, {
      sync: (a) => {
        const state = (a as { state?: HostNetworkState } | null)?.state;
        if (!state) return;
        void this.reconcile(state).catch((e) => this.log.error({ err: e }, 'network agent: sync failed'));
      },
      plug: async (a) => this.plug(String((a as { port_id?: string } | null)?.port_id ?? '')) as unknown as Json,
      unplug: async (a) => {
        await this.unplug(String((a as { port_id?: string } | null)?.port_id ?? ''));
        return {};
      },
      status: async () => (await this.status()) as unknown as Json,
    });
    await this.register();
    const every = this.opts.resyncIntervalMs ?? 30_000;
    this.timers.push(setInterval(() => void this.resync(), every).unref());
  }

  /** Stops listening and the timers; the data plane keeps running (guests keep their network; the next start adopts it). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.unserve?.();
    this.unserve = null;
    await this.queue.catch(() => undefined);
  }

  private async register(): Promise<void> {
    if (this.stopped || this.registered) return;
    try {
      const state = (await this.bus.call('network', 'register_agent', { host: this.host }, { timeoutMs: 30_000 })) as unknown as HostNetworkState;
      this.registered = true;
      this.log.info({ host: this.host, generation: state?.generation }, 'network agent registered');
      if (state && Array.isArray(state.networks)) await this.reconcile(state);
    } catch (e) {
      const quiet = (e as Error)?.name === 'NoServerError';
      if (quiet) this.log.debug({ host: this.host }, 'network agent: no network service yet; will retry');
      else this.log.warn({ err: e }, 'network agent: registration failed; will retry');
      const t = setTimeout(() => {
        this.timers = this.timers.filter((x) => x !== t);
        void this.register();
      }, this.opts.registerRetryMs ?? 5_000).unref();
      this.timers.push(t);
    }
  }

  private async resync(): Promise<void> {
    if (this.stopped) return;
    if (!this.registered) return;
    try {
      const state = (await this.bus.call('network', 'get_host_state', { host: this.host }, { timeoutMs: 30_000 })) as unknown as HostNetworkState;
      await this.reconcile(state);
    } catch (e) {
      if ((e as Error)?.name !== 'NoServerError') this.log.warn({ err: e }, 'network agent: resync failed');
    }
  }

  // ------------------------------------------------------------------ bus methods

  /** Wires a port now (fresh state from the service) and answers with its device once tap and rules are in place. */
  async plug(portId: string): Promise<{ device: string }> {
    if (!portId) throw new Error('plug: port_id is required');
    this.unplugged.delete(portId);
    const state = (await this.bus.call('network', 'get_host_state', { host: this.host }, { timeoutMs: 30_000 })) as unknown as HostNetworkState;
    await this.reconcile(state);
    const s = this.lastState;
    const port = s?.ports.find((p) => p.id === portId);
    if (!port) throw new Error(`port ${portId} is not bound to host ${this.host}`);
    const dev = portDevice(port);
    const failed = this.errors.filter((e) => e.includes(portId) || e.includes(dev));
    if (failed.length) throw new Error(`port ${portId}: ${failed.join('; ')}`);
    return { device: dev };
  }

  /** Removes a port's tap and rules (the service may still list it until compute releases it). */
  async unplug(portId: string): Promise<void> {
    if (!portId) throw new Error('unplug: port_id is required');
    this.unplugged.add(portId);
    if (this.lastState) await this.reconcile(this.lastState);
  }

  async status(): Promise<AgentStatus> {
    const links = await this.hostLinks().catch(() => new Map<string, IpLink>());
    const owned = await this.ownedNamespaces();
    const present = await this.netnsList().catch(() => new Set<string>());
    return {
      host: this.host,
      generation: this.appliedGeneration,
      bridges: [...links.keys()].filter((n) => n.startsWith('brq')).sort(),
      namespaces: owned.filter((n) => present.has(n)).sort(),
      taps: [...links.keys()].filter((n) => n.startsWith('tap')).sort(),
      errors: [...this.errors],
    };
  }

  // ------------------------------------------------------------------ reconcile

  /**
   * Converges the host to `state`. Serialized: one run at a time; states that
   * arrive meanwhile are coalesced into one run with the newest; a state older
   * than the one applied is ignored. Never throws for host failures: they are
   * collected in `status().errors` (and logged) and retried on the next run.
   */
  reconcile(state: HostNetworkState): Promise<void> {
    if (state.generation < this.appliedGeneration) return this.queue;
    if (this.pending && state.generation < this.pending.generation) return this.queue;
    this.pending = state;
    this.queue = this.queue.then(async () => {
      const s = this.pending;
      this.pending = null;
      if (!s || s.generation < this.appliedGeneration) return;
      await this.apply(s).catch((e) => {
        this.errors = [`reconcile: ${errText(e)}`];
        this.log.error({ err: e }, 'network agent: reconcile failed');
      });
    });
    return this.queue;
  }

  private async apply(state: HostNetworkState): Promise<void> {
    const t0 = Date.now();
    const errors: string[] = [];
    const step = async (what: string, fn: () => Promise<void>): Promise<boolean> => {
      try {
        await fn();
        return true;
      } catch (e) {
        errors.push(`${what}: ${errText(e)}`);
        return false;
      }
    };
    for (const id of [...this.unplugged]) if (!state.ports.some((p) => p.id === id)) this.unplugged.delete(id);
    const nets = new Map(state.networks.map((n) => [n.id, n]));
    const ports = state.ports.filter((p) => !this.unplugged.has(p.id) && nets.has(p.network_id));
    for (const p of state.ports) if (!nets.has(p.network_id)) errors.push(`port ${p.id}: its network ${p.network_id} is not in the host state`);
    const routers = state.routers.filter((r) => r.admin_state_up);
    this.currentRouters = routers;

    const desiredLinks = new Set<string>();
    const desiredNs = new Set<string>();
    const desiredProcs = new Set<string>();

    await step('host', () => this.ensureHostPrereqs(ports.some((p) => p.port_security_enabled)));
    let links = await this.hostLinks();
    let namespaces = await this.netnsList();

    // 1. a bridge per network
    for (const net of nets.values()) {
      const br = devName('brq', net.id);
      desiredLinks.add(br);
      await step(`network ${net.id}`, () => this.ensureBridge(net, links));
    }
    links = await this.hostLinks();

    // 2. port security first: rules match device names, so they are in force before a tap joins its bridge
    await step('security groups', () => this.ensureFirewall(ports, state));

    // 3. VM ports
    for (const port of ports) {
      desiredLinks.add(portDevice(port));
      await step(`port ${port.id} (${portDevice(port)})`, () => this.ensureVmPort(port, nets.get(port.network_id)!, links));
    }

    // 4. routers
    for (const r of routers) {
      const ns = routerNamespace(r.id);
      desiredNs.add(ns);
      desiredProcs.add(this.proxyPidFile(ns));
      for (const i of r.interfaces) desiredLinks.add(devName('tap', i.port_id));
      if (r.gateway) desiredLinks.add(devName('tap', r.gateway.port_id));
      await step(`router ${r.id}`, () => this.ensureRouter(r, nets, links, namespaces));
    }

    // 5. DHCP (and metadata for networks without a router)
    for (const net of nets.values()) {
      if (!wantsDhcp(net)) continue;
      const ns = dhcpNamespace(net.id);
      desiredNs.add(ns);
      desiredLinks.add(devName('tap', net.dhcp_port!.id));
      desiredProcs.add(dhcpPaths(this.dhcpDir(net.id)).pid);
      const md = wantsDhcpMetadata(net, routers);
      if (md) desiredProcs.add(this.proxyPidFile(ns));
      await step(`dhcp ${net.id}`, () => this.ensureDhcp(net, md, links, namespaces));
    }

    // 6. remove what has no resource any more
    await step('cleanup', async () => {
      await this.cleanupProcesses(desiredProcs);
      links = await this.hostLinks();
      const stale = [...links.keys()].filter((n) => OWNED_LINK.test(n) && !desiredLinks.has(n));
      // ports before bridges
      for (const n of stale.sort((a, b) => (a.startsWith('brq') ? 1 : 0) - (b.startsWith('brq') ? 1 : 0))) {
        await this.runner.ip(this.hostNs, ['link', 'del', 'dev', n]).catch((e) => {
          if (!/Cannot find device/.test(errText(e))) errors.push(`remove ${n}: ${errText(e)}`);
        });
      }
      namespaces = await this.netnsList();
      for (const ns of await this.ownedNamespaces()) {
        if (desiredNs.has(ns)) continue;
        if (namespaces.has(ns)) await this.runner.ip(null, ['netns', 'del', ns]).catch((e) => errors.push(`remove namespace ${ns}: ${errText(e)}`));
        await rm(join(this.opts.stateDir, 'netns', ns), { force: true });
        await rm(join(this.opts.stateDir, 'nft', `${ns}.sha`), { force: true });
      }
      for (const d of await readdir(join(this.opts.stateDir, 'dhcp')).catch(() => [] as string[])) {
        if (!nets.has(d) || !wantsDhcp(nets.get(d)!)) await rm(join(this.opts.stateDir, 'dhcp', d), { recursive: true, force: true });
      }
    });

    this.appliedGeneration = state.generation;
    this.lastState = state;
    this.errors = errors;
    if (errors.length) this.log.warn({ generation: state.generation, errors }, 'network agent: reconcile finished with errors');
    else this.log.debug({ generation: state.generation, ms: Date.now() - t0 }, 'network agent: reconciled');
  }

  // ------------------------------------------------------------------ host namespace

  private async ensureHostPrereqs(needBrNetfilter: boolean): Promise<void> {
    if (!needBrNetfilter) return;
    // br_netfilter hands bridged IP to the inet hooks, where conntrack (stateful groups) works
    const keys = ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables'];
    let out = await this.runner.run('sysctl', ['-n', ...keys], { ns: this.hostNs }).catch(() => null);
    if (out === null) {
      await this.runner.run('modprobe', ['br_netfilter']).catch(() => undefined);
      out = await this.runner.run('sysctl', ['-n', ...keys], { ns: this.hostNs }).catch((e) => {
        throw new Error(`br_netfilter is not available (security groups cannot be stateful): ${errText(e)}`);
      });
    }
    if (out.split('\n').filter(Boolean).some((v) => v.trim() !== '1')) {
      await this.runner.run('sysctl', ['-q', '-w', ...keys.map((k) => `${k}=1`)], { ns: this.hostNs });
    }
  }

  private async hostLinks(): Promise<Map<string, IpLink>> {
    const list = await this.runner.ipJson<IpLink>(this.hostNs, ['-d', 'link', 'show']);
    return new Map(list.map((l) => [l.ifname, l]));
  }

  private async netnsList(): Promise<Set<string>> {
    const list = await this.runner.ipJson<{ name: string }>(null, ['netns', 'list']);
    return new Set(list.map((n) => n.name));
  }

  private async ownedNamespaces(): Promise<string[]> {
    return (await readdir(join(this.opts.stateDir, 'netns')).catch(() => [] as string[])).filter((n) => /^(qdhcp|qrouter)-/.test(n));
  }

  /** Creates a namespace this agent owns (marker first, so a crash in between still leaves it owned and cleanable). */
  private async ensureNamespace(ns: string, namespaces: Set<string>): Promise<void> {
    const marker = join(this.opts.stateDir, 'netns', ns);
    if (!existsSync(marker)) {
      await mkdir(dirname(marker), { recursive: true });
      await writeFile(marker, `${this.host}\n`);
    }
    if (!namespaces.has(ns)) {
      await this.runner.ip(null, ['netns', 'add', ns]);
      namespaces.add(ns);
    }
  }

  private async ensureBridge(net: NetworkState, links: Map<string, IpLink>): Promise<void> {
    const br = devName('brq', net.id);
    let l = links.get(br);
    if (l && l.linkinfo?.info_kind !== 'bridge') {
      await this.runner.ip(this.hostNs, ['link', 'del', 'dev', br]);
      l = undefined;
    }
    if (!l) {
      // a fixed MAC: a bridge otherwise takes the lowest of its ports' and changes it as ports come and go
      await this.runner.ip(this.hostNs, ['link', 'add', br, 'mtu', String(net.mtu), 'address', bridgeMac(net.id), 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0']);
      await this.runner.ip(this.hostNs, ['link', 'set', 'dev', br, 'up']);
      links.set(br, { ifname: br, mtu: net.mtu, flags: ['UP'], linkinfo: { info_kind: 'bridge' } });
    } else {
      const set: string[] = [];
      if (l.mtu !== net.mtu) set.push('mtu', String(net.mtu));
      if (!l.flags.includes('UP')) set.push('up');
      if (set.length) await this.runner.ip(this.hostNs, ['link', 'set', 'dev', br, ...set]);
    }
    // the external network carries the host's own address: the gateway of each of its subnets
    const want = net.external
      ? net.subnets.filter((s) => s.gateway_ip && parseCidr(s.cidr)).map((s) => `${canonicalIp(s.gateway_ip!)}/${parseCidr(s.cidr)!.prefixlen}`)
      : [];
    await this.syncAddrs(this.hostNs, br, want);
  }

  private async ensureVmPort(port: PortState, net: NetworkState, links: Map<string, IpLink>): Promise<void> {
    const dev = portDevice(port);
    const br = devName('brq', net.id);
    const guestNs = this.opts.vethForPort?.(port) ?? null;
    const kind = guestNs ? 'veth' : 'tun';
    let l = links.get(dev);
    if (l && l.linkinfo?.info_kind !== kind) {
      await this.runner.ip(this.hostNs, ['link', 'del', 'dev', dev]);
      l = undefined;
    }
    if (!l) {
      if (guestNs) await this.runner.ip(this.hostNs, ['link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guestNs]);
      else await this.runner.ip(this.hostNs, ['tuntap', 'add', 'dev', dev, 'mode', 'tap']);
      l = { ifname: dev, mtu: 0, flags: [] };
    }
    // the host side never carries the guest's MAC (the bridge would take the guest's frames as its own)
    const mac = hostSideMac(port.mac_address);
    const set: string[] = [];
    if (l.address?.toLowerCase() !== mac) set.push('address', mac);
    if (l.mtu !== net.mtu) set.push('mtu', String(net.mtu));
    if (l.master !== br) set.push('master', br);
    const up = port.admin_state_up;
    if (up !== l.flags.includes('UP')) set.push(up ? 'up' : 'down');
    if (set.length) await this.runner.ip(this.hostNs, ['link', 'set', 'dev', dev, ...set]);
  }

  /**
   * A veth from a bridge (host side `host`) into a namespace (`inner`, with
   * its MAC, MTU and addresses). A host side whose peer is gone (its namespace
   * was deleted) is rebuilt; everything correct is left alone.
   */
  private async ensureVeth(o: { host: string; bridge: string; ns: string; inner: string; mac: string; mtu: number; addrs: string[] }, links: Map<string, IpLink>, nsLinks: Map<string, IpLink>): Promise<void> {
    let l = links.get(o.host);
    let peer = nsLinks.get(o.inner);
    if (l && (l.linkinfo?.info_kind !== 'veth' || !peer)) {
      await this.runner.ip(this.hostNs, ['link', 'del', 'dev', o.host]);
      l = undefined;
      if (peer && !(await this.linkExists(o.ns, o.inner))) peer = undefined;
    }
    if (peer && !l) {
      await this.runner.ip(o.ns, ['link', 'del', 'dev', o.inner]).catch(() => undefined);
      peer = undefined;
    }
    if (!l) {
      await this.runner.ip(this.hostNs, ['link', 'add', o.host, 'mtu', String(o.mtu), 'type', 'veth', 'peer', 'name', o.inner, 'mtu', String(o.mtu), 'address', o.mac, 'netns', o.ns]);
      await this.runner.ip(this.hostNs, ['link', 'set', 'dev', o.host, 'master', o.bridge, 'up']);
      await this.runner.ip(o.ns, ['link', 'set', 'dev', o.inner, 'up']);
      links.set(o.host, { ifname: o.host, mtu: o.mtu, flags: ['UP'], master: o.bridge, linkinfo: { info_kind: 'veth' } });
    } else {
      const set: string[] = [];
      if (l.mtu !== o.mtu) set.push('mtu', String(o.mtu));
      if (l.master !== o.bridge) set.push('master', o.bridge);
      if (!l.flags.includes('UP')) set.push('up');
      if (set.length) await this.runner.ip(this.hostNs, ['link', 'set', 'dev', o.host, ...set]);
      const pset: string[] = [];
      if (peer!.address?.toLowerCase() !== o.mac.toLowerCase()) pset.push('address', o.mac);
      if (peer!.mtu !== o.mtu) pset.push('mtu', String(o.mtu));
      if (!peer!.flags.includes('UP')) pset.push('up');
      if (pset.length) await this.runner.ip(o.ns, ['link', 'set', 'dev', o.inner, ...pset]);
    }
    await this.syncAddrs(o.ns, o.inner, o.addrs);
  }

  private async linkExists(ns: string | null, dev: string): Promise<boolean> {
    return this.runner.ip(ns, ['link', 'show', 'dev', dev]).then(() => true, () => false);
  }

  /** Makes the global addresses of `dev` exactly `want` (`ip/prefixlen`). */
  private async syncAddrs(ns: string | null, dev: string, want: string[]): Promise<void> {
    const cur = (await this.runner.ipJson<IpAddrIf>(ns, ['addr', 'show', 'dev', dev]))[0]?.addr_info ?? [];
    const have = new Set(cur.filter((a) => a.scope === 'global').map((a) => `${canonicalIp(a.local)}/${a.prefixlen}`));
    const wantSet = new Set(want.map((w) => { const [ip, len] = w.split('/'); return `${canonicalIp(ip!)}/${len}`; }));
    for (const a of wantSet) {
      if (have.has(a)) continue;
      const v6 = a.includes(':');
      await this.runner.ip(ns, ['addr', 'add', a, 'dev', dev, ...(v6 ? ['nodad'] : [])]);
    }
    for (const a of have) if (!wantSet.has(a)) await this.runner.ip(ns, ['addr', 'del', a, 'dev', dev]);
  }

  private async nsLinks(ns: string): Promise<Map<string, IpLink>> {
    const list = await this.runner.ipJson<IpLink>(ns, ['-d', 'link', 'show']);
    return new Map(list.map((l) => [l.ifname, l]));
  }

  private async ensureLoopback(ns: string, nsLinks: Map<string, IpLink>, metadata: boolean): Promise<void> {
    if (!nsLinks.get('lo')?.flags.includes('UP')) await this.runner.ip(ns, ['link', 'set', 'dev', 'lo', 'up']);
    await this.syncAddrs(ns, 'lo', metadata ? [`${METADATA_IP}/32`] : []);
  }

  // ------------------------------------------------------------------ security groups (host namespace)

  private async ensureFirewall(ports: PortState[], state: HostNetworkState): Promise<void> {
    const { script } = firewallScript({ ports, securityGroups: state.security_groups });
    const want = ports.some((p) => p.port_security_enabled);
    await this.applyNft(this.hostNs, 'host', script, want ? [`bridge ${FW_TABLE}`, `inet ${FW_TABLE}`] : [], [`bridge ${FW_TABLE}`, `inet ${FW_TABLE}`]);
  }

  /**
   * Applies an nft script (one transaction) unless the same script is already
   * in force: the hash of what was applied is kept in the state dir, so a
   * restarted agent adopts its rules; a table missing from the kernel is
   * re-applied whatever the hash says.
   */
  private async applyNft(ns: string | null, key: string, script: string, mustExist: string[], ours: string[]): Promise<void> {
    const hashFile = join(this.opts.stateDir, 'nft', `${key}.sha`);
    const hash = createHash('sha256').update(script).digest('hex');
    const old = await readFile(hashFile, 'utf8').catch(() => '');
    const tables = await this.nftTables(ns);
    const present = ours.filter((t) => tables.has(t));
    const consistent = mustExist.every((t) => tables.has(t)) && present.length === mustExist.length;
    if (old.trim() === hash && consistent) return;
    if (mustExist.length === 0 && present.length === 0) {
      await rm(hashFile, { force: true });
      return;
    }
    await this.runner.nft(ns, script);
    await mkdir(dirname(hashFile), { recursive: true });
    await writeFile(hashFile, hash + '\n');
  }

  private async nftTables(ns: string | null): Promise<Set<string>> {
    const out = await this.runner.run('nft', ['-j', 'list', 'tables'], { ns });
    const j = JSON.parse(out) as { nftables: Array<{ table?: { family: string; name: string } }> };
    return new Set(j.nftables.filter((x) => x.table).map((x) => `${x.table!.family} ${x.table!.name}`));
  }

  // ------------------------------------------------------------------ routers

  private async ensureRouter(r: RouterState, nets: Map<string, NetworkState>, links: Map<string, IpLink>, namespaces: Set<string>): Promise<void> {
    const ns = routerNamespace(r.id);
    const created = !namespaces.has(ns);
    await this.ensureNamespace(ns, namespaces);
    let nsLinks = await this.nsLinks(ns);
    await this.ensureLoopback(ns, nsLinks, true);
    if (created) await this.runner.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'], { ns });
    const want = new Set<string>();
    const errors: string[] = [];
    for (const i of r.interfaces) {
      const net = nets.get(i.network_id);
      const inner = devName('qr-', i.port_id);
      want.add(inner);
      if (!net) { errors.push(`interface ${i.port_id}: network ${i.network_id} is not in the host state`); continue; }
      // several subnets of one network can share a port: all its addresses go on the one leg
      const addrs = r.interfaces.filter((x) => x.port_id === i.port_id).map((x) => `${canonicalIp(x.ip_address)}/${x.prefixlen}`);
      try {
        await this.ensureVeth({ host: devName('tap', i.port_id), bridge: devName('brq', net.id), ns, inner, mac: i.mac_address, mtu: net.mtu, addrs }, links, nsLinks);
      } catch (e) {
        errors.push(`interface ${i.port_id}: ${errText(e)}`);
      }
    }
    // NAT first: a floating IP's address must never be up on the gateway leg
    // without its DNAT, or the router itself would answer for the guest.
    try {
      await this.applyNft(ns, ns, routerNatScript(r), r.gateway ? [`ip ${ROUTER_TABLE}`] : [], [`ip ${ROUTER_TABLE}`]);
    } catch (e) {
      errors.push(`nat: ${errText(e)}`);
    }
    const gw = r.gateway;
    if (gw) {
      const ext = nets.get(gw.network_id);
      const inner = devName('qg-', gw.port_id);
      want.add(inner);
      if (!ext) errors.push(`gateway: external network ${gw.network_id} is not in the host state`);
      else {
        const addrs = [
          ...gw.fixed_ips.map((f) => `${canonicalIp(f.ip_address)}/${f.prefixlen}`),
          ...r.floating_ips.filter((f) => parseCidr(f.floating_ip_address)).map((f) => `${canonicalIp(f.floating_ip_address)}/${parseCidr(f.floating_ip_address)!.version === 4 ? 32 : 128}`),
        ];
        try {
          await this.ensureVeth({ host: devName('tap', gw.port_id), bridge: devName('brq', ext.id), ns, inner, mac: gw.mac_address, mtu: ext.mtu, addrs }, links, nsLinks);
        } catch (e) {
          errors.push(`gateway ${gw.port_id}: ${errText(e)}`);
        }
      }
    }
    // legs of interfaces that were removed (deleting one end removes its host-side peer too)
    nsLinks = await this.nsLinks(ns);
    for (const n of nsLinks.keys()) if (OWNED_NS_LINK.test(n) && !want.has(n)) await this.runner.ip(ns, ['link', 'del', 'dev', n]).catch((e) => errors.push(`remove ${n}: ${errText(e)}`));

    // routes: default via the gateway, plus the router's static routes (ours are marked proto static)
    const routes = new Map<string, { dst: string; via: string; v: 4 | 6 }>();
    for (const d of routerDefaultRoutes(r, nets)) routes.set(`${d.version}:default`, { dst: 'default', via: canonicalIp(d.via), v: d.version });
    for (const s of r.routes) {
      const c = parseCidr(s.destination);
      if (!c) continue;
      const dst = c.prefixlen === 0 ? 'default' : `${c.network}/${c.prefixlen}`;
      routes.set(`${c.version}:${dst}`, { dst, via: canonicalIp(s.nexthop), v: c.version });
    }
    for (const v of [4, 6] as const) {
      const cur = await this.runner.ipJson<IpRoute>(ns, [`-${v}`, 'route', 'show', 'proto', 'static']).catch(() => [] as IpRoute[]);
      const have = new Map(cur.map((c) => [c.dst, c.gateway ? canonicalIp(c.gateway) : '']));
      for (const [key, rt] of routes) {
        if (rt.v !== v || have.get(rt.dst) === rt.via) continue;
        await this.runner.ip(ns, [`-${v}`, 'route', 'replace', rt.dst, 'via', rt.via, 'proto', 'static']).catch((e) => errors.push(`route ${key}: ${errText(e)}`));
      }
      for (const [dst] of have) if (![...routes.values()].some((rt) => rt.v === v && rt.dst === dst)) await this.runner.ip(ns, [`-${v}`, 'route', 'del', dst, 'proto', 'static']).catch(() => undefined);
    }
    try {
      await this.ensureProxy(ns, 'X-Stratus-Router-Id', r.id);
    } catch (e) {
      errors.push(`metadata proxy: ${errText(e)}`);
    }
    if (errors.length) throw new Error(errors.join('; '));
  }

  // ------------------------------------------------------------------ DHCP

  private dhcpDir(networkId: string): string {
    return join(this.opts.stateDir, 'dhcp', networkId);
  }

  private async ensureDhcp(net: NetworkState, metadata: boolean, links: Map<string, IpLink>, namespaces: Set<string>): Promise<void> {
    const ns = dhcpNamespace(net.id);
    const port = net.dhcp_port!;
    await this.ensureNamespace(ns, namespaces);
    const nsLinks = await this.nsLinks(ns);
    await this.ensureLoopback(ns, nsLinks, metadata);
    await this.ensureVeth({ host: devName('tap', port.id), bridge: devName('brq', net.id), ns, inner: devName('ns-', port.id), mac: port.mac_address, mtu: net.mtu, addrs: dhcpPortAddrs(net) }, links, nsLinks);

    const paths = dhcpPaths(this.dhcpDir(net.id));
    // dnsmasq drops to nobody and re-reads its files as nobody on SIGHUP: the directory must be readable
    await mkdir(paths.dir, { recursive: true, mode: 0o755 });
    const files = dhcpFiles(net, this.lastStateRouters());
    let changed = false;
    for (const [p, body] of [[paths.hosts, files.hosts], [paths.addnHosts, files.addnHosts], [paths.opts, files.opts]] as const) {
      if ((await readFile(p, 'utf8').catch(() => null)) === body) continue;
      await writeFile(`${p}.tmp`, body, { mode: 0o644 });
      await rename(`${p}.tmp`, p);
      changed = true;
    }
    const args = dnsmasqArgs(net, paths, { runAsRoot: this.runAsRoot });
    const pid = await readPid(paths.pid);
    const argv = pid ? await processArgv(pid) : null;
    const same = !!argv && argv.length === args.length + 1 && /(^|\/)dnsmasq$/.test(argv[0]!) && args.every((a, i) => argv[i + 1] === a);
    // Leases of ports that are gone (or whose address went to another port)
    // would make dnsmasq refuse that address to its new owner ("no address
    // available") until they expire; dnsmasq keeps leases in memory, so it is
    // restarted with them removed (Neutron calls dhcp_release for the same reason).
    const wanted = new Set(net.dhcp_hosts.map((h) => `${h.mac_address.toLowerCase()} ${canonicalIp(h.ip_address)}`));
    const leaseLines = ((await readFile(paths.leases, 'utf8').catch(() => '')) || '').split('\n').filter(Boolean);
    const keep = leaseLines.filter((l) => {
      const [, mac, ip] = l.split(' ');
      return !mac || !ip || wanted.has(`${mac.toLowerCase()} ${canonicalIp(ip)}`);
    });
    const stale = keep.length !== leaseLines.length;
    if (same && pid && !stale) {
      if (changed) process.kill(pid, 'SIGHUP');
    } else {
      if (pid && argv?.includes(`--pid-file=${paths.pid}`)) await terminate(pid);
      if (stale) await writeFile(paths.leases, keep.map((l) => `${l}\n`).join(''), { mode: 0o644 });
      await rm(paths.pid, { force: true });
      await this.runner.daemonize(ns, 'dnsmasq', args);
      this.log.info({ network: net.id, ns }, 'dnsmasq started');
    }
    if (metadata) await this.ensureProxy(ns, 'X-Stratus-Network-Id', net.id);
  }

  /** The routers of the state being applied (set at the start of `apply`). */
  private lastStateRouters(): RouterState[] {
    return this.currentRouters;
  }
  private currentRouters: RouterState[] = [];

  // ------------------------------------------------------------------ metadata proxy

  private proxyPidFile(ns: string): string {
    return join(this.opts.stateDir, 'metadata', `${ns}.pid`);
  }

  private proxyArgv(ns: string, header: string, id: string): string[] {
    const js = fileURLToPath(new URL('./metadata-proxy.js', import.meta.url));
    const script = existsSync(js) ? js : fileURLToPath(new URL('./metadata-proxy.ts', import.meta.url));
    // running from the TypeScript sources (tests): load it through tsx
    const loader = script.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
    return [process.execPath, ...loader, script, METADATA_IP, '80', this.opts.metadataSocket, header, id, this.proxyPidFile(ns)];
  }

  private async ensureProxy(ns: string, header: string, id: string): Promise<void> {
    const pidFile = this.proxyPidFile(ns);
    const want = this.proxyArgv(ns, header, id);
    const pid = await readPid(pidFile);
    const argv = pid ? await processArgv(pid) : null;
    if (argv && argv.length === want.length && argv.every((a, i) => a === want[i])) return;
    if (pid && argv?.includes(pidFile)) await terminate(pid);
    await rm(pidFile, { force: true });
    await mkdir(dirname(pidFile), { recursive: true });
    const logFd = openSync(join(dirname(pidFile), `${ns}.log`), 'a');
    try {
      const child = spawn('ip', ['netns', 'exec', ns, ...want], { detached: true, stdio: ['ignore', logFd, logFd] });
      child.on('error', () => undefined);
      child.unref();
    } finally {
      closeSync(logFd);
    }
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      const p = await readPid(pidFile);
      if (p && alive(p)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    const tail = (await readFile(join(dirname(pidFile), `${ns}.log`), 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
    throw new Error(`metadata proxy in ${ns} did not start: ${tail}`);
  }

  // ------------------------------------------------------------------ cleanup

  /** Stops dnsmasq and proxies that have no resource any more: by the pid in our own pid files, and only if that process is ours. */
  private async cleanupProcesses(desired: Set<string>): Promise<void> {
    const files: string[] = [];
    for (const d of await readdir(join(this.opts.stateDir, 'dhcp')).catch(() => [] as string[])) files.push(dhcpPaths(this.dhcpDir(d)).pid);
    for (const f of await readdir(join(this.opts.stateDir, 'metadata')).catch(() => [] as string[])) {
      if (f.endsWith('.pid')) files.push(join(this.opts.stateDir, 'metadata', f));
    }
    for (const f of files) {
      if (desired.has(f)) continue;
      const pid = await readPid(f);
      const argv = pid ? await processArgv(pid) : null;
      if (pid && argv && argv.some((a) => a === f || a === `--pid-file=${f}`)) await terminate(pid);
      await rm(f, { force: true });
      if (f.endsWith('.pid') && f.includes('/metadata/')) await rm(f.replace(/\.pid$/, '.log'), { force: true });
    }
  }
}

/** A VM port's tap: `devName('tap', id)` unless the state names a valid device. */
export function portDevice(p: PortState): string {
  return p.device && /^tap[0-9a-zA-Z-]{1,12}$/.test(p.device) ? p.device : devName('tap', p.id);
}

/** A stable, locally administered unicast MAC for a network's bridge. */
export function bridgeMac(networkId: string): string {
  const h = createHash('sha256').update(networkId).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The MAC of the host side of a VM's tap: the guest's with the first byte fe (as Neutron does). */
export function hostSideMac(guestMac: string): string {
  return `fe${guestMac.toLowerCase().slice(2)}`;
}

/** Whether `nobody` can reach files under `dir` (every ancestor has o+x). */
function traversableByOthers(dir: string): boolean {
  let d = dir;
  for (;;) {
    try {
      if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    const up = dirname(d);
    if (up === d) return true;
    d = up;
  }
}

export { HostCommandError };
