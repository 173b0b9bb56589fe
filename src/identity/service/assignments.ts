import { IdentityCore, parseJson } from './core.js';
import { badRequest, conflict, forbidden, notFound } from '../../core/errors.js';
import { hexId } from '../../core/ids.js';
import { bool, isUniqueViolation } from '../../core/db.js';
import type { AssignmentRow, AssignmentType, RoleRow } from '../store/tables.js';

export interface Role { id: string; name: string; domain_id: string | null; description: string; options: Record<string, unknown> }
export const roleView = (r: RoleRow): Role => ({
  id: r.id, name: r.name, domain_id: r.domain_id || null, description: r.description, options: parseJson(r.options, {}),
});

export type Actor = { user: string } | { group: string };
export type Target = { project: string } | { domain: string } | { system: true };

/** One row of GET /v3/role_assignments before rendering. */
export interface AssignmentView {
  roleId: string;
  userId?: string;
  groupId?: string;
  projectId?: string;
  domainId?: string;
  system?: boolean;
  inherited: boolean;
  /** For effective lists: the group the user got it through. */
  viaGroup?: string;
}

const typeOf = (actor: Actor, target: Target): AssignmentType =>
  ((('user' in actor) ? 'User' : 'Group') + ('project' in target ? 'Project' : 'domain' in target ? 'Domain' : 'System')) as AssignmentType;
const actorId = (a: Actor) => ('user' in a ? a.user : a.group);
const targetId = (t: Target) => ('project' in t ? t.project : 'domain' in t ? t.domain : 'system');

/** Roles, implied roles and role assignments, and effective-role resolution. */
export class AssignmentService {
  private roleCache: { gen: number; byId: Map<string, RoleRow>; implies: Map<string, string[]> } | null = null;

  constructor(
    private readonly c: IdentityCore,
    private readonly hooks: {
      userGroupIds: (userId: string) => Promise<string[]>;
      groupMemberIds: (groupId: string) => Promise<string[]>;
      ancestors: (projectId: string) => Promise<string[]>;
      projectDomain: (projectId: string) => Promise<string | null>;
      revoke: (ev: { userId?: string; projectId?: string; domainId?: string }) => Promise<void>;
    },
  ) {}

  private async roles() {
    if (this.roleCache?.gen === this.c.generation) return this.roleCache;
    const rows = await this.c.db.selectFrom('id_roles').selectAll().execute();
    const imp = await this.c.db.selectFrom('id_implied_roles').selectAll().execute();
    const implies = new Map<string, string[]>();
    for (const i of imp) implies.set(i.prior_role_id, [...(implies.get(i.prior_role_id) ?? []), i.implied_role_id]);
    this.roleCache = { gen: this.c.generation, byId: new Map(rows.map((r) => [r.id, r])), implies };
    return this.roleCache;
  }

  async getRole(id: string): Promise<Role> {
    const r = await this.c.db.selectFrom('id_roles').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`Could not find role: ${id}.`);
    return roleView(r);
  }
  async findRoleByName(name: string, domainId: string | null = null): Promise<Role | null> {
    const r = await this.c.db.selectFrom('id_roles').selectAll().where('name', '=', name).where('domain_id', '=', domainId ?? '').executeTakeFirst();
    return r ? roleView(r) : null;
  }
  async listRoles(f: { name?: string; domain_id?: string | null }): Promise<Role[]> {
    let q = this.c.db.selectFrom('id_roles').selectAll().orderBy('name');
    if (f.name !== undefined) q = q.where('name', '=', f.name);
    q = q.where('domain_id', '=', f.domain_id ?? '');
    return (await q.execute()).map(roleView);
  }
  async createRole(input: { id?: string; name: string; domain_id?: string | null; description?: string; options?: Record<string, unknown> }): Promise<Role> {
    if (input.domain_id) {
      const d = await this.c.db.selectFrom('id_domains').select('id').where('id', '=', input.domain_id).executeTakeFirst();
      if (!d) throw badRequest(`Could not find domain: ${input.domain_id}.`);
    }
    const row: RoleRow = {
      id: input.id ?? hexId(), name: input.name, domain_id: input.domain_id ?? '', description: input.description ?? '',
      options: JSON.stringify(input.options ?? {}), created_at: Date.now(),
    };
    try {
      await this.c.db.insertInto('id_roles').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to store role - Duplicate entry found with name ${input.name}.`);
      throw e;
    }
    this.c.changed();
    return roleView(row);
  }
  async updateRole(id: string, patch: { name?: string; description?: string; options?: Record<string, unknown>; domain_id?: string | null }): Promise<Role> {
    const cur = await this.getRole(id);
    if (patch.domain_id !== undefined && (patch.domain_id ?? null) !== cur.domain_id) throw badRequest('Cannot change the domain of a role.');
    if (cur.options.immutable === true && (patch.name !== undefined || patch.description !== undefined))
      throw forbidden(`Role ${id} is immutable.`);
    const next: Partial<RoleRow> = {};
    if (patch.name !== undefined) next.name = patch.name;
    if (patch.description !== undefined) next.description = patch.description;
    if (patch.options !== undefined) next.options = JSON.stringify({ ...cur.options, ...patch.options });
    if (Object.keys(next).length) {
      try {
        await this.c.db.updateTable('id_roles').set(next).where('id', '=', id).execute();
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to update role - duplicate name ${String(patch.name)}.`);
        throw e;
      }
    }
    this.c.changed();
    return this.getRole(id);
  }
  async deleteRole(id: string): Promise<void> {
    const role = await this.getRole(id);
    if (role.options.immutable === true) throw forbidden(`Role ${id} is immutable.`);
    const holders = await this.c.db.selectFrom('id_assignments').selectAll().where('role_id', '=', id).execute();
    await this.c.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('id_assignments').where('role_id', '=', id).execute();
      await tx.deleteFrom('id_implied_roles').where((eb) => eb.or([eb('prior_role_id', '=', id), eb('implied_role_id', '=', id)])).execute();
      await tx.deleteFrom('id_roles').where('id', '=', id).execute();
    });
    for (const h of holders) await this.revokeFor(h);
    this.c.changed();
  }

  // ---- implied roles ----
  async addImplied(prior: string, implied: string): Promise<void> {
    await this.getRole(prior);
    await this.getRole(implied);
    if (prior === implied) throw forbidden('A role cannot imply itself.');
    if ((await this.expand([implied])).has(prior)) throw forbidden('Implied role would create a cycle.');
    const ex = await this.c.db.selectFrom('id_implied_roles').selectAll().where('prior_role_id', '=', prior).where('implied_role_id', '=', implied).executeTakeFirst();
    if (!ex) await this.c.db.insertInto('id_implied_roles').values({ prior_role_id: prior, implied_role_id: implied }).execute();
    this.c.changed();
  }
  async getImplied(prior: string, implied: string): Promise<void> {
    await this.getRole(prior);
    await this.getRole(implied);
    const ex = await this.c.db.selectFrom('id_implied_roles').selectAll().where('prior_role_id', '=', prior).where('implied_role_id', '=', implied).executeTakeFirst();
    if (!ex) throw notFound(`${prior} does not imply ${implied}.`);
  }
  async removeImplied(prior: string, implied: string): Promise<void> {
    await this.getImplied(prior, implied);
    await this.c.db.deleteFrom('id_implied_roles').where('prior_role_id', '=', prior).where('implied_role_id', '=', implied).execute();
    this.c.changed();
  }
  async listImplied(prior?: string): Promise<{ prior: Role; implies: Role[] }[]> {
    const { byId, implies } = await this.roles();
    const out: { prior: Role; implies: Role[] }[] = [];
    for (const [p, list] of implies) {
      if (prior && p !== prior) continue;
      const pr = byId.get(p);
      if (!pr) continue;
      out.push({ prior: roleView(pr), implies: list.map((i) => byId.get(i)).filter((r): r is RoleRow => !!r).map(roleView) });
    }
    if (prior && out.length === 0) out.push({ prior: await this.getRole(prior), implies: [] });
    return out;
  }
  /** The role ids plus everything they imply, transitively. */
  async expand(roleIds: Iterable<string>): Promise<Set<string>> {
    const { implies } = await this.roles();
    const out = new Set<string>();
    const stack = [...roleIds];
    while (stack.length) {
      const r = stack.pop()!;
      if (out.has(r)) continue;
      out.add(r);
      for (const i of implies.get(r) ?? []) stack.push(i);
    }
    return out;
  }
  /** Domain-specific roles are never effective themselves, only what they imply. */
  private async globalOnly(ids: Set<string>): Promise<Set<string>> {
    const { byId } = await this.roles();
    return new Set([...ids].filter((id) => !byId.get(id)?.domain_id));
  }
  async roleNames(ids: Iterable<string>): Promise<{ id: string; name: string; domain_id: string | null }[]> {
    const { byId } = await this.roles();
    return [...ids].map((id) => byId.get(id)).filter((r): r is RoleRow => !!r).map((r) => ({ id: r.id, name: r.name, domain_id: r.domain_id || null }));
  }

  // ---- assignments ----
  async grant(actor: Actor, target: Target, roleId: string, inherited = false): Promise<void> {
    await this.getRole(roleId);
    if ('system' in target && inherited) throw badRequest('System assignments cannot be inherited.');
    const row: AssignmentRow = { type: typeOf(actor, target), actor_id: actorId(actor), target_id: targetId(target), role_id: roleId, inherited: inherited ? 1 : 0 };
    const ex = await this.findRow(row);
    if (!ex) await this.c.db.insertInto('id_assignments').values(row).execute();
    this.c.changed();
  }
  private findRow(row: AssignmentRow) {
    return this.c.db.selectFrom('id_assignments').selectAll()
      .where('type', '=', row.type).where('actor_id', '=', row.actor_id).where('target_id', '=', row.target_id)
      .where('role_id', '=', row.role_id).where('inherited', '=', row.inherited).executeTakeFirst();
  }
  async check(actor: Actor, target: Target, roleId: string, inherited = false): Promise<void> {
    const row: AssignmentRow = { type: typeOf(actor, target), actor_id: actorId(actor), target_id: targetId(target), role_id: roleId, inherited: inherited ? 1 : 0 };
    if (!(await this.findRow(row))) throw notFound(`Could not find role assignment with role: ${roleId}, ${JSON.stringify(actor)}, ${JSON.stringify(target)}.`);
  }
  async revoke(actor: Actor, target: Target, roleId: string, inherited = false): Promise<void> {
    const row: AssignmentRow = { type: typeOf(actor, target), actor_id: actorId(actor), target_id: targetId(target), role_id: roleId, inherited: inherited ? 1 : 0 };
    await this.check(actor, target, roleId, inherited);
    await this.c.db.deleteFrom('id_assignments')
      .where('type', '=', row.type).where('actor_id', '=', row.actor_id).where('target_id', '=', row.target_id)
      .where('role_id', '=', row.role_id).where('inherited', '=', row.inherited).execute();
    await this.revokeFor(row);
    this.c.changed();
  }
  /** Tokens of the users who lost a role must stop carrying it. */
  private async revokeFor(row: AssignmentRow): Promise<void> {
    const users = row.type.startsWith('User') ? [row.actor_id] : await this.hooks.groupMemberIds(row.actor_id);
    for (const u of users) {
      if (row.type.endsWith('Project')) await this.hooks.revoke({ userId: u, projectId: row.target_id });
      else if (row.type.endsWith('Domain') && row.inherited === 0) await this.hooks.revoke({ userId: u, domainId: row.target_id });
      else await this.hooks.revoke({ userId: u });
    }
  }
  /** Roles directly granted on a target to an actor (GET /projects/{p}/users/{u}/roles). */
  async listGranted(actor: Actor, target: Target, inherited = false): Promise<Role[]> {
    const rows = await this.c.db.selectFrom('id_assignments').select('role_id')
      .where('actor_id', '=', actorId(actor)).where('target_id', '=', targetId(target)).where('type', '=', typeOf(actor, target))
      .where('inherited', '=', inherited ? 1 : 0).execute();
    const { byId } = await this.roles();
    return rows.map((r) => byId.get(r.role_id)).filter((r): r is RoleRow => !!r).map(roleView);
  }

  /**
   * Rows granted to this user directly or through one of its groups: a
   * User* row must name the user and a Group* row one of its groups (ids of
   * users and groups live in different tables and must never be confused).
   */
  private actorMatch(userId: string, groups: string[]) {
    return (eb: import('kysely').ExpressionBuilder<import('../store/tables.js').IdentityTables, 'id_assignments'>) =>
      eb.or([
        eb.and([eb('actor_id', '=', userId), eb('type', 'in', ['UserProject', 'UserDomain', 'UserSystem'])]),
        ...(groups.length ? [eb.and([eb('actor_id', 'in', groups), eb('type', 'in', ['GroupProject', 'GroupDomain', 'GroupSystem'])])] : []),
      ]);
  }

  /** Effective role ids of a user on a project (direct, via groups, inherited from domain/parents, implied). */
  async effectiveProjectRoles(userId: string, projectId: string): Promise<Set<string>> {
    const groups = await this.hooks.userGroupIds(userId);
    const direct = await this.c.db.selectFrom('id_assignments').select('role_id')
      .where(this.actorMatch(userId, groups)).where('target_id', '=', projectId).where('type', 'in', ['UserProject', 'GroupProject']).where('inherited', '=', 0).execute();
    const ids = direct.map((r) => r.role_id);
    const domainId = await this.hooks.projectDomain(projectId);
    const inheritTargets = [...(await this.hooks.ancestors(projectId)), ...(domainId ? [domainId] : [])];
    if (inheritTargets.length) {
      const inh = await this.c.db.selectFrom('id_assignments').select('role_id')
        .where(this.actorMatch(userId, groups)).where('target_id', 'in', inheritTargets).where('inherited', '=', 1).execute();
      ids.push(...inh.map((r) => r.role_id));
    }
    return this.globalOnly(await this.expand(ids));
  }
  async effectiveDomainRoles(userId: string, domainId: string): Promise<Set<string>> {
    const groups = await this.hooks.userGroupIds(userId);
    const rows = await this.c.db.selectFrom('id_assignments').select('role_id')
      .where(this.actorMatch(userId, groups)).where('target_id', '=', domainId).where('type', 'in', ['UserDomain', 'GroupDomain']).where('inherited', '=', 0).execute();
    return this.globalOnly(await this.expand(rows.map((r) => r.role_id)));
  }
  async effectiveSystemRoles(userId: string): Promise<Set<string>> {
    const groups = await this.hooks.userGroupIds(userId);
    const rows = await this.c.db.selectFrom('id_assignments').select('role_id')
      .where(this.actorMatch(userId, groups)).where('target_id', '=', 'system').where('type', 'in', ['UserSystem', 'GroupSystem']).execute();
    return this.globalOnly(await this.expand(rows.map((r) => r.role_id)));
  }
  /** Projects where the user has any effective role (for /auth/projects, /users/{id}/projects). */
  async projectsForUser(userId: string, allProjects: { id: string; domain_id: string; parent_id: string | null }[]): Promise<string[]> {
    const out: string[] = [];
    for (const p of allProjects) if ((await this.effectiveProjectRoles(userId, p.id)).size > 0) out.push(p.id);
    return out;
  }
  async domainsForUser(userId: string): Promise<string[]> {
    const groups = await this.hooks.userGroupIds(userId);
    const rows = await this.c.db.selectFrom('id_assignments').select('target_id')
      .where(this.actorMatch(userId, groups)).where('type', 'in', ['UserDomain', 'GroupDomain']).where('inherited', '=', 0).execute();
    return [...new Set(rows.map((r) => r.target_id))];
  }

  /**
   * GET /v3/role_assignments. With `effective`, group assignments are
   * expanded into their members, inherited ones into the projects they apply
   * to, and implied roles are added — what a token would actually carry.
   */
  async listAssignments(f: {
    userId?: string; groupId?: string; roleId?: string; projectId?: string; domainId?: string; system?: boolean; effective?: boolean; inherited?: boolean;
    projectsInDomain: (domainId: string) => Promise<string[]>;
    descendants: (projectId: string) => Promise<string[]>;
  }): Promise<AssignmentView[]> {
    const rows = await this.c.db.selectFrom('id_assignments').selectAll().execute();
    let out: AssignmentView[] = [];
    const view = (r: AssignmentRow): AssignmentView => {
      const v: AssignmentView = { roleId: r.role_id, inherited: bool(r.inherited) };
      if (r.type.startsWith('User')) v.userId = r.actor_id; else v.groupId = r.actor_id;
      if (r.type.endsWith('Project')) v.projectId = r.target_id; else if (r.type.endsWith('Domain')) v.domainId = r.target_id; else v.system = true;
      return v;
    };
    if (!f.effective) {
      out = rows.map(view);
    } else {
      for (const r of rows) {
        const base = view(r);
        const users = base.userId ? [{ u: base.userId, g: undefined as string | undefined }] : (await this.hooks.groupMemberIds(base.groupId!)).map((u) => ({ u, g: base.groupId }));
        let targets: Partial<AssignmentView>[];
        if (base.inherited) {
          const projects = base.domainId ? await f.projectsInDomain(base.domainId) : await f.descendants(base.projectId!);
          targets = projects.map((p) => ({ projectId: p }));
        } else targets = [{ projectId: base.projectId, domainId: base.domainId, system: base.system }];
        for (const { u, g } of users)
          for (const t of targets) {
            const clean = Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined));
            out.push({ roleId: base.roleId, userId: u, inherited: false, ...clean, ...(g ? { viaGroup: g } : {}) });
          }
      }
      // implied roles
      const { implies } = await this.roles();
      const extra: AssignmentView[] = [];
      for (const a of out) {
        const seen = new Set([a.roleId]);
        const stack = [...(implies.get(a.roleId) ?? [])];
        while (stack.length) {
          const r = stack.pop()!;
          if (seen.has(r)) continue;
          seen.add(r);
          extra.push({ ...a, roleId: r });
          stack.push(...(implies.get(r) ?? []));
        }
      }
      out.push(...extra);
      const { byId } = await this.roles();
      out = out.filter((a) => !byId.get(a.roleId)?.domain_id);
      const keys = new Set<string>();
      out = out.filter((a) => {
        const k = [a.roleId, a.userId, a.projectId, a.domainId, a.system].join('|');
        if (keys.has(k)) return false;
        keys.add(k);
        return true;
      });
    }
    return out.filter((a) =>
      (f.userId === undefined || a.userId === f.userId) &&
      (f.groupId === undefined || a.groupId === f.groupId) &&
      (f.roleId === undefined || a.roleId === f.roleId) &&
      (f.projectId === undefined || a.projectId === f.projectId) &&
      (f.domainId === undefined || a.domainId === f.domainId) &&
      (f.system === undefined || !!a.system === f.system) &&
      (f.inherited === undefined || a.inherited === f.inherited));
  }
}
