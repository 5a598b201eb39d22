import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Clock } from './clock.js';
import {
  BINDING_KEY_BYTES,
  bindPlaintext,
  decodeEnvelope,
  encodeEnvelope,
  ENVELOPE_VERSION,
  envelopeHasKeyId,
  openEnvelope,
  sealEnvelope,
  type EnvelopeFields,
  type EnvelopeVersion,
} from './envelope.js';
import { TrousseauError, isTrousseauError, outcomeOf } from './errors.js';
import { HealthMonitor, type ProviderHealth } from './health-monitor.js';
import { isValidKeyId, MAX_KEY_ID_BYTES } from './key-id.js';
import { LogRateLimit, truncateForLog } from './log-limit.js';
import type { Logger } from './logger.js';
import { LATENCY_BUCKETS, type Histogram, type Metrics } from './metrics.js';
import type { Outcome } from './outcome.js';
import type { KeyProvider, RequestContext } from './provider.js';
import {
  decodeReplicatedEnvelope,
  isReplicatedEnvelope,
  replicatedEnvelopeHasKeyId,
} from './replicated-envelope.js';
import { Replication } from './replication.js';
import { raceAbort, raceRequest } from './request-context.js';

/** The largest ciphertext the broker will try to open: v1beta1 stores it with a 16-bit length. */
export const MAX_CIPHERTEXT_BYTES = 65_535;
/** At most one warning this often per provider, operation and error code; the rest are counted. */
const FAILURE_WARNING_INTERVAL_MS = 10_000;
/** How much of an error message a log line quotes (a provider may echo what the caller sent). */
const LOGGED_ERROR_CHARS = 512;

interface BrokerParts {
  /** Provider instances by config name. The broker owns them and closes them. */
  readonly providers: ReadonlyMap<string, KeyProvider>;
  /**
   * The instance used for new encryptions; several for replicated encryption (every data key wrapped by
   * each, in one version 4 envelope).
   */
  readonly encryptWith: string | readonly string[];
  /** Replicated encryption: how many copies an Encrypt must make (default: every listed instance). */
  readonly minCopies?: number;
  readonly maxPlaintextBytes: number;
  /**
   * The envelope version new ciphertexts are written in (default {@link ENVELOPE_VERSION}). Version 1
   * only while a Trousseau that cannot read version 2 still serves another apiserver of the cluster.
   */
  readonly envelopeVersion?: EnvelopeVersion;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
}

/**
 * What a broker is made of. The composition root injects the health monitor it registered (over the same
 * providers); a broker built by hand (a tool, a test) makes its own from `healthCheckIntervalMs`.
 */
export type BrokerOptions = BrokerParts &
  ({ readonly monitor: HealthMonitor } | { readonly healthCheckIntervalMs: number });

/** What the front-end answers the apiserver's Status with. */
export interface BrokerStatus {
  readonly healthy: boolean;
  /** The key id new encryptions get; undefined until the provider has reported one. */
  readonly keyId: string | undefined;
  readonly reason: string | undefined;
  /** The encrypting provider's key is gone: Status must fail, not merely report unhealthy. */
  readonly keyUnusable: boolean;
}

/** What {@link Broker.checkProvider} found. */
export interface ProviderCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly keyId?: string | undefined;
  readonly problem?: string;
  readonly roundTripMs?: number;
  /** Size of the envelope the round trip produced (KMS v2 allows 1024 bytes). */
  readonly ciphertextBytes?: number;
}

export interface BrokerEncryptResult {
  /** The envelope: header plus the provider's ciphertext. */
  readonly ciphertext: Buffer;
  readonly keyId: string;
}

/** A provider operation's name in errors, and the metric labels of its successes. */
interface CallInfo {
  readonly what: string;
  readonly succeeded: {
    readonly provider: string;
    readonly operation: 'encrypt' | 'decrypt';
    readonly outcome: Outcome;
  };
}

/**
 * Routes calls between the front-end and the providers: new encryptions go to one instance, decryptions
 * go to the instance the envelope header names. Enforces input limits, deadlines and error codes, and
 * keeps the key id the apiserver sees consistent between Encrypt and Status.
 */
export class Broker {
  readonly #providers: ReadonlyMap<string, KeyProvider>;
  readonly #encryptWith: string;
  readonly #maxPlaintextBytes: number;
  readonly #envelopeVersion: EnvelopeVersion;
  readonly #monitor: HealthMonitor;
  readonly #logger: Logger;
  readonly #callDuration: Histogram<'provider' | 'operation' | 'outcome'>;
  readonly #clock: Clock;
  readonly #failureWarnings: LogRateLimit;
  /** Writes and reads version 4 envelopes (several copies of one data key). */
  readonly #copies: Replication;
  /** Set when `encryptWith` lists more than one instance: new encryptions are replicated. */
  readonly #replication: Replication | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: BrokerOptions) {
    const names = typeof options.encryptWith === 'string' ? [options.encryptWith] : [...options.encryptWith];
    const [first] = names;
    const unknown = names.filter((name) => !options.providers.has(name));
    if (first === undefined || unknown.length > 0 || new Set(names).size !== names.length) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CONFIG_INVALID',
        `encryptWith must name configured providers, each once (unknown: ${unknown.join(', ') || 'none'})`,
      );
    }
    const minCopies = options.minCopies ?? names.length;
    if (!Number.isInteger(minCopies) || minCopies < 1 || minCopies > names.length) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CONFIG_INVALID',
        `minCopies must be 1 to ${names.length}, got ${minCopies}`,
      );
    }
    this.#providers = options.providers;
    this.#encryptWith = first;
    // Replication always writes version 4, which carries version 2's authentication.
    this.#envelopeVersion = names.length > 1 ? 2 : (options.envelopeVersion ?? ENVELOPE_VERSION);
    // Version 2 (and 4) has the provider encrypt the binding key too: that much less room for the data.
    const overhead = this.#envelopeVersion === 2 ? BINDING_KEY_BYTES : 0;
    this.#maxPlaintextBytes = Math.min(
      options.maxPlaintextBytes,
      ...names.map(
        (name) =>
          (options.providers.get(name)?.capabilities?.maxPlaintextBytes ?? Number.POSITIVE_INFINITY) -
          overhead,
      ),
    );
    this.#logger = options.logger;
    this.#callDuration = options.metrics.histogram({
      name: 'provider_request_duration_seconds',
      help: 'Provider encrypt/decrypt latency by provider instance, operation and outcome (gRPC status)',
      labelNames: ['provider', 'operation', 'outcome'],
      buckets: LATENCY_BUCKETS,
    });
    this.#clock = options.clock;
    this.#failureWarnings = new LogRateLimit({
      intervalMs: FAILURE_WARNING_INTERVAL_MS,
      clock: options.clock,
    });
    this.#monitor =
      'monitor' in options
        ? options.monitor
        : new HealthMonitor({
            providers: options.providers,
            intervalMs: options.healthCheckIntervalMs,
            logger: options.logger,
            metrics: options.metrics,
            clock: options.clock,
          });
    // Reads version 4 envelopes whatever encryptWith says (it may list one instance after a migration).
    this.#copies = new Replication({
      names,
      minCopies,
      providers: options.providers,
      monitor: this.#monitor,
      call: (name, operation, request, work) => this.#call(name, operation, request, work),
      logger: options.logger,
      metrics: options.metrics,
      clock: options.clock,
    });
    this.#replication = names.length > 1 ? this.#copies : undefined;
  }

  /** The instance used for new encryptions: the first listed when encryption is replicated. */
  get encryptWith(): string {
    return this.#encryptWith;
  }

  /**
   * With replicated encryption, why the copies of a data key cannot fit KMS v2's 1024 bytes (naming each
   * provider and its share), from what the providers declare now; undefined when they fit or with one.
   */
  replicationSizeProblem(): string | undefined {
    return this.#replication?.sizeProblem();
  }

  /** Every instance new encryptions are wrapped by, in order. */
  get encryptingProviders(): readonly string[] {
    return this.#copies.names;
  }

  get maxPlaintextBytes(): number {
    return this.#maxPlaintextBytes;
  }

  /**
   * Runs the first health check of every provider, then keeps them fresh in the background. With
   * replicated encryption, then refuses to start when the copies of a data key cannot fit KMS v2's limit
   * (checked after the first health check: a provider may learn its key size from it).
   */
  async start(): Promise<void> {
    await this.#monitor.start();
    const problem = this.#replication?.sizeProblem();
    if (problem !== undefined) {
      await this.#monitor.stop();
      throw new TrousseauError('TROUSSEAU_ERR_CONFIG_INVALID', problem);
    }
  }

  /** Checks every provider now instead of waiting for the interval. */
  refreshHealth(): Promise<void> {
    return this.#monitor.refresh();
  }

  async encrypt(plaintext: Uint8Array, request: RequestContext): Promise<BrokerEncryptResult> {
    this.#assertOpen();
    if (plaintext.length === 0) {
      throw new TrousseauError('TROUSSEAU_ERR_REQUEST_EMPTY', 'plaintext is empty');
    }
    if (plaintext.length > this.#maxPlaintextBytes) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_REQUEST_TOO_LARGE',
        `plaintext is ${plaintext.length} bytes; at most ${this.#maxPlaintextBytes} are accepted`,
      );
    }
    if (this.#replication !== undefined) return this.#replication.encrypt(plaintext, request);
    const name = this.#encryptWith;
    const provider = this.#provider(name);
    const ticket = this.#monitor.ticket();
    const sealed = await this.#seal(name, provider, plaintext, request);
    this.#monitor.noteKeyId(name, sealed.keyId, ticket);
    return sealed;
  }

  /** Has `provider` encrypt `plaintext` and wraps its answer in an envelope of the configured version. */
  async #seal(
    name: string,
    provider: KeyProvider,
    plaintext: Uint8Array,
    request: RequestContext,
  ): Promise<BrokerEncryptResult> {
    const bound = this.#envelopeVersion === 2 ? bindPlaintext(plaintext) : undefined;
    const result = await this.#call(name, 'encrypt', request, () =>
      provider.encrypt(bound?.plaintext ?? plaintext, request),
    );
    if (!isValidKeyId(result.keyId)) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_INTERNAL',
        `provider "${name}" returned a key id that is empty or over 1024 bytes`,
      );
    }
    const fields: EnvelopeFields = {
      instance: name,
      keyId: result.keyId,
      keyRef: result.keyRef,
      payload: result.ciphertext,
    };
    const ciphertext = bound === undefined ? encodeEnvelope(fields) : sealEnvelope(fields, bound.bindingKey);
    return { ciphertext, keyId: result.keyId };
  }

  /**
   * Opens an envelope with the instance its header names. When `expectedKeyId` is given (v2 sends back the
   * key id Encrypt returned), it must be the key id the envelope was made under.
   */
  async decrypt(
    ciphertext: Uint8Array,
    request: RequestContext,
    expectedKeyId?: string,
  ): Promise<Uint8Array> {
    this.#assertOpen();
    if (ciphertext.length === 0)
      throw new TrousseauError('TROUSSEAU_ERR_REQUEST_EMPTY', 'ciphertext is empty');
    if (ciphertext.length > MAX_CIPHERTEXT_BYTES) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_REQUEST_TOO_LARGE',
        `ciphertext is ${ciphertext.length} bytes; at most ${MAX_CIPHERTEXT_BYTES} are accepted`,
      );
    }
    if (isReplicatedEnvelope(ciphertext)) return this.#decryptReplicated(ciphertext, request, expectedKeyId);
    const envelope = decodeEnvelope(ciphertext);
    const provider = this.#providers.get(envelope.instance);
    if (provider === undefined) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_UNKNOWN_PROVIDER',
        `ciphertext was made by provider "${envelope.instance}", which is not configured (configured: ${[...this.#providers.keys()].join(', ')})`,
      );
    }
    if (expectedKeyId !== undefined && expectedKeyId !== '') {
      // No key id Encrypt returns is longer, so a longer one cannot match: refuse it before hashing it.
      if (Buffer.byteLength(expectedKeyId) > MAX_KEY_ID_BYTES || !envelopeHasKeyId(envelope, expectedKeyId)) {
        throw new TrousseauError(
          'TROUSSEAU_ERR_CIPHERTEXT_KEY_ID_MISMATCH',
          'the key_id sent with the ciphertext is not the key id it was encrypted under',
        );
      }
    }
    const decrypted = await this.#call(envelope.instance, 'decrypt', request, () =>
      provider.decrypt({ ciphertext: envelope.payload, keyRef: envelope.keyRef }, request),
    );
    const plaintext = openEnvelope(envelope, decrypted);
    if (plaintext.length === 0) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_INTERNAL',
        `provider "${envelope.instance}" returned an empty plaintext`,
      );
    }
    return plaintext;
  }

  /** Opens a version 4 envelope: any configured copy will do, even when `encryptWith` is one instance. */
  async #decryptReplicated(
    ciphertext: Uint8Array,
    request: RequestContext,
    expectedKeyId: string | undefined,
  ): Promise<Uint8Array> {
    const envelope = decodeReplicatedEnvelope(ciphertext);
    if (expectedKeyId !== undefined && expectedKeyId !== '') {
      if (
        Buffer.byteLength(expectedKeyId) > MAX_KEY_ID_BYTES ||
        !replicatedEnvelopeHasKeyId(envelope, expectedKeyId)
      ) {
        throw new TrousseauError(
          'TROUSSEAU_ERR_CIPHERTEXT_KEY_ID_MISMATCH',
          'the key_id sent with the ciphertext is not the key id it was encrypted under',
        );
      }
    }
    const plaintext = await this.#copies.decrypt(envelope, request);
    if (plaintext.length === 0) {
      throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_INTERNAL', 'a provider returned an empty plaintext');
    }
    return plaintext;
  }

  /**
   * A pre-flight check of one provider instance, for operators: a fresh status call and a round trip of a
   * random data key through the envelope. Never throws; the result says what failed.
   */
  async checkProvider(name: string, request: RequestContext): Promise<ProviderCheck> {
    const provider = this.#providers.get(name);
    if (provider === undefined) return { name, ok: false, problem: 'not configured' };
    const started = this.#clock.now();
    let keyId: string | undefined;
    try {
      const status = await raceAbort(
        provider.status(request),
        request.signal,
        `status of provider "${name}"`,
      );
      keyId = status.keyId;
      if (!status.healthy) return { name, ok: false, keyId, problem: `unhealthy: ${status.reason}` };
      const plaintext = randomBytes(32);
      const encrypted = await this.#seal(name, provider, plaintext, request);
      const decrypted = await this.decrypt(encrypted.ciphertext, request, encrypted.keyId);
      if (!Buffer.from(decrypted).equals(plaintext))
        return { name, ok: false, keyId, problem: 'round trip returned different data' };
      if (encrypted.keyId !== status.keyId) {
        return {
          name,
          ok: false,
          keyId,
          problem: `encrypt returned key id ${encrypted.keyId}, status reported ${status.keyId}`,
        };
      }
      return {
        name,
        ok: true,
        keyId,
        roundTripMs: this.#clock.now() - started,
        ciphertextBytes: encrypted.ciphertext.length,
      };
    } catch (error) {
      return { name, ok: false, keyId, problem: messageOf(error) };
    }
  }

  /** The encrypting provider's cached health, as the apiserver's Status needs it. Never calls a KMS. */
  status(): BrokerStatus {
    if (this.#replication !== undefined) return this.#replication.status();
    const health = this.#monitor.get(this.#encryptWith);
    const healthy = health?.state === 'healthy';
    return {
      healthy,
      keyId: health?.keyId,
      reason: healthy ? undefined : (health?.reason ?? 'not checked yet'),
      keyUnusable: health?.keyUnusable === true,
    };
  }

  /** The configured provider instance names. */
  get providerNames(): string[] {
    return [...this.#providers.keys()];
  }

  /** Every provider's cached health, for the operator endpoints. */
  health(): ProviderHealth[] {
    return this.#monitor.all();
  }

  /**
   * How a call to a provider is named in its errors, and the labels of its successes: made once per
   * provider and operation, not per call.
   */
  readonly #callInfos = new Map<string, { readonly encrypt: CallInfo; readonly decrypt: CallInfo }>();

  #callInfo(name: string, operation: 'encrypt' | 'decrypt'): CallInfo {
    let infos = this.#callInfos.get(name);
    if (infos === undefined) {
      const info = (of: 'encrypt' | 'decrypt'): CallInfo => ({
        what: `${of} with provider "${name}"`,
        succeeded: { provider: name, operation: of, outcome: 'OK' },
      });
      infos = { encrypt: info('encrypt'), decrypt: info('decrypt') };
      this.#callInfos.set(name, infos);
    }
    return infos[operation];
  }

  /**
   * Calls a provider: its answer, or a TrousseauError (the provider's own, or one wrapping what it threw), by
   * the caller's deadline at the latest; the call's duration is recorded either way. Not an async function:
   * a call is one promise of the race and one of its outcome, where `await` made a frame of its own.
   */
  #call<T>(
    name: string,
    operation: 'encrypt' | 'decrypt',
    request: RequestContext,
    work: () => Promise<T>,
  ): Promise<T> {
    const started = this.#clock.now();
    const info = this.#callInfo(name, operation);
    let answer: Promise<T>;
    try {
      // Called at once, not from a microtask. Promise.resolve takes a provider that answers with a plain
      // value (or returns its own promise).
      answer = Promise.resolve(work());
    } catch (error) {
      return Promise.reject(this.#callFailed(name, operation, request, error, started));
    }
    return raceRequest(answer, request, info.what).then(
      (value) => {
        this.#callDuration.observe(info.succeeded, (this.#clock.now() - started) / 1000);
        return value;
      },
      (error: unknown) => {
        throw this.#callFailed(name, operation, request, error, started);
      },
    );
  }

  /** What a failed provider call throws, logged and recorded. */
  #callFailed(
    name: string,
    operation: 'encrypt' | 'decrypt',
    request: RequestContext,
    error: unknown,
    started: number,
  ): TrousseauError {
    const failure = isTrousseauError(error)
      ? error
      : new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_INTERNAL',
          `provider "${name}" failed: ${messageOf(error)}`,
          {
            cause: error,
          },
        );
    this.#logFailure(request, name, operation, failure);
    this.#callDuration.observe(
      { provider: name, operation, outcome: outcomeOf(failure) },
      (this.#clock.now() - started) / 1000,
    );
    return failure;
  }

  /**
   * A failure the caller caused (a tampered or foreign ciphertext, a wrong key id) is its business: a
   * debug line. One on our side (the backend, the key) is a warning, at most one per interval for each
   * provider, operation and code, carrying how many more were held back: a client that sends bad
   * requests by the thousand cannot flood the log.
   */
  #logFailure(
    request: RequestContext,
    provider: string,
    operation: 'encrypt' | 'decrypt',
    failure: TrousseauError,
  ): void {
    const fields = {
      provider,
      operation,
      code: failure.code,
      err: truncateForLog(failure.message, LOGGED_ERROR_CHARS),
    };
    if (failure.fault === 'client') {
      if (this.#logger.isLevelEnabled?.('debug') ?? true) request.logger.debug(fields, `${operation} failed`);
      return;
    }
    const admitted = this.#failureWarnings.admit(`${provider}\0${operation}\0${failure.code}`);
    if (admitted !== undefined) {
      request.logger.warn({ ...fields, suppressedSinceLast: admitted.suppressed }, `${operation} failed`);
    }
  }

  #provider(name: string): KeyProvider {
    const provider = this.#providers.get(name);
    if (provider === undefined)
      throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', `provider "${name}" is not loaded`);
    return provider;
  }

  #assertOpen(): void {
    if (this.#closed !== undefined)
      throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'Trousseau is shutting down');
  }

  /** Stops health checks and closes every provider. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#monitor.stop();
      // Promise.resolve().then: a close() that throws synchronously must not stop the others closing.
      const results = await Promise.allSettled(
        [...this.#providers.values()].map((provider) => Promise.resolve().then(() => provider.close())),
      );
      for (const result of results) {
        if (result.status === 'rejected')
          this.#logger.warn({ err: messageOf(result.reason) }, 'provider close failed');
      }
    })();
    return this.#closed;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
