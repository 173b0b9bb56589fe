import type { AuthContext } from '../../core/context.js';

/** An image as Nova's image proxy shows it (the image service fills it in). */
export interface ProxyImage {
  id: string;
  name: string | null;
  status: string;
  minDisk: number;
  minRam: number;
  size: number | null;
  createdAt: number;
  updatedAt: number;
  properties: Record<string, string>;
}

/**
 * What compute needs from the image service (in process; over the bus in a
 * scale-out cloud). Kept narrow so compute does not depend on Glance's shape.
 */
export interface ImagePort {
  getImageForBoot(ctx: AuthContext, id: string): Promise<{
    id: string; name?: string; status: string; diskFormat: string; minDisk: number; minRam: number; size?: number;
    properties: Record<string, unknown>; localPath: string;
  }>;
  createImageFromFile(ctx: AuthContext, input: { name: string; diskFormat: string; path: string; properties: Record<string, string> }): Promise<{ id: string }>;
  /** Registers an image record in `queued` state before its data exists (Nova's snapshot flow). */
  reserveImage?(ctx: AuthContext, input: { name: string; properties: Record<string, string> }): Promise<{ id: string }>;
  /** What Nova's deprecated image proxy (`/images`) shows: the images `ctx` may see. */
  listImages?(ctx: AuthContext, limit: number, marker?: string): Promise<ProxyImage[]>;
  showImage?(ctx: AuthContext, id: string): Promise<ProxyImage>;
  /** Removes an image reserved for a snapshot that failed. */
  deleteImage?(ctx: AuthContext, id: string): Promise<void>;
}
