import type { Kysely, Transaction } from 'kysely';
import type { Database, Dialect } from '../../core/db.js';
import { isUniqueViolation } from '../../core/db.js';
import type { QuotaEngine } from '../../core/quota.js';
import type { Logger } from '../../core/log.js';
import type { NetworkTables } from '../store/tables.js';
import { overQuota } from './errors.js';

export type NetDb = Kysely<NetworkTables>;
export type Tx = Transaction<NetworkTables> | NetDb;

/** Who is asking: the API caller or, for bus calls, compute on a project's behalf. */
export interface Caller {
  projectId: string | null;
  userId: string | null;
  /** Cloud admin (sees and may change everything). */
  admin: boolean;
}

/** The network quotas, Neutron's names and defaults. */
export const NETWORK_QUOTAS: Record<string, number> = {
  network: 100,
  subnet: 100,
  port: 500,
  router: 10,
  floatingip: 50,
  security_group: 10,
  security_group_rule: 100,
};

/** The core quota engine's limit tables (limits are read inside our transactions). */
interface QuotaTables {
  quota_limits: { project_id: string; resource: string; hard_limit: number };
  quota_defaults: { resource: string; hard_limit: number };
}

const QUOTA_TABLES: Record<string, keyof NetworkTables> = {
  network: 'neutron_networks',
  subnet: 'neutron_subnets',
  port: 'neutron_ports',
  router: 'neutron_routers',
  floatingip: 'neutron_floatingips',
  security_group: 'neutron_security_groups',
  security_group_rule: 'neutron_security_group_rules',
};

/** Shared plumbing of the service's parts: the database, quotas, and change notification. */
export class NetContext {
  readonly db: NetDb;
  readonly dialect: Dialect;
  /** Called after every committed change the agents must learn about. */
  onChange: () => void = () => {};
  constructor(
    database: Database,
    readonly quota: QuotaEngine,
    readonly log: Logger,
    readonly availabilityZone: string,
  ) {
    this.db = database.db as NetDb;
    this.dialect = database.dialect;
  }

  /**
   * Runs `work` in a transaction, retrying a few times when it trips over a
   * unique constraint that a concurrent writer won (an address, a MAC): the
   * retry picks again, and the loser never sees a spurious conflict.
   */
  async tx<T>(work: (tx: Transaction<NetworkTables>) => Promise<T>, retries = 5): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction().execute(work);
      } catch (e) {
        if (attempt < retries && isUniqueViolation(e) && !(e as { final?: boolean }).final) continue;
        throw e;
      }
    }
  }

  /**
   * Refuses a create that would take `resource` of `projectId` over its
   * limit. Usage is counted in the same transaction as the insert, so it is
   * exact (SQLite serializes writers; PostgreSQL callers lock the project's
   * rows through the unique inserts that follow).
   */
  async checkQuota(tx: Tx, projectId: string, resource: string, adding = 1): Promise<void> {
    // Read the limit through the transaction: SQLite has one connection, and
    // a query outside the open transaction would wait for it forever.
    const q = tx as unknown as Kysely<QuotaTables>;
    const own = await q.selectFrom('quota_limits').select('hard_limit').where('project_id', '=', projectId).where('resource', '=', resource).executeTakeFirst();
    const dflt = own ? undefined : await q.selectFrom('quota_defaults').select('hard_limit').where('resource', '=', resource).executeTakeFirst();
    const limit = own ? Number(own.hard_limit) : dflt ? Number(dflt.hard_limit) : (NETWORK_QUOTAS[resource] ?? -1);
    if (limit < 0) return;
    const table = QUOTA_TABLES[resource]!;
    const row = await (tx as NetDb)
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('project_id' as never, '=', projectId as never)
      .executeTakeFirst();
    if (Number(row?.n ?? 0) + adding > limit) throw overQuota(resource);
  }

  async countUsage(projectId: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [res, table] of Object.entries(QUOTA_TABLES)) {
      const row = await this.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('project_id' as never, '=', projectId as never)
        .executeTakeFirst();
      out[res] = Number(row?.n ?? 0);
    }
    return out;
  }
}

export const parseJson = <T>(s: string | null | undefined, dflt: T): T => {
  if (!s) return dflt;
  try {
    return JSON.parse(s) as T;
  } catch {
    return dflt;
  }
};
