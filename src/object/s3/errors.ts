import {
  BadRequestError,
  ClientDisconnectError,
  ConflictError,
  EtagMismatchError,
  NotModifiedError,
  PreconditionFailedError,
  RangeNotSatisfiableError,
  TooLargeError,
  UnavailableError,
} from '../store/index.js';

/**
 * HTTP status of every S3 error code this API answers with (Amazon S3 REST
 * API reference, "Error responses"). A code missing here is a bug: it
 * renders as 500 InternalError.
 */
export const S3_ERROR_STATUS: Record<string, number> = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidLocationConstraint: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  InvalidURI: 400,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MaxMessageLengthExceeded: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  NotModified: 304,
  OperationAborted: 409,
  PreconditionFailed: 412,
  RequestTimeTooSkewed: 403,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  XAmzContentSHA256Mismatch: 400,
};

/**
 * An S3 error: rendered as `<Error><Code>…</Code><Message>…</Message>…`
 * with the status of its code. `extra` adds elements to the error document
 * (e.g. `BucketName`, `Key`, `UploadId`).
 */
export class S3Error extends Error {
  readonly status: number;
  constructor(
    readonly code: string,
    message: string,
    readonly extra: Record<string, string> = {},
    /** Response headers to send with the error (e.g. ETag on a 304). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = code;
    this.status = S3_ERROR_STATUS[code] ?? 500;
  }
}

/**
 * Maps an error of the storage engine to its S3 form. Not-found errors are
 * left to the caller (only it knows whether a bucket, key or upload is
 * missing); anything unknown becomes null (the server logs it and answers
 * 500 InternalError).
 */
export function fromStoreError(e: unknown): S3Error | null {
  if (e instanceof S3Error) return e;
  if (e instanceof EtagMismatchError) return new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
  if (e instanceof TooLargeError) return new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size.');
  if (e instanceof ClientDisconnectError) return new S3Error('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.');
  if (e instanceof PreconditionFailedError) return new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
  if (e instanceof NotModifiedError) return new S3Error('NotModified', 'Not Modified');
  if (e instanceof RangeNotSatisfiableError) return new S3Error('InvalidRange', 'The requested range is not satisfiable', { ActualObjectSize: String(e.size) });
  if (e instanceof UnavailableError) return new S3Error('ServiceUnavailable', 'Please reduce your request rate.');
  if (e instanceof ConflictError) return new S3Error('OperationAborted', 'A conflicting conditional operation is currently in progress against this resource. Please try again.');
  if (e instanceof BadRequestError) {
    if (/longer than Content-Length/.test(e.message)) return new S3Error('IncompleteBody', 'The request body is longer than the Content-Length header.');
    if (/^Metadata|metadata/.test(e.message)) return new S3Error('InvalidArgument', e.message);
    return new S3Error('InvalidArgument', e.message);
  }
  return null;
}
