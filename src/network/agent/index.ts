export { NetworkAgent, portDevice, bridgeMac, hostSideMac, type NetworkAgentOptions, type AgentLog } from './agent.js';
export { Runner, HostCommandError } from './runner.js';
export { firewallScript, ruleMatch, protocolNumber, FW_TABLE } from './firewall.js';
export { dnsmasqArgs, dhcpFiles } from './dhcp.js';
export { routerNatScript, ROUTER_TABLE } from './router.js';
