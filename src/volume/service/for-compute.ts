import type { AuthContext } from '../../core/context.js';
import { ApiError, badRequest } from '../../core/errors.js';
import { bool } from '../../core/db.js';
import type { VolumeService } from './volumes.js';

/**
 * The volume service as compute sees it (structurally compute's
 * `ComputeVolumePort`, kept free of compute imports): Nova's calls into
 * Cinder — reserve, connect, complete, release, begin/roll detaching,
 * attachments of an instance, volumes for block_device_mapping_v2.
 */
export class VolumePortForCompute {
  constructor(private readonly svc: VolumeService) {}

  async getVolume(ctx: AuthContext, id: string) {
    const v = await this.svc.get(id, ctx, false);
    return { id: v.id, status: v.status, size: v.size, bootable: bool(v.bootable), multiattach: bool(v.multiattach), projectId: v.project_id, imageMetadata: JSON.parse(v.image_metadata) as Record<string, string> };
  }

  async reserve(ctx: AuthContext, volumeId: string, instanceId: string, opts: { deleteOnTermination?: boolean } = {}) {
    const v = await this.svc.get(volumeId, ctx, false);
    const a = await this.svc.reserveAttachment(ctx, v, { instanceUuid: instanceId, deleteOnTermination: opts.deleteOnTermination });
    return { attachmentId: a.id };
  }

  async connect(attachmentId: string, host: string) {
    const a = await this.svc.getAttachment(attachmentId, null, true);
    const { connection } = await this.svc.connectAttachment(a, { host, platform: 'x86_64', os_type: 'linux', multipath: false });
    return { path: connection.data.device_path, format: connection.data.format };
  }

  async complete(attachmentId: string, device: string) {
    const a = await this.svc.getAttachment(attachmentId, null, true);
    await this.svc.completeAttachment(a, device);
  }

  async release(attachmentId: string) {
    const a = await this.svc.getAttachment(attachmentId, null, true).catch(() => null);
    if (a) await this.svc.removeAttachment(a);
  }

  async beginDetach(volumeId: string) {
    await this.svc.beginDetaching(await this.svc.get(volumeId, null, true));
  }

  async rollDetach(volumeId: string) {
    await this.svc.rollDetaching(await this.svc.get(volumeId, null, true));
  }

  async listForInstance(instanceId: string) {
    return (await this.svc.attachmentsOfInstance(instanceId)).map((a) => ({
      attachmentId: a.id, volumeId: a.volume_id, device: a.mountpoint, status: a.attach_status, deleteOnTermination: bool(a.delete_on_termination),
    }));
  }

  /** Creates a volume and waits (bounded) until it is available: qcow2 overlays take well under a second. */
  async createVolume(ctx: AuthContext, input: { size?: number; imageRef?: string; snapshotId?: string; name: string }) {
    const row = await this.svc.create(ctx, { size: input.size ?? null, name: input.name || null, imageRef: input.imageRef ?? null, snapshot_id: input.snapshotId ?? null });
    const end = Date.now() + 300_000;
    for (;;) {
      const v = await this.svc.db.selectFrom('cinder_volumes').select(['status', 'fault']).where('id', '=', row.id).executeTakeFirstOrThrow();
      if (v.status === 'available') return { id: row.id };
      if (v.status === 'error') {
        await this.deleteVolume(row.id).catch(() => undefined);
        throw badRequest(`Block Device Mapping is Invalid: volume ${row.id} did not finish creating: ${v.fault ?? 'error'}.`);
      }
      if (Date.now() > end) throw new ApiError(500, `Volume ${row.id} did not become available in time.`, 'VolumeNotCreated');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async deleteVolume(id: string) {
    const v = await this.svc.get(id, null, true);
    await this.svc.delete(v, { cascade: true });
  }
}
