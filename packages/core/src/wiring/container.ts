import { createRequire } from 'node:module';
import type * as Tsyringe from 'tsyringe';
import type { DependencyContainer } from 'tsyringe';
import { Broker } from '../broker.js';
import { systemClock } from '../clock.js';
import { encryptingProviders, type LoadedConfig, type ProviderEntry } from '../config.js';
import { isKnownErrorCode } from '../error-codes.js';
import { toTrousseauError, TrousseauError } from '../errors.js';
import { KmsGrpcServer } from '../grpc/kms-grpc-server.js';
import { connectionLimitsFromConfig } from '../grpc/http2/connection-limits.js';
import { HealthMonitor } from '../health-monitor.js';
import type { Logger } from '../logger.js';
import { guardMetrics, noopMetrics } from '../metrics.js';
import type { KeyProvider } from '../provider.js';
import { ProviderRegistry, validateProviderOptions } from '../registry.js';
import { createSecretReader } from '../secret-ref.js';
import { providerToken, TOKENS, type Token } from './tokens.js';

// tsyringe is CommonJS and re-exports its parts through tslib's __exportStar: importing it from ESM made
// Node's CommonJS lexer scan that whole graph for export names on every start (issue 12). `require` loads
// the same module without the scan. It needs the Reflect polyfill loaded first, as the import did.
const { container: rootContainer, instanceCachingFactory } = createRequire(import.meta.url)(
  'tsyringe',
) as typeof Tsyringe;

/** Resolves a typed token from a container. */
export function resolveToken<T>(container: DependencyContainer, token: Token<T>): T {
  return container.resolve<T>(token.symbol);
}

/** Registers a value under a token; the latest registration of a token is the one resolved. */
export function registerValue<T>(container: DependencyContainer, token: Token<T>, value: T): void {
  container.register<T>(token.symbol, { useValue: value });
}

/**
 * Registers a part built by `make` on first resolution and shared afterwards. `make` resolves what the
 * part needs through `resolve`, so a test that replaced one of those tokens gets its value in.
 */
export function registerSingleton<T>(
  container: DependencyContainer,
  token: Token<T>,
  make: (resolve: <U>(token: Token<U>) => U) => T,
): void {
  container.register<T>(token.symbol, {
    useFactory: instanceCachingFactory<T>((resolving) => make((needed) => resolveToken(resolving, needed))),
  });
}

export interface ContainerInputs {
  readonly config: LoadedConfig;
  readonly logger: Logger;
}

/**
 * The composition root's container. Every part of the plugin is registered under its token (see
 * {@link TOKENS}) and built from the tokens it needs, on first resolution: the registry, the secret
 * reader, the guarded metrics, the provider instances, the health monitor, the broker and the gRPC
 * front-end. Defaults: the system clock, `process.env`, no built-in providers, no provider search path,
 * metrics dropped. The server registers its own values over these (Prometheus, its built-in providers,
 * its version), and a test replaces any part by registering a value under its token. A child of
 * tsyringe's root container, so several servers in one process (tests) never share state.
 *
 * Provider instances are created asynchronously by {@link createProviders}, which must run before the
 * providers, the health monitor, the broker or the front-end are resolved.
 */
export function createTrousseauContainer(inputs: ContainerInputs): DependencyContainer {
  const container = rootContainer.createChildContainer();
  registerValue(container, TOKENS.config, inputs.config);
  registerValue(container, TOKENS.logger, inputs.logger);
  registerValue(container, TOKENS.clock, systemClock);
  registerValue(container, TOKENS.env, process.env);
  registerValue(container, TOKENS.builtinProviders, {});
  registerValue(container, TOKENS.providerSearch, { locations: [] });
  registerValue(container, TOKENS.metricsBackend, noopMetrics);
  registerValue(container, TOKENS.runtime, { name: 'trousseau', version: 'unknown' });
  registerSingleton(
    container,
    TOKENS.registry,
    (resolve) => new ProviderRegistry(resolve(TOKENS.builtinProviders), resolve(TOKENS.providerSearch)),
  );
  registerSingleton(container, TOKENS.secrets, (resolve) =>
    createSecretReader(resolve(TOKENS.config).dir, resolve(TOKENS.env)),
  );
  registerSingleton(container, TOKENS.metrics, (resolve) =>
    guardMetrics(resolve(TOKENS.metricsBackend), resolve(TOKENS.logger)),
  );
  registerSingleton(container, TOKENS.providers, (resolve) => {
    const entries = resolve(TOKENS.config).config.providers;
    return new Map(
      entries.map((entry) => {
        const token = providerToken(entry.name);
        if (!container.isRegistered(token.symbol, true)) {
          throw new TrousseauError(
            'TROUSSEAU_ERR_INTERNAL',
            `provider "${entry.name}" was resolved before createProviders() created it`,
          );
        }
        return [entry.name, resolve(token)];
      }),
    );
  });
  registerSingleton(container, TOKENS.healthMonitor, (resolve) => {
    const { config } = resolve(TOKENS.config);
    return new HealthMonitor({
      providers: resolve(TOKENS.providers),
      intervalMs: config.kms.healthCheckIntervalSeconds * 1000,
      logger: resolve(TOKENS.logger),
      metrics: resolve(TOKENS.metrics),
      clock: resolve(TOKENS.clock),
    });
  });
  registerSingleton(container, TOKENS.broker, (resolve) => {
    const { config } = resolve(TOKENS.config);
    return new Broker({
      providers: resolve(TOKENS.providers),
      monitor: resolve(TOKENS.healthMonitor),
      encryptWith: encryptingProviders(config),
      ...(config.minCopies === undefined ? {} : { minCopies: config.minCopies }),
      maxPlaintextBytes: config.kms.maxPlaintextBytes,
      envelopeVersion: config.kms.envelopeVersion,
      logger: resolve(TOKENS.logger),
      metrics: resolve(TOKENS.metrics),
      clock: resolve(TOKENS.clock),
    });
  });
  registerSingleton(
    container,
    TOKENS.kmsServer,
    (resolve) =>
      new KmsGrpcServer({
        broker: resolve(TOKENS.broker),
        statusVersion: resolve(TOKENS.config).config.kms.statusVersion,
        limits: connectionLimitsFromConfig(resolve(TOKENS.config).config.socket.limits),
        runtime: resolve(TOKENS.runtime),
        logger: resolve(TOKENS.logger),
        metrics: resolve(TOKENS.metrics),
        clock: resolve(TOKENS.clock),
      }),
  );
  return container;
}

/** Runs a provider's factory; a failure names the instance and type, keeping the code and cause. */
async function createInstance(
  entry: ProviderEntry,
  create: () => KeyProvider | Promise<KeyProvider>,
): Promise<KeyProvider> {
  try {
    return await create();
  } catch (error) {
    const failure = toTrousseauError(error);
    throw new TrousseauError(
      isKnownErrorCode(failure.code) && failure.code !== 'TROUSSEAU_ERR_INTERNAL'
        ? failure.code
        : 'TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID',
      `provider "${entry.name}" (${entry.type}) failed to start: ${failure.message}`,
      { cause: error },
    );
  }
}

/**
 * Runs `work`; a failure is raised again with the same code and cause, its message prefixed by the config
 * file and the path inside it that led there, so an operator knows what to fix in which file.
 */
async function inConfig<T>(file: string, path: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const failure = toTrousseauError(error);
    if (!isKnownErrorCode(failure.code)) throw failure;
    throw new TrousseauError(failure.code, `${file}: ${path}: ${failure.message}`, {
      cause: failure.cause ?? error,
      retryable: failure.retryable,
    });
  }
}

/**
 * Loads, validates and creates every provider instance the config lists, and registers each under its
 * {@link providerToken}. An instance whose token is already registered (a test put its own there) is
 * not created. If any instance fails, the ones created here are closed before the error is thrown.
 */
export async function createProviders(container: DependencyContainer): Promise<void> {
  const loaded = resolveToken(container, TOKENS.config);
  const logger = resolveToken(container, TOKENS.logger);
  const created: KeyProvider[] = [];
  try {
    for (const [index, entry] of loaded.config.providers.entries()) {
      const token = providerToken(entry.name);
      if (container.isRegistered(token.symbol)) continue;
      const definition = await inConfig(loaded.file, `providers[${index}].type`, () =>
        resolveToken(container, TOKENS.registry).load(entry.type, loaded.dir),
      );
      const options = await validateProviderOptions(definition, entry.config, loaded.file, [
        'providers',
        index,
        'config',
      ]);
      const provider = await inConfig(loaded.file, `providers[${index}]`, () =>
        createInstance(entry, () =>
          definition.create(options, {
            instanceName: entry.name,
            logger: logger.child({ provider: entry.name, type: entry.type }),
            metrics: resolveToken(container, TOKENS.metrics),
            clock: resolveToken(container, TOKENS.clock),
            configDir: loaded.dir,
            secrets: resolveToken(container, TOKENS.secrets),
          }),
        ),
      );
      created.push(provider);
      registerValue(container, token, provider);
    }
  } catch (error) {
    await Promise.allSettled(created.map((provider) => provider.close()));
    throw error;
  }
}
