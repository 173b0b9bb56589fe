/**
 * Stratus object storage engine: the layer under the Swift and S3 APIs.
 * See README.md in this directory for the on-disk layout and guarantees.
 */
export {
  ObjectStore,
  checkConditions,
  resolveRange,
  type OpenOptions,
  type PutObjectOptions,
  type PutResult,
  type ObjectMeta,
  type ReadConditions,
  type ByteRange,
  type GetObjectResult,
  type ContainerInfo,
  type ContainerMeta,
  type AccountInfo,
  type AccountMeta,
  type MetaUpdate,
  type PostObjectOptions,
  type CopyOptions,
  type DeleteObjectOptions,
} from './store.js';
export { sendBody } from './reader.js';
export { Ring, type RingDevice, type RingDeviceSpec, type Placement } from './ring.js';
export { LISTING_LIMIT, type ListOptions, type ObjectEntry, type ContainerEntry, type SubdirEntry } from './index-db.js';
export * from './errors.js';
export { normalizeTimestamp, timestampToIso, timestampToMs, type Timestamp } from './timestamp.js';
export { LIMITS, normalizeEtag } from './validate.js';
export type { ReplicationStats } from './replicator.js';
export type { AuditStats } from './auditor.js';
export type { StoreLogger } from './disk.js';
