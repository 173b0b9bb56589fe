import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { StratusConfig } from '../core/config.js';
import { createLogger, type Logger } from '../core/log.js';
import { openDatabase, migrate, type Database } from '../core/db.js';
import { InProcessBus, type Bus } from '../core/bus.js';
import { QuotaEngine, quotaMigrations } from '../core/quota.js';
import { PolicyEngine, loadPolicyFile } from '../core/policy.js';
import { createApp, mountService } from '../core/http.js';
import { Identity, identityMigrations, identityPolicies, basePolicies, legacyAdminPolicies } from '../identity/index.js';
import { identityRoutes } from '../identity/api/index.js';
import { versionDoc } from '../identity/api/auth.js';
import { writeClientConfig } from './client-config.js';

/** Health of each service, served at /healthz. */
export type ServiceState = 'starting' | 'ok' | 'degraded' | 'stopped';

/**
 * The whole cloud in one process: database, bus, policy, every service's API
 * on one HTTP listener. `start()` resolves when every service answers.
 */
export class Cloud {
  readonly log: Logger;
  readonly database: Database;
  readonly bus: Bus;
  readonly policy: PolicyEngine;
  readonly quota: QuotaEngine;
  readonly identity: Identity;
  readonly app: FastifyInstance;
  readonly states: Record<string, ServiceState> = { identity: 'starting' };
  private readonly startedAt = Date.now();

  constructor(readonly config: StratusConfig, opts: { log?: Logger } = {}) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    this.log = opts.log ?? createLogger(config.dataDir, config.logLevel);
    this.database = openDatabase(config.databaseUrl, config.dataDir);
    this.bus = new InProcessBus((e, where) => this.log.error({ err: e, where }, 'bus handler failed'));
    this.policy = new PolicyEngine({ ...basePolicies, ...(config.identity.enforceScope ? {} : legacyAdminPolicies), ...identityPolicies });
    this.quota = new QuotaEngine(this.database);
    this.identity = new Identity(this.database, config, this.log, this.bus);
    this.app = createApp({ log: this.log, maxJsonBodyBytes: config.maxJsonBodyBytes, validator: this.identity.tokens, policy: this.policy });
  }

  get identityUrl(): string {
    return `${this.config.publicUrl}/identity/v3`;
  }

  async start(): Promise<void> {
    await migrate(this.database, [quotaMigrations, identityMigrations]);
    this.policy.loadOverrides(await loadPolicyFile(join(this.config.dataDir, 'policy.yaml')));
    await this.identity.init();
    await this.identity.catalog.register('identity', 'keystone', this.identityUrl, this.config.region);

    const base = this.config.publicUrl;
    this.app.get('/healthz', async () => ({ status: Object.values(this.states).every((s) => s === 'ok') ? 'ok' : 'degraded', services: this.states, uptime_s: Math.round((Date.now() - this.startedAt) / 1000) }));
    this.app.get('/identity', async (_req, reply) => {
      reply.code(300);
      return { versions: { values: [versionDoc(`${base}/identity/v3`)] } };
    });
    mountService(this.app, this.policy, { prefix: '/identity/v3', format: 'keystone', routes: identityRoutes(this.identity, { base: `${base}/identity/v3` }, this.policy) });
    this.states.identity = 'ok';

    if (this.config.seed) await this.seed();
    writeClientConfig(this.config, this.identity.adminPassword(), this.config.seed ? this.identity.keptSecret('demo-password') : null);
    await this.app.listen({ host: this.config.listen.host, port: this.config.listen.port });
  }

  /** Demo project and user, and whatever later services seed. Idempotent. */
  private async seed(): Promise<void> {
    await this.identity.seedDemo();
  }

  async stop(): Promise<void> {
    for (const k of Object.keys(this.states)) this.states[k] = 'stopped';
    await this.app.close();
    await this.bus.close();
    await this.database.close();
    this.log.flush?.();
  }
}

