import { randomUUID, randomBytes } from 'node:crypto';

/** Keystone-style id: 32 lowercase hex characters, no dashes. */
export const hexId = (): string => randomUUID().replace(/-/g, '');
/** Nova/Glance/Cinder/Neutron-style id: a dashed UUID. */
export const uuid = (): string => randomUUID();
/** OpenStack request ids look like `req-<uuid>`. */
export const requestId = (): string => `req-${randomUUID()}`;
/** URL-safe random secret (application credentials, EC2 secrets). */
export const secret = (bytes = 32): string => randomBytes(bytes).toString('base64url');

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
export const looksLikeUuid = (s: string): boolean => UUID_RE.test(s);
