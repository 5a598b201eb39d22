// What the bench's bare servers answer, whatever serves them (grpc-js or node:http2 directly): the same
// AES-256-GCM work as Trousseau's local provider, and the fixed answers of a server that does no work.
// Imports nothing but node:crypto, so a server that loads it carries no gRPC library it does not use.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM with a key of its own and a fresh 96-bit nonce per Encrypt: nonce | ciphertext | tag out,
 * the reverse on Decrypt (which throws on a ciphertext that does not authenticate).
 */
export function aesGcm() {
  const key = randomBytes(32);
  return {
    keyId: 'bare:aes-256-gcm',
    encrypt(plaintext) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([nonce, body, cipher.getAuthTag()]);
    },
    decrypt(ciphertext) {
      const decipher = createDecipheriv('aes-256-gcm', key, ciphertext.subarray(0, 12));
      decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
      return Buffer.concat([
        decipher.update(ciphertext.subarray(12, ciphertext.length - 16)),
        decipher.final(),
      ]);
    },
  };
}

/** The answers of a server that does no work: the same bytes for every call. */
export const FIXED_ANSWERS = {
  keyId: 'bare:grpc-leg',
  ciphertext: Buffer.alloc(60, 1),
  plaintext: Buffer.alloc(32, 2),
};
