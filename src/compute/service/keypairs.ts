import { createHash, generateKeyPairSync } from 'node:crypto';
import type { Kysely } from 'kysely';
import { badRequest, conflict, notFound } from '../../core/errors.js';
import type { ComputeTables } from '../store/tables.js';
import type { QuotaEngine } from '../../core/quota.js';

export interface Keypair { name: string; type: string; public_key: string; fingerprint: string; user_id: string; created_at: number; private_key?: string }

/** Nova's fingerprint: MD5 of the decoded key blob, colon-separated hex. */
function fingerprintOf(publicKey: string): string {
  const parts = publicKey.trim().split(/\s+/);
  if (parts.length < 2 || !/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521))$/.test(parts[0]!)) throw badRequest('Keypair data is invalid: failed to parse the public key (ssh-rsa, ssh-ed25519, ecdsa-sha2-* are accepted).', );
  const blob = Buffer.from(parts[1]!, 'base64');
  if (blob.length < 20) throw badRequest('Keypair data is invalid: the key is too short.');
  // The blob starts with the key type as a length-prefixed string; it must match.
  const tlen = blob.readUInt32BE(0);
  if (blob.subarray(4, 4 + tlen).toString() !== parts[0]) throw badRequest('Keypair data is invalid: the key type does not match its data.');
  return createHash('md5').update(blob).digest('hex').match(/../g)!.join(':');
}

/** Encodes an RSA public key in OpenSSH format from its JWK. */
function sshRsa(jwk: { n: string; e: string }): string {
  const str = (b: Buffer) => {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(b.length);
    return Buffer.concat([l, b]);
  };
  const mpint = (b64: string) => {
    let b = Buffer.from(b64, 'base64url');
    if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return str(b);
  };
  return 'ssh-rsa ' + Buffer.concat([str(Buffer.from('ssh-rsa')), mpint(jwk.e), mpint(jwk.n)]).toString('base64');
}

export class KeypairService {
  constructor(private readonly db: Kysely<ComputeTables>, private readonly quota: QuotaEngine) {}

  async list(userId: string): Promise<Keypair[]> {
    return this.db.selectFrom('nova_keypairs').selectAll().where('user_id', '=', userId).orderBy('name').execute();
  }
  async get(userId: string, name: string): Promise<Keypair> {
    const k = await this.db.selectFrom('nova_keypairs').selectAll().where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
    if (!k) throw notFound(`Keypair ${name} not found for user ${userId}`);
    return k;
  }
  /** Imports `publicKey`, or generates an RSA pair and returns the private key once. */
  /** `projectId`: the caller's project, whose key_pairs limit applies (counted per user, as Nova does). */
  async create(userId: string, name: string, publicKey?: string, type = 'ssh', projectId: string | null = null): Promise<Keypair> {
    if (!/^[a-zA-Z0-9 _.@-]{1,255}$/.test(name) || name.trim() !== name) throw badRequest('Keypair data is invalid: Keypair name contains unsafe characters');
    let privateKey: string | undefined;
    let pub = publicKey?.trim();
    if (!pub) {
      const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      privateKey = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
      pub = sshRsa(pair.publicKey.export({ format: 'jwk' }) as { n: string; e: string }) + ` Generated-by-Stratus`;
    }
    const fingerprint = fingerprintOf(pub);
    const row = { user_id: userId, name, type, public_key: pub, fingerprint, created_at: Date.now() };
    // key_pairs quota is per user in Nova; we count per user id, with the limit of the caller's project.
    if (projectId) await this.quota.setLimit(`user:${userId}`, 'key_pairs', (await this.quota.limits(projectId, ['key_pairs'])).key_pairs!);
    await this.quota.withReservation(`user:${userId}`, { key_pairs: 1 }, async () => {
      if (await this.db.selectFrom('nova_keypairs').select('name').where('user_id', '=', userId).where('name', '=', name).executeTakeFirst())
        throw conflict(`Key pair '${name}' already exists.`);
      await this.db.insertInto('nova_keypairs').values(row).execute();
    });
    return { ...row, ...(privateKey ? { private_key: privateKey } : {}) };
  }
  async delete(userId: string, name: string): Promise<void> {
    await this.get(userId, name);
    await this.db.deleteFrom('nova_keypairs').where('user_id', '=', userId).where('name', '=', name).execute();
    await this.quota.release(`user:${userId}`, { key_pairs: 1 });
  }
}
