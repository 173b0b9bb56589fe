import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type HTTPMethods,
} from 'fastify';
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { Static, TSchema } from '@sinclair/typebox';
import { ApiError, renderError, type ErrorFormat } from './errors.js';
import { requestId } from './ids.js';
import type { Logger } from './log.js';
import { decide, type AuthContext, type TokenValidator } from './context.js';
import type { PolicyEngine } from './policy.js';

const Ajv = AjvModule.default ?? AjvModule;

declare module 'fastify' {
  interface FastifyRequest {
    /** The validated caller, or null (no token, or an invalid one). */
    auth: AuthContext | null;
    /** Set when the route's policy rule has been enforced (fail-closed check). */
    policyChecked: boolean;
    /** Why authentication failed, for the 401 message. */
    authError: string | null;
  }
  interface FastifyContextConfig {
    stratus?: { public: boolean; errors: number[]; format: ErrorFormat; policy: string | null };
  }
}

export type ApiRequest<B = unknown, Q = unknown, P = unknown> = FastifyRequest<{
  Body: B;
  Querystring: Q;
  Params: P;
}>;

/**
 * One route's whole contract in one place: method, path, policy rule (null =
 * public), request schemas, success status and the error statuses it may
 * answer with. The framework validates, authenticates and enforces the policy
 * before the handler runs, so a handler cannot forget to.
 */
export interface RouteDef<B extends TSchema | undefined = undefined, Q extends TSchema | undefined = undefined, P extends TSchema | undefined = undefined> {
  method: HTTPMethods | HTTPMethods[];
  url: string;
  /** Policy rule to enforce, or null for a public route (no token needed). */
  policy: string | null;
  /** Builds the policy target (may load the resource; may throw 404). */
  target?: (req: ApiRequest<Sv<B>, Sv<Q>, Sv<P>>) => Promise<Record<string, unknown>> | Record<string, unknown>;
  body?: B;
  query?: Q;
  params?: P;
  /** Success status (default 200). */
  status?: number;
  /** Error statuses this route may produce besides 400/401/403/413/415. */
  errors?: number[];
  /** Leave the body unparsed: the handler reads `req.raw` as a stream. */
  rawBody?: boolean;
  bodyLimit?: number;
  handler: (req: ApiRequest<Sv<B>, Sv<Q>, Sv<P>>, reply: FastifyReply) => Promise<unknown> | unknown;
}
type Sv<T> = T extends TSchema ? Static<T> : Record<string, string | undefined>;

/** Identity function that gives the handler its request types from the schemas. */
export function defineRoute<B extends TSchema | undefined = undefined, Q extends TSchema | undefined = undefined, P extends TSchema | undefined = undefined>(
  def: RouteDef<B, Q, P>,
): RouteDef<B, Q, P> {
  return def;
}

export interface AppOptions {
  log: Logger;
  maxJsonBodyBytes: number;
  validator: TokenValidator;
  policy: PolicyEngine;
}

export interface ServiceMount {
  prefix: string;
  format: ErrorFormat;
  /** Extra response headers (e.g. Nova's microversion headers) added by the service. */
  routes: RouteDef<any, any, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Runs first on every route of the service (e.g. microversion negotiation); may throw an ApiError. */
  onRequest?: (req: FastifyRequest, reply: FastifyReply) => void;
}

// Request bodies are validated strictly (a wrong type is a 400, never coerced);
// query strings and path params are strings on the wire and are coerced.
const bodyAjv = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: false, removeAdditional: false, strict: false });
const queryAjv = new Ajv({ allErrors: false, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false });

function describeAjvError(e: ErrorObject, part: string): string {
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const field = (e.params as { missingProperty?: string; additionalProperty?: string }).missingProperty ??
    (e.params as { additionalProperty?: string }).additionalProperty ?? path;
  if (e.keyword === 'required') return `Invalid input for field '${field}': '${field}' is a required property`;
  if (e.keyword === 'additionalProperties')
    return `Invalid input for field '${path || part}': Additional properties are not allowed ('${field}' was unexpected)`;
  return `Invalid input for field '${path || part}': ${e.message ?? 'is invalid'}`;
}

/** Builds the one HTTP app that serves every API under its path prefix. */
export function createApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: opts.maxJsonBodyBytes,
    genReqId: (req) => {
      const given = req.headers['x-openstack-request-id'];
      return typeof given === 'string' && /^req-[0-9a-f-]{36}$/.test(given) ? given : requestId();
    },
    // Trailing slashes are common in OpenStack clients (/v3/, /v2.0/networks/).
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 1024 },
    return503OnClosing: true,
    forceCloseConnections: true,
  });

  app.setValidatorCompiler(({ schema, httpPart }) => {
    const fn: ValidateFunction = (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema);
    return (data: unknown) => (fn(data) ? { value: data } : { error: fn.errors as unknown as Error });
  });
  app.setSchemaErrorFormatter((errors, dataVar) => {
    const e = errors[0] as unknown as ErrorObject;
    return new ApiError(400, describeAjvError(e, dataVar), 'ValidationError');
  });

  // JSON bodies: an empty body is no body, not a parse error.
  app.removeAllContentTypeParsers();
  const jsonParser = (_req: FastifyRequest, body: string, done: (e: Error | null, v?: unknown) => void) => {
    if (body === '' || body.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body));
    } catch {
      done(new ApiError(400, 'Malformed request body: the body is not valid JSON.', 'MalformedRequestBody'));
    }
  };
  app.addContentTypeParser('application/json', { parseAs: 'string' }, jsonParser);
  app.addContentTypeParser(/^application\/[a-z0-9.+-]*json/, { parseAs: 'string' }, jsonParser);
  // Every other media type (image data, objects) is left as a stream for the handler.
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  app.decorateRequest('auth', null);
  app.decorateRequest('policyChecked', false);
  app.decorateRequest('authError', null);

  // Authentication comes before body validation: an anonymous caller
  // learns nothing about a protected API's schema.
  const authGate = (req: FastifyRequest): ApiError | undefined => {
    const cfg = req.routeOptions.config?.stratus;
    return cfg && !cfg.public && !req.auth ? new ApiError(401, req.authError ?? 'The request you have made requires authentication.', 'Unauthorized') : undefined;
  };
  // Callback style, not async: a token validated before costs no promise (every request runs this).
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-openstack-request-id', req.id);
    const token = req.headers['x-auth-token'];
    if (typeof token !== 'string' || token.length === 0) return done(authGate(req));
    const known = opts.validator.validated?.(token);
    if (known) {
      req.auth = known;
      return done(authGate(req));
    }
    opts.validator.validate(token).then(
      (auth) => {
        req.auth = auth;
        if (!auth) req.authError = 'The request you have made requires authentication.';
        done(authGate(req));
      },
      (e: Error) => done(e),
    );
  });

  app.addHook('preHandler', (req, _reply, done) => done(authGate(req)));

  // Fail closed: a non-public route that answered with success without its
  // policy having been enforced is a bug; the caller gets a 500, not the data.
  app.addHook('onSend', (req, reply, payload, done) => {
    const cfg = req.routeOptions.config?.stratus;
    if (cfg && !cfg.public && !req.policyChecked && reply.statusCode < 400) {
      opts.log.error({ reqId: req.id, url: req.url }, 'policy was not enforced on a protected route');
      reply.code(500);
      reply.header('content-type', 'application/json');
      done(null, JSON.stringify(renderError(cfg.format, 500, `Internal error (request ${req.id}).`)));
      return;
    }
    done(null, payload);
  });

  // Access log (skipped entirely when the level is above info: hot path).
  if (opts.log.isLevelEnabled('info'))
    app.addHook('onResponse', (req, reply, done) => {
      opts.log.info(
        { reqId: req.id, method: req.method, url: req.url, status: reply.statusCode, ms: Number(reply.elapsedTime.toFixed(2)), user: req.auth?.userId },
        'request',
      );
      done();
    });

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string; validation?: unknown }, req, reply) => {
    const format = req.routeOptions.config?.stratus?.format ?? formatForUrl(req.url);
    let status: number;
    let message: string;
    let code: string | undefined;
    if (err instanceof ApiError) {
      status = err.status;
      message = err.message;
      code = err.code;
      if (err.headers) reply.headers(err.headers);
      const declared = req.routeOptions.config?.stratus?.errors;
      if (declared && status >= 400 && status < 500 && ![400, 401, 403, 413, 415].includes(status) && !declared.includes(status))
        opts.log.warn({ reqId: req.id, status, url: req.url }, 'route answered with an undeclared error status');
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      message = 'Request Entity Too Large: the request body is larger than the server accepts.';
    } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415;
      message = 'Unsupported media type.';
    } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      message = err.message;
    } else {
      status = 500;
      message = `An unexpected error prevented the server from fulfilling your request. (request ${req.id})`;
      opts.log.error({ reqId: req.id, err, url: req.url }, 'unhandled error');
    }
    if (status === 401) reply.header('www-authenticate', 'Keystone uri="' + '/identity/v3' + '"');
    reply.code(status);
    if (format === 'plain') {
      reply.header('content-type', 'text/plain; charset=utf-8');
      return message;
    }
    return renderError(format, status, message, code);
  });

  app.setNotFoundHandler(async (req, reply) => {
    const format = formatForUrl(req.url);
    reply.code(404);
    if (format === 'plain') return 'Not Found';
    return renderError(format, 404, `The resource could not be found.`, 'NotFound');
  });

  return app;
}

const prefixFormats: [string, ErrorFormat][] = [];
function formatForUrl(url: string): ErrorFormat {
  for (const [p, f] of prefixFormats) if (url.startsWith(p)) return f;
  return 'keystone';
}

/** Mounts a service's routes under its prefix, wiring validation and policy. */
export function mountService(app: FastifyInstance, policy: PolicyEngine, mount: ServiceMount): void {
  prefixFormats.push([mount.prefix, mount.format]);
  prefixFormats.sort((a, b) => b[0].length - a[0].length);
  const explicitHead = new Set(
    mount.routes.filter((r) => (Array.isArray(r.method) ? r.method : [r.method]).includes('HEAD')).map((r) => r.url),
  );
  for (const r of mount.routes) {
    const isPublic = r.policy === null;
    app.route({
      method: r.method,
      // GET routes answer HEAD too, unless the API defines its own HEAD.
      exposeHeadRoute: !explicitHead.has(r.url),
      url: mount.prefix + r.url,
      bodyLimit: r.bodyLimit,
      schema: {
        ...(r.body ? { body: r.body } : {}),
        ...(r.query ? { querystring: r.query } : {}),
        ...(r.params ? { params: r.params } : {}),
      },
      config: { stratus: { public: isPublic, errors: r.errors ?? [], format: mount.format, policy: r.policy } },
      ...(mount.onRequest ? { onRequest: async (req: FastifyRequest, reply: FastifyReply) => mount.onRequest!(req, reply) } : {}),
      preHandler: isPublic
        ? undefined
        : async (req: FastifyRequest) => {
            const target = r.target ? await r.target(req as never) : {};
            enforce(policy, req, r.policy!, target);
          },
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const out = await r.handler(req as never, reply);
        if (!reply.sent && r.status && reply.statusCode === 200) reply.code(r.status);
        return out;
      },
    });
  }
}

/**
 * Enforces `rule` for the caller of `req` against `target`; throws 403 when
 * denied. Handlers may call it again for finer checks (e.g. per-field rules).
 */
export function enforce(policy: PolicyEngine, req: FastifyRequest, rule: string, target: Record<string, unknown>): void {
  const ok = decide(policy, req.auth, rule, target);
  req.policyChecked = true;
  if (!ok) throw new ApiError(403, `You are not authorized to perform the requested action: ${rule}.`, 'Forbidden');
}

/** True when the caller passes `rule` (no exception; for filtering lists). */
export function allowed(policy: PolicyEngine, req: FastifyRequest, rule: string, target: Record<string, unknown>): boolean {
  return decide(policy, req.auth, rule, target);
}
