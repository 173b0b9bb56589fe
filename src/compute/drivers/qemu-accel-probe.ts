import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { buildConfigDrive } from './config-drive.js';
import type { Accel, DiskFormat } from './driver.js';
import { killPid, run, sleep, waitForExit } from './host-process.js';

/**
 * Decides whether QEMU guests can use KVM on this host, by booting a real
 * guest with `-accel kvm` and waiting for its ready marker on the serial
 * console: first with `-cpu host`, then (if QEMU refuses or the guest does
 * not come up) with QEMU's default CPU model. That `/dev/kvm` exists, or
 * even that QEMU starts with KVM, proves nothing: on some hosts (e.g.
 * kvm_pvm in a microVM) a stock kernel never reaches user space. Anything
 * short of the marker within the timeout (20 s per attempt; TCG boots the
 * test guest in 3-7 s) means TCG.
 */

/** Bump when the probe procedure changes: older cached verdicts are re-probed. */
export const PROBE_VERSION = 2;

export interface AccelProbeResult {
  probeVersion: number;
  accel: Accel;
  /** With KVM: the CPU model that booted (`host`, or undefined = QEMU's default). */
  cpuModel?: string;
  /** Why, in words (for logs and `hostInfo`). */
  reason: string;
  probedAt: string;
  /** `qemu-system-x86_64 --version` first line: a new QEMU re-probes. */
  qemuVersion: string;
  /** Host kernel release: a new kernel re-probes. */
  kernelRelease: string;
  /** Boot time to the marker under KVM, when it booted. */
  bootMs?: number;
}

export interface AccelProbeOptions {
  qemuBinary?: string;
  /** A bootable guest disk that prints {@link READY_MARKER} (the Stratus guest image). Without one, KVM is unproven: TCG. */
  probeImage?: { path: string; format: DiskFormat };
  /** Scratch dir (a subdir is created and removed). */
  workDir: string;
  /** Default 20000 ms. */
  timeoutMs?: number;
  log?: (msg: string) => void;
}

/** The line the Stratus guest prints when it is up (see guest/init). */
export const READY_MARKER = 'STRATUS-GUEST-READY';

export async function qemuVersion(qemuBinary = 'qemu-system-x86_64'): Promise<string> {
  const out = await run(qemuBinary, ['--version'], { timeoutMs: 15_000 });
  return out.split('\n')[0]!.trim();
}

/** Probes KVM by booting `probeImage` (see module doc). Never throws for a KVM failure: returns TCG with the reason. */
export async function probeAccel(opts: AccelProbeOptions): Promise<AccelProbeResult> {
  const qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
  const base = {
    probeVersion: PROBE_VERSION,
    probedAt: new Date().toISOString(),
    qemuVersion: await qemuVersion(qemu),
    kernelRelease: release(),
  };
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { ...base, accel: 'tcg', reason: '/dev/kvm missing or not usable' };
  }
  if (!opts.probeImage) return { ...base, accel: 'tcg', reason: 'no probe image: KVM not proven by a boot' };

  const timeoutMs = opts.timeoutMs ?? 20_000;
  await mkdir(opts.workDir, { recursive: true });
  const dir = await mkdtemp(join(opts.workDir, '.accel-probe-'));
  try {
    // a config drive, so the guest does not wait for a datasource
    const iso = join(dir, 'config.iso');
    await buildConfigDrive(iso, { metaData: { uuid: '00000000-0000-0000-0000-000000000000', hostname: 'accel-probe', name: 'accel-probe' } });
    const reasons: string[] = [];
    for (const cpuModel of ['host', undefined]) {
      const r = await bootOnce(qemu, opts.probeImage, iso, join(dir, 'console.log'), cpuModel, timeoutMs, opts.log);
      const label = `cpu ${cpuModel ?? 'default'}`;
      if (r.ok) {
        const result: AccelProbeResult = { ...base, accel: 'kvm', reason: `guest booted to its marker with KVM (${label})`, bootMs: r.ms };
        if (cpuModel) result.cpuModel = cpuModel;
        return result;
      }
      reasons.push(`${label}: ${r.why}`);
    }
    return { ...base, accel: 'tcg', reason: `KVM did not boot the guest: ${reasons.join('; ')}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One KVM boot attempt: QEMU as our child, serial console to a file, killed by pid afterwards. */
async function bootOnce(
  qemu: string,
  image: { path: string; format: DiskFormat },
  iso: string,
  log: string,
  cpuModel: string | undefined,
  timeoutMs: number,
  say?: (msg: string) => void,
): Promise<{ ok: true; ms: number } | { ok: false; why: string }> {
  await rm(log, { force: true });
  const args = [
    '-accel', 'kvm', ...(cpuModel ? ['-cpu', cpuModel] : []), '-machine', 'pc', '-m', '256', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-serial', `file:${log}`,
    '-drive', `file=${image.path},format=${image.format},if=virtio,snapshot=on`,
    '-drive', `file=${iso},format=raw,media=cdrom,readonly=on`,
  ];
  const t0 = Date.now();
  say?.(`accel probe: booting the guest with KVM, cpu ${cpuModel ?? 'default'} (up to ${timeoutMs / 1000} s)`);
  const child = spawn(qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let exited = false;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('exit', () => (exited = true));
  child.on('error', (e) => {
    exited = true;
    stderr += e.message;
  });
  try {
    while (Date.now() - t0 < timeoutMs) {
      const out = await readFile(log, 'utf8').catch(() => '');
      if (out.includes(READY_MARKER)) return { ok: true, ms: Date.now() - t0 };
      if (exited) {
        await sleep(50);
        return { ok: false, why: `QEMU exited: ${stderr.trim().split('\n').pop() ?? ''}` };
      }
      await sleep(200);
    }
    return { ok: false, why: `guest not up within ${timeoutMs / 1000} s` };
  } finally {
    if (child.pid !== undefined && !exited) {
      killPid(child.pid, 'SIGKILL');
      await waitForExit(child.pid, 10_000);
    }
  }
}

/**
 * Returns the cached probe result from `cacheFile` when it was made with
 * the same QEMU and host kernel, else probes and caches the new result.
 */
export async function loadOrProbeAccel(cacheFile: string, opts: AccelProbeOptions): Promise<AccelProbeResult> {
  const qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as AccelProbeResult;
    if (cached.probeVersion === PROBE_VERSION && cached.qemuVersion === (await qemuVersion(qemu)) && cached.kernelRelease === release()) {
      // an image-less "tcg" verdict is re-probed once an image is available
      if (!(cached.accel === 'tcg' && cached.reason.startsWith('no probe image') && opts.probeImage)) return cached;
    }
  } catch {
    /* no or bad cache: probe */
  }
  const result = await probeAccel(opts);
  await mkdir(dirname(cacheFile), { recursive: true });
  const tmp = `${cacheFile}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(result, null, 2) + '\n');
  await rename(tmp, cacheFile);
  return result;
}
