import type { StoreLogger } from './disk.js';

/**
 * A pass that can run once on demand (`runOnce()`) or periodically in the
 * background (`start(intervalMs)` / `stop()`). Passes never overlap: a
 * `runOnce()` during a background pass waits for it, then runs its own.
 */
export abstract class PeriodicTask<S> {
  private timer: NodeJS.Timeout | null = null;
  private current: Promise<S> | null = null;
  private ctrl: AbortController | null = null;
  private started = false;
  /** Result of the last completed pass. */
  lastStats?: S;
  /** Error of the last failed background pass. */
  lastError?: unknown;
  passes = 0;

  protected constructor(
    private readonly taskName: string,
    protected readonly log: StoreLogger,
  ) {}

  /** One pass; must check `signal.aborted` between units of work. */
  protected abstract pass(signal: AbortSignal): Promise<S>;

  /** Runs one full pass now and resolves its statistics. */
  async runOnce(): Promise<S> {
    while (this.current) await this.current.catch(() => {});
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    const p = this.pass(ctrl.signal);
    this.current = p;
    try {
      const stats = await p;
      this.lastStats = stats;
      this.passes++;
      return stats;
    } finally {
      this.current = null;
      this.ctrl = null;
    }
  }

  /** Starts passes every `intervalMs` (the first one after one interval). */
  start(intervalMs: number): void {
    if (this.started) return;
    this.started = true;
    const tick = async () => {
      this.timer = null;
      if (!this.started) return;
      try {
        await this.runOnce();
      } catch (e) {
        this.lastError = e;
        this.log.error({ task: this.taskName, err: String(e) }, 'background pass failed');
      }
      if (this.started) this.timer = setTimeout(tick, intervalMs).unref();
    };
    this.timer = setTimeout(tick, intervalMs).unref();
  }

  /** Stops the background loop; a pass in progress is aborted at its next check and awaited. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.ctrl?.abort();
    await this.current?.catch(() => {});
  }

  get running(): boolean {
    return this.started;
  }
}

/** Runs `fn` over `items` with at most `n` in flight. */
export async function eachLimit<T>(items: Iterable<T>, n: number, fn: (x: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]();
  const worker = async () => {
    for (let r = it.next(); !r.done; r = it.next()) await fn(r.value);
  };
  await Promise.all(Array.from({ length: n }, worker));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
