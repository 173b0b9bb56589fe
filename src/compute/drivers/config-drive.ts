import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ConfigDriveSpec } from './driver.js';
import { run } from './host-process.js';

/**
 * OpenStack config drive: an ISO9660 image (Rock Ridge + Joliet, so names
 * keep their case) with volume label `config-2`, laid out as Nova writes it
 * and as cloud-init's ConfigDrive datasource reads it:
 *
 *   openstack/<version>/meta_data.json     every version
 *   openstack/<version>/user_data          every version, when there is user data
 *   openstack/<version>/vendor_data.json   from 2013-10-17 (Havana)
 *   openstack/<version>/network_data.json  from 2015-10-15 (Liberty)
 *   openstack/<version>/vendor_data2.json  from 2016-10-06 (Newton)
 *
 * for the versions Nova serves, from 2012-08-10 (Folsom) to `latest`.
 * (Nova also writes the EC2-style `ec2/` tree; Stratus guests do not need it.)
 */

/** Metadata versions in order; `latest` last. */
export const OPENSTACK_METADATA_VERSIONS = [
  '2012-08-10',
  '2013-04-04',
  '2013-10-17',
  '2015-10-15',
  '2016-06-30',
  '2016-10-06',
  '2017-02-22',
  '2018-08-27',
  '2020-10-14',
  'latest',
] as const;

const since = (v: string, first: string): boolean =>
  OPENSTACK_METADATA_VERSIONS.indexOf(v as (typeof OPENSTACK_METADATA_VERSIONS)[number]) >=
  OPENSTACK_METADATA_VERSIONS.indexOf(first as (typeof OPENSTACK_METADATA_VERSIONS)[number]);

export const CONFIG_DRIVE_LABEL = 'config-2';

/** The files of a config drive: relative path -> contents. Pure; used by {@link buildConfigDrive}. */
export function configDriveFiles(spec: ConfigDriveSpec): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
  const md = json(spec.metaData);
  const nd = json(spec.networkData ?? { links: [], networks: [], services: [] });
  const vd = json(spec.vendorData ?? {});
  const vd2 = json(spec.vendorData2 ?? {});
  for (const v of OPENSTACK_METADATA_VERSIONS) {
    const d = `openstack/${v}`;
    files.set(`${d}/meta_data.json`, md);
    if (spec.userData !== undefined) files.set(`${d}/user_data`, spec.userData);
    if (since(v, '2013-10-17')) files.set(`${d}/vendor_data.json`, vd);
    if (since(v, '2015-10-15')) files.set(`${d}/network_data.json`, nd);
    if (since(v, '2016-10-06')) files.set(`${d}/vendor_data2.json`, vd2);
  }
  return files;
}

/**
 * Writes the config drive ISO to `outPath` (via a temp file + rename).
 * Needs `genisoimage` (Debian package genisoimage).
 */
export async function buildConfigDrive(outPath: string, spec: ConfigDriveSpec): Promise<void> {
  const dir = dirname(outPath);
  const tree = await mkdtemp(join(dir, '.config-drive-'));
  const tmpIso = `${outPath}.tmp-${process.pid}`;
  try {
    for (const [rel, data] of configDriveFiles(spec)) {
      await mkdir(dirname(join(tree, rel)), { recursive: true });
      await writeFile(join(tree, rel), data);
    }
    // Nova's genisoimage flags: Rock Ridge + Joliet, relaxed ISO9660 names
    await run('genisoimage', [
      '-o', tmpIso,
      '-ldots', '-allow-lowercase', '-allow-multidot', '-l',
      '-publisher', 'Stratus',
      '-quiet', '-J', '-r',
      '-V', CONFIG_DRIVE_LABEL,
      tree,
    ]);
    await rename(tmpIso, outPath);
  } finally {
    await rm(tree, { recursive: true, force: true });
    await rm(tmpIso, { force: true });
  }
}
