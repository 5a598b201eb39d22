import {
  constants,
  generateKeyPair,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';

const generateRsa = promisify(generateKeyPair);

/** RSA key sizes Key Vault creates. */
export type RsaKeySize = 2048 | 3072 | 4096;
export const RSA_KEY_SIZES: readonly RsaKeySize[] = [2048, 3072, 4096];

/** What a key created with only `{"kty":"RSA"}` may do (as the recordings show). */
const DEFAULT_RSA_KEY_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'] as const;

/** The key-wrapping algorithms the emulator implements (the RSA-OAEP family Key Vault offers). */
export type WrapAlgorithm = 'RSA-OAEP' | 'RSA-OAEP-256';
export const WRAP_ALGORITHMS: readonly WrapAlgorithm[] = ['RSA-OAEP', 'RSA-OAEP-256'];

/** One version of a key: its material and attributes. */
export interface KeyVersion {
  readonly name: string;
  /** 32 lowercase hex characters, as Key Vault makes them. */
  readonly version: string;
  readonly kty: 'RSA' | 'RSA-HSM';
  readonly size: RsaKeySize;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  keyOps: string[];
  enabled: boolean;
  nbf?: number;
  exp?: number;
  readonly created: number;
  updated: number;
}

export interface DeletedKey {
  readonly name: string;
  readonly versions: KeyVersion[];
  readonly deletedDate: number;
  readonly scheduledPurgeDate: number;
}

/** The soft-delete retention the 7.2 recordings show (`recoverableDays: 7`). */
export const RECOVERABLE_DAYS = 7;
export const RECOVERY_LEVEL = 'CustomizedRecoverable+Purgeable';

function newVersionId(): string {
  return randomBytes(16).toString('hex');
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The keys of one vault: versions in creation order, the last one being "latest". */
export class KeyStore {
  readonly #keys = new Map<string, KeyVersion[]>();
  readonly #deleted = new Map<string, DeletedKey>();

  async create(
    name: string,
    options: {
      size?: RsaKeySize;
      kty?: 'RSA' | 'RSA-HSM';
      keyOps?: readonly string[];
      enabled?: boolean;
      nbf?: number;
      exp?: number;
    } = {},
  ): Promise<KeyVersion> {
    const size = options.size ?? 2048;
    const { publicKey, privateKey } = await generateRsa('rsa', {
      modulusLength: size,
      publicExponent: 0x10001,
    });
    const now = nowSeconds();
    const entry: KeyVersion = {
      name,
      version: newVersionId(),
      kty: options.kty ?? 'RSA',
      size,
      publicKey,
      privateKey,
      keyOps: [...(options.keyOps ?? DEFAULT_RSA_KEY_OPS)],
      enabled: options.enabled ?? true,
      ...(options.nbf === undefined ? {} : { nbf: options.nbf }),
      ...(options.exp === undefined ? {} : { exp: options.exp }),
      created: now,
      updated: now,
    };
    const versions = this.#keys.get(name) ?? [];
    versions.push(entry);
    this.#keys.set(name, versions);
    return entry;
  }

  /** A new version with the same type, size and operations as the latest one. */
  async rotate(name: string): Promise<KeyVersion | undefined> {
    const latest = this.latest(name);
    if (latest === undefined) return undefined;
    return this.create(name, { size: latest.size, kty: latest.kty, keyOps: latest.keyOps });
  }

  has(name: string): boolean {
    return this.#keys.has(name);
  }

  latest(name: string): KeyVersion | undefined {
    const versions = this.#keys.get(name);
    return versions?.[versions.length - 1];
  }

  /** The named version, or the latest one for an empty version. */
  get(name: string, version: string): KeyVersion | undefined {
    if (version === '') return this.latest(name);
    return this.#keys.get(name)?.find((entry) => entry.version === version);
  }

  delete(name: string): DeletedKey | undefined {
    const versions = this.#keys.get(name);
    if (versions === undefined) return undefined;
    this.#keys.delete(name);
    const deletedDate = nowSeconds();
    const deleted: DeletedKey = {
      name,
      versions,
      deletedDate,
      scheduledPurgeDate: deletedDate + RECOVERABLE_DAYS * 86_400,
    };
    this.#deleted.set(name, deleted);
    return deleted;
  }

  getDeleted(name: string): DeletedKey | undefined {
    return this.#deleted.get(name);
  }

  purge(name: string): boolean {
    return this.#deleted.delete(name);
  }
}

/** OAEP hash of each algorithm. */
function oaepHash(algorithm: WrapAlgorithm): 'sha1' | 'sha256' {
  return algorithm === 'RSA-OAEP' ? 'sha1' : 'sha256';
}

/** The largest value RSA-OAEP with this key size and algorithm takes: k - 2 hLen - 2. */
export function maxWrapBytes(size: number, algorithm: WrapAlgorithm): number {
  const hashBytes = algorithm === 'RSA-OAEP' ? 20 : 32;
  return size / 8 - 2 * hashBytes - 2;
}

export function wrap(entry: KeyVersion, algorithm: WrapAlgorithm, value: Buffer): Buffer {
  return publicEncrypt(
    { key: entry.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepHash(algorithm) },
    value,
  );
}

/** Throws when the value is not an OAEP ciphertext of this key. */
export function unwrap(entry: KeyVersion, algorithm: WrapAlgorithm, value: Buffer): Buffer {
  if (value.length !== entry.size / 8) throw new Error('ciphertext length does not match the key size');
  return privateDecrypt(
    { key: entry.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepHash(algorithm) },
    value,
  );
}
