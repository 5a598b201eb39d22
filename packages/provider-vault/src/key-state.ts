import { keyIdDigest, TrousseauError } from '@trousseau/core';
import { asRecord } from './record.js';

/** What the provider knows of the transit key, from `GET <mount>/keys/<name>`. */
export interface KeyState {
  readonly latestVersion: number;
  /** Creation time of the latest version, as Vault reports it. */
  readonly latestCreatedAt: string;
  /** Creation time of every version the read listed, by version number. */
  readonly createdAt: ReadonlyMap<number, string>;
  readonly minDecryptionVersion: number;
  readonly supportsEncryption: boolean;
  readonly supportsDecryption: boolean;
  readonly type: string;
  /** The key id reported to the apiserver for this state. */
  readonly keyId: string;
}

/** What identifies the key across Vault servers and mounts. */
export interface KeyIdentity {
  readonly address: string;
  readonly namespace: string | undefined;
  readonly mount: string;
  readonly keyName: string;
}

/**
 * `vault:<mount>/<key>:v<N>:<digest>`: readable, bounded (mount and key names are limited to 128
 * characters), and changed by a rotation (N) and by a re-created key (the version's creation time is in
 * the digest, with the address and namespace), so it never repeats for another key state.
 */
export function vaultKeyId(identity: KeyIdentity, version: number, createdAt: string): string {
  const digest = keyIdDigest([
    identity.address,
    identity.namespace ?? '',
    identity.mount,
    identity.keyName,
    String(version),
    createdAt,
  ]);
  return `vault:${identity.mount}/${identity.keyName}:v${version}:${digest}`;
}

/** A version's creation time: unix seconds for AES keys, `{creation_time}` for asymmetric ones. */
function creationTimeOf(value: unknown): string | undefined {
  if (typeof value === 'number' || typeof value === 'string') return String(value);
  const time = asRecord(value)?.creation_time;
  return typeof time === 'string' || typeof time === 'number' ? String(time) : undefined;
}

/** Parses the answer of a key read. */
export function parseKeyRead(body: unknown, identity: KeyIdentity): KeyState {
  const data = asRecord(asRecord(body)?.data);
  const latest = data?.latest_version;
  const keys = asRecord(data?.keys);
  const bad = (what: string): TrousseauError =>
    new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_INTERNAL',
      `vault key read of ${identity.mount}/keys/${identity.keyName} is malformed: ${what}`,
    );
  if (typeof latest !== 'number' || !Number.isInteger(latest) || latest < 1) throw bad('no latest_version');
  if (keys === undefined) throw bad('no keys');
  const createdAt = creationTimeOf(keys[String(latest)]);
  if (createdAt === undefined) throw bad(`no creation time for version ${latest}`);
  const minDecryption = data?.min_decryption_version;
  const times = new Map<number, string>();
  for (const [version, value] of Object.entries(keys)) {
    const time = creationTimeOf(value);
    if (/^[1-9][0-9]*$/.test(version) && time !== undefined) times.set(Number(version), time);
  }
  return {
    latestVersion: latest,
    latestCreatedAt: createdAt,
    createdAt: times,
    minDecryptionVersion: typeof minDecryption === 'number' ? minDecryption : 1,
    supportsEncryption: data?.supports_encryption !== false,
    supportsDecryption: data?.supports_decryption !== false,
    type: typeof data?.type === 'string' ? data.type : 'unknown',
    keyId: vaultKeyId(identity, latest, createdAt),
  };
}

/** A creation time as epoch ms: unix seconds (AES keys) or an RFC 3339 time; NaN when neither. */
function timeMs(value: string): number {
  return /^[0-9]+(\.[0-9]+)?$/.test(value) ? Number(value) * 1000 : Date.parse(value);
}

/**
 * Whether `read` is another key than `known` under the same name (deleted and re-created) rather than
 * an older view of the same key: a version both list was created at another time or, with no version
 * in common, its latest version is younger than the known latest one (an older view cannot be).
 */
export function isRecreated(known: KeyState, read: KeyState): boolean {
  let common = false;
  for (const [version, time] of read.createdAt) {
    const before = known.createdAt.get(version);
    if (before === undefined) continue;
    if (before !== time) return true;
    common = true;
  }
  return !common && timeMs(read.latestCreatedAt) > timeMs(known.latestCreatedAt);
}

const CIPHERTEXT_PATTERN = /^vault:v([1-9][0-9]{0,9}):([A-Za-z0-9+/]+={0,2})$/;

/** The key version a Vault ciphertext names (`vault:v3:...` -> 3), or undefined when it is not one. */
export function ciphertextVersion(ciphertext: string): number | undefined {
  const match = CIPHERTEXT_PATTERN.exec(ciphertext);
  if (match === null) return undefined;
  const body = match[2] ?? '';
  if (body.length % 4 !== 0) return undefined;
  return Number(match[1]);
}
