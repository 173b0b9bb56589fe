/**
 * Policy rules of the S3 API (oslo.policy language, overridable in
 * `<data-dir>/policy.yaml`). The target is always the credential's own
 * project: a bucket is a container of `AUTH_<project_id>`, so these decide
 * what each role may do there. A reader may list and read; writing
 * (buckets, objects, uploads, deletes) needs member (or admin).
 */
export const s3Policies: Record<string, string> = {
  's3:read': 'rule:project_reader or rule:project_member or rule:project_admin',
  's3:write': 'rule:project_member or rule:project_admin',
};
