import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Metrics, ProviderContext } from '@trousseau/core';
import { createTestCertificates, createTestProviderContext, type TestCertificates } from '@trousseau/testing';
import { startAzureKeyVaultEmulator, type AzureKeyVaultEmulator } from '@trousseau/testing/azure';
import { AzureKeyProvider } from '../src/azure-provider.js';
import { azureOptionsSchema, type AzureOptionsInput } from '../src/options.js';

let certificates: Promise<TestCertificates> | undefined;

/** One test CA for the whole file (making RSA keys is the slow part). */
export function testCertificates(): Promise<TestCertificates> {
  certificates ??= createTestCertificates();
  return certificates;
}

export interface AzureFixture {
  readonly emulator: AzureKeyVaultEmulator;
  /** Directory holding the CA file and the client secret file; the provider's configDir. */
  readonly dir: string;
  readonly keyName: string;
  /** Version of the key created at start. */
  readonly firstVersion: string;
  /** Options for a provider that logs in as the emulator's service principal over TLS. */
  options(overrides?: Partial<AzureOptionsInput>): AzureOptionsInput;
  context(metrics?: Metrics): ProviderContext;
  provider(overrides?: Partial<AzureOptionsInput>, metrics?: Metrics): AzureKeyProvider;
  cleanup(): Promise<void>;
}

/**
 * Starts the emulator over HTTPS with a fresh test CA, creates a key, and writes the CA and the service
 * principal's secret to files, as a deployment would mount them.
 */
export async function startAzureFixture(
  keyOptions: { size?: 2048 | 3072 | 4096 } = {},
): Promise<AzureFixture> {
  const tls = await testCertificates();
  const emulator = await startAzureKeyVaultEmulator({ tls: { key: tls.serverKey, cert: tls.serverCert } });
  const dir = await mkdtemp(join(tmpdir(), 'trousseau-azure-'));
  await writeFile(join(dir, 'ca.pem'), tls.ca);
  await writeFile(join(dir, 'client-secret'), `${emulator.clientSecret}\n`, { mode: 0o600 });
  const keyName = 'kek';
  const { version } = await emulator.createKey(keyName, keyOptions);
  const context = (metrics?: Metrics): ProviderContext =>
    createTestProviderContext({
      instanceName: 'azure',
      configDir: dir,
      ...(metrics === undefined ? {} : { metrics }),
    });
  const options = (overrides: Partial<AzureOptionsInput> = {}): AzureOptionsInput => ({
    vaultUrl: emulator.url,
    keyName,
    credential: {
      type: 'servicePrincipal',
      tenantId: emulator.tenantId,
      clientId: emulator.clientId,
      clientSecret: { file: 'client-secret' },
    },
    authorityHost: emulator.authorityHost,
    disableChallengeResourceVerification: true,
    caFile: 'ca.pem',
    maxRetries: 1,
    retryDelayMs: 10,
    ...overrides,
  });
  return {
    emulator,
    dir,
    keyName,
    firstVersion: version,
    options,
    context,
    provider: (overrides, metrics) =>
      new AzureKeyProvider(azureOptionsSchema.parse(options(overrides)), context(metrics)),
    async cleanup() {
      await emulator.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
