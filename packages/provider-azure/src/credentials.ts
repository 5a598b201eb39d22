import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { TokenCredential } from '@azure/core-auth';
import type { Agent } from '@azure/core-rest-pipeline';
import {
  ClientSecretCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
  type TokenCredentialOptions,
} from '@azure/identity';
import { TrousseauError, type ProviderContext } from '@trousseau/core';
import * as z from 'zod';
import { CLOUD_AUTHORITY_HOSTS, type AzureCloud, type AzureOptions } from './options.js';

/** The fields of the cloud-provider `azure.json` that the credential needs (the file holds many more). */
const azureJsonSchema = z.looseObject({
  cloud: z.string().optional(),
  tenantId: z.string().optional(),
  aadClientId: z.string().optional(),
  aadClientSecret: z.string().optional(),
  useManagedIdentityExtension: z.boolean().optional(),
  userAssignedIdentityID: z.string().optional(),
  useFederatedWorkloadIdentityExtension: z.boolean().optional(),
  aadFederatedTokenFile: z.string().optional(),
});

interface CredentialBuild {
  readonly credential: TokenCredential;
  /** A short description for status and logs: the kind and client id, never a secret. */
  readonly description: string;
}

function authorityOptions(
  options: AzureOptions,
  agent: Agent,
  cloudFromFile?: string,
): TokenCredentialOptions & { disableInstanceDiscovery?: boolean } {
  const cloud = options.cloud ?? (cloudFromFile as AzureCloud | undefined);
  const fromCloud = cloud === undefined ? undefined : CLOUD_AUTHORITY_HOSTS[cloud];
  const authorityHost = options.authorityHost ?? fromCloud ?? CLOUD_AUTHORITY_HOSTS.AzurePublicCloud;
  return {
    authorityHost,
    disableInstanceDiscovery: options.disableInstanceDiscovery ?? options.authorityHost !== undefined,
    agent,
    retryOptions: { maxRetries: options.maxRetries, retryDelayInMs: options.retryDelayMs },
  };
}

function resolvePath(context: ProviderContext, path: string): string {
  return isAbsolute(path) ? path : resolve(context.configDir, path);
}

function required(value: string | undefined, what: string): string {
  if (value === undefined || value.trim() === '') {
    throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID', `azure provider: ${what} is not set`);
  }
  return value.trim();
}

/**
 * Builds the Entra ID credential the config asks for. Secrets are read here (at first use, and again
 * whenever the clients are rebuilt after an authentication failure), never kept in the options.
 */
export async function buildCredential(
  options: AzureOptions,
  context: ProviderContext,
  agent: Agent,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<CredentialBuild> {
  const spec = options.credential;
  switch (spec.type) {
    case 'workloadIdentity': {
      const clientId = required(
        spec.clientId ?? env.AZURE_CLIENT_ID,
        'workload identity client id (AZURE_CLIENT_ID)',
      );
      const tenantId = required(
        spec.tenantId ?? env.AZURE_TENANT_ID,
        'workload identity tenant id (AZURE_TENANT_ID)',
      );
      const tokenFile = required(
        spec.tokenFile === undefined ? env.AZURE_FEDERATED_TOKEN_FILE : resolvePath(context, spec.tokenFile),
        'workload identity token file (AZURE_FEDERATED_TOKEN_FILE)',
      );
      return {
        credential: new WorkloadIdentityCredential({
          clientId,
          tenantId,
          tokenFilePath: tokenFile,
          ...authorityOptions(options, agent),
        }),
        description: `workload identity (client ${clientId})`,
      };
    }
    case 'managedIdentity': {
      const common = authorityOptions(options, agent);
      return {
        credential:
          spec.clientId === undefined
            ? new ManagedIdentityCredential({ agent: common.agent, retryOptions: common.retryOptions })
            : new ManagedIdentityCredential({
                clientId: spec.clientId,
                agent: common.agent,
                retryOptions: common.retryOptions,
              }),
        description:
          spec.clientId === undefined
            ? 'system-assigned managed identity'
            : `managed identity (client ${spec.clientId})`,
      };
    }
    case 'servicePrincipal': {
      if (spec.azureJsonFile !== undefined) {
        return credentialFromAzureJson(options, agent, resolvePath(context, spec.azureJsonFile));
      }
      const tenantId = required(spec.tenantId, 'servicePrincipal.tenantId');
      const clientId = required(spec.clientId, 'servicePrincipal.clientId');
      if (spec.clientSecret === undefined) {
        throw new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID',
          'azure provider: clientSecret is not set',
        );
      }
      const secret = await context.secrets.read(spec.clientSecret);
      return {
        credential: new ClientSecretCredential(tenantId, clientId, secret, authorityOptions(options, agent)),
        description: `service principal (client ${clientId})`,
      };
    }
  }
}

async function credentialFromAzureJson(
  options: AzureOptions,
  agent: Agent,
  file: string,
): Promise<CredentialBuild> {
  let parsed: z.infer<typeof azureJsonSchema>;
  try {
    const result = azureJsonSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
    if (!result.success) throw new Error(result.error.issues[0]?.message ?? 'invalid');
    parsed = result.data;
  } catch (error) {
    throw new TrousseauError('TROUSSEAU_ERR_CONFIG_READ', `azure provider: cannot read azure.json ${file}`, {
      cause: error,
    });
  }
  const cloud =
    parsed.cloud !== undefined && parsed.cloud in CLOUD_AUTHORITY_HOSTS ? parsed.cloud : undefined;
  const common = authorityOptions(options, agent, cloud);
  if (parsed.useManagedIdentityExtension === true) {
    const clientId = parsed.userAssignedIdentityID?.trim() || undefined;
    return {
      credential:
        clientId === undefined
          ? new ManagedIdentityCredential({ agent, retryOptions: common.retryOptions })
          : new ManagedIdentityCredential({ clientId, agent, retryOptions: common.retryOptions }),
      description:
        clientId === undefined ? 'system-assigned managed identity' : `managed identity (client ${clientId})`,
    };
  }
  const tenantId = required(parsed.tenantId, `tenantId in ${file}`);
  const clientId = required(parsed.aadClientId, `aadClientId in ${file}`);
  if (parsed.useFederatedWorkloadIdentityExtension === true) {
    const tokenFile = required(parsed.aadFederatedTokenFile, `aadFederatedTokenFile in ${file}`);
    return {
      credential: new WorkloadIdentityCredential({ clientId, tenantId, tokenFilePath: tokenFile, ...common }),
      description: `workload identity (client ${clientId})`,
    };
  }
  const secret = required(parsed.aadClientSecret, `aadClientSecret in ${file}`);
  return {
    credential: new ClientSecretCredential(tenantId, clientId, secret, common),
    description: `service principal (client ${clientId})`,
  };
}
