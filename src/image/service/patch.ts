import { ApiError, badRequest, conflict, forbidden, tooLarge } from '../../core/errors.js';
import { BASE, LIMITS, checkBaseValue, checkProperty, checkSettable, type Caller, type Image, type Mutable } from './model.js';

/**
 * Image updates are JSON-patch documents in Glance's media types:
 * `application/openstack-images-v2.1-json-patch` (RFC 6902 subset: add,
 * remove, replace on top-level attributes) and the deprecated v2.0 draft-4
 * form (`{"replace": "/name", "value": ...}`). Parsing is all-or-nothing:
 * the first invalid operation rejects the whole request before anything is
 * applied.
 */
export const PATCH_MEDIA_TYPES: Record<string, 4 | 10> = {
  'application/openstack-images-v2.0-json-patch': 4,
  'application/openstack-images-v2.1-json-patch': 10,
};

export type PatchOpName = 'add' | 'remove' | 'replace';
export interface PatchOp {
  op: PatchOpName;
  /** Top-level attribute the operation addresses (decoded JSON pointer). */
  attr: string;
  value?: unknown;
}

const OPS: PatchOpName[] = ['add', 'remove', 'replace'];

/** Returns 415 unless the content type is one of the patch media types. */
export function patchDraft(contentType: string | undefined): 4 | 10 {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const d = PATCH_MEDIA_TYPES[ct];
  if (!d) {
    const allowed = Object.keys(PATCH_MEDIA_TYPES).sort().join(', ');
    throw new ApiError(415, `Image PATCH expects Content-Type one of: ${allowed}`, 'UnsupportedMediaType', { 'accept-patch': allowed });
  }
  return d;
}

function decodePointer(pointer: unknown): string[] {
  if (typeof pointer !== 'string') throw badRequest('Unable to find \'path\' in JSON Schema change');
  if (!pointer.startsWith('/')) throw badRequest(`Pointer \`${pointer}\` does not start with "/".`);
  if (/\/\s*\//.test(pointer.slice(1)) || pointer.slice(1).startsWith('/')) throw badRequest(`Pointer \`${pointer}\` contains adjacent "/".`);
  if (pointer.length > 1 && pointer.endsWith('/')) throw badRequest(`Pointer \`${pointer}\` end with "/".`);
  if (/~[^01]/.test(pointer) || pointer.endsWith('~')) throw badRequest(`Pointer \`${pointer}\` contains "~" not part of a recognized escape sequence.`);
  const parts = pointer.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~').trim());
  if (parts.length === 1 && parts[0] === '') throw badRequest(`Pointer \`${pointer}\` does not contains valid token.`);
  return parts;
}

/** Parses and validates a patch body; throws 400 (malformed), 403 (read-only/reserved attribute). */
export function parsePatch(body: unknown, draft: 4 | 10): PatchOp[] {
  if (body === undefined) throw badRequest('Body expected in request.');
  if (!Array.isArray(body)) throw badRequest('Request body must be a JSON array of operation objects.');
  const out: PatchOp[] = [];
  for (const raw of body) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest('Operations must be JSON objects.');
    const change = raw as Record<string, unknown>;
    let op: PatchOpName;
    let pointer: unknown;
    if (draft === 10) {
      if (change.op === undefined) throw badRequest(`Unable to find \`op\` in JSON Schema change. It must be one of the following: ${OPS.join(', ')}.`);
      if (!OPS.includes(change.op as PatchOpName)) throw badRequest(`Invalid operation: \`${String(change.op)}\`. It must be one of the following: ${OPS.join(', ')}.`);
      op = change.op as PatchOpName;
      if (!('path' in change)) throw badRequest("Unable to find 'path' in JSON Schema change");
      pointer = change.path;
    } else {
      const present = OPS.filter((k) => k in change);
      if (present.length !== 1) throw badRequest('Operation objects must contain exactly one member named "add", "remove", or "replace".');
      op = present[0]!;
      pointer = change[op];
    }
    const path = decodePointer(pointer);
    const attr = path[0]!;
    if (attr === 'locations') {
      const depth = { add: 2, remove: 2, replace: 1 }[op];
      if (path.length !== depth) throw badRequest(`Invalid JSON pointer for this resource: '/${path.join('/')}'`);
      throw forbidden("It's not allowed to update locations if locations are invisible.");
    }
    if (path.length !== 1) throw badRequest(`Invalid JSON pointer for this resource: '/${path.join('/')}'`);
    const parsed: PatchOp = { op, attr };
    if (op !== 'remove') {
      if (!('value' in change)) throw badRequest(`Operation "${op}" requires a member named "value".`);
      parsed.value = change.value;
    }
    checkSettable(attr);
    if (op !== 'remove') parsed.value = BASE.has(attr) ? checkBaseValue(attr, parsed.value) : checkProperty(attr, parsed.value);
    out.push(parsed);
  }
  return out;
}

/**
 * Applies parsed operations to a copy of the image's writable state with
 * Glance's semantics: `add` sets (base attribute or property), `replace`
 * needs an existing property (409), base attributes cannot be removed (403),
 * a property to remove must exist (409), only admins change the owner, and
 * the formats are fixed once data exists.
 */
export function applyPatch(img: Image, ops: PatchOp[], caller: Caller, draft: 4 | 10): { next: Mutable; changed: Set<string> } {
  const next: Mutable = {
    name: img.name, visibility: img.visibility, protected: img.protected, os_hidden: img.os_hidden, disk_format: img.disk_format,
    container_format: img.container_format, min_disk: img.min_disk, min_ram: img.min_ram, owner: img.owner, tags: [...img.tags], properties: { ...img.properties },
  };
  const changed = new Set<string>();
  for (const o of ops) {
    const base = BASE.has(o.attr);
    if (o.op === 'remove') {
      if (base) throw forbidden(`Property ${o.attr} may not be removed.`);
      if (!(o.attr in next.properties)) throw conflict(`Property ${o.attr} does not exist.`);
      delete next.properties[o.attr];
      changed.add(o.attr);
      continue;
    }
    if (base) {
      if (o.attr === 'owner' && o.value !== next.owner && !caller.admin) throw forbidden("Owner can't be updated by non admin.");
      if ((o.attr === 'disk_format' || o.attr === 'container_format') && o.value !== next[o.attr] && img.status !== 'queued')
        throw forbidden(`Attribute ${o.attr} can be only replaced for a queued image.`);
      (next as unknown as Record<string, unknown>)[o.attr] = o.value;
      changed.add(o.attr);
      continue;
    }
    const exists = o.attr in next.properties;
    if (o.op === 'replace' && !exists) throw conflict(`Property ${o.attr} does not exist.`);
    if (o.op === 'add' && exists && draft === 4) throw conflict(`Property ${o.attr} already present.`);
    if (o.value === null) delete next.properties[o.attr];
    else next.properties[o.attr] = o.value as string;
    changed.add(o.attr);
  }
  if (Object.keys(next.properties).length > LIMITS.properties && Object.keys(next.properties).length > Object.keys(img.properties).length)
    throw tooLarge(`Maximum number of properties exceeded (limit ${LIMITS.properties}).`, 'PropertyLimitExceeded');
  if (next.tags.length > LIMITS.tags && next.tags.length > img.tags.length) throw tooLarge(`Maximum number of tags exceeded (limit ${LIMITS.tags}).`, 'TagLimitExceeded');
  return { next, changed };
}
