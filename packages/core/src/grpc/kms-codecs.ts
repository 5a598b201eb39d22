import { messageCodec } from './message-codec.js';
import type {
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

// The KMS messages, field for field as proto/kms-v2.proto and proto/kms-v1beta1.proto declare them. The
// .proto files stay the source of truth: a test parses them and holds these declarations to them.
// Written out instead of parsed at start, because parsing them (@grpc/proto-loader, protobufjs) cost a
// fifth of the start-up time.

/** KMS v2 (package `v2`). */
export const V2_CODECS = {
  StatusRequest: messageCodec<Record<string, never>>('v2.StatusRequest', []),
  StatusResponse: messageCodec<V2StatusResponse>('v2.StatusResponse', [
    { name: 'version', id: 1, kind: 'string' },
    { name: 'healthz', id: 2, kind: 'string' },
    { name: 'key_id', id: 3, kind: 'string' },
  ]),
  DecryptRequest: messageCodec<V2DecryptRequest>('v2.DecryptRequest', [
    { name: 'ciphertext', id: 1, kind: 'bytes' },
    { name: 'uid', id: 2, kind: 'string' },
    { name: 'key_id', id: 3, kind: 'string' },
    { name: 'annotations', id: 4, kind: 'map<string,bytes>' },
  ]),
  DecryptResponse: messageCodec<V2DecryptResponse>('v2.DecryptResponse', [
    { name: 'plaintext', id: 1, kind: 'bytes' },
  ]),
  EncryptRequest: messageCodec<V2EncryptRequest>('v2.EncryptRequest', [
    { name: 'plaintext', id: 1, kind: 'bytes' },
    { name: 'uid', id: 2, kind: 'string' },
  ]),
  EncryptResponse: messageCodec<V2EncryptResponse>('v2.EncryptResponse', [
    { name: 'ciphertext', id: 1, kind: 'bytes' },
    { name: 'key_id', id: 2, kind: 'string' },
    { name: 'annotations', id: 3, kind: 'map<string,bytes>' },
  ]),
} as const;

/** KMS v1beta1 (package `v1beta1`). */
export const V1BETA1_CODECS = {
  VersionRequest: messageCodec<V1VersionRequest>('v1beta1.VersionRequest', [
    { name: 'version', id: 1, kind: 'string' },
  ]),
  VersionResponse: messageCodec<V1VersionResponse>('v1beta1.VersionResponse', [
    { name: 'version', id: 1, kind: 'string' },
    { name: 'runtime_name', id: 2, kind: 'string' },
    { name: 'runtime_version', id: 3, kind: 'string' },
  ]),
  DecryptRequest: messageCodec<V1DecryptRequest>('v1beta1.DecryptRequest', [
    { name: 'version', id: 1, kind: 'string' },
    { name: 'cipher', id: 2, kind: 'bytes' },
  ]),
  DecryptResponse: messageCodec<V1DecryptResponse>('v1beta1.DecryptResponse', [
    { name: 'plain', id: 1, kind: 'bytes' },
  ]),
  EncryptRequest: messageCodec<V1EncryptRequest>('v1beta1.EncryptRequest', [
    { name: 'version', id: 1, kind: 'string' },
    { name: 'plain', id: 2, kind: 'bytes' },
  ]),
  EncryptResponse: messageCodec<V1EncryptResponse>('v1beta1.EncryptResponse', [
    { name: 'cipher', id: 1, kind: 'bytes' },
  ]),
} as const;
