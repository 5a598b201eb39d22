import type { Outcome } from './outcome.js';

/**
 * Every error code Trousseau raises, with who is at fault, whether a retry may help, and the gRPC status
 * (by name: the outcome vocabulary of metrics) the front-end answers with. This table is the single source
 * of truth; docs/errors.md lists the same codes for operators, and a test keeps the two equal. The gRPC
 * front-end turns the name into the wire code (grpc/grpc-status.ts); nothing here loads gRPC. Codes are
 * stable: never rename one, only add.
 */
export const ERROR_CODES = {
  TROUSSEAU_ERR_REQUEST_EMPTY: { fault: 'client', retryable: false, status: 'INVALID_ARGUMENT' },
  TROUSSEAU_ERR_REQUEST_INVALID: { fault: 'client', retryable: false, status: 'INVALID_ARGUMENT' },
  TROUSSEAU_ERR_REQUEST_TOO_LARGE: { fault: 'client', retryable: false, status: 'INVALID_ARGUMENT' },
  TROUSSEAU_ERR_CIPHERTEXT_MALFORMED: { fault: 'client', retryable: false, status: 'INVALID_ARGUMENT' },
  TROUSSEAU_ERR_CIPHERTEXT_UNSUPPORTED_VERSION: {
    fault: 'client',
    retryable: false,
    status: 'INVALID_ARGUMENT',
  },
  TROUSSEAU_ERR_CIPHERTEXT_UNKNOWN_PROVIDER: {
    fault: 'client',
    retryable: false,
    status: 'INVALID_ARGUMENT',
  },
  TROUSSEAU_ERR_CIPHERTEXT_KEY_ID_MISMATCH: {
    fault: 'client',
    retryable: false,
    status: 'INVALID_ARGUMENT',
  },
  TROUSSEAU_ERR_CIPHERTEXT_INVALID: { fault: 'client', retryable: false, status: 'INVALID_ARGUMENT' },
  TROUSSEAU_ERR_CIPHERTEXT_TOO_LARGE: { fault: 'server', retryable: false, status: 'INTERNAL' },
  TROUSSEAU_ERR_PROVIDER_UNAVAILABLE: { fault: 'server', retryable: true, status: 'UNAVAILABLE' },
  TROUSSEAU_ERR_PROVIDER_PERMISSION_DENIED: { fault: 'server', retryable: false, status: 'UNAVAILABLE' },
  TROUSSEAU_ERR_PROVIDER_AUTH_FAILED: { fault: 'server', retryable: true, status: 'UNAVAILABLE' },
  TROUSSEAU_ERR_PROVIDER_KEY_UNAVAILABLE: { fault: 'server', retryable: false, status: 'UNAVAILABLE' },
  TROUSSEAU_ERR_PROVIDER_KEY_GONE: { fault: 'server', retryable: false, status: 'FAILED_PRECONDITION' },
  TROUSSEAU_ERR_PROVIDER_THROTTLED: { fault: 'server', retryable: true, status: 'UNAVAILABLE' },
  TROUSSEAU_ERR_PROVIDER_INTERNAL: { fault: 'server', retryable: false, status: 'INTERNAL' },
  TROUSSEAU_ERR_DEADLINE_EXCEEDED: { fault: 'server', retryable: true, status: 'DEADLINE_EXCEEDED' },
  TROUSSEAU_ERR_CANCELLED: { fault: 'client', retryable: true, status: 'CANCELLED' },
  TROUSSEAU_ERR_SHUTTING_DOWN: { fault: 'server', retryable: true, status: 'UNAVAILABLE' },
  TROUSSEAU_ERR_CONFIG_INVALID: { fault: 'client', retryable: false, status: 'FAILED_PRECONDITION' },
  TROUSSEAU_ERR_CONFIG_READ: { fault: 'client', retryable: false, status: 'FAILED_PRECONDITION' },
  TROUSSEAU_ERR_PROVIDER_LOAD: { fault: 'client', retryable: false, status: 'FAILED_PRECONDITION' },
  TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID: {
    fault: 'client',
    retryable: false,
    status: 'FAILED_PRECONDITION',
  },
  TROUSSEAU_ERR_SOCKET_IN_USE: { fault: 'client', retryable: false, status: 'FAILED_PRECONDITION' },
  TROUSSEAU_ERR_INTERNAL: { fault: 'server', retryable: false, status: 'INTERNAL' },
} as const satisfies Record<string, { fault: 'client' | 'server'; retryable: boolean; status: Outcome }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether `code` is one this build of core knows (a provider built against a newer core may send others). */
export function isKnownErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
