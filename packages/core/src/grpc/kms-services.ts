import {
  makeGenericClientConstructor,
  type MethodDefinition,
  type ServiceClientConstructor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { V1BETA1_CODECS, V2_CODECS } from './kms-codecs.js';
import type { MessageCodec } from './message-codec.js';

/** A unary method of `service`, with the codecs of its request and response. */
function unary<Req, Res>(
  service: string,
  method: string,
  request: MessageCodec<Req>,
  response: MessageCodec<Res>,
): MethodDefinition<object, object> {
  return {
    path: `/${service}/${method}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (message: object) => request.encode(message),
    requestDeserialize: (bytes: Buffer) => request.decode(bytes) as object,
    responseSerialize: (message: object) => response.encode(message),
    responseDeserialize: (bytes: Buffer) => response.decode(bytes) as object,
    // What @grpc/proto-loader names it too, so a client has `encrypt` beside `Encrypt`.
    originalName: method.charAt(0).toLowerCase() + method.slice(1),
  };
}

function v2Service(): ServiceDefinition {
  const name = 'v2.KeyManagementService';
  return {
    Status: unary(name, 'Status', V2_CODECS.StatusRequest, V2_CODECS.StatusResponse),
    Decrypt: unary(name, 'Decrypt', V2_CODECS.DecryptRequest, V2_CODECS.DecryptResponse),
    Encrypt: unary(name, 'Encrypt', V2_CODECS.EncryptRequest, V2_CODECS.EncryptResponse),
  };
}

function v1beta1Service(): ServiceDefinition {
  const name = 'v1beta1.KeyManagementService';
  return {
    Version: unary(name, 'Version', V1BETA1_CODECS.VersionRequest, V1BETA1_CODECS.VersionResponse),
    Decrypt: unary(name, 'Decrypt', V1BETA1_CODECS.DecryptRequest, V1BETA1_CODECS.DecryptResponse),
    Encrypt: unary(name, 'Encrypt', V1BETA1_CODECS.EncryptRequest, V1BETA1_CODECS.EncryptResponse),
  };
}

let cached: { v2: ServiceClientConstructor; v1beta1: ServiceClientConstructor } | undefined;

/**
 * The two KMS services, built once: `v2.KeyManagementService` and `v1beta1.KeyManagementService`, each a
 * client constructor whose `service` is the definition a grpc-js server adds. The methods and messages
 * are those of proto/kms-v2.proto and proto/kms-v1beta1.proto, written out in `kms-codecs.ts` (a test
 * holds them to the .proto files), so nothing parses a .proto file when the server starts.
 */
export function kmsServices(): { v2: ServiceClientConstructor; v1beta1: ServiceClientConstructor } {
  cached ??= {
    v2: makeGenericClientConstructor(v2Service(), 'KeyManagementService'),
    v1beta1: makeGenericClientConstructor(v1beta1Service(), 'KeyManagementService'),
  };
  return cached;
}
