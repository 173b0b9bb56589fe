import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');

/** Where the kernel's ephemeral port range (the local ports of outgoing connections) starts. */
function ephemeralLow(): number {
  try {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (lo > 0) return lo;
  } catch {
    /* not Linux: the usual default */
  }
  return 32768;
}

const tryListen = (port: number): Promise<boolean> =>
  new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, chosen below the
 * kernel's ephemeral range. A port from that range (what `listen(0)` hands
 * out) can be taken, once released, as the local port of any outgoing
 * connection on the host: a cloud restarted on the same port then fails
 * with "address in use" (seen in CI). A port outside it is only ever taken
 * by a listener that asks for it.
 */
export async function freePort(): Promise<number> {
  const lo = ephemeralLow();
  const base = 10_000;
  for (let i = 0; i < 200; i++) {
    const port = base + Math.floor(Math.random() * Math.max(1, lo - base));
    if (await tryListen(port)) return port;
  }
  throw new Error('no free TCP port below the ephemeral range');
}

export interface RunningCloud {
  dataDir: string;
  /** The network namespace holding this cloud's data plane (`--host-netns`), created for it; null if none. */
  hostNetns: string | null;
  port: number;
  /** Where the S3 API listens (127.0.0.1). */
  s3Port: number;
  url: string;
  proc: ChildProcess;
  output: () => string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** Remove the data dir (after stop). */
  cleanup(): void;
}

/**
 * Starts `./stratus up` exactly as an operator would, on a temp data dir and
 * a free loopback port, and resolves once it prints its ready line.
 */
export async function startCloud(opts: { dataDir?: string; port?: number; args?: string[]; env?: NodeJS.ProcessEnv; timeoutMs?: number; hostNetns?: string | false } = {}): Promise<RunningCloud> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'stratus-e2e-'));
  const port = opts.port ?? (await freePort());
  // The data plane (bridges, taps, router and DHCP namespaces' links, the
  // external network's host address) always lives in a namespace the test
  // owns, never in the root namespace. A restart passes the same one back
  // (`hostNetns: cloud.hostNetns`); cleanup() deletes it.
  let hostNetns: string | null = opts.hostNetns === false ? null : (opts.hostNetns ?? null);
  if (opts.hostNetns === undefined) hostNetns = createNetns();
  const s3Port = await freePort();
  const proc = spawn(join(ROOT, 'stratus'), ['up', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--s3-listen', `127.0.0.1:${s3Port}`, ...(hostNetns ? ['--host-netns', hostNetns] : []), ...(opts.args ?? [])], {
    cwd: ROOT,
    // Tests share one guest-image cache and skip the KVM probe (TCG), which
    // the driver's own tests exercise; each would otherwise redo both.
    env: { STRATUS_GUEST_IMAGE_CACHE: '/var/tmp/stratus-test-cache/guest-image', STRATUS_COMPUTE__ACCEL: 'tcg', ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const timeoutMs = opts.timeoutMs ?? 180_000;
  await new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`stratus up not ready after ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      if (out.includes('stratus ready:')) {
        clearTimeout(t);
        res();
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(t);
      rej(new Error(`stratus up exited with ${code} before ready:\n${out}`));
    });
  });
  return {
    dataDir,
    hostNetns,
    port,
    s3Port,
    url: `http://127.0.0.1:${port}`,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    /** Removes the data plane this test created (its namespace and what lives in it) and the data dir (after stop). */
    cleanup() {
      // The agent's router and DHCP namespaces are named globally; it marks each one it made.
      for (const ns of agentNamespaces(dataDir)) deleteNetns(ns);
      if (hostNetns) deleteNetns(hostNetns);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The qdhcp-/qrouter- namespaces the cloud's network agent created (its ownership markers). */
export function agentNamespaces(dataDir: string): string[] {
  try {
    return readdirSync(join(dataDir, 'network', 'netns')).filter((n) => /^(qdhcp|qrouter)-[0-9a-f-]+$/.test(n));
  } catch {
    return [];
  }
}

/** A fresh, uniquely named network namespace with loopback up. */
export function createNetns(prefix = 'stratus-t'): string {
  const name = `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Kills what still runs inside the namespace (by pid) and deletes it. */
export function deleteNetns(name: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  } catch {
    /* no such namespace */
  }
  try {
    execFileSync('ip', ['netns', 'del', name]);
  } catch {
    /* already gone */
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs Debian's `openstack` CLI (with Debian's python, not a pyenv shim)
 * against the cloud's clouds.yaml.
 */
export function openstack(cloud: RunningCloud, who: 'stratus-admin' | 'stratus-demo' | null, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const argv = [...(who ? ['--os-cloud', who] : []), ...args];
  return new Promise((res) => {
    execFile(
      '/usr/bin/openstack',
      argv,
      {
        env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', OS_CLIENT_CONFIG_FILE: join(cloud.dataDir, 'clouds.yaml'), ...env },
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs the CLI and parses `-f json` output; throws with stderr on failure. */
export async function osJson<T = Record<string, unknown>>(cloud: RunningCloud, who: 'stratus-admin' | 'stratus-demo' | null, args: string[], env?: NodeJS.ProcessEnv): Promise<T> {
  const r = await openstack(cloud, who, [...args, '-f', 'json'], env);
  if (r.code !== 0) throw new Error(`openstack ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export async function osOk(cloud: RunningCloud, who: 'stratus-admin' | 'stratus-demo' | null, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await openstack(cloud, who, args, env);
  if (r.code !== 0) throw new Error(`openstack ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export const hasOpenstackCli = () => existsSync('/usr/bin/openstack');

/**
 * Polls `fn` until it returns something truthy (errors count as "not yet",
 * the last one is reported on timeout).
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 180_000, everyMs = 1500): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Waits until a server's console log (`openstack console log show`) matches `re`; the match's `input` is the whole log. */
export function consoleMatch(cloud: RunningCloud, who: 'stratus-admin' | 'stratus-demo', name: string, re: RegExp, timeoutMs = 240_000): Promise<RegExpExecArray> {
  return waitFor(`${name} console ${re}`, async () => re.exec(await osOk(cloud, who, ['console', 'log', 'show', name])) ?? undefined, timeoutMs, 2000);
}
/**
 * Teardown of a test that boots guests: deletes every server left (waiting,
 * so no QEMU outlives the test), stops the cloud and removes its data dir.
 */
export async function deleteServersAndStop(cloud: RunningCloud | undefined): Promise<void> {
  if (!cloud) return;
  const left = await openstack(cloud, 'stratus-admin', ['server', 'list', '--all-projects', '-f', 'value', '-c', 'ID']);
  for (const id of left.stdout.split('\n').filter(Boolean)) await openstack(cloud, 'stratus-admin', ['server', 'delete', '--wait', id]);
  await cloud.stop();
  cloud.cleanup();
}

export const readSecret = (cloud: RunningCloud, name: string) => readFileSync(join(cloud.dataDir, 'secrets', name), 'utf8').trim();
