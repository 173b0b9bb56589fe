import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildCpio, collectTree, S_IFCHR, S_IFDIR, type CpioEntry } from './cpio.js';
import { buildMbr, SECTOR } from './mbr.js';
import { runCommand } from './run-command.js';

/**
 * Builder of the Stratus guest image: a tiny bootable cloud image made only
 * from Debian packages, used as the seed image of a fresh cloud and by the
 * compute driver's tests and KVM probe.
 *
 * Disk layout (`disk.raw`, also as compressed `disk.qcow2`): MBR with
 * SYSLINUX's mbr.bin, one bootable FAT16 partition at 1 MiB holding
 * SYSLINUX, the Debian cloud kernel (`vmlinuz`) and a busybox initramfs
 * (`initrd.gz`) that is the whole root file system; its /init is
 * `guest/init` of this repository (see there for what the guest does and
 * prints on its serial console).
 *
 * Built without root-only tricks: no loop devices or mounts. The .debs are
 * fetched with `apt-get download` into `<outDir>/.cache` (kept between
 * builds), unpacked with `dpkg-deb -x`; the initramfs (cpio "newc" + gzip)
 * and the MBR are written in TypeScript; the FAT file system is made with
 * mtools (`mformat`, `mcopy`) and SYSLINUX's mtools-based installer.
 *
 * Host packages: mtools, syslinux, syslinux-common, qemu-utils (plus apt and
 * dpkg, present on every Debian).
 */

export interface GuestImage {
  /** Compressed qcow2 (what an image service stores). */
  qcow2: string;
  /** The same disk as a sparse raw file. */
  raw: string;
  /** Virtual size of the disk in bytes. */
  size: number;
}

export interface BuildGuestImageOptions {
  /**
   * Debian kernel package to use (e.g. `linux-image-6.1.0-56-cloud-amd64`).
   * Default: env STRATUS_GUEST_KERNEL_PKG, else what `linux-image-cloud-amd64`
   * depends on, else the newest one already in the cache.
   */
  kernelPackage?: string;
  /** Directory holding `init` and `udhcpc.script` (default: `<repo>/guest`). */
  guestDir?: string;
}

/** Bump when the build procedure changes the output, so caches rebuild. */
const BUILDER_VERSION = 1;

/** Kernel modules the guest loads (the Debian cloud kernel builds them as modules). */
const GUEST_MODULES = [
  'virtio_pci',
  'virtio_net',
  'virtio_blk',
  'virtio_scsi',
  'sd_mod',
  'ata_piix',
  'sr_mod',
  'isofs',
  'vfat',
  'nls_cp437',
  'nls_ascii',
  'nls_utf8',
  'virtio-rng',
  'button',
  'evdev',
];

const SYSLINUX_MBR = '/usr/lib/syslinux/mbr/mbr.bin';
const PART_START_LBA = 2048; // 1 MiB
const MIB = 1024 * 1024;

const SYSLINUX_CFG = [
  'SERIAL 0 115200',
  'DEFAULT stratus',
  'PROMPT 0',
  'TIMEOUT 0',
  'LABEL stratus',
  '  LINUX /vmlinuz',
  '  INITRD /initrd.gz',
  '  APPEND console=tty0 console=ttyS0,115200 panic=-1 quiet',
  '',
].join('\n');

interface Manifest {
  builderVersion: number;
  inputsHash: string;
  kernelPackage: string;
  kernelVersion: string;
  busyboxPackage: string;
  builtAt: string;
  files: Record<string, { bytes: number; sha256: string }>;
  diskVirtualSize: number;
}

const inFlight = new Map<string, Promise<GuestImage>>();

/**
 * Builds (or returns the cached) guest image in `outDir`:
 * `disk.qcow2`, `disk.raw`, `vmlinuz`, `initrd.gz`, `manifest.json`.
 *
 * Idempotent: when `manifest.json` exists, matches the current inputs
 * (guest/init, guest/udhcpc.script, builder version, pinned kernel) and the
 * disks are present, it returns at once. Otherwise the image is built in
 * `<outDir>/.build-*` and the outputs are renamed into place at the end,
 * manifest last, so an interrupted build leaves no half-built image (the
 * stale work dir is removed by the next call). Concurrent calls in one
 * process share one build.
 */
export function buildGuestImage(
  outDir: string,
  log: (msg: string) => void = () => {},
  opts: BuildGuestImageOptions = {},
): Promise<GuestImage> {
  const dir = resolve(outDir);
  const running = inFlight.get(dir);
  if (running) return running;
  const p = build(dir, log, opts).finally(() => inFlight.delete(dir));
  inFlight.set(dir, p);
  return p;
}

async function build(outDir: string, log: (msg: string) => void, opts: BuildGuestImageOptions): Promise<GuestImage> {
  const guestDir = opts.guestDir ?? fileURLToPath(new URL('../../../guest/', import.meta.url));
  const pinned = opts.kernelPackage ?? process.env.STRATUS_GUEST_KERNEL_PKG ?? '';
  const initScript = await readFile(join(guestDir, 'init'));
  const dhcpScript = await readFile(join(guestDir, 'udhcpc.script'));
  const inputsHash = createHash('sha256')
    .update(`v${BUILDER_VERSION}\0${pinned}\0`)
    .update(initScript)
    .update('\0')
    .update(dhcpScript)
    .digest('hex');

  const result: GuestImage = {
    qcow2: join(outDir, 'disk.qcow2'),
    raw: join(outDir, 'disk.raw'),
    size: 0,
  };
  const cacheDir = join(outDir, '.cache');
  await mkdir(cacheDir, { recursive: true });
  await removeStaleWorkDirs(outDir, '.build-');
  await removeStaleWorkDirs(cacheDir, '.dl-');
  const cached = await readManifest(outDir);
  if (cached && cached.inputsHash === inputsHash && existsSync(result.qcow2) && existsSync(result.raw)) {
    return { ...result, size: cached.diskVirtualSize };
  }

  const t0 = Date.now();
  await checkHostTools();

  const work = await mkdtemp(join(outDir, `.build-${process.pid}-`));
  try {
    const kernelPackage = pinned || (await resolveKernelPackage(cacheDir));
    log(`guest image: kernel package ${kernelPackage}, busybox-static`);
    const kernelDeb = await fetchDeb(cacheDir, kernelPackage, log);
    const busyboxDeb = await fetchDeb(cacheDir, 'busybox-static', log);

    const kdir = join(work, 'k');
    const bbdir = join(work, 'bb');
    await runCommand('dpkg-deb', ['-x', kernelDeb, kdir]);
    await runCommand('dpkg-deb', ['-x', busyboxDeb, bbdir]);
    const kvers = await readdir(join(kdir, 'lib', 'modules'));
    if (kvers.length !== 1) throw new Error(`expected one kernel in ${kernelDeb}, found: ${kvers.join(', ')}`);
    const kver = kvers[0]!;
    const busybox = join(bbdir, 'bin', 'busybox');

    // --- initramfs root -----------------------------------------------------
    const root = join(work, 'root');
    await makeRoot(root, busybox, kdir, kver, initScript, dhcpScript);
    const entries = await collectTree(root);
    // device nodes the kernel wants before /init mounts devtmpfs
    const dev: CpioEntry[] = [
      { name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
      { name: 'dev/null', mode: S_IFCHR | 0o666, rdevMajor: 1, rdevMinor: 3 },
    ];
    const devIdx = entries.findIndex((e) => e.name === 'dev' && (e.mode & 0o170000) === S_IFDIR);
    entries.splice(devIdx + 1, 0, ...dev);
    const outFiles = join(work, 'out');
    await mkdir(outFiles);
    const initrd = join(outFiles, 'initrd.gz');
    await writeFile(initrd, gzipSync(buildCpio(entries), { level: 9 }));
    const vmlinuz = join(outFiles, 'vmlinuz');
    await copyFile(join(kdir, 'boot', `vmlinuz-${kver}`), vmlinuz);

    // --- FAT16 partition with SYSLINUX ---------------------------------------
    const payload = (await stat(vmlinuz)).size + (await stat(initrd)).size;
    const partMb = Math.max(16, Math.floor(payload / MIB) + 4); // >= 16 MiB keeps FAT16 with 2 KiB clusters
    const part = join(work, 'part.img');
    await writeFile(part, '');
    await truncate(part, partMb * MIB);
    const mtoolsEnv = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
    const partSectors = (partMb * MIB) / SECTOR;
    // -H: hidden sectors = partition start (SYSLINUX's boot sector adds it to find ldlinux.sys)
    await runCommand(
      'mformat',
      ['-i', part, '-v', 'STRATUS', '-H', String(PART_START_LBA), '-T', String(partSectors), '-h', '64', '-s', '32', '-c', '4', '::'],
      { env: mtoolsEnv },
    );
    await runCommand('syslinux', ['--install', part], { env: mtoolsEnv });
    const cfg = join(work, 'syslinux.cfg');
    await writeFile(cfg, SYSLINUX_CFG);
    await runCommand('mcopy', ['-i', part, vmlinuz, initrd, cfg, '::/'], { env: mtoolsEnv });

    // --- whole disk: MBR + partition at 1 MiB (sparse) ----------------------
    const raw = join(outFiles, 'disk.raw');
    const diskBytes = (partMb + 1) * MIB;
    const mbr = buildMbr(
      await readFile(SYSLINUX_MBR),
      [{ startLba: PART_START_LBA, sectors: partSectors, type: 0x0e, bootable: true }],
      randomBytes(4).readUInt32LE(0),
    );
    await writeDisk(raw, diskBytes, mbr, part, MIB);
    const qcow2 = join(outFiles, 'disk.qcow2');
    await runCommand('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);

    // --- manifest + atomic publish --------------------------------------------
    const names = ['disk.raw', 'disk.qcow2', 'vmlinuz', 'initrd.gz'];
    const files: Manifest['files'] = {};
    for (const n of names) files[n] = { bytes: (await stat(join(outFiles, n))).size, sha256: await sha256File(join(outFiles, n)) };
    const manifest: Manifest = {
      builderVersion: BUILDER_VERSION,
      inputsHash,
      kernelPackage,
      kernelVersion: kver,
      busyboxPackage: basename(busyboxDeb),
      builtAt: new Date().toISOString(),
      files,
      diskVirtualSize: diskBytes,
    };
    await writeFile(join(outFiles, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await rm(join(outDir, 'manifest.json'), { force: true }); // invalid until all files are in place
    for (const n of names) await rename(join(outFiles, n), join(outDir, n));
    await rename(join(outFiles, 'manifest.json'), join(outDir, 'manifest.json'));
    log(
      `guest image: built ${result.qcow2} (${kver}, disk ${partMb + 1} MiB, qcow2 ${files['disk.qcow2']!.bytes} bytes) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    return { ...result, size: diskBytes };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function readManifest(outDir: string): Promise<Manifest | null> {
  try {
    return JSON.parse(await readFile(join(outDir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `<dir>/<prefix><pid>-*` work dirs left by builds whose process is gone. */
async function removeStaleWorkDirs(dir: string, prefix: string): Promise<void> {
  for (const n of await readdir(dir)) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) continue;
    await rm(join(dir, n), { recursive: true, force: true });
  }
}

async function which(cmd: string): Promise<boolean> {
  for (const d of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (d && existsSync(join(d, cmd))) return true;
  }
  return false;
}

async function checkHostTools(): Promise<void> {
  const need: Record<string, string> = {
    'apt-get': 'apt',
    'apt-cache': 'apt',
    'dpkg-deb': 'dpkg',
    mformat: 'mtools',
    mcopy: 'mtools',
    syslinux: 'syslinux',
    'qemu-img': 'qemu-utils',
  };
  const missing = new Set<string>();
  for (const [cmd, pkg] of Object.entries(need)) if (!(await which(cmd))) missing.add(pkg);
  if (!existsSync(SYSLINUX_MBR)) missing.add('syslinux-common');
  if (missing.size > 0) {
    throw new Error(`guest image build needs Debian packages: apt-get install -y ${[...missing].join(' ')}`);
  }
}

/** The versioned kernel package `linux-image-cloud-amd64` points at (or the newest cached one). */
async function resolveKernelPackage(cacheDir: string): Promise<string> {
  const ask = async (): Promise<string | null> => {
    try {
      const { stdout } = await runCommand('apt-cache', ['depends', 'linux-image-cloud-amd64'], { timeoutMs: 60_000 });
      const m = /Depends:\s+(linux-image-\d\S*)/.exec(stdout);
      return m ? m[1]! : null;
    } catch {
      return null;
    }
  };
  let pkg = await ask();
  if (!pkg) {
    await runCommand('apt-get', ['update', '-qq'], { timeoutMs: 300_000 }).catch(() => undefined);
    pkg = await ask();
  }
  if (pkg) return pkg;
  const cached = (await readdir(cacheDir))
    .filter((n) => /^linux-image-\d.*-cloud-amd64_.*\.deb$/.test(n))
    .sort()
    .pop();
  if (cached) return cached.split('_')[0]!;
  throw new Error('cannot resolve the Debian cloud kernel package (apt-cache depends linux-image-cloud-amd64 failed)');
}

/** Path of `<pkg>_*.deb` in the cache, downloading it with `apt-get download` if needed. */
async function fetchDeb(cacheDir: string, pkg: string, log: (msg: string) => void): Promise<string> {
  const find = async (d: string): Promise<string | undefined> =>
    (await readdir(d)).filter((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb')).sort().pop();
  const have = await find(cacheDir);
  if (have) return join(cacheDir, have);
  // download into a private dir, then rename: no half-downloaded .deb in the cache
  const dl = await mkdtemp(join(cacheDir, `.dl-${process.pid}-`));
  try {
    await chmod(dl, 0o755);
    log(`guest image: apt-get download ${pkg}`);
    await runCommand('apt-get', ['download', pkg], { cwd: dl, timeoutMs: 600_000 });
    const got = await find(dl);
    if (!got) throw new Error(`apt-get download ${pkg} produced no .deb`);
    await rename(join(dl, got), join(cacheDir, got));
    return join(cacheDir, got);
  } finally {
    await rm(dl, { recursive: true, force: true });
  }
}

async function makeRoot(
  root: string,
  busybox: string,
  kdir: string,
  kver: string,
  initScript: Buffer,
  dhcpScript: Buffer,
): Promise<void> {
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'run', 'tmp', 'mnt', 'root', 'www', `lib/modules/${kver}`]) {
    await mkdir(join(root, d), { recursive: true });
  }
  await chmod(join(root, 'tmp'), 0o1777);
  await copyFile(busybox, join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  const { stdout } = await runCommand(busybox, ['--list']);
  for (const applet of stdout.split('\n').map((s) => s.trim())) {
    if (applet && applet !== 'busybox' && !applet.includes('/')) await symlink('busybox', join(root, 'bin', applet));
  }
  await writeFile(join(root, 'init'), initScript, { mode: 0o755 });
  await writeFile(join(root, 'etc', 'udhcpc.script'), dhcpScript, { mode: 0o755 });
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\n');
  await writeFile(join(root, 'etc', 'profile'), 'export PATH=/bin PS1="\\h# "\n');

  // kernel modules with their dependencies (the .deb has no modules.dep: make one)
  await runCommand(busybox, ['depmod', '-b', kdir, kver]);
  const kmod = join(kdir, 'lib', 'modules', kver);
  const deps = new Map<string, string[]>();
  for (const line of (await readFile(join(kmod, 'modules.dep'), 'utf8')).split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    deps.set(line.slice(0, i), line.slice(i + 1).trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map<string, string>();
  for (const p of deps.keys()) {
    const m = /([^/]+)\.ko(\.[a-z]+)?$/.exec(p);
    if (m) byName.set(m[1]!.replace(/-/g, '_'), p);
  }
  const wanted = new Set<string>();
  for (const mod of GUEST_MODULES) {
    const p = byName.get(mod.replace(/-/g, '_'));
    if (!p) throw new Error(`kernel module ${mod} not found in ${kver}`);
    wanted.add(p);
    for (const d of deps.get(p) ?? []) wanted.add(d);
  }
  const rmod = join(root, 'lib', 'modules', kver);
  for (const p of wanted) {
    await mkdir(join(rmod, p, '..'), { recursive: true });
    await copyFile(join(kmod, p), join(rmod, p));
  }
  if (existsSync(join(kmod, 'modules.builtin'))) await copyFile(join(kmod, 'modules.builtin'), join(rmod, 'modules.builtin'));
  await runCommand(busybox, ['depmod', '-b', root, kver]);
}

/** Writes a sparse disk image: `size` bytes, `mbr` at 0, the `part` file at `partOffset`. */
async function writeDisk(path: string, size: number, mbr: Buffer, part: string, partOffset: number): Promise<void> {
  const out = await open(path, 'w');
  try {
    await out.truncate(size);
    await out.write(mbr, 0, mbr.length, 0);
    const src = await open(part, 'r');
    try {
      const buf = Buffer.alloc(MIB);
      for (let pos = 0; ; pos += MIB) {
        const { bytesRead } = await src.read(buf, 0, MIB, pos);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        if (chunk.some((b) => b !== 0)) await out.write(chunk, 0, bytesRead, partOffset + pos);
      }
    } finally {
      await src.close();
    }
  } finally {
    await out.close();
  }
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}
