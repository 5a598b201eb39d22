// @trousseau/testing/azure: an Azure Key Vault emulator (keys API, bearer challenge, Entra ID token endpoint).
export {
  startAzureKeyVaultEmulator,
  type AzureFaults,
  type AzureKeyVaultEmulator,
  type AzureKeyVaultEmulatorOptions,
  type AzureRequestRecord,
  type KeyInfo,
} from './emulator.js';
export { azureProviderConfig, startAzureKeyVaultForProvider } from './provider-config.js';
export { maxWrapBytes, type RsaKeySize, type WrapAlgorithm } from './key-store.js';
export { challengeHeader, JSON_CONTENT_TYPE, KEY_VAULT_RESOURCE, MISSING_TOKEN_MESSAGE } from './wire.js';
