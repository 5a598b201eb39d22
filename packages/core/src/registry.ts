import { realpath, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type satisfies from 'semver/functions/satisfies.js';
import type validRange from 'semver/ranges/valid.js';
import { ConfigError, formatConfigPath } from './config-error.js';
import { TrousseauError } from './errors.js';
import { importModule } from './import-module.js';
import { CORE_API_VERSION, type ProviderDefinition } from './provider.js';

/** Built-in provider names mapped to a loader of their package; the server's composition root fills it. */
export type BuiltinProviders = Readonly<Record<string, () => Promise<unknown>>>;

function loadError(type: string, reason: string, cause?: unknown): TrousseauError {
  return new TrousseauError('TROUSSEAU_ERR_PROVIDER_LOAD', `provider type "${type}": ${reason}`, { cause });
}

interface SemverRanges {
  readonly validRange: typeof validRange;
  readonly satisfies: typeof satisfies;
}

/**
 * semver, loaded when a provider from outside this release is first checked: building its expressions and
 * parsing a first range cost a start about 12 ms, which a config of built-in providers does not need.
 */
function semverRanges(): SemverRanges {
  // Each load written out in full (createRequire of import.meta.url, called with the package's name): the
  // one form the server's bundler turns into a require of the bundled copy (scripts/bundle-server.mjs).
  return {
    validRange: createRequire(import.meta.url)('semver/ranges/valid.js') as SemverRanges['validRange'],
    satisfies: createRequire(import.meta.url)('semver/functions/satisfies.js') as SemverRanges['satisfies'],
  };
}

/**
 * Checks that a module's export is a provider definition this core can run; names what is wrong.
 * `builtIn`: the provider ships in this release, built against this very core, so its `coreRange` is not
 * evaluated (a test holds every built-in's range to {@link CORE_API_VERSION}); it must still be there.
 */
export function checkProviderDefinition(
  type: string,
  moduleNamespace: unknown,
  { builtIn = false }: { readonly builtIn?: boolean } = {},
): ProviderDefinition {
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
  const semver = builtIn ? undefined : semverRanges();
  const range = candidate.coreRange;
  // semver takes '' for '*' (any version), as it always has for a package; a built-in must name its range.
  if (
    typeof range !== 'string' ||
    (semver === undefined ? range === '' : semver.validRange(range) === null)
  ) {
    throw loadError(type, `the provider definition has no valid "coreRange" (got ${JSON.stringify(range)})`);
  }
  if (semver !== undefined && !semver.satisfies(CORE_API_VERSION, range)) {
    throw loadError(
      type,
      `the provider supports core ${range}, but this Trousseau implements core API ${CORE_API_VERSION}; install a version of the provider made for it`,
    );
  }
  return candidate as ProviderDefinition;
}

/**
 * One place where provider packages are looked for. A `providers` directory is one an operator installs
 * provider packages into (and the only place a `type` written as a file path may load from); `install` is
 * the server's own install, whose dependencies also satisfy a provider's peer dependency on core.
 */
export interface ProviderLocation {
  /** Absolute directory; a package is found in its `node_modules` or a parent's, as Node finds imports. */
  readonly dir: string;
  readonly kind: 'providers' | 'install';
  /** Where the entry came from, for messages: "--providers-dir", "the default", ... */
  readonly origin: string;
}

/** Where the registry looks for provider packages, in order, and how an operator adds a place. */
export interface ProviderSearchPath {
  readonly locations: readonly ProviderLocation[];
  /** How to add a providers directory, for messages (the server names its flag and variable). */
  readonly howToAdd?: string;
}

/** An npm package name (`name`, `@scope/name`) with an optional subpath (`name/sub/path`). */
const PACKAGE_SPECIFIER = /^(@[a-z0-9~-][a-z0-9._~-]*\/)?[a-z0-9~-][a-z0-9._~-]*(\/[a-z0-9._~-]+)*$/i;

type TypeKind = 'package' | 'path' | 'refused';

/** What a `type` that is not a built-in name means: a package name, a file path, or neither. */
function classify(type: string): TypeKind {
  if (type.startsWith('/') || type.startsWith('./') || type.startsWith('../') || type.startsWith('file:')) {
    return 'path';
  }
  if (!PACKAGE_SPECIFIER.test(type)) return 'refused';
  return type.split('/').some((segment) => segment === '.' || segment === '..') ? 'refused' : 'package';
}

function packageNameOf(specifier: string): string {
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** `dir/node_modules/<name>` for `dir` and each parent in turn: the first that exists, as Node finds it. */
async function findPackageDir(name: string, from: string): Promise<string | undefined> {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (basename(dir) !== 'node_modules' && (await isDirectory(candidate))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

function directoryUrl(dir: string): string {
  return pathToFileURL(dir.endsWith(sep) ? dir : `${dir}${sep}`).href;
}

/** Node's message when a module imports a package it cannot find (`Cannot find package 'x' imported ...`). */
function missingPackageOf(error: unknown): string | undefined {
  if ((error as { code?: unknown } | null)?.code !== 'ERR_MODULE_NOT_FOUND') return undefined;
  return /Cannot find package '([^']+)'/.exec(messageOf(error))?.[1];
}

/**
 * Finds provider definitions by type name, in this order:
 * 1. a built-in name (the map the server fills);
 * 2. a file path (`/x.mjs`, `./x.mjs`, `file:` URL; relative to the config file's directory), loaded only
 *    when the file lies inside a providers directory: provider code comes from the installed image,
 *    never from the config's directory (in Kubernetes a ConfigMap);
 * 3. an npm package name, looked for in each location of the search path in turn (the providers
 *    directories, then the server's own install).
 * Anything else (a URL, a `node:` module) is refused.
 */
export class ProviderRegistry {
  readonly #builtins: BuiltinProviders;
  readonly #search: ProviderSearchPath;
  readonly #cache = new Map<string, Promise<ProviderDefinition>>();

  constructor(builtins: BuiltinProviders, search: ProviderSearchPath = { locations: [] }) {
    this.#builtins = builtins;
    this.#search = search;
  }

  get builtinNames(): string[] {
    return Object.keys(this.#builtins);
  }

  /** Loads the definition a config's `type` names; `configDir` anchors a relative file path. */
  load(type: string, configDir: string): Promise<ProviderDefinition> {
    const key = `${type}\0${configDir}`;
    let pending = this.#cache.get(key);
    if (pending === undefined) {
      pending = this.#load(type, configDir);
      this.#cache.set(key, pending);
      pending.catch(() => this.#cache.delete(key));
    }
    return pending;
  }

  async #load(type: string, configDir: string): Promise<ProviderDefinition> {
    const builtin = this.#builtins[type];
    if (builtin !== undefined) {
      let namespace: unknown;
      try {
        namespace = await builtin();
      } catch (error) {
        throw loadError(type, `the built-in provider package failed to load: ${messageOf(error)}`, error);
      }
      return checkProviderDefinition(type, namespace, { builtIn: true });
    }
    switch (classify(type)) {
      case 'path':
        return this.#loadFile(type, configDir);
      case 'package':
        return this.#loadPackage(type);
      case 'refused':
        throw loadError(
          type,
          `it is not a built-in provider (${this.builtinNames.join(', ')}), an npm package name or a file path (/x.mjs, ./x.mjs); URLs other than file: and node: modules are refused`,
        );
    }
  }

  get #providersDirs(): ProviderLocation[] {
    return this.#search.locations.filter((location) => location.kind === 'providers');
  }

  #howToAdd(): string {
    return this.#search.howToAdd === undefined ? '' : ` (${this.#search.howToAdd})`;
  }

  async #describeLocations(locations: readonly ProviderLocation[]): Promise<string> {
    if (locations.length === 0) return 'none is configured';
    const described = await Promise.all(
      locations.map(
        async (location) =>
          `${location.dir} (${location.origin}${(await isDirectory(location.dir)) ? '' : ', does not exist'})`,
      ),
    );
    return described.join(', ');
  }

  async #loadPackage(type: string): Promise<ProviderDefinition> {
    const name = packageNameOf(type);
    for (const location of this.#search.locations) {
      const packageDir = await findPackageDir(name, location.dir);
      if (packageDir === undefined) continue;
      let url: string;
      try {
        // Loaded here, for a provider found as a package: built-in providers and a start never need it.
        const { resolve: resolveModule } = await import('import-meta-resolve');
        url = resolveModule(type, directoryUrl(location.dir));
        // The resolver maps "exports" without looking at the disk: a package packed before it was built
        // names an entry it does not ship.
        if (url.startsWith('file:')) await stat(fileURLToPath(url));
      } catch (error) {
        throw loadError(
          type,
          `the package "${name}" at ${packageDir} cannot be resolved: ${messageOf(error)}; its package.json "exports" must name files the package ships (was it built before it was packed?)`,
          error,
        );
      }
      return this.#import(type, url, `the package "${name}" (${packageDir})`);
    }
    const first = this.#providersDirs[0];
    const install =
      first === undefined
        ? `install it into a providers directory${this.#howToAdd()}`
        : `install it into a providers directory (in ${first.dir}: npm install --omit=dev --legacy-peer-deps ${name}), or add one${this.#howToAdd()}`;
    throw loadError(
      type,
      `it is not a built-in provider (${this.builtinNames.join(', ')}) and the npm package "${name}" cannot be found in node_modules of these places or their parents: ${await this.#describeLocations(this.#search.locations)}; ${install}; see "Loading in the deployment" in docs/writing-a-provider.md, or fix the type`,
    );
  }

  async #loadFile(type: string, configDir: string): Promise<ProviderDefinition> {
    let path: string;
    try {
      path = type.startsWith('file:') ? fileURLToPath(type) : resolve(configDir, type);
    } catch (error) {
      throw loadError(type, `it is not a usable file URL: ${messageOf(error)}`, error);
    }
    const roots = this.#providersDirs.map((location) => location.dir);
    const realRoots = (
      await Promise.all(roots.map((root) => realpath(root).catch((): undefined => undefined)))
    ).filter((root): root is string => root !== undefined);
    const refuse = async (what: string): Promise<never> => {
      throw loadError(
        type,
        `${what}, and a provider given as a file path loads only from inside a providers directory (${await this.#describeLocations(this.#providersDirs)}): provider code comes from the installed image, never from the config's directory, which in Kubernetes is a ConfigMap. Install the provider as a package in a providers directory, or, while developing one, add its directory${this.#howToAdd()}`,
      );
    };
    if (![...roots, ...realRoots].some((root) => isInside(path, root))) {
      return refuse(`${path} is outside every providers directory`);
    }
    let real: string;
    try {
      real = await realpath(path);
    } catch (error) {
      throw loadError(type, `there is no file at ${path}`, error);
    }
    if (!realRoots.some((root) => isInside(real, root))) {
      return refuse(`${path} leads to ${real}, outside every providers directory`);
    }
    if (!(await stat(real)).isFile()) {
      throw loadError(
        type,
        `${path} is not a file: name the provider's entry module, such as ./acme/index.mjs`,
      );
    }
    return this.#import(type, pathToFileURL(real).href, `the file ${real}`);
  }

  async #import(type: string, url: string, what: string): Promise<ProviderDefinition> {
    let namespace: unknown;
    try {
      namespace = await importModule(url);
    } catch (error) {
      throw loadError(type, `${what} failed to load: ${messageOf(error)}${this.#peerHint(error)}`, error);
    }
    return checkProviderDefinition(type, namespace);
  }

  /** When a provider cannot find core, says where core comes from: the server's own install. */
  #peerHint(error: unknown): string {
    const missing = missingPackageOf(error);
    if (missing === undefined || packageNameOf(missing) !== '@trousseau/core') return '';
    const install = this.#search.locations.find((location) => location.kind === 'install');
    const where = install === undefined ? "the server's install" : install.dir;
    return `. @trousseau/core is a peer dependency that the server's own install provides: a provider finds it when it is installed in a providers directory inside ${where} (the default providers directory is one)`;
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
