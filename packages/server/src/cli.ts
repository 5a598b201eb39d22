import { Command, CommanderError } from 'commander';
import { registerCheck } from './commands/check.js';
import { registerClientCommands } from './commands/client.js';
import { registerEtcdReport } from './commands/etcd-report.js';
import { registerKeyringCommands } from './commands/keyring.js';
import { registerServe } from './commands/serve.js';
import { TROUSSEAU_VERSION } from './version.js';

/** How the command was loaded (bin.cts), for the line a start logs. */
export interface CommandLoading {
  /** In the bundle: what became of its V8 code cache (code-cache.cts). */
  readonly codeCache?: string | undefined;
}

export function buildProgram(loading: CommandLoading = {}): Command {
  const program = new Command('trousseau')
    .description(
      'Trousseau: a Kubernetes KMS plugin (KMS v2 and v1beta1) brokering Vault, AWS KMS, Azure Key Vault and more',
    )
    .version(TROUSSEAU_VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  registerServe(program, loading);
  registerCheck(program);
  registerClientCommands(program);
  registerKeyringCommands(program);
  registerEtcdReport(program);
  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`trousseau ${TROUSSEAU_VERSION}\n`);
    });
  return program;
}

interface GrpcLikeError {
  code: number;
  details: string;
}

function isGrpcError(error: unknown): error is GrpcLikeError {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as GrpcLikeError).code === 'number' &&
    'details' in error
  );
}

/** Runs the CLI; returns the exit code. Errors are printed as one readable message, never a stack. */
export async function runCli(argv: readonly string[], loading: CommandLoading = {}): Promise<number> {
  const program = buildProgram(loading);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    // Loaded on the error path only: a successful `version` or `status` never reads core's main entry.
    const { isTrousseauError } = await import('@trousseau/core');
    if (isTrousseauError(error)) {
      process.stderr.write(`trousseau: ${error.message}\n`);
      return error.code === 'TROUSSEAU_ERR_CONFIG_INVALID' || error.code === 'TROUSSEAU_ERR_PROVIDER_LOAD'
        ? 2
        : 1;
    }
    if (isGrpcError(error)) {
      const { status } = await import('@grpc/grpc-js');
      process.stderr.write(`trousseau: ${status[error.code] ?? error.code}: ${error.details}\n`);
      return 1;
    }
    process.stderr.write(`trousseau: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
