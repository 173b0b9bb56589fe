/**
 * The message bus between API services and host agents. In one process
 * (`stratus up`) it is a direct in-process dispatcher; in a scale-out cloud the
 * same interface is served by a broker (NATS), so services and agents never
 * know where the other side runs. Payloads must be JSON-serializable: the
 * in-process bus round-trips them through JSON to keep both transports honest.
 *
 * - call: RPC to exactly one server of a topic, awaits the reply (with deadline).
 * - cast: fire-and-forget to one server of a topic.
 * - publish/subscribe: events to every subscriber.
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type RpcHandler = (args: Json) => Promise<Json | void> | Json | void;
export type EventHandler = (payload: Json, event: string) => void | Promise<void>;

export class RpcTimeoutError extends Error {
  constructor(topic: string, method: string, ms: number) {
    super(`RPC ${topic}.${method} got no reply within ${ms} ms`);
    this.name = 'RpcTimeoutError';
  }
}
export class NoServerError extends Error {
  constructor(topic: string) {
    super(`no server is listening on topic ${topic}`);
    this.name = 'NoServerError';
  }
}
/** A remote handler's failure, re-raised on the caller's side. */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly remoteName: string,
    /** The remote error's HTTP status and code, when it was an API error. */
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}

export interface Bus {
  serve(topic: string, handlers: Record<string, RpcHandler>): () => void;
  call(topic: string, method: string, args: Json, opts?: { timeoutMs?: number }): Promise<Json>;
  /** Whether some process serves `topic` now (a call would not fail with NoServerError). */
  hasServer(topic: string): Promise<boolean>;
  cast(topic: string, method: string, args: Json): Promise<void>;
  publish(event: string, payload: Json): Promise<void>;
  /** `event` may end in `.*` to match a prefix. */
  subscribe(event: string, handler: EventHandler): () => void;
  close(): Promise<void>;
}

const clone = (v: unknown): Json => (v === undefined ? null : (JSON.parse(JSON.stringify(v)) as Json));

/** The single-process bus used by `stratus up`. */
export class InProcessBus implements Bus {
  private servers = new Map<string, Record<string, RpcHandler>[]>();
  private rr = new Map<string, number>();
  private subs = new Set<{ pattern: string; handler: EventHandler }>();
  constructor(private readonly onError: (e: unknown, where: string) => void = () => {}) {}

  serve(topic: string, handlers: Record<string, RpcHandler>): () => void {
    const list = this.servers.get(topic) ?? [];
    list.push(handlers);
    this.servers.set(topic, list);
    return () => {
      const l = this.servers.get(topic) ?? [];
      const i = l.indexOf(handlers);
      if (i >= 0) l.splice(i, 1);
    };
  }

  async hasServer(topic: string): Promise<boolean> {
    return (this.servers.get(topic)?.length ?? 0) > 0;
  }

  private pick(topic: string): Record<string, RpcHandler> {
    const list = this.servers.get(topic);
    if (!list || list.length === 0) throw new NoServerError(topic);
    const i = (this.rr.get(topic) ?? 0) % list.length;
    this.rr.set(topic, i + 1);
    return list[i]!;
  }

  async call(topic: string, method: string, args: Json, opts: { timeoutMs?: number } = {}): Promise<Json> {
    const server = this.pick(topic);
    const fn = server[method];
    if (!fn) throw new RemoteError(`no method ${method} on ${topic}`, 'NoSuchMethod');
    const timeoutMs = opts.timeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        Promise.resolve().then(() => fn(clone(args))),
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new RpcTimeoutError(topic, method, timeoutMs)), timeoutMs);
        }),
      ]);
      return clone(result);
    } catch (e) {
      if (e instanceof RpcTimeoutError) throw e;
      const err = e as Error & { status?: unknown; code?: unknown };
      throw new RemoteError(err?.message ?? String(e), err?.name ?? 'Error', typeof err?.status === 'number' ? err.status : undefined, typeof err?.code === 'string' ? err.code : undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  async cast(topic: string, method: string, args: Json): Promise<void> {
    const server = this.pick(topic);
    const fn = server[method];
    if (!fn) throw new RemoteError(`no method ${method} on ${topic}`, 'NoSuchMethod');
    const a = clone(args);
    setImmediate(() => {
      Promise.resolve()
        .then(() => fn(a))
        .catch((e) => this.onError(e, `${topic}.${method}`));
    });
  }

  async publish(event: string, payload: Json): Promise<void> {
    const p = JSON.stringify(payload ?? null);
    for (const s of this.subs) {
      const match = s.pattern === event || (s.pattern.endsWith('.*') && event.startsWith(s.pattern.slice(0, -1)));
      if (!match) continue;
      setImmediate(() => {
        Promise.resolve()
          .then(() => s.handler(JSON.parse(p) as Json, event))
          .catch((e) => this.onError(e, `event ${event}`));
      });
    }
  }

  subscribe(event: string, handler: EventHandler): () => void {
    const s = { pattern: event, handler };
    this.subs.add(s);
    return () => this.subs.delete(s);
  }

  async close(): Promise<void> {
    this.servers.clear();
    this.subs.clear();
  }
}
