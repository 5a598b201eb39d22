import { keyIdDigest } from '@trousseau/core';
import { AZURE_ALGORITHMS, KEY_NAME_PATTERN, KEY_VERSION_PATTERN, type AzureAlgorithm } from './options.js';

/** What the envelope's key reference says: the exact key version and algorithm that wrapped the data key. */
export interface AzureKeyRef {
  readonly keyName: string;
  readonly version: string;
  readonly algorithm: AzureAlgorithm;
}

/** `<keyName>/<version>/<algorithm>`, at most 127 + 64 + 12 + 2 bytes (the envelope allows 255). */
export function encodeKeyRef(ref: AzureKeyRef): string {
  return `${ref.keyName}/${ref.version}/${ref.algorithm}`;
}

export function parseKeyRef(text: string): AzureKeyRef | undefined {
  const [keyName = '', version = '', algorithm = '', ...rest] = text.split('/');
  if (rest.length > 0 || !KEY_NAME_PATTERN.test(keyName) || !KEY_VERSION_PATTERN.test(version))
    return undefined;
  if (!(AZURE_ALGORITHMS as readonly string[]).includes(algorithm)) return undefined;
  return { keyName, version, algorithm: algorithm as AzureAlgorithm };
}

/**
 * The key id reported to kube-apiserver: readable (vault host, key name, version) plus a digest that also
 * covers the full vault URL and the algorithm, so any change of what new data keys are wrapped with gives
 * a new id. At most ~470 bytes (a host is at most 253 + port, a key name 127, a version 64): under 1024.
 */
export function azureKeyId(
  vaultUrl: string,
  keyName: string,
  version: string,
  algorithm: AzureAlgorithm,
): string {
  const host = new URL(vaultUrl).host;
  return `azure:${host}/${keyName}/${version}:${keyIdDigest([vaultUrl, keyName, version, algorithm])}`;
}

/** The largest value RSA-OAEP wraps with a key of `bits`: k - 2 hLen - 2 (190 bytes for 2048-bit SHA-256). */
export function maxPlaintextBytes(bits: number, algorithm: AzureAlgorithm): number {
  const hashBytes = algorithm === 'RSA-OAEP' ? 20 : 32;
  return Math.floor(bits / 8) - 2 * hashBytes - 2;
}
