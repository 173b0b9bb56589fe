import type { Kysely } from 'kysely';
import { badRequest, conflict, notFound } from '../../core/errors.js';
import { uuid } from '../../core/ids.js';
import { bool, int, isUniqueViolation } from '../../core/db.js';
import type { ComputeTables, FlavorRow } from '../store/tables.js';

export interface Flavor {
  id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number; rxtx_factor: number;
  is_public: boolean; disabled: boolean; description: string | null; extra_specs: Record<string, string>;
}
export const flavorView = (r: FlavorRow): Flavor => ({
  id: r.id, name: r.name, vcpus: r.vcpus, ram: r.ram, disk: r.disk, ephemeral: r.ephemeral, swap: r.swap, rxtx_factor: Number(r.rxtx_factor),
  is_public: bool(r.is_public), disabled: bool(r.disabled), description: r.description, extra_specs: JSON.parse(r.extra_specs) as Record<string, string>,
});

/** The seeded flavors (ids as DevStack's m1.* so scripts carry over). */
export const SEED_FLAVORS = [
  { id: '42', name: 'm1.nano', vcpus: 1, ram: 128, disk: 1 },
  { id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1 },
  { id: '2', name: 'm1.small', vcpus: 1, ram: 2048, disk: 20 },
  { id: '3', name: 'm1.medium', vcpus: 2, ram: 4096, disk: 40 },
];

export class FlavorService {
  constructor(private readonly db: Kysely<ComputeTables>) {}

  async getRow(id: string): Promise<FlavorRow | undefined> {
    return this.db.selectFrom('nova_flavors').selectAll().where('id', '=', id).executeTakeFirst();
  }
  /** A flavor the caller may use: public, or private with access for the project, or any for admins. */
  async getFor(id: string, projectId: string | null, admin: boolean): Promise<Flavor> {
    const r = await this.getRow(id);
    if (!r || (!bool(r.is_public) && !admin && !(projectId && (await this.hasAccess(id, projectId))))) throw notFound(`Flavor ${id} could not be found.`);
    return flavorView(r);
  }
  async hasAccess(flavorId: string, projectId: string): Promise<boolean> {
    return !!(await this.db.selectFrom('nova_flavor_access').select('project_id').where('flavor_id', '=', flavorId).where('project_id', '=', projectId).executeTakeFirst());
  }
  async list(f: { projectId: string | null; admin: boolean; isPublic?: boolean | null; minRam?: number; minDisk?: number }): Promise<Flavor[]> {
    let q = this.db.selectFrom('nova_flavors').selectAll().where('disabled', '=', 0);
    if (f.minRam !== undefined) q = q.where('ram', '>=', f.minRam);
    if (f.minDisk !== undefined) q = q.where('disk', '>=', f.minDisk);
    const rows = await q.execute();
    const access = f.projectId ? (await this.db.selectFrom('nova_flavor_access').select('flavor_id').where('project_id', '=', f.projectId).execute()).map((a) => a.flavor_id) : [];
    let out = rows.map(flavorView);
    if (f.isPublic === true || f.isPublic === undefined) out = out.filter((x) => x.is_public || (f.isPublic === undefined && access.includes(x.id)));
    else if (f.isPublic === false) out = out.filter((x) => !x.is_public && (f.admin || access.includes(x.id)));
    // Nova sorts by flavorid by default; sort numerically where ids are numbers.
    return out.sort((a, b) => (Number(a.id) - Number(b.id)) || a.id.localeCompare(b.id));
  }
  async create(input: { id?: string | null; name: string; vcpus: number; ram: number; disk: number; ephemeral?: number; swap?: number; rxtx_factor?: number; is_public?: boolean; description?: string | null }): Promise<Flavor> {
    const row: FlavorRow = {
      id: input.id && input.id !== 'auto' ? input.id : uuid(), name: input.name.trim(), vcpus: input.vcpus, ram: input.ram, disk: input.disk,
      ephemeral: input.ephemeral ?? 0, swap: input.swap ?? 0, rxtx_factor: input.rxtx_factor ?? 1, is_public: int(input.is_public ?? true), disabled: 0,
      description: input.description ?? null, extra_specs: '{}', created_at: Date.now(),
    };
    if (!row.name) throw badRequest('Flavor name must not be empty.');
    try {
      await this.db.insertInto('nova_flavors').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Flavor with name ${row.name} already exists.`);
      throw e;
    }
    return flavorView(row);
  }
  async delete(id: string): Promise<void> {
    if (!(await this.getRow(id))) throw notFound(`Flavor ${id} could not be found.`);
    await this.db.deleteFrom('nova_flavors').where('id', '=', id).execute();
  }
  async setDescription(id: string, description: string | null): Promise<Flavor> {
    if (!(await this.getRow(id))) throw notFound(`Flavor ${id} could not be found.`);
    await this.db.updateTable('nova_flavors').set({ description }).where('id', '=', id).execute();
    return flavorView((await this.getRow(id))!);
  }
  async setExtraSpecs(id: string, specs: Record<string, string>, replace = false): Promise<Record<string, string>> {
    const r = await this.getRow(id);
    if (!r) throw notFound(`Flavor ${id} could not be found.`);
    const next = replace ? specs : { ...(JSON.parse(r.extra_specs) as Record<string, string>), ...specs };
    await this.db.updateTable('nova_flavors').set({ extra_specs: JSON.stringify(next) }).where('id', '=', id).execute();
    return next;
  }
  async deleteExtraSpec(id: string, key: string): Promise<void> {
    const r = await this.getRow(id);
    if (!r) throw notFound(`Flavor ${id} could not be found.`);
    const specs = JSON.parse(r.extra_specs) as Record<string, string>;
    if (!(key in specs)) throw notFound(`Flavor ${id} has no extra specs with key ${key}.`);
    delete specs[key];
    await this.db.updateTable('nova_flavors').set({ extra_specs: JSON.stringify(specs) }).where('id', '=', id).execute();
  }
  async access(id: string): Promise<string[]> {
    const r = await this.getRow(id);
    if (!r) throw notFound(`Flavor ${id} could not be found.`);
    if (bool(r.is_public)) throw notFound('Access list not available for public flavors.');
    return (await this.db.selectFrom('nova_flavor_access').select('project_id').where('flavor_id', '=', id).execute()).map((x) => x.project_id);
  }
  async addAccess(id: string, projectId: string): Promise<string[]> {
    const r = await this.getRow(id);
    if (!r) throw notFound(`Flavor ${id} could not be found.`);
    if (bool(r.is_public)) throw conflict('Can not add access to a public flavor.');
    if (await this.hasAccess(id, projectId)) throw conflict(`Flavor access already exists for flavor ${id} and project ${projectId} combination.`);
    await this.db.insertInto('nova_flavor_access').values({ flavor_id: id, project_id: projectId }).execute();
    return this.access(id);
  }
  async removeAccess(id: string, projectId: string): Promise<string[]> {
    if (!(await this.hasAccess(id, projectId))) throw notFound(`Flavor access not found for ${id} / ${projectId} combination.`);
    await this.db.deleteFrom('nova_flavor_access').where('flavor_id', '=', id).where('project_id', '=', projectId).execute();
    return this.access(id);
  }
  async seed(): Promise<void> {
    for (const f of SEED_FLAVORS) if (!(await this.getRow(f.id))) await this.create(f).catch(() => undefined);
  }
}
