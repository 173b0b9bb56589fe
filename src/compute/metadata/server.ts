import { createServer, type Server } from 'node:http';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Kysely } from 'kysely';
import type { Bus } from '../../core/bus.js';
import type { Logger } from '../../core/log.js';
import { bool } from '../../core/db.js';
import type { ComputeTables, EmbeddedFlavor, InstanceRow } from '../store/tables.js';
import type { InstancePort } from '../../network/protocol.js';
import { NetworkClient, networkDataOf } from '../service/network.js';
import { sanitizeHostname } from '../service/names.js';
import { answer, type InstanceMetadata } from './metadata.js';

/**
 * Nova's metadata API for guests. The network agent runs a proxy at
 * 169.254.169.254:80 in each router and DHCP namespace; it forwards every
 * request to this unix socket with the guest's address (`X-Forwarded-For`)
 * and where it came from (`X-Stratus-Router-Id` or `X-Stratus-Network-Id`).
 * The network service names the port behind that address, and so the
 * instance: a guest only ever sees its own metadata.
 */
export class MetadataServer {
  private server: Server | null = null;
  private readonly net: NetworkClient;
  constructor(
    private readonly db: Kysely<ComputeTables>,
    private readonly bus: Bus,
    private readonly socketPath: string,
    private readonly log: Logger,
  ) {
    this.net = new NetworkClient(bus);
  }

  async start(): Promise<void> {
    mkdirSync(dirname(this.socketPath), { recursive: true, mode: 0o700 });
    rmSync(this.socketPath, { force: true });
    this.server = createServer((req, res) => {
      void this.handle(req.method ?? 'GET', req.url ?? '/', req.headers).then(
        (r) => {
          res.writeHead(r.status, { 'content-type': r.type, 'content-length': Buffer.byteLength(r.body) });
          res.end(req.method === 'HEAD' ? undefined : r.body);
        },
        (e: unknown) => {
          this.log.error({ err: e }, 'metadata request failed');
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('500 Internal Server Error\n');
        },
      );
    });
    await new Promise<void>((res, rej) => {
      this.server!.once('error', rej);
      this.server!.listen(this.socketPath, () => res());
    });
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((res) => this.server!.close(() => res()));
    this.server = null;
    rmSync(this.socketPath, { force: true });
  }

  /** Answers one proxied request (exported for tests). */
  async handle(method: string, url: string, headers: Record<string, string | string[] | undefined>): Promise<{ status: number; type: string; body: string | Buffer }> {
    const text = (status: number, body: string) => ({ status, type: 'text/plain; charset=utf-8', body });
    if (method !== 'GET' && method !== 'HEAD') return text(405, '405 Method Not Allowed\n');
    const h = (k: string) => {
      const v = headers[k];
      return Array.isArray(v) ? v[0] : v;
    };
    const ip = h('x-forwarded-for')?.split(',')[0]?.trim();
    const routerId = h('x-stratus-router-id');
    const networkId = h('x-stratus-network-id');
    if (!ip || (!routerId && !networkId)) return text(400, '400 Bad Request\n\nX-Forwarded-For and a router or network id are required.\n');
    const found = (await this.bus.call('network', 'lookup_instance', { ip, ...(routerId ? { router_id: routerId } : { network_id: networkId ?? null }) }, { timeoutMs: 10_000 })) as { instance_id: string | null };
    if (!found?.instance_id) return text(404, '404 Not Found\n\nNo instance has this address.\n');
    const row = await this.db.selectFrom('nova_instances').selectAll().where('id', '=', found.instance_id).executeTakeFirst();
    if (!row || bool(row.deleted)) return text(404, '404 Not Found\n\nNo instance has this address.\n');
    const ports = await this.net.instancePorts(row.id);
    return answer(url, instanceMetadata(row, ports));
  }
}

/** What a guest sees about itself, from its database row and ports. */
export function instanceMetadata(row: InstanceRow, ports: InstancePort[]): InstanceMetadata {
  const keys = row.key_data ? [JSON.parse(row.key_data) as { name: string; type: string; data: string }] : [];
  const flavor = JSON.parse(row.flavor) as EmbeddedFlavor;
  const v4 = ports.flatMap((p) => p.fixed_ips.filter((f) => f.version === 4).map((f) => ({ p, f })));
  return {
    uuid: row.id, name: row.name, hostname: sanitizeHostname(row.name, `server-${row.id.slice(0, 8)}`), projectId: row.project_id,
    availabilityZone: row.availability_zone, launchIndex: row.launch_index, meta: JSON.parse(row.metadata) as Record<string, string>, keys,
    userData: row.user_data ? Buffer.from(row.user_data, 'base64') : null, networkData: networkDataOf(ports), instanceType: flavor.name,
    ...(v4[0] ? { localIpv4: v4[0].f.ip_address, mac: v4[0].p.mac_address } : {}),
    ...(v4[0]?.f.floating_ips[0] ? { publicIpv4: v4[0].f.floating_ips[0] } : {}),
    amiId: `ami-${row.image_id.replace(/-/g, '').slice(0, 8)}`, reservationId: row.reservation_id,
  };
}
