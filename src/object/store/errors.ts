import { ApiError } from '../../core/errors.js';

/**
 * Typed errors of the object storage engine. Each is an `ApiError` carrying
 * the HTTP status the Swift and S3 layers answer with, so they can be
 * rethrown as they are or mapped (`instanceof`) to an S3 error code.
 */
export class StoreError extends ApiError {
  constructor(status: number, message: string, code: string, headers?: Record<string, string>) {
    super(status, message, code, headers);
    this.name = code;
  }
}

/** 400: a name, metadata or argument breaks a limit or is malformed. */
export class BadRequestError extends StoreError {
  constructor(message: string) {
    super(400, message, 'BadRequest');
  }
}

/** 404: the account, container or object does not exist (or has expired). */
export class NotFoundError extends StoreError {
  constructor(message: string, readonly timestamp?: string) {
    super(404, message, 'NotFound');
  }
}

/** 409: e.g. deleting a container that still holds objects. */
export class ConflictError extends StoreError {
  constructor(message: string) {
    super(409, message, 'Conflict');
  }
}

/** 412: a precondition (If-Match, If-None-Match: *, If-Unmodified-Since...) failed. */
export class PreconditionFailedError extends StoreError {
  constructor(message = 'Precondition failed') {
    super(412, message, 'PreconditionFailed');
  }
}

/** 304: If-None-Match / If-Modified-Since on a read matched; `etag` is the current one. */
export class NotModifiedError extends StoreError {
  constructor(readonly etag: string, readonly timestamp: string) {
    super(304, 'Not modified', 'NotModified');
  }
}

/** 413: the object is larger than the configured maximum (5 GiB by default). */
export class TooLargeError extends StoreError {
  constructor(message: string) {
    super(413, message, 'TooLarge');
  }
}

/** 416: the requested byte range lies outside the object. */
export class RangeNotSatisfiableError extends StoreError {
  constructor(readonly size: number) {
    super(416, 'Requested range not satisfiable', 'RangeNotSatisfiable', { 'content-range': `bytes */${size}` });
  }
}

/** 422: the body's MD5 differs from the ETag the client announced. */
export class EtagMismatchError extends StoreError {
  constructor(readonly expected: string, readonly actual: string) {
    super(422, `ETag mismatch: expected ${expected}, computed ${actual}`, 'EtagMismatch');
  }
}

/** 499: the body ended before the announced length (client went away). */
export class ClientDisconnectError extends StoreError {
  constructor(message: string) {
    super(499, message, 'ClientDisconnect');
  }
}

/** 503: fewer than a quorum of replicas could be written (or read). */
export class UnavailableError extends StoreError {
  constructor(message: string) {
    super(503, message, 'ServiceUnavailable');
  }
}
