import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { BINDING_KEY_BYTES, digestKeyId, ENVELOPE_MAGIC, INSTANCE_NAME_PATTERN } from './envelope.js';
import { TrousseauError } from './errors.js';

/**
 * Envelope version 4: one data key wrapped by several provider instances, any one of them enough to read
 * it. A forever-format like versions 1 and 2 (docs/ciphertext-format.md, golden vectors in
 * test/replicated-envelope.test.ts); it is written when `encryptWith` lists more than one instance.
 *
 *   offset  size  field
 *   0       3     magic "TRS"
 *   3       1     format version 0x04
 *   4       8     first 8 bytes of SHA-256 of the key id Encrypt returned (the replicated key id)
 *   12      1     C: number of copies (1..16)
 *   then C copies, each:
 *           1     N: length of the provider instance name (1..63)
 *           N     provider instance name (a-z 0-9 -)
 *           8     first 8 bytes of SHA-256 of the key id that instance returned
 *           1     K: length of the key reference (0..255)
 *           K     key reference (UTF-8)
 *           2     P: length of the provider's ciphertext, big-endian (1..65535)
 *           P     the provider's ciphertext of `B | plaintext`
 *   end-16  16    tag: first 16 bytes of HMAC-SHA256(B, every byte before the tag)
 *
 * It carries version 2's authentication: every copy is the encryption of the same `B | plaintext`, B a
 * fresh random 32-byte binding key, and the tag covers the header and every copy. Whichever copy is
 * opened gives back B, so a change to any byte (another copy's included) fails the tag. Version 3 is not
 * used: byte 0x03 is one bit away from both 0x01 and 0x02, while 0x04 is two bits away from each.
 */
export const REPLICATED_ENVELOPE_VERSION = 4;
/** The most copies one envelope holds. */
export const MAX_COPIES = 16;
const TAG_BYTES = 16;
const KEY_ID_DIGEST_BYTES = 8;
const MAX_KEY_REF_BYTES = 255;
const MAX_PAYLOAD_BYTES = 65_535;

/** Bytes of a version 4 envelope besides its copies: magic, version, key-id digest, count, tag. */
export const REPLICATED_FIXED_BYTES = 3 + 1 + KEY_ID_DIGEST_BYTES + 1 + TAG_BYTES;

/** Bytes one copy takes besides its name, key reference and payload. */
const COPY_FIXED_BYTES = 1 + KEY_ID_DIGEST_BYTES + 1 + 2;

/** One provider's wrapped copy of the data key, to write. */
export interface CopyFields {
  readonly instance: string;
  /** The key id the provider returned with this ciphertext. */
  readonly keyId: string;
  readonly keyRef?: string | undefined;
  readonly payload: Uint8Array;
}

/** One copy as read from an envelope. */
export interface EnvelopeCopy {
  readonly instance: string;
  readonly keyIdDigest: Uint8Array;
  readonly keyRef: string;
  readonly payload: Uint8Array;
}

/** A decoded version 4 envelope. */
export interface ReplicatedEnvelope {
  readonly version: 4;
  /** Digest of the replicated key id Encrypt returned. */
  readonly keyIdDigest: Uint8Array;
  /** In the order they were written: the configured `encryptWith` order. */
  readonly copies: readonly EnvelopeCopy[];
  readonly tag: Uint8Array;
  /** Every byte before the tag. */
  readonly authenticated: Uint8Array;
}

function sha256Prefix(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest().subarray(0, KEY_ID_DIGEST_BYTES);
}

function tagOf(bindingKey: Uint8Array, authenticated: Uint8Array): Buffer {
  return createHmac('sha256', bindingKey).update(authenticated).digest().subarray(0, TAG_BYTES);
}

/** The encoded size of one copy: what the size budget at start adds up. */
export function copyBytes(instance: string, keyRefBytes: number, payloadBytes: number): number {
  return COPY_FIXED_BYTES + Buffer.byteLength(instance, 'ascii') + keyRefBytes + payloadBytes;
}

function encodeCopy(copy: CopyFields): Buffer {
  if (!INSTANCE_NAME_PATTERN.test(copy.instance)) {
    throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', `invalid provider instance name "${copy.instance}"`);
  }
  const keyRef = Buffer.from(copy.keyRef ?? '', 'utf8');
  if (keyRef.length > MAX_KEY_REF_BYTES) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_INTERNAL',
      `provider instance "${copy.instance}" returned a key reference of ${keyRef.length} bytes (at most ${MAX_KEY_REF_BYTES})`,
    );
  }
  if (copy.payload.length === 0 || copy.payload.length > MAX_PAYLOAD_BYTES) {
    throw new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_INTERNAL',
      `provider instance "${copy.instance}" returned a ciphertext of ${copy.payload.length} bytes (1 to ${MAX_PAYLOAD_BYTES})`,
    );
  }
  const length = Buffer.alloc(2);
  length.writeUInt16BE(copy.payload.length);
  return Buffer.concat([
    Buffer.of(copy.instance.length),
    Buffer.from(copy.instance, 'ascii'),
    digestKeyId(copy.keyId),
    Buffer.of(keyRef.length),
    keyRef,
    length,
    copy.payload,
  ]);
}

/**
 * Writes a version 4 envelope: the copies, each the provider's ciphertext of the same
 * {@link bindPlaintext} result, then the tag made with its binding key over everything before it.
 */
export function sealReplicatedEnvelope(
  keyId: string,
  copies: readonly CopyFields[],
  bindingKey: Uint8Array,
): Buffer {
  if (copies.length === 0 || copies.length > MAX_COPIES) {
    throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', `an envelope holds 1 to ${MAX_COPIES} copies`);
  }
  if (new Set(copies.map((copy) => copy.instance)).size !== copies.length) {
    throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', 'two copies of one provider instance');
  }
  const authenticated = Buffer.concat([
    ENVELOPE_MAGIC,
    Buffer.of(REPLICATED_ENVELOPE_VERSION),
    digestKeyId(keyId),
    Buffer.of(copies.length),
    ...copies.map(encodeCopy),
  ]);
  return Buffer.concat([authenticated, tagOf(bindingKey, authenticated)]);
}

function malformed(reason: string): TrousseauError {
  return new TrousseauError(
    'TROUSSEAU_ERR_CIPHERTEXT_MALFORMED',
    `ciphertext is not a Trousseau envelope: ${reason}`,
  );
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Whether the bytes claim to be a version 4 envelope (magic and version byte); says nothing of the rest. */
export function isReplicatedEnvelope(bytes: Uint8Array): boolean {
  return (
    bytes.length > 4 &&
    bytes[0] === ENVELOPE_MAGIC[0] &&
    bytes[1] === ENVELOPE_MAGIC[1] &&
    bytes[2] === ENVELOPE_MAGIC[2] &&
    bytes[3] === REPLICATED_ENVELOPE_VERSION
  );
}

/** Reads a version 4 envelope strictly: every length must add up exactly, names byte for byte. */
export function decodeReplicatedEnvelope(bytes: Uint8Array): ReplicatedEnvelope {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isReplicatedEnvelope(data)) throw malformed('not a version 4 envelope');
  const end = data.length - TAG_BYTES;
  if (end < REPLICATED_FIXED_BYTES - TAG_BYTES) throw malformed('truncated header');
  const keyIdDigest = data.subarray(4, 4 + KEY_ID_DIGEST_BYTES);
  const count = data[12] ?? 0;
  if (count === 0 || count > MAX_COPIES) throw malformed(`${count} copies (1 to ${MAX_COPIES})`);
  let offset = 13;
  const copies: EnvelopeCopy[] = [];
  const seen = new Set<string>();
  for (let index = 0; index < count; index += 1) {
    const nameLength = data[offset] ?? 0;
    offset += 1;
    if (nameLength === 0 || offset + nameLength > end) throw malformed('truncated provider name');
    const instance = data.subarray(offset, offset + nameLength).toString('latin1');
    if (!INSTANCE_NAME_PATTERN.test(instance)) throw malformed('invalid provider name');
    if (seen.has(instance)) throw malformed(`two copies of provider "${instance}"`);
    seen.add(instance);
    offset += nameLength;
    if (offset + KEY_ID_DIGEST_BYTES + 1 > end) throw malformed('truncated key id digest');
    const copyDigest = data.subarray(offset, offset + KEY_ID_DIGEST_BYTES);
    offset += KEY_ID_DIGEST_BYTES;
    const keyRefLength = data[offset] ?? 0;
    offset += 1;
    if (offset + keyRefLength + 2 > end) throw malformed('truncated key reference');
    let keyRef: string;
    try {
      keyRef = strictUtf8.decode(data.subarray(offset, offset + keyRefLength));
    } catch {
      throw malformed('the key reference is not valid UTF-8');
    }
    offset += keyRefLength;
    const payloadLength = data.readUInt16BE(offset);
    offset += 2;
    if (payloadLength === 0 || offset + payloadLength > end) throw malformed('truncated copy');
    copies.push({
      instance,
      keyIdDigest: copyDigest,
      keyRef,
      payload: data.subarray(offset, offset + payloadLength),
    });
    offset += payloadLength;
  }
  if (offset !== end) throw malformed('bytes after the last copy');
  return {
    version: 4,
    keyIdDigest,
    copies,
    tag: data.subarray(end),
    authenticated: data.subarray(0, end),
  };
}

/** Whether `keyId` is the key id the envelope was made under. Never caches (the key id is the caller's). */
export function replicatedEnvelopeHasKeyId(envelope: ReplicatedEnvelope, keyId: string): boolean {
  return sha256Prefix(keyId).equals(envelope.keyIdDigest);
}

/**
 * The plaintext, from what one copy's provider decrypted: checks the tag with the binding key it gave
 * back and strips the key. A failure means the envelope (any copy of it) was altered: never try another
 * copy then.
 */
export function openReplicatedEnvelope(envelope: ReplicatedEnvelope, decrypted: Uint8Array): Uint8Array {
  const fail = (): TrousseauError =>
    new TrousseauError(
      'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
      'ciphertext failed its integrity check: the envelope was altered, or was not made by Trousseau',
    );
  if (decrypted.length <= BINDING_KEY_BYTES) throw fail();
  const bindingKey = decrypted.subarray(0, BINDING_KEY_BYTES);
  const expected = tagOf(bindingKey, envelope.authenticated);
  if (envelope.tag.length !== TAG_BYTES || !timingSafeEqual(expected, envelope.tag)) throw fail();
  return decrypted.subarray(BINDING_KEY_BYTES);
}
