import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { Broker } from '../broker.js';
import { systemClock, type Clock } from '../clock.js';
import { encryptingProvider, type LoadedConfig, type ProviderEntry } from '../config.js';
import { toTrousseauError, TrousseauError } from '../errors.js';
import type { Logger } from '../logger.js';
import { noopMetrics, type Metrics } from '../metrics.js';
import type { KeyProvider } from '../provider.js';
import { ProviderRegistry, validateProviderOptions, type BuiltinProviders } from '../registry.js';
import { createSecretReader } from '../secret-ref.js';
import { TOKENS, type Token } from './tokens.js';

/** Resolves a typed token from a container. */
export function resolveToken<T>(container: DependencyContainer, token: Token<T>): T {
  return container.resolve<T>(token.symbol);
}

export interface ContainerInputs {
  readonly config: LoadedConfig;
  readonly logger: Logger;
  readonly builtins: BuiltinProviders;
  readonly metrics?: Metrics;
  readonly clock?: Clock;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * The composition root's container: config, logger, metrics, clock, environment and the provider registry,
 * registered by explicit token (no reliance on emitted parameter types). A child of tsyringe's root, so
 * several servers in one process (tests) never share state.
 */
export function createTrousseauContainer(inputs: ContainerInputs): DependencyContainer {
  const container = rootContainer.createChildContainer();
  container.register(TOKENS.config.symbol, { useValue: inputs.config });
  container.register(TOKENS.logger.symbol, { useValue: inputs.logger });
  container.register(TOKENS.metrics.symbol, { useValue: inputs.metrics ?? noopMetrics });
  container.register(TOKENS.clock.symbol, { useValue: inputs.clock ?? systemClock });
  container.register(TOKENS.env.symbol, { useValue: inputs.env ?? process.env });
  container.register(TOKENS.registry.symbol, { useValue: new ProviderRegistry(inputs.builtins) });
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
      failure.code === 'TROUSSEAU_ERR_INTERNAL' ? 'TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID' : failure.code,
      `provider "${entry.name}" (${entry.type}) failed to start: ${failure.message}`,
      { cause: error },
    );
  }
}

/**
 * Loads, validates and creates every provider instance the config lists, then the broker over them.
 * If any instance fails, the ones already created are closed before the error is thrown.
 */
export async function createBroker(container: DependencyContainer): Promise<Broker> {
  const loaded = resolveToken(container, TOKENS.config);
  const logger = resolveToken(container, TOKENS.logger);
  const metrics = resolveToken(container, TOKENS.metrics);
  const clock = resolveToken(container, TOKENS.clock);
  const registry = resolveToken(container, TOKENS.registry);
  const secrets = createSecretReader(loaded.dir, resolveToken(container, TOKENS.env));
  const providers = new Map<string, KeyProvider>();
  try {
    for (const [index, entry] of loaded.config.providers.entries()) {
      const definition = await registry.load(entry.type, loaded.dir);
      const options = await validateProviderOptions(definition, entry.config, loaded.file, [
        'providers',
        index,
        'config',
      ]);
      const provider = await createInstance(entry, () =>
        definition.create(options, {
          instanceName: entry.name,
          logger: logger.child({ provider: entry.name, type: entry.type }),
          metrics,
          clock,
          configDir: loaded.dir,
          secrets,
        }),
      );
      providers.set(entry.name, provider);
    }
  } catch (error) {
    await Promise.allSettled([...providers.values()].map((provider) => provider.close()));
    throw error;
  }
  return new Broker({
    providers,
    encryptWith: encryptingProvider(loaded.config).name,
    maxPlaintextBytes: loaded.config.kms.maxPlaintextBytes,
    healthCheckIntervalMs: loaded.config.kms.healthCheckIntervalSeconds * 1000,
    logger,
    metrics,
    clock,
  });
}
