import {
  isTrousseauError,
  raceAbort,
  TrousseauError,
  type DecryptInput,
  type EncryptResult,
  type KeyProvider,
  type ProviderCapabilities,
  type ProviderContext,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';
import { AgentAuth } from './agent-auth.js';
import { maxTransitCiphertextBytes } from './ciphertext-size.js';
import { ciphertextVersion, type KeyIdentity } from './key-state.js';
import { KeyWatch } from './key-watch.js';
import type { VaultOptions } from './options.js';
import { StatusProbe } from './status-probe.js';
import { TokenManager } from './token-manager.js';
import { TransitClient } from './transit-client.js';
import { VaultHttp } from './vault-http.js';
import { VaultSession } from './vault-session.js';

/**
 * HashiCorp Vault Transit as a key provider: the {@link KeyProvider} adapter over the parts that do the
 * work. Encrypt sends the plaintext to `<mount>/encrypt/<key>` ({@link TransitClient}, which batches) and
 * keeps Vault's ciphertext string (`vault:vN:...`) as the payload: it names its key version, so no key
 * reference is stored. The key id comes from the key's metadata ({@link KeyWatch}); Status is a real
 * check ({@link StatusProbe}); the token is the {@link TokenManager}'s, or with `auth.method: agent` a
 * Vault Agent's ({@link AgentAuth}).
 */
export class VaultKeyProvider implements KeyProvider {
  readonly capabilities: ProviderCapabilities;
  readonly #context: ProviderContext;
  readonly #session: VaultSession;
  readonly #key: KeyWatch;
  readonly #transit: TransitClient;
  readonly #probe: StatusProbe;
  #closed = false;

  private constructor(options: VaultOptions, context: ProviderContext, http: VaultHttp) {
    this.#context = context;
    const keyPath = `${options.transitMount}/keys/${options.keyName}`;
    const authTimeoutMs = options.timeouts.authSeconds * 1000;
    const tokens =
      options.auth.method === 'agent'
        ? new AgentAuth({ http, context, address: options.address, authTimeoutMs })
        : new TokenManager({ http, auth: options.auth, context, authTimeoutMs });
    this.#session = new VaultSession({
      http,
      tokens,
      context,
      requestTimeoutMs: options.timeouts.requestSeconds * 1000,
      keyPath,
    });
    const identity: KeyIdentity = {
      address: options.address,
      namespace: options.namespace,
      mount: options.transitMount,
      keyName: options.keyName,
    };
    this.#key = new KeyWatch({
      session: this.#session,
      context,
      identity,
      intervalMs: options.keyRefreshIntervalSeconds * 1000,
    });
    this.#transit = new TransitClient({
      session: this.#session,
      context,
      mount: options.transitMount,
      keyName: options.keyName,
      batching: options.batching,
    });
    this.#probe = new StatusProbe({
      session: this.#session,
      key: this.#key,
      transit: this.#transit,
      keyPath,
    });
    this.capabilities = {
      batching: options.batching.enabled,
      maxCiphertextBytes: maxTransitCiphertextBytes,
      // The Transit ciphertext names its key version: no key reference.
      maxKeyRefBytes: 0,
    };
  }

  /**
   * Builds the provider and makes a first attempt to authenticate and read the key. Vault being down
   * at start is not fatal (Status says why and the provider recovers by itself); unreadable TLS files are.
   */
  static async open(options: VaultOptions, context: ProviderContext): Promise<VaultKeyProvider> {
    const http = await VaultHttp.open({
      address: options.address,
      namespace: options.namespace,
      tls: options.tls,
      configDir: context.configDir,
    });
    const provider = new VaultKeyProvider(options, context, http);
    try {
      await provider.#key.refresh(context.clock.now() + options.timeouts.authSeconds * 1000);
    } catch (error) {
      context.logger.warn(
        { provider: context.instanceName, reason: isTrousseauError(error) ? error.message : 'unknown' },
        'vault is not ready yet; the provider keeps trying',
      );
    }
    provider.#session.tokens.start();
    provider.#key.start();
    return provider;
  }

  /** The key id of the latest key version known (for tests and tools). */
  get keyId(): string | undefined {
    return this.#key.current?.keyId;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'vault provider is closed');
  }

  /** The caller's deadline, bounded by the request timeout when the caller set none. */
  #deadlineOf(request: RequestContext): number {
    return Math.min(request.deadline, this.#session.now() + this.#session.requestTimeoutMs);
  }

  async encrypt(plaintext: Uint8Array, request: RequestContext): Promise<EncryptResult> {
    this.#assertOpen();
    const input = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).toString(
      'base64',
    );
    if (this.#key.current === undefined) {
      // No key metadata yet (Vault was down at start): read it first, raced on the caller's signal.
      const work = (async (): Promise<EncryptResult> => {
        await this.#key.refresh(this.#deadlineOf(request), request.signal);
        const ciphertext = await this.#transit.encrypt(input, request);
        return {
          ciphertext: Buffer.from(ciphertext, 'utf8'),
          keyId: await this.#keyIdFor(ciphertext, request),
        };
      })();
      return raceAbort(work, request.signal, 'vault encrypt');
    }
    // The transit call answers the caller at its deadline or cancel by itself (the coalescer rejects a
    // queued or in-flight call when its signal aborts): a lone call needs no second race.
    const ciphertext = await this.#transit.encrypt(input, request);
    // The key as known now (a background read may have moved it on while the call was out).
    const key = this.#key.current;
    const version = ciphertextVersion(ciphertext);
    const keyId =
      key !== undefined && version !== undefined && version <= key.latestVersion
        ? key.keyId
        : await raceAbort(this.#keyIdFor(ciphertext, request), request.signal, 'vault encrypt');
    return { ciphertext: Buffer.from(ciphertext, 'utf8'), keyId };
  }

  /**
   * The key id to return with a fresh ciphertext: when it names a version newer than the one known, the
   * key was rotated: read the metadata now so the id matches what Status will report.
   */
  async #keyIdFor(ciphertext: string, request: RequestContext): Promise<string> {
    const version = ciphertextVersion(ciphertext);
    if (version === undefined) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_INTERNAL',
        'vault returned a ciphertext without a vault:vN: prefix',
      );
    }
    let key = this.#key.current;
    if (key === undefined || version > key.latestVersion) {
      try {
        key = await this.#key.refresh(this.#deadlineOf(request), request.signal);
      } catch (error) {
        if (key === undefined) throw error;
        request.logger.warn(
          {
            provider: this.#context.instanceName,
            version,
            reason: isTrousseauError(error) ? error.message : '',
          },
          'vault key was rotated but its metadata could not be read yet; returning the last known key id',
        );
      }
    }
    return key.keyId;
  }

  async decrypt(input: DecryptInput, request: RequestContext): Promise<Uint8Array> {
    this.#assertOpen();
    const ciphertext = Buffer.from(
      input.ciphertext.buffer,
      input.ciphertext.byteOffset,
      input.ciphertext.byteLength,
    ).toString('utf8');
    if (ciphertextVersion(ciphertext) === undefined) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        'payload is not a Vault transit ciphertext (vault:v<N>:<base64>)',
      );
    }
    const plaintext = await raceAbort(
      this.#transit.decrypt(ciphertext, request),
      request.signal,
      'vault decrypt',
    );
    return Buffer.from(plaintext, 'base64');
  }

  async status(request: RequestContext): Promise<ProviderStatus> {
    this.#assertOpen();
    return this.#probe.check(request, this.#deadlineOf(request));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#key.close();
    this.#session.tokens.close();
    this.#transit.close();
    this.#session.http.close();
  }
}
