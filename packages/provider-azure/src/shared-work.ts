import { abortError, raceAbort } from '@trousseau/core';

interface Run<T> {
  readonly promise: Promise<T>;
  readonly controller: AbortController;
  waiting: number;
}

/**
 * One piece of work shared by the callers that need it at once (a key refresh a burst of encrypts all
 * wait for). It runs under its own time bound, each caller waits no longer than its own signal allows,
 * and it is aborted as soon as no caller waits for it any more: a call that has given up leaves no
 * request to the backend, nor a retry of one, behind it.
 */
export class SharedWork<T> {
  readonly #timeoutMs: number;
  #run: Run<T> | undefined;

  constructor(timeoutMs: number) {
    // Whole milliseconds: AbortSignal.timeout throws on a fraction (a timeoutSeconds of 0.0015, say).
    this.#timeoutMs = Math.ceil(timeoutMs);
  }

  /** Waits for the work in progress, or starts it; `start` gets the signal that ends it. */
  join(signal: AbortSignal, what: string, start: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal.aborted) return Promise.reject(abortError(signal, what));
    const run = this.#run ?? this.#start(start);
    run.waiting += 1;
    const leave = (): void => {
      run.waiting -= 1;
      if (run.waiting > 0) return;
      run.controller.abort();
      if (this.#run === run) this.#run = undefined;
    };
    signal.addEventListener('abort', leave, { once: true });
    const settled = (): void => signal.removeEventListener('abort', leave);
    run.promise.then(settled, settled);
    return raceAbort(run.promise, signal, what);
  }

  #start(start: (signal: AbortSignal) => Promise<T>): Run<T> {
    const controller = new AbortController();
    const run: Run<T> = {
      promise: start(AbortSignal.any([controller.signal, AbortSignal.timeout(this.#timeoutMs)])),
      controller,
      waiting: 0,
    };
    const clear = (): void => {
      if (this.#run === run) this.#run = undefined;
    };
    run.promise.then(clear, clear);
    this.#run = run;
    return run;
  }
}
