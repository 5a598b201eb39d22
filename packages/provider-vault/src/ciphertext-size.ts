/**
 * The longest Transit ciphertext for a plaintext of `plaintextBytes` bytes: `vault:v<version>:` then
 * base64 of nonce (12) | AES-256-GCM ciphertext | tag (16). Key versions are counted with up to 10 digits.
 */
export function maxTransitCiphertextBytes(plaintextBytes: number): number {
  const prefix = 'vault:v'.length + 10 + ':'.length;
  return prefix + 4 * Math.ceil((12 + plaintextBytes + 16) / 3);
}
