import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { IdentityCore, parseJson } from './core.js';
import { badRequest, conflict, forbidden, notFound, unauthorized } from '../../core/errors.js';
import { hexId, secret as newSecret } from '../../core/ids.js';
import { bool, int, isUniqueViolation } from '../../core/db.js';
import { isoMicro } from '../../core/time.js';
import type { AppCredRow, CredentialRow } from '../store/tables.js';

export interface AppCred {
  id: string; name: string; description: string; user_id: string; project_id: string; expires_at: string | null; unrestricted: boolean;
  roles: { id: string; name: string; domain_id: string | null }[]; access_rules: unknown[]; secret?: string;
}
export interface Credential { id: string; user_id: string; project_id: string | null; type: string; blob: string; [k: string]: unknown }

/**
 * Application-credential secrets are 64 random bytes, so a fast salted hash
 * is as safe as bcrypt against guessing and keeps their use cheap.
 */
function hashSecret(s: string): string {
  const salt = randomBytes(16).toString('hex');
  return `sha256$${salt}$${createHash('sha256').update(salt + s).digest('hex')}`;
}
function checkSecret(s: string, stored: string): boolean {
  const [, salt, digest] = stored.split('$');
  if (!salt || !digest) return false;
  const got = createHash('sha256').update(salt + s).digest();
  const want = Buffer.from(digest, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** App credential expiry is kept in microseconds and rendered as Keystone does (naive ISO, 6 digits). */
const microIso = (us: number) => new Date(Math.floor(us / 1000)).toISOString().replace(/\.\d{3}Z$/, '.' + String(us % 1_000_000).padStart(6, '0'));

const appCredView = (r: AppCredRow): AppCred => ({
  id: r.id, name: r.name, description: r.description, user_id: r.user_id, project_id: r.project_id,
  expires_at: r.expires_at ? microIso(r.expires_at) : null, unrestricted: bool(r.unrestricted), roles: parseJson(r.roles, []), access_rules: parseJson(r.access_rules, []),
});

export interface BlobCipher {
  encrypt(plain: string): string;
  decrypt(token: string): string | null;
}

/** Application credentials, generic credentials (incl. EC2 keys). */
export class CredentialService {
  constructor(
    private readonly c: IdentityCore,
    private readonly cipher: BlobCipher,
    private readonly revokeAppCred: (id: string) => Promise<void>,
  ) {}

  // ---- application credentials ----
  async createAppCred(input: {
    userId: string; projectId: string; name: string; description?: string; secret?: string; expiresAt?: number | null; unrestricted?: boolean;
    roles: { id: string; name: string; domain_id: string | null }[]; accessRules?: unknown[];
  }): Promise<AppCred> {
    const secret = input.secret ?? newSecret(64);
    const row: AppCredRow = {
      id: hexId(), name: input.name, user_id: input.userId, project_id: input.projectId, secret_hash: hashSecret(secret),
      description: input.description ?? '', expires_at: input.expiresAt ?? null, unrestricted: int(input.unrestricted ?? false),
      roles: JSON.stringify(input.roles), access_rules: JSON.stringify(input.accessRules ?? []), created_at: Date.now(),
    };
    if (row.expires_at !== null && row.expires_at <= Date.now() * 1000) throw badRequest('The expiration time of an application credential must be in the future.');
    try {
      await this.c.db.insertInto('id_app_creds').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to store application_credential - Duplicate entry found with name ${input.name}.`);
      throw e;
    }
    this.c.changed();
    return { ...appCredView(row), secret };
  }
  async getAppCredRow(id: string): Promise<AppCredRow | undefined> {
    return this.c.db.selectFrom('id_app_creds').selectAll().where('id', '=', id).executeTakeFirst();
  }
  async getAppCred(userId: string, id: string): Promise<AppCred> {
    const r = await this.getAppCredRow(id);
    if (!r || r.user_id !== userId) throw notFound(`Could not find Application Credential: ${id}.`);
    return appCredView(r);
  }
  async listAppCreds(userId: string, name?: string): Promise<AppCred[]> {
    let q = this.c.db.selectFrom('id_app_creds').selectAll().where('user_id', '=', userId).orderBy('name');
    if (name !== undefined) q = q.where('name', '=', name);
    return (await q.execute()).map(appCredView);
  }
  async deleteAppCred(userId: string, id: string): Promise<void> {
    await this.getAppCred(userId, id);
    await this.c.db.deleteFrom('id_app_creds').where('id', '=', id).execute();
    await this.revokeAppCred(id);
    this.c.changed();
  }
  /** Authenticates an application credential by id (or name + user) and secret. */
  async authenticateAppCred(ref: { id?: string; name?: string; userId?: string }, secret: string): Promise<AppCredRow> {
    let row: AppCredRow | undefined;
    if (ref.id) row = await this.getAppCredRow(ref.id);
    else if (ref.name && ref.userId)
      row = await this.c.db.selectFrom('id_app_creds').selectAll().where('user_id', '=', ref.userId).where('name', '=', ref.name).executeTakeFirst();
    if (!row || !checkSecret(secret, row.secret_hash)) throw unauthorized();
    if (row.expires_at !== null && row.expires_at <= Date.now() * 1000) throw unauthorized();
    return row;
  }

  // ---- credentials ----
  private view(r: CredentialRow): Credential {
    return { ...parseJson<Record<string, unknown>>(r.extra, {}), id: r.id, user_id: r.user_id, project_id: r.project_id, type: r.type, blob: this.cipher.decrypt(r.encrypted_blob) ?? '' };
  }
  async createCredential(input: { user_id: string; project_id?: string | null; type: string; blob: string; [k: string]: unknown }): Promise<Credential> {
    const { user_id, project_id, type, blob, id: _id, ...extra } = input;
    let id = hexId();
    if (type === 'ec2') {
      let parsed: { access?: unknown };
      try {
        parsed = JSON.parse(blob) as { access?: unknown };
      } catch {
        throw badRequest('Invalid blob in credential: an ec2 credential blob must be JSON with "access" and "secret".');
      }
      if (typeof parsed.access !== 'string' || !project_id) throw badRequest('Invalid blob in credential: an ec2 credential needs "access" and a project_id.');
      // Keystone's convention: an EC2 credential's id is the SHA-256 of its access key.
      id = createHash('sha256').update(parsed.access).digest('hex');
    }
    const u = await this.c.db.selectFrom('id_users').select('id').where('id', '=', user_id).executeTakeFirst();
    if (!u) throw badRequest(`Could not find user: ${user_id}.`);
    const row: CredentialRow = { id, user_id, project_id: project_id ?? null, type, encrypted_blob: this.cipher.encrypt(blob), extra: JSON.stringify(extra), created_at: Date.now() };
    try {
      await this.c.db.insertInto('id_credentials').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict('Conflict occurred attempting to store credential - Duplicate ID.');
      throw e;
    }
    this.c.changed();
    return this.view(row);
  }
  async getCredential(id: string): Promise<Credential> {
    const r = await this.c.db.selectFrom('id_credentials').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`Could not find credential: ${id}.`);
    return this.view(r);
  }
  async listCredentials(f: { user_id?: string; type?: string }): Promise<Credential[]> {
    let q = this.c.db.selectFrom('id_credentials').selectAll().orderBy('created_at');
    if (f.user_id !== undefined) q = q.where('user_id', '=', f.user_id);
    if (f.type !== undefined) q = q.where('type', '=', f.type);
    return (await q.execute()).map((r) => this.view(r));
  }
  async updateCredential(id: string, patch: { blob?: string; type?: string; project_id?: string; user_id?: string }): Promise<Credential> {
    const cur = await this.getCredential(id);
    if (patch.user_id !== undefined && patch.user_id !== cur.user_id) throw forbidden('The owner of a credential cannot be changed.');
    const next: Partial<CredentialRow> = {};
    if (patch.blob !== undefined) next.encrypted_blob = this.cipher.encrypt(patch.blob);
    if (patch.type !== undefined) next.type = patch.type;
    if (patch.project_id !== undefined) next.project_id = patch.project_id;
    if (Object.keys(next).length) await this.c.db.updateTable('id_credentials').set(next).where('id', '=', id).execute();
    this.c.changed();
    return this.getCredential(id);
  }
  async deleteCredential(id: string): Promise<void> {
    await this.getCredential(id);
    await this.c.db.deleteFrom('id_credentials').where('id', '=', id).execute();
    this.c.changed();
  }

  // ---- EC2 (OS-EC2) ----
  async createEc2(userId: string, projectId: string): Promise<{ access: string; secret: string; user_id: string; tenant_id: string; trust_id: null }> {
    const access = hexId();
    const secret = hexId();
    await this.createCredential({ user_id: userId, project_id: projectId, type: 'ec2', blob: JSON.stringify({ access, secret, trust_id: null }) });
    return { access, secret, user_id: userId, tenant_id: projectId, trust_id: null };
  }
  /** The EC2 key pair with this access key, or null. */
  async findEc2(access: string): Promise<{ access: string; secret: string; user_id: string; tenant_id: string } | null> {
    const id = createHash('sha256').update(access).digest('hex');
    const r = await this.c.db.selectFrom('id_credentials').selectAll().where('id', '=', id).where('type', '=', 'ec2').executeTakeFirst();
    if (!r) return null;
    const blob = parseJson<{ access?: string; secret?: string }>(this.cipher.decrypt(r.encrypted_blob), {});
    if (blob.access !== access || !blob.secret) return null;
    return { access, secret: blob.secret, user_id: r.user_id, tenant_id: r.project_id ?? '' };
  }
  async listEc2(userId: string): Promise<{ access: string; secret: string; user_id: string; tenant_id: string; trust_id: null }[]> {
    const creds = await this.listCredentials({ user_id: userId, type: 'ec2' });
    return creds.map((c) => {
      const b = parseJson<{ access?: string; secret?: string }>(c.blob, {});
      return { access: b.access ?? '', secret: b.secret ?? '', user_id: c.user_id, tenant_id: c.project_id ?? '', trust_id: null };
    });
  }
  async deleteEc2(userId: string, access: string): Promise<void> {
    const found = await this.findEc2(access);
    if (!found || found.user_id !== userId) throw notFound(`Could not find credential: ${access}.`);
    await this.deleteCredential(createHash('sha256').update(access).digest('hex'));
  }
}
