import { badRequest, forbidden } from '../../core/errors.js';
import { bool } from '../../core/db.js';
import type { ImageRow, ImageStatus, MemberStatus, Visibility } from '../store/tables.js';

/** The formats Glance accepts by default (`disk_formats`, `container_formats`). */
export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso'] as const;
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'] as const;
export const VISIBILITIES: Visibility[] = ['public', 'private', 'shared', 'community'];
export const MEMBER_STATUSES: MemberStatus[] = ['pending', 'accepted', 'rejected'];
export const IMAGE_STATUSES: ImageStatus[] = ['queued', 'saving', 'active', 'killed', 'deleted', 'pending_delete', 'deactivated', 'uploading', 'importing'];

/** Glance's per-image limits (image_property_quota, image_tag_quota, image_member_quota). */
export const LIMITS = { properties: 128, tags: 128, members: 128 };

/** Attributes the service manages; a client setting them gets 403 as in Glance. */
export const READ_ONLY = new Set(['created_at', 'updated_at', 'status', 'checksum', 'size', 'virtual_size', 'direct_url', 'self', 'file', 'schema', 'id', 'os_hash_algo', 'os_hash_value', 'locations', 'stores']);
/** Attribute names that are never image properties. */
export const RESERVED = new Set(['location', 'deleted', 'deleted_at']);
export const RESERVED_PREFIX = 'os_glance';
/** Base (schema) attributes: not extra properties, cannot be removed. */
export const BASE = new Set(['checksum', 'created_at', 'container_format', 'disk_format', 'id', 'min_disk', 'min_ram', 'name', 'size', 'virtual_size', 'status', 'tags', 'owner', 'updated_at', 'visibility', 'protected', 'os_hidden', 'os_hash_algo', 'os_hash_value']);

const UUID_RE = /^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$/;
export const isImageId = (s: string): boolean => UUID_RE.test(s);

/** An image as the service hands it around: the row plus its tags and extra properties. */
export interface Image {
  id: string;
  name: string | null;
  status: ImageStatus;
  visibility: Visibility;
  protected: boolean;
  os_hidden: boolean;
  disk_format: string | null;
  container_format: string | null;
  min_disk: number;
  min_ram: number;
  size: number | null;
  virtual_size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  owner: string | null;
  store: string | null;
  created_at: number;
  updated_at: number;
  tags: string[];
  properties: Record<string, string>;
}

/** The writable base attributes (what create and PATCH may set). */
export interface Mutable {
  name: string | null;
  visibility: Visibility;
  protected: boolean;
  os_hidden: boolean;
  disk_format: string | null;
  container_format: string | null;
  min_disk: number;
  min_ram: number;
  owner: string | null;
  tags: string[];
  properties: Record<string, string>;
}

/**
 * Who is asking, as the image service needs to know it. `seesAll` (cloud
 * admin or reader) lifts the visibility rules; `admin` (cloud admin) may
 * also download deactivated images and change owners.
 */
export interface Caller {
  projectId: string | null;
  userId: string | null;
  seesAll: boolean;
  admin: boolean;
  requestId?: string;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function rowToImage(r: ImageRow, tags: string[], properties: Record<string, string>): Image {
  return {
    id: r.id,
    name: r.name,
    status: r.status,
    visibility: r.visibility,
    protected: bool(r.protected),
    os_hidden: bool(r.os_hidden),
    disk_format: r.disk_format,
    container_format: r.container_format,
    min_disk: Number(r.min_disk),
    min_ram: Number(r.min_ram),
    size: num(r.size),
    virtual_size: num(r.virtual_size),
    checksum: r.checksum,
    os_hash_algo: r.os_hash_algo,
    os_hash_value: r.os_hash_value,
    owner: r.owner,
    store: r.store,
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
    tags: [...tags].sort(),
    properties,
  };
}

const invalid = (key: string, why: string) => badRequest(`Provided object does not match schema 'image': ${why}. Failed validating '${key}'.`);

/**
 * Validates one writable base attribute's value against the image schema
 * (400 when it does not match) and returns it normalised.
 */
export function checkBaseValue(key: string, value: unknown): unknown {
  switch (key) {
    case 'name':
      if (value !== null && typeof value !== 'string') throw invalid(key, `${JSON.stringify(value)} is not of type 'null', 'string'`);
      if (typeof value === 'string' && value.length > 255) throw invalid(key, `'${value.slice(0, 20)}...' is too long`);
      return value;
    case 'owner':
      if (value !== null && typeof value !== 'string') throw invalid(key, `${JSON.stringify(value)} is not of type 'null', 'string'`);
      if (typeof value === 'string' && value.length > 255) throw invalid(key, 'owner is too long');
      return value;
    case 'disk_format':
      if (value !== null && !(DISK_FORMATS as readonly unknown[]).includes(value)) throw invalid(key, `${JSON.stringify(value)} is not one of [None, ${DISK_FORMATS.map((f) => `'${f}'`).join(', ')}]`);
      return value;
    case 'container_format':
      if (value !== null && !(CONTAINER_FORMATS as readonly unknown[]).includes(value)) throw invalid(key, `${JSON.stringify(value)} is not one of [None, ${CONTAINER_FORMATS.map((f) => `'${f}'`).join(', ')}]`);
      return value;
    case 'visibility':
      if (!(VISIBILITIES as unknown[]).includes(value)) throw invalid(key, `${JSON.stringify(value)} is not one of ['community', 'public', 'private', 'shared']`);
      return value;
    case 'min_disk':
    case 'min_ram':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw invalid(key, `${JSON.stringify(value)} is not of type 'integer'`);
      if (value < 0) throw badRequest(`Cannot set ${key} to a negative value.`);
      if (value > 2 ** 31 - 1) throw invalid(key, `${value} is too large`);
      return value;
    case 'protected':
    case 'os_hidden':
      if (typeof value !== 'boolean') throw invalid(key, `${JSON.stringify(value)} is not of type 'boolean'`);
      return value;
    case 'tags': {
      if (!Array.isArray(value)) throw invalid(key, `${JSON.stringify(value)} is not of type 'array'`);
      for (const t of value) {
        if (typeof t !== 'string') throw invalid(key, `${JSON.stringify(t)} is not of type 'string'`);
        checkTag(t);
      }
      return [...new Set(value as string[])];
    }
    default:
      throw new Error(`not a writable base attribute: ${key}`);
  }
}

export function checkTag(t: string): void {
  if (t.length > 255) throw badRequest(`Provided object does not match schema 'image': '${t.slice(0, 20)}...' is too long. Failed validating 'maxLength' in schema['properties']['tags']['items'].`);
  if (t.length === 0) throw badRequest('Tags cannot be empty.');
}

/** 403 for names a client may not set (read-only, reserved, os_glance*). */
export function checkSettable(key: string): void {
  if (READ_ONLY.has(key)) throw forbidden(`Attribute '${key}' is read-only.`);
  if (RESERVED.has(key) || key.startsWith(RESERVED_PREFIX)) throw forbidden(`Attribute '${key}' is reserved.`);
}

/** Validates an extra property (values are strings; kernel/ramdisk ids may be null = unset). */
export function checkProperty(key: string, value: unknown): string | null {
  if (key.length > 255 || key.length === 0) throw badRequest('Custom property should not be greater than 255 characters.');
  if (value === null && (key === 'kernel_id' || key === 'ramdisk_id')) return null;
  if (typeof value !== 'string') throw invalid(key, `${JSON.stringify(value)} is not of type 'string'`);
  if ((key === 'kernel_id' || key === 'ramdisk_id') && !isImageId(value)) throw invalid(key, `'${value}' does not match the image id pattern`);
  if (value.length > 65535) throw invalid(key, 'value is too long');
  return value;
}

/** Parsed `POST /v2/images` body. */
export interface CreateInput {
  id?: string;
  base: Partial<Omit<Mutable, 'tags' | 'properties'>>;
  tags: string[];
  properties: Record<string, string>;
}

/** Validates a create body as Glance does: 403 for read-only/reserved names, 400 for schema violations. */
export function parseCreate(body: unknown): CreateInput {
  if (body === undefined || body === null) throw badRequest('Body expected in request.');
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest("Provided object does not match schema 'image': the request body must be a JSON object.");
  const out: CreateInput = { base: {}, tags: [], properties: {} };
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if (key === 'id') {
      if (typeof value !== 'string' || !isImageId(value)) throw invalid('id', `${JSON.stringify(value)} does not match the image id pattern`);
      out.id = value.toLowerCase();
      continue;
    }
    checkSettable(key);
    if (key === 'tags') {
      out.tags = checkBaseValue('tags', value) as string[];
      continue;
    }
    if (BASE.has(key)) {
      (out.base as Record<string, unknown>)[key] = checkBaseValue(key, value);
      continue;
    }
    const v = checkProperty(key, value);
    if (v !== null) out.properties[key] = v;
  }
  return out;
}
