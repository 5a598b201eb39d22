import { abortError, TrousseauError, type RequestContext } from '@trousseau/core';

/** One caller's item in a (possibly batched) request. */
export interface PendingItem<T> {
  /** The base64 plaintext or the ciphertext string. */
  readonly input: string;
  /** Epoch ms by which the caller needs the answer. */
  readonly deadline: number;
  /** True once the caller has its answer (or gave up): later answers are dropped. */
  readonly settled: boolean;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export interface CoalescerOptions<T> {
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
  settled = false;
  readonly #resolve: (value: T) => void;
  readonly #reject: (error: unknown) => void;
  readonly #cleanup: () => void;

  constructor(
    input: string,
    deadline: number,
    resolve: (value: T) => void,
    reject: (error: unknown) => void,
    cleanup: () => void,
  ) {
    this.input = input;
    this.deadline = deadline;
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
 * request of its kind in flight is sent at once, alone. Calls that arrive while one is in flight queue,
 * and the queue goes out as the next `batch_input` request when a request finishes (or as soon as it
 * holds a full batch). Each caller's signal is honoured while queued and while in flight.
 */
export class Coalescer<T> {
  readonly #options: CoalescerOptions<T>;
  #queue: Item<T>[] = [];
  #inFlight = 0;
  #closed = false;

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
      const item: Item<T> = new Item<T>(input, request.deadline, resolve, reject, () =>
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
      }
    });
  }

  #dispatch(items: Item<T>[]): void {
    this.#inFlight++;
    this.#options
      .send(items)
      .catch((error: unknown) => {
        for (const item of items) item.reject(error);
      })
      .finally(() => {
        for (const item of items) {
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
    while (this.#queue.length > 0) {
      this.#dispatch(this.#queue.splice(0, this.#options.maxBatchSize));
    }
  }

  /** Fails queued calls; calls in flight finish (or fail) with their request. */
  close(): void {
    this.#closed = true;
    const queued = this.#queue;
    this.#queue = [];
    for (const item of queued) {
      item.reject(
        new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'vault provider closed before the call was sent'),
      );
    }
  }
}
