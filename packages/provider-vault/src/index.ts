import { defineProvider } from '@trousseau/core';
import { vaultOptionsSchema } from './options.js';
import { VaultKeyProvider } from './vault-provider.js';

export {
  DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE,
  vaultAuthSchema,
  vaultOptionsSchema,
  vaultTlsSchema,
  type VaultAuthOptions,
  type VaultOptions,
  type VaultTlsOptions,
} from './options.js';
export { vaultKeyId } from './key-state.js';
export { VaultKeyProvider } from './vault-provider.js';

/** The `vault` provider: HashiCorp Vault Transit. */
export default defineProvider({
  name: 'vault',
  coreRange: '^1.1.0',
  configSchema: vaultOptionsSchema,
  create: (options, context) => VaultKeyProvider.open(options, context),
});
