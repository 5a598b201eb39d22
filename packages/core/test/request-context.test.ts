import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  createRequestScope,
  isTrousseauError,
  throwIfAborted,
  type Logger,
  type RequestContext,
} from '../src/index.js';
import type * as RequestContextModule from '../src/request-context.js';
import { raceRequest } from '../src/request-context.js';

interface Line {
  readonly level: string;
  /** The bindings of the logger the line was written to, its parents' included. */
  readonly bindings: Record<string, unknown>;
  readonly args: unknown[];
}

/**
 * A logger that records the bindings of each child made from it, and every line with the bindings of the
 * logger it was written to. Trace is off, as at pino's default level.
 */
function bindingsLogger(): { logger: Logger; children: Record<string, unknown>[]; lines: Line[] } {
  const children: Record<string, unknown>[] = [];
  const lines: Line[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const at =
      (level: string) =>
      (...args: unknown[]): void =>
        void lines.push({ level, bindings, args });
    return {
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more: Record<string, unknown>) => {
        children.push(more);
        return make({ ...bindings, ...more });
      },
      isLevelEnabled: (level) => level !== 'trace',
    };
  };
  return { logger: make({}), children, lines };
}

/**
 * Settles once `signal` has aborted, whether it has already or does later. A request's deadline timer is
 * unref'd, so a timer of its own keeps the test's process alive until then.
 */
function abortOf(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => undefined, 1_000);
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(keepAlive);
        resolve();
      },
      { once: true },
    );
  });
}

/** Counts the AbortControllers made from now until `restore()`. */
function countAbortControllers(): { made(): number; restore(): void } {
  const original = globalThis.AbortController;
  let made = 0;
  globalThis.AbortController = class extends original {
    constructor() {
      super();
      made += 1;
    }
  };
  return {
    made: () => made,
    restore: () => {
      globalThis.AbortController = original;
    },
  };
}

describe('request context', () => {
  it('keeps its uid, logger and signal when a provider copies it with spread, as core API 1.x contexts did', () => {
    const { logger, children, lines } = bindingsLogger();
    const scope = createRequestScope({
      uid: 'apiserver-uid',
      deadline: Infinity,
      logger,
      bindings: { rpc: 'Decrypt' },
    });
    try {
      const narrower: RequestContext = { ...scope.context, deadline: 1_000 };
      assert.equal(narrower.uid, 'apiserver-uid');
      assert.equal(narrower.signal, scope.context.signal);
      assert.equal(narrower.deadline, 1_000);
      narrower.logger.info({ at: 'copy' }, 'a line');
      assert.deepEqual(children, [{ rpc: 'Decrypt', requestId: 'apiserver-uid' }]);
      assert.deepEqual(lines, [
        {
          level: 'info',
          bindings: { rpc: 'Decrypt', requestId: 'apiserver-uid' },
          args: [{ at: 'copy' }, 'a line'],
        },
      ]);
    } finally {
      scope.dispose();
    }
  });

  it('makes the child logger once, at its first line the level lets through, and a random uid when the caller sent none', () => {
    const { logger, children, lines } = bindingsLogger();
    const scope = createRequestScope({ deadline: Infinity, logger });
    try {
      const uid = scope.context.uid;
      assert.match(uid, /^[0-9a-f-]{36}$/);
      assert.equal(scope.context.uid, uid, 'the same uid every time');
      const requestLogger = scope.context.logger;
      assert.equal(requestLogger.isLevelEnabled?.('debug'), true, "the parent's level decides");
      assert.equal(requestLogger.isLevelEnabled?.('trace'), false);
      requestLogger.trace({ detail: 1 }, 'dropped');
      assert.equal(children.length, 0, 'no child logger for a line the level drops');
      requestLogger.warn({ code: 'X' }, 'first');
      requestLogger.debug('second');
      requestLogger.info({ only: 'fields' });
      requestLogger.error('third');
      requestLogger.child({ step: 'retry' }).info('fourth');
      assert.deepEqual(children, [{ requestId: uid }, { step: 'retry' }]);
      const request = { requestId: uid };
      assert.deepEqual(lines, [
        { level: 'warn', bindings: request, args: [{ code: 'X' }, 'first'] },
        { level: 'debug', bindings: request, args: ['second'] },
        { level: 'info', bindings: request, args: [{ only: 'fields' }] },
        { level: 'error', bindings: request, args: ['third'] },
        { level: 'info', bindings: { ...request, step: 'retry' }, args: ['fourth'] },
      ]);
    } finally {
      scope.dispose();
    }
  });

  it('aborts its signal at the deadline and on cancel', async () => {
    const { logger } = bindingsLogger();
    const expiring = createRequestScope({ deadline: Date.now() + 1, logger });
    await abortOf(expiring.context.signal);
    assert.equal((expiring.context.signal.reason as Error).name, 'DeadlineExceeded');
    expiring.dispose();
    const cancelled = createRequestScope({ deadline: Infinity, logger });
    cancelled.cancel('the client went away');
    assert.equal((cancelled.context.signal.reason as Error).name, 'RequestCancelled');
    cancelled.dispose();
  });

  it('makes its signal only when it is read: a call that only checks it makes no AbortController', () => {
    const { logger } = bindingsLogger();
    const counter = countAbortControllers();
    try {
      const scope = createRequestScope({ deadline: Date.now() + 60_000, logger });
      throwIfAborted(scope.context, 'a check');
      assert.equal(counter.made(), 0, 'no signal is made to check a request that has not aborted');
      scope.cancel('the client went away');
      assert.throws(
        () => throwIfAborted(scope.context, 'a check'),
        /a check cancelled: the client went away/,
      );
      assert.equal(counter.made(), 0, 'nor to check one that has');
      assert.equal(
        scope.context.signal.aborted,
        true,
        'a signal first read after the abort is already aborted',
      );
      assert.equal(counter.made(), 1);
      assert.equal(scope.context.signal, scope.context.signal, 'and is the same signal every time');
      assert.equal(counter.made(), 1);
      scope.dispose();
    } finally {
      counter.restore();
    }
  });

  it('throwIfAborted gives the code of what happened, for core contexts and any other', async () => {
    const { logger } = bindingsLogger();
    const codeOf = (request: RequestContext): string | undefined => {
      try {
        throwIfAborted(request, 'local decrypt');
        return undefined;
      } catch (error) {
        assert.ok(isTrousseauError(error), String(error));
        return error.code;
      }
    };
    const expiring = createRequestScope({ deadline: Date.now() + 1, logger });
    assert.equal(codeOf(expiring.context), undefined);
    await abortOf(expiring.context.signal);
    assert.equal(codeOf(expiring.context), 'TROUSSEAU_ERR_DEADLINE_EXCEEDED');
    expiring.dispose();
    const cancelled = createRequestScope({ deadline: Infinity, logger });
    cancelled.cancel();
    assert.equal(codeOf(cancelled.context), 'TROUSSEAU_ERR_CANCELLED');
    cancelled.dispose();
    // A context a provider or a test made itself, with a plain signal.
    const plain = (signal: AbortSignal): RequestContext => ({ uid: 'u', deadline: Infinity, logger, signal });
    assert.equal(codeOf(plain(new AbortController().signal)), undefined);
    // Any other reason is reported as abortError reports it.
    assert.equal(codeOf(plain(AbortSignal.abort())), 'TROUSSEAU_ERR_DEADLINE_EXCEEDED');
  });

  it("throwIfAborted of another copy of core (a provider's own) reads the request without making its signal, and names a cancel a cancel", async () => {
    const other = (await import(
      `../src/request-context.js?copy=${randomUUID()}`
    )) as typeof RequestContextModule;
    assert.notEqual(other.throwIfAborted, throwIfAborted, 'a second instance of the module');
    const { logger } = bindingsLogger();
    const counter = countAbortControllers();
    try {
      const scope = createRequestScope({ deadline: Infinity, logger });
      other.throwIfAborted(scope.context, 'a check');
      scope.cancel('the client went away');
      assert.throws(
        () => other.throwIfAborted(scope.context, 'a check'),
        (error: unknown) => isTrousseauError(error) && error.code === 'TROUSSEAU_ERR_CANCELLED',
      );
      assert.equal(counter.made(), 0);
      // A narrower view a provider made with Object.create answers as the request does.
      const view = Object.create(scope.context) as RequestContext;
      assert.throws(() => throwIfAborted(view, 'a check'), /a check cancelled/);
      assert.equal(view.signal.aborted, true);
      assert.equal(view.signal, scope.context.signal);
      scope.dispose();
    } finally {
      counter.restore();
    }
  });

  it('tells every race still waiting on a request when it aborts, however many run beside each other', async () => {
    const { logger } = bindingsLogger();
    const scope = createRequestScope({ deadline: Infinity, logger });
    const never = new Promise<never>(() => undefined);
    let settleFirst: (value: string) => void = () => undefined;
    const first = raceRequest(
      new Promise<string>((resolve) => (settleFirst = resolve)),
      scope.context,
      'first',
    );
    // Beside the first: the second and third wait on the request too.
    const second = raceRequest(never, scope.context, 'second');
    const third = raceRequest(never, scope.context, 'third');
    settleFirst('answered');
    assert.equal(await first, 'answered');
    // Started after the first settled: the place it held is free again.
    const fourth = raceRequest(never, scope.context, 'fourth');
    const outcomes = Promise.allSettled([second, third, fourth]);
    scope.cancel('the client went away');
    const reasons = (await outcomes).map((outcome) =>
      outcome.status === 'rejected' && isTrousseauError(outcome.reason)
        ? `${outcome.reason.code} ${outcome.reason.message}`
        : outcome.status,
    );
    assert.deepEqual(reasons, [
      'TROUSSEAU_ERR_CANCELLED second cancelled: the client went away',
      'TROUSSEAU_ERR_CANCELLED third cancelled: the client went away',
      'TROUSSEAU_ERR_CANCELLED fourth cancelled: the client went away',
    ]);
    // A race begun after the abort fails at once.
    await assert.rejects(raceRequest(never, scope.context, 'late'), /late cancelled/);
    scope.dispose();
  });
});
