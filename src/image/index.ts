/**
 * The image service (OpenStack Glance v2 compatible), mounted at /image.
 *
 * - `ImageService` (service/images.ts): the service, including the
 *   in-process API other services use (`getImageForBoot`,
 *   `createImageFromFile`, `reserveImage`);
 * - `imageRoutes` (api/routes.ts): the HTTP API;
 * - `imageMigrations`, `imagePolicies`: schema and policy defaults;
 * - drivers/store.ts: the image store interface and its file-system backend.
 */
export { ImageService, IMAGE_QUOTAS, IMPORT_METHODS, type BootImage } from './service/images.js';
export { imageRoutes, versionsBody, type ImageApiEnv } from './api/routes.js';
export { imageMigrations } from './store/migrations.js';
export { imagePolicies } from './policies.js';
export type { ImageStore, StoredData, ByteRange } from './drivers/store.js';
