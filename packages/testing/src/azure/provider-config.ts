import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTestCertificates } from '../certificates.js';
import { startAzureKeyVaultEmulator, type AzureKeyVaultEmulator } from './emulator.js';

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

/**
 * Starts the emulator over TLS with a fresh test CA and key `keyName`, writes the CA and the client
 * secret into `dir`, and returns the emulator with the `azure` provider config that reaches it: what
 * end-to-end tests and the benchmark need to run Trousseau against it.
 */
export async function startAzureKeyVaultForProvider(options: {
  dir: string;
  keyName: string;
  latencyMs?: number;
}): Promise<{ emulator: AzureKeyVaultEmulator; config: Record<string, unknown> }> {
  const certificates = await createTestCertificates();
  const emulator = await startAzureKeyVaultEmulator({
    tls: { key: certificates.serverKey, cert: certificates.serverCert },
    ...(options.latencyMs === undefined ? {} : { latencyMs: options.latencyMs }),
  });
  await emulator.createKey(options.keyName);
  const caFile = join(options.dir, 'azure-ca.pem');
  const clientSecretFile = join(options.dir, 'azure-client-secret');
  await writeFile(caFile, certificates.ca);
  await writeFile(clientSecretFile, emulator.clientSecret, { mode: 0o600 });
  return {
    emulator,
    config: azureProviderConfig(emulator, { keyName: options.keyName, caFile, clientSecretFile }),
  };
}
