import { isoSeconds } from '../../core/time.js';
import type { MemberRecord } from '../service/catalog.js';
import type { Image } from '../service/model.js';
import type { Task } from '../service/tasks.js';

/**
 * Glance's JSON representations. Links (`self`, `file`, `schema`) are paths
 * relative to the image endpoint, as Glance renders them. Base attributes
 * are always present (null when unset); extra properties only when set.
 */
export function imageView(img: Image): Record<string, unknown> {
  const v: Record<string, unknown> = {
    id: img.id,
    name: img.name,
    status: img.status,
    visibility: img.visibility,
    protected: img.protected,
    os_hidden: img.os_hidden,
    checksum: img.checksum,
    os_hash_algo: img.os_hash_algo,
    os_hash_value: img.os_hash_value,
    owner: img.owner,
    size: img.size,
    virtual_size: img.virtual_size,
    min_disk: img.min_disk,
    min_ram: img.min_ram,
    container_format: img.container_format,
    disk_format: img.disk_format,
    created_at: isoSeconds(img.created_at),
    updated_at: isoSeconds(img.updated_at),
    tags: img.tags,
    self: `/v2/images/${img.id}`,
    file: `/v2/images/${img.id}/file`,
    schema: '/v2/schemas/image',
  };
  for (const [k, val] of Object.entries(img.properties)) if (!(k in v)) v[k] = val;
  return v;
}

export function memberView(m: MemberRecord): Record<string, unknown> {
  return {
    image_id: m.image_id,
    member_id: m.member_id,
    status: m.status,
    created_at: isoSeconds(m.created_at),
    updated_at: isoSeconds(m.updated_at),
    schema: '/v2/schemas/member',
  };
}

/** A task in full (`GET /v2/tasks/{id}`). */
export function taskView(t: Task): Record<string, unknown> {
  return {
    id: t.id,
    type: t.type,
    status: t.status,
    input: t.input,
    result: t.result,
    owner: t.owner,
    message: t.message,
    image_id: t.image_id,
    request_id: t.request_id,
    user_id: t.user_id,
    expires_at: t.expires_at === null ? null : isoSeconds(t.expires_at),
    created_at: isoSeconds(t.created_at),
    updated_at: isoSeconds(t.updated_at),
    self: `/v2/tasks/${t.id}`,
    schema: '/v2/schemas/task',
  };
}

/** A task in a list (`GET /v2/tasks`): Glance leaves out input, result and message. */
export function taskSummaryView(t: Task): Record<string, unknown> {
  const { input: _i, result: _r, message: _m, ...rest } = taskView(t);
  return rest;
}
