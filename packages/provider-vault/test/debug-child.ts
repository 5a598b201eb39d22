// Run by vault-debug-output.test.ts in a child process with DEBUG=* (the `debug` package reads it once,
// at load): opens the provider with AppRole auth against the Vault named in the environment, so it logs
// in (secret_id on the wire) and encrypts (plaintext and the issued token on the wire), then does the
// same with a static token, and prints the key ids on stdout.
import { createTestProviderContext, testRequestContext } from '@trousseau/testing';
import { vaultOptionsSchema, VaultKeyProvider } from '../src/index.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

const approle = vaultOptionsSchema.parse({
  address: required('TROUSSEAU_TEST_VAULT_ADDR'),
  transitMount: required('TROUSSEAU_TEST_VAULT_MOUNT'),
  keyName: required('TROUSSEAU_TEST_VAULT_KEY'),
  auth: {
    method: 'approle',
    mount: required('TROUSSEAU_TEST_VAULT_APPROLE_MOUNT'),
    roleId: { env: 'TROUSSEAU_TEST_VAULT_ROLE_ID' },
    secretId: { env: 'TROUSSEAU_TEST_VAULT_SECRET_ID' },
  },
});
const staticToken = vaultOptionsSchema.parse({
  address: required('TROUSSEAU_TEST_VAULT_ADDR'),
  transitMount: required('TROUSSEAU_TEST_VAULT_MOUNT'),
  keyName: required('TROUSSEAU_TEST_VAULT_KEY'),
  auth: { method: 'token', token: { env: 'TROUSSEAU_TEST_VAULT_TOKEN' } },
});
const plaintext = Buffer.from(required('TROUSSEAU_TEST_PLAINTEXT_HEX'), 'hex');
for (const options of [approle, staticToken]) {
  const provider = await VaultKeyProvider.open(
    options,
    createTestProviderContext({ instanceName: 'vault-debug-child' }),
  );
  try {
    const result = await provider.encrypt(plaintext, testRequestContext(5_000));
    const decrypted = await provider.decrypt(
      { ciphertext: result.ciphertext, keyRef: '' },
      testRequestContext(5_000),
    );
    if (!Buffer.from(decrypted).equals(plaintext)) throw new Error('round trip gave another plaintext');
    process.stdout.write(`${options.auth.method}: encrypted under ${result.keyId}\n`);
  } finally {
    await provider.close();
  }
}
