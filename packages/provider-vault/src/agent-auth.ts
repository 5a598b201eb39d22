import { TrousseauError, type ProviderContext } from '@trousseau/core';
import { OutOfTime, withRetries } from './retry.js';
import { isForbidden, isMissingToken } from './vault-errors.js';
import { toVaultRequestError, type VaultHttp } from './vault-http.js';
import type { TokenSource } from './vault-session.js';

interface AgentAuthOptions {
  readonly http: VaultHttp;
  readonly context: ProviderContext;
  /** The agent's address, for messages. */
  readonly address: string;
  /** Upper bound of the lookup that tells a dead agent token from a policy refusal, ms. */
  readonly authTimeoutMs: number;
}

/**
 * `auth.method: agent`: Vault Agent or Vault Proxy on the node logs in, renews and re-authenticates, and
 * adds its token to every request it forwards (`use_auto_auth_token`); Trousseau sends none and holds no
 * credential. What is left here is telling apart, when Vault refuses a call, a policy that no longer
 * grants the key (the key is gone for Trousseau) from an agent whose token is dead or missing (an auth
 * failure, which the agent must heal): a `lookup-self` through the agent says which.
 */
export class AgentAuth implements TokenSource {
  readonly #http: VaultHttp;
  readonly #context: ProviderContext;
  readonly #address: string;
  readonly #authTimeoutMs: number;

  constructor(options: AgentAuthOptions) {
    this.#http = options.http;
    this.#context = options.context;
    this.#address = options.address;
    this.#authTimeoutMs = options.authTimeoutMs;
  }

  /** No token: the agent adds its own. */
  async token(): Promise<undefined> {
    return undefined;
  }

  /** The agent sent a request without a token: it has none yet, or its listener does not add it. */
  missingToken(): TrousseauError {
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
      `the Vault Agent at ${this.#address} forwarded the request without a token: its auto-auth has no token yet, or its listener does not add it (set use_auto_auth_token)`,
    );
  }

  /**
   * Vault answered 403 to a request the agent forwarded. Undefined when the agent's token is alive (the
   * policy refuses the path); throws an auth failure when Vault refuses the agent's token itself.
   */
  async onForbidden(): Promise<undefined> {
    const now = (): number => this.#context.clock.now();
    try {
      await withRetries({
        deadline: now() + this.#authTimeoutMs,
        now,
        attemptTimeoutMs: this.#authTimeoutMs,
        maxAttempts: 2,
        attempt: (timeoutMs) => this.#http.read('auth/token/lookup-self', { timeoutMs }),
      });
      return undefined;
    } catch (error) {
      if (error instanceof OutOfTime) {
        throw new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
          'vault did not answer token lookup in time',
        );
      }
      const failure = toVaultRequestError(error);
      if (isMissingToken(failure)) throw this.missingToken();
      if (isForbidden(failure)) {
        throw new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
          `Vault refuses the token the Vault Agent at ${this.#address} adds (expired or revoked): the agent's auto-auth must log in again (see its log)`,
          { cause: new Error(failure.message) },
        );
      }
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
        `vault token lookup through the agent failed: ${failure.message}`,
        { cause: new Error(failure.message) },
      );
    }
  }

  /** Nothing to keep: the agent renews its token. */
  async maintain(): Promise<void> {}

  start(): void {
    this.#context.logger.info(
      { provider: this.#context.instanceName, address: this.#address },
      'vault requests go through a Vault Agent, which adds its own token',
    );
  }

  close(): void {}
}
