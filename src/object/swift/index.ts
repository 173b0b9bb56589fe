/**
 * Swift-compatible Object Storage API v1 (see README.md here).
 *
 * ```ts
 * const swift = mountSwift(app, { store, policy, validator, log, prefix: '/object' });
 * swift.startExpirer(30_000);
 * ```
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SwiftApi, type SwiftApiOptions } from './api.js';
import { ApiError } from '../../core/errors.js';
import { errorBody, transId } from './http.js';

export { SwiftApi, type SwiftApiOptions } from './api.js';
export { objectPolicies } from './policies.js';
export * as largeObjects from './large-objects.js';

export interface SwiftMount {
  api: SwiftApi;
  /** Runs the engine's expirer (`expireOnce`) every `intervalMs`; stopped by `stop()`. */
  startExpirer(intervalMs: number): void;
  stop(): void;
}

const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'COPY'] as const;

/**
 * Mounts the API at `<prefix>/v1/*` and `/info` + `<prefix>/info` on `app`.
 * Request bodies are never parsed: a parser scoped to this plugin hands the
 * raw stream to the handlers for every content type, so a 5 GiB PUT streams
 * into the engine (no body limit applies; the engine enforces the object
 * size limit).
 */
export function mountSwift(app: FastifyInstance, opts: SwiftApiOptions): SwiftMount {
  const api = new SwiftApi(opts);
  if (!app.supportedMethods.includes('COPY')) app.addHttpMethod('COPY', { hasBody: true });
  const info = async () => api.info();
  app.get('/info', info);
  app.get(`${opts.prefix}/info`, info);
  // Swift's healthcheck middleware: 200 "OK" while the store is open (load balancers probe it).
  const health = async (req: FastifyRequest, reply: FastifyReply) => {
    reply.header('X-Trans-Id', transId(req)).header('Content-Type', 'text/plain');
    if (!opts.store.isOpen) return reply.code(503).send('DISABLED');
    return reply.send('OK');
  };
  app.get('/healthcheck', health);
  app.get(`${opts.prefix}/healthcheck`, health);
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    // Errors raised by Fastify itself inside this scope (e.g. a malformed
    // Content-Type) get Swift's plain bodies too.
    scope.setErrorHandler(async (err: Error & { statusCode?: number }, req, reply) => {
      const status = err instanceof ApiError ? err.status : err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) opts.log.error({ err, reqId: req.id, url: req.url }, 'swift request failed');
      const { body, type } = errorBody(status, status === 500 ? 'An error occurred' : err.message);
      reply.code(status).header('Content-Type', type);
      return req.method === 'HEAD' ? reply.send() : body;
    });
    scope.route({
      method: [...METHODS],
      url: `${opts.prefix}/v1/*`,
      exposeHeadRoute: false,
      handler: (req, reply) => api.handle(req, reply),
    });
  });
  let timer: NodeJS.Timeout | null = null;
  let running = false;
  return {
    api,
    startExpirer(intervalMs) {
      if (timer) return;
      timer = setInterval(() => {
        if (running) return;
        running = true;
        opts.store
          .expireOnce()
          .catch((e: unknown) => opts.log.error({ err: e }, 'object expirer pass failed'))
          .finally(() => (running = false));
      }, intervalMs).unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
