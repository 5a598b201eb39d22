import { createHash } from 'node:crypto';
import { TrousseauError } from './errors.js';

/**
 * The stored-ciphertext envelope, format version 1. This is a forever-format: etcd keeps these bytes
 * for years, so never change how version 1 is read; add a new version instead. docs/ciphertext-format.md
 * documents it and test/envelope.test.ts pins it with golden vectors.
 *
 *   offset  size  field
 *   0       3     magic "TRS" (0x54 0x52 0x53)
 *   3       1     format version (0x01)
 *   4       1     N: length of the provider instance name (1..63)
 *   5       N     provider instance name (ASCII: a-z 0-9 -)
 *   5+N     8     first 8 bytes of SHA-256(key id as UTF-8)
 *   13+N    1     K: length of the key reference (0..255)
 *   14+N    K     key reference (UTF-8, provider-defined)
 *   14+N+K  rest  provider ciphertext (at least 1 byte)
 */
export const ENVELOPE_MAGIC = Buffer.from('TRS', 'ascii');
export const ENVELOPE_VERSION = 1;
const KEY_ID_DIGEST_BYTES = 8;
const MAX_KEY_REF_BYTES = 255;
export const INSTANCE_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface Envelope {
  /** The provider instance (config `providers[].name`) that produced the ciphertext. */
  readonly instance: string;
  /** First 8 bytes of SHA-256 of the key id that Encrypt returned. */
  readonly keyIdDigest: Uint8Array;
  readonly keyRef: string;
  readonly payload: Uint8Array;
}

const digestCache = new Map<string, Uint8Array>();

export function digestKeyId(keyId: string): Uint8Array {
  let digest = digestCache.get(keyId);
  if (digest === undefined) {
    digest = createHash('sha256').update(keyId, 'utf8').digest().subarray(0, KEY_ID_DIGEST_BYTES);
    // Key ids are few (one per key version); the bound only guards against a provider minting many.
    if (digestCache.size >= 1024) digestCache.clear();
    digestCache.set(keyId, digest);
  }
  return digest;
}

export function encodeEnvelope(envelope: {
  instance: string;
  keyId: string;
  keyRef?: string;
  payload: Uint8Array;
}): Buffer {
  if (!INSTANCE_NAME_PATTERN.test(envelope.instance)) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_INTERNAL',
      `invalid provider instance name "${envelope.instance}"`,
    );
  }
  const name = Buffer.from(envelope.instance, 'ascii');
  const keyRef = Buffer.from(envelope.keyRef ?? '', 'utf8');
  if (keyRef.length > MAX_KEY_REF_BYTES) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_INTERNAL',
      `provider instance "${envelope.instance}" returned a key reference of ${keyRef.length} bytes (at most ${MAX_KEY_REF_BYTES})`,
    );
  }
  if (envelope.payload.length === 0) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_INTERNAL',
      `provider instance "${envelope.instance}" returned an empty ciphertext`,
    );
  }
  return Buffer.concat([
    ENVELOPE_MAGIC,
    Buffer.of(ENVELOPE_VERSION, name.length),
    name,
    digestKeyId(envelope.keyId),
    Buffer.of(keyRef.length),
    keyRef,
    envelope.payload,
  ]);
}

function malformed(reason: string): TrousseauError {
  return new TrousseauError(
    'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED',
    `ciphertext is not a Trousseau envelope: ${reason}`,
  );
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.length < ENVELOPE_MAGIC.length + 1 || !data.subarray(0, 3).equals(ENVELOPE_MAGIC)) {
    throw malformed('missing "TRS" header');
  }
  const version = data[3];
  if (version !== ENVELOPE_VERSION) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_CIPHERTEXT_UNSUPPORTED_VERSION',
      `ciphertext envelope version ${String(version)} is not supported (this build reads version ${ENVELOPE_VERSION})`,
    );
  }
  let offset = 4;
  const nameLength = data[offset];
  offset += 1;
  if (nameLength === undefined || nameLength === 0 || offset + nameLength > data.length) {
    throw malformed('truncated provider name');
  }
  const instance = data.subarray(offset, offset + nameLength).toString('ascii');
  if (!INSTANCE_NAME_PATTERN.test(instance)) throw malformed('invalid provider name');
  offset += nameLength;
  if (offset + KEY_ID_DIGEST_BYTES + 1 > data.length) throw malformed('truncated key id digest');
  const keyIdDigest = data.subarray(offset, offset + KEY_ID_DIGEST_BYTES);
  offset += KEY_ID_DIGEST_BYTES;
  const keyRefLength = data[offset] ?? 0;
  offset += 1;
  if (offset + keyRefLength > data.length) throw malformed('truncated key reference');
  const keyRef = data.subarray(offset, offset + keyRefLength).toString('utf8');
  offset += keyRefLength;
  if (offset >= data.length) throw malformed('no payload after the header');
  return { instance, keyIdDigest, keyRef, payload: data.subarray(offset) };
}
