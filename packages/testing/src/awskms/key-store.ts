import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { KmsError } from './kms-error.js';

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

/**
 * Where a key's material lives. `AWS_KMS` keys rotate (automatically or on demand) and report their current
 * key material id; `AWS_CLOUDHSM` keys (in a CloudHSM custom key store) do neither, as in AWS.
 */
export type KeyOrigin = 'AWS_KMS' | 'AWS_CLOUDHSM';

/** One generation of backing key material and the id AWS gives it (64 lowercase hex characters). */
export interface KeyMaterial {
  readonly id: string;
  readonly key: Buffer;
}

/** One KMS key: metadata and every generation of backing key material (rotation keeps the ARN). */
export interface KeyRecord {
  readonly keyId: string;
  readonly arn: string;
  readonly description: string;
  readonly createdAt: number;
  readonly origin: KeyOrigin;
  /** Set for AWS_CLOUDHSM keys: the custom key store (`cks-` and 17 hex characters) and its cluster. */
  readonly customKeyStoreId: string | undefined;
  readonly cloudHsmClusterId: string | undefined;
  state: KeyState;
  deletionDate: number | undefined;
  pendingWindowInDays: number | undefined;
  /** Backing key material, oldest first; new encryptions use the last one (the current key material). */
  readonly materials: KeyMaterial[];
}

/** The JSON `KeyMetadata` of DescribeKey/CreateKey, as AWS answers it (dates in epoch seconds). */
export interface KeyMetadataJson {
  AWSAccountId: string;
  KeyId: string;
  Arn: string;
  CreationDate: number;
  Enabled: boolean;
  Description: string;
  KeyUsage: 'ENCRYPT_DECRYPT';
  KeyState: KeyState;
  DeletionDate?: number;
  PendingDeletionWindowInDays?: number;
  Origin: KeyOrigin;
  CustomKeyStoreId?: string;
  CloudHsmClusterId?: string;
  KeyManager: 'CUSTOMER';
  CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT';
  KeySpec: 'SYMMETRIC_DEFAULT';
  EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'];
  MultiRegion: false;
  /**
   * The current key material's id (64 lowercase hex characters, new at every rotation). AWS returns it for
   * symmetric encryption keys of origin AWS_KMS (and single-Region EXTERNAL), never for custom key stores.
   */
  CurrentKeyMaterialId?: string;
}

/*
 * Ciphertext blob layout (the emulator's own; real AWS blobs are opaque too):
 *   0x01 | key uuid (16 bytes) | material generation (uint32 BE) | nonce (12) | AES-256-GCM body | tag (16)
 * The associated data is the header plus the key ARN and the canonical encryption context, so a blob
 * opened under another key, another context, or with any bit flipped fails authentication.
 */
const BLOB_VERSION = 0x01;
const HEADER_BYTES = 1 + 16 + 4;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type EncryptionContext = Readonly<Record<string, string>>;

function canonicalContext(context: EncryptionContext | undefined): string {
  const entries = Object.entries(context ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(entries);
}

/** New key material with its id: AWS key material ids are 64 lowercase hex characters (`^[a-f0-9]+$`). */
function newMaterial(): KeyMaterial {
  return { id: randomBytes(32).toString('hex'), key: randomBytes(32) };
}

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

function uuidFromBytes(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Keys and aliases of one emulated account and region. */
export class KeyStore {
  readonly #keys = new Map<string, KeyRecord>();
  /** `alias/name` -> key uuid. */
  readonly #aliases = new Map<string, string>();

  constructor(
    readonly region: string,
    readonly accountId: string,
  ) {}

  #arnPrefix(): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:`;
  }

  createKey(options: { description?: string; origin?: KeyOrigin } = {}): KeyRecord {
    const keyId = randomUUID();
    const origin = options.origin ?? 'AWS_KMS';
    const hsm = origin === 'AWS_CLOUDHSM';
    const record: KeyRecord = {
      keyId,
      arn: `${this.#arnPrefix()}key/${keyId}`,
      description: options.description ?? '',
      createdAt: Date.now(),
      origin,
      customKeyStoreId: hsm ? `cks-${randomBytes(9).toString('hex').slice(0, 17)}` : undefined,
      cloudHsmClusterId: hsm ? `cluster-${randomBytes(6).toString('hex').slice(0, 11)}` : undefined,
      state: 'Enabled',
      deletionDate: undefined,
      pendingWindowInDays: undefined,
      materials: [newMaterial()],
    };
    this.#keys.set(keyId, record);
    return record;
  }

  /** Finds a key by id, key ARN, `alias/name` or alias ARN; NotFoundException as AWS words it. */
  resolve(identifier: string): KeyRecord {
    if (identifier === '') throw new KmsError('ValidationException', 'KeyId must not be empty');
    const prefix = this.#arnPrefix();
    let reference = identifier;
    if (identifier.startsWith('arn:')) {
      if (!identifier.startsWith(prefix)) {
        if (!/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/.+$/.test(identifier)) {
          throw new KmsError('NotFoundException', `Invalid arn ${identifier}`);
        }
        throw new KmsError('NotFoundException', `Key '${identifier}' does not exist`);
      }
      reference = identifier.slice(prefix.length);
      if (reference.startsWith('key/')) reference = reference.slice('key/'.length);
    }
    if (reference.startsWith('alias/')) {
      const target = this.#aliases.get(reference);
      const record = target === undefined ? undefined : this.#keys.get(target);
      if (record === undefined) {
        throw new KmsError('NotFoundException', `Alias ${prefix}${reference} is not found.`);
      }
      return record;
    }
    const record = this.#keys.get(reference);
    if (record === undefined) {
      if (!UUID_PATTERN.test(reference)) {
        throw new KmsError('NotFoundException', `Invalid keyId '${identifier}'`);
      }
      throw new KmsError('NotFoundException', `Key '${prefix}key/${reference}' does not exist`);
    }
    return record;
  }

  #checkAliasName(alias: string): void {
    if (!/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(alias)) {
      throw new KmsError(
        'ValidationException',
        `1 validation error detected: Value '${alias}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$`,
      );
    }
    if (alias.startsWith('alias/aws/')) {
      throw new KmsError('NotAuthorizedException', 'Cannot create alias with prefix alias/aws/');
    }
  }

  createAlias(alias: string, target: string): void {
    this.#checkAliasName(alias);
    if (this.#aliases.has(alias)) {
      throw new KmsError(
        'AlreadyExistsException',
        `An alias with the name ${this.#arnPrefix()}${alias} already exists`,
      );
    }
    const record = this.#targetKey(target);
    this.#aliases.set(alias, record.keyId);
  }

  updateAlias(alias: string, target: string): void {
    this.#checkAliasName(alias);
    if (!this.#aliases.has(alias)) {
      throw new KmsError('NotFoundException', `Alias ${this.#arnPrefix()}${alias} is not found.`);
    }
    this.#aliases.set(alias, this.#targetKey(target).keyId);
  }

  deleteAlias(alias: string): void {
    if (!this.#aliases.delete(alias)) {
      throw new KmsError('NotFoundException', `Alias ${this.#arnPrefix()}${alias} is not found.`);
    }
  }

  /** An alias target must be a key id or key ARN, not another alias. */
  #targetKey(target: string): KeyRecord {
    if (target.startsWith('alias/') || target.includes(':alias/')) {
      throw new KmsError('ValidationException', 'Aliases must refer to keys. Not aliases');
    }
    const record = this.resolve(target);
    if (record.state === 'PendingDeletion') throw pendingDeletion(record);
    return record;
  }

  enableKey(identifier: string): KeyRecord {
    const record = this.resolve(identifier);
    if (record.state === 'PendingDeletion') throw pendingDeletion(record);
    record.state = 'Enabled';
    return record;
  }

  disableKey(identifier: string): KeyRecord {
    const record = this.resolve(identifier);
    if (record.state === 'PendingDeletion') throw pendingDeletion(record);
    record.state = 'Disabled';
    return record;
  }

  scheduleKeyDeletion(identifier: string, pendingWindowInDays = 30): KeyRecord {
    if (!Number.isInteger(pendingWindowInDays) || pendingWindowInDays < 7 || pendingWindowInDays > 30) {
      throw new KmsError(
        'ValidationException',
        `1 validation error detected: Value '${pendingWindowInDays}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30`,
      );
    }
    const record = this.resolve(identifier);
    if (record.state === 'PendingDeletion') throw pendingDeletion(record);
    record.state = 'PendingDeletion';
    record.pendingWindowInDays = pendingWindowInDays;
    record.deletionDate = Date.now() + pendingWindowInDays * 86_400_000;
    return record;
  }

  /** Cancelling a deletion leaves the key Disabled, as in AWS. */
  cancelKeyDeletion(identifier: string): KeyRecord {
    const record = this.resolve(identifier);
    if (record.state !== 'PendingDeletion') {
      throw new KmsError('KMSInvalidStateException', `${record.arn} is not pending deletion.`);
    }
    record.state = 'Disabled';
    record.deletionDate = undefined;
    record.pendingWindowInDays = undefined;
    return record;
  }

  /**
   * New backing key material (with a new key material id) under the same ARN; older blobs still open.
   * Keys in a custom key store cannot rotate (UnsupportedOperationException, as AWS answers).
   */
  rotateKeyMaterial(identifier: string): KeyRecord {
    const record = this.resolve(identifier);
    if (record.state !== 'Enabled') throw stateError(record);
    if (record.origin !== 'AWS_KMS') {
      throw new KmsError(
        'UnsupportedOperationException',
        `${record.arn} origin is ${record.origin} which is not valid for this operation.`,
      );
    }
    record.materials.push(newMaterial());
    return record;
  }

  /** The current key material's id, or undefined where AWS reports none (custom key stores). */
  currentMaterialId(record: KeyRecord): string | undefined {
    return record.origin === 'AWS_KMS' ? record.materials.at(-1)?.id : undefined;
  }

  metadata(record: KeyRecord): KeyMetadataJson {
    const currentKeyMaterialId = this.currentMaterialId(record);
    return {
      AWSAccountId: this.accountId,
      KeyId: record.keyId,
      Arn: record.arn,
      CreationDate: record.createdAt / 1000,
      Enabled: record.state === 'Enabled',
      Description: record.description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: record.state,
      ...(record.deletionDate === undefined ? {} : { DeletionDate: record.deletionDate / 1000 }),
      ...(record.pendingWindowInDays === undefined
        ? {}
        : { PendingDeletionWindowInDays: record.pendingWindowInDays }),
      Origin: record.origin,
      ...(record.customKeyStoreId === undefined ? {} : { CustomKeyStoreId: record.customKeyStoreId }),
      ...(record.cloudHsmClusterId === undefined ? {} : { CloudHsmClusterId: record.cloudHsmClusterId }),
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      KeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
      ...(currentKeyMaterialId === undefined ? {} : { CurrentKeyMaterialId: currentKeyMaterialId }),
    };
  }

  /** Encrypts under the key's newest material; the key must be Enabled. */
  encrypt(record: KeyRecord, plaintext: Buffer, context: EncryptionContext | undefined): Buffer {
    if (record.state !== 'Enabled') throw stateError(record);
    const generation = record.materials.length - 1;
    const material = record.materials[generation];
    if (material === undefined) throw new KmsError('KMSInternalException', 'key has no material', 500);
    const header = Buffer.alloc(HEADER_BYTES);
    header[0] = BLOB_VERSION;
    uuidBytes(record.keyId).copy(header, 1);
    header.writeUInt32BE(generation, 17);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', material.key, nonce);
    cipher.setAAD(associatedData(header, record.arn, context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([header, nonce, body, cipher.getAuthTag()]);
  }

  /**
   * Opens a blob. Its key comes from the blob; when the caller names a key too, it must be the same one
   * (IncorrectKeyException). A blob that is malformed, tampered, or opened with another encryption
   * context is InvalidCiphertextException, as in AWS.
   */
  decrypt(
    blob: Buffer,
    context: EncryptionContext | undefined,
    requestedKey: string | undefined,
  ): { record: KeyRecord; plaintext: Buffer; materialId: string | undefined } {
    const requested = requestedKey === undefined ? undefined : this.resolve(requestedKey);
    if (blob.length < HEADER_BYTES + NONCE_BYTES + TAG_BYTES + 1 || blob[0] !== BLOB_VERSION) {
      throw new KmsError('InvalidCiphertextException', 'The ciphertext is invalid.');
    }
    const record = this.#keys.get(uuidFromBytes(blob.subarray(1, 17)));
    if (record === undefined) throw new KmsError('InvalidCiphertextException', 'The ciphertext is invalid.');
    if (requested !== undefined && requested.keyId !== record.keyId) {
      throw new KmsError(
        'IncorrectKeyException',
        'The key ID in the request does not identify a KMS key that can perform this operation.',
      );
    }
    if (record.state !== 'Enabled') throw stateError(record);
    const material = record.materials[blob.readUInt32BE(17)];
    if (material === undefined)
      throw new KmsError('InvalidCiphertextException', 'The ciphertext is invalid.');
    const header = blob.subarray(0, HEADER_BYTES);
    const nonce = blob.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', material.key, nonce);
    decipher.setAAD(associatedData(header, record.arn, context));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    try {
      const plaintext = Buffer.concat([
        decipher.update(blob.subarray(HEADER_BYTES + NONCE_BYTES, blob.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return { record, plaintext, materialId: record.origin === 'AWS_KMS' ? material.id : undefined };
    } catch {
      throw new KmsError('InvalidCiphertextException', 'The ciphertext is invalid.');
    }
  }
}

function associatedData(header: Buffer, arn: string, context: EncryptionContext | undefined): Buffer {
  return Buffer.concat([header, Buffer.from(`\n${arn}\n${canonicalContext(context)}`, 'utf8')]);
}

function pendingDeletion(record: KeyRecord): KmsError {
  return new KmsError('KMSInvalidStateException', `${record.arn} is pending deletion.`);
}

/** What AWS answers for a cryptographic call on a key that is not Enabled. */
function stateError(record: KeyRecord): KmsError {
  if (record.state === 'Disabled') return new KmsError('DisabledException', `${record.arn} is disabled.`);
  return pendingDeletion(record);
}
