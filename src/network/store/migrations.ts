import type { Kysely } from 'kysely';
import type { MigrationSet } from '../../core/db.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

/** A resource table with Neutron's standard attributes. */
async function table(db: AnyDb, name: string, cols: (t: ReturnType<AnyDb['schema']['createTable']>) => ReturnType<AnyDb['schema']['createTable']>, withName = true) {
  let t = db.schema
    .createTable(name)
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('project_id', 'text', (c) => c.notNull());
  if (withName) t = t.addColumn('name', 'text', (c) => c.notNull().defaultTo(''));
  t = t
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('revision_number', 'integer', (c) => c.notNull().defaultTo(0));
  await cols(t).execute();
  await db.schema.createIndex(`${name}_project`).on(name).column('project_id').execute();
}

/** Network service schema (Neutron's data model, portable SQL only). */
export const networkMigrations: MigrationSet = {
  'network/0001_init': {
    async up(db: AnyDb) {
      await table(db, 'neutron_networks', (t) =>
        t
          .addColumn('admin_state_up', 'integer', (c) => c.notNull())
          .addColumn('shared', 'integer', (c) => c.notNull())
          .addColumn('external', 'integer', (c) => c.notNull())
          .addColumn('mtu', 'integer', (c) => c.notNull())
          .addColumn('network_type', 'text', (c) => c.notNull())
          .addColumn('physical_network', 'text')
          .addColumn('segmentation_id', 'integer')
          .addColumn('port_security_enabled', 'integer', (c) => c.notNull())
          .addColumn('dns_domain', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('dhcp_host', 'text'),
      );
      // Two networks can never carry the same VLAN/VNI.
      await db.schema.createIndex('neutron_networks_segment').on('neutron_networks').columns(['network_type', 'physical_network', 'segmentation_id']).unique().execute();

      await table(db, 'neutron_subnets', (t) =>
        t
          .addColumn('network_id', 'text', (c) => c.notNull().references('neutron_networks.id'))
          .addColumn('ip_version', 'integer', (c) => c.notNull())
          .addColumn('cidr', 'text', (c) => c.notNull())
          .addColumn('gateway_ip', 'text')
          .addColumn('enable_dhcp', 'integer', (c) => c.notNull())
          .addColumn('ipv6_ra_mode', 'text')
          .addColumn('ipv6_address_mode', 'text')
          .addColumn('dns_nameservers', 'text', (c) => c.notNull())
          .addColumn('host_routes', 'text', (c) => c.notNull()),
      );
      await db.schema.createIndex('neutron_subnets_network').on('neutron_subnets').column('network_id').execute();

      await db.schema
        .createTable('neutron_allocation_pools')
        .addColumn('subnet_id', 'text', (c) => c.notNull().references('neutron_subnets.id').onDelete('cascade'))
        .addColumn('first_ip', 'text', (c) => c.notNull())
        .addColumn('last_ip', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('neutron_allocation_pools_pk', ['subnet_id', 'position'])
        .execute();

      await table(db, 'neutron_ports', (t) =>
        t
          .addColumn('network_id', 'text', (c) => c.notNull().references('neutron_networks.id'))
          .addColumn('mac_address', 'text', (c) => c.notNull())
          .addColumn('admin_state_up', 'integer', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('device_id', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('device_owner', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('binding_host_id', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('binding_vnic_type', 'text', (c) => c.notNull().defaultTo('normal'))
          .addColumn('binding_profile', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('port_security_enabled', 'integer', (c) => c.notNull())
          .addColumn('allowed_address_pairs', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('dns_name', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_for_instance', 'integer', (c) => c.notNull().defaultTo(0)),
      );
      await db.schema.createIndex('neutron_ports_network').on('neutron_ports').column('network_id').execute();
      await db.schema.createIndex('neutron_ports_device').on('neutron_ports').column('device_id').execute();
      await db.schema.createIndex('neutron_ports_host').on('neutron_ports').column('binding_host_id').execute();
      await db.schema.createIndex('neutron_ports_mac').on('neutron_ports').columns(['network_id', 'mac_address']).unique().execute();

      await db.schema
        .createTable('neutron_ip_allocations')
        .addColumn('subnet_id', 'text', (c) => c.notNull().references('neutron_subnets.id'))
        .addColumn('ip_address', 'text', (c) => c.notNull())
        .addColumn('port_id', 'text', (c) => c.notNull().references('neutron_ports.id').onDelete('cascade'))
        .addColumn('network_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('neutron_ip_allocations_pk', ['subnet_id', 'ip_address'])
        .execute();
      await db.schema.createIndex('neutron_ip_allocations_port').on('neutron_ip_allocations').column('port_id').execute();
      await db.schema.createIndex('neutron_ip_allocations_net_ip').on('neutron_ip_allocations').columns(['network_id', 'ip_address']).execute();

      await table(db, 'neutron_security_groups', (t) => t.addColumn('stateful', 'integer', (c) => c.notNull().defaultTo(1)));
      await db.schema
        .createTable('neutron_default_security_groups')
        .addColumn('project_id', 'text', (c) => c.primaryKey())
        .addColumn('security_group_id', 'text', (c) => c.notNull().references('neutron_security_groups.id').onDelete('cascade'))
        .execute();
      await table(
        db,
        'neutron_security_group_rules',
        (t) =>
          t
            .addColumn('security_group_id', 'text', (c) => c.notNull().references('neutron_security_groups.id').onDelete('cascade'))
            .addColumn('direction', 'text', (c) => c.notNull())
            .addColumn('ethertype', 'text', (c) => c.notNull())
            .addColumn('protocol', 'text')
            .addColumn('port_range_min', 'integer')
            .addColumn('port_range_max', 'integer')
            .addColumn('remote_ip_prefix', 'text')
            .addColumn('remote_group_id', 'text', (c) => c.references('neutron_security_groups.id').onDelete('cascade'))
            .addColumn('normalized_cidr', 'text'),
        false,
      );
      await db.schema.createIndex('neutron_sgr_group').on('neutron_security_group_rules').column('security_group_id').execute();
      await db.schema.createIndex('neutron_sgr_remote').on('neutron_security_group_rules').column('remote_group_id').execute();

      await db.schema
        .createTable('neutron_port_security_groups')
        .addColumn('port_id', 'text', (c) => c.notNull().references('neutron_ports.id').onDelete('cascade'))
        .addColumn('security_group_id', 'text', (c) => c.notNull().references('neutron_security_groups.id'))
        .addPrimaryKeyConstraint('neutron_port_security_groups_pk', ['port_id', 'security_group_id'])
        .execute();
      await db.schema.createIndex('neutron_port_sg_group').on('neutron_port_security_groups').column('security_group_id').execute();

      await table(db, 'neutron_routers', (t) =>
        t
          .addColumn('admin_state_up', 'integer', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('gw_port_id', 'text')
          .addColumn('enable_snat', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('routes', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('l3_host', 'text'),
      );
      await db.schema
        .createTable('neutron_router_ports')
        .addColumn('port_id', 'text', (c) => c.primaryKey().references('neutron_ports.id').onDelete('cascade'))
        .addColumn('router_id', 'text', (c) => c.notNull().references('neutron_routers.id'))
        .addColumn('port_type', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('neutron_router_ports_router').on('neutron_router_ports').column('router_id').execute();

      await table(
        db,
        'neutron_floatingips',
        (t) =>
          t
            .addColumn('floating_network_id', 'text', (c) => c.notNull().references('neutron_networks.id'))
            .addColumn('floating_ip_address', 'text', (c) => c.notNull())
            .addColumn('floating_port_id', 'text', (c) => c.notNull())
            .addColumn('fixed_port_id', 'text')
            .addColumn('fixed_ip_address', 'text')
            .addColumn('router_id', 'text')
            .addColumn('status', 'text', (c) => c.notNull())
            .addColumn('dns_name', 'text', (c) => c.notNull().defaultTo(''))
            .addColumn('dns_domain', 'text', (c) => c.notNull().defaultTo('')),
        false,
      );
      // One floating IP per (fixed port, fixed address): Neutron's FloatingIPPortAlreadyAssociated.
      await db.schema.createIndex('neutron_floatingips_fixed').on('neutron_floatingips').columns(['fixed_port_id', 'fixed_ip_address']).execute();
      await db.schema.createIndex('neutron_floatingips_router').on('neutron_floatingips').column('router_id').execute();

      await db.schema
        .createTable('neutron_tags')
        .addColumn('resource_type', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull())
        .addColumn('tag', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('neutron_tags_pk', ['resource_type', 'resource_id', 'tag'])
        .execute();
      await db.schema.createIndex('neutron_tags_resource').on('neutron_tags').columns(['resource_id']).execute();

      await db.schema
        .createTable('neutron_agents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('agent_type', 'text', (c) => c.notNull())
        .addColumn('binary', 'text', (c) => c.notNull())
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('admin_state_up', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema.createIndex('neutron_agents_host_type').on('neutron_agents').columns(['host', 'agent_type']).unique().execute();

      await db.schema
        .createTable('neutron_counters')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'bigint', (c) => c.notNull())
        .execute();
      await db.insertInto('neutron_counters').values({ name: 'generation', value: 0 }).execute();
    },
  },
};
