// @trousseau/core: the provider contract and everything the front-end is built of.
// Two parts live in their own entries so that a provider package importing this one loads neither: the
// gRPC front-end and client (`@trousseau/core/grpc`, which loads @grpc/grpc-js) and the tsyringe wiring
// (`@trousseau/core/wiring`, which needs a reflect polyfill).
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
  BINDING_KEY_BYTES,
  bindPlaintext,
  decodeEnvelope,
  digestKeyId,
  encodeEnvelope,
  ENVELOPE_MAGIC,
  ENVELOPE_VERSION,
  ENVELOPE_VERSIONS,
  envelopeHasKeyId,
  INSTANCE_NAME_PATTERN,
  openEnvelope,
  sealEnvelope,
  type BoundPlaintext,
  type Envelope,
  type EnvelopeFields,
  type EnvelopeVersion,
} from './envelope.js';
export { ERROR_CODES, isKnownErrorCode, type ErrorCode } from './error-codes.js';
export {
  decodeReplicatedEnvelope,
  isReplicatedEnvelope,
  MAX_COPIES,
  openReplicatedEnvelope,
  REPLICATED_ENVELOPE_VERSION,
  replicatedEnvelopeHasKeyId,
  sealReplicatedEnvelope,
  type CopyFields,
  type EnvelopeCopy,
  type ReplicatedEnvelope,
} from './replicated-envelope.js';
export {
  isTrousseauError,
  outcomeOf,
  toTrousseauError,
  TrousseauError,
  type TrousseauErrorOptions,
  type UnknownErrorCode,
} from './errors.js';
export { HealthMonitor, type ProviderHealth } from './health-monitor.js';
export { isValidKeyId, keyIdDigest, MAX_KEY_ID_BYTES } from './key-id.js';
export { silentLogger, type LogFn, type Logger } from './logger.js';
export {
  guardMetrics,
  LATENCY_BUCKETS,
  noopMetrics,
  type Counter,
  type Gauge,
  type Histogram,
  type HistogramOptions,
  type InstrumentOptions,
  type LabelValues,
  type Metrics,
  type MetricsBackend,
} from './metrics.js';
export { OUTCOMES, type Outcome } from './outcome.js';
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
export {
  abortError,
  createRequestScope,
  raceAbort,
  throwIfAborted,
  type RequestScope,
} from './request-context.js';
export { createSecretReader, secretRefSchema, type SecretReader, type SecretRef } from './secret-ref.js';
