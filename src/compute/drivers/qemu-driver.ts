import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, statSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm, statfs, symlink } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { buildConfigDrive } from './config-drive.js';
import {
  ComputeDriverError,
  type Accel,
  type AttachedVolume,
  type NicSpec,
  type ComputeDriver,
  type DiskFormat,
  type HostInfo,
  type InstanceInfo,
  type InstanceSpec,
  type PowerState,
  type RescueSpec,
  type ResizeSpec,
  type VolumeAttachSpec,
} from './driver.js';
import { pidMatches, readPidfile, run, shellQuote, sleep, terminate, waitForExit } from './host-process.js';
import {
  instancePaths,
  readRecord,
  writeRecord,
  type InstancePaths,
  type InstanceRecord,
  type StoredVolume,
} from './instance-store.js';
import { loadOrProbeAccel, qemuVersion, type AccelProbeResult } from './qemu-accel-probe.js';
import {
  MAX_NICS,
  nicArgs,
  VOLUME_SLOT_FIRST,
  VOLUME_SLOT_LAST,
  blockdevSpec,
  buildQemuArgs,
  volumeDeviceId,
  volumeDeviceSpec,
  volumeNodeName,
} from './qemu-args.js';
import { QmpClient, QmpError, type QmpEvent } from './qmp-client.js';

/**
 * Compute driver for QEMU guests on this host (Nova's libvirt driver, with
 * QEMU driven directly: command line + QMP).
 *
 * - Each instance lives in `<stateDir>/<uuid>/` (see instance-store.ts):
 *   qcow2 overlay on the base image, config drive ISO, console log and
 *   socket, QMP socket, pidfile, state.json (spec + attached volumes).
 * - QEMU runs detached in its own session (setsid) with a pidfile, so it
 *   outlives the agent; after a restart a new driver adopts it: the pid
 *   from the pidfile is trusted only if /proc/PID/cmdline carries the
 *   instance uuid and dir, and QMP is reconnected on first use.
 * - With `hostNetns`, taps are created and QEMU runs inside that existing
 *   network namespace (`ip netns exec NS qemu-system-x86_64 ...`).
 * - Acceleration: `-accel tcg` unless a real boot proved KVM works (see
 *   qemu-accel-probe.ts); the verdict is cached in `accelCacheFile` (the cloud passes the host-wide cache dir).
 */

export interface QemuDriverLogger {
  info(msg: string): void;
  warn(msg: string): void;
  debug?(msg: string): void;
}

export interface QemuDriverOptions {
  /** Where instance dirs live, e.g. `<data>/instances`. Absolute or relative (resolved once). */
  stateDir: string;
  /** Existing network namespace for taps and QEMU processes (the `stratus up --host-netns` model). */
  hostNetns?: string;
  /** `auto` (default): probe KVM once with a real boot; `kvm`/`tcg` force it. */
  accel?: 'auto' | Accel;
  /** Guest image used by the KVM probe (the Stratus guest image). Without it, `auto` means TCG. */
  probeImage?: { path: string; format: DiskFormat };
  /** Where the probe verdict is cached (default `<stateDir>/accel-probe.json`). */
  accelCacheFile?: string;
  qemuBinary?: string;
  log?: QemuDriverLogger;
  /** Lifecycle/device events from QEMU (SHUTDOWN, STOP, RESUME, DEVICE_DELETED, ...) and `QEMU_EXITED` when the monitor connection drops. */
  onEvent?: (uuid: string, event: QmpEvent) => void;
  /** While waiting for a clean shutdown, press the power button again every N seconds (default 10, as Nova). */
  shutdownRetryIntervalS?: number;
  /** Seconds a soft reboot waits for the guest to power off before forcing it (default 60). */
  softRebootTimeoutS?: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const TAP_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const GIB = 1024 ** 3;
const SUN_PATH_MAX = 107;

const noopLog: QemuDriverLogger = { info: () => {}, warn: () => {} };

/** Maps a QEMU runstate (query-status) to a power state. */
export function powerStateOf(status: string): PowerState {
  switch (status) {
    case 'running':
    case 'colo':
      return 'running';
    case 'shutdown':
      return 'shutdown';
    case 'guest-panicked':
    case 'internal-error':
      return 'crashed';
    default:
      // paused, suspended (guest S3), inmigrate, postmigrate, prelaunch,
      // finish-migrate, save-vm, restore-vm, debug, watchdog, io-error
      return 'paused';
  }
}

/** How often a hot-unplug the guest has not acted on is requested again. */
const UNPLUG_RETRY_MS = 10_000;

export class QemuDriver implements ComputeDriver {
  readonly stateDir: string;
  private readonly log: QemuDriverLogger;
  private readonly qemu: string;
  private accel: Accel | null = null;
  private accelDecision: Promise<Accel> | null = null;
  private probe: AccelProbeResult | null = null;
  private readonly qmpConns = new Map<string, QmpClient>();
  private readonly qmpConnecting = new Map<string, Promise<QmpClient>>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: QemuDriverOptions) {
    this.stateDir = resolve(opts.stateDir);
    if (/[,'"\s]/.test(this.stateDir)) {
      throw new ComputeDriverError('InvalidSpec', `stateDir must not contain commas, quotes or spaces (QEMU option syntax): ${this.stateDir}`);
    }
    const longest = join(this.stateDir, '00000000-0000-0000-0000-000000000000', 'console.sock');
    if (longest.length > SUN_PATH_MAX) {
      throw new ComputeDriverError('InvalidSpec', `stateDir is too long for unix socket paths (${longest.length} > ${SUN_PATH_MAX}): ${this.stateDir}`);
    }
    this.log = opts.log ?? noopLog;
    this.qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
  }

  // ---------------------------------------------------------------- lifecycle of the driver

  async init(): Promise<void> {
    await mkdir(this.stateDir, { recursive: true });
    await this.decideAccel();
    // leftovers: half-created instance dirs, runtime files of dead processes
    for (const n of await readdir(this.stateDir)) {
      if (n.startsWith('.spawn-') || n.startsWith('.accel-probe-')) {
        await rm(join(this.stateDir, n), { recursive: true, force: true });
        continue;
      }
      if (!UUID_RE.test(n)) continue;
      const paths = instancePaths(this.stateDir, n);
      if (!existsSync(paths.stateFile)) continue;
      if ((await this.livePid(n, paths)) === null) await this.removeRuntimeFiles(paths);
    }
  }

  async close(): Promise<void> {
    for (const c of this.qmpConns.values()) {
      c.removeAllListeners('close');
      c.close();
    }
    this.qmpConns.clear();
  }

  /** The acceleration in use (after init). */
  get acceleration(): Accel {
    return this.accel ?? 'tcg';
  }

  /** The KVM probe verdict, when `accel` is `auto`. */
  get probeResult(): AccelProbeResult | null {
    return this.probe;
  }

  private decideAccel(): Promise<Accel> {
    this.accelDecision ??= this.decideAccelOnce().catch((e: unknown) => {
      this.accelDecision = null;
      throw e;
    });
    return this.accelDecision;
  }

  private async decideAccelOnce(): Promise<Accel> {
    const mode = this.opts.accel ?? 'auto';
    if (mode !== 'auto') {
      this.accel = mode;
      this.log.info(`qemu: accel ${mode} (forced)`);
      return mode;
    }
    this.probe = await loadOrProbeAccel(this.opts.accelCacheFile ?? join(this.stateDir, 'accel-probe.json'), {
      qemuBinary: this.qemu,
      probeImage: this.opts.probeImage,
      workDir: this.stateDir,
      log: (m) => this.log.info(m),
    });
    this.accel = this.probe.accel;
    this.log.info(`qemu: accel ${this.accel} (${this.probe.reason})`);
    return this.accel;
  }

  // ---------------------------------------------------------------- instance lifecycle

  async spawn(spec: InstanceSpec): Promise<void> {
    this.validateSpec(spec);
    await this.withLock(spec.uuid, async () => {
      const paths = this.paths(spec.uuid);
      if (existsSync(paths.dir)) throw new ComputeDriverError('Exists', `instance ${spec.uuid} already exists on this host`, spec.uuid);
      const accel = await this.decideAccel();
      await mkdir(this.stateDir, { recursive: true });
      const tmp = join(this.stateDir, `.spawn-${spec.uuid}-${randomBytes(3).toString('hex')}`);
      await mkdir(tmp);
      const createdTaps: string[] = [];
      let placed = false;
      try {
        const imagePath = resolve(spec.imagePath);
        if (spec.rootVolume) await symlink(resolve(spec.rootVolume.path), join(tmp, 'disk.qcow2'));
        else {
          const imageSize = await this.virtualSize(imagePath, spec.imageFormat);
          const size = Math.max(imageSize, spec.rootGb * GIB);
          await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', spec.imageFormat, '-b', imagePath, join(tmp, 'disk.qcow2'), String(size)]);
        }
        if (spec.configDrive) await buildConfigDrive(join(tmp, 'disk.config'), spec.configDrive);
        const record: InstanceRecord = {
          version: 1,
          spec: {
            uuid: spec.uuid,
            name: spec.name,
            vcpus: spec.vcpus,
            memoryMb: spec.memoryMb,
            rootGb: spec.rootGb,
            imagePath,
            imageFormat: spec.imageFormat,
            nics: spec.nics.map((n) => ({ ...n })),
            hasConfigDrive: !!spec.configDrive,
          },
          volumes: [],
          createdAt: new Date().toISOString(),
        };
        for (const v of spec.volumes ?? []) record.volumes.push(this.allocateVolume(record, v));
        if (spec.rescue) {
          record.rescue = { imagePath: resolve(spec.rescue.imagePath), imageFormat: spec.rescue.imageFormat };
          await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', spec.rescue.imageFormat, '-b', record.rescue.imagePath, join(tmp, 'disk.rescue.qcow2')]);
        }
        await writeRecord(paths, record, tmp);
        await rename(tmp, paths.dir);
        placed = true;
        for (const nic of spec.nics) if (await this.ensureTap(nic.tapName, nic.mtu)) createdTaps.push(nic.tapName);
        await this.startQemu(spec.uuid, paths, record, accel);
        this.log.info(`qemu: spawned ${spec.uuid} (${spec.name}), accel ${accel}`);
      } catch (e) {
        // leave nothing behind (but never touch a dir someone else created meanwhile)
        if (placed) {
          const pid = await this.livePid(spec.uuid, paths);
          if (pid !== null) await terminate(pid);
          this.dropQmp(spec.uuid);
          await rm(paths.dir, { recursive: true, force: true });
        }
        for (const t of createdTaps) await this.deleteTap(t).catch(() => undefined);
        await rm(tmp, { recursive: true, force: true });
        throw this.asDriverError(e, spec.uuid);
      }
    });
  }

  async destroy(uuid: string): Promise<void> {
    if (!UUID_RE.test(uuid)) return;
    await this.withLock(uuid, async () => {
      const paths = this.paths(uuid);
      if (!existsSync(paths.dir)) return;
      const record = await readRecord(paths);
      const pid = await this.livePid(uuid, paths);
      if (pid !== null) await this.forceStop(uuid, pid);
      this.dropQmp(uuid);
      for (const nic of record?.spec.nics ?? []) await this.deleteTap(nic.tapName).catch(() => undefined);
      await rm(paths.dir, { recursive: true, force: true });
      this.log.info(`qemu: destroyed ${uuid}`);
    });
  }

  async powerOff(uuid: string, opts: { timeoutS?: number } = {}): Promise<void> {
    await this.withLock(uuid, () => this.doPowerOff(uuid, opts.timeoutS ?? 60));
  }

  async powerOn(uuid: string): Promise<void> {
    await this.withLock(uuid, () => this.doPowerOn(uuid));
  }

  async reboot(uuid: string, hard: boolean): Promise<void> {
    await this.withLock(uuid, async () => {
      const { paths } = await this.requireRecord(uuid);
      if (existsSync(paths.memoryState)) throw new ComputeDriverError('InvalidState', `instance ${uuid} is suspended: resume it`, uuid);
      if (hard) {
        const pid = await this.livePid(uuid, paths);
        if (pid !== null) await this.forceStop(uuid, pid);
      } else {
        await this.doPowerOff(uuid, this.opts.softRebootTimeoutS ?? 60);
      }
      await this.doPowerOn(uuid);
    });
  }

  async pause(uuid: string): Promise<void> {
    await this.withLock(uuid, async () => {
      const { qmp, status } = await this.requireLive(uuid);
      if (powerStateOf(status) === 'paused') return;
      if (status !== 'running') throw new ComputeDriverError('InvalidState', `cannot pause ${uuid} in state ${status}`, uuid);
      await qmp.execute('stop');
    });
  }

  async unpause(uuid: string): Promise<void> {
    await this.withLock(uuid, async () => {
      const { qmp, status } = await this.requireLive(uuid);
      if (status === 'running') return;
      if (status !== 'paused') throw new ComputeDriverError('InvalidState', `cannot unpause ${uuid} in state ${status}`, uuid);
      await qmp.execute('cont');
    });
  }

  async suspend(uuid: string): Promise<void> {
    await this.withLock(uuid, async () => {
      const { paths, qmp, status, pid } = await this.requireLive(uuid);
      if (status !== 'running' && status !== 'paused') throw new ComputeDriverError('InvalidState', `cannot suspend ${uuid} in state ${status}`, uuid);
      const tmp = `${paths.memoryState}.part`;
      await rm(tmp, { force: true });
      if (status === 'running') await qmp.execute('stop');
      try {
        await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 8 * GIB }).catch(() => undefined);
        await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(tmp)}` });
        const end = Date.now() + 300_000;
        for (;;) {
          const m = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
          if (m.status === 'completed') break;
          if (m.status === 'failed' || m.status === 'cancelled') throw new Error(`saving state failed: ${m['error-desc'] ?? m.status}`);
          if (Date.now() > end) {
            await qmp.execute('migrate_cancel').catch(() => undefined);
            throw new Error('saving state timed out');
          }
          await sleep(100);
        }
      } catch (e) {
        await rm(tmp, { force: true });
        if (status === 'running') await qmp.execute('cont').catch(() => undefined);
        throw this.asDriverError(e, uuid);
      }
      await rename(tmp, paths.memoryState);
      await this.forceStop(uuid, pid);
      this.log.info(`qemu: suspended ${uuid} to ${paths.memoryState}`);
    });
  }

  async resume(uuid: string): Promise<void> {
    await this.withLock(uuid, async () => {
      const { paths } = await this.requireRecord(uuid);
      if (!existsSync(paths.memoryState)) throw new ComputeDriverError('InvalidState', `instance ${uuid} is not suspended`, uuid);
      await this.doPowerOn(uuid);
    });
  }

  async getInfo(uuid: string): Promise<InstanceInfo> {
    if (!UUID_RE.test(uuid)) return { powerState: 'nostate' };
    const paths = this.paths(uuid);
    if (!existsSync(paths.stateFile)) return { powerState: 'nostate' };
    const pid = await this.livePid(uuid, paths);
    if (pid === null) return { powerState: existsSync(paths.memoryState) ? 'suspended' : 'shutdown' };
    try {
      const qmp = await this.qmp(uuid, paths);
      const st = await qmp.execute<{ status: string }>('query-status', undefined, { timeoutMs: 10_000 });
      return { powerState: powerStateOf(st.status), pid, status: st.status };
    } catch (e) {
      // the process is there but its monitor does not answer (busy, or held by another client)
      this.log.warn(`qemu: ${uuid} pid ${pid}: monitor not answering: ${(e as Error).message}`);
      return { powerState: 'running', pid };
    }
  }

  async listInstances(): Promise<string[]> {
    if (!existsSync(this.stateDir)) return [];
    const out: string[] = [];
    for (const n of (await readdir(this.stateDir)).sort()) {
      if (UUID_RE.test(n) && existsSync(join(this.stateDir, n, 'state.json'))) out.push(n);
    }
    return out;
  }

  // ---------------------------------------------------------------- volumes

  async attachVolume(uuid: string, volume: VolumeAttachSpec): Promise<string> {
    this.validateVolume(volume);
    return this.withLock(uuid, async () => {
      const { paths, record } = await this.requireRecord(uuid);
      const existing = record.volumes.find((v) => v.volumeId === volume.volumeId);
      if (existing) return existing.device;
      const v = this.allocateVolume(record, volume);
      const pid = await this.livePid(uuid, paths);
      if (pid !== null) {
        const qmp = await this.qmp(uuid, paths);
        const node = volumeNodeName(v.slot);
        await qmp.execute('blockdev-add', blockdevSpec(node, v.path, v.format, { readOnly: v.readOnly, blockDevice: isBlockDevice(v.path) }));
        try {
          await qmp.execute('device_add', volumeDeviceSpec(v));
        } catch (e) {
          await qmp.execute('blockdev-del', { 'node-name': node }).catch(() => undefined);
          throw this.asDriverError(e, uuid);
        }
      }
      record.volumes.push(v);
      await writeRecord(paths, record);
      this.log.info(`qemu: attached volume ${v.volumeId} to ${uuid} as ${v.device}${pid === null ? ' (at next start)' : ''}`);
      return v.device;
    });
  }

  async detachVolume(uuid: string, volumeId: string, opts: { timeoutS?: number } = {}): Promise<void> {
    await this.withLock(uuid, async () => {
      const { paths, record } = await this.requireRecord(uuid);
      const v = record.volumes.find((x) => x.volumeId === volumeId);
      if (!v) return;
      const pid = await this.livePid(uuid, paths);
      if (pid !== null) {
        const qmp = await this.qmp(uuid, paths);
        await this.unplugDevice(uuid, qmp, volumeDeviceId(v.slot), `volume ${volumeId}`, (opts.timeoutS ?? 30) * 1000);
        await qmp.execute('blockdev-del', { 'node-name': volumeNodeName(v.slot) }).catch((e: Error) => {
          if (!(e instanceof QmpError)) throw e;
          this.log.warn(`qemu: blockdev-del ${volumeNodeName(v.slot)}: ${e.message}`);
        });
      }
      record.volumes = record.volumes.filter((x) => x.volumeId !== volumeId);
      await writeRecord(paths, record);
      this.log.info(`qemu: detached volume ${volumeId} from ${uuid}`);
    });
  }

  async attachInterface(uuid: string, nic: NicSpec): Promise<void> {
    if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(nic.tapName)) throw new ComputeDriverError('InvalidSpec', `bad tap name ${nic.tapName}`, uuid);
    await this.withLock(uuid, async () => {
      const { paths, record } = await this.requireRecord(uuid);
      const nics = record.spec.nics;
      if (nics.some((n) => n.tapName === nic.tapName)) return;
      if (nics.length >= MAX_NICS) throw new ComputeDriverError('InvalidSpec', `at most ${MAX_NICS} NICs`, uuid);
      const used = new Set(nics.map((n, i) => n.slot ?? i));
      let slot = 0;
      while (used.has(slot)) slot++;
      const entry: NicSpec = { ...nic, slot };
      const created = await this.ensureTap(nic.tapName, nic.mtu);
      const pid = await this.livePid(uuid, paths);
      if (pid !== null) {
        const qmp = await this.qmp(uuid, paths);
        const { netdev, device } = nicArgs(entry, slot);
        try {
          await qmp.execute('netdev_add', netdev);
          try {
            await qmp.execute('device_add', device);
          } catch (e) {
            await qmp.execute('netdev_del', { id: netdev.id }).catch(() => undefined);
            throw e;
          }
        } catch (e) {
          if (created) await this.deleteTap(nic.tapName).catch(() => undefined);
          throw this.asDriverError(e, uuid);
        }
      }
      // keep the slots of earlier NICs stable across restarts
      record.spec.nics = [...nics.map((n, i) => ({ ...n, slot: n.slot ?? i })), entry];
      await writeRecord(paths, record);
      this.log.info(`qemu: attached NIC ${nic.tapName} to ${uuid} in slot ${slot}${pid === null ? ' (at next start)' : ''}`);
    });
  }

  /**
   * Hot-unplugs device `id`: the guest must acknowledge the ACPI eject. Waits
   * for DEVICE_DELETED, polling the peripheral list too in case the event was
   * missed; a device already gone is fine; a guest that does not let go within
   * `timeoutMs` is a Timeout and the device stays.
   */
  private async unplugDevice(uuid: string, qmp: QmpClient, id: string, what: string, timeoutMs: number): Promise<void> {
    const deleted = qmp.waitForEvent('DEVICE_DELETED', (ev) => ev.data?.device === id, timeoutMs);
    deleted.catch(() => undefined);
    try {
      await qmp.execute('device_del', { id });
    } catch (e) {
      if (e instanceof QmpError && e.errorClass === 'DeviceNotFound') return;
      throw this.asDriverError(e, uuid);
    }
    // A guest that is still booting misses the hot-unplug request (its ACPI
    // hotplug driver is not up yet): ask again every few seconds, as libvirt's
    // users do, until the device is gone or the time is up.
    const poll = (async (): Promise<void> => {
      const end = Date.now() + timeoutMs;
      let asked = Date.now();
      while (Date.now() < end) {
        await sleep(500);
        const list = await qmp.execute<{ name: string }[]>('qom-list', { path: '/machine/peripheral' }).catch(() => null);
        if (list && !list.some((p) => p.name === id)) return;
        if (Date.now() - asked >= UNPLUG_RETRY_MS) {
          asked = Date.now();
          await qmp.execute('device_del', { id }).catch(() => undefined);
        }
      }
      throw new Error('timeout');
    })();
    poll.catch(() => undefined);
    try {
      await Promise.any([deleted, poll]);
    } catch {
      throw new ComputeDriverError('Timeout', `guest of ${uuid} did not release ${what} within ${timeoutMs / 1000} s; still attached`, uuid);
    }
  }

  async detachInterface(uuid: string, tapName: string, opts: { timeoutS?: number } = {}): Promise<void> {
    await this.withLock(uuid, async () => {
      const { paths, record } = await this.requireRecord(uuid);
      const idx = record.spec.nics.findIndex((n) => n.tapName === tapName);
      if (idx < 0) return;
      const slot = record.spec.nics[idx]!.slot ?? idx;
      const pid = await this.livePid(uuid, paths);
      if (pid !== null) {
        const qmp = await this.qmp(uuid, paths);
        await this.unplugDevice(uuid, qmp, `nic${slot}`, `NIC ${tapName}`, (opts.timeoutS ?? 30) * 1000);
        await qmp.execute('netdev_del', { id: `net${slot}` }).catch(() => undefined);
      }
      record.spec.nics = record.spec.nics.map((n, i) => ({ ...n, slot: n.slot ?? i })).filter((n) => n.tapName !== tapName);
      await writeRecord(paths, record);
      await this.deleteTap(tapName).catch(() => undefined);
      this.log.info(`qemu: detached NIC ${tapName} from ${uuid}`);
    });
  }

  async extendVolume(uuid: string, volumeId: string, newBytes: number): Promise<void> {
    await this.withLock(uuid, async () => {
      const { paths, record } = await this.requireRecord(uuid);
      const v = record.volumes.find((x) => x.volumeId === volumeId);
      if (!v) throw new ComputeDriverError('NotFound', `volume ${volumeId} is not attached to ${uuid}`, uuid);
      if ((await this.livePid(uuid, paths)) === null) return;
      const qmp = await this.qmp(uuid, paths);
      await qmp.execute('block_resize', { 'node-name': volumeNodeName(v.slot), size: newBytes });
    });
  }

  async listVolumes(uuid: string): Promise<AttachedVolume[]> {
    const { record } = await this.requireRecord(uuid);
    return record.volumes.map(({ slot: _slot, ...v }) => v);
  }

  // ---------------------------------------------------------------- console, snapshot, resize, rescue

  async consoleOutput(uuid: string, maxLines?: number): Promise<string> {
    const { paths } = await this.requireRecord(uuid);
    const text = (await readFile(paths.consoleLog, 'utf8').catch(() => '')).replace(/\r/g, '');
    if (maxLines === undefined) return text;
    const lines = text.split('\n');
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-maxLines).join('\n') + (lines.length ? '\n' : '');
  }

  async snapshot(uuid: string, outPath: string): Promise<void> {
    await this.withLock(uuid, async () => {
      const { paths } = await this.requireRecord(uuid);
      const out = resolve(outPath);
      const tmp = `${out}.part-${randomBytes(3).toString('hex')}`;
      const pid = await this.livePid(uuid, paths);
      let resumeAfter = false;
      let qmp: QmpClient | null = null;
      if (pid !== null) {
        qmp = await this.qmp(uuid, paths);
        const st = await qmp.execute<{ status: string }>('query-status');
        if (st.status === 'running') {
          await qmp.execute('stop'); // drains and flushes all block I/O
          resumeAfter = true;
        }
      }
      try {
        // -U: QEMU holds the image lock; safe because the guest is stopped
        await run('qemu-img', ['convert', ...(pid !== null ? ['-U'] : []), '-f', 'qcow2', '-O', 'qcow2', paths.disk, tmp], { timeoutMs: 3_600_000 });
        await rename(tmp, out);
      } finally {
        await rm(tmp, { force: true });
        if (resumeAfter && qmp) await qmp.execute('cont').catch((e: Error) => this.log.warn(`qemu: cont after snapshot of ${uuid}: ${e.message}`));
      }
    });
  }

  async resize(uuid: string, spec: ResizeSpec): Promise<void> {
    if (!(Number.isInteger(spec.vcpus) && spec.vcpus >= 1 && Number.isInteger(spec.memoryMb) && spec.memoryMb >= 64 && spec.rootGb >= 0)) {
      throw new ComputeDriverError('InvalidSpec', `invalid resize ${JSON.stringify(spec)}`, uuid);
    }
    await this.withLock(uuid, async () => {
      const { paths, record } = await this.requireRecord(uuid);
      if (existsSync(paths.memoryState)) throw new ComputeDriverError('InvalidState', `instance ${uuid} is suspended`, uuid);
      const current = await this.virtualSize(paths.disk, 'qcow2', true);
      const wanted = spec.rootGb * GIB;
      if (spec.rootGb > 0 && wanted < current) {
        throw new ComputeDriverError('InvalidSpec', `root disk of ${uuid} cannot shrink (${current} bytes > ${spec.rootGb} GiB)`, uuid);
      }
      const wasRunning = (await this.livePid(uuid, paths)) !== null;
      if (wasRunning) await this.doPowerOff(uuid, 60);
      if (spec.rootGb > 0 && wanted > current) await run('qemu-img', ['resize', '-q', '-f', 'qcow2', paths.disk, String(wanted)]);
      record.spec.vcpus = spec.vcpus;
      record.spec.memoryMb = spec.memoryMb;
      if (spec.rootGb > 0) record.spec.rootGb = spec.rootGb;
      await writeRecord(paths, record);
      if (wasRunning) await this.doPowerOn(uuid);
    });
  }

  async rescue(uuid: string, rescue: RescueSpec): Promise<void> {
    await this.withLock(uuid, async () => {
      const { paths, record } = await this.requireRecord(uuid);
      if (record.rescue) throw new ComputeDriverError('InvalidState', `instance ${uuid} is already in rescue mode`, uuid);
      if (existsSync(paths.memoryState)) throw new ComputeDriverError('InvalidState', `instance ${uuid} is suspended`, uuid);
      await this.doPowerOff(uuid, 60);
      const image = resolve(rescue.imagePath);
      await rm(paths.rescueDisk, { force: true });
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', rescue.imageFormat, '-b', image, paths.rescueDisk]);
      record.rescue = { imagePath: image, imageFormat: rescue.imageFormat };
      await writeRecord(paths, record);
      await this.doPowerOn(uuid);
    });
  }

  async unrescue(uuid: string): Promise<void> {
    await this.withLock(uuid, async () => {
      const { paths, record } = await this.requireRecord(uuid);
      if (!record.rescue) throw new ComputeDriverError('InvalidState', `instance ${uuid} is not in rescue mode`, uuid);
      const pid = await this.livePid(uuid, paths);
      if (pid !== null) await this.forceStop(uuid, pid);
      delete record.rescue;
      await writeRecord(paths, record);
      await rm(paths.rescueDisk, { force: true });
      await this.doPowerOn(uuid);
    });
  }

  async hostInfo(): Promise<HostInfo> {
    await mkdir(this.stateDir, { recursive: true });
    const fs = await statfs(this.stateDir);
    const version = /version\s+(\d+\.\d+\.\d+)/.exec(await qemuVersion(this.qemu).catch(() => ''))?.[1] ?? 'unknown';
    return {
      vcpus: cpus().length,
      memoryMb: Math.floor(totalmem() / (1024 * 1024)),
      diskGb: Math.floor((fs.blocks * fs.bsize) / GIB),
      hypervisorType: 'QEMU',
      hypervisorVersion: version,
      accel: await this.decideAccel(),
    };
  }

  // ---------------------------------------------------------------- internals: power

  private async doPowerOff(uuid: string, timeoutS: number): Promise<void> {
    const { paths } = await this.requireRecord(uuid);
    const pid = await this.livePid(uuid, paths);
    if (pid === null) {
      await this.removeRuntimeFiles(paths);
      return;
    }
    let status: string | undefined;
    let qmp: QmpClient | null = null;
    try {
      qmp = await this.qmp(uuid, paths);
      status = (await qmp.execute<{ status: string }>('query-status', undefined, { timeoutMs: 5000 })).status;
    } catch {
      /* no monitor: force */
    }
    if (qmp && status === 'running' && timeoutS > 0) {
      // press the power button, again every retry interval (a guest may miss
      // a press while it is still booting), until the timeout
      const end = Date.now() + timeoutS * 1000;
      const retryMs = (this.opts.shutdownRetryIntervalS ?? 10) * 1000;
      let off = false;
      while (!off && Date.now() < end) {
        await qmp.execute('system_powerdown').catch(() => undefined);
        off = await waitForExit(pid, Math.min(retryMs, end - Date.now()));
      }
      if (off) {
        this.dropQmp(uuid);
        await this.removeRuntimeFiles(paths);
        this.log.info(`qemu: ${uuid} powered off by the guest`);
        return;
      }
      this.log.warn(`qemu: ${uuid} did not power off within ${timeoutS} s: forcing`);
    }
    await this.forceStop(uuid, pid);
  }

  private async doPowerOn(uuid: string): Promise<void> {
    const { paths, record } = await this.requireRecord(uuid);
    if ((await this.livePid(uuid, paths)) !== null) return;
    const accel = await this.decideAccel();
    for (const nic of record.spec.nics) await this.ensureTap(nic.tapName, nic.mtu);
    await this.startQemu(uuid, paths, record, accel);
  }

  /** QMP quit, then SIGTERM/SIGKILL by pid; waits until the process is gone. */
  private async forceStop(uuid: string, pid: number): Promise<void> {
    const paths = this.paths(uuid);
    const qmp = this.qmpConns.get(uuid) ?? (await QmpClient.connect(paths.qmpSock, { timeoutMs: 2000 }).catch(() => null));
    if (qmp) await qmp.execute('quit', undefined, { timeoutMs: 3000 }).catch(() => undefined);
    if (!(await waitForExit(pid, 5000))) await terminate(pid);
    if (qmp && !this.qmpConns.has(uuid)) qmp.close();
    this.dropQmp(uuid);
    await this.removeRuntimeFiles(paths);
  }

  /** Starts QEMU for an existing instance dir; resolves once its monitor answers (guest not yet booted). */
  private async startQemu(uuid: string, paths: InstancePaths, record: InstanceRecord, accel: Accel): Promise<void> {
    await this.removeRuntimeFiles(paths);
    const incoming = existsSync(paths.memoryState) ? paths.memoryState : undefined;
    // a new boot gets a fresh console log (the previous one is kept as console.log.0);
    // a resumed guest continues its boot, and its log
    if (!incoming && existsSync(paths.consoleLog)) await rename(paths.consoleLog, paths.consoleLogPrev);
    // KVM: the CPU model the probe booted with (`host` when KVM is forced); TCG: QEMU's default
    const cpuModel = accel === 'kvm' ? (this.probe ? this.probe.cpuModel : 'host') : undefined;
    const qemuArgs = buildQemuArgs({ uuid, paths, record, accel, cpuModel, isBlockDevice, incomingFile: incoming, shellQuote });
    const [cmd, args] = this.opts.hostNetns
      ? ['ip', ['netns', 'exec', this.opts.hostNetns, this.qemu, ...qemuArgs]]
      : [this.qemu, qemuArgs];
    await appendFile(paths.qemuLog, `=== ${new Date().toISOString()} start: ${cmd} ${args.join(' ')}\n`);
    const logFd = openSync(paths.qemuLog, 'a');
    const child$ = { exited: null as string | null };
    try {
      // detached: own session (setsid), so QEMU survives this process; not our problem to reap once we exit
      const child = spawn(cmd, args, { detached: true, stdio: ['ignore', logFd, logFd] });
      child.on('exit', (code, sig) => (child$.exited = `exited with ${code ?? sig}`));
      child.on('error', (e) => (child$.exited = e.message));
      child.unref();
    } finally {
      closeSync(logFd);
    }
    // up = the monitor answers (QEMU sends the greeting once initialisation is done)
    const end = Date.now() + 60_000;
    let qmp: QmpClient | null = null;
    while (!qmp) {
      if (child$.exited) break;
      if (Date.now() > end) break;
      if (existsSync(paths.qmpSock)) qmp = await this.qmp(uuid, paths, 2000).catch(() => null);
      if (!qmp) await sleep(50);
    }
    if (!qmp) {
      const pid = await readPidfile(paths.pidfile);
      if (pid !== null && (await pidMatches(pid, [uuid]))) await terminate(pid);
      const tail = (await readFile(paths.qemuLog, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
      throw new ComputeDriverError('Failed', `QEMU for ${uuid} did not start (${child$.exited ?? 'no monitor within 60 s'}): ${tail}`, uuid);
    }
    const pid = await this.livePid(uuid, paths);
    if (pid === null) throw new ComputeDriverError('Failed', `QEMU for ${uuid} has no valid pidfile`, uuid);
    if (incoming) {
      // restoring saved state: wait for it to load, then continue the guest
      const until = Date.now() + 300_000;
      let status = 'inmigrate';
      while (status === 'inmigrate' && Date.now() < until) {
        status = (await qmp.execute<{ status: string }>('query-status')).status;
        if (status === 'inmigrate') await sleep(100);
      }
      if (status === 'paused' || status === 'postmigrate' || status === 'prelaunch') await qmp.execute('cont');
      else if (status === 'inmigrate') throw new ComputeDriverError('Timeout', `restoring ${uuid} from saved state timed out`, uuid);
      await rm(paths.memoryState, { force: true });
    }
  }

  // ---------------------------------------------------------------- internals: processes, monitor, taps

  private paths(uuid: string): InstancePaths {
    if (!UUID_RE.test(uuid)) throw new ComputeDriverError('NotFound', `not an instance uuid: ${uuid}`, uuid);
    return instancePaths(this.stateDir, uuid);
  }

  /** The instance's QEMU pid if the pidfile names a live process whose command line is this instance's. */
  private async livePid(uuid: string, paths: InstancePaths): Promise<number | null> {
    const pid = await readPidfile(paths.pidfile);
    if (pid === null) return null;
    return (await pidMatches(pid, [uuid, paths.dir])) ? pid : null;
  }

  private async requireRecord(uuid: string): Promise<{ paths: InstancePaths; record: InstanceRecord }> {
    const paths = this.paths(uuid);
    const record = await readRecord(paths);
    if (!record) throw new ComputeDriverError('NotFound', `instance ${uuid} not found on this host`, uuid);
    return { paths, record };
  }

  private async requireLive(uuid: string): Promise<{ paths: InstancePaths; qmp: QmpClient; status: string; pid: number }> {
    const { paths } = await this.requireRecord(uuid);
    const pid = await this.livePid(uuid, paths);
    if (pid === null) throw new ComputeDriverError('InvalidState', `instance ${uuid} is not running`, uuid);
    const qmp = await this.qmp(uuid, paths);
    const { status } = await qmp.execute<{ status: string }>('query-status');
    return { paths, qmp, status, pid };
  }

  /** The (cached) monitor connection of a running instance; connects, and so adopts, on first use. */
  private async qmp(uuid: string, paths: InstancePaths, timeoutMs = 5000): Promise<QmpClient> {
    const have = this.qmpConns.get(uuid);
    if (have && !have.closed) return have;
    const pending = this.qmpConnecting.get(uuid);
    if (pending) return pending;
    const p = QmpClient.connect(paths.qmpSock, { timeoutMs })
      .then((c) => {
        this.qmpConns.set(uuid, c);
        c.on('event', (ev: QmpEvent) => this.opts.onEvent?.(uuid, ev));
        c.on('close', () => {
          if (this.qmpConns.get(uuid) === c) this.qmpConns.delete(uuid);
          this.opts.onEvent?.(uuid, { event: 'QEMU_EXITED' });
        });
        return c;
      })
      .catch((e: Error) => {
        throw new ComputeDriverError('Failed', `monitor of ${uuid}: ${e.message}`, uuid);
      })
      .finally(() => this.qmpConnecting.delete(uuid));
    this.qmpConnecting.set(uuid, p);
    return p;
  }

  private dropQmp(uuid: string): void {
    const c = this.qmpConns.get(uuid);
    if (!c) return;
    this.qmpConns.delete(uuid);
    c.removeAllListeners('close');
    c.close();
  }

  private async removeRuntimeFiles(paths: InstancePaths): Promise<void> {
    for (const f of [paths.qmpSock, paths.consoleSock, paths.pidfile]) await rm(f, { force: true });
  }

  private ipArgs(args: string[]): string[] {
    return this.opts.hostNetns ? ['-n', this.opts.hostNetns, ...args] : args;
  }

  /** Creates the tap if missing (true if created), sets it up (and its MTU). */
  private async ensureTap(name: string, mtu?: number): Promise<boolean> {
    let created = false;
    const exists = await run('ip', this.ipArgs(['link', 'show', 'dev', name])).then(() => true, () => false);
    if (!exists) {
      await run('ip', this.ipArgs(['tuntap', 'add', 'dev', name, 'mode', 'tap']));
      created = true;
    }
    await run('ip', this.ipArgs(['link', 'set', 'dev', name, ...(mtu ? ['mtu', String(mtu)] : []), 'up']));
    return created;
  }

  private async deleteTap(name: string): Promise<void> {
    const exists = await run('ip', this.ipArgs(['link', 'show', 'dev', name])).then(() => true, () => false);
    if (exists) await run('ip', this.ipArgs(['link', 'del', 'dev', name]));
  }

  private async virtualSize(path: string, format: DiskFormat, forceShare = false): Promise<number> {
    if (!existsSync(path)) throw new ComputeDriverError('InvalidSpec', `image not found: ${path}`);
    const out = await run('qemu-img', ['info', '--output=json', ...(forceShare ? ['-U'] : []), '-f', format, path]);
    return Number((JSON.parse(out) as { 'virtual-size': number })['virtual-size']);
  }

  private allocateVolume(record: InstanceRecord, v: VolumeAttachSpec): StoredVolume {
    const used = new Set(record.volumes.map((x) => x.slot));
    let slot = VOLUME_SLOT_FIRST;
    while (used.has(slot)) slot++;
    if (slot > VOLUME_SLOT_LAST) throw new ComputeDriverError('InvalidState', `instance ${record.spec.uuid} has no free volume slot`, record.spec.uuid);
    // predicted guest name: vda is the boot disk (vdb too while rescued), then the lowest free letter
    const taken = new Set(['vda', ...(record.rescue ? ['vdb'] : []), ...record.volumes.map((x) => x.device)]);
    let device = '';
    for (let i = 1; i < 26 && !device; i++) {
      const d = `vd${String.fromCharCode(97 + i)}`;
      if (!taken.has(d)) device = d;
    }
    return {
      volumeId: v.volumeId,
      path: resolve(v.path),
      format: v.format,
      serial: (v.serial ?? v.volumeId).slice(0, 20),
      readOnly: !!v.readOnly,
      device,
      slot,
    };
  }

  private validateSpec(spec: InstanceSpec): void {
    const bad = (msg: string): never => {
      throw new ComputeDriverError('InvalidSpec', msg, spec.uuid);
    };
    if (!UUID_RE.test(spec.uuid)) bad(`uuid must be a dashed uuid: ${spec.uuid}`);
    if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1) bad(`vcpus must be a positive integer`);
    if (!Number.isInteger(spec.memoryMb) || spec.memoryMb < 64) bad(`memoryMb must be an integer >= 64`);
    if (!(spec.rootGb >= 0)) bad(`rootGb must be >= 0`);
    if (spec.imageFormat !== 'qcow2' && spec.imageFormat !== 'raw') bad(`imageFormat must be qcow2 or raw`);
    if (spec.nics.length > MAX_NICS) bad(`at most ${MAX_NICS} NICs`);
    const taps = new Set<string>();
    for (const n of spec.nics) {
      if (!MAC_RE.test(n.mac)) bad(`bad MAC ${n.mac}`);
      if (!TAP_RE.test(n.tapName)) bad(`bad tap name ${n.tapName} (1-15 of [A-Za-z0-9_.-])`);
      if (taps.has(n.tapName)) bad(`duplicate tap ${n.tapName}`);
      taps.add(n.tapName);
      if (n.mtu !== undefined && !(Number.isInteger(n.mtu) && n.mtu >= 68 && n.mtu <= 65535)) bad(`bad MTU ${n.mtu}`);
    }
    for (const v of spec.volumes ?? []) this.validateVolume(v);
    if (spec.rootVolume) this.validateVolume(spec.rootVolume);
  }

  private validateVolume(v: VolumeAttachSpec): void {
    if (!v.volumeId) throw new ComputeDriverError('InvalidSpec', 'volumeId is required');
    if (v.format !== 'qcow2' && v.format !== 'raw') throw new ComputeDriverError('InvalidSpec', `volume format must be qcow2 or raw`);
    if (!existsSync(v.path)) throw new ComputeDriverError('InvalidSpec', `volume path not found: ${v.path}`);
  }

  private asDriverError(e: unknown, uuid: string): ComputeDriverError {
    if (e instanceof ComputeDriverError) return e;
    return new ComputeDriverError('Failed', (e as Error)?.message ?? String(e), uuid);
  }

  private withLock<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(uuid) ?? Promise.resolve();
    const guarded = (): Promise<T> =>
      fn().catch((e: unknown) => {
        throw this.asDriverError(e, uuid);
      });
    const next = prev.then(guarded, guarded);
    const tail = next.catch(() => undefined);
    this.locks.set(uuid, tail);
    void tail.then(() => {
      if (this.locks.get(uuid) === tail) this.locks.delete(uuid);
    });
    return next;
  }
}

function isBlockDevice(path: string): boolean {
  try {
    return statSync(path).isBlockDevice();
  } catch {
    return false;
  }
}
