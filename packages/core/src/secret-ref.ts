import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import * as z from 'zod';
import { TrousseauError } from './errors.js';

/**
 * A secret is never written inline in the config file: it is referenced from a file (a mounted Secret,
 * a projected token) or an environment variable.
 */
export const secretRefSchema = z.union(
  [
    z.strictObject({ file: z.string().min(1).describe('path of a file holding the secret') }),
    z.strictObject({ env: z.string().min(1).describe('name of an environment variable holding the secret') }),
  ],
  {
    error: (issue) =>
      typeof issue.input === 'string'
        ? 'secrets are never written inline in the config file: reference it as { file: PATH } (a mounted Secret) or { env: NAME } (an environment variable)'
        : 'must be { file: PATH } or { env: NAME }, a reference to where the secret is',
  },
);

export type SecretRef = z.infer<typeof secretRefSchema>;

export interface SecretReader {
  /** The secret's value with surrounding whitespace trimmed. Files are read anew at every call. */
  read(ref: SecretRef): Promise<string>;
  /** The absolute path a `{file}` reference points at, or undefined for `{env}`. */
  pathOf(ref: SecretRef): string | undefined;
}

export function createSecretReader(
  configDir: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): SecretReader {
  const pathOf = (ref: SecretRef): string | undefined =>
    'file' in ref ? (isAbsolute(ref.file) ? ref.file : resolve(configDir, ref.file)) : undefined;
  return {
    pathOf,
    async read(ref) {
      if ('env' in ref) {
        const value = env[ref.env];
        if (value === undefined || value.trim() === '') {
          throw new TrousseauError(
            'TROUSSEAU_ERR_CONFIG_INVALID',
            `environment variable ${ref.env} is not set or empty`,
          );
        }
        return value.trim();
      }
      const path = pathOf(ref) ?? ref.file;
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        throw new TrousseauError('TROUSSEAU_ERR_CONFIG_READ', `cannot read secret file ${path}`, {
          cause: error,
        });
      }
      const value = text.trim();
      if (value === '')
        throw new TrousseauError('TROUSSEAU_ERR_CONFIG_INVALID', `secret file ${path} is empty`);
      return value;
    },
  };
}
