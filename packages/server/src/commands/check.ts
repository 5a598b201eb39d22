import type { Logger } from '@trousseau/core';
import type { Command } from 'commander';
import { collectDirs, PROVIDERS_DIR_HELP, providerSearchPath } from '../provider-search.js';

/** What `check` runs with, loaded when it runs: the CLI's other commands never pay for it. */
async function loadCheckDependencies() {
  const [core, server, checks] = await Promise.all([
    import('@trousseau/core'),
    import('../trousseau-server.js'),
    import('../preflight.js'),
  ]);
  return {
    createRequestScope: core.createRequestScope,
    loadConfigFile: core.loadConfigFile,
    silentLogger: core.silentLogger,
    preflight: checks.preflight,
    TrousseauServer: server.TrousseauServer,
  };
}

/**
 * A logger that keeps the warnings and errors logged while `collecting` is true, each with the provider
 * instance that logged it: what `serve` would log about a provider as it starts.
 */
function startupWarnings(): { logger: Logger; lines: string[]; stop(): void } {
  const lines: string[] = [];
  let collecting = true;
  const make = (provider: string | undefined): Logger => {
    const keep = (fields: unknown, message?: string): void => {
      if (!collecting) return;
      const text = typeof fields === 'string' ? fields : (message ?? '');
      lines.push(provider === undefined ? text : `${provider}: ${text}`);
    };
    return {
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: keep,
      error: keep,
      child: (bindings) => make(typeof bindings['provider'] === 'string' ? bindings['provider'] : provider),
    };
  };
  return {
    logger: make(undefined),
    lines,
    stop: () => {
      collecting = false;
    },
  };
}

/**
 * `trousseau check`: validates the config, creates every provider, and for each one asks its status and
 * round-trips a random data key. Prints a readable report; exits 1 when anything failed (2 for a config
 * error), so it serves as a pre-flight step in a pipeline and as a first look on a node.
 */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description(
      'validate a config file, reach every provider and do a round trip; exit non-zero on any failure',
    )
    .requiredOption('-c, --config <file>', 'config file (YAML)')
    .option('--timeout <ms>', 'deadline of each provider check in milliseconds', '10000')
    .option('--providers-dir <dir>', PROVIDERS_DIR_HELP, collectDirs, [])
    .action(async (options: { config: string; timeout: string; providersDir: string[] }) => {
      const { createRequestScope, loadConfigFile, silentLogger, preflight, TrousseauServer } =
        await loadCheckDependencies();
      const loaded = await loadConfigFile(options.config);
      // Everything serve refuses before it binds is refused here too, with the same message.
      const report = await preflight(loaded);
      const out = (line: string): boolean => process.stdout.write(`${line}\n`);
      out(`trousseau check: ${loaded.file}`);
      out(
        `  ✔ config valid: ${loaded.config.providers.length} provider(s), socket ${loaded.config.socket.path}`,
      );
      for (const warning of report.warnings) out(`  ⚠ ${warning.path}: ${warning.message}`);
      const startup = startupWarnings();
      const server = await TrousseauServer.create({
        loaded,
        logger: startup.logger,
        providerSearch: providerSearchPath({ flags: options.providersDir }),
      });
      startup.stop();
      for (const line of startup.lines) out(`  ⚠ ${line}`);
      const logger = silentLogger;
      let failed = 0;
      try {
        for (const name of server.broker.providerNames) {
          const entry = loaded.config.providers.find((provider) => provider.name === name);
          const role = server.broker.encryptingProviders.includes(name) ? ', encrypts' : '';
          const scope = createRequestScope({
            uid: `check-${name}`,
            deadline: Date.now() + Number(options.timeout),
            logger,
          });
          const result = await server.broker.checkProvider(name, scope.context);
          scope.dispose();
          const label = `${name} (${entry?.type ?? '?'}${role})`;
          if (result.ok) {
            out(
              `  ✔ ${label}: healthy, key id ${result.keyId ?? '?'}, round trip ${result.roundTripMs ?? '?'} ms, ${result.ciphertextBytes ?? '?'}-byte ciphertext`,
            );
          } else {
            failed += 1;
            out(
              `  ✘ ${label}: ${result.problem ?? 'failed'}${result.keyId === undefined ? '' : ` (last key id ${result.keyId})`}`,
            );
          }
        }
      } finally {
        await server.broker.close();
      }
      // Replicated encryption: the copies of a data key must fit KMS v2's 1024 bytes together.
      const sizeProblem = server.broker.replicationSizeProblem();
      if (sizeProblem !== undefined) {
        out(`  ✘ encryptWith ${server.broker.encryptingProviders.join(' + ')}: ${sizeProblem}`);
      }
      const total = server.broker.providerNames.length;
      out(failed === 0 ? `all ${total} provider(s) OK` : `${failed} of ${total} provider(s) failed`);
      if (failed > 0 || sizeProblem !== undefined) process.exitCode = 1;
    });
}
