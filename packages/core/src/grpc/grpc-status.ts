import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { outcomeOf, toTrousseauError } from '../errors.js';
import type { Outcome } from '../outcome.js';

/**
 * The gRPC wire code of an outcome. Core's error table names statuses (the outcome vocabulary); this is
 * the one place that turns a name into the number grpc-js sends, so only the front-end loads gRPC.
 */
export function grpcStatusOf(outcome: Outcome): GrpcStatus {
  return GrpcStatus[outcome];
}

/** A gRPC error for any thrown value: the status its code maps to, the message, and the error code. */
export function toServiceError(error: unknown): Partial<ServiceError> & { code: GrpcStatus } {
  const failure = toTrousseauError(error);
  const metadata = new Metadata();
  metadata.set('trousseau-error-code', failure.code);
  return {
    code: grpcStatusOf(outcomeOf(failure)),
    details: `${failure.code}: ${failure.message}`,
    metadata,
  };
}
