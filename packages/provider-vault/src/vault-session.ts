import { isTrousseauError, TrousseauError, type Clock, type ProviderContext } from '@trousseau/core';
import { OutOfTime, withRetries } from './retry.js';
import { isForbidden, isMissingToken, mapVaultError, type VaultOperation } from './vault-errors.js';
import { toVaultRequestError, type VaultHttp, type VaultRequestError } from './vault-http.js';

/**
 * Where the session's token comes from: the {@link TokenManager} (a token of our own, looked up or
 * logged in, renewed and replaced), or the {@link AgentAuth} (none: a Vault Agent adds its own).
 */
export interface TokenSource {
  /** The token to send now; undefined to send none. */
  token(): Promise<string | undefined>;
  /**
   * Vault answered 403 to `token`: a different token to retry with, undefined when the token is alive
   * (the policy refuses the path); throws when the token is dead and cannot be replaced.
   */
  onForbidden(token: string | undefined): Promise<string | undefined>;
  /** The auth failure for a request Vault found without a token, when that is the source's doing. */
  missingToken?(): TrousseauError;
  /** Renews or replaces the token when due. Never throws. */
  maintain(): Promise<void>;
  start(): void;
  close(): void;
}

interface VaultSessionOptions {
  readonly http: VaultHttp;
  readonly tokens: TokenSource;
  readonly context: ProviderContext;
  /** Upper bound of one HTTP attempt, ms. */
  readonly requestTimeoutMs: number;
  /** `<mount>/keys/<name>`: the key an error message names. */
  readonly keyPath: string;
}

/** One request to Vault made with the provider's token (if any): `send` gets it and the time it may take. */
type SendWithToken = (token: string | undefined, timeoutMs: number) => Promise<unknown>;

/**
 * Requests to Vault on behalf of the provider, with its token: each retried on 5xx/429 inside its
 * deadline, and on 403 retried once with a fresh token from the {@link TokenManager} (a re-login, or a
 * static token re-read). Failures come out as TrousseauErrors: a 403 to a live token means the policy no
 * longer grants the path, which for Trousseau is the key gone.
 */
export class VaultSession {
  readonly http: VaultHttp;
  readonly tokens: TokenSource;
  readonly #context: ProviderContext;
  readonly #clock: Clock;
  readonly #requestTimeoutMs: number;
  readonly #keyPath: string;

  constructor(options: VaultSessionOptions) {
    this.http = options.http;
    this.tokens = options.tokens;
    this.#context = options.context;
    this.#clock = options.context.clock;
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
   * Background upkeep before a key read: a client certificate renewed on disk is taken up, and the token
   * is renewed or replaced when due. Never throws.
   */
  async maintain(): Promise<void> {
    try {
      if (await this.http.reloadClientCertificate()) {
        this.#context.logger.info(
          { provider: this.#context.instanceName },
          'vault client certificate changed on disk; presenting the new one',
        );
      }
    } catch (error) {
      this.#context.logger.warn(
        { provider: this.#context.instanceName, reason: isTrousseauError(error) ? error.message : 'unknown' },
        'vault client certificate could not be reloaded; keeping the one in use',
      );
    }
    await this.tokens.maintain();
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
        if (isMissingToken(failure) && this.tokens.missingToken !== undefined)
          throw this.tokens.missingToken();
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
