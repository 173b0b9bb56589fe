import { isoNaive } from '../../core/time.js';
import { bool } from '../../core/db.js';
import type { AttachmentRow, BackupRow, SnapshotRow, TransferRow, VolumeRow, VolumeTypeRow } from '../store/tables.js';
import type { ConnectionInfo } from '../drivers/driver.js';
import { atLeast, type Microversion } from './microversions.js';

/** Where the API lives, for links: `root` = `${publicUrl}/volume`. */
export interface VolumeViewEnv {
  root: string;
}

const j = <T>(s: string | null, d: T): T => {
  try {
    return s ? (JSON.parse(s) as T) : d;
  } catch {
    return d;
  }
};
const t = (ms: number | null | undefined) => (ms ? isoNaive(ms) : null);

export function links(env: VolumeViewEnv, projectId: string, kind: string, id: string) {
  return [
    { rel: 'self', href: `${env.root}/v3/${projectId}/${kind}/${id}` },
    { rel: 'bookmark', href: `${env.root}/${projectId}/${kind}/${id}` },
  ];
}

export function attachmentSummary(a: AttachmentRow) {
  return {
    id: a.volume_id, attachment_id: a.id, volume_id: a.volume_id, server_id: a.instance_uuid, host_name: a.attached_host,
    device: a.mountpoint, attached_at: t(a.attach_time),
  };
}

export interface VolumeViewOpts {
  mv: Microversion;
  admin: boolean;
  type: VolumeTypeRow | undefined;
  attachments: AttachmentRow[];
}

function withReadonly(meta: Record<string, string>, admin: Record<string, string>): Record<string, string> {
  return admin.readonly === undefined ? meta : { ...meta, readonly: admin.readonly };
}

export function volumeView(env: VolumeViewEnv, v: VolumeRow, o: VolumeViewOpts) {
  const imageMeta = j<Record<string, string>>(v.image_metadata, {});
  const out: Record<string, unknown> = {
    id: v.id,
    name: v.name,
    description: v.description,
    status: v.status,
    size: v.size,
    availability_zone: v.availability_zone,
    created_at: t(v.created_at),
    updated_at: t(v.updated_at),
    attachments: o.attachments.filter((a) => a.attach_status === 'attached').map(attachmentSummary),
    bootable: bool(v.bootable) ? 'true' : 'false',
    encrypted: false,
    multiattach: bool(v.multiattach),
    // Cinder shows the read-only flag (admin metadata) among the volume's metadata.
    metadata: withReadonly(j<Record<string, string>>(v.metadata, {}), j<Record<string, string>>(v.admin_metadata, {})),
    snapshot_id: v.snapshot_id,
    source_volid: v.source_volid,
    volume_type: o.type?.name ?? null,
    user_id: v.user_id,
    'os-vol-tenant-attr:tenant_id': v.project_id,
    replication_status: null,
    consistencygroup_id: null,
    migration_status: v.migration_status,
    links: links(env, v.project_id, 'volumes', v.id),
  };
  if (Object.keys(imageMeta).length) out.volume_image_metadata = imageMeta;
  if (o.admin) {
    out['os-vol-host-attr:host'] = v.host;
    out['os-vol-mig-status-attr:migstat'] = v.migration_status;
    out['os-vol-mig-status-attr:name_id'] = null;
  }
  if (atLeast(o.mv, 3, 13)) out.group_id = null;
  if (atLeast(o.mv, 3, 21)) out.provider_id = null;
  if (atLeast(o.mv, 3, 48)) {
    out.shared_targets = false;
    out.service_uuid = null;
  }
  if (atLeast(o.mv, 3, 61) && o.admin) out.cluster_name = null;
  if (atLeast(o.mv, 3, 63)) out.volume_type_id = v.volume_type_id;
  if (atLeast(o.mv, 3, 64)) out.encryption_key_id = null;
  if (atLeast(o.mv, 3, 65)) out.consumes_quota = true;
  return out;
}

/**
 * A snapshot as Cinder shows it: `detail` (show, list/detail) adds the
 * extended attributes (progress, project) that the summary (create, update,
 * plain list) leaves out. Cinder's snapshot views carry no links.
 */
export function snapshotView(s: SnapshotRow, mv: Microversion, detail: boolean) {
  const out: Record<string, unknown> = {
    id: s.id, name: s.name, description: s.description, status: s.status, size: s.size, volume_id: s.volume_id,
    created_at: t(s.created_at), updated_at: t(s.updated_at), metadata: j<Record<string, string>>(s.metadata, {}),
  };
  if (detail) {
    out['os-extended-snapshot-attributes:progress'] = s.progress;
    out['os-extended-snapshot-attributes:project_id'] = s.project_id;
  }
  if (atLeast(mv, 3, 14)) out.group_snapshot_id = null;
  if (atLeast(mv, 3, 41)) out.user_id = s.user_id;
  if (atLeast(mv, 3, 65)) out.consumes_quota = true;
  return out;
}

export function backupView(env: VolumeViewEnv, b: BackupRow, o: { mv: Microversion; admin: boolean; hasDependents: boolean }) {
  const out: Record<string, unknown> = {
    id: b.id, name: b.name, description: b.description, status: b.status, size: b.size, volume_id: b.volume_id, snapshot_id: b.snapshot_id,
    availability_zone: b.availability_zone, container: b.container, created_at: t(b.created_at), updated_at: t(b.updated_at), fail_reason: b.fail_reason,
    is_incremental: bool(b.is_incremental), has_dependent_backups: o.hasDependents, object_count: b.object_count, data_timestamp: t(b.data_timestamp),
    links: links(env, b.project_id, 'backups', b.id),
  };
  if (atLeast(o.mv, 3, 18) && o.admin) out['os-backup-project-attr:project_id'] = b.project_id;
  if (atLeast(o.mv, 3, 43)) out.metadata = {};
  if (atLeast(o.mv, 3, 56)) out.user_id = b.user_id;
  if (atLeast(o.mv, 3, 64)) out.encryption_key_id = null;
  return out;
}

export function attachmentView(a: AttachmentRow, connection: ConnectionInfo | null) {
  return {
    id: a.id, status: a.attach_status, instance: a.instance_uuid, volume_id: a.volume_id, attached_at: t(a.attach_time), detached_at: t(a.detach_time),
    attach_mode: a.attach_mode, connection_info: connection && a.connector ? { ...connection.data, driver_volume_type: connection.driver_volume_type, attachment_id: a.id } : {},
  };
}

/**
 * A volume type as Cinder answers it: show and list carry the QoS specs id;
 * the create response does not, and the update response leaves out the
 * type-access attribute too.
 */
export function typeView(ty: VolumeTypeRow, withSpecs: boolean, answer: 'show' | 'create' | 'update' = 'show') {
  const out: Record<string, unknown> = {
    id: ty.id, name: ty.name, description: ty.description, is_public: bool(ty.is_public), extra_specs: withSpecs ? j<Record<string, string>>(ty.extra_specs, {}) : {},
  };
  if (answer !== 'update') out['os-volume-type-access:is_public'] = bool(ty.is_public);
  if (answer === 'show') out.qos_specs_id = null;
  return out;
}

export function transferView(env: VolumeViewEnv, tr: TransferRow, extra: Record<string, unknown> = {}) {
  return { id: tr.id, name: tr.name, volume_id: tr.volume_id, created_at: t(tr.created_at), links: links(env, tr.project_id, 'os-volume-transfer', tr.id), ...extra };
}
