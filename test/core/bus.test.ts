import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { InProcessBus, NoServerError, RemoteError, RpcTimeoutError, type Json } from '../../src/core/bus.js';

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Resolves once `n` values have been pushed into the returned array (or rejects after `ms`). */
function collector<T>(n: number, ms = 1000): { items: T[]; push: (x: T) => void; done: Promise<T[]> } {
  const items: T[] = [];
  let resolve!: (v: T[]) => void;
  const done = new Promise<T[]>((res, rej) => {
    resolve = res;
    setTimeout(() => rej(new Error(`only ${items.length}/${n} items after ${ms} ms`)), ms).unref();
  });
  return {
    items,
    push: (x) => {
      items.push(x);
      if (items.length === n) resolve(items);
    },
    done,
  };
}

describe('InProcessBus: call', () => {
  test('calls the named method with the args and returns its result', async () => {
    const bus = new InProcessBus();
    bus.serve('compute.host1', { add: (a) => (a as { x: number; y: number }).x + (a as { x: number; y: number }).y, echo: async (a) => a });
    assert.equal(await bus.call('compute.host1', 'add', { x: 2, y: 3 }), 5);
    assert.deepEqual(await bus.call('compute.host1', 'echo', { a: [1, 'two', null, { b: true }] }), { a: [1, 'two', null, { b: true }] });
    await bus.close();
  });

  test('a handler that returns nothing yields null', async () => {
    const bus = new InProcessBus();
    bus.serve('t', { nothing: () => undefined, nothingAsync: async () => {} });
    assert.equal(await bus.call('t', 'nothing', null), null);
    assert.equal(await bus.call('t', 'nothingAsync', null), null);
  });

  test('args and results are JSON-cloned: neither side can mutate the other\'s objects', async () => {
    const bus = new InProcessBus();
    const kept: { v: Record<string, unknown> | null } = { v: null };
    const shared = { list: [1, 2] };
    bus.serve('t', {
      mutate: (a) => {
        (a as { list: number[] }).list.push(99);
        return a;
      },
      give: () => shared as unknown as Json,
      keep: (a) => {
        kept.v = a as Record<string, unknown>;
        return null;
      },
    });
    const args = { list: [1, 2, 3] };
    const out = (await bus.call('t', 'mutate', args)) as { list: number[] };
    assert.deepEqual(args.list, [1, 2, 3], 'the caller\'s args are untouched');
    assert.deepEqual(out.list, [1, 2, 3, 99]);
    assert.notEqual(out, args);

    const got = (await bus.call('t', 'give', null)) as { list: number[] };
    got.list.push(3);
    assert.deepEqual(shared.list, [1, 2], 'mutating the result does not reach the server\'s object');

    const payload = { when: new Date(0), fn: () => 1, undef: undefined, n: 1 } as unknown as Json;
    await bus.call('t', 'keep', payload);
    // Exactly what JSON would carry over a broker: dates as strings, functions and undefined dropped.
    assert.deepEqual(kept.v, { when: '1970-01-01T00:00:00.000Z', n: 1 });
  });

  test('non-serializable args fail the call and never reach the handler', async () => {
    const bus = new InProcessBus();
    let ran = false;
    bus.serve('t', { m: () => { ran = true; } });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    // (The in-process bus reports it as a RemoteError named TypeError; either way the handler never runs.)
    await assert.rejects(bus.call('t', 'm', cyclic as unknown as Json), (e: Error) => /circular/i.test(e.message));
    await assert.rejects(bus.call('t', 'm', { big: 1n } as unknown as Json), (e: Error) => /BigInt/i.test(e.message));
    await assert.rejects(bus.cast('t', 'm', cyclic as unknown as Json), (e: Error) => /circular/i.test(e.message));
    await tick();
    assert.equal(ran, false);
  });

  test('no server on the topic: NoServerError', async () => {
    const bus = new InProcessBus();
    await assert.rejects(bus.call('nobody', 'm', null), (e: unknown) => e instanceof NoServerError && /nobody/.test(e.message));
    await assert.rejects(bus.cast('nobody', 'm', null), NoServerError);
  });

  test('an unknown method is a RemoteError NoSuchMethod', async () => {
    const bus = new InProcessBus();
    bus.serve('t', { m: () => 1 });
    await assert.rejects(bus.call('t', 'other', null), (e: unknown) => e instanceof RemoteError && e.remoteName === 'NoSuchMethod' && /other/.test(e.message));
  });

  test('a failing handler becomes a RemoteError carrying its message and error name (sync and async)', async () => {
    const bus = new InProcessBus();
    class InstanceNotFound extends Error {
      constructor(m: string) {
        super(m);
        this.name = 'InstanceNotFound';
      }
    }
    bus.serve('t', {
      sync: () => {
        throw new TypeError('bad type');
      },
      async: async () => {
        throw new InstanceNotFound('instance abc not found');
      },
      str: () => {
        throw 'just a string'; // eslint-disable-line no-throw-literal
      },
    });
    const e1 = await bus.call('t', 'sync', null).catch((e: unknown) => e);
    assert.ok(e1 instanceof RemoteError);
    assert.equal(e1.remoteName, 'TypeError');
    assert.equal(e1.message, 'bad type');
    assert.equal(e1.name, 'RemoteError');
    const e2 = await bus.call('t', 'async', null).catch((e: unknown) => e);
    assert.ok(e2 instanceof RemoteError);
    assert.equal(e2.remoteName, 'InstanceNotFound');
    assert.equal(e2.message, 'instance abc not found');
    const e3 = await bus.call('t', 'str', null).catch((e: unknown) => e);
    assert.ok(e3 instanceof RemoteError);
    assert.equal(e3.message, 'just a string');
  });

  test('a call that gets no reply in time fails with RpcTimeoutError (and later replies are dropped)', async () => {
    const bus = new InProcessBus();
    let finished = false;
    bus.serve('t', {
      slow: async () => {
        await sleep(150);
        finished = true;
        return 'late';
      },
      fast: async () => 'quick',
    });
    const t0 = Date.now();
    const err = await bus.call('t', 'slow', null, { timeoutMs: 30 }).catch((e: unknown) => e);
    const took = Date.now() - t0;
    assert.ok(err instanceof RpcTimeoutError, String(err));
    assert.match(err.message, /t\.slow/);
    assert.match(err.message, /30 ms/);
    assert.ok(took >= 25 && took < 140, `timed out after ${took} ms`);
    assert.equal(finished, false);
    assert.equal(await bus.call('t', 'fast', null, { timeoutMs: 30 }), 'quick');
    await sleep(160);
    assert.equal(finished, true, 'the server still ran to completion');
  });

  test('a handler that never settles times out', async () => {
    const bus = new InProcessBus();
    bus.serve('t', { hang: () => new Promise<never>(() => {}) });
    await assert.rejects(bus.call('t', 'hang', null, { timeoutMs: 20 }), RpcTimeoutError);
  });

  test('calls round-robin over the servers of a topic; unserve removes one', async () => {
    const bus = new InProcessBus();
    const stopA = bus.serve('conductor', { who: () => 'a' });
    bus.serve('conductor', { who: () => 'b' });
    const seen: Json[] = [];
    for (let i = 0; i < 4; i++) seen.push(await bus.call('conductor', 'who', null));
    assert.deepEqual([...seen].sort(), ['a', 'a', 'b', 'b']);
    assert.notEqual(seen[0], seen[1]);
    stopA();
    stopA(); // idempotent
    for (let i = 0; i < 3; i++) assert.equal(await bus.call('conductor', 'who', null), 'b');
  });

  test('close stops every server and subscription', async () => {
    const bus = new InProcessBus();
    let events = 0;
    bus.serve('t', { m: () => 1 });
    bus.subscribe('e', () => {
      events++;
    });
    await bus.close();
    await assert.rejects(bus.call('t', 'm', null), NoServerError);
    await bus.publish('e', null);
    await tick();
    await tick();
    assert.equal(events, 0);
  });
});

describe('InProcessBus: cast', () => {
  test('cast returns before the handler runs; the handler gets a clone', async () => {
    const bus = new InProcessBus();
    const got = collector<Json>(1);
    bus.serve('t', { work: (a) => got.push(a) });
    const args = { n: 1 };
    await bus.cast('t', 'work', args);
    assert.equal(got.items.length, 0, 'fire-and-forget: not run synchronously');
    args.n = 2; // a later change by the caller is not seen
    const [a] = await got.done;
    assert.deepEqual(a, { n: 1 });
  });

  test('a failing cast handler is reported to onError, not to the caster', async () => {
    const errors = collector<[unknown, string]>(2);
    const bus = new InProcessBus((e, where) => errors.push([e, where]));
    bus.serve('t', {
      boom: () => {
        throw new Error('sync boom');
      },
      aboom: async () => {
        throw new Error('async boom');
      },
    });
    await bus.cast('t', 'boom', null);
    await bus.cast('t', 'aboom', null);
    const got = await errors.done;
    assert.deepEqual(got.map(([e, w]) => [(e as Error).message, w]).sort(), [['async boom', 't.aboom'], ['sync boom', 't.boom']]);
  });

  test('cast to an unknown method fails at once', async () => {
    const bus = new InProcessBus();
    bus.serve('t', {});
    await assert.rejects(bus.cast('t', 'nope', null), (e: unknown) => e instanceof RemoteError && e.remoteName === 'NoSuchMethod');
  });
});

describe('InProcessBus: publish / subscribe', () => {
  test('exact subscriptions get only their event, with the event name', async () => {
    const bus = new InProcessBus();
    const got = collector<[Json, string]>(1);
    const other: string[] = [];
    bus.subscribe('instance.created', (p, e) => got.push([p, e]));
    bus.subscribe('instance.deleted', (_p, e) => {
      other.push(e);
    });
    await bus.publish('instance.created', { id: 'x' });
    assert.deepEqual(await got.done, [[{ id: 'x' }, 'instance.created']]);
    await tick();
    assert.deepEqual(other, []);
  });

  test('a ".*" pattern matches every event under the prefix, and nothing else', async () => {
    const bus = new InProcessBus();
    const seen: string[] = [];
    bus.subscribe('compute.*', (_p, e) => {
      seen.push(e);
    });
    for (const e of ['compute.instance.create', 'compute.x', 'compute', 'computer.x', 'network.compute.x', 'compute.']) await bus.publish(e, null);
    await tick();
    await tick();
    assert.deepEqual(seen.sort(), ['compute.', 'compute.instance.create', 'compute.x']);
  });

  test('every subscriber gets the event; unsubscribe stops delivery', async () => {
    const bus = new InProcessBus();
    const a: Json[] = [];
    const b: Json[] = [];
    const offA = bus.subscribe('e', (p) => {
      a.push(p);
    });
    bus.subscribe('e', (p) => {
      b.push(p);
    });
    await bus.publish('e', 1);
    await tick();
    offA();
    await bus.publish('e', 2);
    await tick();
    assert.deepEqual(a, [1]);
    assert.deepEqual(b, [1, 2]);
  });

  test('publish is asynchronous and the payload is a clone taken at publish time', async () => {
    const bus = new InProcessBus();
    const got = collector<Json>(1);
    bus.subscribe('e', (p) => got.push(p));
    const payload = { state: 'building', when: new Date(0) } as unknown as { state: string };
    await bus.publish('e', payload as unknown as Json);
    assert.equal(got.items.length, 0, 'not delivered synchronously');
    payload.state = 'active';
    assert.deepEqual(await got.done, [{ state: 'building', when: '1970-01-01T00:00:00.000Z' }]);
  });

  test('a failing subscriber is reported to onError and does not stop the others', async () => {
    const errors = collector<string>(1);
    const bus = new InProcessBus((e, where) => errors.push(`${where}: ${(e as Error).message}`));
    const ok = collector<Json>(1);
    bus.subscribe('e', () => {
      throw new Error('bad subscriber');
    });
    bus.subscribe('e', (p) => ok.push(p));
    await bus.publish('e', 'x');
    assert.deepEqual(await ok.done, ['x']);
    assert.deepEqual(await errors.done, ['event e: bad subscriber']);
  });

  test('publishing with no subscriber is fine', async () => {
    const bus = new InProcessBus();
    await bus.publish('nobody.listens', { a: 1 });
  });

  test(
    'each subscriber gets its own copy of the payload (as with a broker)',
    {},
    async () => {
      const bus = new InProcessBus();
      const seen = collector<Json>(2);
      bus.subscribe('e', (p) => {
        (p as { n: number }).n = 999; // a careless subscriber
        seen.push(p);
      });
      bus.subscribe('e', (p) => {
        seen.push(structuredClone(p));
      });
      await bus.publish('e', { n: 1 });
      const [, second] = await seen.done;
      assert.deepEqual(second, { n: 1 }, 'the second subscriber must not see the first one\'s mutation');
    },
  );
});
