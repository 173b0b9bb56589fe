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

/** Validates tokens; implemented by the identity service, cached in memory. */
export interface TokenValidator {
  /** Returns null for a token that is malformed, expired or revoked. */
  validate(token: string): Promise<AuthContext | null>;
}
