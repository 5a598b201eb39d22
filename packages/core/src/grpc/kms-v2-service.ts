import type { Broker } from '../broker.js';
import { TrousseauError } from '../errors.js';
import { V2_CODECS } from './kms-codecs.js';
import {
  bytesAsBuffer,
  type V2DecryptRequest,
  type V2DecryptResponse,
  type V2EncryptRequest,
  type V2EncryptResponse,
  type V2StatusResponse,
} from './messages.js';
import type { ServedMethod } from './stream-call.js';
import { unaryHandler, type HandlerDeps } from './unary-handler.js';

const SERVICE = '/v2.KeyManagementService';

/** kube-apiserver refuses a v2 ciphertext longer than this. */
export const V2_MAX_CIPHERTEXT_BYTES = 1024;

/** What v2 Status answers as `version`: "v2" for Kubernetes 1.29+, "v2beta1" for 1.27-1.28. */
export type V2StatusVersion = 'v2' | 'v2beta1';

/**
 * `v2.KeyManagementService`. Status answers from the broker's cached health (never a KMS round trip);
 * when the key itself is gone it fails with `TROUSSEAU_ERR_PROVIDER_KEY_GONE`, because only an error
 * stops the apiserver's writes.
 */
export function kmsV2Service(
  broker: Broker,
  statusVersion: V2StatusVersion,
  deps: HandlerDeps,
): Record<string, ServedMethod> {
  return {
    [`${SERVICE}/Status`]: unaryHandler<object, V2StatusResponse>(
      'v2',
      'Status',
      deps,
      { request: V2_CODECS.StatusRequest, response: V2_CODECS.StatusResponse },
      async () => {
        const status = broker.status();
        if (status.keyUnusable) {
          throw new TrousseauError(
            'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
            `key gone: ${status.reason ?? 'unknown'}`,
          );
        }
        if (status.keyId === undefined) {
          throw new TrousseauError(
            'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
            `no key id yet from provider "${broker.encryptWith}": ${status.reason ?? 'not checked yet'}`,
          );
        }
        return {
          version: statusVersion,
          healthz: status.healthy ? 'ok' : (status.reason ?? 'unhealthy'),
          key_id: status.keyId,
        };
      },
    ),
    [`${SERVICE}/Encrypt`]: unaryHandler<V2EncryptRequest, V2EncryptResponse>(
      'v2',
      'Encrypt',
      deps,
      { request: V2_CODECS.EncryptRequest, response: V2_CODECS.EncryptResponse },
      async (request, context) => {
        const result = await broker.encrypt(request.plaintext, context);
        if (result.ciphertext.length > V2_MAX_CIPHERTEXT_BYTES) {
          throw new TrousseauError(
            'TROUSSEAU_ERR_CIPHERTEXT_TOO_LARGE',
            `ciphertext is ${result.ciphertext.length} bytes; KMS v2 allows at most ${V2_MAX_CIPHERTEXT_BYTES}`,
          );
        }
        return { ciphertext: result.ciphertext, key_id: result.keyId, annotations: {} };
      },
      (request) => request.uid,
    ),
    [`${SERVICE}/Decrypt`]: unaryHandler<V2DecryptRequest, V2DecryptResponse>(
      'v2',
      'Decrypt',
      deps,
      { request: V2_CODECS.DecryptRequest, response: V2_CODECS.DecryptResponse },
      async (request, context) => {
        const plaintext = await broker.decrypt(request.ciphertext, context, request.key_id);
        return { plaintext: bytesAsBuffer(plaintext) };
      },
      (request) => request.uid,
    ),
  };
}
