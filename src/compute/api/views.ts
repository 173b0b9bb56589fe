import { isoSeconds } from '../../core/time.js';
import type { EmbeddedFlavor, InstanceRow } from '../store/tables.js';
import { serverStatus } from '../service/states.js';
import { createHash } from 'node:crypto';
import type { Flavor } from '../service/flavors.js';

export interface ViewEnv {
  /** e.g. http://127.0.0.1:8700/compute */
  root: string;
}

export const link = (env: ViewEnv, path: string) => [
  { rel: 'self', href: `${env.root}/v2.1${path}` },
  { rel: 'bookmark', href: `${env.root}${path}` },
];

/** Nova's hostId: an opaque per-project hash of the host name. */
const hostId = (host: string | null, projectId: string) => (host ? createHash('sha224').update(projectId + host).digest('hex') : '');

export function serverView(
  env: ViewEnv,
  r: InstanceRow,
  o: { detail: boolean; admin: boolean; fault?: { code: number; message: string; details: string; created: number } | null; addresses?: Record<string, unknown> },
): Record<string, unknown> {
  const base = { id: r.id, name: r.name, links: link(env, `/servers/${r.id}`) };
  if (!o.detail) return base;
  const flavor = JSON.parse(r.flavor) as EmbeddedFlavor;
  const v: Record<string, unknown> = {
    ...base,
    status: serverStatus(r.vm_state, r.task_state),
    tenant_id: r.project_id,
    user_id: r.user_id,
    metadata: JSON.parse(r.metadata) as Record<string, string>,
    hostId: hostId(r.host, r.project_id),
    image: r.image_id ? { id: r.image_id, links: [{ rel: 'bookmark', href: `${env.root}/images/${r.image_id}` }] } : '',
    flavor: { id: flavor.id, links: [{ rel: 'bookmark', href: `${env.root}/flavors/${flavor.id}` }] },
    created: isoSeconds(r.created_at),
    updated: isoSeconds(r.updated_at),
    addresses: o.addresses ?? {},
    accessIPv4: r.access_ip_v4,
    accessIPv6: r.access_ip_v6,
    'OS-DCF:diskConfig': 'MANUAL',
    'OS-EXT-AZ:availability_zone': r.availability_zone,
    config_drive: r.config_drive ? 'True' : '',
    key_name: r.key_name,
    'OS-SRV-USG:launched_at': r.launched_at ? new Date(Number(r.launched_at)).toISOString().replace('Z', '').replace(/\.(\d{3})$/, '.$1000') : null,
    'OS-SRV-USG:terminated_at': r.terminated_at ? new Date(Number(r.terminated_at)).toISOString().replace('Z', '').replace(/\.(\d{3})$/, '.$1000') : null,
    'OS-EXT-STS:task_state': r.task_state,
    'OS-EXT-STS:vm_state': r.vm_state,
    'OS-EXT-STS:power_state': r.power_state,
    'os-extended-volumes:volumes_attached': [],
    security_groups: securityGroupsOf(r),
  };
  // Nova shows progress only while a server is (or is becoming) active.
  if (['ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE', 'MIGRATING'].includes(v.status as string)) v.progress = 0;
  if (o.admin) {
    v['OS-EXT-SRV-ATTR:host'] = r.host;
    v['OS-EXT-SRV-ATTR:instance_name'] = `instance-${r.id.slice(0, 8)}`;
    v['OS-EXT-SRV-ATTR:hypervisor_hostname'] = r.host;
  }
  if (o.fault && (r.vm_state === 'error' || r.vm_state === 'deleted')) {
    v.fault = { code: o.fault.code, message: o.fault.message, created: isoSeconds(o.fault.created), ...(o.admin ? { details: o.fault.details } : {}) };
  }
  return v;
}

export function flavorView(env: ViewEnv, f: Flavor, detail: boolean): Record<string, unknown> {
  const base = { id: f.id, name: f.name, links: link(env, `/flavors/${f.id}`) };
  if (!detail) return base;
  return {
    ...base, ram: f.ram, disk: f.disk, vcpus: f.vcpus, swap: f.swap === 0 ? '' : f.swap, 'OS-FLV-EXT-DATA:ephemeral': f.ephemeral,
    'OS-FLV-DISABLED:disabled': f.disabled, 'os-flavor-access:is_public': f.is_public, rxtx_factor: f.rxtx_factor,
  };
}

/** Security group names of a server as Nova shows them (`default` when none was asked for). */
export function securityGroupsOf(r: Pick<InstanceRow, 'security_groups'>): Array<{ name: string }> {
  const names = JSON.parse(r.security_groups ?? '[]') as string[];
  return (names.length ? names : ['default']).map((name) => ({ name }));
}
