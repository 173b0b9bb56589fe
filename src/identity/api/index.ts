import type { RouteDef } from '../../core/http.js';
import type { PolicyEngine } from '../../core/policy.js';
import type { Identity } from '../index.js';
import { authRoutes } from './auth.js';
import { resourceRoutes } from './resources.js';
import { userRoutes } from './users.js';
import { roleRoutes } from './roles.js';
import { catalogRoutes } from './catalog.js';
import { credentialRoutes } from './credentials.js';
import type { ApiEnv } from './common.js';
import { policyBlobRoutes } from './policy-blobs.js';

/** Every route of Identity v3, mounted by the server under /identity/v3. */
export function identityRoutes(id: Identity, env: ApiEnv, policy: PolicyEngine): RouteDef<any, any, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  return [
    ...authRoutes(id, env),
    ...resourceRoutes(id, env),
    ...userRoutes(id, env),
    ...roleRoutes(id, env),
    ...catalogRoutes(id, env),
    ...credentialRoutes(id, env, policy),
    ...policyBlobRoutes(id, env),
  ];
}
