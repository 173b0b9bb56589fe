/** Image v2 (Glance): images, upload, properties (JSON patch), members. */
import { ApiError, qs, request, serviceUrl, upload } from './client.js';

export const IMAGE_TYPES = ['image'];
const base = () => {
  const u = serviceUrl(IMAGE_TYPES);
  if (!u) throw new ApiError(503, 'This cloud has no image service in its catalog.');
  return u.endsWith('/v2') ? u : `${u}/v2`;
};

export interface Image {
  id: string;
  name: string | null;
  status: string;
  visibility: 'public' | 'private' | 'shared' | 'community';
  owner: string;
  size: number | null;
  disk_format: string | null;
  container_format: string | null;
  min_disk: number;
  min_ram: number;
  protected: boolean;
  created_at: string;
  updated_at: string;
  tags: string[];
  [prop: string]: unknown;
}
export interface Member {
  member_id: string;
  image_id: string;
  status: 'pending' | 'accepted' | 'rejected';
}

/** Image fields that are not free-form properties. */
export const CORE_IMAGE_FIELDS = new Set([
  'id', 'name', 'status', 'visibility', 'owner', 'size', 'virtual_size', 'disk_format', 'container_format', 'min_disk', 'min_ram', 'protected',
  'created_at', 'updated_at', 'tags', 'checksum', 'os_hash_algo', 'os_hash_value', 'self', 'file', 'schema', 'direct_url', 'locations', 'os_hidden', 'stores',
]);

export type PatchOp = { op: 'add' | 'replace' | 'remove'; path: string; value?: unknown };

export const images = {
  list: async () => {
    const out: Image[] = [];
    let next: string | null = `${base()}/images${qs({ limit: 200 })}`;
    for (let i = 0; next && i < 50; i++) {
      const page: { images: Image[]; next?: string } = await request(next);
      out.push(...page.images);
      // `next` is a path under the service root (/v2/images?marker=...).
      next = page.next ? base().replace(/\/v2$/, '') + page.next : null;
    }
    return out;
  },
  get: (id: string) => request<Image>(`${base()}/images/${id}`),
  create: (img: { name: string; disk_format: string; container_format: string; visibility?: string; min_disk?: number; min_ram?: number }) =>
    request<Image>(`${base()}/images`, { method: 'POST', body: img }),
  upload: (id: string, file: Blob, onProgress: (loaded: number, total: number) => void, signal?: AbortSignal) =>
    upload(`${base()}/images/${id}/file`, file, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, onProgress, signal }),
  patch: (id: string, ops: PatchOp[]) =>
    request<Image>(`${base()}/images/${id}`, { method: 'PATCH', body: JSON.stringify(ops), headers: { 'content-type': 'application/openstack-images-v2.1-json-patch' } }),
  remove: (id: string) => request(`${base()}/images/${id}`, { method: 'DELETE' }),
  members: async (id: string) => (await request<{ members: Member[] }>(`${base()}/images/${id}/members`)).members,
  addMember: (id: string, project: string) => request<Member>(`${base()}/images/${id}/members`, { method: 'POST', body: { member: project } }),
  removeMember: (id: string, project: string) => request(`${base()}/images/${id}/members/${project}`, { method: 'DELETE' }),
};
