/**
 * Row shapes of the image service's tables (core/db.ts portability rules:
 * booleans 0/1, millisecond times as bigint, JSON as text, ids as text).
 */
export type ImageStatus = 'queued' | 'saving' | 'active' | 'killed' | 'deleted' | 'pending_delete' | 'deactivated' | 'uploading' | 'importing';
export type Visibility = 'public' | 'private' | 'shared' | 'community';
export type MemberStatus = 'pending' | 'accepted' | 'rejected';
export type TaskStatus = 'pending' | 'processing' | 'success' | 'failure';

export interface ImageRow {
  id: string;
  name: string | null;
  status: ImageStatus;
  visibility: Visibility;
  protected: number;
  os_hidden: number;
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
  /** Id of the store holding the data (null: no data). */
  store: string | null;
  created_at: number;
  updated_at: number;
  deleted: number;
  deleted_at: number | null;
}

export interface ImageTables {
  glance_images: ImageRow;
  glance_image_properties: { image_id: string; name: string; value: string };
  glance_image_tags: { image_id: string; value: string };
  glance_image_members: { image_id: string; member: string; status: MemberStatus; created_at: number; updated_at: number };
  glance_tasks: {
    id: string;
    type: string;
    status: TaskStatus;
    owner: string | null;
    image_id: string | null;
    request_id: string | null;
    user_id: string | null;
    /** JSON text */
    input: string;
    /** JSON text or null */
    result: string | null;
    message: string;
    created_at: number;
    updated_at: number;
    expires_at: number | null;
  };
}
