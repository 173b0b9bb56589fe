import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';

/**
 * A small client for the QEMU Machine Protocol over a unix socket
 * (`-qmp unix:PATH,server=on,wait=off`).
 *
 * Protocol: newline-delimited JSON. On connect the server sends a greeting
 * `{"QMP": {"version": ..., "capabilities": [...]}}`; the client must send
 * `{"execute": "qmp_capabilities"}` before any other command. Commands are
 * `{"execute": NAME, "arguments": {...}, "id": ID}`; replies echo the id as
 * `{"return": ...}` or `{"error": {"class", "desc"}}`. Asynchronous events
 * (`{"event": NAME, "data": {...}, "timestamp": {...}}`) can arrive at any
 * time, e.g. SHUTDOWN, STOP, RESUME, DEVICE_DELETED, BLOCK_JOB_COMPLETED.
 *
 * A QEMU monitor serves one client at a time: a second connection waits
 * (without a greeting) until the first closes, hence the greeting timeout.
 *
 * Events are emitted as `'event'` (every event) and under their own name
 * (`client.on('DEVICE_DELETED', ev => ...)`); `'close'` when the connection
 * ends (e.g. QEMU exited).
 */

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** An error reply from QEMU (`class` e.g. GenericError, DeviceNotFound, CommandNotFound). */
export class QmpError extends Error {
  constructor(
    readonly errorClass: string,
    readonly desc: string,
    readonly command: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface QmpConnectOptions {
  /** Max time for connect + greeting + capabilities negotiation (default 5000 ms). */
  timeoutMs?: number;
}

export class QmpClient extends EventEmitter {
  /** QEMU version from the greeting, e.g. `{ major: 7, minor: 2, micro: 22 }`. */
  version: { major: number; minor: number; micro: number } | null = null;
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private greeting: ((g: Record<string, unknown>) => void) | null = null;
  private closedFlag = false;

  private constructor(
    private readonly sock: Socket,
    readonly path: string,
  ) {
    super();
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('error', () => {
      /* reported through 'close' */
    });
    sock.on('close', () => this.onClose());
  }

  /** Connects to `path`, reads the greeting and negotiates capabilities. */
  static connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const sock = createConnection({ path });
      const client = new QmpClient(sock, path);
      let done = false;
      const fail = (e: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        reject(e);
      };
      const timer = setTimeout(
        () => fail(new Error(`QMP ${path}: no greeting within ${timeoutMs} ms (QEMU busy, or another client holds the monitor)`)),
        timeoutMs,
      );
      sock.once('error', (e) => fail(new Error(`QMP ${path}: ${e.message}`)));
      client.greeting = (g) => {
        const v = (g.QMP as { version?: { qemu?: { major: number; minor: number; micro: number } } } | undefined)?.version?.qemu;
        client.version = v ?? null;
        client
          .execute('qmp_capabilities', undefined, { timeoutMs })
          .then(() => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            resolve(client);
          })
          .catch((e: Error) => fail(e));
      };
      client.once('close', () => fail(new Error(`QMP ${path}: connection closed during negotiation`)));
    });
  }

  /** True once the connection has ended. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Runs a command and resolves with its `return` value. Rejects with
   * {@link QmpError} on an error reply, or an Error on timeout (default
   * 30 s) or when the connection closes first.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closedFlag) return Promise.reject(new Error(`QMP ${this.path}: connection closed`));
    const id = `stratus-${this.nextId++}`;
    const msg: Record<string, unknown> = { execute: command, id };
    if (args !== undefined) msg.arguments = args;
    return new Promise<T>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.sock.write(JSON.stringify(msg) + '\n');
    });
  }

  /**
   * Resolves with the next event named `name` for which `match` holds.
   * Register BEFORE sending the command that triggers it (no race).
   * Rejects on timeout or when the connection closes.
   */
  waitForEvent(name: string, match: (ev: QmpEvent) => boolean = () => true, timeoutMs = 30_000): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off(name, onEvent);
        this.off('close', onClose);
      };
      const onEvent = (ev: QmpEvent): void => {
        if (!match(ev)) return;
        cleanup();
        resolve(ev);
      };
      const onClose = (): void => {
        cleanup();
        reject(new Error(`QMP ${this.path}: connection closed while waiting for ${name}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`QMP: no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on(name, onEvent);
      this.once('close', onClose);
    });
  }

  /** Closes the connection (QEMU keeps running). */
  close(): void {
    this.sock.end();
    this.sock.destroy();
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // not JSON: ignore
      }
      this.dispatch(msg);
    }
  }

  private dispatch(msg: Record<string, unknown>): void {
    if ('QMP' in msg) {
      const g = this.greeting;
      this.greeting = null;
      g?.(msg);
      return;
    }
    if (typeof msg.event === 'string') {
      const ev = msg as unknown as QmpEvent;
      this.emit('event', ev);
      this.emit(ev.event, ev);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id ? this.pending.get(id) : undefined;
    if (!p || !id) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const e = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError(e.class ?? 'GenericError', e.desc ?? 'unknown error', p.command));
    } else {
      p.resolve(msg.return);
    }
  }

  private onClose(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new Error(`QMP ${p.command}: connection closed`));
    }
    this.emit('close');
  }
}
