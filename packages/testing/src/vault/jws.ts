// Compact JWS (`header.payload.signature`) as Vault's auth plugins read it: split, decoded, and the
// signature checked against a public key for the RS*, PS* and ES* algorithms.
import { constants, verify, type KeyObject } from 'node:crypto';

interface CompactJws {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
  readonly signingInput: string;
  readonly signature: Buffer;
}

function decodeObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The parts of a compact JWS, or the reason it is not one, in go-jose's words where Vault shows them
 * (`square/go-jose: compact JWS format must have three parts`).
 */
export function parseCompactJws(jwt: string): CompactJws | { readonly error: string } {
  const parts = jwt.split('.');
  if (parts.length !== 3) return { error: 'square/go-jose: compact JWS format must have three parts' };
  const [headerPart = '', payloadPart = '', signaturePart = ''] = parts;
  const header = decodeObject(headerPart);
  const claims = decodeObject(payloadPart);
  if (header === undefined || claims === undefined) {
    return { error: 'square/go-jose: error in cryptographic primitive' };
  }
  return {
    header,
    claims,
    signingInput: `${headerPart}.${payloadPart}`,
    signature: Buffer.from(signaturePart, 'base64url'),
  };
}

/** The claims of a compact JWS without checking its signature, or undefined when it is not one. */
export function decodeJwtClaims(jwt: string): Record<string, unknown> | undefined {
  const parsed = parseCompactJws(jwt);
  return 'error' in parsed ? undefined : parsed.claims;
}

const DIGESTS: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/** Whether the JWS was signed by the private half of `key`, with the algorithm its header names. */
export function verifyJws(jws: CompactJws, key: KeyObject): boolean {
  const alg = typeof jws.header.alg === 'string' ? jws.header.alg : '';
  const match = /^(RS|PS|ES)(256|384|512)$/.exec(alg);
  const digest = DIGESTS[match?.[2] ?? ''];
  if (match === null || digest === undefined) return false;
  const family = match[1];
  const type = key.asymmetricKeyType;
  if ((family === 'ES') !== (type === 'ec') || (family !== 'ES' && type !== 'rsa')) return false;
  const data = Buffer.from(jws.signingInput, 'utf8');
  try {
    if (family === 'ES') return verify(digest, data, { key, dsaEncoding: 'ieee-p1363' }, jws.signature);
    if (family === 'PS') {
      const options = {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      };
      return verify(digest, data, options, jws.signature);
    }
    return verify(digest, data, key, jws.signature);
  } catch {
    return false;
  }
}
