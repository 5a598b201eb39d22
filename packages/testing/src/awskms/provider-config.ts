import { startAwsKmsEmulator, type AwsKmsEmulator } from './emulator.js';

/**
 * Starts the emulator with one key and returns it with the `awskms` provider config that reaches it:
 * credentials come from two environment variables (`env`, to give the Trousseau process), never inline.
 * For end-to-end tests and the benchmark.
 */
export async function startAwsKmsForProvider(
  options: { latencyMs?: number; envPrefix?: string } = {},
): Promise<{
  emulator: AwsKmsEmulator;
  config: Record<string, unknown>;
  env: Record<string, string>;
  secretAccessKey: string;
}> {
  const emulator = await startAwsKmsEmulator(
    options.latencyMs === undefined ? {} : { latencyMs: options.latencyMs },
  );
  const [credential] = emulator.credentials;
  if (credential === undefined) throw new Error('the AWS KMS emulator has no credentials');
  const key = emulator.createKey();
  const prefix = options.envPrefix ?? 'TROUSSEAU_TEST_AWS';
  return {
    emulator,
    config: {
      keyId: key.arn,
      endpoint: emulator.url,
      credentials: {
        accessKeyId: { env: `${prefix}_ACCESS_KEY_ID` },
        secretAccessKey: { env: `${prefix}_SECRET_ACCESS_KEY` },
      },
    },
    env: {
      [`${prefix}_ACCESS_KEY_ID`]: credential.accessKeyId,
      [`${prefix}_SECRET_ACCESS_KEY`]: credential.secretAccessKey,
    },
    secretAccessKey: credential.secretAccessKey,
  };
}
