import {
  createSecretReader,
  guardMetrics,
  noopMetrics,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Metrics,
  type ProviderContext,
} from '@trousseau/core';

export interface TestProviderContextOptions {
  /** The instance's `name` from the config file (default `test`). */
  readonly instanceName?: string;
  /** Where relative paths in options and `{ file }` secrets resolve (default: the working directory). */
  readonly configDir?: string;
  /** What `{ env }` secrets read (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Default: a logger that drops everything. */
  readonly logger?: Logger;
  /**
   * Default: metrics that drop everything. Given metrics are put behind core's guard, as the server puts
   * its Prometheus registry: a report that does not match its declaration is dropped, never thrown.
   */
  readonly metrics?: Metrics;
  /** Default: the system clock. */
  readonly clock?: Clock;
}

/**
 * The context a provider's `create(options, context)` receives from the server, for calling it directly
 * in a test: the same secret reader the server uses, and quiet defaults for the rest.
 */
export function createTestProviderContext(options: TestProviderContextOptions = {}): ProviderContext {
  const configDir = options.configDir ?? process.cwd();
  return {
    instanceName: options.instanceName ?? 'test',
    logger: options.logger ?? silentLogger,
    metrics: guardMetrics(options.metrics ?? noopMetrics, options.logger ?? silentLogger),
    clock: options.clock ?? systemClock,
    configDir,
    secrets: createSecretReader(configDir, options.env ?? process.env),
  };
}
