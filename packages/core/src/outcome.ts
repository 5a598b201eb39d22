/**
 * The one vocabulary for how a call ended, in metrics and logs across core and every provider: the gRPC
 * status names (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). A success is `OK`; a failure is
 * the status its error code maps to ({@link outcomeOf} in errors.ts). Defined here, not taken from
 * grpc-js, so a provider package that imports core never loads the gRPC library.
 */
export const OUTCOMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** A gRPC status name: the `outcome` label of every Trousseau metric. */
export type Outcome = (typeof OUTCOMES)[number];
