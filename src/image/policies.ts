/**
 * Image API policy defaults, under Glance's rule names so that an operator's
 * Glance `policy.yaml` carries over. Targets carry `owner` (= `project_id`),
 * `visibility`, and `member_id` (the caller's project when it is a member of
 * the image; for member routes, the member addressed).
 *
 * Which images a caller can see at all (public, community, owned, shared
 * with them) is decided by the service before any rule runs: an image the
 * caller cannot see is a 404, as in Glance. These rules then decide what a
 * caller who can see an image may do with it.
 */
const ADMIN = 'rule:cloud_admin';
const READER = 'rule:cloud_reader';
/** A member (writer) of the project owning the image. */
const OWNER = `${ADMIN} or (role:member and project_id:%(owner)s)`;
/** Read access to an image the caller can see. */
const CAN_READ = `${READER} or ${ADMIN} or (role:reader and (project_id:%(owner)s or project_id:%(member_id)s or 'public':%(visibility)s or 'community':%(visibility)s))`;

export const imagePolicies: Record<string, string> = {
  add_image: OWNER,
  get_image: CAN_READ,
  get_images: `${READER} or ${ADMIN} or role:reader`,
  modify_image: OWNER,
  publicize_image: ADMIN,
  communitize_image: OWNER,
  delete_image: OWNER,
  upload_image: OWNER,
  download_image: CAN_READ,
  deactivate: OWNER,
  reactivate: OWNER,
  add_member: OWNER,
  delete_member: OWNER,
  get_member: `${READER} or ${ADMIN} or (role:reader and (project_id:%(owner)s or project_id:%(member_id)s))`,
  get_members: `${READER} or ${ADMIN} or (role:reader and (project_id:%(owner)s or project_id:%(member_id)s))`,
  modify_member: `${ADMIN} or (role:member and project_id:%(member_id)s)`,
  get_task: `${READER} or ${ADMIN} or (role:reader and project_id:%(owner)s)`,
  get_tasks: `${READER} or ${ADMIN} or role:reader`,
};
