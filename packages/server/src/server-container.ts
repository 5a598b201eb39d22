// The composition root: reflect-metadata is loaded here, once, before anything resolves through tsyringe.
import './reflect-polyfill.js';
import { noopMetrics, type LoadedConfig, type Logger, type ProviderSearchPath } from '@trousseau/core';
import {
  createToken,
  createTrousseauContainer,
  registerSingleton,
  registerValue,
  TOKENS,
  type DependencyContainer,
} from '@trousseau/core/wiring';
import { BUILTIN_PROVIDERS } from './builtin-providers.js';
import { HealthServer, ServingState } from './health-server.js';
import { PrometheusMetrics } from './prometheus-metrics.js';
import { providerSearchPath } from './provider-search.js';
import { TROUSSEAU_VERSION } from './version.js';

/** The server's own parts, beside core's {@link TOKENS}. */
export const SERVER_TOKENS = {
  /** The Prometheus registry `/metrics` serves; core's metrics backend. */
  prometheus: createToken<PrometheusMetrics>('trousseau.server.prometheus'),
  /** The HTTP side listener (`/livez`, `/readyz`, `/healthz`, `/metrics`). */
  healthServer: createToken<HealthServer>('trousseau.server.healthServer'),
  /** Whether the KMS socket is served, as `/livez` reports it. */
  serving: createToken<ServingState>('trousseau.server.serving'),
  /** How long a stop waits for in-flight calls before cancelling them, ms. */
  drainTimeoutMs: createToken<number>('trousseau.server.drainTimeoutMs'),
} as const;

export interface ServerContainerOptions {
  readonly loaded: LoadedConfig;
  readonly logger: Logger;
  /** Where provider packages are looked for; default from TROUSSEAU_PROVIDERS_PATH, else `<install>/providers`. */
  readonly providerSearch?: ProviderSearchPath;
}

/**
 * The composition root: core's container (providers, health monitor, broker, gRPC front-end, metrics,
 * clock) with the server's parts registered over its defaults: Prometheus as the metrics backend when
 * `health.listen` serves `/metrics` (none otherwise), the
 * built-in providers, the provider search path, this version as the v1beta1 runtime, and the HTTP side
 * listener. `TrousseauServer.fromContainer` resolves the whole plugin from it; a test registers its own
 * value under any token first (a scripted provider type, a clock, a metrics backend, a drain timeout).
 */
export function createServerContainer(options: ServerContainerOptions): DependencyContainer {
  const container = createTrousseauContainer({ config: options.loaded, logger: options.logger });
  registerValue(container, TOKENS.builtinProviders, BUILTIN_PROVIDERS);
  registerValue(container, TOKENS.runtime, { name: 'trousseau', version: TROUSSEAU_VERSION });
  if (options.providerSearch === undefined) {
    registerSingleton(container, TOKENS.providerSearch, (resolve) =>
      providerSearchPath({ env: resolve(TOKENS.env) }),
    );
  } else {
    registerValue(container, TOKENS.providerSearch, options.providerSearch);
  }
  registerSingleton(container, SERVER_TOKENS.prometheus, () => new PrometheusMetrics());
  // Metrics are kept where they can be read: with no `health.listen` there is no `/metrics`, so nothing
  // is recorded and prom-client is never loaded (a test that reads the registry registers it here).
  registerSingleton(container, TOKENS.metricsBackend, (resolve) =>
    resolve(TOKENS.config).config.health.listen === undefined
      ? noopMetrics
      : resolve(SERVER_TOKENS.prometheus),
  );
  registerSingleton(container, SERVER_TOKENS.serving, () => new ServingState());
  registerValue(container, SERVER_TOKENS.drainTimeoutMs, 10_000);
  registerSingleton(container, SERVER_TOKENS.healthServer, (resolve) => {
    const serving = resolve(SERVER_TOKENS.serving);
    return new HealthServer({
      broker: resolve(TOKENS.broker),
      metrics: resolve(SERVER_TOKENS.prometheus),
      isServing: () => serving.serving,
      logger: resolve(TOKENS.logger),
    });
  });
  return container;
}
