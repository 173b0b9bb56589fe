import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import type { Logger } from '../../core/log.js';

/**
 * The serial console proxy (Nova's nova-serialproxy): a console URL carries
 * a one-time token that maps to an instance; the websocket is then spliced to
 * the guest's serial console socket. Tokens live in memory for 10 minutes.
 * The socket path is on this host's disk, so this proxy serves the
 * instances of the host it runs on (the all-in-one cloud).
 */
export class SerialConsoleProxy {
  private tokens = new Map<string, { instanceId: string; expires: number }>();
  constructor(
    private readonly instancesDir: string,
    private readonly publicBase: string,
    private readonly log: Logger,
  ) {}

  /** A fresh console URL for an instance. */
  issue(instanceId: string): string {
    const now = Date.now();
    for (const [k, v] of this.tokens) if (v.expires < now) this.tokens.delete(k);
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(token, { instanceId, expires: now + 10 * 60_000 });
    return `${this.publicBase.replace(/^http/, 'ws')}/compute/serial-console?token=${token}`;
  }

  async register(app: FastifyInstance): Promise<void> {
    await app.register(websocket);
    app.get('/compute/serial-console', { websocket: true }, (socket, req) => {
      const token = (req.query as Record<string, string | undefined>).token ?? '';
      const entry = this.tokens.get(token);
      this.tokens.delete(token);
      const path = entry ? join(this.instancesDir, entry.instanceId, 'console.sock') : '';
      if (!entry || entry.expires < Date.now() || !existsSync(path)) {
        socket.close(4401, 'invalid or expired console token');
        return;
      }
      const conn = connect(path);
      conn.on('data', (d) => socket.send(d));
      conn.on('close', () => socket.close());
      conn.on('error', (e) => {
        this.log.warn({ err: e, instance: entry.instanceId }, 'serial console socket error');
        socket.close(1011, 'console unavailable');
      });
      socket.on('message', (d: Buffer) => conn.write(d));
      socket.on('close', () => conn.end());
    });
  }
}
