import { ERROR_CODES, type ErrorCode } from './error-codes.js';

export interface TrousseauErrorOptions {
  cause?: unknown;
  /** Overrides the table's default for this one error (a 5xx is retryable, a 4xx of the same area not). */
  retryable?: boolean;
}

/**
 * The one error class of Trousseau. Providers throw it (through {@link providerError} or directly) so the
 * front-end can answer with a precise gRPC status. Check with {@link isTrousseauError}, not `instanceof`:
 * a third-party provider may bring its own copy of core.
 */
export class TrousseauError extends Error {
  override readonly name = 'TrousseauError';
  readonly code: ErrorCode;
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

export function isTrousseauError(value: unknown): value is TrousseauError {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<TrousseauError>;
  return (
    candidate.isTrousseauError === true &&
    typeof candidate.code === 'string' &&
    Object.hasOwn(ERROR_CODES, candidate.code) &&
    typeof candidate.message === 'string'
  );
}

/** The error as a TrousseauError: itself when it is one, else wrapped as an internal error keeping `cause`. */
export function toTrousseauError(error: unknown, fallbackMessage = 'internal error'): TrousseauError {
  if (isTrousseauError(error)) return error;
  const message = error instanceof Error && error.message ? error.message : fallbackMessage;
  return new TrousseauError('TROUSSEAU_ERR_INTERNAL', message, { cause: error });
}
