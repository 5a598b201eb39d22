import { ERROR_CODES, isKnownErrorCode, type ErrorCode } from './error-codes.js';
import type { Outcome } from './outcome.js';

/**
 * A `TROUSSEAU_ERR_*` code this build of core does not list: a provider built against a newer core may
 * raise one. It is accepted by the error's shape and answered by its fault and retryable flag.
 */
export type UnknownErrorCode = string & Record<never, never>;

/** What every code looks like: the prefix, then upper-case words joined by `_`. */
const CODE_PATTERN = /^TROUSSEAU_ERR_[A-Z0-9]+(?:_[A-Z0-9]+)*$/;

export interface TrousseauErrorOptions {
  cause?: unknown;
  /** Overrides the table's default for this one error (a 5xx is retryable, a 4xx of the same area not). */
  retryable?: boolean;
}

/**
 * The one error class of Trousseau. Providers throw it so the front-end can answer with a precise gRPC
 * status. Check with {@link isTrousseauError}, not `instanceof`:
 * a third-party provider may bring its own copy of core, older or newer than this one.
 */
export class TrousseauError extends Error {
  override readonly name = 'TrousseauError';
  /** One of {@link ERROR_CODES}; an error from a newer copy of core may carry a code this one lacks. */
  readonly code: ErrorCode | UnknownErrorCode;
  readonly fault: 'client' | 'server';
  readonly retryable: boolean;
  /** Marks the shape so copies of this class from another install of core are recognised. */
  readonly isTrousseauError = true as const;

  constructor(code: ErrorCode, message: string, options: TrousseauErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const entry = ERROR_CODES[code];
    this.code = code;
    this.fault = entry.fault;
    this.retryable = options.retryable ?? entry.retryable;
  }
}

/**
 * Whether `value` is a Trousseau error, by its shape: the marker, a `TROUSSEAU_ERR_*` code (listed here or
 * not), a fault, a retryable flag and a message. An error from another copy of core, even a newer one with
 * codes this build does not know, counts.
 */
export function isTrousseauError(value: unknown): value is TrousseauError {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof TrousseauError, unknown>>;
  return (
    candidate.isTrousseauError === true &&
    typeof candidate.code === 'string' &&
    CODE_PATTERN.test(candidate.code) &&
    (candidate.fault === 'client' || candidate.fault === 'server') &&
    typeof candidate.retryable === 'boolean' &&
    typeof candidate.message === 'string'
  );
}

/** The error as a TrousseauError: itself when it is one, else wrapped as an internal error keeping `cause`. */
export function toTrousseauError(error: unknown, fallbackMessage = 'internal error'): TrousseauError {
  if (isTrousseauError(error)) return error;
  const message = error instanceof Error && error.message ? error.message : fallbackMessage;
  return new TrousseauError('TROUSSEAU_ERR_INTERNAL', message, { cause: error });
}

/**
 * How a failed call ended, as a gRPC status name (the outcome label of every metric, and what the
 * front-end answers): the table's status for a known code; for a code this build does not know, what its
 * shape says: retryable is UNAVAILABLE, else a client fault is INVALID_ARGUMENT and a server fault
 * FAILED_PRECONDITION. Anything that is not a Trousseau error is INTERNAL.
 */
export function outcomeOf(error: unknown): Outcome {
  const failure = toTrousseauError(error);
  if (isKnownErrorCode(failure.code)) return ERROR_CODES[failure.code].status;
  if (failure.retryable) return 'UNAVAILABLE';
  return failure.fault === 'client' ? 'INVALID_ARGUMENT' : 'FAILED_PRECONDITION';
}
