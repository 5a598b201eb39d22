import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * Every error code Trousseau raises, with who is at fault, whether a retry may help, and the gRPC status
 * the front-end answers with. This table is the single source of truth; docs/errors.md lists the same
 * codes for operators. Codes are stable: never rename one, only add.
 */
export const ERROR_CODES = {
  TROUSSEAU_ERR_REQUEST_EMPTY: { fault: 'client', retryable: false, grpc: GrpcStatus.INVALID_ARGUMENT },
  TROUSSEAU_ERR_REQUEST_INVALID: { fault: 'client', retryable: false, grpc: GrpcStatus.INVALID_ARGUMENT },
  TROUSSEAU_ERR_REQUEST_TOO_LARGE: { fault: 'client', retryable: false, grpc: GrpcStatus.INVALID_ARGUMENT },
  TROUSSEAU_ERR_CIPHERTEXT_MALFORMED: {
    fault: 'client',
    retryable: false,
    grpc: GrpcStatus.INVALID_ARGUMENT,
  },
  TROUSSEAU_ERR_CIPHERTEXT_UNSUPPORTED_VERSION: {
    fault: 'client',
    retryable: false,
    grpc: GrpcStatus.INVALID_ARGUMENT,
  },
  TROUSSEAU_ERR_CIPHERTEXT_UNKNOWN_PROVIDER: {
    fault: 'client',
    retryable: false,
    grpc: GrpcStatus.INVALID_ARGUMENT,
  },
  TROUSSEAU_ERR_CIPHERTEXT_KEY_ID_MISMATCH: {
    fault: 'client',
    retryable: false,
    grpc: GrpcStatus.INVALID_ARGUMENT,
  },
  TROUSSEAU_ERR_CIPHERTEXT_INVALID: { fault: 'client', retryable: false, grpc: GrpcStatus.INVALID_ARGUMENT },
  TROUSSEAU_ERR_CIPHERTEXT_TOO_LARGE: { fault: 'server', retryable: false, grpc: GrpcStatus.INTERNAL },
  TROUSSEAU_ERR_PROVIDER_UNAVAILABLE: { fault: 'server', retryable: true, grpc: GrpcStatus.UNAVAILABLE },
  TROUSSEAU_ERR_PROVIDER_PERMISSION_DENIED: {
    fault: 'server',
    retryable: false,
    grpc: GrpcStatus.UNAVAILABLE,
  },
  TROUSSEAU_ERR_PROVIDER_AUTH_FAILED: { fault: 'server', retryable: true, grpc: GrpcStatus.UNAVAILABLE },
  TROUSSEAU_ERR_PROVIDER_KEY_UNAVAILABLE: { fault: 'server', retryable: false, grpc: GrpcStatus.UNAVAILABLE },
  TROUSSEAU_ERR_PROVIDER_THROTTLED: { fault: 'server', retryable: true, grpc: GrpcStatus.UNAVAILABLE },
  TROUSSEAU_ERR_PROVIDER_INTERNAL: { fault: 'server', retryable: false, grpc: GrpcStatus.INTERNAL },
  TROUSSEAU_ERR_DEADLINE_EXCEEDED: { fault: 'server', retryable: true, grpc: GrpcStatus.DEADLINE_EXCEEDED },
  TROUSSEAU_ERR_CANCELLED: { fault: 'client', retryable: true, grpc: GrpcStatus.CANCELLED },
  TROUSSEAU_ERR_SHUTTING_DOWN: { fault: 'server', retryable: true, grpc: GrpcStatus.UNAVAILABLE },
  TROUSSEAU_ERR_CONFIG_INVALID: { fault: 'client', retryable: false, grpc: GrpcStatus.FAILED_PRECONDITION },
  TROUSSEAU_ERR_CONFIG_READ: { fault: 'client', retryable: false, grpc: GrpcStatus.FAILED_PRECONDITION },
  TROUSSEAU_ERR_PROVIDER_LOAD: { fault: 'client', retryable: false, grpc: GrpcStatus.FAILED_PRECONDITION },
  TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID: {
    fault: 'client',
    retryable: false,
    grpc: GrpcStatus.FAILED_PRECONDITION,
  },
  TROUSSEAU_ERR_SOCKET_IN_USE: { fault: 'client', retryable: false, grpc: GrpcStatus.FAILED_PRECONDITION },
  TROUSSEAU_ERR_INTERNAL: { fault: 'server', retryable: false, grpc: GrpcStatus.INTERNAL },
} as const satisfies Record<string, { fault: 'client' | 'server'; retryable: boolean; grpc: GrpcStatus }>;

export type ErrorCode = keyof typeof ERROR_CODES;
