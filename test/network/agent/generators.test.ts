/**
 * What the agent writes, checked without traffic: nftables rules from
 * security groups (and `nft -c` accepts them, inside a throwaway namespace),
 * dnsmasq files and arguments, router NAT, address helpers.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { NetworkState, PortState, RouterState, SecurityGroupRuleState } from '../../../src/network/protocol.js';
import { firewallScript, ruleMatch, protocolNumber } from '../../../src/network/agent/firewall.js';
import { dhcpFiles, dnsmasqArgs, dhcpPaths, wantsDhcpMetadata } from '../../../src/network/agent/dhcp.js';
import { routerNatScript, routerDefaultRoutes } from '../../../src/network/agent/router.js';
import { parseCidr, cidrText, canonicalIp, contains } from '../../../src/network/agent/addr.js';
import { bridgeMac, hostSideMac } from '../../../src/network/agent/agent.js';
import { sh, must } from './helpers.js';

const rule = (o: Partial<SecurityGroupRuleState>): SecurityGroupRuleState => ({
  id: 'r', direction: 'ingress', ethertype: 'IPv4', protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null, remote_group_id: null, ...o,
});
const noSets = () => null;
const port = (id: string, groups: string[], extra: Partial<PortState> = {}): PortState => ({
  id, network_id: 'n', mac_address: 'FA:16:3E:00:00:01', fixed_ips: [{ subnet_id: 's', ip_address: '10.0.0.5' }], device: `tap${id.slice(0, 11)}`,
  device_id: 'd', admin_state_up: true, port_security_enabled: true, security_group_ids: groups, allowed_address_pairs: [], ...extra,
});

describe('security group rules as nft matches', () => {
  test('protocols, port ranges, icmp type/code, prefixes, families', () => {
    assert.equal(ruleMatch(rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22 }), noSets), 'meta nfproto ipv4 meta l4proto 6 th dport 22');
    assert.equal(ruleMatch(rule({ protocol: 'udp', port_range_min: 1000, port_range_max: 2000 }), noSets), 'meta nfproto ipv4 meta l4proto 17 th dport 1000-2000');
    assert.equal(ruleMatch(rule({ protocol: 'icmp', port_range_min: 8, port_range_max: 0 }), noSets), 'meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0');
    assert.equal(ruleMatch(rule({ protocol: 'icmp', ethertype: 'IPv6' }), noSets), 'meta nfproto ipv6 meta l4proto 58');
    assert.equal(ruleMatch(rule({ protocol: '132' }), noSets), 'meta nfproto ipv4 meta l4proto 132');
    assert.equal(ruleMatch(rule({ remote_ip_prefix: '10.1.2.3/16' }), noSets), 'meta nfproto ipv4 ip saddr 10.1.0.0/16');
    assert.equal(ruleMatch(rule({ direction: 'egress', remote_ip_prefix: '0.0.0.0/0' }), noSets), 'meta nfproto ipv4');
    assert.equal(ruleMatch(rule({ direction: 'egress', ethertype: 'IPv6', remote_ip_prefix: '2001:DB8::1/64' }), noSets), 'meta nfproto ipv6 ip6 daddr 2001:db8::/64');
    // rules that can never match are left out rather than widened
    assert.equal(ruleMatch(rule({ remote_ip_prefix: '2001:db8::/64' }), noSets), null);
    assert.equal(ruleMatch(rule({ protocol: 'ipv6-icmp' }), noSets), null);
    assert.equal(ruleMatch(rule({ protocol: 'nonsense' }), noSets), null);
    assert.equal(ruleMatch(rule({ remote_group_id: 'unknown' }), noSets), null);
    assert.equal(protocolNumber('any', 'IPv4'), null);
  });

  test('no secured port: the script only removes the tables', () => {
    const { script, rules } = firewallScript({ ports: [port('a', [], { port_security_enabled: false })], securityGroups: [] });
    assert.equal(rules, 0);
    assert.ok(!script.includes('{'));
    assert.match(script, /delete table bridge stratus_agent/);
  });

  test('ports with the same groups share one pair of chains; remote groups become sets', () => {
    const g = { id: 'g', member_ips: ['10.0.0.5', '10.0.0.6', '2001:db8::5'], rules: [rule({ remote_group_id: 'g' }), rule({ remote_group_id: 'g', ethertype: 'IPv6' }), rule({ direction: 'egress' })] };
    const { script, rules } = firewallScript({ ports: [port('a', ['g']), port('b', ['g']), port('c', [])], securityGroups: [g] });
    assert.equal(rules, 3);
    assert.equal(script.match(/chain ingress\d/g)?.length, 2);
    assert.match(script, /elements = \{ 10\.0\.0\.5, 10\.0\.0\.6 \}/);
    assert.match(script, /elements = \{ 2001:db8::5 \}/);
    assert.match(script, /ether saddr fa:16:3e:00:00:01 ip saddr 10\.0\.0\.5 accept/);
  });
});

describe('generated nft scripts are accepted by nft (checked in a throwaway namespace)', () => {
  const ns = `stratus-t-${randomBytes(4).toString('hex')}`;
  before(async () => {
    await must('ip', ['netns', 'add', ns]);
  });
  after(async () => {
    await sh('ip', ['netns', 'del', ns]);
  });
  const check = async (script: string) => {
    const r = await sh('ip', ['netns', 'exec', ns, 'nft', '-c', '-f', '-'], { input: script });
    assert.equal(r.code, 0, `${r.err}\n${script}`);
  };

  test('security groups with everything in them', async () => {
    const g = {
      id: 'g', member_ips: ['10.0.0.5', '2001:db8::5'], rules: [
        rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '192.0.2.0/24' }),
        rule({ protocol: 'icmp', port_range_min: 8 }), rule({ protocol: 'icmp', ethertype: 'IPv6', port_range_min: 128, port_range_max: 0 }),
        rule({ remote_group_id: 'g' }), rule({ remote_group_id: 'g', ethertype: 'IPv6' }), rule({ remote_group_id: 'h' }),
        rule({ direction: 'egress' }), rule({ direction: 'egress', ethertype: 'IPv6', protocol: 'udp', port_range_min: 53, port_range_max: 53 }),
      ],
    };
    const h = { id: 'h', member_ips: [], rules: [] };
    const pairs = [{ ip_address: '10.0.0.0/28', mac_address: 'fa:16:3e:00:00:99' }, { ip_address: '2001:db8::77', mac_address: '' }];
    await check(firewallScript({ ports: [port('a', ['g', 'h'], { allowed_address_pairs: pairs, fixed_ips: [{ subnet_id: 's', ip_address: '10.0.0.5' }, { subnet_id: 's6', ip_address: '2001:db8::5' }] }), port('b', ['h'])], securityGroups: [g, h] }).script);
  });

  test('router NAT with floating IPs and SNAT', async () => {
    const r: RouterState = {
      id: 'r', admin_state_up: true,
      gateway: { port_id: 'gwport-0000', network_id: 'ext', mac_address: 'fa:16:3e:00:01:00', fixed_ips: [{ subnet_id: 'es', ip_address: '172.24.4.10', prefixlen: 24 }], enable_snat: true, next_hop: null },
      interfaces: [{ port_id: 'if1', network_id: 'n', subnet_id: 's', mac_address: 'fa:16:3e:00:01:01', ip_address: '10.0.0.1', prefixlen: 24, cidr: '10.0.0.0/24' }],
      routes: [], floating_ips: [{ id: 'f', floating_ip_address: '172.24.4.100', fixed_ip_address: '10.0.0.5', port_id: 'p' }],
    };
    const s = routerNatScript(r);
    assert.match(s, /ip daddr 172\.24\.4\.100 dnat to 10\.0\.0\.5/);
    assert.match(s, /oifname "qg-gwport-0000" ip saddr 10\.0\.0\.5 snat to 172\.24\.4\.100/);
    assert.match(s, /oifname "qg-gwport-0000" ip saddr 10\.0\.0\.0\/24 snat to 172\.24\.4\.10/);
    await check(s);
    const ext = { id: 'ext', subnets: [{ id: 'es', gateway_ip: '172.24.4.1' }] } as unknown as NetworkState;
    assert.deepEqual(routerDefaultRoutes(r, new Map([['ext', ext]])), [{ version: 4, via: '172.24.4.1' }]);
    assert.ok(!routerNatScript({ ...r, gateway: { ...r.gateway!, enable_snat: false } }).includes('10.0.0.0/24'));
  });
});

describe('dnsmasq configuration', () => {
  const net: NetworkState = {
    id: 'net1', project_id: 'p', mtu: 1450, admin_state_up: true, external: false, network_type: 'flat', segmentation_id: null,
    subnets: [
      { id: 's4', cidr: '10.0.0.0/24', ip_version: 4, gateway_ip: null, enable_dhcp: true, dns_nameservers: [], host_routes: [{ destination: '192.168.5.0/24', nexthop: '10.0.0.254' }] },
      { id: 's6', cidr: '2001:db8::/64', ip_version: 6, gateway_ip: '2001:db8::1', enable_dhcp: true, dns_nameservers: ['2001:4860:4860::8888'], host_routes: [] },
    ],
    dhcp_port: { id: 'dhcpport-000', mac_address: 'fa:16:3e:00:00:02', fixed_ips: [{ subnet_id: 's4', ip_address: '10.0.0.2' }, { subnet_id: 's6', ip_address: '2001:db8::2' }] },
    dhcp_hosts: [
      { port_id: 'a', mac_address: 'FA:16:3E:00:00:05', ip_address: '10.0.0.5', hostname: 'Web_1' },
      { port_id: 'a', mac_address: 'FA:16:3E:00:00:05', ip_address: '2001:db8::5', hostname: 'Web_1' },
    ],
  };

  test('hosts, names and options: no router option without a gateway, a metadata route when isolated', () => {
    const f = dhcpFiles(net, []);
    assert.equal(f.hosts, 'fa:16:3e:00:00:05,10.0.0.5,[2001:db8::5],web-1\n');
    assert.match(f.addnHosts, /^10\.0\.0\.5 web-1\.openstacklocal web-1$/m);
    assert.match(f.opts, /^tag:subnet-s4,option:router$/m);
    assert.match(f.opts, /^tag:subnet-s4,option:mtu,1450$/m);
    assert.match(f.opts, /^tag:subnet-s4,option:dns-server,10\.0\.0\.2$/m);
    assert.match(f.opts, /^tag:subnet-s4,option:classless-static-route,169\.254\.169\.254\/32,10\.0\.0\.2,192\.168\.5\.0\/24,10\.0\.0\.254$/m);
    assert.match(f.opts, /^tag:subnet-s6,option6:dns-server,\[2001:4860:4860::8888\]$/m);
    assert.ok(wantsDhcpMetadata(net, []));
    const routed = { id: 'r', admin_state_up: true, gateway: null, interfaces: [{ subnet_id: 's4' }], routes: [], floating_ips: [] } as unknown as RouterState;
    assert.ok(!wantsDhcpMetadata(net, [routed]));
    assert.ok(!dhcpFiles(net, [routed]).opts.includes('169.254.169.254'));
  });

  test('arguments: static ranges, no upstream DNS, files re-read on SIGHUP', () => {
    const a = dnsmasqArgs(net, dhcpPaths('/x'), { runAsRoot: false });
    assert.ok(a.includes('--dhcp-range=set:subnet-s4,10.0.0.0,static,255.255.255.0,86400s'));
    assert.ok(a.includes('--dhcp-range=set:subnet-s6,2001:db8::,static,64,86400s'));
    assert.ok(a.includes('--no-resolv') && !a.some((x) => x.startsWith('--server')));
    assert.ok(a.includes('--interface=ns-dhcpport-00'));
    assert.ok(!a.includes('--user=root'));
    assert.ok(dnsmasqArgs(net, dhcpPaths('/x'), { runAsRoot: true }).includes('--user=root'));
  });
});

test('address helpers', () => {
  assert.equal(cidrText(parseCidr('10.1.2.3/8')!), '10.0.0.0/8');
  assert.equal(cidrText(parseCidr('2001:DB8:0:0:1::1/64')!), '2001:db8::/64');
  assert.equal(canonicalIp('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(parseCidr('10.0.0.0/33'), null);
  assert.ok(contains('10.0.0.0/24', '10.0.0.9'));
  assert.ok(!contains('10.0.0.0/24', '10.0.1.9'));
  assert.equal(hostSideMac('FA:16:3E:01:02:03'), 'fe:16:3e:01:02:03');
  assert.match(bridgeMac('net'), /^02(:[0-9a-f]{2}){5}$/);
});
