// Transit keys: aes256-gcm96 key rings with Vault's real ciphertext layout
// `vault:v<N>:` + base64(12-byte nonce | AES-256-GCM ciphertext | 16-byte tag), and Vault's error texts.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { goBase64Decode, GoBase64Error } from './go-base64.js';

/** A Vault "user error": answered 400 (or as a per-item `error` in a batch). */
export class TransitUserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransitUserError';
  }
}

const ERR_TOO_OLD = 'ciphertext or signature version is disallowed by policy (too old)';
const PREFIX = 'vault:v';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

interface KeyVersion {
  readonly key: Buffer;
  /** Unix seconds, as Vault 1.4.3 reports for aes keys. */
  readonly createdAt: number;
}

export class TransitKey {
  readonly versions = new Map<number, KeyVersion>();
  latestVersion = 0;
  minDecryptionVersion = 1;
  minEncryptionVersion = 0;
  deletionAllowed = false;
  exportable = false;
  allowPlaintextBackup = false;
  /** Test hook: key reads show the key as of this version (a lagging standby); see `serveStaleKeyReads`. */
  staleReadVersion: number | undefined;

  constructor(
    readonly name: string,
    createdAtSeconds: number,
    readonly derived = false,
  ) {
    this.rotate(createdAtSeconds);
  }

  rotate(createdAtSeconds: number): number {
    this.latestVersion += 1;
    this.versions.set(this.latestVersion, { key: randomBytes(32), createdAt: createdAtSeconds });
    return this.latestVersion;
  }

  /**
   * `data` of `GET transit/keys/:name`: archived versions (below min_decryption_version) are not listed.
   * `asOfVersion` shows the key as it was when that version was the latest.
   */
  describe(asOfVersion = this.latestVersion): Record<string, unknown> {
    const latest = Math.min(asOfVersion, this.latestVersion);
    const keys: Record<string, number> = {};
    for (const [version, entry] of this.versions) {
      if (version >= this.minDecryptionVersion && version <= latest) keys[String(version)] = entry.createdAt;
    }
    const data: Record<string, unknown> = {
      allow_plaintext_backup: this.allowPlaintextBackup,
      deletion_allowed: this.deletionAllowed,
      derived: this.derived,
      exportable: this.exportable,
      keys,
      latest_version: latest,
      min_available_version: 0,
      min_decryption_version: this.minDecryptionVersion,
      min_encryption_version: this.minEncryptionVersion,
      name: this.name,
      supports_decryption: true,
      supports_derivation: true,
      supports_encryption: true,
      supports_signing: false,
      type: 'aes256-gcm96',
    };
    if (this.derived) {
      data.kdf = 'hkdf_sha256';
      data.convergent_encryption = false;
    }
    return data;
  }

  #material(version: number, context: Buffer | undefined): Buffer {
    const entry = this.versions.get(version);
    if (!entry) throw new TransitUserError('invalid key version');
    if (!this.derived) return entry.key;
    if (!context || context.length === 0) {
      throw new TransitUserError(
        "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key",
      );
    }
    return Buffer.from(hkdfSync('sha256', entry.key, Buffer.alloc(0), context, 32));
  }

  /** Encrypts base64 plaintext; `plaintextB64` is validated with Go's rules first. */
  encrypt(
    plaintextB64: string,
    context: Buffer | undefined,
    keyVersion = 0,
  ): { ciphertext: string; version: number } {
    let plaintext: Buffer;
    try {
      plaintext = goBase64Decode(plaintextB64);
    } catch (error) {
      if (error instanceof GoBase64Error) throw new TransitUserError(error.message);
      throw error;
    }
    let version = this.latestVersion;
    if (keyVersion > 0) {
      if (keyVersion > this.latestVersion) {
        throw new TransitUserError('requested version for encryption is higher than the latest key version');
      }
      if (keyVersion < this.minEncryptionVersion) {
        throw new TransitUserError(
          'requested version for encryption is less than the minimum encryption key version',
        );
      }
      version = keyVersion;
    } else if (this.minEncryptionVersion > 0 && this.minEncryptionVersion > version) {
      version = this.minEncryptionVersion;
    }
    const key = this.#material(version, context);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const blob = Buffer.concat([nonce, body, cipher.getAuthTag()]);
    return { ciphertext: `${PREFIX}${version}:${blob.toString('base64')}`, version };
  }

  /** Decrypts a `vault:vN:` ciphertext to base64 plaintext, with the checks in Vault's order. */
  decrypt(value: string, context: Buffer | undefined): string {
    if (!value.startsWith(PREFIX)) throw new TransitUserError('invalid ciphertext: no prefix');
    const rest = value.slice(PREFIX.length);
    const colon = rest.indexOf(':');
    if (colon < 0) throw new TransitUserError('invalid ciphertext: wrong number of fields');
    const versionText = rest.slice(0, colon);
    if (!/^[+-]?\d+$/.test(versionText)) {
      throw new TransitUserError('invalid ciphertext: version number could not be decoded');
    }
    let version = Number(versionText);
    if (version === 0) version = 1;
    if (version > this.latestVersion) throw new TransitUserError('invalid ciphertext: version is too new');
    if (this.minDecryptionVersion > 0 && version < this.minDecryptionVersion) {
      throw new TransitUserError(ERR_TOO_OLD);
    }
    let blob: Buffer;
    try {
      blob = goBase64Decode(rest.slice(colon + 1));
    } catch {
      throw new TransitUserError('invalid ciphertext: could not decode base64');
    }
    const key = this.#material(version, context);
    if (blob.length < NONCE_BYTES) throw new TransitUserError('invalid ciphertext length');
    const nonce = blob.subarray(0, NONCE_BYTES);
    const sealed = blob.subarray(NONCE_BYTES);
    if (sealed.length < TAG_BYTES) throw new TransitUserError('invalid ciphertext: unable to decrypt');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return plain.toString('base64');
    } catch {
      throw new TransitUserError('invalid ciphertext: unable to decrypt');
    }
  }
}

/** Parses an optional base64 `context` the way Vault does; errors are per item. */
export function decodeContext(raw: unknown): Buffer | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') throw new TransitUserError('failed to base64-decode context');
  try {
    return goBase64Decode(raw);
  } catch {
    throw new TransitUserError('failed to base64-decode context');
  }
}
