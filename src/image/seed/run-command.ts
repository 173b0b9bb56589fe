import { execFile } from 'node:child_process';

/** Result of a finished subprocess. */
export interface CommandResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the process after this many ms (default 10 minutes). */
  timeoutMs?: number;
}

/**
 * Runs `cmd` with an argument array (no shell) and resolves with its output.
 * Rejects with an Error whose message carries the command line, exit status
 * and the tail of stderr, so a failed build step explains itself.
 */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        timeout: opts.timeoutMs ?? 600_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException & { code?: number | string; signal?: string | null };
          const what = e.code === 'ENOENT' ? 'not found' : `failed (${e.code ?? e.signal ?? 'error'})`;
          const tail = String(stderr || stdout || '').trim().split('\n').slice(-8).join('\n');
          reject(new Error(`${cmd} ${args.join(' ')}: ${what}${tail ? `\n${tail}` : ''}`));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}
