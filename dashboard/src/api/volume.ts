/** Block Storage v3 (Cinder): volumes, snapshots, backups, limits; attachments go through compute. */
import { ApiError, request, serviceUrl } from './client.js';

export const VOLUME_TYPES = ['volumev3', 'block-storage', 'volume'];
const base = () => {
  const u = serviceUrl(VOLUME_TYPES);
  if (!u) throw new ApiError(503, 'This cloud has no block storage service in its catalog.');
  return u;
};

export interface Volume {
  id: string;
  name: string | null;
  status: string;
  size: number;
  volume_type?: string | null;
  bootable?: string;
  created_at: string;
  attachments: { server_id: string; device?: string; attachment_id?: string }[];
}
export interface Snapshot {
  id: string;
  name: string | null;
  status: string;
  size: number;
  volume_id: string;
  created_at: string;
}
export interface Backup {
  id: string;
  name: string | null;
  status: string;
  size: number;
  volume_id: string;
  created_at: string;
}

export const volume = {
  volumes: async () => (await request<{ volumes: Volume[] }>(`${base()}/volumes/detail`)).volumes,
  create: (v: { name: string; size: number; description?: string }) => request<{ volume: Volume }>(`${base()}/volumes`, { method: 'POST', body: { volume: v } }),
  remove: (id: string) => request(`${base()}/volumes/${id}`, { method: 'DELETE' }),
  extend: (id: string, newSize: number) => request(`${base()}/volumes/${id}/action`, { method: 'POST', body: { 'os-extend': { new_size: newSize } } }),
  snapshots: async () => (await request<{ snapshots: Snapshot[] }>(`${base()}/snapshots/detail`)).snapshots,
  snapshot: (volumeId: string, name: string) => request(`${base()}/snapshots`, { method: 'POST', body: { snapshot: { volume_id: volumeId, name, force: true } } }),
  deleteSnapshot: (id: string) => request(`${base()}/snapshots/${id}`, { method: 'DELETE' }),
  backups: async () => (await request<{ backups: Backup[] }>(`${base()}/backups/detail`)).backups,
  backup: (volumeId: string, name: string) => request(`${base()}/backups`, { method: 'POST', body: { backup: { volume_id: volumeId, name, force: true } } }),
  deleteBackup: (id: string) => request(`${base()}/backups/${id}`, { method: 'DELETE' }),
  limits: async () => (await request<{ limits: { absolute: Record<string, number> } }>(`${base()}/limits`)).limits.absolute,
};
