import { mkdirSync, linkSync, copyFileSync, existsSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Bus, Json } from '../../core/bus.js';
import type { Logger } from '../../core/log.js';
import type { ComputeDriver, DiskFormat } from '../drivers/driver.js';
import type { BuildSpec } from '../service/conductor.js';
import type { InstanceRow, EmbeddedFlavor } from '../store/tables.js';
import { POWER, TASK, VM, powerStateOf } from '../service/states.js';
import { NetworkClient, networkDataOf } from '../service/network.js';
import type { InstancePort } from '../../network/protocol.js';
import { metaDataJson } from '../metadata/metadata.js';

type Args = Record<string, unknown> & { instanceId: string; actionId: string };

/**
 * The compute agent of one host: performs what the API asked, through the
 * driver, and reports every transition to the conductor over the bus. Each
 * operation records an action event; on failure it records a fault and
 * reverts task_state (Nova's reverts_task_state / wrap_instance_fault), so
 * nothing stays stuck in a transitional state (G8).
 */
export class ComputeManager {
  readonly host: string;
  private timers: NodeJS.Timeout[] = [];
  private unserve: (() => void) | null = null;
  private busyUntilSync = new Set<string>();
  private readonly net: NetworkClient;

  constructor(
    private readonly bus: Bus,
    private readonly driver: ComputeDriver,
    private readonly log: Logger,
    private readonly opts: { stateDir: string; host?: string; availabilityZone?: string; syncIntervalMs?: number },
  ) {
    this.host = opts.host ?? hostname();
    this.net = new NetworkClient(bus);
  }

  private c(method: string, args: Record<string, unknown>): Promise<Json> {
    return this.bus.call('conductor', method, args as Json, { timeoutMs: 120_000 });
  }
  private update(instanceId: string, set: Partial<InstanceRow>, expectedTask?: (string | null)[]) {
    return this.c('instance_update', { instanceId, set, ...(expectedTask ? { expectedTask } : {}) });
  }

  async start(): Promise<void> {
    await this.driver.init();
    await this.report();
    this.unserve = this.bus.serve(`compute.${this.host}`, {
      build: (a) => this.build(a as unknown as BuildSpec),
      delete: (a) => this.op(a as Args, 'delete', 'compute_terminate_instance', async (id) => {
        await this.driver.destroy(id);
        await this.releasePorts(id);
        await this.c('finish_delete', { instanceId: id, actionId: (a as Args).actionId });
      }, { noRevert: true }),
      stop: (a) => this.op(a as Args, 'stop', 'compute_stop_instance', async (id) => {
        await this.driver.powerOff(id, { timeoutS: 30 });
        await this.update(id, { vm_state: VM.STOPPED, task_state: null, power_state: POWER.SHUTDOWN });
      }),
      start: (a) => this.op(a as Args, 'start', 'compute_start_instance', async (id) => {
        await this.driver.powerOn(id);
        await this.update(id, { vm_state: VM.ACTIVE, task_state: null, power_state: POWER.RUNNING });
      }),
      reboot: (a) => this.op(a as Args, 'reboot', 'compute_reboot_instance', async (id) => {
        await this.driver.reboot(id, (a as Args).hard === true);
        await this.update(id, { vm_state: VM.ACTIVE, task_state: null, power_state: POWER.RUNNING });
      }),
      pause: (a) => this.op(a as Args, 'pause', 'compute_pause_instance', async (id) => {
        await this.driver.pause(id);
        await this.update(id, { vm_state: VM.PAUSED, task_state: null, power_state: POWER.PAUSED });
      }),
      unpause: (a) => this.op(a as Args, 'unpause', 'compute_unpause_instance', async (id) => {
        await this.driver.unpause(id);
        await this.update(id, { vm_state: VM.ACTIVE, task_state: null, power_state: POWER.RUNNING });
      }),
      suspend: (a) => this.op(a as Args, 'suspend', 'compute_suspend_instance', async (id) => {
        await this.driver.suspend(id);
        await this.update(id, { vm_state: VM.SUSPENDED, task_state: null, power_state: POWER.SUSPENDED });
      }),
      resume: (a) => this.op(a as Args, 'resume', 'compute_resume_instance', async (id) => {
        await this.driver.resume(id);
        await this.update(id, { vm_state: VM.ACTIVE, task_state: null, power_state: POWER.RUNNING });
      }),
      rescue: (a) => this.op(a as Args, 'rescue', 'compute_rescue_instance', async (id) => {
        const img = (await this.c('image_path', { ctx: (a as Args).ctx, imageId: (a as Args).imageId })) as { path: string; format: string };
        await this.driver.rescue(id, { imagePath: this.cacheImage(String((a as Args).imageId), img.path), imageFormat: img.format as DiskFormat });
        await this.update(id, { vm_state: VM.RESCUED, task_state: null, power_state: POWER.RUNNING });
      }),
      unrescue: (a) => this.op(a as Args, 'unrescue', 'compute_unrescue_instance', async (id) => {
        await this.driver.unrescue(id);
        await this.update(id, { vm_state: VM.ACTIVE, task_state: null, power_state: POWER.RUNNING });
      }),
      resize: (a) => this.op(a as Args, 'resize', 'compute_resize_instance', async (id) => {
        const f = (a as Args).flavor as EmbeddedFlavor;
        try {
          await this.c('reclaim', { instanceId: id, host: this.host, resources: { vcpus: f.vcpus, memoryMb: f.ram, diskGb: f.disk } });
        } catch (e) {
          await this.c('abort_resize', { instanceId: id, host: this.host });
          throw e;
        }
        const wasRunning = (await this.driver.getInfo(id)).powerState === 'running';
        try {
          await this.driver.resize(id, { vcpus: f.vcpus, memoryMb: f.ram, rootGb: f.disk });
        } catch (e) {
          await this.c('abort_resize', { instanceId: id, host: this.host });
          throw e;
        }
        if (!wasRunning) await this.driver.powerOff(id, { timeoutS: 5 });
        await this.update(id, { vm_state: VM.RESIZED, task_state: null, power_state: wasRunning ? POWER.RUNNING : POWER.SHUTDOWN });
      }),
      revert_resize: (a) => this.op(a as Args, 'revertResize', 'compute_revert_resize', async (id) => {
        const f = (a as Args).flavor as EmbeddedFlavor;
        const info = await this.driver.getInfo(id);
        // The disk may have grown; QEMU cannot shrink it, so only CPU and RAM revert.
        await this.driver.resize(id, { vcpus: f.vcpus, memoryMb: f.ram, rootGb: 0 });
        await this.c('reclaim', { instanceId: id, host: this.host, resources: { vcpus: f.vcpus, memoryMb: f.ram, diskGb: f.disk } });
        if (info.powerState !== 'running') await this.driver.powerOff(id, { timeoutS: 5 });
        await this.update(id, { vm_state: info.powerState === 'running' ? VM.ACTIVE : VM.STOPPED, task_state: null, old_flavor: null, flavor: JSON.stringify(f), power_state: info.powerState === 'running' ? POWER.RUNNING : POWER.SHUTDOWN });
      }),
      rebuild: (a) => this.op(a as Args, 'rebuild', 'compute_rebuild_instance', async (id) => {
        const spec = (a as Args).spec as unknown as BuildSpec;
        const wasStopped = (a as Args).wasStopped === true;
        await this.driver.destroy(id);
        await this.update(id, { task_state: TASK.SPAWNING });
        await this.spawn(spec, await this.wirePorts(await this.net.instancePorts(id)));
        if (wasStopped) await this.driver.powerOff(id, { timeoutS: 10 });
        await this.update(id, { vm_state: wasStopped ? VM.STOPPED : VM.ACTIVE, task_state: null, power_state: wasStopped ? POWER.SHUTDOWN : POWER.RUNNING, image_id: spec.imageId });
      }),
      snapshot: (a) => this.op(a as Args, 'createImage', 'compute_snapshot_instance', async (id) => {
        const dir = join(this.opts.stateDir, '_snapshots');
        mkdirSync(dir, { recursive: true });
        const out = join(dir, `${id}-${Date.now()}.qcow2`);
        try {
          await this.driver.snapshot(id, out);
          await this.update(id, { task_state: TASK.IMAGE_UPLOADING });
          await this.c('upload_snapshot', { ctx: (a as Args).ctx, imageId: (a as Args).imageId, name: (a as Args).name, path: out, properties: (a as Args).properties });
        } catch (e) {
          await this.c('abort_snapshot', { ctx: (a as Args).ctx, imageId: (a as Args).imageId });
          throw e;
        } finally {
          rmSync(out, { force: true });
        }
        await this.update(id, { task_state: null });
      }),
      attach_interface: async (a) => {
        const { instanceId, port } = a as unknown as { instanceId: string; port: InstancePort };
        const device = await this.net.plug(this.host, port.id);
        await this.driver.attachInterface(instanceId, { mac: port.mac_address, tapName: device, mtu: port.mtu, portId: port.id });
        return { device };
      },
      detach_interface: async (a) => {
        const { instanceId, portId, device } = a as unknown as { instanceId: string; portId: string; device: string };
        await this.driver.detachInterface(instanceId, device);
        await this.net.unplug(this.host, portId);
        return {};
      },
      console_output: async (a) => ({ output: await this.driver.consoleOutput((a as Args).instanceId, (a as Args).length as number | undefined) }),
    });
    await this.adopt();
    const every = this.opts.syncIntervalMs ?? 10_000;
    this.timers.push(setInterval(() => void this.syncPowerStates().catch((e) => this.log.warn({ err: e }, 'power sync failed')), every));
    this.timers.push(setInterval(() => void this.report().catch((e) => this.log.warn({ err: e }, 'host report failed')), 20_000));
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.unserve?.();
    // Guests keep running: the next agent adopts them.
    await this.driver.close();
  }

  private async report(): Promise<void> {
    const info = await this.driver.hostInfo();
    await this.c('host_report', { host: this.host, availabilityZone: this.opts.availabilityZone ?? 'nova', ...info });
  }

  /** Base images live in the host's cache, hard-linked when possible, so deleting an image never breaks an instance's backing chain. */
  private cacheImage(imageId: string, path: string): string {
    const base = join(this.opts.stateDir, '_base');
    mkdirSync(base, { recursive: true });
    const dst = join(base, imageId);
    if (!existsSync(dst)) {
      try {
        linkSync(path, dst);
      } catch {
        copyFileSync(path, dst + '.tmp');
        linkSync(dst + '.tmp', dst);
        rmSync(dst + '.tmp', { force: true });
      }
    }
    return dst;
  }

  /**
   * Ports for a new instance (Nova's allocate_for_instance), each wired on
   * this host by the network agent before QEMU opens its tap. Without a
   * network service, or with networks 'none', the instance has no NIC.
   */
  private async allocatePorts(spec: BuildSpec): Promise<InstancePort[]> {
    if (spec.requestedNetworks === 'none' || !(await this.net.available())) return [];
    const ports = await this.net.allocate({
      instance_id: spec.instanceId, project_id: spec.projectId, host: this.host, hostname: spec.hostname,
      requested: spec.requestedNetworks, security_groups: spec.securityGroups,
    });
    return this.wirePorts(ports);
  }

  private async wirePorts(ports: InstancePort[]): Promise<InstancePort[]> {
    for (const p of ports) p.device = await this.net.plug(this.host, p.id);
    return ports;
  }

  /** Gives the instance's ports back to the network service (after the guest is gone). */
  private async releasePorts(id: string): Promise<void> {
    const ports = await this.net.instancePorts(id).catch(() => [] as InstancePort[]);
    for (const p of ports) await this.net.unplug(this.host, p.id).catch((e) => this.log.warn({ err: e, port: p.id }, 'unplug failed'));
    await this.net.deallocate(id, this.host).catch((e) => this.log.warn({ err: e, id }, 'deallocating ports failed'));
  }

  private async spawn(spec: BuildSpec, ports: InstancePort[]): Promise<void> {
    const keys = spec.keyData ? [spec.keyData] : [];
    const metaData = metaDataJson({
      uuid: spec.instanceId, name: spec.name, hostname: spec.hostname, launchIndex: spec.launchIndex, availabilityZone: spec.availabilityZone,
      projectId: spec.projectId, meta: spec.metadata, keys: keys.map((k) => ({ name: k.name, type: k.type, data: k.data })),
    });
    await this.driver.spawn({
      uuid: spec.instanceId, name: spec.name, vcpus: spec.vcpus, memoryMb: spec.memoryMb, rootGb: spec.rootGb,
      imagePath: spec.bootVolume ? '' : this.cacheImage(spec.imageId, spec.imagePath), imageFormat: spec.imageFormat === 'raw' ? 'raw' : 'qcow2',
      ...(spec.bootVolume ? { rootVolume: spec.bootVolume } : {}),
      ...(spec.configDrive !== false ? { configDrive: { metaData, userData: spec.userData ? Buffer.from(spec.userData, 'base64') : undefined, networkData: networkDataOf(ports) } } : {}),
      nics: ports.map((p) => ({ mac: p.mac_address, tapName: p.device, mtu: p.mtu })),
    });
  }

  private async build(spec: BuildSpec): Promise<void> {
    const id = spec.instanceId;
    await this.c('event_start', { actionId: spec.actionId, event: 'compute_build_and_run_instance', host: this.host });
    try {
      const ports = await this.allocatePorts(spec);
      if (!ports.length && !spec.configDrive) {
        // no NIC, so no metadata service can reach the guest: a config drive instead
        spec.configDrive = true;
        await this.update(id, { config_drive: 1 });
      }
      await this.spawn(spec, ports);
      const ok = await this.update(id, { vm_state: VM.ACTIVE, task_state: null, power_state: POWER.RUNNING, launched_at: Date.now() }, [TASK.SPAWNING]);
      await this.c('event_finish', { actionId: spec.actionId, event: 'compute_build_and_run_instance', result: 'Success' });
      if (!ok) {
        // Deleted while it was being built: the delete request is queued behind us.
        this.log.info({ id }, 'instance was deleted during build');
      }
    } catch (e) {
      const err = e as Error;
      this.log.error({ id, err }, 'build failed');
      await this.driver.destroy(id).catch(() => undefined);
      await this.releasePorts(id);
      await this.c('add_fault', { instanceId: id, code: 500, message: `Build of instance ${id} aborted: ${err.message}`, details: err.stack ?? '' });
      await this.update(id, { vm_state: VM.ERROR, task_state: null, power_state: POWER.NOSTATE });
      await this.c('free_allocation', { instanceId: id });
      await this.c('event_finish', { actionId: spec.actionId, event: 'compute_build_and_run_instance', result: 'Error', traceback: err.stack ?? '' });
    }
  }

  /** Runs one operation with its action event, fault recording and task_state revert on failure. */
  private async op(a: Args, name: string, event: string, fn: (id: string) => Promise<void>, o: { noRevert?: boolean } = {}): Promise<void> {
    const id = a.instanceId;
    this.busyUntilSync.add(id);
    await this.c('event_start', { actionId: a.actionId, event, host: this.host }).catch(() => undefined);
    try {
      await fn(id);
      await this.c('event_finish', { actionId: a.actionId, event, result: 'Success' });
    } catch (e) {
      const err = e as Error;
      this.log.error({ id, op: name, err }, 'instance operation failed');
      await this.c('add_fault', { instanceId: id, code: 500, message: `${name} failed: ${err.message}`, details: err.stack ?? '' }).catch(() => undefined);
      if (!o.noRevert) {
        const info = await this.driver.getInfo(id).catch(() => ({ powerState: 'nostate' as const }));
        await this.update(id, { task_state: null, power_state: powerStateOf(info.powerState) }).catch(() => undefined);
      } else {
        await this.update(id, { vm_state: VM.ERROR, task_state: null }).catch(() => undefined);
      }
      await this.c('event_finish', { actionId: a.actionId, event, result: 'Error', traceback: err.stack ?? '' }).catch(() => undefined);
    } finally {
      this.busyUntilSync.delete(id);
    }
  }

  /**
   * After a restart: running guests are adopted as they are (same process);
   * an interrupted build ends in ERROR with a fault; an interrupted action
   * has its task_state reverted; guests that should run but do not (host
   * reboot) are started again.
   */
  private async adopt(): Promise<void> {
    const rows = (await this.c('host_instances', { host: this.host })) as unknown as InstanceRow[];
    const known = new Set(await this.driver.listInstances());
    for (const r of rows) {
      const info = await this.driver.getInfo(r.id);
      if (r.vm_state === VM.BUILDING) {
        await this.driver.destroy(r.id).catch(() => undefined);
        await this.releasePorts(r.id);
        await this.c('add_fault', { instanceId: r.id, code: 500, message: 'Build was interrupted by a restart of the compute agent.' });
        await this.update(r.id, { vm_state: VM.ERROR, task_state: null, power_state: POWER.NOSTATE });
        await this.c('free_allocation', { instanceId: r.id });
        continue;
      }
      if (r.task_state === TASK.DELETING) {
        await this.driver.destroy(r.id).catch(() => undefined);
        await this.releasePorts(r.id);
        await this.c('finish_delete', { instanceId: r.id });
        continue;
      }
      if (r.task_state) await this.update(r.id, { task_state: null });
      if (r.vm_state === VM.ACTIVE && known.has(r.id) && (info.powerState === 'shutdown' || info.powerState === 'crashed')) {
        this.log.info({ id: r.id }, 'starting an instance that should be running');
        await this.driver.powerOn(r.id).catch((e) => this.log.error({ id: r.id, err: e }, 'restart of guest failed'));
      }
    }
    await this.syncPowerStates();
  }

  /** Notices guests that died or powered themselves off (Nova's _sync_power_states). */
  async syncPowerStates(): Promise<void> {
    const rows = (await this.c('host_instances', { host: this.host })) as unknown as InstanceRow[];
    for (const r of rows) {
      if (r.task_state || this.busyUntilSync.has(r.id)) continue;
      const info = await this.driver.getInfo(r.id);
      const ps = powerStateOf(info.powerState);
      const set: Partial<InstanceRow> = {};
      if (ps !== r.power_state) set.power_state = ps;
      if (r.vm_state === VM.ACTIVE && (ps === POWER.SHUTDOWN || ps === POWER.NOSTATE || ps === POWER.CRASHED)) set.vm_state = VM.STOPPED;
      if (Object.keys(set).length) await this.update(r.id, set, [null]);
    }
  }
}
