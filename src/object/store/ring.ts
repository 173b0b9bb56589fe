import { hash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { writeFileDurable } from './fsutil.js';

/**
 * The ring: maps every account, container and object to a partition and each
 * partition to `replicas` distinct devices, spreading the replicas over as
 * many zones as there are.
 *
 * Hashing is Swift's: MD5 of `<prefix>/<account>[/<container>[/<object>]]<suffix>`
 * with a per-ring secret prefix and suffix; the partition is the top
 * `partPower` bits of the first four bytes of the digest. The assignment table
 * (`replica2part2dev`) is computed once when the ring is built and persisted
 * as JSON, so placement is stable for the life of the ring.
 */

export interface RingDevice {
  /** Index in `devices`; what the assignment table stores. */
  id: number;
  name: string;
  zone: number;
  weight: number;
  /** Absolute path of the device's root directory. */
  path: string;
}

export interface RingDeviceSpec {
  name?: string;
  zone: number;
  weight?: number;
  /** Absolute, or relative to the store root. */
  path: string;
}

export interface RingBuildOptions {
  partPower: number;
  replicas: number;
  devices: RingDeviceSpec[];
  /** Secret hash prefix/suffix; random when omitted. */
  hashPathPrefix?: string;
  hashPathSuffix?: string;
}

interface RingFile {
  format: 'stratus-ring/1';
  partPower: number;
  replicas: number;
  hashPathPrefix: string;
  hashPathSuffix: string;
  devices: Array<{ id: number; name: string; zone: number; weight: number; path: string }>;
  replica2part2dev: number[][];
  createdAt: string;
}

/** Where one account, container or object lives. */
export interface Placement {
  /** MD5 hex of the hashed path; the name of its directory on each device. */
  hash: string;
  partition: number;
  /** Primary devices, in replica order (the first is read first). */
  devices: RingDevice[];
}

const MAX_PART_POWER = 20;

/** `/account[/container[/object]]`: what a path hash covers (between the ring's secret prefix and suffix). */
function pathOf(account: string, container?: string, object?: string): string {
  let path = `/${account}`;
  if (container !== undefined) path += `/${container}`;
  if (object !== undefined) path += `/${object}`;
  return path;
}

/** Characters of hashed paths locate() remembers before it starts over (~2 MB of keys). */
const LOCATE_MEMO_CHARS = 1 << 20;

/** Deterministic tie-breaker so that equal candidates are not always taken in id order. */
function mix(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export class Ring {
  readonly partCount: number;
  readonly zoneCount: number;
  private readonly partShift: number;
  /** locate()'s memo: hashed path → frozen placement (see locate). */
  private readonly placed = new Map<string, Placement>();
  private placedChars = 0;
  /** Frozen primary lists by partition, shared by every placement in it. */
  private readonly frozenPrimaries: Array<RingDevice[] | undefined> = [];

  private constructor(
    readonly partPower: number,
    readonly replicas: number,
    readonly hashPathPrefix: string,
    readonly hashPathSuffix: string,
    readonly devices: readonly RingDevice[],
    /** `replica2part2dev[r][p]` = device id of replica `r` of partition `p`. */
    private readonly table: readonly Uint16Array[],
    readonly createdAt: string,
  ) {
    this.partCount = 2 ** partPower;
    this.partShift = 32 - partPower;
    this.zoneCount = new Set(devices.map((d) => d.zone)).size;
  }

  /**
   * Builds a new ring: every partition gets `replicas` distinct devices; within
   * a partition a zone is reused only when every zone already holds a replica;
   * across partitions devices fill in proportion to their weight.
   */
  static build(opts: RingBuildOptions, root = '/'): Ring {
    const { partPower, replicas } = opts;
    if (!Number.isInteger(partPower) || partPower < 0 || partPower > MAX_PART_POWER) {
      throw new Error(`partPower must be an integer in 0..${MAX_PART_POWER}`);
    }
    if (!Number.isInteger(replicas) || replicas < 1) throw new Error('replicas must be a positive integer');
    if (opts.devices.length < replicas) throw new Error(`need at least ${replicas} devices for ${replicas} replicas`);
    const devices: RingDevice[] = opts.devices.map((d, id) => ({
      id,
      name: d.name ?? `d${id}`,
      zone: d.zone,
      weight: d.weight ?? 1,
      path: isAbsolute(d.path) ? d.path : resolve(root, d.path),
    }));
    if (devices.some((d) => !(d.weight > 0))) throw new Error('device weights must be positive');
    if (new Set(devices.map((d) => d.name)).size !== devices.length) throw new Error('device names must be unique');
    const parts = 2 ** partPower;
    const totalWeight = devices.reduce((s, d) => s + d.weight, 0);
    const want = devices.map((d) => (d.weight / totalWeight) * parts * replicas);
    const assigned = devices.map(() => 0);
    const table = Array.from({ length: replicas }, () => new Uint16Array(parts));
    const zoneUse = new Map<number, number>();
    const used = new Set<number>();
    for (let p = 0; p < parts; p++) {
      zoneUse.clear();
      used.clear();
      for (let r = 0; r < replicas; r++) {
        let best = -1;
        let bestKey: [number, number, number] = [Infinity, Infinity, Infinity];
        for (const d of devices) {
          if (used.has(d.id)) continue;
          const key: [number, number, number] = [zoneUse.get(d.zone) ?? 0, assigned[d.id]! / want[d.id]!, mix(p, d.id)];
          if (key[0] < bestKey[0] || (key[0] === bestKey[0] && (key[1] < bestKey[1] || (key[1] === bestKey[1] && key[2] < bestKey[2])))) {
            best = d.id;
            bestKey = key;
          }
        }
        const dev = devices[best]!;
        table[r]![p] = best;
        used.add(best);
        assigned[best]!++;
        zoneUse.set(dev.zone, (zoneUse.get(dev.zone) ?? 0) + 1);
      }
    }
    return new Ring(
      partPower,
      replicas,
      opts.hashPathPrefix ?? randomBytes(16).toString('hex'),
      opts.hashPathSuffix ?? randomBytes(16).toString('hex'),
      devices,
      table,
      new Date().toISOString(),
    );
  }

  /** Loads a ring saved by `save()`. Relative device paths resolve against `root`. */
  static async load(file: string, root: string): Promise<Ring> {
    const raw = JSON.parse(await readFile(file, 'utf8')) as RingFile;
    if (raw.format !== 'stratus-ring/1') throw new Error(`${file}: not a stratus ring`);
    const devices = raw.devices.map((d) => ({ ...d, path: isAbsolute(d.path) ? d.path : resolve(root, d.path) }));
    const parts = 2 ** raw.partPower;
    const table = raw.replica2part2dev.map((row) => {
      if (row.length !== parts) throw new Error(`${file}: assignment table has the wrong size`);
      return Uint16Array.from(row);
    });
    if (table.length !== raw.replicas) throw new Error(`${file}: assignment table has the wrong replica count`);
    return new Ring(raw.partPower, raw.replicas, raw.hashPathPrefix, raw.hashPathSuffix, devices, table, raw.createdAt);
  }

  /** Persists the ring atomically (temp file, fsync, rename, fsync dir). Paths under `root` are stored relative. */
  async save(file: string, root: string): Promise<void> {
    const rel = (p: string) => (p.startsWith(resolve(root) + '/') ? p.slice(resolve(root).length + 1) : p);
    const out: RingFile = {
      format: 'stratus-ring/1',
      partPower: this.partPower,
      replicas: this.replicas,
      hashPathPrefix: this.hashPathPrefix,
      hashPathSuffix: this.hashPathSuffix,
      devices: this.devices.map((d) => ({ id: d.id, name: d.name, zone: d.zone, weight: d.weight, path: rel(d.path) })),
      replica2part2dev: this.table.map((row) => Array.from(row)),
      createdAt: this.createdAt,
    };
    await writeFileDurable(file, JSON.stringify(out));
  }

  /** MD5 (hex) of the account, container or object path, salted with the ring's secrets. */
  hashPath(account: string, container?: string, object?: string): string {
    return this.hashOf(pathOf(account, container, object));
  }

  private hashOf(path: string): string {
    return hash('md5', this.hashPathPrefix + path + this.hashPathSuffix, 'hex');
  }

  /** Partition of a path hash: the top `partPower` bits of its first 32 bits. */
  partitionOf(hash: string): number {
    if (this.partPower === 0) return 0;
    return parseInt(hash.slice(0, 8), 16) >>> this.partShift;
  }

  /** The hashes of a partition: `[lo, hi)` as 16-byte big-endian values (`hi` null for the last partition). */
  hashRange(partition: number): { lo: Buffer; hi: Buffer | null } {
    const at = (p: number) => {
      const b = Buffer.alloc(16);
      b.writeUInt32BE(this.partPower === 0 ? 0 : p * 2 ** this.partShift, 0);
      return b;
    };
    return { lo: at(partition), hi: partition + 1 < this.partCount ? at(partition + 1) : null };
  }

  /** Primary devices of a partition, in replica order. */
  primaries(partition: number): RingDevice[] {
    const out: RingDevice[] = [];
    for (let r = 0; r < this.replicas; r++) out.push(this.devices[this.table[r]![partition]!]!);
    return out;
  }

  /** Non-primary devices in the order handoffs should be tried: unused zones first. */
  handoffs(partition: number): RingDevice[] {
    const prim = this.primaries(partition);
    const primIds = new Set(prim.map((d) => d.id));
    const primZones = new Set(prim.map((d) => d.zone));
    return this.devices
      .filter((d) => !primIds.has(d.id))
      .sort((a, b) => Number(primZones.has(a.zone)) - Number(primZones.has(b.zone)) || mix(partition, a.id) - mix(partition, b.id));
  }

  /**
   * Hash, partition and primary devices of an account, container or object.
   * The answer is frozen and remembered (an MD5 per request was a tenth of a
   * cached small GET's engine time); the memo is dropped whole once its keys
   * add up to LOCATE_MEMO_CHARS, which bounds it whatever the name lengths.
   */
  locate(account: string, container?: string, object?: string): Placement {
    const path = pathOf(account, container, object);
    const hit = this.placed.get(path);
    if (hit) return hit;
    const hash = this.hashOf(path);
    const partition = this.partitionOf(hash);
    const devices = (this.frozenPrimaries[partition] ??= Object.freeze(this.primaries(partition)) as RingDevice[]);
    const p: Placement = Object.freeze({ hash, partition, devices });
    if (this.placedChars + path.length > LOCATE_MEMO_CHARS) {
      this.placed.clear();
      this.placedChars = 0;
    }
    this.placed.set(path, p);
    this.placedChars += path.length;
    return p;
  }

  /** How many partition replicas each device holds (for balance checks). */
  partsPerDevice(): number[] {
    const counts = this.devices.map(() => 0);
    for (const row of this.table) for (const id of row) counts[id]!++;
    return counts;
  }
}
