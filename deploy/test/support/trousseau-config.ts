import {
  checkProviderDefinition,
  configSchema,
  parseConfig,
  validateProviderOptions,
  type TrousseauConfig,
} from '@trousseau/core';

/** The built-in provider packages, by the `type` a config names (as packages/server wires them). */
const BUILTIN_PROVIDERS: Readonly<Record<string, () => Promise<unknown>>> = {
  local: () => import('@trousseau/provider-local'),
  vault: () => import('@trousseau/provider-vault'),
  awskms: () => import('@trousseau/provider-awskms'),
  azure: () => import('@trousseau/provider-azure'),
};

export interface CheckedConfig {
  readonly config: TrousseauConfig;
  /** The side listener address (`health.listen`), checked by core's schema or, until core has it, here. */
  readonly healthListen: string | undefined;
  /** Providers whose options were validated with the provider's own schema. */
  readonly validatedProviders: readonly string[];
  /** Providers whose package does not export a provider definition yet, with the loader's reason. */
  readonly unverifiedProviders: readonly { type: string; reason: string }[];
}

/** Does core's config schema know the `health` block yet? (The side listener lands in packages/server.) */
export function coreKnowsHealthBlock(): boolean {
  return 'health' in configSchema.shape;
}

const LISTEN = /^(?<host>\[[0-9a-fA-F:]+\]|[0-9]{1,3}(\.[0-9]{1,3}){3}|[A-Za-z0-9.-]+):(?<port>[0-9]{1,5})$/;

/**
 * Validates a Trousseau config document as `trousseau serve` would: core's schema (unknown keys are
 * errors), then each provider's options with that provider's own schema.
 */
export async function checkTrousseauConfig(value: unknown, where: string): Promise<CheckedConfig> {
  let document = value;
  let healthListen: string | undefined;
  const raw = value as { health?: { listen?: unknown } } | null;
  if (typeof raw === 'object' && raw !== null && 'health' in raw) {
    const listen = raw.health?.listen;
    if (
      typeof listen !== 'string' ||
      !LISTEN.test(listen) ||
      Number(LISTEN.exec(listen)?.groups?.['port']) > 65535
    ) {
      throw new Error(`${where}: health.listen must be "host:port", got ${JSON.stringify(listen)}`);
    }
    healthListen = listen;
    if (!coreKnowsHealthBlock()) {
      // Until core's schema has the block, check the rest with it and the block here (above).
      const rest: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
      delete rest['health'];
      document = rest;
    }
  }
  const { config } = parseConfig(document, where, '/etc/trousseau');
  const validatedProviders: string[] = [];
  const unverifiedProviders: { type: string; reason: string }[] = [];
  for (const [index, entry] of config.providers.entries()) {
    const load = BUILTIN_PROVIDERS[entry.type];
    if (load === undefined) throw new Error(`${where}: provider type "${entry.type}" is not built in`);
    let definition;
    try {
      definition = checkProviderDefinition(entry.type, await load());
    } catch (error) {
      unverifiedProviders.push({
        type: entry.type,
        reason: error instanceof Error ? error.message : String(error),
      });
      continue;
    }
    await validateProviderOptions(definition, entry.config, where, ['providers', index, 'config']);
    validatedProviders.push(entry.type);
  }
  return { config, healthListen, validatedProviders, unverifiedProviders };
}
