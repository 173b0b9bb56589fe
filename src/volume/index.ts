/**
 * The block storage service (OpenStack Cinder v3 compatible), mounted at
 * /volume. See README.md.
 *
 * - `VolumeService` (service/volumes.ts): API-side logic and the in-process
 *   API compute uses (attachments, boot volumes);
 * - `VolumeManager` (service/manager.ts): this host's storage work;
 * - `Qcow2VolumeDriver` (drivers/qcow2-driver.ts): volumes as qcow2 files;
 * - `BackupEngine` (service/backups.ts): backups in the object store;
 * - `volumeRoutes` (api/routes.ts), `volumeMigrations`, `volumePolicies`.
 */
import { join } from 'node:path';
import type { Bus } from '../core/bus.js';
import type { Database } from '../core/db.js';
import type { Logger } from '../core/log.js';
import type { QuotaEngine } from '../core/quota.js';
import { Qcow2VolumeDriver } from './drivers/qcow2-driver.js';
import type { VolumeDriver } from './drivers/driver.js';
import { BackupEngine } from './service/backups.js';
import { VolumeManager } from './service/manager.js';
import type { BackupObjectStore, VolumeComputePort, VolumeImagePort } from './service/ports.js';
import { VolumeService } from './service/volumes.js';

export { VolumeService, VOLUME_QUOTAS, DEFAULT_TYPE } from './service/volumes.js';
export { VolumeManager } from './service/manager.js';
export { BackupEngine, BACKUP_ACCOUNT } from './service/backups.js';
export { Qcow2VolumeDriver } from './drivers/qcow2-driver.js';
export type { VolumeDriver, ConnectionInfo } from './drivers/driver.js';
export type { VolumeImagePort, VolumeComputePort, BackupObjectStore } from './service/ports.js';
export { volumeRoutes } from './api/routes.js';
export { negotiateVolumeMicroversion, v3VersionDoc, MAX_VERSION as VOLUME_MAX_MICROVERSION } from './api/microversions.js';
export { volumeMigrations } from './store/migrations.js';
export { volumePolicies } from './policies.js';

/** The volume service and this host's volume manager, wired together. */
export interface VolumeSubsystem {
  service: VolumeService;
  manager: VolumeManager;
  driver: VolumeDriver;
}

/** Builds and starts the volume service on `<dataDir>/volumes` (driver, manager, default type, quotas). */
export async function startVolumeSubsystem(o: {
  database: Database; bus: Bus; quota: QuotaEngine; log: Logger; dataDir: string; host: string; availabilityZone: string;
  images: VolumeImagePort; objectStore: BackupObjectStore | null; compute: VolumeComputePort | null; driver?: VolumeDriver;
}): Promise<VolumeSubsystem> {
  const qcow2 = o.driver ? null : new Qcow2VolumeDriver(join(o.dataDir, 'volumes'));
  const driver = o.driver ?? qcow2!;
  const service = new VolumeService(o.database, o.bus, o.quota, o.images, o.log, { host: o.host, availabilityZone: o.availabilityZone, connection: (id) => driver.connectionInfo(id) });
  await service.init();
  const manager = new VolumeManager(o.bus, service, driver, o.objectStore ? new BackupEngine(o.objectStore) : null, o.images, o.compute, o.log, { host: o.host, workDir: join(o.dataDir, 'volumes', '_work') });
  await manager.start();
  return { service, manager, driver };
}
