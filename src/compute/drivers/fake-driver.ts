import { writeFile } from 'node:fs/promises';
import {
  ComputeDriverError,
  type AttachedVolume,
  type NicSpec,
  type ComputeDriver,
  type HostInfo,
  type InstanceInfo,
  type InstanceSpec,
  type PowerState,
  type RescueSpec,
  type ResizeSpec,
  type VolumeAttachSpec,
} from './driver.js';

/**
 * In-memory compute driver for UNIT TESTS ONLY: no processes, no disks, no
 * taps. It follows the same contract as QemuDriver (power-state rules,
 * errors, idempotency, device naming), answers instantly, records every
 * call, and can be told to fail an operation. Its console shows the same
 * marker lines the Stratus guest prints, so code that waits for
 * `STRATUS-GUEST-READY` works against it.
 */

interface FakeInstance {
  spec: InstanceSpec;
  power: Exclude<PowerState, 'nostate'>;
  pid: number;
  volumes: AttachedVolume[];
  console: string[];
  rescue?: RescueSpec;
  boots: number;
}

export interface FakeDriverOptions {
  /** Reported by hostInfo. */
  host?: Partial<HostInfo>;
}

export class FakeComputeDriver implements ComputeDriver {
  /** Every call as `method uuid?`, in order. */
  readonly calls: string[] = [];
  private readonly instances = new Map<string, FakeInstance>();
  private readonly failures = new Map<string, Error>();
  private readonly holds = new Map<string, Promise<void>>();
  private nextPid = 10_000;
  private initialised = false;

  constructor(private readonly opts: FakeDriverOptions = {}) {}

  /** Makes the next call of `method` (optionally for one uuid) throw `error`. */
  failNext(method: keyof ComputeDriver, error: Error = new ComputeDriverError('Failed', `injected failure in ${method}`), uuid?: string): void {
    this.failures.set(uuid ? `${method} ${uuid}` : method, error);
  }

  /**
   * Makes the next `detachVolume` (optionally for one uuid) wait until the
   * returned function is called: a guest slow to let go of a device.
   */
  holdNext(method: 'detachVolume', uuid?: string): () => void {
    let release!: () => void;
    this.holds.set(uuid ? `${method} ${uuid}` : method, new Promise<void>((r) => (release = r)));
    return release;
  }

  private async held(method: string, uuid: string): Promise<void> {
    for (const key of [`${method} ${uuid}`, method]) {
      const h = this.holds.get(key);
      if (h) {
        this.holds.delete(key);
        await h;
        return;
      }
    }
  }

  /** Simulates the guest powering itself off (or crashing, with `crashed`). */
  guestStops(uuid: string, how: 'shutdown' | 'crashed' = 'shutdown'): void {
    const i = this.get(uuid);
    i.power = how;
    i.console.push(how === 'shutdown' ? 'STRATUS-GUEST-POWEROFF' : 'Kernel panic - not syncing: fake');
  }

  /** Whether init() was called. */
  get initialized(): boolean {
    return this.initialised;
  }

  async init(): Promise<void> {
    this.record('init');
    this.initialised = true;
  }

  async close(): Promise<void> {
    this.record('close');
  }

  async spawn(spec: InstanceSpec): Promise<void> {
    this.record('spawn', spec.uuid);
    if (this.instances.has(spec.uuid)) throw new ComputeDriverError('Exists', `instance ${spec.uuid} already exists on this host`, spec.uuid);
    if (!(spec.vcpus >= 1 && spec.memoryMb >= 64 && spec.rootGb >= 0)) throw new ComputeDriverError('InvalidSpec', 'bad flavor', spec.uuid);
    const inst: FakeInstance = {
      spec: structuredClone({ ...spec, configDrive: undefined }),
      power: 'running',
      pid: this.nextPid++,
      volumes: [],
      console: [],
      rescue: spec.rescue,
      boots: 0,
    };
    for (const v of spec.volumes ?? []) inst.volumes.push(this.makeAttachment(inst, v));
    this.instances.set(spec.uuid, inst);
    this.boot(inst, spec);
  }

  async destroy(uuid: string): Promise<void> {
    this.record('destroy', uuid);
    this.instances.delete(uuid);
  }

  async powerOff(uuid: string): Promise<void> {
    this.record('powerOff', uuid);
    const i = this.get(uuid);
    if (i.power === 'suspended') throw new ComputeDriverError('InvalidState', `instance ${uuid} is suspended`, uuid);
    if (i.power === 'running') i.console.push('STRATUS-GUEST-POWEROFF');
    i.power = 'shutdown';
  }

  async powerOn(uuid: string): Promise<void> {
    this.record('powerOn', uuid);
    const i = this.get(uuid);
    if (i.power === 'running' || i.power === 'paused') return;
    if (i.power === 'suspended') {
      i.power = 'running';
      return;
    }
    i.pid = this.nextPid++;
    i.power = 'running';
    this.boot(i);
  }

  async reboot(uuid: string, _hard: boolean): Promise<void> {
    this.record('reboot', uuid);
    const i = this.get(uuid);
    if (i.power === 'suspended') throw new ComputeDriverError('InvalidState', `instance ${uuid} is suspended: resume it`, uuid);
    i.pid = this.nextPid++;
    i.power = 'running';
    this.boot(i);
  }

  async pause(uuid: string): Promise<void> {
    this.record('pause', uuid);
    const i = this.get(uuid);
    if (i.power === 'paused') return;
    this.expect(i, uuid, 'running', 'pause');
    i.power = 'paused';
  }

  async unpause(uuid: string): Promise<void> {
    this.record('unpause', uuid);
    const i = this.get(uuid);
    if (i.power === 'running') return;
    this.expect(i, uuid, 'paused', 'unpause');
    i.power = 'running';
  }

  async suspend(uuid: string): Promise<void> {
    this.record('suspend', uuid);
    const i = this.get(uuid);
    if (i.power !== 'running' && i.power !== 'paused') throw new ComputeDriverError('InvalidState', `cannot suspend ${uuid} in state ${i.power}`, uuid);
    i.power = 'suspended';
  }

  async resume(uuid: string): Promise<void> {
    this.record('resume', uuid);
    const i = this.get(uuid);
    this.expect(i, uuid, 'suspended', 'resume');
    i.power = 'running';
  }

  async getInfo(uuid: string): Promise<InstanceInfo> {
    this.record('getInfo', uuid);
    const i = this.instances.get(uuid);
    if (!i) return { powerState: 'nostate' };
    const live = i.power === 'running' || i.power === 'paused' || i.power === 'crashed';
    return live ? { powerState: i.power, pid: i.pid } : { powerState: i.power };
  }

  async listInstances(): Promise<string[]> {
    this.record('listInstances');
    return [...this.instances.keys()].sort();
  }

  async attachVolume(uuid: string, volume: VolumeAttachSpec): Promise<string> {
    this.record('attachVolume', uuid);
    const i = this.get(uuid);
    const existing = i.volumes.find((v) => v.volumeId === volume.volumeId);
    if (existing) return existing.device;
    const v = this.makeAttachment(i, volume);
    i.volumes.push(v);
    if (i.power === 'running') i.console.push(`STRATUS-BLOCK-ADDED ${v.device} bytes=0 serial=${v.serial}`);
    return v.device;
  }

  async detachVolume(uuid: string, volumeId: string): Promise<void> {
    this.record('detachVolume', uuid);
    await this.held('detachVolume', uuid);
    const i = this.get(uuid);
    const v = i.volumes.find((x) => x.volumeId === volumeId);
    if (!v) return;
    i.volumes = i.volumes.filter((x) => x !== v);
    if (i.power === 'running') i.console.push(`STRATUS-BLOCK-REMOVED ${v.device}`);
  }

  async attachInterface(uuid: string, nic: NicSpec): Promise<void> {
    this.record('attachInterface', uuid);
    const i = this.get(uuid);
    if (!i.spec.nics.some((n) => n.tapName === nic.tapName)) i.spec.nics.push({ ...nic });
  }

  async detachInterface(uuid: string, tapName: string): Promise<void> {
    this.record('detachInterface', uuid);
    const i = this.get(uuid);
    i.spec.nics = i.spec.nics.filter((n) => n.tapName !== tapName);
  }

  async extendVolume(uuid: string, volumeId: string, _newBytes: number): Promise<void> {
    this.record('extendVolume', uuid);
    const i = this.get(uuid);
    if (!i.volumes.some((x) => x.volumeId === volumeId)) throw new ComputeDriverError('NotFound', `volume ${volumeId} is not attached to ${uuid}`, uuid);
  }

  async listVolumes(uuid: string): Promise<AttachedVolume[]> {
    return this.get(uuid).volumes.map((v) => ({ ...v }));
  }

  async consoleOutput(uuid: string, maxLines?: number): Promise<string> {
    this.record('consoleOutput', uuid);
    const lines = this.get(uuid).console;
    const sel = maxLines === undefined ? lines : lines.slice(-maxLines);
    return sel.length ? sel.join('\n') + '\n' : '';
  }

  async snapshot(uuid: string, outPath: string): Promise<void> {
    this.record('snapshot', uuid);
    const i = this.get(uuid);
    await writeFile(outPath, `fake snapshot of ${uuid} (image ${i.spec.imagePath})\n`);
  }

  async resize(uuid: string, spec: ResizeSpec): Promise<void> {
    this.record('resize', uuid);
    const i = this.get(uuid);
    if (spec.rootGb > 0 && spec.rootGb < i.spec.rootGb) throw new ComputeDriverError('InvalidSpec', `root disk of ${uuid} cannot shrink`, uuid);
    i.spec.vcpus = spec.vcpus;
    i.spec.memoryMb = spec.memoryMb;
    if (spec.rootGb > 0) i.spec.rootGb = spec.rootGb;
  }

  async rescue(uuid: string, rescue: RescueSpec): Promise<void> {
    this.record('rescue', uuid);
    const i = this.get(uuid);
    if (i.rescue) throw new ComputeDriverError('InvalidState', `instance ${uuid} is already in rescue mode`, uuid);
    i.rescue = rescue;
    i.power = 'running';
    this.boot(i);
  }

  async unrescue(uuid: string): Promise<void> {
    this.record('unrescue', uuid);
    const i = this.get(uuid);
    if (!i.rescue) throw new ComputeDriverError('InvalidState', `instance ${uuid} is not in rescue mode`, uuid);
    delete i.rescue;
    i.power = 'running';
    this.boot(i);
  }

  async hostInfo(): Promise<HostInfo> {
    this.record('hostInfo');
    return { vcpus: 8, memoryMb: 16384, diskGb: 200, hypervisorType: 'QEMU', hypervisorVersion: 'fake', accel: 'tcg', ...this.opts.host };
  }

  // ----------------------------------------------------------------

  private record(method: string, uuid?: string): void {
    this.calls.push(uuid ? `${method} ${uuid}` : method);
    for (const key of uuid ? [`${method} ${uuid}`, method] : [method]) {
      const err = this.failures.get(key);
      if (err) {
        this.failures.delete(key);
        throw err;
      }
    }
  }

  private get(uuid: string): FakeInstance {
    const i = this.instances.get(uuid);
    if (!i) throw new ComputeDriverError('NotFound', `instance ${uuid} not found on this host`, uuid);
    return i;
  }

  private expect(i: FakeInstance, uuid: string, state: PowerState, op: string): void {
    if (i.power !== state) throw new ComputeDriverError('InvalidState', `cannot ${op} ${uuid} in state ${i.power}`, uuid);
  }

  private makeAttachment(i: FakeInstance, v: VolumeAttachSpec): AttachedVolume {
    const taken = new Set(['vda', ...(i.rescue ? ['vdb'] : []), ...i.volumes.map((x) => x.device)]);
    let device = 'vdz';
    for (let c = 1; c < 26; c++) {
      const d = `vd${String.fromCharCode(97 + c)}`;
      if (!taken.has(d)) {
        device = d;
        break;
      }
    }
    return { volumeId: v.volumeId, path: v.path, format: v.format, serial: (v.serial ?? v.volumeId).slice(0, 20), readOnly: !!v.readOnly, device };
  }

  private boot(i: FakeInstance, spec?: InstanceSpec): void {
    i.boots++;
    const md = spec?.configDrive?.metaData;
    const host = String((md?.hostname as string | undefined) ?? i.spec.name).split('.')[0];
    const ds = spec?.configDrive ? 'configdrive' : 'none';
    i.console.push(`STRATUS-GUEST-READY hostname=${host} instance-id=${i.spec.uuid} ip=none datasource=${ds} uptime=0.01`);
    const ud = spec?.configDrive?.userData;
    if (ud && ud.subarray(0, 2).toString() === '#!') i.console.push('STRATUS-USERDATA-DONE rc=0');
  }
}
