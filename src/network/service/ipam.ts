import type { NetworkTables, SubnetRow } from '../store/tables.js';
import type { Tx, NetDb } from './context.js';
import { cidrContains, eui64, formatIp, lastAddress, normalizeIp, parseCidr, parseIp, type Cidr, type IpRange } from '../ip.js';
import { badRequest, conflict, nerr } from './errors.js';

/**
 * IP address management. The guarantee that an address is never handed out
 * twice does not rest on this code's bookkeeping but on the database: the
 * primary key (subnet_id, ip_address) of `neutron_ip_allocations`. The pick
 * below reads the allocations inside the caller's transaction; if a
 * concurrent transaction (PostgreSQL) took the same address first, the insert
 * fails with a unique violation and `NetContext.tx` reruns the whole
 * transaction, which then picks another one.
 */
export interface SubnetInfo {
  row: SubnetRow;
  cidr: Cidr;
  gateway: bigint | null;
  pools: IpRange[];
}

export const ROUTER_OWNERS = new Set(['network:router_interface', 'network:router_gateway', 'network:router_interface_distributed', 'network:ha_router_replicated_interface']);

/** SLAAC subnets: addresses derive from the MAC (EUI-64), nothing to pick. */
export const isAutoAddress = (s: SubnetRow): boolean =>
  s.ip_version === 6 && (s.ipv6_address_mode === 'slaac' || s.ipv6_address_mode === 'dhcpv6-stateless');

export async function subnetInfos(db: Tx, subnets: SubnetRow[]): Promise<SubnetInfo[]> {
  if (subnets.length === 0) return [];
  const pools = await (db as NetDb)
    .selectFrom('neutron_allocation_pools')
    .selectAll()
    .where('subnet_id', 'in', subnets.map((s) => s.id))
    .orderBy('position')
    .execute();
  return subnets.map((row) => {
    const cidr = parseCidr(row.cidr)!;
    return {
      row,
      cidr,
      gateway: row.gateway_ip ? parseIp(row.gateway_ip)!.value : null,
      pools: pools.filter((p) => p.subnet_id === row.id).map((p) => ({ start: parseIp(p.first_ip)!.value, end: parseIp(p.last_ip)!.value })),
    };
  });
}

/** What a port asks for: a subnet, an address, or both. */
export interface FixedIpRequest {
  subnet_id?: string;
  ip_address?: string;
}

export interface Allocation {
  subnet_id: string;
  ip_address: string;
}

/**
 * Resolves a port's requested fixed IPs (or, when `requested` is undefined,
 * Neutron's default: one address from the first IPv4 subnet with room, one
 * from the first stateful IPv6 subnet, and the SLAAC address of every SLAAC
 * subnet) and records them for `portId`. All inside `tx`.
 */
export async function allocateIps(
  tx: Tx,
  network_id: string,
  subnets: SubnetInfo[],
  requested: FixedIpRequest[] | undefined,
  portId: string,
  mac: string,
  deviceOwner: string,
): Promise<Allocation[]> {
  const out: Allocation[] = [];
  const taken = async (subnetId: string): Promise<Set<string>> => {
    const rows = await (tx as NetDb).selectFrom('neutron_ip_allocations').select('ip_address').where('subnet_id', '=', subnetId).execute();
    return new Set(rows.map((r) => r.ip_address));
  };
  const record = async (s: SubnetInfo, ip: string) => {
    if (out.some((a) => a.subnet_id === s.row.id && a.ip_address === ip)) throw badRequest(`Duplicate IP address '${ip}'.`, 'InvalidInput');
    await (tx as NetDb).insertInto('neutron_ip_allocations').values({ subnet_id: s.row.id, ip_address: ip, port_id: portId, network_id }).execute();
    out.push({ subnet_id: s.row.id, ip_address: ip });
  };
  const pickFrom = async (s: SubnetInfo): Promise<string | null> => {
    if (isAutoAddress(s.row)) return formatIp(6, eui64(s.cidr, mac));
    const used = await taken(s.row.id);
    for (const pool of s.pools) {
      // Walk from the start of the pool past the taken addresses: at most
      // |taken| + 1 steps, so a nearly empty /8 costs no more than a /29.
      for (let v = pool.start; v <= pool.end; v++) {
        const ip = formatIp(s.cidr.version, v);
        if (!used.has(ip) && !out.some((a) => a.ip_address === ip)) return ip;
      }
    }
    return null;
  };
  const exhausted = () => nerr(409, 'IpAddressGenerationFailure', `No more IP addresses available on network ${network_id}.`);

  if (requested === undefined) {
    const v4 = subnets.filter((s) => s.row.ip_version === 4);
    const v6stateful = subnets.filter((s) => s.row.ip_version === 6 && !isAutoAddress(s.row));
    for (const family of [v4, v6stateful]) {
      if (family.length === 0) continue;
      let got = false;
      for (const s of family) {
        const ip = await pickFrom(s);
        if (ip) {
          await record(s, ip);
          got = true;
          break;
        }
      }
      if (!got) throw exhausted();
    }
    // Router interfaces take addresses explicitly; SLAAC is for everyone else.
    if (!ROUTER_OWNERS.has(deviceOwner)) for (const s of subnets.filter((x) => isAutoAddress(x.row))) await record(s, (await pickFrom(s))!);
    return out;
  }

  const asked = requested.filter((r) => r.ip_address !== undefined).map((r) => normalizeIp(r.ip_address) ?? r.ip_address);
  if (new Set(asked).size !== asked.length)
    throw badRequest(`Invalid input for operation: Failed to create port on network ${network_id}, because fixed_ips included a duplicate IP address.`, 'InvalidInput');
  for (const r of requested) {
    let s: SubnetInfo | undefined;
    if (r.subnet_id !== undefined) {
      s = subnets.find((x) => x.row.id === r.subnet_id);
      if (!s) throw badRequest(`Invalid input for operation: Failed to create port on network ${network_id}, because fixed_ips included invalid subnet ${r.subnet_id}.`, 'InvalidInput');
    }
    if (r.ip_address !== undefined) {
      const ip = parseIp(r.ip_address);
      if (!ip) throw badRequest(`Invalid input for operation: '${r.ip_address}' is not a valid IP address.`, 'InvalidInput');
      if (!s) {
        s = subnets.find((x) => cidrContains(x.cidr, ip));
        if (!s) throw nerr(400, 'InvalidIpForNetwork', `IP address ${r.ip_address} is not a valid IP for any of the subnets on the specified network.`);
      }
      if (!cidrContains(s.cidr, ip)) throw nerr(400, 'InvalidIpForSubnet', `IP address ${r.ip_address} is not a valid IP for the specified subnet.`);
      const isRouter = ROUTER_OWNERS.has(deviceOwner);
      const v4Special = s.cidr.version === 4 && s.cidr.prefixlen < 31 && (ip.value === s.cidr.network || ip.value === lastAddress(s.cidr));
      if (v4Special || (s.cidr.version === 6 && ip.value === s.cidr.network && !isRouter))
        throw nerr(400, 'InvalidIpForSubnet', `IP address ${r.ip_address} is not a valid IP for the specified subnet.`);
      const canonical = formatIp(ip.version, ip.value);
      if (isAutoAddress(s.row) && !isRouter) throw badRequest(`IPv6 address ${canonical} cannot be directly assigned to a port on subnet ${s.row.id} as the subnet is configured for automatic addresses.`, 'InvalidInput');
      if (s.gateway === ip.value && !isRouter) throw conflict('IpAddressAlreadyAllocated', `IP address ${canonical} already allocated in subnet ${s.row.id}`);
      const exists = await (tx as NetDb)
        .selectFrom('neutron_ip_allocations')
        .select('port_id')
        .where('subnet_id', '=', s.row.id)
        .where('ip_address', '=', canonical)
        .executeTakeFirst();
      if (exists) throw conflict('IpAddressAlreadyAllocated', `IP address ${canonical} already allocated in subnet ${s.row.id}`);
      await record(s, canonical);
    } else {
      const ip = await pickFrom(s!);
      if (!ip) throw exhausted();
      await record(s!, ip);
    }
  }
  return out;
}

export async function releaseIps(tx: Tx, portId: string): Promise<void> {
  await (tx as NetDb).deleteFrom('neutron_ip_allocations').where('port_id', '=', portId).execute();
}

export type { NetworkTables };
