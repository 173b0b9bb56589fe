import { IdentityCore, parseJson } from './core.js';
import { badRequest, conflict, notFound } from '../../core/errors.js';
import { hexId } from '../../core/ids.js';
import { bool, int } from '../../core/db.js';
import type { EndpointRow, RegionRow, ServiceRow } from '../store/tables.js';

export interface Region { id: string; description: string; parent_region_id: string | null; [k: string]: unknown }
export interface Service { id: string; type: string; name: string; description: string; enabled: boolean; [k: string]: unknown }
export interface Endpoint { id: string; service_id: string; interface: string; url: string; region: string | null; region_id: string | null; enabled: boolean; [k: string]: unknown }
export interface CatalogEntry {
  id: string; type: string; name: string;
  endpoints: { id: string; interface: string; region: string | null; region_id: string | null; url: string }[];
}

const INTERFACES = ['public', 'internal', 'admin'];
const regionView = (r: RegionRow): Region => ({ ...parseJson<Record<string, unknown>>(r.extra, {}), id: r.id, description: r.description, parent_region_id: r.parent_region_id });
const serviceView = (r: ServiceRow): Service => ({ ...parseJson<Record<string, unknown>>(r.extra, {}), id: r.id, type: r.type, name: r.name, description: r.description, enabled: bool(r.enabled) });
const endpointView = (r: EndpointRow): Endpoint => ({
  ...parseJson<Record<string, unknown>>(r.extra, {}), id: r.id, service_id: r.service_id, interface: r.interface, url: r.url, region: r.region_id, region_id: r.region_id, enabled: bool(r.enabled),
});

/** Regions, services and endpoints, and the per-token catalog. */
export class CatalogService {
  private cache: { gen: number; entries: CatalogEntry[] } | null = null;
  constructor(private readonly c: IdentityCore) {}

  // ---- regions ----
  async getRegion(id: string): Promise<Region> {
    const r = await this.c.db.selectFrom('id_regions').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`Could not find region: ${id}.`);
    return regionView(r);
  }
  async listRegions(f: { parent_region_id?: string }): Promise<Region[]> {
    let q = this.c.db.selectFrom('id_regions').selectAll().orderBy('id');
    if (f.parent_region_id !== undefined) q = q.where('parent_region_id', '=', f.parent_region_id);
    return (await q.execute()).map(regionView);
  }
  async createRegion(input: { id?: string; description?: string; parent_region_id?: string | null; [k: string]: unknown }): Promise<Region> {
    const id = input.id ?? hexId();
    if (await this.c.db.selectFrom('id_regions').select('id').where('id', '=', id).executeTakeFirst()) throw conflict(`Duplicate ID, ${id}.`);
    if (input.parent_region_id) await this.getRegion(input.parent_region_id).catch(() => { throw badRequest(`Could not find parent region: ${input.parent_region_id}.`); });
    const { id: _i, description, parent_region_id, ...extra } = input;
    const row: RegionRow = { id, description: description ?? '', parent_region_id: parent_region_id ?? null, extra: JSON.stringify(extra) };
    await this.c.db.insertInto('id_regions').values(row).execute();
    this.c.changed();
    return regionView(row);
  }
  async updateRegion(id: string, patch: Record<string, unknown>): Promise<Region> {
    const cur = await this.getRegion(id);
    if (patch.parent_region_id === id) throw badRequest('A region cannot be its own parent.');
    const { id: _i, description, parent_region_id, ...extra } = patch;
    const next: Partial<RegionRow> = { extra: JSON.stringify({ ...Object.fromEntries(Object.entries(cur).filter(([k]) => !['id', 'description', 'parent_region_id'].includes(k))), ...extra }) };
    if (typeof description === 'string') next.description = description;
    if (parent_region_id !== undefined) next.parent_region_id = (parent_region_id as string | null) ?? null;
    await this.c.db.updateTable('id_regions').set(next).where('id', '=', id).execute();
    this.c.changed();
    return this.getRegion(id);
  }
  async deleteRegion(id: string): Promise<void> {
    await this.getRegion(id);
    const child = await this.c.db.selectFrom('id_regions').select('id').where('parent_region_id', '=', id).executeTakeFirst();
    if (child) throw conflict(`Cannot delete region ${id}: it has child regions.`);
    const ep = await this.c.db.selectFrom('id_endpoints').select('id').where('region_id', '=', id).executeTakeFirst();
    if (ep) throw conflict(`Cannot delete region ${id}: endpoints still refer to it.`);
    await this.c.db.deleteFrom('id_regions').where('id', '=', id).execute();
    this.c.changed();
  }

  // ---- services ----
  async getService(id: string): Promise<Service> {
    const r = await this.c.db.selectFrom('id_services').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`Could not find service: ${id}.`);
    return serviceView(r);
  }
  async listServices(f: { type?: string; name?: string }): Promise<Service[]> {
    let q = this.c.db.selectFrom('id_services').selectAll().orderBy('type');
    if (f.type !== undefined) q = q.where('type', '=', f.type);
    if (f.name !== undefined) q = q.where('name', '=', f.name);
    return (await q.execute()).map(serviceView);
  }
  async createService(input: { type: string; name?: string; description?: string; enabled?: boolean; [k: string]: unknown }): Promise<Service> {
    const { type, name, description, enabled, id: _id, ...extra } = input;
    const row: ServiceRow = { id: hexId(), type, name: name ?? '', description: description ?? '', enabled: int(enabled ?? true), extra: JSON.stringify(extra) };
    await this.c.db.insertInto('id_services').values(row).execute();
    this.c.changed();
    return serviceView(row);
  }
  async updateService(id: string, patch: Record<string, unknown>): Promise<Service> {
    await this.getService(id);
    const next: Partial<ServiceRow> = {};
    if (typeof patch.type === 'string') next.type = patch.type;
    if (typeof patch.name === 'string') next.name = patch.name;
    if (typeof patch.description === 'string') next.description = patch.description;
    if (typeof patch.enabled === 'boolean') next.enabled = int(patch.enabled);
    if (Object.keys(next).length) await this.c.db.updateTable('id_services').set(next).where('id', '=', id).execute();
    this.c.changed();
    return this.getService(id);
  }
  async deleteService(id: string): Promise<void> {
    await this.getService(id);
    await this.c.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('id_endpoints').where('service_id', '=', id).execute();
      await tx.deleteFrom('id_services').where('id', '=', id).execute();
    });
    this.c.changed();
  }

  // ---- endpoints ----
  async getEndpoint(id: string): Promise<Endpoint> {
    const r = await this.c.db.selectFrom('id_endpoints').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw notFound(`Could not find endpoint: ${id}.`);
    return endpointView(r);
  }
  async listEndpoints(f: { interface?: string; service_id?: string; region_id?: string }): Promise<Endpoint[]> {
    let q = this.c.db.selectFrom('id_endpoints').selectAll().orderBy('service_id');
    if (f.interface !== undefined) q = q.where('interface', '=', f.interface);
    if (f.service_id !== undefined) q = q.where('service_id', '=', f.service_id);
    if (f.region_id !== undefined) q = q.where('region_id', '=', f.region_id);
    return (await q.execute()).map(endpointView);
  }
  async createEndpoint(input: { service_id: string; interface: string; url: string; region_id?: string | null; region?: string | null; enabled?: boolean; [k: string]: unknown }): Promise<Endpoint> {
    if (!INTERFACES.includes(input.interface)) throw badRequest(`Invalid input for field 'interface': '${input.interface}' is not one of ${INTERFACES.join(', ')}`);
    await this.getService(input.service_id).catch(() => { throw badRequest(`Could not find service: ${input.service_id}.`); });
    const regionId = input.region_id ?? input.region ?? null;
    if (regionId && !(await this.c.db.selectFrom('id_regions').select('id').where('id', '=', regionId).executeTakeFirst())) {
      await this.createRegion({ id: regionId });
    }
    const { service_id, interface: iface, url, region_id: _r, region: _r2, enabled, id: _id, ...extra } = input;
    const row: EndpointRow = { id: hexId(), service_id, interface: iface, url, region_id: regionId, enabled: int(enabled ?? true), extra: JSON.stringify(extra) };
    await this.c.db.insertInto('id_endpoints').values(row).execute();
    this.c.changed();
    return endpointView(row);
  }
  async updateEndpoint(id: string, patch: Record<string, unknown>): Promise<Endpoint> {
    await this.getEndpoint(id);
    const next: Partial<EndpointRow> = {};
    if (typeof patch.url === 'string') next.url = patch.url;
    if (typeof patch.interface === 'string') {
      if (!INTERFACES.includes(patch.interface)) throw badRequest(`Invalid input for field 'interface'.`);
      next.interface = patch.interface;
    }
    if (typeof patch.service_id === 'string') { await this.getService(patch.service_id); next.service_id = patch.service_id; }
    if (patch.region_id !== undefined || patch.region !== undefined) next.region_id = ((patch.region_id ?? patch.region) as string | null) ?? null;
    if (typeof patch.enabled === 'boolean') next.enabled = int(patch.enabled);
    if (Object.keys(next).length) await this.c.db.updateTable('id_endpoints').set(next).where('id', '=', id).execute();
    this.c.changed();
    return this.getEndpoint(id);
  }
  async deleteEndpoint(id: string): Promise<void> {
    await this.getEndpoint(id);
    await this.c.db.deleteFrom('id_endpoints').where('id', '=', id).execute();
    this.c.changed();
  }

  /**
   * Registers (or corrects) a service and its three endpoints at start-up, so
   * the catalog always tells the truth about where each Stratus API is served.
   */
  async register(type: string, name: string, url: string, region: string): Promise<void> {
    let svc = (await this.listServices({ type })).find((s) => s.name === name);
    svc ??= await this.createService({ type, name, description: `Stratus ${type} service` });
    if (!(await this.c.db.selectFrom('id_regions').select('id').where('id', '=', region).executeTakeFirst())) await this.createRegion({ id: region });
    const eps = await this.listEndpoints({ service_id: svc.id });
    for (const iface of INTERFACES) {
      const ep = eps.find((e) => e.interface === iface && e.region_id === region);
      if (!ep) await this.createEndpoint({ service_id: svc.id, interface: iface, url, region_id: region });
      else if (ep.url !== url) await this.updateEndpoint(ep.id, { url });
    }
  }

  /** The catalog as it appears in a token, with `$(project_id)s` substituted. */
  async catalog(projectId: string | null): Promise<CatalogEntry[]> {
    if (this.cache?.gen !== this.c.generation) {
      const svcs = (await this.listServices({})).filter((s) => s.enabled);
      const eps = (await this.listEndpoints({})).filter((e) => e.enabled);
      this.cache = {
        gen: this.c.generation,
        entries: svcs.map((s) => ({
          id: s.id, type: s.type, name: s.name,
          endpoints: eps.filter((e) => e.service_id === s.id).map((e) => ({ id: e.id, interface: e.interface, region: e.region_id, region_id: e.region_id, url: e.url })),
        })),
      };
    }
    const sub = (u: string) => u.replace(/\$\((project_id|tenant_id)\)s|%\((project_id|tenant_id)\)s/g, projectId ?? '');
    return this.cache.entries
      .map((s) => ({ ...s, endpoints: s.endpoints.filter((e) => projectId || !/\((project_id|tenant_id)\)s/.test(e.url)).map((e) => ({ ...e, url: sub(e.url) })) }))
      .filter((s) => s.endpoints.length > 0);
  }
}
