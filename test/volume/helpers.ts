/**
 * Block storage test harness: the compute harness (in-process cloud, fake
 * compute driver) plus the real volume service with the real qcow2 driver
 * on the temp data dir (qemu-img on small files is fast), and helpers for
 * the Cinder v3 API.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startComputeCloud, waitFor, sleep, type ComputeCloud, type Member } from '../compute/helpers.js';
import type { HttpMethod, InjectOptions, InjectResponse } from '../helpers/inproc.js';
import type { VolumeSubsystem } from '../../src/volume/index.js';

export { waitFor, sleep };

export interface VolumeCloud extends ComputeCloud {
  vol: VolumeSubsystem;
  /** Cinder request as `m` (path relative to /volume/v3/{m's project}). */
  v(m: Member, method: HttpMethod, path: string, opts?: InjectOptions & { mv?: string }): Promise<InjectResponse>;
  /** POST /volumes as `m`, asserting 202, then waits for `available`. */
  createVolume(m: Member, body?: Record<string, unknown>, wait?: string): Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Polls GET /volumes/{id} until its status is `status`. */
  waitVolume(m: Member, id: string, status: string, timeoutMs?: number): Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  waitVolumeGone(m: Member, id: string): Promise<void>;
  /** A small qcow2 image in the image service (public), returns its id. */
  image(): Promise<string>;
  /** Row counts of the volume tables, for "nothing changed" checks. */
  snapshotRows(): Promise<Record<string, number>>;
}

let imageId: string | null = null;

export async function startVolumeCloud(): Promise<VolumeCloud> {
  const c = await startComputeCloud();
  const vol = c.cloud.volume;
  assert.ok(vol, 'the volume service runs');
  const v = (m: Member, method: HttpMethod, path: string, o: InjectOptions & { mv?: string } = {}) =>
    c.inject(method, `/volume/v3/${m.projectId}${path}`, { ...o, token: o.token ?? m.token, headers: { ...(o.headers ?? {}), ...(o.mv ? { 'openstack-api-version': `volume ${o.mv}` } : {}) } });
  const waitVolume = async (m: Member, id: string, status: string, timeoutMs = 20_000) =>
    waitFor(`volume ${id} ${status}`, async () => {
      const r = await v(m, 'GET', `/volumes/${id}`);
      assert.equal(r.status, 200, r.text);
      if (r.json.volume.status.startsWith('error') && !status.startsWith('error')) throw new Error(`volume went ${r.json.volume.status}`);
      return r.json.volume.status === status ? r.json.volume : undefined;
    }, timeoutMs, 20);
  imageId = null;
  const out: VolumeCloud = Object.assign(c, {
    vol,
    v,
    waitVolume,
    async waitVolumeGone(m: Member, id: string) {
      await waitFor(`volume ${id} gone`, async () => (await v(m, 'GET', `/volumes/${id}`)).status === 404, 20_000, 20);
    },
    async createVolume(m: Member, body: Record<string, unknown> = {}, wait = 'available') {
      const r = await v(m, 'POST', '/volumes', { body: { volume: { size: 1, ...body } } });
      assert.equal(r.status, 202, r.text);
      return wait ? waitVolume(m, r.json.volume.id, wait) : r.json.volume;
    },
    async image() {
      if (imageId) return imageId;
      const dir = mkdtempSync(join(tmpdir(), 'stratus-volimg-'));
      try {
        const f = join(dir, 'img.qcow2');
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', f, String(64 * 1024 * 1024)]);
        execFileSync('qemu-io', ['-c', 'write -P 0x5a 0 1M', f]);
        const token = await c.adminToken();
        const cr = await c.inject('POST', '/image/v2/images', { token, body: { name: 'volimg', disk_format: 'qcow2', container_format: 'bare', visibility: 'public', os_distro: 'stratus' } });
        assert.equal(cr.status, 201, cr.text);
        const up = await c.inject('PUT', `/image/v2/images/${cr.json.id}/file`, { token, body: readFileSync(f), headers: { 'content-type': 'application/octet-stream' } });
        assert.equal(up.status, 204, up.text);
        imageId = cr.json.id as string;
        return imageId;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    async snapshotRows() {
      const out: Record<string, number> = {};
      for (const t of ['cinder_volumes', 'cinder_snapshots', 'cinder_backups', 'cinder_attachments', 'cinder_transfers', 'cinder_volume_types']) out[t] = await c.count(t);
      const rows = await c.cloud.database.db.selectFrom('cinder_volumes').select(['id', 'status', 'size', 'deleted']).orderBy('id').execute();
      out.state = rows.map((r: { id: string; status: string; size: number; deleted: number }) => `${r.id}:${r.status}:${r.size}:${r.deleted}`).join(',').length;
      return out;
    },
  });
  return out;
}

/** The content of a volume's file at `offset` (qemu-io read -P check). */
export function volumeHasPattern(path: string, pattern: number, offset: string, len = '64k'): boolean {
  try {
    const out = execFileSync('qemu-io', ['-U', '-r', '-c', `read -P 0x${pattern.toString(16)} ${offset} ${len}`, path]).toString();
    return /read \d+\/\d+ bytes/.test(out) && !/Pattern verification failed/.test(out);
  } catch {
    return false;
  }
}
