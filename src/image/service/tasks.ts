import type { Kysely } from 'kysely';
import type { Database } from '../../core/db.js';
import { badRequest, notFound } from '../../core/errors.js';
import { uuid } from '../../core/ids.js';
import type { ImageTables, TaskStatus } from '../store/tables.js';

/** Finished tasks are kept this long (Glance's task_time_to_live, 48 h). */
export const TASK_TTL_MS = 48 * 3600 * 1000;

export interface Task {
  id: string;
  type: string;
  status: TaskStatus;
  owner: string | null;
  image_id: string | null;
  request_id: string | null;
  user_id: string | null;
  input: Record<string, unknown>;
  result: Record<string, unknown> | null;
  message: string;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
}

type TaskRow = ImageTables['glance_tasks'];
const toTask = (r: TaskRow): Task => ({
  ...r,
  input: JSON.parse(r.input) as Record<string, unknown>,
  result: r.result ? (JSON.parse(r.result) as Record<string, unknown>) : null,
  created_at: Number(r.created_at),
  updated_at: Number(r.updated_at),
  expires_at: r.expires_at === null ? null : Number(r.expires_at),
});

export interface TaskListQuery {
  limit: number;
  marker?: string;
  sortKey: 'created_at' | 'updated_at' | 'id' | 'status' | 'type';
  sortDir: 'asc' | 'desc';
  type?: string;
  status?: string;
  /** Restrict to one owner (null: every owner). */
  owner: string | null;
}

/** Glance tasks (`api_image_import`): the record of asynchronous image work. */
export class TaskService {
  private readonly db: Kysely<ImageTables>;
  constructor(database: Database) {
    this.db = database.db as unknown as Kysely<ImageTables>;
  }

  async create(t: { type: string; owner: string | null; imageId: string | null; requestId: string | null; userId: string | null; input: Record<string, unknown> }): Promise<Task> {
    const now = Date.now();
    const row: TaskRow = {
      id: uuid(), type: t.type, status: 'pending', owner: t.owner, image_id: t.imageId, request_id: t.requestId, user_id: t.userId,
      input: JSON.stringify(t.input), result: null, message: '', created_at: now, updated_at: now, expires_at: null,
    };
    await this.db.insertInto('glance_tasks').values(row).execute();
    return toTask(row);
  }

  async update(id: string, status: TaskStatus, fields: { message?: string; result?: Record<string, unknown> } = {}): Promise<void> {
    const now = Date.now();
    const done = status === 'success' || status === 'failure';
    await this.db
      .updateTable('glance_tasks')
      .set({
        status, updated_at: now,
        ...(fields.message !== undefined ? { message: fields.message.slice(0, 2048) } : {}),
        ...(fields.result !== undefined ? { result: JSON.stringify(fields.result) } : {}),
        ...(done ? { expires_at: now + TASK_TTL_MS } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  async get(id: string): Promise<Task | null> {
    const r = await this.db.selectFrom('glance_tasks').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toTask(r) : null;
  }

  async forImage(imageId: string): Promise<Task[]> {
    return (await this.db.selectFrom('glance_tasks').selectAll().where('image_id', '=', imageId).orderBy('created_at', 'desc').orderBy('id').execute()).map(toTask);
  }

  /** Tasks not finished (for crash recovery). */
  async unfinished(): Promise<Task[]> {
    return (await this.db.selectFrom('glance_tasks').selectAll().where('status', 'in', ['pending', 'processing']).execute()).map(toTask);
  }

  async list(q: TaskListQuery): Promise<{ tasks: Task[]; more: boolean }> {
    let query = this.db.selectFrom('glance_tasks').selectAll();
    if (q.owner !== null) query = query.where('owner', '=', q.owner);
    if (q.type) query = query.where('type', '=', q.type);
    if (q.status) query = query.where('status', '=', q.status as TaskStatus);
    if (q.marker) {
      const m = await this.db.selectFrom('glance_tasks').selectAll().where('id', '=', q.marker).executeTakeFirst();
      if (!m || (q.owner !== null && m.owner !== q.owner)) throw badRequest(`Invalid marker. Task ${q.marker} could not be found.`);
      const op = q.sortDir === 'asc' ? '>' : '<';
      const mv = m[q.sortKey];
      query = query.where((eb) => eb.or([eb(q.sortKey, op, mv as never), eb.and([eb(q.sortKey, '=', mv as never), eb('id', op, m.id)])]));
    }
    const rows = await query.orderBy(q.sortKey, q.sortDir).orderBy('id', q.sortDir).limit(q.limit + 1).execute();
    return { tasks: rows.slice(0, q.limit).map(toTask), more: rows.length > q.limit };
  }

  /** Deletes expired finished tasks. */
  async purge(): Promise<void> {
    await this.db.deleteFrom('glance_tasks').where('expires_at', 'is not', null).where('expires_at', '<', Date.now()).execute();
  }
}

export const taskNotFound = (id: string) => notFound(`Task with the given id ${id} was not found`, 'TaskNotFound');
