import { TrousseauError, type Clock } from '@trousseau/core';
import { OutOfTime, withRetries } from './retry.js';
import type { TokenManager } from './token-manager.js';
import { isForbidden, mapVaultError, type VaultOperation } from './vault-errors.js';
import { toVaultRequestError, type VaultHttp, type VaultRequestError } from './vault-http.js';

interface VaultSessionOptions {
  readonly http: VaultHttp;
  readonly tokens: TokenManager;
  readonly clock: Clock;
  /** Upper bound of one HTTP attempt, ms. */
  readonly requestTimeoutMs: number;
  /** `<mount>/keys/<name>`: the key an error message names. */
  readonly keyPath: string;
}

/** One request to Vault made with the provider's token: `send` gets the token and the time it may take. */
type SendWithToken = (token: string, timeoutMs: number) => Promise<unknown>;

/**
 * Requests to Vault on behalf of the provider, with its token: each retried on 5xx/429 inside its
 * deadline, and on 403 retried once with a fresh token from the {@link TokenManager} (a re-login, or a
 * static token re-read). Failures come out as TrousseauErrors: a 403 to a live token means the policy no
 * longer grants the path, which for Trousseau is the key gone.
 */
export class VaultSession {
  readonly http: VaultHttp;
  readonly tokens: TokenManager;
  readonly #clock: Clock;
  readonly #requestTimeoutMs: number;
  readonly #keyPath: string;

  constructor(options: VaultSessionOptions) {
    this.http = options.http;
    this.tokens = options.tokens;
    this.#clock = options.clock;
    this.#requestTimeoutMs = options.requestTimeoutMs;
    this.#keyPath = options.keyPath;
  }

  /** Now, on the injected clock: the one request deadlines and token lifetimes are on. */
  now(): number {
    return this.#clock.now();
  }

  get requestTimeoutMs(): number {
    return this.#requestTimeoutMs;
  }

  /**
   * Runs `send` with a token until it answers, the deadline passes, or it fails for good. `abandoned`
   * says when nobody waits for the answer any more (no retry then).
   */
  async request(
    operation: VaultOperation,
    path: string,
    deadline: number,
    send: SendWithToken,
    abandoned: () => boolean = () => false,
  ): Promise<unknown> {
    let token = await this.tokens.token();
    for (let round = 0; ; round++) {
      const usedToken = token;
      try {
        return await withRetries({
          deadline,
          now: () => this.now(),
          attemptTimeoutMs: this.#requestTimeoutMs,
          attempt: (timeoutMs) => send(usedToken, timeoutMs),
          abandoned,
        });
      } catch (error) {
        if (error instanceof OutOfTime) throw this.#outOfTime(operation, error.last, path);
        const failure = toVaultRequestError(error);
        if (isForbidden(failure) && round === 0) {
          const fresh = await this.tokens.onForbidden(usedToken);
          if (fresh !== undefined) {
            token = fresh;
            continue;
          }
        }
        if ((failure.kind === 'timeout' || failure.kind === 'aborted') && this.now() >= deadline - 1)
          throw this.#outOfTime(operation, failure, path);
        if (isForbidden(failure)) {
          // The token is alive (or was just replaced and refused too): its policy no longer grants this
          // path of the key. For Trousseau the key is gone, which Status must say with an error.
          throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_KEY_GONE', `permission denied on ${path}`, {
            cause: new Error(failure.message),
          });
        }
        throw this.mapError(failure, operation, path);
      }
    }
  }

  /** The TrousseauError for a failed request to `path`. */
  mapError(failure: VaultRequestError, operation: VaultOperation, path: string): TrousseauError {
    return mapVaultError(failure, operation, path, this.#keyPath);
  }

  #outOfTime(operation: VaultOperation, last: VaultRequestError | undefined, path: string): TrousseauError {
    const reason = last === undefined ? '' : ` (last: ${this.mapError(last, operation, path).message})`;
    return new TrousseauError(
      'TROUSSEAU_ERR_DEADLINE_EXCEEDED',
      `vault ${operation} did not finish before the caller's deadline${reason}`,
    );
  }
}
