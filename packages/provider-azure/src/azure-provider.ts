import { readFile } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { isAbsolute, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { KeyClient, type CryptographyClient, type KeyVaultKey } from '@azure/keyvault-keys';
import {
  LATENCY_BUCKETS,
  outcomeOf,
  raceAbort,
  TrousseauError,
  type Counter,
  type DecryptInput,
  type EncryptResult,
  type Gauge,
  type Histogram,
  type KeyProvider,
  type Outcome,
  type ProviderCapabilities,
  type ProviderContext,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';
import { trustBundleExpiry } from './certificate-expiry.js';
import { buildCredential } from './credentials.js';
import { mapAzureError, type AzureOperation } from './errors.js';
import { azureKeyId, encodeKeyRef, maxPlaintextBytes, parseKeyRef } from './key-ref.js';
import { SharedWork } from './shared-work.js';
import type { AzureOptions } from './options.js';

/** Cryptography clients kept at once, one per key version in use (a handful after years of rotations). */
const MAX_CRYPTO_CLIENTS = 64;

/** What the provider knows of the key version new data keys are wrapped with. */
interface KeyState {
  readonly version: string;
  readonly keyId: string;
  readonly bits: number;
  /** Why the version cannot wrap (disabled, expired, operations removed), or undefined when it can. */
  readonly unusable: string | undefined;
  readonly fetchedAt: number;
}

interface Clients {
  readonly keyClient: KeyClient;
  readonly crypto: Map<string, CryptographyClient>;
  readonly description: string;
}

/** The instruments of one provider instance, declared when it is made. */
interface AzureInstruments {
  readonly requests: Counter<'provider' | 'operation' | 'outcome'>;
  readonly duration: Histogram<'provider' | 'operation'>;
  readonly keyUsable: Gauge<'provider'>;
  readonly credentialExpiry: Gauge<'provider' | 'credential'>;
}

function declareInstruments(context: ProviderContext): AzureInstruments {
  const { metrics } = context;
  return {
    requests: metrics.counter({
      name: 'azure_requests_total',
      help: 'Key Vault operations by provider instance, operation and outcome (gRPC status name)',
      labelNames: ['provider', 'operation', 'outcome'],
    }),
    duration: metrics.histogram({
      name: 'azure_request_duration_seconds',
      help: 'Key Vault operation latency, retries and a re-login included, by provider instance and operation',
      labelNames: ['provider', 'operation'],
      buckets: LATENCY_BUCKETS,
    }),
    keyUsable: metrics.gauge({
      name: 'azure_key_usable',
      help: '1 when the last health check found the key version usable, else 0',
      labelNames: ['provider'],
    }),
    // Shared with other providers (same declaration): what an operator must renew before it runs out.
    credentialExpiry: metrics.gauge({
      name: 'credential_expiry_timestamp_seconds',
      help: 'Unix time at which a key, certificate or credential the provider instance relies on expires, by credential',
      labelNames: ['provider', 'credential'],
    }),
  };
}

/** RSA key sizes Key Vault makes; a ciphertext is exactly the modulus length. */
const RSA_CIPHERTEXT_BYTES = new Set([256, 384, 512]);

/**
 * Azure Key Vault / Managed HSM: the data key is wrapped with RSA-OAEP(-256) by a Key Vault key version.
 * The version (with key name and algorithm) goes into the envelope's key reference, so unwrap always
 * addresses the version that wrapped; the key id follows the latest version (or the pinned one), read at
 * every status check.
 */
export class AzureKeyProvider implements KeyProvider {
  readonly #options: AzureOptions;
  readonly #context: ProviderContext;
  readonly #labels: { readonly provider: string };
  readonly #metrics: AzureInstruments;
  #agent: HttpsAgent | undefined;
  #clients: Promise<Clients> | undefined;
  #current: KeyState | undefined;
  #lastGoodKeyId: string | undefined;
  readonly #refreshes: SharedWork<KeyState>;
  /** Key sizes of versions seen, to reject a ciphertext of the wrong length without a round trip. */
  readonly #bitsByVersion = new Map<string, number>();
  #closed = false;

  constructor(options: AzureOptions, context: ProviderContext) {
    this.#options = options;
    this.#context = context;
    this.#labels = { provider: context.instanceName };
    this.#refreshes = new SharedWork(options.timeoutSeconds * 1000);
    this.#metrics = declareInstruments(context);
  }

  get capabilities(): ProviderCapabilities {
    return {
      batching: false,
      maxPlaintextBytes: maxPlaintextBytes(this.#current?.bits ?? 2048, this.#options.algorithm),
      // A wrapped key is as long as the RSA modulus, whatever the plaintext (2048 bits until the key is read).
      maxCiphertextBytes: () => (this.#current?.bits ?? 2048) / 8,
      // `<key name>/<key version>/<algorithm>`; Key Vault and Managed HSM key versions are 32 characters.
      maxKeyRefBytes: this.#options.keyName.length + 1 + 32 + 1 + this.#options.algorithm.length,
    };
  }

  async encrypt(plaintext: Uint8Array, request: RequestContext): Promise<EncryptResult> {
    this.#assertOpen();
    return this.#call('wrapKey', request, async (clients, signal) => {
      const stale =
        this.#current === undefined ||
        this.#context.clock.now() - this.#current.fetchedAt >= this.#options.keyRefreshIntervalSeconds * 1000;
      const state = stale ? await this.#sharedRefresh(clients, signal) : (this.#current as KeyState);
      if (state.unusable !== undefined) {
        throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_KEY_GONE', `azure: ${state.unusable}`);
      }
      const limit = maxPlaintextBytes(state.bits, this.#options.algorithm);
      if (plaintext.length > limit) {
        throw new TrousseauError(
          'TROUSSEAU_ERR_REQUEST_TOO_LARGE',
          `azure: ${this.#options.algorithm} with a ${state.bits}-bit key wraps at most ${limit} bytes, got ${plaintext.length}`,
        );
      }
      const crypto = this.#cryptoClient(clients, this.#options.keyName, state.version);
      const result = await crypto.wrapKey(this.#options.algorithm, plaintext, { abortSignal: signal });
      return {
        ciphertext: result.result,
        keyId: state.keyId,
        keyRef: encodeKeyRef({
          keyName: this.#options.keyName,
          version: state.version,
          algorithm: this.#options.algorithm,
        }),
      };
    });
  }

  async decrypt(input: DecryptInput, request: RequestContext): Promise<Uint8Array> {
    this.#assertOpen();
    const ref = parseKeyRef(input.keyRef);
    if (ref === undefined) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        'azure: the key reference is not <key name>/<version>/<algorithm>',
      );
    }
    const knownBits = this.#bitsByVersion.get(`${ref.keyName}/${ref.version}`);
    const lengthOk =
      knownBits === undefined
        ? RSA_CIPHERTEXT_BYTES.has(input.ciphertext.length)
        : input.ciphertext.length === knownBits / 8;
    if (!lengthOk) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        `azure: a ciphertext of ${input.ciphertext.length} bytes cannot come from an RSA key`,
      );
    }
    return this.#call('unwrapKey', request, async (clients, signal) => {
      const crypto = this.#cryptoClient(clients, ref.keyName, ref.version);
      const result = await crypto.unwrapKey(ref.algorithm, input.ciphertext, { abortSignal: signal });
      return result.result;
    });
  }

  async status(request: RequestContext): Promise<ProviderStatus> {
    this.#assertOpen();
    let state: KeyState;
    try {
      state = await this.#call('getKey', request, (clients, signal) => this.#refresh(clients, signal));
    } catch (error) {
      const failure = mapAzureError(error, 'getKey', request.signal);
      this.#metrics.keyUsable.set(this.#labels, 0);
      return {
        healthy: false,
        reason: failure.message,
        code: failure.code,
        ...(this.#lastGoodKeyId === undefined ? {} : { keyId: this.#lastGoodKeyId }),
      };
    }
    if (state.unusable !== undefined) {
      this.#metrics.keyUsable.set(this.#labels, 0);
      return {
        healthy: false,
        reason: `azure: ${state.unusable}`,
        keyId: state.keyId,
        code: 'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      };
    }
    this.#metrics.keyUsable.set(this.#labels, 1);
    this.#lastGoodKeyId = state.keyId;
    return { healthy: true, keyId: state.keyId };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clients = undefined;
    this.#agent?.destroy();
    this.#agent = undefined;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'azure provider is closed');
  }

  /**
   * Runs one provider operation: bounded by the caller's deadline (or `timeoutSeconds` when it has none),
   * SDK errors mapped to TrousseauErrors, metrics recorded. After Key Vault refuses a token the clients
   * are rebuilt (a fresh credential, so a fresh token) and the operation is tried once more.
   */
  async #call<T>(
    operation: AzureOperation,
    request: RequestContext,
    work: (clients: Clients, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const signal = Number.isFinite(request.deadline)
      ? request.signal
      : AbortSignal.any([
          request.signal,
          AbortSignal.timeout(Math.ceil(this.#options.timeoutSeconds * 1000)),
        ]);
    const started = this.#context.clock.now();
    let outcome: Outcome = 'OK';
    try {
      for (let attempt = 0; ; attempt += 1) {
        const fresh = this.#clients === undefined;
        try {
          const clients = await raceAbort(this.#getClients(), signal, `azure ${operation}`);
          return await raceAbort(work(clients, signal), signal, `azure ${operation}`);
        } catch (error) {
          const failure = mapAzureError(error, operation, signal);
          if (failure.code === 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED') {
            this.#clients = undefined;
            if (!fresh && attempt === 0 && !signal.aborted) {
              request.logger.info(
                { provider: this.#context.instanceName },
                'azure: token refused, logging in again',
              );
              continue;
            }
          }
          throw failure;
        }
      }
    } catch (error) {
      outcome = outcomeOf(error);
      throw error;
    } finally {
      // The guard behind context.metrics drops a bad report instead of throwing it, so reporting here
      // can never turn a good answer into an error.
      this.#metrics.requests.add({ ...this.#labels, operation, outcome });
      this.#metrics.duration.observe(
        { ...this.#labels, operation },
        (this.#context.clock.now() - started) / 1000,
      );
    }
  }

  /**
   * One refresh for all the encrypts that find the cached state stale at once (a burst at start): it runs
   * under its own `timeoutSeconds` bound, each caller still waits no longer than its own deadline, and it
   * is abandoned (no request, no retry) once every caller has gone.
   */
  #sharedRefresh(clients: Clients, signal: AbortSignal): Promise<KeyState> {
    return this.#refreshes.join(signal, 'azure getKey', (shared) => this.#refresh(clients, shared));
  }

  /** Reads the key version new data keys use (the pinned one or the latest) and caches what it says. */
  async #refresh(clients: Clients, signal: AbortSignal): Promise<KeyState> {
    const key = await clients.keyClient.getKey(this.#options.keyName, {
      ...(this.#options.keyVersion === undefined ? {} : { version: this.#options.keyVersion }),
      abortSignal: signal,
    });
    const state = this.#stateOf(key);
    const expiresOn = key.properties.expiresOn?.getTime();
    const keyExpiry = { ...this.#labels, credential: 'key' };
    if (expiresOn === undefined) this.#metrics.credentialExpiry.remove(keyExpiry);
    else this.#metrics.credentialExpiry.set(keyExpiry, expiresOn / 1000);
    const previous = this.#current;
    this.#current = state;
    if (state.unusable === undefined) this.#lastGoodKeyId = state.keyId;
    this.#bitsByVersion.set(`${this.#options.keyName}/${state.version}`, state.bits);
    if (previous !== undefined && previous.keyId !== state.keyId) {
      this.#context.logger.info(
        { provider: this.#context.instanceName, keyId: state.keyId, previousKeyId: previous.keyId },
        'azure: key version changed',
      );
    }
    if (state.unusable !== undefined && previous?.unusable !== state.unusable) {
      this.#context.logger.warn(
        { provider: this.#context.instanceName, keyId: state.keyId },
        `azure: ${state.unusable}`,
      );
    }
    return state;
  }

  #stateOf(key: KeyVaultKey): KeyState {
    const version = key.properties.version;
    if (version === undefined || version === '') {
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_INTERNAL',
        'azure: Key Vault answered a key without a version',
      );
    }
    if (key.keyType !== undefined && !key.keyType.startsWith('RSA')) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
        `azure: key ${this.#options.keyName} is of type ${key.keyType}; wrapping needs an RSA key`,
      );
    }
    const modulus = key.key?.n;
    let bits = 2048;
    if (modulus !== undefined) {
      let bytes = modulus.length;
      for (let index = 0; index < modulus.length && modulus[index] === 0; index += 1) bytes -= 1;
      bits = bytes * 8;
    }
    const name = `key ${this.#options.keyName} version ${version}`;
    const now = this.#context.clock.now();
    const ops = key.keyOperations;
    let unusable: string | undefined;
    if (key.properties.enabled === false) unusable = `${name} is disabled in Key Vault`;
    else if (key.properties.notBefore !== undefined && now < key.properties.notBefore.getTime())
      unusable = `${name} is not valid before ${key.properties.notBefore.toISOString()}`;
    else if (key.properties.expiresOn !== undefined && now >= key.properties.expiresOn.getTime())
      unusable = `${name} expired at ${key.properties.expiresOn.toISOString()}`;
    else if (ops !== undefined && !(ops.includes('wrapKey') && ops.includes('unwrapKey')))
      unusable = `${name} does not permit wrapKey and unwrapKey (key_ops: ${ops.join(', ')})`;
    return {
      version,
      keyId: azureKeyId(this.#options.vaultUrl, this.#options.keyName, version, this.#options.algorithm),
      bits,
      unusable,
      fetchedAt: now,
    };
  }

  #cryptoClient(clients: Clients, keyName: string, version: string): CryptographyClient {
    const id = `${keyName}/${version}`;
    let crypto = clients.crypto.get(id);
    if (crypto === undefined) {
      crypto = clients.keyClient.getCryptographyClient(keyName, { keyVersion: version });
      // The key reference comes from the stored ciphertext, which a caller of the socket chooses: keep a
      // bounded number of clients, dropping the oldest, so that forged references cannot grow memory
      // without end (packages/server/test/abuse/forged-key-references.test.ts).
      if (clients.crypto.size >= MAX_CRYPTO_CLIENTS) {
        const oldest = clients.crypto.keys().next();
        if (oldest.done !== true) clients.crypto.delete(oldest.value);
      }
      clients.crypto.set(id, crypto);
    }
    return crypto;
  }

  /**
   * The clients, built at first use and again after a refused token. Never after close(): a call still in
   * flight that meets a refused token then fails SHUTTING_DOWN instead of making an agent and a credential
   * that nothing would destroy.
   */
  #getClients(): Promise<Clients> {
    this.#assertOpen();
    if (this.#clients === undefined) {
      const building = this.#buildClients();
      this.#clients = building;
      building.catch(() => {
        if (this.#clients === building) this.#clients = undefined;
      });
    }
    return this.#clients;
  }

  async #buildClients(): Promise<Clients> {
    const agent = await this.#getAgent();
    const { credential, description } = await buildCredential(this.#options, this.#context, agent);
    // Closed while the credential was being made (it reads secret files): nothing of it may be used.
    this.#assertOpen();
    const keyClient = new KeyClient(this.#options.vaultUrl, credential, {
      agent,
      disableChallengeResourceVerification: this.#options.disableChallengeResourceVerification,
      retryOptions: { maxRetries: this.#options.maxRetries, retryDelayInMs: this.#options.retryDelayMs },
      userAgentOptions: { userAgentPrefix: 'trousseau' },
    });
    this.#context.logger.debug(
      { provider: this.#context.instanceName, vaultUrl: this.#options.vaultUrl, credential: description },
      'azure: clients built',
    );
    return { keyClient, crypto: new Map(), description };
  }

  /** One keep-alive HTTPS agent for Key Vault and Entra ID, trusting `caFile` in addition to Node's roots. */
  async #getAgent(): Promise<HttpsAgent> {
    this.#assertOpen();
    if (this.#agent !== undefined) return this.#agent;
    let ca: string[] | undefined;
    if (this.#options.caFile !== undefined) {
      const file = isAbsolute(this.#options.caFile)
        ? this.#options.caFile
        : resolve(this.#context.configDir, this.#options.caFile);
      try {
        const bundle = await readFile(file, 'utf8');
        ca = [...rootCertificates, bundle];
        const expiry = trustBundleExpiry(bundle);
        if (expiry !== undefined)
          this.#metrics.credentialExpiry.set({ ...this.#labels, credential: 'tls_ca' }, expiry / 1000);
      } catch (error) {
        throw new TrousseauError('TROUSSEAU_ERR_CONFIG_READ', `azure: cannot read caFile ${file}`, {
          cause: error,
        });
      }
    }
    // Closed while reading caFile: close() has already run, so an agent made now would never be destroyed.
    this.#assertOpen();
    // Another call may have built one meanwhile.
    this.#agent ??= new HttpsAgent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) });
    return this.#agent;
  }
}
