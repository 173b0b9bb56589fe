import { formatTicks } from './timestamp.js';

/** Where one version lives in a device's packs. */
export interface PackEntry {
  seg: number;
  /** Offset of the record bytes (after header and name). */
  off: number;
  len: number;
  file: string;
  part: number;
}

const EXTS = ['', 'data', 'ts', 'meta'] as const;
/** `ext` of a slot whose file name is not `<10 digits>.<5 digits>.<ext>`: the name is kept in `odd`. */
const ODD = 4;
const FREE = 0;
const SLOT_WORDS = 4;

/**
 * The in-memory index of one device's pack logs: every version a pack holds
 * (hash, file name → segment, offset, length, partition), looked up by hash
 * and listed by partition or segment.
 *
 * It holds an entry per record version and replica, tombstones included, so
 * it is sized for millions of entries: one slot per version in flat typed
 * arrays (the hash as four 32-bit words, the file name as its timestamp in
 * ticks plus an extension code) instead of an object, two strings and a map
 * entry each. That is about 60 bytes a version that the garbage collector
 * never has to trace, where objects cost several hundred bytes and made
 * every major collection walk them all. Slots of one hash bucket are chained
 * (`next`), slots of one partition are in a doubly linked list
 * (`pnext`/`pprev`), freed slots are reused.
 */
export class PackIndex {
  private cap = 0;
  /** Slots ever handed out (slots below this are live or on the free list). */
  private top = 0;
  private freeHead = -1;
  private live = 0;
  private key = new Uint32Array(0);
  private seg = new Uint32Array(0);
  private off = new Uint32Array(0);
  private len = new Uint32Array(0);
  private part = new Uint32Array(0);
  private ticks = new Float64Array(0);
  private ext = new Uint8Array(0);
  private next = new Int32Array(0);
  private pnext = new Int32Array(0);
  private pprev = new Int32Array(0);
  private buckets = new Int32Array(0);
  private mask = 0;
  private readonly partHead = new Map<number, number>();
  /** File names that do not have the canonical form, by slot. */
  private readonly odd = new Map<number, string>();
  /** The hash being looked up, as words (parsed once per call). */
  private readonly k = new Uint32Array(SLOT_WORDS);
  /** The file being looked up: its extension code and ticks. */
  private fExt = 0;
  private fTicks = 0;

  constructor(initial = 1024) {
    this.grow(Math.max(16, initial));
  }

  /** Versions held. */
  get size(): number {
    return this.live;
  }

  /** The version `file` of `hash`, if held. */
  get(hash: string, file: string): PackEntry | undefined {
    const s = this.find(hash, file);
    return s < 0 ? undefined : this.entryAt(s, file);
  }

  /** Every version of `hash` held (in no particular order). */
  versions(hash: string): PackEntry[] {
    this.parseHash(hash);
    const out: PackEntry[] = [];
    for (let s = this.buckets[this.k[3]! & this.mask]!; s >= 0; s = this.next[s]!) if (this.keyIs(s)) out.push(this.entryAt(s));
    return out;
  }

  /** How many versions of `hash` are held. */
  count(hash: string): number {
    this.parseHash(hash);
    let n = 0;
    for (let s = this.buckets[this.k[3]! & this.mask]!; s >= 0; s = this.next[s]!) if (this.keyIs(s)) n++;
    return n;
  }

  /** Adds or replaces the version `e.file` of `hash`; returns the one it replaced. */
  set(hash: string, e: PackEntry): PackEntry | undefined {
    if (e.off > 0xffffffff || e.len > 0xffffffff || e.seg > 0xffffffff) throw new RangeError('pack entry out of range');
    let s = this.find(hash, e.file);
    let old: PackEntry | undefined;
    if (s >= 0) {
      old = this.entryAt(s, e.file);
      if (this.part[s] !== e.part) {
        this.unlinkPart(s);
        this.part[s] = e.part;
        this.linkPart(s);
      }
    } else {
      if (this.live >= this.cap) this.grow(this.cap * 2);
      // find() left the hash in `k` and the file in fExt/fTicks.
      s = this.alloc();
      this.key.set(this.k, s * SLOT_WORDS);
      this.ext[s] = this.fExt;
      this.ticks[s] = this.fTicks;
      if (this.fExt === ODD) this.odd.set(s, e.file);
      const b = this.k[3]! & this.mask;
      this.next[s] = this.buckets[b]!;
      this.buckets[b] = s;
      this.part[s] = e.part;
      this.linkPart(s);
      this.live++;
    }
    this.seg[s] = e.seg;
    this.off[s] = e.off;
    this.len[s] = e.len;
    return old;
  }

  /** Removes the version `file` of `hash`; returns it if it was held. */
  delete(hash: string, file: string): PackEntry | undefined {
    this.parseHash(hash);
    this.parseFile(file);
    const b = this.k[3]! & this.mask;
    let prev = -1;
    for (let s = this.buckets[b]!; s >= 0; prev = s, s = this.next[s]!) {
      if (!this.keyIs(s) || !this.fileIs(s, file)) continue;
      const e = this.entryAt(s, file);
      if (prev < 0) this.buckets[b] = this.next[s]!;
      else this.next[prev] = this.next[s]!;
      this.unlinkPart(s);
      if (this.ext[s] === ODD) this.odd.delete(s);
      this.ext[s] = FREE;
      this.next[s] = this.freeHead;
      this.freeHead = s;
      this.live--;
      return e;
    }
    return undefined;
  }

  /** Partitions with at least one version. */
  partitions(): number[] {
    return [...this.partHead.keys()];
  }

  /** Hashes with at least one version in a partition. */
  hashesIn(part: number): string[] {
    const seen = new Set<string>();
    for (let s = this.partHead.get(part) ?? -1; s >= 0; s = this.pnext[s]!) seen.add(this.hashAt(s));
    return [...seen];
  }

  /** Every version held in segment `seg` (a scan of all slots). */
  inSegment(seg: number): Array<{ hash: string; e: PackEntry }> {
    const out: Array<{ hash: string; e: PackEntry }> = [];
    for (let s = 0; s < this.top; s++) if (this.ext[s] !== FREE && this.seg[s] === seg) out.push({ hash: this.hashAt(s), e: this.entryAt(s) });
    return out;
  }

  /** Bytes of the typed arrays (what the index costs off the JS heap). */
  get bytes(): number {
    const arrays = [this.key, this.seg, this.off, this.len, this.part, this.ticks, this.ext, this.next, this.pnext, this.pprev, this.buckets];
    return arrays.reduce((n, a) => n + a.byteLength, 0);
  }

  // ------------------------------------------------------------- internals

  private find(hash: string, file: string): number {
    this.parseHash(hash);
    this.parseFile(file);
    for (let s = this.buckets[this.k[3]! & this.mask]!; s >= 0; s = this.next[s]!) if (this.keyIs(s) && this.fileIs(s, file)) return s;
    return -1;
  }

  private parseHash(hash: string): void {
    if (hash.length !== 32) throw new TypeError(`not a hash: ${hash}`);
    for (let w = 0; w < SLOT_WORDS; w++) {
      let v = 0;
      for (let i = w * 8; i < w * 8 + 8; i++) {
        const c = hash.charCodeAt(i);
        const n = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
        if (n < 0) throw new TypeError(`not a hash: ${hash}`);
        v = v * 16 + n;
      }
      this.k[w] = v;
    }
  }

  /** Sets fExt/fTicks for `file`: canonical `<10 digits>.<5 digits>.<data|ts|meta>` or ODD. */
  private parseFile(file: string): void {
    this.fExt = ODD;
    this.fTicks = 0;
    if (file.length < 18 || file.charCodeAt(10) !== 46 || file.charCodeAt(16) !== 46) return;
    let t = 0;
    for (let i = 0; i < 16; i++) {
      if (i === 10) continue;
      const d = file.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return;
      t = t * 10 + d;
    }
    const x = EXTS.indexOf(file.slice(17) as (typeof EXTS)[number]);
    if (x <= 0) return;
    this.fExt = x;
    this.fTicks = t;
  }

  private keyIs(s: number): boolean {
    const o = s * SLOT_WORDS;
    const k = this.k;
    return this.key[o] === k[0] && this.key[o + 1] === k[1] && this.key[o + 2] === k[2] && this.key[o + 3] === k[3];
  }

  /** Whether slot `s` holds `file` (parsed by parseFile into fExt/fTicks). */
  private fileIs(s: number, file: string): boolean {
    if (this.ext[s] !== this.fExt) return false;
    return this.fExt === ODD ? this.odd.get(s) === file : this.ticks[s] === this.fTicks;
  }

  private fileAt(s: number): string {
    const x = this.ext[s]!;
    return x === ODD ? this.odd.get(s)! : `${formatTicks(this.ticks[s]!)}.${EXTS[x]}`;
  }

  private hashAt(s: number): string {
    const o = s * SLOT_WORDS;
    let h = '';
    for (let w = 0; w < SLOT_WORDS; w++) h += this.key[o + w]!.toString(16).padStart(8, '0');
    return h;
  }

  /** The entry in slot `s` (`file`: its name, when the caller has it already). */
  private entryAt(s: number, file = this.fileAt(s)): PackEntry {
    return { seg: this.seg[s]!, off: this.off[s]!, len: this.len[s]!, file, part: this.part[s]! };
  }

  private alloc(): number {
    if (this.freeHead >= 0) {
      const s = this.freeHead;
      this.freeHead = this.next[s]!;
      return s;
    }
    return this.top++;
  }

  private linkPart(s: number): void {
    const head = this.partHead.get(this.part[s]!) ?? -1;
    this.pprev[s] = -1;
    this.pnext[s] = head;
    if (head >= 0) this.pprev[head] = s;
    this.partHead.set(this.part[s]!, s);
  }

  private unlinkPart(s: number): void {
    const p = this.pprev[s]!;
    const n = this.pnext[s]!;
    if (p >= 0) this.pnext[p] = n;
    else if (n >= 0) this.partHead.set(this.part[s]!, n);
    else this.partHead.delete(this.part[s]!);
    if (n >= 0) this.pprev[n] = p;
  }

  /** Grows every slot array to `cap` slots and rebuilds the buckets (one per slot, a power of two). */
  private grow(cap: number): void {
    const copy = <T extends Uint32Array | Int32Array | Float64Array | Uint8Array>(a: T, n: number, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.key = copy(this.key, cap * SLOT_WORDS, (n) => new Uint32Array(n));
    this.seg = copy(this.seg, cap, (n) => new Uint32Array(n));
    this.off = copy(this.off, cap, (n) => new Uint32Array(n));
    this.len = copy(this.len, cap, (n) => new Uint32Array(n));
    this.part = copy(this.part, cap, (n) => new Uint32Array(n));
    this.ticks = copy(this.ticks, cap, (n) => new Float64Array(n));
    this.ext = copy(this.ext, cap, (n) => new Uint8Array(n));
    this.next = copy(this.next, cap, (n) => new Int32Array(n));
    this.pnext = copy(this.pnext, cap, (n) => new Int32Array(n));
    this.pprev = copy(this.pprev, cap, (n) => new Int32Array(n));
    this.cap = cap;
    let nb = 16;
    while (nb < cap) nb *= 2;
    if (nb === this.buckets.length) return;
    // Rehash. Free slots keep their `next` links (the free list): only live slots are relinked.
    this.buckets = new Int32Array(nb).fill(-1);
    this.mask = nb - 1;
    for (let s = 0; s < this.top; s++) {
      if (this.ext[s] === FREE) continue;
      const b = this.key[s * SLOT_WORDS + 3]! & this.mask;
      this.next[s] = this.buckets[b]!;
      this.buckets[b] = s;
    }
  }
}
