import {
  isTrousseauError,
  outcomeOf,
  TrousseauError,
  type Counter,
  type Gauge,
  type Outcome,
  type ProviderContext,
} from '@trousseau/core';
import { loginMethodFor, type LoginMethod } from './login-methods.js';
import type { TokenAuthOptions } from './options.js';
import { OutOfTime, withRetries } from './retry.js';
import { isForbidden, mapVaultError, type VaultOperation } from './vault-errors.js';
import { toVaultRequestError, type VaultHttp } from './vault-http.js';

/** Renew when this share of the token's TTL has passed. */
const RENEW_AT_FRACTION = 2 / 3;
/** A token found alive this recently is not looked up again on another 403 (a policy denial storm). */
const ALIVE_CACHE_MS = 1_000;
/** After a failed renewal or login, try again this soon (bounded by what is left of the TTL). */
const RETRY_AFTER_FAILURE_MS = 2_000;

/** What the provider knows of its current token. Times are on the provider's clock (epoch ms). */
interface TokenState {
  readonly token: string;
  /** When Vault stops accepting it; `Infinity` for a token without TTL (a root token). */
  readonly expiresAt: number;
  readonly renewable: boolean;
  /** TTL granted at login or lookup, seconds; a renewal granting less means a max TTL is near. */
  readonly grantedTtlSeconds: number;
  /** When to act next: renew it, or (login methods) replace it by a fresh login. */
  readonly actAt: number;
  readonly nextAction: 'renew' | 'login';
  /** When it was obtained. */
  readonly obtainedAt: number;
}

interface AuthAnswer {
  readonly token: string;
  readonly ttlSeconds: number;
  readonly renewable: boolean;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

/** Reads `auth.client_token`, `auth.lease_duration`, `auth.renewable` of a login or renew answer. */
function authOf(body: unknown, what: string): AuthAnswer {
  const auth = asRecord(asRecord(body)?.auth);
  const token = auth?.client_token;
  const ttl = auth?.lease_duration;
  if (typeof token !== 'string' || token === '' || typeof ttl !== 'number') {
    throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', `vault ${what} answer has no auth block`);
  }
  return { token, ttlSeconds: ttl, renewable: auth?.renewable === true };
}

interface TokenManagerOptions {
  readonly http: VaultHttp;
  readonly auth: TokenAuthOptions;
  readonly context: ProviderContext;
  /** Upper bound of one login, lookup or renewal, ms. */
  readonly authTimeoutMs: number;
}

/**
 * The Vault token's life: looked up (static token) or obtained by login ({@link LoginMethod}) at start,
 * renewed at two thirds of its TTL, replaced by a fresh login when renewal fails, the token expired, a
 * renewal hits the max TTL, or Vault answers 403 to it. A static token is re-read from its file on every
 * maintenance round and whenever it is refused, so writing a new token to the file heals the provider.
 */
export class TokenManager {
  readonly #http: VaultHttp;
  readonly #auth: TokenAuthOptions;
  /** How to log in; none for a static token. */
  readonly #login: LoginMethod | undefined;
  readonly #context: ProviderContext;
  readonly #authTimeoutMs: number;
  readonly #renewals: Counter<'provider' | 'outcome'>;
  readonly #logins: Counter<'provider' | 'method' | 'outcome'>;
  readonly #expiry: Gauge<'provider'>;
  readonly #ttl: Gauge<'provider'>;
  #state: TokenState | undefined;
  /** The last failure to obtain or keep a token, for Status; cleared by success. */
  #problem: TrousseauError | undefined;
  #acquiring: Promise<TokenState> | undefined;
  #maintaining: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #alive: { readonly token: string; readonly at: number } | undefined;
  #closed = false;

  constructor(options: TokenManagerOptions) {
    this.#http = options.http;
    this.#auth = options.auth;
    this.#login =
      options.auth.method === 'token'
        ? undefined
        : loginMethodFor(options.auth, options.context, options.http);
    this.#context = options.context;
    this.#authTimeoutMs = options.authTimeoutMs;
    this.#renewals = options.context.metrics.counter({
      name: 'vault_token_renewals_total',
      help: 'Vault token renewals by provider instance and outcome (gRPC status name)',
      labelNames: ['provider', 'outcome'],
    });
    this.#logins = options.context.metrics.counter({
      name: 'vault_logins_total',
      help: 'Vault logins by provider instance, auth method and outcome (gRPC status name)',
      labelNames: ['provider', 'method', 'outcome'],
    });
    // What an alert needs to see a token run out unrenewed: this manager acts at two thirds of the TTL,
    // so a token with less than a third of it left is overdue.
    this.#expiry = options.context.metrics.gauge({
      name: 'vault_token_expiry_timestamp_seconds',
      help: 'Unix time at which Vault stops accepting the token in use (no series for a token without TTL)',
      labelNames: ['provider'],
    });
    this.#ttl = options.context.metrics.gauge({
      name: 'vault_token_ttl_seconds',
      help: 'TTL Vault gave the token in use at its last login, lookup or renewal (no series without TTL)',
      labelNames: ['provider'],
    });
  }

  /** Shows the token's expiry and the TTL it was last given; a token without TTL has no series. */
  #showToken(state: TokenState, ttlSeconds: number): void {
    const labels = { provider: this.#context.instanceName };
    if (Number.isFinite(state.expiresAt)) {
      this.#expiry.set(labels, state.expiresAt / 1000);
      this.#ttl.set(labels, ttlSeconds);
    } else {
      this.#expiry.remove(labels);
      this.#ttl.remove(labels);
    }
  }

  get method(): TokenAuthOptions['method'] {
    return this.#auth.method;
  }

  /** Why no usable token is at hand, if so. */
  get problem(): TrousseauError | undefined {
    return this.#problem;
  }

  #now(): number {
    return this.#context.clock.now();
  }

  /**
   * A token to send now. Obtains one first when there is none or it has expired; starts a renewal in
   * the background when one is due (the call does not wait for it).
   */
  async token(): Promise<string> {
    this.#assertOpen();
    const state = this.#state;
    if (state !== undefined && this.#now() < state.expiresAt) {
      if (this.#now() >= state.actAt) void this.maintain();
      return state.token;
    }
    return (await this.#acquire()).token;
  }

  /**
   * Vault answered 403 to a request made with `token`. Returns a different token to retry with when the
   * refused one was replaced or turned out dead and a new one could be had; `undefined` when the token
   * is alive, so the 403 is the policy refusing the path. Throws when the token is dead and no new one
   * can be had (a static token that expired or was revoked).
   */
  async onForbidden(token: string): Promise<string | undefined> {
    this.#assertOpen();
    const current = this.#state;
    if (current !== undefined && current.token !== token && this.#now() < current.expiresAt)
      return current.token;
    // Look the token up: alive means the policy refuses the path; dead means replace it (log in again,
    // or re-read a static token's source).
    if (await this.#isAlive(token)) return undefined;
    if (this.#state?.token === token) this.#state = undefined;
    const fresh = await this.#acquire();
    return fresh.token === token ? undefined : fresh.token;
  }

  /** Renews or replaces the token when due, re-reads a static token's file. Never throws. */
  maintain(): Promise<void> {
    this.#maintaining ??= this.#maintain().finally(() => {
      this.#maintaining = undefined;
      this.#schedule();
    });
    return this.#maintaining;
  }

  async #maintain(): Promise<void> {
    if (this.#closed) return;
    try {
      const state = this.#state;
      if (state === undefined || this.#now() >= state.expiresAt) {
        await this.#acquire();
        return;
      }
      if (this.#auth.method === 'token') {
        const value = await this.#context.secrets.read(this.#auth.token);
        if (value !== state.token && this.#state === state) {
          this.#context.logger.info(
            { provider: this.#context.instanceName },
            'vault token changed in its source',
          );
          await this.#acquire();
          return;
        }
      }
      if (this.#state !== state || this.#now() < state.actAt) return;
      if (state.nextAction === 'login' || !state.renewable) {
        if (this.#auth.method === 'token') return;
        await this.#replaceByLogin(state);
        return;
      }
      await this.#renew(state);
    } catch (error) {
      const problem = isTrousseauError(error)
        ? error
        : new TrousseauError('TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', 'vault token maintenance failed');
      this.#problem = problem;
      this.#context.logger.warn(
        { provider: this.#context.instanceName, code: problem.code, reason: problem.message },
        'vault token maintenance failed',
      );
    }
  }

  async #renew(state: TokenState): Promise<void> {
    let answer: AuthAnswer;
    try {
      const body = await this.#call('token renewal', 'auth/token/renew-self', state.token, {
        increment: `${Math.max(1, state.grantedTtlSeconds)}s`,
      });
      answer = authOf(body, 'token renewal');
      if (answer.ttlSeconds <= 0) {
        throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', 'vault token renewal granted no time');
      }
    } catch (error) {
      this.#renewals.add({ provider: this.#context.instanceName, outcome: outcomeOf(error) });
      const reason = isTrousseauError(error) ? error.message : 'renewal failed';
      if (this.#state !== state) {
        // The token was replaced while the renewal was on its way (a 403 made the provider adopt or log
        // in to a newer one): its failure says nothing of the token in use, which must stay.
        this.#context.logger.debug(
          { provider: this.#context.instanceName, reason },
          'renewal of a vault token replaced meanwhile failed; keeping the new token',
        );
        return;
      }
      if (this.#auth.method === 'token') {
        // Nothing to log in with: keep the token until it expires, try again soon.
        this.#state = { ...state, actAt: this.#retryAt(state) };
        throw error;
      }
      this.#context.logger.warn(
        { provider: this.#context.instanceName, reason },
        'vault token renewal failed; logging in again',
      );
      await this.#replaceByLogin(state);
      return;
    }
    this.#renewals.add({ provider: this.#context.instanceName, outcome: 'OK' });
    // Replaced meanwhile: the renewed token is no longer the one in use.
    if (this.#state !== state) return;
    const now = this.#now();
    // A renewal that grants less than asked means the max TTL is near: log in again instead next time.
    const capped = answer.ttlSeconds < state.grantedTtlSeconds;
    this.#state = {
      ...state,
      expiresAt: now + answer.ttlSeconds * 1000,
      renewable: answer.renewable,
      actAt: now + answer.ttlSeconds * 1000 * RENEW_AT_FRACTION,
      nextAction: capped && this.#auth.method !== 'token' ? 'login' : 'renew',
    };
    this.#showToken(this.#state, answer.ttlSeconds);
    this.#problem = undefined;
    this.#context.logger.debug(
      { provider: this.#context.instanceName, ttlSeconds: answer.ttlSeconds },
      'renewed the vault token',
    );
  }

  /**
   * Replaces `state` by a fresh login, through the shared {@link #acquire} so that no two logins run at
   * once. When the login fails, `state` (if still current and alive) is kept and tried again soon.
   */
  async #replaceByLogin(state: TokenState): Promise<void> {
    try {
      await this.#acquire();
    } catch (error) {
      if (this.#state === state) {
        this.#state = this.#now() < state.expiresAt ? { ...state, actAt: this.#retryAt(state) } : undefined;
      }
      throw error;
    }
  }

  #retryAt(state: TokenState): number {
    const now = this.#now();
    const left = state.expiresAt - now;
    return (
      now +
      Math.max(
        50,
        Math.min(RETRY_AFTER_FAILURE_MS, Number.isFinite(left) ? left / 4 : RETRY_AFTER_FAILURE_MS),
      )
    );
  }

  /** Obtains a token (login, or the static token looked up); concurrent callers share one attempt. */
  #acquire(): Promise<TokenState> {
    this.#acquiring ??= (async () => {
      try {
        const state =
          this.#auth.method === 'token'
            ? await this.#adoptStatic(await this.#context.secrets.read(this.#auth.token))
            : await this.#loginOnce();
        this.#state = state;
        this.#problem = undefined;
        this.#showToken(state, state.grantedTtlSeconds);
        return state;
      } catch (error) {
        const problem = isTrousseauError(error)
          ? error
          : new TrousseauError('TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', 'vault authentication failed');
        this.#problem = problem;
        throw problem;
      } finally {
        this.#acquiring = undefined;
        this.#schedule();
      }
    })();
    return this.#acquiring;
  }

  /** Looks a static token up and makes it current; refuses a token Vault no longer knows. */
  async #adoptStatic(token: string): Promise<TokenState> {
    const previous = this.#state;
    if (previous !== undefined && previous.token === token && this.#now() >= previous.expiresAt) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
        `vault token expired at ${new Date(previous.expiresAt).toISOString()}; provide a valid token in ${this.#tokenSource()}`,
      );
    }
    let body: unknown;
    try {
      body = await this.#call('token lookup', 'auth/token/lookup-self', token);
    } catch (error) {
      if (isTrousseauError(error) && error.code === 'TROUSSEAU_ERR_PROVIDER_PERMISSION_DENIED') {
        this.#state = undefined;
        throw new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
          `vault token expired or revoked (Vault refuses it); provide a valid token in ${this.#tokenSource()}`,
          { cause: error },
        );
      }
      throw error;
    }
    const data = asRecord(asRecord(body)?.data);
    const ttl = typeof data?.ttl === 'number' ? data.ttl : 0;
    const renewable = data?.renewable === true;
    const now = this.#now();
    const expiresAt = ttl > 0 ? now + ttl * 1000 : Number.POSITIVE_INFINITY;
    const state: TokenState = {
      token,
      expiresAt,
      renewable,
      grantedTtlSeconds: ttl,
      actAt: ttl > 0 && renewable ? now + ttl * 1000 * RENEW_AT_FRACTION : Number.POSITIVE_INFINITY,
      nextAction: 'renew',
      obtainedAt: now,
    };
    this.#state = state;
    this.#problem = undefined;
    this.#context.logger.info(
      { provider: this.#context.instanceName, ttlSeconds: ttl, renewable },
      'using the configured vault token',
    );
    return state;
  }

  #tokenSource(): string {
    if (this.#auth.method !== 'token') return 'the auth source';
    const path = this.#context.secrets.pathOf(this.#auth.token);
    return path ?? `$${'env' in this.#auth.token ? this.#auth.token.env : 'VAULT_TOKEN'}`;
  }

  async #isAlive(token: string): Promise<boolean> {
    const known = this.#alive;
    if (known !== undefined && known.token === token && this.#now() - known.at < ALIVE_CACHE_MS) return true;
    try {
      await this.#call('token lookup', 'auth/token/lookup-self', token);
      this.#alive = { token, at: this.#now() };
      return true;
    } catch (error) {
      if (isTrousseauError(error) && error.code === 'TROUSSEAU_ERR_PROVIDER_PERMISSION_DENIED') return false;
      throw error;
    }
  }

  /** One login with the configured method; counts it in `vault_logins_total`. */
  async #loginOnce(): Promise<TokenState> {
    const login = this.#login;
    if (login === undefined) throw new Error('unreachable: static tokens do not log in');
    const count = (outcome: Outcome): void =>
      this.#logins.add({ provider: this.#context.instanceName, method: login.method, outcome });
    try {
      const body = await login.credentials();
      const answer = authOf(await this.#call('login', `auth/${login.mount}/login`, undefined, body), 'login');
      const now = this.#now();
      const expiresAt = answer.ttlSeconds > 0 ? now + answer.ttlSeconds * 1000 : Number.POSITIVE_INFINITY;
      const state: TokenState = {
        token: answer.token,
        expiresAt,
        renewable: answer.renewable,
        grantedTtlSeconds: answer.ttlSeconds,
        actAt:
          answer.ttlSeconds > 0
            ? now + answer.ttlSeconds * 1000 * RENEW_AT_FRACTION
            : Number.POSITIVE_INFINITY,
        nextAction: answer.renewable ? 'renew' : 'login',
        obtainedAt: now,
      };
      count('OK');
      this.#context.logger.info(
        {
          provider: this.#context.instanceName,
          method: login.method,
          ttlSeconds: answer.ttlSeconds,
          renewable: answer.renewable,
        },
        'logged in to vault',
      );
      this.#problem = undefined;
      return state;
    } catch (error) {
      let failure: TrousseauError;
      if (!isTrousseauError(error)) {
        failure = new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
          `vault ${login.method} login failed`,
        );
      } else if (error.code === 'TROUSSEAU_ERR_PROVIDER_PERMISSION_DENIED') {
        failure = new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
          `vault ${login.method} login refused: permission denied on auth/${login.mount}/login`,
          { cause: error },
        );
      } else {
        failure = error;
      }
      failure = login.explain(failure);
      count(outcomeOf(failure));
      throw failure;
    }
  }

  /** One auth request with retries of 5xx/429 inside the auth timeout, mapped to a TrousseauError. */
  async #call(
    operation: VaultOperation,
    path: string,
    token: string | undefined,
    body?: unknown,
  ): Promise<unknown> {
    const deadline = this.#now() + this.#authTimeoutMs;
    try {
      return await withRetries({
        deadline,
        now: () => this.#now(),
        attemptTimeoutMs: this.#authTimeoutMs,
        // A refused Kubernetes login answers 500 on Vault 1.4: do not spend the whole timeout on it.
        maxAttempts: 3,
        attempt: (timeoutMs) =>
          body === undefined
            ? this.#http.read(path, { token, timeoutMs })
            : this.#http.write(path, body, { token, timeoutMs }),
      });
    } catch (error) {
      if (error instanceof OutOfTime) {
        throw new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
          `vault did not answer ${operation} in time`,
        );
      }
      const failure = toVaultRequestError(error);
      if (isForbidden(failure)) {
        throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_PERMISSION_DENIED', `permission denied on ${path}`, {
          cause: new Error(failure.message),
        });
      }
      throw mapVaultError(failure, operation, path, path);
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const state = this.#state;
    const at =
      state === undefined ? this.#now() + RETRY_AFTER_FAILURE_MS : Math.min(state.actAt, state.expiresAt);
    if (!Number.isFinite(at)) return;
    const delay = Math.min(2_147_000_000, Math.max(50, at - this.#now()));
    this.#timer = setTimeout(() => void this.maintain(), delay);
    this.#timer.unref();
  }

  /** Starts background maintenance (renewals on time even when no call comes). */
  start(): void {
    this.#schedule();
  }

  #assertOpen(): void {
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'vault provider is closed');
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
