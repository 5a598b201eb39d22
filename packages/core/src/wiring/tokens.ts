import type { Clock } from '../clock.js';
import type { LoadedConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { ProviderRegistry } from '../registry.js';

/** An injection token that remembers the type it resolves to. */
export interface Token<T> {
  readonly symbol: symbol;
  /** Type-only marker; never set. */
  readonly type?: T;
}

function token<T>(description: string): Token<T> {
  return { symbol: Symbol(description) };
}

/** Everything the composition root injects into core and the providers. */
export const TOKENS = {
  config: token<LoadedConfig>('trousseau.config'),
  logger: token<Logger>('trousseau.logger'),
  metrics: token<Metrics>('trousseau.metrics'),
  clock: token<Clock>('trousseau.clock'),
  env: token<Readonly<Record<string, string | undefined>>>('trousseau.env'),
  registry: token<ProviderRegistry>('trousseau.registry'),
} as const;
