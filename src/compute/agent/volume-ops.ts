import type { Bus, Json } from '../../core/bus.js';
import type { Logger } from '../../core/log.js';
import { DETACH_TIMEOUT_S, type ComputeDriver } from '../drivers/driver.js';

/**
 * The volume side of a host's compute agent, on its own bus topic
 * `compute-volumes.<host>` (so it stays apart from the instance lifecycle
 * handlers): hot-plug, hot-unplug and live extend of volumes through the
 * driver's QMP functions. The driver serialises work per instance.
 *
 * - `attach_volume {instanceId, volumeId, path, format}` → `{device}` (e.g. `vdb`)
 * - `detach_volume {instanceId, volumeId, timeoutS?}` → waits until the guest released it
 * - `extend_volume {instanceId, volumeId, newBytes}` → QMP block_resize under the running guest
 */
export function serveVolumeOps(bus: Bus, driver: ComputeDriver, host: string, log: Logger): () => void {
  return bus.serve(`compute-volumes.${host}`, {
    attach_volume: async (a: Json) => {
      const x = a as { instanceId: string; volumeId: string; path: string; format: 'qcow2' | 'raw' };
      const device = await driver.attachVolume(x.instanceId, { volumeId: x.volumeId, path: x.path, format: x.format, serial: x.volumeId.slice(0, 20) });
      log.info({ instance: x.instanceId, volume: x.volumeId, device }, 'volume attached');
      return { device };
    },
    detach_volume: async (a: Json) => {
      const x = a as { instanceId: string; volumeId: string; timeoutS?: number };
      await driver.detachVolume(x.instanceId, x.volumeId, { timeoutS: x.timeoutS ?? DETACH_TIMEOUT_S });
      log.info({ instance: x.instanceId, volume: x.volumeId }, 'volume detached');
      return true;
    },
    extend_volume: async (a: Json) => {
      const x = a as { instanceId: string; volumeId: string; newBytes: number };
      await driver.extendVolume(x.instanceId, x.volumeId, x.newBytes);
      return true;
    },
  });
}
