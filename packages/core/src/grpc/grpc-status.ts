import { outcomeOf, toTrousseauError } from '../errors.js';
import { OUTCOMES, type Outcome } from '../outcome.js';

/** The trailer that names a failed call's Trousseau error code, beside `grpc-status` and `grpc-message`. */
const ERROR_CODE_TRAILER = 'trousseau-error-code';

/** How a call ends when it fails: a gRPC status code, its message, and trailers of our own. */
export interface GrpcFailure {
  /** The gRPC status code (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
  readonly code: number;
  readonly details: string;
  /** Sent with `grpc-status` and `grpc-message`. */
  readonly trailers: Readonly<Record<string, string>>;
}

/**
 * The gRPC wire code of an outcome. Core's error table names statuses (the outcome vocabulary), listed in
 * the order of their codes, so a name's index is its code: the one place that turns one into the other.
 */
export function grpcStatusOf(outcome: Outcome): number {
  return OUTCOMES.indexOf(outcome);
}

/**
 * A failure the gRPC server answers by itself, before or instead of a handler (an unknown method, a body
 * that is not one message): a status and its message, no Trousseau error code.
 */
export function protocolFailure(outcome: Outcome, details: string): GrpcFailure {
  return { code: grpcStatusOf(outcome), details, trailers: {} };
}

/** A gRPC failure for any thrown value: the status its code maps to, the message, and the error code. */
export function toServiceError(error: unknown): GrpcFailure {
  const failure = toTrousseauError(error);
  return {
    code: grpcStatusOf(outcomeOf(failure)),
    details: `${failure.code}: ${failure.message}`,
    trailers: { [ERROR_CODE_TRAILER]: failure.code },
  };
}
