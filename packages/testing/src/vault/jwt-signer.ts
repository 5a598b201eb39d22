// A stand-in for whoever issues the workload's JWT (a cluster's service-account issuer, a CI system's
// OIDC provider): an RSA key pair whose public half Vault's JWT method is configured with
// (`jwt_validation_pubkeys`), signing RS256 tokens with the claims a test chooses.
import { generateKeyPair, sign } from 'node:crypto';
import { promisify } from 'node:util';

const generate = promisify(generateKeyPair);

export interface JwtSigner {
  /** PEM (SPKI) of the public key, for `jwt_validation_pubkeys`. */
  readonly publicKeyPem: string;
  /** A compact RS256 JWS of `claims` (header `{alg: RS256, typ: JWT}` plus `header`). */
  sign(claims: Record<string, unknown>, header?: Record<string, unknown>): string;
}

function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** A fresh RSA 2048 key pair and a signer over it. */
export async function createJwtSigner(): Promise<JwtSigner> {
  const { publicKey, privateKey } = await generate('rsa', { modulusLength: 2048 });
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    sign(claims, header = {}) {
      const unsigned = `${encode({ alg: 'RS256', typ: 'JWT', ...header })}.${encode(claims)}`;
      const signature = sign('sha256', Buffer.from(unsigned, 'utf8'), privateKey).toString('base64url');
      return `${unsigned}.${signature}`;
    },
  };
}
