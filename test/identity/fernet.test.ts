import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeKey, decrypt, encrypt, generateKey, MAX_CLOCK_SKEW_SECONDS, tokenTimestamp } from '../../src/identity/service/fernet.js';
import { FernetKeyRepository } from '../../src/identity/service/fernet-keys.js';

// Vectors from the Fernet spec (github.com/fernet/spec: generate.json, verify.json, invalid.json).
const SECRET = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
const SPEC_TOKEN = 'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==';
const ms = (iso: string): number => Date.parse(iso);
const IV = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

const INVALID: Array<{ desc: string; token: string; now: string }> = [
  {
    desc: 'incorrect mac',
    token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==',
    now: '1985-10-26T01:20:01-07:00',
  },
  { desc: 'too short', token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==', now: '1985-10-26T01:20:01-07:00' },
  {
    desc: 'invalid base64',
    token: '%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==',
    now: '1985-10-26T01:20:01-07:00',
  },
  {
    desc: 'payload size not multiple of block size',
    token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_v7mrfyudzUm',
    now: '1985-10-26T01:20:01-07:00',
  },
  {
    desc: 'payload padding error',
    token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==',
    now: '1985-10-26T01:20:01-07:00',
  },
  {
    desc: 'far-future TS (unacceptable clock skew)',
    token: 'gAAAAAAdwStRAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAnja1xKYyhd-Y6mSkTOyTGJmw2Xc2a6kBd-iX9b_qXQcw==',
    now: '1985-10-26T01:20:01-07:00',
  },
  {
    desc: 'expired TTL',
    token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==',
    now: '1985-10-26T01:21:31-07:00',
  },
  {
    desc: 'incorrect IV (causes padding error)',
    token: 'gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==',
    now: '1985-10-26T01:20:01-07:00',
  },
];

/** Flips one bit of the decoded token at `offset` (negative = from the end) and re-encodes it. */
function tamper(token: string, offset: number): string {
  const raw = Buffer.from(token, 'base64url');
  const i = offset < 0 ? raw.length + offset : offset;
  raw[i]! ^= 0x01;
  const s = raw.toString('base64url');
  return s + '='.repeat((4 - (s.length % 4)) % 4);
}

describe('fernet spec vectors', () => {
  test('generate.json: encrypt reproduces the spec token', () => {
    assert.equal(encrypt(SECRET, Buffer.from('hello'), ms('1985-10-26T01:20:00-07:00'), IV), SPEC_TOKEN);
  });

  test('generate.json: same token from a raw 32-byte key', () => {
    assert.equal(encrypt(decodeKey(SECRET), Buffer.from('hello'), ms('1985-10-26T01:20:00-07:00'), IV), SPEC_TOKEN);
  });

  test('verify.json: decrypt with ttl 60 yields the message', () => {
    const out = decrypt([SECRET], SPEC_TOKEN, 60, ms('1985-10-26T01:20:01-07:00'));
    assert.equal(out?.toString('utf8'), 'hello');
  });

  for (const v of INVALID) {
    test(`invalid.json: ${v.desc}`, () => {
      assert.equal(decrypt([SECRET], v.token, 60, ms(v.now)), null);
    });
  }

  test('invalid.json: the time-based vectors carry valid MACs, so only the TTL rules reject them', () => {
    for (const v of INVALID.filter((x) => /TTL|future/.test(x.desc))) {
      assert.deepEqual(decrypt([SECRET], v.token), Buffer.alloc(0), v.desc);
    }
  });
});

describe('fernet encrypt/decrypt', () => {
  test('round-trips empty, short, block-sized and long messages', () => {
    const key = generateKey();
    for (const len of [0, 1, 15, 16, 17, 31, 32, 1000]) {
      const msg = Buffer.alloc(len, 0xa5);
      const tok = encrypt(key, msg);
      assert.deepEqual(decrypt([key], tok), msg, `length ${len}`);
    }
  });

  test('tokens are padded base64url and start with the version byte', () => {
    const tok = encrypt(generateKey(), Buffer.from('x'));
    assert.match(tok, /^gAAAAA[A-Za-z0-9_-]+=*$/);
    assert.equal(tok.length % 4, 0);
  });

  test('fresh IVs: the same message never gives the same token', () => {
    const key = generateKey();
    assert.notEqual(encrypt(key, Buffer.from('same')), encrypt(key, Buffer.from('same')));
  });

  test('a token with its padding stripped (as Keystone sends it) still opens', () => {
    const stripped = SPEC_TOKEN.replace(/=+$/, '');
    assert.equal(decrypt([SECRET], stripped)?.toString(), 'hello');
  });

  test('wrong padding or stray characters are rejected, not skipped', () => {
    assert.equal(decrypt([SECRET], SPEC_TOKEN.replace(/==$/, '=')), null);
    assert.equal(decrypt([SECRET], SPEC_TOKEN + '=='), null);
    assert.equal(decrypt([SECRET], SPEC_TOKEN.slice(0, 10) + '.' + SPEC_TOKEN.slice(10)), null);
    assert.ok(SPEC_TOKEN.includes('_'));
    assert.equal(decrypt([SECRET], SPEC_TOKEN.replace(/_/g, '/')), null); // standard base64 alphabet
    assert.equal(decrypt([SECRET], ''), null);
  });

  test('tampering with any field is detected', () => {
    const key = generateKey();
    const tok = encrypt(key, Buffer.from('payload that spans two blocks!!!'));
    const len = Buffer.from(tok, 'base64url').length;
    for (const offset of [0, 1, 8, 9, 24, 25, len - 33, len - 32, len - 1]) {
      assert.equal(decrypt([key], tamper(tok, offset)), null, `bit flip at ${offset}`);
    }
    // Truncations and extensions too.
    assert.equal(decrypt([key], encodeRaw(Buffer.from(tok, 'base64url').subarray(0, len - 16))), null);
    assert.equal(decrypt([key], encodeRaw(Buffer.concat([Buffer.from(tok, 'base64url'), Buffer.alloc(16)]))), null);
  });

  test('wrong key: null, never an exception', () => {
    const tok = encrypt(generateKey(), Buffer.from('secret'));
    assert.equal(decrypt([generateKey()], tok), null);
    assert.equal(decrypt([], tok), null);
  });

  test('a key whose signing half matches but encryption half differs fails cleanly', () => {
    const k = decodeKey(generateKey());
    const other = Buffer.concat([k.subarray(0, 16), Buffer.alloc(16, 7)]);
    const tok = encrypt(k, Buffer.from('some secret message'));
    const out = decrypt([other], tok);
    assert.ok(out === null || !out.equals(Buffer.from('some secret message')));
  });

  test('tries every key, in order', () => {
    const [a, b, c] = [generateKey(), generateKey(), generateKey()];
    const tok = encrypt(c, Buffer.from('from c'));
    assert.equal(decrypt([a, b, c], tok)?.toString(), 'from c');
    assert.equal(decrypt([a, b], tok), null);
  });

  test('TTL: valid up to and including ttl seconds, expired after', () => {
    const key = generateKey();
    const t0 = Date.UTC(2030, 0, 1, 12, 0, 0);
    const tok = encrypt(key, Buffer.from('x'), t0);
    assert.ok(decrypt([key], tok, 60, t0));
    assert.ok(decrypt([key], tok, 60, t0 + 60_000));
    assert.ok(decrypt([key], tok, 60, t0 + 60_999)); // same whole second as the limit
    assert.equal(decrypt([key], tok, 60, t0 + 61_000), null);
    // Without a TTL, age is the caller's business.
    assert.ok(decrypt([key], tok, undefined, t0 + 365 * 86400_000));
  });

  test('TTL: tokens from the future beyond the clock skew are rejected', () => {
    const key = generateKey();
    const t0 = Date.UTC(2030, 0, 1);
    const tok = encrypt(key, Buffer.from('x'), t0 + MAX_CLOCK_SKEW_SECONDS * 1000);
    assert.ok(decrypt([key], tok, 60, t0));
    const later = encrypt(key, Buffer.from('x'), t0 + (MAX_CLOCK_SKEW_SECONDS + 1) * 1000);
    assert.equal(decrypt([key], later, 60, t0), null);
  });

  test('timestamps are whole seconds, big-endian 64-bit', () => {
    const key = generateKey();
    const tok = encrypt(key, Buffer.from('x'), 1_700_000_000_999);
    assert.equal(tokenTimestamp(tok), 1_700_000_000);
    assert.equal(tokenTimestamp(SPEC_TOKEN), ms('1985-10-26T01:20:00-07:00') / 1000);
    // Beyond 2^32 seconds (year 2106) the high word is used.
    const far = encrypt(key, Buffer.from('x'), 2 ** 33 * 1000);
    assert.equal(tokenTimestamp(far), 2 ** 33);
    assert.equal(tokenTimestamp('not a token'), null);
  });

  test('bad keys, IVs and times are programming errors and throw', () => {
    assert.throws(() => encrypt('short', Buffer.from('x')));
    assert.throws(() => encrypt(Buffer.alloc(16), Buffer.from('x')));
    assert.throws(() => encrypt(SECRET, Buffer.from('x'), Date.now(), Buffer.alloc(8)));
    assert.throws(() => encrypt(SECRET, Buffer.from('x'), -1));
    assert.throws(() => decodeKey('%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%='));
  });

  test('generateKey gives 44-character padded base64url keys of 32 bytes', () => {
    const k = generateKey();
    assert.match(k, /^[A-Za-z0-9_-]{43}=$/);
    assert.equal(decodeKey(k).length, 32);
    assert.notEqual(generateKey(), k);
  });
});

function encodeRaw(b: Buffer): string {
  const s = b.toString('base64url');
  return s + '='.repeat((4 - (s.length % 4)) % 4);
}

describe('FernetKeyRepository', () => {
  let root: string;
  const fresh = async (): Promise<string> => {
    root = await mkdtemp(join(tmpdir(), 'stratus-fernet-'));
    return join(root, 'keys');
  };
  const cleanup = async (): Promise<void> => {
    await rm(root, { recursive: true, force: true });
  };
  const files = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();
  const keyText = async (dir: string, name: string): Promise<string> => readFile(join(dir, name), 'utf8');

  test('init creates a 0700 directory with staged key 0 and primary key 1 (0600)', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir);
      await repo.init();
      assert.deepEqual(await files(dir), ['0', '1']);
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      for (const f of ['0', '1']) {
        assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600);
        assert.match(await keyText(dir, f), /^[A-Za-z0-9_-]{43}=$/);
      }
      repo.load();
      assert.deepEqual(repo.primary(), decodeKey(await keyText(dir, '1')));
      assert.equal(repo.all().length, 2);
      assert.deepEqual(repo.all()[1], decodeKey(await keyText(dir, '0')));
      assert.deepEqual(repo.loadedIndices(), [1, 0]);
    } finally {
      await cleanup();
    }
  });

  test('init on an existing repository keeps its keys', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir);
      await repo.init();
      const before = [await keyText(dir, '0'), await keyText(dir, '1')];
      await new FernetKeyRepository(dir).init();
      assert.deepEqual([await keyText(dir, '0'), await keyText(dir, '1')], before);
    } finally {
      await cleanup();
    }
  });

  test('init uses an existing, empty directory', async () => {
    const dir = await fresh();
    try {
      await mkdir(dir);
      const repo = new FernetKeyRepository(dir);
      await repo.init();
      assert.deepEqual(await files(dir), ['0', '1']);
    } finally {
      await cleanup();
    }
  });

  test('init repairs a repository left without a staged key', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir);
      await repo.init();
      await repo.rotate();
      const primary = await keyText(dir, '2');
      await unlink(join(dir, '0'));
      await repo.init();
      assert.deepEqual(await files(dir), ['0', '1', '2']);
      assert.equal(await keyText(dir, '2'), primary);
      assert.deepEqual(repo.primary(), decodeKey(primary));
    } finally {
      await cleanup();
    }
  });

  test('rotate promotes the staged key, stages a new one, and keeps maxActiveKeys', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir, 3);
      await repo.init();
      const staged = await keyText(dir, '0');
      await repo.rotate();
      assert.deepEqual(await files(dir), ['0', '1', '2']);
      assert.equal(await keyText(dir, '2'), staged, 'staged key became primary');
      assert.notEqual(await keyText(dir, '0'), staged, 'a new key is staged');
      assert.deepEqual(repo.primary(), decodeKey(staged));
      assert.deepEqual(repo.loadedIndices(), [2, 1, 0]);
      await repo.rotate();
      assert.deepEqual(await files(dir), ['0', '2', '3'], 'oldest secondary dropped');
      await repo.rotate();
      assert.deepEqual(await files(dir), ['0', '3', '4']);
      assert.equal(repo.all().length, 3);
      assert.equal((await stat(join(dir, '0'))).mode & 0o777, 0o600);
    } finally {
      await cleanup();
    }
  });

  test('a larger maxActiveKeys keeps more secondaries', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir, 5);
      await repo.init();
      for (let i = 0; i < 6; i++) await repo.rotate();
      assert.deepEqual(await files(dir), ['0', '4', '5', '6', '7']);
      assert.deepEqual(repo.loadedIndices(), [7, 6, 5, 4, 0]);
    } finally {
      await cleanup();
    }
  });

  test('tokens stay valid across rotations until their key is dropped', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir, 3);
      await repo.init();
      const tok = encrypt(repo.primary(), Buffer.from('sealed with key 1'));
      await repo.rotate(); // keys 2 (primary), 1, 0
      assert.equal(decrypt(repo.all(), tok)?.toString(), 'sealed with key 1');
      const tok2 = encrypt(repo.primary(), Buffer.from('sealed with key 2'));
      await repo.rotate(); // keys 3, 2, 0: key 1 dropped
      assert.equal(decrypt(repo.all(), tok), null);
      assert.equal(decrypt(repo.all(), tok2)?.toString(), 'sealed with key 2');
      await repo.rotate(); // keys 4, 3, 0
      assert.equal(decrypt(repo.all(), tok2), null);
    } finally {
      await cleanup();
    }
  });

  test('the staged key already opens tokens (another host may have promoted it first)', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir);
      await repo.init();
      const tok = encrypt(await keyText(dir, '0'), Buffer.from('from a host that rotated early'));
      assert.equal(decrypt(repo.all(), tok)?.toString(), 'from a host that rotated early');
    } finally {
      await cleanup();
    }
  });

  test('concurrent rotations are serialised', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir, 4);
      await repo.init();
      await Promise.all([repo.rotate(), repo.rotate()]);
      assert.deepEqual(await files(dir), ['0', '1', '2', '3']);
      const texts = await Promise.all(['0', '1', '2', '3'].map((f) => keyText(dir, f)));
      assert.equal(new Set(texts).size, 4);
    } finally {
      await cleanup();
    }
  });

  test('leaves no temporary files behind', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir);
      await repo.init();
      await repo.rotate();
      assert.ok((await readdir(dir)).every((f) => /^\d+$/.test(f)));
    } finally {
      await cleanup();
    }
  });

  test('reads Keystone-style repositories and ignores non-key files', async () => {
    const dir = await fresh();
    try {
      await mkdir(dir, { mode: 0o700 });
      await writeFile(join(dir, '0'), generateKey(), { mode: 0o600 });
      await writeFile(join(dir, '7'), SECRET + '\n', { mode: 0o600 });
      await writeFile(join(dir, '3'), generateKey(), { mode: 0o600 });
      await writeFile(join(dir, 'README'), 'not a key');
      await writeFile(join(dir, '.7.tmp'), 'junk');
      const repo = new FernetKeyRepository(dir);
      repo.load();
      assert.deepEqual(repo.loadedIndices(), [7, 3, 0]);
      assert.deepEqual(repo.primary(), decodeKey(SECRET));
      assert.equal(decrypt(repo.all(), SPEC_TOKEN)?.toString(), 'hello');
      await repo.rotate();
      assert.deepEqual(await files(dir), ['.7.tmp', '0', '7', '8', 'README']);
    } finally {
      await cleanup();
    }
  });

  test('a corrupt key file fails load loudly', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir);
      await repo.init();
      await writeFile(join(dir, '1'), 'garbage');
      assert.throws(() => repo.load(), /Invalid Fernet key file .*1/);
    } finally {
      await cleanup();
    }
  });

  test('primary() before any keys are loaded throws; all() is empty', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir);
      assert.throws(() => repo.primary(), /no keys/);
      assert.deepEqual(repo.all(), []);
    } finally {
      await cleanup();
    }
  });

  test('all() is a frozen shared array', async () => {
    const dir = await fresh();
    try {
      const repo = new FernetKeyRepository(dir);
      await repo.init();
      assert.equal(repo.all(), repo.all());
      assert.ok(Object.isFrozen(repo.all()));
    } finally {
      await cleanup();
    }
  });

  test('maxActiveKeys below 2 is refused', () => {
    assert.throws(() => new FernetKeyRepository('/nonexistent', 1), RangeError);
    assert.throws(() => new FernetKeyRepository('/nonexistent', 2.5), RangeError);
  });
});
