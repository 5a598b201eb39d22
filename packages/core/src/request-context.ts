import { randomUUID } from 'node:crypto';
import { TrousseauError } from './errors.js';
import { truncateForLog } from './log-limit.js';
import type { Logger } from './logger.js';
import type { RequestContext } from './provider.js';

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

/**
 * Builds the context of one call: a signal that aborts at `deadline` (epoch ms, `Infinity` for none) or on
 * cancel, and a logger bound to the request uid.
 */
export function createRequestScope(options: {
  uid?: string;
  deadline: number;
  logger: Logger;
  /** More fields bound to the request's logger besides its uid. */
  bindings?: Record<string, unknown>;
  now?: () => number;
}): RequestScope {
  const controller = new AbortController();
  // The uid comes from the caller (a UUID from kube-apiserver): cut to a size a log line may quote. Made
  // on first use, like the logger: most calls never read it, and v1beta1 callers send none to cut.
  let uid: string | undefined;
  const uidOf = (): string =>
    (uid ??= options.uid === undefined || options.uid === '' ? randomUUID() : truncateForLog(options.uid));
  // The child logger is made on first use: most calls never log, and a child costs on the hot path.
  let logger: Logger | undefined;
  const now = options.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(options.deadline)) {
    const remaining = Math.max(0, options.deadline - now());
    timer = setTimeout(() => controller.abort(new DeadlineExceeded('deadline exceeded')), remaining);
    timer.unref();
  }
  return {
    context: {
      get uid() {
        return uidOf();
      },
      signal: controller.signal,
      deadline: options.deadline,
      get logger() {
        logger ??= options.logger.child({ ...options.bindings, requestId: uidOf() });
        return logger;
      },
    },
    cancel(reason = 'request cancelled') {
      if (!controller.signal.aborted) controller.abort(new RequestCancelled(reason));
    },
    dispose() {
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

/** The error to throw for an aborted request signal. */
export function abortError(signal: AbortSignal, what: string): TrousseauError {
  if (signal.reason instanceof RequestCancelled) {
    return new TrousseauError('TROUSSEAU_ERR_CANCELLED', `${what} cancelled: ${signal.reason.message}`);
  }
  return new TrousseauError(
    'TROUSSEAU_ERR_DEADLINE_EXCEEDED',
    `${what} did not finish before the caller's deadline`,
  );
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
