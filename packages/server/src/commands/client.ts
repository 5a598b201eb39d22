import { readFile } from 'node:fs/promises';
import type { KmsClient } from '@trousseau/core/grpc';
import { Option, type Command } from 'commander';

interface ClientOptions {
  socket: string;
  api: 'v2' | 'v1beta1';
  timeout: string;
}

function clientOptions(command: Command): Command {
  return command
    .requiredOption('-s, --socket <path>', 'the plugin socket to call')
    .addOption(new Option('--api <version>', 'KMS API to use').choices(['v2', 'v1beta1']).default('v2'))
    .option('--timeout <ms>', 'deadline of the call in milliseconds', '3000');
}

async function withClient<T>(
  options: ClientOptions,
  work: (client: KmsClient, timeoutMs: number) => Promise<T>,
): Promise<T> {
  const timeoutMs = Number.parseInt(options.timeout, 10);
  // gRPC is loaded when a call is made, not when the CLI starts.
  const { KmsClient } = await import('@trousseau/core/grpc');
  const client = new KmsClient(options.socket, { timeoutMs });
  try {
    return await work(client, timeoutMs);
  } finally {
    client.close();
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The operator's client: check a running plugin by hand, the way kube-apiserver would call it. */
export function registerClientCommands(program: Command): void {
  clientOptions(program.command('status'))
    .description('ask a running plugin for its status (v2 Status, or v1beta1 Version)')
    .action(async (options: ClientOptions) => {
      await withClient(options, async (client) => {
        if (options.api === 'v1beta1') {
          print(await client.v1Version());
          return;
        }
        const status = await client.status();
        print(status);
        if (status.healthz !== 'ok') process.exitCode = 1;
      });
    });

  clientOptions(program.command('encrypt'))
    .description('encrypt data with a running plugin; prints the ciphertext (base64) and key id')
    .argument('[text]', 'the plaintext (UTF-8); or use --in')
    .option('--in <file>', 'read the plaintext from a file')
    .option('--uid <uid>', 'request uid (v2)', 'trousseau-cli')
    .action(async (text: string | undefined, options: ClientOptions & { in?: string; uid: string }) => {
      const plaintext =
        options.in === undefined ? Buffer.from(text ?? '', 'utf8') : await readFile(options.in);
      await withClient(options, async (client) => {
        if (options.api === 'v1beta1') {
          const response = await client.v1Encrypt(plaintext);
          print({ ciphertext: response.cipher.toString('base64') });
          return;
        }
        const response = await client.encrypt(plaintext, options.uid);
        print({ ciphertext: response.ciphertext.toString('base64'), keyId: response.key_id });
      });
    });

  clientOptions(program.command('decrypt'))
    .description('decrypt a base64 ciphertext with a running plugin')
    .argument('<ciphertext>', 'the ciphertext, base64')
    .option('--key-id <id>', 'the key id Encrypt returned (v2)', '')
    .option('--uid <uid>', 'request uid (v2)', 'trousseau-cli')
    .addOption(
      new Option('--output <format>', 'how to print the plaintext')
        .choices(['text', 'base64'])
        .default('text'),
    )
    .action(
      async (
        ciphertext: string,
        options: ClientOptions & { keyId: string; uid: string; output: 'text' | 'base64' },
      ) => {
        const bytes = Buffer.from(ciphertext, 'base64');
        await withClient(options, async (client) => {
          const plaintext =
            options.api === 'v1beta1'
              ? (await client.v1Decrypt(bytes)).plain
              : (await client.decrypt({ ciphertext: bytes, keyId: options.keyId, uid: options.uid }))
                  .plaintext;
          process.stdout.write(`${plaintext.toString(options.output === 'text' ? 'utf8' : 'base64')}\n`);
        });
      },
    );
}
