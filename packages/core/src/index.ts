// @trousseau/core: the provider contract and everything the front-end is built of.
// The tsyringe wiring lives in the `@trousseau/core/wiring` entry so a provider package can import this
// one without a reflect polyfill.
export {
  Broker,
  MAX_CIPHERTEXT_BYTES,
  type BrokerOptions,
  type BrokerStatus,
  type BrokerEncryptResult,
  type ProviderCheck,
} from './broker.js';
export { systemClock, type Clock } from './clock.js';
export { ConfigError, formatConfigPath, type ConfigIssue } from './config-error.js';
export {
  configSchema,
  encryptingProvider,
  loadConfigFile,
  parseConfig,
  LOG_LEVELS,
  type LoadedConfig,
  type ProviderEntry,
  type TrousseauConfig,
} from './config.js';
export {
  decodeEnvelope,
  digestKeyId,
  encodeEnvelope,
  ENVELOPE_MAGIC,
  ENVELOPE_VERSION,
  INSTANCE_NAME_PATTERN,
  type Envelope,
} from './envelope.js';
export { ERROR_CODES, type ErrorCode } from './error-codes.js';
export { isTrousseauError, toTrousseauError, TrousseauError, type TrousseauErrorOptions } from './errors.js';
export { KmsClient } from './grpc/kms-client.js';
export { KmsGrpcServer, type KmsGrpcServerOptions } from './grpc/kms-grpc-server.js';
export { kmsServices, PROTO_DIR } from './grpc/protos.js';
export { V2_MAX_CIPHERTEXT_BYTES, type V2StatusVersion } from './grpc/kms-v2-service.js';
export type {
  V1DecryptRequest,
  V1DecryptResponse,
  V1EncryptRequest,
  V1EncryptResponse,
  V1VersionRequest,
  V1VersionResponse,
  V2DecryptRequest,
  V2DecryptResponse,
  V2EncryptRequest,
  V2EncryptResponse,
  V2StatusResponse,
} from './grpc/messages.js';
export { HealthMonitor, type ProviderHealth } from './health-monitor.js';
export { isValidKeyId, keyIdDigest, MAX_KEY_ID_BYTES } from './key-id.js';
export { silentLogger, type LogFn, type Logger } from './logger.js';
export { noopMetrics, type Metrics } from './metrics.js';
export {
  CORE_API_VERSION,
  defineProvider,
  type DecryptInput,
  type EncryptResult,
  type KeyProvider,
  type ProviderCapabilities,
  type ProviderContext,
  type ProviderDefinition,
  type ProviderStatus,
  type RequestContext,
} from './provider.js';
export {
  checkProviderDefinition,
  ProviderRegistry,
  validateProviderOptions,
  type BuiltinProviders,
  type ProviderLocation,
  type ProviderSearchPath,
} from './registry.js';
export { abortError, createRequestScope, raceAbort, type RequestScope } from './request-context.js';
export { createSecretReader, secretRefSchema, type SecretReader, type SecretRef } from './secret-ref.js';
