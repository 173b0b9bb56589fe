import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from '../core/db.js';
import type { Logger } from '../core/log.js';
import type { Bus } from '../core/bus.js';
import type { StratusConfig } from '../core/config.js';
import { secret } from '../core/ids.js';
import { IdentityCore, DEFAULT_DOMAIN_ID } from './service/core.js';
import { ResourceService } from './service/resources.js';
import { UserService } from './service/users.js';
import { AssignmentService } from './service/assignments.js';
import { CatalogService } from './service/catalog.js';
import { CredentialService } from './service/credentials.js';
import { TokenService } from './service/tokens.js';
import { FernetKeyRepository } from './service/fernet-keys.js';
import { encrypt, decrypt } from './service/fernet.js';

export { identityMigrations } from './store/migrations.js';
export { identityPolicies, basePolicies, legacyAdminPolicies } from './policies.js';

/** The identity service with all its parts wired together. */
export class Identity {
  readonly core: IdentityCore;
  readonly resources: ResourceService;
  readonly users: UserService;
  readonly assignments: AssignmentService;
  readonly catalog: CatalogService;
  readonly creds: CredentialService;
  readonly tokens: TokenService;
  readonly keys: FernetKeyRepository;
  readonly credentialKeys: FernetKeyRepository;

  constructor(database: Database, readonly config: StratusConfig, log: Logger, bus: Bus) {
    this.core = new IdentityCore(database, config, log, bus);
    this.keys = new FernetKeyRepository(join(config.dataDir, 'fernet-keys'), config.identity.maxActiveKeys);
    this.credentialKeys = new FernetKeyRepository(join(config.dataDir, 'credential-keys'), config.identity.maxActiveKeys);
    this.resources = new ResourceService(this.core);
    const revoke = (ev: Parameters<TokenService['revoke']>[0]) => this.tokens.revoke(ev);
    this.users = new UserService(this.core, (userId) => revoke({ userId }));
    this.assignments = new AssignmentService(this.core, {
      userGroupIds: (u) => this.users.userGroupIds(u),
      groupMemberIds: (g) => this.users.groupMemberIds(g),
      ancestors: (p) => this.resources.ancestors(p),
      projectDomain: async (p) => (await this.resources.getProjectRow(p))?.domain_id ?? null,
      revoke: (ev) => revoke(ev),
    });
    this.catalog = new CatalogService(this.core);
    const ck = this.credentialKeys;
    this.creds = new CredentialService(
      this.core,
      {
        encrypt: (plain) => encrypt(ck.primary(), Buffer.from(plain, 'utf8')),
        decrypt: (tok) => decrypt(ck.all(), tok)?.toString('utf8') ?? null,
      },
      (id) => revoke({ appCredId: id }),
    );
    this.tokens = new TokenService(this.core, this.keys, this.users, this.resources, this.assignments, this.creds, this.catalog);
  }

  async init(): Promise<void> {
    await this.keys.init();
    this.keys.load();
    await this.credentialKeys.init();
    this.credentialKeys.load();
    await this.ensureBootstrap();
    await this.tokens.init();
  }

  /**
   * Always-present identity data (like `keystone-manage bootstrap`): the
   * default domain, the admin/member/reader roles with their implications,
   * the admin project and user, admin on that project and on the system.
   * Idempotent: running it on an existing cloud changes nothing.
   */
  private async ensureBootstrap(): Promise<void> {
    const r = this.resources;
    if (!(await r.getDomain(DEFAULT_DOMAIN_ID).catch(() => null)))
      await r.createDomain({ id: DEFAULT_DOMAIN_ID, name: 'Default', description: 'The default domain' });
    const role = async (name: string) => (await this.assignments.findRoleByName(name)) ?? (await this.assignments.createRole({ name }));
    const admin = await role('admin');
    const member = await role('member');
    const reader = await role('reader');
    await role('service');
    // Swift's reseller_admin_role (DevStack creates it too): account quotas and every account.
    await role('ResellerAdmin');
    await this.assignments.addImplied(admin.id, member.id).catch(() => undefined);
    await this.assignments.addImplied(member.id, reader.id).catch(() => undefined);
    const adminProject = (await r.findProjectByName('admin', DEFAULT_DOMAIN_ID)) ?? (await r.createProject({ name: 'admin', domain_id: DEFAULT_DOMAIN_ID, description: 'Cloud administration' }));
    await this.core.db.deleteFrom('id_meta').where('key', '=', 'admin_project_id').execute();
    await this.core.db.insertInto('id_meta').values({ key: 'admin_project_id', value: adminProject.id }).execute();
    let adminUser = await this.users.findByName('admin', DEFAULT_DOMAIN_ID);
    if (!adminUser) {
      const created = await this.users.create({ name: 'admin', domain_id: DEFAULT_DOMAIN_ID, password: this.adminPassword(), default_project_id: adminProject.id });
      adminUser = await this.users.getRow(created.id);
    }
    await this.assignments.grant({ user: adminUser!.id }, { project: adminProject.id }, admin.id);
    await this.assignments.grant({ user: adminUser!.id }, { system: true }, admin.id);
  }

  /** STRATUS_ADMIN_PASSWORD, or one generated once and kept in the data dir. */
  adminPassword(): string {
    return this.keptSecret('admin-password', process.env.STRATUS_ADMIN_PASSWORD);
  }

  keptSecret(file: string, given?: string): string {
    const path = join(this.config.dataDir, 'secrets', file);
    if (given) return given;
    if (existsSync(path)) return readFileSync(path, 'utf8').trim();
    mkdirSync(join(this.config.dataDir, 'secrets'), { recursive: true, mode: 0o700 });
    const pw = secret(18);
    writeFileSync(path, pw + '\n', { mode: 0o600 });
    return pw;
  }

  /** The `demo` project and user (member), for `stratus up` without --no-seed. */
  async seedDemo(): Promise<{ projectId: string; userId: string; password: string }> {
    const password = this.keptSecret('demo-password', process.env.STRATUS_DEMO_PASSWORD);
    const project = (await this.resources.findProjectByName('demo', DEFAULT_DOMAIN_ID)) ?? (await this.resources.createProject({ name: 'demo', domain_id: DEFAULT_DOMAIN_ID, description: 'Demo project' }));
    let user = await this.users.findByName('demo', DEFAULT_DOMAIN_ID);
    if (!user) {
      const u = await this.users.create({ name: 'demo', domain_id: DEFAULT_DOMAIN_ID, password, default_project_id: project.id });
      user = await this.users.getRow(u.id);
    }
    const member = (await this.assignments.findRoleByName('member'))!;
    await this.assignments.grant({ user: user!.id }, { project: project.id }, member.id);
    return { projectId: project.id, userId: user!.id, password };
  }
}
