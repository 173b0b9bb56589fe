import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { ObjectStore, sendBody } from '../../../src/object/store/index.js';
import { corrupt, pattern, replicaFiles, withStore } from './helpers.js';

const A = 'AUTH_send';

/**
 * A destination like an HTTP response: small high-water mark, and each
 * write's callback only after `delayMs` (the kernel taking its time). It
 * checks that a chunk's bytes did not change while it held them (a pooled
 * buffer reused too early would), and notes chunks whose memory it had seen
 * before (a buffer coming back from the pool).
 */
class SlowSink extends Writable {
  readonly chunks: Buffer[] = [];
  readonly seen = new Set<ArrayBufferLike>();
  reused = 0;
  clobbered = 0;
  constructor(private readonly delayMs: number, private readonly failAfter = Infinity, highWaterMark = 16 * 1024) {
    super({ highWaterMark });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const copy = Buffer.from(chunk);
    if (this.seen.has(chunk.buffer)) this.reused++;
    this.seen.add(chunk.buffer);
    setTimeout(() => {
      if (!chunk.equals(copy)) this.clobbered++;
      this.chunks.push(copy);
      if (this.chunks.length >= this.failAfter) this.destroy();
      cb();
    }, this.delayMs);
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

const finished = (w: Writable) => new Promise<void>((r) => (w.writableFinished || w.destroyed ? r() : w.once('close', () => r())));
const openFds = () => readdirSync('/proc/self/fd').length;

describe('sendBody: object bodies written straight to a response', () => {
  test('whole objects and ranges arrive intact through pooled, recycled buffers', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const data = pattern(13 * 1024 * 1024 + 5, 3);
      await store.putObject(A, 'c', 'big', Readable.from([data]));
      const g = await store.getObject(A, 'c', 'big');
      const sink = new SlowSink(15);
      assert.equal(await sendBody(g.stream, sink), null);
      await finished(sink);
      assert.ok(sink.bytes.equals(data));
      assert.equal(sink.clobbered, 0, 'no buffer was reused while the destination still held it');
      assert.ok(sink.reused > 0, 'read buffers came back from the pool');
      // A destination that takes everything without pushing back (write()
      // answers true) still holds each chunk until its callback.
      const greedy = new SlowSink(15, Infinity, 64 * 1024 * 1024);
      assert.equal(await sendBody((await store.getObject(A, 'c', 'big')).stream, greedy), null);
      await finished(greedy);
      assert.ok(greedy.bytes.equals(data));
      assert.equal(greedy.clobbered, 0, 'no buffer was reused before its write callback');
      for (const [start, end] of [[0, 0], [5, 4 * 1024 * 1024 + 10], [9 * 1024 * 1024, data.length - 1]] as const) {
        const r = await store.getObject(A, 'c', 'big', { range: { start, end } });
        const s = new SlowSink(1);
        assert.equal(await sendBody(r.stream, s), null);
        await finished(s);
        assert.ok(s.bytes.equals(data.subarray(start, end + 1)), `range ${start}-${end}`);
        assert.equal(s.clobbered, 0);
      }
      // An in-memory (small) body goes through a pipe.
      await store.putObject(A, 'c', 'small', 'hello');
      const sm = await store.getObject(A, 'c', 'small');
      const ss = new SlowSink(0);
      assert.equal(await sendBody(sm.stream, ss), null);
      assert.equal(ss.bytes.toString(), 'hello');
    } finally {
      await done();
    }
  });

  test('a bad block fails over to another replica mid-body', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const data = pattern(10 * 1024 * 1024 + 7, 5);
      await store.putObject(A, 'c', 'big', Readable.from([data]));
      await store.close();
      const s2 = await ObjectStore.open({ root: store.root });
      try {
        const files = await replicaFiles(s2, A, 'c', 'big');
        await corrupt(files[0]![0]!, 5 * 1024 * 1024 + 1);
        await corrupt(files[1]![0]!, 9 * 1024 * 1024 + 2);
        const g = await s2.getObject(A, 'c', 'big');
        const sink = new SlowSink(2);
        assert.equal(await sendBody(g.stream, sink), null);
        await finished(sink);
        assert.ok(sink.bytes.equals(data), 'the body is whole despite two bad replicas');
        assert.equal(sink.clobbered, 0);
      } finally {
        await s2.close();
      }
    } finally {
      await done();
    }
  });

  test('a destination that goes away stops the body and releases the file', async () => {
    const { store, done } = await withStore();
    try {
      await store.putContainer(A, 'c');
      const data = pattern(16 * 1024 * 1024, 9);
      await store.putObject(A, 'c', 'big', Readable.from([data]));
      await store.drain(); // the third replica's write, and its descriptor, are done
      const before = openFds();
      const g = await store.getObject(A, 'c', 'big');
      const sink = new SlowSink(5, 1);
      assert.equal(await sendBody(g.stream, sink), null);
      assert.ok(sink.destroyed);
      assert.ok(sink.bytes.length < data.length);
      // The reads still in flight finish, then the descriptor is closed.
      for (let i = 0; i < 100 && openFds() > before; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(openFds(), before);
    } finally {
      await done();
    }
  });
});
