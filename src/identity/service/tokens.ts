import { randomBytes } from 'node:crypto';
import { IdentityCore } from './core.js';
import { badRequest, notFound, unauthorized } from '../../core/errors.js';
import { hexId } from '../../core/ids.js';
import { bool } from '../../core/db.js';
import { isoMicro } from '../../core/time.js';
import type { AuthContext, TokenValidator } from '../../core/context.js';
import { encrypt, decrypt } from './fernet.js';
import type { FernetKeyRepository } from './fernet-keys.js';
import type { UserService } from './users.js';
import type { ResourceService } from './resources.js';
import type { AssignmentService } from './assignments.js';
import type { CredentialService } from './credentials.js';
import type { CatalogService, CatalogEntry } from './catalog.js';
import type { RevocationRow, UserRow } from '../store/tables.js';

/**
 * What a Fernet token carries (JSON, then encrypted). Nothing about a token
 * is stored server-side: validation re-derives roles and checks revocation
 * events, so disabling a user or removing a role takes effect at once.
 */
interface TokenPayload {
  v: 1;
  u: string; // user id
  m: string[]; // methods
  p?: string; // project scope
  d?: string; // domain scope
  s?: 1; // system scope
  e: number; // expires at (ms)
  i: number; // issued at (ms)
  a: string[]; // audit ids: [this token's, ...its parent's]
  ac?: string; // application credential id
}

export interface AuthRequest {
  identity: {
    methods: string[];
    password?: { user: { id?: string; name?: string; password: string; domain?: { id?: string; name?: string } } };
    token?: { id: string };
    application_credential?: { id?: string; name?: string; secret: string; user?: { id?: string; name?: string; domain?: { id?: string; name?: string } } };
  };
  scope?:
    | 'unscoped'
    | {
        project?: { id?: string; name?: string; domain?: { id?: string; name?: string } };
        domain?: { id?: string; name?: string };
        system?: { all?: boolean };
        'OS-TRUST:trust'?: unknown;
      };
}

export interface IssuedToken {
  token: string;
  ctx: AuthContext;
}

const fail = () => unauthorized('The request you have made requires authentication.');
const auditId = () => randomBytes(16).toString('base64url').slice(0, 22);

export class TokenService implements TokenValidator {
  private revocations: RevocationRow[] = [];
  private cache = new Map<string, { gen: number; ctx: AuthContext }>();
  private renderCache = new Map<string, { gen: number; body: Record<string, unknown> }>();
  private static readonly CACHE_MAX = 20_000;
  adminProjectId: string | null = null;

  constructor(
    private readonly c: IdentityCore,
    private readonly keys: FernetKeyRepository,
    private readonly users: UserService,
    private readonly resources: ResourceService,
    private readonly assignments: AssignmentService,
    private readonly creds: CredentialService,
    private readonly catalogs: CatalogService,
  ) {
    c.bus.subscribe('identity.revoked', () => void this.loadRevocations());
  }

  async init(): Promise<void> {
    await this.loadRevocations();
    const meta = await this.c.db.selectFrom('id_meta').selectAll().where('key', '=', 'admin_project_id').executeTakeFirst();
    this.adminProjectId = meta?.value ?? null;
  }

  async loadRevocations(): Promise<void> {
    const horizon = Date.now() - (this.c.config.identity.tokenExpirationSeconds + this.c.config.identity.allowExpiredWindowSeconds) * 1000;
    await this.c.db.deleteFrom('id_revocations').where('revoked_at', '<', horizon).execute();
    this.revocations = await this.c.db.selectFrom('id_revocations').selectAll().execute();
  }

  /** Records a revocation event; matching tokens stop validating at once. */
  async revoke(ev: { userId?: string; projectId?: string; domainId?: string; auditId?: string; appCredId?: string }): Promise<void> {
    const now = Date.now();
    const row: RevocationRow = {
      id: hexId(), user_id: ev.userId ?? null, project_id: ev.projectId ?? null, domain_id: ev.domainId ?? null, audit_id: ev.auditId ?? null,
      app_cred_id: ev.appCredId ?? null, issued_before: now, revoked_at: now,
    };
    await this.c.db.insertInto('id_revocations').values(row).execute();
    this.revocations.push(row);
    this.c.changed();
    void this.c.bus.publish('identity.revoked', { id: row.id });
  }

  private isRevoked(p: TokenPayload, userDomainId: string, projectDomainId: string | null): boolean {
    for (const ev of this.revocations) {
      if (p.i > ev.issued_before) continue;
      if (ev.user_id !== null && ev.user_id !== p.u) continue;
      if (ev.project_id !== null && ev.project_id !== p.p) continue;
      if (ev.audit_id !== null && !p.a.includes(ev.audit_id)) continue;
      if (ev.app_cred_id !== null && ev.app_cred_id !== p.ac) continue;
      if (ev.domain_id !== null && ev.domain_id !== p.d && ev.domain_id !== userDomainId && ev.domain_id !== projectDomainId) continue;
      return true;
    }
    return false;
  }

  private seal(p: TokenPayload): string {
    return encrypt(this.keys.primary(), Buffer.from(JSON.stringify(p)));
  }

  private open(token: string): TokenPayload | null {
    if (token.length > 1024) return null;
    const plain = decrypt(this.keys.all(), token);
    if (!plain) return null;
    try {
      const p = JSON.parse(plain.toString('utf8')) as TokenPayload;
      return p.v === 1 && typeof p.u === 'string' ? p : null;
    } catch {
      return null;
    }
  }

  /** A cached validation of `token`, current and unexpired (or expired, with `allowExpired`); undefined otherwise. */
  private cachedCtx(token: string, allowExpired = false): AuthContext | undefined {
    const hit = this.cache.get(token);
    return hit && hit.gen === this.c.generation && (allowExpired || hit.ctx.expiresAt > Date.now()) ? hit.ctx : undefined;
  }

  /** TokenValidator.validated: what `validate` would answer from its cache alone. */
  validated(token: string): AuthContext | undefined {
    return this.cachedCtx(token);
  }

  /**
   * Validates a token: signature, expiry, revocation, and that the user,
   * its domain, the scope target and (for scoped tokens) at least one role
   * still exist and are enabled. Results are cached until the next identity
   * change, which is what makes validation cheap.
   */
  async validate(token: string, opts: { allowExpired?: boolean } = {}): Promise<AuthContext | null> {
    const known = this.cachedCtx(token, opts.allowExpired);
    if (known) return known;
    const now = Date.now();
    const p = this.open(token);
    if (!p) return null;
    if (p.e <= now && !(opts.allowExpired && p.e + this.c.config.identity.allowExpiredWindowSeconds * 1000 > now)) return null;
    const gen = this.c.generation;
    let ctx: AuthContext | null;
    try {
      ctx = await this.build(token, p);
    } catch {
      ctx = null;
    }
    if (!ctx) return null;
    if (this.isRevoked(p, ctx.userDomainId, ctx.projectDomainId)) return null;
    if (this.cache.size >= TokenService.CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(token, { gen, ctx });
    return ctx;
  }

  private async build(token: string, p: TokenPayload): Promise<AuthContext | null> {
    const user = await this.users.getRow(p.u);
    if (!user || !bool(user.enabled)) return null;
    const userDomain = await this.resources.getDomain(user.domain_id).catch(() => null);
    if (!userDomain?.enabled) return null;
    const ctx: AuthContext = {
      token, userId: user.id, userName: user.name, userDomainId: user.domain_id, userDomainName: userDomain.name,
      projectId: null, projectName: null, projectDomainId: null, projectDomainName: null, domainId: null, domainName: null, system: false,
      roles: [], roleIds: [], isAdminProject: false, applicationCredentialId: p.ac ?? null, methods: p.m, auditIds: p.a, issuedAt: p.i, expiresAt: p.e,
    };
    let roleIds: Set<string> = new Set();
    if (p.p) {
      const project = await this.resources.getProjectRow(p.p);
      if (!project || !bool(project.enabled)) return null;
      const pd = await this.resources.getDomain(project.domain_id).catch(() => null);
      if (!pd?.enabled) return null;
      Object.assign(ctx, { projectId: project.id, projectName: project.name, projectDomainId: pd.id, projectDomainName: pd.name });
      ctx.isAdminProject = project.id === this.adminProjectId;
      roleIds = await this.assignments.effectiveProjectRoles(user.id, project.id);
    } else if (p.d) {
      const d = await this.resources.getDomain(p.d).catch(() => null);
      if (!d?.enabled) return null;
      Object.assign(ctx, { domainId: d.id, domainName: d.name });
      roleIds = await this.assignments.effectiveDomainRoles(user.id, d.id);
    } else if (p.s) {
      ctx.system = true;
      roleIds = await this.assignments.effectiveSystemRoles(user.id);
    }
    if (p.ac) {
      const ac = await this.creds.getAppCredRow(p.ac);
      if (!ac || (ac.expires_at !== null && ac.expires_at <= Date.now() * 1000)) return null;
      const allowed = await this.assignments.expand((JSON.parse(ac.roles) as { id: string }[]).map((r) => r.id));
      roleIds = new Set([...roleIds].filter((r) => allowed.has(r)));
    }
    if ((p.p || p.d || p.s) && roleIds.size === 0) return null;
    const roles = await this.assignments.roleNames(roleIds);
    ctx.roles = roles.map((r) => r.name);
    ctx.roleIds = roles.map((r) => r.id);
    return ctx;
  }

  /** POST /v3/auth/tokens: authenticate, pick the scope, mint a token. */
  async issue(req: AuthRequest): Promise<IssuedToken> {
    const methods = req.identity.methods;
    if (!Array.isArray(methods) || methods.length === 0) throw badRequest("Invalid input for field 'identity/methods': methods must be a non-empty list.");
    let user: UserRow | undefined;
    let parent: TokenPayload | null = null;
    let appCredId: string | undefined;
    let appCredProject: string | undefined;
    let appCredExpires: number | null = null;
    for (const m of methods) {
      let u: UserRow | undefined;
      if (m === 'password') {
        const pw = req.identity.password?.user;
        if (!pw || typeof pw.password !== 'string') throw badRequest("Invalid input for field 'identity/password/user': a user with a password is required.");
        u = await this.resolveUser(pw);
        u = await this.users.checkPassword(u, pw.password);
        const d = await this.resources.getDomain(u.domain_id).catch(() => null);
        if (!d?.enabled) throw fail();
      } else if (m === 'token') {
        const t = req.identity.token?.id;
        if (typeof t !== 'string') throw badRequest("Invalid input for field 'identity/token/id'.");
        const pctx = await this.validate(t);
        parent = pctx ? this.open(t) : null;
        if (!pctx || !parent) throw fail();
        if (parent.ac) throw unauthorized('Application credential tokens cannot be used to obtain other tokens.');
        u = await this.users.getRow(parent.u);
      } else if (m === 'application_credential') {
        const ac = req.identity.application_credential;
        if (!ac || typeof ac.secret !== 'string') throw badRequest("Invalid input for field 'identity/application_credential'.");
        let userId = ac.user?.id;
        if (!ac.id && ac.user && !userId) userId = (await this.resolveUser(ac.user).catch(() => undefined))?.id;
        const row = await this.creds.authenticateAppCred({ id: ac.id, name: ac.name, userId }, ac.secret);
        u = await this.users.getRow(row.user_id);
        if (!u || !bool(u.enabled)) throw fail();
        appCredId = row.id;
        appCredProject = row.project_id;
        appCredExpires = row.expires_at === null ? null : Math.floor(row.expires_at / 1000);
      } else {
        throw unauthorized(`Attempted to authenticate with an unsupported method: ${m}.`);
      }
      if (!u) throw fail();
      if (user && user.id !== u.id) throw unauthorized('Authentication methods resolved to different users.');
      user = u;
    }
    if (!user) throw fail();

    // Scope
    let projectId: string | undefined;
    let domainId: string | undefined;
    let system = false;
    const scope = req.scope;
    if (scope && scope !== 'unscoped') {
      if (typeof scope !== 'object') throw badRequest("Invalid input for field 'scope'.");
      const kinds = ['project', 'domain', 'system', 'OS-TRUST:trust'].filter((k) => (scope as Record<string, unknown>)[k] !== undefined);
      if (kinds.length > 1) throw badRequest('Specify only one of project, domain or system scope.');
      if (scope['OS-TRUST:trust']) throw unauthorized('Trusts are not supported.');
      if (scope.project) projectId = await this.resolveProject(scope.project);
      else if (scope.domain) domainId = await this.resolveDomain(scope.domain);
      else if (scope.system) {
        if (scope.system.all !== true) throw badRequest("Invalid input for field 'scope/system': only {\"all\": true} is supported.");
        system = true;
      }
    } else if (!scope && parent) {
      // Re-issuing a token with the token method keeps its scope.
      projectId = parent.p;
      domainId = parent.d;
      system = parent.s === 1;
    } else if (!scope && user.default_project_id && !appCredId) {
      const roles = await this.assignments.effectiveProjectRoles(user.id, user.default_project_id).catch(() => new Set<string>());
      const prj = await this.resources.getProjectRow(user.default_project_id);
      if (roles.size > 0 && prj && bool(prj.enabled)) projectId = user.default_project_id;
    }
    if (appCredId) {
      if ((projectId && projectId !== appCredProject) || domainId || system) throw unauthorized('An application credential is bound to its project; another scope cannot be requested.');
      projectId = appCredProject;
    }

    const now = Date.now();
    let expires = now + this.c.config.identity.tokenExpirationSeconds * 1000;
    if (parent) expires = Math.min(expires, parent.e);
    if (appCredExpires !== null) expires = Math.min(expires, appCredExpires);
    const payload: TokenPayload = {
      v: 1, u: user.id, m: [...new Set([...(parent?.m ?? []), ...methods])], e: expires, i: now,
      a: parent ? [auditId(), parent.a[parent.a.length - 1]!] : [auditId()],
      ...(projectId ? { p: projectId } : {}), ...(domainId ? { d: domainId } : {}), ...(system ? { s: 1 as const } : {}), ...(appCredId ? { ac: appCredId } : {}),
    };
    const token = this.seal(payload);
    const ctx = await this.build(token, payload);
    if (!ctx) {
      if (projectId) throw unauthorized(`User ${user.id} has no access to project ${projectId}.`);
      if (domainId) throw unauthorized(`User ${user.id} has no access to domain ${domainId}.`);
      if (system) throw unauthorized(`User ${user.id} has no access to the system.`);
      throw fail();
    }
    return { token, ctx };
  }

  /** Mints a project-scoped token for an already-authenticated principal (EC2 signatures). */
  async issueFor(userId: string, projectId: string, methods: string[]): Promise<IssuedToken> {
    const now = Date.now();
    const payload: TokenPayload = { v: 1, u: userId, m: methods, p: projectId, e: now + this.c.config.identity.tokenExpirationSeconds * 1000, i: now, a: [auditId()] };
    const token = this.seal(payload);
    const ctx = await this.build(token, payload);
    if (!ctx) throw unauthorized(`User ${userId} has no access to project ${projectId}.`);
    return { token, ctx };
  }

  /** DELETE /v3/auth/tokens: the token (and any rescoped from it) stops working. */
  async revokeToken(token: string): Promise<void> {
    const p = this.open(token);
    if (!p) throw notFound('Could not find token.');
    const ctx = await this.validate(token);
    if (!ctx) throw notFound('Could not find token.');
    await this.revoke({ auditId: p.a[0] });
  }

  private async resolveUser(u: { id?: string; name?: string; domain?: { id?: string; name?: string } }): Promise<UserRow | undefined> {
    if (u.id) return this.users.getRow(u.id);
    if (!u.name) throw badRequest("Invalid input for field 'user': either id or name is required.");
    if (!u.domain || (!u.domain.id && !u.domain.name)) throw badRequest("Invalid input for field 'user/domain': a user name must be qualified by a domain.");
    const domId = u.domain.id ?? (await this.resources.findDomainByName(u.domain.name!))?.id;
    if (!domId) return undefined;
    return this.users.findByName(u.name, domId);
  }
  private async resolveDomain(d: { id?: string; name?: string }): Promise<string> {
    const dom = d.id ? await this.resources.getDomain(d.id).catch(() => null) : d.name ? await this.resources.findDomainByName(d.name) : null;
    if (!dom) throw unauthorized(`Could not find domain: ${d.id ?? d.name ?? ''}.`);
    if (!dom.enabled) throw unauthorized(`Domain ${dom.id} is disabled.`);
    return dom.id;
  }
  private async resolveProject(p: { id?: string; name?: string; domain?: { id?: string; name?: string } }): Promise<string> {
    if (p.id) {
      const prj = await this.resources.getProjectRow(p.id);
      if (!prj) throw unauthorized(`Could not find project: ${p.id}.`);
      if (!bool(prj.enabled)) throw unauthorized(`Project ${p.id} is disabled.`);
      return prj.id;
    }
    if (!p.name || !p.domain) throw badRequest("Invalid input for field 'scope/project': give an id, or a name with a domain.");
    const domId = await this.resolveDomain(p.domain);
    const prj = await this.resources.findProjectByName(p.name, domId);
    if (!prj) throw unauthorized(`Could not find project: ${p.name}.`);
    if (!prj.enabled) throw unauthorized(`Project ${prj.id} is disabled.`);
    return prj.id;
  }

  /** The Keystone token body (POST and GET /v3/auth/tokens). */
  async render(ctx: AuthContext, withCatalog: boolean): Promise<Record<string, unknown>> {
    // Validation responses are re-served from cache until any identity change.
    const key = (withCatalog ? 'c' : 'n') + ctx.token;
    const hit = this.renderCache.get(key);
    if (hit && hit.gen === this.c.generation) return hit.body;
    const gen = this.c.generation;
    const body = await this.renderFresh(ctx, withCatalog);
    if (this.renderCache.size >= TokenService.CACHE_MAX) this.renderCache.delete(this.renderCache.keys().next().value as string);
    this.renderCache.set(key, { gen, body });
    return body;
  }

  private async renderFresh(ctx: AuthContext, withCatalog: boolean): Promise<Record<string, unknown>> {
    const user = await this.users.getRow(ctx.userId);
    const t: Record<string, unknown> = {
      methods: ctx.methods,
      user: {
        id: ctx.userId, name: ctx.userName, domain: { id: ctx.userDomainId, name: ctx.userDomainName },
        password_expires_at: user?.password_expires_at ? isoMicro(user.password_expires_at) : null,
      },
      audit_ids: ctx.auditIds,
      expires_at: isoMicro(ctx.expiresAt),
      issued_at: isoMicro(ctx.issuedAt),
    };
    if (ctx.projectId) {
      t.project = { id: ctx.projectId, name: ctx.projectName, domain: { id: ctx.projectDomainId, name: ctx.projectDomainName } };
      t.is_domain = false;
      if (this.adminProjectId) t.is_admin_project = ctx.isAdminProject;
    } else if (ctx.domainId) t.domain = { id: ctx.domainId, name: ctx.domainName };
    else if (ctx.system) t.system = { all: true };
    if (ctx.projectId || ctx.domainId || ctx.system) {
      const names = await this.assignments.roleNames(ctx.roleIds);
      t.roles = names.map((r) => ({ id: r.id, name: r.name, ...(r.domain_id ? { domain_id: r.domain_id } : {}) }));
      if (withCatalog) t.catalog = await this.catalogs.catalog(ctx.projectId);
    }
    if (ctx.applicationCredentialId) {
      const ac = await this.creds.getAppCredRow(ctx.applicationCredentialId);
      t.application_credential = { id: ctx.applicationCredentialId, name: ac?.name ?? '', restricted: !(ac && bool(ac.unrestricted)) };
    }
    return { token: t };
  }

  catalogFor(ctx: AuthContext): Promise<CatalogEntry[]> {
    return this.catalogs.catalog(ctx.projectId);
  }
}
