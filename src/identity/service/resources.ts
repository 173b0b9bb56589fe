import { IdentityCore, parseJson, DEFAULT_DOMAIN_ID } from './core.js';
import { badRequest, conflict, forbidden, notFound } from '../../core/errors.js';
import { hexId } from '../../core/ids.js';
import { bool, int, isUniqueViolation } from '../../core/db.js';
import type { DomainRow, ProjectRow } from '../store/tables.js';

export interface Domain { id: string; name: string; description: string; enabled: boolean; tags: string[]; options: Record<string, unknown>; [k: string]: unknown }
export interface Project {
  id: string; name: string; domain_id: string; parent_id: string | null; description: string; enabled: boolean; is_domain: boolean;
  tags: string[]; options: Record<string, unknown>; [k: string]: unknown;
}

export const domainView = (r: DomainRow): Domain => ({
  ...parseJson<Record<string, unknown>>(r.extra, {}),
  id: r.id, name: r.name, description: r.description, enabled: bool(r.enabled), tags: parseJson(r.tags, []), options: {},
});
export const projectView = (r: ProjectRow): Project => ({
  ...parseJson<Record<string, unknown>>(r.extra, {}),
  id: r.id, name: r.name, domain_id: r.domain_id, parent_id: r.parent_id ?? r.domain_id, description: r.description,
  enabled: bool(r.enabled), is_domain: false, tags: parseJson(r.tags, []), options: {},
});

const DOMAIN_FIELDS = new Set(['id', 'name', 'description', 'enabled', 'tags', 'options', 'explicit_domain_id']);
const PROJECT_FIELDS = new Set(['id', 'name', 'domain_id', 'parent_id', 'description', 'enabled', 'is_domain', 'tags', 'options']);
const extraOf = (input: Record<string, unknown>, known: Set<string>) =>
  Object.fromEntries(Object.entries(input).filter(([k]) => !known.has(k)));

/** Domains and projects (Keystone's "resource" backend). */
export class ResourceService {
  constructor(private readonly c: IdentityCore) {}

  async getDomain(id: string): Promise<Domain> {
    const r = await this.c.db.selectFrom('id_domains').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`Could not find domain: ${id}.`);
    return domainView(r);
  }
  async findDomainByName(name: string): Promise<Domain | null> {
    const r = await this.c.db.selectFrom('id_domains').selectAll().where('name', '=', name).executeTakeFirst();
    return r ? domainView(r) : null;
  }
  async listDomains(f: { name?: string; enabled?: boolean; ids?: string[] }): Promise<Domain[]> {
    let q = this.c.db.selectFrom('id_domains').selectAll().orderBy('name');
    if (f.name !== undefined) q = q.where('name', '=', f.name);
    if (f.enabled !== undefined) q = q.where('enabled', '=', int(f.enabled));
    if (f.ids) q = f.ids.length ? q.where('id', 'in', f.ids) : q.where('id', '=', '\u0000');
    return (await q.execute()).map(domainView);
  }
  async createDomain(input: { id?: string; name: string; description?: string; enabled?: boolean; tags?: string[]; [k: string]: unknown }): Promise<Domain> {
    const row: DomainRow = {
      id: input.id ?? hexId(), name: input.name, description: input.description ?? '', enabled: int(input.enabled ?? true),
      extra: JSON.stringify(extraOf(input, DOMAIN_FIELDS)), tags: JSON.stringify(input.tags ?? []), created_at: Date.now(),
    };
    try {
      await this.c.db.insertInto('id_domains').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to store domain - Duplicate entry found with name ${input.name}.`);
      throw e;
    }
    this.c.changed();
    return domainView(row);
  }
  async updateDomain(id: string, patch: Record<string, unknown>): Promise<Domain> {
    const cur = await this.c.db.selectFrom('id_domains').selectAll().where('id', '=', id).executeTakeFirst();
    if (!cur) throw notFound(`Could not find domain: ${id}.`);
    if (patch.id !== undefined && patch.id !== id) throw badRequest('Cannot change Domain ID.');
    const extra = { ...parseJson<Record<string, unknown>>(cur.extra, {}), ...extraOf(patch, DOMAIN_FIELDS) };
    const next: Partial<DomainRow> = { extra: JSON.stringify(extra) };
    if (typeof patch.name === 'string') next.name = patch.name;
    if (typeof patch.description === 'string') next.description = patch.description;
    if (typeof patch.enabled === 'boolean') next.enabled = int(patch.enabled);
    if (Array.isArray(patch.tags)) next.tags = JSON.stringify(patch.tags);
    try {
      await this.c.db.updateTable('id_domains').set(next).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to update domain - Duplicate entry found with name ${String(patch.name)}.`);
      throw e;
    }
    this.c.changed();
    return this.getDomain(id);
  }
  async deleteDomain(id: string): Promise<void> {
    const d = await this.getDomain(id);
    if (id === DEFAULT_DOMAIN_ID) throw forbidden('You are not authorized to perform the requested action: the default domain cannot be deleted.');
    if (d.enabled) throw forbidden('Cannot delete a domain that is enabled, please disable it first.', 'ForbiddenAction');
    await this.c.db.transaction().execute(async (tx) => {
      const projects = await tx.selectFrom('id_projects').select('id').where('domain_id', '=', id).execute();
      const users = await tx.selectFrom('id_users').select('id').where('domain_id', '=', id).execute();
      const groups = await tx.selectFrom('id_groups').select('id').where('domain_id', '=', id).execute();
      const targets = [id, ...projects.map((p) => p.id)];
      const actors = [...users.map((u) => u.id), ...groups.map((g) => g.id)];
      await tx.deleteFrom('id_assignments').where('target_id', 'in', targets).execute();
      if (actors.length) await tx.deleteFrom('id_assignments').where('actor_id', 'in', actors).execute();
      if (users.length) await tx.deleteFrom('id_group_members').where('user_id', 'in', users.map((u) => u.id)).execute();
      await tx.deleteFrom('id_groups').where('domain_id', '=', id).execute();
      await tx.deleteFrom('id_users').where('domain_id', '=', id).execute();
      await tx.deleteFrom('id_projects').where('domain_id', '=', id).execute();
      await tx.deleteFrom('id_roles').where('domain_id', '=', id).execute();
      await tx.deleteFrom('id_domains').where('id', '=', id).execute();
    });
    this.c.changed();
  }

  async getProject(id: string): Promise<Project> {
    const r = await this.c.db.selectFrom('id_projects').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`Could not find project: ${id}.`);
    return projectView(r);
  }
  async getProjectRow(id: string): Promise<ProjectRow | undefined> {
    return this.c.db.selectFrom('id_projects').selectAll().where('id', '=', id).executeTakeFirst();
  }
  async findProjectByName(name: string, domainId: string): Promise<Project | null> {
    const r = await this.c.db.selectFrom('id_projects').selectAll().where('name', '=', name).where('domain_id', '=', domainId).executeTakeFirst();
    return r ? projectView(r) : null;
  }
  async listProjects(f: { name?: string; domain_id?: string; parent_id?: string; enabled?: boolean; ids?: string[]; tags?: string[] }): Promise<Project[]> {
    let q = this.c.db.selectFrom('id_projects').selectAll().orderBy('name');
    if (f.name !== undefined) q = q.where('name', '=', f.name);
    if (f.domain_id !== undefined) q = q.where('domain_id', '=', f.domain_id);
    if (f.enabled !== undefined) q = q.where('enabled', '=', int(f.enabled));
    if (f.ids) q = f.ids.length ? q.where('id', 'in', f.ids) : q.where('id', '=', '\u0000');
    let out = (await q.execute()).map(projectView);
    if (f.parent_id !== undefined) out = out.filter((p) => p.parent_id === f.parent_id);
    if (f.tags?.length) out = out.filter((p) => f.tags!.every((t) => p.tags.includes(t)));
    return out;
  }
  /** The project's ancestors, nearest first (domain excluded). */
  async ancestors(projectId: string): Promise<string[]> {
    const out: string[] = [];
    let cur = await this.getProjectRow(projectId);
    while (cur?.parent_id && !out.includes(cur.parent_id)) {
      out.push(cur.parent_id);
      cur = await this.getProjectRow(cur.parent_id);
    }
    return out;
  }
  async createProject(input: { name: string; domain_id?: string; parent_id?: string; description?: string; enabled?: boolean; tags?: string[]; is_domain?: boolean; [k: string]: unknown }): Promise<Project> {
    if (input.is_domain) throw badRequest('Projects acting as domains are not supported; create a domain instead.');
    let domainId = input.domain_id;
    let parentId: string | null = null;
    if (input.parent_id) {
      const parent = await this.getProjectRow(input.parent_id);
      if (!parent) {
        const dom = await this.c.db.selectFrom('id_domains').select('id').where('id', '=', input.parent_id).executeTakeFirst();
        if (!dom) throw badRequest(`Could not find parent: ${input.parent_id}.`);
        domainId ??= dom.id;
      } else {
        if (domainId && domainId !== parent.domain_id) throw badRequest('Cannot create project, the parent is in a different domain.');
        domainId = parent.domain_id;
        parentId = parent.id;
      }
    }
    domainId ??= DEFAULT_DOMAIN_ID;
    const dom = await this.c.db.selectFrom('id_domains').select('id').where('id', '=', domainId).executeTakeFirst();
    if (!dom) throw notFound(`Could not find domain: ${domainId}.`);
    const row: ProjectRow = {
      id: hexId(), name: input.name, domain_id: domainId, parent_id: parentId, description: input.description ?? '',
      enabled: int(input.enabled ?? true), extra: JSON.stringify(extraOf(input, PROJECT_FIELDS)), tags: JSON.stringify(input.tags ?? []),
      created_at: Date.now(),
    };
    try {
      await this.c.db.insertInto('id_projects').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : ${input.name}.`);
      throw e;
    }
    this.c.changed();
    return projectView(row);
  }
  async updateProject(id: string, patch: Record<string, unknown>): Promise<Project> {
    const cur = await this.getProjectRow(id);
    if (!cur) throw notFound(`Could not find project: ${id}.`);
    if (patch.domain_id !== undefined && patch.domain_id !== cur.domain_id) throw badRequest('Cannot change the domain of a project.');
    if (patch.parent_id !== undefined && patch.parent_id !== (cur.parent_id ?? cur.domain_id)) throw forbidden('Cannot change the parent of a project.');
    if (patch.is_domain === true) throw badRequest('Cannot change is_domain of a project.');
    const extra = { ...parseJson<Record<string, unknown>>(cur.extra, {}), ...extraOf(patch, PROJECT_FIELDS) };
    const next: Partial<ProjectRow> = { extra: JSON.stringify(extra) };
    if (typeof patch.name === 'string') next.name = patch.name;
    if (typeof patch.description === 'string') next.description = patch.description;
    if (typeof patch.enabled === 'boolean') next.enabled = int(patch.enabled);
    if (Array.isArray(patch.tags)) next.tags = JSON.stringify(patch.tags);
    try {
      await this.c.db.updateTable('id_projects').set(next).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Conflict occurred attempting to update project - duplicate name ${String(patch.name)}.`);
      throw e;
    }
    this.c.changed();
    return this.getProject(id);
  }
  async deleteProject(id: string): Promise<void> {
    await this.getProject(id);
    const child = await this.c.db.selectFrom('id_projects').select('id').where('parent_id', '=', id).executeTakeFirst();
    if (child) throw forbidden('Cannot delete the project since it has children.', 'ForbiddenAction');
    await this.c.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('id_assignments').where('target_id', '=', id).execute();
      await tx.deleteFrom('id_projects').where('id', '=', id).execute();
    });
    this.c.changed();
  }
}
