/**
 * The storage boundary of the volume service (Cinder's volume driver): what
 * the volume manager asks of a backend. A driver knows nothing about the
 * database, the API or projects; it manages the bytes of volumes and
 * snapshots named by their ids, and says how a host reaches them
 * (connection info).
 *
 * Contract for every method:
 * - ids are the API's dashed uuids; sizes are GiB (volumes are whole GiB);
 * - creating something that exists raises {@link VolumeDriverError} `Exists`;
 *   deleting something missing is a no-op (idempotent, for retries after a crash);
 * - on failure a create leaves nothing behind.
 */

export type VolumeDriverErrorCode = 'NotFound' | 'Exists' | 'InvalidState' | 'InvalidSpec' | 'Failed';

export class VolumeDriverError extends Error {
  constructor(
    readonly code: VolumeDriverErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'VolumeDriverError';
  }
}

/** How a host reaches a volume: Cinder's `connection_info` with driver_volume_type `file`. */
export interface ConnectionInfo {
  driver_volume_type: 'file';
  data: { name: string; device_path: string; format: 'qcow2' | 'raw'; access_mode: 'rw' | 'ro' };
}

export interface VolumeDriver {
  /** Prepares the backend (directories); call once. Idempotent. */
  init(): Promise<void>;
  /** A blank volume of `sizeGb`. */
  createVolume(id: string, sizeGb: number): Promise<void>;
  /**
   * A volume holding the image at `imagePath` (format `imageFormat`), grown to
   * `sizeGb`. Copy-on-write where the backend can (a qcow2 overlay on a
   * private link of the image file), so it is fast and small.
   */
  createVolumeFromImage(id: string, imageKey: string, imagePath: string, imageFormat: string, sizeGb: number): Promise<void>;
  /** A copy-on-write volume on snapshot `snapshotId`, grown to `sizeGb`. */
  createVolumeFromSnapshot(id: string, snapshotId: string, sizeGb: number): Promise<void>;
  /** A full copy of volume `sourceId` (which may be attached: the copy is crash-consistent), grown to `sizeGb`. */
  cloneVolume(id: string, sourceId: string, sizeGb: number): Promise<void>;
  /** Removes a volume. Fails `InvalidState` if snapshots or volumes still depend on its data. */
  deleteVolume(id: string): Promise<void>;
  /** Grows an unattached volume to `newSizeGb` (never shrinks). */
  extendVolume(id: string, newSizeGb: number): Promise<void>;
  /** A point-in-time snapshot of a volume; `attached` volumes are copied (crash-consistent), idle ones are frozen in place. */
  createSnapshot(snapshotId: string, volumeId: string, attached: boolean): Promise<void>;
  /** Removes a snapshot, first folding its data into whatever still depends on it. */
  deleteSnapshot(snapshotId: string): Promise<void>;
  /** Writes the volume's whole content (backing chain flattened) to `outPath` in `format`. */
  exportVolume(id: string, outPath: string, format: 'qcow2' | 'raw'): Promise<void>;
  /** Replaces the volume's content with the raw image at `rawPath` (the volume must be idle); keeps its size at least `sizeGb`. */
  importVolume(id: string, rawPath: string, sizeGb: number): Promise<void>;
  /**
   * Byte ranges of the volume that may hold data (everything else reads as
   * zeros), so backups read only what is there. Ranges may over-approximate.
   */
  dataExtents(id: string): Promise<{ start: number; length: number }[]>;
  /** Connection info for a host. */
  connectionInfo(id: string): ConnectionInfo;
  /** Whether the volume's data exists on the backend. */
  exists(id: string): boolean;
  /** Capacity of the backend, GiB. */
  capacity(): Promise<{ totalGb: number; freeGb: number }>;
}
