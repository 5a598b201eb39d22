import { abortError } from '@trousseau/core';

interface Flight<T> {
  readonly promise: Promise<T>;
  readonly controller: AbortController;
  readonly waiting: Set<AbortSignal>;
  /** A caller without a signal (start-up, the background refresh) keeps the flight going. */
  unbounded: boolean;
}

/**
 * One request that concurrent callers share (the key read): the first starts it, later ones join it, and
 * it is abandoned, with no retry, once every caller waiting for it has gone. A caller that never gives
 * up (passing no signal) keeps it going whatever the others do.
 */
export class SharedFlight<T> {
  readonly #what: string;
  #flight: Flight<T> | undefined;

  constructor(what: string) {
    this.#what = what;
  }

  /** Joins the flight in progress or starts one; `start` gets the signal that abandons it. */
  run(signal: AbortSignal | undefined, start: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal?.aborted === true) return Promise.reject(abortError(signal, this.#what));
    const flight = this.#flight ?? this.#start(start);
    if (signal === undefined) {
      flight.unbounded = true;
      return flight.promise;
    }
    flight.waiting.add(signal);
    const leave = (): void => {
      if (flight.unbounded || ![...flight.waiting].every((waiting) => waiting.aborted)) return;
      flight.controller.abort();
      if (this.#flight === flight) this.#flight = undefined;
    };
    signal.addEventListener('abort', leave, { once: true });
    const settled = (): void => signal.removeEventListener('abort', leave);
    flight.promise.then(settled, settled);
    return flight.promise;
  }

  #start(start: (signal: AbortSignal) => Promise<T>): Flight<T> {
    const controller = new AbortController();
    const flight: Flight<T> = {
      promise: start(controller.signal),
      controller,
      waiting: new Set(),
      unbounded: false,
    };
    const clear = (): void => {
      if (this.#flight === flight) this.#flight = undefined;
    };
    flight.promise.then(clear, clear);
    this.#flight = flight;
    return flight;
  }
}
