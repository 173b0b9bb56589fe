/**
 * Volume status as Cinder reports it, and which operation may start from
 * which status (the service checks these with a compare-and-set on
 * `status`, so two requests never both start from the same state).
 *
 * | status            | meaning                                  | next                         |
 * |-------------------|------------------------------------------|------------------------------|
 * | creating          | the backend is making the volume         | available, error             |
 * | available         | idle, not attached                       | anything below               |
 * | reserved          | an attachment without a connector exists | attaching, available         |
 * | attaching         | a host is connecting                     | in-use, available            |
 * | in-use            | attached to at least one server          | detaching, extending*, ...   |
 * | detaching         | the last attachment is being removed     | available, in-use            |
 * | extending         | the backend is growing it                | available/in-use, error_extending |
 * | deleting          | going away                               | (gone), error_deleting       |
 * | backing-up        | a backup reads it                        | available/in-use             |
 * | restoring-backup  | a backup is written onto it              | available, error_restoring   |
 * | uploading         | os-volume_upload_image copies it         | available/in-use             |
 * | downloading       | image data is copied in (not used: overlays) | available                 |
 * | awaiting-transfer | a transfer offers it to another project  | available                    |
 * | maintenance       | an admin operation holds it              | (admin reset)                |
 * | error, error_deleting, error_extending, error_restoring | failed; a fault message says why |  |
 */
export const VOLUME_STATUSES = [
  'creating', 'available', 'reserved', 'attaching', 'in-use', 'detaching', 'extending', 'deleting', 'error', 'error_deleting',
  'error_extending', 'error_restoring', 'backing-up', 'restoring-backup', 'downloading', 'uploading', 'maintenance', 'awaiting-transfer',
] as const;
export type VolumeStatus = (typeof VOLUME_STATUSES)[number];

/** Statuses a volume may be deleted from (Cinder's list, plus error_extending). */
export const DELETABLE = ['available', 'error', 'error_restoring', 'error_extending', 'error_managing'];
/** attach_status values. */
export const ATTACH = { DETACHED: 'detached', ATTACHING: 'attaching', ATTACHED: 'attached', DETACHING: 'detaching', RESERVED: 'reserved', ERROR_ATTACHING: 'error_attaching', ERROR_DETACHING: 'error_detaching' } as const;
export const SNAPSHOT_STATUSES = ['creating', 'available', 'deleting', 'error', 'error_deleting', 'backing-up', 'restoring'] as const;
export const BACKUP_STATUSES = ['creating', 'available', 'deleting', 'error', 'error_deleting', 'restoring'] as const;
