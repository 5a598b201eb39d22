import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable, isStaleConnection } from './vault-errors.js';
import { toVaultRequestError, type VaultRequestError } from './vault-http.js';

/** Backoff before the n-th retry: full jitter over 20 ms x 2^n, capped at 500 ms. */
const BASE_BACKOFF_MS = 20;
const MAX_BACKOFF_MS = 500;
/** An attempt with less time than this left is not worth starting. */
const MIN_ATTEMPT_MS = 5;

interface RetryOptions<T> {
  /** Epoch ms by which the answer is needed (finite), on {@link RetryOptions.now}'s clock. */
  readonly deadline: number;
  /** The provider's clock (the injected one, which request deadlines are on). */
  readonly now: () => number;
  /** Upper bound of one attempt. */
  readonly attemptTimeoutMs: number;
  /** One request; receives the time it may take. */
  readonly attempt: (timeoutMs: number) => Promise<T>;
  /** Most attempts in all (default: as many as the deadline allows). */
  readonly maxAttempts?: number;
  /** True when nobody waits for the answer any more: stop retrying. */
  readonly abandoned?: () => boolean;
  /** Called before each retry (for logs). */
  readonly onRetry?: (error: VaultRequestError, attempt: number, delayMs: number) => void;
}

/** Whether a failure came from running out of the caller's time rather than from Vault. */
export class OutOfTime extends Error {
  override readonly name = 'OutOfTime';
  readonly last: VaultRequestError | undefined;
  constructor(last: VaultRequestError | undefined) {
    super('no time left for a request to Vault');
    this.last = last;
  }
}

/**
 * Runs `attempt`, retrying 5xx (not sealed) and 429 with jittered exponential backoff only while the
 * deadline leaves room for another attempt, and a request that hit a stale keep-alive socket once at
 * once. Throws the last {@link VaultRequestError}, or {@link OutOfTime} when no attempt could start.
 */
export async function withRetries<T>(options: RetryOptions<T>): Promise<T> {
  let last: VaultRequestError | undefined;
  let staleRetried = false;
  for (let attempt = 0; ; attempt++) {
    const remaining = options.deadline - options.now();
    if (remaining < MIN_ATTEMPT_MS) throw last ?? new OutOfTime(undefined);
    try {
      return await options.attempt(Math.min(remaining, options.attemptTimeoutMs));
    } catch (error) {
      last = toVaultRequestError(error);
    }
    if (options.abandoned?.() === true) throw last;
    if (isStaleConnection(last) && !staleRetried) {
      staleRetried = true;
      options.onRetry?.(last, attempt + 1, 0);
      continue;
    }
    if (!isRetryable(last) || attempt + 1 >= (options.maxAttempts ?? Number.POSITIVE_INFINITY)) throw last;
    const delay = Math.random() * Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** attempt);
    if (options.now() + delay + MIN_ATTEMPT_MS >= options.deadline) throw last;
    options.onRetry?.(last, attempt + 1, delay);
    await sleep(delay);
  }
}
