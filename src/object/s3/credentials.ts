import type { AuthContext } from '../../core/context.js';
import { bool } from '../../core/db.js';
import type { Identity } from '../../identity/index.js';

/** What an access key stands for: its secret and, when the owner may act, the request context. */
export interface S3Principal {
  access: string;
  secret: string;
  /** The credential's user in the credential's project, with their effective roles; null when they lost access. */
  ctx: AuthContext | null;
}

/** Resolves an EC2 access key; null for an unknown key. */
export interface CredentialSource {
  lookup(access: string): Promise<S3Principal | null>;
  /** What `lookup` would answer, when known without waiting (undefined otherwise): the hot path skips a promise. */
  cached?(access: string): S3Principal | null | undefined;
}

/**
 * EC2 credentials from the identity service (`openstack ec2 credentials
 * create`). A request runs as the credential's user scoped to the
 * credential's project, with the roles identity resolves for that pair
 * (implied roles expanded), exactly what /v3/ec2tokens would mint a token
 * for. Lookups are cached per access key until identity changes anything
 * (its write generation moves) or the minted context expires, so a revoked
 * credential or role stops working at once.
 */
export function identityCredentials(identity: Identity): CredentialSource {
  const cache = new Map<string, { gen: number; until: number; principal: S3Principal | null }>();
  const cached = (access: string): S3Principal | null | undefined => {
    const hit = cache.get(access);
    return hit && hit.gen === identity.core.generation && hit.until > Date.now() ? hit.principal : undefined;
  };
  return {
    cached,
    async lookup(access: string): Promise<S3Principal | null> {
      const known = cached(access);
      if (known !== undefined) return known;
      const now = Date.now();
      const gen = identity.core.generation;
      const found = await identity.creds.findEc2(access);
      let principal: S3Principal | null = null;
      let until = now + 60_000;
      if (found) {
        let ctx: AuthContext | null = null;
        const user = await identity.users.getRow(found.user_id);
        const project = found.tenant_id ? await identity.resources.getProjectRow(found.tenant_id) : undefined;
        if (user && bool(user.enabled) && project && bool(project.enabled)) {
          try {
            ctx = (await identity.tokens.issueFor(user.id, project.id, ['ec2credential'])).ctx;
            until = Math.min(until, ctx.expiresAt);
          } catch {
            ctx = null; // no role on the project any more
          }
        }
        principal = { access, secret: found.secret, ctx };
      }
      if (cache.size > 10_000) cache.clear();
      // Only cache if identity did not change while we looked.
      if (identity.core.generation === gen) cache.set(access, { gen, until, principal });
      return principal;
    },
  };
}
