// @trousseau/core/grpc: the KMS gRPC front-end and client. Apart from the main entry so that a provider
// package, which imports only `@trousseau/core`, never loads @grpc/grpc-js.
export { grpcStatusOf, toServiceError } from './grpc-status.js';
export { KmsClient } from './kms-client.js';
export { KmsGrpcServer, type KmsGrpcServerOptions } from './kms-grpc-server.js';
export { V2_MAX_CIPHERTEXT_BYTES, type V2StatusVersion } from './kms-v2-service.js';
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
} from './messages.js';
export { kmsServices } from './kms-services.js';
export { PROTO_DIR } from './proto-files.js';
