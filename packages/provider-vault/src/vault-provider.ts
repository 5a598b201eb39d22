import {
  isTrousseauError,
  raceAbort,
  TrousseauError,
  type DecryptInput,
  type Histogram,
  type EncryptResult,
  type KeyProvider,
  type ProviderCapabilities,
  type ProviderContext,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';
import { Coalescer, type PendingItem } from './coalescer.js';
import {
  ciphertextVersion,
  isRecreated,
  parseKeyRead,
  type KeyIdentity,
  type KeyState,
} from './key-state.js';
import type { VaultOptions } from './options.js';
import { OutOfTime, withRetries } from './retry.js';
import { SharedFlight } from './shared-flight.js';
import { TokenManager } from './token-manager.js';
import {
  decryptItemError,
  encryptItemError,
  isForbidden,
  isSealed,
  mapVaultError,
  type VaultOperation,
} from './vault-errors.js';
import { toVaultRequestError, VaultHttp, type VaultRequestError } from './vault-http.js';

/** Callers of one batch answered per turn of the event loop. */
const SETTLE_CHUNK = 8;

/** What the status check encrypts and decrypts to prove the key works; not a secret. */
const PROBE_PLAINTEXT = Buffer.from('trousseau status probe').toString('base64');

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

/** One transit operation's answer for each item: the value, or Vault's per-item error string. */
type ItemOutcome = { readonly value: string } | { readonly error: string };

/**
 * HashiCorp Vault Transit as a key provider. Encrypt sends the plaintext to `<mount>/encrypt/<key>` and
 * keeps Vault's ciphertext string (`vault:vN:...`) as the payload: it names its key version, so no key
 * reference is stored. Concurrent calls are coalesced into `batch_input` requests; the key's metadata
 * is re-read on an interval and on demand, so a rotation in Vault changes the key id.
 */
export class VaultKeyProvider implements KeyProvider {
  readonly capabilities: ProviderCapabilities;
  readonly #options: VaultOptions;
  readonly #context: ProviderContext;
  readonly #http: VaultHttp;
  readonly #tokens: TokenManager;
  readonly #identity: KeyIdentity;
  readonly #keyPath: string;
  readonly #encryptPath: string;
  readonly #decryptPath: string;
  readonly #encryptQueue: Coalescer<string>;
  readonly #decryptQueue: Coalescer<string>;
  readonly #requestTimeoutMs: number;
  readonly #batchSize: Histogram<'provider'>;
  #key: KeyState | undefined;
  readonly #keyReads = new SharedFlight<KeyState>('vault key read');
  #refreshTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: VaultOptions, context: ProviderContext, http: VaultHttp) {
    this.#options = options;
    this.#context = context;
    this.#http = http;
    this.#requestTimeoutMs = options.timeouts.requestSeconds * 1000;
    this.#batchSize = context.metrics.histogram({
      name: 'provider_batch_size',
      help: 'Items per batched backend request (1 = a lone call), by provider instance',
      labelNames: ['provider'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    });
    this.#tokens = new TokenManager({
      http,
      auth: options.auth,
      context,
      authTimeoutMs: options.timeouts.authSeconds * 1000,
    });
    this.#identity = {
      address: options.address,
      namespace: options.namespace,
      mount: options.transitMount,
      keyName: options.keyName,
    };
    this.#keyPath = `${options.transitMount}/keys/${options.keyName}`;
    this.#encryptPath = `${options.transitMount}/encrypt/${options.keyName}`;
    this.#decryptPath = `${options.transitMount}/decrypt/${options.keyName}`;
    this.capabilities = { batching: options.batching.enabled };
    const coalescer = (operation: 'encrypt' | 'decrypt'): Coalescer<string> =>
      new Coalescer<string>({
        enabled: options.batching.enabled,
        maxBatchSize: options.batching.maxBatchSize,
        what: `vault ${operation}`,
        send: (items) => this.#send(operation, items),
      });
    this.#encryptQueue = coalescer('encrypt');
    this.#decryptQueue = coalescer('decrypt');
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
      await provider.#refreshKey(context.clock.now() + options.timeouts.authSeconds * 1000);
    } catch (error) {
      context.logger.warn(
        { provider: context.instanceName, reason: isTrousseauError(error) ? error.message : 'unknown' },
        'vault is not ready yet; the provider keeps trying',
      );
    }
    provider.#tokens.start();
    provider.#scheduleRefresh();
    return provider;
  }

  /** The key id of the latest key version known (for tests and tools). */
  get keyId(): string | undefined {
    return this.#key?.keyId;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'vault provider is closed');
  }

  /** Now, on the injected clock: the one request deadlines and token lifetimes are on. */
  #now(): number {
    return this.#context.clock.now();
  }

  /** The caller's deadline, bounded by the request timeout when the caller set none. */
  #deadlineOf(request: RequestContext): number {
    return Math.min(request.deadline, this.#now() + this.#requestTimeoutMs);
  }

  async encrypt(plaintext: Uint8Array, request: RequestContext): Promise<EncryptResult> {
    this.#assertOpen();
    const work = (async (): Promise<EncryptResult> => {
      if (this.#key === undefined) await this.#refreshKey(this.#deadlineOf(request), request.signal);
      const input = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).toString(
        'base64',
      );
      const ciphertext = await this.#encryptQueue.submit(input, request);
      return {
        ciphertext: Buffer.from(ciphertext, 'utf8'),
        keyId: await this.#keyIdFor(ciphertext, request),
      };
    })();
    return raceAbort(work, request.signal, 'vault encrypt');
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
    let key = this.#key;
    if (key === undefined || version > key.latestVersion) {
      try {
        key = await this.#refreshKey(this.#deadlineOf(request), request.signal);
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
      this.#decryptQueue.submit(ciphertext, request),
      request.signal,
      'vault decrypt',
    );
    return Buffer.from(plaintext, 'base64');
  }

  /**
   * Sends one transit request for the items (a plain body for one, `batch_input` for more) and settles
   * every item: its value, its own per-item error, or the request's error.
   */
  async #send(operation: 'encrypt' | 'decrypt', items: readonly PendingItem<string>[]): Promise<void> {
    const live = items.filter((item) => !item.settled);
    if (live.length === 0) return;
    this.#batchSize.observe({ provider: this.#context.instanceName }, live.length);
    const deadline = Math.min(
      Math.max(...live.map((item) => item.deadline)),
      this.#now() + this.#requestTimeoutMs,
    );
    const abandon = untilAllAborted(live.map((item) => item.signal));
    let outcomes: ItemOutcome[];
    try {
      outcomes = await this.#transit(
        operation,
        live.map((item) => item.input),
        deadline,
        abandon.signal,
        () => live.every((item) => item.settled),
      );
    } finally {
      abandon.dispose();
    }
    const keyPath = this.#keyPath;
    // A large batch's callers are answered a chunk per turn of the event loop, so their replies go out
    // while the next calls already come in, instead of the whole batch moving in lock-step.
    for (let start = 0; start < live.length; start += SETTLE_CHUNK) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      live.slice(start, start + SETTLE_CHUNK).forEach((item, offset) => {
        const outcome = outcomes[start + offset];
        if (outcome === undefined) return;
        if ('value' in outcome) item.resolve(outcome.value);
        else
          item.reject(
            operation === 'encrypt'
              ? encryptItemError(outcome.error, keyPath)
              : decryptItemError(outcome.error, keyPath),
          );
      });
    }
  }

  /**
   * One transit encrypt or decrypt request with retries, token refresh on 403 and both partial-failure
   * behaviours (200 on older Vault, 400 with the same body on newer). Returns one outcome per input;
   * throws when the request as a whole failed.
   */
  async #transit(
    operation: 'encrypt' | 'decrypt',
    inputs: readonly string[],
    deadline: number,
    signal: AbortSignal | undefined,
    abandoned: () => boolean = () => false,
  ): Promise<ItemOutcome[]> {
    const path = operation === 'encrypt' ? this.#encryptPath : this.#decryptPath;
    const field = operation === 'encrypt' ? 'plaintext' : 'ciphertext';
    const resultField = operation === 'encrypt' ? 'ciphertext' : 'plaintext';
    const batch = inputs.length > 1;
    const body = batch
      ? { batch_input: inputs.map((value) => ({ [field]: value })) }
      : { [field]: inputs[0] };
    let answer: unknown;
    try {
      answer = await this.#authorized(
        operation,
        path,
        deadline,
        (token, timeoutMs) => this.#http.write(path, body, { token, timeoutMs, signal }),
        abandoned,
      );
    } catch (error) {
      const failure = error instanceof PartialFailure ? error : undefined;
      if (failure === undefined || !batch) throw error;
      answer = failure.body;
    }
    const data = asRecord(asRecord(answer)?.data);
    if (!batch) {
      const value = data?.[resultField];
      if (typeof value !== 'string') {
        throw new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_INTERNAL',
          `vault ${operation} answer has no ${resultField}`,
        );
      }
      return [{ value }];
    }
    const results = data?.batch_results;
    if (!Array.isArray(results) || results.length !== inputs.length) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_INTERNAL',
        `vault ${operation} answered ${Array.isArray(results) ? results.length : 'no'} batch results for ${inputs.length} items`,
      );
    }
    return results.map((result): ItemOutcome => {
      const record = asRecord(result);
      const error = record?.error;
      if (typeof error === 'string' && error !== '') return { error };
      const value = record?.[resultField];
      return typeof value === 'string' ? { value } : { error: `no ${resultField} in the batch result` };
    });
  }

  /**
   * Runs a Vault request with a token: retries 5xx/429 inside the deadline; on 403 asks the token
   * manager for a fresh token (re-login, or a new static token) and tries once more. A 400 whose body
   * carries `batch_results` is a partial failure, handed back as {@link PartialFailure}.
   */
  async #authorized(
    operation: VaultOperation,
    path: string,
    deadline: number,
    request: (token: string, timeoutMs: number) => Promise<unknown>,
    abandoned: () => boolean = () => false,
  ): Promise<unknown> {
    let token = await this.#tokens.token();
    for (let round = 0; ; round++) {
      const usedToken = token;
      try {
        return await withRetries({
          deadline,
          now: () => this.#now(),
          attemptTimeoutMs: this.#requestTimeoutMs,
          attempt: (timeoutMs) => request(usedToken, timeoutMs),
          abandoned,
        });
      } catch (error) {
        if (error instanceof OutOfTime) throw this.#outOfTime(operation, error.last, path);
        const failure = toVaultRequestError(error);
        if (failure.kind === 'http' && failure.status === 400) {
          const body = failure.responseBody();
          if (Array.isArray(asRecord(asRecord(body)?.data)?.batch_results)) throw new PartialFailure(body);
        }
        if (isForbidden(failure) && round === 0) {
          const fresh = await this.#tokens.onForbidden(usedToken);
          if (fresh !== undefined) {
            token = fresh;
            continue;
          }
        }
        if ((failure.kind === 'timeout' || failure.kind === 'aborted') && this.#now() >= deadline - 1)
          throw this.#outOfTime(operation, failure, path);
        if (isForbidden(failure)) {
          // The token is alive (or was just replaced and refused too): its policy no longer grants this
          // path of the key. For Trousseau the key is gone, which Status must say with an error.
          throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_KEY_GONE', `permission denied on ${path}`, {
            cause: new Error(failure.message),
          });
        }
        throw mapVaultError(failure, operation, path, this.#keyPath);
      }
    }
  }

  #outOfTime(operation: VaultOperation, last: VaultRequestError | undefined, path: string): TrousseauError {
    const reason =
      last === undefined ? '' : ` (last: ${mapVaultError(last, operation, path, this.#keyPath).message})`;
    return new TrousseauError(
      'TROUSSEAU_ERR_DEADLINE_EXCEEDED',
      `vault ${operation} did not finish before the caller's deadline${reason}`,
    );
  }

  /**
   * Reads the key's metadata (single flight) and updates the key id. A read showing an older version of
   * the same key (a performance standby behind the active node) is ignored: going back would hand the
   * apiserver a key id it saw before (A -> B -> A), which the KMS contract forbids. A re-created key may
   * legitimately come back with a lower version; its versions' creation times tell it apart. The read is
   * shared by the callers that need it at once and abandoned (no retry) once all of them have gone; one
   * without a signal (start-up, the background refresh) keeps it going.
   */
  #refreshKey(deadline: number, signal?: AbortSignal): Promise<KeyState> {
    return this.#keyReads.run(signal, async (shared) => {
      const body = await this.#authorized(
        'key read',
        this.#keyPath,
        deadline,
        (token, timeoutMs) => this.#http.read(this.#keyPath, { token, timeoutMs, signal: shared }),
        () => shared.aborted,
      );
      const key = parseKeyRead(body, this.#identity);
      const previous = this.#key;
      if (
        previous !== undefined &&
        key.latestVersion < previous.latestVersion &&
        !isRecreated(previous, key)
      ) {
        this.#context.logger.warn(
          {
            provider: this.#context.instanceName,
            key: this.#keyPath,
            version: key.latestVersion,
            knownVersion: previous.latestVersion,
            keyId: previous.keyId,
          },
          'vault answered an older state of the key (a standby that has not caught up?); keeping the newer key id',
        );
        return previous;
      }
      if (previous?.keyId !== key.keyId) {
        this.#context.logger.info(
          {
            provider: this.#context.instanceName,
            key: this.#keyPath,
            version: key.latestVersion,
            keyId: key.keyId,
            previousKeyId: previous?.keyId,
          },
          previous === undefined ? 'vault key found' : 'vault key changed (rotated or re-created)',
        );
      }
      this.#key = key;
      return key;
    });
  }

  #scheduleRefresh(): void {
    if (this.#closed) return;
    this.#refreshTimer = setTimeout(() => {
      void this.#tokens
        .maintain()
        .then(() => this.#refreshKey(this.#now() + this.#requestTimeoutMs))
        .catch((error: unknown) => {
          this.#context.logger.debug(
            {
              provider: this.#context.instanceName,
              reason: isTrousseauError(error) ? error.message : 'unknown',
            },
            'vault key refresh failed',
          );
        })
        .finally(() => this.#scheduleRefresh());
    }, this.#options.keyRefreshIntervalSeconds * 1000);
    this.#refreshTimer.unref();
  }

  /**
   * A real check: Vault's health, the token, a read of the key (which also refreshes the key id) and an
   * encrypt+decrypt round trip of a probe through the transit paths the apiserver's calls use.
   */
  async status(request: RequestContext): Promise<ProviderStatus> {
    this.#assertOpen();
    const deadline = this.#deadlineOf(request);
    const lastGood = this.#key?.keyId;
    const health = this.#health(deadline, request.signal);
    try {
      await raceAbort(this.#tokens.maintain(), request.signal, 'vault status');
      const key = await raceAbort(this.#refreshKey(deadline, request.signal), request.signal, 'vault status');
      if (!key.supportsEncryption || !key.supportsDecryption) {
        return {
          healthy: false,
          reason: `key ${this.#keyPath} (type ${key.type}) does not support encryption and decryption`,
          keyId: key.keyId,
          code: 'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
        };
      }
      const [encrypted] = await raceAbort(
        this.#transit('encrypt', [PROBE_PLAINTEXT], deadline, request.signal),
        request.signal,
        'vault status',
      );
      if (encrypted === undefined || !('value' in encrypted)) {
        throw encryptItemError(encrypted?.error ?? 'no answer', this.#keyPath);
      }
      const [decrypted] = await raceAbort(
        this.#transit('decrypt', [encrypted.value], deadline, request.signal),
        request.signal,
        'vault status',
      );
      if (decrypted === undefined || !('value' in decrypted) || decrypted.value !== PROBE_PLAINTEXT) {
        throw new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_INTERNAL',
          'vault probe round trip did not give the probe back',
        );
      }
      const version = ciphertextVersion(encrypted.value);
      const current =
        version !== undefined && version > key.latestVersion
          ? await this.#refreshKey(deadline, request.signal)
          : key;
      return { healthy: true, keyId: current.keyId };
    } catch (error) {
      const failure = isTrousseauError(error)
        ? error
        : new TrousseauError('TROUSSEAU_ERR_INTERNAL', 'vault status check failed');
      // Vault's own trouble (sealed, unreachable) explains the failure better than the call that met it,
      // and is never the key gone.
      const healthReason = await health;
      return {
        healthy: false,
        reason: healthReason ?? failure.message,
        code: healthReason === undefined ? failure.code : 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
        ...(lastGood === undefined ? {} : { keyId: lastGood }),
      };
    } finally {
      health.catch(() => undefined);
    }
  }

  /** Vault's own view (`sys/health`, unauthenticated): a reason when it is sealed or not initialised. */
  async #health(deadline: number, signal: AbortSignal): Promise<string | undefined> {
    try {
      const body = asRecord(
        await this.#http.read('sys/health', {
          timeoutMs: Math.max(1, Math.min(deadline - this.#now(), this.#requestTimeoutMs)),
          signal,
        }),
      );
      if (body?.initialized === false) return 'vault not initialised';
      if (body?.sealed === true) return 'vault sealed';
      return undefined;
    } catch (error) {
      const failure = toVaultRequestError(error);
      if (isSealed(failure)) return 'vault sealed';
      if (failure.kind === 'network' || failure.kind === 'timeout' || failure.kind === 'tls') {
        return mapVaultError(failure, 'key read', 'sys/health', this.#keyPath).message;
      }
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#tokens.close();
    this.#encryptQueue.close();
    this.#decryptQueue.close();
    this.#http.close();
  }
}

/**
 * A signal that aborts once every one of `signals` has: a (batched) request serves several callers and is
 * torn down only when none of them waits any more.
 */
function untilAllAborted(all: readonly AbortSignal[]): { signal: AbortSignal; dispose(): void } {
  // One listener per distinct signal: addEventListener ignores a second registration of the same one.
  const signals = [...new Set(all)];
  const [only] = signals;
  if (signals.length === 1 && only !== undefined) return { signal: only, dispose: () => undefined };
  const controller = new AbortController();
  let waiting = signals.filter((signal) => !signal.aborted).length;
  const onAbort = (): void => {
    waiting--;
    if (waiting === 0) controller.abort();
  };
  if (waiting === 0) controller.abort();
  else
    for (const signal of signals)
      if (!signal.aborted) signal.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      for (const signal of signals) signal.removeEventListener('abort', onAbort);
    },
  };
}

/** A batch answered 400 with per-item results (newer Vault's partial failure). */
class PartialFailure extends Error {
  override readonly name = 'PartialFailure';
  readonly #body: unknown;
  constructor(body: unknown) {
    super('vault batch partial failure');
    this.#body = body;
  }
  get body(): unknown {
    return this.#body;
  }
}
