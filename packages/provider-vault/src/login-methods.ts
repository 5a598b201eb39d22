import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { TrousseauError, type ProviderContext } from '@trousseau/core';
import type { LoginAuthOptions } from './options.js';
import type { VaultHttp } from './vault-http.js';

/**
 * How one auth method logs in: the body of `POST auth/<mount>/login`, from credentials read anew at every
 * login (service-account and workload JWTs, AppRole secret ids and client certificates all rotate).
 */
export interface LoginMethod {
  readonly method: LoginAuthOptions['method'];
  readonly mount: string;
  /** Reads the credentials now and returns the login body (never logged). */
  credentials(): Promise<Record<string, string>>;
  /** The login's failure with what it means for this method added, where Vault's answer does not say. */
  explain(failure: TrousseauError): TrousseauError;
}

/** The `iss` claim of a JWT, read without checking anything (it is not a secret), or undefined. */
function issuerOf(jwt: string): string | undefined {
  try {
    const claims: unknown = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'));
    const iss = (claims as { iss?: unknown } | null)?.iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** The login failure `failure` with `detail` appended to its message (the original as cause). */
function withDetail(failure: TrousseauError, detail: string): TrousseauError {
  return new TrousseauError('TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', `${failure.message}: ${detail}`, {
    cause: failure,
  });
}

const asIs = (failure: TrousseauError): TrousseauError => failure;

/** Reads a JWT file (trimmed); a missing or empty file is an auth failure that names the file. */
async function readJwtFile(context: ProviderContext, file: string, what: string): Promise<string> {
  const path = isAbsolute(file) ? file : resolve(context.configDir, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', `cannot read the ${what} file ${path}`, {
      cause: new Error((error as NodeJS.ErrnoException).code ?? 'read failed'),
    });
  }
  const jwt = text.trim();
  if (jwt === '') {
    throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', `${what} file ${path} is empty`);
  }
  return jwt;
}

export function loginMethodFor(
  auth: LoginAuthOptions,
  context: ProviderContext,
  http: VaultHttp,
): LoginMethod {
  switch (auth.method) {
    case 'kubernetes': {
      let issuer: string | undefined;
      return {
        method: auth.method,
        mount: auth.mount,
        credentials: async () => {
          const jwt = await readJwtFile(context, auth.tokenFile, 'service-account token');
          issuer = issuerOf(jwt);
          return { role: auth.role, jwt };
        },
        explain: (failure) => {
          // Vault 1.4.3 answers a failed TokenReview with a bare 403 and logs the cause.
          if (/permission denied on auth\//.test(failure.message)) {
            return withDetail(
              failure,
              'Vault could not confirm the service-account token with the Kubernetes TokenReview API (the token expired or its service account is gone, or Vault cannot reach the API server; Vault logs which)',
            );
          }
          // Vault 1.4.3 checks `iss` against auth/<mount>/config issuer (legacy tokens' when unset).
          if (/claim "iss" is invalid/.test(failure.message) && issuer !== undefined) {
            return withDetail(
              failure,
              `the token's issuer is ${issuer}: set issuer=${issuer} in auth/${auth.mount}/config`,
            );
          }
          return failure;
        },
      };
    }
    case 'approle':
      return {
        method: auth.method,
        mount: auth.mount,
        credentials: async () => {
          const [roleId, secretId] = await Promise.all([
            context.secrets.read(auth.roleId),
            context.secrets.read(auth.secretId),
          ]);
          return { role_id: roleId, secret_id: secretId };
        },
        explain: asIs,
      };
    case 'jwt':
      return {
        method: auth.method,
        mount: auth.mount,
        credentials: async () => ({
          role: auth.role,
          jwt: await readJwtFile(context, auth.tokenFile, 'JWT'),
        }),
        explain: asIs,
      };
    case 'cert':
      return {
        method: auth.method,
        mount: auth.mount,
        credentials: async (): Promise<Record<string, string>> => {
          // cert-manager rotates the certificate: the login (and what follows) presents the files' current one.
          await http.reloadClientCertificate();
          return auth.name === undefined ? {} : { name: auth.name };
        },
        explain: asIs,
      };
  }
}
