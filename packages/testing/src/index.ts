// @trousseau/testing: what provider authors and this repo's tests use.
export { runProviderConformance, type ConformanceOptions, type ConformanceSubject } from './conformance.js';
export { FaultyProvider, faultyProviderDefinition, type ProviderFaults } from './faulty-provider.js';
export { RecordingMetrics, type RecordedInstrument } from './recording-metrics.js';
export { testRequestContext } from './request-context.js';
export { waitUntil, type WaitUntilOptions } from './wait-until.js';
export { startNodeProcess, type NodeProcess } from './node-process.js';
export { createTestProviderContext, type TestProviderContextOptions } from './provider-context.js';
export { FileBackend } from './file-backend.js';
export { createTestCertificates, issueClientCertificate, type TestCertificates } from './certificates.js';
