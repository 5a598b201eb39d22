import { TrousseauError } from '@trousseau/core';
import type { VaultRequestError } from './vault-http.js';

/** What the provider was doing, for error messages and the mapping of 4xx answers. */
export type VaultOperation = 'encrypt' | 'decrypt' | 'key read' | 'login' | 'token lookup' | 'token renewal';

/** Vault answers 503 `Vault is sealed` (or `error performing token check: Vault is sealed`). */
export function isSealed(error: VaultRequestError): boolean {
  return error.kind === 'http' && error.status === 503 && /sealed/i.test(error.vaultErrors.join(' '));
}

/** 5xx (except sealed: it will not unseal within a call's deadline) and 429 are worth another attempt. */
export function isRetryable(error: VaultRequestError): boolean {
  if (error.kind !== 'http' || error.status === undefined) return false;
  if (error.status === 429) return true;
  return error.status >= 500 && !isSealed(error);
}

/** A keep-alive socket the server closed between two requests: safe to resend once at once. */
export function isStaleConnection(error: VaultRequestError): boolean {
  return error.kind === 'network' && (error.errorCode === 'ECONNRESET' || error.errorCode === 'EPIPE');
}

export function isForbidden(error: VaultRequestError): boolean {
  return error.kind === 'http' && error.status === 403;
}

/** Vault's 400 for a request that carries no token. */
export function isMissingToken(error: VaultRequestError): boolean {
  return (
    error.kind === 'http' && error.status === 400 && /missing client token/i.test(error.vaultErrors.join(' '))
  );
}

/** Vault's answer when the ciphertext's key version is below the key's `min_decryption_version`. */
function isVersionTooOld(message: string): boolean {
  return /disallowed by policy \(too old\)/i.test(message);
}

/** Transit's answer when the key does not exist (deleted, or never made): the key is gone. */
function isKeyNotFound(message: string): boolean {
  return /encryption key not found/i.test(message);
}

function keyGone(keyPath: string, cause: Error): TrousseauError {
  return new TrousseauError('TROUSSEAU_ERR_PROVIDER_KEY_GONE', `key not found: ${keyPath}`, { cause });
}

/** A per-item (batch) or whole-request transit error string, for decrypt. */
export function decryptItemError(message: string, keyPath: string): TrousseauError {
  const cause = new Error(message);
  if (isKeyNotFound(message)) return keyGone(keyPath, cause);
  if (isVersionTooOld(message)) {
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_KEY_UNAVAILABLE',
      `ciphertext key version is below min_decryption_version of ${keyPath}: Vault refuses to decrypt it (${message})`,
      { cause },
    );
  }
  return new TrousseauError('TROUSSEAU_ERR_CIPHERTEXT_INVALID', `Vault rejected the ciphertext: ${message}`, {
    cause,
  });
}

/** A per-item (batch) or whole-request 400 on encrypt. */
export function encryptItemError(message: string, keyPath: string): TrousseauError {
  const cause = new Error(message);
  if (isKeyNotFound(message)) return keyGone(keyPath, cause);
  return new TrousseauError('TROUSSEAU_ERR_PROVIDER_INTERNAL', `Vault refused to encrypt: ${message}`, {
    cause,
  });
}

/**
 * The TrousseauError for a failed Vault request. `path` is the Vault path asked (`transit/encrypt/k8s`),
 * used in messages such as "permission denied on transit/encrypt/k8s". 403 is mapped to permission
 * denied here; deciding whether it means a dead token is the token manager's job.
 */
export function mapVaultError(
  error: VaultRequestError,
  operation: VaultOperation,
  path: string,
  keyPath: string,
): TrousseauError {
  // The cause keeps status and Vault's strings only (never the raw client error, which holds the token).
  const cause = new Error(error.message);
  switch (error.kind) {
    case 'timeout':
      return new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
        `vault did not answer ${operation} in time`,
        {
          cause,
        },
      );
    case 'aborted':
      // Only reached when nobody waits for the answer any more: the caller got its own abort error.
      return new TrousseauError('TROUSSEAU_ERR_CANCELLED', `vault ${operation} abandoned by its caller`, {
        cause,
      });
    case 'network':
      return new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
        `vault unreachable (${error.errorCode ?? 'network error'})`,
        { cause },
      );
    case 'tls':
      return new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
        `TLS with vault failed (${error.errorCode ?? 'handshake'}): check tls.caFile, tls.serverName and the client certificate`,
        { cause, retryable: false },
      );
    case 'protocol':
      return new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
        `vault ${operation} failed: ${error.message}`,
        {
          cause,
        },
      );
    case 'http':
      break;
  }
  const status = error.status ?? 0;
  const message = error.vaultMessage;
  if (isSealed(error)) {
    return new TrousseauError('TROUSSEAU_ERR_PROVIDER_UNAVAILABLE', 'vault sealed', { cause });
  }
  if (status === 429) {
    return new TrousseauError('TROUSSEAU_ERR_PROVIDER_THROTTLED', `vault throttled ${operation} (429)`, {
      cause,
    });
  }
  if (status >= 500 && operation === 'login') {
    // Vault 1.4's Kubernetes auth answers a refused service account with 500 and the plugin's message.
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
      `vault login failed (${status}): ${message}`,
      {
        cause,
      },
    );
  }
  if (status >= 500) {
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      `vault answered ${status} to ${operation}: ${message}`,
      { cause },
    );
  }
  if (status === 403) {
    return new TrousseauError('TROUSSEAU_ERR_PROVIDER_PERMISSION_DENIED', `permission denied on ${path}`, {
      cause,
    });
  }
  if (/missing client token/i.test(message)) {
    return new TrousseauError('TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', 'vault token missing', { cause });
  }
  switch (operation) {
    case 'decrypt':
      if (status === 400) return decryptItemError(message, keyPath);
      break;
    case 'encrypt':
      if (status === 400) return encryptItemError(message, keyPath);
      break;
    case 'key read':
      if (status === 404) return keyGone(keyPath, cause);
      break;
    case 'login':
    case 'token lookup':
    case 'token renewal':
      return new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
        `vault ${operation} failed: ${message}`,
        {
          cause,
        },
      );
  }
  return new TrousseauError(
    'TROUSSEAU_ERR_PROVIDER_INTERNAL',
    `vault answered ${status} to ${operation} on ${path}: ${message}`,
    { cause },
  );
}
