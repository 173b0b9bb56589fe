import type { Accel, DiskFormat } from './driver.js';
import type { InstancePaths, InstanceRecord, StoredVolume } from './instance-store.js';

/**
 * The QEMU command line of an instance, and the device naming the driver
 * uses for hot-plug. Every PCI device gets a fixed slot so a guest sees
 * the same hardware on every start, a hot-plugged volume lands where it
 * will be on the next cold start, and a suspended guest (saved state) can
 * be restored onto an identical machine:
 *
 *   0x04 boot disk (vda)            0x05 virtio-rng
 *   0x06 own disk while rescued     0x08-0x0f NICs (8)
 *   0x10-0x1f volumes (16)          IDE secondary master: config drive CD
 *
 * Machine `pc` (i440FX: IDE for the config-drive CD, ACPI PCI hot-plug on
 * bus 0); `-nodefaults` so QEMU adds no NIC, CD, VGA or monitor of its own.
 */

export const ROOT_SLOT = 0x04;
export const RNG_SLOT = 0x05;
export const RESCUED_DISK_SLOT = 0x06;
export const NIC_SLOT_FIRST = 0x08;
export const MAX_NICS = 8;
export const VOLUME_SLOT_FIRST = 0x10;
export const VOLUME_SLOT_LAST = 0x1f;

export const volumeNodeName = (slot: number): string => `vol${slot}`;
export const volumeDeviceId = (slot: number): string => `vdisk${slot}`;
const hex = (n: number): string => `0x${n.toString(16)}`;

/** blockdev-add / -blockdev description of a disk file or block device. */
export function blockdevSpec(
  nodeName: string,
  path: string,
  format: DiskFormat,
  opts: { readOnly?: boolean; blockDevice?: boolean } = {},
): Record<string, unknown> {
  const file: Record<string, unknown> = { driver: opts.blockDevice ? 'host_device' : 'file', filename: path };
  if (opts.readOnly) file['read-only'] = true;
  const spec: Record<string, unknown> = { driver: format, 'node-name': nodeName, file };
  if (opts.readOnly) spec['read-only'] = true;
  return spec;
}

/** device_add / -device description of a volume's virtio-blk disk. */
export function volumeDeviceSpec(v: StoredVolume): Record<string, unknown> {
  return {
    driver: 'virtio-blk-pci',
    id: volumeDeviceId(v.slot),
    drive: volumeNodeName(v.slot),
    serial: v.serial,
    addr: hex(v.slot),
  };
}

export interface QemuArgsInput {
  uuid: string;
  paths: InstancePaths;
  record: InstanceRecord;
  accel: Accel;
  /** -cpu model (e.g. `host` with KVM); undefined = QEMU's default. */
  cpuModel?: string;
  /** Whether each volume's path is a block device (host_device) rather than a file. */
  isBlockDevice: (path: string) => boolean;
  /** Restore saved state from this file (resume from suspend). */
  incomingFile?: string;
  /** Shell-quoting for the exec: migration URI. */
  shellQuote: (s: string) => string;
}

/** Sanitised -name: QEMU option values treat commas specially. */
export function guestName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'instance';
}

export function buildQemuArgs(input: QemuArgsInput): string[] {
  const { uuid, paths, record, accel } = input;
  const spec = record.spec;
  const json = (o: unknown): string => JSON.stringify(o);
  const args: string[] = [
    '-name', `guest=${guestName(spec.name)},debug-threads=on`,
    '-uuid', uuid,
    '-machine', 'pc',
    '-accel', accel,
  ];
  if (input.cpuModel) args.push('-cpu', input.cpuModel);
  args.push(
    '-smp', String(spec.vcpus),
    '-m', String(spec.memoryMb),
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    '-rtc', 'base=utc',
    '-chardev', `socket,id=console0,path=${paths.consoleSock},server=on,wait=off,logfile=${paths.consoleLog},logappend=${input.incomingFile ? 'on' : 'off'}`,
    '-serial', 'chardev:console0',
    '-chardev', `socket,id=qmp0,path=${paths.qmpSock},server=on,wait=off`,
    '-mon', 'chardev=qmp0,mode=control',
    '-pidfile', paths.pidfile,
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', `virtio-rng-pci,rng=rng0,addr=${hex(RNG_SLOT)}`,
  );

  // boot disk (vda): the instance's disk, or the rescue disk with the instance's disk second
  args.push('-blockdev', json(blockdevSpec('root', paths.disk, 'qcow2')));
  if (record.rescue) {
    args.push('-blockdev', json(blockdevSpec('rescue', paths.rescueDisk, 'qcow2')));
    args.push('-device', json({ driver: 'virtio-blk-pci', id: 'boot-disk', drive: 'rescue', addr: hex(ROOT_SLOT), bootindex: 1 }));
    args.push('-device', json({ driver: 'virtio-blk-pci', id: 'root-disk', drive: 'root', addr: hex(RESCUED_DISK_SLOT) }));
  } else {
    args.push('-device', json({ driver: 'virtio-blk-pci', id: 'root-disk', drive: 'root', addr: hex(ROOT_SLOT), bootindex: 1 }));
  }

  if (spec.hasConfigDrive) {
    args.push('-blockdev', json(blockdevSpec('config', paths.configDrive, 'raw', { readOnly: true })));
    args.push('-device', json({ driver: 'ide-cd', id: 'config-cd', drive: 'config', bus: 'ide.1', unit: 0 }));
  }

  spec.nics.forEach((nic, i) => {
    const { netdev, device } = nicArgs(nic, nic.slot ?? i);
    args.push('-netdev', `tap,id=${netdev.id},ifname=${nic.tapName},script=no,downscript=no`);
    args.push('-device', json(device));
  });

  for (const v of record.volumes) {
    args.push('-blockdev', json(blockdevSpec(volumeNodeName(v.slot), v.path, v.format, { readOnly: v.readOnly, blockDevice: input.isBlockDevice(v.path) })));
    args.push('-device', json(volumeDeviceSpec(v)));
  }

  if (input.incomingFile) args.push('-incoming', `exec:cat ${input.shellQuote(input.incomingFile)}`);
  return args;
}

/** QMP/command-line shapes of one NIC in device slot `slot`. */
export function nicArgs(nic: { tapName: string; mac: string; mtu?: number }, slot: number): { netdev: Record<string, unknown>; device: Record<string, unknown> } {
  const device: Record<string, unknown> = { driver: 'virtio-net-pci', id: `nic${slot}`, netdev: `net${slot}`, mac: nic.mac, addr: hex(NIC_SLOT_FIRST + slot) };
  if (nic.mtu) device.host_mtu = nic.mtu;
  return { netdev: { type: 'tap', id: `net${slot}`, ifname: nic.tapName, script: 'no', downscript: 'no' }, device };
}
