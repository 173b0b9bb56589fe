/**
 * The network service (OpenStack Neutron compatible), mounted at /network.
 *
 * - `NetworkService` (service/service.ts): networks, subnets and IPAM, ports,
 *   routers, floating IPs, security groups, quotas, tags, and the `network`
 *   bus topic (protocol.ts) that agents and compute use;
 * - `networkRoutes` (api/routes.ts): the Networking API v2.0;
 * - `networkMigrations`, `networkPolicies`: schema and policy defaults.
 * The host side (bridges, namespaces, dnsmasq, nftables) is the agent's (agent/).
 */
export { NetworkService, type NetworkServiceOptions } from './service/service.js';
export { NETWORK_QUOTAS, type Caller } from './service/context.js';
export { networkRoutes, type NetworkApiEnv } from './api/routes.js';
export { networkMigrations } from './store/migrations.js';
export { networkPolicies } from './policies.js';
