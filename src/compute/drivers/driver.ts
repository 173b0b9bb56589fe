/**
 * The hypervisor boundary of the compute service: what the compute manager
 * asks of a virtualization backend, in Nova's terms (a driver per
 * hypervisor: `QemuDriver` for real guests, `FakeComputeDriver` for unit
 * tests). A driver knows nothing about the database, the API or the
 * network model; it turns an {@link InstanceSpec} into a running guest and
 * reports on it. The compute manager owns vm_state/task_state; drivers only
 * report a {@link PowerState}.
 *
 * Conventions for every method taking a `uuid`:
 * - operations on one instance are serialised by the driver (no two
 *   concurrent operations run on the same instance);
 * - an unknown instance raises {@link ComputeDriverError} with code
 *   `NotFound`, except where a method is documented as idempotent;
 * - an operation not valid in the current power state raises `InvalidState`.
 */

/** Disk image formats the driver accepts for images and volumes. */
export type DiskFormat = 'qcow2' | 'raw';

/**
 * Power state as Nova's `power_state` models it (libvirt's domain states).
 * `suspended` = memory saved to disk, no process (see {@link ComputeDriver.suspend}).
 * `nostate` = the driver has no such instance.
 */
export type PowerState = 'running' | 'paused' | 'suspended' | 'shutdown' | 'crashed' | 'nostate';

/** Acceleration a QEMU guest runs with. */
export type Accel = 'kvm' | 'tcg';

/** OpenStack config drive payload (see config-drive.ts for the disk layout). */
export interface ConfigDriveSpec {
  /** Becomes meta_data.json (Nova fields: uuid, name, hostname, launch_index, availability_zone, project_id, meta, public_keys, keys, devices...). */
  metaData: Record<string, unknown>;
  /** Raw user data (the API's base64-decoded `user_data`). */
  userData?: Buffer;
  /** network_data.json (links/networks/services). Default `{}`-like empty lists. */
  networkData?: Record<string, unknown>;
  /** vendor_data.json. Default `{}`. */
  vendorData?: Record<string, unknown>;
  /** vendor_data2.json (dynamic vendor data). Default `{}`. */
  vendorData2?: Record<string, unknown>;
}

/** One virtual NIC, backed by a tap device the driver creates. */
export interface NicSpec {
  /** Guest MAC, e.g. `fa:16:3e:12:34:56` (Neutron port mac_address). */
  mac: string;
  /**
   * Host tap name (at most 15 characters; Nova uses `tap` + the first 11
   * characters of the port id). Created by the driver with `ip tuntap add`
   * in the host netns (or the root netns); the network agent plugs it into
   * its bridge later. Kept across power off/on, removed by destroy.
   */
  tapName: string;
  /** MTU of the tap, also offered to the guest (virtio-net host_mtu). */
  mtu?: number;
  /** Network port id (kept so a hot-plugged NIC can be found again). */
  portId?: string;
  /** Fixed device slot (QEMU ids `nic<slot>`/`net<slot>` and PCI address); assigned by the driver. */
  slot?: number;
}

/** A block device to attach to an instance (a Cinder volume's connection info, resolved to a local path). */
export interface VolumeAttachSpec {
  volumeId: string;
  /** Local file (qcow2/raw) or block device (e.g. an LVM volume). */
  path: string;
  format: DiskFormat;
  /** Serial the guest sees (/sys/block/vdX/serial; virtio keeps the first 20 bytes). Default: volumeId. */
  serial?: string;
  readOnly?: boolean;
}

/** An attachment as the driver records it. */
export interface AttachedVolume extends Required<Omit<VolumeAttachSpec, 'readOnly'>> {
  readOnly: boolean;
  /** Device name the driver predicts for the guest, e.g. `vdb` (the guest may name it differently, as with Nova). */
  device: string;
}

/** Boot from a rescue image with the instance's own disk as second disk (Nova rescue). */
export interface RescueSpec {
  imagePath: string;
  imageFormat: DiskFormat;
}

/** Everything needed to create an instance. */
export interface InstanceSpec {
  /** Instance uuid (dashed). Also the directory name and QEMU's -uuid. */
  uuid: string;
  /** Display name (QEMU -name; informational). */
  name: string;
  vcpus: number;
  memoryMb: number;
  /** Root disk size in GiB; 0 = the image's own size. Never smaller than the image. */
  rootGb: number;
  /** Base image file; the root disk is a copy-on-write qcow2 overlay on it, so it must stay in place. */
  imagePath: string;
  imageFormat: DiskFormat;
  configDrive?: ConfigDriveSpec;
  nics: NicSpec[];
  /** Volumes attached from the start (boot-time block device mapping). */
  volumes?: VolumeAttachSpec[];
  /** Start in rescue mode (normally set later with {@link ComputeDriver.rescue}). */
  rescue?: RescueSpec;
  /**
   * Boot from volume: the root disk (vda) IS this volume (a qcow2 file the
   * volume service owns), not an overlay on `imagePath` (then ignored). The
   * instance dir only links to it, so destroying the instance never removes it.
   */
  rootVolume?: { volumeId: string; path: string; format: 'qcow2' };
}

export interface InstanceInfo {
  powerState: PowerState;
  /** Hypervisor process id while one exists. */
  pid?: number;
  /** Raw hypervisor status (QEMU runstate, e.g. `running`, `paused`, `inmigrate`) when known. */
  status?: string;
}

export interface HostInfo {
  vcpus: number;
  memoryMb: number;
  /** Size of the file system holding the instances, GiB. */
  diskGb: number;
  hypervisorType: 'QEMU';
  hypervisorVersion: string;
  accel: Accel;
}

export interface ResizeSpec {
  vcpus: number;
  memoryMb: number;
  /** New root disk size in GiB: may grow, never shrink (0 = keep). */
  rootGb: number;
}

export type ComputeDriverErrorCode = 'NotFound' | 'Exists' | 'InvalidState' | 'InvalidSpec' | 'Timeout' | 'Failed';

/** The one error type drivers throw; the compute manager maps `code` to an instance fault / API error. */
export class ComputeDriverError extends Error {
  constructor(
    readonly code: ComputeDriverErrorCode,
    message: string,
    readonly uuid?: string,
  ) {
    super(message);
    this.name = 'ComputeDriverError';
  }
}

/**
 * How long a compute agent lets a volume detach wait for the guest to let go
 * (a TCG guest still booting can take minutes); the compute service allows
 * its agent call a little more than this.
 */
export const DETACH_TIMEOUT_S = 150;

export interface ComputeDriver {
  /**
   * Prepares the driver; call once before anything else (idempotent).
   * Creates the state dir, decides the acceleration (probing it once, the
   * result is cached in the state dir) and removes leftovers of interrupted
   * operations (half-created instance dirs, stale sockets and pidfiles of
   * dead processes). Running instances are left alone: they are adopted.
   */
  init(): Promise<void>;

  /**
   * Releases what this driver object holds (monitor connections, timers)
   * WITHOUT touching any instance: guests keep running. Use on agent
   * shutdown; a new driver object adopts the instances.
   */
  close(): Promise<void>;

  /**
   * Creates and starts an instance: instance dir with a copy-on-write root
   * disk on `spec.imagePath` (grown to `rootGb`), config drive, taps, then
   * the hypervisor process, detached so it outlives this process. Resolves
   * when the process is up, not when the guest has booted (watch
   * {@link consoleOutput} for that). Fails with `Exists` if the uuid is
   * already known; on failure nothing is left behind.
   */
  spawn(spec: InstanceSpec): Promise<void>;

  /** Kills the process, removes the taps and the whole instance dir. Idempotent (unknown uuid: no-op). */
  destroy(uuid: string): Promise<void>;

  /**
   * Clean shutdown: ACPI power button, wait up to `timeoutS` (default 60)
   * for the guest to power off, then force it off. No-op when not running.
   * A paused guest is forced off at once (it cannot see the button).
   */
  powerOff(uuid: string, opts?: { timeoutS?: number }): Promise<void>;

  /**
   * Starts the instance again from its existing dir and disk (volumes
   * still attached are attached again). No-op when already running. A
   * suspended instance is resumed from its saved memory.
   */
  powerOn(uuid: string): Promise<void>;

  /**
   * Soft reboot (`hard` false): clean power off (bounded wait, forced
   * after it), then power on. Hard reboot: kill the process, start a new
   * one from the same dir. The instance must exist; a stopped one is started.
   */
  reboot(uuid: string, hard: boolean): Promise<void>;

  /** Freezes the vCPUs in memory (QMP `stop`). Requires `running`. */
  pause(uuid: string): Promise<void>;
  /** Continues a paused instance (QMP `cont`). Requires `paused`. */
  unpause(uuid: string): Promise<void>;

  /**
   * Suspends to disk (Nova/libvirt "managed save"): pauses, saves the
   * device and memory state to a file in the instance dir and stops the
   * process; power state becomes `suspended`. Requires `running` or `paused`.
   */
  suspend(uuid: string): Promise<void>;
  /** Restores a suspended instance from its saved state and continues it. Requires `suspended`. */
  resume(uuid: string): Promise<void>;

  /** Power state and process id. Unknown uuid: `{ powerState: 'nostate' }`. */
  getInfo(uuid: string): Promise<InstanceInfo>;

  /**
   * Uuids of all instances this host has (from the instance dirs, running
   * or not). After an agent restart, `listInstances` + `getInfo` adopt the
   * running guests (process found by pidfile and verified by its command line).
   */
  listInstances(): Promise<string[]>;

  /**
   * Attaches a volume (hot-plug when running, else recorded for the next
   * start) and returns the predicted guest device name (`vdb`, ...).
   * Attaching the same volumeId again returns the existing device.
   */
  attachVolume(uuid: string, volume: VolumeAttachSpec): Promise<string>;
  /**
   * Detaches a volume: hot-unplug requests the guest to release it and waits
   * (up to `timeoutS`, default 30) for the device to go; raises `Timeout` and
   * keeps the attachment if the guest does not let go. Unknown volume: no-op.
   */
  detachVolume(uuid: string, volumeId: string, opts?: { timeoutS?: number }): Promise<void>;
  /**
   * Live-extends an attached volume to `newBytes` on a running guest (QMP
   * block_resize: a qcow2/raw FILE is grown by QEMU itself, since it holds
   * the image lock; a block device must already have been grown by the
   * volume service). Stopped instance: no-op (nothing holds the volume,
   * so the volume service grows it itself; the next start sees the size).
   */
  extendVolume(uuid: string, volumeId: string, newBytes: number): Promise<void>;
  /** Volumes currently attached (in attach order). */
  listVolumes(uuid: string): Promise<AttachedVolume[]>;
  /**
   * Hot-plugs a NIC (tap + virtio-net) into a running guest, or records it
   * for the next start. The same tap again is a no-op.
   */
  attachInterface(uuid: string, nic: NicSpec): Promise<void>;
  /** Unplugs the NIC on `tapName` (waits for the guest to release it) and removes the tap. Unknown: no-op. */
  detachInterface(uuid: string, tapName: string, opts?: { timeoutS?: number }): Promise<void>;

  /** Serial console output of the current boot (last `maxLines` lines if given). */
  consoleOutput(uuid: string, maxLines?: number): Promise<string>;

  /**
   * Writes the instance's root disk (with its backing chain flattened) as a
   * standalone qcow2 at `outPath` (the data of an image snapshot). A running
   * guest is paused for the copy (I/O quiesced and flushed), then continued.
   */
  snapshot(uuid: string, outPath: string): Promise<void>;

  /**
   * Changes flavor: vCPUs, memory, and grows the root disk. A running
   * instance is cleanly powered off, changed and started again.
   */
  resize(uuid: string, spec: ResizeSpec): Promise<void>;

  /** Reboots into a rescue image with the instance's disk attached second. */
  rescue(uuid: string, rescue: RescueSpec): Promise<void>;
  /** Leaves rescue mode and boots the instance's own disk again. */
  unrescue(uuid: string): Promise<void>;

  /** Capacity of this host and what guests run on. */
  hostInfo(): Promise<HostInfo>;
}
