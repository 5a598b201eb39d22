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
  /** What a 403 to the login means with this method, when Vault's answer does not say, for Status. */
  readonly refusedBecause?: string;
}

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
    case 'kubernetes':
      return {
        method: auth.method,
        mount: auth.mount,
        credentials: async () => ({
          role: auth.role,
          jwt: await readJwtFile(context, auth.tokenFile, 'service-account token'),
        }),
        // Vault 1.4.3 answers a failed TokenReview with a bare 403 and logs the cause.
        refusedBecause:
          'Vault could not confirm the service-account token with the Kubernetes TokenReview API (the token expired or its service account is gone, or Vault cannot reach the API server; Vault logs which)',
      };
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
      };
    case 'jwt':
      return {
        method: auth.method,
        mount: auth.mount,
        credentials: async () => ({
          role: auth.role,
          jwt: await readJwtFile(context, auth.tokenFile, 'JWT'),
        }),
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
      };
  }
}
