/** Compute v2.1 (Nova): servers, actions, consoles, flavors, key pairs, limits. */
import { ApiError, qs, request, serviceUrl } from './client.js';

export const COMPUTE_TYPES = ['compute'];
const base = () => {
  const u = serviceUrl(COMPUTE_TYPES);
  if (!u) throw new ApiError(503, 'This cloud has no compute service in its catalog.');
  return u;
};

export interface Address {
  addr: string;
  version: number;
  'OS-EXT-IPS:type'?: string;
}
export interface Server {
  id: string;
  name: string;
  status: string;
  tenant_id: string;
  created: string;
  updated: string;
  image: { id: string } | '';
  flavor: { id?: string; original_name?: string; vcpus?: number; ram?: number; disk?: number };
  key_name: string | null;
  addresses: Record<string, Address[]>;
  fault?: { message: string; code: number };
  'OS-EXT-STS:task_state'?: string | null;
  'OS-EXT-STS:vm_state'?: string;
  'OS-EXT-STS:power_state'?: number;
  'OS-EXT-AZ:availability_zone'?: string;
  security_groups?: { name: string }[];
  metadata?: Record<string, string>;
}
export interface Flavor {
  id: string;
  name: string;
  vcpus: number;
  ram: number;
  disk: number;
  'OS-FLV-EXT-DATA:ephemeral'?: number;
  swap?: number | '';
  'os-flavor-access:is_public'?: boolean;
}
export interface Keypair {
  name: string;
  fingerprint: string;
  public_key: string;
  private_key?: string;
  type?: string;
}
export interface InstanceAction {
  action: string;
  request_id: string;
  instance_uuid: string;
  user_id: string;
  project_id: string;
  start_time: string;
  message: string | null;
}
export interface ServerCreate {
  name: string;
  imageRef: string;
  flavorRef: string;
  key_name?: string;
  user_data?: string;
  min_count?: number;
  max_count?: number;
  networks?: { uuid: string }[] | 'auto' | 'none';
  security_groups?: { name: string }[];
}

let maxVersion: Promise<[number, number]> | null = null;
/** Whether the compute API's maximum microversion (from its version document) is at least major.minor. */
async function supports(major: number, minor: number): Promise<boolean> {
  maxVersion ??= request<{ version?: { version?: string } }>(`${base()}/`)
    .then((d) => {
      const m = /^(\d+)\.(\d+)$/.exec(d.version?.version ?? '');
      return (m ? [Number(m[1]), Number(m[2])] : [2, 1]) as [number, number];
    })
    .catch(() => [2, 1] as [number, number]);
  const [a, b] = await maxVersion;
  return a > major || (a === major && b >= minor);
}

export const compute = {
  servers: async (opts: { limit?: number } = {}) => (await request<{ servers: Server[] }>(`${base()}/servers/detail${qs({ limit: opts.limit })}`)).servers,
  /** Every page of servers (the API pages at its own max limit). */
  allServers: async () => {
    const out: Server[] = [];
    let marker: string | undefined;
    for (let i = 0; i < 50; i++) {
      const page = (await request<{ servers: Server[]; servers_links?: { rel: string }[] }>(`${base()}/servers/detail${qs({ limit: 1000, marker })}`));
      out.push(...page.servers);
      if (!page.servers_links?.some((l) => l.rel === 'next') || page.servers.length === 0) break;
      marker = page.servers[page.servers.length - 1]!.id;
    }
    return out;
  },
  server: async (id: string) => (await request<{ server: Server }>(`${base()}/servers/${id}`)).server,
  create: (s: ServerCreate) => request<{ server?: { id: string }; reservation_id?: string }>(`${base()}/servers`, { method: 'POST', body: { server: s } }),
  remove: (id: string) => request(`${base()}/servers/${id}`, { method: 'DELETE' }),
  action: <T = unknown>(id: string, body: Record<string, unknown>) => request<T>(`${base()}/servers/${id}/action`, { method: 'POST', body }),
  consoleLog: async (id: string, length = 200) => (await compute.action<{ output: string }>(id, { 'os-getConsoleOutput': { length } })).output,
  /** A websocket URL for the guest's serial console (one-time token). */
  serialConsole: async (id: string): Promise<string> => {
    // Microversion 2.6 replaced the per-protocol actions with remote-consoles;
    // use it when the cloud speaks it, the 2.1 action otherwise.
    if (await supports(2, 6)) {
      const r = await request<{ remote_console: { url: string } }>(`${base()}/servers/${id}/remote-consoles`, {
        method: 'POST',
        headers: { 'openstack-api-version': 'compute 2.6' },
        body: { remote_console: { protocol: 'serial', type: 'serial' } },
      });
      return r.remote_console.url;
    }
    const r = await compute.action<{ console: { url: string } }>(id, { 'os-getSerialConsole': { type: 'serial' } });
    return r.console.url;
  },
  actions: async (id: string) => (await request<{ instanceActions: InstanceAction[] }>(`${base()}/servers/${id}/os-instance-actions`)).instanceActions,

  flavors: async () => (await request<{ flavors: Flavor[] }>(`${base()}/flavors/detail`)).flavors,
  createFlavor: (f: { name: string; vcpus: number; ram: number; disk: number; id?: string; 'os-flavor-access:is_public'?: boolean }) =>
    request<{ flavor: Flavor }>(`${base()}/flavors`, { method: 'POST', body: { flavor: f } }),
  deleteFlavor: (id: string) => request(`${base()}/flavors/${id}`, { method: 'DELETE' }),

  keypairs: async () => (await request<{ keypairs: { keypair: Keypair }[] }>(`${base()}/os-keypairs`)).keypairs.map((k) => k.keypair),
  createKeypair: async (name: string, publicKey?: string) =>
    (await request<{ keypair: Keypair }>(`${base()}/os-keypairs`, { method: 'POST', body: { keypair: publicKey ? { name, public_key: publicKey } : { name } } })).keypair,
  deleteKeypair: (name: string) => request(`${base()}/os-keypairs/${encodeURIComponent(name)}`, { method: 'DELETE' }),

  limits: async () => (await request<{ limits: { absolute: Record<string, number> } }>(`${base()}/limits`)).limits.absolute,
  /** Whether this token may use compute admin APIs (probed: services list is admin-only). */
  probeAdmin: async () => {
    try {
      await request(`${base()}/os-services`);
      return true;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 403 || e.status === 404)) return false;
      throw e;
    }
  },
};

/** Status words for the list (Nova status + task state). */
export function serverState(s: Server): { label: string; tone: 'ok' | 'busy' | 'bad' | 'off' } {
  const task = s['OS-EXT-STS:task_state'];
  if (s.status === 'ERROR') return { label: 'Error', tone: 'bad' };
  if (task) return { label: `${cap(s.status)} (${task.replace(/_/g, ' ')})`, tone: 'busy' };
  switch (s.status) {
    case 'ACTIVE':
      return { label: 'Active', tone: 'ok' };
    case 'SHUTOFF':
      return { label: 'Shut off', tone: 'off' };
    case 'BUILD':
      return { label: 'Building', tone: 'busy' };
    case 'VERIFY_RESIZE':
      return { label: 'Confirm or revert resize', tone: 'busy' };
    default:
      return { label: cap(s.status), tone: 'busy' };
  }
}
const cap = (s: string) => s.charAt(0) + s.slice(1).toLowerCase().replace(/_/g, ' ');

/** Volume attachments live in the compute API (os-volume_attachments). */
export const attachments = {
  attach: (serverId: string, volumeId: string) => request(`${base()}/servers/${serverId}/os-volume_attachments`, { method: 'POST', body: { volumeAttachment: { volumeId } } }),
  detach: (serverId: string, volumeId: string) => request(`${base()}/servers/${serverId}/os-volume_attachments/${volumeId}`, { method: 'DELETE' }),
};
