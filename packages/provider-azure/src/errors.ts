import { abortError, isTrousseauError, TrousseauError, type ErrorCode } from '@trousseau/core';

/** What the provider was doing, for messages and for telling a bad ciphertext from a bad request. */
export type AzureOperation = 'getKey' | 'wrapKey' | 'unwrapKey' | 'login';

interface RestErrorShape {
  name?: unknown;
  statusCode?: unknown;
  code?: unknown;
  message?: unknown;
  details?: unknown;
  errorResponse?: { error?: unknown; errorDescription?: unknown };
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'REQUEST_SEND_ERROR',
  'UND_ERR_SOCKET',
]);

/** The service's `{"error":{"code","message","innererror":{"code"}}}`, wherever the SDK put it. */
function serviceError(error: RestErrorShape): { code?: string; message?: string; inner?: string } {
  const details = error.details as { error?: Record<string, unknown> } | undefined;
  const body = details?.error;
  if (body === undefined || typeof body !== 'object') {
    return typeof error.code === 'string' ? { code: error.code } : {};
  }
  const innerObject = (body.innererror ?? body.innerError) as { code?: unknown } | undefined;
  return {
    ...(typeof body.code === 'string' ? { code: body.code } : {}),
    ...(typeof body.message === 'string' ? { message: body.message.split('\r\n')[0] } : {}),
    ...(typeof innerObject?.code === 'string' ? { inner: innerObject.code } : {}),
  };
}

function make(code: ErrorCode, message: string, cause: unknown, retryable?: boolean): TrousseauError {
  return new TrousseauError(code, message, retryable === undefined ? { cause } : { cause, retryable });
}

/**
 * Maps an error of the Azure SDK (a RestError, an identity AuthenticationError or
 * CredentialUnavailableError, a network error, an abort) to a TrousseauError with the right code.
 * Messages carry the service's error code and message, never a token, secret or plaintext.
 */
export function mapAzureError(
  error: unknown,
  operation: AzureOperation,
  signal: AbortSignal,
): TrousseauError {
  if (isTrousseauError(error)) return error;
  if (signal.aborted) return abortError(signal, `azure ${operation}`);
  const shape = (typeof error === 'object' && error !== null ? error : {}) as RestErrorShape;
  const name = typeof shape.name === 'string' ? shape.name : '';
  const text = typeof shape.message === 'string' ? shape.message.split('\n')[0] : String(error);

  if (name === 'AbortError') return abortError(signal, `azure ${operation}`);
  if (name === 'CredentialUnavailableError') {
    return make(
      'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
      `azure ${operation}: credential unavailable: ${text}`,
      error,
    );
  }
  if (
    name === 'AuthenticationError' ||
    name === 'AggregateAuthenticationError' ||
    name === 'AuthenticationRequiredError'
  ) {
    const status = typeof shape.statusCode === 'number' ? shape.statusCode : 0;
    const transient = status === 0 || status === 408 || status === 429 || status >= 500;
    return make(
      'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
      `azure ${operation}: token acquisition from Entra ID failed${status ? ` (HTTP ${status})` : ''}: ${text}`,
      error,
      transient,
    );
  }

  const status = typeof shape.statusCode === 'number' ? shape.statusCode : undefined;
  if (status === undefined) {
    const code = typeof shape.code === 'string' ? shape.code : '';
    if (NETWORK_CODES.has(code) || name === 'RestError') {
      return make(
        'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
        `azure ${operation}: Key Vault unreachable: ${text}`,
        error,
      );
    }
    return make('TROUSSEAU_ERR_PROVIDER_INTERNAL', `azure ${operation}: ${text}`, error);
  }

  const service = serviceError(shape);
  const said = `HTTP ${status}${service.code === undefined ? '' : ` ${service.code}`}${
    service.inner === undefined ? '' : `/${service.inner}`
  }${service.message === undefined ? '' : `: ${service.message}`}`;
  if (status === 401) {
    return make(
      'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
      `azure ${operation}: Key Vault refused the token (${said})`,
      error,
    );
  }
  // A disabled or expired key, a removed role and a deleted key are all the key gone for Trousseau: no
  // retry brings them back, and Status must fail so the apiserver stops writing.
  if (status === 403) {
    if (service.inner === 'KeyDisabled' || service.inner === 'KeyNotYetValidOrExpired') {
      return make(
        'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
        `azure ${operation}: the key cannot be used (${said})`,
        error,
      );
    }
    return make(
      'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      `azure ${operation}: permission denied; the identity needs the Key Vault Crypto User role (${said})`,
      error,
    );
  }
  if (status === 404) {
    return make('TROUSSEAU_ERR_PROVIDER_KEY_GONE', `azure ${operation}: key not found (${said})`, error);
  }
  if (status === 400 && operation === 'unwrapKey') {
    return make(
      'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
      `azure unwrapKey: Key Vault cannot unwrap this ciphertext (${said})`,
      error,
    );
  }
  if (status === 429) {
    return make(
      'TROUSSEAU_ERR_PROVIDER_THROTTLED',
      `azure ${operation}: Key Vault throttled the request (${said})`,
      error,
    );
  }
  if (status === 408 || status >= 500) {
    return make(
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      `azure ${operation}: Key Vault failed (${said})`,
      error,
    );
  }
  return make('TROUSSEAU_ERR_PROVIDER_INTERNAL', `azure ${operation}: unexpected answer (${said})`, error);
}
