/**
 * The instance metadata a guest sees, in both of Nova's dialects:
 * OpenStack (`/openstack/<version>/meta_data.json`, `user_data`,
 * `network_data.json`, `vendor_data.json`, `vendor_data2.json`) and EC2
 * (`/<version>/meta-data/...`, `/<version>/user-data`). The same content
 * goes on the config drive, so cloud-init behaves the same either way.
 */
export interface InstanceMetadata {
  uuid: string;
  name: string;
  hostname: string;
  projectId: string;
  availabilityZone: string;
  launchIndex: number;
  meta: Record<string, string>;
  keys: { name: string; type: string; data: string }[];
  userData: Buffer | null;
  networkData: Record<string, unknown>;
  /** EC2 fields */
  instanceType: string;
  localIpv4?: string;
  publicIpv4?: string;
  mac?: string;
  amiId?: string;
  reservationId: string;
}

export const OPENSTACK_VERSIONS = ['2012-08-10', '2013-04-04', '2013-10-17', '2015-10-15', '2016-06-30', '2016-10-06', '2017-02-22', '2018-08-27', '2020-10-14', 'latest'];
export const EC2_VERSIONS = ['1.0', '2007-01-19', '2007-03-01', '2007-08-29', '2007-10-10', '2007-12-15', '2008-02-01', '2008-09-01', '2009-04-04', 'latest'];

/** meta_data.json: the metadata service and the config drive both serve this. */
export function metaDataJson(m: Pick<InstanceMetadata, 'uuid' | 'name' | 'hostname' | 'launchIndex' | 'availabilityZone' | 'projectId' | 'meta' | 'keys'>): Record<string, unknown> {
  return {
    uuid: m.uuid, name: m.name, hostname: m.hostname, launch_index: m.launchIndex, availability_zone: m.availabilityZone, project_id: m.projectId,
    meta: m.meta, public_keys: Object.fromEntries(m.keys.map((k) => [k.name, k.data])), keys: m.keys, devices: [], random_seed: undefined,
  };
}

export interface MetaResponse {
  status: number;
  type: string;
  body: string | Buffer;
}

const text = (body: string, status = 200): MetaResponse => ({ status, type: 'text/plain; charset=utf-8', body });
const json = (v: unknown): MetaResponse => ({ status: 200, type: 'application/json', body: JSON.stringify(v) });
const notFound = (): MetaResponse => text('404 Not Found\n\nThe resource could not be found.\n', 404);

/** Answers one metadata request path for an instance. */
export function answer(path: string, m: InstanceMetadata): MetaResponse {
  const clean = path.replace(/\/+/g, '/').replace(/\?.*$/, '');
  const parts = clean.split('/').filter(Boolean);
  if (parts.length === 0) return text([...EC2_VERSIONS, 'openstack'].join('\n'));
  if (parts[0] === 'openstack') {
    if (parts.length === 1) return text(OPENSTACK_VERSIONS.join('\n'));
    const ver = parts[1]!;
    if (!OPENSTACK_VERSIONS.includes(ver)) return notFound();
    const files = ['meta_data.json', ...(m.userData ? ['user_data'] : []), 'password', 'vendor_data.json', 'network_data.json', 'vendor_data2.json'];
    if (parts.length === 2) return text(files.join('\n'));
    switch (parts[2]) {
      case 'meta_data.json':
        return json(metaDataJson(m));
      case 'user_data':
        return m.userData ? { status: 200, type: 'application/octet-stream', body: m.userData } : notFound();
      case 'network_data.json':
        return json(m.networkData);
      case 'vendor_data.json':
      case 'vendor_data2.json':
        return json({});
      case 'password':
        return text('');
      default:
        return notFound();
    }
  }
  const ver = parts[0]!;
  if (!EC2_VERSIONS.includes(ver)) return notFound();
  if (parts.length === 1) return text(['meta-data/', ...(m.userData ? ['user-data'] : [])].join('\n'));
  if (parts[1] === 'user-data') return m.userData ? { status: 200, type: 'application/octet-stream', body: m.userData } : notFound();
  if (parts[1] !== 'meta-data') return notFound();
  const ec2: Record<string, string | Record<string, string>> = {
    'ami-id': m.amiId ?? 'ami-00000001',
    'ami-launch-index': String(m.launchIndex),
    'ami-manifest-path': 'FIXME',
    hostname: m.hostname,
    'instance-action': 'none',
    'instance-id': `i-${m.uuid.replace(/-/g, '').slice(0, 8)}`,
    'instance-type': m.instanceType,
    'local-hostname': m.hostname,
    'local-ipv4': m.localIpv4 ?? '',
    'public-hostname': m.hostname,
    'public-ipv4': m.publicIpv4 ?? '',
    'reservation-id': m.reservationId,
    'security-groups': 'default',
    placement: { 'availability-zone': m.availabilityZone },
    ...(m.keys.length ? { 'public-keys': Object.fromEntries(m.keys.map((k, i) => [`${i}=${k.name}`, k.data])) } : {}),
  };
  let node: unknown = ec2;
  for (const p of parts.slice(2)) {
    if (typeof node !== 'object' || node === null) return notFound();
    const obj = node as Record<string, unknown>;
    // public-keys/0/openssh-key
    if (p in obj) node = obj[p];
    else {
      const k = Object.keys(obj).find((x) => x.split('=')[0] === p);
      if (k === undefined) {
        if (p === 'openssh-key' && typeof node === 'string') break;
        return notFound();
      }
      node = { 'openssh-key': obj[k] };
    }
  }
  if (typeof node === 'string') return text(node);
  return text(Object.entries(node as Record<string, unknown>).map(([k, v]) => (typeof v === 'object' ? `${k}/` : k)).join('\n'));
}
