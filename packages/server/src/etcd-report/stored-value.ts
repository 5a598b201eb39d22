import {
  decodeEnvelope,
  decodeReplicatedEnvelope,
  ENVELOPE_MAGIC,
  isReplicatedEnvelope,
  isTrousseauError,
} from '@trousseau/core';
import { decodeEncryptedObject } from './encrypted-object.js';

/**
 * How kube-apiserver stored one value in etcd, read from its prefix alone: nothing is decrypted. The
 * prefixes are the apiserver's (k8s.io/apiserver/pkg/storage/value/encrypt): `k8s:enc:<type>:v1:<name>:`
 * for aescbc, aesgcm, secretbox and KMS v1, `k8s:enc:kms:v2:<name>:` for KMS v2; a value without the
 * `k8s:enc:` prefix is stored as identity (in the clear).
 */
export type StorageKind = 'identity' | 'aescbc' | 'aesgcm' | 'secretbox' | 'kms-v1' | 'kms-v2' | 'unknown';

/** One wrapped copy of the data key in a Trousseau envelope: who made it, under which key. */
export interface EnvelopeCopy {
  /** The provider instance (config `providers[].name`). */
  readonly instance: string;
  /** Hex of the first 8 bytes of SHA-256 of the key id that instance returned. */
  readonly keyIdDigest: string;
  /** The provider's key reference (key name, ARN, Azure key version), possibly empty. */
  readonly keyRef: string;
}

/** What the report can tell of a KMS plugin's ciphertext of the data key. */
export type PluginCiphertext =
  | {
      readonly format: 'trousseau';
      readonly envelopeVersion: number;
      readonly copies: readonly EnvelopeCopy[];
      /** Version 4: hex of the digest of the replicated key id Encrypt returned (each copy has its own). */
      readonly keyIdDigest?: string;
    }
  /** Starts like a Trousseau envelope but does not decode: damaged, or from a newer Trousseau. */
  | { readonly format: 'trousseau-unreadable'; readonly problem: string }
  /** Another plugin's ciphertext. */
  | { readonly format: 'other' };

export interface StoredValue {
  readonly kind: StorageKind;
  /**
   * The name in the apiserver's EncryptionConfiguration: the key name for aescbc, aesgcm and secretbox,
   * the plugin name for KMS; for `unknown`, the prefix as found.
   */
  readonly name?: string;
  /** KMS v2: the key_id the plugin's Encrypt returned, as stored in the EncryptedObject. */
  readonly kmsKeyId?: string;
  /** KMS v2: how the DEK is derived from the plugin's plaintext. */
  readonly dekSourceType?: string;
  /** KMS v1 and v2: the plugin's ciphertext, as far as it can be read without decrypting. */
  readonly plugin?: PluginCiphertext;
  /** Set when the value has a known prefix but its body cannot be read. */
  readonly problem?: string;
}

const ENC_PREFIX = Buffer.from('k8s:enc:', 'latin1');
const COLON = 0x3a;
const VERSIONED_KINDS: Readonly<Record<string, StorageKind>> = {
  'aescbc:v1': 'aescbc',
  'aesgcm:v1': 'aesgcm',
  'secretbox:v1': 'secretbox',
  'kms:v1': 'kms-v1',
  'kms:v2': 'kms-v2',
};

/** Reads the header of a Trousseau envelope: instance(s), key-id digest(s), key reference(s). */
function readPluginCiphertext(ciphertext: Uint8Array): PluginCiphertext {
  const bytes = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  if (!bytes.subarray(0, ENVELOPE_MAGIC.length).equals(ENVELOPE_MAGIC)) return { format: 'other' };
  try {
    if (isReplicatedEnvelope(bytes)) {
      const envelope = decodeReplicatedEnvelope(bytes);
      return {
        format: 'trousseau',
        envelopeVersion: envelope.version,
        keyIdDigest: Buffer.from(envelope.keyIdDigest).toString('hex'),
        copies: envelope.copies.map((copy) => ({
          instance: copy.instance,
          keyIdDigest: Buffer.from(copy.keyIdDigest).toString('hex'),
          keyRef: copy.keyRef,
        })),
      };
    }
    const envelope = decodeEnvelope(bytes);
    return {
      format: 'trousseau',
      envelopeVersion: envelope.version,
      copies: [
        {
          instance: envelope.instance,
          keyIdDigest: Buffer.from(envelope.keyIdDigest).toString('hex'),
          keyRef: envelope.keyRef,
        },
      ],
    };
  } catch (error) {
    return {
      format: 'trousseau-unreadable',
      problem: isTrousseauError(error) ? error.message : String(error),
    };
  }
}

/** The offset of the first colon at or after `from`; -1 when there is none. */
function colonAt(bytes: Buffer, from: number): number {
  return bytes.indexOf(COLON, from);
}

/** Classifies one stored value by its prefix and, for KMS, reads the plugin's ciphertext header. */
export function classifyStoredValue(value: Uint8Array): StoredValue {
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (!bytes.subarray(0, ENC_PREFIX.length).equals(ENC_PREFIX)) return { kind: 'identity' };
  // k8s:enc:<type>:<version>:<name>:<body>
  const typeEnd = colonAt(bytes, ENC_PREFIX.length);
  const versionEnd = typeEnd < 0 ? -1 : colonAt(bytes, typeEnd + 1);
  const nameEnd = versionEnd < 0 ? -1 : colonAt(bytes, versionEnd + 1);
  if (nameEnd < 0) {
    return { kind: 'unknown', name: bytes.subarray(0, 64).toString('latin1'), problem: 'truncated prefix' };
  }
  const typeAndVersion = bytes.subarray(ENC_PREFIX.length, versionEnd).toString('latin1');
  const name = bytes.subarray(versionEnd + 1, nameEnd).toString('utf8');
  const kind = VERSIONED_KINDS[typeAndVersion];
  if (kind === undefined) return { kind: 'unknown', name: bytes.subarray(0, nameEnd + 1).toString('latin1') };
  const body = bytes.subarray(nameEnd + 1);
  if (kind === 'kms-v1') {
    // A 2-byte big-endian length, the plugin's ciphertext of the DEK, then the data.
    if (body.length < 2) return { kind, name, problem: 'no DEK length' };
    const length = body.readUInt16BE(0);
    if (length === 0 || body.length < 2 + length) {
      return { kind, name, problem: `DEK ciphertext of ${length} bytes does not fit the value` };
    }
    return { kind, name, plugin: readPluginCiphertext(body.subarray(2, 2 + length)) };
  }
  if (kind === 'kms-v2') {
    try {
      const object = decodeEncryptedObject(body);
      return {
        kind,
        name,
        kmsKeyId: object.keyId,
        dekSourceType: object.dekSourceType,
        plugin: readPluginCiphertext(object.encryptedDekSource),
      };
    } catch (error) {
      return {
        kind,
        name,
        problem: `not a KMS v2 EncryptedObject: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  }
  return { kind, name };
}
