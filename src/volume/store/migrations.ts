import type { MigrationSet } from '../../core/db.js';

/**
 * Volume service schema (Cinder's data model, portable SQL only: booleans
 * are 0/1, times are integer ms, JSON maps are text).
 */
export const volumeMigrations: MigrationSet = {
  'volume/0001_init': {
    async up(db) {
      await db.schema
        .createTable('cinder_volume_types')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text')
        .addColumn('is_public', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('extra_specs', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('cinder_volumes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('description', 'text')
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attach_status', 'text', (c) => c.notNull())
        .addColumn('migration_status', 'text')
        .addColumn('availability_zone', 'text', (c) => c.notNull())
        .addColumn('volume_type_id', 'text', (c) => c.notNull())
        .addColumn('bootable', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('multiattach', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('snapshot_id', 'text')
        .addColumn('source_volid', 'text')
        .addColumn('image_id', 'text')
        .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('image_metadata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('admin_metadata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('host', 'text')
        .addColumn('fault', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('deleted_at', 'bigint')
        .execute();
      await db.schema.createIndex('cinder_volumes_project').on('cinder_volumes').columns(['project_id', 'deleted', 'created_at']).execute();
      await db.schema
        .createTable('cinder_snapshots')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('volume_id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('description', 'text')
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('progress', 'text', (c) => c.notNull().defaultTo('0%'))
        .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('cinder_snapshots_volume').on('cinder_snapshots').columns(['volume_id', 'deleted']).execute();
      await db.schema
        .createTable('cinder_backups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('volume_id', 'text', (c) => c.notNull())
        .addColumn('snapshot_id', 'text')
        .addColumn('parent_id', 'text')
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('description', 'text')
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('object_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('fail_reason', 'text')
        .addColumn('is_incremental', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('container', 'text')
        .addColumn('availability_zone', 'text')
        .addColumn('restore_volume_id', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('data_timestamp', 'bigint', (c) => c.notNull())
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('cinder_attachments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('volume_id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('instance_uuid', 'text')
        .addColumn('attached_host', 'text')
        .addColumn('mountpoint', 'text')
        .addColumn('attach_status', 'text', (c) => c.notNull())
        .addColumn('attach_mode', 'text', (c) => c.notNull().defaultTo('rw'))
        .addColumn('connector', 'text')
        .addColumn('delete_on_termination', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('attach_time', 'bigint')
        .addColumn('detach_time', 'bigint')
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('cinder_attachments_volume').on('cinder_attachments').columns(['volume_id', 'deleted']).execute();
      await db.schema.createIndex('cinder_attachments_instance').on('cinder_attachments').columns(['instance_uuid', 'deleted']).execute();
      await db.schema
        .createTable('cinder_transfers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('volume_id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('salt', 'text', (c) => c.notNull())
        .addColumn('crypt_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
};
