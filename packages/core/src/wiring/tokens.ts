import type { Broker } from '../broker.js';
import type { Clock } from '../clock.js';
import type { LoadedConfig } from '../config.js';
import type { KmsGrpcServer } from '../grpc/kms-grpc-server.js';
import type { HealthMonitor } from '../health-monitor.js';
import type { Logger } from '../logger.js';
import type { Metrics, MetricsBackend } from '../metrics.js';
import type { KeyProvider } from '../provider.js';
import type { BuiltinProviders, ProviderRegistry, ProviderSearchPath } from '../registry.js';
import type { SecretReader } from '../secret-ref.js';

/** An injection token that remembers the type it resolves to. */
export interface Token<T> {
  readonly symbol: symbol;
  /** Type-only marker; never set. */
  readonly type?: T;
}

/** A new token; `description` names it in tsyringe's messages. */
export function createToken<T>(description: string): Token<T> {
  return { symbol: Symbol(description) };
}

/**
 * Every part of the plugin, by the token the composition root registers it under. A test replaces a part
 * by registering its own value under the token before the part is first resolved.
 */
export const TOKENS = {
  /** Inputs: the loaded config file and the root logger. */
  config: createToken<LoadedConfig>('trousseau.config'),
  logger: createToken<Logger>('trousseau.logger'),
  /** The one clock of the process: broker, health checks, front-end and every provider read it. */
  clock: createToken<Clock>('trousseau.clock'),
  /** The environment `{ env }` secret references read. */
  env: createToken<Readonly<Record<string, string | undefined>>>('trousseau.env'),
  /** Provider `type` names the server ships, mapped to their packages. */
  builtinProviders: createToken<BuiltinProviders>('trousseau.builtinProviders'),
  /** Where provider packages that are not built in are looked for. */
  providerSearch: createToken<ProviderSearchPath>('trousseau.providerSearch'),
  registry: createToken<ProviderRegistry>('trousseau.registry'),
  secrets: createToken<SecretReader>('trousseau.secrets'),
  /** Where metrics go (the server's Prometheus registry); may throw. */
  metricsBackend: createToken<MetricsBackend>('trousseau.metricsBackend'),
  /** The backend behind the guard that core and providers report to: it never throws. */
  metrics: createToken<Metrics>('trousseau.metrics'),
  /** Every provider instance by config name, each resolved from its {@link providerToken}. */
  providers: createToken<ReadonlyMap<string, KeyProvider>>('trousseau.providers'),
  healthMonitor: createToken<HealthMonitor>('trousseau.healthMonitor'),
  broker: createToken<Broker>('trousseau.broker'),
  /** What v1beta1 Version reports as runtime_name / runtime_version. */
  runtime: createToken<{ readonly name: string; readonly version: string }>('trousseau.runtime'),
  /** The KMS gRPC front-end. */
  kmsServer: createToken<KmsGrpcServer>('trousseau.kmsServer'),
} as const;

const providerTokens = new Map<string, Token<KeyProvider>>();

/** The token of the provider instance a config names `instanceName`. */
export function providerToken(instanceName: string): Token<KeyProvider> {
  let found = providerTokens.get(instanceName);
  if (found === undefined) {
    found = createToken<KeyProvider>(`trousseau.provider.${instanceName}`);
    providerTokens.set(instanceName, found);
  }
  return found;
}
