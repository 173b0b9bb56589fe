import { setTimeout as sleep } from 'node:timers/promises';
import { PeriodicTask, eachLimit } from './daemon.js';
import { KINDS, mergeVersions, type DeviceVersions, type Gathered, type Kind } from './disk.js';
import { CorruptFileError, obsoleteVersions, type Version } from './format.js';
import { closeQuietly } from './fsutil.js';
import type { RingDevice } from './ring.js';
import { formatTicks } from './timestamp.js';
import type { ObjectStore } from './store.js';
import type { ObjectRowState } from './index-db.js';

export interface ReplicationStats {
  partitions: number;
  hashes: number;
  /** Files copied to a replica that lacked them. */
  copied: number;
  /** Obsolete versions unlinked. */
  removed: number;
  /** Tombstones older than the reclaim age removed (files and index rows). */
  reclaimed: number;
  /** Hash directories moved off handoff devices. */
  handoffsCleared: number;
  /** Listing rows brought in line with the files. */
  reconciled: number;
  /** Corrupt sources found while copying. */
  quarantined: number;
  expired: number;
  tmpRemoved: number;
  /** Pack segments rewritten and removed (mostly dead ones). */
  packsCompacted: number;
  /** Time spent pausing between partitions (the duty cycle). */
  pausedMs: number;
  errors: number;
  aborted: boolean;
  durationMs: number;
}

const newStats = (): ReplicationStats => ({
  partitions: 0,
  hashes: 0,
  copied: 0,
  removed: 0,
  reclaimed: 0,
  handoffsCleared: 0,
  reconciled: 0,
  quarantined: 0,
  expired: 0,
  tmpRemoved: 0,
  packsCompacted: 0,
  pausedMs: 0,
  errors: 0,
  aborted: false,
  durationMs: 0,
});

/** Hash directories synced in parallel within one partition. */
const HASH_CONCURRENCY = 4;

/**
 * The replicator. For every partition found on any device (accounts, then
 * containers, then objects) it lists each hash directory on the partition's
 * primaries and on any handoff device holding it, then:
 *
 * - copies the newest `.data`/`.ts` and newest `.meta` to every primary that
 *   lacks them (verifying the source; a corrupt source is quarantined and
 *   another holder used) — this also propagates tombstones;
 * - unlinks obsolete versions everywhere;
 * - removes tombstones older than the reclaim age (files and index rows);
 * - moves data off handoff devices once the primaries have it;
 * - reconciles the listing index with the newest record.
 *
 * Each pass also removes abandoned temp files, compacts mostly-dead pack
 * segments and expires objects whose X-Delete-At has passed.
 */
export class Replicator extends PeriodicTask<ReplicationStats> {
  constructor(
    private readonly store: ObjectStore,
    /** Share of a repair pass's time it may be busy (see OpenOptions.replicationDutyCycle). */
    private readonly dutyCycle = 1,
  ) {
    super('replicator', store.log);
  }

  /** Removes abandoned temp files on every device. */
  async cleanTmp(): Promise<number> {
    let n = 0;
    for (const d of this.store.ring.devices) if (this.store.disk.isUp(d)) n += await this.store.disk.cleanTmp(d);
    return n;
  }

  protected async pass(signal: AbortSignal): Promise<ReplicationStats> {
    return this.walk(signal, true);
  }

  /** Rebuilds/reconciles the listing index from the devices without repairing replicas. */
  async reconcileAll(): Promise<ReplicationStats> {
    return this.walk(new AbortController().signal, false);
  }

  private async walk(signal: AbortSignal, repair: boolean): Promise<ReplicationStats> {
    const t0 = Date.now();
    const stats = newStats();
    const { disk, ring } = this.store;
    await disk.probeDevices();
    if (repair) stats.tmpRemoved = await this.cleanTmp();
    const cutoff = formatTicks(Math.max(0, Date.now() * 100 - this.store.reclaimAgeSeconds * 100_000));
    for (const kind of KINDS) {
      const holders = new Map<number, RingDevice[]>();
      for (const dev of ring.devices) {
        if (!disk.isUp(dev)) continue;
        for (const p of await disk.listPartitions(dev, kind)) {
          if (p >= ring.partCount) continue;
          const list = holders.get(p);
          if (list) list.push(dev);
          else holders.set(p, [dev]);
        }
      }
      for (const part of [...holders.keys()].sort((a, b) => a - b)) {
        if (signal.aborted) {
          stats.aborted = true;
          break;
        }
        stats.partitions++;
        const t = performance.now();
        try {
          await this.partition(kind, part, holders.get(part)!, stats, repair, cutoff, signal);
        } catch (e) {
          stats.errors++;
          this.log.error({ kind, partition: part, err: String(e) }, 'replication of partition failed');
        }
        // Pauses in repair passes only: an index rebuild at open should be done as soon as it can.
        if (repair && this.dutyCycle < 1) {
          const p0 = performance.now();
          await sleep(((p0 - t) * (1 - this.dutyCycle)) / this.dutyCycle, undefined, { signal }).catch(() => {}); // aborted: the loop stops next
          stats.pausedMs += performance.now() - p0;
        }
      }
    }
    if (repair && !signal.aborted) {
      for (const dev of ring.devices) {
        if (signal.aborted) break;
        if (!disk.isUp(dev)) continue;
        try {
          stats.packsCompacted += await disk.packs.get(dev.id)!.compact(undefined, signal);
        } catch (e) {
          stats.errors++;
          this.log.error({ device: dev.name, err: String(e) }, 'pack compaction failed');
        }
      }
      if (signal.aborted) stats.aborted = true;
      else {
        stats.reclaimed += this.store.index.reclaim(cutoff);
        try {
          stats.expired = await this.store.expireOnce();
        } catch (e) {
          stats.errors++;
          this.log.error({ err: String(e) }, 'expiring objects failed');
        }
      }
    }
    stats.durationMs = Date.now() - t0;
    return stats;
  }

  private async partition(
    kind: Kind,
    part: number,
    holders: RingDevice[],
    stats: ReplicationStats,
    repair: boolean,
    cutoff: string,
    signal: AbortSignal,
  ): Promise<void> {
    const { disk, ring } = this.store;
    const primaries = ring.primaries(part);
    const primIds = new Set(primaries.map((d) => d.id));
    const handoffs = holders.filter((d) => !primIds.has(d.id));
    if (handoffs.length) disk.handoffParts.add(`${kind}:${part}`);
    const devs: Array<{ dev: RingDevice; primary: boolean }> = [
      ...primaries.map((dev) => ({ dev, primary: true })),
      ...handoffs.map((dev) => ({ dev, primary: false })),
    ];
    const hashes = new Set<string>();
    /** Per device: the hashes with a hash directory there (the others are looked up in its pack only). */
    const dirs = new Map<number, ReadonlySet<string>>();
    for (const d of devs) {
      if (!disk.isUp(d.dev)) continue;
      const listed = await disk.listHashes(d.dev, kind, part);
      dirs.set(d.dev.id, listed.dirs);
      for (const h of listed.all) hashes.add(h);
    }
    // The listing rows of the whole partition, read at once (a partition is one range of hashes).
    let rows: Map<string, ObjectRowState[]> | null = null;
    if (kind === 'objects') {
      const { lo, hi } = ring.hashRange(part);
      rows = this.store.index.objectStatesByHashRange(lo, hi);
    }
    let handoffLeft = false;
    await eachLimit(hashes, HASH_CONCURRENCY, async (hash) => {
      if (signal.aborted) {
        handoffLeft = true;
        return;
      }
      stats.hashes++;
      try {
        const perDevice: DeviceVersions[] = await Promise.all(
          devs.map(async (d) => ({ ...d, versions: disk.isUp(d.dev) ? await disk.listVersions(d.dev, kind, part, hash, dirs.get(d.dev.id)?.has(hash) ?? true) : null })),
        );
        const g = mergeVersions(kind, part, hash, perDevice);
        if (repair) {
          if (!(await this.syncHash(g, stats, cutoff))) handoffLeft = true;
        }
        if (await this.store.reconcile(g, rows ? (rows.get(hash) ?? []) : undefined)) stats.reconciled++;
      } catch (e) {
        handoffLeft = true;
        stats.errors++;
        this.log.error({ kind, partition: part, hash, err: String(e) }, 'replication of hash failed');
      }
    });
    if (repair && handoffs.length && !handoffLeft) {
      for (const d of handoffs) await disk.removePartDirIfEmpty(d, kind, part);
      disk.handoffParts.delete(`${kind}:${part}`);
    }
  }

  /**
   * Brings every primary replica of one hash directory to the newest state.
   * Returns true when nothing is left to do on handoff devices.
   */
  private async syncHash(g: Gathered, stats: ReplicationStats, cutoff: string): Promise<boolean> {
    const { disk } = this.store;
    const { kind, partition: part, hash } = g;
    const readable = g.perDevice.filter((d) => d.versions !== null);
    if (!g.base) {
      // Empty directories (or orphan .meta files whose data never arrived).
      for (const d of readable) if (d.versions!.length === 0) await disk.removeHashDir(d.dev, kind, part, hash);
      return readable.every((d) => d.primary || d.versions!.length === 0);
    }
    if (g.base.ext === 'ts' && g.base.ts < cutoff) {
      for (const d of readable) if (d.versions!.length) await disk.removeHashDir(d.dev, kind, part, hash);
      stats.reclaimed++;
      return true;
    }
    let complete = true;
    const wanted: Array<{ v: Version; holders: RingDevice[] }> = [{ v: g.base, holders: [...g.baseHolders] }];
    if (g.meta) wanted.push({ v: g.meta, holders: [...g.metaHolders] });
    for (const d of g.perDevice) {
      if (!d.primary) continue;
      if (d.versions === null) {
        complete = false;
        continue;
      }
      for (const w of wanted) {
        if (d.versions.some((v) => v.file === w.v.file)) continue;
        if (await this.copyFrom(g, w.v, w.holders, d.dev, stats)) {
          d.versions.push(w.v);
          if (!w.holders.includes(d.dev)) w.holders.push(d.dev);
        } else complete = false;
      }
    }
    // Obsolete versions, judged against the merged state, go everywhere.
    const all = readable.flatMap((d) => d.versions!);
    const obsolete = new Set(obsoleteVersions(all).map((v) => v.file));
    for (const d of readable) {
      for (const v of d.versions!) {
        if (!obsolete.has(v.file)) continue;
        await disk.removeVersion(d.dev, kind, part, hash, v.file);
        stats.removed++;
      }
    }
    if (!complete) return false;
    for (const d of readable) {
      if (d.primary || d.versions!.length === 0) continue;
      await disk.removeHashDir(d.dev, kind, part, hash);
      stats.handoffsCleared++;
    }
    return true;
  }

  /** Copies `v` to `dst` from the first intact holder; quarantines corrupt ones. */
  private async copyFrom(g: Gathered, v: Version, holders: RingDevice[], dst: RingDevice, stats: ReplicationStats): Promise<boolean> {
    const { disk } = this.store;
    for (const src of [...holders]) {
      if (src.id === dst.id) continue;
      let f;
      try {
        f = await disk.openFile(src, g.kind, g.partition, g.hash, v, true);
        await disk.copyFile(f, dst, g.kind, g.partition, g.hash, v.file);
        stats.copied++;
        return true;
      } catch (e) {
        if (e instanceof CorruptFileError) {
          if (await disk.quarantine(src, g.kind, g.partition, g.hash, v.file, e.message)) stats.quarantined++;
          holders.splice(holders.indexOf(src), 1);
        } else if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          stats.errors++;
          this.log.warn({ from: src.name, to: dst.name, file: v.file, err: String(e) }, 'replica copy failed');
        }
      } finally {
        if (f && f.fd >= 0) closeQuietly(f.fd);
      }
    }
    return false;
  }
}
