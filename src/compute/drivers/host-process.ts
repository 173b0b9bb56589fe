import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/**
 * Host process helpers for the compute drivers: run commands with argument
 * arrays (never a shell), and find / watch / kill processes by PID (never
 * by name pattern).
 */

export interface RunOptions {
  /** Kill after this many ms (default 120 s). */
  timeoutMs?: number;
  cwd?: string;
}

/** Runs a command and resolves with stdout; rejects with the command line, status and stderr tail. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', cwd: opts.cwd },
      (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException & { signal?: string | null };
          const tail = String(stderr || stdout || '').trim().split('\n').slice(-6).join('\n');
          reject(new Error(`${cmd} ${args.join(' ')}: ${e.code === 'ENOENT' ? 'not found' : `failed (${e.code ?? e.signal ?? 'error'})`}${tail ? `: ${tail}` : ''}`));
          return;
        }
        resolve(stdout);
      },
    );
  });
}

/** Reads a pidfile; null when absent or garbage. */
export async function readPidfile(path: string): Promise<number | null> {
  try {
    const n = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** True when PID exists and is not a zombie. */
export async function pidAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Command line (argv) of PID, or null if it is gone. */
export async function cmdlineOf(pid: number): Promise<string[] | null> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    const argv = raw.split('\0');
    if (argv.length > 0 && argv[argv.length - 1] === '') argv.pop();
    return argv;
  } catch {
    return null;
  }
}

/** True when PID is alive and its argv contains every one of `needles` as a whole argument or substring of one. */
export async function pidMatches(pid: number, needles: readonly string[]): Promise<boolean> {
  if (!(await pidAlive(pid))) return false;
  const argv = await cmdlineOf(pid);
  if (!argv) return false;
  return needles.every((n) => argv.some((a) => a.includes(n)));
}

/** Sends a signal to one PID; false when it is already gone. */
export function killPid(pid: number, signal: NodeJS.Signals = 'SIGTERM'): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until PID is gone (or a zombie). Resolves true if it went within `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number, pollMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (!(await pidAlive(pid))) return true;
    if (Date.now() >= end) return false;
    await sleep(pollMs);
  }
}

/** SIGTERM, wait, then SIGKILL: ends one process for sure. */
export async function terminate(pid: number, graceMs = 5000): Promise<void> {
  if (!(await pidAlive(pid))) return;
  killPid(pid, 'SIGTERM');
  if (await waitForExit(pid, graceMs)) return;
  killPid(pid, 'SIGKILL');
  await waitForExit(pid, 10_000);
}

/** Single-quotes a string for /bin/sh (used only where QEMU itself runs a shell: exec: migration URIs). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
