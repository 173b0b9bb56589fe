/**
 * The S3 REST API over the object storage engine (see README.md here).
 */
export { S3Server, type S3ServerOptions } from './server.js';
export { identityCredentials, type CredentialSource, type S3Principal } from './credentials.js';
export { s3Policies } from './policies.js';
export { S3Error, S3_ERROR_STATUS } from './errors.js';
