import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { TrousseauError } from './errors.js';
import { randomPool } from './random-pool.js';

/**
 * The stored-ciphertext envelope. This is a forever-format: etcd keeps these bytes for years, so never
 * change how an existing version is read; add a new version instead. docs/ciphertext-format.md documents
 * every version and test/envelope.test.ts pins each with golden vectors.
 *
 * Both versions share the header:
 *
 *   offset  size  field
 *   0       3     magic "TRS" (0x54 0x52 0x53)
 *   3       1     format version (0x01 or 0x02)
 *   4       1     N: length of the provider instance name (1..63)
 *   5       N     provider instance name (ASCII: a-z 0-9 -)
 *   5+N     8     first 8 bytes of SHA-256(key id as UTF-8)
 *   13+N    1     K: length of the key reference (0..255)
 *   14+N    K     key reference (UTF-8, provider-defined)
 *
 * Version 1: the provider's ciphertext of the plaintext follows (at least 1 byte), to the end. Nothing
 * authenticates the header: the key id digest is checked only when KMS v2 sends a key id.
 *
 * Version 2 authenticates every byte. The provider encrypts `B | plaintext`, where B is a fresh random
 * 32-byte binding key; after the provider's ciphertext comes a 16-byte tag, the first 16 bytes of
 * HMAC-SHA256(B, every byte before the tag). Only the KMS can give B back, so a changed header, payload or
 * tag fails the tag check (or the provider's own check) on every API, with or without a key id. The tag is
 * computed after the provider answers, so it covers the key id and key reference that only the provider's
 * answer says; binding the header into the plaintext directly would need them before the call.
 */
export const ENVELOPE_MAGIC = Buffer.from('TRS', 'ascii');
/** The version new ciphertexts are written in by default. */
export const ENVELOPE_VERSION = 2;
/** Every version this build reads (and can write). */
export const ENVELOPE_VERSIONS = [1, 2] as const;
export type EnvelopeVersion = (typeof ENVELOPE_VERSIONS)[number];
/** Bytes of the binding key that version 2 prepends to the plaintext the provider encrypts. */
export const BINDING_KEY_BYTES = 32;
const TAG_BYTES = 16;
const KEY_ID_DIGEST_BYTES = 8;
const MAX_KEY_REF_BYTES = 255;
export const INSTANCE_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface EnvelopeHeader {
  /** The provider instance (config `providers[].name`) that produced the ciphertext. */
  readonly instance: string;
  /** First 8 bytes of SHA-256 of the key id that Encrypt returned. */
  readonly keyIdDigest: Uint8Array;
  readonly keyRef: string;
  /** The provider's ciphertext. */
  readonly payload: Uint8Array;
}

/** A decoded envelope: version 1, or version 2 with its tag and the bytes the tag covers. */
export type Envelope =
  | (EnvelopeHeader & { readonly version: 1 })
  | (EnvelopeHeader & {
      readonly version: 2;
      readonly tag: Uint8Array;
      /** Every byte of the envelope before the tag. */
      readonly authenticated: Uint8Array;
    });

/** The fields of an envelope to write. */
export interface EnvelopeFields {
  readonly instance: string;
  readonly keyId: string;
  readonly keyRef?: string | undefined;
  readonly payload: Uint8Array;
}

const digestCache = new Map<string, Uint8Array>();

function sha256Prefix(keyId: string): Uint8Array {
  return createHash('sha256').update(keyId, 'utf8').digest().subarray(0, KEY_ID_DIGEST_BYTES);
}

/** The key id digest stored in the header. Cached: call it with key ids a provider returned. */
export function digestKeyId(keyId: string): Uint8Array {
  let digest = digestCache.get(keyId);
  if (digest === undefined) {
    digest = sha256Prefix(keyId);
    // Key ids are few (one per key version); the bound only guards against a provider minting many.
    if (digestCache.size >= 1024) digestCache.clear();
    digestCache.set(keyId, digest);
  }
  return digest;
}

/**
 * Whether `keyId` is the key id the envelope was made under. The caller's key id never enters the cache
 * (it could otherwise fill it with values of its choosing); one a provider returned is looked up there, so
 * the usual Decrypt, which sends back the key id Encrypt returned, hashes nothing.
 */
export function envelopeHasKeyId(envelope: Envelope, keyId: string): boolean {
  const digest = digestCache.get(keyId) ?? sha256Prefix(keyId);
  return Buffer.compare(digest, envelope.keyIdDigest) === 0;
}

/**
 * Headers already written, by version, instance, key reference and key id: a provider answers with the
 * same few for every call, and each took a validation and five small buffers to build. Only headers that
 * passed validation are kept; the bound, as for digests, only guards against a provider minting many.
 */
const headerCache = new Map<string, Buffer>();
const MAX_CACHED_HEADERS = 1024;

/** The header of an envelope (every byte before the payload); the result is shared: never write to it. */
function header(version: EnvelopeVersion, fields: EnvelopeFields): Buffer {
  const keyRefText = fields.keyRef ?? '';
  const cacheKey = `${version}\0${fields.instance}\0${keyRefText}\0${fields.keyId}`;
  const cached = headerCache.get(cacheKey);
  if (cached !== undefined) return cached;
  if (!INSTANCE_NAME_PATTERN.test(fields.instance)) {
    throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', `invalid provider instance name "${fields.instance}"`);
  }
  const name = Buffer.from(fields.instance, 'ascii');
  const keyRef = Buffer.from(keyRefText, 'utf8');
  if (keyRef.length > MAX_KEY_REF_BYTES) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_INTERNAL',
      `provider instance "${fields.instance}" returned a key reference of ${keyRef.length} bytes (at most ${MAX_KEY_REF_BYTES})`,
    );
  }
  const bytes = Buffer.concat([
    ENVELOPE_MAGIC,
    Buffer.of(version, name.length),
    name,
    digestKeyId(fields.keyId),
    Buffer.of(keyRef.length),
    keyRef,
  ]);
  if (headerCache.size >= MAX_CACHED_HEADERS) headerCache.clear();
  headerCache.set(cacheKey, bytes);
  return bytes;
}

function assertPayload(fields: EnvelopeFields): void {
  if (fields.payload.length === 0) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_INTERNAL',
      `provider instance "${fields.instance}" returned an empty ciphertext`,
    );
  }
}

/** Writes a version 1 envelope: read by every Trousseau, but its header is not authenticated. */
export function encodeEnvelope(fields: EnvelopeFields): Buffer {
  const head = header(1, fields);
  assertPayload(fields);
  return Buffer.concat([head, fields.payload]);
}

/** What the provider encrypts for a version 2 envelope, and the binding key inside it. */
export interface BoundPlaintext {
  /** `bindingKey | plaintext`: hand this to the provider's encrypt. */
  readonly plaintext: Buffer;
  /** Pass to {@link sealEnvelope} with the provider's answer. */
  readonly bindingKey: Buffer;
}

/**
 * Prepends a fresh binding key (or the one given) to `plaintext`, for a version 2 envelope. The key is a
 * buffer of its own, not a view of the bound plaintext: a provider may scrub what it was asked to encrypt.
 */
export function bindPlaintext(
  plaintext: Uint8Array,
  bindingKey: Buffer = randomPool.bytes(BINDING_KEY_BYTES),
): BoundPlaintext {
  if (bindingKey.length !== BINDING_KEY_BYTES) {
    throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', `a binding key is ${BINDING_KEY_BYTES} bytes`);
  }
  const bound = Buffer.allocUnsafe(BINDING_KEY_BYTES + plaintext.length);
  bindingKey.copy(bound, 0);
  bound.set(plaintext, BINDING_KEY_BYTES);
  return { plaintext: bound, bindingKey };
}

function tagOf(bindingKey: Uint8Array, authenticated: Uint8Array): Buffer {
  return createHmac('sha256', bindingKey).update(authenticated).digest().subarray(0, TAG_BYTES);
}

/**
 * Writes a version 2 envelope around the provider's ciphertext of a {@link bindPlaintext} result: the
 * header, the payload, then the tag made with the binding key over all of them.
 */
export function sealEnvelope(fields: EnvelopeFields, bindingKey: Uint8Array): Buffer {
  const head = header(2, fields);
  assertPayload(fields);
  const end = head.length + fields.payload.length;
  const out = Buffer.allocUnsafe(end + TAG_BYTES);
  head.copy(out, 0);
  out.set(fields.payload, head.length);
  const authenticated = out.subarray(0, end);
  tagOf(bindingKey, authenticated).copy(out, end);
  return out;
}

function malformed(reason: string): TrousseauError {
  return new TrousseauError(
    'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED',
    `ciphertext is not a Trousseau envelope: ${reason}`,
  );
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads an envelope of any version this build knows. Every field is read strictly (the instance name
 * byte for byte, the key reference as valid UTF-8), so no two byte strings decode to the same header.
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (
    data.length < ENVELOPE_MAGIC.length + 1 ||
    data[0] !== ENVELOPE_MAGIC[0] ||
    data[1] !== ENVELOPE_MAGIC[1] ||
    data[2] !== ENVELOPE_MAGIC[2]
  ) {
    throw malformed('missing "TRS" header');
  }
  const version = data[3];
  if (version !== 1 && version !== 2) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_CIPHERTEXT_UNSUPPORTED_VERSION',
      `ciphertext envelope version ${String(version)} is not supported (this build reads versions ${ENVELOPE_VERSIONS.join(' and ')})`,
    );
  }
  const end = version === 2 ? data.length - TAG_BYTES : data.length;
  let offset = 4;
  const nameLength = data[offset];
  offset += 1;
  if (nameLength === undefined || nameLength === 0 || offset + nameLength > end) {
    throw malformed('truncated provider name');
  }
  // latin1 maps each byte to one character, so a byte with the high bit set can never pass the pattern.
  const instance = data.toString('latin1', offset, offset + nameLength);
  if (!INSTANCE_NAME_PATTERN.test(instance)) throw malformed('invalid provider name');
  offset += nameLength;
  if (offset + KEY_ID_DIGEST_BYTES + 1 > end) throw malformed('truncated key id digest');
  const keyIdDigest = data.subarray(offset, offset + KEY_ID_DIGEST_BYTES);
  offset += KEY_ID_DIGEST_BYTES;
  const keyRefLength = data[offset] ?? 0;
  offset += 1;
  if (offset + keyRefLength > end) throw malformed('truncated key reference');
  let keyRef: string;
  try {
    keyRef = strictUtf8.decode(data.subarray(offset, offset + keyRefLength));
  } catch {
    throw malformed('the key reference is not valid UTF-8');
  }
  offset += keyRefLength;
  if (offset >= end) throw malformed('no payload after the header');
  const payload = data.subarray(offset, end);
  if (version === 1) return { version, instance, keyIdDigest, keyRef, payload };
  return {
    version,
    instance,
    keyIdDigest,
    keyRef,
    payload,
    tag: data.subarray(end),
    authenticated: data.subarray(0, end),
  };
}

function tampered(): TrousseauError {
  return new TrousseauError(
    'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
    'ciphertext failed its integrity check: the envelope was altered, or was not made by Trousseau',
  );
}

/**
 * The plaintext of an envelope, from what the provider decrypted its payload to. Version 1: that is the
 * plaintext. Version 2: checks the tag with the binding key the provider gave back, and strips the key.
 */
export function openEnvelope(envelope: Envelope, decrypted: Uint8Array): Uint8Array {
  if (envelope.version === 1) return decrypted;
  if (decrypted.length <= BINDING_KEY_BYTES) throw tampered();
  const bindingKey = decrypted.subarray(0, BINDING_KEY_BYTES);
  const expected = tagOf(bindingKey, envelope.authenticated);
  if (envelope.tag.length !== TAG_BYTES || !timingSafeEqual(expected, envelope.tag)) throw tampered();
  return decrypted.subarray(BINDING_KEY_BYTES);
}
