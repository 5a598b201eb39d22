import { startVaultEmulator, type VaultEmulator } from './emulator.js';

/**
 * Starts the emulator with Transit key `keyName` (default `k8s`), a policy `kms` that may encrypt,
 * decrypt and read it, and a renewable token of that policy (one hour), and returns them with the `vault`
 * provider config that reaches it: the token comes from an environment variable (`env`, to give the
 * Trousseau process), never inline. The twin of `startAwsKmsForProvider` and
 * `startAzureKeyVaultForProvider`, for end-to-end tests.
 */
export async function startVaultForProvider(options: { keyName?: string; envPrefix?: string } = {}): Promise<{
  emulator: VaultEmulator;
  config: Record<string, unknown>;
  env: Record<string, string>;
  token: string;
}> {
  const keyName = options.keyName ?? 'k8s';
  const emulator = await startVaultEmulator();
  emulator.createKey(keyName);
  emulator.writePolicy('kms', [
    { path: `transit/encrypt/${keyName}`, capabilities: ['update'] },
    { path: `transit/decrypt/${keyName}`, capabilities: ['update'] },
    { path: `transit/keys/${keyName}`, capabilities: ['read'] },
  ]);
  const token = emulator.createToken({ policies: ['kms'], ttlSeconds: 3600, renewable: true });
  const variable = `${options.envPrefix ?? 'TROUSSEAU_TEST_VAULT'}_TOKEN`;
  return {
    emulator,
    config: { address: emulator.url, keyName, auth: { method: 'token', token: { env: variable } } },
    env: { [variable]: token },
    token,
  };
}
