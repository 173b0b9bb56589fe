/** Row types of the identity tables (see migrations.ts). */
export interface DomainRow { id: string; name: string; description: string; enabled: number; extra: string; tags: string; created_at: number }
export interface ProjectRow { id: string; name: string; domain_id: string; parent_id: string | null; description: string; enabled: number; extra: string; tags: string; created_at: number }
export interface UserRow {
  id: string; name: string; domain_id: string; enabled: number; password_hash: string | null; password_created_at: number | null;
  password_expires_at: number | null; default_project_id: string | null; extra: string; options: string; failed_auth_count: number;
  failed_auth_at: number | null; created_at: number;
}
export interface GroupRow { id: string; name: string; domain_id: string; description: string; extra: string; created_at: number }
export interface GroupMemberRow { group_id: string; user_id: string }
export interface RoleRow { id: string; name: string; domain_id: string; description: string; options: string; created_at: number }
export interface ImpliedRoleRow { prior_role_id: string; implied_role_id: string }
export type AssignmentType = 'UserProject' | 'GroupProject' | 'UserDomain' | 'GroupDomain' | 'UserSystem' | 'GroupSystem';
export interface AssignmentRow { type: AssignmentType; actor_id: string; target_id: string; role_id: string; inherited: number }
export interface RegionRow { id: string; description: string; parent_region_id: string | null; extra: string }
export interface ServiceRow { id: string; type: string; name: string; description: string; enabled: number; extra: string }
export interface EndpointRow { id: string; service_id: string; interface: string; url: string; region_id: string | null; enabled: number; extra: string }
export interface AppCredRow {
  id: string; name: string; user_id: string; project_id: string; secret_hash: string; description: string; expires_at: number | null;
  unrestricted: number; roles: string; access_rules: string; created_at: number;
}
export interface CredentialRow { id: string; user_id: string; project_id: string | null; type: string; encrypted_blob: string; extra: string; created_at: number }
export interface RevocationRow {
  id: string; user_id: string | null; project_id: string | null; domain_id: string | null; audit_id: string | null; app_cred_id: string | null;
  issued_before: number; revoked_at: number;
}
export interface MetaRow { key: string; value: string }

export interface IdentityTables {
  id_domains: DomainRow;
  id_projects: ProjectRow;
  id_users: UserRow;
  id_groups: GroupRow;
  id_group_members: GroupMemberRow;
  id_roles: RoleRow;
  id_implied_roles: ImpliedRoleRow;
  id_assignments: AssignmentRow;
  id_regions: RegionRow;
  id_services: ServiceRow;
  id_endpoints: EndpointRow;
  id_app_creds: AppCredRow;
  id_credentials: CredentialRow;
  id_revocations: RevocationRow;
  id_meta: MetaRow;
  id_policy_blobs: { id: string; type: string; blob: string; extra: string };
}
