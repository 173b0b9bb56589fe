/**
 * Row shapes of the network service's tables (core/db.ts portability rules:
 * booleans 0/1, millisecond times as bigint, JSON as text, ids as text).
 * Every resource carries Neutron's standard attributes (description,
 * created_at, updated_at, revision_number) on its own row.
 */
interface Standard {
  id: string;
  project_id: string;
  name: string;
  description: string;
  created_at: number;
  updated_at: number;
  revision_number: number;
}

export interface NetworkRow extends Standard {
  admin_state_up: number;
  shared: number;
  external: number;
  mtu: number;
  network_type: string;
  physical_network: string | null;
  segmentation_id: number | null;
  port_security_enabled: number;
  dns_domain: string;
  is_default: number;
  /** The host whose agent serves this network's DHCP (null until an agent is there). */
  dhcp_host: string | null;
}

export interface SubnetRow extends Standard {
  network_id: string;
  ip_version: number;
  cidr: string;
  gateway_ip: string | null;
  enable_dhcp: number;
  ipv6_ra_mode: string | null;
  ipv6_address_mode: string | null;
  /** JSON: string[] */
  dns_nameservers: string;
  /** JSON: {destination, nexthop}[] */
  host_routes: string;
}

export interface AllocationPoolRow {
  subnet_id: string;
  first_ip: string;
  last_ip: string;
  position: number;
}

/** One address handed out by IPAM; the primary key (subnet_id, ip_address) is what makes a double allocation impossible. */
export interface IpAllocationRow {
  subnet_id: string;
  ip_address: string;
  port_id: string;
  network_id: string;
}

export interface PortRow extends Standard {
  network_id: string;
  mac_address: string;
  admin_state_up: number;
  status: string;
  device_id: string;
  device_owner: string;
  binding_host_id: string;
  binding_vnic_type: string;
  /** JSON object */
  binding_profile: string;
  port_security_enabled: number;
  /** JSON: {ip_address, mac_address}[] */
  allowed_address_pairs: string;
  dns_name: string;
  /** Compute created this port for a server (delete it when the server goes); false for ports the user passed in. */
  created_for_instance: number;
}

export interface PortSecurityGroupRow {
  port_id: string;
  security_group_id: string;
}

export interface RouterRow extends Standard {
  admin_state_up: number;
  status: string;
  gw_port_id: string | null;
  enable_snat: number;
  /** JSON: {destination, nexthop}[] */
  routes: string;
  /** The host whose agent runs this router's namespace. */
  l3_host: string | null;
}

/** Which router owns which of its ports, and in what role. */
export interface RouterPortRow {
  port_id: string;
  router_id: string;
  port_type: 'network:router_interface' | 'network:router_gateway';
}

export interface FloatingIpRow extends Omit<Standard, 'name'> {
  floating_network_id: string;
  floating_ip_address: string;
  floating_port_id: string;
  fixed_port_id: string | null;
  fixed_ip_address: string | null;
  router_id: string | null;
  status: string;
  dns_name: string;
  dns_domain: string;
}

export interface SecurityGroupRow extends Standard {
  stateful: number;
}

export interface SecurityGroupRuleRow extends Omit<Standard, 'name'> {
  security_group_id: string;
  direction: string;
  ethertype: string;
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
  /** What duplicate detection compares: the prefix, or the family's any-address for none. */
  normalized_cidr: string | null;
}

export interface TagRow {
  resource_type: string;
  resource_id: string;
  tag: string;
}

export interface AgentRow {
  id: string;
  host: string;
  agent_type: string;
  binary: string;
  topic: string;
  admin_state_up: number;
  created_at: number;
  started_at: number;
  heartbeat_at: number;
  description: string;
}

export interface NetworkTables {
  neutron_networks: NetworkRow;
  neutron_subnets: SubnetRow;
  neutron_allocation_pools: AllocationPoolRow;
  neutron_ip_allocations: IpAllocationRow;
  neutron_ports: PortRow;
  neutron_port_security_groups: PortSecurityGroupRow;
  neutron_routers: RouterRow;
  neutron_router_ports: RouterPortRow;
  neutron_floatingips: FloatingIpRow;
  neutron_security_groups: SecurityGroupRow;
  neutron_security_group_rules: SecurityGroupRuleRow;
  /** At most one default security group per project (the primary key settles concurrent first uses). */
  neutron_default_security_groups: { project_id: string; security_group_id: string };
  neutron_tags: TagRow;
  neutron_agents: AgentRow;
  /** Counters (the state generation handed to agents). */
  neutron_counters: { name: string; value: number };
}
