import type { MigrationSet } from '../../core/db.js';

/** Compute schema (core/db.ts portability rules: ms bigint times, 0/1 booleans, JSON text). */
export const computeMigrations: MigrationSet = {
  'compute/0001_init': {
    async up(db) {
      await db.schema
        .createTable('nova_flavors')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('ram', 'integer', (c) => c.notNull())
        .addColumn('disk', 'integer', (c) => c.notNull())
        .addColumn('ephemeral', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('swap', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('rxtx_factor', 'real', (c) => c.notNull().defaultTo(1))
        .addColumn('is_public', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('description', 'text')
        .addColumn('extra_specs', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('nova_flavor_access')
        .addColumn('flavor_id', 'text', (c) => c.notNull().references('nova_flavors.id').onDelete('cascade'))
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('nova_flavor_access_pk', ['flavor_id', 'project_id'])
        .execute();
      await db.schema
        .createTable('nova_keypairs')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('nova_keypairs_pk', ['user_id', 'name'])
        .execute();
      await db.schema
        .createTable('nova_instances')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('image_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('flavor', 'text', (c) => c.notNull())
        .addColumn('old_flavor', 'text')
        .addColumn('key_name', 'text')
        .addColumn('key_data', 'text')
        .addColumn('user_data', 'text')
        .addColumn('availability_zone', 'text', (c) => c.notNull())
        .addColumn('host', 'text')
        .addColumn('vm_state', 'text', (c) => c.notNull())
        .addColumn('task_state', 'text')
        .addColumn('power_state', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('locked', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('locked_by', 'text')
        .addColumn('config_drive', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('description', 'text')
        .addColumn('reservation_id', 'text', (c) => c.notNull())
        .addColumn('launch_index', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('access_ip_v4', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('access_ip_v6', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('admin_pass_set', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('server_group_id', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('launched_at', 'bigint')
        .addColumn('terminated_at', 'bigint')
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('nova_instances_project').on('nova_instances').columns(['project_id', 'deleted', 'created_at']).execute();
      await db.schema.createIndex('nova_instances_host').on('nova_instances').columns(['host', 'deleted']).execute();
      await db.schema
        .createTable('nova_instance_actions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('message', 'text')
        .addColumn('start_time', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('nova_instance_actions_instance').on('nova_instance_actions').columns(['instance_id', 'start_time']).execute();
      await db.schema
        .createTable('nova_instance_action_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('action_id', 'text', (c) => c.notNull().references('nova_instance_actions.id').onDelete('cascade'))
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('traceback', 'text')
        .addColumn('host', 'text')
        .addColumn('start_time', 'bigint', (c) => c.notNull())
        .addColumn('finish_time', 'bigint')
        .execute();
      await db.schema
        .createTable('nova_instance_faults')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('code', 'integer', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('nova_instance_faults_instance').on('nova_instance_faults').column('instance_id').execute();
      await db.schema
        .createTable('nova_server_groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('policy', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('nova_compute_hosts')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('host', 'text', (c) => c.notNull().unique())
        .addColumn('availability_zone', 'text', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('disk_gb', 'integer', (c) => c.notNull())
        .addColumn('cpu_ratio', 'real', (c) => c.notNull())
        .addColumn('ram_ratio', 'real', (c) => c.notNull())
        .addColumn('disk_ratio', 'real', (c) => c.notNull())
        .addColumn('hypervisor_type', 'text', (c) => c.notNull())
        .addColumn('hypervisor_version', 'text', (c) => c.notNull())
        .addColumn('accel', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('enabled'))
        .addColumn('disabled_reason', 'text')
        .addColumn('forced_down', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('nova_allocations')
        .addColumn('instance_id', 'text', (c) => c.primaryKey())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('disk_gb', 'integer', (c) => c.notNull())
        .execute();
    },
  },
  'compute/0002_networks': {
    async up(db) {
      // What the user asked for at boot (Nova's requested_networks) and the
      // security group names; the ports themselves belong to the network service.
      await db.schema.alterTable('nova_instances').addColumn('requested_networks', 'text').execute();
      await db.schema.alterTable('nova_instances').addColumn('security_groups', 'text', (c) => c.notNull().defaultTo('[]')).execute();
    },
  },
};
