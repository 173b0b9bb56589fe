import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AttachedVolume, InstanceSpec, RescueSpec } from './driver.js';

/**
 * On-disk layout of one QEMU instance: everything lives in
 * `<stateDir>/<uuid>/`, so an instance is adopted after an agent restart
 * from its directory alone, and destroyed by removing it.
 */
export interface InstancePaths {
  dir: string;
  /** Root disk: qcow2 overlay on the base image. */
  disk: string;
  /** Rescue boot disk (overlay on the rescue image) while in rescue mode. */
  rescueDisk: string;
  /** Config drive ISO (Nova's name: disk.config). */
  configDrive: string;
  /** Serial console of the current boot (QEMU chardev logfile). */
  consoleLog: string;
  /** Serial console of the previous boot. */
  consoleLogPrev: string;
  /** Serial console socket (interactive access). */
  consoleSock: string;
  qmpSock: string;
  pidfile: string;
  /** QEMU's own stdout/stderr, appended across starts. */
  qemuLog: string;
  /** The persisted {@link InstanceRecord}. */
  stateFile: string;
  /** Saved device + memory state while suspended. */
  memoryState: string;
}

export function instancePaths(stateDir: string, uuid: string): InstancePaths {
  const dir = join(stateDir, uuid);
  return {
    dir,
    disk: join(dir, 'disk.qcow2'),
    rescueDisk: join(dir, 'disk.rescue.qcow2'),
    configDrive: join(dir, 'disk.config'),
    consoleLog: join(dir, 'console.log'),
    consoleLogPrev: join(dir, 'console.log.0'),
    consoleSock: join(dir, 'console.sock'),
    qmpSock: join(dir, 'qmp.sock'),
    pidfile: join(dir, 'qemu.pid'),
    qemuLog: join(dir, 'qemu.log'),
    stateFile: join(dir, 'state.json'),
    memoryState: join(dir, 'memory.state'),
  };
}

/** An attached volume plus the PCI slot the driver gave it (stable across restarts). */
export interface StoredVolume extends AttachedVolume {
  slot: number;
}

/** What is kept of the spec (config drive contents live in the ISO only). */
export type StoredSpec = Omit<InstanceSpec, 'configDrive' | 'volumes' | 'rescue'> & { hasConfigDrive: boolean };

export interface InstanceRecord {
  version: 1;
  spec: StoredSpec;
  volumes: StoredVolume[];
  rescue?: RescueSpec;
  createdAt: string;
}

export async function readRecord(paths: InstancePaths): Promise<InstanceRecord | null> {
  try {
    return JSON.parse(await readFile(paths.stateFile, 'utf8')) as InstanceRecord;
  } catch {
    return null;
  }
}

/** Atomic write (temp file + rename). */
export async function writeRecord(paths: InstancePaths, rec: InstanceRecord, dir = paths.dir): Promise<void> {
  const file = join(dir, 'state.json');
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(rec, null, 2) + '\n');
  await rename(tmp, file);
}
