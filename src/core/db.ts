import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import {
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  sql,
  type Migration,
  type MigrationProvider,
  type SelectQueryBuilder,
} from 'kysely';

/**
 * The database layer. One Kysely instance per process; SQLite (embedded, in the
 * data dir) by default, PostgreSQL for scale-out. Services see only their own
 * tables (`db.withTables<T>()`), write portable queries, and never branch on the
 * dialect: the few places where dialects differ (row locks, upserts) live here.
 *
 * Portability rules every store follows: booleans are integers 0/1, times are
 * integer milliseconds (bigint), JSON is text, ids are text.
 */
export type Dialect = 'sqlite' | 'postgres';

export interface Database {
  /** Loosely typed handle; stores narrow it with `withTables<T>()`. */
  db: Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  dialect: Dialect;
  close(): Promise<void>;
}

/** Opens the database named by `url` (`sqlite`, `sqlite:/path`, `postgres://…`). */
export function openDatabase(url: string, dataDir: string): Database {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // int8 columns (our millisecond times) come back as strings by default.
    pg.types.setTypeParser(20, (v) => Number(v));
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
    return { db, dialect: 'postgres', close: () => db.destroy() };
  }
  const file = url.startsWith('sqlite:') && url.length > 'sqlite:'.length ? url.slice('sqlite:'.length) : join(dataDir, 'stratus.db');
  if (file !== ':memory:') mkdirSync(join(file, '..'), { recursive: true });
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives a process crash (kill -9) without losing a
  // committed transaction; only an OS crash could drop the last few.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  cacheStatements(sqlite);
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}

/**
 * Kysely prepares every query anew, and preparing costs as much as running a
 * small statement. better-sqlite3 statements are reusable (SQLite recompiles
 * them itself after a schema change), so the most recent distinct SQL texts
 * keep theirs. Kysely never iterates a statement while reusing it (no
 * streaming queries here), so sharing one is safe.
 */
function cacheStatements(sqlite: SQLite.Database, max = 1000): void {
  const prepare = sqlite.prepare.bind(sqlite);
  const cache = new Map<string, SQLite.Statement>();
  sqlite.prepare = ((source: string) => {
    let st = cache.get(source);
    if (st === undefined) {
      st = prepare(source);
      if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      cache.set(source, st);
    }
    return st;
  }) as typeof sqlite.prepare;
}

/** Migrations are registered per service under names like `identity/0001_init`. */
export type MigrationSet = Record<string, Migration>;

/** Applies every pending migration of every service, in name order. */
export async function migrate(database: Database, sets: MigrationSet[]): Promise<string[]> {
  const all: Record<string, Migration> = Object.assign({}, ...sets);
  const provider: MigrationProvider = { getMigrations: async () => all };
  const migrator = new Migrator({
    db: database.db,
    provider,
    // Services add migrations independently; a later service's 0001 may sort
    // before an earlier one's 0005 and must still run.
    allowUnorderedMigrations: true,
    migrationTableName: 'stratus_migrations',
    migrationLockTableName: 'stratus_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * Row lock for read-modify-write inside a transaction. SQLite serializes
 * writers for the whole database, so it needs none; PostgreSQL gets FOR UPDATE.
 */
export function forUpdate<DB, TB extends keyof DB, O>(
  dialect: Dialect,
  qb: SelectQueryBuilder<DB, TB, O>,
): SelectQueryBuilder<DB, TB, O> {
  return dialect === 'postgres' ? qb.forUpdate() : qb;
}

export { sql };

/** True when `e` is a unique-constraint violation in either dialect. */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export const bool = (v: unknown): boolean => v === 1 || v === true || v === '1';
export const int = (b: boolean | undefined | null): number => (b ? 1 : 0);
