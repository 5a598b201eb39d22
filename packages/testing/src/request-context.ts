import {
  createRequestScope,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type RequestContext,
} from '@trousseau/core';

/**
 * A request context for calling a provider directly in a test, with a deadline `timeoutMs` from now on
 * `clock`: pass the clock the provider was given (a test clock moved forward), since a provider compares
 * request deadlines with its own clock.
 */
export function testRequestContext(
  timeoutMs = 5_000,
  logger: Logger = silentLogger,
  clock: Clock = systemClock,
): RequestContext {
  return createRequestScope({
    uid: 'test',
    deadline: clock.now() + timeoutMs,
    logger,
    now: () => clock.now(),
  }).context;
}
