import protobuf from 'protobufjs';

/**
 * kube-apiserver's KMS v2 `EncryptedObject`: what follows `k8s:enc:kms:v2:<name>:` in etcd. The field
 * numbers are those of the apiserver's published api.proto
 * (staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2/api.proto):
 *
 *   message EncryptedObject {
 *     bytes encryptedData = 1;                          // the object, under the DEK
 *     string keyID = 2;                                 // the key_id the plugin's Encrypt returned
 *     bytes encryptedDEKSource = 3;                     // the plugin's ciphertext (Trousseau's envelope)
 *     map<string, bytes> annotations = 4;               // the plugin's annotations
 *     EncryptedDEKSourceType encryptedDEKSourceType = 5;
 *   }
 *   enum EncryptedDEKSourceType { AES_GCM_KEY = 0; HKDF_SHA256_XNONCE_AES_GCM_SEED = 1; }
 *
 * Field 3 was named `encryptedDEK` before the seed type (field 5) came in 1.29; the number and meaning
 * (the plugin's ciphertext) did not change.
 */
const encryptedObjectType = new protobuf.Type('EncryptedObject')
  .add(new protobuf.Field('encryptedData', 1, 'bytes'))
  .add(new protobuf.Field('keyID', 2, 'string'))
  .add(new protobuf.Field('encryptedDEKSource', 3, 'bytes'))
  .add(new protobuf.MapField('annotations', 4, 'string', 'bytes'))
  .add(new protobuf.Field('encryptedDEKSourceType', 5, 'int32'));
new protobuf.Root().define('v2').add(encryptedObjectType);

const DEK_SOURCE_TYPES: Readonly<Record<number, string>> = {
  0: 'AES_GCM_KEY',
  1: 'HKDF_SHA256_XNONCE_AES_GCM_SEED',
};

/** The parts of an `EncryptedObject` the report reads. The encrypted data itself is never kept. */
interface EncryptedObject {
  readonly keyId: string;
  /** The plugin's ciphertext of the DEK (or DEK seed). */
  readonly encryptedDekSource: Uint8Array;
  readonly annotationKeys: readonly string[];
  /** `AES_GCM_KEY`, `HKDF_SHA256_XNONCE_AES_GCM_SEED`, or `unknown (N)`. */
  readonly dekSourceType: string;
}

interface DecodedFields {
  keyID?: unknown;
  encryptedDEKSource?: unknown;
  annotations?: unknown;
  encryptedDEKSourceType?: unknown;
}

/** Decodes an `EncryptedObject`; throws when the bytes are not one or carry no plugin ciphertext. */
export function decodeEncryptedObject(bytes: Uint8Array): EncryptedObject {
  const message = encryptedObjectType.decode(bytes);
  const fields = encryptedObjectType.toObject(message, { defaults: true }) as DecodedFields;
  const source = fields.encryptedDEKSource;
  if (!(source instanceof Uint8Array) || source.length === 0) {
    throw new Error('the EncryptedObject has no encryptedDEKSource (field 3)');
  }
  const type = typeof fields.encryptedDEKSourceType === 'number' ? fields.encryptedDEKSourceType : 0;
  const annotations =
    typeof fields.annotations === 'object' && fields.annotations !== null ? fields.annotations : {};
  return {
    keyId: typeof fields.keyID === 'string' ? fields.keyID : '',
    encryptedDekSource: source,
    annotationKeys: Object.keys(annotations).sort(),
    dekSourceType: DEK_SOURCE_TYPES[type] ?? `unknown (${type})`,
  };
}
