import { Metadata, type ServiceError, type status as GrpcStatus } from '@grpc/grpc-js';
import { ERROR_CODES } from '../error-codes.js';
import { toTrousseauError } from '../errors.js';

/** A gRPC error for any thrown value: the code from core's error table, the message, and the error code. */
export function toServiceError(error: unknown): Partial<ServiceError> & { code: GrpcStatus } {
  const failure = toTrousseauError(error);
  const metadata = new Metadata();
  metadata.set('trousseau-error-code', failure.code);
  return { code: ERROR_CODES[failure.code].grpc, details: `${failure.code}: ${failure.message}`, metadata };
}
