/**
 * A classic MBR (DOS) partition table with one primary partition, written
 * in TypeScript instead of calling sfdisk. Layout of sector 0: boot code
 * (bytes 0-439), disk signature (440-443), 2 reserved bytes, four 16-byte
 * partition entries from byte 446, and the 0x55 0xAA signature at 510.
 * Entry: status (0x80 = bootable), CHS of first sector, type, CHS of last
 * sector, LBA of first sector (u32 LE), number of sectors (u32 LE).
 */

export const SECTOR = 512;

export interface MbrPartition {
  startLba: number;
  sectors: number;
  /** Partition type byte, e.g. 0x0e = FAT16 with LBA. */
  type: number;
  bootable: boolean;
}

/** CHS address of an LBA for the usual 255 heads x 63 sectors geometry (clamped at 1023/254/63). */
export function chs(lba: number): [number, number, number] {
  const heads = 255;
  const spt = 63;
  let c = Math.floor(lba / (heads * spt));
  let h = Math.floor(lba / spt) % heads;
  let s = (lba % spt) + 1;
  if (c > 1023) {
    c = 1023;
    h = 254;
    s = 63;
  }
  return [h, (s & 0x3f) | ((c >> 2) & 0xc0), c & 0xff];
}

/**
 * Builds sector 0: `bootCode` (up to 440 bytes, e.g. SYSLINUX's mbr.bin)
 * followed by the partition table.
 */
export function buildMbr(bootCode: Buffer, parts: readonly MbrPartition[], diskSignature: number): Buffer {
  if (parts.length > 4) throw new Error('an MBR holds at most 4 primary partitions');
  const mbr = Buffer.alloc(SECTOR);
  bootCode.copy(mbr, 0, 0, Math.min(bootCode.length, 440));
  mbr.writeUInt32LE(diskSignature >>> 0, 440);
  parts.forEach((p, i) => {
    const o = 446 + i * 16;
    mbr[o] = p.bootable ? 0x80 : 0x00;
    Buffer.from(chs(p.startLba)).copy(mbr, o + 1);
    mbr[o + 4] = p.type;
    Buffer.from(chs(p.startLba + p.sectors - 1)).copy(mbr, o + 5);
    mbr.writeUInt32LE(p.startLba, o + 8);
    mbr.writeUInt32LE(p.sectors, o + 12);
  });
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  return mbr;
}
