import { resolve } from 'node:path';
import type { LoadedConfig } from '@trousseau/core';
import type { Command } from 'commander';
import type { CommandLoading } from '../cli.js';
import type { LogLevel } from '../logger.js';
import { collectDirs, PROVIDERS_DIR_HELP, providerSearchPath } from '../provider-search.js';
import { TROUSSEAU_VERSION } from '../version.js';

interface ServeOptions {
  config?: string;
  socket?: string;
  logLevel?: LogLevel;
  logFormat?: 'json' | 'pretty';
  providersDir: string[];
}

/** The config to serve: the file given, or the embedded default; `--socket` overrides the socket path. */
async function resolveConfig(options: ServeOptions): Promise<{ loaded: LoadedConfig; embedded: boolean }> {
  const [{ loadConfigFile, parseConfig }, { embeddedDefaultConfig }] = await Promise.all([
    import('@trousseau/core'),
    import('../embedded-default.js'),
  ]);
  const embedded = options.config === undefined;
  let loaded = embedded ? embeddedDefaultConfig(process.cwd()) : await loadConfigFile(options.config ?? '');
  if (options.socket !== undefined) {
    const { config } = loaded;
    loaded = parseConfig(
      { ...config, socket: { ...config.socket, path: resolve(options.socket) } },
      loaded.file,
      loaded.dir,
    );
  }
  return { loaded, embedded };
}

export function registerServe(program: Command, loading: CommandLoading = {}): void {
  program
    .command('serve')
    .description(
      'serve the KMS v2 and v1beta1 APIs on a unix socket (with no --config: the embedded development default)',
    )
    .option(
      '-c, --config <file>',
      'config file (YAML); without it, the local provider with a development key ring',
    )
    .option('-s, --socket <path>', 'socket path (overrides the config file)')
    .option(
      '--log-level <level>',
      'trace, debug, info, warn, error, fatal or silent (overrides the config file)',
    )
    .option('--log-format <format>', 'json or pretty (overrides the config file)')
    .option('--providers-dir <dir>', PROVIDERS_DIR_HELP, collectDirs, [])
    .action(async (options: ServeOptions) => {
      // The server is loaded when `serve` runs, not when the CLI starts.
      const [{ loaded, embedded }, { createLogger }, { TrousseauServer }, { preflight }] = await Promise.all([
        resolveConfig(options),
        import('../logger.js'),
        import('../trousseau-server.js'),
        import('../preflight.js'),
      ]);
      const report = await preflight(loaded);
      const logger = createLogger({
        level: options.logLevel ?? loaded.config.logging.level,
        format: options.logFormat ?? loaded.config.logging.format,
      });
      // What a slow start is first asked about: the version, the Node, and whether the bundle's code cache
      // was used (docs/operations.md, "Start time and the code cache").
      logger.info(
        { version: TROUSSEAU_VERSION, node: process.version, codeCache: loading.codeCache },
        'starting trousseau',
      );
      if (embedded) {
        logger.warn(
          { keyFile: loaded.config.providers[0]?.config['keyFile'] },
          'DEVELOPMENT MODE: no --config given, serving the embedded default with a local development key ring. Do not use it for a real cluster.',
        );
      }
      for (const warning of report.warnings) {
        logger.warn({ config: loaded.file, path: warning.path }, warning.message);
      }
      const server = await TrousseauServer.create({
        loaded,
        logger,
        providerSearch: providerSearchPath({ flags: options.providersDir }),
      });
      let stopping = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'stopping: finishing in-flight calls');
        server.close().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error instanceof Error ? error.message : String(error) }, 'unclean stop');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      try {
        await server.listen();
      } catch (error) {
        await server.close();
        throw error;
      }
    });
}
