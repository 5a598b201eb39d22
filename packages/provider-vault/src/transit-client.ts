import { TrousseauError, type Histogram, type ProviderContext, type RequestContext } from '@trousseau/core';
import { Coalescer, type PendingItem } from './coalescer.js';
import { asRecord } from './record.js';
import { decryptItemError, encryptItemError } from './vault-errors.js';
import { toVaultRequestError } from './vault-http.js';
import type { VaultSession } from './vault-session.js';

/** Callers of one batch answered per turn of the event loop. */
const SETTLE_CHUNK = 8;

type TransitOperation = 'encrypt' | 'decrypt';

/** One transit operation's answer for each item: the value, or Vault's per-item error string. */
type ItemOutcome = { readonly value: string } | { readonly error: string };

interface TransitClientOptions {
  readonly session: VaultSession;
  readonly context: ProviderContext;
  readonly mount: string;
  readonly keyName: string;
  readonly batching: { readonly enabled: boolean; readonly maxBatchSize: number };
}

/**
 * Vault Transit's encrypt and decrypt for one key. Calls that queue while a request is in flight are
 * coalesced into one `batch_input` request ({@link Coalescer}); each caller gets its own item's answer or
 * error. A batch with a failed item comes back as 200 from older Vault and as 400 with the same
 * success-shaped body from newer Vault: both are read the same way.
 */
export class TransitClient {
  readonly #session: VaultSession;
  readonly #context: ProviderContext;
  readonly #keyPath: string;
  readonly #encryptPath: string;
  readonly #decryptPath: string;
  readonly #encryptQueue: Coalescer<string>;
  readonly #decryptQueue: Coalescer<string>;
  readonly #batchSize: Histogram<'provider'>;

  constructor(options: TransitClientOptions) {
    this.#session = options.session;
    this.#context = options.context;
    this.#keyPath = `${options.mount}/keys/${options.keyName}`;
    this.#encryptPath = `${options.mount}/encrypt/${options.keyName}`;
    this.#decryptPath = `${options.mount}/decrypt/${options.keyName}`;
    this.#batchSize = options.context.metrics.histogram({
      name: 'provider_batch_size',
      help: 'Items per batched backend request (1 = a lone call), by provider instance',
      labelNames: ['provider'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    });
    const coalescer = (operation: TransitOperation): Coalescer<string> =>
      new Coalescer<string>({
        enabled: options.batching.enabled,
        maxBatchSize: options.batching.maxBatchSize,
        what: `vault ${operation}`,
        send: (items) => this.#send(operation, items),
      });
    this.#encryptQueue = coalescer('encrypt');
    this.#decryptQueue = coalescer('decrypt');
  }

  /** Encrypts a base64 plaintext, alone or in a batch with other callers'; resolves to `vault:vN:...`. */
  encrypt(plaintextBase64: string, request: RequestContext): Promise<string> {
    return this.#encryptQueue.submit(plaintextBase64, request);
  }

  /** Decrypts a `vault:vN:...` ciphertext, alone or in a batch; resolves to the base64 plaintext. */
  decrypt(ciphertext: string, request: RequestContext): Promise<string> {
    return this.#decryptQueue.submit(ciphertext, request);
  }

  /**
   * Sends one transit request for the items (a plain body for one, `batch_input` for more) and settles
   * every item: its value, its own per-item error, or the request's error.
   */
  async #send(operation: TransitOperation, items: readonly PendingItem<string>[]): Promise<void> {
    const live = items.filter((item) => !item.settled);
    if (live.length === 0) return;
    this.#batchSize.observe({ provider: this.#context.instanceName }, live.length);
    const deadline = Math.min(
      Math.max(...live.map((item) => item.deadline)),
      this.#session.now() + this.#session.requestTimeoutMs,
    );
    const abandon = untilAllAborted(live.map((item) => item.signal));
    let outcomes: ItemOutcome[];
    try {
      outcomes = await this.request(
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
   * One transit encrypt or decrypt request for `inputs`, without queueing (the status probe sends its
   * own). Returns one outcome per input; throws when the request as a whole failed.
   */
  async request(
    operation: TransitOperation,
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
    const answer = await this.#session.request(
      operation,
      path,
      deadline,
      async (token, timeoutMs) => {
        try {
          return await this.#session.http.write(path, body, { token, timeoutMs, signal });
        } catch (error) {
          // Newer Vault's partial failure: 400 with the per-item results, read like older Vault's 200.
          const partial = batch ? partialFailureBody(error) : undefined;
          if (partial === undefined) throw error;
          return partial;
        }
      },
      abandoned,
    );
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

  /** Fails the calls still queued. */
  close(): void {
    this.#encryptQueue.close();
    this.#decryptQueue.close();
  }
}

/** The body of a 400 that carries `data.batch_results` (a batch partial failure), else undefined. */
function partialFailureBody(error: unknown): unknown {
  const failure = toVaultRequestError(error);
  if (failure.kind !== 'http' || failure.status !== 400) return undefined;
  const body = failure.responseBody();
  return Array.isArray(asRecord(asRecord(body)?.data)?.batch_results) ? body : undefined;
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
