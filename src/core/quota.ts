import { forUpdate, type Database, type MigrationSet } from './db.js';
import { hexId } from './ids.js';
import { ApiError } from './errors.js';

/**
 * The quota engine: per-project limits, usage and reservations, shared by every
 * service. A reservation is taken before the work starts (limits checked
 * against in_use + outstanding reservations, inside one transaction with the
 * usage rows locked, so two concurrent requests can never both take the last
 * unit), then committed (moved into in_use) when the work succeeds or rolled
 * back when it fails. Reservations that are neither (a crash) expire.
 *
 * -1 means unlimited, as in OpenStack.
 */
export class OverQuotaError extends ApiError {
  constructor(
    readonly resource: string,
    readonly limit: number,
    readonly inUse: number,
    readonly requested: number,
  ) {
    super(413, `Quota exceeded for ${resource}: requested ${requested}, but already used ${inUse} of ${limit}`, 'OverQuota');
  }
}

interface QuotaTables {
  quota_limits: { project_id: string; resource: string; hard_limit: number };
  quota_defaults: { resource: string; hard_limit: number };
  quota_usages: { project_id: string; resource: string; in_use: number };
  quota_reservations: { id: string; project_id: string; resource: string; delta: number; expires_at: number };
}

export const quotaMigrations: MigrationSet = {
  'core/0001_quota': {
    async up(db) {
      await db.schema
        .createTable('quota_limits')
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('hard_limit', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('quota_limits_pk', ['project_id', 'resource'])
        .execute();
      await db.schema
        .createTable('quota_defaults')
        .addColumn('resource', 'text', (c) => c.primaryKey())
        .addColumn('hard_limit', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('quota_usages')
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('in_use', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('quota_usages_pk', ['project_id', 'resource'])
        .execute();
      await db.schema
        .createTable('quota_reservations')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('delta', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('quota_reservations_project').on('quota_reservations').columns(['project_id', 'resource']).execute();
      await db.schema.createIndex('quota_reservations_id').on('quota_reservations').column('id').execute();
    },
  },
};

export interface QuotaUsage {
  limit: number;
  in_use: number;
  reserved: number;
}

export class QuotaEngine {
  private defaults = new Map<string, number>();
  private readonly database: Database;
  constructor(database: Database) {
    this.database = database;
  }
  private get db() {
    return this.database.db as unknown as import('kysely').Kysely<QuotaTables>;
  }

  /** Services declare their resources and code defaults at start-up. */
  register(resource: string, defaultLimit: number): void {
    this.defaults.set(resource, defaultLimit);
  }

  async defaultLimit(resource: string): Promise<number> {
    const row = await this.db.selectFrom('quota_defaults').selectAll().where('resource', '=', resource).executeTakeFirst();
    return row ? Number(row.hard_limit) : (this.defaults.get(resource) ?? -1);
  }

  async setDefault(resource: string, limit: number): Promise<void> {
    await this.db.deleteFrom('quota_defaults').where('resource', '=', resource).execute();
    await this.db.insertInto('quota_defaults').values({ resource, hard_limit: limit }).execute();
  }

  async limits(projectId: string, resources: string[]): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom('quota_limits').selectAll().where('project_id', '=', projectId).execute();
    const dflt = await this.db.selectFrom('quota_defaults').selectAll().execute();
    const out: Record<string, number> = {};
    for (const r of resources) {
      const own = rows.find((x) => x.resource === r);
      const d = dflt.find((x) => x.resource === r);
      out[r] = own ? Number(own.hard_limit) : d ? Number(d.hard_limit) : (this.defaults.get(r) ?? -1);
    }
    return out;
  }

  async setLimit(projectId: string, resource: string, limit: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('quota_limits').where('project_id', '=', projectId).where('resource', '=', resource).execute();
      await tx.insertInto('quota_limits').values({ project_id: projectId, resource, hard_limit: limit }).execute();
    });
  }

  async deleteLimits(projectId: string): Promise<void> {
    await this.db.deleteFrom('quota_limits').where('project_id', '=', projectId).execute();
  }

  async usage(projectId: string, resources: string[]): Promise<Record<string, QuotaUsage>> {
    const limits = await this.limits(projectId, resources);
    const used = await this.db.selectFrom('quota_usages').selectAll().where('project_id', '=', projectId).execute();
    const res = await this.db
      .selectFrom('quota_reservations')
      .select(['resource', 'delta'])
      .where('project_id', '=', projectId)
      .where('expires_at', '>', Date.now())
      .execute();
    const out: Record<string, QuotaUsage> = {};
    for (const r of resources) {
      out[r] = {
        limit: limits[r]!,
        in_use: Number(used.find((u) => u.resource === r)?.in_use ?? 0),
        reserved: res.filter((x) => x.resource === r && Number(x.delta) > 0).reduce((a, x) => a + Number(x.delta), 0),
      };
    }
    return out;
  }

  /**
   * Reserves `deltas` for a project or throws OverQuotaError naming the first
   * resource that would exceed its limit. Negative deltas always succeed.
   */
  async reserve(projectId: string, deltas: Record<string, number>, ttlMs = 10 * 60_000): Promise<string> {
    const id = hexId();
    const now = Date.now();
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('quota_reservations').where('expires_at', '<=', now).execute();
      for (const [resource, delta] of Object.entries(deltas)) {
        if (delta === 0) continue;
        // Make sure a usage row exists so that PostgreSQL has a row to lock.
        const existing = await forUpdate(
          this.database.dialect,
          tx.selectFrom('quota_usages').selectAll().where('project_id', '=', projectId).where('resource', '=', resource),
        ).executeTakeFirst();
        if (!existing) {
          await tx.insertInto('quota_usages').values({ project_id: projectId, resource, in_use: 0 }).execute();
          await forUpdate(
            this.database.dialect,
            tx.selectFrom('quota_usages').selectAll().where('project_id', '=', projectId).where('resource', '=', resource),
          ).executeTakeFirst();
        }
        if (delta > 0) {
          const own = await tx
            .selectFrom('quota_limits')
            .select('hard_limit')
            .where('project_id', '=', projectId)
            .where('resource', '=', resource)
            .executeTakeFirst();
          const dflt = own ? undefined : await tx.selectFrom('quota_defaults').select('hard_limit').where('resource', '=', resource).executeTakeFirst();
          const limit = own ? Number(own.hard_limit) : dflt ? Number(dflt.hard_limit) : (this.defaults.get(resource) ?? -1);
          if (limit >= 0) {
            const inUse = Number(existing?.in_use ?? 0);
            const reservedRows = await tx
              .selectFrom('quota_reservations')
              .select('delta')
              .where('project_id', '=', projectId)
              .where('resource', '=', resource)
              .where('delta', '>', 0)
              .execute();
            const reserved = reservedRows.reduce((a, r) => a + Number(r.delta), 0);
            if (inUse + reserved + delta > limit) throw new OverQuotaError(resource, limit, inUse + reserved, delta);
          }
        }
        await tx.insertInto('quota_reservations').values({ id, project_id: projectId, resource, delta, expires_at: now + ttlMs }).execute();
      }
    });
    return id;
  }

  /** Moves a reservation into usage. Idempotent. */
  async commit(reservationId: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const rows = await tx.selectFrom('quota_reservations').selectAll().where('id', '=', reservationId).execute();
      for (const r of rows) {
        const u = await forUpdate(
          this.database.dialect,
          tx.selectFrom('quota_usages').selectAll().where('project_id', '=', r.project_id).where('resource', '=', r.resource),
        ).executeTakeFirst();
        const next = Math.max(0, Number(u?.in_use ?? 0) + Number(r.delta));
        if (u) {
          await tx.updateTable('quota_usages').set({ in_use: next }).where('project_id', '=', r.project_id).where('resource', '=', r.resource).execute();
        } else {
          await tx.insertInto('quota_usages').values({ project_id: r.project_id, resource: r.resource, in_use: next }).execute();
        }
      }
      await tx.deleteFrom('quota_reservations').where('id', '=', reservationId).execute();
    });
  }

  /** Drops a reservation without touching usage. Idempotent. */
  async rollback(reservationId: string): Promise<void> {
    await this.db.deleteFrom('quota_reservations').where('id', '=', reservationId).execute();
  }

  /** Reserve, run `work`, then commit on success or roll back on failure. */
  async withReservation<T>(projectId: string, deltas: Record<string, number>, work: () => Promise<T>): Promise<T> {
    const id = await this.reserve(projectId, deltas);
    try {
      const out = await work();
      await this.commit(id);
      return out;
    } catch (e) {
      await this.rollback(id);
      throw e;
    }
  }

  /** Gives usage back (deletes). */
  async release(projectId: string, deltas: Record<string, number>): Promise<void> {
    const neg: Record<string, number> = {};
    for (const [k, v] of Object.entries(deltas)) neg[k] = -Math.abs(v);
    const id = await this.reserve(projectId, neg);
    await this.commit(id);
  }

  /** Re-bases usage on a true count (used by services that can count their rows). */
  async setUsage(projectId: string, resource: string, inUse: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('quota_usages').where('project_id', '=', projectId).where('resource', '=', resource).execute();
      await tx.insertInto('quota_usages').values({ project_id: projectId, resource, in_use: inUse }).execute();
    });
  }
}
