import 'reflect-metadata';
import { join } from 'node:path';
import { parseConfig, silentLogger, type Logger } from '@trousseau/core';
import { KmsClient } from '@trousseau/core/grpc';
import { registerValue, TOKENS } from '@trousseau/core/wiring';
import { createKeyRingFile } from '@trousseau/provider-local';
import { startAwsKmsForProvider } from '@trousseau/testing/awskms';
import { startAzureKeyVaultForProvider } from '@trousseau/testing/azure';
import { startVaultForProvider } from '@trousseau/testing/vault';
import { createServerContainer, TrousseauServer } from '../../src/index.js';
import { removeDir, scratchDir } from '../helpers.js';

/** Every built-in provider, each served through its real SDK client against its emulator. */
export const PROVIDER_KINDS = ['local', 'vault', 'awskms', 'azure'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

interface Backend {
  readonly config: Record<string, unknown>;
  readonly env?: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

async function startBackend(kind: ProviderKind, dir: string): Promise<Backend> {
  switch (kind) {
    case 'local': {
      const keyFile = join(dir, 'keys.json');
      await createKeyRingFile(keyFile);
      return { config: { keyFile }, close: async () => undefined };
    }
    case 'vault': {
      const { emulator, config, env } = await startVaultForProvider({ envPrefix: 'ABUSE_VAULT' });
      return { config, env, close: () => emulator.close() };
    }
    case 'awskms': {
      const { emulator, config, env } = await startAwsKmsForProvider({ envPrefix: 'ABUSE_AWS' });
      return { config, env, close: () => emulator.close() };
    }
    case 'azure': {
      const { emulator, config } = await startAzureKeyVaultForProvider({ dir, keyName: 'k8s' });
      return { config, close: () => emulator.close() };
    }
  }
}

export interface ServedProvider {
  readonly kind: ProviderKind;
  readonly server: TrousseauServer;
  readonly client: KmsClient;
  readonly socket: string;
  close(): Promise<void>;
}

/** A real Trousseau serving one provider instance (named after its kind) on a socket in a temp dir. */
export async function serveProvider(
  kind: ProviderKind,
  options: { logger?: Logger; socketLimits?: Record<string, unknown> } = {},
): Promise<ServedProvider> {
  const dir = await scratchDir('trousseau-abuse-');
  const backend = await startBackend(kind, dir);
  const socket = join(dir, 'kms.sock');
  try {
    const loaded = parseConfig(
      {
        version: 1,
        socket: { path: socket, limits: options.socketLimits ?? {} },
        providers: [{ name: kind, type: kind, config: backend.config }],
      },
      join(dir, 'config.yaml'),
      dir,
    );
    const container = createServerContainer({ loaded, logger: options.logger ?? silentLogger });
    if (backend.env !== undefined) registerValue(container, TOKENS.env, { ...process.env, ...backend.env });
    const server = await TrousseauServer.fromContainer(container);
    await server.listen().catch(async (error: unknown) => {
      await server.close();
      throw error;
    });
    const client = new KmsClient(socket, { timeoutMs: 20_000 });
    return {
      kind,
      server,
      client,
      socket,
      async close() {
        client.close();
        await server.close();
        await backend.close();
        await removeDir(dir);
      },
    };
  } catch (error) {
    await backend.close();
    await removeDir(dir);
    throw error;
  }
}
