import { createHash } from 'node:crypto';

/** kube-apiserver refuses a key_id longer than this (bytes). */
export const MAX_KEY_ID_BYTES = 1024;

/**
 * A short, stable digest of the parts that identify a key state, for building key ids: the same parts
 * always give the same digest, any change gives another. 16 hex characters (64 bits).
 */
export function keyIdDigest(parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) {
    hash.update(String(Buffer.byteLength(part)));
    hash.update(':');
    hash.update(part);
  }
  return hash.digest('hex').slice(0, 16);
}

/** Whether a key id is acceptable to kube-apiserver: non-empty and at most 1024 bytes. */
export function isValidKeyId(keyId: string): boolean {
  const length = Buffer.byteLength(keyId);
  return length > 0 && length <= MAX_KEY_ID_BYTES;
}
