import type { AzureKeyVaultEmulator } from './emulator.js';

/**
 * The `config` block of an `azure` provider that logs in to this emulator as its service principal over
 * TLS: for benchmarks and end-to-end tests that run `trousseau serve` against the emulator. The caller
 * writes the test CA (PEM) to `caFile` and the emulator's `clientSecret` to `clientSecretFile`.
 */
export function azureProviderConfig(
  emulator: AzureKeyVaultEmulator,
  options: { keyName: string; caFile: string; clientSecretFile: string },
): Record<string, unknown> {
  return {
    vaultUrl: emulator.url,
    keyName: options.keyName,
    credential: {
      type: 'servicePrincipal',
      tenantId: emulator.tenantId,
      clientId: emulator.clientId,
      clientSecret: { file: options.clientSecretFile },
    },
    authorityHost: emulator.authorityHost,
    disableChallengeResourceVerification: true,
    caFile: options.caFile,
  };
}
