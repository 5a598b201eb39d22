import { createHash } from 'node:crypto';
import type { Clock } from './clock.js';
import { BINDING_KEY_BYTES, bindPlaintext } from './envelope.js';
import { isKnownErrorCode, type ErrorCode } from './error-codes.js';
import { TrousseauError, toTrousseauError } from './errors.js';
import type { HealthMonitor } from './health-monitor.js';
import { LogRateLimit } from './log-limit.js';
import type { Logger } from './logger.js';
import type { Counter, Metrics } from './metrics.js';
import type { KeyProvider, RequestContext } from './provider.js';
import {
  copyBytes,
  openReplicatedEnvelope,
  REPLICATED_FIXED_BYTES,
  sealReplicatedEnvelope,
  type CopyFields,
  type EnvelopeCopy,
  type ReplicatedEnvelope,
} from './replicated-envelope.js';
import { throwIfAborted } from './request-context.js';

/** KMS v2 stores at most this much plugin ciphertext; every copy of a data key must fit in it. */
const V2_CIPHERTEXT_LIMIT_BYTES = 1024;
/** The data key kube-apiserver sends to Encrypt (a v2 seed or a v1 DEK): what the size budget is for. */
const DATA_KEY_BYTES = 32;
/** Key references are at most this long when a provider does not say. */
const DEFAULT_MAX_KEY_REF_BYTES = 255;
/** Once the policy is met, copies still in flight get at most this long (and half the time left). */
const MAX_STRAGGLER_WAIT_MS = 1_000;
/** A degraded encrypt or a failover warns at most once this often per kind; the rest are counted. */
const WARNING_INTERVAL_MS = 10_000;

/** What an instrumented provider call looks like: the broker's, with its metrics and logs per call. */
type ProviderCall = <T>(
  name: string,
  operation: 'encrypt' | 'decrypt',
  request: RequestContext,
  work: () => Promise<T>,
) => Promise<T>;

interface ReplicationOptions {
  /** The `encryptWith` list, in order: the order copies are written and tried in. */
  readonly names: readonly string[];
  /** How many copies an Encrypt must make (1..names.length). */
  readonly minCopies: number;
  readonly providers: ReadonlyMap<string, KeyProvider>;
  readonly monitor: HealthMonitor;
  readonly call: ProviderCall;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
}

/** The broker's answer to Status, for a replicated `encryptWith`. */
interface ReplicatedStatus {
  readonly healthy: boolean;
  readonly keyId: string | undefined;
  readonly reason: string | undefined;
  readonly keyUnusable: boolean;
}

interface CopyOutcome {
  readonly name: string;
  readonly copy?: CopyFields;
  readonly failure?: TrousseauError;
}

/**
 * A sub-request of `parent` with an earlier deadline: aborted when the parent is (with its reason), when
 * `deadline` passes, or by `abort()`.
 */
function subRequest(
  parent: RequestContext,
  deadline: number,
  clock: Clock,
): { context: RequestContext; abort(): void; dispose(): void } {
  const controller = new AbortController();
  const onParentAbort = (): void => controller.abort(parent.signal.reason);
  if (parent.signal.aborted) onParentAbort();
  else parent.signal.addEventListener('abort', onParentAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(deadline) && deadline < parent.deadline) {
    timer = setTimeout(
      () => controller.abort(new Error('time for this copy ran out')),
      Math.max(0, deadline - clock.now()),
    );
    timer.unref();
  }
  const context: RequestContext = {
    uid: parent.uid,
    signal: controller.signal,
    deadline: Math.min(deadline, parent.deadline),
    logger: parent.logger,
  };
  return {
    context,
    abort: () => controller.abort(new Error('the copies needed are made')),
    dispose: () => {
      if (timer !== undefined) clearTimeout(timer);
      parent.signal.removeEventListener('abort', onParentAbort);
    },
  };
}

/**
 * Replicated encryption: every data key wrapped by each provider listed in `encryptWith`, concurrently,
 * in one version 4 envelope; any one copy is enough to decrypt. Owns the policy (how many copies an
 * Encrypt needs), the key id derived from every listed provider's key id, Status, and the size budget.
 */
export class Replication {
  readonly #names: readonly string[];
  readonly #minCopies: number;
  readonly #providers: ReadonlyMap<string, KeyProvider>;
  readonly #monitor: HealthMonitor;
  readonly #call: ProviderCall;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #copies: Counter<'provider' | 'operation' | 'result'>;
  readonly #warnings: LogRateLimit;

  constructor(options: ReplicationOptions) {
    this.#names = options.names;
    this.#minCopies = options.minCopies;
    this.#providers = options.providers;
    this.#monitor = options.monitor;
    this.#call = options.call;
    this.#logger = options.logger;
    this.#clock = options.clock;
    this.#warnings = new LogRateLimit({ intervalMs: WARNING_INTERVAL_MS, clock: options.clock });
    this.#copies = options.metrics.counter({
      name: 'replicated_copies_total',
      help: 'Copies of data keys in replicated envelopes by provider instance: encrypt written or missing, decrypt opened or failed over',
      labelNames: ['provider', 'operation', 'result'],
    });
  }

  get names(): readonly string[] {
    return this.#names;
  }

  get minCopies(): number {
    return this.#minCopies;
  }

  /**
   * The key id: a digest of every listed provider's current key id (the last good one while a provider is
   * unreachable), so it changes when any of them rotates and, as no provider ever repeats a key id,
   * never repeats. Undefined until at least one provider has reported a key id.
   */
  keyId(): string | undefined {
    const hash = createHash('sha256');
    let known = 0;
    for (const name of this.#names) {
      const keyId = this.#monitor.get(name)?.keyId;
      if (keyId !== undefined) known += 1;
      for (const part of [name, keyId ?? '']) hash.update(`${Buffer.byteLength(part)}:${part}`);
    }
    if (known === 0) return undefined;
    return `trousseau-replicated:${this.#names.length}:${hash.digest('hex').slice(0, 32)}`;
  }

  /**
   * Why the copies of a data key cannot fit KMS v2's 1024 bytes, naming each provider and what it takes;
   * undefined when they fit. Read from what each provider declares now (Azure knows its key size once it
   * has read the key).
   */
  sizeProblem(): string | undefined {
    const undeclared: string[] = [];
    const parts: string[] = [];
    let total = REPLICATED_FIXED_BYTES;
    for (const name of this.#names) {
      const capabilities = this.#providers.get(name)?.capabilities;
      const maxCiphertext = capabilities?.maxCiphertextBytes;
      if (maxCiphertext === undefined) {
        undeclared.push(name);
        continue;
      }
      const payload = maxCiphertext(BINDING_KEY_BYTES + DATA_KEY_BYTES);
      const keyRef = capabilities?.maxKeyRefBytes ?? DEFAULT_MAX_KEY_REF_BYTES;
      const bytes = copyBytes(name, keyRef, payload);
      total += bytes;
      parts.push(`${name} ${bytes} (ciphertext up to ${payload}, key reference up to ${keyRef})`);
    }
    if (undeclared.length > 0) {
      return `encryptWith lists ${undeclared.map((name) => `"${name}"`).join(', ')}, whose provider does not declare capabilities.maxCiphertextBytes (core API 1.2): without it Trousseau cannot check that every copy of a data key fits the ${V2_CIPHERTEXT_LIMIT_BYTES} bytes KMS v2 stores`;
    }
    if (total <= V2_CIPHERTEXT_LIMIT_BYTES) return undefined;
    return `the ${this.#names.length} copies of a ${DATA_KEY_BYTES}-byte data key take up to ${total} bytes, over the ${V2_CIPHERTEXT_LIMIT_BYTES} bytes KMS v2 stores: ${parts.join(', ')}, plus ${REPLICATED_FIXED_BYTES} of envelope; list fewer providers in encryptWith or use smaller keys (an RSA-3072 Azure key wraps into 384 bytes, RSA-4096 into 512)`;
  }

  /** Status from cached health: healthy when an Encrypt now can make the copies the policy needs. */
  status(): ReplicatedStatus {
    const keyId = this.keyId();
    const problems: string[] = [];
    let available = 0;
    let notGone = 0;
    for (const name of this.#names) {
      const health = this.#monitor.get(name);
      if (health?.keyUnusable !== true) notGone += 1;
      if (health?.state === 'healthy') available += 1;
      else problems.push(`"${name}" ${health?.reason ?? 'not checked yet'}`);
    }
    const sizeProblem = this.sizeProblem();
    const enough = available >= this.#minCopies;
    const healthy = enough && keyId !== undefined && sizeProblem === undefined;
    let reason: string | undefined;
    if (sizeProblem !== undefined) reason = sizeProblem;
    else if (!enough) {
      reason = `${available} of ${this.#names.length} providers can wrap a data key, the policy needs ${this.#minCopies}: ${problems.join('; ')}`;
    } else if (keyId === undefined) reason = 'no key id yet from any provider';
    return {
      healthy,
      keyId,
      reason,
      // Keys that are gone for good leave too few to meet the policy: Status must fail, not just warn.
      keyUnusable: notGone < this.#minCopies,
    };
  }

  /**
   * Wraps `plaintext` with every listed provider at once, in one version 4 envelope. Succeeds when at
   * least `minCopies` copies are made; once they are, copies still in flight get a short while more
   * (half the time left, at most a second) and are then abandoned.
   */
  async encrypt(
    plaintext: Uint8Array,
    request: RequestContext,
  ): Promise<{ ciphertext: Buffer; keyId: string }> {
    const bound = bindPlaintext(plaintext);
    const ticket = this.#monitor.ticket();
    const sub = subRequest(request, request.deadline, this.#clock);
    try {
      const outcomes = await this.#wrapAll(bound.plaintext, sub.context, () => sub.abort());
      const made = outcomes.flatMap((outcome) => (outcome.copy === undefined ? [] : [outcome.copy]));
      const missing = outcomes.filter((outcome) => outcome.copy === undefined);
      for (const outcome of outcomes) {
        this.#copies.add({
          provider: outcome.name,
          operation: 'encrypt',
          result: outcome.copy === undefined ? 'missing' : 'written',
        });
      }
      if (made.length < this.#minCopies) {
        throwIfAborted(request, 'replicated encrypt');
        throw this.#shortfall('encrypt', made.length, missing);
      }
      for (const copy of made) this.#monitor.noteKeyId(copy.instance, copy.keyId, ticket);
      const keyId = this.keyId();
      if (keyId === undefined) throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', 'no key id after encrypt');
      const admitted =
        missing.length > 0
          ? this.#warnings.admit(`missing\0${missing.map((outcome) => outcome.name).join('\0')}`)
          : undefined;
      if (admitted !== undefined) {
        request.logger.warn(
          {
            copies: made.map((copy) => copy.instance),
            missing: missing.map((outcome) => outcome.name),
            minCopies: this.#minCopies,
            suppressedSinceLast: admitted.suppressed,
          },
          'encrypted with fewer copies than providers listed',
        );
      }
      return { ciphertext: sealReplicatedEnvelope(keyId, made, bound.bindingKey), keyId };
    } finally {
      sub.dispose();
    }
  }

  async #wrapAll(
    plaintext: Uint8Array,
    request: RequestContext,
    abandon: () => void,
  ): Promise<CopyOutcome[]> {
    const outcomes: (CopyOutcome | undefined)[] = this.#names.map(() => undefined);
    const attempts = this.#names.map((name, index) => {
      const provider = this.#providers.get(name);
      const attempt: Promise<CopyOutcome> =
        provider === undefined
          ? Promise.resolve({
              name,
              failure: new TrousseauError('TROUSSEAU_ERR_INTERNAL', `provider "${name}" is not loaded`),
            })
          : this.#call(name, 'encrypt', request, () => provider.encrypt(plaintext, request)).then(
              (result): CopyOutcome => ({
                name,
                copy: {
                  instance: name,
                  keyId: result.keyId,
                  keyRef: result.keyRef,
                  payload: result.ciphertext,
                },
              }),
              (error: unknown): CopyOutcome => ({ name, failure: toTrousseauError(error) }),
            );
      return attempt.then((outcome) => {
        outcomes[index] = outcome;
        return outcome;
      });
    });
    await new Promise<void>((resolve) => {
      let settled = 0;
      let made = 0;
      let timer: NodeJS.Timeout | undefined;
      for (const attempt of attempts) {
        void attempt.then((outcome) => {
          settled += 1;
          if (outcome.copy !== undefined) made += 1;
          if (settled === attempts.length) {
            if (timer !== undefined) clearTimeout(timer);
            resolve();
          } else if (made >= this.#minCopies && timer === undefined) {
            const left = request.deadline - this.#clock.now();
            timer = setTimeout(
              () => {
                abandon();
                resolve();
              },
              Math.max(
                0,
                Math.min(MAX_STRAGGLER_WAIT_MS, Number.isFinite(left) ? left / 2 : MAX_STRAGGLER_WAIT_MS),
              ),
            );
            timer.unref();
          }
        });
      }
    });
    // An abandoned attempt settles soon after its abort; until then it counts as missing.
    return this.#names.map(
      (name, index) =>
        outcomes[index] ?? {
          name,
          failure: new TrousseauError(
            'TROUSSEAU_ERR_DEADLINE_EXCEEDED',
            `provider "${name}" had not answered when the other copies were made`,
          ),
        },
    );
  }

  /**
   * Opens a version 4 envelope with the first copy that works: copies of configured providers, healthy
   * ones first, each group in the configured order (`encryptWith`, then the other providers). A copy
   * whose provider is unavailable, slow or has lost its key falls over to the next within the deadline
   * (each copy but the last gets at most half the time left); a copy that fails to authenticate (the
   * provider refuses the ciphertext, or the envelope's tag does not match) is an error, never skipped.
   */
  async decrypt(envelope: ReplicatedEnvelope, request: RequestContext): Promise<Uint8Array> {
    const order = this.#decryptOrder(envelope.copies);
    if (order.length === 0) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_UNKNOWN_PROVIDER',
        `ciphertext was made by providers ${envelope.copies.map((copy) => `"${copy.instance}"`).join(', ')}, none of which is configured (configured: ${[...this.#providers.keys()].join(', ')})`,
      );
    }
    const failures: CopyOutcome[] = [];
    for (const [index, { copy, provider }] of order.entries()) {
      const last = index === order.length - 1;
      const left = request.deadline - this.#clock.now();
      const deadline = last || !Number.isFinite(left) ? request.deadline : this.#clock.now() + left / 2;
      const sub = subRequest(request, deadline, this.#clock);
      try {
        const decrypted = await this.#call(copy.instance, 'decrypt', sub.context, () =>
          provider.decrypt({ ciphertext: copy.payload, keyRef: copy.keyRef }, sub.context),
        );
        const plaintext = openReplicatedEnvelope(envelope, decrypted);
        this.#copies.add({ provider: copy.instance, operation: 'decrypt', result: 'opened' });
        const failedOver = failures.map((failure) => failure.name);
        const admitted =
          failures.length > 0 ? this.#warnings.admit(`failover\0${failedOver.join('\0')}`) : undefined;
        if (admitted !== undefined) {
          request.logger.warn(
            { provider: copy.instance, failedOver, suppressedSinceLast: admitted.suppressed },
            'decrypted with a later copy',
          );
        }
        return plaintext;
      } catch (error) {
        throwIfAborted(request, 'replicated decrypt');
        const failure = toTrousseauError(error);
        // The caller's fault (a copy that does not authenticate, a malformed request): never try another.
        if (failure.fault === 'client') throw failure;
        this.#copies.add({ provider: copy.instance, operation: 'decrypt', result: 'failed_over' });
        failures.push({ name: copy.instance, failure });
      } finally {
        sub.dispose();
      }
    }
    throw this.#shortfall('decrypt', 0, failures);
  }

  #decryptOrder(copies: readonly EnvelopeCopy[]): { copy: EnvelopeCopy; provider: KeyProvider }[] {
    const configured = [
      ...this.#names,
      ...[...this.#providers.keys()].filter((name) => !this.#names.includes(name)),
    ];
    const rank = (copy: EnvelopeCopy): number => {
      const healthy = this.#monitor.get(copy.instance)?.state === 'healthy';
      return (healthy ? 0 : configured.length) + configured.indexOf(copy.instance);
    };
    return copies
      .flatMap((copy) => {
        const provider = this.#providers.get(copy.instance);
        return provider === undefined ? [] : [{ copy, provider }];
      })
      .sort((a, b) => rank(a.copy) - rank(b.copy));
  }

  /** The error for too few copies: one code when every provider failed alike, each provider named. */
  #shortfall(
    operation: 'encrypt' | 'decrypt',
    made: number,
    failures: readonly CopyOutcome[],
  ): TrousseauError {
    const first = failures[0]?.failure?.code;
    const code: ErrorCode =
      first !== undefined &&
      isKnownErrorCode(first) &&
      first !== 'TROUSSEAU_ERR_INTERNAL' &&
      failures.every((failure) => failure.failure?.code === first)
        ? first
        : 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE';
    const detail = failures
      .map((failure) => `"${failure.name}": ${failure.failure?.message ?? 'no answer'}`)
      .join('; ');
    const message =
      operation === 'encrypt'
        ? `encrypt made ${made} of the ${this.#minCopies} copies the policy needs: ${detail}`
        : `no copy of the data key could be decrypted: ${detail}`;
    this.#logger.debug({ operation, failures: failures.map((failure) => failure.name) }, message);
    return new TrousseauError(code, message);
  }
}
