import { secretRefSchema } from '@trousseau/core';
import * as z from 'zod';

/** Key names Key Vault accepts. */
export const KEY_NAME_PATTERN = /^[0-9A-Za-z-]{1,127}$/;
/** Key versions as Key Vault and Managed HSM make them (32 hex characters); kept a little looser. */
export const KEY_VERSION_PATTERN = /^[0-9A-Za-z]{1,64}$/;

export const AZURE_ALGORITHMS = ['RSA-OAEP-256', 'RSA-OAEP'] as const;
export type AzureAlgorithm = (typeof AZURE_ALGORITHMS)[number];

/** Clouds by the names azure.json uses, with their Entra ID authority hosts. */
export const CLOUD_AUTHORITY_HOSTS = {
  AzurePublicCloud: 'https://login.microsoftonline.com',
  AzureChinaCloud: 'https://login.chinacloudapi.cn',
  AzureUSGovernmentCloud: 'https://login.microsoftonline.us',
} as const;
export type AzureCloud = keyof typeof CLOUD_AUTHORITY_HOSTS;

const guidOrName = z.string().min(1).max(128);

const workloadIdentitySchema = z.strictObject({
  type: z.literal('workloadIdentity'),
  /** Defaults to AZURE_CLIENT_ID, which the workload identity webhook injects. */
  clientId: guidOrName.optional(),
  /** Defaults to AZURE_TENANT_ID. */
  tenantId: guidOrName.optional(),
  /** The projected service-account token; defaults to AZURE_FEDERATED_TOKEN_FILE. */
  tokenFile: z.string().min(1).optional(),
});

const managedIdentitySchema = z.strictObject({
  type: z.literal('managedIdentity'),
  /** Client id of a user-assigned identity; omit for the system-assigned one. */
  clientId: guidOrName.optional(),
});

const servicePrincipalSchema = z
  .strictObject({
    type: z.literal('servicePrincipal'),
    tenantId: guidOrName.optional(),
    clientId: guidOrName.optional(),
    /** The client secret, from a file (a mounted Secret) or an environment variable. */
    clientSecret: secretRefSchema.optional(),
    /**
     * Path of an `azure.json` cloud-provider config (tenantId, aadClientId, aadClientSecret,
     * useManagedIdentityExtension, userAssignedIdentityID, useFederatedWorkloadIdentityExtension,
     * aadFederatedTokenFile, cloud), as the existing Azure KMS plugins read it. Read at every login.
     */
    azureJsonFile: z.string().min(1).optional(),
  })
  .superRefine((value, ctx) => {
    const inline =
      value.tenantId !== undefined || value.clientId !== undefined || value.clientSecret !== undefined;
    if (value.azureJsonFile !== undefined && inline) {
      ctx.addIssue({
        code: 'custom',
        path: ['azureJsonFile'],
        message: 'give either azureJsonFile or tenantId/clientId/clientSecret, not both',
      });
    } else if (value.azureJsonFile === undefined) {
      for (const field of ['tenantId', 'clientId', 'clientSecret'] as const) {
        if (value[field] === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'is required for a service principal (or give azureJsonFile)',
          });
        }
      }
    }
  });

const credentialSchema = z.discriminatedUnion('type', [
  workloadIdentitySchema,
  managedIdentitySchema,
  servicePrincipalSchema,
]);

export const azureOptionsSchema = z.strictObject({
  /** `https://<vault>.vault.azure.net` or a Managed HSM `https://<hsm>.managedhsm.azure.net`. */
  vaultUrl: z
    .url({ protocol: /^https$/, error: 'must be an https:// URL of the vault' })
    .transform((value) => value.replace(/\/+$/, '')),
  keyName: z.string().regex(KEY_NAME_PATTERN, 'must be 1-127 characters of A-Z a-z 0-9 -'),
  /** Pin one key version; omitted: the latest version, followed across rotations. */
  keyVersion: z.string().regex(KEY_VERSION_PATTERN, 'must be a key version (hex characters)').optional(),
  algorithm: z.enum(AZURE_ALGORITHMS).default('RSA-OAEP-256'),
  credential: credentialSchema.default({ type: 'workloadIdentity' }),
  /** The sovereign cloud, for its Entra ID authority host. */
  cloud: z.enum(Object.keys(CLOUD_AUTHORITY_HOSTS) as [AzureCloud, ...AzureCloud[]]).optional(),
  /** Overrides the authority host given by `cloud` (Azure Stack, a private authority). */
  authorityHost: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }).optional(),
  /**
   * Skip Entra ID instance discovery, needed for an authority host MSAL does not know. Defaults to true
   * when `authorityHost` is set, false otherwise.
   */
  disableInstanceDiscovery: z.boolean().optional(),
  /**
   * Accept a bearer challenge whose resource is not a parent domain of the vault host. Only for vaults
   * reached through a name outside `*.vault.azure.net` / `*.managedhsm.azure.net` (a test emulator).
   */
  disableChallengeResourceVerification: z.boolean().default(false),
  /** PEM file of extra CA certificates trusted for Key Vault and Entra ID (added to Node's roots). */
  caFile: z.string().min(1).optional(),
  /** Longest time encrypt uses the cached key state before re-reading it, seconds (status always reads). */
  keyRefreshIntervalSeconds: z.number().int().min(0).max(86_400).default(300),
  /** Bound of one call when the caller gave no deadline, seconds. */
  timeoutSeconds: z.number().positive().max(300).default(10),
  /** Retries of throttled (429) and failed (5xx, network) HTTP requests, within the deadline. */
  maxRetries: z.number().int().min(0).max(10).default(2),
  /** First retry delay, milliseconds (exponential; a Retry-After header takes precedence). */
  retryDelayMs: z.number().int().min(0).max(60_000).default(200),
});

export type AzureOptions = z.output<typeof azureOptionsSchema>;
export type AzureOptionsInput = z.input<typeof azureOptionsSchema>;
