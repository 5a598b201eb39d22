import { isTrousseauError, TrousseauError } from '@trousseau/core';

interface AwsErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $fault?: 'client' | 'server';
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

const AUTH_ERRORS = new Set([
  'UnrecognizedClientException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'AuthFailure',
  'CredentialsProviderError',
]);

/** The key is disabled, pending deletion, deleted, or not an encryption key: gone for Trousseau. */
const KEY_ERRORS = new Set([
  'DisabledException',
  'KMSInvalidStateException',
  'NotFoundException',
  'InvalidKeyUsageException',
]);

const SERVER_ERRORS = new Set([
  'KMSInternalException',
  'DependencyTimeoutException',
  'KeyUnavailableException',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
]);

const THROTTLING_ERRORS = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'LimitExceededException',
]);

/** The AWS error's name (`__type`), for metrics and messages. */
export function awsErrorName(error: unknown): string {
  const shape = (typeof error === 'object' && error !== null ? error : {}) as AwsErrorShape;
  return shape.name ?? 'Error';
}

/**
 * Maps an error of @aws-sdk/client-kms (or of the credential chain, or of the network) to a
 * TrousseauError whose code carries the right gRPC status. `what` names the call ("Encrypt with key
 * alias/x"). AWS's own messages never hold secrets (they name ARNs and principals), so they are kept.
 */
export function mapAwsError(error: unknown, what: string): TrousseauError {
  if (isTrousseauError(error)) {
    // From our static credentials provider (an unreadable secret reference) or a nested call.
    if (error.code === 'TROUSSEAU_ERR_CONFIG_INVALID' || error.code === 'TROUSSEAU_ERR_CONFIG_READ') {
      return new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
        `${what}: cannot read the configured AWS credentials: ${error.message}`,
        { cause: error },
      );
    }
    return error;
  }
  const shape = (typeof error === 'object' && error !== null ? error : {}) as AwsErrorShape;
  const name = shape.name ?? 'Error';
  const message = shape.message ?? String(error);
  const status = shape.$metadata?.httpStatusCode;
  const attempts = shape.$metadata?.attempts;
  const afterAttempts = attempts !== undefined && attempts > 1 ? ` after ${attempts} attempts` : '';
  const options = { cause: error };

  if (name === 'InvalidCiphertextException' || name === 'IncorrectKeyException') {
    return new TrousseauError(
      'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
      `${what}: AWS KMS refused the ciphertext (${name}): it is corrupted, was made under another key, or with another encryption context`,
      options,
    );
  }
  if (name === 'AccessDeniedException') {
    // The key is gone for us: whether the key policy or our IAM policy changed, no retry brings it back.
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      `${what}: AWS KMS denied access (AccessDeniedException); check the IAM policy of the role and the key policy: ${message}`,
      options,
    );
  }
  if (KEY_ERRORS.has(name)) {
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      `${what}: the KMS key cannot be used (${name}): ${message}`,
      options,
    );
  }
  if (name === 'InvalidSignatureException') {
    const skew = message.startsWith('Signature expired') || message.startsWith('Signature not yet current');
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
      skew
        ? `${what}: AWS KMS refused the request signature because this host's clock is more than 5 minutes off (InvalidSignatureException): ${message}`
        : `${what}: AWS KMS refused the request signature (InvalidSignatureException): the secret access key does not belong to the access key id, or the credentials are corrupted`,
      options,
    );
  }
  if (AUTH_ERRORS.has(name)) {
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
      name === 'CredentialsProviderError'
        ? `${what}: no AWS credentials could be loaded (IRSA web identity, EKS Pod Identity, environment, shared files were tried): ${message}`
        : `${what}: AWS refused the credentials (${name}): ${message}`,
      options,
    );
  }
  if (THROTTLING_ERRORS.has(name) || status === 429) {
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_THROTTLED',
      `${what}: AWS KMS throttled the request (${name})${afterAttempts}`,
      options,
    );
  }
  if (SERVER_ERRORS.has(name) || (status !== undefined && status >= 500)) {
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      `${what}: AWS KMS failed (${name}, HTTP ${status ?? '?'})${afterAttempts}: ${message}`,
      options,
    );
  }
  if (
    (shape.code !== undefined && NETWORK_CODES.has(shape.code)) ||
    name === 'TimeoutError' ||
    name === 'RequestTimeout'
  ) {
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      `${what}: AWS KMS is unreachable (${shape.code ?? name})${afterAttempts}: ${message}`,
      options,
    );
  }
  if (name === 'ValidationException') {
    return new TrousseauError(
      'TROUSSEAU_ERR_REQUEST_INVALID',
      `${what}: AWS KMS refused the input: ${message}`,
      options,
    );
  }
  if (status !== undefined && status < 500) {
    return new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_INTERNAL',
      `${what}: AWS KMS refused the request (${name}, HTTP ${status}): ${message}`,
      options,
    );
  }
  return new TrousseauError(
    'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
    `${what}: AWS KMS call failed (${name}): ${message}`,
    options,
  );
}
