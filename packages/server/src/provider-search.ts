import { delimiter, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProviderLocation, ProviderSearchPath } from '@trousseau/core';

/** The server's own install: the package directory that holds `dist/src` (`/app` in the image). */
export const SERVER_INSTALL_DIR = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');

/** The environment variable that lists providers directories, separated like PATH. */
export const PROVIDERS_PATH_ENV = 'TROUSSEAU_PROVIDERS_PATH';

/** The `--providers-dir` option's help, shared by the commands that load providers. */
export const PROVIDERS_DIR_HELP = `a directory holding provider packages (repeat for several; replaces ${PROVIDERS_PATH_ENV} and the default <install>/providers)`;

/** Commander's collector for a repeatable option. */
export function collectDirs(value: string, previous: readonly string[]): string[] {
  return [...previous, value];
}

interface ProviderSearchOptions {
  /** `--providers-dir` values, in the order given. */
  readonly flags?: readonly string[];
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where relative directories resolve; default the working directory. */
  readonly cwd?: string;
  /** The server's install; default {@link SERVER_INSTALL_DIR}. */
  readonly installDir?: string;
}

/**
 * Where the server looks for a provider package a config names: the providers directories, then its own
 * install. The providers directories are the `--providers-dir` flags if any are given, else the entries
 * of TROUSSEAU_PROVIDERS_PATH if it is set, else `<install>/providers` (`/app/providers` in the image).
 * The config file cannot add a place: which directories may hold code is for whoever builds the image or
 * writes the command line, not for whoever may edit the config (in Kubernetes, a ConfigMap).
 */
export function providerSearchPath(options: ProviderSearchOptions = {}): ProviderSearchPath {
  const cwd = options.cwd ?? process.cwd();
  const installDir = options.installDir ?? SERVER_INSTALL_DIR;
  const fromEnv = (options.env ?? process.env)[PROVIDERS_PATH_ENV];
  const flags = options.flags ?? [];
  let providers: ProviderLocation[];
  if (flags.length > 0) {
    providers = flags.map((dir) => ({
      dir: resolve(cwd, dir),
      kind: 'providers',
      origin: '--providers-dir',
    }));
  } else if (fromEnv !== undefined && fromEnv !== '') {
    providers = fromEnv
      .split(delimiter)
      .filter((dir) => dir !== '')
      .map((dir) => ({ dir: resolve(cwd, dir), kind: 'providers', origin: PROVIDERS_PATH_ENV }));
  } else {
    providers = [
      { dir: resolve(installDir, 'providers'), kind: 'providers', origin: 'the default providers directory' },
    ];
  }
  return {
    locations: [...providers, { dir: installDir, kind: 'install', origin: "the server's own install" }],
    howToAdd: `--providers-dir <dir> or ${PROVIDERS_PATH_ENV}`,
  };
}
