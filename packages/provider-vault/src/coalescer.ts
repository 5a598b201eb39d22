import { abortError, TrousseauError, type RequestContext } from '@trousseau/core';

/** The least a queued call waits for the request in flight before going out on its own. */
const MIN_STRAGGLER_MS = 20;
/**
 * The most it waits: past this, sending the call alone costs one more request, while waiting longer
 * risks the caller's deadline behind a request that may be stuck until its timeout.
 */
const MAX_STRAGGLER_MS = 100;
/**
 * Requests of one kind that may be in flight at once. Calls queued behind a request in flight go out
 * as a batch on the next turn of the event loop while fewer than this many are out, instead of waiting
 * for the request ahead to finish: several batches overlap, so bursts of callers do not move in
 * lock-step behind a single request.
 */
const MAX_IN_FLIGHT = 16;

/** One caller's item in a (possibly batched) request. */
export interface PendingItem<T> {
  /** The base64 plaintext or the ciphertext string. */
  readonly input: string;
  /** Epoch ms by which the caller needs the answer. */
  readonly deadline: number;
  /** The caller's signal: aborts when it goes away or its deadline passes. */
  readonly signal: AbortSignal;
  /** True once the caller has its answer (or gave up): later answers are dropped. */
  readonly settled: boolean;
  resolve(value: T): void;
  reject(error: unknown): void;
}

interface CoalescerOptions<T> {
  /** When false, every call is its own request. */
  readonly enabled: boolean;
  readonly maxBatchSize: number;
  /** What the caller is doing, for abort messages (`vault encrypt`). */
  readonly what: string;
  /** Sends one request for the items and settles each of them (resolve or reject). */
  readonly send: (items: readonly PendingItem<T>[]) => Promise<void>;
}

class Item<T> implements PendingItem<T> {
  readonly input: string;
  readonly deadline: number;
  readonly signal: AbortSignal;
  settled = false;
  readonly #resolve: (value: T) => void;
  readonly #reject: (error: unknown) => void;
  readonly #cleanup: () => void;

  constructor(
    input: string,
    deadline: number,
    signal: AbortSignal,
    resolve: (value: T) => void,
    reject: (error: unknown) => void,
    cleanup: () => void,
  ) {
    this.input = input;
    this.deadline = deadline;
    this.signal = signal;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#cleanup = cleanup;
  }

  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.#cleanup();
    this.#resolve(value);
  }

  reject(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.#cleanup();
    this.#reject(error);
  }
}

/**
 * Gathers calls into batched requests without making any call wait for company: a call that finds no
 * request of its kind in flight is sent at once, alone. Calls that arrive while one is in flight queue;
 * the queue goes out as a `batch_input` request when the current turn of the event loop ends (up to 16
 * requests in flight), as soon as it holds a full batch, when a request finishes, or when the request in
 * flight is a straggler. Each caller's signal is honoured while queued and while in flight.
 */
export class Coalescer<T> {
  readonly #options: CoalescerOptions<T>;
  #queue: Item<T>[] = [];
  #inFlight = 0;
  #closed = false;
  /** Moving average of how long a successful request takes, ms (failures and timeouts left out). */
  #latencyMs = 0;
  /** The pending end-of-turn flush, if any. */
  #flushScheduled: NodeJS.Immediate | undefined;
  /** Sends the queue when the request in flight is a straggler (much slower than usual). */
  #stragglerTimer: NodeJS.Timeout | undefined;

  constructor(options: CoalescerOptions<T>) {
    this.#options = options;
  }

  /** Requests in flight now (for tests and metrics). */
  get inFlight(): number {
    return this.#inFlight;
  }

  submit(input: string, request: RequestContext): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'vault provider is closed'));
    }
    const signal = request.signal;
    if (signal.aborted) return Promise.reject(abortError(signal, this.#options.what));
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        this.#queue = this.#queue.filter((queued) => queued !== item);
        item.reject(abortError(signal, this.#options.what));
      };
      const item: Item<T> = new Item<T>(input, request.deadline, signal, resolve, reject, () =>
        signal.removeEventListener('abort', onAbort),
      );
      signal.addEventListener('abort', onAbort, { once: true });
      if (!this.#options.enabled || this.#inFlight === 0) {
        this.#dispatch([item]);
        return;
      }
      this.#queue.push(item);
      if (this.#queue.length >= this.#options.maxBatchSize) {
        this.#dispatch(this.#queue.splice(0, this.#options.maxBatchSize));
      } else if (this.#inFlight < MAX_IN_FLIGHT) {
        this.#flushSoon();
      } else {
        this.#armStragglerTimer();
      }
    });
  }

  /**
   * A queued call waits for the request in flight only as long as requests usually take (four times the
   * moving average of successful ones, at least 20 ms, at most 100 ms): one stuck request must not hold
   * every later call until its timeout, nor make later calls wait long after it timed out.
   */
  #armStragglerTimer(): void {
    if (this.#stragglerTimer !== undefined) return;
    const wait = Math.min(MAX_STRAGGLER_MS, Math.max(MIN_STRAGGLER_MS, 4 * this.#latencyMs));
    this.#stragglerTimer = setTimeout(() => {
      this.#stragglerTimer = undefined;
      this.#flush();
    }, wait);
    this.#stragglerTimer.unref();
  }

  /** Sends what has queued during this turn of the event loop, once the turn is over. */
  #flushSoon(): void {
    if (this.#flushScheduled !== undefined) return;
    this.#flushScheduled = setImmediate(() => {
      this.#flushScheduled = undefined;
      if (this.#inFlight < MAX_IN_FLIGHT) this.#flush();
      else if (this.#queue.length > 0) this.#armStragglerTimer();
    });
  }

  #dispatch(items: Item<T>[]): void {
    this.#inFlight++;
    const started = performance.now();
    this.#options
      .send(items)
      .then(() => {
        // Only answered requests say how long Vault usually takes: a timeout or a stall would inflate
        // the average and make queued calls wait for nothing.
        const took = performance.now() - started;
        this.#latencyMs = this.#latencyMs === 0 ? took : 0.8 * this.#latencyMs + 0.2 * took;
      })
      .catch((error: unknown) => {
        for (const item of items) item.reject(error);
      })
      .finally(() => {
        // An item the answer left unsettled gets an error; the error (and its stack trace) is built only
        // then, not for every item of every request.
        for (const item of items) {
          if (item.settled) continue;
          item.reject(
            new TrousseauError(
              'TROUSSEAU_ERR_PROVIDER_INTERNAL',
              `${this.#options.what}: no answer for an item`,
            ),
          );
        }
        this.#inFlight--;
        this.#flush();
      });
  }

  #flush(): void {
    if (this.#stragglerTimer !== undefined) clearTimeout(this.#stragglerTimer);
    this.#stragglerTimer = undefined;
    while (this.#queue.length > 0) {
      this.#dispatch(this.#queue.splice(0, this.#options.maxBatchSize));
    }
  }

  /** Fails queued calls; calls in flight finish (or fail) with their request. */
  close(): void {
    this.#closed = true;
    if (this.#stragglerTimer !== undefined) clearTimeout(this.#stragglerTimer);
    if (this.#flushScheduled !== undefined) clearImmediate(this.#flushScheduled);
    const queued = this.#queue;
    this.#queue = [];
    for (const item of queued) {
      item.reject(
        new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'vault provider closed before the call was sent'),
      );
    }
  }
}
