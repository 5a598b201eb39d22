// The shared contract with `auth.method: agent`: every request goes through the Vault Agent stand-in,
// with no token of Trousseau's, so rotation, deadlines, outages, aborts and close must hold on that path
// too. The backend fails by being sealed and hangs by holding requests at Vault, behind the agent.
import { join } from 'node:path';
import { runProviderConformance } from '@trousseau/testing';
import { startVaultAgent } from '@trousseau/testing/vault';
import { startBackend, usingRealVault } from './backend.js';
import { createFixture } from './helpers.js';

if (!usingRealVault) {
  runProviderConformance('vault through a Vault Agent (unix socket, no token of its own)', async () => {
    const backend = await startBackend();
    const fixture = await createFixture(backend);
    const emulator = backend.emulator;
    if (emulator === undefined) throw new Error('the agent stand-in needs the emulator');
    emulator.configureAppRole({
      roleName: 'agent',
      roleId: 'agent-role',
      secretId: 'agent-secret',
      policies: [fixture.policy],
      tokenTtlSeconds: 3600,
    });
    const agent = await startVaultAgent({
      vault: emulator.url,
      autoAuth: {
        mount: 'approle',
        credentials: () => ({ role_id: 'agent-role', secret_id: 'agent-secret' }),
      },
      socketPath: join(fixture.dir, 'agent.sock'),
    });
    // The background key refresh at its longest interval: its requests are not the calls' own.
    const provider = await fixture.open({
      address: agent.url,
      auth: { method: 'agent' },
      keyRefreshIntervalSeconds: 60,
    });
    return {
      provider,
      async breakBackend() {
        emulator.seal();
      },
      async restoreBackend() {
        emulator.faults.holdRequests = false;
        emulator.unseal();
      },
      rotateKey: () => backend.rotateKey(fixture.keyName),
      async holdBackend() {
        emulator.faults.holdRequests = true;
      },
      async releaseBackend() {
        emulator.faults.holdRequests = false;
      },
      backendRequests: () => emulator.received,
      async cleanup() {
        await agent.close();
        await backend.close();
        await fixture.cleanup();
      },
    };
  });
}
