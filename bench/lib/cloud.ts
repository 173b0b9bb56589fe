import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../test/helpers/cloud-process.js';

/** A port below the kernel's ephemeral range (a port listen(0) hands out can be taken by an outgoing connection before the cloud binds it). */
export { freePort };

export const ROOT = resolve(import.meta.dirname, '..', '..');

export interface BenchCloud {
  url: string;
  /** The S3 API's endpoint (`--s3-listen`). */
  s3Url: string;
  dataDir: string;
  /** The namespace holding the run's data plane (`--host-netns`). */
  netns: string;
  proc: ChildProcess;
  readyMs: number;
  token(user: 'admin' | 'demo'): Promise<string>;
  api(token: string, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  stop(): Promise<void>;
}

/** Extra node flags for the cloud process, e.g. STRATUS_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const nodeArgs = () => (process.env['STRATUS_BENCH_NODE_ARGS'] ?? '').split(/\s+/).filter(Boolean);

/** Newest modification time (ms) of a .ts file under `dir`. */
function newestTs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/ when it is missing or older than a file under src/: a bench
 * must measure the code in the tree, not whatever was built last.
 */
export function ensureBuilt(): void {
  const main = join(ROOT, 'dist/cli/main.js');
  let built = 0;
  try {
    built = statSync(main).mtimeMs;
  } catch {
    /* not built */
  }
  if (built >= newestTs(join(ROOT, 'src'))) return;
  console.log(built ? 'dist/ is older than src/: building…' : 'building dist/…');
  execFileSync('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
}

/**
 * Starts the built cloud (dist/, rebuilt first when stale) on a temp data dir for a benchmark.
 * STRATUS_BENCH_MAIN (in `env` or the environment) names another build's
 * `cli/main.js`, to compare two builds side by side.
 */
export async function startBenchCloud(env: Record<string, string> = {}, args: string[] = []): Promise<BenchCloud> {
  const other = env['STRATUS_BENCH_MAIN'] ?? process.env['STRATUS_BENCH_MAIN'];
  if (!other) ensureBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'stratus-bench-'));
  // The data plane lives in a namespace made for this run, never in the root namespace.
  const netns = `stratus-b-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  execFileSync('ip', ['netns', 'add', netns]);
  execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const s3Port = await freePort();
  const proc = spawn(process.execPath, [...nodeArgs(), other ?? join(ROOT, 'dist/cli/main.js'), 'up', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--s3-listen', `127.0.0.1:${s3Port}`, '--log-level', 'warn', '--host-netns', netns, ...args], {
    env: { ...process.env, STRATUS_IDENTITY__PASSWORD_HASH_COST: '8', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((res, rej) => {
    proc.stdout!.on('data', (d: Buffer) => d.toString().includes('stratus ready') && res());
    proc.once('exit', (c) => rej(new Error(`exited ${c}`)));
  });
  const readyMs = performance.now() - t0;
  const secret = (n: string) => readFileSync(join(dataDir, 'secrets', n), 'utf8').trim();
  const token = async (user: 'admin' | 'demo') => {
    const r = await fetch(`${url}/identity/v3/auth/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password: secret(`${user}-password`) } } }, scope: { project: { name: user, domain: { id: 'default' } } } } }),
    });
    return r.headers.get('x-subject-token')!;
  };
  const api = async (tok: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(url + path, { method, headers: { 'x-auth-token': tok, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: r.status, body: parsed as any, headers: r.headers }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  return {
    url, s3Url: `http://127.0.0.1:${s3Port}`, dataDir, netns, proc, readyMs, token, api,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      for (const pid of execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      execFileSync('ip', ['netns', 'del', netns]);
      // the agent's router and DHCP namespaces (global names; it marks each one it made)
      for (const ns of (() => { try { return readdirSync(join(dataDir, 'network', 'netns')); } catch { return []; } })()) {
        for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        execFileSync('ip', ['netns', 'del', ns]);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** What a bench needs to speak both object APIs as one user: a token, the Swift storage URL, an EC2 credential for S3. */
export interface ObjectAccess {
  token: string;
  /** The object-store endpoint of the user's project (`…/object/v1/AUTH_<project>`). */
  storageUrl: string;
  /** An EC2 credential of the same user and project (the S3 API's keys). */
  access: string;
  secret: string;
}

export async function objectAccess(cloud: BenchCloud, user: 'admin' | 'demo' = 'demo'): Promise<ObjectAccess> {
  const token = await cloud.token(user);
  const who = (await cloud.api(token, 'GET', '/identity/v3/auth/tokens', undefined, { 'x-subject-token': token })).body as {
    token: { user: { id: string }; project: { id: string }; catalog: Array<{ type: string; endpoints: Array<{ interface: string; url: string }> }> };
  };
  const storageUrl = who.token.catalog.find((s) => s.type === 'object-store')!.endpoints.find((e) => e.interface === 'public')!.url;
  const made = await cloud.api(token, 'POST', `/identity/v3/users/${who.token.user.id}/credentials/OS-EC2`, { tenant_id: who.token.project.id });
  const { access, secret } = (made.body as { credential: { access: string; secret: string } }).credential;
  return { token, storageUrl, access, secret };
}

export const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};
export const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
