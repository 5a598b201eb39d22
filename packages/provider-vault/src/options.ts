import { secretRefSchema } from '@trousseau/core';
import * as z from 'zod';

/** Where Kubernetes projects a pod's service-account token. */
export const DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** A Vault mount path or key name: path segments of the characters Vault accepts, no leading slash. */
const mountPath = z
  .string()
  .regex(
    /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/,
    'must be a Vault path such as "transit" or "kms/transit" (no leading or trailing slash)',
  )
  .max(128);

const tokenAuthSchema = z.strictObject({
  method: z.literal('token'),
  /** The token, from a file (re-read when it changes) or an environment variable. */
  token: secretRefSchema,
});

const kubernetesAuthSchema = z.strictObject({
  method: z.literal('kubernetes'),
  /** The Vault role bound to this pod's service account. */
  role: z.string().min(1),
  /** The projected service-account token, read anew at every login because the kubelet rotates it. */
  tokenFile: z.string().min(1).default(DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE),
  /** Path of the Kubernetes auth method in Vault (`vault auth enable -path=<mount> kubernetes`). */
  mount: mountPath.default('kubernetes'),
});

const appRoleAuthSchema = z.strictObject({
  method: z.literal('approle'),
  roleId: secretRefSchema,
  /** Read anew at every login, so a rotated secret id is picked up without a restart. */
  secretId: secretRefSchema,
  mount: mountPath.default('approle'),
});

const jwtAuthSchema = z.strictObject({
  method: z.literal('jwt'),
  /** The Vault role of the JWT auth method (`role_type=jwt`). */
  role: z.string().min(1),
  /**
   * The JWT: a projected service-account token with a `vault` audience, or any workload identity token;
   * read anew at every login because its issuer rotates it.
   */
  tokenFile: z.string().min(1),
  /** Path of the JWT auth method in Vault (`vault auth enable -path=<mount> jwt`). */
  mount: mountPath.default('jwt'),
});

const certAuthSchema = z.strictObject({
  method: z.literal('cert'),
  /** The cert role (`auth/<mount>/certs/<name>`); without it Vault tries every role the certificate matches. */
  name: z.string().min(1).optional(),
  /** Path of the TLS certificate auth method in Vault (`vault auth enable -path=<mount> cert`). */
  mount: mountPath.default('cert'),
});

/** Vault Agent or Vault Proxy at `address` adds its own token (`use_auto_auth_token`): no credential here. */
const agentAuthSchema = z.strictObject({
  method: z.literal('agent'),
});

export const vaultAuthSchema = z.discriminatedUnion('method', [
  tokenAuthSchema,
  kubernetesAuthSchema,
  appRoleAuthSchema,
  jwtAuthSchema,
  certAuthSchema,
  agentAuthSchema,
]);

/** `http(s)://host[:port]` (a path is kept) or `unix:///absolute/path/to.sock`. */
function isVaultAddress(value: string): boolean {
  if (/^unix:\/\/\/[^\0]*[^/\0]$/.test(value)) return true;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

export const vaultTlsSchema = z
  .strictObject({
    /** PEM bundle of the CA(s) that signed Vault's certificate; the system roots when absent. */
    caFile: z.string().min(1).optional(),
    /** The name to check Vault's certificate against (SNI too), when it differs from the address host. */
    serverName: z.string().min(1).optional(),
    /** Client certificate (PEM) for Vault's TLS client authentication; needs `keyFile`. */
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    /** Skips verification of Vault's certificate. Only for experiments: anyone on the path can read DEKs. */
    insecureSkipVerify: z.boolean().default(false),
  })
  .refine((tls) => (tls.certFile === undefined) === (tls.keyFile === undefined), {
    message: 'certFile and keyFile go together: give both or neither',
    path: ['certFile'],
  });

export const vaultOptionsSchema = z
  .strictObject({
    /**
     * Vault's address, such as `https://vault.example.com:8200`; or a Vault Agent/Proxy listener, either
     * `http://127.0.0.1:8100` or a unix socket as `unix:///run/vault-agent/agent.sock`.
     */
    address: z
      .string()
      .refine(isVaultAddress, 'must be an http:// or https:// URL, or unix:///<absolute socket path>')
      .transform((value) => value.replace(/\/+$/, '')),
    transitMount: mountPath.default('transit'),
    keyName: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ -'),
    /** Vault Enterprise namespace (sent as `X-Vault-Namespace`), for the auth method and the transit mount. */
    namespace: mountPath.optional(),
    tls: vaultTlsSchema.optional(),
    timeouts: z
      .strictObject({
        /** Longest one HTTP request to Vault may take; the caller's deadline bounds it further. */
        requestSeconds: z.number().positive().max(300).default(10),
        /** Longest a login, token lookup or renewal may take. */
        authSeconds: z.number().positive().max(300).default(10),
      })
      .prefault({}),
    auth: vaultAuthSchema,
    /** How often the key's metadata is read to notice a rotation (also read on demand). At most a minute. */
    keyRefreshIntervalSeconds: z.number().positive().max(60).default(30),
    batching: z
      .strictObject({
        /** Gather calls that queue while a request is in flight into one `batch_input` request. */
        enabled: z.boolean().default(true),
        /** Most items in one `batch_input` request. */
        maxBatchSize: z.number().int().min(1).max(1024).default(64),
      })
      .prefault({}),
  })
  .refine((options) => options.tls === undefined || options.address.startsWith('https:'), {
    message: 'tls settings need an https:// address',
    path: ['tls'],
  })
  .refine(
    (options) =>
      options.auth.method !== 'cert' ||
      (options.tls?.certFile !== undefined && options.address.startsWith('https:')),
    {
      message: 'the cert method logs in with the TLS client certificate: set tls.certFile and tls.keyFile',
      path: ['auth', 'method'],
    },
  );

export type VaultOptions = z.output<typeof vaultOptionsSchema>;
export type VaultAuthOptions = VaultOptions['auth'];
/** The methods with which Trousseau holds a token of its own (every one but `agent`). */
export type TokenAuthOptions = Exclude<VaultAuthOptions, { method: 'agent' }>;
/** The methods that log in. */
export type LoginAuthOptions = Exclude<TokenAuthOptions, { method: 'token' }>;
export type VaultTlsOptions = NonNullable<VaultOptions['tls']>;
