import { pathToFileURL } from 'node:url';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { resolve as resolveModule } from 'import-meta-resolve';
import semver from 'semver';
import { ConfigError, formatConfigPath } from './config-error.js';
import { TrousseauError } from './errors.js';
import { CORE_API_VERSION, type ProviderDefinition } from './provider.js';

/** Built-in provider names mapped to a loader of their package; the server's composition root fills it. */
export type BuiltinProviders = Readonly<Record<string, () => Promise<unknown>>>;

function loadError(type: string, reason: string, cause?: unknown): TrousseauError {
  return new TrousseauError('TROUSSEAU_ERR_PROVIDER_LOAD', `provider type "${type}": ${reason}`, { cause });
}

/** Checks that a module's export is a provider definition this core can run; names what is wrong. */
export function checkProviderDefinition(type: string, moduleNamespace: unknown): ProviderDefinition {
  const namespace = (moduleNamespace ?? {}) as Record<string, unknown>;
  const outer = namespace['default'];
  // ESM: `default` or `provider`. A CommonJS package imported from ESM shows its `module.exports` as
  // `default`, so its own `default` / `provider` exports sit one level down.
  const nested = typeof outer === 'object' && outer !== null ? (outer as Record<string, unknown>) : undefined;
  const candidate = [outer, nested?.['default'], nested?.['provider'], namespace['provider']].find(
    (value): value is Partial<ProviderDefinition> =>
      typeof value === 'object' &&
      value !== null &&
      (value as Partial<ProviderDefinition>).kind === 'trousseau-provider',
  );
  if (candidate === undefined) {
    throw loadError(
      type,
      'the package does not export a provider definition (export default defineProvider({...}) from @trousseau/core)',
    );
  }
  if (typeof candidate.name !== 'string' || candidate.name === '') {
    throw loadError(type, 'the provider definition has no "name"');
  }
  if (typeof candidate.create !== 'function') {
    throw loadError(type, 'the provider definition has no "create" function');
  }
  const schema = candidate.configSchema as Partial<StandardSchemaV1> | undefined;
  if (typeof schema !== 'object' || schema === null || typeof schema['~standard']?.validate !== 'function') {
    throw loadError(
      type,
      'the provider definition has no "configSchema" (a Standard Schema such as a zod object)',
    );
  }
  if (typeof candidate.coreRange !== 'string' || semver.validRange(candidate.coreRange) === null) {
    throw loadError(
      type,
      `the provider definition has no valid "coreRange" (got ${JSON.stringify(candidate.coreRange)})`,
    );
  }
  if (!semver.satisfies(CORE_API_VERSION, candidate.coreRange)) {
    throw loadError(
      type,
      `the provider supports core ${candidate.coreRange}, but this Trousseau implements core API ${CORE_API_VERSION}; install a version of the provider made for it`,
    );
  }
  return candidate as ProviderDefinition;
}

/**
 * Finds provider definitions by type name: a built-in name first, otherwise an npm package resolved
 * from the config file's directory and imported.
 */
export class ProviderRegistry {
  readonly #builtins: BuiltinProviders;
  readonly #cache = new Map<string, Promise<ProviderDefinition>>();

  constructor(builtins: BuiltinProviders) {
    this.#builtins = builtins;
  }

  get builtinNames(): string[] {
    return Object.keys(this.#builtins);
  }

  load(type: string, fromDir: string): Promise<ProviderDefinition> {
    const key = `${type}\0${fromDir}`;
    let pending = this.#cache.get(key);
    if (pending === undefined) {
      pending = this.#load(type, fromDir);
      this.#cache.set(key, pending);
      pending.catch(() => this.#cache.delete(key));
    }
    return pending;
  }

  async #load(type: string, fromDir: string): Promise<ProviderDefinition> {
    const builtin = this.#builtins[type];
    if (builtin !== undefined) {
      let namespace: unknown;
      try {
        namespace = await builtin();
      } catch (error) {
        throw loadError(type, `the built-in provider package failed to load: ${messageOf(error)}`, error);
      }
      return checkProviderDefinition(type, namespace);
    }
    const parent = pathToFileURL(fromDir.endsWith('/') ? fromDir : `${fromDir}/`).href;
    let url: string;
    try {
      url = resolveModule(type, parent);
    } catch (error) {
      throw loadError(
        type,
        `it is not a built-in provider (${this.builtinNames.join(', ')}) and the npm package "${type}" cannot be found from ${fromDir}; install it there (npm install ${type}) or fix the type`,
        error,
      );
    }
    let namespace: unknown;
    try {
      namespace = await import(url);
    } catch (error) {
      throw loadError(type, `the package "${type}" failed to load: ${messageOf(error)}`, error);
    }
    return checkProviderDefinition(type, namespace);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Validates an instance's `config` block with the provider's schema; errors carry the path in the file. */
export async function validateProviderOptions(
  definition: ProviderDefinition,
  options: unknown,
  file: string,
  pathPrefix: readonly (string | number)[],
): Promise<unknown> {
  const result = await definition.configSchema['~standard'].validate(options);
  if (result.issues === undefined) return result.value;
  throw new ConfigError(
    file,
    result.issues.map((issue) => ({
      path: formatConfigPath([...pathPrefix, ...(issue.path ?? [])]),
      message: issue.message,
    })),
  );
}
