/**
 * The contract between the network service (Neutron API, database, IPAM) and
 * the network agent that runs on every host (bridges, namespaces, dnsmasq,
 * nftables), and between compute and the network service. Everything crosses
 * the bus, so every type here is plain JSON.
 *
 * The agent is level-triggered: it is handed the complete desired state of
 * its host (`HostNetworkState`) and converges the kernel to it — creating what
 * is missing, repairing what differs, removing what no longer has a resource.
 * The same `reconcile` runs on start (adopting what already exists), after
 * every change the service makes (`sync` cast) and on demand (`plug`).
 *
 * Topics
 *   `network`            served by the network service
 *      register_agent   { host }                         -> HostNetworkState   (an agent starting; it then gets `sync` casts)
 *      get_host_state   { host }                         -> HostNetworkState   (also counts as a heartbeat)
 *      heartbeat        { host }                         -> {}                 (an agent not heard from for 75 s is dead: its DHCP and routers move to a live agent)
 *      allocate_for_instance AllocateRequest             -> { ports: InstancePort[] }
 *      deallocate_for_instance { instance_id, host }     -> {}
 *      instance_ports   { instance_id }                  -> { ports: InstancePort[] }
 *      ports_of_instances { instance_ids }               -> { ports: { [instance_id]: InstancePort[] } }   (server lists: one call)
 *      attach_port      { instance_id, host, project_id, port_id? , network_id?, fixed_ip? } -> { port: InstancePort }
 *      detach_port      { instance_id, port_id }          -> {}
 *      lookup_instance  { network_id?, router_id?, ip }   -> { instance_id: string | null, project_id: string | null }
 *      update_instance_security_groups { instance_id, project_id, add?: name|id, remove?: name|id } -> { security_groups: string[] (names) }
 *                       (Nova's addSecurityGroup/removeSecurityGroup: every port of the instance; 404 unknown group, 400 not on the instance)
 *   `netagent.<host>`    served by the agent of that host
 *      sync (cast)      { state: HostNetworkState }
 *      plug (call)      { port_id }   -> { device: string }   wire the tap now (fetches fresh state)
 *      unplug (call)    { port_id }   -> {}
 *      status (call)    {}            -> AgentStatus
 */

/** Linux interface names are at most 15 characters: prefix + the first 11 of the uuid. */
export const devName = (prefix: 'tap' | 'brq' | 'qr-' | 'qg-' | 'ns-', id: string): string => `${prefix}${id.slice(0, 11)}`;
export const dhcpNamespace = (networkId: string): string => `qdhcp-${networkId}`;
export const routerNamespace = (routerId: string): string => `qrouter-${routerId}`;
/** Where guests find the metadata service (proxied from the DHCP or router namespace). */
export const METADATA_IP = '169.254.169.254';

export interface FixedIp {
  subnet_id: string;
  ip_address: string;
}

export interface SubnetState {
  id: string;
  cidr: string;
  ip_version: 4 | 6;
  gateway_ip: string | null;
  enable_dhcp: boolean;
  dns_nameservers: string[];
  host_routes: Array<{ destination: string; nexthop: string }>;
}

export interface NetworkState {
  id: string;
  project_id: string;
  mtu: number;
  admin_state_up: boolean;
  /** router:external — its bridge carries the host's own address (the gateway of its subnets). */
  external: boolean;
  /** flat (a plain bridge), vlan/vxlan where the host carries them; local otherwise. */
  network_type: 'flat' | 'vlan' | 'vxlan' | 'local';
  segmentation_id: number | null;
  subnets: SubnetState[];
  /** The DHCP port (device_owner network:dhcp), when any subnet has DHCP enabled. */
  dhcp_port: { id: string; mac_address: string; fixed_ips: FixedIp[] } | null;
  /** Every port with addresses on this network: dnsmasq's static host entries (and DNS names). */
  dhcp_hosts: Array<{ port_id: string; mac_address: string; ip_address: string; hostname: string }>;
}

export interface SecurityGroupRuleState {
  id: string;
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  /** null = any; otherwise a name (tcp, udp, icmp, ipv6-icmp, …) or a number as a string. */
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
}

export interface SecurityGroupState {
  id: string;
  rules: SecurityGroupRuleState[];
  /** Addresses of every port in the group: what remote_group_id rules match. */
  member_ips: string[];
}

/** A VM port bound to this host. */
export interface PortState {
  id: string;
  network_id: string;
  mac_address: string;
  fixed_ips: FixedIp[];
  /** The tap device QEMU opens (`devName('tap', id)`). */
  device: string;
  device_id: string;
  admin_state_up: boolean;
  port_security_enabled: boolean;
  security_group_ids: string[];
  allowed_address_pairs: Array<{ ip_address: string; mac_address: string }>;
}

export interface RouterState {
  id: string;
  admin_state_up: boolean;
  /** The external gateway leg; null when the router has none. */
  gateway: { port_id: string; network_id: string; mac_address: string; fixed_ips: Array<FixedIp & { prefixlen: number }>; enable_snat: boolean; next_hop: string | null } | null;
  interfaces: Array<{ port_id: string; network_id: string; subnet_id: string; mac_address: string; ip_address: string; prefixlen: number; cidr: string }>;
  routes: Array<{ destination: string; nexthop: string }>;
  floating_ips: Array<{ id: string; floating_ip_address: string; fixed_ip_address: string; port_id: string }>;
}

export interface HostNetworkState {
  host: string;
  /** Increases with every change; an agent ignores a state older than the one it applied. */
  generation: number;
  networks: NetworkState[];
  ports: PortState[];
  routers: RouterState[];
  security_groups: SecurityGroupState[];
}

export interface AgentStatus {
  host: string;
  generation: number;
  bridges: string[];
  namespaces: string[];
  taps: string[];
  errors: string[];
}

/** What compute asks for when it boots a server. */
export interface AllocateRequest {
  instance_id: string;
  project_id: string;
  host: string;
  hostname: string;
  /** From `networks` in the server create request; [] = the project's default network if exactly one is usable. 'none' / 'auto' as in Nova. */
  requested: Array<{ network_id?: string; port_id?: string; fixed_ip?: string }> | 'none' | 'auto';
  security_groups: string[];
  /** The server's availability zone: ports get device_owner `compute:<az>` (default: the network service's zone). */
  availability_zone?: string;
}

/** A port as compute needs it: to plug a NIC and to render `addresses` and network_data.json. */
export interface InstancePort {
  id: string;
  network_id: string;
  network_name: string;
  mac_address: string;
  device: string;
  mtu: number;
  fixed_ips: Array<FixedIp & { version: 4 | 6; cidr: string; gateway_ip: string | null; floating_ips: string[] }>;
  dns_nameservers: string[];
}
