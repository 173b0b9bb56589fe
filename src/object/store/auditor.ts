import { createHash } from 'node:crypto';
import { PeriodicTask, sleep } from './daemon.js';
import { KINDS, type Kind, type OpenedFile } from './disk.js';
import { CorruptFileError, verifyBlocks, type Version } from './format.js';
import { closeQuietly, readExactly } from './fsutil.js';
import type { RingDevice } from './ring.js';
import type { ObjectStore } from './store.js';

export interface AuditStats {
  files: number;
  bytes: number;
  quarantined: number;
  tmpRemoved: number;
  errors: number;
  aborted: boolean;
  durationMs: number;
}

/** Record kinds allowed per directory kind and file extension. */
const EXPECTED: Record<Kind, Record<string, string>> = {
  objects: { data: 'object', ts: 'tombstone', meta: 'meta' },
  containers: { data: 'container', ts: 'tombstone' },
  accounts: { data: 'account', ts: 'tombstone' },
};

/**
 * The auditor. Re-reads every file on every device: footer and metadata
 * checksums, every data block's CRC, the whole data's MD5 against the ETag,
 * and that the record belongs in the hash directory it sits in. A file that
 * fails is moved to `<device>/quarantined/` so that the replicator restores a
 * good copy from another replica. Also removes abandoned temp files.
 */
export class Auditor extends PeriodicTask<AuditStats> {
  constructor(
    private readonly store: ObjectStore,
    /** Read rate limit in bytes per second (undefined: unlimited). */
    private readonly bytesPerSecond?: number,
  ) {
    super('auditor', store.log);
  }

  protected async pass(signal: AbortSignal): Promise<AuditStats> {
    const t0 = Date.now();
    const stats: AuditStats = { files: 0, bytes: 0, quarantined: 0, tmpRemoved: 0, errors: 0, aborted: false, durationMs: 0 };
    const { disk } = this.store;
    await disk.probeDevices();
    stats.tmpRemoved = await this.store.replicator.cleanTmp();
    outer: for (const dev of this.store.ring.devices) {
      if (!disk.isUp(dev)) continue;
      for (const kind of KINDS) {
        for (const part of await disk.listPartitions(dev, kind)) {
          const { all, dirs } = await disk.listHashes(dev, kind, part);
          for (const hash of all) {
            if (signal.aborted) {
              stats.aborted = true;
              break outer;
            }
            const versions = (await disk.listVersions(dev, kind, part, hash, dirs.has(hash))) ?? [];
            for (const v of versions) {
              await this.auditFile(dev, kind, part, hash, v, stats, t0);
            }
          }
        }
      }
    }
    stats.durationMs = Date.now() - t0;
    return stats;
  }

  private async throttle(stats: AuditStats, t0: number): Promise<void> {
    if (!this.bytesPerSecond) return;
    const ahead = (stats.bytes / this.bytesPerSecond) * 1000 - (Date.now() - t0);
    if (ahead > 5) await sleep(ahead);
  }

  /** Checks one file; quarantines it when it is corrupt. */
  async auditFile(dev: RingDevice, kind: Kind, part: number, hash: string, v: Version, stats: AuditStats, t0 = Date.now()): Promise<void> {
    const { disk, ring } = this.store;
    let f: OpenedFile | undefined;
    try {
      f = await disk.openFile(dev, kind, part, hash, v, true);
      stats.files++;
      const rec = f.record;
      if (EXPECTED[kind][v.ext] !== rec.kind) throw new CorruptFileError(`a ${rec.kind} record in a .${v.ext} file under ${kind}/`);
      const path =
        kind === 'accounts'
          ? ring.hashPath(rec.account)
          : kind === 'containers'
            ? ring.hashPath(rec.account, 'container' in rec ? rec.container : undefined)
            : ring.hashPath(rec.account, 'container' in rec ? rec.container : undefined, 'name' in rec ? rec.name : undefined);
      if (path !== hash) throw new CorruptFileError('record does not belong in this hash directory');
      if (rec.kind === 'object') {
        if (rec.size !== f.footer.dataLen) throw new CorruptFileError('size does not match the data');
        const md5 = createHash('md5');
        if (f.data) {
          md5.update(f.data);
          stats.bytes += f.size;
        } else {
          const bs = f.footer.blockSize;
          const chunk = Math.max(1, Math.floor((1024 * 1024) / bs)) * bs;
          for (let pos = 0; pos < f.footer.dataLen; pos += chunk) {
            const len = Math.min(chunk, f.footer.dataLen - pos);
            const buf = await readExactly(f.fd, len, pos);
            verifyBlocks(buf, pos, f.table, bs, f.footer.dataLen);
            md5.update(buf);
            stats.bytes += len;
            await this.throttle(stats, t0);
          }
        }
        if (md5.digest('hex') !== rec.etag) throw new CorruptFileError('MD5 does not match the ETag');
      } else {
        stats.bytes += f.size;
      }
    } catch (e) {
      if (e instanceof CorruptFileError || (e as NodeJS.ErrnoException).code === 'ESHORT') {
        if (await disk.quarantine(dev, kind, part, hash, v.file, (e as Error).message)) stats.quarantined++;
      } else if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        stats.errors++;
        this.log.warn({ device: dev.name, kind, hash, file: v.file, err: String(e) }, 'audit failed');
      }
    } finally {
      if (f && f.fd >= 0) closeQuietly(f.fd);
    }
    await this.throttle(stats, t0);
  }
}
