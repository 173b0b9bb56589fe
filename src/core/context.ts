/**
 * What the auth middleware knows about the caller of one request, built once
 * from the X-Auth-Token by the identity service's validator.
 */
export interface AuthContext {
  token: string;
  userId: string;
  userName: string;
  userDomainId: string;
  userDomainName: string;
  /** Exactly one of project / domain / system is set, or none (unscoped). */
  projectId: string | null;
  projectName: string | null;
  projectDomainId: string | null;
  projectDomainName: string | null;
  domainId: string | null;
  domainName: string | null;
  system: boolean;
  /** Effective role names (implied roles expanded). */
  roles: string[];
  roleIds: string[];
  /** The token is scoped to the cloud's admin project. */
  isAdminProject: boolean;
  applicationCredentialId: string | null;
  methods: string[];
  auditIds: string[];
  issuedAt: number;
  expiresAt: number;
}

/** Credentials in the shape the policy engine's rules refer to. */
export function policyCredentials(ctx: AuthContext | null): import('./policy.js').PolicyCredentials {
  if (!ctx) return { roles: [] };
  return {
    user_id: ctx.userId,
    user_domain_id: ctx.userDomainId,
    project_id: ctx.projectId,
    project_domain_id: ctx.projectDomainId,
    domain_id: ctx.domainId,
    system_scope: ctx.system ? 'all' : null,
    roles: ctx.roles,
    is_admin_project: ctx.isAdminProject,
  };
}

/**
 * The policy's answer for `ctx` doing `rule` on `target`: the target's
 * fields are visible to rules both as `%(project_id)s` (as Nova's rules
 * spell them) and under `target` (as Keystone's do).
 */
export function decide(policy: import('./policy.js').PolicyEngine, ctx: AuthContext | null, rule: string, target: Record<string, unknown>): boolean {
  return policy.enforce(rule, { ...target, target }, policyCredentials(ctx));
}

const decisions = new WeakMap<AuthContext, { generation: number; byRule: Map<string, boolean> }>();

/**
 * `policy.enforce(rule)` for a target that is just a project, remembered per
 * caller context. A context object stands for one validated token or
 * credential and is replaced when identity changes anything (roles,
 * enablement), and the memo is dropped when the policy's rules change — so
 * the answer is the one `enforce` would give. The object APIs ask this on
 * every request.
 */
export function allowedOnProject(policy: import('./policy.js').PolicyEngine, ctx: AuthContext, rule: string, projectId: string | null): boolean {
  let memo = decisions.get(ctx);
  if (!memo || memo.generation !== policy.generation) {
    memo = { generation: policy.generation, byRule: new Map() };
    decisions.set(ctx, memo);
  }
  const key = projectId === null ? rule : `${rule}\0${projectId}`;
  let ok = memo.byRule.get(key);
  if (ok === undefined) {
    ok = decide(policy, ctx, rule, { project_id: projectId });
    if (memo.byRule.size >= 64) memo.byRule.clear();
    memo.byRule.set(key, ok);
  }
  return ok;
}

/** Validates tokens; implemented by the identity service, cached in memory. */
export interface TokenValidator {
  /** Returns null for a token that is malformed, expired or revoked. */
  validate(token: string): Promise<AuthContext | null>;
  /**
   * The context of a token validated before and still good, without waiting
   * (undefined when `validate` must decide). Lets the hot path skip a promise.
   */
  validated?(token: string): AuthContext | undefined;
}
