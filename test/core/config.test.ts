import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configFromEnv, defaultConfig, hostCacheDir, loadConfig, parseHostPort } from '../../src/core/config.js';

describe('config layering: defaults < stratus.yaml < STRATUS_* env < flags', () => {
  let root: string;
  let n = 0;
  const freshDir = () => {
    const d = join(root, `d${++n}`);
    mkdirSync(d, { recursive: true });
    return d;
  };
  const writeYaml = (dir: string, text: string) => writeFileSync(join(dir, 'stratus.yaml'), text);

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'stratus-config-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('defaults, with derived publicUrl and guest image cache', () => {
    const dir = freshDir();
    const cfg = loadConfig({ dataDir: dir }, {});
    const d = defaultConfig(dir);
    assert.equal(cfg.dataDir, resolve(dir));
    assert.deepEqual(cfg.listen, { host: '127.0.0.1', port: 8700 });
    assert.deepEqual(cfg.s3Listen, { host: '127.0.0.1', port: 8701 });
    assert.equal(cfg.region, 'RegionOne');
    assert.equal(cfg.databaseUrl, 'sqlite');
    assert.equal(cfg.busUrl, 'inproc');
    assert.equal(cfg.seed, true);
    assert.equal(cfg.maxJsonBodyBytes, 1024 * 1024);
    assert.deepEqual(cfg.identity, d.identity);
    assert.equal(cfg.identity.tokenExpirationSeconds, 3600);
    assert.equal(cfg.identity.passwordHashCost, 12);
    assert.equal(cfg.identity.lockoutFailureAttempts, 0);
    assert.equal(cfg.identity.enforceScope, true);
    assert.deepEqual(cfg.compute, { accel: 'auto', availabilityZone: 'nova' });
    assert.equal(cfg.publicUrl, 'http://127.0.0.1:8700');
    assert.equal(cfg.cacheDir, hostCacheDir({}));
    assert.equal(cfg.guestImageCache, join(cfg.cacheDir, 'guest-image'));
  });

  test('defaultConfig returns independent objects', () => {
    const a = defaultConfig('/x');
    a.identity.tokenExpirationSeconds = 1;
    a.listen.port = 1;
    const b = defaultConfig('/x');
    assert.equal(b.identity.tokenExpirationSeconds, 3600);
    assert.equal(b.listen.port, 8700);
  });

  test('stratus.yaml in the data dir overrides defaults, deep-merging nested sections', () => {
    const dir = freshDir();
    writeYaml(dir, ['region: RegionFile', 'identity:', '  tokenExpirationSeconds: 100', 'listen:', '  port: 9100', ''].join('\n'));
    const cfg = loadConfig({ dataDir: dir }, {});
    assert.equal(cfg.region, 'RegionFile');
    assert.equal(cfg.identity.tokenExpirationSeconds, 100);
    // The rest of the section keeps its defaults.
    assert.equal(cfg.identity.passwordHashCost, 12);
    assert.equal(cfg.identity.maxActiveKeys, 3);
    assert.deepEqual(cfg.listen, { host: '127.0.0.1', port: 9100 });
    assert.equal(cfg.publicUrl, 'http://127.0.0.1:9100', 'publicUrl follows the effective listen address');
  });

  test('an explicit config file replaces <data-dir>/stratus.yaml', () => {
    const dir = freshDir();
    writeYaml(dir, 'region: FromDataDir\n');
    const other = join(root, `other-${n}.yaml`);
    writeFileSync(other, 'region: FromFlagFile\n');
    assert.equal(loadConfig({ dataDir: dir, config: other }, {}).region, 'FromFlagFile');
    // A missing explicit file is simply absent (defaults apply).
    assert.equal(loadConfig({ dataDir: dir, config: join(root, 'missing.yaml') }, {}).region, 'RegionOne');
  });

  test('STRATUS_* env vars override the file; __ separates levels; values are JSON-parsed', () => {
    const dir = freshDir();
    writeYaml(dir, ['region: RegionFile', 'identity:', '  tokenExpirationSeconds: 100', '  passwordHashCost: 8', ''].join('\n'));
    const cfg = loadConfig(
      { dataDir: dir },
      {
        STRATUS_IDENTITY__TOKEN_EXPIRATION_SECONDS: '5',
        STRATUS_REGION: 'RegionEnv',
        STRATUS_SEED: 'false',
        STRATUS_LISTEN__PORT: '9200',
        STRATUS_COMPUTE__AVAILABILITY_ZONE: 'az-env',
      },
    );
    assert.equal(cfg.identity.tokenExpirationSeconds, 5);
    assert.equal(typeof cfg.identity.tokenExpirationSeconds, 'number');
    assert.equal(cfg.identity.passwordHashCost, 8, 'the file still applies where env says nothing');
    assert.equal(cfg.region, 'RegionEnv');
    assert.equal(cfg.seed, false);
    assert.deepEqual(cfg.listen, { host: '127.0.0.1', port: 9200 });
    assert.equal(cfg.compute.availabilityZone, 'az-env');
    assert.equal(cfg.compute.accel, 'auto');
  });

  test('flags override env, file and defaults; undefined flags are ignored', () => {
    const dir = freshDir();
    writeYaml(dir, ['region: RegionFile', 'identity:', '  tokenExpirationSeconds: 100', ''].join('\n'));
    const env = { STRATUS_IDENTITY__TOKEN_EXPIRATION_SECONDS: '5', STRATUS_REGION: 'RegionEnv' };
    const cfg = loadConfig({ dataDir: dir, identity: { tokenExpirationSeconds: 7 }, region: 'RegionFlag' }, env);
    assert.equal(cfg.identity.tokenExpirationSeconds, 7);
    assert.equal(cfg.region, 'RegionFlag');
    // A CLI that passes `undefined` for an option the user did not give must not erase lower layers.
    const cfg2 = loadConfig({ dataDir: dir, region: undefined, identity: { tokenExpirationSeconds: undefined } }, env);
    assert.equal(cfg2.region, 'RegionEnv');
    assert.equal(cfg2.identity.tokenExpirationSeconds, 5);
  });

  test('each layer wins over exactly the layers below it', () => {
    const dir = freshDir();
    const file = 'identity:\n  tokenExpirationSeconds: 2\n';
    const env = { STRATUS_IDENTITY__TOKEN_EXPIRATION_SECONDS: '3' };
    const flag = { identity: { tokenExpirationSeconds: 4 } };
    const get = (withFile: boolean, withEnv: boolean, withFlag: boolean) => {
      if (withFile) writeYaml(dir, file);
      else rmSync(join(dir, 'stratus.yaml'), { force: true });
      return loadConfig({ dataDir: dir, ...(withFlag ? flag : {}) }, withEnv ? env : {}).identity.tokenExpirationSeconds;
    };
    assert.equal(get(false, false, false), 3600);
    assert.equal(get(true, false, false), 2);
    assert.equal(get(false, true, false), 3);
    assert.equal(get(true, true, false), 3);
    assert.equal(get(false, false, true), 4);
    assert.equal(get(true, false, true), 4);
    assert.equal(get(false, true, true), 4);
    assert.equal(get(true, true, true), 4);
  });

  test('the data dir comes from the flag, else STRATUS_DATA_DIR, and the file is read from there', () => {
    const dir = freshDir();
    writeYaml(dir, 'region: InEnvDir\n');
    const cfg = loadConfig({}, { STRATUS_DATA_DIR: dir });
    assert.equal(cfg.dataDir, resolve(dir));
    assert.equal(cfg.region, 'InEnvDir');
    const other = freshDir();
    const cfg2 = loadConfig({ dataDir: other }, { STRATUS_DATA_DIR: dir });
    assert.equal(cfg2.dataDir, resolve(other));
    assert.equal(cfg2.region, 'RegionOne');
  });

  test('a dataDir inside the file cannot move the data dir away from where the file was found', () => {
    const dir = freshDir();
    writeYaml(dir, 'dataDir: /somewhere/else\n');
    assert.equal(loadConfig({ dataDir: dir }, {}).dataDir, resolve(dir));
  });

  test('publicUrl: explicit value kept; 0.0.0.0 maps to loopback; IPv6 hosts are bracketed', () => {
    const dir = freshDir();
    assert.equal(loadConfig({ dataDir: dir, publicUrl: 'https://cloud.example:443' }, {}).publicUrl, 'https://cloud.example:443');
    assert.equal(loadConfig({ dataDir: dir, listen: { host: '0.0.0.0', port: 8000 } }, {}).publicUrl, 'http://127.0.0.1:8000');
    assert.equal(loadConfig({ dataDir: dir, listen: { host: '::1', port: 8000 } }, {}).publicUrl, 'http://[::1]:8000');
  });

  test('the host-wide cache: /var/cache/stratus for root, else the XDG cache dir; STRATUS_CACHE_DIR moves it and the guest image with it', () => {
    assert.equal(hostCacheDir({}, 0), '/var/cache/stratus');
    assert.equal(hostCacheDir({ XDG_CACHE_HOME: '/x/c', HOME: '/home/u' }, 1000), '/x/c/stratus');
    assert.equal(hostCacheDir({ HOME: '/home/u' }, 1000), '/home/u/.cache/stratus');
    const cfg = loadConfig({ dataDir: freshDir() }, { STRATUS_CACHE_DIR: '/var/tmp/sc' });
    assert.equal(cfg.cacheDir, '/var/tmp/sc');
    assert.equal(cfg.guestImageCache, '/var/tmp/sc/guest-image');
  });

  test('an explicit guestImageCache is kept', () => {
    const dir = freshDir();
    assert.equal(loadConfig({ dataDir: dir }, { STRATUS_GUEST_IMAGE_CACHE: '/var/tmp/gic' }).guestImageCache, '/var/tmp/gic');
  });
});

describe('configFromEnv', () => {
  test('only STRATUS_* variables; names become nested camelCase keys', () => {
    const out = configFromEnv({
      HOME: '/root',
      STRATUS_IDENTITY__LOCKOUT_FAILURE_ATTEMPTS: '3',
      STRATUS_IDENTITY__ENFORCE_SCOPE: 'false',
      STRATUS_MAX_JSON_BODY_BYTES: '1000',
      STRATUS_PUBLIC_URL: 'http://x:1',
      STRATUS_HOST_NETNS: 'null',
      STRATUS_COMPUTE__ACCEL: 'kvm',
    });
    assert.deepEqual(out, {
      identity: { lockoutFailureAttempts: 3, enforceScope: false },
      maxJsonBodyBytes: 1000,
      publicUrl: 'http://x:1',
      hostNetns: null,
      compute: { accel: 'kvm' },
    });
  });

  test('STRATUS_ADMIN_PASSWORD is a secret and never becomes config', () => {
    const out = configFromEnv({ STRATUS_ADMIN_PASSWORD: 'hunter2', STRATUS_REGION: 'R' });
    assert.deepEqual(out, { region: 'R' });
    const cfg = loadConfig({ dataDir: mkdtempSync(join(tmpdir(), 'stratus-cfg-pw-')) }, { STRATUS_ADMIN_PASSWORD: 'hunter2' });
    assert.ok(!JSON.stringify(cfg).includes('hunter2'));
    rmSync(cfg.dataDir, { recursive: true, force: true });
  });

  test('JSON values parse (objects too); anything else stays a string', () => {
    const out = configFromEnv({ STRATUS_LISTEN: '{"host":"10.0.0.1","port":1}', STRATUS_REGION: 'not json {' });
    assert.deepEqual(out, { listen: { host: '10.0.0.1', port: 1 }, region: 'not json {' });
  });
});

describe('parseHostPort', () => {
  test('host:port, IPv6 in brackets, and errors', () => {
    assert.deepEqual(parseHostPort('0.0.0.0:8700', '--listen'), { host: '0.0.0.0', port: 8700 });
    assert.deepEqual(parseHostPort('[::1]:8701', '--listen'), { host: '::1', port: 8701 });
    assert.deepEqual(parseHostPort('localhost:1', '--listen'), { host: 'localhost', port: 1 });
    assert.throws(() => parseHostPort('8700', '--listen'), /--listen must be HOST:PORT/);
    assert.throws(() => parseHostPort('host:', '--listen'), /HOST:PORT/);
    assert.throws(() => parseHostPort('host:port', '--s3-listen'), /--s3-listen/);
  });
});
