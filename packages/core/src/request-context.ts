import { randomUUID } from 'node:crypto';
import { TrousseauError } from './errors.js';
import { truncateForLog } from './log-limit.js';
import type { Logger } from './logger.js';
import type { RequestContext } from './provider.js';
import { RequestLogger } from './request-logger.js';

/**
 * The abort reason of a request made by any copy of core: a provider installed with its own copy of
 * @trousseau/core (the usual case for a third-party package) calls its copy's {@link throwIfAborted} with a
 * request the server's copy made. `Symbol.for`, so that every copy names the same method.
 */
const ABORT_REASON = Symbol.for('@trousseau/core.requestAbortReason');

/** Reasons a request signal aborts with, so the error can say which happened. */
class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
}
class RequestCancelled extends Error {
  override readonly name = 'RequestCancelled';
}

export interface RequestScope {
  readonly context: RequestContext;
  /** Marks the request cancelled (the client went away, or the server is stopping). */
  cancel(reason?: string): void;
  /** Releases the deadline timer. Call when the request has answered. */
  dispose(): void;
}

/** What `createRequestScope` is given. */
interface ScopeOptions {
  uid?: string;
  deadline: number;
  logger: Logger;
  /** More fields bound to the request's logger besides its uid: not copied until a line is written. */
  bindings?: Readonly<Record<string, unknown>>;
  now?: () => number;
}

/**
 * The context of one call. A class rather than an object literal with closures: one is made per KMS call.
 * Its parts that most calls never use are made on first use: the child logger (a {@link RequestLogger})
 * and the signal. The signal is the costliest (an AbortController is about 6 µs and garbage of its own,
 * per call): until a provider reads it, the request keeps its abort reason itself, core's races listen
 * without it, and a provider that only needs to know calls {@link throwIfAborted}.
 */
class ScopedRequest implements RequestContext {
  readonly uid: string;
  readonly logger: Logger;
  declare readonly signal: AbortSignal;
  readonly deadline: number;
  #controller: AbortController | undefined;
  /** Why the request was aborted; set once, before the signal (if made) aborts and the races are told. */
  #reason: Error | undefined;
  /**
   * Races waiting on this request (see {@link raceRequest}), told when it aborts, without an event listener.
   * Nearly always one at a time (the broker's call to a provider): it takes a slot, and only a second race
   * running beside it (replication) makes a set.
   */
  #racer: (() => void) | undefined;
  #moreRacers: Set<() => void> | undefined;

  constructor(options: ScopeOptions) {
    // The caller's uid (a UUID from kube-apiserver) cut to a size a log line may quote, or a random one.
    const given = options.uid;
    const uid = given === undefined || given === '' ? randomUUID() : truncateForLog(given);
    this.uid = uid;
    this.logger = new RequestLogger(options.logger, options.bindings, uid);
    this.deadline = options.deadline;
    // Own and enumerable, as every other member: a provider that copies its context
    // (`{ ...request, deadline }`) keeps the signal too, as it did with the object literal core API 1.x
    // handed out. The one accessor, since the signal is made when first read.
    Object.defineProperty(this, 'signal', SIGNAL_FIELD);
  }

  /**
   * The request a view of it stands for: the request itself, or the one a provider's narrower view made
   * with `Object.create(request)` inherits from (it inherits the accessors, not the private fields).
   */
  static #own(view: object): ScopedRequest {
    for (let at: object | null = view; at !== null; at = Object.getPrototypeOf(at) as object | null) {
      if (#reason in at) return at;
    }
    throw new TypeError('not a request context made by core');
  }

  /** The request's signal, made on first read; already aborted when the request was. */
  static signalOf(view: ScopedRequest): AbortSignal {
    const request = ScopedRequest.#own(view);
    if (request.#controller === undefined) {
      request.#controller = new AbortController();
      if (request.#reason !== undefined) request.#controller.abort(request.#reason);
    }
    return request.#controller.signal;
  }

  /** Why the request was aborted, or undefined while it has not been (see {@link ABORT_REASON}). */
  [ABORT_REASON](): Error | undefined {
    return ScopedRequest.#own(this).#reason;
  }

  /** Aborts the request (and its signal, if made), then the races on it. Static: not a member a provider sees. */
  static abort(request: ScopedRequest, reason: Error): void {
    if (request.#reason !== undefined) return;
    request.#reason = reason;
    request.#controller?.abort(reason);
    const racer = request.#racer;
    const moreRacers = request.#moreRacers;
    request.#racer = undefined;
    request.#moreRacers = undefined;
    racer?.();
    if (moreRacers !== undefined) for (const other of moreRacers) other();
  }

  #addRacer(racer: () => void): void {
    if (this.#racer === undefined) this.#racer = racer;
    else (this.#moreRacers ??= new Set()).add(racer);
  }

  #removeRacer(racer: () => void): void {
    if (this.#racer === racer) this.#racer = undefined;
    else this.#moreRacers?.delete(racer);
  }

  /** Settles with `work`, or rejects when this request aborts: {@link raceAbort} without an EventTarget listener. */
  static race<T>(request: ScopedRequest, work: Promise<T>, what: string): Promise<T> {
    if (request.#reason !== undefined) {
      work.catch(() => undefined);
      return Promise.reject(abortErrorFor(request.#reason, what));
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(abortErrorFor(request.#reason, what));
      request.#addRacer(onAbort);
      work.then(
        (value) => {
          request.#removeRacer(onAbort);
          resolve(value);
        },
        (error: unknown) => {
          request.#removeRacer(onAbort);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}

/** The `signal` of every {@link ScopedRequest}: made when first read. */
const SIGNAL_FIELD: PropertyDescriptor = {
  enumerable: true,
  get(this: ScopedRequest): AbortSignal {
    return ScopedRequest.signalOf(this);
  },
};

function expire(request: ScopedRequest): void {
  ScopedRequest.abort(request, new DeadlineExceeded('deadline exceeded'));
}

class Scope implements RequestScope {
  readonly context: ScopedRequest;
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(options: ScopeOptions) {
    this.context = new ScopedRequest(options);
    if (Number.isFinite(options.deadline)) {
      const now = options.now ?? Date.now;
      const remaining = Math.max(0, options.deadline - now());
      this.#timer = setTimeout(expire, remaining, this.context);
      this.#timer.unref();
    }
  }

  cancel(reason = 'request cancelled'): void {
    ScopedRequest.abort(this.context, new RequestCancelled(reason));
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}

/**
 * Builds the context of one call: a signal that aborts at `deadline` (epoch ms, `Infinity` for none) or on
 * cancel, and a logger bound to the request uid.
 */
export function createRequestScope(options: ScopeOptions): RequestScope {
  return new Scope(options);
}

function abortErrorFor(reason: unknown, what: string): TrousseauError {
  // By name rather than class: the reason may come from another copy of core.
  if (reason instanceof Error && reason.name === 'RequestCancelled') {
    return new TrousseauError('TROUSSEAU_ERR_CANCELLED', `${what} cancelled: ${reason.message}`);
  }
  return new TrousseauError(
    'TROUSSEAU_ERR_DEADLINE_EXCEEDED',
    `${what} did not finish before the caller's deadline`,
  );
}

/** The error to throw for an aborted request signal. */
export function abortError(signal: AbortSignal, what: string): TrousseauError {
  return abortErrorFor(signal.reason, what);
}

/**
 * Throws the error for an aborted request ({@link abortError}: its deadline passed, its caller cancelled,
 * or the server is stopping). The same as `if (request.signal.aborted) throw abortError(request.signal, ...)`,
 * without making the signal of a context core made, which would cost the call several microseconds: for a
 * provider that checks before it starts work and does not listen (core API 1.3).
 */
export function throwIfAborted(request: RequestContext, what: string): void {
  const reasonOf = (request as { [ABORT_REASON]?: () => Error | undefined })[ABORT_REASON];
  if (typeof reasonOf === 'function') {
    const reason = reasonOf.call(request);
    if (reason !== undefined) throw abortErrorFor(reason, what);
  } else if (request.signal.aborted) {
    throw abortError(request.signal, what);
  }
}

/**
 * Settles with `work`, or rejects as soon as the request is aborted, whichever is first: a provider that
 * ignores its signal still cannot hold a caller past the deadline.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(abortError(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * {@link raceAbort} for a request: the same answer, cheaper for a context this module made (no event
 * listener on its signal); any other context is raced on its signal.
 */
export function raceRequest<T>(work: Promise<T>, request: RequestContext, what: string): Promise<T> {
  return request instanceof ScopedRequest
    ? ScopedRequest.race(request, work, what)
    : raceAbort(work, request.signal, what);
}
