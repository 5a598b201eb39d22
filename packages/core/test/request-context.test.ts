import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRequestScope, type Logger, type RequestContext } from '../src/index.js';

/** A logger that records the bindings of each child made from it. */
function bindingsLogger(): { logger: Logger; children: Record<string, unknown>[] } {
  const children: Record<string, unknown>[] = [];
  const ignore = (): void => undefined;
  const logger: Logger = {
    trace: ignore,
    debug: ignore,
    info: ignore,
    warn: ignore,
    error: ignore,
    child: (bindings: Record<string, unknown>) => {
      children.push(bindings);
      return logger;
    },
  };
  return { logger, children };
}

describe('request context', () => {
  it('keeps its uid and logger when a provider copies it with spread, as core API 1.x contexts did', () => {
    const { logger, children } = bindingsLogger();
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
      assert.equal(typeof narrower.logger.info, 'function');
      assert.deepEqual(children, [{ rpc: 'Decrypt', requestId: 'apiserver-uid' }]);
    } finally {
      scope.dispose();
    }
  });

  it('makes the child logger once, on first use, and a random uid when the caller sent none', () => {
    const { logger, children } = bindingsLogger();
    const scope = createRequestScope({ deadline: Infinity, logger });
    try {
      assert.equal(children.length, 0, 'no child logger before one is asked for');
      const uid = scope.context.uid;
      assert.match(uid, /^[0-9a-f-]{36}$/);
      assert.equal(scope.context.uid, uid, 'the same uid every time');
      void scope.context.logger;
      void scope.context.logger;
      assert.deepEqual(children, [{ requestId: uid }]);
    } finally {
      scope.dispose();
    }
  });

  it('aborts its signal at the deadline and on cancel', async () => {
    const { logger } = bindingsLogger();
    const expiring = createRequestScope({ deadline: Date.now() + 1, logger });
    await new Promise<void>((resolve) => expiring.context.signal.addEventListener('abort', () => resolve()));
    assert.equal((expiring.context.signal.reason as Error).name, 'DeadlineExceeded');
    expiring.dispose();
    const cancelled = createRequestScope({ deadline: Infinity, logger });
    cancelled.cancel('the client went away');
    assert.equal((cancelled.context.signal.reason as Error).name, 'RequestCancelled');
    cancelled.dispose();
  });
});
