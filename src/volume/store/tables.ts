/** Row types of the volume service's tables (see migrations.ts). */
export interface VolumeTypeRow {
  id: string;
  name: string;
  description: string | null;
  is_public: number;
  extra_specs: string;
  created_at: number;
  deleted: number;
}

export interface VolumeRow {
  id: string;
  project_id: string;
  user_id: string;
  name: string | null;
  description: string | null;
  size: number;
  status: string;
  attach_status: string;
  migration_status: string | null;
  availability_zone: string;
  volume_type_id: string;
  bootable: number;
  multiattach: number;
  snapshot_id: string | null;
  source_volid: string | null;
  image_id: string | null;
  metadata: string;
  image_metadata: string;
  admin_metadata: string;
  host: string | null;
  fault: string | null;
  created_at: number;
  updated_at: number;
  deleted: number;
  deleted_at: number | null;
}

export interface SnapshotRow {
  id: string;
  volume_id: string;
  project_id: string;
  user_id: string;
  name: string | null;
  description: string | null;
  size: number;
  status: string;
  progress: string;
  metadata: string;
  created_at: number;
  updated_at: number;
  deleted: number;
}

export interface BackupRow {
  id: string;
  volume_id: string;
  snapshot_id: string | null;
  parent_id: string | null;
  project_id: string;
  user_id: string;
  name: string | null;
  description: string | null;
  size: number;
  object_count: number;
  status: string;
  fail_reason: string | null;
  is_incremental: number;
  container: string | null;
  availability_zone: string | null;
  restore_volume_id: string | null;
  created_at: number;
  updated_at: number;
  data_timestamp: number;
  deleted: number;
}

export interface AttachmentRow {
  id: string;
  volume_id: string;
  project_id: string;
  instance_uuid: string | null;
  attached_host: string | null;
  mountpoint: string | null;
  attach_status: string;
  attach_mode: string;
  connector: string | null;
  delete_on_termination: number;
  created_at: number;
  updated_at: number;
  attach_time: number | null;
  detach_time: number | null;
  deleted: number;
}

export interface TransferRow {
  id: string;
  volume_id: string;
  project_id: string;
  name: string | null;
  salt: string;
  crypt_hash: string;
  created_at: number;
  deleted: number;
}

export interface VolumeTables {
  cinder_volume_types: VolumeTypeRow;
  cinder_volumes: VolumeRow;
  cinder_snapshots: SnapshotRow;
  cinder_backups: BackupRow;
  cinder_attachments: AttachmentRow;
  cinder_transfers: TransferRow;
}
