/**
 * Networking API policy defaults, under Neutron's rule names so that an
 * operator's Neutron `policy.yaml` carries over. Neutron's secure-RBAC
 * defaults: cloud admins do anything; project members write their project's
 * resources and readers read them; provider attributes, external and shared
 * networks, host bindings and chosen floating addresses are the admin's.
 *
 * Targets carry the resource's `project_id` (and `tenant_id`), and for
 * subnets and ports the network's owner and flags as `network:project_id`,
 * `network:tenant_id` and `network:shared`. Visibility (a resource of another
 * project is a 404, not a 403) is decided by the service before any rule runs.
 * Attribute rules (`create_network:shared`, `get_port:binding:host_id`) are
 * enforced when the request sets the attribute, and decide whether a read
 * shows it.
 */
const ADMIN = 'rule:cloud_admin';
const READER = `rule:cloud_reader or ${ADMIN} or (role:reader and project_id:%(project_id)s)`;
const MEMBER = `${ADMIN} or (role:member and project_id:%(project_id)s)`;
const NET_OWNER_MEMBER = `${ADMIN} or (role:member and project_id:%(network:project_id)s)`;
const NET_OWNER_READER = `rule:cloud_reader or ${ADMIN} or (role:reader and project_id:%(network:project_id)s)`;
const ANY = '';

export const networkPolicies: Record<string, string> = {
  context_is_admin: ADMIN,
  admin_only: ADMIN,
  // networks
  create_network: MEMBER,
  'create_network:shared': ADMIN,
  'create_network:router:external': ADMIN,
  'create_network:is_default': ADMIN,
  'create_network:provider:network_type': ADMIN,
  'create_network:provider:physical_network': ADMIN,
  'create_network:provider:segmentation_id': ADMIN,
  get_network: `${READER} or 'True':%(shared)s or 'True':%(router:external)s`,
  'get_network:provider:network_type': `rule:cloud_reader or ${ADMIN}`,
  'get_network:provider:physical_network': `rule:cloud_reader or ${ADMIN}`,
  'get_network:provider:segmentation_id': `rule:cloud_reader or ${ADMIN}`,
  update_network: MEMBER,
  'update_network:shared': ADMIN,
  'update_network:router:external': ADMIN,
  delete_network: MEMBER,
  // subnets
  create_subnet: NET_OWNER_MEMBER,
  get_subnet: `${READER} or ${NET_OWNER_READER} or 'True':%(network:shared)s`,
  update_subnet: NET_OWNER_MEMBER,
  delete_subnet: NET_OWNER_MEMBER,
  // ports
  create_port: `${ADMIN} or (role:member and project_id:%(project_id)s and (project_id:%(network:project_id)s or 'True':%(network:shared)s))`,
  'create_port:device_owner': NET_OWNER_MEMBER,
  'create_port:mac_address': NET_OWNER_MEMBER,
  'create_port:fixed_ips:ip_address': NET_OWNER_MEMBER,
  'create_port:port_security_enabled': NET_OWNER_MEMBER,
  'create_port:binding:host_id': ADMIN,
  'create_port:binding:profile': ADMIN,
  'create_port:allowed_address_pairs': NET_OWNER_MEMBER,
  get_port: `${READER} or ${NET_OWNER_READER}`,
  'get_port:binding:vif_type': `rule:cloud_reader or ${ADMIN}`,
  'get_port:binding:vif_details': `rule:cloud_reader or ${ADMIN}`,
  'get_port:binding:host_id': `rule:cloud_reader or ${ADMIN}`,
  'get_port:binding:profile': `rule:cloud_reader or ${ADMIN}`,
  update_port: `${MEMBER} or ${NET_OWNER_MEMBER}`,
  'update_port:device_owner': NET_OWNER_MEMBER,
  'update_port:mac_address': ADMIN,
  'update_port:fixed_ips:ip_address': NET_OWNER_MEMBER,
  'update_port:port_security_enabled': NET_OWNER_MEMBER,
  'update_port:binding:host_id': ADMIN,
  'update_port:binding:profile': ADMIN,
  'update_port:allowed_address_pairs': NET_OWNER_MEMBER,
  delete_port: `${MEMBER} or ${NET_OWNER_MEMBER}`,
  // routers
  create_router: MEMBER,
  'create_router:external_gateway_info:enable_snat': ADMIN,
  'create_router:external_gateway_info:external_fixed_ips': ADMIN,
  get_router: READER,
  update_router: MEMBER,
  'update_router:external_gateway_info:enable_snat': ADMIN,
  'update_router:external_gateway_info:external_fixed_ips': ADMIN,
  delete_router: MEMBER,
  add_router_interface: MEMBER,
  remove_router_interface: MEMBER,
  // floating IPs
  create_floatingip: MEMBER,
  'create_floatingip:floating_ip_address': ADMIN,
  get_floatingip: READER,
  update_floatingip: MEMBER,
  delete_floatingip: MEMBER,
  // security groups
  create_security_group: MEMBER,
  get_security_group: READER,
  update_security_group: MEMBER,
  delete_security_group: MEMBER,
  create_security_group_rule: MEMBER,
  get_security_group_rule: `${READER} or (role:reader and project_id:%(security_group:project_id)s)`,
  update_security_group_rule: MEMBER,
  delete_security_group_rule: `${MEMBER} or (role:member and project_id:%(security_group:project_id)s)`,
  // quotas, agents, availability zones
  get_quota: READER,
  update_quota: ADMIN,
  delete_quota: ADMIN,
  get_agent: `rule:cloud_reader or ${ADMIN}`,
  update_agent: ADMIN,
  delete_agent: ADMIN,
  get_availability_zone: ANY,
  get_extension: ANY,
};
