import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * The data path of an upload: bytes arriving from the network are copied
 * once into a small ring of 1 MiB slots, and each full slot is then, in
 * parallel, hashed with MD5 and with SHA-512 (one worker thread each) and
 * written to the file by the caller's sink. A slot is reused when all three
 * are done; when the ring is full, `push` returns a promise, which is the
 * backpressure the network reader needs. Memory use is the ring (8 MiB),
 * whatever the image size.
 *
 * Why: the two digests cost ~1.6 s of CPU per GiB each here; inline they
 * would cap uploads at ~300 MB/s and stall the event loop. The ring lives in
 * shared WebAssembly memory, which is page-aligned, so full slots can also
 * be written with O_DIRECT (the store does), skipping the page cache copy
 * and the write-back that would otherwise dominate fsync.
 *
 * Messages to a worker arrive in order, so each digest sees the bytes in
 * order. On a host with one CPU, or when workers cannot run, the digests are
 * computed inline.
 */
export const SLOT_BYTES = 1024 * 1024;
const SLOTS = 8;

export interface DigestResult {
  size: number;
  md5: string;
  sha512: string;
}

/** Where full (and the last, partial) slots go. `position` is the byte offset in the stream. */
export type SlotSink = (data: Uint8Array, position: number) => Promise<void>;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.t === 'data') {
      let h = jobs.get(m.id);
      if (!h) jobs.set(m.id, (h = createHash(workerData.algo)));
      h.update(new Uint8Array(m.sab, m.off, m.len));
      parentPort.postMessage({ t: 'ack', id: m.id, slot: m.slot });
    } else if (m.t === 'end') {
      const h = jobs.get(m.id) || createHash(workerData.algo);
      jobs.delete(m.id);
      parentPort.postMessage({ t: 'digest', id: m.id, hex: h.digest('hex') });
    } else if (m.t === 'abort') {
      jobs.delete(m.id);
    }
  } catch (e) {
    parentPort.postMessage({ t: 'error', id: m.id, message: String((e && e.message) || e) });
  }
});
`;

interface JobHandlers {
  onAck(slot: number): void;
  onDigest(algo: string, hex: string): void;
  onError(err: Error): void;
}

/** The two hashing workers, shared by every upload of the process (unref'd: they never keep it alive). */
class HashWorkers {
  private workers: Map<string, Worker> | null = null;
  private readonly jobs = new Map<number, JobHandlers>();
  private nextId = 1;
  /** Set when workers failed: later uploads hash inline. */
  broken = false;

  private start(): Map<string, Worker> {
    if (this.workers) return this.workers;
    const ws = new Map<string, Worker>();
    const fail = (e: unknown) => {
      this.broken = true;
      this.workers = null;
      for (const j of this.jobs.values()) j.onError(e instanceof Error ? e : new Error(String(e)));
      this.jobs.clear();
      for (const w of ws.values()) void w.terminate();
    };
    for (const algo of ['md5', 'sha512']) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { algo } });
      w.on('message', (m: { t: string; id: number; slot?: number; hex?: string; message?: string }) => {
        const job = this.jobs.get(m.id);
        if (!job) return;
        if (m.t === 'ack') job.onAck(m.slot!);
        else if (m.t === 'digest') job.onDigest(algo, m.hex!);
        else if (m.t === 'error') job.onError(new Error(`${algo} worker: ${m.message}`));
      });
      w.on('error', fail);
      w.on('exit', (code) => {
        if (this.workers === ws) fail(new Error(`${algo} worker exited with ${code}`));
      });
      // Listeners ref the worker: unref after adding them (ref'd again while jobs run).
      w.unref();
      ws.set(algo, w);
    }
    this.workers = ws;
    return ws;
  }

  warm(): void {
    this.start();
  }

  /** Workers keep the process alive only while some upload needs them. */
  private setRef(on: boolean): void {
    for (const w of this.workers?.values() ?? []) if (on) w.ref();
    else w.unref();
  }

  open(h: JobHandlers): { post: (msg: Record<string, unknown>) => void; close: () => void } {
    const ws = this.start();
    const id = this.nextId++;
    this.jobs.set(id, h);
    if (this.jobs.size === 1) this.setRef(true);
    return {
      post: (msg) => {
        for (const w of ws.values()) w.postMessage({ ...msg, id });
      },
      close: () => {
        if (this.jobs.delete(id) && this.jobs.size === 0) this.setRef(false);
      },
    };
  }
}

const hashWorkers = new HashWorkers();

/**
 * Starts the hashing workers now (a fixed ~20 MB, once per process) rather
 * than inside the first upload.
 */
export function startHashWorkers(): void {
  if (hashWorkers.broken || availableParallelism() < 2) return;
  try {
    hashWorkers.warm();
  } catch {
    hashWorkers.broken = true;
  }
}

/** Page-aligned shared memory for the ring (WebAssembly memory is page-aligned). */
function alignedShared(bytes: number): SharedArrayBuffer {
  const pages = Math.ceil(bytes / 65536);
  const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer } } }).WebAssembly;
  return new wasm.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
}

export class IngestRing {
  private readonly sab = alignedShared(SLOT_BYTES * SLOTS);
  private readonly view = new Uint8Array(this.sab);
  private readonly free: number[] = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);
  /** Outstanding completions per slot (hashers and sink). */
  private readonly pending = new Array<number>(SLOTS).fill(0);
  private waiters: (() => void)[] = [];
  private slot = -1;
  private fill = 0;
  private size = 0;
  private error: Error | null = null;
  private finished = false;
  private readonly inline: { md5: Hash; sha512: Hash } | null;
  private readonly channel: ReturnType<HashWorkers['open']> | null;
  private readonly digests = new Map<string, string>();
  private onDigests: (() => void) | null = null;
  /** Slots whose sink write is in flight. */
  private readonly sinkBusy = new Set<number>();

  constructor(private readonly sink: SlotSink, opts: { inlineHashing?: boolean } = {}) {
    let channel: ReturnType<HashWorkers['open']> | null = null;
    if (!opts.inlineHashing && !hashWorkers.broken && availableParallelism() >= 2) {
      try {
        channel = hashWorkers.open({
          onAck: (slot) => this.done(slot),
          onDigest: (algo, hex) => {
            this.digests.set(algo, hex);
            if (this.digests.size === 2) this.onDigests?.();
          },
          onError: (e) => this.fail(e),
        });
      } catch {
        channel = null;
      }
    }
    this.channel = channel;
    this.inline = channel ? null : { md5: createHash('md5'), sha512: createHash('sha512') };
  }

  private fail(e: Error): void {
    this.error ??= e;
    this.wake();
    this.onDigests?.();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  private done(slot: number): void {
    if (--this.pending[slot]! === 0) {
      this.free.push(slot);
      this.wake();
    }
  }

  private submit(): void {
    const slot = this.slot;
    const len = this.fill;
    this.slot = -1;
    this.fill = 0;
    if (slot < 0 || len === 0) {
      if (slot >= 0) this.free.push(slot);
      return;
    }
    const data = new Uint8Array(this.sab, slot * SLOT_BYTES, len);
    this.pending[slot] = this.channel ? 3 : 1;
    if (this.channel) this.channel.post({ t: 'data', sab: this.sab, off: slot * SLOT_BYTES, len, slot });
    else {
      this.inline!.md5.update(data);
      this.inline!.sha512.update(data);
    }
    // Slots are submitted in stream order, so this slot starts `len` bytes before the end.
    this.sinkBusy.add(slot);
    this.sink(data, this.size - len).then(
      () => {
        this.sinkBusy.delete(slot);
        this.done(slot);
        this.wake();
      },
      (e: unknown) => {
        this.sinkBusy.delete(slot);
        this.fail(e instanceof Error ? e : new Error(String(e)));
        this.done(slot);
        this.wake();
      },
    );
  }

  private async waitFree(): Promise<void> {
    while (this.free.length === 0 && !this.error) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error) throw this.error;
  }

  /** Copies `chunk` into the ring; returns a promise only when it has to wait for room. */
  push(chunk: Uint8Array): Promise<void> | void {
    if (this.error) throw this.error;
    return this.copy(chunk, 0);
  }

  private copy(chunk: Uint8Array, from: number): Promise<void> | void {
    let off = from;
    while (off < chunk.length) {
      if (this.slot < 0) {
        if (this.free.length === 0 || this.error) return this.waitFree().then(() => this.copy(chunk, off));
        this.slot = this.free.pop()!;
      }
      const n = Math.min(chunk.length - off, SLOT_BYTES - this.fill);
      this.view.set(chunk.subarray(off, off + n), this.slot * SLOT_BYTES + this.fill);
      this.fill += n;
      this.size += n;
      off += n;
      if (this.fill === SLOT_BYTES) this.submit();
    }
  }

  /** Number of bytes pushed so far. */
  get bytes(): number {
    return this.size;
  }

  /** Submits the last partial slot, waits for every write and both digests. */
  async finish(): Promise<DigestResult> {
    if (this.error) throw this.error;
    this.finished = true;
    this.submit();
    while (this.free.length < SLOTS && !this.error) await new Promise<void>((r) => this.waiters.push(r));
    if (this.error) throw this.error;
    if (!this.channel) return { size: this.size, md5: this.inline!.md5.digest('hex'), sha512: this.inline!.sha512.digest('hex') };
    const got = new Promise<void>((r) => (this.onDigests = r));
    this.channel.post({ t: 'end' });
    await got;
    this.channel.close();
    if (this.error) throw this.error;
    return { size: this.size, md5: this.digests.get('md5')!, sha512: this.digests.get('sha512')! };
  }

  /**
   * Abandons the stream: the digests are dropped, and the promise resolves
   * once no sink write is in flight any more (so the caller may close its
   * file descriptors safely).
   */
  async abort(): Promise<void> {
    if (!this.finished) this.channel?.post({ t: 'abort' });
    this.error ??= new Error('aborted');
    // Hash acks may never come after an abort: only sink writes are waited for.
    while (this.sinkBusy.size > 0) await new Promise<void>((r) => this.waiters.push(r));
    this.channel?.close();
  }
}
