import type { NetworkService } from './service.js';
import type { NetDb, Tx } from './context.js';
import { badRequest, nerr } from './errors.js';
import type { TaggedResource } from './views.js';

/** Neutron's tag limit per resource (MAX_TAGS). */
export const MAX_TAGS = 50;

export const checkTag = (tag: string): string => {
  if (tag.length === 0 || tag.length > 255 || tag.includes(',') || tag.includes('/')) throw badRequest(`Invalid input for tags. Reason: '${tag}' is not a valid tag.`);
  return tag;
};

/** Tags on any standard resource (`/v2.0/{resources}/{id}/tags`). */
export class Tags {
  constructor(private readonly svc: NetworkService) {}
  private get db() {
    return this.svc.ctx.db;
  }

  async list(type: TaggedResource, id: string): Promise<string[]> {
    const rows = await this.db.selectFrom('neutron_tags').select('tag').where('resource_type', '=', type).where('resource_id', '=', id).orderBy('tag').execute();
    return rows.map((r) => r.tag);
  }

  async setTx(tx: Tx, type: TaggedResource, id: string, tags: string[]): Promise<void> {
    const unique = [...new Set(tags.map(checkTag))];
    if (unique.length > MAX_TAGS) throw badRequest(`Invalid input for tags. Reason: the number of tags exceeds ${MAX_TAGS}.`);
    await (tx as NetDb).deleteFrom('neutron_tags').where('resource_type', '=', type).where('resource_id', '=', id).execute();
    for (const tag of unique) await (tx as NetDb).insertInto('neutron_tags').values({ resource_type: type, resource_id: id, tag }).execute();
  }

  async replace(type: TaggedResource, id: string, tags: unknown): Promise<string[]> {
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw badRequest("Invalid input for tags. Reason: 'tags' must be a list of strings.");
    await this.svc.ctx.tx((tx) => this.setTx(tx, type, id, tags as string[]));
    return this.list(type, id);
  }

  async add(type: TaggedResource, id: string, tag: string): Promise<void> {
    checkTag(tag);
    await this.svc.ctx.tx(async (tx) => {
      const has = await tx.selectFrom('neutron_tags').select('tag').where('resource_type', '=', type).where('resource_id', '=', id).where('tag', '=', tag).executeTakeFirst();
      if (has) return;
      const n = await tx.selectFrom('neutron_tags').select((eb) => eb.fn.countAll<number>().as('n')).where('resource_type', '=', type).where('resource_id', '=', id).executeTakeFirst();
      if (Number(n?.n ?? 0) >= MAX_TAGS) throw badRequest(`Invalid input for tags. Reason: the number of tags exceeds ${MAX_TAGS}.`);
      await tx.insertInto('neutron_tags').values({ resource_type: type, resource_id: id, tag }).execute();
    });
  }

  async has(type: TaggedResource, id: string, tag: string): Promise<void> {
    const row = await this.db.selectFrom('neutron_tags').select('tag').where('resource_type', '=', type).where('resource_id', '=', id).where('tag', '=', tag).executeTakeFirst();
    if (!row) throw nerr(404, 'TagNotFound', `Tag ${tag} could not be found.`);
  }

  async remove(type: TaggedResource, id: string, tag: string): Promise<void> {
    const r = await this.db.deleteFrom('neutron_tags').where('resource_type', '=', type).where('resource_id', '=', id).where('tag', '=', tag).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw nerr(404, 'TagNotFound', `Tag ${tag} could not be found.`);
  }

  async clear(type: TaggedResource, id: string): Promise<void> {
    await this.db.deleteFrom('neutron_tags').where('resource_type', '=', type).where('resource_id', '=', id).execute();
  }
}
