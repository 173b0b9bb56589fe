import type { Readable } from 'node:stream';
import type { AuthContext } from '../../core/context.js';

/**
 * What the volume service needs from the image service (in process; over the
 * bus in a scale-out cloud). Structurally the same calls compute uses.
 */
export interface VolumeImagePort {
  getImageForBoot(ctx: AuthContext, id: string): Promise<{
    id: string; name?: string; status: string; diskFormat: string; minDisk: number; minRam: number; size?: number;
    properties: Record<string, unknown>; localPath: string;
  }>;
  createImageFromFile(ctx: AuthContext, input: { name: string; diskFormat: string; path: string; properties: Record<string, string>; imageId?: string }): Promise<{ id: string }>;
  reserveImage?(ctx: AuthContext, input: { name: string; properties: Record<string, string>; diskFormat?: string }): Promise<{ id: string }>;
  deleteImage?(ctx: AuthContext, id: string): Promise<void>;
}

/** The part of the object storage engine backups use (`src/object/store` README). */
export interface BackupObjectStore {
  putContainer(account: string, container: string, opts?: Record<string, unknown>): Promise<unknown>;
  putObject(account: string, container: string, object: string, body: Readable | Uint8Array | string, opts?: Record<string, unknown>): Promise<{ etag: string; size: number }>;
  getObject(account: string, container: string, object: string, opts?: Record<string, unknown>): Promise<{ stream: Readable; body?: Buffer | Uint8Array; length: number }>;
  deleteObject(account: string, container: string, object: string, opts?: Record<string, unknown>): Promise<unknown>;
}

/**
 * How the volume service reaches the compute agent of a host for what only
 * the hypervisor can do to an attached volume (grow it under a running guest).
 */
export interface VolumeComputePort {
  extendAttached(host: string, instanceId: string, volumeId: string, newBytes: number): Promise<void>;
}
