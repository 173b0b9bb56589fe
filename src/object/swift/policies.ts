/**
 * Who may do what to a Swift account `AUTH_<project_id>`, in oslo.policy
 * rules so an operator can override them in `policy.yaml`. The target
 * carries `project_id` (the account's project). Container ACLs and TempURLs
 * grant further access per container/object (see acl.ts, tempurl.ts).
 *
 * - reseller admin: every account, and account quotas (Swift's
 *   `reseller_admin_role`; here also the cloud admin);
 * - operator: full access to the project's own account (keystoneauth's
 *   `operator_roles`: admin, member);
 * - reader: read-only access to the project's own account.
 */
export const objectPolicies: Record<string, string> = {
  'object_store:reseller_admin': 'role:ResellerAdmin or rule:cloud_admin',
  'object_store:operator': '(role:admin or role:member) and project_id:%(project_id)s',
  'object_store:reader': 'role:reader and project_id:%(project_id)s',
};
