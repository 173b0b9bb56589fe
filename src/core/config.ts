import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';

/**
 * Configuration is layered, lowest first: built-in defaults, the file
 * `<data-dir>/stratus.yaml` (or `--config FILE`), `STRATUS_*` environment
 * variables, then command-line flags. Every layer uses the same nested keys;
 * env vars spell them with `__` between levels (STRATUS_IDENTITY__TOKEN_EXPIRATION=600).
 */
export interface StratusConfig {
  dataDir: string;
  listen: { host: string; port: number };
  s3Listen: { host: string; port: number };
  /** Base URL clients use to reach --listen; defaults to http://listen. */
  publicUrl: string;
  region: string;
  /** `sqlite` (file in the data dir) or a `postgres://` URL. */
  databaseUrl: string;
  /** `inproc` or a `nats://` URL. */
  busUrl: string;
  hostNetns: string | null;
  seed: boolean;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest JSON request body accepted by the APIs (Keystone's default is 112 KiB). */
  maxJsonBodyBytes: number;
  compute: {
    /** `auto` probes KVM with a real guest boot (cached) and falls back to TCG. */
    accel: 'auto' | 'kvm' | 'tcg';
    availabilityZone: string;
  };
  /**
   * Host-wide cache, shared by every data dir on this host: what depends on
   * the host alone and is slow to make. Default /var/cache/stratus for root,
   * else $XDG_CACHE_HOME/stratus (~/.cache/stratus). Removing it is safe.
   */
  cacheDir: string;
  /** Where the seeded guest image is built and cached (default <cacheDir>/guest-image). */
  guestImageCache: string;
  image: {
    /** Where image data lives: `file` (<data>/images) or `object` (the object store's replicated engine). */
    store: 'file' | 'object';
  };
  object: {
    /** Memory for the object store's cache of small objects (MiB; 0 turns it off). */
    smallObjectCacheMiB: number;
    /**
     * Object records up to this many KiB (at most 64) go to the devices' pack
     * logs with group commit instead of one file each (0: files only).
     */
    packMaxKiB: number;
  };
  identity: {
    tokenExpirationSeconds: number;
    /** How long after expiry a token may still be validated with allow_expired. */
    allowExpiredWindowSeconds: number;
    maxActiveKeys: number;
    /** bcrypt cost; 12 takes ~250 ms here, a sound default against offline guessing. */
    passwordHashCost: number;
    /** 0 disables lockout. */
    lockoutFailureAttempts: number;
    lockoutDurationSeconds: number;
    /**
     * true (default): the admin role is cloud-wide only on a system-scoped
     * token or on the admin project. false: Keystone's legacy behaviour
     * (enforce_scope = False), where admin on any project is a cloud admin —
     * what tooling such as Tempest's dynamic credentials assumes.
     */
    enforceScope: boolean;
  };
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export function defaultConfig(dataDir = './data'): StratusConfig {
  return {
    dataDir: resolve(dataDir),
    listen: { host: '127.0.0.1', port: 8700 },
    s3Listen: { host: '127.0.0.1', port: 8701 },
    publicUrl: '',
    region: 'RegionOne',
    databaseUrl: 'sqlite',
    busUrl: 'inproc',
    hostNetns: null,
    seed: true,
    logLevel: 'info',
    maxJsonBodyBytes: 1024 * 1024,
    compute: { accel: 'auto', availabilityZone: 'nova' },
    cacheDir: '',
    guestImageCache: '',
    image: { store: 'file' },
    object: { smallObjectCacheMiB: 64, packMaxKiB: 64 },
    identity: {
      tokenExpirationSeconds: 3600,
      allowExpiredWindowSeconds: 172800,
      maxActiveKeys: 3,
      passwordHashCost: 12,
      lockoutFailureAttempts: 0,
      lockoutDurationSeconds: 1800,
      enforceScope: true,
    },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge<T>(base: T, over: unknown): T {
  if (!isObject(over)) return base;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isObject(v) && isObject(out[k]) ? merge(out[k], v) : v;
  }
  return out as T;
}

const camel = (s: string) => s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Reads STRATUS_* variables into a nested partial config; values are JSON-parsed when they parse. */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('STRATUS_') || raw === undefined) continue;
    if (name === 'STRATUS_ADMIN_PASSWORD') continue; // a secret, read where it is used
    const path = name.slice('STRATUS_'.length).split('__').map(camel);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      /* plain string */
    }
    let node = out;
    path.slice(0, -1).forEach((p) => {
      node[p] = isObject(node[p]) ? node[p] : {};
      node = node[p] as Record<string, unknown>;
    });
    node[path[path.length - 1]!] = value;
  }
  return out;
}

export function parseHostPort(s: string, what: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(s);
  if (!m) throw new Error(`${what} must be HOST:PORT, got "${s}"`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** The default host-wide cache: /var/cache/stratus for root, else the user's XDG cache dir. */
export function hostCacheDir(env: NodeJS.ProcessEnv, uid = process.getuid?.() ?? -1): string {
  if (uid === 0) return '/var/cache/stratus';
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'stratus');
}

/** Builds the effective configuration from every layer. */
export function loadConfig(flags: DeepPartial<StratusConfig> & { config?: string }, env = process.env): StratusConfig {
  const dataDir = resolve(flags.dataDir ?? env.STRATUS_DATA_DIR ?? './data');
  let cfg = defaultConfig(dataDir);
  const file = flags.config ?? join(dataDir, 'stratus.yaml');
  if (existsSync(file)) {
    const parsed: unknown = YAML.parse(readFileSync(file, 'utf8'));
    cfg = merge(cfg, parsed);
  }
  cfg = merge(cfg, configFromEnv(env));
  const { config: _ignored, ...rest } = flags;
  cfg = merge(cfg, rest);
  cfg.dataDir = dataDir;
  cfg.cacheDir = resolve(cfg.cacheDir || hostCacheDir(env));
  if (!cfg.guestImageCache) cfg.guestImageCache = join(cfg.cacheDir, 'guest-image');
  if (cfg.image.store !== 'file' && cfg.image.store !== 'object') throw new Error(`image.store must be file or object, got "${String(cfg.image.store)}"`);
  if (!Number.isFinite(cfg.object.smallObjectCacheMiB) || cfg.object.smallObjectCacheMiB < 0) throw new Error('object.smallObjectCacheMiB must be a number of MiB, 0 or more');
  if (!Number.isFinite(cfg.object.packMaxKiB) || cfg.object.packMaxKiB < 0 || cfg.object.packMaxKiB > 64) throw new Error('object.packMaxKiB must be a number of KiB from 0 to 64');
  if (!cfg.publicUrl) {
    const h = cfg.listen.host.includes(':') ? `[${cfg.listen.host}]` : cfg.listen.host;
    cfg.publicUrl = `http://${h === '0.0.0.0' ? '127.0.0.1' : h}:${cfg.listen.port}`;
  }
  return cfg;
}
