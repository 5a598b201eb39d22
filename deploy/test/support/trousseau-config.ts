import {
  checkProviderDefinition,
  parseConfig,
  validateProviderOptions,
  type TrousseauConfig,
} from '@trousseau/core';
import { BUILTIN_PROVIDERS } from '@trousseau/server/builtin-providers';

/** Provider loaders by `type`, as the server's composition root has them. */
type ProviderLoaders = Readonly<Record<string, () => Promise<unknown>>>;

export interface CheckedConfig {
  readonly config: TrousseauConfig;
  /** The side listener address (`health.listen`), checked by core's schema. */
  readonly healthListen: string | undefined;
  /** Providers whose options were validated with the provider's own schema: every one in the config. */
  readonly validatedProviders: readonly string[];
}

/**
 * Validates a Trousseau config document as `trousseau serve` would: core's schema (unknown keys are
 * errors), then each provider's package, loaded through the server's own list of built-in providers,
 * and its options with that provider's own schema. A provider that does not load fails the check: a
 * shipped config whose provider cannot be loaded does not work. `providers` replaces the server's list in
 * this file's own tests.
 */
export async function checkTrousseauConfig(
  value: unknown,
  where: string,
  providers: ProviderLoaders = BUILTIN_PROVIDERS,
): Promise<CheckedConfig> {
  const { config } = parseConfig(value, where, '/etc/trousseau');
  const validatedProviders: string[] = [];
  for (const [index, entry] of config.providers.entries()) {
    const load = providers[entry.type];
    if (load === undefined) {
      throw new Error(
        `${where}: provider type "${entry.type}" is not built into the server (${Object.keys(providers).join(', ')})`,
      );
    }
    let definition;
    try {
      definition = checkProviderDefinition(entry.type, await load());
    } catch (error) {
      throw new Error(
        `${where}: provider "${entry.type}" does not load: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    await validateProviderOptions(definition, entry.config, where, ['providers', index, 'config']);
    validatedProviders.push(entry.type);
  }
  return { config, healthListen: config.health.listen, validatedProviders };
}
