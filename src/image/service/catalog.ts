import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import { isUniqueViolation, int, type Database } from '../../core/db.js';
import { badRequest, conflict, notFound, tooLarge } from '../../core/errors.js';
import { uuid } from '../../core/ids.js';
import type { ImageRow, ImageStatus, ImageTables, MemberStatus, Visibility } from '../store/tables.js';
import { LIMITS, checkTag, rowToImage, type Caller, type CreateInput, type Image, type Mutable } from './model.js';

export type SortKey = 'name' | 'status' | 'container_format' | 'disk_format' | 'size' | 'id' | 'created_at' | 'updated_at';
export const SORT_KEYS: SortKey[] = ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at'];
export type FilterOp = 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte' | 'in';
/** `within`: lo <= v < hi; `outside`: the complement (value is [lo, hi]). */
export type ColumnOp = FilterOp | 'within' | 'outside';

/** One comparison on an image column (`created_at=gt:...`, `id=in:a,b`). */
export interface ColumnFilter {
  column: 'id' | 'name' | 'status' | 'disk_format' | 'container_format' | 'owner' | 'checksum' | 'os_hash_value' | 'protected' | 'os_hidden' | 'min_disk' | 'min_ram' | 'size' | 'virtual_size' | 'created_at' | 'updated_at';
  op: ColumnOp;
  value: string | number | (string | number)[];
}

export interface ImageListQuery {
  limit: number;
  marker?: string;
  sort: { key: SortKey; dir: 'asc' | 'desc' }[];
  /** Membership status that makes a shared image listed for its member (default accepted). */
  memberStatus: MemberStatus | 'all';
  /** Only this visibility ('all': every visibility, community included). */
  visibility?: Visibility | 'all';
  filters: ColumnFilter[];
  /** Every tag must be present. */
  tags: string[];
  /** Extra properties that must have exactly these values. */
  properties: Record<string, string>;
}

export interface MemberRecord {
  image_id: string;
  member_id: string;
  status: MemberStatus;
  created_at: number;
  updated_at: number;
}

type EB = ExpressionBuilder<ImageTables, 'glance_images'>;

/**
 * Sort expressions. Nullable columns are compared through COALESCE so that
 * SQLite and PostgreSQL (which disagree on where NULLs sort) order alike,
 * and the keyset condition of the marker needs no NULL special cases.
 */
const SORT_EXPR: Record<SortKey, Expression<unknown>> = {
  name: sql`coalesce(glance_images.name, '')`,
  status: sql`glance_images.status`,
  container_format: sql`coalesce(glance_images.container_format, '')`,
  disk_format: sql`coalesce(glance_images.disk_format, '')`,
  size: sql`coalesce(glance_images.size, -1)`,
  id: sql`glance_images.id`,
  created_at: sql`glance_images.created_at`,
  updated_at: sql`glance_images.updated_at`,
};
function sortValue(img: Image, key: SortKey): string | number {
  switch (key) {
    case 'name':
      return img.name ?? '';
    case 'container_format':
      return img.container_format ?? '';
    case 'disk_format':
      return img.disk_format ?? '';
    case 'size':
      return img.size ?? -1;
    default:
      return img[key];
  }
}
const SQL_OP: Record<Exclude<FilterOp, 'in'>, '=' | '<>' | '>' | '>=' | '<' | '<='> = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' };

/**
 * The image catalog: rows, tags, properties and members in the database.
 * No quota, store or policy logic lives here; `ImageService` composes them.
 */
export class ImageCatalog {
  readonly db: Kysely<ImageTables>;
  constructor(database: Database) {
    this.db = database.db as unknown as Kysely<ImageTables>;
  }

  /** Attaches tags and properties to rows (two queries for any number of rows). */
  async hydrate(rows: ImageRow[]): Promise<Image[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const [tags, props] = await Promise.all([
      this.db.selectFrom('glance_image_tags').selectAll().where('image_id', 'in', ids).execute(),
      this.db.selectFrom('glance_image_properties').selectAll().where('image_id', 'in', ids).execute(),
    ]);
    const t = new Map<string, string[]>();
    for (const r of tags) (t.get(r.image_id) ?? t.set(r.image_id, []).get(r.image_id)!).push(r.value);
    const p = new Map<string, Record<string, string>>();
    for (const r of props) (p.get(r.image_id) ?? p.set(r.image_id, {}).get(r.image_id)!)[r.name] = r.value;
    return rows.map((r) => rowToImage(r, t.get(r.id) ?? [], p.get(r.id) ?? {}));
  }

  /** The image (not deleted), or null. */
  async load(id: string): Promise<Image | null> {
    const row = await this.db.selectFrom('glance_images').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    return row ? (await this.hydrate([row]))[0]! : null;
  }

  async row(id: string): Promise<ImageRow | undefined> {
    return this.db.selectFrom('glance_images').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async memberStatus(imageId: string, projectId: string | null): Promise<MemberStatus | null> {
    if (!projectId) return null;
    const m = await this.db.selectFrom('glance_image_members').select('status').where('image_id', '=', imageId).where('member', '=', projectId).executeTakeFirst();
    return m?.status ?? null;
  }

  /**
   * Whether the caller can see the image at all: cloud admins and readers
   * see everything; others see public and community images, their own, and
   * shared images they are a member of (whatever their member status).
   */
  visible(img: Image, caller: Caller, memberStatus: MemberStatus | null): boolean {
    if (caller.seesAll) return true;
    if (img.visibility === 'public' || img.visibility === 'community') return true;
    if (caller.projectId && img.owner === caller.projectId) return true;
    return img.visibility === 'shared' && memberStatus !== null;
  }

  /** The image and the caller's membership, or 404 when it does not exist or is not visible. */
  async getVisible(caller: Caller, id: string): Promise<{ image: Image; memberStatus: MemberStatus | null }> {
    const image = await this.load(id);
    const memberStatus = image ? await this.memberStatus(id, caller.projectId) : null;
    if (!image || !this.visible(image, caller, memberStatus)) throw notFound(`No image found with ID ${id}`, 'ImageNotFound');
    return { image, memberStatus };
  }

  async create(input: CreateInput, owner: string | null): Promise<Image> {
    const now = Date.now();
    const b = input.base;
    const row: ImageRow = {
      id: input.id ?? uuid(),
      name: b.name ?? null,
      status: 'queued',
      visibility: b.visibility ?? 'shared',
      protected: int(b.protected),
      os_hidden: int(b.os_hidden),
      disk_format: b.disk_format ?? null,
      container_format: b.container_format ?? null,
      min_disk: b.min_disk ?? 0,
      min_ram: b.min_ram ?? 0,
      size: null,
      virtual_size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      owner,
      store: null,
      created_at: now,
      updated_at: now,
      deleted: 0,
      deleted_at: null,
    };
    if (Object.keys(input.properties).length > LIMITS.properties) throw tooLarge(`Maximum number of properties exceeded (limit ${LIMITS.properties}).`, 'PropertyLimitExceeded');
    if (input.tags.length > LIMITS.tags) throw tooLarge(`Maximum number of tags exceeded (limit ${LIMITS.tags}).`, 'TagLimitExceeded');
    try {
      await this.db.transaction().execute(async (tx) => {
        await tx.insertInto('glance_images').values(row).execute();
        const props = Object.entries(input.properties).map(([name, value]) => ({ image_id: row.id, name, value }));
        if (props.length) await tx.insertInto('glance_image_properties').values(props).execute();
        if (input.tags.length) await tx.insertInto('glance_image_tags').values(input.tags.map((value) => ({ image_id: row.id, value }))).execute();
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Image with identifier ${row.id} already exists!`, 'Duplicate');
      throw e;
    }
    return rowToImage(row, input.tags, input.properties);
  }

  /** Writes changed writable attributes, tags and properties in one transaction. */
  async saveMutable(img: Image, next: Mutable, changed: Set<string>): Promise<Image> {
    const now = Date.now();
    const set: Partial<ImageRow> = { updated_at: now };
    if (changed.has('name')) set.name = next.name;
    if (changed.has('visibility')) set.visibility = next.visibility;
    if (changed.has('protected')) set.protected = int(next.protected);
    if (changed.has('os_hidden')) set.os_hidden = int(next.os_hidden);
    if (changed.has('disk_format')) set.disk_format = next.disk_format;
    if (changed.has('container_format')) set.container_format = next.container_format;
    if (changed.has('min_disk')) set.min_disk = next.min_disk;
    if (changed.has('min_ram')) set.min_ram = next.min_ram;
    if (changed.has('owner')) set.owner = next.owner;
    const r = await this.db.transaction().execute(async (tx) => {
      const u = await tx.updateTable('glance_images').set(set).where('id', '=', img.id).where('deleted', '=', 0).executeTakeFirst();
      if (Number(u.numUpdatedRows) !== 1) return false;
      if (changed.has('tags')) {
        await tx.deleteFrom('glance_image_tags').where('image_id', '=', img.id).execute();
        if (next.tags.length) await tx.insertInto('glance_image_tags').values(next.tags.map((value) => ({ image_id: img.id, value }))).execute();
      }
      const propChanged = [...changed].some((k) => !(k in set) && k !== 'tags');
      if (propChanged) {
        await tx.deleteFrom('glance_image_properties').where('image_id', '=', img.id).execute();
        const props = Object.entries(next.properties).map(([name, value]) => ({ image_id: img.id, name, value }));
        if (props.length) await tx.insertInto('glance_image_properties').values(props).execute();
      }
      return true;
    });
    if (!r) throw notFound(`No image found with ID ${img.id}`, 'ImageNotFound');
    return (await this.load(img.id))!;
  }

  /**
   * Moves the image from one of `from` to `to` (with other column updates)
   * only if it is still in one of those states; false when another request
   * got there first. This is how uploads, imports and deletes serialise.
   */
  async transition(id: string, from: ImageStatus[], to: ImageStatus, set: Partial<ImageRow> = {}): Promise<boolean> {
    const u = await this.db
      .updateTable('glance_images')
      .set({ ...set, status: to, updated_at: Date.now() })
      .where('id', '=', id)
      .where('deleted', '=', 0)
      .where('status', 'in', from)
      .executeTakeFirst();
    return Number(u.numUpdatedRows) === 1;
  }

  /** Soft-deletes the row (ids are never reused); false if it was already gone. */
  async markDeleted(id: string): Promise<ImageRow | null> {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom('glance_images').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
      if (!row) return null;
      const now = Date.now();
      await tx.updateTable('glance_images').set({ deleted: 1, deleted_at: now, updated_at: now, status: 'deleted' }).where('id', '=', id).execute();
      await tx.deleteFrom('glance_image_members').where('image_id', '=', id).execute();
      return row;
    });
  }

  // -------------------------------------------------------------------------
  // Listing

  /**
   * One page of the images the caller may list, filtered and sorted in SQL
   * with keyset pagination after `marker`. `more` tells whether another
   * page exists (one extra row is fetched to know).
   */
  async list(caller: Caller, q: ImageListQuery): Promise<{ images: Image[]; more: boolean }> {
    const sort = [...q.sort];
    const defaultDir = sort.length === 1 ? sort[0]!.dir : 'desc';
    for (const key of ['created_at', 'id'] as SortKey[]) if (!sort.some((s) => s.key === key)) sort.push({ key, dir: defaultDir });

    let marker: Image | null = null;
    if (q.marker) {
      marker = await this.load(q.marker);
      const ms = marker ? await this.memberStatus(marker.id, caller.projectId) : null;
      if (!marker || !this.visible(marker, caller, ms)) throw badRequest(`Invalid marker. Image ${q.marker} could not be found.`);
    }
    if (q.limit === 0) return { images: [], more: false };

    const project = caller.projectId;
    let query = this.db.selectFrom('glance_images').selectAll('glance_images').where('glance_images.deleted', '=', 0);
    if (!caller.seesAll) {
      query = query.where((eb) => {
        const alts: Expression<SqlBool>[] = [eb('glance_images.visibility', 'in', ['public', 'community'])];
        if (project) {
          alts.push(eb('glance_images.owner', '=', project));
          let members = eb.selectFrom('glance_image_members').select('glance_image_members.image_id').where('glance_image_members.member', '=', project);
          if (q.memberStatus !== 'all') members = members.where('glance_image_members.status', '=', q.memberStatus);
          alts.push(eb.and([eb('glance_images.visibility', '=', 'shared'), eb('glance_images.id', 'in', members)]));
        }
        return eb.or(alts);
      });
    }
    if (q.visibility && q.visibility !== 'all') query = query.where('glance_images.visibility', '=', q.visibility);
    else if (!q.visibility) {
      // Community images are listed only when asked for, or to their owner.
      query = query.where((eb) => (project ? eb.or([eb('glance_images.visibility', '<>', 'community'), eb('glance_images.owner', '=', project)]) : eb('glance_images.visibility', '<>', 'community')));
    }
    for (const f of q.filters) query = query.where((eb) => this.filterExpr(eb, f));
    for (const tag of q.tags) query = query.where('glance_images.id', 'in', (eb) => eb.selectFrom('glance_image_tags').select('glance_image_tags.image_id').where('glance_image_tags.value', '=', tag));
    for (const [name, value] of Object.entries(q.properties))
      query = query.where('glance_images.id', 'in', (eb) =>
        eb.selectFrom('glance_image_properties').select('glance_image_properties.image_id').where('glance_image_properties.name', '=', name).where('glance_image_properties.value', '=', value),
      );
    if (marker) {
      const m = marker;
      query = query.where((eb) => {
        const ors: Expression<SqlBool>[] = [];
        for (let i = 0; i < sort.length; i++) {
          const ands: Expression<SqlBool>[] = [];
          for (let j = 0; j < i; j++) ands.push(eb(SORT_EXPR[sort[j]!.key] as never, '=', sortValue(m, sort[j]!.key) as never));
          ands.push(eb(SORT_EXPR[sort[i]!.key] as never, sort[i]!.dir === 'asc' ? '>' : '<', sortValue(m, sort[i]!.key) as never));
          ors.push(eb.and(ands));
        }
        return eb.or(ors);
      });
    }
    for (const s of sort) query = query.orderBy(SORT_EXPR[s.key] as never, s.dir);
    const rows = await query.limit(q.limit + 1).execute();
    const more = rows.length > q.limit;
    return { images: await this.hydrate(rows.slice(0, q.limit)), more };
  }

  private filterExpr(eb: EB, f: ColumnFilter): Expression<SqlBool> {
    const col = `glance_images.${f.column}` as const;
    if (f.op === 'in') return eb(col, 'in', f.value as never);
    if (f.op === 'within' || f.op === 'outside') {
      const [lo, hi] = f.value as number[];
      return f.op === 'within' ? eb.and([eb(col, '>=', lo as never), eb(col, '<', hi as never)]) : eb.or([eb(col, '<', lo as never), eb(col, '>=', hi as never)]);
    }
    return eb(col, SQL_OP[f.op], f.value as never);
  }

  // -------------------------------------------------------------------------
  // Tags

  async addTag(id: string, tag: string): Promise<void> {
    checkTag(tag);
    await this.db.transaction().execute(async (tx) => {
      const exists = await tx.selectFrom('glance_image_tags').select('value').where('image_id', '=', id).where('value', '=', tag).executeTakeFirst();
      if (exists) return;
      const n = await tx.selectFrom('glance_image_tags').select((e) => e.fn.countAll<number>().as('n')).where('image_id', '=', id).executeTakeFirst();
      if (Number(n?.n ?? 0) >= LIMITS.tags) throw tooLarge(`Maximum number of tags exceeded (limit ${LIMITS.tags}).`, 'TagLimitExceeded');
      await tx.insertInto('glance_image_tags').values({ image_id: id, value: tag }).execute();
      await tx.updateTable('glance_images').set({ updated_at: Date.now() }).where('id', '=', id).execute();
    });
  }

  async removeTag(id: string, tag: string): Promise<void> {
    const r = await this.db.deleteFrom('glance_image_tags').where('image_id', '=', id).where('value', '=', tag).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw notFound(`Tag ${tag} not found`, 'TagNotFound');
    await this.db.updateTable('glance_images').set({ updated_at: Date.now() }).where('id', '=', id).execute();
  }

  // -------------------------------------------------------------------------
  // Members

  private static member(r: ImageTables['glance_image_members']): MemberRecord {
    return { image_id: r.image_id, member_id: r.member, status: r.status, created_at: Number(r.created_at), updated_at: Number(r.updated_at) };
  }

  async members(imageId: string, onlyMember?: string): Promise<MemberRecord[]> {
    let q = this.db.selectFrom('glance_image_members').selectAll().where('image_id', '=', imageId);
    if (onlyMember !== undefined) q = q.where('member', '=', onlyMember);
    return (await q.orderBy('created_at').orderBy('member').execute()).map(ImageCatalog.member);
  }

  async member(imageId: string, memberId: string): Promise<MemberRecord | null> {
    const r = await this.db.selectFrom('glance_image_members').selectAll().where('image_id', '=', imageId).where('member', '=', memberId).executeTakeFirst();
    return r ? ImageCatalog.member(r) : null;
  }

  async addMember(imageId: string, memberId: string): Promise<MemberRecord> {
    const now = Date.now();
    return this.db.transaction().execute(async (tx) => {
      const exists = await tx.selectFrom('glance_image_members').select('member').where('image_id', '=', imageId).where('member', '=', memberId).executeTakeFirst();
      if (exists) throw conflict(`Member ${memberId} already exists for image ${imageId}`, 'Duplicate');
      const n = await tx.selectFrom('glance_image_members').select((e) => e.fn.countAll<number>().as('n')).where('image_id', '=', imageId).executeTakeFirst();
      if (Number(n?.n ?? 0) >= LIMITS.members) throw tooLarge(`Maximum number of image members exceeded (limit ${LIMITS.members}).`, 'MemberLimitExceeded');
      const row = { image_id: imageId, member: memberId, status: 'pending' as const, created_at: now, updated_at: now };
      try {
        await tx.insertInto('glance_image_members').values(row).execute();
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict(`Member ${memberId} already exists for image ${imageId}`, 'Duplicate');
        throw e;
      }
      return ImageCatalog.member(row);
    });
  }

  async setMemberStatus(imageId: string, memberId: string, status: MemberStatus): Promise<MemberRecord> {
    const now = Date.now();
    const u = await this.db.updateTable('glance_image_members').set({ status, updated_at: now }).where('image_id', '=', imageId).where('member', '=', memberId).executeTakeFirst();
    if (Number(u.numUpdatedRows) !== 1) throw notFound(`${memberId} is not a member of image ${imageId}`, 'MemberNotFound');
    return (await this.member(imageId, memberId))!;
  }

  async removeMember(imageId: string, memberId: string): Promise<void> {
    const r = await this.db.deleteFrom('glance_image_members').where('image_id', '=', imageId).where('member', '=', memberId).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw notFound(`${memberId} is not a member of image ${imageId}`, 'MemberNotFound');
  }

  // -------------------------------------------------------------------------
  // Accounting

  /** True image count and stored bytes per owner, for re-basing quota usage. */
  async usageByOwner(): Promise<Map<string, { count: number; bytes: number }>> {
    const rows = await this.db
      .selectFrom('glance_images')
      .select((e) => ['owner', e.fn.countAll<number>().as('n'), e.fn.sum<number>(sql`coalesce(size, 0)`).as('bytes')])
      .where('deleted', '=', 0)
      .where('owner', 'is not', null)
      .groupBy('owner')
      .execute();
    const out = new Map<string, { count: number; bytes: number }>();
    for (const r of rows) out.set(r.owner!, { count: Number(r.n), bytes: Number(r.bytes ?? 0) });
    return out;
  }
}
