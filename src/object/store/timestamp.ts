import { BadRequestError } from './errors.js';

/**
 * Timestamps as Swift writes them (`X-Timestamp`): seconds since the epoch
 * with five decimals, zero-padded to 16 characters (`1700000000.12345`), so
 * that string order is time order. Internally they are integer "ticks" of
 * 10 microseconds. Last writer wins by this value everywhere in the engine.
 */
export type Timestamp = string;

const TICKS_PER_SECOND = 100_000;
const MAX_TICKS = 9_999_999_999_99999;
const TS_RE = /^(\d{1,10})(?:\.(\d{1,5}))?$/;

/** Renders ticks as the canonical 16-character form. */
export function formatTicks(ticks: number): Timestamp {
  const secs = Math.floor(ticks / TICKS_PER_SECOND);
  const frac = ticks - secs * TICKS_PER_SECOND;
  return `${String(secs).padStart(10, '0')}.${String(frac).padStart(5, '0')}`;
}

/** Ticks of a canonical or loose timestamp (`"1700000000"`, `"1700000000.1"`, `1700000000.5`). */
export function parseTicks(value: string | number): number {
  const s = typeof value === 'number' ? value.toFixed(5) : value.trim();
  const m = TS_RE.exec(s);
  if (!m) throw new BadRequestError(`Invalid timestamp: ${String(value)}`);
  const ticks = Number(m[1]) * TICKS_PER_SECOND + Number((m[2] ?? '').padEnd(5, '0'));
  if (!Number.isSafeInteger(ticks) || ticks > MAX_TICKS) throw new BadRequestError(`Invalid timestamp: ${String(value)}`);
  return ticks;
}

/** Canonical form of a timestamp given in any accepted form. */
export function normalizeTimestamp(value: string | number): Timestamp {
  return formatTicks(parseTicks(value));
}

/** Milliseconds since the epoch (for Last-Modified / listings). */
export function timestampToMs(ts: Timestamp): number {
  return Math.floor(parseTicks(ts) / 100);
}

/**
 * Swift's listing form of a time: `2016-03-29T19:41:38.176080` (UTC, microseconds,
 * no zone).
 */
export function timestampToIso(ts: Timestamp): string {
  const ticks = parseTicks(ts);
  const ms = Math.floor(ticks / 100);
  const micros = (ticks % 100) * 10;
  const iso = new Date(ms).toISOString(); // 2016-03-29T19:41:38.176Z
  return `${iso.slice(0, 23)}${String(micros).padStart(3, '0')}`;
}

/**
 * Hands out strictly increasing timestamps for this process (at least one
 * tick apart even when the clock stands still or steps back).
 */
export class TimestampClock {
  private last = 0;
  /** The next timestamp: now, or one tick after the previous one. */
  next(): Timestamp {
    const now = Date.now() * 100;
    this.last = now > this.last ? now : this.last + 1;
    return formatTicks(this.last);
  }
  /** Makes later `next()` values exceed `ts` (e.g. a timestamp seen from a client). */
  observe(ts: Timestamp): void {
    const t = parseTicks(ts);
    if (t > this.last) this.last = t;
  }
}
