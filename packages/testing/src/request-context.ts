import { createRequestScope, silentLogger, type Logger, type RequestContext } from '@trousseau/core';

/** A request context for calling a provider directly in a test, with a deadline `timeoutMs` from now. */
export function testRequestContext(timeoutMs = 5_000, logger: Logger = silentLogger): RequestContext {
  return createRequestScope({ uid: 'test', deadline: Date.now() + timeoutMs, logger }).context;
}
