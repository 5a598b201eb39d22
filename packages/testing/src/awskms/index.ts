// @trousseau/testing/awskms: an AWS KMS emulator (JSON 1.1 protocol, SigV4-verified) for tests and benches.
export {
  startAwsKmsEmulator,
  type AwsCredential,
  type AwsKmsEmulator,
  type AwsKmsEmulatorOptions,
  type AwsKmsFaultKind,
  type AwsKmsFaults,
  type AwsKmsRequestRecord,
  type KeyMetadataJson,
  type KeyOrigin,
  type KeyState,
} from './emulator.js';
export { KmsError } from './kms-error.js';
export { MAX_SKEW_MS, verifySigV4, type SignedRequest, type VerifyOptions } from './sigv4.js';
export { startAwsKmsForProvider } from './provider-config.js';
