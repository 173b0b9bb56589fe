/**
 * The API extensions Stratus implements, exactly: clients (the openstack CLI,
 * Tempest, Terraform) probe aliases before using a feature, so listing one we
 * do not implement would make them send requests we then refuse.
 */
export interface Extension {
  name: string;
  alias: string;
  description: string;
  updated: string;
  links: never[];
}

const ext = (alias: string, name: string, description: string): Extension => ({ name, alias, description, updated: '2013-01-01T00:00:00-00:00', links: [] });

export const EXTENSIONS: Extension[] = [
  ext('agent', 'agent', 'The agent management extension.'),
  ext('allowed-address-pairs', 'Allowed Address Pairs', 'Provides allowed address pairs'),
  ext('availability_zone', 'Availability Zone', 'The availability zone extension.'),
  ext('network_availability_zone', 'Network Availability Zone', 'Availability zone support for network.'),
  ext('router_availability_zone', 'Router Availability Zone', 'Availability zone support for router.'),
  ext('binding', 'Port Binding', 'Expose port bindings of a virtual port to external application'),
  ext('dns-integration', 'DNS Integration', 'Provides integration with DNS.'),
  ext('external-net', 'Neutron external network', 'Adds external network attribute to network resource.'),
  ext('ext-gw-mode', 'Neutron L3 Configurable external gateway mode', 'Extension of the router abstraction for specifying whether SNAT should occur on the external gateway'),
  ext('extraroute', 'Neutron Extra Route', 'Extra routes configuration for L3 router'),
  ext('net-mtu', 'Network MTU', 'Provides MTU attribute for a network resource.'),
  ext('net-mtu-writable', 'Network MTU (writable)', 'Provides a writable MTU attribute for a network resource.'),
  ext('pagination', 'Pagination support', 'Extension that indicates that pagination is enabled.'),
  ext('sorting', 'Sorting support', 'Extension that indicates that sorting is enabled.'),
  ext('port-security', 'Port Security', 'Provides port security'),
  ext('project-id', 'project_id field enabled', 'Extension that indicates that project_id field is enabled.'),
  ext('provider', 'Provider Network', 'Expose mapping of virtual networks to physical networks'),
  ext('quotas', 'Quota management support', 'Expose functions for quotas management per tenant'),
  ext('quota_details', 'Quota details management support', 'Expose functions for quotas usage statistics per project'),
  ext('router', 'Neutron L3 Router', 'Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.'),
  ext('security-group', 'security-group', 'The security groups extension.'),
  ext('stateful-security-group', 'Stateful security group', 'Indicates if the security group is stateful or not'),
  ext('standard-attr-description', 'standard-attr-description', 'Extension to add descriptions to standard attributes'),
  ext('standard-attr-revisions', 'Resource revision numbers', 'This extension will display the revision number of neutron resources.'),
  ext('standard-attr-timestamp', 'Resource timestamps', 'Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.'),
  ext('standard-attr-tag', 'Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip', 'Enables to set tag on resources with standard attribute.'),
  ext('tag-ports-during-bulk-creation', 'Tag Ports During Bulk Creation', 'Allow to tag ports during bulk creation'),
];
