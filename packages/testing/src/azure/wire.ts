import type { DeletedKey, KeyVersion } from './key-store.js';
import { RECOVERABLE_DAYS, RECOVERY_LEVEL } from './key-store.js';

/** Key Vault answers every JSON body with this content type (recordings). */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** The resource Key Vault names in its bearer challenge. */
export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';

/** `WWW-Authenticate` of a 401, exactly as the service sends it. */
export function challengeHeader(tenantId: string): string {
  return `Bearer authorization="https://login.windows.net/${tenantId}", resource="${KEY_VAULT_RESOURCE}"`;
}

/** The 401 body for a request without a token (service 1.9+ prefixes `AKV10000: `). */
export const MISSING_TOKEN_MESSAGE = 'AKV10000: Request is missing a Bearer or PoP token.';

interface KeyVaultErrorBody {
  error: { code: string; message: string; innererror?: { code: string } };
}

export function errorBody(code: string, message: string, innerCode?: string): KeyVaultErrorBody {
  return {
    error: innerCode === undefined ? { code, message } : { code, message, innererror: { code: innerCode } },
  };
}

export function keyNotFoundMessage(nameOrId: string): string {
  return `A key with (name/id) ${nameOrId} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`;
}

export function kidOf(vaultUrl: string, entry: KeyVersion): string {
  return `${vaultUrl}/keys/${entry.name}/${entry.version}`;
}

/** The attributes block, fields in the service's order: enabled, nbf, exp, created, updated, recovery. */
function attributesOf(entry: KeyVersion): Record<string, unknown> {
  return {
    enabled: entry.enabled,
    ...(entry.nbf === undefined ? {} : { nbf: entry.nbf }),
    ...(entry.exp === undefined ? {} : { exp: entry.exp }),
    created: entry.created,
    updated: entry.updated,
    recoveryLevel: RECOVERY_LEVEL,
    recoverableDays: RECOVERABLE_DAYS,
  };
}

/** `{key: JWK (public part only), attributes}` for a key version. */
export function keyBundle(vaultUrl: string, entry: KeyVersion): Record<string, unknown> {
  const jwk = entry.publicKey.export({ format: 'jwk' });
  return {
    key: { kid: kidOf(vaultUrl, entry), kty: entry.kty, key_ops: entry.keyOps, n: jwk.n, e: jwk.e },
    attributes: attributesOf(entry),
  };
}

export function deletedKeyBundle(vaultUrl: string, deleted: DeletedKey): Record<string, unknown> {
  const latest = deleted.versions[deleted.versions.length - 1];
  const bundle = latest === undefined ? {} : keyBundle(vaultUrl, latest);
  return {
    recoveryId: `${vaultUrl}/deletedkeys/${deleted.name}`,
    deletedDate: deleted.deletedDate,
    scheduledPurgeDate: deleted.scheduledPurgeDate,
    ...bundle,
  };
}

/** base64url without padding, as Key Vault writes binary values. */
export function toBase64Url(value: Buffer): string {
  return value.toString('base64url');
}

/** Strict base64url decoding (no padding, no other alphabet); undefined when the text is not base64url. */
export function fromBase64Url(text: unknown): Buffer | undefined {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64url');
}
