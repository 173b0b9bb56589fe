/** Networking v2.0 (Neutron): networks, subnets, routers, floating IPs, security groups, ports. */
import { ApiError, qs, request, serviceUrl } from './client.js';

export const NETWORK_TYPES = ['network'];
const base = () => {
  const u = serviceUrl(NETWORK_TYPES);
  if (!u) throw new ApiError(503, 'This cloud has no networking service in its catalog.');
  return u.endsWith('/v2.0') ? u : `${u}/v2.0`;
};

export interface Network {
  id: string;
  name: string;
  status: string;
  subnets: string[];
  shared: boolean;
  admin_state_up: boolean;
  project_id: string;
  'router:external'?: boolean;
}
export interface Subnet {
  id: string;
  name: string;
  network_id: string;
  cidr: string;
  ip_version: number;
  gateway_ip: string | null;
  enable_dhcp: boolean;
}
export interface Router {
  id: string;
  name: string;
  status: string;
  external_gateway_info: { network_id: string; external_fixed_ips?: { ip_address: string }[] } | null;
}
export interface Port {
  id: string;
  name: string;
  network_id: string;
  device_id: string;
  device_owner: string;
  status: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
}
export interface FloatingIp {
  id: string;
  floating_ip_address: string;
  floating_network_id: string;
  fixed_ip_address: string | null;
  port_id: string | null;
  status: string;
}
export interface SecurityGroupRule {
  id: string;
  direction: 'ingress' | 'egress';
  ethertype: string;
  protocol: string | null;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
  remote_group_id: string | null;
}
export interface SecurityGroup {
  id: string;
  name: string;
  description: string;
  security_group_rules: SecurityGroupRule[];
}

const list = async <T>(path: string, key: string, params: Record<string, string | undefined> = {}) => (await request<Record<string, T[]>>(`${base()}/${path}${qs(params)}`))[key] ?? [];
const create = <T>(path: string, key: string, body: unknown) => request<Record<string, T>>(`${base()}/${path}`, { method: 'POST', body: { [key]: body } });
const del = (path: string) => request(`${base()}/${path}`, { method: 'DELETE' });

export const network = {
  networks: () => list<Network>('networks', 'networks'),
  createNetwork: (n: { name: string; admin_state_up?: boolean }) => create<Network>('networks', 'network', n),
  deleteNetwork: (id: string) => del(`networks/${id}`),
  subnets: () => list<Subnet>('subnets', 'subnets'),
  createSubnet: (s: { network_id: string; cidr: string; name?: string; ip_version: number; enable_dhcp?: boolean; gateway_ip?: string }) => create<Subnet>('subnets', 'subnet', s),
  deleteSubnet: (id: string) => del(`subnets/${id}`),
  routers: () => list<Router>('routers', 'routers'),
  createRouter: (r: { name: string; external_gateway_info?: { network_id: string } }) => create<Router>('routers', 'router', r),
  deleteRouter: (id: string) => del(`routers/${id}`),
  addInterface: (id: string, subnetId: string) => request(`${base()}/routers/${id}/add_router_interface`, { method: 'PUT', body: { subnet_id: subnetId } }),
  removeInterface: (id: string, subnetId: string) => request(`${base()}/routers/${id}/remove_router_interface`, { method: 'PUT', body: { subnet_id: subnetId } }),
  ports: (params: Record<string, string | undefined> = {}) => list<Port>('ports', 'ports', params),
  floatingIps: () => list<FloatingIp>('floatingips', 'floatingips'),
  createFloatingIp: (networkId: string) => create<FloatingIp>('floatingips', 'floatingip', { floating_network_id: networkId }),
  associateFloatingIp: (id: string, portId: string | null) => request(`${base()}/floatingips/${id}`, { method: 'PUT', body: { floatingip: { port_id: portId } } }),
  deleteFloatingIp: (id: string) => del(`floatingips/${id}`),
  securityGroups: () => list<SecurityGroup>('security-groups', 'security_groups'),
  createSecurityGroup: (g: { name: string; description?: string }) => create<SecurityGroup>('security-groups', 'security_group', g),
  deleteSecurityGroup: (id: string) => del(`security-groups/${id}`),
  createRule: (r: { security_group_id: string; direction: string; ethertype: string; protocol?: string | null; port_range_min?: number | null; port_range_max?: number | null; remote_ip_prefix?: string | null }) =>
    create<SecurityGroupRule>('security-group-rules', 'security_group_rule', r),
  deleteRule: (id: string) => del(`security-group-rules/${id}`),
  quotaDetails: async (projectId: string) =>
    (await request<{ quota: Record<string, { used: number; limit: number; reserved: number }> }>(`${base()}/quotas/${projectId}/details`)).quota,
};
