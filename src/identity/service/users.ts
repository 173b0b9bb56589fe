import bcrypt from 'bcrypt';
import { IdentityCore, parseJson, DEFAULT_DOMAIN_ID } from './core.js';
import { badRequest, conflict, notFound, unauthorized } from '../../core/errors.js';
import { hexId } from '../../core/ids.js';
import { bool, int, isUniqueViolation } from '../../core/db.js';
import { isoMicro } from '../../core/time.js';
import type { GroupRow, UserRow } from '../store/tables.js';

export interface User {
  id: string; name: string; domain_id: string; enabled: boolean; default_project_id?: string; password_expires_at: string | null;
  options: Record<string, unknown>; [k: string]: unknown;
}
export interface Group { id: string; name: string; domain_id: string; description: string; [k: string]: unknown }

const USER_FIELDS = new Set(['id', 'name', 'domain_id', 'enabled', 'password', 'default_project_id', 'options', 'federated']);
const GROUP_FIELDS = new Set(['id', 'name', 'domain_id', 'description']);
const extraOf = (input: Record<string, unknown>, known: Set<string>) => Object.fromEntries(Object.entries(input).filter(([k]) => !known.has(k)));

export const userView = (r: UserRow): User => {
  const v: User = {
    ...parseJson<Record<string, unknown>>(r.extra, {}),
    id: r.id, name: r.name, domain_id: r.domain_id, enabled: bool(r.enabled),
    password_expires_at: r.password_expires_at ? isoMicro(r.password_expires_at) : null, options: parseJson(r.options, {}),
  };
  if (r.default_project_id) v.default_project_id = r.default_project_id;
  return v;
};
export const groupView = (r: GroupRow): Group => ({
  ...parseJson<Record<string, unknown>>(r.extra, {}), id: r.id, name: r.name, domain_id: r.domain_id, description: r.description,
});

// A fixed hash to compare against when the user does not exist, so that an
// unknown user costs the same time as a wrong password (no user enumeration).
let dummyHash: Promise<string> | null = null;

/** Users, passwords and groups. */
export class UserService {
  constructor(
    private readonly c: IdentityCore,
    /** Called when a user's tokens must stop working (disable, password change, delete). */
    private readonly revokeUser: (userId: string) => Promise<void>,
  ) {}

  async getRow(id: string): Promise<UserRow | undefined> {
    return this.c.db.selectFrom('id_users').selectAll().where('id', '=', id).executeTakeFirst();
  }
  async get(id: string): Promise<User> {
    const r = await this.getRow(id);
    if (!r) throw notFound(`Could not find user: ${id}.`);
    return userView(r);
  }
  async findByName(name: string, domainId: string): Promise<UserRow | undefined> {
    return this.c.db.selectFrom('id_users').selectAll().where('name', '=', name).where('domain_id', '=', domainId).executeTakeFirst();
  }
  async list(f: { name?: string; domain_id?: string; enabled?: boolean; ids?: string[] }): Promise<User[]> {
    let q = this.c.db.selectFrom('id_users').selectAll().orderBy('name');
    if (f.name !== undefined) q = q.where('name', '=', f.name);
    if (f.domain_id !== undefined) q = q.where('domain_id', '=', f.domain_id);
    if (f.enabled !== undefined) q = q.where('enabled', '=', int(f.enabled));
    if (f.ids) q = f.ids.length ? q.where('id', 'in', f.ids) : q.where('id', '=', '\u0000');
    return (await q.execute()).map(userView);
  }
  private async hashPassword(pw: string): Promise<string> {
    if (pw.length > 4096) throw badRequest('Invalid input for field \'password\': the password is too long.');
    return bcrypt.hash(pw, this.c.config.identity.passwordHashCost);
  }
  async create(input: { name: string; domain_id?: string; enabled?: boolean; password?: string | null; default_project_id?: string; [k: string]: unknown }): Promise<User> {
    const domainId = input.domain_id ?? DEFAULT_DOMAIN_ID;
    const dom = await this.c.db.selectFrom('id_domains').select('id').where('id', '=', domainId).executeTakeFirst();
    if (!dom) throw notFound(`Could not find domain: ${domainId}.`);
    const now = Date.now();
    const row: UserRow = {
      id: hexId(), name: input.name, domain_id: domainId, enabled: int(input.enabled ?? true),
      password_hash: input.password ? await this.hashPassword(input.password) : null, password_created_at: input.password ? now : null,
      password_expires_at: null, default_project_id: input.default_project_id ?? null, extra: JSON.stringify(extraOf(input, USER_FIELDS)),
      options: JSON.stringify(input.options ?? {}), failed_auth_count: 0, failed_auth_at: null, created_at: now,
    };
    try {
      await this.c.db.insertInto('id_users').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to store user - Duplicate entry found with name ${input.name} at domain ID ${domainId}.`);
      throw e;
    }
    this.c.changed();
    return userView(row);
  }
  async update(id: string, patch: Record<string, unknown>): Promise<User> {
    const cur = await this.getRow(id);
    if (!cur) throw notFound(`Could not find user: ${id}.`);
    if (patch.id !== undefined && patch.id !== id) throw badRequest('Cannot change user ID.');
    if (patch.domain_id !== undefined && patch.domain_id !== cur.domain_id) throw badRequest('Cannot change the domain of a user.');
    const next: Partial<UserRow> = { extra: JSON.stringify({ ...parseJson<Record<string, unknown>>(cur.extra, {}), ...extraOf(patch, USER_FIELDS) }) };
    if (typeof patch.name === 'string') next.name = patch.name;
    if (typeof patch.enabled === 'boolean') next.enabled = int(patch.enabled);
    if (patch.default_project_id !== undefined) next.default_project_id = (patch.default_project_id as string | null) ?? null;
    if (patch.options && typeof patch.options === 'object') next.options = JSON.stringify({ ...parseJson(cur.options, {}), ...patch.options });
    let pwChanged = false;
    if (typeof patch.password === 'string') {
      next.password_hash = await this.hashPassword(patch.password);
      next.password_created_at = Date.now();
      next.failed_auth_count = 0;
      pwChanged = true;
    }
    try {
      await this.c.db.updateTable('id_users').set(next).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to update user - Duplicate entry found with name ${String(patch.name)}.`);
      throw e;
    }
    if (pwChanged || (next.enabled === 0 && cur.enabled === 1)) await this.revokeUser(id);
    this.c.changed();
    return this.get(id);
  }
  /** Self-service password change: checks the original password first. */
  async changePassword(id: string, original: string, password: string): Promise<void> {
    const cur = await this.checkPassword(await this.getRow(id), original);
    await this.update(cur.id, { password });
  }
  async delete(id: string): Promise<void> {
    await this.get(id);
    await this.c.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('id_assignments').where('actor_id', '=', id).execute();
      await tx.deleteFrom('id_group_members').where('user_id', '=', id).execute();
      await tx.deleteFrom('id_app_creds').where('user_id', '=', id).execute();
      await tx.deleteFrom('id_credentials').where('user_id', '=', id).execute();
      await tx.deleteFrom('id_users').where('id', '=', id).execute();
    });
    await this.revokeUser(id);
    this.c.changed();
  }

  /**
   * Checks a password. Unknown user, wrong password, disabled user and locked
   * user are indistinguishable to the caller (same 401, similar time).
   */
  async checkPassword(row: UserRow | undefined, password: string): Promise<UserRow> {
    const fail = () => unauthorized('The request you have made requires authentication.');
    if (!row || !row.password_hash) {
      dummyHash ??= bcrypt.hash('stratus-no-such-user', this.c.config.identity.passwordHashCost);
      await bcrypt.compare(password, await dummyHash);
      throw fail();
    }
    const { lockoutFailureAttempts: maxFail, lockoutDurationSeconds } = this.c.config.identity;
    const windowOver = row.failed_auth_at !== null && Date.now() - row.failed_auth_at >= lockoutDurationSeconds * 1000;
    const locked = maxFail > 0 && row.failed_auth_count >= maxFail && !windowOver;
    const ok = await bcrypt.compare(password, row.password_hash);
    if (locked) {
      this.c.log.warn({ user: row.id }, 'authentication refused: account locked');
      throw fail();
    }
    if (!ok) {
      if (maxFail > 0) {
        // Atomic increment: parallel guesses must each count. An expired
        // lockout window starts the count again.
        await this.c.db.updateTable('id_users')
          .set((eb) => ({ failed_auth_count: windowOver ? 1 : eb('failed_auth_count', '+', 1), failed_auth_at: Date.now() }))
          .where('id', '=', row.id).execute();
      }
      throw fail();
    }
    if (!bool(row.enabled)) throw fail();
    if (row.failed_auth_count > 0) await this.c.db.updateTable('id_users').set({ failed_auth_count: 0, failed_auth_at: null }).where('id', '=', row.id).execute();
    return row;
  }

  // ---- groups ----
  async getGroup(id: string): Promise<Group> {
    const r = await this.c.db.selectFrom('id_groups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`Could not find group: ${id}.`);
    return groupView(r);
  }
  async listGroups(f: { name?: string; domain_id?: string; ids?: string[] }): Promise<Group[]> {
    let q = this.c.db.selectFrom('id_groups').selectAll().orderBy('name');
    if (f.name !== undefined) q = q.where('name', '=', f.name);
    if (f.domain_id !== undefined) q = q.where('domain_id', '=', f.domain_id);
    if (f.ids) q = f.ids.length ? q.where('id', 'in', f.ids) : q.where('id', '=', '\u0000');
    return (await q.execute()).map(groupView);
  }
  async createGroup(input: { name: string; domain_id?: string; description?: string; [k: string]: unknown }): Promise<Group> {
    const domainId = input.domain_id ?? DEFAULT_DOMAIN_ID;
    const dom = await this.c.db.selectFrom('id_domains').select('id').where('id', '=', domainId).executeTakeFirst();
    if (!dom) throw notFound(`Could not find domain: ${domainId}.`);
    const row: GroupRow = {
      id: hexId(), name: input.name, domain_id: domainId, description: input.description ?? '', extra: JSON.stringify(extraOf(input, GROUP_FIELDS)), created_at: Date.now(),
    };
    try {
      await this.c.db.insertInto('id_groups').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to store group - Duplicate entry found with name ${input.name}.`);
      throw e;
    }
    this.c.changed();
    return groupView(row);
  }
  async updateGroup(id: string, patch: Record<string, unknown>): Promise<Group> {
    const cur = await this.c.db.selectFrom('id_groups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!cur) throw notFound(`Could not find group: ${id}.`);
    if (patch.domain_id !== undefined && patch.domain_id !== cur.domain_id) throw badRequest('Cannot change the domain of a group.');
    const next: Partial<GroupRow> = { extra: JSON.stringify({ ...parseJson<Record<string, unknown>>(cur.extra, {}), ...extraOf(patch, GROUP_FIELDS) }) };
    if (typeof patch.name === 'string') next.name = patch.name;
    if (typeof patch.description === 'string') next.description = patch.description;
    try {
      await this.c.db.updateTable('id_groups').set(next).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to update group - duplicate name ${String(patch.name)}.`);
      throw e;
    }
    this.c.changed();
    return this.getGroup(id);
  }
  async deleteGroup(id: string): Promise<void> {
    await this.getGroup(id);
    const members = await this.groupMemberIds(id);
    await this.c.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('id_assignments').where('actor_id', '=', id).execute();
      await tx.deleteFrom('id_group_members').where('group_id', '=', id).execute();
      await tx.deleteFrom('id_groups').where('id', '=', id).execute();
    });
    for (const m of members) await this.revokeUser(m);
    this.c.changed();
  }
  async groupMemberIds(groupId: string): Promise<string[]> {
    return (await this.c.db.selectFrom('id_group_members').select('user_id').where('group_id', '=', groupId).execute()).map((r) => r.user_id);
  }
  async userGroupIds(userId: string): Promise<string[]> {
    return (await this.c.db.selectFrom('id_group_members').select('group_id').where('user_id', '=', userId).execute()).map((r) => r.group_id);
  }
  async addMember(groupId: string, userId: string): Promise<void> {
    await this.getGroup(groupId);
    await this.get(userId);
    const exists = await this.c.db.selectFrom('id_group_members').select('user_id').where('group_id', '=', groupId).where('user_id', '=', userId).executeTakeFirst();
    if (!exists) await this.c.db.insertInto('id_group_members').values({ group_id: groupId, user_id: userId }).execute();
    this.c.changed();
  }
  async isMember(groupId: string, userId: string): Promise<boolean> {
    await this.getGroup(groupId);
    await this.get(userId);
    return !!(await this.c.db.selectFrom('id_group_members').select('user_id').where('group_id', '=', groupId).where('user_id', '=', userId).executeTakeFirst());
  }
  async removeMember(groupId: string, userId: string): Promise<void> {
    if (!(await this.isMember(groupId, userId))) throw notFound(`User ${userId} is not a member of group ${groupId}.`);
    await this.c.db.deleteFrom('id_group_members').where('group_id', '=', groupId).where('user_id', '=', userId).execute();
    await this.revokeUser(userId);
    this.c.changed();
  }
}
