import type { MigrationSet } from '../../core/db.js';

/** Identity schema. Times are integer ms, booleans 0/1, JSON as text (core/db.ts rules). */
export const identityMigrations: MigrationSet = {
  'identity/0001_init': {
    async up(db) {
      await db.schema
        .createTable('id_domains')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('id_projects')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('domain_id', 'text', (c) => c.notNull().references('id_domains.id'))
        .addColumn('parent_id', 'text')
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('id_projects_domain_name', ['domain_id', 'name'])
        .execute();
      await db.schema
        .createTable('id_users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('domain_id', 'text', (c) => c.notNull().references('id_domains.id'))
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('password_hash', 'text')
        .addColumn('password_created_at', 'bigint')
        .addColumn('password_expires_at', 'bigint')
        .addColumn('default_project_id', 'text')
        .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('options', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('failed_auth_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('failed_auth_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('id_users_domain_name', ['domain_id', 'name'])
        .execute();
      await db.schema
        .createTable('id_groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('domain_id', 'text', (c) => c.notNull().references('id_domains.id'))
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('id_groups_domain_name', ['domain_id', 'name'])
        .execute();
      await db.schema
        .createTable('id_group_members')
        .addColumn('group_id', 'text', (c) => c.notNull().references('id_groups.id').onDelete('cascade'))
        .addColumn('user_id', 'text', (c) => c.notNull().references('id_users.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('id_group_members_pk', ['group_id', 'user_id'])
        .execute();
      await db.schema
        .createTable('id_roles')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        // '' for global roles so the unique constraint works in both dialects
        .addColumn('domain_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('options', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('id_roles_domain_name', ['domain_id', 'name'])
        .execute();
      await db.schema
        .createTable('id_implied_roles')
        .addColumn('prior_role_id', 'text', (c) => c.notNull().references('id_roles.id').onDelete('cascade'))
        .addColumn('implied_role_id', 'text', (c) => c.notNull().references('id_roles.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('id_implied_roles_pk', ['prior_role_id', 'implied_role_id'])
        .execute();
      await db.schema
        .createTable('id_assignments')
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('role_id', 'text', (c) => c.notNull().references('id_roles.id').onDelete('cascade'))
        .addColumn('inherited', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('id_assignments_pk', ['type', 'actor_id', 'target_id', 'role_id', 'inherited'])
        .execute();
      await db.schema.createIndex('id_assignments_actor').on('id_assignments').column('actor_id').execute();
      await db.schema.createIndex('id_assignments_target').on('id_assignments').column('target_id').execute();
      await db.schema
        .createTable('id_regions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('parent_region_id', 'text')
        .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      await db.schema
        .createTable('id_services')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      await db.schema
        .createTable('id_endpoints')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('service_id', 'text', (c) => c.notNull().references('id_services.id').onDelete('cascade'))
        .addColumn('interface', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('region_id', 'text')
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      await db.schema
        .createTable('id_app_creds')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('id_users.id').onDelete('cascade'))
        .addColumn('project_id', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        // microseconds: clients compare the exact value they sent
        .addColumn('expires_at', 'bigint')
        .addColumn('unrestricted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('roles', 'text', (c) => c.notNull())
        .addColumn('access_rules', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('id_app_creds_user_name', ['user_id', 'name'])
        .execute();
      await db.schema
        .createTable('id_credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('id_users.id').onDelete('cascade'))
        .addColumn('project_id', 'text')
        .addColumn('type', 'text', (c) => c.notNull())
        // Fernet-encrypted with the credential key repository; never stored in clear.
        .addColumn('encrypted_blob', 'text', (c) => c.notNull())
        .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('id_credentials_user').on('id_credentials').column('user_id').execute();
      await db.schema
        .createTable('id_revocations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text')
        .addColumn('project_id', 'text')
        .addColumn('domain_id', 'text')
        .addColumn('audit_id', 'text')
        .addColumn('app_cred_id', 'text')
        .addColumn('issued_before', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('id_meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  'identity/0002_policy_blobs': {
    async up(db) {
      // Keystone's /v3/policies: opaque policy documents stored for other services.
      await db.schema
        .createTable('id_policy_blobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('blob', 'text', (c) => c.notNull())
        .addColumn('extra', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
    },
  },
};
