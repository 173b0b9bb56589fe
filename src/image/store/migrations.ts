import type { MigrationSet } from '../../core/db.js';

/** Image service schema (Glance's data model, portable SQL only). */
export const imageMigrations: MigrationSet = {
  'image/0001_init': {
    async up(db) {
      await db.schema
        .createTable('glance_images')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('visibility', 'text', (c) => c.notNull())
        .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('os_hidden', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('disk_format', 'text')
        .addColumn('container_format', 'text')
        .addColumn('min_disk', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('min_ram', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('size', 'bigint')
        .addColumn('virtual_size', 'bigint')
        .addColumn('checksum', 'text')
        .addColumn('os_hash_algo', 'text')
        .addColumn('os_hash_value', 'text')
        .addColumn('owner', 'text')
        .addColumn('store', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('deleted_at', 'bigint')
        .execute();
      await db.schema.createIndex('glance_images_owner').on('glance_images').columns(['owner', 'deleted']).execute();
      await db.schema.createIndex('glance_images_visibility').on('glance_images').columns(['visibility', 'deleted']).execute();
      await db.schema.createIndex('glance_images_created').on('glance_images').columns(['created_at', 'id']).execute();
      await db.schema.createIndex('glance_images_status').on('glance_images').column('status').execute();

      await db.schema
        .createTable('glance_image_properties')
        .addColumn('image_id', 'text', (c) => c.notNull().references('glance_images.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('glance_image_properties_pk', ['image_id', 'name'])
        .execute();
      await db.schema.createIndex('glance_image_properties_nv').on('glance_image_properties').columns(['name', 'value']).execute();

      await db.schema
        .createTable('glance_image_tags')
        .addColumn('image_id', 'text', (c) => c.notNull().references('glance_images.id').onDelete('cascade'))
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('glance_image_tags_pk', ['image_id', 'value'])
        .execute();
      await db.schema.createIndex('glance_image_tags_value').on('glance_image_tags').column('value').execute();

      await db.schema
        .createTable('glance_image_members')
        .addColumn('image_id', 'text', (c) => c.notNull().references('glance_images.id').onDelete('cascade'))
        .addColumn('member', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('glance_image_members_pk', ['image_id', 'member'])
        .execute();
      await db.schema.createIndex('glance_image_members_member').on('glance_image_members').columns(['member', 'status']).execute();

      await db.schema
        .createTable('glance_tasks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('owner', 'text')
        .addColumn('image_id', 'text')
        .addColumn('request_id', 'text')
        .addColumn('user_id', 'text')
        .addColumn('input', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .execute();
      await db.schema.createIndex('glance_tasks_owner').on('glance_tasks').columns(['owner', 'created_at']).execute();
      await db.schema.createIndex('glance_tasks_image').on('glance_tasks').column('image_id').execute();
    },
  },
};
