import { defineProvider } from '@trousseau/core';
import { AzureKeyProvider } from './azure-provider.js';
import { azureOptionsSchema } from './options.js';

export { AzureKeyProvider } from './azure-provider.js';
export { mapAzureError } from './errors.js';
export { azureKeyId, encodeKeyRef, maxPlaintextBytes, parseKeyRef, type AzureKeyRef } from './key-ref.js';
export {
  AZURE_ALGORITHMS,
  azureOptionsSchema,
  CLOUD_AUTHORITY_HOSTS,
  type AzureAlgorithm,
  type AzureCloud,
  type AzureOptions,
  type AzureOptionsInput,
} from './options.js';

/** The provider's type name in config files. */
export const PROVIDER_TYPE = 'azure';

/** The `azure` provider: RSA-OAEP wrapKey/unwrapKey with an Azure Key Vault or Managed HSM key. */
export default defineProvider({
  name: PROVIDER_TYPE,
  coreRange: '^1.1.0',
  configSchema: azureOptionsSchema,
  create: (options, context) => new AzureKeyProvider(options, context),
});
