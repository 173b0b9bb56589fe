import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { QmpClient, QmpError, type QmpEvent } from '../../../src/compute/drivers/qmp-client.js';

/** A fake QMP server: greets, requires qmp_capabilities, answers a few commands. */
function fakeQemu(path: string, opts: { greet?: boolean } = {}): Promise<{ server: Server; sockets: Socket[]; received: string[] }> {
  const sockets: Socket[] = [];
  const received: string[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    if (opts.greet !== false) s.write('{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n');
    let negotiated = false;
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; arguments?: Record<string, unknown>; id?: string };
        buf = buf.slice(nl + 1);
        received.push(msg.execute);
        const reply = (o: object): boolean => s.write(JSON.stringify({ ...o, id: msg.id }) + '\r\n');
        if (msg.execute === 'qmp_capabilities') {
          negotiated = true;
          reply({ return: {} });
        } else if (!negotiated) {
          reply({ error: { class: 'CommandNotFound', desc: 'Expecting capabilities negotiation with qmp_capabilities' } });
        } else if (msg.execute === 'query-status') {
          reply({ return: { status: 'running', running: true } });
        } else if (msg.execute === 'device_del') {
          reply({ return: {} });
          // the event comes later, possibly interleaved with other output
          setTimeout(() => s.write(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "DEVICE_DELETED", "data": {"device": "${String(msg.arguments?.id)}", "path": "/machine/peripheral/x"}}\r\n`), 30);
        } else if (msg.execute === 'slow') {
          /* never answers */
        } else if (msg.execute === 'quit') {
          reply({ return: {} });
          s.end();
        } else {
          reply({ error: { class: 'CommandNotFound', desc: `The command ${msg.execute} has not been found` } });
        }
      }
    });
  });
  return new Promise((res) => server.listen(path, () => res({ server, sockets, received })));
}

describe('QmpClient', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('negotiates capabilities, executes commands, maps errors', async () => {
    const path = join(dir, 'a.sock');
    const fake = await fakeQemu(path);
    const c = await QmpClient.connect(path);
    try {
      assert.deepEqual(c.version, { major: 7, minor: 2, micro: 22 });
      assert.deepEqual(await c.execute('query-status'), { status: 'running', running: true });
      await assert.rejects(c.execute('nope'), (e: unknown) => e instanceof QmpError && e.errorClass === 'CommandNotFound');
      assert.deepEqual(fake.received, ['qmp_capabilities', 'query-status', 'nope']);
      // pipelined commands are matched by id
      const [a, b] = await Promise.all([c.execute('query-status'), c.execute('query-status')]);
      assert.deepEqual(a, b);
    } finally {
      c.close();
      fake.server.close();
    }
  });

  it('delivers events to listeners and waiters; times out commands', async () => {
    const path = join(dir, 'b.sock');
    const fake = await fakeQemu(path);
    const c = await QmpClient.connect(path);
    try {
      const seen: QmpEvent[] = [];
      c.on('event', (ev: QmpEvent) => seen.push(ev));
      const waiter = c.waitForEvent('DEVICE_DELETED', (ev) => ev.data?.device === 'vdisk16', 2000);
      await c.execute('device_del', { id: 'vdisk16' });
      const ev = await waiter;
      assert.equal(ev.data?.device, 'vdisk16');
      assert.equal(seen[0]?.event, 'DEVICE_DELETED');
      await assert.rejects(c.waitForEvent('SHUTDOWN', () => true, 100), /no SHUTDOWN event/);
      await assert.rejects(c.execute('slow', undefined, { timeoutMs: 100 }), /no reply within 100 ms/);
    } finally {
      c.close();
      fake.server.close();
    }
  });

  it('rejects pending work when the connection closes, and reports close', async () => {
    const path = join(dir, 'c.sock');
    const fake = await fakeQemu(path);
    const c = await QmpClient.connect(path);
    const closed = new Promise<void>((res) => c.once('close', () => res()));
    const pending = c.execute('slow');
    const waiting = c.waitForEvent('SHUTDOWN', () => true, 5000);
    await c.execute('quit');
    await assert.rejects(pending, /connection closed/);
    await assert.rejects(waiting, /closed while waiting/);
    await closed;
    assert.equal(c.closed, true);
    await assert.rejects(c.execute('query-status'), /connection closed/);
    fake.server.close();
  });

  it('fails clearly when the monitor never greets (busy) or is absent', async () => {
    const path = join(dir, 'd.sock');
    const fake = await fakeQemu(path, { greet: false });
    await assert.rejects(QmpClient.connect(path, { timeoutMs: 200 }), /no greeting within 200 ms/);
    for (const s of fake.sockets) s.destroy();
    fake.server.close();
    await assert.rejects(QmpClient.connect(join(dir, 'missing.sock'), { timeoutMs: 200 }), /ENOENT/);
  });
});
