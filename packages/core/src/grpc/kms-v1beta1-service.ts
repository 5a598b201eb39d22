import { MAX_CIPHERTEXT_BYTES, type Broker } from '../broker.js';
import { TrousseauError } from '../errors.js';
import { truncateForLog } from '../log-limit.js';
import { V1BETA1_CODECS } from './kms-codecs.js';
import {
  bytesAsBuffer,
  type V1DecryptRequest,
  type V1DecryptResponse,
  type V1EncryptRequest,
  type V1EncryptResponse,
  type V1VersionRequest,
  type V1VersionResponse,
} from './messages.js';
import type { ServedMethod } from './stream-call.js';
import { unaryHandler, type HandlerDeps } from './unary-handler.js';

const API_VERSION = 'v1beta1';
const SERVICE = '/v1beta1.KeyManagementService';

function checkVersion(version: string): void {
  if (version !== '' && version !== API_VERSION) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_REQUEST_INVALID',
      `unsupported KMS API version "${truncateForLog(version)}" (this service is ${API_VERSION})`,
    );
  }
}

/** `v1beta1.KeyManagementService`, for clusters that still use KMS v1. */
export function kmsV1beta1Service(
  broker: Broker,
  runtime: { name: string; version: string },
  deps: HandlerDeps,
): Record<string, ServedMethod> {
  return {
    [`${SERVICE}/Version`]: unaryHandler<V1VersionRequest, V1VersionResponse>(
      'v1beta1',
      'Version',
      deps,
      { request: V1BETA1_CODECS.VersionRequest, response: V1BETA1_CODECS.VersionResponse },
      async () => ({
        version: API_VERSION,
        runtime_name: runtime.name,
        runtime_version: runtime.version,
      }),
    ),
    [`${SERVICE}/Encrypt`]: unaryHandler<V1EncryptRequest, V1EncryptResponse>(
      'v1beta1',
      'Encrypt',
      deps,
      { request: V1BETA1_CODECS.EncryptRequest, response: V1BETA1_CODECS.EncryptResponse },
      async (request, context) => {
        checkVersion(request.version);
        const result = await broker.encrypt(request.plain, context);
        if (result.ciphertext.length > MAX_CIPHERTEXT_BYTES) {
          throw new TrousseauError(
            'TROUSSEAU_ERR_CIPHERTEXT_TOO_LARGE',
            `ciphertext is ${result.ciphertext.length} bytes; KMS v1 stores at most ${MAX_CIPHERTEXT_BYTES}`,
          );
        }
        return { cipher: result.ciphertext };
      },
    ),
    [`${SERVICE}/Decrypt`]: unaryHandler<V1DecryptRequest, V1DecryptResponse>(
      'v1beta1',
      'Decrypt',
      deps,
      { request: V1BETA1_CODECS.DecryptRequest, response: V1BETA1_CODECS.DecryptResponse },
      async (request, context) => {
        checkVersion(request.version);
        const plaintext = await broker.decrypt(request.cipher, context);
        return { plain: bytesAsBuffer(plaintext) };
      },
    ),
  };
}
