import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * The one place the network agent touches the host: every `ip`, `nft`,
 * `sysctl` and `dnsmasq` goes through here, as an argument array (never a
 * shell). `ns` names the network namespace a command acts in; `null` is the
 * namespace this process runs in (the root namespace of a real deployment).
 */
export class HostCommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly code: number | string | null,
  ) {
    super(`${command}: ${stderr || `failed (${code ?? 'error'})`}`);
    this.name = 'HostCommandError';
  }
}

export interface RunOpts {
  /** Network namespace to run in (`ip netns exec NS`); null/undefined: this process's namespace. */
  ns?: string | null;
  /** Written to the command's stdin (nft -f -). */
  input?: string;
  timeoutMs?: number;
}

export class Runner {
  /** Commands run so far (for the benchmark's accounting and for debugging). */
  count = 0;

  run(cmd: string, args: readonly string[], opts: RunOpts = {}): Promise<string> {
    const [file, argv] = opts.ns ? ['ip', ['netns', 'exec', opts.ns, cmd, ...args]] : [cmd, [...args]];
    const line = `${opts.ns ? `[${opts.ns}] ` : ''}${cmd} ${args.join(' ')}`;
    this.count++;
    return new Promise((resolve, reject) => {
      const child = execFile(file, argv, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException & { code?: number | string };
          const tail = String(stderr || '').trim().split('\n').slice(-8).join('\n');
          reject(new HostCommandError(line.length > 300 ? `${line.slice(0, 300)}…` : line, e.code === 'ENOENT' ? `${cmd}: not installed` : tail, e.code ?? null));
          return;
        }
        resolve(stdout);
      });
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  }

  /** `ip` acting inside `ns` (`ip -n NS ...`, cheaper than `ip netns exec`). */
  ip(ns: string | null, args: readonly string[]): Promise<string> {
    return this.run('ip', ns ? ['-n', ns, ...args] : args);
  }

  /** `ip -j ...` parsed. */
  async ipJson<T>(ns: string | null, args: readonly string[]): Promise<T[]> {
    const out = await this.ip(ns, ['-j', ...args]);
    const t = out.trim();
    return t ? (JSON.parse(t) as T[]) : [];
  }

  /** Applies an nft script as one transaction (`nft -f -`): all of it or none of it. */
  nft(ns: string | null, script: string): Promise<string> {
    return this.run('nft', ['-f', '-'], { ns, input: script });
  }

  /**
   * Starts a daemon in `ns` and waits for the launcher to exit (dnsmasq forks
   * itself into the background). stdio is detached so a forked daemon holding
   * our pipes can never keep this waiting.
   */
  daemonize(ns: string | null, cmd: string, args: readonly string[], timeoutMs = 15_000): Promise<void> {
    const [file, argv] = ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, [...args]];
    this.count++;
    return new Promise((resolve, reject) => {
      const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let err = '';
      child.stderr?.on('data', (b: Buffer) => (err += b.toString()).length > 4000 && (err = err.slice(-4000)));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new HostCommandError(`${cmd} ${args.join(' ')}`, 'did not detach in time', 'ETIMEDOUT'));
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new HostCommandError(`${cmd}`, e.message, null));
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        child.stderr?.destroy();
        if (code === 0) resolve();
        else reject(new HostCommandError(`${ns ? `[${ns}] ` : ''}${cmd} ${args.join(' ')}`, err.trim().split('\n').slice(-6).join('\n'), code));
      });
    });
  }
}

/** Reads a pid file; null when absent or not a pid. */
export async function readPid(path: string): Promise<number | null> {
  try {
    const n = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(n) && n > 1 ? n : null;
  } catch {
    return null;
  }
}

/** The NUL-separated command line of a live process, or null when it is gone. */
export async function processArgv(pid: number): Promise<string[] | null> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (!raw) return null;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return null;
  }
}

/** Whether the process exists and is not a zombie (a daemon we stopped may wait a while for its reaper). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** SIGTERM by pid, SIGKILL after `graceMs`; resolves once it is gone. */
export async function terminate(pid: number, graceMs = 3000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + graceMs;
  while (Date.now() < end) {
    if (!alive(pid)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  const end2 = Date.now() + 2000;
  while (Date.now() < end2 && alive(pid)) await new Promise((r) => setTimeout(r, 25));
}
