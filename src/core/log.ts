import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * One JSON-lines log per cloud in `<data-dir>/logs/stratus.log`, written
 * asynchronously so logging never blocks the request path. Warnings and
 * errors are echoed to stderr, where an operator watching `stratus up` sees them.
 */
export function createLogger(dataDir: string | null, level: string): Logger {
  if (dataDir === null || level === 'silent') return pino({ level: 'silent' });
  mkdirSync(join(dataDir, 'logs'), { recursive: true });
  const file = pino.destination({ dest: join(dataDir, 'logs', 'stratus.log'), sync: false, mkdir: true });
  const streams = pino.multistream([
    { stream: file, level: level as pino.Level },
    { stream: pino.destination({ dest: 2, sync: false }), level: 'warn' },
  ]);
  return pino({ level, base: { pid: process.pid } }, streams);
}
