import type { Kysely } from 'kysely';
import type { Database } from '../../core/db.js';
import { forUpdate } from '../../core/db.js';
import type { ComputeTables } from '../store/tables.js';

export interface ResourceRequest { vcpus: number; memoryMb: number; diskGb: number }
export interface ScheduleRequest extends ResourceRequest {
  instanceId: string;
  availabilityZone: string | null;
  /** Hosts the server group's other members are on, with the group policy. */
  group?: { policy: string; hosts: string[] };
  imageProperties: Record<string, unknown>;
}

/** Thrown when no host passes the filters; the message names what excluded each host (G7). */
export class NoValidHost extends Error {
  constructor(reason: string) {
    super(`No valid host was found. ${reason}`);
    this.name = 'NoValidHost';
  }
}

const HEARTBEAT_TIMEOUT_MS = 60_000;

/** Whether a compute host's agent reported recently (and is not forced down): Nova's service "up". */
export function hostIsUp(h: { heartbeat_at: number; forced_down?: number }, now = Date.now()): boolean {
  return !h.forced_down && now - Number(h.heartbeat_at) <= HEARTBEAT_TIMEOUT_MS;
}

/**
 * Filter-and-weigh scheduler with placement-style atomic claims: the
 * chosen host's allocation is written in the same transaction that checked
 * its free capacity (rows locked on PostgreSQL; SQLite serializes writers),
 * so concurrent boots can never oversubscribe a host.
 */
export class Scheduler {
  private readonly db: Kysely<ComputeTables>;
  constructor(private readonly database: Database) {
    this.db = database.db as unknown as Kysely<ComputeTables>;
  }

  async selectAndClaim(req: ScheduleRequest): Promise<string> {
    return this.db.transaction().execute(async (tx) => {
      const hosts = await forUpdate(this.database.dialect, tx.selectFrom('nova_compute_hosts').selectAll()).execute();
      const allocs = await tx.selectFrom('nova_allocations').selectAll().execute();
      const reasons: string[] = [];
      const candidates: { host: string; freeRam: number }[] = [];
      const now = Date.now();
      for (const h of hosts) {
        const why = (r: string) => reasons.push(`${h.host}: ${r}`);
        if (h.status !== 'enabled') { why(`compute service disabled${h.disabled_reason ? ` (${h.disabled_reason})` : ''}`); continue; }
        if (!hostIsUp(h, now)) { why('compute service is down'); continue; }
        if (req.availabilityZone && h.availability_zone !== req.availabilityZone) { why(`not in availability zone ${req.availabilityZone}`); continue; }
        const used = allocs.filter((a) => a.host === h.host && a.instance_id !== req.instanceId);
        const sum = (k: 'vcpus' | 'memory_mb' | 'disk_gb') => used.reduce((s, a) => s + a[k], 0);
        const capCpu = h.vcpus * h.cpu_ratio, capRam = h.memory_mb * h.ram_ratio, capDisk = h.disk_gb * h.disk_ratio;
        if (sum('vcpus') + req.vcpus > capCpu) { why(`needs ${req.vcpus} VCPU, ${Math.max(0, capCpu - sum('vcpus')).toFixed(0)} free`); continue; }
        if (sum('memory_mb') + req.memoryMb > capRam) { why(`needs ${req.memoryMb} MB RAM, ${Math.max(0, capRam - sum('memory_mb')).toFixed(0)} MB free`); continue; }
        if (sum('disk_gb') + req.diskGb > capDisk) { why(`needs ${req.diskGb} GB disk, ${Math.max(0, capDisk - sum('disk_gb')).toFixed(0)} GB free`); continue; }
        if (req.group) {
          const { policy, hosts: members } = req.group;
          if (policy === 'affinity' && members.length && !members.includes(h.host)) { why('affinity: group members run on another host'); continue; }
          if (policy === 'anti-affinity' && members.includes(h.host)) { why('anti-affinity: a group member already runs here'); continue; }
        }
        const arch = req.imageProperties.hw_architecture ?? req.imageProperties.architecture;
        if (typeof arch === 'string' && !['x86_64', 'i686', 'amd64'].includes(arch)) { why(`image architecture ${arch} is not supported here`); continue; }
        const hvType = req.imageProperties.img_hv_type ?? req.imageProperties.hypervisor_type;
        if (typeof hvType === 'string' && !['qemu', 'kvm'].includes(hvType.toLowerCase())) { why(`image needs hypervisor ${hvType}`); continue; }
        candidates.push({ host: h.host, freeRam: capRam - sum('memory_mb') });
      }
      if (candidates.length === 0) throw new NoValidHost(hosts.length ? reasons.join('; ') : 'No compute host is registered.');
      // Weigh: spread by free RAM; soft policies prefer/avoid group hosts.
      const g = req.group;
      const weight = (c: { host: string; freeRam: number }) =>
        c.freeRam + (g?.policy === 'soft-affinity' && g.hosts.includes(c.host) ? 1e9 : 0) - (g?.policy === 'soft-anti-affinity' && g.hosts.includes(c.host) ? 1e9 : 0);
      candidates.sort((a, b) => weight(b) - weight(a));
      const host = candidates[0]!.host;
      await tx.deleteFrom('nova_allocations').where('instance_id', '=', req.instanceId).execute();
      await tx.insertInto('nova_allocations').values({ instance_id: req.instanceId, host, vcpus: req.vcpus, memory_mb: req.memoryMb, disk_gb: req.diskGb }).execute();
      return host;
    });
  }

  /** Re-claims an instance's allocation on its host for a new size (resize); throws NoValidHost if it does not fit. */
  async reclaim(instanceId: string, host: string, r: ResourceRequest): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const h = await forUpdate(this.database.dialect, tx.selectFrom('nova_compute_hosts').selectAll().where('host', '=', host)).executeTakeFirst();
      if (!h) throw new NoValidHost(`host ${host} is gone`);
      const others = await tx.selectFrom('nova_allocations').selectAll().where('host', '=', host).where('instance_id', '!=', instanceId).execute();
      const sum = (k: 'vcpus' | 'memory_mb' | 'disk_gb') => others.reduce((s, a) => s + a[k], 0);
      if (sum('vcpus') + r.vcpus > h.vcpus * h.cpu_ratio || sum('memory_mb') + r.memoryMb > h.memory_mb * h.ram_ratio || sum('disk_gb') + r.diskGb > h.disk_gb * h.disk_ratio)
        throw new NoValidHost(`${host}: not enough free resources for the new flavor`);
      await tx.deleteFrom('nova_allocations').where('instance_id', '=', instanceId).execute();
      await tx.insertInto('nova_allocations').values({ instance_id: instanceId, host, vcpus: r.vcpus, memory_mb: r.memoryMb, disk_gb: r.diskGb }).execute();
    });
  }

  async free(instanceId: string): Promise<void> {
    await this.db.deleteFrom('nova_allocations').where('instance_id', '=', instanceId).execute();
  }
}
