/**
 * One error model for every service. Domain code throws `ApiError` (or a
 * subclass); the HTTP layer renders it once, in the body shape of the
 * service that owns the route (Keystone, Nova, Neutron, Glance, Swift...).
 * Anything else that escapes a handler is a bug: it becomes a 500 carrying
 * the request id, and is logged with its stack.
 */
export class ApiError extends Error {
  /** @param status HTTP status. @param code stable machine-readable code (e.g. Neutron's error `type`). */
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (msg: string, code = 'BadRequest') => new ApiError(400, msg, code);
export const unauthorized = (msg = 'The request you have made requires authentication.', code = 'Unauthorized') =>
  new ApiError(401, msg, code);
export const forbidden = (msg = 'You are not authorized to perform the requested action.', code = 'Forbidden') =>
  new ApiError(403, msg, code);
export const notFound = (msg: string, code = 'NotFound') => new ApiError(404, msg, code);
export const conflict = (msg: string, code = 'Conflict') => new ApiError(409, msg, code);
export const tooLarge = (msg: string, code = 'OverLimit') => new ApiError(413, msg, code);
export const notImplemented = (msg: string, code = 'NotImplemented') => new ApiError(501, msg, code);
export const unavailable = (msg: string, code = 'ServiceUnavailable') => new ApiError(503, msg, code);

/** Standard reason phrases, used as Keystone's `title` and in Glance bodies. */
export const STATUS_TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  416: 'Requested Range Not Satisfiable',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** Nova/Cinder name the top-level key of an error body after the fault class. */
const NOVA_FAULT_KEYS: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

export type ErrorFormat = 'keystone' | 'nova' | 'neutron' | 'glance' | 'plain';

/** Renders an error body in the dialect of the API it belongs to. */
export function renderError(format: ErrorFormat, status: number, message: string, code?: string): unknown {
  const title = STATUS_TITLES[status] ?? 'Error';
  switch (format) {
    case 'keystone':
      return { error: { code: status, message, title } };
    case 'nova':
      return { [NOVA_FAULT_KEYS[status] ?? 'computeFault']: { code: status, message } };
    case 'neutron':
      return { NeutronError: { type: code ?? title.replace(/ /g, ''), message, detail: '' } };
    case 'glance':
      return { code: status, title, message };
    case 'plain':
      return message;
  }
}
