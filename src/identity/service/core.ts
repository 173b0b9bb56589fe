import type { Kysely } from 'kysely';
import type { Database } from '../../core/db.js';
import type { Logger } from '../../core/log.js';
import type { Bus } from '../../core/bus.js';
import type { StratusConfig } from '../../core/config.js';
import type { IdentityTables } from '../store/tables.js';

/**
 * Shared state of the identity service's parts. `generation` counts writes:
 * every cached token validation remembers the generation it was computed at
 * and is recomputed after any identity change, so caches never serve a role,
 * user or project state that has since changed. In a scale-out cloud the
 * change is announced on the bus so every API process bumps its counter.
 */
export class IdentityCore {
  generation = 0;
  readonly db: Kysely<IdentityTables>;
  constructor(
    readonly database: Database,
    readonly config: StratusConfig,
    readonly log: Logger,
    readonly bus: Bus,
  ) {
    this.db = database.db as unknown as Kysely<IdentityTables>;
    bus.subscribe('identity.changed', () => {
      this.generation++;
    });
  }
  /** Call after every committed identity write. */
  changed(): void {
    this.generation++;
    void this.bus.publish('identity.changed', { at: Date.now() });
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

export const DEFAULT_DOMAIN_ID = 'default';
