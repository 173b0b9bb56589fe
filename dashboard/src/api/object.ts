/** Object Storage v1 (Swift): containers, folder-style listing, upload, download, ACLs, temp URLs. */
import { ApiError, qs, request, serviceUrl, upload } from './client.js';

export const OBJECT_TYPES = ['object-store'];
const base = () => {
  const u = serviceUrl(OBJECT_TYPES);
  if (!u) throw new ApiError(503, 'This cloud has no object storage service in its catalog.');
  return u;
};
const enc = (name: string) => name.split('/').map(encodeURIComponent).join('/');

export interface Container {
  name: string;
  count: number;
  bytes: number;
}
export type Entry = { name: string; bytes: number; content_type: string; last_modified: string; hash: string } | { subdir: string };

export const objects = {
  containers: async () => (await request<Container[]>(`${base()}${qs({ format: 'json' })}`)) ?? [],
  createContainer: (name: string) => request(`${base()}/${encodeURIComponent(name)}`, { method: 'PUT' }),
  deleteContainer: (name: string) => request(`${base()}/${encodeURIComponent(name)}`, { method: 'DELETE' }),
  list: async (container: string, prefix: string) => (await request<Entry[]>(`${base()}/${encodeURIComponent(container)}${qs({ format: 'json', prefix, delimiter: '/' })}`)) ?? [],
  /** Whether anyone may read the container (its read ACL has `.r:*`). */
  isPublic: async (container: string) => {
    const res = await request<Response>(`${base()}/${encodeURIComponent(container)}`, { method: 'HEAD', raw: true });
    return (res.headers.get('x-container-read') ?? '').includes('.r:*');
  },
  setPublic: (container: string, pub: boolean) =>
    request(`${base()}/${encodeURIComponent(container)}`, { method: 'POST', headers: pub ? { 'x-container-read': '.r:*,.rlistings' } : { 'x-remove-container-read': '1' } }),
  upload: (container: string, name: string, file: Blob, onProgress: (l: number, t: number) => void, signal?: AbortSignal) =>
    upload(`${base()}/${encodeURIComponent(container)}/${enc(name)}`, file, { method: 'PUT', headers: { 'content-type': file.type || 'application/octet-stream' }, onProgress, signal }),
  download: async (container: string, name: string): Promise<Blob> => {
    const res = await request<Response>(`${base()}/${encodeURIComponent(container)}/${enc(name)}`, { raw: true, headers: { accept: '*/*' } });
    return res.blob();
  },
  remove: (container: string, name: string) => request(`${base()}/${encodeURIComponent(container)}/${enc(name)}`, { method: 'DELETE' }),
  publicUrl: (container: string, name: string) => `${location.origin}${base()}/${encodeURIComponent(container)}/${enc(name)}`,
  /**
   * A temporary URL (Swift tempurl: HMAC-SHA256 over "GET\n<expires>\n<path>"
   * with the account's Temp-URL-Key, which is set first if the account has none).
   */
  tempUrl: async (container: string, name: string, seconds: number): Promise<string> => {
    const acct = await request<Response>(base(), { method: 'HEAD', raw: true });
    let key = acct.headers.get('x-account-meta-temp-url-key');
    if (!key) {
      const bytes = crypto.getRandomValues(new Uint8Array(24));
      key = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      await request(base(), { method: 'POST', headers: { 'x-account-meta-temp-url-key': key } });
    }
    const full = `${base()}/${encodeURIComponent(container)}/${enc(name)}`;
    // Swift signs the path from /v1/ on, whatever prefix the proxy is mounted under.
    const signedPath = full.slice(full.indexOf('/v1/'));
    const expires = Math.floor(Date.now() / 1000) + seconds;
    const k = await crypto.subtle.importKey('raw', new TextEncoder().encode(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const sig = await crypto.subtle.sign('HMAC', k, new TextEncoder().encode(`GET\n${expires}\n${signedPath}`));
    const hex = Array.from(new Uint8Array(sig), (b) => b.toString(16).padStart(2, '0')).join('');
    return `${location.origin}${full}?temp_url_sig=${hex}&temp_url_expires=${expires}`;
  },
};
