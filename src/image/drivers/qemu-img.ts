import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * `qemu-img` as the image service uses it: `info` to learn an uploaded
 * disk's virtual size (and to refuse disks that would make compute read
 * other host files), `convert` for the import plugin that turns staged
 * images into the cloud's preferred format (qcow2).
 *
 * Every run is bounded (address space, CPU time, wall clock) as Nova does for
 * `qemu-img info` on untrusted images: a crafted header must not be able to
 * exhaust the host.
 */

/** Glance disk_format → qemu block driver name. */
export const QEMU_FORMATS: Record<string, string> = {
  raw: 'raw',
  qcow2: 'qcow2',
  vmdk: 'vmdk',
  vdi: 'vdi',
  vhd: 'vpc',
  vhdx: 'vhdx',
  iso: 'raw',
  ami: 'raw',
  ari: 'raw',
  aki: 'raw',
};

/** qemu driver name → Glance disk_format (for probed formats). */
export const GLANCE_FORMATS: Record<string, string> = { raw: 'raw', qcow2: 'qcow2', vmdk: 'vmdk', vdi: 'vdi', vpc: 'vhd', vhdx: 'vhdx' };

export interface DiskInfo {
  /** qemu's driver name (raw, qcow2, vmdk, vpc...). */
  format: string;
  virtualSize: number;
  backingFile: string | null;
  /** qcow2 external data file, if any. */
  dataFile: string | null;
  /** VMDK create type (monolithicSparse, streamOptimized, monolithicFlat...). */
  vmdkCreateType: string | null;
}

export class QemuImgError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'QemuImgError';
  }
}

const QEMU_IMG = '/usr/bin/qemu-img';
const PRLIMIT = '/usr/bin/prlimit';

export const hasQemuImg = (): boolean => existsSync(QEMU_IMG);

function run(args: string[], opts: { timeoutMs: number; limitAs?: boolean; cpuSeconds?: number }): Promise<string> {
  const argv = existsSync(PRLIMIT)
    ? [PRLIMIT, ...(opts.limitAs ? ['--as=1073741824'] : []), `--cpu=${opts.cpuSeconds ?? 30}`, '--', QEMU_IMG, ...args]
    : [QEMU_IMG, ...args];
  return new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: opts.timeoutMs, maxBuffer: 4 * 1024 * 1024, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err) reject(new QemuImgError(`qemu-img ${args[0]} failed: ${(stderr || err.message).trim().split('\n').pop()}`, stderr));
      else resolve(stdout);
    });
  });
}

/**
 * `qemu-img info --output=json`, opening the file with the given qemu
 * format (as compute will open it), or probing when `format` is omitted.
 */
export async function qemuImgInfo(path: string, format?: string): Promise<DiskInfo> {
  const out = await run(['info', '--output=json', ...(format ? ['-f', format] : []), path], { timeoutMs: 60_000, limitAs: true, cpuSeconds: 30 });
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(out) as Record<string, unknown>;
  } catch {
    throw new QemuImgError('qemu-img info printed no JSON', out);
  }
  const spec = (j['format-specific'] as { type?: string; data?: Record<string, unknown> } | undefined) ?? {};
  const data = spec.data ?? {};
  return {
    format: String(j.format ?? format ?? 'raw'),
    virtualSize: Number(j['virtual-size'] ?? 0),
    backingFile: typeof j['backing-filename'] === 'string' ? (j['backing-filename'] as string) : typeof j['full-backing-filename'] === 'string' ? (j['full-backing-filename'] as string) : null,
    dataFile: typeof data['data-file'] === 'string' ? (data['data-file'] as string) : null,
    vmdkCreateType: spec.type === 'vmdk' && typeof data['create-type'] === 'string' ? (data['create-type'] as string) : null,
  };
}

/** `qemu-img convert -f src -O dst`; the output file is written in full before this resolves. */
export async function qemuImgConvert(src: string, srcFormat: string, dst: string, dstFormat = 'qcow2'): Promise<void> {
  await run(['convert', '-q', '-f', srcFormat, '-O', dstFormat, src, dst], { timeoutMs: 3_600_000, cpuSeconds: 3600 });
}

/**
 * Why a disk must not be accepted, or null when it is safe for compute to
 * open with its declared format: a backing file or an external data file
 * would make QEMU read another file of the host, and so would a VMDK whose
 * extents are separate files.
 */
export function unsafeReason(info: DiskInfo): string | null {
  if (info.backingFile) return `it refers to a backing file (${info.backingFile})`;
  if (info.dataFile) return `it refers to an external data file (${info.dataFile})`;
  if (info.vmdkCreateType && !['monolithicSparse', 'streamOptimized'].includes(info.vmdkCreateType))
    return `VMDK create type ${info.vmdkCreateType} refers to separate extent files`;
  return null;
}
