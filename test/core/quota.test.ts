import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, migrate, type Database } from '../../src/core/db.js';
import { QuotaEngine, OverQuotaError, quotaMigrations } from '../../src/core/quota.js';
import { ApiError } from '../../src/core/errors.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('QuotaEngine (SQLite)', () => {
  let dir: string;
  let database: Database;
  let q: QuotaEngine;
  let n = 0;
  /** A fresh project id per test, so tests never see each other's usage. */
  const project = () => `p${++n}-${Date.now()}`;
  const reservationRows = async (projectId: string) =>
    (await database.db.selectFrom('quota_reservations').selectAll().where('project_id', '=', projectId).execute()) as {
      id: string; resource: string; delta: number; expires_at: number;
    }[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stratus-quota-'));
    database = openDatabase('sqlite', dir);
    const applied = await migrate(database, [quotaMigrations]);
    assert.deepEqual(applied, ['core/0001_quota']);
    // Migrating again is a no-op.
    assert.deepEqual(await migrate(database, [quotaMigrations]), []);
    q = new QuotaEngine(database);
    q.register('instances', 10);
    q.register('cores', 20);
    q.register('ram', 51200);
  });
  after(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('limits and defaults', () => {
    test('code defaults apply; unregistered resources are unlimited (-1)', async () => {
      const p = project();
      assert.deepEqual(await q.limits(p, ['instances', 'cores', 'nonsense']), { instances: 10, cores: 20, nonsense: -1 });
      assert.equal(await q.defaultLimit('instances'), 10);
      assert.equal(await q.defaultLimit('nonsense'), -1);
    });

    test('a stored default overrides the code default for every project; a project limit overrides both', async () => {
      const a = project();
      const b = project();
      const local = new QuotaEngine(database);
      local.register('gadgets', 3);
      assert.equal(await local.defaultLimit('gadgets'), 3);
      await local.setDefault('gadgets', 7);
      await local.setDefault('gadgets', 8); // replaces, does not duplicate
      assert.equal(await local.defaultLimit('gadgets'), 8);
      await local.setLimit(a, 'gadgets', 2);
      await local.setLimit(a, 'gadgets', 4); // replaces
      assert.deepEqual(await local.limits(a, ['gadgets']), { gadgets: 4 });
      assert.deepEqual(await local.limits(b, ['gadgets']), { gadgets: 8 });
      await local.deleteLimits(a);
      assert.deepEqual(await local.limits(a, ['gadgets']), { gadgets: 8 });
    });

    test('a project limit is enforced by reserve, and -1 means unlimited', async () => {
      const p = project();
      await q.setLimit(p, 'cores', 4);
      await assert.rejects(q.reserve(p, { cores: 5 }), OverQuotaError);
      await q.reserve(p, { cores: 4 });
      await q.setLimit(p, 'cores', -1);
      await q.reserve(p, { cores: 1_000_000 });
      const u = await q.usage(p, ['cores']);
      assert.equal(u.cores!.limit, -1);
      assert.equal(u.cores!.reserved, 1_000_004);
    });

    test('a limit of 0 refuses any positive request', async () => {
      const p = project();
      await q.setLimit(p, 'instances', 0);
      const err = await q.reserve(p, { instances: 1 }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof OverQuotaError);
      assert.equal(err.limit, 0);
    });
  });

  describe('reserve / commit / rollback', () => {
    test('a reservation counts as reserved, commit moves it into in_use, and commit is idempotent', async () => {
      const p = project();
      const id = await q.reserve(p, { instances: 2, cores: 4 });
      assert.match(id, /^[0-9a-f]{32}$/);
      assert.deepEqual(await q.usage(p, ['instances', 'cores']), {
        instances: { limit: 10, in_use: 0, reserved: 2 },
        cores: { limit: 20, in_use: 0, reserved: 4 },
      });
      await q.commit(id);
      assert.deepEqual(await q.usage(p, ['instances', 'cores']), {
        instances: { limit: 10, in_use: 2, reserved: 0 },
        cores: { limit: 20, in_use: 4, reserved: 0 },
      });
      await q.commit(id);
      assert.equal((await q.usage(p, ['instances'])).instances!.in_use, 2, 'a second commit must not count twice');
      assert.equal((await reservationRows(p)).length, 0);
    });

    test('rollback drops the reservation and leaves usage untouched (idempotent)', async () => {
      const p = project();
      await q.commit(await q.reserve(p, { instances: 3 }));
      const id = await q.reserve(p, { instances: 5 });
      assert.equal((await q.usage(p, ['instances'])).instances!.reserved, 5);
      await q.rollback(id);
      await q.rollback(id);
      assert.deepEqual((await q.usage(p, ['instances'])).instances, { limit: 10, in_use: 3, reserved: 0 });
      // The rolled-back units are available again.
      await q.reserve(p, { instances: 7 });
    });

    test('limits count in_use plus outstanding reservations', async () => {
      const p = project();
      await q.commit(await q.reserve(p, { instances: 4 }));
      await q.reserve(p, { instances: 4 }); // outstanding
      const err = await q.reserve(p, { instances: 3 }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof OverQuotaError, 'expected OverQuotaError');
      assert.equal(err.resource, 'instances');
      assert.equal(err.limit, 10);
      assert.equal(err.inUse, 8);
      assert.equal(err.requested, 3);
      await q.reserve(p, { instances: 2 }); // exactly reaches the limit
    });

    test('OverQuotaError is an ApiError with status 413 and an informative message', async () => {
      const p = project();
      const err = await q.reserve(p, { cores: 21 }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof OverQuotaError);
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 413);
      assert.equal(err.code, 'OverQuota');
      assert.match(err.message, /cores/);
      assert.match(err.message, /20/);
    });

    test('a reservation over several resources is all-or-nothing', async () => {
      const p = project();
      await q.setLimit(p, 'cores', 2);
      await assert.rejects(q.reserve(p, { instances: 1, cores: 3 }), (e: unknown) => e instanceof OverQuotaError && e.resource === 'cores');
      assert.equal((await reservationRows(p)).length, 0, 'no partial reservation may be left behind');
      assert.deepEqual((await q.usage(p, ['instances', 'cores'])).instances, { limit: 10, in_use: 0, reserved: 0 });
    });

    test('zero deltas are ignored and negative deltas always succeed, even over the limit', async () => {
      const p = project();
      await q.commit(await q.reserve(p, { instances: 10 }));
      await q.setLimit(p, 'instances', 2); // now over quota
      const id = await q.reserve(p, { instances: -3, cores: 0 });
      const rows = await reservationRows(p);
      assert.deepEqual(rows.map((r) => [r.resource, Number(r.delta)]), [['instances', -3]]);
      assert.equal((await q.usage(p, ['instances'])).instances!.reserved, 0, 'negative deltas are not "reserved"');
      await q.commit(id);
      assert.equal((await q.usage(p, ['instances'])).instances!.in_use, 7);
    });

    test('release gives usage back and never goes below zero', async () => {
      const p = project();
      await q.commit(await q.reserve(p, { instances: 2 }));
      await q.release(p, { instances: 1 });
      assert.equal((await q.usage(p, ['instances'])).instances!.in_use, 1);
      await q.release(p, { instances: 5 }); // more than in use
      assert.equal((await q.usage(p, ['instances'])).instances!.in_use, 0);
      await q.release(p, { instances: -4 }); // sign is ignored: a release is always a decrease
      assert.equal((await q.usage(p, ['instances'])).instances!.in_use, 0);
    });

    test('withReservation commits on success and rolls back on failure', async () => {
      const p = project();
      const out = await q.withReservation(p, { instances: 2 }, async () => {
        assert.equal((await q.usage(p, ['instances'])).instances!.reserved, 2, 'reserved while the work runs');
        return 'done';
      });
      assert.equal(out, 'done');
      assert.deepEqual((await q.usage(p, ['instances'])).instances, { limit: 10, in_use: 2, reserved: 0 });
      await assert.rejects(
        q.withReservation(p, { instances: 3 }, async () => {
          throw new Error('boot failed');
        }),
        /boot failed/,
      );
      assert.deepEqual((await q.usage(p, ['instances'])).instances, { limit: 10, in_use: 2, reserved: 0 });
      // Work that cannot get quota is never run.
      let ran = false;
      await assert.rejects(q.withReservation(p, { instances: 9 }, async () => { ran = true; }), OverQuotaError);
      assert.equal(ran, false);
    });

    test('setUsage re-bases in_use on a true count', async () => {
      const p = project();
      await q.commit(await q.reserve(p, { instances: 5 }));
      await q.setUsage(p, 'instances', 1);
      assert.equal((await q.usage(p, ['instances'])).instances!.in_use, 1);
      await q.reserve(p, { instances: 9 });
    });

    test('projects are independent', async () => {
      const a = project();
      const b = project();
      await q.commit(await q.reserve(a, { instances: 10 }));
      await assert.rejects(q.reserve(a, { instances: 1 }), OverQuotaError);
      await q.reserve(b, { instances: 10 });
    });
  });

  describe('concurrency and expiry', () => {
    test('50 concurrent reservations against a limit of 10: exactly 10 succeed', async () => {
      const p = project();
      await q.setLimit(p, 'instances', 10);
      const results = await Promise.allSettled(Array.from({ length: 50 }, () => q.reserve(p, { instances: 1 })));
      const ok = results.filter((r) => r.status === 'fulfilled');
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(ok.length, 10);
      assert.equal(failed.length, 40);
      for (const f of failed) assert.ok(f.reason instanceof OverQuotaError, `unexpected failure: ${String(f.reason)}`);
      const ids = new Set(ok.map((r) => (r as PromiseFulfilledResult<string>).value));
      assert.equal(ids.size, 10, 'every reservation has its own id');
      assert.equal((await q.usage(p, ['instances'])).instances!.reserved, 10);
      // Committing all of them lands exactly at the limit.
      await Promise.all([...ids].map((id) => q.commit(id)));
      assert.deepEqual((await q.usage(p, ['instances'])).instances, { limit: 10, in_use: 10, reserved: 0 });
    });

    test('concurrent multi-unit reservations never exceed the limit in total', async () => {
      const p = project();
      await q.setLimit(p, 'cores', 10);
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => q.reserve(p, { cores: (i % 3) + 1 })));
      const reserved = (await q.usage(p, ['cores'])).cores!.reserved;
      assert.ok(reserved <= 10, `reserved ${reserved} > 10`);
      assert.ok(reserved >= 8, `reservations should fill the quota closely, got ${reserved}`);
      assert.ok(results.some((r) => r.status === 'rejected'));
    });

    test('expired reservations do not count against the limit, nor in usage', async () => {
      const p = project();
      await q.setLimit(p, 'instances', 3);
      const stale = await q.reserve(p, { instances: 3 }, 20);
      await assert.rejects(q.reserve(p, { instances: 1 }), OverQuotaError);
      await sleep(40);
      assert.equal((await q.usage(p, ['instances'])).instances!.reserved, 0, 'usage ignores expired reservations');
      const fresh = await q.reserve(p, { instances: 3 });
      // The expired rows were purged; committing the stale reservation changes nothing.
      await q.commit(stale);
      assert.equal((await q.usage(p, ['instances'])).instances!.in_use, 0);
      await q.commit(fresh);
      assert.deepEqual((await q.usage(p, ['instances'])).instances, { limit: 3, in_use: 3, reserved: 0 });
    });
  });
});
