import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Serves the web dashboard (the built single-page app in `dist/dashboard/www`,
 * made by `./stratus` from `dashboard/`) on the main listener:
 *   GET /                 → the app's index.html
 *   GET /dashboard/...    → the app's files (hashed assets cached for a year)
 * The app only talks to the public APIs with the signed-in user's token, so
 * nothing here touches a service. Paths stay off every API prefix
 * (/identity, /compute, /image, /networking, /volume, /object, /info, /healthz).
 *
 * Files are read once and kept in memory with a gzip copy: the whole app is a
 * few hundred kilobytes, and a per-request read + compress would cost more.
 */
export const DASHBOARD_PREFIX = '/dashboard';

/** Where `./stratus` puts the built app; the same relative path from src/ and dist/. */
export const DEFAULT_DASHBOARD_DIR = resolve(import.meta.dirname, '..', '..', 'dist', 'dashboard', 'www');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg', '.txt', '.map']);

interface CachedFile {
  body: Buffer;
  gz: Buffer | null;
  type: string;
  mtimeMs: number;
}

/**
 * The app's content security policy: scripts and styles only from this
 * origin; API calls and the serial console websocket to this origin.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

export function registerDashboard(app: FastifyInstance, opts: { dir?: string } = {}): void {
  const root = opts.dir ?? DEFAULT_DASHBOARD_DIR;
  const cache = new Map<string, CachedFile>();

  async function load(rel: string): Promise<CachedFile | null> {
    const abs = normalize(join(root, rel));
    if (abs !== root && !abs.startsWith(root + sep)) return null;
    let st;
    try {
      st = await stat(abs);
    } catch {
      return null;
    }
    if (!st.isFile()) return null;
    const hit = cache.get(abs);
    // A rebuild while running replaces files: the mtime tells.
    if (hit && hit.mtimeMs === st.mtimeMs) return hit;
    const body = await readFile(abs);
    const ext = extname(abs).toLowerCase();
    const file: CachedFile = {
      body,
      gz: COMPRESSIBLE.has(ext) && body.length > 512 ? gzipSync(body, { level: 9 }) : null,
      type: TYPES[ext] ?? 'application/octet-stream',
      mtimeMs: st.mtimeMs,
    };
    cache.set(abs, file);
    return file;
  }

  function send(req: FastifyRequest, reply: FastifyReply, file: CachedFile, immutable: boolean) {
    reply.header('content-type', file.type);
    reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('vary', 'accept-encoding');
    if (file.type.startsWith('text/html')) {
      reply.header('content-security-policy', CSP);
      reply.header('x-frame-options', 'DENY');
      reply.header('referrer-policy', 'same-origin');
    }
    const accepts = String(req.headers['accept-encoding'] ?? '');
    if (file.gz && /\bgzip\b/.test(accepts)) {
      reply.header('content-encoding', 'gzip');
      return reply.send(file.gz);
    }
    return reply.send(file.body);
  }

  async function index(req: FastifyRequest, reply: FastifyReply) {
    const file = await load('index.html');
    if (!file) {
      reply.code(503).header('content-type', 'text/plain; charset=utf-8');
      return reply.send('The dashboard has not been built. Run ./stratus up (it builds dashboard/ into dist/dashboard/www).\n');
    }
    return send(req, reply, file, false);
  }

  app.get('/', index);
  app.get(DASHBOARD_PREFIX, index);
  app.get(`${DASHBOARD_PREFIX}/*`, async (req, reply) => {
    let rel: string;
    try {
      rel = decodeURIComponent((req.params as { '*': string })['*'] ?? '');
    } catch {
      rel = '\0';
    }
    if (rel === '' || rel === 'index.html') return index(req, reply);
    const file = await load(rel);
    if (!file) {
      reply.code(404).header('content-type', 'text/plain; charset=utf-8');
      return reply.send('Not Found\n');
    }
    // Vite names every built asset after its content hash.
    return send(req, reply, file, rel.startsWith('assets/'));
  });
}
