import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, badRequest } from '../../core/errors.js';

/** A negotiated block storage microversion, `[major, minor]`. */
export type Microversion = [number, number];

/**
 * What each microversion changed, for the version document and for routes
 * (`atLeast(mv, 3, 27)`). Versions not listed change nothing Stratus
 * renders differently (features Stratus does not have: groups, clusters,
 * backends, encryption).
 */
export const MICROVERSION_HISTORY: Record<string, string> = {
  '3.0': 'Block Storage API v3 (same as v2)',
  '3.12': 'GET /volumes/summary',
  '3.13': 'volumes show group_id',
  '3.14': 'snapshots show group_snapshot_id',
  '3.18': 'backups show os-backup-project-attr:project_id (admin)',
  '3.21': 'volumes show provider_id',
  '3.27': 'attachments API (/attachments)',
  '3.36': 'volumes/summary lists metadata',
  '3.41': 'snapshots show user_id',
  '3.42': 'os-extend of in-use volumes',
  '3.43': 'backups show metadata',
  '3.44': 'attachments os-complete action',
  '3.48': 'volumes show shared_targets and service_uuid',
  '3.55': 'volume transfers at /volume-transfers',
  '3.56': 'backups show user_id',
  '3.63': 'volumes show volume_type_id',
  '3.64': 'volumes and backups show encryption_key_id',
  '3.65': 'volumes and snapshots show consumes_quota',
  '3.70': 'highest version the Debian openstack CLI (cinderclient 9.1) knows',
};
export const MIN_VERSION = '3.0';
export const MAX_VERSION = '3.70';

const parse = (v: string): Microversion | null => {
  const m = /^(\d+)\.(\d+)$/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
};
const cmp = (a: Microversion, b: Microversion) => (a[0] - b[0]) || (a[1] - b[1]);

export const atLeast = (mv: Microversion, major: number, minor: number): boolean => cmp(mv, [major, minor]) >= 0;

const used = new WeakMap<FastifyRequest, Microversion>();

/** The microversion of a request (3.0 when none was asked for). */
export function microversionOf(req: FastifyRequest): Microversion {
  return used.get(req) ?? [3, 0];
}

/**
 * Reads `OpenStack-API-Version: volume X.Y`, resolves `latest`, refuses
 * versions outside [MIN, MAX] with 406 (Cinder's behaviour), and echoes the
 * version used in the response.
 */
export function negotiateVolumeMicroversion(req: FastifyRequest, reply: FastifyReply): void {
  let asked: string | undefined;
  const h = req.headers['openstack-api-version'];
  if (typeof h === 'string') {
    const m = /(?:^|,)\s*volume\s+([^,\s]+)/i.exec(h);
    if (m) asked = m[1];
  }
  let mv: Microversion = parse(MIN_VERSION)!;
  // v3 without a header is 3.0; the version documents are not versioned.
  if (asked) {
    if (asked.toLowerCase() === 'latest') mv = parse(MAX_VERSION)!;
    else {
      const v = parse(asked);
      if (!v) throw badRequest(`Invalid API version string: ${asked}. It must be of the form MajorNum.MinorNum.`, 'InvalidAPIVersionString');
      if (cmp(v, parse(MIN_VERSION)!) < 0 || cmp(v, parse(MAX_VERSION)!) > 0)
        throw new ApiError(406, `Version ${asked} is not supported by the API. Minimum is ${MIN_VERSION} and maximum is ${MAX_VERSION}.`, 'InvalidGlobalAPIVersion');
      mv = v;
    }
  }
  used.set(req, mv);
  reply.header('openstack-api-version', `volume ${mv[0]}.${mv[1]}`);
  reply.header('vary', 'OpenStack-API-Version');
}

/** The v3 entry of the version documents. */
export function v3VersionDoc(root: string) {
  return {
    id: 'v3.0', status: 'CURRENT', version: MAX_VERSION, min_version: MIN_VERSION, updated: '2023-02-20T00:00:00Z',
    links: [{ rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' }, { rel: 'self', href: `${root}/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  };
}
